/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

struct lb_settings;
struct lb_volume;

/*
 * The tag contract (README, "Tags"): PREFIX:group, PREFIX:state (dirty |
 * flushed | quarantined), PREFIX:owner, PREFIX:fs-uuid, PREFIX:flushed-at,
 * PREFIX:reason. A group volume without a state tag is "unmarked".
 */
#define LB_TAG_GROUP "group"
#define LB_TAG_STATE "state"
#define LB_TAG_OWNER "owner"
#define LB_TAG_FS_UUID "fs-uuid"
#define LB_TAG_FLUSHED_AT "flushed-at"
#define LB_TAG_REASON "reason"
#define LB_TAG_AVAILABLE_SINCE "available-since" /* reap: when it first saw a dirty volume available */

enum lb_vol_state {
        LB_VOL_UNMARKED,
        LB_VOL_DIRTY,
        LB_VOL_FLUSHED,
        LB_VOL_QUARANTINED,
        LB_VOL_UNKNOWN,         /* a state tag with a value lifeboat does not know */
        _LB_VOL_STATE_MAX,
};

/* "lifeboat" + "state" -> "lifeboat:state". */
int lb_tag_key(const struct lb_settings *s, const char *name, char *buf, size_t size);
/* The EC2 filter name of that tag: "lifeboat" + "group" -> "tag:lifeboat:group". */
int lb_tag_filter(const struct lb_settings *s, const char *name, char *buf, size_t size);
/* The value of PREFIX:name on the volume, or NULL. */
const char *lb_volume_lb_tag(const struct lb_settings *s, const struct lb_volume *v, const char *name);
/* The volume's PREFIX:state tag as a state: UNMARKED without one, UNKNOWN for a value lifeboat
 * does not know. */
enum lb_vol_state lb_volume_state(const struct lb_settings *s, const struct lb_volume *v);
/* "unmarked", "dirty", "flushed", "quarantined", "unknown". */
const char *lb_vol_state_to_string(enum lb_vol_state st);
