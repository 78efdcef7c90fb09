/* SPDX-License-Identifier: MIT */
#pragma once

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lifeboat/basic/macro.h"
#include "lifeboat/state/manifest.h"

struct lb_context;
struct lb_manifest;

/*
 * lifeboat watch: the daemon half. It polls IMDS for the end of this
 * instance (spot instance-action, ASG target lifecycle state Terminated,
 * SIGTERM) and then has fluentd flush, confirms on disk that no chunk file is
 * left on the own buffer volume, writes a marker file and tags the volume
 * flushed; a chunk that shows up again turns the tag back to dirty at once.
 * A rebalance recommendation only asks for a flush. Independently it drains
 * the volumes boot recovered (recovered.json): once one has held no chunk
 * file for LIFEBOAT_SETTLE it is tagged flushed, its fluentd snippet removed,
 * unmounted, detached and dropped from the manifest.
 *
 * The logic lives here; agent/cmd-watch.c parses the options. Every change
 * of the state is written atomically to LIFEBOAT_RUN_DIR/watch.json, which
 * "lifeboat status" reads.
 */

#define LB_WATCH_STATE_FILE "watch.json"
#define LB_WATCH_STATE_VERSION 1
#define LB_WATCH_STATE_MAX_BYTES (1024u * 1024u)
/* The marker written on the drained own buffer volume (JSON: time, instance, volume).
 * Its name must not match LIFEBOAT_CHUNK_PATTERN: watch refuses to start when it does. */
#define LB_WATCH_MARKER ".lifeboat-flushed"
/* While draining, fluentd is asked to flush again this often (until the deadline). */
#define LB_WATCH_FLUSH_REPEAT_MS 5000u
/* Looking the own volume up again after a failure (EC2 unreachable, not mounted yet). */
#define LB_WATCH_IDENTIFY_RETRY_MS 10000u
#define LB_WATCH_MAX_NOTICES 16

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
        _LB_WATCH_REC_STATE_MAX,
};

/* The names used in watch.json and by "lifeboat status" ("spot", "draining", ...); "unknown"
 * out of range. The parsers return -EINVAL for a name they do not know. */
const char *lb_watch_trigger_to_string(enum lb_watch_trigger t);
const char *lb_watch_own_state_to_string(enum lb_watch_own_state s);
const char *lb_watch_rec_state_to_string(enum lb_watch_rec_state s);
int lb_watch_own_state_from_string(const char *s, enum lb_watch_own_state *ret);
int lb_watch_rec_state_from_string(const char *s, enum lb_watch_rec_state *ret);

/* ---- pure decisions (unit tested) ---- */

/*
 * How long a flush may take from now, in ms. A spot notice: until its time
 * minus margin_ms, but never longer than timeout_ms (0 when that time is
 * already past). ASG Terminated and a signal: timeout_ms. A rebalance
 * recommendation has no deadline: UINT64_MAX.
 */
uint64_t lb_watch_flush_budget_ms(enum lb_watch_trigger t, time_t notice_time, uint64_t now_wall_ms,
                                  uint64_t timeout_ms, uint64_t margin_ms);

/*
 * The state the own volume should be in after a chunk scan: "ending" once a
 * spot notice, ASG Terminated or a signal was seen; "empty" when the scan
 * found no chunk file. A volume tagged flushed stays flushed while empty,
 * also before any notice (a restarted watch), and is dirty again as soon as
 * a chunk file shows up. NONE and UNKNOWN are kept: they have nothing to scan.
 */
enum lb_watch_own_state lb_watch_own_next(enum lb_watch_own_state cur, bool ending, bool past_deadline,
                                          bool empty);

/*
 * The next state of a recovered volume that is mounted and was just scanned
 * (chunk_files found), with *empty_since_ms (CLOCK_MONOTONIC ms, 0 = not
 * empty) updated. Returns DRAINING, SETTLING, or TAGGED when it is time to
 * release it (empty for at least settle_ms). TAGGED, RELEASED and MISSING
 * are not decided here.
 */
enum lb_watch_rec_state lb_watch_rec_next(uint64_t chunk_files, uint64_t now_ms, uint64_t settle_ms,
                                          uint64_t *empty_since_ms);

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
/* -EBADMSG for bad JSON, another version, or a missing or wrongly typed field. */
int lb_watch_state_parse(const char *buf, size_t len, struct lb_watch_state *ret);
/* "<run_dir>/watch.json" */
int lb_watch_state_path(const char *run_dir, char *buf, size_t size);
/* Loads <run_dir>/watch.json: -ENOENT when watch never ran. */
int lb_watch_state_load(const char *run_dir, struct lb_watch_state *ret);
/* The recovered volume volume_id of st (st may be NULL), or NULL. */
const struct lb_watch_recovered *lb_watch_state_find_recovered(const struct lb_watch_state *st, const char *volume_id);
/* Whether the process that wrote the state is still alive. */
bool lb_watch_state_running(const struct lb_watch_state *st);

/*
 * For "lifeboat status": a few lines of text about the watch state (st NULL:
 * watch never ran here) and the recovered volumes of the manifest m (may be
 * NULL), and the same as a JSON object {"running", "state", "recovered"}.
 */
int lb_watch_status_describe(const struct lb_watch_state *st, bool running, const struct lb_manifest *m,
                             char **ret_text);
int lb_watch_status_to_json(const struct lb_watch_state *st, bool running, const struct lb_manifest *m,
                            json_t **ret);

/* ---- running it ---- */

struct lb_watch_options {
        bool once;                      /* one check cycle, then return */
};

/*
 * Runs watch until SIGTERM/SIGINT (ctx->interrupted), or one cycle with
 * once. Returns 0 when the own buffer volume ended drained and tagged
 * flushed (or there is none, or with once nothing went wrong), 1 when it
 * ends still dirty (with once: a deadline passed undrained), or a negative
 * errno: -EINVAL for bad settings, -EBUSY when another watch runs, and what
 * lb_aws_open() returned when AWS is unreachable at start.
 */
int lb_watch_run(struct lb_context *ctx, const struct lb_watch_options *opts);
