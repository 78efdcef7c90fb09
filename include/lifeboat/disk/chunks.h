/* SPDX-License-Identifier: MIT */
#pragma once

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lifeboat/basic/macro.h"

/*
 * Counting fluentd buffer chunks: a buffer directory is drained when no file
 * whose NAME matches the chunk pattern remains below it. Staged
 * (buffer.b<hex>.log) and queued (buffer.q<hex>.log) chunks count, and
 * file_single's .buf; the .meta beside each chunk does not. The scan never
 * removes anything.
 */
#define LB_CHUNK_PATTERN_DEFAULT "\\.(b|q)[0-9a-f]+\\.(log|buf)$"
/* Subdirectory depth the scan descends (workerN/, @id/buffer/ ...). */
#define LB_CHUNK_SCAN_MAX_DEPTH 16

/* A compiled chunk name pattern (POSIX extended regex). Compile once, scan every poll. */
struct lb_chunk_matcher {
        regex_t re;
        bool compiled;
};

/* Compiles pattern (NULL = the default); -EINVAL with regerror()'s text in reason when bad. */
int lb_chunk_matcher_init(struct lb_chunk_matcher *m, const char *pattern, char *reason, size_t reason_size);
void lb_chunk_matcher_done(struct lb_chunk_matcher *m);
static inline void lb_chunk_matcher_donep(struct lb_chunk_matcher *m) {
        lb_chunk_matcher_done(m);
}
#define _cleanup_chunk_matcher_ _cleanup_(lb_chunk_matcher_donep)
/* Whether a file name (not a path) is a chunk. */
bool lb_chunk_name_matches(const struct lb_chunk_matcher *m, const char *name);

struct lb_chunk_scan {
        uint64_t files;         /* chunk files found */
        uint64_t bytes;         /* their total size (st_size) */
        char **paths;           /* NULL-terminated, the first max_paths chunk paths found; may be NULL */
        size_t n_paths;
};

void lb_chunk_scan_done(struct lb_chunk_scan *s);
static inline void lb_chunk_scan_donep(struct lb_chunk_scan *s) {
        lb_chunk_scan_done(s);
}
#define _cleanup_chunk_scan_ _cleanup_(lb_chunk_scan_donep)

/*
 * Counts the regular files below dir (recursively, at most
 * LB_CHUNK_SCAN_MAX_DEPTH levels) whose name matches m. Stays on dir's
 * filesystem (st_dev) and never follows a symlink below dir (dir itself is
 * resolved as given). Files vanishing during the scan (fluentd deleting a
 * flushed chunk) are skipped; an unreadable subdirectory is an error, as it
 * could hide chunks. Returns 0 and fills *ret, or a negative errno (-ENOENT
 * when dir is missing, -ENOTDIR when it is not a directory).
 */
int lb_chunk_scan(const char *dir, const struct lb_chunk_matcher *m, size_t max_paths, struct lb_chunk_scan *ret);
