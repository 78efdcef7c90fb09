/* SPDX-License-Identifier: MIT */
/*
 * CloudWatch's PutMetricData: the form (compared with what awscli 2.9.19 sends, notes in
 * /work/notes/aws-wire.md 4.2), the answer, and the client against a scripted transport (the
 * test is linked with -Wl,--wrap for lb_http_perform, lb_sleep_ms and lb_random01: no socket,
 * no waiting).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lifeboat/aws/cloudwatch.h"
#include "lifeboat/aws/creds-chain.h"
#include "lifeboat/aws/http.h"
#include "lifeboat/aws/provider.h"
#include "lifeboat/aws/query.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/util.h"
#include "testutil.h"

int __wrap_lb_http_perform(struct lb_http_request *const *reqs, size_t n);
void __wrap_lb_sleep_ms(uint64_t ms, volatile const int *interrupted);
double __wrap_lb_random01(void);

#define WHEN ((time_t) 1714564800) /* 2024-05-01T12:00:00Z */

static const struct lb_metric_dimension group_zone[] = {
        { "Group", "ads" },
        { "AvailabilityZone", "us-east-1a" },
};

static const char *const put_ok =
        "<PutMetricDataResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\">\n"
        "  <ResponseMetadata>\n    <RequestId>e16fc4d3-9a04-11e0-9362-093a1EXAMPLE</RequestId>\n"
        "  </ResponseMetadata>\n</PutMetricDataResponse>\n";

#define CW_ERROR(type, code, message)                                                                      \
        "<ErrorResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\">\n  <Error>\n    <Type>" type \
        "</Type>\n    <Code>" code "</Code>\n    <Message>" message "</Message>\n  </Error>\n"                \
        "  <RequestId>rid-" code "</RequestId>\n</ErrorResponse>\n"

/* ---- the form ---- */

static char *form_of(const char *ns, const struct lb_metric_datum *data, size_t n, int *ret) {
        struct lb_form f = {};
        *ret = lb_cloudwatch_form_put_metric_data(&f, ns, data, n);
        return f.buf.data;
}

static void test_form(void **state) {
        (void) state;
        const struct lb_metric_datum data[] = {
                { .name = "Stranded", .value = 3, .unit = "Count", .timestamp = WHEN, .dimensions = group_zone,
                  .n_dimensions = 2 },
                { .name = "Ratio", .value = 0.1, .dimensions = group_zone, .n_dimensions = 1 },
                { .name = "Big", .value = 1e21, .unit = "Bytes" },
        };
        int r;
        _cleanup_free_ char *body = form_of("Lifeboat/test #1", data, ELEMENTSOF(data), &r);
        assert_int_equal(r, 0);
        assert_string_equal(body,
                            "Action=PutMetricData&Version=2010-08-01&Namespace=Lifeboat%2Ftest%20%231"
                            "&MetricData.member.1.MetricName=Stranded&MetricData.member.1.Value=3"
                            "&MetricData.member.1.Unit=Count&MetricData.member.1.Timestamp=2024-05-01T12%3A00%3A00Z"
                            "&MetricData.member.1.Dimensions.member.1.Name=Group"
                            "&MetricData.member.1.Dimensions.member.1.Value=ads"
                            "&MetricData.member.1.Dimensions.member.2.Name=AvailabilityZone"
                            "&MetricData.member.1.Dimensions.member.2.Value=us-east-1a"
                            "&MetricData.member.2.MetricName=Ratio&MetricData.member.2.Value=0.1"
                            "&MetricData.member.2.Dimensions.member.1.Name=Group"
                            "&MetricData.member.2.Dimensions.member.1.Value=ads"
                            "&MetricData.member.3.MetricName=Big&MetricData.member.3.Value=1e%2B21"
                            "&MetricData.member.3.Unit=Bytes");
}

static void test_form_refuses_what_cloudwatch_would(void **state) {
        (void) state;
        struct lb_metric_dimension many[LB_CLOUDWATCH_MAX_DIMENSIONS + 1];
        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                many[i] = (struct lb_metric_dimension) { "D", "v" };
        const struct lb_metric_dimension no_value[] = { { "Group", "" } };
        const struct lb_metric_datum bad[] = {
                { .name = "", .value = 1 },
                { .name = "NaN", .value = NAN },
                { .name = "Inf", .value = INFINITY },
                { .name = "Dims", .value = 1, .dimensions = many, .n_dimensions = ELEMENTSOF(many) },
                { .name = "NoValue", .value = 1, .dimensions = no_value, .n_dimensions = 1 },
                { .name = "NoArray", .value = 1, .dimensions = NULL, .n_dimensions = 1 },
        };
        const struct lb_metric_datum good = { .name = "Good", .value = 1, .dimensions = many,
                                              .n_dimensions = LB_CLOUDWATCH_MAX_DIMENSIONS };
        int r;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                /* Refused before anything is written, also behind a good datapoint. */
                const struct lb_metric_datum pair[] = { good, bad[i] };
                char *body = form_of("Lifeboat", pair, 2, &r);
                if (r != -EINVAL)
                        fail_msg("datapoint %zu (%s): expected -EINVAL, got %d", i, bad[i].name, r);
                assert_null(body);
        }
        assert_null(form_of("", &good, 1, &r));
        assert_int_equal(r, -EINVAL);
        assert_null(form_of(NULL, &good, 1, &r));
        assert_int_equal(r, -EINVAL);
        assert_null(form_of("Lifeboat", &good, 0, &r));
        assert_int_equal(r, -EINVAL);
        _cleanup_free_ struct lb_metric_datum *lots = calloc(LB_CLOUDWATCH_MAX_DATUMS + 1, sizeof *lots);
        assert_non_null(lots);
        for (size_t i = 0; i <= LB_CLOUDWATCH_MAX_DATUMS; i++)
                lots[i] = (struct lb_metric_datum) { .name = "M", .value = (double) i };
        assert_null(form_of("Lifeboat", lots, LB_CLOUDWATCH_MAX_DATUMS + 1, &r));
        assert_int_equal(r, -EINVAL);
        free(form_of("Lifeboat", lots, LB_CLOUDWATCH_MAX_DATUMS, &r));
        assert_int_equal(r, 0);
}

/* ---- the answer ---- */

static void test_answer(void **state) {
        (void) state;
        assert_int_equal(lb_cloudwatch_parse_put_metric_data(put_ok, strlen(put_ok)), 0);
        static const char *const bad[] = {
                "",
                "<PutMetricDataResponse><ResponseMetadata>",
                "<DeleteVolumeResponse><return>true</return></DeleteVolumeResponse>",
                "<html><body>proxy says hello</body></html>",
                CW_ERROR("Sender", "InvalidParameterValue", "no"),
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(lb_cloudwatch_parse_put_metric_data(bad[i], strlen(bad[i])), -EBADMSG);

        /* CloudWatch's error document is read like the other Query services'. */
        const char *doc = CW_ERROR("Sender", "InvalidParameterValue",
                                   "The value AWS/EC2 for parameter Namespace is invalid.");
        struct lb_aws_error e = {};
        assert_int_equal(lb_aws_parse_error(doc, strlen(doc), &e), 0);
        assert_string_equal(e.code, "InvalidParameterValue");
        assert_string_equal(e.message, "The value AWS/EC2 for parameter Namespace is invalid.");
        assert_string_equal(e.request_id, "rid-InvalidParameterValue");
        assert_int_equal(e.kind, LB_AWS_ERR_INVALID_PARAMETER);
}

/* ---- the client, against a scripted transport ---- */

struct reply {
        long status;
        const char *body;
        CURLcode curl_code;
};

static struct {
        struct reply replies[32];
        size_t n_replies, next;
        char *urls[32], *sigv4[32], *bodies[32];
        size_t n_seen;
        unsigned sleeps;
        struct lbt_log log;
} T;

static void script(long status, const char *body) {
        assert_true(T.n_replies < ELEMENTSOF(T.replies));
        T.replies[T.n_replies++] = (struct reply) { .status = status, .body = body };
}

int __wrap_lb_http_perform(struct lb_http_request *const *reqs, size_t n) {
        for (size_t i = 0; i < n; i++) {
                struct lb_http_request *r = reqs[i];
                assert_true(T.n_seen < ELEMENTSOF(T.urls));
                assert_true(T.next < T.n_replies);
                T.urls[T.n_seen] = strdup(r->url);
                T.sigv4[T.n_seen] = strdup(r->sigv4);
                T.bodies[T.n_seen] = strndup(r->body, r->body_len);
                T.n_seen++;
                const struct reply *rep = &T.replies[T.next++];
                lb_http_request_reset_result(r);
                r->response.limit = 1024 * 1024;
                r->curl_code = rep->curl_code;
                if (rep->curl_code != CURLE_OK)
                        continue;
                assert_int_equal(lb_buf_append_str(&r->response, rep->body), 0);
                r->status = rep->status;
        }
        return 0;
}

void __wrap_lb_sleep_ms(uint64_t ms, volatile const int *interrupted) {
        (void) ms, (void) interrupted;
        T.sleeps++;
}

double __wrap_lb_random01(void) {
        return 0.5;
}

struct fixture {
        struct lb_context ctx;
        struct lb_creds_provider *creds;
        struct lb_cloudwatch *cw;
};

static void reset(void) {
        for (size_t i = 0; i < T.n_seen; i++)
                free(T.urls[i]), free(T.sigv4[i]), free(T.bodies[i]);
        lbt_log_reset(&T.log);
        memset(&T, 0, sizeof T);
}

static int setup(void **state) {
        reset();
        struct fixture *f = calloc(1, sizeof *f);
        if (!f || lb_context_init(&f->ctx) < 0)
                return -1;
        lbt_log_install(&f->ctx, &T.log);
        struct lb_settings *s = &f->ctx.settings;
        s->region = strdup("eu-west-1");
        s->access_key_id = strdup("AKIDCLOUDWATCH");
        s->secret_access_key = strdup("SECRETKEYCW");
        if (!s->region || !s->access_key_id || !s->secret_access_key ||
            lb_creds_provider_new(&f->ctx, lb_credentials_load, NULL, &f->creds) < 0)
                return -1;
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        if (T.log.text.data)
                assert_null(strstr(T.log.text.data, "SECRETKEYCW"));
        lb_cloudwatch_free(f->cw);
        lb_creds_provider_free(f->creds);
        lb_context_done(&f->ctx);
        free(f);
        reset();
        return 0;
}

static void test_client_endpoint_and_signing(void **state) {
        struct fixture *f = *state;
        const struct lb_metric_datum d = { .name = "Deleted", .value = 2, .unit = "Count" };

        /* Default: the regional endpoint, signed for "monitoring". */
        assert_int_equal(lb_cloudwatch_new(&f->ctx, f->creds, NULL, &f->cw), 0);
        script(200, put_ok);
        assert_int_equal(lb_cloudwatch_put_metric_data(f->cw, "Lifeboat", &d, 1), 1);
        assert_string_equal(T.urls[0], "https://monitoring.eu-west-1.amazonaws.com/");
        assert_string_equal(T.sigv4[0], "aws:amz:eu-west-1:monitoring");
        assert_non_null(strstr(T.bodies[0], "Action=PutMetricData&Version=2010-08-01&Namespace=Lifeboat&"));
        assert_int_equal(lb_query_request_count(lb_cloudwatch_query(f->cw)), 1);
        lb_cloudwatch_free(f->cw);
        f->cw = NULL;

        /* AWS_ENDPOINT_URL_CLOUDWATCH, and a region given explicitly. */
        f->ctx.settings.cloudwatch_endpoint = strdup("http://127.0.0.1:4566");
        assert_non_null(f->ctx.settings.cloudwatch_endpoint);
        assert_int_equal(lb_cloudwatch_new(&f->ctx, f->creds, "ap-south-1", &f->cw), 0);
        script(200, put_ok);
        assert_int_equal(lb_cloudwatch_put_metric_data(f->cw, "Lifeboat", &d, 1), 1);
        assert_string_equal(T.urls[1], "http://127.0.0.1:4566/");
        assert_string_equal(T.sigv4[1], "aws:amz:ap-south-1:monitoring");

        /* No region at all, or one that would bend the URL: refused. */
        struct lb_cloudwatch *other = NULL;
        free(f->ctx.settings.region);
        f->ctx.settings.region = NULL;
        assert_int_equal(lb_cloudwatch_new(&f->ctx, f->creds, NULL, &other), -EINVAL);
        assert_int_equal(lb_cloudwatch_new(&f->ctx, f->creds, "us-east-1.evil.com/x", &other), -EINVAL);
        assert_null(other);
}

static void test_client_batches_of_a_thousand(void **state) {
        struct fixture *f = *state;
        const size_t n = 2 * LB_CLOUDWATCH_MAX_DATUMS + 5;
        _cleanup_free_ struct lb_metric_datum *data = calloc(n, sizeof *data);
        assert_non_null(data);
        for (size_t i = 0; i < n; i++)
                data[i] = (struct lb_metric_datum) { .name = "M", .value = (double) i };
        assert_int_equal(lb_cloudwatch_new(&f->ctx, f->creds, NULL, &f->cw), 0);
        script(200, put_ok);
        script(200, put_ok);
        script(200, put_ok);
        assert_int_equal(lb_cloudwatch_put_metric_data(f->cw, "Lifeboat", data, n), (int) n);
        assert_int_equal(T.n_seen, 3);
        /* Each request starts at member 1 and holds at most 1000. */
        assert_non_null(strstr(T.bodies[0], "&MetricData.member.1000.MetricName=M&MetricData.member.1000.Value=999"));
        assert_null(strstr(T.bodies[0], "MetricData.member.1001."));
        assert_non_null(strstr(T.bodies[1], "MetricData.member.1.MetricName=M&MetricData.member.1.Value=1000&"));
        assert_non_null(strstr(T.bodies[2], "MetricData.member.5.Value=2004"));
        assert_null(strstr(T.bodies[2], "MetricData.member.6."));
}

static void test_client_errors(void **state) {
        struct fixture *f = *state;
        const struct lb_metric_datum d = { .name = "Stranded", .value = 1 };
        char text[600];
        assert_int_equal(lb_cloudwatch_new(&f->ctx, f->creds, NULL, &f->cw), 0);
        struct lb_query *q = lb_cloudwatch_query(f->cw);

        /* Throttling and a 500 are retried (standard mode), then it goes through. */
        script(400, CW_ERROR("Sender", "Throttling", "Rate exceeded"));
        script(500, CW_ERROR("Receiver", "InternalServiceError", "Internal failure"));
        script(200, put_ok);
        assert_int_equal(lb_cloudwatch_put_metric_data(f->cw, "Lifeboat", &d, 1), 1);
        assert_int_equal(T.n_seen, 3);
        assert_int_equal(T.sleeps, 2);

        /* A refusal is final: nothing taken, the error says what CloudWatch said. */
        script(400, CW_ERROR("Sender", "InvalidParameterValue",
                             "The parameter MetricData.member.1.Unit must be a value in the set [ Count ]."));
        assert_int_equal(lb_cloudwatch_put_metric_data(f->cw, "Lifeboat", &d, 1), 0);
        assert_int_equal(T.n_seen, 4);
        assert_int_equal(lb_query_last_error(q)->kind, LB_AWS_ERR_INVALID_PARAMETER);
        assert_string_equal(lb_query_last_error_text(q, text, sizeof text),
                            "InvalidParameterValue: The parameter MetricData.member.1.Unit must be a value in the "
                            "set [ Count ]. (request id rid-InvalidParameterValue)");
        script(403, CW_ERROR("Sender", "AccessDenied", "User is not authorized to perform: cloudwatch:PutMetricData"));
        assert_int_equal(lb_cloudwatch_put_metric_data(f->cw, "Lifeboat", &d, 1), 0);
        assert_string_equal(lb_query_last_error(q)->code, "AccessDenied");

        /* A 200 that is not PutMetricData's answer is not taken for success. */
        script(200, "<html>captive portal</html>");
        assert_int_equal(lb_cloudwatch_put_metric_data(f->cw, "Lifeboat", &d, 1), 0);
        assert_int_equal(lb_query_last_error(q)->kind, LB_AWS_ERR_BAD_ANSWER);

        /* Unreachable: retried, then nothing taken. */
        size_t seen = T.n_seen;
        for (int i = 0; i < 3; i++)
                T.replies[T.n_replies++] = (struct reply) { .curl_code = CURLE_COULDNT_CONNECT };
        assert_int_equal(lb_cloudwatch_put_metric_data(f->cw, "Lifeboat", &d, 1), 0);
        assert_int_equal(T.n_seen - seen, 3);
        assert_int_equal(lb_query_last_error(q)->kind, LB_AWS_ERR_TRANSPORT);

        /* A datapoint the form refuses sends nothing. */
        const struct lb_metric_datum nan = { .name = "X", .value = NAN };
        seen = T.n_seen;
        assert_int_equal(lb_cloudwatch_put_metric_data(f->cw, "Lifeboat", &nan, 1), -EINVAL);
        assert_int_equal(T.n_seen, seen);
        assert_int_equal(lb_cloudwatch_put_metric_data(f->cw, "Lifeboat", &d, 0), 0);
        assert_int_equal(T.n_seen, seen);
}

static void test_client_partial(void **state) {
        struct fixture *f = *state;
        const size_t n = LB_CLOUDWATCH_MAX_DATUMS + 1;
        _cleanup_free_ struct lb_metric_datum *data = calloc(n, sizeof *data);
        assert_non_null(data);
        for (size_t i = 0; i < n; i++)
                data[i] = (struct lb_metric_datum) { .name = "M", .value = 1 };
        assert_int_equal(lb_cloudwatch_new(&f->ctx, f->creds, NULL, &f->cw), 0);
        /* Both requests go out in one round: the first is taken, the second refused. */
        script(200, put_ok);
        script(400, CW_ERROR("Sender", "InvalidParameterValue", "no"));
        assert_int_equal(lb_cloudwatch_put_metric_data(f->cw, "Lifeboat", data, n), LB_CLOUDWATCH_MAX_DATUMS);
        assert_string_equal(lb_query_last_error(lb_cloudwatch_query(f->cw))->code, "InvalidParameterValue");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_form),
                cmocka_unit_test(test_form_refuses_what_cloudwatch_would),
                cmocka_unit_test(test_answer),
                cmocka_unit_test_setup_teardown(test_client_endpoint_and_signing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_client_batches_of_a_thousand, setup, teardown),
                cmocka_unit_test_setup_teardown(test_client_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_client_partial, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
