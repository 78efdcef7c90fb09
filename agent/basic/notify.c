/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#if LIFEBOAT_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "lifeboat/basic/notify.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/util.h"

int lb_notify_socket(const char *socket_name, const char *state) {
        if (isempty(socket_name))
                return 0;
        if (socket_name[0] != '/' && socket_name[0] != '@')
                return -EAFNOSUPPORT;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t n = strlen(socket_name);
        if (n < 2 || n >= sizeof sa.sun_path)
                return -EINVAL;
        memcpy(sa.sun_path, socket_name, n);
        /* An abstract name is exactly as long as it is (no NUL); a path includes its NUL. */
        socklen_t len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n);
        if (sa.sun_path[0] == '@')
                sa.sun_path[0] = '\0';
        else
                len += 1;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        ssize_t k = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *) &sa, len);
        if (k < 0)
                return -errno;
        return (size_t) k == strlen(state) ? 1 : -EIO;
}

int lb_notify(const char *state) {
#if LIFEBOAT_HAVE_LIBSYSTEMD
        return sd_notify(0, state);
#else
        return lb_notify_socket(getenv("NOTIFY_SOCKET"), state);
#endif
}

int lb_notify_parse_watchdog(const char *u, const char *p, pid_t self, uint64_t *ret_usec) {
        uint64_t usec, pid;
        if (isempty(u))
                return 0;
        if (lb_parse_uint(u, 1, UINT64_MAX, &usec) < 0)
                return -EINVAL;
        if (!isempty(p)) {
                if (lb_parse_uint(p, 1, UINT64_MAX, &pid) < 0)
                        return -EINVAL;
                if (pid != (uint64_t) self)
                        return 0; /* meant for another process */
        }
        *ret_usec = usec;
        return 1;
}

int lb_notify_watchdog_usec(uint64_t *ret_usec) {
#if LIFEBOAT_HAVE_LIBSYSTEMD
        uint64_t usec = 0;
        int r = sd_watchdog_enabled(0, &usec);
        if (r > 0)
                *ret_usec = usec;
        return r;
#else
        return lb_notify_parse_watchdog(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"), getpid(), ret_usec);
#endif
}
