/* SPDX-License-Identifier: MIT */
/* The sd_notify protocol lifeboat speaks without libsystemd, against stand-in sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lifeboat/basic/notify.h"
#include "testutil.h"

/* A datagram socket bound to name ("@x" abstract, else a path); returns its fd. */
static int bind_dgram(const char *name) {
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t n = strlen(name);
        memcpy(sa.sun_path, name, n);
        socklen_t len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n);
        if (name[0] == '@')
                sa.sun_path[0] = '\0';
        else
                len++;
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, len), 0);
        return fd;
}

static void expect_message(int fd, const char *want) {
        char buf[256];
        ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
        assert_true(n > 0);
        buf[n] = '\0';
        assert_string_equal(buf, want);
}

static void test_abstract_socket(void **state) {
        char name[64];
        (void) snprintf(name, sizeof name, "@lifeboat-unit-notify-%d", (int) getpid());
        int fd = bind_dgram(name);
        assert_int_equal(lb_notify_socket(name, "READY=1\nSTATUS=watching"), 1);
        expect_message(fd, "READY=1\nSTATUS=watching");
        close(fd);
}

static void test_path_socket(void **state) {
        char dir[PATH_MAX], path[PATH_MAX];
        assert_int_equal(lbt_mkdtemp(dir, sizeof dir), 0);
        lbt_pathf(path, "%s/notify", dir);
        int fd = bind_dgram(path);
        assert_int_equal(lb_notify_socket(path, "WATCHDOG=1"), 1);
        expect_message(fd, "WATCHDOG=1");
        close(fd);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
}

static void test_not_under_systemd(void **state) {
        assert_int_equal(lb_notify_socket(NULL, "READY=1"), 0);
        assert_int_equal(lb_notify_socket("", "READY=1"), 0);
        assert_int_equal(lb_notify_socket("vsock:2:9", "READY=1"), -EAFNOSUPPORT);
        /* Nobody listening: an error, which callers ignore. */
        assert_true(lb_notify_socket("@lifeboat-unit-nobody-listens", "READY=1") < 0);
}

static void test_watchdog_rule(void **state) {
        uint64_t usec = 7;
        assert_int_equal(lb_notify_parse_watchdog(NULL, NULL, 100, &usec), 0);
        assert_int_equal(lb_notify_parse_watchdog("3000000", NULL, 100, &usec), 1);
        assert_int_equal(usec, 3000000);
        assert_int_equal(lb_notify_parse_watchdog("3000000", "100", 100, &usec), 1);
        usec = 7;
        assert_int_equal(lb_notify_parse_watchdog("3000000", "101", 100, &usec), 0); /* someone else's */
        assert_int_equal(usec, 7);
        assert_int_equal(lb_notify_parse_watchdog("0", NULL, 100, &usec), -EINVAL);
        assert_int_equal(lb_notify_parse_watchdog("soon", NULL, 100, &usec), -EINVAL);
        assert_int_equal(lb_notify_parse_watchdog("1000", "x", 100, &usec), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_abstract_socket),
                cmocka_unit_test(test_path_socket),
                cmocka_unit_test(test_not_under_systemd),
                cmocka_unit_test(test_watchdog_rule),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
