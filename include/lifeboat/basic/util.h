/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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

/* Bounded formatting: returns 0, or -ENAMETOOLONG when the result would not fit (dst then
 * holds it cut on a UTF-8 character boundary). */
int lb_snprintf(char *dst, size_t size, const char *fmt, ...) _printf_(3, 4);
/* Bounded copy: returns 0, or -ENAMETOOLONG when src does not fit (dst then holds ""). */
int lb_strscpy(char *dst, size_t size, const char *src);

/* Formats into an optional caller buffer for a human-readable reason (reason may be NULL;
 * truncation is fine for a reason, and never cuts a UTF-8 character). */
void lb_set_reason(char *reason, size_t size, const char *fmt, ...) _printf_(3, 4);

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

/* strerror() for any thread: strerror_r (the GNU one, which returns the text) into a buffer
 * that lives until the end of the enclosing block. errnum may be negative (-EIO). */
#define LB_STRERROR_MAX 128
#define STRERROR(errnum) strerror_r(abs(errnum), (char[LB_STRERROR_MAX]){ 0 }, LB_STRERROR_MAX)
