/* SPDX-License-Identifier: MIT */
/* The "mount in progress" marker of a recovered volume (see mount-marker.h). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lifeboat/basic/chase.h"
#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/json.h"
#include "lifeboat/basic/names.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/state/mount-marker.h"

#define BOOT_ID "/proc/sys/kernel/random/boot_id"

int lb_mount_marker_path(const char *state_dir, const char *volume_id, char *buf, size_t size) {
        if (isempty(state_dir) || !volume_id || !lb_volume_id_valid(volume_id))
                return -EINVAL;
        return lb_snprintf(buf, size, "%s/%s%s", state_dir, volume_id, LB_MOUNT_MARKER_SUFFIX);
}

static int boot_id(char *buf, size_t size) {
        return lb_read_attr(BOOT_ID, buf, size);
}

/* A directory that was just created must itself reach the disk: fsync its parent too. */
static int make_state_dir(const char *state_dir) {
        int r = lb_mkdir_p(state_dir, 0700);
        if (r < 0)
                return r;
        _cleanup_close_ int dfd = -EBADF;
        char name[NAME_MAX + 1];
        r = lb_chase_parent(state_dir, &dfd, name, sizeof name);
        if (r < 0)
                return r;
        return fsync(dfd) < 0 ? -errno : 0;
}

int lb_mount_marker_write(const char *state_dir, const char *volume_id, const char *device, time_t now) {
        char path[PATH_MAX], id[64], at[40];
        int r = lb_mount_marker_path(state_dir, volume_id, path, sizeof path);
        if (r >= 0)
                r = boot_id(id, sizeof id);
        if (r >= 0)
                r = lb_format_iso8601(now, at, sizeof at);
        if (r >= 0)
                r = make_state_dir(state_dir);
        if (r < 0)
                return r;
        _cleanup_(json_decrefp) json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "volume", volume_id, "device",
                                                      strempty(device), "boot_id", id, "time", at);
        if (!o)
                return -ENOMEM;
        _cleanup_free_ char *text = NULL;
        r = lb_json_dump_line(o, JSON_PRESERVE_ORDER, &text);
        if (r < 0)
                return r;
        return lb_write_file_atomic(path, text, strlen(text), 0600);
}

/* What a readable marker says; an unreadable one keeps the defaults (an earlier boot). */
static void parse_marker(const char *text, size_t len, struct lb_mount_marker *m) {
        _cleanup_(json_decrefp) json_t *o = json_loadb(text, len, 0, NULL);
        char id[64] = "", now_id[64] = "", at[40] = "";
        if (!json_is_object(o) || lb_json_get_string(o, "boot_id", false, id, sizeof id) < 0)
                return;
        (void) lb_json_get_string(o, "device", true, m->device, sizeof m->device);
        if (lb_json_get_string(o, "time", true, at, sizeof at) >= 0 && at[0] != '\0')
                (void) lb_parse_iso8601(at, &m->since);
        if (boot_id(now_id, sizeof now_id) >= 0 && streq(id, now_id))
                m->earlier_boot = false;
}

int lb_mount_marker_find(const char *state_dir, const char *volume_id, struct lb_mount_marker *ret) {
        char path[PATH_MAX], name[NAME_MAX + 1];
        int r = lb_mount_marker_path(state_dir, volume_id, path, sizeof path);
        if (r < 0)
                return r;
        _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
        r = lb_chase_parent(path, &dfd, name, sizeof name);
        if (r == -ENOENT)
                return 0; /* no state directory: no marker */
        if (r < 0)
                return r;
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;

        struct lb_mount_marker m = { .earlier_boot = true };
        if (lb_open_regular_at(dfd, name, O_RDONLY, &fd) >= 0) {
                _cleanup_buf_ struct lb_buf b = { .limit = LB_MOUNT_MARKER_MAX_BYTES };
                if (lb_read_fd(fd, &b, true) >= 0 && b.data)
                        parse_marker(b.data, b.len, &m);
        }
        *ret = m;
        return 1;
}

int lb_mount_marker_remove(const char *state_dir, const char *volume_id) {
        char path[PATH_MAX], name[NAME_MAX + 1];
        int r = lb_mount_marker_path(state_dir, volume_id, path, sizeof path);
        if (r < 0)
                return r;
        _cleanup_close_ int dfd = -EBADF;
        r = lb_chase_parent(path, &dfd, name, sizeof name);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (unlinkat(dfd, name, 0) < 0)
                return errno == ENOENT ? 0 : -errno;
        return fsync(dfd) < 0 ? -errno : 0;
}
