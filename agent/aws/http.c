/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "lifeboat/aws/http.h"

#define HTTP_DEFAULT_MAX_RESPONSE (1024u * 1024u)

int lb_http_global_init(void) {
        return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

void lb_http_global_done(void) {
        curl_global_cleanup();
}

void lb_http_request_reset_result(struct lb_http_request *r) {
        lb_buf_free(&r->response);
        r->curl_code = CURLE_OK;
        r->status = 0;
        r->error[0] = '\0';
        r->truncated = false;
}

void lb_http_request_done(struct lb_http_request *r) {
        lb_buf_free(&r->response);
}

bool lb_http_transport_failed(const struct lb_http_request *r) {
        return r->curl_code != CURLE_OK || r->status == 0;
}

bool lb_http_timed_out(const struct lb_http_request *r) {
        return r->curl_code == CURLE_OPERATION_TIMEDOUT;
}

/* Appends to the response, stopping the transfer when the cap is reached: an
 * answer larger than we would ever expect is an error, not something to buffer. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata) {
        struct lb_http_request *r = userdata;
        size_t n = size * nmemb;
        if (lb_buf_append(&r->response, data, n) < 0) {
                r->truncated = true;
                return 0; /* makes curl fail with CURLE_WRITE_ERROR */
        }
        return n;
}

static int setup_easy(CURL *h, struct lb_http_request *r) {
        lb_http_request_reset_result(r);
        r->response.limit = r->max_response ? r->max_response : HTTP_DEFAULT_MAX_RESPONSE;

        CURLcode c = CURLE_OK;
#define SET(opt, val)                                             \
        do {                                                      \
                if (c == CURLE_OK)                                \
                        c = curl_easy_setopt(h, opt, val);        \
        } while (0)

        SET(CURLOPT_URL, r->url);
        SET(CURLOPT_NOSIGNAL, 1L);
        SET(CURLOPT_ERRORBUFFER, r->error);
        SET(CURLOPT_CONNECTTIMEOUT_MS, r->connect_timeout_ms > 0 ? r->connect_timeout_ms : 3000L);
        SET(CURLOPT_TIMEOUT_MS, r->timeout_ms > 0 ? r->timeout_ms : 10000L);
        SET(CURLOPT_WRITEFUNCTION, on_body);
        SET(CURLOPT_WRITEDATA, r);
        SET(CURLOPT_FOLLOWLOCATION, 0L);
        SET(CURLOPT_SSL_VERIFYPEER, 1L);
        SET(CURLOPT_SSL_VERIFYHOST, 2L);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0 */
        SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
        SET(CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        SET(CURLOPT_USERAGENT, "lifeboat/" LIFEBOAT_VERSION);
        /* No proxy: IMDS and fluentd are link-local/loopback, and a proxy in the
         * environment must not see instance credentials. */
        SET(CURLOPT_NOPROXY, "*");
        if (r->ca_bundle)
                SET(CURLOPT_CAINFO, r->ca_bundle);
        if (r->headers)
                SET(CURLOPT_HTTPHEADER, r->headers);
        if (r->sigv4) {
                SET(CURLOPT_AWS_SIGV4, r->sigv4);
                SET(CURLOPT_USERNAME, r->username);
                SET(CURLOPT_PASSWORD, r->password);
        }

        if (streq(r->method, "GET")) {
                SET(CURLOPT_HTTPGET, 1L);
        } else if (streq(r->method, "POST") || streq(r->method, "PUT")) {
                /* Always send a (possibly empty) body with an explicit length. */
                SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) r->body_len);
                SET(CURLOPT_POSTFIELDS, r->body ? r->body : "");
                if (streq(r->method, "PUT"))
                        SET(CURLOPT_CUSTOMREQUEST, "PUT");
        } else
                return -EINVAL;
#undef SET
        return c == CURLE_OK ? 0 : -EINVAL;
}

static void collect_result(CURL *h, CURLcode code, struct lb_http_request *r) {
        r->curl_code = code;
        if (code == CURLE_OK) {
                long status = 0;
                if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK)
                        r->status = status;
        } else {
                r->status = 0;
                if (r->error[0] == '\0')
                        (void) lb_strscpy(r->error, sizeof r->error, curl_easy_strerror(code));
        }
}

static void cleanup_handles(CURL **handles, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (handles[i])
                        curl_easy_cleanup(handles[i]);
        free(handles);
}

int lb_http_perform(struct lb_http_request *const *reqs, size_t n) {
        if (n == 0)
                return 0;

        _cleanup_(curl_multi_cleanupp) CURLM *multi = curl_multi_init();
        if (!multi)
                return -ENOMEM;
        CURL **handles = calloc(n, sizeof *handles);
        if (!handles)
                return -ENOMEM;

        int r = 0;
        for (size_t i = 0; i < n && r >= 0; i++) {
                handles[i] = curl_easy_init();
                if (!handles[i]) {
                        r = -ENOMEM;
                        break;
                }
                r = setup_easy(handles[i], reqs[i]);
                if (r >= 0 && curl_easy_setopt(handles[i], CURLOPT_PRIVATE, reqs[i]) != CURLE_OK)
                        r = -EINVAL;
                if (r >= 0 && curl_multi_add_handle(multi, handles[i]) != CURLM_OK)
                        r = -ENOMEM;
        }

        int running = 0;
        while (r >= 0) {
                CURLMcode mc = curl_multi_perform(multi, &running);
                if (mc != CURLM_OK) {
                        r = -EIO;
                        break;
                }
                if (running == 0)
                        break;
                mc = curl_multi_poll(multi, NULL, 0, 1000, NULL);
                if (mc != CURLM_OK && mc != CURLM_UNRECOVERABLE_POLL) {
                        r = -EIO;
                        break;
                }
        }

        CURLMsg *msg;
        int left;
        while (r >= 0 && (msg = curl_multi_info_read(multi, &left))) {
                if (msg->msg != CURLMSG_DONE)
                        continue;
                struct lb_http_request *req = NULL;
                (void) curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &req);
                if (req)
                        collect_result(msg->easy_handle, msg->data.result, req);
        }

        for (size_t i = 0; i < n; i++)
                if (handles[i])
                        (void) curl_multi_remove_handle(multi, handles[i]);
        cleanup_handles(handles, n);
        return r;
}
