/* SPDX-License-Identifier: MIT */
#pragma once

#include <limits.h>
#include <stddef.h>
#include <time.h>

#include "lifeboat/basic/macro.h"

/*
 * LIFEBOAT_RUN_DIR/recovered.json: the volumes boot recovered and mounted
 * here, which watch drains and hands back. The document:
 *   {"version":1,"volumes":[{"volume_id":"vol-…","device":"/dev/nvme2n1",
 *     "mount_path":"/var/lib/lifeboat/recovery/vol-…","previous_owner":"i-…",
 *     "config_file":"/etc/fluent/recovery.d/vol-….conf",
 *     "recovered_at":"2026-11-26T16:12:55Z","fs_uuid":"…"}]}
 * previous_owner, config_file and fs_uuid may be null or absent (unknown,
 * none); they are formatted as null when empty. Unknown fields are ignored.
 */
#define LB_MANIFEST_FILE "recovered.json"
#define LB_MANIFEST_VERSION 1
#define LB_MANIFEST_MAX_BYTES (1024u * 1024u)
/* More volumes than an instance can have attached (at most 128 attachment slots): a manifest
 * listing more is not one boot wrote. */
#define LB_MANIFEST_MAX_ENTRIES 256

struct lb_manifest_entry {
        char volume_id[32];             /* vol-[0-9a-f]{8,17} */
        char device[PATH_MAX];          /* absolute */
        char mount_path[PATH_MAX];      /* lb_fluentd_path_valid() */
        char previous_owner[32];        /* instance id, or "" when unknown */
        char config_file[PATH_MAX];     /* absolute, or "" when no snippet was written */
        time_t recovered_at;
        char fs_uuid[64];               /* [0-9A-Za-z-], or "" when unknown */
};

struct lb_manifest {
        struct lb_manifest_entry *entries;
        size_t n;
};

void lb_manifest_done(struct lb_manifest *m);
static inline void lb_manifest_donep(struct lb_manifest *m) {
        lb_manifest_done(m);
}
#define _cleanup_manifest_ _cleanup_(lb_manifest_donep)

/* Checks one entry's fields (the rules above); -EINVAL when one is bad. */
int lb_manifest_entry_validate(const struct lb_manifest_entry *e);

/* Parses the document; -EBADMSG for bad JSON, a wrong version, a missing or
 * wrongly typed field, an invalid value, a volume listed twice or more than
 * LB_MANIFEST_MAX_ENTRIES volumes. Memory grows with the entries that are
 * valid, never with what the document claims. */
int lb_manifest_parse(const char *buf, size_t len, struct lb_manifest *ret);
/* Formats the document (pretty-printed, trailing newline); -EINVAL for an invalid entry. */
int lb_manifest_format(const struct lb_manifest *m, char **ret_text);

/* "<run_dir>/recovered.json" */
int lb_manifest_path(const char *run_dir, char *buf, size_t size);
/* Loads <run_dir>/recovered.json; a missing file is an empty manifest. */
int lb_manifest_load(const char *run_dir, struct lb_manifest *ret);
/* Saves atomically (mode 0644), creating run_dir (0755) if needed. */
int lb_manifest_save(const char *run_dir, const struct lb_manifest *m);

/* The entry of volume_id, or NULL. */
const struct lb_manifest_entry *lb_manifest_find(const struct lb_manifest *m, const char *volume_id);
/* Adds a copy of e, replacing an entry with the same volume id; -EINVAL for an invalid entry,
 * -E2BIG when the manifest holds LB_MANIFEST_MAX_ENTRIES volumes already. */
int lb_manifest_add(struct lb_manifest *m, const struct lb_manifest_entry *e);
/* Removes the entry of volume_id, keeping the order of the rest. Returns 1 removed, 0 absent. */
int lb_manifest_remove(struct lb_manifest *m, const char *volume_id);
