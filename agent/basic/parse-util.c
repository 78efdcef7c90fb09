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

int lb_parse_duration_ms(const char *s, uint64_t *ret_ms) {
        unsigned long long v;
        char *end;
        int r = parse_leading_uint(s, &v, &end);
        if (r < 0)
                return r;
        uint64_t mult;
        if (*end == '\0' || streq(end, "s"))
                mult = 1000;
        else if (streq(end, "ms"))
                mult = 1;
        else if (streq(end, "m"))
                mult = 60 * 1000;
        else if (streq(end, "h"))
                mult = 3600 * 1000;
        else
                return -EINVAL;
        if (v > UINT64_MAX / mult)
                return -ERANGE;
        *ret_ms = (uint64_t) v * mult;
        return 0;
}

int lb_format_duration_ms(uint64_t ms, char *buf, size_t size) {
        if (ms != 0 && ms % (3600 * 1000) == 0)
                return lb_snprintf(buf, size, "%" PRIu64 "h", ms / (3600 * 1000));
        if (ms != 0 && ms % (60 * 1000) == 0)
                return lb_snprintf(buf, size, "%" PRIu64 "m", ms / (60 * 1000));
        if (ms % 1000 == 0)
                return lb_snprintf(buf, size, "%" PRIu64 "s", ms / 1000);
        return lb_snprintf(buf, size, "%" PRIu64 "ms", ms);
}

