/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "lifeboat/basic/context.h"
#include "lifeboat/basic/log.h"

/* A sink with state, like the cli's: it notices when two threads are inside it at once. */
struct sink {
        atomic_int inside;
        atomic_int overlaps;
        unsigned messages;      /* only ever touched inside the sink */
        char last[128];
};

static void sink_fn(void *userdata, int level, const char *fmt, va_list ap) {
        struct sink *s = userdata;
        if (atomic_fetch_add(&s->inside, 1) != 0)
                atomic_fetch_add(&s->overlaps, 1);
        (void) vsnprintf(s->last, sizeof s->last, fmt, ap);
        /* Stay a while, so that an unserialised caller would be caught here. */
        for (volatile unsigned spin = 0; spin < 2000; spin++)
                ;
        s->messages++;
        atomic_fetch_sub(&s->inside, 1);
}

enum { THREADS = 8, MESSAGES = 500 };

static void *logger(void *p) {
        const struct lb_context *ctx = p;
        for (unsigned i = 0; i < MESSAGES; i++)
                lb_warn(ctx, "message %u of thread %p", i, (void *) pthread_self());
        return NULL;
}

static void test_sink_called_one_message_at_a_time(void **state) {
        struct sink s = { 0 };
        struct lb_context ctx = { .log_fn = sink_fn, .log_userdata = &s, .log_max_level = LB_LOG_DEBUG };
        pthread_t t[THREADS];
        for (unsigned i = 0; i < THREADS; i++)
                assert_int_equal(pthread_create(&t[i], NULL, logger, &ctx), 0);
        for (unsigned i = 0; i < THREADS; i++)
                assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(atomic_load(&s.overlaps), 0);
        assert_int_equal(s.messages, THREADS * MESSAGES);
        assert_non_null(strstr(s.last, "message 499 of thread"));
}

static void test_level_filter_and_no_sink(void **state) {
        struct sink s = { 0 };
        struct lb_context ctx = { .log_fn = sink_fn, .log_userdata = &s, .log_max_level = LB_LOG_INFO };
        lb_debug(&ctx, "dropped");
        lb_info(&ctx, "kept %d", 1);
        assert_int_equal(s.messages, 1);
        assert_string_equal(s.last, "kept 1");
        ctx.log_fn = NULL;
        lb_err(&ctx, "nowhere");
        lb_err(NULL, "nowhere");
        assert_int_equal(s.messages, 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sink_called_one_message_at_a_time),
                cmocka_unit_test(test_level_filter_and_no_sink),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
