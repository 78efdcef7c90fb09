/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lifeboat/aws/session.h"
#include "lifeboat/state/volume.h"

struct lb_context;
struct lb_settings;
struct lb_volume;
struct lb_volume_list;

/*
 * lifeboat reap: the group's batch job. Deletes flushed volumes that nobody
 * needs any more and reports the ones that need a human. The decisions are
 * a pure function of (volumes, settings, options, now): lb_reap_classify()
 * and lb_reap_plan(); lb_reap_run() adds the EC2 calls. agent/cmd-reap.c
 * prints the report.
 */

/*
 * PREFIX:available-since (ISO 8601 UTC): written by reap the first time it
 * sees a dirty volume available, removed when it sees the volume in use
 * again. EC2 keeps no "detached at" time, so this is how reap measures how
 * long a dirty volume has waited for recovery.
 */

#define LB_REAP_DEFAULT_MIN_AGE_MS (10u * 60u * 1000u)
#define LB_REAP_DEFAULT_STRANDED_AFTER_MS (60u * 60u * 1000u)

struct lb_reap_options {
        const char *availability_zone;  /* NULL: the whole region */
        bool this_az;                   /* the zone of the instance it runs on (IMDS), not availability_zone */
        bool metrics;                   /* also open CloudWatch: the report's session publishes the metrics */
        uint64_t min_age_ms;            /* flushed (and unused) volumes younger than this are kept */
        uint64_t stranded_after_ms;     /* dirty volumes available longer than this are stranded */
        bool delete_unused;             /* also delete unmarked volumes older than min_age_ms */
        bool dry_run;                   /* plan only: no CreateTags, DeleteTags, DeleteVolume, no
                                         * snapshot or volume created or deleted */
        bool relocate;                  /* move stranded volumes to a zone where the group runs
                                         * (LIFEBOAT_RELOCATE, --relocate) */
};

/* What the plan says about one volume. */
enum lb_reap_verdict {
        LB_REAP_DELETE,         /* flushed (or unused with delete_unused), available, old enough */
        LB_REAP_KEEP,           /* left alone; the reason says why */
        LB_REAP_STRANDED,       /* dirty and available longer than stranded_after_ms: needs a human */
        LB_REAP_QUARANTINED,    /* tagged quarantined: needs a human */
        LB_REAP_UNUSED,         /* no state tag (never used) and not deleted */
        LB_REAP_RELOCATE,       /* stranded (or already being moved): reap moves it to a zone where
                                 * the group runs; item.reloc says how far it is */
        _LB_REAP_VERDICT_MAX,
};

/* What the plan does with the available-since tag. */
enum lb_reap_mark {
        LB_REAP_MARK_NONE,
        LB_REAP_MARK_SET,       /* dirty and available, no valid mark yet: record "now" */
        LB_REAP_MARK_CLEAR,     /* in use (again): the mark no longer holds */
};

/* What happened to a LB_REAP_DELETE volume. */
enum lb_reap_outcome {
        LB_REAP_PENDING,        /* not attempted (dry run, or not a deletion) */
        LB_REAP_DELETED,
        LB_REAP_SKIPPED,        /* attached, changed or gone between describe and delete */
        LB_REAP_FAILED,         /* throttled past retries or another error: still there */
};

/*
 * Relocation: a stranded dirty volume (the source) in a zone where no instance of the group
 * runs is copied, through a snapshot, to a zone where the group's volumes are in use. Each run
 * advances each relocation by what is ready; the state is in tags (lifeboat/state/volume.h),
 * so any reaper continues what another started. The step a relocation was found at:
 */
enum lb_reloc_step {
        LB_RELOC_NONE,
        LB_RELOC_START,                 /* no usable snapshot yet: CreateSnapshot */
        LB_RELOC_WAIT_SNAPSHOT,         /* the snapshot is pending */
        LB_RELOC_COPY,                  /* the snapshot is completed: CreateVolume in the target zone */
        LB_RELOC_WAIT_COPY,             /* the copy is being created */
        LB_RELOC_MARK,                  /* the copy is available: tag the source relocated, then
                                         * delete the snapshots */
        LB_RELOC_CLEANUP,               /* finished or abandoned: delete the snapshots left */
        _LB_RELOC_STEP_MAX,
};

/* "start", "wait-for-snapshot", "copy", "wait-for-copy", "mark-source", "delete-snapshots";
 * NULL for LB_RELOC_NONE and out of range. */
const char *lb_reloc_step_to_string(enum lb_reloc_step step);

/* One volume's relocation: what the plan found, and what this run did. */
struct lb_reap_relocation {
        enum lb_reloc_step step;
        char target_zone[32];
        char snapshot_id[32];           /* the snapshot the copy is (to be) made from */
        char snapshot_state[16];
        char snapshot_progress[16];
        char copy_id[32];               /* a copy, or (relocated sources) the relocated-to tag */
        char source_id[32];             /* a copy: the volume it was made from (relocated-from) */
        char copy_state[16];
        bool started;                   /* this run created the snapshot */
        bool copied;                    /* this run created the copy */
        bool marked;                    /* this run tagged the source relocated */
        unsigned snapshots_deleted;     /* by this run */
        bool failed;                    /* a step failed (error says why) */
        char error[256];
};

struct lb_reap_item {
        char volume_id[32];
        char availability_zone[32];
        char status[16];                /* EC2 status: available, in-use, ... */
        enum lb_vol_state state;        /* lifeboat state tag */
        enum lb_reap_verdict verdict;
        char reason[256];               /* for humans: why kept, stranded, quarantined, deleted */
        char since[40];                 /* what the age counts from (flushed-at, available-since,
                                         * createTime) as ISO 8601; "" when it does not apply */
        int64_t age_s;                  /* now - since; -1 when since is "" */
        enum lb_reap_mark mark;
        bool mark_done;                 /* the tag change was made */
        bool mark_failed;               /* EC2 refused the tag change (error says why) */
        enum lb_reap_outcome outcome;
        char error[256];                /* SKIPPED/FAILED deletion or failed tag change: what EC2 said */
        struct lb_reap_relocation reloc; /* step LB_RELOC_NONE unless relocation touches it */
        bool needs_human;               /* kept, and nothing lifeboat does will ever move it on (a
                                         * relocated source without a verifiable copy, a copy in
                                         * error): reported as stranded, so the alarm fires */
};

struct lb_reap_plan {
        struct lb_reap_item *items;
        size_t n;
};

void lb_reap_plan_done(struct lb_reap_plan *p);

/* Classifies one volume of the group (pure). */
int lb_reap_classify(const struct lb_settings *s, const struct lb_reap_options *o, const struct lb_volume *v,
                     time_t now, struct lb_reap_item *ret);
/* Classifies every volume (pure); items are sorted by zone, then volume id. */
int lb_reap_plan(const struct lb_settings *s, const struct lb_reap_options *o, const struct lb_volume_list *vols,
                 time_t now, struct lb_reap_plan *ret);
/* A relocated volume is deleted only while its copy exists: every deletion of a relocated
 * volume whose relocated-to volume is not in world (the group's volumes, all zones; NULL when
 * they could not be described) with relocated-from naming it, becomes "kept"; and so, to keep
 * that possible, does every deletion of a copy whose source is still there (pure). */
void lb_reap_check_copies(const struct lb_settings *s, const struct lb_volume_list *world, struct lb_reap_plan *p);

/* The category a report shows an item under: "deleted", "would-delete", "skipped", "failed",
 * "kept", "stranded", "quarantined", "unused", "relocating". */
enum lb_reap_category {
        LB_REAP_CAT_DELETED,
        LB_REAP_CAT_WOULD_DELETE,
        LB_REAP_CAT_SKIPPED,
        LB_REAP_CAT_FAILED,
        LB_REAP_CAT_KEPT,
        LB_REAP_CAT_STRANDED,
        LB_REAP_CAT_QUARANTINED,
        LB_REAP_CAT_UNUSED,
        LB_REAP_CAT_RELOCATING,
        _LB_REAP_CAT_MAX,
};
/* The category of an item, by its verdict and (for deletions) its outcome. A relocation that
 * could not even start leaves the volume "stranded". */
enum lb_reap_category lb_reap_item_category(const struct lb_reap_item *it);
/* The names above; "unknown" out of range. */
const char *lb_reap_category_to_string(enum lb_reap_category c);

/* The exit code of a finished run: LB_EXIT_ATTENTION when stranded or quarantined volumes
 * exist, else LB_EXIT_PARTIAL when a deletion, tag change or relocation step failed, else
 * LB_EXIT_OK. */
int lb_reap_exit_code(const struct lb_reap_plan *p);

/* What the relocations of a run came to (a metrics module can publish these). */
struct lb_reap_relocation_counts {
        unsigned started;               /* snapshots created */
        unsigned waiting_for_snapshot;  /* snapshots still pending */
        unsigned copied;                /* copies created */
        unsigned waiting_for_copy;      /* copies still being created */
        unsigned source_marked;         /* sources tagged relocated */
        unsigned snapshots_deleted;
        unsigned nowhere_to_go;         /* stranded, and no zone where the group runs */
        unsigned failed;                /* steps that failed */
};

struct lb_reap_report {
        bool dry_run;
        bool relocate;                  /* relocation was on */
        char region[32];
        char availability_zone[32];     /* the zone looked at; "" = the whole region */
        time_t now;                     /* the time the plan was made at */
        struct lb_reap_plan plan;
        bool interrupted;               /* SIGTERM/SIGINT stopped the deletions */
        struct lb_reap_relocation_counts relocations;
        unsigned ec2_requests;
        uint64_t elapsed_ms;
        /* The session the run used, handed over once the plan is made so that what comes after
         * the run (publishing the metrics) needs no second one; lb_reap_report_done() closes it. */
        struct lb_aws aws;
};

void lb_reap_report_done(struct lb_reap_report *r);
/* lb_reap_exit_code() of the plan, or LB_EXIT_PARTIAL when only a relocation step outside the
 * items failed (DescribeSnapshots, a snapshot whose source is gone). */
int lb_reap_report_exit_code(const struct lb_reap_report *r);

/*
 * Runs reap: one paginated DescribeVolumes of the group (in the zone when
 * given, or in this instance's with this_az), the plan, the available-since
 * marks, the relocation steps (with o->relocate: the group's snapshots and, with a
 * zone, the group's volumes in the whole region are described too), then the
 * deletions, each batch re-described right before DeleteVolume. Returns 0 when the plan was made
 * (check the items for failures), or a negative errno when AWS could not be
 * used for the describe (the report then has no items).
 */
int lb_reap_run(struct lb_context *ctx, const struct lb_reap_options *o, struct lb_reap_report *report);
