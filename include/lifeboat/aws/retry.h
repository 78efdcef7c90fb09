/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/*
 * The AWS SDKs' "standard" retry mode: at most 3 attempts, the delay before
 * attempt N (N >= 2) = random[0,1) x min(2^(N-2), 20) s, a token bucket of 500
 * that a retry costs 5 (10 after a timeout) and a first-try success refunds 1.
 */
#define LB_RETRY_MAX_ATTEMPTS 3
#define LB_RETRY_BASE_MS 1000u
#define LB_RETRY_CAP_MS 20000u
#define LB_RETRY_QUOTA 500
#define LB_RETRY_COST 5
#define LB_RETRY_TIMEOUT_COST 10
#define LB_RETRY_SUCCESS_REFUND 1

struct lb_retry_quota {
        int tokens;
};

/* A full bucket. */
void lb_retry_quota_init(struct lb_retry_quota *q);
/* Takes the cost of one retry; -EBUSY when the quota is exhausted. */
int lb_retry_quota_acquire(struct lb_retry_quota *q, bool timeout);
/* A success: refunds cost (after a retry) or the first-try refund. */
void lb_retry_quota_release(struct lb_retry_quota *q, bool was_retry, bool timeout);

/* The delay before attempt number "attempt" (2 for the first retry); rand01 in [0,1). */
uint64_t lb_retry_delay_ms(unsigned attempt, double rand01);

/* Whether an AWS error code means throttling. */
bool lb_retry_is_throttle_code(const char *code);
/* Whether an answer is worth another attempt: transport error, timeout, 500/502/503/504,
 * or a throttling / transient error code. */
bool lb_retry_is_retryable(bool transport_failed, long http_status, const char *aws_code);
