/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/util.h"

/* The decimal number s starts with (no sign, no space), and where it ends. */
static int parse_leading_uint(const char *s, unsigned long long *ret, char **ret_end) {
        if (isempty(s) || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        char *end = NULL;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        *ret = v;
        *ret_end = end;
        return 0;
}

int lb_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        unsigned long long v;
        char *end;
        int r = parse_leading_uint(s, &v, &end);
        if (r < 0)
                return r;
        if (*end != '\0')
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

/* systemd's time span units (systemd.time(7)), in the order parse_time() tries them: the first
 * prefix that matches wins, so "months" is tried before "msec" and "ms" before "m". */
static const struct {
        const char *suffix;
        uint64_t usec;
} time_units[] = {
        { "seconds", 1000000ULL },
        { "second", 1000000ULL },
        { "sec", 1000000ULL },
        { "s", 1000000ULL },
        { "minutes", 60000000ULL },
        { "minute", 60000000ULL },
        { "min", 60000000ULL },
        { "months", 2629800000000ULL },
        { "month", 2629800000000ULL },
        { "M", 2629800000000ULL },
        { "msec", 1000ULL },
        { "ms", 1000ULL },
        { "m", 60000000ULL },
        { "hours", 3600000000ULL },
        { "hour", 3600000000ULL },
        { "hr", 3600000000ULL },
        { "h", 3600000000ULL },
        { "days", 86400000000ULL },
        { "day", 86400000000ULL },
        { "d", 86400000000ULL },
        { "weeks", 604800000000ULL },
        { "week", 604800000000ULL },
        { "w", 604800000000ULL },
        { "years", 31557600000000ULL },
        { "year", 31557600000000ULL },
        { "y", 31557600000000ULL },
        { "usec", 1ULL },
        { "us", 1ULL },
        { "\xce\xbcs", 1ULL },        /* μs, U+03BC */
        { "\xc2\xb5s", 1ULL },        /* µs, U+00B5 */
};

static bool is_time_space(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The unit at *p (seconds when none), advancing *p past it. A unit must end where a number,
 * white space or the string does: "5secs" is no time span. */
static int parse_time_unit(const char **p, uint64_t *ret_usec) {
        for (size_t i = 0; i < ELEMENTSOF(time_units); i++) {
                size_t n = strlen(time_units[i].suffix);
                if (strncmp(*p, time_units[i].suffix, n) != 0)
                        continue;
                char next = (*p)[n];
                if (next != '\0' && !is_time_space(next) && !isdigit((unsigned char) next) && next != '.')
                        continue;
                *p += n;
                *ret_usec = time_units[i].usec;
                return 0;
        }
        char next = **p;
        if (next != '\0' && !is_time_space(next) && !isdigit((unsigned char) next))
                return -EINVAL;
        *ret_usec = 1000000ULL; /* a bare number is seconds */
        return 0;
}

/* One "NUMBER[.FRACTION][ ]UNIT" term at *p, in microseconds, advancing *p. */
static int parse_time_term(const char **p, uint64_t *ret_usec) {
        const char *s = *p;
        if (*s == '-')
                return -ERANGE; /* no negative spans, not even -0 */
        if (*s == '+')
                s++;
        unsigned long long whole = 0;
        int r;
        if (*s != '.') { /* ".5s" is half a second */
                char *end;
                r = parse_leading_uint(s, &whole, &end);
                if (r < 0)
                        return r;
                s = end;
        }
        const char *frac = NULL;
        size_t n_frac = 0;
        if (*s == '.') {
                frac = ++s;
                while (isdigit((unsigned char) *s))
                        s++;
                n_frac = (size_t) (s - frac);
                if (n_frac == 0)
                        return -EINVAL; /* "5." */
        }
        while (is_time_space(*s))
                s++;
        uint64_t unit;
        r = parse_time_unit(&s, &unit);
        if (r < 0)
                return r;
        if (whole > UINT64_MAX / unit)
                return -ERANGE;
        uint64_t usec = (uint64_t) whole * unit;
        /* The fraction, digit by digit, truncated to whole microseconds. */
        for (size_t i = 0, scale = 10; i < n_frac && unit / scale > 0; i++, scale *= 10) {
                uint64_t add = (uint64_t) (frac[i] - '0') * (unit / scale);
                if (usec > UINT64_MAX - add)
                        return -ERANGE;
                usec += add;
        }
        *p = s;
        *ret_usec = usec;
        return 0;
}

int lb_parse_duration_ms(const char *s, uint64_t *ret_ms) {
        if (!s)
                return -EINVAL;
        while (is_time_space(*s))
                s++;
        if (*s == '\0')
                return -EINVAL;
        const char *t = s + strlen("infinity");
        if (strncmp(s, "infinity", strlen("infinity")) == 0) {
                while (is_time_space(*t))
                        t++;
                if (*t == '\0') {
                        *ret_ms = UINT64_MAX;
                        return 0;
                }
        }
        uint64_t total = 0;
        while (*s != '\0') {
                uint64_t usec;
                int r = parse_time_term(&s, &usec);
                if (r < 0)
                        return r;
                if (total > UINT64_MAX - usec)
                        return -ERANGE;
                total += usec;
                while (is_time_space(*s))
                        s++;
        }
        *ret_ms = total / 1000;
        return 0;
}

int lb_format_duration_ms(uint64_t ms, char *buf, size_t size) {
        if (ms != 0 && ms % (3600 * 1000) == 0)
                return lb_snprintf(buf, size, "%" PRIu64 "h", ms / (3600 * 1000));
        if (ms != 0 && ms % (60 * 1000) == 0)
                return lb_snprintf(buf, size, "%" PRIu64 "min", ms / (60 * 1000));
        if (ms % 1000 == 0)
                return lb_snprintf(buf, size, "%" PRIu64 "s", ms / 1000);
        return lb_snprintf(buf, size, "%" PRIu64 "ms", ms);
}

