/* SPDX-License-Identifier: MIT */
#pragma once


#include "boot-internal.h"

/* lifeboat boot, claiming: candidates, concurrent AttachVolume, polling, lost races, timeouts. */

/* Resumes volumes an earlier run attached here, claims dirty volumes of the group in this AZ
 * within the limits, attaches and recovers them, and reports every one. */
int boot_recover_volumes(struct boot *b);
