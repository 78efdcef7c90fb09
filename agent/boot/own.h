/* SPDX-License-Identifier: MIT */
#pragma once


#include "boot-internal.h"

/* lifeboat boot, this instance's own buffer volume. */

/* Finds, verifies, formats when blank, mounts and tags dirty the instance's own buffer volume
 * at LIFEBOAT_BUFFER_DEVICE. Fills report->own; its reason says why it is not ready. */
int boot_prepare_own_volume(struct boot *b);
