/* SPDX-License-Identifier: MIT */
/*
 * The EC2 client's request loop against a scripted transport. The test is
 * linked with -Wl,--wrap for lb_http_perform, lb_credentials_load,
 * lb_sleep_ms and lb_random01 (tests/CMakeLists.txt), so no socket is opened,
 * no time passes, and every request the client builds can be inspected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lifeboat/aws/creds-chain.h"
#include "lifeboat/aws/creds.h"
#include "lifeboat/aws/ec2.h"
#include "lifeboat/aws/http.h"
#include "lifeboat/aws/imds.h"
#include "lifeboat/aws/provider.h"
#include "lifeboat/aws/retry.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/util.h"
#include "testutil.h"

int __wrap_lb_http_perform(struct lb_http_request *const *reqs, size_t n);
int __wrap_lb_credentials_load(struct lb_context *ctx, const struct lb_creds_chain *chain, struct lb_credentials *ret);
void __wrap_lb_sleep_ms(uint64_t ms, volatile const int *interrupted);
double __wrap_lb_random01(void);

/* ---- scripted transport ---- */

struct reply {
        const char *match;      /* reply only to a body containing this; NULL = any */
        long status;
        const char *body;
        CURLcode curl_code;
};

struct seen {
        char *method, *url, *body, *headers, *sigv4, *username, *password, *ca_bundle;
        long connect_timeout_ms, timeout_ms;
        size_t max_response;
        unsigned round;
};

#define MAX_REPLIES 256
#define MAX_SEEN 256

static struct {
        struct reply replies[MAX_REPLIES];
        bool used[MAX_REPLIES];
        size_t n_replies;
        struct seen seen[MAX_SEEN];
        size_t n_seen;
        unsigned rounds;
        size_t round_sizes[MAX_SEEN];

        /* credentials */
        bool creds_from_imds;
        const char *creds_token;
        time_t creds_lifetime;
        unsigned creds_loads;
        int creds_fail;

        uint64_t sleeps[MAX_SEEN];
        size_t n_sleeps;
        volatile sig_atomic_t interrupt_on_sleep;
        double random;

        struct lbt_log log;
} T;

static void script(const char *match, long status, const char *body) {
        assert_true(T.n_replies < MAX_REPLIES);
        T.replies[T.n_replies++] = (struct reply) { .match = match, .status = status, .body = body };
}

static void script_transport(const char *match, CURLcode code) {
        assert_true(T.n_replies < MAX_REPLIES);
        T.replies[T.n_replies++] = (struct reply) { .match = match, .curl_code = code };
}

static const struct reply *next_reply(const char *body) {
        for (size_t i = 0; i < T.n_replies; i++)
                if (!T.used[i] && (!T.replies[i].match || strstr(body, T.replies[i].match))) {
                        T.used[i] = true;
                        return &T.replies[i];
                }
        fail_msg("no scripted reply left for %s", body);
        return NULL;
}

static char *dup_or_null(const char *s) {
        return s ? strdup(s) : NULL;
}

int __wrap_lb_http_perform(struct lb_http_request *const *reqs, size_t n) {
        T.round_sizes[T.rounds++] = n;
        for (size_t i = 0; i < n; i++) {
                struct lb_http_request *r = reqs[i];
                assert_true(T.n_seen < MAX_SEEN);
                struct seen *s = &T.seen[T.n_seen++];
                _cleanup_buf_ struct lb_buf h = {};
                for (struct curl_slist *l = r->headers; l; l = l->next)
                        assert_int_equal(lb_buf_printf(&h, "%s\n", l->data), 0);
                *s = (struct seen) {
                        .method = dup_or_null(r->method),
                        .url = dup_or_null(r->url),
                        .body = strndup(r->body ? r->body : "", r->body_len),
                        .headers = lb_buf_steal(&h),
                        .sigv4 = dup_or_null(r->sigv4),
                        .username = dup_or_null(r->username),
                        .password = dup_or_null(r->password),
                        .ca_bundle = dup_or_null(r->ca_bundle),
                        .connect_timeout_ms = r->connect_timeout_ms,
                        .timeout_ms = r->timeout_ms,
                        .max_response = r->max_response,
                        .round = T.rounds,
                };

                const struct reply *rep = next_reply(s->body);
                lb_http_request_reset_result(r);
                r->response.limit = r->max_response ? r->max_response : 1024 * 1024;
                r->curl_code = rep->curl_code;
                if (rep->curl_code != CURLE_OK) {
                        (void) lb_strscpy(r->error, sizeof r->error, curl_easy_strerror(rep->curl_code));
                        continue;
                }
                if (rep->body && lb_buf_append_str(&r->response, rep->body) < 0) {
                        /* What http.c does when the cap is hit. */
                        r->truncated = true;
                        r->curl_code = CURLE_WRITE_ERROR;
                        continue;
                }
                r->status = rep->status;
        }
        return 0;
}

int __wrap_lb_credentials_load(struct lb_context *ctx, const struct lb_creds_chain *chain, struct lb_credentials *ret) {
        T.creds_loads++;
        if (T.creds_fail < 0)
                return T.creds_fail;
        struct lb_credentials c = {
                .source = T.creds_from_imds ? LB_CREDS_INSTANCE_ROLE : LB_CREDS_ENVIRONMENT,
                .expiration = T.creds_from_imds ? time(NULL) + T.creds_lifetime : 0,
        };
        (void) lb_snprintf(c.access_key_id, sizeof c.access_key_id, "AKIDLOAD%u", T.creds_loads);
        (void) lb_snprintf(c.secret_access_key, sizeof c.secret_access_key, "SECRETKEY%u", T.creds_loads);
        if (T.creds_token) {
                c.session_token = strdup(T.creds_token);
                assert_non_null(c.session_token);
        }
        *ret = c;
        return 0;
}

void __wrap_lb_sleep_ms(uint64_t ms, volatile const int *interrupted) {
        assert_true(T.n_sleeps < MAX_SEEN);
        T.sleeps[T.n_sleeps++] = ms;
        if (T.interrupt_on_sleep)
                *(volatile int *) interrupted = 1;
}

double __wrap_lb_random01(void) {
        return T.random;
}

/* ---- fixture ---- */

struct fixture {
        struct lb_context ctx;
        volatile sig_atomic_t interrupted;
        struct lb_creds_provider *creds;
        struct lb_ec2 *ec2;
};

static void reset_script(void) {
        for (size_t i = 0; i < T.n_seen; i++) {
                struct seen *s = &T.seen[i];
                free(s->method), free(s->url), free(s->body), free(s->headers), free(s->sigv4);
                free(s->username), free(s->password), free(s->ca_bundle);
        }
        lbt_log_reset(&T.log);
        memset(&T, 0, sizeof T);
        T.random = 0.5;
        T.creds_lifetime = 6 * 3600;
}

static int set(char **field, const char *value) {
        free(*field);
        *field = value ? strdup(value) : NULL;
        return value && !*field ? -ENOMEM : 0;
}

static int setup(void **state) {
        reset_script();
        struct fixture *f = calloc(1, sizeof *f);
        if (!f || lb_context_init(&f->ctx) < 0)
                return -1;
        lbt_log_install(&f->ctx, &T.log);
        f->ctx.interrupted = &f->interrupted;
        f->ctx.settings.ec2_timeout_ms = 7000;
        f->ctx.settings.max_response_bytes = 4096;
        if (set(&f->ctx.settings.region, "us-east-1") < 0 ||
            set(&f->ctx.settings.ec2_endpoint, "http://127.0.0.1:4566") < 0 ||
            set(&f->ctx.settings.ca_bundle, "/etc/ssl/test-ca.pem") < 0)
                return -1;
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        /* Whatever happened, no secret reached the log. */
        if (T.log.text.data) {
                assert_null(strstr(T.log.text.data, "SECRETKEY"));
                assert_null(strstr(T.log.text.data, "TOKENVALUE"));
        }
        lb_ec2_free(f->ec2);
        lb_creds_provider_free(f->creds);
        lb_context_done(&f->ctx);
        free(f);
        reset_script();
        return 0;
}

static struct lb_creds_provider *provider(struct fixture *f) {
        if (!f->creds)
                assert_int_equal(lb_creds_provider_new(&f->ctx, lb_credentials_load, NULL, &f->creds), 0);
        return f->creds;
}

static struct lb_ec2 *client(struct fixture *f) {
        if (!f->ec2)
                assert_int_equal(lb_ec2_new(&f->ctx, provider(f), NULL, &f->ec2), 0);
        return f->ec2;
}

static const char *volumes_answer =
        "<DescribeVolumesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>r</requestId>"
        "<volumeSet><item><volumeId>vol-0123456789abcdef0</volumeId><status>available</status></item>"
        "</volumeSet></DescribeVolumesResponse>";

static const char *return_true =
        "<CreateTagsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>r</requestId>"
        "<return>true</return></CreateTagsResponse>";

#define EC2_ERROR(code) \
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>" code "</Code>" \
        "<Message>message for " code "</Message></Error></Errors><RequestID>rid-" code "</RequestID></Response>"

/* ---- tests ---- */

static void test_request_shape(void **state) {
        struct fixture *f = *state;
        struct lb_ec2 *ec2 = client(f);
        script(NULL, 200, return_true);

        assert_int_equal(lb_ec2_delete_volume(ec2, "vol-0123456789abcdef0"), 0);
        assert_int_equal(T.n_seen, 1);
        const struct seen *s = &T.seen[0];
        assert_string_equal(s->method, "POST");
        assert_string_equal(s->url, "http://127.0.0.1:4566/"); /* path "/", no query string */
        assert_string_equal(s->body, "Action=DeleteVolume&Version=2016-11-15&VolumeId=vol-0123456789abcdef0");
        assert_string_equal(s->headers, "Content-Type: application/x-www-form-urlencoded; charset=utf-8\n");
        assert_string_equal(s->sigv4, "aws:amz:us-east-1:ec2");
        assert_string_equal(s->username, "AKIDLOAD1");
        assert_string_equal(s->password, "SECRETKEY1");
        assert_string_equal(s->ca_bundle, "/etc/ssl/test-ca.pem");
        assert_int_equal(s->timeout_ms, 7000);
        assert_int_equal(s->connect_timeout_ms, 3000);
        assert_int_equal(s->max_response, 4096);
        assert_int_equal(lb_ec2_request_count(ec2), 1);
        assert_int_equal(lb_ec2_last_error(ec2)->kind, LB_AWS_OK);
        assert_int_equal(T.n_sleeps, 0);
}

static void test_session_token_header(void **state) {
        struct fixture *f = *state;
        T.creds_token = "TOKENVALUE/with+special=";
        (void) set(&f->ctx.settings.ec2_endpoint, "http://127.0.0.1:4566/");
        f->ctx.settings.ec2_timeout_ms = 1500;
        struct lb_ec2 *ec2 = client(f);
        script(NULL, 200, return_true);

        assert_int_equal(lb_ec2_delete_volume(ec2, "vol-0123456789abcdef0"), 0);
        const struct seen *s = &T.seen[0];
        assert_string_equal(s->url, "http://127.0.0.1:4566/");
        assert_string_equal(s->headers, "Content-Type: application/x-www-form-urlencoded; charset=utf-8\n"
                                        "x-amz-security-token: TOKENVALUE/with+special=\n");
        assert_int_equal(s->connect_timeout_ms, 1500); /* capped by the total */
        assert_int_equal(s->timeout_ms, 1500);
}

static void test_default_endpoint(void **state) {
        struct fixture *f = *state;
        (void) set(&f->ctx.settings.ec2_endpoint, NULL);
        (void) set(&f->ctx.settings.region, NULL);
        assert_int_equal(lb_ec2_new(&f->ctx, provider(f), "eu-west-1", &f->ec2), 0);
        script(NULL, 200, return_true);
        assert_int_equal(lb_ec2_delete_volume(f->ec2, "vol-0123456789abcdef0"), 0);
        assert_string_equal(T.seen[0].url, "https://ec2.eu-west-1.amazonaws.com/");
        assert_string_equal(T.seen[0].sigv4, "aws:amz:eu-west-1:ec2");

        /* No region anywhere: refused. A region that would bend the URL: refused. */
        struct lb_ec2 *other = NULL;
        assert_int_equal(lb_ec2_new(&f->ctx, provider(f), NULL, &other), -EINVAL);
        assert_int_equal(lb_ec2_new(&f->ctx, provider(f), "us-east-1.evil.com/x", &other), -EINVAL);
        assert_null(other);
}

static void test_throttle_then_success(void **state) {
        struct fixture *f = *state;
        struct lb_ec2 *ec2 = client(f);
        script(NULL, 503, EC2_ERROR("RequestLimitExceeded"));
        script(NULL, 200, return_true);

        assert_int_equal(lb_ec2_delete_volume(ec2, "vol-0123456789abcdef0"), 0);
        assert_int_equal(lb_ec2_request_count(ec2), 2);
        assert_int_equal(T.n_sleeps, 1);
        assert_int_equal(T.sleeps[0], 500); /* 0.5 x 1 s before attempt 2 */
        assert_string_equal(T.seen[0].body, T.seen[1].body);
        assert_int_equal(lb_ec2_last_error(ec2)->kind, LB_AWS_OK);
        assert_non_null(strstr(T.log.text.data, "RequestLimitExceeded"));
}

static void test_three_attempts_at_most(void **state) {
        struct fixture *f = *state;
        struct lb_ec2 *ec2 = client(f);
        for (int i = 0; i < 3; i++)
                script(NULL, 500, EC2_ERROR("InternalError"));

        assert_int_equal(lb_ec2_delete_volume(ec2, "vol-0123456789abcdef0"), -EREMOTEIO);
        assert_int_equal(lb_ec2_request_count(ec2), 3);
        assert_int_equal(T.n_sleeps, 2);
        assert_int_equal(T.sleeps[0], 500);
        assert_int_equal(T.sleeps[1], 1000);
        const struct lb_aws_error *e = lb_ec2_last_error(ec2);
        assert_int_equal(e->kind, LB_AWS_ERR_SERVER);
        assert_int_equal(e->http_status, 500);
        assert_string_equal(e->code, "InternalError");
        assert_string_equal(e->request_id, "rid-InternalError");
}

static void test_client_errors_are_final(void **state) {
        struct fixture *f = *state;
        struct lb_ec2 *ec2 = client(f);
        script(NULL, 400, EC2_ERROR("VolumeInUse"));
        struct lb_attachment a = { .device = "keep" };
        assert_int_equal(lb_ec2_attach_volume(ec2, "vol-0123456789abcdef0", "i-0123456789abcdef0", "/dev/sdf", &a),
                         -EBUSY);
        assert_string_equal(a.device, "keep");
        assert_int_equal(lb_ec2_request_count(ec2), 1);
        assert_int_equal(T.n_sleeps, 0);
        const struct lb_aws_error *e = lb_ec2_last_error(ec2);
        assert_int_equal(e->kind, LB_AWS_ERR_VOLUME_IN_USE);
        assert_int_equal(e->http_status, 400);
        assert_string_equal(e->message, "message for VolumeInUse");
        assert_string_equal(T.seen[0].body, "Action=AttachVolume&Version=2016-11-15&VolumeId=vol-0123456789abcdef0"
                                            "&InstanceId=i-0123456789abcdef0&Device=%2Fdev%2Fsdf");

        script(NULL, 400, EC2_ERROR("InvalidVolume.ZoneMismatch"));
        assert_int_equal(lb_ec2_attach_volume(ec2, "vol-0123456789abcdef0", "i-0123456789abcdef0", "/dev/sdf", &a),
                         -EXDEV);
        assert_int_equal(lb_ec2_request_count(ec2), 2);
}

static void test_transport_failure_retried(void **state) {
        struct fixture *f = *state;
        struct lb_ec2 *ec2 = client(f);
        script_transport(NULL, CURLE_COULDNT_CONNECT);
        script_transport(NULL, CURLE_OPERATION_TIMEDOUT);
        script(NULL, 200,
               "<AttachVolumeResponse><volumeId>vol-0123456789abcdef0</volumeId>"
               "<instanceId>i-0123456789abcdef0</instanceId><device>/dev/sdf</device><status>attaching</status>"
               "<attachTime>2026-01-15T10:22:01.000Z</attachTime></AttachVolumeResponse>");
        struct lb_attachment a = {};
        assert_int_equal(lb_ec2_attach_volume(ec2, "vol-0123456789abcdef0", "i-0123456789abcdef0", "/dev/sdf", &a), 0);
        assert_string_equal(a.state, "attaching");
        assert_int_equal(lb_ec2_request_count(ec2), 3);

        /* Every attempt failing at the transport level ends in EHOSTUNREACH. */
        for (int i = 0; i < 3; i++)
                script_transport(NULL, CURLE_COULDNT_CONNECT);
        assert_int_equal(lb_ec2_delete_volume(ec2, "vol-0123456789abcdef0"), -EHOSTUNREACH);
        assert_int_equal(lb_ec2_last_error(ec2)->kind, LB_AWS_ERR_TRANSPORT);
        assert_true(strlen(lb_ec2_last_error(ec2)->message) > 0);
}

static void test_bad_answers(void **state) {
        struct fixture *f = *state;
        struct lb_ec2 *ec2 = client(f);

        /* A body over the cap is a bad answer, not retried. */
        static char huge[8192];
        memset(huge, 'x', sizeof huge - 1);
        script(NULL, 200, huge);
        assert_int_equal(lb_ec2_delete_volume(ec2, "vol-0123456789abcdef0"), -EBADMSG);
        assert_int_equal(lb_ec2_last_error(ec2)->kind, LB_AWS_ERR_BAD_ANSWER);
        assert_int_equal(lb_ec2_request_count(ec2), 1);

        /* A 2xx that does not parse. */
        script(NULL, 200, "<CreateTagsResponse><return>false</return></CreateTagsResponse>");
        assert_int_equal(lb_ec2_delete_volume(ec2, "vol-0123456789abcdef0"), -EBADMSG);
        assert_int_equal(lb_ec2_last_error(ec2)->kind, LB_AWS_ERR_BAD_ANSWER);

        /* A 4xx without an EC2 error document: the status goes into the message. */
        script(NULL, 404, "<html>not here</html>");
        assert_int_equal(lb_ec2_delete_volume(ec2, "vol-0123456789abcdef0"), -EBADMSG);
        assert_int_equal(lb_ec2_last_error(ec2)->http_status, 404);
        assert_non_null(strstr(lb_ec2_last_error(ec2)->message, "404"));
        assert_int_equal(lb_ec2_request_count(ec2), 3);

        /* A 502 from a proxy: a server error, retried. */
        script(NULL, 502, "<html>Bad Gateway</html>");
        script(NULL, 200, return_true);
        assert_int_equal(lb_ec2_delete_volume(ec2, "vol-0123456789abcdef0"), 0);
        assert_int_equal(lb_ec2_request_count(ec2), 5);
}

static void test_auth_refresh_from_imds(void **state) {
        struct fixture *f = *state;
        T.creds_from_imds = true;
        struct lb_ec2 *ec2 = client(f);
        assert_int_equal(T.creds_loads, 1);

        /* AuthFailure: credentials are read again and the call re-sent at once, outside the 3 attempts. */
        script(NULL, 401, EC2_ERROR("AuthFailure"));
        script(NULL, 500, EC2_ERROR("InternalError"));
        script(NULL, 500, EC2_ERROR("InternalError"));
        script(NULL, 200, return_true);
        assert_int_equal(lb_ec2_delete_volume(ec2, "vol-0123456789abcdef0"), 0);
        assert_int_equal(T.creds_loads, 2);
        assert_int_equal(lb_ec2_request_count(ec2), 4);
        assert_string_equal(T.seen[0].username, "AKIDLOAD1");
        assert_string_equal(T.seen[1].username, "AKIDLOAD2");
        assert_string_equal(T.seen[3].username, "AKIDLOAD2");
        assert_int_equal(T.n_sleeps, 2); /* only the standard retries waited */

        /* Only once per call: a second AuthFailure is final. */
        script(NULL, 400, EC2_ERROR("RequestExpired"));
        script(NULL, 401, EC2_ERROR("AuthFailure"));
        assert_int_equal(lb_ec2_delete_volume(ec2, "vol-0123456789abcdef0"), -EACCES);
        assert_int_equal(T.creds_loads, 3);
        assert_int_equal(lb_ec2_request_count(ec2), 6);
        assert_string_equal(lb_ec2_last_error(ec2)->code, "AuthFailure");

        /* UnauthorizedOperation is a policy matter: no refresh. */
        script(NULL, 403, EC2_ERROR("UnauthorizedOperation"));
        assert_int_equal(lb_ec2_delete_volume(ec2, "vol-0123456789abcdef0"), -EACCES);
        assert_int_equal(T.creds_loads, 3);
        assert_int_equal(lb_ec2_request_count(ec2), 7);

        /* Re-reading fails: the AUTH error stands. */
        T.creds_fail = -EHOSTUNREACH;
        script(NULL, 400, EC2_ERROR("ExpiredToken"));
        assert_int_equal(lb_ec2_delete_volume(ec2, "vol-0123456789abcdef0"), -EACCES);
        assert_int_equal(lb_ec2_request_count(ec2), 8);
}

static void test_auth_failure_with_static_credentials(void **state) {
        struct fixture *f = *state;
        T.creds_from_imds = false;
        struct lb_ec2 *ec2 = client(f);
        script(NULL, 401, EC2_ERROR("AuthFailure"));
        assert_int_equal(lb_ec2_delete_volume(ec2, "vol-0123456789abcdef0"), -EACCES);
        assert_int_equal(T.creds_loads, 1);
        assert_int_equal(lb_ec2_request_count(ec2), 1);
}

static void test_credentials_refreshed_before_expiry(void **state) {
        struct fixture *f = *state;
        T.creds_from_imds = true;
        T.creds_lifetime = 60; /* inside the refresh margin */
        struct lb_ec2 *ec2 = client(f);
        script(NULL, 200, return_true);
        assert_int_equal(lb_ec2_delete_volume(ec2, "vol-0123456789abcdef0"), 0);
        assert_int_equal(T.creds_loads, 2);
        assert_string_equal(T.seen[0].username, "AKIDLOAD2");

        /* The source handed out credentials still inside the margin (IMDS rotates them only 5
         * minutes ahead): not asked again for every request, but once a minute. */
        script(NULL, 200, return_true);
        assert_int_equal(lb_ec2_delete_volume(ec2, "vol-0123456789abcdef0"), 0);
        assert_int_equal(T.creds_loads, 2);
        assert_string_equal(T.seen[1].username, "AKIDLOAD2");
}

static void test_failed_refresh_keeps_the_credentials(void **state) {
        struct fixture *f = *state;
        T.creds_from_imds = true;
        T.creds_lifetime = 60; /* inside the refresh margin */
        struct lb_ec2 *ec2 = client(f);
        assert_int_equal(T.creds_loads, 1);

        /* A failed refresh keeps the old credentials, says so and still sends; the next request
         * does not try again at once. */
        T.creds_fail = -EHOSTUNREACH;
        script(NULL, 200, return_true);
        assert_int_equal(lb_ec2_delete_volume(ec2, "vol-0123456789abcdef0"), 0);
        assert_int_equal(T.creds_loads, 2);
        assert_string_equal(T.seen[0].username, "AKIDLOAD1");
        assert_non_null(strstr(T.log.text.data, "Could not refresh the credentials"));
        script(NULL, 200, return_true);
        assert_int_equal(lb_ec2_delete_volume(ec2, "vol-0123456789abcdef0"), 0);
        assert_int_equal(T.creds_loads, 2);
        assert_string_equal(T.seen[1].username, "AKIDLOAD1");
}

static void test_batch(void **state) {
        struct fixture *f = *state;
        struct lb_ec2 *ec2 = client(f);
        script("vol-000000000000000a1", 200, return_true);
        script("vol-000000000000000a2", 503, EC2_ERROR("RequestLimitExceeded"));
        script("vol-000000000000000a3", 400, EC2_ERROR("VolumeInUse"));
        script("vol-000000000000000a2", 200, return_true);

        struct lb_query_call calls[3] = {};
        static const char *const ids[] = { "vol-000000000000000a1", "vol-000000000000000a2",
                                           "vol-000000000000000a3" };
        for (size_t i = 0; i < 3; i++) {
                assert_int_equal(lb_form_init_action(&calls[i].form, "DeleteVolume", "2016-11-15"), 0);
                assert_int_equal(lb_form_add(&calls[i].form, "VolumeId", ids[i]), 0);
        }
        assert_int_equal(lb_ec2_perform(ec2, calls, 3), 0);

        /* All three in one round, then only the throttled one. */
        assert_int_equal(T.rounds, 2);
        assert_int_equal(T.round_sizes[0], 3);
        assert_int_equal(T.round_sizes[1], 1);
        assert_int_equal(lb_ec2_request_count(ec2), 4);

        assert_int_equal(calls[0].result, 0);
        assert_non_null(strstr(calls[0].answer.data, "<return>true</return>"));
        assert_int_equal(calls[1].result, 0);
        assert_int_equal(calls[1].error.kind, LB_AWS_OK);
        assert_int_equal(calls[2].result, -EBUSY);
        assert_int_equal(calls[2].error.kind, LB_AWS_ERR_VOLUME_IN_USE);
        assert_null(calls[2].answer.data);
        assert_string_equal(lb_ec2_last_error(ec2)->code, "VolumeInUse");

        for (size_t i = 0; i < 3; i++)
                lb_query_call_done(&calls[i]);

        /* An empty form is a caller error; nothing is sent. */
        struct lb_query_call empty = {};
        assert_int_equal(lb_ec2_perform(ec2, &empty, 1), -EINVAL);
        assert_int_equal(lb_ec2_perform(ec2, NULL, 0), 0);
        assert_int_equal(lb_ec2_request_count(ec2), 4);
}

static void test_batch_waits_for_longest_delay(void **state) {
        struct fixture *f = *state;
        struct lb_ec2 *ec2 = client(f);
        /* Call 1 fails twice, call 2 once: the third round waits by attempt 3's window. */
        script("vol-000000000000000b1", 500, EC2_ERROR("InternalError"));
        script("vol-000000000000000b2", 500, EC2_ERROR("InternalError"));
        script("vol-000000000000000b1", 500, EC2_ERROR("InternalError"));
        script("vol-000000000000000b2", 200, return_true);
        script("vol-000000000000000b1", 200, return_true);

        struct lb_query_call calls[2] = {};
        assert_int_equal(lb_form_init_action(&calls[0].form, "DeleteVolume", "2016-11-15"), 0);
        assert_int_equal(lb_form_add(&calls[0].form, "VolumeId", "vol-000000000000000b1"), 0);
        assert_int_equal(lb_form_init_action(&calls[1].form, "DeleteVolume", "2016-11-15"), 0);
        assert_int_equal(lb_form_add(&calls[1].form, "VolumeId", "vol-000000000000000b2"), 0);
        assert_int_equal(lb_ec2_perform(ec2, calls, 2), 0);
        assert_int_equal(calls[0].result, 0);
        assert_int_equal(calls[1].result, 0);
        assert_int_equal(T.rounds, 3);
        assert_int_equal(T.n_sleeps, 2);
        assert_int_equal(T.sleeps[0], 500);
        assert_int_equal(T.sleeps[1], 1000);
        assert_int_equal(lb_ec2_last_error(ec2)->kind, LB_AWS_OK);
        lb_query_call_done(&calls[0]);
        lb_query_call_done(&calls[1]);
}

static void test_retry_quota(void **state) {
        struct fixture *f = *state;
        struct lb_ec2 *ec2 = client(f);
        /* 50 calls that fail 3 times each use 100 retries = the whole quota of 500. */
        for (int i = 0; i < 50; i++) {
                for (int j = 0; j < 3; j++)
                        script(NULL, 503, EC2_ERROR("Unavailable"));
                assert_int_equal(lb_ec2_delete_volume(ec2, "vol-0123456789abcdef0"), -EREMOTEIO);
        }
        assert_int_equal(lb_ec2_request_count(ec2), 150);

        /* Now a failure is not retried... */
        script(NULL, 503, EC2_ERROR("Unavailable"));
        assert_int_equal(lb_ec2_delete_volume(ec2, "vol-0123456789abcdef0"), -EREMOTEIO);
        assert_int_equal(lb_ec2_request_count(ec2), 151);

        /* ...until first-try successes have refunded a retry's cost. */
        for (int i = 0; i < 5; i++) {
                script(NULL, 200, return_true);
                assert_int_equal(lb_ec2_delete_volume(ec2, "vol-0123456789abcdef0"), 0);
        }
        script(NULL, 503, EC2_ERROR("Unavailable"));
        script(NULL, 200, return_true);
        assert_int_equal(lb_ec2_delete_volume(ec2, "vol-0123456789abcdef0"), 0);
        assert_int_equal(lb_ec2_request_count(ec2), 158);
}

static void test_interrupted_while_waiting(void **state) {
        struct fixture *f = *state;
        struct lb_ec2 *ec2 = client(f);
        T.interrupt_on_sleep = 1;
        script(NULL, 503, EC2_ERROR("RequestLimitExceeded"));
        assert_int_equal(lb_ec2_delete_volume(ec2, "vol-0123456789abcdef0"), -EAGAIN);
        assert_int_equal(lb_ec2_request_count(ec2), 1);
        assert_int_equal(lb_ec2_last_error(ec2)->kind, LB_AWS_ERR_THROTTLED);
}

static const char *page1 =
        "<DescribeVolumesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
        "<volumeSet><item><volumeId>vol-0000000000000000a</volumeId></item>"
        "<item><volumeId>vol-0000000000000000b</volumeId></item></volumeSet>"
        "<nextToken>page/2+token=</nextToken></DescribeVolumesResponse>";
static const char *page2 =
        "<DescribeVolumesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
        "<nextToken></nextToken><volumeSet><item><volumeId>vol-0000000000000000c</volumeId></item></volumeSet>"
        "</DescribeVolumesResponse>";

#define FIRST_PAGE_FORM                                                                   \
        "Action=DescribeVolumes&Version=2016-11-15&MaxResults=500"                        \
        "&Filter.1.Name=tag%3Alifeboat%3Agroup&Filter.1.Value.1=prod"                     \
        "&Filter.2.Name=status&Filter.2.Value.1=available&Filter.2.Value.2=in-use"

static void test_describe_volumes_pages(void **state) {
        struct fixture *f = *state;
        struct lb_ec2 *ec2 = client(f);
        script(NULL, 200, page1);
        script(NULL, 503, EC2_ERROR("RequestLimitExceeded")); /* a retry in the middle of the pages */
        script(NULL, 200, page2);

        static const char *const group[] = { "prod" };
        static const char *const states[] = { "available", "in-use" };
        const struct lb_filter filters[] = {
                { .name = "tag:lifeboat:group", .values = group, .n_values = 1 },
                { .name = "status", .values = states, .n_values = 2 },
        };
        _cleanup_volume_list_ struct lb_volume_list l = {};
        assert_int_equal(lb_ec2_describe_volumes(ec2, filters, 2, NULL, 0, &l), 0);
        assert_int_equal(l.n, 3);
        assert_string_equal(l.items[0].id, "vol-0000000000000000a");
        assert_string_equal(l.items[2].id, "vol-0000000000000000c");

        assert_int_equal(T.n_seen, 3);
        assert_string_equal(T.seen[0].body, FIRST_PAGE_FORM);
        assert_string_equal(T.seen[1].body, FIRST_PAGE_FORM "&NextToken=page%2F2%2Btoken%3D");
        assert_string_equal(T.seen[2].body, T.seen[1].body);
}

static void test_describe_volumes_by_id(void **state) {
        struct fixture *f = *state;
        struct lb_ec2 *ec2 = client(f);
        script(NULL, 200, volumes_answer);
        static const char *const ids[] = { "vol-0123456789abcdef0", "vol-0fedcba9876543210" };
        _cleanup_volume_list_ struct lb_volume_list l = {};
        assert_int_equal(lb_ec2_describe_volumes(ec2, NULL, 0, ids, 2, &l), 0);
        assert_int_equal(l.n, 1);
        assert_string_equal(T.seen[0].body, "Action=DescribeVolumes&Version=2016-11-15"
                                            "&VolumeId.1=vol-0123456789abcdef0&VolumeId.2=vol-0fedcba9876543210");
}

static void test_describe_volumes_failures(void **state) {
        struct fixture *f = *state;
        struct lb_ec2 *ec2 = client(f);

        /* A token that never moves on. */
        script(NULL, 200, page1);
        script(NULL, 200, page1);
        struct lb_volume_list l = { .n = 77 };
        assert_int_equal(lb_ec2_describe_volumes(ec2, NULL, 0, NULL, 0, &l), -EBADMSG);
        assert_int_equal(l.n, 77);
        assert_int_equal(lb_ec2_last_error(ec2)->kind, LB_AWS_ERR_BAD_ANSWER);

        /* The second page fails: nothing is returned. */
        script(NULL, 200, page1);
        script(NULL, 400, EC2_ERROR("InvalidParameterValue"));
        assert_int_equal(lb_ec2_describe_volumes(ec2, NULL, 0, NULL, 0, &l), -EINVAL);
        assert_int_equal(l.n, 77);
        assert_string_equal(lb_ec2_last_error(ec2)->code, "InvalidParameterValue");

        /* A filter without values never leaves the machine. */
        const struct lb_filter bad = { .name = "status" };
        unsigned before = lb_ec2_request_count(ec2);
        assert_int_equal(lb_ec2_describe_volumes(ec2, &bad, 1, NULL, 0, &l), -EINVAL);
        assert_int_equal(lb_ec2_request_count(ec2), before);
}

static void test_other_forms(void **state) {
        struct fixture *f = *state;
        struct lb_ec2 *ec2 = client(f);
        static const char *detach_ok = "<DetachVolumeResponse><volumeId>vol-0123456789abcdef0</volumeId>"
                                       "<status>detaching</status></DetachVolumeResponse>";

        script(NULL, 200, detach_ok);
        assert_int_equal(lb_ec2_detach_volume(ec2, "vol-0123456789abcdef0", NULL, false), 0);
        script(NULL, 200, detach_ok);
        assert_int_equal(lb_ec2_detach_volume(ec2, "vol-0123456789abcdef0", "i-0123456789abcdef0", true), 0);

        static const char *const res[] = { "vol-0123456789abcdef0", "vol-0fedcba9876543210" };
        const struct lb_tag tags[] = {
                { .key = "lifeboat:group", .value = "prod cluster" },
                { .key = "lifeboat:state", .value = NULL },
        };
        script(NULL, 200, return_true);
        assert_int_equal(lb_ec2_create_tags(ec2, res, 2, tags, 2), 0);
        script(NULL, 200, return_true);
        assert_int_equal(lb_ec2_delete_tags(ec2, res, 1, tags, 2), 0);
        script(NULL, 200, return_true);
        assert_int_equal(lb_ec2_set_delete_on_termination(ec2, "i-0123456789abcdef0", "/dev/sdf", false), 0);
        script(NULL, 200,
               "<DescribeInstancesResponse><reservationSet><item><instancesSet><item>"
               "<instanceId>i-0123456789abcdef0</instanceId><placement><availabilityZone>us-east-1a"
               "</availabilityZone></placement></item></instancesSet></item></reservationSet>"
               "</DescribeInstancesResponse>");
        struct lb_instance inst = {};
        assert_int_equal(lb_ec2_describe_instance(ec2, "i-0123456789abcdef0", &inst), 0);
        assert_string_equal(inst.availability_zone, "us-east-1a");
        lb_instance_done(&inst);

        static const char *const want[] = {
                "Action=DetachVolume&Version=2016-11-15&VolumeId=vol-0123456789abcdef0",
                "Action=DetachVolume&Version=2016-11-15&VolumeId=vol-0123456789abcdef0"
                "&InstanceId=i-0123456789abcdef0&Force=true",
                "Action=CreateTags&Version=2016-11-15&ResourceId.1=vol-0123456789abcdef0"
                "&ResourceId.2=vol-0fedcba9876543210&Tag.1.Key=lifeboat%3Agroup&Tag.1.Value=prod%20cluster"
                "&Tag.2.Key=lifeboat%3Astate&Tag.2.Value=",
                "Action=DeleteTags&Version=2016-11-15&ResourceId.1=vol-0123456789abcdef0"
                "&Tag.1.Key=lifeboat%3Agroup&Tag.1.Value=prod%20cluster&Tag.2.Key=lifeboat%3Astate",
                "Action=ModifyInstanceAttribute&Version=2016-11-15&InstanceId=i-0123456789abcdef0"
                "&BlockDeviceMapping.1.DeviceName=%2Fdev%2Fsdf&BlockDeviceMapping.1.Ebs.DeleteOnTermination=false",
                "Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-0123456789abcdef0",
        };
        assert_int_equal(T.n_seen, ELEMENTSOF(want));
        for (size_t i = 0; i < ELEMENTSOF(want); i++)
                assert_string_equal(T.seen[i].body, want[i]);

        /* Refused locally. */
        assert_int_equal(lb_ec2_delete_tags(ec2, res, 1, NULL, 0), -EINVAL);
        assert_int_equal(lb_ec2_create_tags(ec2, NULL, 0, tags, 1), -EINVAL);
        assert_int_equal(lb_ec2_attach_volume(ec2, "vol-0123456789abcdef0", NULL, "/dev/sdf", NULL), -EINVAL);
        assert_int_equal(T.n_seen, ELEMENTSOF(want));
}

static void form_donep(struct lb_form *f) {
        lb_form_done(f);
}
#define _cleanup_form_ _cleanup_(form_donep)

static const char *snapshots_page1 =
        "<DescribeSnapshotsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
        "<snapshotSet><item><snapshotId>snap-0000000000000000a</snapshotId><status>pending</status>"
        "<progress>45%</progress></item></snapshotSet>"
        "<nextToken>snap/2</nextToken></DescribeSnapshotsResponse>";
static const char *snapshots_page2 =
        "<DescribeSnapshotsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
        "<snapshotSet><item><snapshotId>snap-0000000000000000b</snapshotId><status>completed</status>"
        "</item></snapshotSet></DescribeSnapshotsResponse>";

static void test_describe_snapshots(void **state) {
        struct fixture *f = *state;
        struct lb_ec2 *ec2 = client(f);
        script(NULL, 200, snapshots_page1);
        script(NULL, 200, snapshots_page2);

        static const char *const group[] = { "prod" };
        static const char *const key[] = { "lifeboat:relocated-from" };
        const struct lb_filter filters[] = {
                { .name = "tag:lifeboat:group", .values = group, .n_values = 1 },
                { .name = "tag-key", .values = key, .n_values = 1 },
        };
        _cleanup_snapshot_list_ struct lb_snapshot_list l = {};
        assert_int_equal(lb_ec2_describe_snapshots(ec2, filters, 2, NULL, 0, &l), 0);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.items[0].id, "snap-0000000000000000a");
        assert_string_equal(l.items[0].progress, "45%");
        assert_string_equal(l.items[1].state, "completed");

        /* Owner.1=self always: without it EC2 lists public snapshots too. */
#define SNAPSHOTS_FORM                                                                     \
        "Action=DescribeSnapshots&Version=2016-11-15&Owner.1=self&MaxResults=1000"           \
        "&Filter.1.Name=tag%3Alifeboat%3Agroup&Filter.1.Value.1=prod"                        \
        "&Filter.2.Name=tag-key&Filter.2.Value.1=lifeboat%3Arelocated-from"
        assert_int_equal(T.n_seen, 2);
        assert_string_equal(T.seen[0].body, SNAPSHOTS_FORM);
        assert_string_equal(T.seen[1].body, SNAPSHOTS_FORM "&NextToken=snap%2F2");

        /* By id: no MaxResults (EC2 refuses both together). */
        script(NULL, 200, snapshots_page2);
        static const char *const ids[] = { "snap-0000000000000000b" };
        _cleanup_snapshot_list_ struct lb_snapshot_list one = {};
        assert_int_equal(lb_ec2_describe_snapshots(ec2, NULL, 0, ids, 1, &one), 0);
        assert_int_equal(one.n, 1);
        assert_string_equal(T.seen[2].body, "Action=DescribeSnapshots&Version=2016-11-15&Owner.1=self"
                                            "&SnapshotId.1=snap-0000000000000000b");

        /* A page that never moves on. */
        script(NULL, 200, snapshots_page1);
        script(NULL, 200, snapshots_page1);
        struct lb_snapshot_list bad = { .n = 9 };
        assert_int_equal(lb_ec2_describe_snapshots(ec2, NULL, 0, NULL, 0, &bad), -EBADMSG);
        assert_int_equal(bad.n, 9);
}

static void test_snapshot_and_volume_forms(void **state) {
        _cleanup_form_ struct lb_form f = {};
        const struct lb_tag tags[] = {
                { .key = "lifeboat:group", .value = "prod" },
                { .key = "lifeboat:relocated-from", .value = "vol-0123456789abcdef0" },
        };
        assert_int_equal(lb_ec2_form_create_snapshot(&f, "vol-0123456789abcdef0", "lifeboat: moving", tags, 2), 0);
        assert_string_equal(f.buf.data, "Action=CreateSnapshot&Version=2016-11-15&VolumeId=vol-0123456789abcdef0"
                                        "&Description=lifeboat%3A%20moving"
                                        "&TagSpecification.1.ResourceType=snapshot"
                                        "&TagSpecification.1.Tag.1.Key=lifeboat%3Agroup"
                                        "&TagSpecification.1.Tag.1.Value=prod"
                                        "&TagSpecification.1.Tag.2.Key=lifeboat%3Arelocated-from"
                                        "&TagSpecification.1.Tag.2.Value=vol-0123456789abcdef0");
        assert_int_equal(lb_ec2_form_create_snapshot(&f, "", NULL, NULL, 0), -EINVAL);

        assert_int_equal(lb_ec2_form_delete_snapshot(&f, "snap-0123456789abcdef0"), 0);
        assert_string_equal(f.buf.data, "Action=DeleteSnapshot&Version=2016-11-15&SnapshotId=snap-0123456789abcdef0");
        assert_int_equal(lb_ec2_form_delete_snapshot(&f, NULL), -EINVAL);

        struct lb_ec2_volume_spec spec = {
                .availability_zone = "us-east-1a",
                .snapshot_id = "snap-0123456789abcdef0",
                .size_gib = 8,
                .volume_type = "gp3",
                .iops = 4000,
                .throughput = 250,
                .tags = tags,
                .n_tags = 1,
                .client_token = "lifeboat-relocate-vol-0123456789abcdef0",
        };
        assert_int_equal(lb_ec2_form_create_volume(&f, &spec), 0);
        assert_string_equal(f.buf.data, "Action=CreateVolume&Version=2016-11-15&AvailabilityZone=us-east-1a"
                                        "&SnapshotId=snap-0123456789abcdef0&Size=8&VolumeType=gp3&Iops=4000"
                                        "&Throughput=250&TagSpecification.1.ResourceType=volume"
                                        "&TagSpecification.1.Tag.1.Key=lifeboat%3Agroup"
                                        "&TagSpecification.1.Tag.1.Value=prod"
                                        "&ClientToken=lifeboat-relocate-vol-0123456789abcdef0");

        /* What is not given is not sent. */
        struct lb_ec2_volume_spec plain = { .availability_zone = "us-east-1b", .size_gib = 1 };
        assert_int_equal(lb_ec2_form_create_volume(&f, &plain), 0);
        assert_string_equal(f.buf.data, "Action=CreateVolume&Version=2016-11-15&AvailabilityZone=us-east-1b&Size=1");

        /* Refused: no zone, neither snapshot nor size, a token EC2 would refuse. */
        struct lb_ec2_volume_spec bad = spec;
        bad.availability_zone = NULL;
        assert_int_equal(lb_ec2_form_create_volume(&f, &bad), -EINVAL);
        bad = (struct lb_ec2_volume_spec) { .availability_zone = "us-east-1a" };
        assert_int_equal(lb_ec2_form_create_volume(&f, &bad), -EINVAL);
        bad = spec;
        bad.client_token = "0123456789012345678901234567890123456789012345678901234567890123x"; /* 65 */
        assert_int_equal(lb_ec2_form_create_volume(&f, &bad), -EINVAL);
        bad.client_token = "with space";
        assert_int_equal(lb_ec2_form_create_volume(&f, &bad), -EINVAL);
        bad.client_token = "";
        assert_int_equal(lb_ec2_form_create_volume(&f, &bad), -EINVAL);
        bad.client_token = "0123456789012345678901234567890123456789012345678901234567890123"; /* 64 */
        assert_int_equal(lb_ec2_form_create_volume(&f, &bad), 0);
        assert_int_equal(lb_ec2_form_create_volume(&f, NULL), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_request_shape, setup, teardown),
                cmocka_unit_test_setup_teardown(test_session_token_header, setup, teardown),
                cmocka_unit_test_setup_teardown(test_default_endpoint, setup, teardown),
                cmocka_unit_test_setup_teardown(test_throttle_then_success, setup, teardown),
                cmocka_unit_test_setup_teardown(test_three_attempts_at_most, setup, teardown),
                cmocka_unit_test_setup_teardown(test_client_errors_are_final, setup, teardown),
                cmocka_unit_test_setup_teardown(test_transport_failure_retried, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_answers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_auth_refresh_from_imds, setup, teardown),
                cmocka_unit_test_setup_teardown(test_auth_failure_with_static_credentials, setup, teardown),
                cmocka_unit_test_setup_teardown(test_credentials_refreshed_before_expiry, setup, teardown),
                cmocka_unit_test_setup_teardown(test_failed_refresh_keeps_the_credentials, setup, teardown),
                cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
                cmocka_unit_test_setup_teardown(test_batch_waits_for_longest_delay, setup, teardown),
                cmocka_unit_test_setup_teardown(test_retry_quota, setup, teardown),
                cmocka_unit_test_setup_teardown(test_interrupted_while_waiting, setup, teardown),
                cmocka_unit_test_setup_teardown(test_describe_volumes_pages, setup, teardown),
                cmocka_unit_test_setup_teardown(test_describe_volumes_by_id, setup, teardown),
                cmocka_unit_test_setup_teardown(test_describe_volumes_failures, setup, teardown),
                cmocka_unit_test_setup_teardown(test_other_forms, setup, teardown),
                cmocka_unit_test_setup_teardown(test_describe_snapshots, setup, teardown),
                cmocka_unit_test(test_snapshot_and_volume_forms),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
