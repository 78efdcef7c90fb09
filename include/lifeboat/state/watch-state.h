/* SPDX-License-Identifier: MIT */
#pragma once

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lifeboat/basic/macro.h"
#include "lifeboat/basic/names.h"
#include "lifeboat/disk/mountns.h"

/*
 * LIFEBOAT_RUN_DIR/watch.json: what lifeboat watch is doing, written atomically by watch
 * whenever it changes and read by "lifeboat status". The schema is in the README.
 */

#define LB_WATCH_STATE_FILE "watch.json"
#define LB_WATCH_STATE_VERSION 1
#define LB_WATCH_STATE_MAX_BYTES (1024u * 1024u)
#define LB_WATCH_MAX_NOTICES 16
#define LB_WATCH_MAX_HOLDERS 8          /* busy holders listed per recovered volume */
/* Recovered volumes one watch.json lists: more than one watch ever follows (each boot recovers
 * at most LIFEBOAT_MAX_RECOVER, 64, and watch forgets the oldest released ones first). */
#define LB_WATCH_MAX_RECOVERED 256


/* What told watch the end is coming. */
enum lb_watch_trigger {
        LB_WATCH_TRIGGER_SPOT,          /* spot/instance-action: its time is the interruption */
        LB_WATCH_TRIGGER_ASG,           /* autoscaling/target-lifecycle-state = Terminated */
        LB_WATCH_TRIGGER_REBALANCE,     /* events/recommendations/rebalance: flush only */
        LB_WATCH_TRIGGER_SIGNAL,        /* SIGTERM or SIGINT: systemd stopping the unit */
        _LB_WATCH_TRIGGER_MAX,
};

/* The own buffer volume, as watch sees it (and as its tags say). */
enum lb_watch_own_state {
        LB_WATCH_OWN_NONE,              /* LIFEBOAT_BUFFER_DEVICE unset: recovery only */
        LB_WATCH_OWN_UNKNOWN,           /* configured, but not identified or not mounted yet */
        LB_WATCH_OWN_DIRTY,             /* in use, tagged dirty; no end in sight */
        LB_WATCH_OWN_DRAINING,          /* the end is coming: flush asked, chunk files left */
        LB_WATCH_OWN_FLUSHED,           /* no chunk file: marker written, tagged flushed */
        LB_WATCH_OWN_UNDRAINED,         /* the deadline passed with chunk files left: dirty */
        _LB_WATCH_OWN_STATE_MAX,
};

/* A recovered volume on its way back. */
enum lb_watch_rec_state {
        LB_WATCH_REC_DRAINING,          /* chunk files left: fluentd is shipping them */
        LB_WATCH_REC_SETTLING,          /* empty; released once it stays empty for LIFEBOAT_SETTLE */
        LB_WATCH_REC_TAGGED,            /* tagged flushed, snippet removed; unmount or detach pending */
        LB_WATCH_REC_RELEASED,          /* unmounted, detached, dropped from the manifest */
        LB_WATCH_REC_MISSING,           /* not mounted where the manifest says: never tagged */
        LB_WATCH_REC_UNCONFIRMED,       /* the scan cannot tell (a tree deeper than the scanner's
                                         * limit, an unreadable directory): never tagged; reason says why */
        _LB_WATCH_REC_STATE_MAX,
};

/* The Auto Scaling termination lifecycle hook watch holds while it drains (LIFEBOAT_LIFECYCLE_HOOK). */
enum lb_watch_hook_state {
        LB_WATCH_HOOK_IDLE,             /* no scale-in of this instance yet */
        LB_WATCH_HOOK_HOLDING,          /* the instance waits in Terminating:Wait; heartbeats keep it there */
        LB_WATCH_HOOK_COMPLETED,        /* CompleteLifecycleAction CONTINUE was answered */
        LB_WATCH_HOOK_GONE,             /* no action was waiting (any more): it timed out, or someone else completed it */
        LB_WATCH_HOOK_LEFT,             /* watch stopped undrained without completing: the hook's own timeout decides */
        _LB_WATCH_HOOK_STATE_MAX,
};

/* The names used in watch.json and by "lifeboat status" ("spot", "draining", ...); "unknown"
 * out of range. The parsers return -EINVAL for a name they do not know. */
const char *lb_watch_trigger_to_string(enum lb_watch_trigger t);
const char *lb_watch_own_state_to_string(enum lb_watch_own_state s);
const char *lb_watch_rec_state_to_string(enum lb_watch_rec_state s);
int lb_watch_own_state_from_string(const char *s, enum lb_watch_own_state *ret);
int lb_watch_rec_state_from_string(const char *s, enum lb_watch_rec_state *ret);
const char *lb_watch_hook_state_to_string(enum lb_watch_hook_state s);
int lb_watch_hook_state_from_string(const char *s, enum lb_watch_hook_state *ret);

/* ---- the state file ---- */

struct lb_watch_notice {
        enum lb_watch_trigger trigger;
        char detail[32];                /* spot: terminate|stop|hibernate; asg: the state; signal: its name */
        time_t time;                    /* spot: interruption time; rebalance: noticeTime; else 0 */
        time_t seen_at;
};

struct lb_watch_own {
        enum lb_watch_own_state state;
        char volume_id[32];             /* "" until identified */
        char mount_path[PATH_MAX];
        uint64_t chunk_files;           /* at the last scan */
        uint64_t chunk_bytes;
        time_t deadline;                /* wall clock; 0 = none */
        time_t flushed_at;              /* when it was last tagged flushed; 0 = never */
        unsigned flush_requests;        /* flushBuffers sent */
        char reason[256];               /* UNKNOWN: why */
};

struct lb_watch_recovered {
        char volume_id[32];
        char mount_path[PATH_MAX];
        enum lb_watch_rec_state state;
        uint64_t chunk_files;
        uint64_t chunk_bytes;
        time_t empty_since;             /* wall clock; 0 = holds chunks */
        uint64_t backup_files;          /* in fluentd's backup directory, naming this volume */
        time_t released_at;
        /* TAGGED but still in use in some mount namespace: who holds a file on it (the first
         * LB_WATCH_MAX_HOLDERS), and how many do; nothing is killed, the release is retried. */
        struct lb_holder holders[LB_WATCH_MAX_HOLDERS];
        size_t n_holders;
        uint64_t holders_total;
        char reason[256];               /* UNCONFIRMED: why; "" otherwise (null in watch.json) */
};

struct lb_watch_hook {
        char name[LB_LIFECYCLE_HOOK_NAME_MAX + 1];
        char group[LB_ASG_NAME_MAX + 1];        /* "" until known */
        enum lb_watch_hook_state state;
        uint64_t heartbeat_timeout_s;           /* the hook's; 0 = not known */
        uint64_t global_timeout_s;              /* 0 = not known */
        char default_result[16];                /* CONTINUE | ABANDON; "" = not known */
        time_t waiting_since;                   /* when Terminated was first seen; 0 = not yet */
        unsigned heartbeats;                    /* RecordLifecycleActionHeartbeat calls answered */
        time_t last_heartbeat;
        time_t completed_at;                    /* CompleteLifecycleAction CONTINUE answered */
        char completed_because[16];             /* "drained" or "deadline" */
        char reason[256];                       /* what is not known and why, the last failure */
};

struct lb_watch_state {
        long pid;
        char instance_id[32];
        time_t started_at;
        bool ending;                    /* a spot notice, ASG Terminated or a signal was seen */
        bool imds_ok;                   /* the last IMDS poll worked */
        time_t imds_failing_since;      /* 0 = not failing */
        struct lb_watch_notice notices[LB_WATCH_MAX_NOTICES];
        size_t n_notices;
        struct lb_watch_own own;
        struct lb_watch_recovered *recovered;
        size_t n_recovered;
        uint64_t backup_files;          /* files newer than the start of watch in fluentd's backup directory */
        bool have_hook;                 /* a lifecycle hook is configured: hook is filled in */
        struct lb_watch_hook hook;
};

void lb_watch_state_done(struct lb_watch_state *st);
static inline void lb_watch_state_donep(struct lb_watch_state *st) {
        lb_watch_state_done(st);
}
#define _cleanup_watch_state_ _cleanup_(lb_watch_state_donep)

/* The document (the schema is in the README) as a JSON object, and as text (pretty-printed,
 * trailing newline). */
int lb_watch_state_to_json(const struct lb_watch_state *st, json_t **ret);
int lb_watch_state_format(const struct lb_watch_state *st, char **ret_text);
/* -EBADMSG for bad JSON, another version, a missing or wrongly typed field, or more than
 * LB_WATCH_MAX_RECOVERED recovered volumes; memory grows with the entries that are valid. */
int lb_watch_state_parse(const char *buf, size_t len, struct lb_watch_state *ret);
/* "<run_dir>/watch.json" */
int lb_watch_state_path(const char *run_dir, char *buf, size_t size);
/* Loads <run_dir>/watch.json: -ENOENT when watch never ran. */
int lb_watch_state_load(const char *run_dir, struct lb_watch_state *ret);
/* The recovered volume volume_id of st (st may be NULL), or NULL. */
const struct lb_watch_recovered *lb_watch_state_find_recovered(const struct lb_watch_state *st, const char *volume_id);
/* Whether the process that wrote the state is still alive. */
bool lb_watch_state_running(const struct lb_watch_state *st);
