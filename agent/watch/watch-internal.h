/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * lifeboat watch, private to agent/watch*.c: the daemon's state (struct watch)
 * and the calls between its modules. The public API is include/lifeboat/watch.h.
 *
 *   watch.c          the loop, signals, the stop, watch.json, lb_watch_run()
 *   watch-notice.c   IMDS notices (spot, ASG lifecycle, rebalance) and deadlines
 *   watch-own.c      the own buffer volume: flush requests, scans, marker, tags
 *   watch-release.c  the recovered volumes of recovered.json: settle and release
 *   watch-tag.c      the state tags watch writes (flushed, dirty)
 *   watch-backup.c   fluentd's backup directory: chunks it could not deliver
 *   watch-state.c    the state file watch.json
 */

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "lifeboat/aws/imds.h"
#include "lifeboat/aws/session.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/disk/blockdev.h"
#include "lifeboat/disk/chunks.h"
#include "lifeboat/state/manifest.h"
#include "lifeboat/watch/watch.h"

/* What watch keeps about a recovered volume besides its public state. */
struct rec_rt {
        uint64_t empty_since_ms;        /* CLOCK_MONOTONIC; 0 = not empty */
        bool snippet_removed;
        bool unmounted;
        bool detached;
        bool warned;                    /* a retried step was reported once */
};

struct watch {
        struct lb_context *ctx;
        const struct lb_settings *s;
        const struct lb_watch_options *opts;
        struct lb_aws aws;
        const char *self;
        struct lb_chunk_matcher matcher;
        struct lb_watch_state st;
        struct rec_rt *rt;              /* parallel to st.recovered */
        char *written;                  /* the text last written to watch.json */
        bool state_write_failed;
        char key_state[160], key_flushed_at[160];

        /* the own buffer volume */
        struct lb_blockdev dev;
        uint64_t next_identify_ms;
        bool own_scan_failed;
        bool marker_failed;
        bool not_mounted_reported;
        uint64_t last_scan_files, last_scan_bytes;
        uint64_t last_progress_ms;

        /* the end */
        uint64_t deadline_ms;           /* CLOCK_MONOTONIC; UINT64_MAX = none */
        uint64_t last_flush_ms;
        bool flush_sent_this_cycle;
        bool rpc_failing;
        bool fluentd_gone;              /* the last flush request found nobody listening */
        bool signalled;
        bool give_up;                   /* a second signal: stop waiting */

        /* notices already reacted to */
        struct lb_spot_notice spot;
        char asg_state[32];
        bool asg_known;
        time_t rebalance_time;
        unsigned imds_failures;

        bool manifest_failed;
        bool tag_failing;               /* CreateTags failed last time: warned once */
        bool own_dirty_pending;         /* the own volume needs state=dirty and does not have it yet */
        bool own_unmarked;              /* ... because it had no state tag at all (not: flushed over chunks) */
        time_t started_at;
};

/* ---- watch-notice.c ---- */

/* Records a notice in the state (the first LB_WATCH_MAX_NOTICES only). */
void watch_add_notice(struct watch *w, enum lb_watch_trigger t, const char *detail, time_t when);
/* A spot notice, ASG Terminated or a signal: drain the own buffer volume by the deadline.
 * what is logged; short_what names the flush request. */
void watch_begin_end(struct watch *w, enum lb_watch_trigger t, time_t notice_time, const char *what,
                     const char *short_what);
/* One poll of the three IMDS notices; a new one is acted on at once. */
void watch_poll_imds(struct watch *w);

/* ---- watch-own.c ---- */

/* Asks fluentd to flush its buffers, at most once a cycle; repeat: logged at debug level only. */
void watch_request_flush(struct watch *w, const char *why, bool repeat);
/* Identifies the own buffer volume while its state is UNKNOWN (retried every
 * LB_WATCH_IDENTIFY_RETRY_MS). */
void watch_own_identify(struct watch *w);
/* Scans the own buffer volume when there is something to decide, and tags it. */
void watch_own_check(struct watch *w);

/* ---- watch-release.c ---- */

/* Follows the volumes of recovered.json and releases each once it stays empty. */
void watch_recovered_check(struct watch *w);

/* ---- watch-tag.c ---- */

/* Fills w->key_state and w->key_flushed_at from the settings: -EINVAL when they do not fit. */
int watch_tag_keys_init(struct watch *w);
/* Tags volume_id state=flushed with flushed-at=when, or state=dirty (dropping flushed-at).
 * A failure is warned about once until a CreateTags works again. */
int watch_tag_volume(struct watch *w, const char *volume_id, bool flushed, time_t when);

/* ---- watch-backup.c ---- */

/* Counts the regular files in fluentd's backup directory whose path below it contains needle
 * (NULL: any) and whose mtime is at or after newer_than (0: any). 0 files when the directory
 * does not exist, -EOPNOTSUPP when none is configured. */
int watch_count_backup(const struct watch *w, const char *needle, time_t newer_than, uint64_t *ret);
/* Warns when files appeared in the backup directory since watch started; updates st.backup_files. */
void watch_check_backup_since_start(struct watch *w);
