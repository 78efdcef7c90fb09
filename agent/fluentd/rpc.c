/* SPDX-License-Identifier: MIT */
/*
 * fluentd's RPC endpoint (<system> rpc_endpoint): flushBuffers when the end is coming,
 * config.reload when recovery snippets change.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "lifeboat/aws/http.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/macro.h"
#include "lifeboat/basic/utf8.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/fluentd/rpc.h"

#define RPC_MAX_RESPONSE (64u * 1024u)

int lb_fluentd_rpc_check_answer(long status, const char *body, size_t len, char *reason, size_t reason_size) {
        _cleanup_(json_decrefp) json_t *root = NULL;
        char pbuf[80];
        json_error_t err;

        root = body ? json_loadb(body, len, 0, &err) : NULL;
        const char *detail = NULL;
        if (json_is_object(root)) {
                detail = json_string_value(json_object_get(root, "error"));
                if (!detail)
                        detail = json_string_value(json_object_get(root, "message"));
        }
        if (status != 200) {
                lb_set_reason(reason, reason_size, "fluentd RPC answered HTTP %ld%s%s", status,
                              detail ? ": " : "", detail ? lb_cescape(detail, pbuf, sizeof pbuf) : "");
                return -EPROTO;
        }
        if (!json_is_object(root)) {
                lb_set_reason(reason, reason_size, "fluentd RPC answer is not a JSON object: \"%s\"",
                              body ? lb_cescapen(body, len, pbuf, sizeof pbuf) : "");
                return -EBADMSG;
        }
        if (!json_is_true(json_object_get(root, "ok"))) {
                lb_set_reason(reason, reason_size, "fluentd RPC answered without \"ok\":true%s%s",
                              detail ? ": " : "", detail ? lb_cescape(detail, pbuf, sizeof pbuf) : "");
                return -EBADMSG;
        }
        return 0;
}

static bool curl_connect_failed(CURLcode c) {
        return c == CURLE_COULDNT_CONNECT || c == CURLE_COULDNT_RESOLVE_HOST;
}

static bool rpc_method_valid(const char *m) {
        if (isempty(m))
                return false;
        for (const char *p = m; *p; p++)
                if (!isalnum((unsigned char) *p) && *p != '.' && *p != '_')
                        return false;
        return true;
}

int lb_fluentd_rpc(const struct lb_context *ctx, const char *rpc, const char *method,
                   char *reason, size_t reason_size) {
        _cleanup_http_request_ struct lb_http_request req = { 0 };
        char base[PATH_MAX], url[PATH_MAX];
        int r;

        if (isempty(rpc)) {
                lb_set_reason(reason, reason_size, "the fluentd RPC is disabled (LIFEBOAT_FLUENTD_RPC is empty)");
                return -EOPNOTSUPP;
        }
        if (!rpc_method_valid(method)) {
                lb_set_reason(reason, reason_size, "bad fluentd RPC method");
                return -EINVAL;
        }
        r = lb_strscpy(base, sizeof base, rpc);
        if (r < 0) {
                lb_set_reason(reason, reason_size, "fluentd RPC address is too long");
                return r;
        }
        for (size_t n = strlen(base); n > 0 && base[n - 1] == '/'; n--)
                base[n - 1] = '\0';
        /* fluentd's own rpc_endpoint setting is a bare host:port. */
        r = lb_snprintf(url, sizeof url, "%s%s/api/%s", strstr(base, "://") ? "" : "http://", base, method);
        if (r < 0) {
                lb_set_reason(reason, reason_size, "fluentd RPC address is too long");
                return r;
        }

        req.method = "GET";
        req.url = url;
        req.connect_timeout_ms = LB_FLUENTD_RPC_TIMEOUT_MS;
        req.timeout_ms = LB_FLUENTD_RPC_TIMEOUT_MS;
        req.max_response = RPC_MAX_RESPONSE;

        r = lb_http_perform_one(&req);
        if (r < 0) {
                lb_set_reason(reason, reason_size, "cannot send %s: %s", url, strerror(-r));
                return r;
        }
        /* Checked first: curl reports the cut-off body as a write error. */
        if (req.truncated) {
                lb_set_reason(reason, reason_size, "%s: answer larger than %u bytes", url, RPC_MAX_RESPONSE);
                return -EBADMSG;
        }
        if (lb_http_timed_out(&req)) {
                lb_set_reason(reason, reason_size, "no answer from %s within %ld ms", url, LB_FLUENTD_RPC_TIMEOUT_MS);
                return -ETIMEDOUT;
        }
        if (lb_http_transport_failed(&req)) {
                lb_set_reason(reason, reason_size, "%s: %s", url, req.error[0] ? req.error : curl_easy_strerror(req.curl_code));
                /* Nobody listening (fluentd down, or no rpc_endpoint) versus a broken answer. */
                if (curl_connect_failed(req.curl_code))
                        return -ECONNREFUSED;
                return -EPROTO;
        }
        r = lb_fluentd_rpc_check_answer(req.status, req.response.data, req.response.len, reason, reason_size);
        if (r < 0)
                return r;
        if (ctx)
                lb_debug(ctx, "fluentd RPC %s: ok", url);
        return 0;
}

int lb_fluentd_flush_buffers(const struct lb_context *ctx, char *reason, size_t reason_size) {
        return lb_fluentd_rpc(ctx, ctx->settings.fluentd_rpc, "plugins.flushBuffers", reason, reason_size);
}

int lb_fluentd_reload_config(const struct lb_context *ctx, char *reason, size_t reason_size) {
        return lb_fluentd_rpc(ctx, ctx->settings.fluentd_rpc, "config.reload", reason, reason_size);
}
