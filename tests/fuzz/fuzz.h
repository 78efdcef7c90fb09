/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the libFuzzer targets of tests/fuzz/ share (README, "Fuzzing"). A target is one file,
 * fuzz-NAME.c, defining LLVMFuzzerTestOneInput(), plus one lb_add_fuzz_target(NAME) line in
 * tests/fuzz/CMakeLists.txt and seeds in tests/fuzz/corpus/NAME/. A crash, a sanitizer report,
 * a leak or a failed fuzz_check() is a finding.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lifeboat/basic/context.h"
#include "lifeboat/basic/macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property that must hold (a round trip, say): when it does not, say which and abort, so that
 * libFuzzer keeps the input as a crash. */
#define fuzz_check(cond)                                                                        \
        do {                                                                                    \
                if (!(cond)) {                                                                  \
                        fprintf(stderr, "%s:%d: fuzz_check(%s) failed\n", __FILE__, __LINE__, #cond); \
                        abort();                                                                \
                }                                                                               \
        } while (0)

/* The input as a NUL-terminated string, for parsers of C strings (cut at its first NUL, as
 * they would see it); NULL when out of memory. Free it. */
static inline char *fuzz_string(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);
        if (!s)
                return NULL;
        memcpy(s, data, size);
        s[size] = '\0';
        return s;
}

static inline void fuzz_no_log(void *userdata, int level, const char *fmt, va_list ap) {
}

/* A context with the default settings that logs nothing; 0 or a negative errno. */
static inline int fuzz_context(struct lb_context *ctx) {
        int r = lb_context_init(ctx);
        if (r < 0)
                return r;
        ctx->log_fn = fuzz_no_log;
        ctx->log_max_level = LB_LOG_DEBUG;      /* every message is formatted, then dropped */
        return 0;
}
