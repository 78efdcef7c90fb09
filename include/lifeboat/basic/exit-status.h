/* SPDX-License-Identifier: MIT */
#pragma once

/* Exit codes of every command, documented in the README and lifeboat(8). Modules that decide
 * one (reap: 4 wins over 1) return these; the commands pass them on. */
enum {
        LB_EXIT_OK = 0,
        LB_EXIT_PARTIAL = 1,    /* some volumes skipped or quarantined */
        LB_EXIT_USAGE = 2,      /* usage or configuration error */
        LB_EXIT_UNAVAILABLE = 3, /* AWS unreachable, or own buffer volume not ready */
        LB_EXIT_ATTENTION = 4,  /* reap: stranded or quarantined volumes need a human */
};
