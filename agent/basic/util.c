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
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(dst, size, fmt, ap);
        va_end(ap);
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
        (void) vsnprintf(reason, size, fmt, ap);
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

int lb_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        if (isempty(s) || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        char *end = NULL;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (!end || *end != '\0')
                return -EINVAL;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int lb_parse_bool(const char *s, bool *ret) {
        static const char *const yes[] = { "1", "true", "yes", "on" };
        static const char *const no[] = { "0", "false", "no", "off" };
        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        return -EINVAL;
}

int lb_parse_iso8601(const char *s, time_t *ret) {
        struct tm tm = { 0 };
        const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!p)
                return -EINVAL;
        if (*p == '.') { /* fractional seconds: ignored */
                p++;
                while (isdigit((unsigned char) *p))
                        p++;
        }
        if (streq(p, "Z") || streq(p, "+00:00") || streq(p, "+0000")) {
                time_t t = timegm(&tm);
                if (t == (time_t) -1)
                        return -EINVAL;
                *ret = t;
                return 0;
        }
        return -EINVAL;
}

int lb_format_iso8601(time_t t, char *buf, size_t size) {
        struct tm tm;
        if (!gmtime_r(&t, &tm))
                return -EINVAL;
        if (strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return -ENAMETOOLONG;
        return 0;
}

const char *lb_format_iso8601_or_dash(time_t t, char *buf, size_t size) {
        if (t <= 0 || lb_format_iso8601(t, buf, size) < 0)
                (void) lb_strscpy(buf, size, "-");
        return buf;
}

int lb_read_file(const char *path, size_t max, char **ret_data, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        _cleanup_buf_ struct lb_buf b = { .limit = max };
        for (;;) {
                char chunk[4096];
                ssize_t n = read(fd, chunk, sizeof chunk);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                int r = lb_buf_append(&b, chunk, (size_t) n);
                if (r < 0)
                        return r;
        }
        size_t len = b.len;
        char *d = lb_buf_steal(&b);
        if (!d)
                return -ENOMEM;
        *ret_data = d;
        if (ret_len)
                *ret_len = len;
        return 0;
}

int lb_read_attr(const char *path, char *buf, size_t size) {
        _cleanup_free_ char *d = NULL;
        int r = lb_read_file(path, 4096, &d, NULL);
        if (r < 0)
                return r;
        return lb_strscpy(buf, size, lb_strstrip(d));
}

int lb_write_all(int fd, const void *buf, size_t len) {
        const char *p = buf;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

static int fsync_parent_dir(const char *path) {
        char dir[PATH_MAX];
        int r = lb_strscpy(dir, sizeof dir, path);
        if (r < 0)
                return r;
        char *slash = strrchr(dir, '/');
        if (!slash)
                return lb_strscpy(dir, sizeof dir, ".");
        if (slash == dir)
                slash[1] = '\0';
        else
                *slash = '\0';
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        if (fsync(dfd) < 0)
                return -errno;
        return 0;
}

int lb_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode) {
        char tmp[PATH_MAX];
        int r = lb_snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long) getpid());
        if (r < 0)
                return r;
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        r = lb_write_all(fd, data, len);
        if (r >= 0 && fchmod(fd, mode) < 0)
                r = -errno;
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && close(TAKE_FD(fd)) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }
        return fsync_parent_dir(path);
}

int lb_mkdir_p(const char *path, mode_t mode) {
        char p[PATH_MAX];
        int r = lb_strscpy(p, sizeof p, path);
        if (r < 0)
                return r;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        struct stat st;
        if (stat(p, &st) < 0)
                return -errno;
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

uint64_t lb_now_ms(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

void lb_sleep_ms(uint64_t ms, volatile const int *interrupted) {
        struct timespec ts = { .tv_sec = (time_t) (ms / 1000), .tv_nsec = (long) (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                if (interrupted && *interrupted)
                        return;
}

double lb_random01(void) {
        uint64_t v;
        if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t) sizeof v)
                v = (uint64_t) lb_now_ms() * 6364136223846793005ULL + (uint64_t) getpid();
        return (double) (v >> 11) / (double) (1ULL << 53);
}

bool lb_volume_id_valid(const char *id) {
        if (!lb_startswith(id, "vol-"))
                return false;
        size_t n = strlen(id + 4);
        if (n < 8 || n > 17)
                return false;
        for (const char *p = id + 4; *p; p++)
                if (!isdigit((unsigned char) *p) && !(*p >= 'a' && *p <= 'f'))
                        return false;
        return true;
}

bool lb_instance_id_valid(const char *id) {
        if (!lb_startswith(id, "i-"))
                return false;
        size_t n = strlen(id + 2);
        if (n < 8 || n > 17)
                return false;
        for (const char *p = id + 2; *p; p++)
                if (!isdigit((unsigned char) *p) && !(*p >= 'a' && *p <= 'f'))
                        return false;
        return true;
}

int lb_volume_id_to_serial(const char *volume_id, char *buf, size_t size) {
        if (!lb_volume_id_valid(volume_id))
                return -EINVAL;
        return lb_snprintf(buf, size, "vol%s", volume_id + 4);
}
