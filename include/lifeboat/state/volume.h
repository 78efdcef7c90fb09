/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

#include "lifeboat/aws/ec2.h"
#include "lifeboat/disk/blockdev.h"

struct lb_settings;
struct lb_snapshot;
struct lb_volume;

/*
 * The tag contract (README, "Tags"): PREFIX:group, PREFIX:state (dirty |
 * flushed | quarantined | relocated), PREFIX:owner, PREFIX:fs-uuid, PREFIX:flushed-at,
 * PREFIX:reason. A group volume without a state tag is "unmarked".
 *
 * Relocation (reap moves a stranded dirty volume to a zone where the group runs): the
 * snapshot carries PREFIX:group, PREFIX:relocated-from (the source volume) and
 * PREFIX:target-zone; the copy is created with PREFIX:group, state=dirty, owner and fs-uuid
 * of the source and PREFIX:relocated-from; once the copy is available the source gets
 * state=relocated, PREFIX:relocated-to (the copy) and PREFIX:relocated-at.
 */
#define LB_TAG_GROUP "group"
#define LB_TAG_STATE "state"
#define LB_TAG_OWNER "owner"
#define LB_TAG_FS_UUID "fs-uuid"
#define LB_TAG_FLUSHED_AT "flushed-at"
#define LB_TAG_REASON "reason"
#define LB_TAG_AVAILABLE_SINCE "available-since" /* reap: when it first saw a dirty volume available */
#define LB_TAG_RELOCATED_FROM "relocated-from"  /* reap: on a copy and its snapshot, the source volume */
#define LB_TAG_RELOCATED_TO "relocated-to"      /* reap: on a relocated source, its copy */
#define LB_TAG_RELOCATED_AT "relocated-at"      /* reap: when the source was tagged relocated */
#define LB_TAG_TARGET_ZONE "target-zone"        /* reap: on a snapshot, the zone its copy goes to */

enum lb_vol_state {
        LB_VOL_UNMARKED,
        LB_VOL_DIRTY,
        LB_VOL_FLUSHED,
        LB_VOL_QUARANTINED,
        LB_VOL_RELOCATED,       /* its content was copied to another zone (relocated-to) */
        LB_VOL_UNKNOWN,         /* a state tag with a value lifeboat does not know */
        _LB_VOL_STATE_MAX,
};

/* "lifeboat" + "state" -> "lifeboat:state". */
int lb_tag_key(const struct lb_settings *s, const char *name, char *buf, size_t size);
/* The EC2 filter name of that tag: "lifeboat" + "group" -> "tag:lifeboat:group". */
int lb_tag_filter(const struct lb_settings *s, const char *name, char *buf, size_t size);
/* The value of PREFIX:name on the volume, or NULL. */
const char *lb_volume_lb_tag(const struct lb_settings *s, const struct lb_volume *v, const char *name);
/* The value of PREFIX:name on the snapshot, or NULL. */
const char *lb_snapshot_lb_tag(const struct lb_settings *s, const struct lb_snapshot *snap, const char *name);
/* The volume's PREFIX:state tag as a state: UNMARKED without one, UNKNOWN for a value lifeboat
 * does not know. */
enum lb_vol_state lb_volume_state(const struct lb_settings *s, const struct lb_volume *v);
/* "unmarked", "dirty", "flushed", "quarantined", "relocated", "unknown". */
const char *lb_vol_state_to_string(enum lb_vol_state st);

/*
 * The instance's own buffer volume, as boot and watch both find it: the volume
 * attached to this instance at LIFEBOAT_BUFFER_DEVICE (sdX and xvdX are the same
 * slot), and the query that finds its block device.
 */

/* The volume of l attached to instance_id at device, and (ret_att) that attachment; NULL if none. */
const struct lb_volume *lb_own_volume_find(const struct lb_volume_list *l, const char *instance_id,
                                           const char *device, const struct lb_attachment **ret_att);

/* The block device query of a volume attached at launch (no snapshot to compare with: a Xen
 * device is accepted by name and size). The query points into s, v and att. */
void lb_own_volume_query(const struct lb_settings *s, const struct lb_volume *v, const struct lb_attachment *att,
                         struct lb_blockdev_query *ret);
