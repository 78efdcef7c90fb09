/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * lifeboat watch, private to agent/watch/: the daemon's state (struct watch).
 * The public API is include/lifeboat/watch/watch.h.
 *
 *   watch.c     the loop, signals, the stop, watch.json, lb_watch_run()
 *   notice.c    IMDS notices (spot, ASG lifecycle, rebalance) and deadlines
 *   own.c       the own buffer volume: flush requests, scans, marker, tags
 *   release.c   the recovered volumes of recovered.json: settle and release
 *   tag.c       the state tags watch writes (flushed, dirty)
 *   lifecycle.c the Auto Scaling termination lifecycle hook held while draining
 *   backup.c    fluentd's backup directory: chunks it could not deliver
 *
 * This header holds the daemon's state (types only); each module's functions are in its own
 * header beside it. The state file is lifeboat/state/watch-state.h.
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
#include "lifeboat/state/watch-state.h"
#include "lifeboat/watch/watch.h"

/* What watch keeps about a recovered volume besides its public state. */
struct rec_rt {
        uint64_t empty_since_ms;        /* CLOCK_MONOTONIC; 0 = not empty */
        bool snippet_removed;
        bool unmounted;
        bool detached;
        bool warned;                    /* a retried step was reported once */
        bool tag_unknown;               /* in the manifest when watch started: an earlier watch may
                                         * have tagged it flushed before it stopped */
};

/* What watch keeps about the lifecycle hook besides its public state (st.hook). */
struct hook_rt {
        bool group_known;               /* st.hook.group is this instance's group */
        bool described;                 /* the hook's timeouts are known, or cannot be */
        bool no_group;                  /* in no group: not asked again before a scale-in */
        uint64_t next_resolve_ms;       /* CLOCK_MONOTONIC: the next lookup of the group or the hook */
        uint64_t resolve_backoff_ms;
        uint64_t next_call_ms;          /* CLOCK_MONOTONIC: the next heartbeat or completion after a failed one */
        uint64_t heartbeat_timeout_ms;  /* the hook's, or the least a hook may have while not known */
        uint64_t expires_ms;            /* CLOCK_MONOTONIC: the wait ends without a heartbeat; 0 = not held yet */
        uint64_t waiting_since_ms;      /* wall clock: when this watch saw the scale-in; 0 = not (st.hook has it to the second) */
        uint64_t limit_ms;              /* CLOCK_MONOTONIC: the notices' deadline, without a signal's own budget:
                                         * the hook is never held past it; UINT64_MAX = none */
        bool failing;                   /* the last call failed: warned once */
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
        bool manifest_merged;           /* the manifest was read once: later entries are boot's, dirty */
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

        /* the service manager (sd_notify) */
        uint64_t watchdog_usec;         /* 0 = no watchdog */
        uint64_t last_ping_ms;
        bool ready_sent;
        char status_sent[320];

        bool manifest_failed;
        bool tag_failing;               /* CreateTags failed last time: warned once */
        bool own_dirty_pending;         /* the own volume needs state=dirty and does not have it yet */
        bool own_unmarked;              /* ... because it had no state tag at all (not: flushed over chunks) */
        time_t started_at;
        struct hook_rt hook;            /* LIFEBOAT_LIFECYCLE_HOOK */
};
