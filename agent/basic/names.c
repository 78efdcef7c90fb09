/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "lifeboat/basic/names.h"
#include "lifeboat/basic/util.h"

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

bool lb_plain_path_valid(const char *path) {
        if (!path || path[0] != '/')
                return false;
        size_t n = strlen(path);
        if (n >= PATH_MAX)
                return false;
        for (const char *p = path; *p; p++) {
                unsigned char c = (unsigned char) *p;
                if (!isascii(c) || !(isalnum(c) || c == '/' || c == '_' || c == '.' || c == '-'))
                        return false;
        }
        /* Every component after the leading slash: non-empty, not "." or "..". */
        const char *comp = path + 1;
        for (;;) {
                const char *slash = strchr(comp, '/');
                size_t len = slash ? (size_t) (slash - comp) : strlen(comp);
                if (len == 0)
                        return false;
                if ((len == 1 && comp[0] == '.') || (len == 2 && comp[0] == '.' && comp[1] == '.'))
                        return false;
                if (!slash)
                        return true;
                comp = slash + 1;
        }
}


bool lb_group_valid(const char *g) {
        size_t n = g ? strlen(g) : 0;
        if (n < 1 || n > LB_GROUP_MAX)
                return false;
        for (const char *p = g; *p; p++) {
                unsigned char c = (unsigned char) *p;
                if (!isascii(c) || !(isalnum(c) || c == '_' || c == '.' || c == ':' || c == '-'))
                        return false;
        }
        return true;
}

bool lb_region_valid(const char *r) {
        size_t n = r ? strlen(r) : 0;
        if (n < 1 || n > LB_REGION_MAX)
                return false;
        if (!(r[0] >= 'a' && r[0] <= 'z') || r[n - 1] == '-')
                return false;
        for (const char *p = r; *p; p++)
                if (!(*p >= 'a' && *p <= 'z') && !(*p >= '0' && *p <= '9') && *p != '-')
                        return false;
        return true;
}

/* The host of an http:// URL into buf, without brackets or port; false when there is none. */
static bool http_url_host(const char *url, char *buf, size_t size) {
        const char *auth = url + strlen("http://");
        size_t n = strcspn(auth, "/?#");
        /* userinfo@host:port: the host follows the last '@' */
        for (size_t i = n; i > 0; i--)
                if (auth[i - 1] == '@') {
                        auth += i;
                        n -= i;
                        break;
                }
        const char *host = auth, *end;
        if (n > 0 && host[0] == '[') {
                host++;
                end = memchr(host, ']', n - 1);
                if (!end)
                        return false;
        } else {
                end = memchr(host, ':', n);
                if (!end)
                        end = auth + n;
        }
        size_t len = (size_t) (end - host);
        if (len == 0 || len >= size)
                return false;
        memcpy(buf, host, len);
        buf[len] = '\0';
        return true;
}

bool lb_container_url_allowed(const char *url) {
        if (!url)
                return false;
        if (strncasecmp(url, "https://", strlen("https://")) == 0)
                return url[strlen("https://")] != '\0';
        if (strncasecmp(url, "http://", strlen("http://")) != 0)
                return false;
        char host[256];
        if (!http_url_host(url, host, sizeof host))
                return false;
        if (strcasecmp(host, "localhost") == 0)
                return true;
        struct in_addr a4;
        struct in6_addr a6, eks6;
        if (inet_pton(AF_INET, host, &a4) == 1) {
                unsigned long a = ntohl(a4.s_addr);
                return (a >> 24) == 127 || a == 0xa9feaa02u /* 169.254.170.2 */ ||
                       a == 0xa9feaa17u /* 169.254.170.23 */;
        }
        if (inet_pton(AF_INET6, host, &a6) == 1)
                return IN6_IS_ADDR_LOOPBACK(&a6) ||
                       (inet_pton(AF_INET6, "fd00:ec2::23", &eks6) == 1 && memcmp(&a6, &eks6, sizeof a6) == 0);
        return false;
}

bool lb_role_session_name_valid(const char *name) {
        size_t n = name ? strlen(name) : 0;
        if (n < 2 || n > 64)
                return false;
        for (const char *p = name; *p; p++) {
                unsigned char c = (unsigned char) *p;
                if (!isascii(c) || !(isalnum(c) || strchr("_+=,.@-", c)))
                        return false;
        }
        return true;
}
