/* SPDX-License-Identifier: MIT */
/*
 * The AWS Query protocol client: form-encoded POST / signed with libcurl's SigV4, several calls
 * sent concurrently, each retried by the SDKs' standard mode. Shared by every service module.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lifeboat/aws/creds.h"
#include "lifeboat/aws/http.h"
#include "lifeboat/aws/provider.h"
#include "lifeboat/aws/query.h"
#include "lifeboat/aws/retry.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/names.h"
#include "lifeboat/basic/time-util.h"
#include "lifeboat/basic/utf8.h"
#include "lifeboat/basic/xml.h"

#define QUERY_CONNECT_TIMEOUT_MS 3000
#define QUERY_DEFAULT_TIMEOUT_MS 30000

struct lb_query {
        struct lb_context *ctx;
        struct lb_creds_provider *creds;        /* shared, not owned */
        struct lb_query_service service;
        char *region;
        char *url;
        char *sigv4;            /* "aws:amz:REGION:SERVICE" */
        struct lb_retry_quota quota;
        unsigned requests;
        struct lb_aws_error last_error;
};

struct call_state {
        struct lb_http_request req;
        unsigned attempts;              /* standard attempts sent */
        bool pending;                   /* to be sent in the next round */
        bool auth_retried;              /* credentials were re-read once for this call */
        bool holds_token;               /* a retry token was taken for the current attempt */
        bool token_timeout;             /* ... at the timeout price */
        bool timed_out;
};

/* ---- error kinds ---- */

struct code_kind {
        const char *code;
        enum lb_aws_error_kind kind;
};

static const struct code_kind code_kinds[] = {
        { "AuthFailure", LB_AWS_ERR_AUTH },
        { "UnauthorizedOperation", LB_AWS_ERR_AUTH },
        { "RequestExpired", LB_AWS_ERR_AUTH },
        { "ExpiredToken", LB_AWS_ERR_AUTH },
        { "InvalidClientTokenId", LB_AWS_ERR_AUTH },
        { "SignatureDoesNotMatch", LB_AWS_ERR_AUTH },
        { "OptInRequired", LB_AWS_ERR_AUTH },
        { "AccessDenied", LB_AWS_ERR_AUTH },            /* IAM's refusal in Auto Scaling, STS, CloudWatch */
        { "VolumeInUse", LB_AWS_ERR_VOLUME_IN_USE },
        { "IncorrectState", LB_AWS_ERR_INCORRECT_STATE },
        { "InvalidParameterValue", LB_AWS_ERR_INVALID_PARAMETER },
        { "InvalidParameter", LB_AWS_ERR_INVALID_PARAMETER },
        { "InvalidParameterCombination", LB_AWS_ERR_INVALID_PARAMETER },
        { "MissingParameter", LB_AWS_ERR_INVALID_PARAMETER },
        { "ValidationError", LB_AWS_ERR_INVALID_PARAMETER },     /* Auto Scaling, STS, CloudWatch */
        { "AttachmentLimitExceeded", LB_AWS_ERR_ATTACHMENT_LIMIT },
        { "InvalidVolume.NotFound", LB_AWS_ERR_VOLUME_NOT_FOUND },
        { "InvalidVolume.ZoneMismatch", LB_AWS_ERR_ZONE_MISMATCH },
        { "InternalError", LB_AWS_ERR_SERVER },
        { "InternalFailure", LB_AWS_ERR_SERVER },
        { "ServiceUnavailable", LB_AWS_ERR_SERVER },
        { "Unavailable", LB_AWS_ERR_SERVER },
        { "Server.Unavailable", LB_AWS_ERR_SERVER },
        { "Server.InternalError", LB_AWS_ERR_SERVER },
};


void lb_form_done(struct lb_form *f) {
        lb_buf_free(&f->buf);
}

/* Cuts the form back to its first len bytes (what it held before a failed addition). */
static void form_truncate(struct lb_form *f, size_t len) {
        f->buf.len = len;
        if (f->buf.data)
                f->buf.data[len] = '\0';
}

/* Appends s percent-encoded: everything but RFC 3986's unreserved characters. */
static int form_append_escaped(struct lb_form *f, const char *s) {
        size_t n = strlen(s);
        if (n == 0)
                return 0;
        if (n > INT_MAX)
                return -E2BIG;
        /* The handle is unused by curl_easy_escape (only a relic of EBCDIC builds). */
        char *e = curl_easy_escape(NULL, s, (int) n);
        if (!e)
                return -ENOMEM;
        int r = lb_buf_append_str(&f->buf, e);
        curl_free(e);
        return r;
}

int lb_form_add(struct lb_form *f, const char *key, const char *value) {
        if (isempty(key) || !value)
                return -EINVAL;

        /* On failure the form is left as it was. */
        size_t saved = f->buf.len;
        int r;
        if ((f->buf.len > 0 && (r = lb_buf_append(&f->buf, "&", 1)) < 0) ||
            (r = form_append_escaped(f, key)) < 0 ||
            (r = lb_buf_append(&f->buf, "=", 1)) < 0 ||
            (r = form_append_escaped(f, value)) < 0) {
                form_truncate(f, saved);
                return r;
        }
        return 0;
}

int lb_form_addf_key(struct lb_form *f, const char *value, const char *key_fmt, ...) {
        char key[256];
        va_list ap;
        va_start(ap, key_fmt);
        int n = vsnprintf(key, sizeof key, key_fmt, ap);
        va_end(ap);
        if (n < 0)
                return -EINVAL;
        if ((size_t) n >= sizeof key)
                return -ENAMETOOLONG;
        return lb_form_add(f, key, value);
}

int lb_form_init_action(struct lb_form *f, const char *action, const char *version) {
        if (isempty(action) || isempty(version))
                return -EINVAL;
        /* Starts over: a form may be reused for the next page. */
        form_truncate(f, 0);
        int r = lb_form_add(f, "Action", action);
        if (r < 0)
                return r;
        return lb_form_add(f, "Version", version);
}

int lb_form_add_filters(struct lb_form *f, const struct lb_filter *filters, size_t n) {
        size_t saved = f->buf.len;
        int r = 0;

        for (size_t i = 0; i < n && r >= 0; i++) {
                const struct lb_filter *flt = &filters[i];
                /* A filter without values matches nothing useful and EC2 refuses it. */
                if (isempty(flt->name) || flt->n_values == 0 || !flt->values) {
                        r = -EINVAL;
                        break;
                }
                r = lb_form_addf_key(f, flt->name, "Filter.%zu.Name", i + 1);
                for (size_t j = 0; j < flt->n_values && r >= 0; j++)
                        r = lb_form_addf_key(f, flt->values[j] ? flt->values[j] : "", "Filter.%zu.Value.%zu",
                                             i + 1, j + 1);
        }
        if (r < 0)
                form_truncate(f, saved);
        return r;
}

/* "Action=DescribeVolumes&..." -> "DescribeVolumes", for log messages. */
const char *lb_form_action(const struct lb_form *f, char *buf, size_t size) {
        const char *s = f->buf.data;
        if (!s || !lb_startswith(s, "Action="))
                return "?";
        s += strlen("Action=");
        size_t n = strcspn(s, "&");
        if (n >= size)
                n = size - 1;
        memcpy(buf, s, n);
        buf[n] = '\0';
        return buf;
}

enum lb_aws_error_kind lb_aws_error_kind_from_code(const char *code, long http_status) {
        if (!isempty(code)) {
                if (lb_retry_is_throttle_code(code))
                        return LB_AWS_ERR_THROTTLED;
                for (size_t i = 0; i < ELEMENTSOF(code_kinds); i++)
                        if (streq(code, code_kinds[i].code))
                                return code_kinds[i].kind;
        }
        if (http_status >= 500)
                return LB_AWS_ERR_SERVER;
        return LB_AWS_ERR_OTHER;
}

int lb_aws_error_kind_to_errno(enum lb_aws_error_kind kind) {
        switch (kind) {
        case LB_AWS_OK:
                return 0;
        case LB_AWS_ERR_TRANSPORT:
                return -EHOSTUNREACH;
        case LB_AWS_ERR_THROTTLED:
                return -EAGAIN;
        case LB_AWS_ERR_SERVER:
                return -EREMOTEIO;
        case LB_AWS_ERR_AUTH:
                return -EACCES;
        case LB_AWS_ERR_VOLUME_IN_USE:
                return -EBUSY;
        case LB_AWS_ERR_INCORRECT_STATE:
                return -EALREADY;
        case LB_AWS_ERR_INVALID_PARAMETER:
                return -EINVAL;
        case LB_AWS_ERR_ATTACHMENT_LIMIT:
                return -ENOSPC;
        case LB_AWS_ERR_VOLUME_NOT_FOUND:
                return -ENOENT;
        case LB_AWS_ERR_ZONE_MISMATCH:
                return -EXDEV;
        case LB_AWS_ERR_BAD_ANSWER:
                return -EBADMSG;
        case LB_AWS_ERR_OTHER:
                break;
        }
        return -EIO;
}

const char *lb_aws_error_kind_to_string(enum lb_aws_error_kind kind) {
        static const char *const names[] = {
                [LB_AWS_OK] = "ok",
                [LB_AWS_ERR_TRANSPORT] = "transport error",
                [LB_AWS_ERR_THROTTLED] = "throttled",
                [LB_AWS_ERR_SERVER] = "server error",
                [LB_AWS_ERR_AUTH] = "not authorized",
                [LB_AWS_ERR_VOLUME_IN_USE] = "volume in use",
                [LB_AWS_ERR_INCORRECT_STATE] = "incorrect state",
                [LB_AWS_ERR_INVALID_PARAMETER] = "invalid parameter",
                [LB_AWS_ERR_ATTACHMENT_LIMIT] = "attachment limit exceeded",
                [LB_AWS_ERR_VOLUME_NOT_FOUND] = "volume not found",
                [LB_AWS_ERR_ZONE_MISMATCH] = "zone mismatch",
                [LB_AWS_ERR_BAD_ANSWER] = "bad answer",
                [LB_AWS_ERR_OTHER] = "error",
        };
        if ((size_t) kind < ELEMENTSOF(names) && names[kind])
                return names[kind];
        return "error";
}

int lb_aws_error_format(const struct lb_aws_error *e, char *buf, size_t size) {
        const char *what = !isempty(e->code) ? e->code : lb_aws_error_kind_to_string(e->kind);
        char status[32] = "";
        if (isempty(e->code) && e->http_status > 0)
                (void) lb_snprintf(status, sizeof status, " (HTTP %ld)", e->http_status);

        return lb_snprintf(buf, size, "%s%s%s%s%s%s%s", what, status,
                           isempty(e->message) ? "" : ": ", e->message,
                           isempty(e->request_id) ? "" : " (request id ", e->request_id,
                           isempty(e->request_id) ? "" : ")");
}

bool lb_aws_xml_is_error(const struct lb_xml_node *root) {
        return streq(root->name, "Response") || streq(root->name, "ErrorResponse");
}

int lb_aws_parse_error(const char *buf, size_t len, struct lb_aws_error *ret) {
        _cleanup_xml_ struct lb_xml_node *root = NULL;
        int r = lb_xml_parse(buf, len, &root);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        if (!lb_aws_xml_is_error(root))
                return -EBADMSG;

        /* EC2 nests Errors/Error; the generic query protocol has Error directly under ErrorResponse. */
        const struct lb_xml_node *error = lb_xml_path(root, "Errors/Error");
        if (!error)
                error = lb_xml_child(root, "Error");
        if (!error)
                return -EBADMSG;

        struct lb_aws_error e = {};
        const char *code = lb_xml_child_text(error, "Code");
        if (isempty(code) || lb_strscpy(e.code, sizeof e.code, code) < 0)
                return -EBADMSG;
        (void) lb_utf8_copy(e.message, sizeof e.message, strempty(lb_xml_child_text(error, "Message")));

        const char *request_id = lb_xml_child_text(root, "RequestID");
        if (!request_id)
                request_id = lb_xml_child_text(root, "RequestId");
        if (!request_id)
                request_id = lb_xml_child_text(root, "requestId");
        /* A request id that does not fit is dropped rather than cut: it only helps AWS support. */
        if (request_id && lb_strscpy(e.request_id, sizeof e.request_id, request_id) < 0)
                e.request_id[0] = '\0';

        e.kind = lb_aws_error_kind_from_code(e.code, 0);
        *ret = e;
        return 0;
}

/* ---- the client ---- */

static int build_url(const char *endpoint_url, const char *host_prefix, const char *region, char **ret) {
        _cleanup_buf_ struct lb_buf url = {};
        int r;
        if (!isempty(endpoint_url)) {
                r = lb_buf_append_str(&url, endpoint_url);
                /* Always POST to "/": no query string, which libcurl < 8.3 would sign wrongly. */
                if (r >= 0 && !lb_endswith(endpoint_url, "/"))
                        r = lb_buf_append_str(&url, "/");
        } else
                r = lb_buf_printf(&url, "https://%s.%s.amazonaws.com%s/", host_prefix, region,
                                  lb_startswith(region, "cn-") ? ".cn" : "");
        if (r < 0)
                return r;
        char *u = lb_buf_steal(&url);
        if (!u)
                return -ENOMEM;
        *ret = u;
        return 0;
}

int lb_query_new(struct lb_context *ctx, struct lb_creds_provider *creds, const struct lb_query_service *service,
                 const char *region, const char *endpoint_url, struct lb_query **ret) {
        if (!service || isempty(service->name) || isempty(service->version) || !lb_region_valid(region))
                return -EINVAL;

        _cleanup_(lb_query_freep) struct lb_query *q = calloc(1, sizeof *q);
        if (!q)
                return -ENOMEM;
        q->ctx = ctx;
        q->creds = creds;
        q->service = *service;
        lb_retry_quota_init(&q->quota);

        q->region = strdup(region);
        if (!q->region)
                return -ENOMEM;
        int r = build_url(endpoint_url, service->name, region, &q->url);
        if (r < 0)
                return r;
        /* Region and service always explicit: for 127.0.0.1 curl would guess nonsense. */
        if (asprintf(&q->sigv4, "aws:amz:%s:%s", region, service->name) < 0) {
                q->sigv4 = NULL;
                return -ENOMEM;
        }
        lb_debug(ctx, "%s endpoint %s, region %s, credentials from %s", service->name, q->url, q->region,
                 creds ? lb_creds_provider_source(creds) : "nowhere: requests are not signed");
        *ret = TAKE_PTR(q);
        return 0;
}

void lb_query_free(struct lb_query *q) {
        if (!q)
                return;
        free(q->region);
        free(q->url);
        free(q->sigv4);
        free(q);
}

const char *lb_query_url(const struct lb_query *q) {
        return q->url;
}

const char *lb_query_region(const struct lb_query *q) {
        return q->region;
}

const struct lb_aws_error *lb_query_last_error(const struct lb_query *q) {
        return &q->last_error;
}

const char *lb_query_last_error_text(const struct lb_query *q, char *buf, size_t size) {
        (void) lb_aws_error_format(&q->last_error, buf, size);
        return buf;
}

unsigned lb_query_request_count(const struct lb_query *q) {
        return q->requests;
}

int lb_query_form_init(const struct lb_query *q, struct lb_form *f, const char *action) {
        return lb_form_init_action(f, action, q->service.version);
}

void lb_query_call_done(struct lb_query_call *c) {
        lb_form_done(&c->form);
        lb_buf_free(&c->answer);
}

static int build_headers(const struct lb_credentials *creds, struct curl_slist **ret) {
        _cleanup_(curl_slist_free_allp) struct curl_slist *list = NULL;

        list = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded; charset=utf-8");
        if (!list)
                return -ENOMEM;

        /* Only when non-empty: an empty header would be signed but not sent. */
        if (creds && !isempty(creds->session_token)) {
                _cleanup_buf_ struct lb_buf h = {};
                int r = lb_buf_printf(&h, "x-amz-security-token: %s", creds->session_token);
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

static void wipe_headers(struct curl_slist *list) {
        /* The token should not linger in freed memory. */
        for (struct curl_slist *l = list; l; l = l->next)
                explicit_bzero(l->data, strlen(l->data));
        curl_slist_free_all(list);
}

static void fill_request(const struct lb_query *q, const struct lb_credentials *creds, const struct lb_query_call *call,
                         struct curl_slist *headers, struct lb_http_request *req) {
        const struct lb_settings *s = &q->ctx->settings;
        long timeout = s->ec2_timeout_ms > 0 ? (long) MIN(s->ec2_timeout_ms, (uint64_t) LONG_MAX)
                                             : QUERY_DEFAULT_TIMEOUT_MS;

        *req = (struct lb_http_request) {
                .method = "POST",
                .url = q->url,
                .body = call->form.buf.data,
                .body_len = call->form.buf.len,
                .headers = headers,
                /* A client without credentials signs nothing (STS AssumeRoleWithWebIdentity). */
                .sigv4 = creds ? q->sigv4 : NULL,
                .username = creds ? creds->access_key_id : NULL,
                .password = creds ? creds->secret_access_key : NULL,
                .ca_bundle = s->ca_bundle,
                .connect_timeout_ms = MIN((long) QUERY_CONNECT_TIMEOUT_MS, timeout),
                .timeout_ms = timeout,
                .max_response = s->max_response_bytes > SIZE_MAX ? SIZE_MAX : (size_t) s->max_response_bytes,
        };
}

/* Turns one finished exchange into the call's answer or error. Returns true on success. */
static bool evaluate(struct lb_query_call *call, struct call_state *st) {
        struct lb_http_request *req = &st->req;
        struct lb_aws_error e = {};

        st->timed_out = false;
        if (req->truncated) {
                e.kind = LB_AWS_ERR_BAD_ANSWER;
                e.http_status = req->status;
                (void) lb_snprintf(e.message, sizeof e.message, "answer larger than %zu bytes",
                                   req->max_response > 0 ? req->max_response : (size_t) 1 << 20);
        } else if (lb_http_transport_failed(req) || req->curl_code != CURLE_OK || req->status == 0) {
                e.kind = LB_AWS_ERR_TRANSPORT;
                st->timed_out = lb_http_timed_out(req);
                (void) lb_snprintf(e.message, sizeof e.message, "%s",
                                   req->error[0] ? req->error : curl_easy_strerror(req->curl_code));
        } else if (req->status >= 200 && req->status < 300) {
                lb_buf_free(&call->answer);
                call->answer = req->response;
                req->response = (struct lb_buf) {};
                call->error = (struct lb_aws_error) {};
                call->result = 0;
                return true;
        } else if (lb_aws_parse_error(req->response.data, req->response.len, &e) >= 0) {
                e.kind = lb_aws_error_kind_from_code(e.code, req->status);
                e.http_status = req->status;
        } else {
                e = (struct lb_aws_error) {
                        .kind = req->status >= 500 ? LB_AWS_ERR_SERVER : LB_AWS_ERR_BAD_ANSWER,
                        .http_status = req->status,
                };
                (void) lb_snprintf(e.message, sizeof e.message, "HTTP status %ld without an AWS error document",
                                   req->status);
        }

        call->error = e;
        call->result = lb_aws_error_kind_to_errno(e.kind);
        return false;
}

static bool auth_refreshable(const struct lb_query *q, const struct lb_aws_error *e) {
        return e->kind == LB_AWS_ERR_AUTH && q->creds && lb_creds_provider_refreshable(q->creds) &&
               (streq(e->code, "AuthFailure") || streq(e->code, "RequestExpired") ||
                streq(e->code, "ExpiredToken"));
}

static void log_retry(const struct lb_query *q, const struct lb_query_call *call, unsigned next_attempt,
                      uint64_t delay_ms) {
        char action[64], status[32] = "";
        const struct lb_aws_error *e = &call->error;
        if (e->http_status > 0)
                (void) lb_snprintf(status, sizeof status, " (HTTP %ld)", e->http_status);
        lb_debug(q->ctx, "%s %s: %s%s: %s; attempt %u of %u in %" PRIu64 " ms", q->service.name,
                 lb_form_action(&call->form, action, sizeof action),
                 isempty(e->code) ? lb_aws_error_kind_to_string(e->kind) : e->code, status,
                 e->message, next_attempt, (unsigned) LB_RETRY_MAX_ATTEMPTS, delay_ms);
}

/*
 * Decides the fate of every call that failed this round: re-send after
 * re-reading the role credentials, re-send by the standard retry rules, or
 * stop. Returns the delay to wait before the next round.
 */
static uint64_t plan_retries(struct lb_query *q, struct lb_query_call *calls, struct call_state *st, size_t n,
                             const bool *failed) {
        uint64_t delay = 0;

        /* Expired or rotated role credentials: read them again, once per call, at no retry cost. */
        bool want_reload = false;
        for (size_t i = 0; i < n; i++)
                if (failed[i] && !st[i].auth_retried && auth_refreshable(q, &calls[i].error))
                        want_reload = true;
        bool reloaded = false;
        if (want_reload) {
                int r = lb_creds_provider_reload(q->creds);
                if (r < 0)
                        lb_warn(q->ctx, "Could not re-read the credentials: %s", strerror(-r));
                else
                        reloaded = true;
        }

        for (size_t i = 0; i < n; i++) {
                if (!failed[i])
                        continue;
                const struct lb_aws_error *e = &calls[i].error;

                if (reloaded && !st[i].auth_retried && auth_refreshable(q, e)) {
                        st[i].auth_retried = true;
                        st[i].attempts--;       /* not counted as a standard attempt */
                        st[i].pending = true;
                        log_retry(q, &calls[i], st[i].attempts + 1, 0);
                        continue;
                }

                bool transport = e->kind == LB_AWS_ERR_TRANSPORT;
                if (!lb_retry_is_retryable(transport, e->http_status, e->code) ||
                    st[i].attempts >= LB_RETRY_MAX_ATTEMPTS)
                        continue;
                if (lb_retry_quota_acquire(&q->quota, st[i].timed_out) < 0) {
                        lb_debug(q->ctx, "%s retry quota exhausted, not retrying", q->service.name);
                        continue;
                }
                st[i].holds_token = true;
                st[i].token_timeout = st[i].timed_out;
                st[i].pending = true;

                uint64_t d = lb_retry_delay_ms(st[i].attempts + 1, lb_random01());
                delay = MAX(delay, d);
                log_retry(q, &calls[i], st[i].attempts + 1, d);
        }
        return delay;
}

static void set_last_error(struct lb_query *q, const struct lb_query_call *calls, size_t n) {
        q->last_error = (struct lb_aws_error) {};
        for (size_t i = 0; i < n; i++)
                if (calls[i].result < 0) {
                        q->last_error = calls[i].error;
                        return;
                }
}

static void fail_local(struct lb_query_call *calls, size_t n, int error) {
        for (size_t i = 0; i < n; i++) {
                calls[i].error = (struct lb_aws_error) { .kind = LB_AWS_ERR_OTHER };
                (void) lb_snprintf(calls[i].error.message, sizeof calls[i].error.message,
                                   "request not sent: %s", strerror(-error));
                calls[i].result = error;
        }
}

int lb_query_perform(struct lb_query *q, struct lb_query_call *calls, size_t n) {
        if (n == 0)
                return 0;
        for (size_t i = 0; i < n; i++)
                if (!calls[i].form.buf.data || calls[i].form.buf.len == 0)
                        return -EINVAL;

        _cleanup_free_ struct call_state *st = calloc(n, sizeof *st);
        _cleanup_free_ struct lb_http_request **batch = calloc(n, sizeof *batch);
        _cleanup_free_ size_t *index = calloc(n, sizeof *index);
        _cleanup_free_ bool *failed = calloc(n, sizeof *failed);
        if (!st || !batch || !index || !failed)
                return -ENOMEM;

        for (size_t i = 0; i < n; i++) {
                st[i].pending = true;
                calls[i].result = -EINPROGRESS;
                calls[i].error = (struct lb_aws_error) {};
                lb_buf_free(&calls[i].answer);
        }

        int ret = 0;
        for (;;) {
                const struct lb_credentials *creds = q->creds ? lb_creds_provider_get(q->creds) : NULL;
                struct curl_slist *headers = NULL;
                int r = build_headers(creds, &headers);
                if (r < 0) {
                        for (size_t i = 0; i < n; i++)
                                if (st[i].pending)
                                        fail_local(&calls[i], 1, r);
                        ret = r;
                        break;
                }

                size_t k = 0;
                for (size_t i = 0; i < n; i++) {
                        if (!st[i].pending)
                                continue;
                        lb_http_request_done(&st[i].req);
                        fill_request(q, creds, &calls[i], headers, &st[i].req);
                        st[i].attempts++;
                        st[i].pending = false;
                        batch[k] = &st[i].req;
                        index[k] = i;
                        k++;
                }

                r = lb_http_perform(batch, k);
                wipe_headers(headers);
                if (r < 0) {
                        for (size_t j = 0; j < k; j++)
                                fail_local(&calls[index[j]], 1, r);
                        ret = r;
                        break;
                }
                q->requests += (unsigned) k;

                memset(failed, 0, n * sizeof *failed);
                for (size_t j = 0; j < k; j++) {
                        size_t i = index[j];
                        if (evaluate(&calls[i], &st[i])) {
                                lb_retry_quota_release(&q->quota, st[i].holds_token, st[i].token_timeout);
                                st[i].holds_token = false;
                        } else
                                failed[i] = true;
                        lb_http_request_done(&st[i].req);
                }

                if (lb_context_interrupted(q->ctx))
                        break;
                uint64_t delay = plan_retries(q, calls, st, n, failed);

                bool any = false;
                for (size_t i = 0; i < n; i++)
                        any = any || st[i].pending;
                if (!any)
                        break;

                if (delay > 0)
                        lb_sleep_ms(delay, (volatile const int *) q->ctx->interrupted);
                if (lb_context_interrupted(q->ctx))
                        break;  /* pending calls keep the error of their last attempt */
        }

        for (size_t i = 0; i < n; i++)
                lb_http_request_done(&st[i].req);
        set_last_error(q, calls, n);
        return ret;
}

int lb_query_perform_one(struct lb_query *q, struct lb_query_call *call) {
        int r = lb_query_perform(q, call, 1);
        if (r < 0)
                return r;
        return call->result;
}

int lb_query_bad_answer(struct lb_query *q, const char *action, int r) {
        if (r == -ENOMEM)
                return r;
        (void) lb_query_record_error(q, -EBADMSG, LB_AWS_ERR_BAD_ANSWER, "could not read the %s answer", action);
        q->last_error.http_status = 200;
        return -EBADMSG;
}

int lb_query_local_error(struct lb_query *q, int r) {
        return lb_query_record_error(q, r, LB_AWS_ERR_OTHER, "%s", strerror(-r));
}

int lb_query_record_error(struct lb_query *q, int r, enum lb_aws_error_kind kind, const char *fmt, ...) {
        q->last_error = (struct lb_aws_error) { .kind = kind };
        va_list ap;
        va_start(ap, fmt);
        lb_utf8_vsnprintf(q->last_error.message, sizeof q->last_error.message, fmt, ap);
        va_end(ap);
        return r;
}

int lb_form_add_list(struct lb_form *f, const char *prefix, const char *const *values, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (isempty(values[i]))
                        return -EINVAL;
                int r = lb_form_addf_key(f, values[i], "%s.%zu", prefix, i + 1);
                if (r < 0)
                        return r;
        }
        return 0;
}

