/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lifeboat/basic/utf8.h"
#include "lifeboat/basic/util.h"

void lb_buf_free(struct lb_buf *b) {
        free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
}

static int buf_reserve(struct lb_buf *b, size_t extra) {
        if (extra > SIZE_MAX - b->len - 1)
                return -ENOMEM;
        size_t need = b->len + extra + 1;
        if (b->limit > 0 && need - 1 > b->limit)
                return -EFBIG;
        if (need <= b->cap)
                return 0;
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < need)
                ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
        char *n = realloc(b->data, ncap);
        if (!n)
                return -ENOMEM;
        b->data = n;
        b->cap = ncap;
        return 0;
}

int lb_buf_append(struct lb_buf *b, const void *data, size_t len) {
        int r = buf_reserve(b, len);
        if (r < 0)
                return r;
        if (len > 0)
                memcpy(b->data + b->len, data, len);
        b->len += len;
        b->data[b->len] = '\0';
        return 0;
}

int lb_buf_append_str(struct lb_buf *b, const char *s) {
        return lb_buf_append(b, s, strlen(s));
}

int lb_buf_printf(struct lb_buf *b, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -EINVAL;
        int r = buf_reserve(b, (size_t) n);
        if (r < 0)
                return r;
        va_start(ap, fmt);
        (void) vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t) n;
        return 0;
}

char *lb_buf_steal(struct lb_buf *b) {
        if (!b->data) {
                if (buf_reserve(b, 0) < 0)
                        return NULL;
                b->data[0] = '\0';
        }
        char *d = TAKE_PTR(b->data);
        b->len = b->cap = 0;
        return d;
}

int lb_snprintf(char *dst, size_t size, const char *fmt, ...) {
        va_list ap, again;
        va_start(ap, fmt);
        va_copy(again, ap);
        int n = vsnprintf(dst, size, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t) n >= size)
                /* Cut, and perhaps inside a character of a tag value: cut again on a boundary. */
                lb_utf8_vsnprintf(dst, size, fmt, again);
        va_end(again);
        if (n < 0)
                return -EINVAL;
        if ((size_t) n >= size)
                return -ENAMETOOLONG;
        return 0;
}

int lb_strscpy(char *dst, size_t size, const char *src) {
        if (size == 0)
                return -ENAMETOOLONG;
        size_t n = strlen(src);
        if (n >= size) {
                dst[0] = '\0';
                return -ENAMETOOLONG;
        }
        memcpy(dst, src, n + 1);
        return 0;
}

void lb_set_reason(char *reason, size_t size, const char *fmt, ...) {
        if (!reason || size == 0)
                return;
        va_list ap;
        va_start(ap, fmt);
        lb_utf8_vsnprintf(reason, size, fmt, ap);
        va_end(ap);
}

void lb_free_secret(char *s) {
        if (!s)
                return;
        explicit_bzero(s, strlen(s));
        free(s);
}

char *lb_strstrip(char *s) {
        char *start = s;
        while (*start && isspace((unsigned char) *start))
                start++;
        size_t n = strlen(start);
        while (n > 0 && isspace((unsigned char) start[n - 1]))
                n--;
        memmove(s, start, n);
        s[n] = '\0';
        return s;
}

bool lb_startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool lb_endswith(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

bool lb_path_equal_or_below(const char *a, const char *b) {
        size_t n = strlen(b);
        if (streq(b, "/"))
                return true;
        return strneq(a, b, n) && (a[n] == '\0' || a[n] == '/');
}

