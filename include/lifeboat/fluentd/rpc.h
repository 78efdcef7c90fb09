/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

struct lb_context;

/* Timeout of one RPC request (connect and total). */
#define LB_FLUENTD_RPC_TIMEOUT_MS 2000L

/*
 * Fluentd's RPC endpoint (<system> rpc_endpoint): GET <rpc>/api/<method>.
 * rpc is "http://127.0.0.1:24444" (a bare "host:port" gets "http://").
 * Success is HTTP 200 with a JSON body {"ok":true}; anything else is a
 * negative errno with the reason: -ECONNREFUSED (cannot connect), -ETIMEDOUT,
 * -EPROTO (no valid HTTP answer, or a status other than 200), -EBADMSG (body
 * not {"ok":true}, or larger than 64 KiB),
 * -EOPNOTSUPP (rpc is "" or NULL: the RPC is disabled).
 */
int lb_fluentd_rpc(const struct lb_context *ctx, const char *rpc, const char *method,
                   char *reason, size_t reason_size);
/* Judges an RPC answer: 0 for status 200 and {"ok":true}, else -EPROTO/-EBADMSG with a reason. */
int lb_fluentd_rpc_check_answer(long status, const char *body, size_t len, char *reason, size_t reason_size);
/*
 * GET /api/plugins.flushBuffers at ctx->settings.fluentd_rpc (SIGUSR1: every
 * output flushes). The answer comes before the flush is done: watch the
 * chunk files to know when it finished.
 */
int lb_fluentd_flush_buffers(const struct lb_context *ctx, char *reason, size_t reason_size);
/* GET /api/config.reload: fluentd re-reads its config, picking up added or removed snippets. */
int lb_fluentd_reload_config(const struct lb_context *ctx, char *reason, size_t reason_size);
