/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/*
 * LIFEBOAT_STATE_DIR/<volume-id>.mounting: "boot is mounting this volume". Another instance's
 * volume is untrusted content, and a crafted filesystem can crash the kernel while it is
 * mounted. The marker lives on the root disk (not in /run) so that it outlives that crash,
 * and it carries the boot id (/proc/sys/kernel/random/boot_id): a marker from an earlier boot
 * means the machine went down while the mount was in progress, and the next boot quarantines
 * the volume instead of mounting it again (no crash loop). One from this very boot only means
 * that a boot run was killed half way: it is removed and the mount tried again.
 *
 * The document: {"volume":"vol-…","device":"/dev/nvme2n1","boot_id":"…","time":"…"}.
 */
#define LB_MOUNT_MARKER_SUFFIX ".mounting"
#define LB_MOUNT_MARKER_MAX_BYTES 4096u

struct lb_mount_marker {
        time_t since;                   /* when the mount began; 0 when unreadable */
        char device[64];                /* "" when unreadable */
        bool earlier_boot;              /* written before the machine last booted (or unreadable) */
};

/* "<state_dir>/<volume_id>.mounting" */
int lb_mount_marker_path(const char *state_dir, const char *volume_id, char *buf, size_t size);
/* Writes the marker (the directory created 0700, the file and the directories fsynced), before a mount. */
int lb_mount_marker_write(const char *state_dir, const char *volume_id, const char *device, time_t now);
/* 1 and *ret when there is a marker (anything at its name counts, even what cannot be read), 0 when
 * there is none, or a negative errno. */
int lb_mount_marker_find(const char *state_dir, const char *volume_id, struct lb_mount_marker *ret);
/* Removes it (and fsyncs the directory); no marker is fine. */
int lb_mount_marker_remove(const char *state_dir, const char *volume_id);
