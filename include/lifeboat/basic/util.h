/* SPDX-License-Identifier: MIT */
#pragma once

#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "lifeboat/basic/macro.h"

/* A growable byte buffer with a hard cap: appending past the cap fails with -EFBIG. */
struct lb_buf {
        char *data;     /* always NUL-terminated when non-NULL */
        size_t len;
        size_t cap;     /* allocated bytes */
        size_t limit;   /* 0 = no limit */
};

/* Frees the data; the limit is kept, so the buffer can be filled again. */
void lb_buf_free(struct lb_buf *b);
/* Append bytes, a string, or formatted text: 0, -EFBIG past the limit, or -ENOMEM. */
int lb_buf_append(struct lb_buf *b, const void *data, size_t len);
int lb_buf_append_str(struct lb_buf *b, const char *s);
int lb_buf_printf(struct lb_buf *b, const char *fmt, ...) _printf_(2, 3);
/* Hands the data over (NUL-terminated, never NULL on success) and resets the buffer. */
char *lb_buf_steal(struct lb_buf *b);
static inline void lb_buf_freep(struct lb_buf *b) {
        lb_buf_free(b);
}
#define _cleanup_buf_ _cleanup_(lb_buf_freep)

/* Bounded formatting: returns 0, or -ENAMETOOLONG when the result would not fit. */
int lb_snprintf(char *dst, size_t size, const char *fmt, ...) _printf_(3, 4);
/* Bounded copy: returns 0, or -ENAMETOOLONG when src does not fit (dst then holds ""). */
int lb_strscpy(char *dst, size_t size, const char *src);

/* Formats into an optional caller buffer for a human-readable reason (reason may be NULL;
 * truncation is fine for a reason). */
void lb_set_reason(char *reason, size_t size, const char *fmt, ...) _printf_(3, 4);

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);
#define _cleanup_closedir_ _cleanup_(closedirp)

/* Overwrites a secret string (a key, a token) with zeros before freeing it; NULL is fine. */
void lb_free_secret(char *s);
static inline void lb_free_secretp(char **s) {
        lb_free_secret(*s);
}
#define _cleanup_free_secret_ _cleanup_(lb_free_secretp)

/* Removes leading and trailing ASCII white space in place; returns s. */
char *lb_strstrip(char *s);
/* Whether s begins (ends) with prefix (suffix). */
bool lb_startswith(const char *s, const char *prefix);
bool lb_endswith(const char *s, const char *suffix);
/* Whether path a is b or lies below it, comparing normalized absolute paths as strings
 * (no trailing '/', no "." or ".." components); every path is below "/". */
bool lb_path_equal_or_below(const char *a, const char *b);

/* Parses a decimal unsigned integer with no trailing garbage, within [min, max]. */
int lb_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret);
/* Parses "true/false/yes/no/1/0/on/off". */
int lb_parse_bool(const char *s, bool *ret);
/* Parses an RFC 3339 / ISO 8601 UTC time such as 2026-11-26T16:12:55Z or with .000Z. */
int lb_parse_iso8601(const char *s, time_t *ret);
/* Formats t as 2026-11-26T16:12:55Z; -ENAMETOOLONG when buf is too small. */
int lb_format_iso8601(time_t t, char *buf, size_t size);
/* Like lb_format_iso8601(), but "-" for an unset time (t <= 0) or one that cannot be
 * formatted; returns buf, for use as a printf argument. */
const char *lb_format_iso8601_or_dash(time_t t, char *buf, size_t size);

/* Reads a whole file, at most max bytes (-EFBIG beyond). The result is NUL-terminated. */
int lb_read_file(const char *path, size_t max, char **ret_data, size_t *ret_len);
/* Reads a small sysfs-style attribute, strips white space. */
int lb_read_attr(const char *path, char *buf, size_t size);
/* Writes all of buf to fd, retrying short writes and EINTR. */
int lb_write_all(int fd, const void *buf, size_t len);
/* Writes a file atomically: temp file in the same directory, fsync, rename, fsync dir. */
int lb_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* mkdir -p */
int lb_mkdir_p(const char *path, mode_t mode);

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t lb_now_ms(void);
/* Sleeps for ms milliseconds, resuming after EINTR unless *interrupted becomes true. */
void lb_sleep_ms(uint64_t ms, volatile const int *interrupted);
/* A uniformly distributed double in [0, 1). */
double lb_random01(void);

/* The volume id as NVMe serial: "vol-0abc" -> "vol0abc". */
int lb_volume_id_to_serial(const char *volume_id, char *buf, size_t size);
/* Checks a volume id has the form vol-[0-9a-f]{8,17}, an instance id i-[0-9a-f]{8,17}. */
bool lb_volume_id_valid(const char *id);
bool lb_instance_id_valid(const char *id);
