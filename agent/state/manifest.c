/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/json.h"
#include "lifeboat/basic/names.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/state/manifest.h"


void lb_manifest_done(struct lb_manifest *m) {
        free(m->entries);
        m->entries = NULL;
        m->n = 0;
}

/* A field of a fixed-size array holds a NUL within its bounds. */
#define FIELD_TERMINATED(f) (strnlen((f), sizeof(f)) < sizeof(f))

static bool absolute_printable(const char *s) {
        if (s[0] != '/')
                return false;
        for (const char *p = s; *p; p++)
                if (!isascii((unsigned char) *p) || !isgraph((unsigned char) *p))
                        return false;
        return true;
}

static bool fs_uuid_valid(const char *s) {
        for (const char *p = s; *p; p++)
                if (!isascii((unsigned char) *p) || !(isalnum((unsigned char) *p) || *p == '-'))
                        return false;
        return true;
}

int lb_manifest_entry_validate(const struct lb_manifest_entry *e) {
        if (!FIELD_TERMINATED(e->volume_id) || !FIELD_TERMINATED(e->device) ||
            !FIELD_TERMINATED(e->mount_path) || !FIELD_TERMINATED(e->previous_owner) ||
            !FIELD_TERMINATED(e->config_file) || !FIELD_TERMINATED(e->fs_uuid))
                return -EINVAL;
        if (!lb_volume_id_valid(e->volume_id))
                return -EINVAL;
        if (!absolute_printable(e->device))
                return -EINVAL;
        if (!lb_plain_path_valid(e->mount_path))
                return -EINVAL;
        if (!isempty(e->previous_owner) && !lb_instance_id_valid(e->previous_owner))
                return -EINVAL;
        if (!isempty(e->config_file) && !absolute_printable(e->config_file))
                return -EINVAL;
        if (!fs_uuid_valid(e->fs_uuid))
                return -EINVAL;
        if (e->recovered_at < 0)
                return -EINVAL;
        return 0;
}

static int parse_entry(json_t *obj, struct lb_manifest_entry *ret) {
        struct lb_manifest_entry e = { 0 };
        char when[64];

        if (!json_is_object(obj))
                return -EBADMSG;
        if (lb_json_get_string(obj, "volume_id", false, e.volume_id, sizeof e.volume_id) < 0 ||
            lb_json_get_string(obj, "device", false, e.device, sizeof e.device) < 0 ||
            lb_json_get_string(obj, "mount_path", false, e.mount_path, sizeof e.mount_path) < 0 ||
            lb_json_get_string(obj, "previous_owner", true, e.previous_owner, sizeof e.previous_owner) < 0 ||
            lb_json_get_string(obj, "config_file", true, e.config_file, sizeof e.config_file) < 0 ||
            lb_json_get_string(obj, "recovered_at", false, when, sizeof when) < 0 ||
            lb_json_get_string(obj, "fs_uuid", true, e.fs_uuid, sizeof e.fs_uuid) < 0)
                return -EBADMSG;
        if (lb_parse_iso8601(when, &e.recovered_at) < 0)
                return -EBADMSG;
        if (lb_manifest_entry_validate(&e) < 0)
                return -EBADMSG;
        *ret = e;
        return 0;
}

/* Room for one more entry: the array doubles, starting small, up to the cap. */
static int manifest_grow(struct lb_manifest *m, size_t *cap) {
        if (m->n < *cap)
                return 0;
        if (m->n >= LB_MANIFEST_MAX_ENTRIES)
                return -E2BIG;
        size_t ncap = *cap == 0 ? 4 : MIN(*cap * 2, (size_t) LB_MANIFEST_MAX_ENTRIES);
        struct lb_manifest_entry *n = reallocarray(m->entries, ncap, sizeof *n);
        if (!n)
                return -ENOMEM;
        m->entries = n;
        *cap = ncap;
        return 0;
}

int lb_manifest_parse(const char *buf, size_t len, struct lb_manifest *ret) {
        _cleanup_(json_decrefp) json_t *root = NULL;
        _cleanup_manifest_ struct lb_manifest m = { 0 };
        json_error_t err;
        size_t cap = 0;

        root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
        if (!json_is_object(root))
                return -EBADMSG;
        json_t *version = json_object_get(root, "version");
        if (!json_is_integer(version) || json_integer_value(version) != LB_MANIFEST_VERSION)
                return -EBADMSG;
        json_t *volumes = json_object_get(root, "volumes");
        if (!json_is_array(volumes))
                return -EBADMSG;

        /* The array's size is what the file claims: entries are checked one by one, and
         * memory is taken only for those that passed (a 1 MiB file of "{}" once asked for
         * gigabytes up front). */
        size_t n = json_array_size(volumes);
        if (n > LB_MANIFEST_MAX_ENTRIES)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++) {
                struct lb_manifest_entry e;
                if (parse_entry(json_array_get(volumes, i), &e) < 0 || lb_manifest_find(&m, e.volume_id))
                        /* cppcheck-suppress memleak ; cppcheck does not know __attribute__((cleanup)) */
                        return -EBADMSG;
                int r = manifest_grow(&m, &cap);
                if (r < 0)
                        return r == -E2BIG ? -EBADMSG : r;
                m.entries[m.n++] = e;
        }
        *ret = m;
        m = (struct lb_manifest) { 0 };
        return 0;
}

static int set_member(json_t *obj, const char *key, json_t *value) {
        if (!value)
                return -ENOMEM;
        return json_object_set_new(obj, key, value) < 0 ? -ENOMEM : 0;
}

static int format_entry(const struct lb_manifest_entry *e, json_t **ret) {
        _cleanup_(json_decrefp) json_t *obj = json_object();
        char when[64];
        int r;

        if (!obj)
                return -ENOMEM;
        r = lb_manifest_entry_validate(e);
        if (r < 0)
                return r;
        r = lb_format_iso8601(e->recovered_at, when, sizeof when);
        if (r < 0)
                return r;
        if ((r = set_member(obj, "volume_id", json_string(e->volume_id))) < 0 ||
            (r = set_member(obj, "device", json_string(e->device))) < 0 ||
            (r = set_member(obj, "mount_path", json_string(e->mount_path))) < 0 ||
            (r = set_member(obj, "previous_owner", lb_json_string_or_null(e->previous_owner))) < 0 ||
            (r = set_member(obj, "config_file", lb_json_string_or_null(e->config_file))) < 0 ||
            (r = set_member(obj, "recovered_at", json_string(when))) < 0 ||
            (r = set_member(obj, "fs_uuid", lb_json_string_or_null(e->fs_uuid))) < 0)
                return r;
        *ret = TAKE_PTR(obj);
        return 0;
}

int lb_manifest_format(const struct lb_manifest *m, char **ret_text) {
        _cleanup_(json_decrefp) json_t *root = json_object();
        _cleanup_(json_decrefp) json_t *volumes = json_array();
        int r;

        if (!root || !volumes)
                return -ENOMEM;
        for (size_t i = 0; i < m->n; i++) {
                json_t *obj = NULL;
                r = format_entry(&m->entries[i], &obj);
                if (r < 0)
                        return r;
                if (json_array_append_new(volumes, obj) < 0)
                        return -ENOMEM;
        }
        if ((r = set_member(root, "version", json_integer(LB_MANIFEST_VERSION))) < 0)
                return r;
        if (json_object_set(root, "volumes", volumes) < 0)
                return -ENOMEM;

        return lb_json_dump_line(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER, ret_text);
}

int lb_manifest_path(const char *run_dir, char *buf, size_t size) {
        if (isempty(run_dir))
                return -EINVAL;
        return lb_snprintf(buf, size, "%s/%s", run_dir, LB_MANIFEST_FILE);
}

int lb_manifest_load(const char *run_dir, struct lb_manifest *ret) {
        _cleanup_free_ char *data = NULL;
        char path[PATH_MAX];
        size_t len = 0;
        int r;

        r = lb_manifest_path(run_dir, path, sizeof path);
        if (r < 0)
                return r;
        r = lb_read_file(path, LB_MANIFEST_MAX_BYTES, &data, &len);
        if (r == -ENOENT) {
                *ret = (struct lb_manifest) { 0 };
                return 0;
        }
        if (r < 0)
                return r;
        return lb_manifest_parse(data, len, ret);
}

int lb_manifest_save(const char *run_dir, const struct lb_manifest *m) {
        _cleanup_free_ char *text = NULL;
        char path[PATH_MAX];
        int r;

        r = lb_manifest_path(run_dir, path, sizeof path);
        if (r < 0)
                return r;
        r = lb_manifest_format(m, &text);
        if (r < 0)
                return r;
        r = lb_mkdir_p(run_dir, 0755);
        if (r < 0)
                return r;
        return lb_write_file_atomic(path, text, strlen(text), 0644);
}

const struct lb_manifest_entry *lb_manifest_find(const struct lb_manifest *m, const char *volume_id) {
        for (size_t i = 0; i < m->n; i++)
                if (streq(m->entries[i].volume_id, volume_id))
                        return &m->entries[i];
        return NULL;
}

int lb_manifest_add(struct lb_manifest *m, const struct lb_manifest_entry *e) {
        int r = lb_manifest_entry_validate(e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->n; i++)
                if (streq(m->entries[i].volume_id, e->volume_id)) {
                        m->entries[i] = *e;
                        return 0;
                }
        if (m->n >= LB_MANIFEST_MAX_ENTRIES)
                return -E2BIG;
        struct lb_manifest_entry *n = reallocarray(m->entries, m->n + 1, sizeof *n);
        if (!n)
                return -ENOMEM;
        n[m->n] = *e;
        m->entries = n;
        m->n++;
        return 0;
}

int lb_manifest_remove(struct lb_manifest *m, const char *volume_id) {
        for (size_t i = 0; i < m->n; i++)
                if (streq(m->entries[i].volume_id, volume_id)) {
                        memmove(&m->entries[i], &m->entries[i + 1], (m->n - i - 1) * sizeof *m->entries);
                        m->n--;
                        return 1;
                }
        return 0;
}
