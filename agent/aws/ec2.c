/* SPDX-License-Identifier: MIT */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lifeboat/aws/creds.h"
#include "lifeboat/aws/ec2.h"
#include "lifeboat/aws/http.h"
#include "lifeboat/aws/imds.h"
#include "lifeboat/aws/retry.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/names.h"
#include "lifeboat/basic/time-util.h"

/*
 * The EC2 Query API client: form-encoded POST / signed with libcurl's SigV4,
 * several calls sent concurrently, each retried by the SDKs' standard mode.
 */

#define EC2_API_VERSION "2016-11-15"
#define EC2_CONNECT_TIMEOUT_MS 3000
#define EC2_DEFAULT_TIMEOUT_MS 30000
#define EC2_PAGE_SIZE "500"
#define EC2_MAX_PAGES 1000      /* 500 000 volumes: far beyond any account, so a loop means a broken peer */

struct lb_ec2 {
        struct lb_context *ctx;
        struct lb_imds *imds;
        char *region;
        char *url;
        char *sigv4;            /* "aws:amz:REGION:ec2": region and service always explicit */
        struct lb_credentials creds;
        struct lb_retry_quota quota;
        unsigned requests;
        struct lb_ec2_error last_error;
};

/* ---- form encoding ---- */

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

int lb_form_init_action(struct lb_form *f, const char *action) {
        if (isempty(action))
                return -EINVAL;
        /* Starts over: a form may be reused for the next page. */
        form_truncate(f, 0);
        int r = lb_form_add(f, "Action", action);
        if (r < 0)
                return r;
        return lb_form_add(f, "Version", EC2_API_VERSION);
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
static const char *form_action(const struct lb_form *f, char *buf, size_t size) {
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

/* ---- the client ---- */

static int region_from_imds(struct lb_imds *imds, char **ret) {
        _cleanup_free_ char *body = NULL;
        int r = lb_imds_get(imds, "/latest/meta-data/placement/region", &body);
        if (r < 0)
                return r;
        (void) lb_strstrip(body);
        *ret = TAKE_PTR(body);
        return 0;
}

static int build_url(const struct lb_settings *s, const char *region, char **ret) {
        _cleanup_buf_ struct lb_buf url = {};
        int r;
        if (!isempty(s->ec2_endpoint)) {
                r = lb_buf_append_str(&url, s->ec2_endpoint);
                /* Always POST to "/": no query string, which libcurl < 8.3 would sign wrongly. */
                if (r >= 0 && !lb_endswith(s->ec2_endpoint, "/"))
                        r = lb_buf_append_str(&url, "/");
        } else
                r = lb_buf_printf(&url, "https://ec2.%s.amazonaws.com%s/", region,
                                  lb_startswith(region, "cn-") ? ".cn" : "");
        if (r < 0)
                return r;
        char *u = lb_buf_steal(&url);
        if (!u)
                return -ENOMEM;
        *ret = u;
        return 0;
}

int lb_ec2_new(struct lb_context *ctx, struct lb_imds *imds, const char *region, struct lb_ec2 **ret) {
        _cleanup_free_ char *imds_region = NULL;
        int r;

        if (isempty(region))
                region = ctx->settings.region;
        if (isempty(region)) {
                if (!imds)
                        return -EINVAL;
                r = region_from_imds(imds, &imds_region);
                if (r < 0)
                        return r;
                region = imds_region;
        }
        if (!lb_region_valid(region))
                return -EINVAL;

        _cleanup_ec2_ struct lb_ec2 *ec2 = calloc(1, sizeof *ec2);
        if (!ec2)
                return -ENOMEM;
        ec2->ctx = ctx;
        ec2->imds = imds;
        lb_retry_quota_init(&ec2->quota);

        ec2->region = strdup(region);
        if (!ec2->region)
                return -ENOMEM;
        r = build_url(&ctx->settings, region, &ec2->url);
        if (r < 0)
                return r;
        if (asprintf(&ec2->sigv4, "aws:amz:%s:ec2", region) < 0) {
                ec2->sigv4 = NULL;
                return -ENOMEM;
        }

        r = lb_credentials_load(ctx, imds, &ec2->creds);
        if (r < 0)
                return r;

        lb_debug(ctx, "EC2 endpoint %s, region %s, credentials from %s", ec2->url, ec2->region,
                 ec2->creds.from_imds ? "the instance role" : "the environment");
        *ret = TAKE_PTR(ec2);
        return 0;
}

void lb_ec2_free(struct lb_ec2 *ec2) {
        if (!ec2)
                return;
        lb_credentials_done(&ec2->creds);
        free(ec2->region);
        free(ec2->url);
        free(ec2->sigv4);
        free(ec2);
}

const struct lb_ec2_error *lb_ec2_last_error(const struct lb_ec2 *ec2) {
        return &ec2->last_error;
}

const char *lb_ec2_last_error_text(const struct lb_ec2 *ec2, char *buf, size_t size) {
        (void) lb_ec2_error_format(&ec2->last_error, buf, size);
        return buf;
}

unsigned lb_ec2_request_count(const struct lb_ec2 *ec2) {
        return ec2->requests;
}

void lb_ec2_call_done(struct lb_ec2_call *c) {
        lb_form_done(&c->form);
        lb_buf_free(&c->answer);
}

static inline void ec2_call_donep(struct lb_ec2_call *c) {
        lb_ec2_call_done(c);
}
#define _cleanup_call_ _cleanup_(ec2_call_donep)

static int reload_credentials(struct lb_ec2 *ec2) {
        struct lb_credentials fresh = {};
        int r = lb_credentials_load(ec2->ctx, ec2->imds, &fresh);
        if (r < 0)
                return r;
        lb_credentials_done(&ec2->creds);
        ec2->creds = fresh;
        explicit_bzero(&fresh, sizeof fresh);
        return 0;
}

static void refresh_credentials_if_needed(struct lb_ec2 *ec2) {
        if (!ec2->creds.from_imds || !lb_credentials_need_refresh(&ec2->creds, time(NULL)))
                return;
        int r = reload_credentials(ec2);
        if (r < 0)
                /* The old ones may still be valid for a while; an AUTH answer will tell. */
                lb_warn(ec2->ctx, "Could not refresh the instance role credentials: %s", strerror(-r));
        else
                lb_debug(ec2->ctx, "Refreshed the instance role credentials");
}

static int build_headers(const struct lb_ec2 *ec2, struct curl_slist **ret) {
        _cleanup_(curl_slist_free_allp) struct curl_slist *list = NULL;

        list = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded; charset=utf-8");
        if (!list)
                return -ENOMEM;

        /* Only when non-empty: an empty header would be signed but not sent. */
        if (!isempty(ec2->creds.session_token)) {
                _cleanup_buf_ struct lb_buf h = {};
                int r = lb_buf_printf(&h, "x-amz-security-token: %s", ec2->creds.session_token);
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

struct call_state {
        struct lb_http_request req;
        unsigned attempts;              /* standard attempts sent */
        bool pending;                   /* to be sent in the next round */
        bool auth_retried;              /* credentials were re-read once for this call */
        bool holds_token;               /* a retry token was taken for the current attempt */
        bool token_timeout;             /* ... at the timeout price */
        bool timed_out;
};

static void fill_request(const struct lb_ec2 *ec2, const struct lb_ec2_call *call, struct curl_slist *headers,
                         struct lb_http_request *req) {
        const struct lb_settings *s = &ec2->ctx->settings;
        long timeout = s->ec2_timeout_ms > 0 ? (long) MIN(s->ec2_timeout_ms, (uint64_t) LONG_MAX)
                                             : EC2_DEFAULT_TIMEOUT_MS;

        *req = (struct lb_http_request) {
                .method = "POST",
                .url = ec2->url,
                .body = call->form.buf.data,
                .body_len = call->form.buf.len,
                .headers = headers,
                .sigv4 = ec2->sigv4,
                .username = ec2->creds.access_key_id,
                .password = ec2->creds.secret_access_key,
                .ca_bundle = s->ca_bundle,
                .connect_timeout_ms = MIN((long) EC2_CONNECT_TIMEOUT_MS, timeout),
                .timeout_ms = timeout,
                .max_response = s->max_response_bytes > SIZE_MAX ? SIZE_MAX : (size_t) s->max_response_bytes,
        };
}

/* Turns one finished exchange into the call's answer or error. Returns true on success. */
static bool evaluate(struct lb_ec2_call *call, struct call_state *st) {
        struct lb_http_request *req = &st->req;
        struct lb_ec2_error e = {};

        st->timed_out = false;
        if (req->truncated) {
                e.kind = LB_EC2_ERR_BAD_ANSWER;
                e.http_status = req->status;
                (void) lb_snprintf(e.message, sizeof e.message, "answer larger than %zu bytes",
                                   req->max_response > 0 ? req->max_response : (size_t) 1 << 20);
        } else if (lb_http_transport_failed(req) || req->curl_code != CURLE_OK || req->status == 0) {
                e.kind = LB_EC2_ERR_TRANSPORT;
                st->timed_out = lb_http_timed_out(req);
                (void) lb_snprintf(e.message, sizeof e.message, "%s",
                                   req->error[0] ? req->error : curl_easy_strerror(req->curl_code));
        } else if (req->status >= 200 && req->status < 300) {
                lb_buf_free(&call->answer);
                call->answer = req->response;
                req->response = (struct lb_buf) {};
                call->error = (struct lb_ec2_error) {};
                call->result = 0;
                return true;
        } else if (lb_ec2_parse_error(req->response.data, req->response.len, &e) >= 0) {
                e.kind = lb_ec2_error_kind_from_code(e.code, req->status);
                e.http_status = req->status;
        } else {
                e = (struct lb_ec2_error) {
                        .kind = req->status >= 500 ? LB_EC2_ERR_SERVER : LB_EC2_ERR_BAD_ANSWER,
                        .http_status = req->status,
                };
                (void) lb_snprintf(e.message, sizeof e.message, "HTTP status %ld without an EC2 error document",
                                   req->status);
        }

        call->error = e;
        call->result = lb_ec2_error_kind_to_errno(e.kind);
        return false;
}

static bool auth_refreshable(const struct lb_ec2 *ec2, const struct lb_ec2_error *e) {
        return e->kind == LB_EC2_ERR_AUTH && ec2->creds.from_imds &&
               (streq(e->code, "AuthFailure") || streq(e->code, "RequestExpired") ||
                streq(e->code, "ExpiredToken"));
}

static void log_retry(const struct lb_ec2 *ec2, const struct lb_ec2_call *call, unsigned next_attempt,
                      uint64_t delay_ms) {
        char action[64], status[32] = "";
        const struct lb_ec2_error *e = &call->error;
        if (e->http_status > 0)
                (void) lb_snprintf(status, sizeof status, " (HTTP %ld)", e->http_status);
        lb_debug(ec2->ctx, "EC2 %s: %s%s: %s; attempt %u of %u in %" PRIu64 " ms",
                 form_action(&call->form, action, sizeof action),
                 isempty(e->code) ? lb_ec2_error_kind_to_string(e->kind) : e->code, status,
                 e->message, next_attempt, (unsigned) LB_RETRY_MAX_ATTEMPTS, delay_ms);
}

/*
 * Decides the fate of every call that failed this round: re-send after
 * re-reading the role credentials, re-send by the standard retry rules, or
 * stop. Returns the delay to wait before the next round.
 */
static uint64_t plan_retries(struct lb_ec2 *ec2, struct lb_ec2_call *calls, struct call_state *st, size_t n,
                             const bool *failed) {
        uint64_t delay = 0;

        /* Expired or rotated role credentials: read them again, once per call, at no retry cost. */
        bool want_reload = false;
        for (size_t i = 0; i < n; i++)
                if (failed[i] && !st[i].auth_retried && auth_refreshable(ec2, &calls[i].error))
                        want_reload = true;
        bool reloaded = false;
        if (want_reload) {
                int r = reload_credentials(ec2);
                if (r < 0)
                        lb_warn(ec2->ctx, "Could not re-read the instance role credentials: %s", strerror(-r));
                else
                        reloaded = true;
        }

        for (size_t i = 0; i < n; i++) {
                if (!failed[i])
                        continue;
                const struct lb_ec2_error *e = &calls[i].error;

                if (reloaded && !st[i].auth_retried && auth_refreshable(ec2, e)) {
                        st[i].auth_retried = true;
                        st[i].attempts--;       /* not counted as a standard attempt */
                        st[i].pending = true;
                        log_retry(ec2, &calls[i], st[i].attempts + 1, 0);
                        continue;
                }

                bool transport = e->kind == LB_EC2_ERR_TRANSPORT;
                if (!lb_retry_is_retryable(transport, e->http_status, e->code) ||
                    st[i].attempts >= LB_RETRY_MAX_ATTEMPTS)
                        continue;
                if (lb_retry_quota_acquire(&ec2->quota, st[i].timed_out) < 0) {
                        lb_debug(ec2->ctx, "EC2 retry quota exhausted, not retrying");
                        continue;
                }
                st[i].holds_token = true;
                st[i].token_timeout = st[i].timed_out;
                st[i].pending = true;

                uint64_t d = lb_retry_delay_ms(st[i].attempts + 1, lb_random01());
                delay = MAX(delay, d);
                log_retry(ec2, &calls[i], st[i].attempts + 1, d);
        }
        return delay;
}

static void set_last_error(struct lb_ec2 *ec2, const struct lb_ec2_call *calls, size_t n) {
        ec2->last_error = (struct lb_ec2_error) {};
        for (size_t i = 0; i < n; i++)
                if (calls[i].result < 0) {
                        ec2->last_error = calls[i].error;
                        return;
                }
}

static void fail_local(struct lb_ec2_call *calls, size_t n, int error) {
        for (size_t i = 0; i < n; i++) {
                calls[i].error = (struct lb_ec2_error) { .kind = LB_EC2_ERR_OTHER };
                (void) lb_snprintf(calls[i].error.message, sizeof calls[i].error.message,
                                   "request not sent: %s", strerror(-error));
                calls[i].result = error;
        }
}

int lb_ec2_perform(struct lb_ec2 *ec2, struct lb_ec2_call *calls, size_t n) {
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
                calls[i].error = (struct lb_ec2_error) {};
                lb_buf_free(&calls[i].answer);
        }

        int ret = 0;
        for (;;) {
                refresh_credentials_if_needed(ec2);

                struct curl_slist *headers = NULL;
                int r = build_headers(ec2, &headers);
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
                        fill_request(ec2, &calls[i], headers, &st[i].req);
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
                ec2->requests += (unsigned) k;

                memset(failed, 0, n * sizeof *failed);
                for (size_t j = 0; j < k; j++) {
                        size_t i = index[j];
                        if (evaluate(&calls[i], &st[i])) {
                                lb_retry_quota_release(&ec2->quota, st[i].holds_token, st[i].token_timeout);
                                st[i].holds_token = false;
                        } else
                                failed[i] = true;
                        lb_http_request_done(&st[i].req);
                }

                if (lb_context_interrupted(ec2->ctx))
                        break;
                uint64_t delay = plan_retries(ec2, calls, st, n, failed);

                bool any = false;
                for (size_t i = 0; i < n; i++)
                        any = any || st[i].pending;
                if (!any)
                        break;

                if (delay > 0)
                        lb_sleep_ms(delay, (volatile const int *) ec2->ctx->interrupted);
                if (lb_context_interrupted(ec2->ctx))
                        break;  /* pending calls keep the error of their last attempt */
        }

        for (size_t i = 0; i < n; i++)
                lb_http_request_done(&st[i].req);
        set_last_error(ec2, calls, n);
        return ret;
}

/* ---- single operations ---- */

/* Runs one call; the call's error becomes the client's last error. */
static int call_one(struct lb_ec2 *ec2, struct lb_ec2_call *call) {
        int r = lb_ec2_perform(ec2, call, 1);
        if (r < 0)
                return r;
        return call->result;
}

/* A 2xx answer we could not read. */
static int bad_answer(struct lb_ec2 *ec2, const char *action, int r) {
        if (r == -ENOMEM)
                return r;
        ec2->last_error = (struct lb_ec2_error) { .kind = LB_EC2_ERR_BAD_ANSWER, .http_status = 200 };
        (void) lb_snprintf(ec2->last_error.message, sizeof ec2->last_error.message,
                           "could not read the %s answer", action);
        return -EBADMSG;
}

/* A local failure (bad argument, no memory) before anything was sent. */
static int local_error(struct lb_ec2 *ec2, int r) {
        ec2->last_error = (struct lb_ec2_error) { .kind = LB_EC2_ERR_OTHER };
        (void) lb_snprintf(ec2->last_error.message, sizeof ec2->last_error.message, "%s", strerror(-r));
        return r;
}

static int add_indexed(struct lb_form *f, const char *prefix, const char *const *values, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (isempty(values[i]))
                        return -EINVAL;
                int r = lb_form_addf_key(f, values[i], "%s.%zu", prefix, i + 1);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int describe_volumes_form(struct lb_form *f, const struct lb_filter *filters, size_t n_filters,
                                 const char *const *volume_ids, size_t n_ids, const char *token) {
        int r = lb_form_init_action(f, "DescribeVolumes");
        if (r < 0)
                return r;
        /* MaxResults and VolumeId.N do not mix: with ids, EC2 answers them all at once. */
        if (n_ids > 0)
                r = add_indexed(f, "VolumeId", volume_ids, n_ids);
        else
                r = lb_form_add(f, "MaxResults", EC2_PAGE_SIZE);
        if (r < 0)
                return r;
        r = lb_form_add_filters(f, filters, n_filters);
        if (r < 0)
                return r;
        if (token)
                r = lb_form_add(f, "NextToken", token);
        return r;
}

int lb_ec2_describe_volumes(struct lb_ec2 *ec2, const struct lb_filter *filters, size_t n_filters,
                            const char *const *volume_ids, size_t n_ids, struct lb_volume_list *ret) {
        _cleanup_volume_list_ struct lb_volume_list all = {};
        _cleanup_free_ char *token = NULL;
        int r;

        for (unsigned page = 0;; page++) {
                if (page >= EC2_MAX_PAGES)
                        return bad_answer(ec2, "DescribeVolumes (endless pagination)", -EBADMSG);

                _cleanup_call_ struct lb_ec2_call call = {};
                r = describe_volumes_form(&call.form, filters, n_filters, volume_ids, n_ids, token);
                if (r < 0)
                        return local_error(ec2, r);
                r = call_one(ec2, &call);
                if (r < 0)
                        return r;

                _cleanup_volume_list_ struct lb_volume_list list = {};
                _cleanup_free_ char *next = NULL;
                r = lb_ec2_parse_volumes(call.answer.data, call.answer.len, &list, &next);
                if (r < 0)
                        return bad_answer(ec2, "DescribeVolumes", r);
                r = lb_volume_list_concat(&all, &list);
                if (r < 0)
                        return local_error(ec2, r);

                if (!next)
                        break;
                /* A token that does not move on would have us loop forever. */
                if (token && streq(token, next))
                        return bad_answer(ec2, "DescribeVolumes (repeated NextToken)", -EBADMSG);
                free(token);
                token = TAKE_PTR(next);
        }

        *ret = all;
        all = (struct lb_volume_list) {};
        return 0;
}

int lb_ec2_attach_volume(struct lb_ec2 *ec2, const char *volume_id, const char *instance_id,
                         const char *device, struct lb_attachment *ret) {
        if (isempty(volume_id) || isempty(instance_id) || isempty(device))
                return local_error(ec2, -EINVAL);

        _cleanup_call_ struct lb_ec2_call call = {};
        int r;
        if ((r = lb_form_init_action(&call.form, "AttachVolume")) < 0 ||
            (r = lb_form_add(&call.form, "VolumeId", volume_id)) < 0 ||
            (r = lb_form_add(&call.form, "InstanceId", instance_id)) < 0 ||
            (r = lb_form_add(&call.form, "Device", device)) < 0)
                return local_error(ec2, r);

        r = call_one(ec2, &call);
        if (r < 0)
                return r;

        struct lb_attachment a = {};
        r = lb_ec2_parse_attachment(call.answer.data, call.answer.len, &a);
        if (r < 0)
                return bad_answer(ec2, "AttachVolume", r);
        if (ret)
                *ret = a;
        return 0;
}

int lb_ec2_detach_volume(struct lb_ec2 *ec2, const char *volume_id, const char *instance_id, bool force) {
        if (isempty(volume_id))
                return local_error(ec2, -EINVAL);

        _cleanup_call_ struct lb_ec2_call call = {};
        int r;
        if ((r = lb_form_init_action(&call.form, "DetachVolume")) < 0 ||
            (r = lb_form_add(&call.form, "VolumeId", volume_id)) < 0 ||
            (instance_id && (r = lb_form_add(&call.form, "InstanceId", instance_id)) < 0) ||
            (force && (r = lb_form_add(&call.form, "Force", "true")) < 0))
                return local_error(ec2, r);

        r = call_one(ec2, &call);
        if (r < 0)
                return r;

        struct lb_attachment a;
        r = lb_ec2_parse_attachment(call.answer.data, call.answer.len, &a);
        if (r < 0)
                return bad_answer(ec2, "DetachVolume", r);
        return 0;
}

static int tags_form(struct lb_form *f, const char *action, const char *const *resource_ids, size_t n_ids,
                     const struct lb_tag *tags, size_t n_tags, bool omit_null_values) {
        if (n_ids == 0 || !resource_ids)
                return -EINVAL;
        int r = lb_form_init_action(f, action);
        if (r < 0)
                return r;
        r = add_indexed(f, "ResourceId", resource_ids, n_ids);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_tags; i++) {
                if (isempty(tags[i].key))
                        return -EINVAL;
                r = lb_form_addf_key(f, tags[i].key, "Tag.%zu.Key", i + 1);
                if (r < 0)
                        return r;
                /* CreateTags: a NULL value is the empty value. DeleteTags: NULL = any value. */
                if (tags[i].value || !omit_null_values) {
                        r = lb_form_addf_key(f, strempty(tags[i].value), "Tag.%zu.Value", i + 1);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int return_call(struct lb_ec2 *ec2, struct lb_ec2_call *call, const char *action) {
        int r = call_one(ec2, call);
        if (r < 0)
                return r;
        r = lb_ec2_parse_return(call->answer.data, call->answer.len);
        if (r < 0)
                return bad_answer(ec2, action, r);
        return 0;
}

int lb_ec2_create_tags(struct lb_ec2 *ec2, const char *const *resource_ids, size_t n_ids,
                       const struct lb_tag *tags, size_t n_tags) {
        if (n_tags == 0 || !tags)
                return local_error(ec2, -EINVAL);
        _cleanup_call_ struct lb_ec2_call call = {};
        int r = tags_form(&call.form, "CreateTags", resource_ids, n_ids, tags, n_tags, false);
        if (r < 0)
                return local_error(ec2, r);
        return return_call(ec2, &call, "CreateTags");
}

int lb_ec2_delete_tags(struct lb_ec2 *ec2, const char *const *resource_ids, size_t n_ids,
                       const struct lb_tag *tags, size_t n_tags) {
        /* Without tags DeleteTags would remove every tag of the resources: refuse that here. */
        if (n_tags == 0 || !tags)
                return local_error(ec2, -EINVAL);
        _cleanup_call_ struct lb_ec2_call call = {};
        int r = tags_form(&call.form, "DeleteTags", resource_ids, n_ids, tags, n_tags, true);
        if (r < 0)
                return local_error(ec2, r);
        return return_call(ec2, &call, "DeleteTags");
}

int lb_ec2_delete_volume(struct lb_ec2 *ec2, const char *volume_id) {
        if (isempty(volume_id))
                return local_error(ec2, -EINVAL);
        _cleanup_call_ struct lb_ec2_call call = {};
        int r;
        if ((r = lb_form_init_action(&call.form, "DeleteVolume")) < 0 ||
            (r = lb_form_add(&call.form, "VolumeId", volume_id)) < 0)
                return local_error(ec2, r);
        return return_call(ec2, &call, "DeleteVolume");
}

int lb_ec2_set_delete_on_termination(struct lb_ec2 *ec2, const char *instance_id, const char *device,
                                     bool delete_on_termination) {
        if (isempty(instance_id) || isempty(device))
                return local_error(ec2, -EINVAL);
        _cleanup_call_ struct lb_ec2_call call = {};
        int r;
        if ((r = lb_form_init_action(&call.form, "ModifyInstanceAttribute")) < 0 ||
            (r = lb_form_add(&call.form, "InstanceId", instance_id)) < 0 ||
            (r = lb_form_add(&call.form, "BlockDeviceMapping.1.DeviceName", device)) < 0 ||
            (r = lb_form_add(&call.form, "BlockDeviceMapping.1.Ebs.DeleteOnTermination",
                             delete_on_termination ? "true" : "false")) < 0)
                return local_error(ec2, r);
        return return_call(ec2, &call, "ModifyInstanceAttribute");
}

int lb_ec2_describe_instance(struct lb_ec2 *ec2, const char *instance_id, struct lb_instance *ret) {
        if (isempty(instance_id))
                return local_error(ec2, -EINVAL);
        _cleanup_call_ struct lb_ec2_call call = {};
        int r;
        if ((r = lb_form_init_action(&call.form, "DescribeInstances")) < 0 ||
            (r = lb_form_add(&call.form, "InstanceId.1", instance_id)) < 0)
                return local_error(ec2, r);
        r = call_one(ec2, &call);
        if (r < 0)
                return r;

        struct lb_instance inst = {};
        r = lb_ec2_parse_instance(call.answer.data, call.answer.len, &inst);
        if (r == -ENOENT) {
                ec2->last_error = (struct lb_ec2_error) { .kind = LB_EC2_ERR_OTHER, .http_status = 200 };
                (void) lb_snprintf(ec2->last_error.message, sizeof ec2->last_error.message,
                                   "instance %s is not in the DescribeInstances answer", instance_id);
                return r;
        }
        if (r < 0)
                return bad_answer(ec2, "DescribeInstances", r);
        *ret = inst;
        return 0;
}
