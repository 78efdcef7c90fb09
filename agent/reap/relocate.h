/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <time.h>

#include "lifeboat/reap/reap.h"

struct lb_context;
struct lb_ec2;
struct lb_settings;
struct lb_snapshot_list;
struct lb_volume_list;

/*
 * Relocation, reap's step for stranded volumes (README, "Relocation"). A dirty volume that is
 * stranded in a zone where none of the group's volumes is in use (so no instance of the group
 * runs there) is moved to a zone where some are:
 *
 *   1. CreateSnapshot of the source, tagged group, relocated-from=<source>, target-zone=<zone>;
 *   2. once the snapshot is completed, CreateVolume from it in the target zone, same type,
 *      size and performance, tagged in the same call group, state=dirty, owner, fs-uuid,
 *      relocated-from=<source>, with a ClientToken derived from the source;
 *   3. once the copy is available: CreateTags on the source (state=relocated,
 *      relocated-to=<copy>, relocated-at=<now>), then DeleteSnapshot.
 *
 * Nothing blocks: each run does what is ready. The state is the tags, so a run killed after
 * any step leaves what the next run (of any reaper) finishes: the snapshot is found by its
 * tag, the copy by its tag and its ClientToken. CreateSnapshot has no ClientToken, so racing
 * reapers may make several snapshots of one source: every reaper keeps the same one (the
 * oldest; the one a copy was made from once there is a copy) and deletes the others, but never
 * a snapshot a copy is being created from. The source itself is deleted later by reap's
 * rules for relocated volumes (min-age, and only while its copy exists).
 *
 * The target zone is chosen once, when the snapshot is taken (the target-zone tag), so that
 * every reaper creates the copy in the same zone: the zone where most of the group's volumes
 * are in use, relocations spread over the zones in proportion to that.
 */

/* What relocation sees: every volume of the group in the region, and the group's snapshots. */
struct lb_reloc_world {
        const struct lb_volume_list *volumes;
        const struct lb_snapshot_list *snapshots;
};

/*
 * Decides (pure) what each item's relocation does next: stranded items that can move become
 * LB_REAP_RELOCATE with reloc.step and reloc.target_zone set; stranded items that cannot stay
 * stranded with the reason why (their zone has the group, or no zone has); items whose
 * relocation is over get LB_RELOC_CLEANUP when snapshots are left. Counts what waits and what
 * has nowhere to go.
 */
int lb_relocate_plan(const struct lb_settings *s, const struct lb_reloc_world *w, struct lb_reap_plan *p,
                     struct lb_reap_relocation_counts *counts);

/*
 * Runs the steps lb_relocate_plan() decided: the CreateSnapshot, CreateVolume and CreateTags
 * calls together, then the DeleteSnapshot calls. The items and counts say what was done and
 * what failed; returns 0, or -ENOMEM.
 */
int lb_relocate_apply(struct lb_context *ctx, struct lb_ec2 *ec2, const struct lb_reloc_world *w,
                      struct lb_reap_plan *p, time_t now, struct lb_reap_relocation_counts *counts);

/* The group's snapshots that relocations made (DescribeSnapshots of the group's tag and
 * relocated-from); logs why when it fails. Relocation's only describe of its own. */
int lb_relocate_describe_snapshots(struct lb_context *ctx, struct lb_ec2 *ec2, struct lb_snapshot_list *ret);

/* The ClientToken of the copy of source_id: the same for every reaper and every retry. */
int lb_relocate_client_token(const char *source_id, char *buf, size_t size);
