/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lifeboat/basic/time-util.h"

uint64_t lb_now_ms(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

void lb_sleep_ms(uint64_t ms, volatile const int *interrupted) {
        struct timespec ts = { .tv_sec = (time_t) (ms / 1000), .tv_nsec = (long) (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                if (interrupted && *interrupted)
                        return;
}

double lb_random01(void) {
        uint64_t v;
        if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t) sizeof v)
                v = (uint64_t) lb_now_ms() * 6364136223846793005ULL + (uint64_t) getpid();
        return (double) (v >> 11) / (double) (1ULL << 53);
}

