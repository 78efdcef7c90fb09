/* SPDX-License-Identifier: MIT */
#pragma once

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#include "lifeboat/basic/macro.h"
#include "lifeboat/basic/util.h"

struct lb_context;

DEFINE_TRIVIAL_CLEANUP_FUNC(CURL *, curl_easy_cleanup);
DEFINE_TRIVIAL_CLEANUP_FUNC(CURLM *, curl_multi_cleanup);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct curl_slist *, curl_slist_free_all);

/*
 * One HTTP exchange. The caller fills in the request half; lb_http_perform()
 * fills in the result half. Several requests run concurrently over one
 * curl multi handle, so a batch costs one round trip of wall time.
 */
struct lb_http_request {
        /* request */
        const char *method;             /* "GET", "PUT", "POST" */
        const char *url;
        const char *body;               /* NULL: no body */
        size_t body_len;
        struct curl_slist *headers;     /* owned by the caller */
        const char *sigv4;              /* CURLOPT_AWS_SIGV4 value, e.g. "aws:amz:us-east-1:ec2" */
        const char *username;           /* SigV4 access key id */
        const char *password;           /* SigV4 secret key */
        const char *ca_bundle;          /* NULL: system default */
        long connect_timeout_ms;
        long timeout_ms;
        size_t max_response;            /* body cap; 0 = 1 MiB */

        /* result */
        CURLcode curl_code;
        long status;                    /* 0 when no HTTP answer arrived */
        struct lb_buf response;         /* NUL-terminated body */
        char error[CURL_ERROR_SIZE];    /* curl's message when curl_code != CURLE_OK */
        bool truncated;                 /* the body exceeded max_response */
};

/* Resets the result half so a request can be sent again. */
void lb_http_request_reset_result(struct lb_http_request *r);
void lb_http_request_done(struct lb_http_request *r);
static inline void lb_http_request_donep(struct lb_http_request *r) {
        lb_http_request_done(r);
}
#define _cleanup_http_request_ _cleanup_(lb_http_request_donep)

/* Performs all requests concurrently. Returns 0 when every transfer ran (check
 * each curl_code/status), or a negative errno when the batch could not run. */
int lb_http_perform(struct lb_http_request *const *reqs, size_t n);
static inline int lb_http_perform_one(struct lb_http_request *r) {
        return lb_http_perform(&r, 1);
}

/* Whether the transfer failed at the transport level (no HTTP answer). */
bool lb_http_transport_failed(const struct lb_http_request *r);
/* Whether curl gave up because of a timeout. */
bool lb_http_timed_out(const struct lb_http_request *r);

/* Process-wide libcurl setup; call once from main before threads exist. */
int lb_http_global_init(void);
void lb_http_global_done(void);
