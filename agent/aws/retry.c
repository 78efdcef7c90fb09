/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "lifeboat/aws/retry.h"
#include "lifeboat/basic/macro.h"

void lb_retry_quota_init(struct lb_retry_quota *q) {
        q->tokens = LB_RETRY_QUOTA;
}

static int retry_cost(bool timeout) {
        return timeout ? LB_RETRY_TIMEOUT_COST : LB_RETRY_COST;
}

int lb_retry_quota_acquire(struct lb_retry_quota *q, bool timeout) {
        int cost = retry_cost(timeout);
        if (q->tokens < cost)
                return -EBUSY;
        q->tokens -= cost;
        return 0;
}

void lb_retry_quota_release(struct lb_retry_quota *q, bool was_retry, bool timeout) {
        int refund = was_retry ? retry_cost(timeout) : LB_RETRY_SUCCESS_REFUND;
        q->tokens = MIN(q->tokens + refund, LB_RETRY_QUOTA);
}

uint64_t lb_retry_delay_ms(unsigned attempt, double rand01) {
        if (attempt <= 1)
                return 0;       /* the first attempt goes out at once */

        /* Attempt 2 waits up to 1 s, attempt 3 up to 2 s, ... never more than 20 s. */
        unsigned exponent = attempt - 2;
        uint64_t ceiling = LB_RETRY_CAP_MS;
        if (exponent < 32)
                ceiling = MIN((uint64_t) LB_RETRY_BASE_MS << exponent, (uint64_t) LB_RETRY_CAP_MS);

        /* Keep a bad random source from pushing us outside [0, ceiling). */
        if (!(rand01 > 0.0))    /* also NaN */
                return 0;
        if (rand01 >= 1.0)
                return ceiling > 0 ? ceiling - 1 : 0;
        uint64_t delay = (uint64_t) floor(rand01 * (double) ceiling);
        return MIN(delay, ceiling > 0 ? ceiling - 1 : 0);
}

/* The codes botocore's standard mode treats as throttling, plus EC2's own. */
static const char *const throttle_codes[] = {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
};

/* Transient failures worth another attempt even when they come with a 4xx status. */
static const char *const transient_codes[] = {
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
        "Server.Unavailable",
        "Server.InternalError",
        "IDPCommunicationError",        /* STS could not reach the web identity's issuer (botocore retries it) */
};

static bool code_in(const char *code, const char *const *list, size_t n) {
        if (isempty(code))
                return false;
        for (size_t i = 0; i < n; i++)
                if (streq(code, list[i]))
                        return true;
        return false;
}

bool lb_retry_is_throttle_code(const char *code) {
        return code_in(code, throttle_codes, ELEMENTSOF(throttle_codes));
}

bool lb_retry_is_retryable(bool transport_failed, long http_status, const char *aws_code) {
        if (transport_failed)
                return true;
        if (lb_retry_is_throttle_code(aws_code) || code_in(aws_code, transient_codes, ELEMENTSOF(transient_codes)))
                return true;
        return http_status == 500 || http_status == 502 || http_status == 503 || http_status == 504;
}
