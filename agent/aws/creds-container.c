/* SPDX-License-Identifier: MIT */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "lifeboat/aws/creds-container.h"
#include "lifeboat/aws/creds.h"
#include "lifeboat/aws/http.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/names.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/time-util.h"
#include "lifeboat/basic/utf8.h"
#include "lifeboat/basic/util.h"

#define CONTAINER_TIMEOUT_MS 2000       /* botocore's, per attempt */
#define CONTAINER_ATTEMPTS 3
#define CONTAINER_RETRY_DELAY_MS 1000
#define TOKEN_FILE_MAX (16u * 1024u)

int lb_container_credentials_parse(const char *json, size_t len, struct lb_credentials *ret, char *role_arn,
                                   size_t role_arn_size, char *error, size_t error_size) {
        json_error_t err;
        json_auto_t *root = json ? json_loadb(json, len, JSON_REJECT_DUPLICATES, &err) : NULL;
        if (!root || !json_is_object(root)) {
                lb_set_reason(error, error_size, "not a JSON object");
                return -EBADMSG;
        }
        static const char *const required[] = { "AccessKeyId", "SecretAccessKey", "Token", "Expiration" };
        for (size_t i = 0; i < ELEMENTSOF(required); i++)
                if (!json_is_string(json_object_get(root, required[i]))) {
                        lb_set_reason(error, error_size, "%s %s", required[i],
                                      json_object_get(root, required[i]) ? "is not a string" : "is missing");
                        return -EBADMSG;
                }
        time_t expires;
        if (lb_parse_iso8601(json_string_value(json_object_get(root, "Expiration")), &expires) < 0 || expires == 0) {
                lb_set_reason(error, error_size, "Expiration is not an ISO 8601 UTC time");
                return -EBADMSG;
        }
        struct lb_credentials c;
        const char *bad = "?";
        int r = lb_credentials_set(&c, json_string_value(json_object_get(root, "AccessKeyId")),
                                   json_string_value(json_object_get(root, "SecretAccessKey")),
                                   json_string_value(json_object_get(root, "Token")), expires, &bad);
        if (r == -EINVAL) {
                lb_set_reason(error, error_size, "the %s is malformed", bad);
                return -EBADMSG;
        }
        if (r < 0)
                return r;
        if (isempty(c.session_token)) {
                lb_set_reason(error, error_size, "Token is empty");
                lb_credentials_done(&c);
                return -EBADMSG;
        }
        if (role_arn && role_arn_size > 0) {
                const char *a = json_string_value(json_object_get(root, "RoleArn"));
                if (!a || lb_strscpy(role_arn, role_arn_size, a) < 0)
                        role_arn[0] = '\0';
        }
        *ret = c;
        explicit_bzero(&c, sizeof c);
        return 0;
}

/* The URL to ask, into *ret. */
static int container_url(const struct lb_settings *s, char **ret, char *reason, size_t size) {
        if (!isempty(s->container_relative_uri)) {
                if (s->container_relative_uri[0] != '/') {
                        lb_set_reason(reason, size, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI does not start with '/'");
                        return -EINVAL;
                }
                size_t n = strlen(s->container_endpoint);
                while (n > 0 && s->container_endpoint[n - 1] == '/')
                        n--;
                if (asprintf(ret, "%.*s%s", (int) n, s->container_endpoint, s->container_relative_uri) < 0)
                        return -ENOMEM;
                return 0;
        }
        *ret = strdup(s->container_full_uri);
        return *ret ? 0 : -ENOMEM;
}

/* The Authorization header's value: the file (read now), else the variable, else NULL. */
static int authorization(const struct lb_settings *s, char **ret, char *reason, size_t size) {
        if (isempty(s->container_token_file)) {
                *ret = NULL;
                if (isempty(s->container_token))
                        return 0;
                *ret = strdup(s->container_token);
                return *ret ? 0 : -ENOMEM;
        }
        _cleanup_free_secret_ char *data = NULL;
        size_t len = 0;
        int r = lb_read_file(s->container_token_file, TOKEN_FILE_MAX, &data, &len);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                lb_set_reason(reason, size, "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: %s",
                              s->container_token_file, r == -EFBIG ? "larger than 16 KiB" : strerror(-r));
                return -EINVAL;
        }
        /* One line break at the end is how editors and echo write a file; anything else in a
         * header would break the request (or smuggle another header into it). */
        if (len > 0 && data[len - 1] == '\n')
                data[--len] = '\0';
        if (len > 0 && data[len - 1] == '\r')
                data[--len] = '\0';
        bool ok = len > 0 && strlen(data) == len;
        for (size_t i = 0; ok && i < len; i++)
                ok = (unsigned char) data[i] >= 0x20 && (unsigned char) data[i] < 0x7f;
        if (!ok) {
                lb_set_reason(reason, size, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s %s", s->container_token_file,
                              len == 0 ? "is empty" : "holds a control character or non-ASCII byte: not a header value");
                return -EINVAL;
        }
        *ret = TAKE_PTR(data);
        return 0;
}

static void wipe_headers(struct curl_slist *list) {
        for (struct curl_slist *l = list; l; l = l->next)
                explicit_bzero(l->data, strlen(l->data));
        curl_slist_free_all(list);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct curl_slist *, wipe_headers);

static int build_headers(const char *token, struct curl_slist **ret) {
        _cleanup_(wipe_headersp) struct curl_slist *list = curl_slist_append(NULL, "Accept: application/json");
        if (!list)
                return -ENOMEM;
        if (token) {
                _cleanup_buf_ struct lb_buf h = {};
                int r = lb_buf_printf(&h, "Authorization: %s", token);
                if (r < 0)
                        return r;
                struct curl_slist *l = curl_slist_append(list, h.data);
                explicit_bzero(h.data, h.len);
                if (!l)
                        return -ENOMEM;
                list = l;
        }
        *ret = TAKE_PTR(list);
        return 0;
}

/* ": code: message" of an error answer ({"code":..,"message":..} as the ECS agent writes it, or
 * with capitals), else ": " and the start of a text answer (the Pod Identity Agent's), escaped. */
static void error_answer(const struct lb_buf *body, char *buf, size_t size) {
        buf[0] = '\0';
        if (!body->data || body->len == 0)
                return;
        json_error_t err;
        json_auto_t *root = json_loadb(body->data, body->len, 0, &err);
        if (!root || !json_is_object(root)) {
                char text[200];
                size_t n = body->len;
                while (n > 0 && (body->data[n - 1] == '\n' || body->data[n - 1] == '\r'))
                        n--;
                lb_set_reason(buf, size, ": %s", lb_cescapen(body->data, MIN(n, (size_t) 160), text, sizeof text));
                return;
        }
        const char *code = json_string_value(json_object_get(root, "code"));
        const char *message = json_string_value(json_object_get(root, "message"));
        if (!code)
                code = json_string_value(json_object_get(root, "Code"));
        if (!message)
                message = json_string_value(json_object_get(root, "Message"));
        char c[80] = "", m[240] = "";
        if (code)
                (void) lb_cescape(code, c, sizeof c);
        if (message)
                (void) lb_cescape(message, m, sizeof m);
        lb_set_reason(buf, size, ": %s%s%s", c, code && message ? ": " : "", m);
}

/* GETs url; 3 attempts for no answer or a 5xx. 0 with the body, or a negative errno and reason. */
static int fetch(struct lb_context *ctx, const char *url, const char *shown, struct curl_slist *headers,
                 struct lb_buf *ret,
                 char *reason, size_t size) {
        const struct lb_settings *s = &ctx->settings;
        for (unsigned attempt = 1;; attempt++) {
                _cleanup_http_request_ struct lb_http_request req = {
                        .method = "GET",
                        .url = url,
                        .headers = headers,
                        .ca_bundle = s->ca_bundle,
                        .connect_timeout_ms = CONTAINER_TIMEOUT_MS,
                        .timeout_ms = CONTAINER_TIMEOUT_MS,
                        .max_response = s->max_response_bytes > SIZE_MAX ? SIZE_MAX : (size_t) s->max_response_bytes,
                };
                int r = lb_http_perform_one(&req);
                if (r < 0) {
                        lb_set_reason(reason, size, "GET %s: %s", shown, strerror(-r));
                        return r;
                }
                bool transient;
                if (req.truncated) {
                        lb_set_reason(reason, size, "%s answered more than %zu bytes", shown, req.response.limit);
                        return -EBADMSG;
                } else if (lb_http_transport_failed(&req)) {
                        lb_set_reason(reason, size, "no answer from %s: %s", shown, req.error);
                        r = -EHOSTUNREACH;
                        transient = true;
                } else if (req.status == 200) {
                        *ret = req.response;
                        req.response = (struct lb_buf) {};
                        return 0;
                } else {
                        char detail[340];
                        error_answer(&req.response, detail, sizeof detail);
                        lb_set_reason(reason, size, "%s answered HTTP %ld%s", shown, req.status, detail);
                        transient = req.status >= 500 || req.status == 429;
                        r = req.status >= 500 ? -EREMOTEIO : req.status == 429 ? -EAGAIN : -EACCES;
                }
                if (!transient || attempt >= CONTAINER_ATTEMPTS || lb_context_interrupted(ctx))
                        return r;
                lb_debug(ctx, "container credentials: %s; attempt %u of %u in %u ms", reason, attempt + 1,
                         CONTAINER_ATTEMPTS, CONTAINER_RETRY_DELAY_MS);
                lb_sleep_ms(CONTAINER_RETRY_DELAY_MS, (volatile const int *) ctx->interrupted);
        }
}

int lb_creds_from_container(struct lb_context *ctx, struct lb_credentials *ret, char *reason, size_t size) {
        const struct lb_settings *s = &ctx->settings;
        if (isempty(s->container_relative_uri) && isempty(s->container_full_uri)) {
                lb_set_reason(reason, size, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI not set");
                return -ENOKEY;
        }
        _cleanup_free_ char *url = NULL;
        int r = container_url(s, &url, reason, size);
        if (r < 0)
                return r;
        _cleanup_free_secret_ char *token = NULL;
        r = authorization(s, &token, reason, size);
        if (r < 0)
                return r;
        _cleanup_(wipe_headersp) struct curl_slist *headers = NULL;
        r = build_headers(token, &headers);
        if (r < 0)
                return r;

        char shown[256];
        lb_url_for_logs(url, shown, sizeof shown);
        lb_debug(ctx, "container credentials: GET %s%s", shown,
                 token ? (isempty(s->container_token_file) ? " with AWS_CONTAINER_AUTHORIZATION_TOKEN"
                                                           : " with the token of AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
                       : "");
        _cleanup_buf_ struct lb_buf body = {};
        r = fetch(ctx, url, shown, headers, &body, reason, size);
        if (r < 0)
                return r;

        struct lb_credentials c;
        char role[256] = "", error[128] = "";
        r = lb_container_credentials_parse(body.data, body.len, &c, role, sizeof role, error, sizeof error);
        if (body.data)
                explicit_bzero(body.data, body.len);
        if (r == -EBADMSG) {
                lb_set_reason(reason, size, "%s answered something else than credentials: %s", shown, error);
                return r;
        }
        if (r < 0)
                return r;
        c.source = LB_CREDS_CONTAINER;
        lb_utf8_snprintf(c.origin, sizeof c.origin, "container credentials at %s%s%s", shown, role[0] ? ", role " : "",
                         role);
        *ret = c;
        explicit_bzero(&c, sizeof c);
        return 0;
}
