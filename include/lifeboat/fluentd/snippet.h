/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct lb_context;

/*
 * The hand-off to fluentd: a recovered buffer directory becomes a config
 * snippet (rendered from a template) that fluentd picks up at start or on
 * /api/config.reload (lifeboat/fluentd/rpc.h).
 */

/* Largest template accepted (it is read whole). */
#define LB_FLUENTD_TEMPLATE_MAX (64u * 1024u)

/*
 * The values a template may use as {{volume_id}}, {{mount_path}},
 * {{previous_owner}} and {{group}}. NULL previous_owner or group render as ""
 * (unknown owner, no group).
 */
struct lb_fluentd_vars {
        const char *volume_id;          /* vol-[0-9a-f]{8,17} */
        const char *mount_path;         /* absolute, [A-Za-z0-9/_.-], no "." or ".." components */
        const char *previous_owner;     /* an instance id, "" or NULL when unknown */
        const char *group;              /* [A-Za-z0-9_.:-]{0,255}; "" or NULL when none */
};

/* Whether a path is safe to place in a fluentd config: absolute, made of
 * [A-Za-z0-9/_.-] only, no "." or ".." component, shorter than PATH_MAX. */
bool lb_fluentd_path_valid(const char *path);

/* Checks every value; on failure returns -EINVAL and names the bad value in reason. */
int lb_fluentd_vars_validate(const struct lb_fluentd_vars *v, char *reason, size_t reason_size);

/*
 * Renders a template (a buffer, not a path). Placeholders are {{name}}, with
 * optional blanks inside the braces, on one line. Returns 0 and a
 * NUL-terminated malloc'd text, or -EINVAL with reason naming the unknown
 * placeholder, the unterminated "{{" (with its line number) or the bad value.
 */
int lb_fluentd_render(const char *tmpl, size_t len, const struct lb_fluentd_vars *v,
                      char **ret_text, char *reason, size_t reason_size);

/* "<conf_dir>/<volume_id>.conf"; -EINVAL for a bad volume id. */
int lb_fluentd_snippet_path(const char *conf_dir, const char *volume_id, char *buf, size_t size);

/*
 * Writes text to <conf_dir>/<volume_id>.conf atomically (temp file, fsync,
 * rename), creating conf_dir (0755) if needed. Returns 1 when the file was
 * written, 0 when it already held exactly this text (no reload needed).
 * The caller writes a snippet only after its mount is verified.
 */
int lb_fluentd_write_snippet(const char *conf_dir, const char *volume_id, const char *text, size_t len);

/*
 * Reads the template file, renders it for v and writes the snippet:
 * lb_fluentd_render() + lb_fluentd_write_snippet(). ret_path (optional)
 * receives the snippet's path. Returns 1 written, 0 unchanged, < 0 on error
 * with a reason.
 */
int lb_fluentd_install_snippet(const char *template_path, const char *conf_dir,
                               const struct lb_fluentd_vars *v,
                               char *ret_path, size_t ret_path_size,
                               char *reason, size_t reason_size);

/*
 * Removes <conf_dir>/vol-*.conf files whose volume id is not in keep (a
 * NULL-terminated list; NULL = keep nothing). Other files are never touched.
 * A missing conf_dir is not an error. Returns the number of files removed.
 */
int lb_fluentd_prune_snippets(const char *conf_dir, const char *const *keep);

/*
 * Refuses a recovery buffer path that resolves (realpath; for parts that do
 * not exist yet, lexically) to the live buffer path or inside it, or that
 * contains the live path: fluentd compares buffer paths as strings only.
 * Returns 0 when the paths are apart (or live_path is NULL/""), -EBUSY when
 * they overlap, another negative errno when a path cannot be resolved.
 */
int lb_fluentd_check_recovery_path(const char *recovery_path, const char *live_path);

