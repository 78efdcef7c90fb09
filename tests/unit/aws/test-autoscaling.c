/* SPDX-License-Identifier: MIT */
/*
 * The Auto Scaling client: the parsers of its answers and errors (buffers in, structs out), its
 * forms, and the calls against a scripted transport. The test is linked with -Wl,--wrap for
 * lb_http_perform, lb_credentials_load, lb_sleep_ms and lb_random01 (tests/CMakeLists.txt), so
 * no socket is opened and no time passes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lifeboat/aws/autoscaling.h"
#include "lifeboat/aws/creds-chain.h"
#include "lifeboat/aws/creds.h"
#include "lifeboat/aws/http.h"
#include "lifeboat/aws/imds.h"
#include "lifeboat/aws/provider.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/util.h"
#include "testutil.h"

#define NS "xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\""
#define IID "i-1234567890abcdef0"

static inline void form_donep(struct lb_form *f) {
        lb_form_done(f);
}
#define _cleanup_form_ _cleanup_(form_donep)

/* ---- DescribeAutoScalingInstances ---- */

/* The shape of aws-wire.md 2.3, with the members in another order and elements lifeboat ignores. */
static const char instances_answer[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<DescribeAutoScalingInstancesResponse " NS ">\n"
        "  <DescribeAutoScalingInstancesResult>\n"
        "    <AutoScalingInstances>\n"
        "      <member>\n"
        "        <InstanceType>m5.large</InstanceType>\n"
        "        <AutoScalingGroupName>ads-spot</AutoScalingGroupName>\n"
        "        <InstanceId>" IID "</InstanceId>\n"
        "        <AvailabilityZone>us-east-1a</AvailabilityZone>\n"
        "        <AvailabilityZoneId>use1-az1</AvailabilityZoneId>\n"
        "        <LifecycleState>Terminating:Wait</LifecycleState>\n"
        "        <HealthStatus>HEALTHY</HealthStatus>\n"
        "        <LaunchTemplate>\n"
        "          <LaunchTemplateId>lt-0123456789abcdef0</LaunchTemplateId>\n"
        "          <LaunchTemplateName>ads</LaunchTemplateName>\n"
        "          <Version>3</Version>\n"
        "        </LaunchTemplate>\n"
        "        <ProtectedFromScaleIn>true</ProtectedFromScaleIn>\n"
        "      </member>\n"
        "      <member>\n"
        "        <InstanceId>i-0fedcba0987654321</InstanceId>\n"
        "        <AutoScalingGroupName>eks ng/1 (prod) \xc3\xa9t\xc3\xa9</AutoScalingGroupName>\n"
        "        <LifecycleState>InService</LifecycleState>\n"
        "      </member>\n"
        "    </AutoScalingInstances>\n"
        "    <NextToken>page-2</NextToken>\n"
        "  </DescribeAutoScalingInstancesResult>\n"
        "  <ResponseMetadata><RequestId>7c6e177f-f082-11e1-ac58-3714bEXAMPLE</RequestId></ResponseMetadata>\n"
        "</DescribeAutoScalingInstancesResponse>\n";

static void test_parse_instances(void **state) {
        _cleanup_asg_instance_list_ struct lb_asg_instance_list l = {};
        _cleanup_free_ char *token = NULL;
        assert_int_equal(lb_autoscaling_parse_instances(instances_answer, strlen(instances_answer), &l, &token), 0);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.items[0].instance_id, IID);
        assert_string_equal(l.items[0].group, "ads-spot");
        assert_string_equal(l.items[0].availability_zone, "us-east-1a");
        assert_string_equal(l.items[0].lifecycle_state, "Terminating:Wait");
        assert_string_equal(l.items[0].health_status, "HEALTHY");
        assert_true(l.items[0].protected_from_scale_in);
        /* Missing optional elements are empty; a group name may hold spaces, '/' and UTF-8. */
        assert_string_equal(l.items[1].group, "eks ng/1 (prod) \xc3\xa9t\xc3\xa9");
        assert_string_equal(l.items[1].availability_zone, "");
        assert_false(l.items[1].protected_from_scale_in);
        assert_string_equal(token, "page-2");

        /* No token wanted: fine. */
        _cleanup_asg_instance_list_ struct lb_asg_instance_list l2 = {};
        assert_int_equal(lb_autoscaling_parse_instances(instances_answer, strlen(instances_answer), &l2, NULL), 0);
        assert_int_equal(l2.n, 2);
}

static void test_parse_instances_empty(void **state) {
        /* An instance in no group: an empty list (with and without the list element), no token. */
        static const char *const empty[] = {
                "<DescribeAutoScalingInstancesResponse " NS "><DescribeAutoScalingInstancesResult>"
                "<AutoScalingInstances/></DescribeAutoScalingInstancesResult>"
                "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeAutoScalingInstancesResponse>",
                "<DescribeAutoScalingInstancesResponse><DescribeAutoScalingInstancesResult/>"
                "</DescribeAutoScalingInstancesResponse>",
        };
        for (size_t i = 0; i < ELEMENTSOF(empty); i++) {
                struct lb_asg_instance_list l = { .n = 99 };
                char *token = (char *) "untouched";
                assert_int_equal(lb_autoscaling_parse_instances(empty[i], strlen(empty[i]), &l, &token), 0);
                assert_int_equal(l.n, 0);
                assert_null(l.items);
                assert_null(token);
        }
}

static void test_parse_instances_rejected(void **state) {
        char long_group[LB_ASG_NAME_MAX + 300];
        _cleanup_buf_ struct lb_buf b = {};
        memset(long_group, 'g', LB_ASG_NAME_MAX + 1);
        long_group[LB_ASG_NAME_MAX + 1] = '\0';
        assert_int_equal(lb_buf_printf(&b,
                                       "<DescribeAutoScalingInstancesResponse><DescribeAutoScalingInstancesResult>"
                                       "<AutoScalingInstances><member><InstanceId>" IID "</InstanceId>"
                                       "<AutoScalingGroupName>%s</AutoScalingGroupName></member>"
                                       "</AutoScalingInstances></DescribeAutoScalingInstancesResult>"
                                       "</DescribeAutoScalingInstancesResponse>",
                                       long_group),
                         0);
#define MEMBER(x)                                                                                               \
        "<DescribeAutoScalingInstancesResponse><DescribeAutoScalingInstancesResult><AutoScalingInstances>" \
        "<member>" x "</member></AutoScalingInstances></DescribeAutoScalingInstancesResult>"               \
        "</DescribeAutoScalingInstancesResponse>"
        const char *const bad[] = {
                "",
                "not xml",
                "<DescribeAutoScalingInstancesResponse><DescribeAutoScalingInstancesResult>",     /* cut */
                /* Another action's answer, no Result, an error document. */
                "<DescribeLifecycleHooksResponse><DescribeLifecycleHooksResult/></DescribeLifecycleHooksResponse>",
                "<DescribeAutoScalingInstancesResponse><ResponseMetadata/></DescribeAutoScalingInstancesResponse>",
                "<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code><Message>m</Message></Error>"
                "<RequestId>r</RequestId></ErrorResponse>",
                /* A member without its id or group, or with values lifeboat would not send back. */
                MEMBER("<AutoScalingGroupName>ads-spot</AutoScalingGroupName>"),
                MEMBER("<InstanceId>" IID "</InstanceId>"),
                MEMBER("<InstanceId>vol-1234567890abcdef0</InstanceId><AutoScalingGroupName>a</AutoScalingGroupName>"),
                MEMBER("<InstanceId>" IID "</InstanceId><AutoScalingGroupName>a&#10;b</AutoScalingGroupName>"),
                MEMBER("<InstanceId>" IID "</InstanceId><AutoScalingGroupName>a</AutoScalingGroupName>"
                       "<ProtectedFromScaleIn>maybe</ProtectedFromScaleIn>"),
                MEMBER("<InstanceId>" IID "</InstanceId><AutoScalingGroupName>a</AutoScalingGroupName>"
                       "<LifecycleState>Terminating:Wait but this is far too long for its field</LifecycleState>"),
                b.data,
        };
#undef MEMBER
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct lb_asg_instance_list l = { .n = 7 };
                char *token = (char *) "untouched";
                int r = lb_autoscaling_parse_instances(bad[i], strlen(bad[i]), &l, &token);
                if (r != -EBADMSG)
                        fail_msg("case %zu: %d, expected -EBADMSG", i, r);
                assert_int_equal(l.n, 7);
                assert_string_equal(token, "untouched");
        }
}

/* ---- DescribeLifecycleHooks ---- */

static const char hooks_answer[] =
        "<DescribeLifecycleHooksResponse " NS ">\n"
        "  <DescribeLifecycleHooksResult>\n"
        "    <LifecycleHooks>\n"
        "      <member>\n"
        "        <DefaultResult>CONTINUE</DefaultResult>\n"
        "        <LifecycleHookName>lifeboat-drain</LifecycleHookName>\n"
        "        <AutoScalingGroupName>ads-spot</AutoScalingGroupName>\n"
        "        <LifecycleTransition>autoscaling:EC2_INSTANCE_TERMINATING</LifecycleTransition>\n"
        "        <HeartbeatTimeout>300</HeartbeatTimeout>\n"
        "        <GlobalTimeout>30000</GlobalTimeout>\n"
        "        <NotificationMetadata>anything</NotificationMetadata>\n"
        "      </member>\n"
        "      <member>\n"
        "        <LifecycleHookName>ecs-managed-draining-termination-hook</LifecycleHookName>\n"
        "        <AutoScalingGroupName>ads-spot</AutoScalingGroupName>\n"
        "      </member>\n"
        "    </LifecycleHooks>\n"
        "  </DescribeLifecycleHooksResult>\n"
        "  <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>\n"
        "</DescribeLifecycleHooksResponse>\n";

static void test_parse_hooks(void **state) {
        _cleanup_lifecycle_hook_list_ struct lb_lifecycle_hook_list l = {};
        assert_int_equal(lb_autoscaling_parse_lifecycle_hooks(hooks_answer, strlen(hooks_answer), &l), 0);
        assert_int_equal(l.n, 2);
        const struct lb_lifecycle_hook *h = &l.items[0];
        assert_string_equal(h->name, "lifeboat-drain");
        assert_string_equal(h->group, "ads-spot");
        assert_string_equal(h->transition, LB_LIFECYCLE_TERMINATING);
        assert_int_equal(h->heartbeat_timeout_s, 300);
        assert_int_equal(h->global_timeout_s, 30000);
        assert_string_equal(h->default_result, "CONTINUE");
        /* What is not there is 0 or "". */
        assert_int_equal(l.items[1].heartbeat_timeout_s, 0);
        assert_string_equal(l.items[1].default_result, "");

        static const char none[] = "<DescribeLifecycleHooksResponse><DescribeLifecycleHooksResult><LifecycleHooks/>"
                                   "</DescribeLifecycleHooksResult></DescribeLifecycleHooksResponse>";
        _cleanup_lifecycle_hook_list_ struct lb_lifecycle_hook_list l2 = {};
        assert_int_equal(lb_autoscaling_parse_lifecycle_hooks(none, strlen(none), &l2), 0);
        assert_int_equal(l2.n, 0);
}

static void test_parse_hooks_rejected(void **state) {
#define HOOK(x)                                                                                            \
        "<DescribeLifecycleHooksResponse><DescribeLifecycleHooksResult><LifecycleHooks><member>" x \
        "</member></LifecycleHooks></DescribeLifecycleHooksResult></DescribeLifecycleHooksResponse>"
#define NAMED "<LifecycleHookName>h</LifecycleHookName><AutoScalingGroupName>g</AutoScalingGroupName>"
        static const char *const bad[] = {
                HOOK("<AutoScalingGroupName>g</AutoScalingGroupName>"),
                HOOK("<LifecycleHookName>h</LifecycleHookName>"),
                HOOK("<LifecycleHookName>a hook</LifecycleHookName><AutoScalingGroupName>g</AutoScalingGroupName>"),
                HOOK(NAMED "<HeartbeatTimeout>soon</HeartbeatTimeout>"),
                HOOK(NAMED "<HeartbeatTimeout>-30</HeartbeatTimeout>"),
                HOOK(NAMED "<GlobalTimeout>4294967296</GlobalTimeout>"),
                HOOK(NAMED "<DefaultResult>CONTINUE-CONTINUE-CONTINUE</DefaultResult>"),
                "<DescribeAutoScalingInstancesResponse><DescribeAutoScalingInstancesResult/>"
                "</DescribeAutoScalingInstancesResponse>",
                "<DescribeLifecycleHooksResponse/>",
        };
#undef NAMED
#undef HOOK
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct lb_lifecycle_hook_list l = { .n = 3 };
                int r = lb_autoscaling_parse_lifecycle_hooks(bad[i], strlen(bad[i]), &l);
                if (r != -EBADMSG)
                        fail_msg("case %zu: %d, expected -EBADMSG", i, r);
                assert_int_equal(l.n, 3);
        }
}

/* ---- actions without output, and errors ---- */

static void test_parse_empty_result(void **state) {
        static const char complete[] =
                "<CompleteLifecycleActionResponse " NS ">\n  <CompleteLifecycleActionResult/>\n"
                "  <ResponseMetadata><RequestId>7c6e177f-f082-11e1-ac58-3714bEXAMPLE</RequestId></ResponseMetadata>\n"
                "</CompleteLifecycleActionResponse>\n";
        assert_int_equal(lb_autoscaling_parse_empty_result(complete, strlen(complete), "CompleteLifecycleAction"), 0);
        /* Another action's answer, a missing Result element, an error, an empty body: not it. */
        assert_int_equal(lb_autoscaling_parse_empty_result(complete, strlen(complete), "RecordLifecycleActionHeartbeat"),
                         -EBADMSG);
        static const char no_result[] = "<CompleteLifecycleActionResponse><ResponseMetadata/>"
                                        "</CompleteLifecycleActionResponse>";
        assert_int_equal(lb_autoscaling_parse_empty_result(no_result, strlen(no_result), "CompleteLifecycleAction"),
                         -EBADMSG);
        static const char error[] = "<ErrorResponse><Error><Code>ValidationError</Code></Error></ErrorResponse>";
        assert_int_equal(lb_autoscaling_parse_empty_result(error, strlen(error), "CompleteLifecycleAction"), -EBADMSG);
        assert_int_equal(lb_autoscaling_parse_empty_result("", 0, "CompleteLifecycleAction"), -EBADMSG);
        assert_int_equal(lb_autoscaling_parse_empty_result(complete, strlen(complete), ""), -EINVAL);
        assert_int_equal(lb_autoscaling_parse_empty_result(complete, strlen(complete), NULL), -EINVAL);
}

#define AS_ERROR(type, code, message)                                                                    \
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse " NS ">\n  <Error>\n    <Type>" type \
        "</Type>\n    <Code>" code "</Code>\n    <Message>" message "</Message>\n  </Error>\n"           \
        "  <RequestId>b8ad5f0e-0c1a-11e9-9e2c-example</RequestId>\n</ErrorResponse>\n"

static void test_errors(void **state) {
        static const struct {
                const char *body;
                long status;
                const char *code;
                enum lb_aws_error_kind kind;
                bool no_action;
        } cases[] = {
                /* The normal end of a hold somebody else ended (aws-wire.md 2.6). */
                { AS_ERROR("Sender", "ValidationError", "No active Lifecycle Action found with instance ID " IID), 400,
                  "ValidationError", LB_AWS_ERR_INVALID_PARAMETER, true },
                { AS_ERROR("Sender", "ValidationError",
                           "No active Lifecycle Action found with token f66c3d47-e602-4af0-8edd-d4e4d2fe4620"),
                  400, "ValidationError", LB_AWS_ERR_INVALID_PARAMETER, true },
                /* Other validation errors are errors. */
                { AS_ERROR("Sender", "ValidationError", "AutoScalingGroup name not found - AutoScalingGroup x not found"),
                  400, "ValidationError", LB_AWS_ERR_INVALID_PARAMETER, false },
                { AS_ERROR("Sender", "Throttling", "Rate exceeded"), 400, "Throttling", LB_AWS_ERR_THROTTLED, false },
                { AS_ERROR("Sender", "AccessDenied", "User: arn:aws:sts::1:assumed-role/r/i is not authorized"), 403,
                  "AccessDenied", LB_AWS_ERR_AUTH, false },
                { AS_ERROR("Receiver", "ResourceContention", "You already have a pending update"), 500,
                  "ResourceContention", LB_AWS_ERR_SERVER, false },
                /* The same text under another code is not the normal end. */
                { AS_ERROR("Sender", "InvalidParameter", "No active Lifecycle Action found with instance ID " IID), 400,
                  "InvalidParameter", LB_AWS_ERR_INVALID_PARAMETER, false },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct lb_aws_error e = {};
                assert_int_equal(lb_aws_parse_error(cases[i].body, strlen(cases[i].body), &e), 0);
                assert_string_equal(e.code, cases[i].code);
                assert_string_equal(e.request_id, "b8ad5f0e-0c1a-11e9-9e2c-example");
                assert_int_equal(lb_aws_error_kind_from_code(e.code, cases[i].status), cases[i].kind);
                if (lb_autoscaling_error_no_active_action(&e) != cases[i].no_action)
                        fail_msg("case %zu: %s: %s", i, e.code, e.message);
        }
}

/* ---- forms ---- */

static void test_forms(void **state) {
        {
                _cleanup_form_ struct lb_form f = {};
                const char *ids[] = { IID, "i-0fedcba0987654321" };
                assert_int_equal(lb_autoscaling_form_describe_instances(&f, ids, 2, NULL), 0);
                assert_string_equal(f.buf.data, "Action=DescribeAutoScalingInstances&Version=2011-01-01"
                                                "&InstanceIds.member.1=" IID "&InstanceIds.member.2=i-0fedcba0987654321");
                assert_int_equal(lb_autoscaling_form_describe_instances(&f, ids, 1, "tok/=+"), 0);
                assert_string_equal(f.buf.data, "Action=DescribeAutoScalingInstances&Version=2011-01-01"
                                                "&InstanceIds.member.1=" IID "&NextToken=tok%2F%3D%2B");
        }
        {
                _cleanup_form_ struct lb_form f = {};
                assert_int_equal(lb_autoscaling_form_describe_lifecycle_hooks(&f, "eks ng/1", "team/lifeboat-drain"), 0);
                assert_string_equal(f.buf.data, "Action=DescribeLifecycleHooks&Version=2011-01-01"
                                                "&AutoScalingGroupName=eks%20ng%2F1"
                                                "&LifecycleHookNames.member.1=team%2Flifeboat-drain");
        }
        {
                _cleanup_form_ struct lb_form f = {};
                assert_int_equal(lb_autoscaling_form_record_heartbeat(&f, "ads-spot", "lifeboat-drain", IID), 0);
                assert_string_equal(f.buf.data, "Action=RecordLifecycleActionHeartbeat&Version=2011-01-01"
                                                "&LifecycleHookName=lifeboat-drain&AutoScalingGroupName=ads-spot"
                                                "&InstanceId=" IID);
        }
        {
                /* What aws-wire.md captured from awscli, parameter for parameter. */
                _cleanup_form_ struct lb_form f = {};
                assert_int_equal(lb_autoscaling_form_complete_lifecycle_action(&f, "ads-spot", "lifeboat-drain", IID,
                                                                               LB_LIFECYCLE_CONTINUE),
                                 0);
                assert_string_equal(f.buf.data, "Action=CompleteLifecycleAction&Version=2011-01-01"
                                                "&LifecycleHookName=lifeboat-drain&AutoScalingGroupName=ads-spot"
                                                "&InstanceId=" IID "&LifecycleActionResult=CONTINUE");
        }
        assert_string_equal(lb_lifecycle_result_to_string(LB_LIFECYCLE_CONTINUE), "CONTINUE");
        assert_string_equal(lb_lifecycle_result_to_string(LB_LIFECYCLE_ABANDON), "ABANDON");
}

static void test_forms_refuse_bad_arguments(void **state) {
        _cleanup_form_ struct lb_form f = {};
        const char *bad_ids[] = { IID, "vol-1234567890abcdef0" };
        assert_int_equal(lb_autoscaling_form_describe_instances(&f, bad_ids, 2, NULL), -EINVAL);
        assert_int_equal(lb_autoscaling_form_describe_instances(&f, bad_ids, 0, NULL), -EINVAL);
        assert_int_equal(lb_autoscaling_form_describe_instances(&f, NULL, 1, NULL), -EINVAL);
        assert_int_equal(lb_autoscaling_form_describe_lifecycle_hooks(&f, "", "h"), -EINVAL);
        assert_int_equal(lb_autoscaling_form_describe_lifecycle_hooks(&f, "g", "a hook"), -EINVAL);
        assert_int_equal(lb_autoscaling_form_record_heartbeat(&f, "g\n", "h", IID), -EINVAL);
        assert_int_equal(lb_autoscaling_form_record_heartbeat(&f, "g", "h", "i-nothex"), -EINVAL);
        assert_int_equal(lb_autoscaling_form_complete_lifecycle_action(&f, "g", "h", IID, (enum lb_lifecycle_result) 7),
                         -EINVAL);
        assert_int_equal(lb_autoscaling_form_complete_lifecycle_action(&f, "g", NULL, IID, LB_LIFECYCLE_CONTINUE),
                         -EINVAL);
        assert_null(f.buf.data);
}

/* ---- the client, against a scripted transport ---- */

int __wrap_lb_http_perform(struct lb_http_request *const *reqs, size_t n);
int __wrap_lb_credentials_load(struct lb_context *ctx, struct lb_imds *imds, struct lb_credentials *ret);
void __wrap_lb_sleep_ms(uint64_t ms, volatile const int *interrupted);
double __wrap_lb_random01(void);

struct reply {
        long status;
        const char *body;
};

#define MAX_REPLIES 16

static struct {
        struct reply replies[MAX_REPLIES];
        size_t n_replies, next;
        char *bodies[MAX_REPLIES];
        char *urls[MAX_REPLIES];
        char *sigv4[MAX_REPLIES];
        unsigned sleeps;
        struct lbt_log log;
} T;

static void script(long status, const char *body) {
        assert_true(T.n_replies < MAX_REPLIES);
        T.replies[T.n_replies++] = (struct reply) { status, body };
}

int __wrap_lb_http_perform(struct lb_http_request *const *reqs, size_t n) {
        for (size_t i = 0; i < n; i++) {
                struct lb_http_request *r = reqs[i];
                if (T.next >= T.n_replies)
                        fail_msg("no scripted reply left for %.*s", (int) r->body_len, r->body);
                size_t k = T.next++;
                T.bodies[k] = strndup(r->body ? r->body : "", r->body_len);
                T.urls[k] = strdup(r->url);
                T.sigv4[k] = strdup(r->sigv4 ? r->sigv4 : "");
                lb_http_request_reset_result(r);
                r->response.limit = 1024 * 1024;
                assert_int_equal(lb_buf_append_str(&r->response, T.replies[k].body), 0);
                r->status = T.replies[k].status;
                r->curl_code = CURLE_OK;
        }
        return 0;
}

int __wrap_lb_credentials_load(struct lb_context *ctx, struct lb_imds *imds, struct lb_credentials *ret) {
        struct lb_credentials c = {};
        (void) lb_strscpy(c.access_key_id, sizeof c.access_key_id, "AKIDEXAMPLE");
        (void) lb_strscpy(c.secret_access_key, sizeof c.secret_access_key, "SECRETKEY");
        *ret = c;
        return 0;
}

void __wrap_lb_sleep_ms(uint64_t ms, volatile const int *interrupted) {
        T.sleeps++;
}

double __wrap_lb_random01(void) {
        return 0.5;
}

struct fixture {
        struct lb_context ctx;
        struct lb_creds_provider *creds;
        struct lb_autoscaling *as;
};

static void reset_script(void) {
        for (size_t i = 0; i < MAX_REPLIES; i++)
                free(T.bodies[i]), free(T.urls[i]), free(T.sigv4[i]);
        lbt_log_reset(&T.log);
        memset(&T, 0, sizeof T);
}

static int setup(void **state) {
        reset_script();
        struct fixture *f = calloc(1, sizeof *f);
        if (!f || lb_context_init(&f->ctx) < 0)
                return -1;
        lbt_log_install(&f->ctx, &T.log);
        f->ctx.settings.ec2_timeout_ms = 5000;
        f->ctx.settings.autoscaling_endpoint = strdup("http://127.0.0.1:4566");
        if (!f->ctx.settings.autoscaling_endpoint || lb_creds_provider_new(&f->ctx, lb_credentials_load, NULL, &f->creds) < 0 ||
            lb_autoscaling_new(&f->ctx, f->creds, "eu-west-1", &f->as) < 0)
                return -1;
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        if (T.log.text.data)
                assert_null(strstr(T.log.text.data, "SECRETKEY"));
        lb_autoscaling_free(f->as);
        lb_creds_provider_free(f->creds);
        lb_context_done(&f->ctx);
        free(f);
        reset_script();
        return 0;
}

static const char complete_ok[] = "<CompleteLifecycleActionResponse " NS "><CompleteLifecycleActionResult/>"
                                  "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"
                                  "</CompleteLifecycleActionResponse>";
static const char heartbeat_ok[] = "<RecordLifecycleActionHeartbeatResponse " NS "><RecordLifecycleActionHeartbeatResult/>"
                                   "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"
                                   "</RecordLifecycleActionHeartbeatResponse>";

static void test_client_signs_for_autoscaling(void **state) {
        struct fixture *f = *state;
        script(200, heartbeat_ok);
        assert_int_equal(lb_autoscaling_record_heartbeat(f->as, "ads-spot", "lifeboat-drain", IID), 0);
        assert_string_equal(T.urls[0], "http://127.0.0.1:4566/");
        assert_string_equal(T.sigv4[0], "aws:amz:eu-west-1:autoscaling");
        assert_string_equal(T.bodies[0], "Action=RecordLifecycleActionHeartbeat&Version=2011-01-01"
                                         "&LifecycleHookName=lifeboat-drain&AutoScalingGroupName=ads-spot"
                                         "&InstanceId=" IID);
        assert_int_equal(lb_autoscaling_last_error(f->as)->kind, LB_AWS_OK);

        /* Without an endpoint setting: the regional one. */
        struct lb_autoscaling *other = NULL;
        free(f->ctx.settings.autoscaling_endpoint);
        f->ctx.settings.autoscaling_endpoint = NULL;
        assert_int_equal(lb_autoscaling_new(&f->ctx, f->creds, "ap-southeast-2", &other), 0);
        assert_string_equal(lb_query_url(lb_autoscaling_query(other)), "https://autoscaling.ap-southeast-2.amazonaws.com/");
        lb_autoscaling_free(other);
        assert_int_equal(lb_autoscaling_new(&f->ctx, f->creds, "not a region", &other), -EINVAL);
}

static void test_client_no_active_action(void **state) {
        struct fixture *f = *state;
        /* Somebody else completed it, or it timed out: -ENOENT, the details kept. */
        script(400, AS_ERROR("Sender", "ValidationError", "No active Lifecycle Action found with instance ID " IID));
        assert_int_equal(lb_autoscaling_complete_lifecycle_action(f->as, "ads-spot", "lifeboat-drain", IID,
                                                                  LB_LIFECYCLE_CONTINUE),
                         -ENOENT);
        assert_string_equal(lb_autoscaling_last_error(f->as)->code, "ValidationError");
        script(400, AS_ERROR("Sender", "ValidationError", "No active Lifecycle Action found with instance ID " IID));
        assert_int_equal(lb_autoscaling_record_heartbeat(f->as, "ads-spot", "lifeboat-drain", IID), -ENOENT);
        /* Any other validation error is not that. */
        script(400, AS_ERROR("Sender", "ValidationError", "AutoScalingGroup name not found"));
        assert_int_equal(lb_autoscaling_record_heartbeat(f->as, "nope", "lifeboat-drain", IID), -EINVAL);
        assert_int_equal(lb_query_request_count(lb_autoscaling_query(f->as)), 3);
        assert_int_equal(T.sleeps, 0);
}

static void test_client_rides_out_throttling(void **state) {
        struct fixture *f = *state;
        script(400, AS_ERROR("Sender", "Throttling", "Rate exceeded"));
        script(500, AS_ERROR("Receiver", "ResourceContention", "pending update"));
        script(200, complete_ok);
        assert_int_equal(lb_autoscaling_complete_lifecycle_action(f->as, "ads-spot", "lifeboat-drain", IID,
                                                                  LB_LIFECYCLE_CONTINUE),
                         0);
        assert_int_equal(T.next, 3);
        assert_int_equal(T.sleeps, 2);
        assert_string_equal(T.bodies[0], T.bodies[2]);
}

static void test_client_describe(void **state) {
        struct fixture *f = *state;
        script(200, instances_answer);
        struct lb_asg_instance inst;
        assert_int_equal(lb_autoscaling_describe_instance(f->as, IID, &inst), 0);
        assert_string_equal(inst.group, "ads-spot");
        assert_string_equal(T.bodies[0],
                            "Action=DescribeAutoScalingInstances&Version=2011-01-01&InstanceIds.member.1=" IID);
        /* In no group: -ENOENT, the struct untouched. */
        script(200, "<DescribeAutoScalingInstancesResponse><DescribeAutoScalingInstancesResult><AutoScalingInstances/>"
                    "</DescribeAutoScalingInstancesResult></DescribeAutoScalingInstancesResponse>");
        struct lb_asg_instance keep = { .group = "keep" };
        assert_int_equal(lb_autoscaling_describe_instance(f->as, "i-0000000000000beef", &keep), -ENOENT);
        assert_string_equal(keep.group, "keep");

        script(200, hooks_answer);
        struct lb_lifecycle_hook h;
        assert_int_equal(lb_autoscaling_describe_lifecycle_hook(f->as, "ads-spot", "lifeboat-drain", &h), 0);
        assert_int_equal(h.heartbeat_timeout_s, 300);
        script(200, hooks_answer);
        assert_int_equal(lb_autoscaling_describe_lifecycle_hook(f->as, "ads-spot", "other-hook", &h), -ENOENT);
        /* A 2xx that is not the answer. */
        script(200, complete_ok);
        assert_int_equal(lb_autoscaling_describe_lifecycle_hook(f->as, "ads-spot", "lifeboat-drain", &h), -EBADMSG);
        assert_int_equal(lb_autoscaling_last_error(f->as)->kind, LB_AWS_ERR_BAD_ANSWER);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_instances),
                cmocka_unit_test(test_parse_instances_empty),
                cmocka_unit_test(test_parse_instances_rejected),
                cmocka_unit_test(test_parse_hooks),
                cmocka_unit_test(test_parse_hooks_rejected),
                cmocka_unit_test(test_parse_empty_result),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_forms),
                cmocka_unit_test(test_forms_refuse_bad_arguments),
                cmocka_unit_test_setup_teardown(test_client_signs_for_autoscaling, setup, teardown),
                cmocka_unit_test_setup_teardown(test_client_no_active_action, setup, teardown),
                cmocka_unit_test_setup_teardown(test_client_rides_out_throttling, setup, teardown),
                cmocka_unit_test_setup_teardown(test_client_describe, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
