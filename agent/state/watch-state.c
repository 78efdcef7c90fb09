/* SPDX-License-Identifier: MIT */
/*
 * The state lifeboat watch keeps in LIFEBOAT_RUN_DIR/watch.json: its names,
 * the document (formatting and parsing), and what "lifeboat status" makes of
 * it. The daemon itself is in watch.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>

#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/json.h"
#include "lifeboat/basic/names.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/state/manifest.h"
#include "lifeboat/state/watch-state.h"

/* ---- names ---- */

static const char *const trigger_names[_LB_WATCH_TRIGGER_MAX] = {
        [LB_WATCH_TRIGGER_SPOT] = "spot",
        [LB_WATCH_TRIGGER_ASG] = "asg",
        [LB_WATCH_TRIGGER_REBALANCE] = "rebalance",
        [LB_WATCH_TRIGGER_SIGNAL] = "signal",
};

static const char *const own_state_names[_LB_WATCH_OWN_STATE_MAX] = {
        [LB_WATCH_OWN_NONE] = "none",
        [LB_WATCH_OWN_UNKNOWN] = "unknown",
        [LB_WATCH_OWN_DIRTY] = "dirty",
        [LB_WATCH_OWN_DRAINING] = "draining",
        [LB_WATCH_OWN_FLUSHED] = "flushed",
        [LB_WATCH_OWN_UNDRAINED] = "undrained",
};

static const char *const rec_state_names[_LB_WATCH_REC_STATE_MAX] = {
        [LB_WATCH_REC_DRAINING] = "draining",
        [LB_WATCH_REC_SETTLING] = "settling",
        [LB_WATCH_REC_TAGGED] = "tagged",
        [LB_WATCH_REC_RELEASED] = "released",
        [LB_WATCH_REC_MISSING] = "missing",
        [LB_WATCH_REC_UNCONFIRMED] = "unconfirmed",
};

static const char *const hook_state_names[_LB_WATCH_HOOK_STATE_MAX] = {
        [LB_WATCH_HOOK_IDLE] = "idle",
        [LB_WATCH_HOOK_HOLDING] = "holding",
        [LB_WATCH_HOOK_COMPLETED] = "completed",
        [LB_WATCH_HOOK_GONE] = "gone",
        [LB_WATCH_HOOK_LEFT] = "left",
};

const char *lb_watch_trigger_to_string(enum lb_watch_trigger t) {
        return t >= 0 && t < _LB_WATCH_TRIGGER_MAX ? trigger_names[t] : "unknown";
}

const char *lb_watch_own_state_to_string(enum lb_watch_own_state s) {
        return s >= 0 && s < _LB_WATCH_OWN_STATE_MAX ? own_state_names[s] : "unknown";
}

const char *lb_watch_rec_state_to_string(enum lb_watch_rec_state s) {
        return s >= 0 && s < _LB_WATCH_REC_STATE_MAX ? rec_state_names[s] : "unknown";
}

const char *lb_watch_hook_state_to_string(enum lb_watch_hook_state s) {
        return s >= 0 && s < _LB_WATCH_HOOK_STATE_MAX ? hook_state_names[s] : "unknown";
}

static int name_lookup(const char *const *names, int n, const char *s) {
        for (int i = 0; s && i < n; i++)
                if (streq(names[i], s))
                        return i;
        return -EINVAL;
}

int lb_watch_own_state_from_string(const char *s, enum lb_watch_own_state *ret) {
        int i = name_lookup(own_state_names, _LB_WATCH_OWN_STATE_MAX, s);
        if (i < 0)
                return i;
        *ret = (enum lb_watch_own_state) i;
        return 0;
}

int lb_watch_rec_state_from_string(const char *s, enum lb_watch_rec_state *ret) {
        int i = name_lookup(rec_state_names, _LB_WATCH_REC_STATE_MAX, s);
        if (i < 0)
                return i;
        *ret = (enum lb_watch_rec_state) i;
        return 0;
}

int lb_watch_hook_state_from_string(const char *s, enum lb_watch_hook_state *ret) {
        int i = name_lookup(hook_state_names, _LB_WATCH_HOOK_STATE_MAX, s);
        if (i < 0)
                return i;
        *ret = (enum lb_watch_hook_state) i;
        return 0;
}

static int trigger_from_string(const char *s, enum lb_watch_trigger *ret) {
        int i = name_lookup(trigger_names, _LB_WATCH_TRIGGER_MAX, s);
        if (i < 0)
                return i;
        *ret = (enum lb_watch_trigger) i;
        return 0;
}

/* ---- the state document ---- */

void lb_watch_state_done(struct lb_watch_state *st) {
        free(st->recovered);
        st->recovered = NULL;
        st->n_recovered = 0;
}

static json_t *notice_json(const struct lb_watch_notice *n) {
        return json_pack("{s:s, s:o, s:o, s:o}", "trigger", lb_watch_trigger_to_string(n->trigger), "detail",
                         lb_json_string_or_null(n->detail), "time", lb_json_time_or_null(n->time), "seen_at",
                         lb_json_time_or_null(n->seen_at));
}

static json_t *own_json(const struct lb_watch_own *o) {
        return json_pack("{s:s, s:o, s:s, s:I, s:I, s:o, s:o, s:I, s:o}", "state",
                         lb_watch_own_state_to_string(o->state), "volume_id", lb_json_string_or_null(o->volume_id),
                         "mount_path", o->mount_path, "chunk_files", (json_int_t) o->chunk_files, "chunk_bytes",
                         (json_int_t) o->chunk_bytes, "deadline", lb_json_time_or_null(o->deadline), "flushed_at",
                         lb_json_time_or_null(o->flushed_at), "flush_requests", (json_int_t) o->flush_requests, "reason",
                         lb_json_string_or_null(o->reason));
}

static json_t *holders_json(const struct lb_watch_recovered *r) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < r->n_holders; i++) {
                const struct lb_holder *h = &r->holders[i];
                if (json_array_append_new(a, json_pack("{s:I, s:s, s:I}", "pid", (json_int_t) h->pid, "comm", h->comm,
                                                       "mnt_ns", (json_int_t) h->ns)) < 0) {
                        json_decref(a);
                        return NULL;
                }
        }
        return a;
}

static json_t *recovered_json(const struct lb_watch_recovered *r) {
        return json_pack("{s:s, s:s, s:s, s:I, s:I, s:o, s:I, s:o, s:o, s:I, s:o}", "volume_id", r->volume_id,
                         "mount_path", r->mount_path, "state", lb_watch_rec_state_to_string(r->state), "chunk_files",
                         (json_int_t) r->chunk_files, "chunk_bytes", (json_int_t) r->chunk_bytes, "empty_since",
                         lb_json_time_or_null(r->empty_since), "backup_files", (json_int_t) r->backup_files, "released_at",
                         lb_json_time_or_null(r->released_at), "holders", holders_json(r), "holders_total",
                         (json_int_t) r->holders_total, "reason", lb_json_string_or_null(r->reason));
}

static json_t *uint_or_null(uint64_t v) {
        return v > 0 ? json_integer((json_int_t) v) : json_null();
}

/* The hook, or null when none is configured. */
static json_t *hook_json(const struct lb_watch_state *st) {
        if (!st->have_hook)
                return json_null();
        const struct lb_watch_hook *h = &st->hook;
        return json_pack("{s:s, s:o, s:s, s:o, s:o, s:o, s:o, s:I, s:o, s:o, s:o, s:o, s:o}", "name", h->name, "group",
                         lb_json_string_or_null(h->group), "state", lb_watch_hook_state_to_string(h->state),
                         "heartbeat_timeout_s", uint_or_null(h->heartbeat_timeout_s), "global_timeout_s",
                         uint_or_null(h->global_timeout_s), "default_result", lb_json_string_or_null(h->default_result),
                         "waiting_since", lb_json_time_or_null(h->waiting_since), "heartbeats", (json_int_t) h->heartbeats,
                         "last_heartbeat_at", lb_json_time_or_null(h->last_heartbeat), "completed_at",
                         lb_json_time_or_null(h->completed_at), "result",
                         lb_json_string_or_null(h->state == LB_WATCH_HOOK_COMPLETED ? "CONTINUE" : NULL),
                         "completed_because", lb_json_string_or_null(h->completed_because), "reason",
                         lb_json_string_or_null(h->reason));
}

int lb_watch_state_to_json(const struct lb_watch_state *st, json_t **ret) {
        _cleanup_(json_decrefp) json_t *notices = json_array();
        _cleanup_(json_decrefp) json_t *recovered = json_array();
        if (!notices || !recovered)
                return -ENOMEM;
        for (size_t i = 0; i < st->n_notices; i++)
                if (json_array_append_new(notices, notice_json(&st->notices[i])) < 0)
                        return -ENOMEM;
        for (size_t i = 0; i < st->n_recovered; i++)
                if (json_array_append_new(recovered, recovered_json(&st->recovered[i])) < 0)
                        return -ENOMEM;
        json_t *own = own_json(&st->own);
        if (!own)
                return -ENOMEM;
        json_t *root = json_pack("{s:i, s:I, s:s, s:o, s:b, s:b, s:o, s:I, s:O, s:o, s:O}", "version",
                                 LB_WATCH_STATE_VERSION, "pid", (json_int_t) st->pid, "instance_id",
                                 st->instance_id, "started_at", lb_json_time_or_null(st->started_at), "ending", st->ending,
                                 "imds_ok", st->imds_ok, "imds_failing_since", lb_json_time_or_null(st->imds_failing_since),
                                 "backup_files", (json_int_t) st->backup_files, "notices", notices, "own", own,
                                 "recovered", recovered);
        if (!root)
                return -ENOMEM;
        /* Added in version 1 as an optional key: readers that do not know it ignore it. */
        if (json_object_set_new(root, "lifecycle_hook", hook_json(st)) < 0) {
                json_decref(root);
                return -ENOMEM;
        }
        *ret = root;
        return 0;
}

int lb_watch_state_format(const struct lb_watch_state *st, char **ret_text) {
        _cleanup_(json_decrefp) json_t *root = NULL;
        int r = lb_watch_state_to_json(st, &root);
        if (r < 0)
                return r;
        return lb_json_dump_line(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER, ret_text);
}

/* ---- parsing ---- */

static int get_time(json_t *obj, const char *key, time_t *ret) {
        json_t *v = json_object_get(obj, key);
        if (!v || json_is_null(v)) {
                *ret = 0;
                return 0;
        }
        if (!json_is_string(v))
                return -EBADMSG;
        return lb_parse_iso8601(json_string_value(v), ret) < 0 ? -EBADMSG : 0;
}

static int get_uint(json_t *obj, const char *key, uint64_t *ret) {
        json_t *v = json_object_get(obj, key);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return -EBADMSG;
        *ret = (uint64_t) json_integer_value(v);
        return 0;
}

static int get_bool(json_t *obj, const char *key, bool *ret) {
        json_t *v = json_object_get(obj, key);
        if (!json_is_boolean(v))
                return -EBADMSG;
        *ret = json_is_true(v);
        return 0;
}

static int parse_notice(json_t *o, struct lb_watch_notice *ret) {
        struct lb_watch_notice n = { 0 };
        char trig[32];
        if (!json_is_object(o))
                return -EBADMSG;
        if (lb_json_get_string(o, "trigger", false, trig, sizeof trig) < 0 ||
            trigger_from_string(trig, &n.trigger) < 0 ||
            lb_json_get_string(o, "detail", true, n.detail, sizeof n.detail) < 0 ||
            get_time(o, "time", &n.time) < 0 || get_time(o, "seen_at", &n.seen_at) < 0)
                return -EBADMSG;
        *ret = n;
        return 0;
}

static int parse_own(json_t *o, struct lb_watch_own *ret) {
        struct lb_watch_own own = { 0 };
        char state[32];
        uint64_t requests;
        if (!json_is_object(o))
                return -EBADMSG;
        if (lb_json_get_string(o, "state", false, state, sizeof state) < 0 ||
            lb_watch_own_state_from_string(state, &own.state) < 0 ||
            lb_json_get_string(o, "volume_id", true, own.volume_id, sizeof own.volume_id) < 0 ||
            lb_json_get_string(o, "mount_path", false, own.mount_path, sizeof own.mount_path) < 0 ||
            get_uint(o, "chunk_files", &own.chunk_files) < 0 || get_uint(o, "chunk_bytes", &own.chunk_bytes) < 0 ||
            get_time(o, "deadline", &own.deadline) < 0 || get_time(o, "flushed_at", &own.flushed_at) < 0 ||
            get_uint(o, "flush_requests", &requests) < 0 || requests > UINT32_MAX ||
            lb_json_get_string(o, "reason", true, own.reason, sizeof own.reason) < 0)
                return -EBADMSG;
        if (!isempty(own.volume_id) && !lb_volume_id_valid(own.volume_id))
                return -EBADMSG;
        own.flush_requests = (unsigned) requests;
        *ret = own;
        return 0;
}

/* "holders" and "holders_total" came with the release through every mount namespace: a
 * watch.json of an older watch has neither. */
static int parse_holders(json_t *o, struct lb_watch_recovered *r) {
        json_t *a = json_object_get(o, "holders");
        if (!a)
                return 0;
        if (!json_is_array(a) || json_array_size(a) > LB_WATCH_MAX_HOLDERS ||
            get_uint(o, "holders_total", &r->holders_total) < 0 || r->holders_total < json_array_size(a))
                return -EBADMSG;
        for (size_t i = 0; i < json_array_size(a); i++) {
                json_t *h = json_array_get(a, i);
                uint64_t pid, ns;
                if (!json_is_object(h) || get_uint(h, "pid", &pid) < 0 || pid == 0 || pid > INT32_MAX ||
                    get_uint(h, "mnt_ns", &ns) < 0 ||
                    lb_json_get_string(h, "comm", false, r->holders[i].comm, sizeof r->holders[i].comm) < 0)
                        return -EBADMSG;
                r->holders[i].pid = (pid_t) pid;
                r->holders[i].ns = ns;
        }
        r->n_holders = json_array_size(a);
        return 0;
}

static int parse_recovered(json_t *o, struct lb_watch_recovered *ret) {
        struct lb_watch_recovered r = { 0 };
        char state[32];
        if (!json_is_object(o))
                return -EBADMSG;
        if (lb_json_get_string(o, "volume_id", false, r.volume_id, sizeof r.volume_id) < 0 ||
            !lb_volume_id_valid(r.volume_id) ||
            lb_json_get_string(o, "mount_path", false, r.mount_path, sizeof r.mount_path) < 0 ||
            lb_json_get_string(o, "state", false, state, sizeof state) < 0 ||
            lb_watch_rec_state_from_string(state, &r.state) < 0 || get_uint(o, "chunk_files", &r.chunk_files) < 0 ||
            get_uint(o, "chunk_bytes", &r.chunk_bytes) < 0 || get_time(o, "empty_since", &r.empty_since) < 0 ||
            get_uint(o, "backup_files", &r.backup_files) < 0 || get_time(o, "released_at", &r.released_at) < 0 ||
            parse_holders(o, &r) < 0 ||
            lb_json_get_string(o, "reason", true, r.reason, sizeof r.reason) < 0)
                return -EBADMSG;
        *ret = r;
        return 0;
}

static int get_uint_or_null(json_t *obj, const char *key, uint64_t *ret) {
        json_t *v = json_object_get(obj, key);
        if (!v || json_is_null(v)) {
                *ret = 0;
                return 0;
        }
        return get_uint(obj, key, ret);
}

/* "lifecycle_hook": absent (written before it existed) or null when no hook is configured. */
static int parse_hook(json_t *o, bool *ret_have, struct lb_watch_hook *ret) {
        if (!o || json_is_null(o)) {
                *ret_have = false;
                return 0;
        }
        struct lb_watch_hook h = { 0 };
        char state[32];
        uint64_t heartbeats;
        if (!json_is_object(o))
                return -EBADMSG;
        if (lb_json_get_string(o, "name", false, h.name, sizeof h.name) < 0 ||
            lb_json_get_string(o, "group", true, h.group, sizeof h.group) < 0 ||
            lb_json_get_string(o, "state", false, state, sizeof state) < 0 ||
            lb_watch_hook_state_from_string(state, &h.state) < 0 ||
            get_uint_or_null(o, "heartbeat_timeout_s", &h.heartbeat_timeout_s) < 0 ||
            get_uint_or_null(o, "global_timeout_s", &h.global_timeout_s) < 0 ||
            lb_json_get_string(o, "default_result", true, h.default_result, sizeof h.default_result) < 0 ||
            get_time(o, "waiting_since", &h.waiting_since) < 0 || get_uint(o, "heartbeats", &heartbeats) < 0 ||
            heartbeats > UINT32_MAX || get_time(o, "last_heartbeat_at", &h.last_heartbeat) < 0 ||
            get_time(o, "completed_at", &h.completed_at) < 0 ||
            lb_json_get_string(o, "completed_because", true, h.completed_because, sizeof h.completed_because) < 0 ||
            lb_json_get_string(o, "reason", true, h.reason, sizeof h.reason) < 0)
                return -EBADMSG;
        if (!lb_lifecycle_hook_name_valid(h.name) || (!isempty(h.group) && !lb_asg_name_valid(h.group)))
                return -EBADMSG;
        h.heartbeats = (unsigned) heartbeats;
        *ret = h;
        *ret_have = true;
        return 0;
}

int lb_watch_state_parse(const char *buf, size_t len, struct lb_watch_state *ret) {
        _cleanup_(json_decrefp) json_t *root = json_loadb(buf, len, 0, NULL);
        _cleanup_watch_state_ struct lb_watch_state st = { 0 };
        json_t *v;
        uint64_t pid;

        if (!json_is_object(root))
                return -EBADMSG;
        v = json_object_get(root, "version");
        if (!json_is_integer(v) || json_integer_value(v) != LB_WATCH_STATE_VERSION)
                return -EBADMSG;
        if (get_uint(root, "pid", &pid) < 0 || pid > INT32_MAX ||
            lb_json_get_string(root, "instance_id", false, st.instance_id, sizeof st.instance_id) < 0 ||
            get_time(root, "started_at", &st.started_at) < 0 || get_bool(root, "ending", &st.ending) < 0 ||
            get_bool(root, "imds_ok", &st.imds_ok) < 0 ||
            get_time(root, "imds_failing_since", &st.imds_failing_since) < 0 ||
            get_uint(root, "backup_files", &st.backup_files) < 0)
                return -EBADMSG;
        st.pid = (long) pid;

        json_t *notices = json_object_get(root, "notices");
        if (!json_is_array(notices) || json_array_size(notices) > LB_WATCH_MAX_NOTICES)
                return -EBADMSG;
        for (size_t i = 0; i < json_array_size(notices); i++)
                if (parse_notice(json_array_get(notices, i), &st.notices[st.n_notices++]) < 0)
                        return -EBADMSG;
        if (parse_own(json_object_get(root, "own"), &st.own) < 0)
                return -EBADMSG;
        if (parse_hook(json_object_get(root, "lifecycle_hook"), &st.have_hook, &st.hook) < 0)
                return -EBADMSG;

        json_t *rec = json_object_get(root, "recovered");
        if (!json_is_array(rec))
                return -EBADMSG;
        /* What the array's size claims is not allocated up front: each entry is checked, then
         * kept in an array that doubles as needed. */
        size_t n = json_array_size(rec), cap = 0;
        if (n > LB_WATCH_MAX_RECOVERED)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++) {
                struct lb_watch_recovered r;
                if (parse_recovered(json_array_get(rec, i), &r) < 0)
                        /* cppcheck-suppress memleak ; cppcheck does not know __attribute__((cleanup)) */
                        return -EBADMSG;
                if (st.n_recovered == cap) {
                        size_t ncap = MIN(cap == 0 ? 4 : cap * 2, (size_t) LB_WATCH_MAX_RECOVERED);
                        struct lb_watch_recovered *a = reallocarray(st.recovered, ncap, sizeof *a);
                        if (!a)
                                return -ENOMEM;
                        st.recovered = a;
                        cap = ncap;
                }
                st.recovered[st.n_recovered++] = r;
        }
        *ret = st;
        st.recovered = NULL;    /* handed over */
        return 0;
}

int lb_watch_state_path(const char *run_dir, char *buf, size_t size) {
        return lb_snprintf(buf, size, "%s/%s", run_dir, LB_WATCH_STATE_FILE);
}

int lb_watch_state_load(const char *run_dir, struct lb_watch_state *ret) {
        char path[PATH_MAX];
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r = lb_watch_state_path(run_dir, path, sizeof path);
        if (r < 0)
                return r;
        r = lb_read_file(path, LB_WATCH_STATE_MAX_BYTES, &data, &len);
        if (r < 0)
                return r;
        return lb_watch_state_parse(data, len, ret);
}

bool lb_watch_state_running(const struct lb_watch_state *st) {
        if (st->pid <= 0)
                return false;
        return kill((pid_t) st->pid, 0) == 0 || errno == EPERM;
}

/* ---- status ---- */

const struct lb_watch_recovered *lb_watch_state_find_recovered(const struct lb_watch_state *st, const char *id) {
        for (size_t i = 0; st && i < st->n_recovered; i++)
                if (streq(st->recovered[i].volume_id, id))
                        return &st->recovered[i];
        return NULL;
}

