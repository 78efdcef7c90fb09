/* SPDX-License-Identifier: MIT */
/*
 * The credential chain against a scripted transport: the test is linked with -Wl,--wrap for
 * lb_http_perform and lb_sleep_ms (tests/CMakeLists.txt), so STS, the container endpoint and IMDS
 * are answered here, every request is inspected, and no time passes. Files (token files, profile
 * files) are real, in a temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lifeboat/aws/creds-chain.h"
#include "lifeboat/aws/creds.h"
#include "lifeboat/aws/http.h"
#include "lifeboat/aws/provider.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/util.h"
#include "testutil.h"

int __wrap_lb_http_perform(struct lb_http_request *const *reqs, size_t n);
void __wrap_lb_sleep_ms(uint64_t ms, volatile const int *interrupted);

#define ROLE_ARN "arn:aws:iam::123456789012:role/reaper"
#define STS_SECRET "stsSecretKeyEXAMPLE/0123456789"
#define STS_TOKEN "FwoGZXIvYXdzEXAMPLEstsTOKEN"
#define CONTAINER_SECRET "containerSecretEXAMPLE/abcdef"
#define CONTAINER_TOKEN "IQoJcontainerTOKENexample"
#define ROLE_SECRET "roleSecretEXAMPLE/xyz"
#define ROLE_TOKEN "IQoJroleTOKENexample"
#define AUTH_TOKEN "eyJhbGciOiJSUzI1NiJ9.podidentity.sig"

/* ---- scripted transport ---- */

struct reply {
        const char *method;
        const char *url;        /* a substring of the URL */
        long status;
        char body[2048];
        CURLcode code;
        bool used;
};

struct seen {
        char *method, *url, *body, *headers, *sigv4, *username;
};

#define MAX_REPLIES 64
#define MAX_SEEN 64

static struct {
        struct reply replies[MAX_REPLIES];
        size_t n_replies;
        struct seen seen[MAX_SEEN];
        size_t n_seen;
        uint64_t sleeps[MAX_SEEN];
        size_t n_sleeps;
} T;

static struct reply *script(const char *method, const char *url, long status, const char *fmt, ...) _printf_(4, 5);
static struct reply *script(const char *method, const char *url, long status, const char *fmt, ...) {
        assert_true(T.n_replies < MAX_REPLIES);
        struct reply *r = &T.replies[T.n_replies++];
        *r = (struct reply) { .method = method, .url = url, .status = status };
        va_list ap;
        va_start(ap, fmt);
        assert_true(vsnprintf(r->body, sizeof r->body, fmt, ap) < (int) sizeof r->body);
        va_end(ap);
        return r;
}

static void script_transport(const char *method, const char *url, CURLcode code) {
        script(method, url, 0, "%s", "")->code = code;
}

static char *dup_or_null(const char *s) {
        return s ? strdup(s) : NULL;
}

int __wrap_lb_http_perform(struct lb_http_request *const *reqs, size_t n) {
        for (size_t i = 0; i < n; i++) {
                struct lb_http_request *r = reqs[i];
                assert_true(T.n_seen < MAX_SEEN);
                _cleanup_buf_ struct lb_buf h = {};
                for (struct curl_slist *l = r->headers; l; l = l->next)
                        assert_int_equal(lb_buf_printf(&h, "%s\n", l->data), 0);
                T.seen[T.n_seen++] = (struct seen) {
                        .method = strdup(r->method),
                        .url = strdup(r->url),
                        .body = strndup(r->body ? r->body : "", r->body_len),
                        .headers = h.data ? lb_buf_steal(&h) : strdup(""),
                        .sigv4 = dup_or_null(r->sigv4),
                        .username = dup_or_null(r->username),
                };
                struct reply *rep = NULL;
                for (size_t k = 0; k < T.n_replies && !rep; k++)
                        if (!T.replies[k].used && streq(T.replies[k].method, r->method) && strstr(r->url, T.replies[k].url))
                                rep = &T.replies[k];
                if (!rep)
                        fail_msg("no scripted reply for %s %s", r->method, r->url);
                rep->used = true;
                lb_http_request_reset_result(r);
                r->response.limit = r->max_response ? r->max_response : 1024 * 1024;
                r->curl_code = rep->code;
                if (rep->code != CURLE_OK) {
                        (void) lb_strscpy(r->error, sizeof r->error, curl_easy_strerror(rep->code));
                        continue;
                }
                assert_int_equal(lb_buf_append_str(&r->response, rep->body), 0);
                r->status = rep->status;
        }
        return 0;
}

void __wrap_lb_sleep_ms(uint64_t ms, volatile const int *interrupted) {
        assert_true(T.n_sleeps < MAX_SEEN);
        T.sleeps[T.n_sleeps++] = ms;
}

static void reset_script(void) {
        for (size_t i = 0; i < T.n_seen; i++) {
                struct seen *s = &T.seen[i];
                free(s->method), free(s->url), free(s->body), free(s->headers), free(s->sigv4), free(s->username);
        }
        memset(&T, 0, sizeof T);
}

/* Every scripted reply was asked for. */
static void assert_script_used(void) {
        for (size_t i = 0; i < T.n_replies; i++)
                if (!T.replies[i].used)
                        fail_msg("scripted reply %zu (%s %s) was not asked for", i, T.replies[i].method, T.replies[i].url);
}

/* ---- answers ---- */

static void iso_in(long seconds, char *buf, size_t size) {
        assert_int_equal(lb_format_iso8601(time(NULL) + seconds, buf, size), 0);
}

static void script_sts(const char *key, long lifetime) {
        char exp[40];
        iso_in(lifetime, exp, sizeof exp);
        script("POST", "", 200,
               "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
               "  <AssumeRoleWithWebIdentityResult>\n"
               "    <SubjectFromWebIdentityToken>system:serviceaccount:ops:reap</SubjectFromWebIdentityToken>\n"
               "    <AssumedRoleUser>\n"
               "      <Arn>arn:aws:sts::123456789012:assumed-role/reaper/ci</Arn>\n"
               "      <AssumedRoleId>AROAEXAMPLE:ci</AssumedRoleId>\n"
               "    </AssumedRoleUser>\n"
               "    <Credentials>\n"
               "      <SessionToken>" STS_TOKEN "</SessionToken>\n"
               "      <SecretAccessKey>" STS_SECRET "</SecretAccessKey>\n"
               "      <Expiration>%s</Expiration>\n"
               "      <AccessKeyId>%s</AccessKeyId>\n"
               "    </Credentials>\n"
               "  </AssumeRoleWithWebIdentityResult>\n"
               "  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>\n"
               "</AssumeRoleWithWebIdentityResponse>\n",
               exp, key);
}

static void script_sts_error(long status, const char *code, const char *message) {
        script("POST", "", status,
               "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
               "  <Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>\n"
               "  <RequestId>1fd1964b-1544-11ea-ba37-99c3c1dede42</RequestId>\n</ErrorResponse>\n",
               code, message);
}

static void script_container(const char *url, const char *key, long lifetime) {
        char exp[40];
        iso_in(lifetime, exp, sizeof exp);
        script("GET", url, 200,
               "{\"RoleArn\":\"arn:aws:iam::123456789012:role/task\",\"AccessKeyId\":\"%s\","
               "\"SecretAccessKey\":\"" CONTAINER_SECRET "\",\"Token\":\"" CONTAINER_TOKEN "\",\"Expiration\":\"%s\"}",
               key, exp);
}

static void script_imds(const char *key) {
        char exp[40];
        iso_in(6 * 3600, exp, sizeof exp);
        script("PUT", "/latest/api/token", 200, "%s", "imds-session-token");
        script("GET", "/latest/meta-data/iam/security-credentials/", 200, "%s", "lifeboat-role");
        script("GET", "/latest/meta-data/iam/security-credentials/lifeboat-role", 200,
               "{\n  \"Code\" : \"Success\",\n  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"%s\",\n"
               "  \"SecretAccessKey\" : \"" ROLE_SECRET "\",\n  \"Token\" : \"" ROLE_TOKEN "\",\n"
               "  \"Expiration\" : \"%s\"\n}",
               key, exp);
}

/* ---- fixture ---- */

struct fixture {
        char *dir;
        char token_file[PATH_MAX], auth_file[PATH_MAX], config[PATH_MAX], credentials[PATH_MAX];
        struct lb_context ctx;
        struct lbt_log log;
};

static void set(struct fixture *f, const char *key, const char *value) {
        assert_int_equal(lb_settings_set(&f->ctx, key, value, "test"), 0);
}

static int setup(void **state) {
        reset_script();
        struct fixture *f = calloc(1, sizeof *f);
        assert_non_null(f);
        assert_int_equal(lbt_tmpdir_setup((void **) &f->dir), 0);
        lbt_pathf(f->token_file, "%s/web-identity-token", f->dir);
        lbt_pathf(f->auth_file, "%s/eks-pod-identity-token", f->dir);
        lbt_pathf(f->config, "%s/aws/config", f->dir);
        lbt_pathf(f->credentials, "%s/aws/credentials", f->dir);
        assert_int_equal(lb_context_init(&f->ctx), 0);
        lbt_log_install(&f->ctx, &f->log);
        set(f, "AWS_CONFIG_FILE", f->config);
        set(f, "AWS_SHARED_CREDENTIALS_FILE", f->credentials);
        set(f, "AWS_EC2_METADATA_DISABLED", "true");
        set(f, "LIFEBOAT_EC2_TIMEOUT", "5s");
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        /* Whatever happened, no secret reached the log. */
        const char *log = lbt_log_text(&f->log);
        static const char *const secrets[] = { STS_SECRET, STS_TOKEN, CONTAINER_SECRET, CONTAINER_TOKEN, ROLE_SECRET,
                                               ROLE_TOKEN, AUTH_TOKEN, "eyJraWQiOiJ3ZWI", "wJalrXUtnFEMI" };
        for (size_t i = 0; i < ELEMENTSOF(secrets); i++)
                if (strstr(log, secrets[i]))
                        fail_msg("a secret was logged: %s", secrets[i]);
        lb_context_done(&f->ctx);
        lbt_log_reset(&f->log);
        assert_int_equal(lbt_tmpdir_teardown((void **) &f->dir), 0);
        free(f);
        reset_script();
        return 0;
}

static int load(struct fixture *f, const char *region, struct lb_credentials *c) {
        struct lb_creds_chain chain = {};
        if (region)
                assert_int_equal(lb_strscpy(chain.region, sizeof chain.region, region), 0);
        return lb_credentials_load(&f->ctx, &chain, c);
}

/* Every source configured; each test takes them away one by one. */
static void configure_everything(struct fixture *f) {
        set(f, "AWS_ACCESS_KEY_ID", "AKIAENVEXAMPLE");
        set(f, "AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG");
        lbt_write_text(f->token_file, "eyJraWQiOiJ3ZWI.payload.sig\n");
        set(f, "AWS_WEB_IDENTITY_TOKEN_FILE", f->token_file);
        set(f, "AWS_ROLE_ARN", ROLE_ARN);
        set(f, "AWS_ROLE_SESSION_NAME", "ci");
        lbt_write_text(f->credentials, "[default]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = profsecret\n");
        set(f, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/task-1");
        set(f, "LIFEBOAT_CONTAINER_ENDPOINT", "http://127.0.0.1:51679");
        set(f, "AWS_EC2_METADATA_DISABLED", "false");
        set(f, "AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://169.254.169.254");
}

/* ---- order ---- */

static void test_precedence(void **state) {
        struct fixture *f = *state;
        configure_everything(f);
        struct lb_credentials c = {};

        /* 1. The environment: nothing is asked. */
        assert_int_equal(load(f, "eu-west-1", &c), 0);
        assert_int_equal(c.source, LB_CREDS_ENVIRONMENT);
        assert_string_equal(c.access_key_id, "AKIAENVEXAMPLE");
        assert_int_equal(T.n_seen, 0);
        lb_credentials_done(&c);

        /* 2. Web identity. */
        set(f, "AWS_ACCESS_KEY_ID", "");
        set(f, "AWS_SECRET_ACCESS_KEY", "");
        script_sts("ASIASTSEXAMPLE", 3600);
        assert_int_equal(load(f, "eu-west-1", &c), 0);
        assert_int_equal(c.source, LB_CREDS_WEB_IDENTITY);
        assert_string_equal(c.access_key_id, "ASIASTSEXAMPLE");
        assert_string_equal(c.secret_access_key, STS_SECRET);
        assert_string_equal(c.session_token, STS_TOKEN);
        assert_true(c.expiration > time(NULL) + 3500);
        assert_non_null(strstr(c.origin, "web identity: arn:aws:sts::123456789012:assumed-role/reaper/ci, session ci"));
        assert_int_equal(T.n_seen, 1);
        lb_credentials_done(&c);

        /* 3. The profile: nothing is asked. */
        set(f, "AWS_WEB_IDENTITY_TOKEN_FILE", "");
        size_t before = T.n_seen;
        assert_int_equal(load(f, "eu-west-1", &c), 0);
        assert_int_equal(c.source, LB_CREDS_PROFILE);
        assert_string_equal(c.access_key_id, "AKIAPROFILE");
        assert_int_equal(T.n_seen, before);
        lb_credentials_done(&c);

        /* 4. The container. */
        lbt_write_text(f->credentials, "[default]\nregion = eu-west-1\n");
        script_container("http://127.0.0.1:51679/v2/credentials/task-1", "ASIACONTAINER", 6 * 3600);
        assert_int_equal(load(f, "eu-west-1", &c), 0);
        assert_int_equal(c.source, LB_CREDS_CONTAINER);
        assert_string_equal(c.access_key_id, "ASIACONTAINER");
        /* The path past its first segment guards the endpoint: it stays out of origin (and logs). */
        assert_string_equal(c.origin, "container credentials at http://127.0.0.1:51679/v2/..., role "
                                      "arn:aws:iam::123456789012:role/task");
        assert_null(strstr(lbt_log_text(&f->log), "task-1"));
        lb_credentials_done(&c);

        /* 5. The instance role. */
        set(f, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "");
        script_imds("ASIAROLE");
        assert_int_equal(load(f, "eu-west-1", &c), 0);
        assert_int_equal(c.source, LB_CREDS_INSTANCE_ROLE);
        assert_string_equal(c.access_key_id, "ASIAROLE");
        assert_string_equal(c.origin, "the instance role lifeboat-role (IMDS)");
        lb_credentials_done(&c);
        assert_script_used();

        /* The winner is said at debug level, each skipped source too. */
        const char *log = lbt_log_text(&f->log);
        assert_non_null(strstr(log, "AWS credentials: environment: AWS_ACCESS_KEY_ID not set; trying the next source"));
        assert_non_null(strstr(log, "AWS credentials from the instance role lifeboat-role (IMDS) (access key ASIAROLE, until "));
        assert_int_equal(f->log.n_err, 0);
}

static void test_nothing_anywhere(void **state) {
        struct fixture *f = *state;
        struct lb_credentials c = { .access_key_id = "keep" };
        assert_int_equal(load(f, NULL, &c), -ENOKEY);
        char want[3 * PATH_MAX];
        lbt_pathf(want,
                  "no AWS credentials: environment: AWS_ACCESS_KEY_ID not set; web identity: AWS_WEB_IDENTITY_TOKEN_FILE "
                  "not set; profile default: %s and %s not found; container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI "
                  "and _FULL_URI not set; instance role: IMDS disabled (AWS_EC2_METADATA_DISABLED)\n",
                  f->credentials, f->config);
        assert_non_null(strstr(lbt_log_text(&f->log), want));
        assert_int_equal(f->log.n_err, 1);
        assert_string_equal(c.access_key_id, "keep");
        assert_int_equal(T.n_seen, 0);

        /* IMDS on, but no answer: tried (3 times), and said. */
        set(f, "AWS_EC2_METADATA_DISABLED", "false");
        set(f, "AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9");
        for (int i = 0; i < 3; i++)
                script_transport("PUT", "/latest/api/token", CURLE_COULDNT_CONNECT);
        lbt_log_reset(&f->log);
        assert_int_equal(load(f, NULL, &c), -ENOKEY);
        assert_non_null(strstr(lbt_log_text(&f->log), "; instance role: IMDS at http://127.0.0.1:9: no answer\n"));
        assert_script_used();

        /* An instance without a role. */
        script("PUT", "/latest/api/token", 200, "%s", "t");
        script("GET", "/latest/meta-data/iam/security-credentials/", 404, "%s", "");
        lbt_log_reset(&f->log);
        assert_int_equal(load(f, NULL, &c), -ENOKEY);
        assert_non_null(strstr(lbt_log_text(&f->log), "; instance role: the instance has no IAM role\n"));
}

static void test_env_partial(void **state) {
        struct fixture *f = *state;
        configure_everything(f);        /* the chain stops at the broken source */
        set(f, "AWS_SECRET_ACCESS_KEY", "");
        struct lb_credentials c = {};
        assert_int_equal(load(f, NULL, &c), -EINVAL);
        assert_non_null(strstr(lbt_log_text(&f->log), "AWS credentials from environment: AWS_ACCESS_KEY_ID is set but "
                                                      "AWS_SECRET_ACCESS_KEY is not"));
        assert_int_equal(T.n_seen, 0);
}

/* ---- web identity ---- */

static void test_web_identity_request(void **state) {
        struct fixture *f = *state;
        lbt_write_text(f->token_file, "eyJraWQiOiJ3ZWI.first.sig\r\n");
        set(f, "AWS_WEB_IDENTITY_TOKEN_FILE", f->token_file);
        set(f, "AWS_ROLE_ARN", ROLE_ARN);
        struct lb_credentials c = {};

        script_sts("ASIA1", 3600);
        assert_int_equal(load(f, "eu-west-1", &c), 0);
        lb_credentials_done(&c);
        struct seen *s = &T.seen[0];
        assert_string_equal(s->method, "POST");
        assert_string_equal(s->url, "https://sts.eu-west-1.amazonaws.com/");
        /* botocore's form, in its order, the token without its line break; unsigned. */
        assert_true(lb_startswith(s->body, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn="
                                           "arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Freaper&RoleSessionName=lifeboat-"));
        assert_true(lb_endswith(s->body, "&WebIdentityToken=eyJraWQiOiJ3ZWI.first.sig"));
        assert_null(s->sigv4);
        assert_null(s->username);
        assert_null(strstr(s->headers, "x-amz-security-token"));

        /* The file is read at every call (a rotated token); no region: the global endpoint. */
        lbt_write_text(f->token_file, "eyJraWQiOiJ3ZWI.second.sig");
        set(f, "AWS_ROLE_SESSION_NAME", "reaper@ci");
        script_sts("ASIA2", 3600);
        assert_int_equal(load(f, NULL, &c), 0);
        lb_credentials_done(&c);
        assert_string_equal(T.seen[1].url, "https://sts.amazonaws.com/");
        assert_true(lb_endswith(T.seen[1].body, "&RoleSessionName=reaper%40ci&WebIdentityToken=eyJraWQiOiJ3ZWI.second.sig"));

        /* AWS_ENDPOINT_URL_STS wins. */
        set(f, "AWS_ENDPOINT_URL_STS", "http://127.0.0.1:4566");
        script_sts("ASIA3", 3600);
        assert_int_equal(load(f, "eu-west-1", &c), 0);
        assert_string_equal(T.seen[2].url, "http://127.0.0.1:4566/");
        assert_string_equal(c.access_key_id, "ASIA3");
        lb_credentials_done(&c);

        /* The profile supplies what the environment does not. */
        set(f, "AWS_WEB_IDENTITY_TOKEN_FILE", "");
        set(f, "AWS_ROLE_ARN", "");
        set(f, "AWS_ROLE_SESSION_NAME", "");
        char profile[2 * PATH_MAX];
        lbt_pathf(profile, "[profile wi]\nrole_arn = arn:aws:iam::123456789012:role/from-profile\n"
                           "web_identity_token_file = %s\nrole_session_name = prof\n", f->token_file);
        lbt_write_text(f->config, profile);
        set(f, "AWS_PROFILE", "wi");
        script_sts("ASIA4", 3600);
        assert_int_equal(load(f, "eu-west-1", &c), 0);
        assert_int_equal(c.source, LB_CREDS_WEB_IDENTITY);
        lb_credentials_done(&c);
        assert_non_null(strstr(T.seen[3].body, "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Ffrom-profile&"
                                               "RoleSessionName=prof&"));
        assert_script_used();
}

static void test_web_identity_errors(void **state) {
        struct fixture *f = *state;
        struct lb_credentials c = {};
        char want[PATH_MAX + 200];

        /* A token file without a role. */
        set(f, "AWS_WEB_IDENTITY_TOKEN_FILE", f->token_file);
        assert_int_equal(load(f, NULL, &c), -EINVAL);
        assert_non_null(strstr(lbt_log_text(&f->log), "AWS credentials from web identity: AWS_WEB_IDENTITY_TOKEN_FILE "
                                                      "is set but AWS_ROLE_ARN is not"));
        /* A token file that is not there, or empty. */
        set(f, "AWS_ROLE_ARN", ROLE_ARN);
        assert_int_equal(load(f, NULL, &c), -EINVAL);
        lbt_pathf(want, "cannot read the web identity token %s: No such file or directory", f->token_file);
        assert_non_null(strstr(lbt_log_text(&f->log), want));
        lbt_write_text(f->token_file, "\n");
        assert_int_equal(load(f, NULL, &c), -EINVAL);
        lbt_pathf(want, "the web identity token %s is empty", f->token_file);
        assert_non_null(strstr(lbt_log_text(&f->log), want));
        lbt_write_text(f->token_file, "eyJraWQiOiJ3ZWI.tok\nen");
        assert_int_equal(load(f, NULL, &c), -EINVAL);
        lbt_write_text(f->token_file, "eyJraWQiOiJ3ZWI.payload.sig");
        set(f, "AWS_ROLE_SESSION_NAME", "team/reaper");
        assert_int_equal(load(f, NULL, &c), -EINVAL);
        assert_non_null(strstr(lbt_log_text(&f->log), "AWS_ROLE_SESSION_NAME is not a role session name"));
        set(f, "AWS_ROLE_SESSION_NAME", "ci");
        assert_int_equal(T.n_seen, 0);

        /* STS says no: the chain stops there (no fall-through to another identity). */
        set(f, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/creds");
        struct { long status; const char *code, *message; } refusals[] = {
                { 400, "InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider" },
                { 400, "ExpiredTokenException", "Token expired: current date/time 1731098245 must be before 1731095240" },
                { 403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity" },
        };
        for (size_t i = 0; i < ELEMENTSOF(refusals); i++) {
                script_sts_error(refusals[i].status, refusals[i].code, refusals[i].message);
                lbt_log_reset(&f->log);
                assert_int_equal(load(f, NULL, &c), -EACCES);
                char msg[512];
                lbt_pathf(msg, "AWS credentials from web identity: STS refused the token for " ROLE_ARN ": %s: %s",
                          refusals[i].code, refusals[i].message);
                assert_non_null(strstr(lbt_log_text(&f->log), msg));
        }
        /* The issuer was unreachable: retried, as botocore does. */
        script_sts_error(400, "IDPCommunicationError", "could not reach the issuer");
        script_sts("ASIARETRIED", 3600);
        assert_int_equal(load(f, NULL, &c), 0);
        assert_string_equal(c.access_key_id, "ASIARETRIED");
        lb_credentials_done(&c);
        /* Not an answer. */
        script("POST", "", 200, "%s", "<html>captive portal</html>");
        assert_int_equal(load(f, NULL, &c), -EBADMSG);
        script("POST", "", 200, "%s",
               "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
               "<AccessKeyId>ASIA</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
               "<Expiration>2030-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult>"
               "</AssumeRoleWithWebIdentityResponse>");
        assert_int_equal(load(f, NULL, &c), -EBADMSG);      /* no SessionToken */
        /* Credentials that are already over. */
        script_sts("ASIAOLD", -60);
        lbt_log_reset(&f->log);
        assert_int_equal(load(f, NULL, &c), -EKEYEXPIRED);
        assert_non_null(strstr(lbt_log_text(&f->log), " expired at "));
        /* STS unreachable: 3 attempts, then the chain stops. */
        for (int i = 0; i < 3; i++)
                script_transport("POST", "", CURLE_COULDNT_CONNECT);
        assert_int_equal(load(f, NULL, &c), -EHOSTUNREACH);
        assert_script_used();
        for (size_t i = 0; i < T.n_seen; i++)
                assert_null(strstr(T.seen[i].url, "127.0.0.1:1"));      /* the container was never asked */
}

/* ---- container ---- */

static void test_container(void **state) {
        struct fixture *f = *state;
        struct lb_credentials c = {};

        /* Relative to LIFEBOAT_CONTAINER_ENDPOINT (169.254.170.2 by default); it wins over FULL_URI. */
        set(f, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc");
        set(f, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:2/ignored");
        script_container("http://169.254.170.2/v2/credentials/abc", "ASIAC1", 3600);
        assert_int_equal(load(f, NULL, &c), 0);
        assert_string_equal(T.seen[0].method, "GET");
        assert_string_equal(T.seen[0].url, "http://169.254.170.2/v2/credentials/abc");
        assert_string_equal(T.seen[0].headers, "Accept: application/json\n");
        assert_null(T.seen[0].sigv4);
        lb_credentials_done(&c);

        /* FULL_URI with the token of the variable, then of the file, which wins and is read each time. */
        set(f, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "");
        set(f, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:2705/v1/credentials");
        set(f, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "Basic from-variable");
        script_container("127.0.0.1:2705/v1/credentials", "ASIAC2", 3600);
        assert_int_equal(load(f, NULL, &c), 0);
        lb_credentials_done(&c);
        assert_string_equal(T.seen[1].headers, "Accept: application/json\nAuthorization: Basic from-variable\n");
        lbt_write_text(f->auth_file, AUTH_TOKEN "\n");
        set(f, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", f->auth_file);
        script_container("127.0.0.1:2705/v1/credentials", "ASIAC3", 3600);
        assert_int_equal(load(f, NULL, &c), 0);
        lb_credentials_done(&c);
        assert_string_equal(T.seen[2].headers, "Accept: application/json\nAuthorization: " AUTH_TOKEN "\n");
        lbt_write_text(f->auth_file, AUTH_TOKEN ".rotated");
        script_container("127.0.0.1:2705/v1/credentials", "ASIAC4", 3600);
        assert_int_equal(load(f, NULL, &c), 0);
        lb_credentials_done(&c);
        assert_string_equal(T.seen[3].headers, "Accept: application/json\nAuthorization: " AUTH_TOKEN ".rotated\n");
        assert_script_used();
        assert_int_equal(T.n_sleeps, 0);
}

static void test_container_errors(void **state) {
        struct fixture *f = *state;
        struct lb_credentials c = {};
        set(f, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:2705/v1/credentials");
        set(f, "AWS_EC2_METADATA_DISABLED", "false");   /* never reached: a configured source that fails stops */

        /* Refused: said with the agent's words, not retried. */
        script("GET", "2705", 400, "%s", "{\"code\":\"InvalidIdInRequest\",\"message\":\"CredentialsV2Request: ID not found\"}");
        assert_int_equal(load(f, NULL, &c), -EACCES);
        assert_non_null(strstr(lbt_log_text(&f->log), "AWS credentials from container: http://127.0.0.1:2705/v1/... "
                                                      "answered HTTP 400: InvalidIdInRequest: CredentialsV2Request: ID not found"));
        /* A user and password, the path past its first segment and a query never reach the log. */
        set(f, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://u:pw0rd@127.0.0.1:2705/v1/credentials/id-77?k=q9");
        script("GET", "2705", 400, "%s", "{\"code\":\"InvalidIdInRequest\",\"message\":\"no\"}");
        assert_int_equal(load(f, NULL, &c), -EACCES);
        assert_non_null(strstr(lbt_log_text(&f->log), "container: http://127.0.0.1:2705/v1/... answered HTTP 400"));
        assert_null(strstr(lbt_log_text(&f->log), "pw0rd"));
        assert_null(strstr(lbt_log_text(&f->log), "id-77"));
        assert_null(strstr(lbt_log_text(&f->log), "q9"));
        set(f, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:2705/v1/credentials");
        script("GET", "2705", 403, "%s", "Access Denied. token\x1b[31m rejected\n");
        assert_int_equal(load(f, NULL, &c), -EACCES);
        assert_non_null(strstr(lbt_log_text(&f->log), "answered HTTP 403: Access Denied. token\\x1b[31m rejected"));
        assert_int_equal(T.n_sleeps, 0);

        /* A 5xx or no answer: 3 attempts, 1 s apart. */
        for (int i = 0; i < 3; i++)
                script("GET", "2705", 500, "%s", "{\"code\":\"InternalServerError\",\"message\":\"Internal server error\"}");
        assert_int_equal(load(f, NULL, &c), -EREMOTEIO);
        assert_int_equal(T.n_sleeps, 2);
        assert_true(T.sleeps[0] == 1000 && T.sleeps[1] == 1000);
        script_transport("GET", "2705", CURLE_COULDNT_CONNECT);
        script_container("2705", "ASIAAFTERRETRY", 3600);
        assert_int_equal(load(f, NULL, &c), 0);
        assert_string_equal(c.access_key_id, "ASIAAFTERRETRY");
        lb_credentials_done(&c);
        for (int i = 0; i < 3; i++)
                script_transport("GET", "2705", CURLE_OPERATION_TIMEDOUT);
        assert_int_equal(load(f, NULL, &c), -EHOSTUNREACH);

        /* Answers that are no credentials. */
        static const struct { const char *body, *reason; } malformed[] = {
                { "not json", "not a JSON object" },
                { "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Expiration\":\"2030-01-01T00:00:00Z\"}", "Token is missing" },
                { "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Token\":1,\"Expiration\":\"2030-01-01T00:00:00Z\"}", "Token is not a string" },
                { "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Token\":\"t\",\"Expiration\":\"soon\"}", "Expiration is not an ISO 8601" },
                { "{\"AccessKeyId\":\"A B\",\"SecretAccessKey\":\"s\",\"Token\":\"t\",\"Expiration\":\"2030-01-01T00:00:00Z\"}", "the access key id is malformed" },
                { "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Token\":\"\",\"Expiration\":\"2030-01-01T00:00:00Z\"}", "Token is empty" },
        };
        for (size_t i = 0; i < ELEMENTSOF(malformed); i++) {
                script("GET", "2705", 200, "%s", malformed[i].body);
                lbt_log_reset(&f->log);
                assert_int_equal(load(f, NULL, &c), -EBADMSG);
                char want[256];
                lbt_pathf(want, "answered something else than credentials: %s", malformed[i].reason);
                if (!strstr(lbt_log_text(&f->log), want))
                        fail_msg("case %zu: %s", i, lbt_log_text(&f->log));
        }
        /* Expired ones. */
        script_container("2705", "ASIAOLD", -1);
        assert_int_equal(load(f, NULL, &c), -EKEYEXPIRED);

        /* Local mistakes, before anything is sent. */
        size_t sent = T.n_seen;
        set(f, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "v2/no-slash");
        assert_int_equal(load(f, NULL, &c), -EINVAL);
        assert_non_null(strstr(lbt_log_text(&f->log), "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI does not start with '/'"));
        set(f, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "");
        set(f, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", f->auth_file);
        assert_int_equal(load(f, NULL, &c), -EINVAL);
        lbt_write_text(f->auth_file, "tok\r\nX-Injected: 1\n");
        assert_int_equal(load(f, NULL, &c), -EINVAL);
        assert_non_null(strstr(lbt_log_text(&f->log), "holds a control character"));
        assert_null(strstr(lbt_log_text(&f->log), "X-Injected"));
        lbt_write_text(f->auth_file, "\n");
        assert_int_equal(load(f, NULL, &c), -EINVAL);
        assert_int_equal(T.n_seen, sent);
        assert_script_used();
}

/* ---- refresh through the provider ---- */

static void test_refresh(void **state) {
        struct fixture *f = *state;
        set(f, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:2705/v1/credentials");
        lbt_write_text(f->auth_file, "first-token");
        set(f, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", f->auth_file);

        /* Credentials with 5 minutes left are inside the 10 minute margin: every use refreshes. */
        script_container("2705", "ASIAFIRST", 300);
        struct lb_creds_provider *p = NULL;
        assert_int_equal(lb_creds_provider_new(&f->ctx, lb_credentials_load, NULL, &p), 0);
        assert_true(lb_creds_provider_refreshable(p));
        lbt_write_text(f->auth_file, "second-token");
        script_container("2705", "ASIASECOND", 3600);
        const struct lb_credentials *c = lb_creds_provider_get(p);
        assert_string_equal(c->access_key_id, "ASIASECOND");
        assert_non_null(strstr(T.seen[1].headers, "Authorization: second-token"));
        /* Fresh for an hour: no request. */
        assert_string_equal(lb_creds_provider_get(p)->access_key_id, "ASIASECOND");
        assert_int_equal(T.n_seen, 2);
        /* Read again after an authentication error. */
        script_container("2705", "ASIATHIRD", 3600);
        assert_int_equal(lb_creds_provider_reload(p), 0);
        assert_string_equal(lb_creds_provider_get(p)->access_key_id, "ASIATHIRD");
        /* A failed reload keeps the old ones. */
        script("GET", "2705", 403, "%s", "denied");
        assert_int_equal(lb_creds_provider_reload(p), -EACCES);
        assert_string_equal(lb_creds_provider_get(p)->access_key_id, "ASIATHIRD");
        lb_creds_provider_free(p);

        /* Web identity refreshes the same way, with the token file read again. */
        set(f, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "");
        set(f, "AWS_WEB_IDENTITY_TOKEN_FILE", f->token_file);
        set(f, "AWS_ROLE_ARN", ROLE_ARN);
        lbt_write_text(f->token_file, "eyJraWQiOiJ3ZWI.one.sig");
        script_sts("ASIAWI1", 120);
        struct lb_creds_chain chain = { .region = "us-east-1" };
        assert_int_equal(lb_creds_provider_new(&f->ctx, lb_credentials_load, &chain, &p), 0);
        lbt_write_text(f->token_file, "eyJraWQiOiJ3ZWI.two.sig");
        script_sts("ASIAWI2", 3600);
        assert_string_equal(lb_creds_provider_get(p)->access_key_id, "ASIAWI2");
        assert_true(lb_endswith(T.seen[T.n_seen - 1].body, "WebIdentityToken=eyJraWQiOiJ3ZWI.two.sig"));
        assert_string_equal(T.seen[T.n_seen - 1].url, "https://sts.us-east-1.amazonaws.com/");
        lb_creds_provider_free(p);

        /* Long-term keys never refresh. */
        set(f, "AWS_ACCESS_KEY_ID", "AKIASTATIC");
        set(f, "AWS_SECRET_ACCESS_KEY", "staticsecret");
        size_t seen = T.n_seen;
        assert_int_equal(lb_creds_provider_new(&f->ctx, lb_credentials_load, NULL, &p), 0);
        assert_false(lb_creds_provider_refreshable(p));
        assert_string_equal(lb_creds_provider_get(p)->access_key_id, "AKIASTATIC");
        assert_string_equal(lb_creds_provider_source(p), "the environment (AWS_ACCESS_KEY_ID)");
        assert_int_equal(T.n_seen, seen);
        lb_creds_provider_free(p);
        assert_script_used();
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
                cmocka_unit_test_setup_teardown(test_nothing_anywhere, setup, teardown),
                cmocka_unit_test_setup_teardown(test_env_partial, setup, teardown),
                cmocka_unit_test_setup_teardown(test_web_identity_request, setup, teardown),
                cmocka_unit_test_setup_teardown(test_web_identity_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_container, setup, teardown),
                cmocka_unit_test_setup_teardown(test_container_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refresh, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
