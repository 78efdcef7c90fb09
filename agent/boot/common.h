/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lifeboat/boot/boot.h"

#include "boot-internal.h"

/* lifeboat boot, what every step of a run shares: the deadline, the report, and the EC2 calls
 * boot cannot do without (sent again through throttling until the deadline). */

/* Whether the boot deadline passed or the run was interrupted. */
bool boot_past_deadline(const struct boot *b);
/* Milliseconds left before the boot deadline, 0 when it passed. */
uint64_t boot_remaining_ms(const struct boot *b);
/* After the last EC2 call failed: when it was throttled or a 5xx, waits a growing, jittered
 * pause and returns true to send it again (while the deadline allows; *round counts). */
bool boot_wait_out_last_error(struct boot *b, unsigned *round);
/* Appends a volume to the report; *ret points into the report until the next append. */
int boot_report_add(struct boot *b, const char *volume_id, enum lb_boot_outcome outcome,
                    struct lb_boot_volume **ret);
/* CreateTags on one volume, sent again through throttling; warns on failure. */
int boot_create_tags(struct boot *b, const char *volume_id, const struct lb_tag *tags, size_t n);
/* DetachVolume from this instance, sent again through throttling; warns on failure. */
int boot_detach(struct boot *b, const char *volume_id);
