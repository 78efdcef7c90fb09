/* SPDX-License-Identifier: MIT */
/*
 * IMDSv2 client. Every GET carries a session token; the token is fetched
 * lazily, kept with its expiry on the monotonic clock, renewed a minute before
 * it runs out and once more when a GET answers 401. Requests are short and
 * retried a little, so that off EC2 a call fails within a few seconds.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "lifeboat/aws/http.h"
#include "lifeboat/aws/imds.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/names.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/time-util.h"
#include "lifeboat/basic/utf8.h"
#include "lifeboat/basic/util.h"

#define IMDS_TOKEN_TTL_S 21600
#define IMDS_TOKEN_RENEW_MS (60u * 1000u)       /* renew when less than this is left */
#define IMDS_TOKEN_MAX 4096
#define IMDS_MAX_ATTEMPTS 3
#define IMDS_MAX_BODY (64u * 1024u)
#define IMDS_LIFECYCLE_STATE_MAX 31

#define PATH_TOKEN "/latest/api/token"
#define PATH_IDENTITY "/latest/dynamic/instance-identity/document"
#define PATH_AZ_ID "/latest/meta-data/placement/availability-zone-id"
#define PATH_LIFECYCLE "/latest/meta-data/instance-life-cycle"
#define PATH_SPOT "/latest/meta-data/spot/instance-action"
#define PATH_REBALANCE "/latest/meta-data/events/recommendations/rebalance"
#define PATH_ASG_STATE "/latest/meta-data/autoscaling/target-lifecycle-state"
#define PATH_ROLES "/latest/meta-data/iam/security-credentials/"
#define PATH_TAGS "/latest/meta-data/tags/instance/"
#define IMDS_TAG_KEY_MAX 128

/* json_decrefp (for _cleanup_) comes with jansson.h. */

/* Delays before the second and third attempt. */
static const uint64_t retry_delay_ms[IMDS_MAX_ATTEMPTS - 1] = { 100, 200 };

struct lb_imds {
        struct lb_context *ctx;
        char *endpoint;                 /* without trailing '/' */
        char *token;                    /* NULL until fetched */
        uint64_t token_expires_ms;      /* CLOCK_MONOTONIC */
        unsigned n_requests;
        char *role;                     /* cached instance role name */
};

static void imds_forget_token(struct lb_imds *imds) {
        lb_free_secret(imds->token);
        imds->token = NULL;
        imds->token_expires_ms = 0;
}

int lb_imds_new(struct lb_context *ctx, struct lb_imds **ret) {
        const struct lb_settings *s = &ctx->settings;

        if (s->imds_disabled) {
                lb_debug(ctx, "IMDS: disabled by AWS_EC2_METADATA_DISABLED");
                return -ENODEV;
        }
        if (isempty(s->imds_endpoint))
                return -EINVAL;

        _cleanup_imds_ struct lb_imds *imds = calloc(1, sizeof *imds);
        if (!imds)
                return -ENOMEM;
        imds->ctx = ctx;
        imds->endpoint = strdup(s->imds_endpoint);
        if (!imds->endpoint)
                /* cppcheck-suppress memleak ; cppcheck does not know __attribute__((cleanup)) */
                return -ENOMEM;
        /* The endpoint may carry a path prefix; paths we append start with '/'. */
        size_t n = strlen(imds->endpoint);
        while (n > 0 && imds->endpoint[n - 1] == '/')
                imds->endpoint[--n] = '\0';

        *ret = TAKE_PTR(imds);
        return 0;
}

const char *lb_imds_strerror(int r) {
        return r == -EHOSTUNREACH ? "no answer" : strerror(-r);
}

void lb_imds_free(struct lb_imds *imds) {
        if (!imds)
                return;
        imds_forget_token(imds);
        free(imds->endpoint);
        free(imds->role);
        free(imds);
}

unsigned lb_imds_request_count(const struct lb_imds *imds) {
        return imds->n_requests;
}

/* ---- one exchange with retries ---- */

struct imds_answer {
        long status;
        char *body;     /* NUL-terminated, owned */
        size_t len;
};

static void imds_answer_done(struct imds_answer *a) {
        if (a->body) {
                explicit_bzero(a->body, a->len); /* may be a token or role credentials */
                free(a->body);
        }
        *a = (struct imds_answer) {};
}

static void wipe_request(struct lb_http_request *req) {
        if (req->response.data)
                explicit_bzero(req->response.data, req->response.len);
        lb_http_request_done(req);
}

/*
 * Sends method path (with the token header for GETs), up to IMDS_MAX_ATTEMPTS
 * times while there is no answer or a 5xx one. Returns 0 with the HTTP status
 * and body of the last answer, or -EHOSTUNREACH when no usable answer came.
 */
static int imds_exchange(struct lb_imds *imds, const char *method, const char *path, struct imds_answer *ret) {
        const struct lb_context *ctx = imds->ctx;
        const struct lb_settings *s = &ctx->settings;
        _cleanup_buf_ struct lb_buf url = {};
        _cleanup_(curl_slist_free_allp) struct curl_slist *headers = NULL;
        int r;

        r = lb_buf_printf(&url, "%s%s%s", imds->endpoint, path[0] == '/' ? "" : "/", path);
        if (r < 0)
                return r;

        if (streq(method, "PUT")) {
                headers = curl_slist_append(NULL, "X-aws-ec2-metadata-token-ttl-seconds: 21600");
                if (!headers)
                        return -ENOMEM;
        } else {
                _cleanup_buf_ struct lb_buf h = {};
                r = lb_buf_printf(&h, "X-aws-ec2-metadata-token: %s", imds->token);
                if (r < 0)
                        return r;
                headers = curl_slist_append(NULL, h.data); /* curl copies it */
                explicit_bzero(h.data, h.len);
                if (!headers)
                        return -ENOMEM;
        }

        struct lb_http_request req = {
                .method = method,
                .url = url.data,
                .headers = headers,
                .ca_bundle = s->ca_bundle,
                .connect_timeout_ms = (long) s->imds_timeout_ms,
                .timeout_ms = (long) s->imds_timeout_ms,
                .max_response = IMDS_MAX_BODY,
        };

        for (unsigned attempt = 1;; attempt++) {
                if (attempt > 1) {
                        lb_sleep_ms(retry_delay_ms[attempt - 2], NULL);
                        wipe_request(&req);
                        lb_http_request_reset_result(&req);
                }
                r = lb_http_perform_one(&req);
                if (r < 0) {
                        wipe_request(&req);
                        return r;
                }
                imds->n_requests++;

                if (req.truncated) {
                        lb_debug(ctx, "IMDS %s %s: answer larger than %u bytes", method, path, IMDS_MAX_BODY);
                        wipe_request(&req);
                        return -EBADMSG;
                }
                bool retry;
                if (lb_http_transport_failed(&req)) {
                        lb_debug(ctx, "IMDS %s %s: attempt %u/%u: no answer: %s", method, path, attempt,
                                 IMDS_MAX_ATTEMPTS, req.error[0] ? req.error : curl_easy_strerror(req.curl_code));
                        retry = true;
                } else if (req.status >= 500) {
                        lb_debug(ctx, "IMDS %s %s: attempt %u/%u: HTTP %ld", method, path, attempt,
                                 IMDS_MAX_ATTEMPTS, req.status);
                        retry = true;
                } else
                        retry = false;

                if (!retry)
                        break;
                if (attempt >= IMDS_MAX_ATTEMPTS) {
                        lb_debug(ctx, "IMDS %s %s: giving up after %u attempts", method, path, attempt);
                        wipe_request(&req);
                        return -EHOSTUNREACH;
                }
        }

        size_t len = req.response.len;
        /* An empty answer (404, 401) has no buffer at all. */
        char *body = len > 0 ? lb_buf_steal(&req.response) : strdup("");
        long status = req.status;
        wipe_request(&req);
        if (!body)
                return -ENOMEM;
        if (strlen(body) != len) {
                lb_debug(ctx, "IMDS %s %s: answer contains a NUL byte", method, path);
                explicit_bzero(body, len);
                free(body);
                return -EBADMSG;
        }
        *ret = (struct imds_answer) { .status = status, .body = body, .len = len };
        return 0;
}

/* ---- token ---- */

static bool token_valid(const char *t) {
        size_t n = strlen(t);
        if (n == 0 || n > IMDS_TOKEN_MAX)
                return false;
        /* It goes into a header line: nothing that could end or split it. */
        for (const char *p = t; *p; p++)
                if ((unsigned char) *p <= 0x20 || (unsigned char) *p >= 0x7f)
                        return false;
        return true;
}

static int imds_ensure_token(struct lb_imds *imds) {
        const struct lb_context *ctx = imds->ctx;

        if (imds->token && lb_now_ms() + IMDS_TOKEN_RENEW_MS < imds->token_expires_ms)
                return 0;
        imds_forget_token(imds);

        uint64_t start = lb_now_ms();
        _cleanup_(imds_answer_done) struct imds_answer a = {};
        int r = imds_exchange(imds, "PUT", PATH_TOKEN, &a);
        if (r < 0)
                return r;

        switch (a.status) {
        case 200:
                break;
        case 403:
                lb_debug(ctx, "IMDS token: HTTP 403, IMDS is turned off for this instance");
                return -EACCES;
        default:
                /* 400: bad request (e.g. a proxy added X-Forwarded-For); 404/405: no IMDSv2. */
                lb_debug(ctx, "IMDS token: unexpected HTTP %ld", a.status);
                return -EPROTO;
        }

        char *t = lb_strstrip(a.body);
        if (!token_valid(t)) {
                lb_debug(ctx, "IMDS token: malformed token in the answer");
                return -EBADMSG;
        }
        imds->token = strdup(t);
        if (!imds->token)
                return -ENOMEM;
        /* Counted from before the request: the token can only be younger than that. */
        imds->token_expires_ms = start + (uint64_t) IMDS_TOKEN_TTL_S * 1000u;
        lb_debug(ctx, "IMDS: got a session token (TTL %d s)", IMDS_TOKEN_TTL_S);
        return 0;
}

/* ---- GET ---- */

static int imds_get_answer(struct lb_imds *imds, const char *path, struct imds_answer *ret) {
        const struct lb_context *ctx = imds->ctx;
        bool renewed = false;

        for (;;) {
                int r = imds_ensure_token(imds);
                if (r < 0)
                        return r;

                struct imds_answer a = {};
                r = imds_exchange(imds, "GET", path, &a);
                if (r < 0)
                        return r;

                if (a.status == 401 && !renewed) {
                        lb_debug(ctx, "IMDS GET %s: HTTP 401, fetching a new token", path);
                        imds_answer_done(&a);
                        imds_forget_token(imds);
                        renewed = true;
                        continue;
                }

                switch (a.status) {
                case 200:
                        *ret = a;
                        return 0;
                case 404:
                        r = -ENOENT;
                        break;
                case 401:
                case 403:
                        lb_debug(ctx, "IMDS GET %s: HTTP %ld", path, a.status);
                        r = -EACCES;
                        break;
                default:
                        lb_debug(ctx, "IMDS GET %s: unexpected HTTP %ld", path, a.status);
                        r = -EPROTO;
                }
                imds_answer_done(&a);
                return r;
        }
}

int lb_imds_get(struct lb_imds *imds, const char *path, char **ret_body) {
        struct imds_answer a = {};
        int r = imds_get_answer(imds, path, &a);
        if (r < 0)
                return r;
        *ret_body = TAKE_PTR(a.body);
        return 0;
}

/* ---- parsers ---- */

static bool lower_alnum_dash(const char *s, size_t max) {
        size_t n = strlen(s);
        if (n == 0 || n > max)
                return false;
        for (const char *p = s; *p; p++)
                if (!(*p >= 'a' && *p <= 'z') && !(*p >= '0' && *p <= '9') && *p != '-')
                        return false;
        return true;
}

static bool instance_type_valid(const char *s, size_t max) {
        size_t n = strlen(s);
        if (n == 0 || n > max)
                return false;
        for (const char *p = s; *p; p++)
                if (!(*p >= 'a' && *p <= 'z') && !(*p >= '0' && *p <= '9') && *p != '-' && *p != '.')
                        return false;
        return true;
}

static bool account_id_valid(const char *s, size_t max) {
        size_t n = strlen(s);
        if (n == 0 || n > max)
                return false;
        for (const char *p = s; *p; p++)
                if (!isdigit((unsigned char) *p))
                        return false;
        return true;
}

/* A string member of obj; NULL when missing or not a string. */
static const char *json_member_string(json_t *obj, const char *key) {
        json_t *v = json_object_get(obj, key);
        return json_is_string(v) ? json_string_value(v) : NULL;
}

static json_t *json_parse_object(const char *json) {
        json_error_t err;
        json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &err);
        if (root && !json_is_object(root)) {
                json_decref(root);
                return NULL;
        }
        return root;
}

int lb_identity_parse_document(const char *json, struct lb_identity *ret) {
        _cleanup_(json_decrefp) json_t *root = json_parse_object(json);
        if (!root)
                return -EBADMSG;

        const char *instance_id = json_member_string(root, "instanceId");
        const char *region = json_member_string(root, "region");
        const char *az = json_member_string(root, "availabilityZone");
        const char *type = json_member_string(root, "instanceType");
        const char *account = json_member_string(root, "accountId");
        if (!instance_id || !region || !az || !type || !account)
                return -EBADMSG;

        struct lb_identity id = {};
        if (!lb_instance_id_valid(instance_id) ||
            !lb_region_valid(region) || /* the naming rule every region setting obeys */
            !lower_alnum_dash(az, sizeof id.availability_zone - 1) ||
            !lb_startswith(az, region) || /* AZ names begin with their region, local zones too */
            !instance_type_valid(type, sizeof id.instance_type - 1) ||
            !account_id_valid(account, sizeof id.account_id - 1))
                return -EBADMSG;

        if (lb_strscpy(id.instance_id, sizeof id.instance_id, instance_id) < 0 ||
            lb_strscpy(id.region, sizeof id.region, region) < 0 ||
            lb_strscpy(id.availability_zone, sizeof id.availability_zone, az) < 0 ||
            lb_strscpy(id.instance_type, sizeof id.instance_type, type) < 0 ||
            lb_strscpy(id.account_id, sizeof id.account_id, account) < 0)
                return -EBADMSG;
        *ret = id;
        return 0;
}

int lb_spot_notice_parse(const char *json, struct lb_spot_notice *ret) {
        _cleanup_(json_decrefp) json_t *root = json_parse_object(json);
        if (!root)
                return -EBADMSG;

        const char *action = json_member_string(root, "action");
        const char *when = json_member_string(root, "time");
        if (!action || !when)
                return -EBADMSG;

        struct lb_spot_notice n = {};
        if (streq(action, "terminate"))
                n.action = LB_SPOT_TERMINATE;
        else if (streq(action, "stop"))
                n.action = LB_SPOT_STOP;
        else if (streq(action, "hibernate"))
                n.action = LB_SPOT_HIBERNATE;
        else
                return -EBADMSG;
        if (lb_parse_iso8601(when, &n.time) < 0)
                return -EBADMSG;
        *ret = n;
        return 0;
}

int lb_rebalance_parse(const char *json, time_t *ret_notice_time) {
        _cleanup_(json_decrefp) json_t *root = json_parse_object(json);
        if (!root)
                return -EBADMSG;
        const char *when = json_member_string(root, "noticeTime");
        time_t t;
        if (!when || lb_parse_iso8601(when, &t) < 0)
                return -EBADMSG;
        *ret_notice_time = t;
        return 0;
}

/* Plain text such as "InService" or "Warmed:Stopped": stripped, printable, short. */
int lb_lifecycle_state_parse(const char *text, char *buf, size_t size) {
        const char *start = text;
        while (*start && isspace((unsigned char) *start))
                start++;
        size_t n = strlen(start);
        while (n > 0 && isspace((unsigned char) start[n - 1]))
                n--;
        if (n == 0 || n > IMDS_LIFECYCLE_STATE_MAX)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) start[i] < 0x20 || (unsigned char) start[i] >= 0x7f)
                        return -EBADMSG;
        if (n >= size)
                return -ENOBUFS;
        memcpy(buf, start, n);
        buf[n] = '\0';
        return 0;
}

int lb_imds_tag_value_parse(const char *text, char *buf, size_t size) {
        size_t n = strlen(text);
        if (!lb_utf8_valid(text, n))
                return -EBADMSG;
        for (const char *p = text; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return -EBADMSG;
        if (n >= size)
                return -ENOBUFS;
        memcpy(buf, text, n + 1);
        return 0;
}

const char *lb_spot_action_to_string(enum lb_spot_action a) {
        switch (a) {
        case LB_SPOT_NONE:
                return "none";
        case LB_SPOT_TERMINATE:
                return "terminate";
        case LB_SPOT_STOP:
                return "stop";
        case LB_SPOT_HIBERNATE:
                return "hibernate";
        }
        return "unknown";
}

/* ---- typed calls ---- */

/* A short optional text item: "" on 404, -EBADMSG when it does not fit the shape. */
static int imds_get_optional_word(struct lb_imds *imds, const char *path, char *buf, size_t size) {
        _cleanup_free_secret_ char *body = NULL;
        int r = lb_imds_get(imds, path, &body);
        if (r == -ENOENT) {
                buf[0] = '\0';
                return 0;
        }
        if (r < 0)
                return r;
        char *v = lb_strstrip(body);
        if (!lower_alnum_dash(v, size - 1)) {
                lb_debug(imds->ctx, "IMDS GET %s: unexpected answer", path);
                return -EBADMSG;
        }
        return lb_strscpy(buf, size, v);
}

int lb_imds_identity(struct lb_imds *imds, bool want_extra, struct lb_identity *ret) {
        _cleanup_free_secret_ char *doc = NULL;
        int r = lb_imds_get(imds, PATH_IDENTITY, &doc);
        if (r < 0)
                return r;

        struct lb_identity id;
        r = lb_identity_parse_document(doc, &id);
        if (r < 0) {
                lb_debug(imds->ctx, "IMDS: the instance identity document is malformed");
                return r;
        }
        if (want_extra) {
                r = imds_get_optional_word(imds, PATH_AZ_ID, id.availability_zone_id,
                                           sizeof id.availability_zone_id);
                if (r < 0)
                        return r;
                r = imds_get_optional_word(imds, PATH_LIFECYCLE, id.lifecycle, sizeof id.lifecycle);
                if (r < 0)
                        return r;
        }
        *ret = id;
        return 0;
}

int lb_imds_spot_notice(struct lb_imds *imds, struct lb_spot_notice *ret) {
        _cleanup_free_secret_ char *body = NULL;
        int r = lb_imds_get(imds, PATH_SPOT, &body);
        if (r == -ENOENT) {
                *ret = (struct lb_spot_notice) { .action = LB_SPOT_NONE };
                return 0;
        }
        if (r < 0)
                return r;
        struct lb_spot_notice n;
        r = lb_spot_notice_parse(body, &n);
        if (r < 0) {
                lb_debug(imds->ctx, "IMDS: malformed spot instance-action");
                return r;
        }
        *ret = n;
        return 0;
}

int lb_imds_rebalance(struct lb_imds *imds, time_t *ret_notice_time) {
        _cleanup_free_secret_ char *body = NULL;
        int r = lb_imds_get(imds, PATH_REBALANCE, &body);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        time_t t;
        r = lb_rebalance_parse(body, &t);
        if (r < 0) {
                lb_debug(imds->ctx, "IMDS: malformed rebalance recommendation");
                return r;
        }
        if (ret_notice_time)
                *ret_notice_time = t;
        return 1;
}

int lb_imds_lifecycle_state(struct lb_imds *imds, char *buf, size_t size) {
        if (size == 0)
                return -ENOBUFS;
        _cleanup_free_secret_ char *body = NULL;
        int r = lb_imds_get(imds, PATH_ASG_STATE, &body);
        if (r == -ENOENT) {
                buf[0] = '\0';
                return 0;
        }
        if (r < 0)
                return r;
        r = lb_lifecycle_state_parse(body, buf, size);
        if (r == -EBADMSG)
                lb_debug(imds->ctx, "IMDS: malformed autoscaling target-lifecycle-state");
        return r;
}

/* Tag keys lifeboat asks for go into a URL path unescaped: a conservative alphabet. */
static bool tag_key_valid(const char *key) {
        size_t n = key ? strlen(key) : 0;
        if (n == 0 || n > IMDS_TAG_KEY_MAX)
                return false;
        for (const char *p = key; *p; p++)
                if (!isalnum((unsigned char) *p) && !strchr(":._-", *p))
                        return false;
        return true;
}

int lb_imds_instance_tag(struct lb_imds *imds, const char *key, char *buf, size_t size) {
        char path[sizeof PATH_TAGS + IMDS_TAG_KEY_MAX];
        if (size == 0 || !tag_key_valid(key) || lb_snprintf(path, sizeof path, "%s%s", PATH_TAGS, key) < 0)
                return -EINVAL;
        _cleanup_free_ char *body = NULL;
        int r = lb_imds_get(imds, path, &body);
        if (r == -ENOENT) {
                buf[0] = '\0';
                return 0;
        }
        if (r < 0)
                return r;
        r = lb_imds_tag_value_parse(body, buf, size);
        if (r < 0)
                lb_debug(imds->ctx, "IMDS: unusable value of instance tag %s", key);
        return r;
}

/* IAM role names: 1..64 of [A-Za-z0-9+=,.@_-]. The name goes into a URL path. */
static bool role_name_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 64)
                return false;
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char) *p) && !strchr("+=,.@_-", *p))
                        return false;
        return true;
}

int lb_role_list_parse(const char *text, char *buf, size_t size) {
        const char *start = text;
        while (*start && isspace((unsigned char) *start))
                start++;
        size_t n = strcspn(start, "\r\n");
        while (n > 0 && isspace((unsigned char) start[n - 1]))
                n--;
        if (n == 0)
                return -ENOENT;
        char role[65];
        if (n >= sizeof role)
                return -EBADMSG;
        memcpy(role, start, n);
        role[n] = '\0';
        if (!role_name_valid(role))
                return -EBADMSG;
        return lb_strscpy(buf, size, role) < 0 ? -ENOBUFS : 0;
}

int lb_imds_role_name(struct lb_imds *imds, bool refresh, const char **ret_role) {
        if (refresh) {
                free(imds->role);
                imds->role = NULL;
        }
        if (!imds->role) {
                _cleanup_free_ char *body = NULL;
                int r = lb_imds_get(imds, PATH_ROLES, &body);
                if (r < 0)
                        return r;
                char role[65];
                r = lb_role_list_parse(body, role, sizeof role);
                if (r == -EBADMSG)
                        lb_debug(imds->ctx, "IMDS: malformed role name in %s", PATH_ROLES);
                if (r < 0)
                        return r;
                imds->role = strdup(role);
                if (!imds->role)
                        return -ENOMEM;
        }
        *ret_role = imds->role;
        return 0;
}
