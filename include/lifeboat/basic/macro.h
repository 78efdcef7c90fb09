/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Ownership helpers in the style of systemd's macro.h: a variable declared
 * with _cleanup_free_ (or one of its siblings) is released when it goes out
 * of scope; TAKE_PTR()/TAKE_FD() hand the value over and disarm the cleanup.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _warn_unused_result_ __attribute__((warn_unused_result))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

#define TAKE_PTR(p)                    \
        ({                             \
                typeof(p) _ptr_ = (p); \
                (p) = NULL;            \
                _ptr_;                 \
        })

#define TAKE_FD(fd)                 \
        ({                          \
                int _fd_ = (fd);    \
                (fd) = -EBADF;      \
                _fd_;               \
        })

/* Defines type##_freep-style helper "name" that calls func on a non-NULL pointer. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)      \
        static inline void func##p(type *p) {        \
                if (*p)                              \
                        func(*p);                    \
        }

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                (void) close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                (void) fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Frees a NULL-terminated array of strings. */
static inline void strv_free(char **l) {
        if (!l)
                return;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);

static inline size_t strv_length(char *const *l) {
        size_t n = 0;
        for (; l && l[n]; n++)
                ;
        return n;
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)

/* Whether the NULL-terminated list l (may be NULL) holds s. */
static inline bool strv_contains(const char *const *l, const char *s) {
        for (; l && *l; l++)
                if (strcmp(*l, s) == 0)
                        return true;
        return false;
}

/* jansson >= 2.14 ships json_decrefp() and json_auto_t; use _cleanup_(json_decrefp). */

#define streq(a, b) (strcmp((a), (b)) == 0)
#define strneq(a, b, n) (strncmp((a), (b), (n)) == 0)
#define isempty(s) (!(s) || (s)[0] == '\0')
#define strna(s) ((s) ? (s) : "n/a")
#define strempty(s) ((s) ? (s) : "")

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Negative errno helpers: keep "return -errno" honest when errno could be 0. */
static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}
