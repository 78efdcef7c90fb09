/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

/* Clocks and waiting. */

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t lb_now_ms(void);
/* Sleeps for ms milliseconds, resuming after EINTR unless *interrupted becomes true. */
void lb_sleep_ms(uint64_t ms, volatile const int *interrupted);
/* A uniformly distributed double in [0, 1). */
double lb_random01(void);
