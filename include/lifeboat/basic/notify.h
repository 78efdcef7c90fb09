/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Telling the service manager how a daemon is doing (sd_notify(3)): READY=1 when it is up,
 * STATUS=... lines for `systemctl status`, WATCHDOG=1 keep-alives, STOPPING=1. Through
 * libsystemd's sd_notify() where lifeboat was built with it, else the documented datagram
 * protocol. Nothing happens (0) when NOTIFY_SOCKET is unset: not under systemd.
 */

/* Sends state ("READY=1\nSTATUS=watching"): 1 sent, 0 no NOTIFY_SOCKET, or a negative errno. */
int lb_notify(const char *state);
/* The protocol itself, to socket (a path, or "@name" for an abstract socket), for when
 * libsystemd is not there (and for tests): one datagram, no reply. */
int lb_notify_socket(const char *socket, const char *state);
/* How often the manager wants WATCHDOG=1, in microseconds (WATCHDOG_USEC when WATCHDOG_PID is
 * this process or unset): 1 with *ret_usec, 0 when no watchdog is set, or a negative errno for
 * values that cannot be read. */
int lb_notify_watchdog_usec(uint64_t *ret_usec);
/* The rule lb_notify_watchdog_usec() follows without libsystemd, on the values of WATCHDOG_USEC
 * and WATCHDOG_PID (either may be NULL) for process self. */
int lb_notify_parse_watchdog(const char *usec, const char *pid, pid_t self, uint64_t *ret_usec);
