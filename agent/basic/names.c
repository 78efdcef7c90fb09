/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "lifeboat/basic/names.h"
#include "lifeboat/basic/utf8.h"
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

/* The link-local addresses besides loopback that a cleartext URL may go to: those of services
 * that only speak http on the instance's own link. */
enum link_local {
        LINK_IMDS = 1 << 0,             /* 169.254.169.254, [fd00:ec2::254] */
        LINK_CONTAINER_AGENTS = 1 << 1, /* ECS 169.254.170.2, EKS Pod Identity 169.254.170.23, [fd00:ec2::23] */
};

static bool ipv6_is(const struct in6_addr *a, const char *text) {
        struct in6_addr b;
        return inet_pton(AF_INET6, text, &b) == 1 && memcmp(a, &b, sizeof b) == 0;
}

/* Whether the http:// URL goes to this host, or to one of the link-local services allowed. */
static bool http_url_stays_local(const char *url, unsigned allowed) {
        char host[256];
        if (!http_url_host(url, host, sizeof host))
                return false;
        if (strcasecmp(host, "localhost") == 0)
                return true;
        struct in_addr a4;
        struct in6_addr a6;
        if (inet_pton(AF_INET, host, &a4) == 1) {
                uint32_t a = ntohl(a4.s_addr);
                return (a >> 24) == 127 || ((allowed & LINK_IMDS) && a == 0xa9fea9feu) ||
                       ((allowed & LINK_CONTAINER_AGENTS) && (a == 0xa9feaa02u || a == 0xa9feaa17u));
        }
        if (inet_pton(AF_INET6, host, &a6) == 1)
                return IN6_IS_ADDR_LOOPBACK(&a6) || ((allowed & LINK_IMDS) && ipv6_is(&a6, "fd00:ec2::254")) ||
                       ((allowed & LINK_CONTAINER_AGENTS) && ipv6_is(&a6, "fd00:ec2::23"));
        return false;
}

bool lb_url_cleartext_allowed(const char *url, bool imds) {
        if (!url || strncasecmp(url, "http://", strlen("http://")) != 0)
                return true;
        return http_url_stays_local(url, imds ? LINK_IMDS : 0);
}

bool lb_container_url_allowed(const char *url) {
        if (!url)
                return false;
        if (strncasecmp(url, "https://", strlen("https://")) == 0)
                return url[strlen("https://")] != '\0';
        if (strncasecmp(url, "http://", strlen("http://")) != 0)
                return false;
        return http_url_stays_local(url, LINK_CONTAINER_AGENTS);
}

void lb_url_for_logs(const char *url, char *buf, size_t size) {
        const char *sep = strstr(strempty(url), "://"), *path = strempty(url);
        const char *host = "";
        size_t scheme_len = 0, host_len = 0;
        if (sep) {
                const char *auth = sep + 3;
                size_t n = strcspn(auth, "/?#");
                scheme_len = (size_t) (auth - url);
                host = auth;
                host_len = n;
                for (size_t i = n; i > 0; i--)  /* userinfo@host:port */
                        if (auth[i - 1] == '@') {
                                host = auth + i;
                                host_len = n - i;
                                break;
                        }
                path = auth + n;
        }
        size_t first = path[0] == '/' ? 1 + strcspn(path + 1, "/?#") : 0;
        /* More than a lone trailing slash after the first segment: a deeper path, a query. */
        const char *rest = path + first;
        bool more = rest[0] != '\0' && !(rest[0] == '/' && rest[1] == '\0');
        lb_utf8_snprintf(buf, size, "%.*s%.*s%.*s%s", (int) scheme_len, strempty(url), (int) host_len, host,
                         (int) first, path, more ? "/..." : "");
}

bool lb_metric_namespace_valid(const char *ns) {
        size_t n = ns ? strlen(ns) : 0;
        if (n < 1 || n > LB_METRIC_NAMESPACE_MAX || ns[0] == ':' || lb_startswith(ns, "AWS/"))
                return false;
        for (const char *p = ns; *p; p++)
                if (!isalnum((unsigned char) *p) && !strchr(" ._/#:-", *p))
                        return false;
        return true;
}

bool lb_asg_name_valid(const char *name) {
        size_t n = name ? strlen(name) : 0;
        if (n < 1 || n > LB_ASG_NAME_MAX || !lb_utf8_valid(name, n))
                return false;
        for (const char *p = name; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

bool lb_lifecycle_hook_name_valid(const char *name) {
        size_t n = name ? strlen(name) : 0;
        if (n < 1 || n > LB_LIFECYCLE_HOOK_NAME_MAX)
                return false;
        for (const char *p = name; *p; p++) {
                unsigned char c = (unsigned char) *p;
                if (!isascii(c) || !(isalnum(c) || c == '_' || c == '-' || c == '/'))
                        return false;
        }
        return true;
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
