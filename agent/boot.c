/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lifeboat/aws.h"
#include "lifeboat/blockdev.h"
#include "lifeboat/boot.h"
#include "lifeboat/context.h"
#include "lifeboat/ec2.h"
#include "lifeboat/fluentd.h"
#include "lifeboat/lock.h"
#include "lifeboat/manifest.h"
#include "lifeboat/mkfs.h"
#include "lifeboat/mounts.h"
#include "lifeboat/probe.h"
#include "lifeboat/tags.h"

#define FS_LABEL "lifeboat"
#define ATTACH_NAME_TRIES 3             /* "attachment point in use": try this many names */
#define POLL_FIRST_MS 500u              /* attach usually completes in 1-4 s */
#define POLL_MAX_MS 3000u
#define STORM_FIRST_MS 1000u            /* throttled past the client's retries: wait, then again */
#define STORM_MAX_MS 8000u
#define ATTACH_STORM_TRIES 5            /* AttachVolume throttled or 5xx and not done: send again */

/* A volume this run is trying to attach and recover. */
enum claim_state {
        CLAIM_TO_ATTACH,        /* needs an AttachVolume (first try, or a new device name) */
        CLAIM_ATTACHING,        /* AttachVolume accepted, or answered ambiguously: describe to see */
        CLAIM_FINISHED,         /* outcome recorded */
};

struct claim {
        struct lb_volume vol;           /* as described when chosen */
        enum claim_state state;
        char device[64];
        unsigned name_tries;
        uint64_t attach_sent_ms;
        enum lb_ec2_error_kind attach_error; /* of the last AttachVolume, LB_EC2_OK if accepted */
        unsigned storm_tries;           /* AttachVolume sent again after throttling or a 5xx */
        bool resumed;                   /* attached here by an earlier run */
        bool owner_tag_pending;         /* recovered; the owner tag goes out with the others */
        enum lb_boot_outcome outcome;   /* CLAIM_FINISHED: how it ended */
};

struct boot {
        struct lb_context *ctx;
        const struct lb_settings *s;
        bool dry_run;
        struct lb_aws aws;
        const char *self;
        uint64_t deadline_ms;
        struct lb_volume_list here;     /* volumes attached to this instance */
        struct lb_manifest manifest;
        struct lb_devname_picker picker;
        char **snapshot;                /* SYSFS_ROOT/block before our attaches */
        struct lb_boot_report *report;
        bool snippets_changed;
        bool attach_limit_reached;
        struct claim *claims;
        size_t n_claims;
        char key_group[160], key_state[160], key_owner[160], key_fs_uuid[160], key_reason[160];
};

static const char *const outcome_names[_LB_BOOT_OUTCOME_MAX] = {
        [LB_BOOT_RECOVERED] = "recovered",
        [LB_BOOT_ALREADY_RECOVERED] = "already-recovered",
        [LB_BOOT_WOULD_RECOVER] = "would-recover",
        [LB_BOOT_LOST_RACE] = "lost-race",
        [LB_BOOT_QUARANTINED] = "quarantined",
        [LB_BOOT_LEFT_DIRTY] = "left-dirty",
        [LB_BOOT_NOT_CLAIMED] = "not-claimed",
};

const char *lb_boot_outcome_to_string(enum lb_boot_outcome o) {
        return o >= 0 && o < _LB_BOOT_OUTCOME_MAX ? outcome_names[o] : "unknown";
}

void lb_boot_report_done(struct lb_boot_report *r) {
        free(r->volumes);
        r->volumes = NULL;
        r->n_volumes = 0;
}

static void boot_done(struct boot *b) {
        for (size_t i = 0; i < b->n_claims; i++)
                lb_volume_done(&b->claims[i].vol);
        free(b->claims);
        strv_free(b->snapshot);
        lb_devname_picker_done(&b->picker);
        lb_manifest_done(&b->manifest);
        lb_volume_list_done(&b->here);
        lb_aws_close(&b->aws);
}

static bool past_deadline(const struct boot *b) {
        return lb_now_ms() >= b->deadline_ms || (b->ctx->interrupted && *b->ctx->interrupted);
}

static uint64_t remaining_ms(const struct boot *b) {
        uint64_t now = lb_now_ms();
        return now >= b->deadline_ms ? 0 : b->deadline_ms - now;
}

/*
 * Throttling and 5xx answers can outlast the EC2 client's three attempts when a whole
 * fleet boots at once. Calls boot cannot do without are sent again after a growing,
 * jittered pause for as long as the boot deadline allows. Returns true to try again.
 */
static bool wait_out_storm(struct boot *b, const struct lb_ec2_error *e, unsigned *round) {
        if (e->kind != LB_EC2_ERR_THROTTLED && e->kind != LB_EC2_ERR_SERVER)
                return false;
        uint64_t step = MIN((uint64_t) STORM_FIRST_MS << MIN(*round, 3u), (uint64_t) STORM_MAX_MS);
        uint64_t delay = step / 2 + (uint64_t) (lb_random01() * (double) (step / 2));
        if (past_deadline(b) || remaining_ms(b) <= delay)
                return false;
        (*round)++;
        lb_info(b->ctx, "EC2 answers %s; trying again in %" PRIu64 " ms", lb_ec2_error_kind_to_string(e->kind),
                delay);
        lb_sleep_ms(delay, b->ctx->interrupted);
        return !past_deadline(b);
}

static bool wait_out_last_error(struct boot *b, unsigned *round) {
        return wait_out_storm(b, lb_ec2_last_error(b->aws.ec2), round);
}

static int report_add(struct boot *b, const char *volume_id, enum lb_boot_outcome outcome,
                      struct lb_boot_volume **ret) {
        struct lb_boot_report *r = b->report;
        struct lb_boot_volume *n = realloc(r->volumes, (r->n_volumes + 1) * sizeof *n);
        if (!n)
                return -ENOMEM;
        r->volumes = n;
        struct lb_boot_volume *v = &n[r->n_volumes++];
        memset(v, 0, sizeof *v);
        (void) lb_strscpy(v->volume_id, sizeof v->volume_id, volume_id);
        v->outcome = outcome;
        *ret = v;
        return 0;
}

/* ---- tags ---- */

static int create_tags(struct boot *b, const char *volume_id, const struct lb_tag *tags, size_t n) {
        const char *ids[] = { volume_id };
        unsigned round = 0;
        int r;
        do
                r = lb_ec2_create_tags(b->aws.ec2, ids, 1, tags, n);
        while (r < 0 && wait_out_last_error(b, &round));
        if (r < 0) {
                char err[600];
                lb_warn(b->ctx, "CreateTags on %s failed: %s", volume_id,
                        lb_ec2_last_error_text(b->aws.ec2, err, sizeof err));
        }
        return r;
}

/* Tags the volume quarantined with a reason, so no instance mounts it again and reap reports it. */
static int quarantine(struct boot *b, const char *volume_id, const char *reason) {
        char value[256];
        (void) lb_snprintf(value, sizeof value, "%.250s", reason);
        const struct lb_tag tags[] = {
                { b->key_state, (char *) "quarantined" },
                { b->key_reason, value },
                { b->key_owner, (char *) b->self },
        };
        return create_tags(b, volume_id, tags, ELEMENTSOF(tags));
}

static int detach(struct boot *b, const char *volume_id) {
        unsigned round = 0;
        int r;
        do
                r = lb_ec2_detach_volume(b->aws.ec2, volume_id, b->self, false);
        while (r < 0 && wait_out_last_error(b, &round));
        if (r < 0) {
                char err[600];
                lb_warn(b->ctx, "DetachVolume %s failed: %s", volume_id,
                        lb_ec2_last_error_text(b->aws.ec2, err, sizeof err));
        }
        return r;
}

/* ---- the instance's own buffer volume ---- */

static const struct lb_volume *find_attached_at(const struct boot *b, const char *device,
                                                const struct lb_attachment **ret_att) {
        for (size_t i = 0; i < b->here.n; i++) {
                const struct lb_attachment *a = lb_volume_attachment_for(&b->here.items[i], b->self);
                if (a && lb_devname_same_slot(a->device, device)) {
                        *ret_att = a;
                        return &b->here.items[i];
                }
        }
        return NULL;
}

_printf_(3, 4) static int own_fail(struct boot *b, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        (void) vsnprintf(b->report->own.reason, sizeof b->report->own.reason, fmt, ap);
        va_end(ap);
        return r;
}

/* Blank is the only state that formats, and only when nothing says it ever held a filesystem. */
static int own_format(struct boot *b, const struct lb_volume *v, const struct lb_blockdev *dev) {
        struct lb_boot_own *own = &b->report->own;
        const char *tagged_uuid = lb_volume_lb_tag(b->s, v, LB_TAG_FS_UUID);
        if (!isempty(tagged_uuid))
                return own_fail(b, -EMEDIUMTYPE,
                                "reads blank but its fs-uuid tag says it was formatted (%s): refusing to format",
                                tagged_uuid);
        own->formatted = true;
        (void) lb_strscpy(own->fs_type, sizeof own->fs_type, lb_mkfs_fstype(b->s->fs));
        if (b->dry_run)
                return 0;
        char err[1024] = "";
        int r = lb_mkfs(b->s->fs, dev->node, FS_LABEL, err, sizeof err);
        if (r < 0)
                return own_fail(b, r, "mkfs failed: %s", err);
        lb_info(b->ctx, "formatted %s (%s) as %s", v->id, dev->node, own->fs_type);
        return 0;
}

static int own_probe_and_mount(struct boot *b, const struct lb_volume *v, const struct lb_blockdev *dev) {
        struct lb_boot_own *own = &b->report->own;
        const struct lb_settings *s = b->s;
        char reason[256] = "";
        struct lb_probe probe = { 0 };
        int r;

        r = lb_mount_is_mounted_at(dev->devno, s->buffer_mount);
        if (r < 0)
                return own_fail(b, r, "cannot read the mount table: %s", strerror(-r));
        if (r > 0) {
                r = lb_probe_device(dev->node, &probe);
                if (r < 0)
                        return own_fail(b, r, "probe of the mounted device failed: %s", strerror(-r));
                (void) lb_strscpy(own->fs_type, sizeof own->fs_type, probe.type);
                (void) lb_strscpy(own->fs_uuid, sizeof own->fs_uuid, probe.uuid);
                return 0;
        }

        r = lb_blockdev_verify(dev, lb_volume_lb_tag(s, v, LB_TAG_FS_UUID), &probe, reason, sizeof reason);
        if (r == -ENOMEDIUM) {
                r = own_format(b, v, dev);
                if (r < 0)
                        return r;
                if (b->dry_run) {
                        own->mounted_now = true; /* would be */
                        return 0;
                }
                r = lb_probe_device(dev->node, &probe);
                if (r < 0 || probe.result != LB_PROBE_FILESYSTEM)
                        return own_fail(b, r < 0 ? r : -EIO, "%s", "the new filesystem is not visible to libblkid");
        } else if (r < 0)
                return own_fail(b, r, "%s: refusing to format or mount it", reason);

        (void) lb_strscpy(own->fs_type, sizeof own->fs_type, probe.type);
        (void) lb_strscpy(own->fs_uuid, sizeof own->fs_uuid, probe.uuid);
        if (b->dry_run) {
                own->mounted_now = true; /* would be */
                return 0;
        }

        char options[128], err[512] = "";
        r = lb_mount_options(probe.type, false, options, sizeof options);
        if (r >= 0)
                r = lb_mount(dev->node, s->buffer_mount, probe.type, options, err, sizeof err);
        if (r < 0)
                return own_fail(b, r, "mount failed: %s", err);
        own->mounted_now = true;
        lb_info(b->ctx, "mounted %s (%s) at %s", v->id, dev->node, s->buffer_mount);
        return 0;
}

/* Writes group, owner, fs-uuid and state=dirty, but only the tags that differ: a rerun writes nothing. */
static int own_tag(struct boot *b, const struct lb_volume *v) {
        struct lb_boot_own *own = &b->report->own;
        const struct lb_tag wanted[] = {
                { b->key_group, b->s->group },
                { b->key_owner, (char *) b->self },
                { b->key_fs_uuid, own->fs_uuid },
                { b->key_state, (char *) "dirty" },
        };
        struct lb_tag missing[ELEMENTSOF(wanted)];
        size_t n = 0;
        for (size_t i = 0; i < ELEMENTSOF(wanted); i++) {
                const char *have = lb_volume_tag(v, wanted[i].key);
                if (isempty(wanted[i].value) && wanted[i].key == b->key_fs_uuid)
                        continue; /* dry run before mkfs: no UUID yet */
                if (!have || !streq(have, wanted[i].value))
                        missing[n++] = wanted[i];
        }
        if (n == 0)
                return 0;
        own->tags_written = true;
        if (b->dry_run)
                return 0;
        int r = create_tags(b, v->id, missing, n);
        if (r < 0)
                return own_fail(b, r, "%s", "could not tag it dirty");
        return 0;
}

static int prepare_own_volume(struct boot *b) {
        struct lb_boot_own *own = &b->report->own;
        const struct lb_settings *s = b->s;
        const struct lb_attachment *att = NULL;
        char reason[256] = "";
        int r;

        own->configured = true;
        (void) lb_strscpy(own->mount_path, sizeof own->mount_path, s->buffer_mount);
        (void) lb_strscpy(own->device, sizeof own->device, s->buffer_device);

        const struct lb_volume *v = find_attached_at(b, s->buffer_device, &att);
        if (!v)
                return own_fail(b, -ENODEV, "no EBS volume is attached at %s", s->buffer_device);
        (void) lb_strscpy(own->volume_id, sizeof own->volume_id, v->id);
        if (!streq(att->state, "attached"))
                return own_fail(b, -EAGAIN, "its attachment is '%s', not attached", att->state);

        if (att->delete_on_termination) {
                own->delete_on_termination_cleared = true;
                if (!b->dry_run) {
                        unsigned round = 0;
                        do
                                r = lb_ec2_set_delete_on_termination(b->aws.ec2, b->self, att->device, false);
                        while (r < 0 && wait_out_last_error(b, &round));
                        if (r < 0) {
                                char err[600];
                                return own_fail(b, r, "could not turn DeleteOnTermination off: %s",
                                                lb_ec2_last_error_text(b->aws.ec2, err, sizeof err));
                        }
                }
        }

        const struct lb_blockdev_query q = {
                .sysfs_root = s->sysfs_root,
                .dev_root = s->dev_root,
                .volume_id = v->id,
                .requested_name = att->device,
                .size_bytes = v->size_gib << 30,
                .snapshot = NULL, /* attached at launch */
        };
        struct lb_blockdev dev;
        r = lb_blockdev_wait(&q, MIN(s->device_timeout_ms, remaining_ms(b)), b->ctx->interrupted, &dev, reason,
                             sizeof reason);
        if (r < 0)
                return own_fail(b, r, "block device not found: %s", reason);
        (void) lb_strscpy(own->node, sizeof own->node, dev.node);

        r = own_probe_and_mount(b, v, &dev);
        if (r < 0)
                return r;
        r = own_tag(b, v);
        if (r < 0)
                return r;
        own->ready = true;
        return 0;
}

/* ---- recovery ---- */

static int add_claim(struct boot *b, const struct lb_volume *v, bool resumed, struct claim **ret) {
        struct claim *n = realloc(b->claims, (b->n_claims + 1) * sizeof *n);
        if (!n)
                return -ENOMEM;
        b->claims = n;
        struct claim *c = &n[b->n_claims];
        memset(c, 0, sizeof *c);
        /* A deep copy: the list it came from is freed before the claim is. */
        int r = lb_volume_copy(v, &c->vol);
        if (r < 0)
                return r;
        c->resumed = resumed;
        c->state = resumed ? CLAIM_ATTACHING : CLAIM_TO_ATTACH;
        b->n_claims++;
        *ret = c;
        return 0;
}

static bool is_own_buffer(const struct boot *b, const struct lb_volume *v) {
        return b->report->own.configured && streq(v->id, b->report->own.volume_id);
}

static bool in_group(const struct boot *b, const struct lb_volume *v) {
        const char *g = lb_volume_tag(v, b->key_group);
        return g && streq(g, b->s->group);
}

/* Claims that hold a volume here, or are about to: in flight, or recovered. These count
 * against LIFEBOAT_MAX_RECOVER; a recovery that finished stays mounted and does not make room. */
static size_t holding_claims(const struct boot *b) {
        size_t n = 0;
        for (size_t i = 0; i < b->n_claims; i++) {
                const struct claim *c = &b->claims[i];
                if (c->state != CLAIM_FINISHED || c->outcome == LB_BOOT_RECOVERED ||
                    c->outcome == LB_BOOT_ALREADY_RECOVERED || c->outcome == LB_BOOT_WOULD_RECOVER)
                        n++;
        }
        return n;
}

/*
 * The instance that wrote the volume's buffers: what the manifest learnt when this instance
 * first recovered it, else the owner tag unless it names us (we tag ourselves the owner once
 * it is recovered, so on a rerun the tag no longer tells). "" when unknown.
 */
static const char *previous_owner(const struct boot *b, const struct claim *c) {
        const struct lb_manifest_entry *e = lb_manifest_find(&b->manifest, c->vol.id);
        if (e && !isempty(e->previous_owner))
                return e->previous_owner;
        const char *tag = lb_volume_tag(&c->vol, b->key_owner);
        if (tag && lb_instance_id_valid(tag) && !streq(tag, b->self))
                return tag;
        return "";
}

/* Records the end of a claim. */
static int finish(struct boot *b, struct claim *c, enum lb_boot_outcome outcome, const char *reason,
                  struct lb_boot_volume **ret) {
        struct lb_boot_volume *v;
        c->state = CLAIM_FINISHED;
        c->outcome = outcome;
        int r = report_add(b, c->vol.id, outcome, &v);
        if (r < 0)
                return r;
        (void) lb_strscpy(v->device, sizeof v->device, c->device);
        (void) lb_strscpy(v->previous_owner, sizeof v->previous_owner, previous_owner(b, c));
        if (reason)
                (void) lb_strscpy(v->reason, sizeof v->reason, reason);
        if (outcome == LB_BOOT_QUARANTINED || outcome == LB_BOOT_LEFT_DIRTY)
                lb_warn(b->ctx, "%s %s: %s", c->vol.id, outcome == LB_BOOT_QUARANTINED ? "quarantined" : "left dirty",
                        strna(reason));
        if (ret)
                *ret = v;
        return 0;
}

/* Gives a claimed volume back: quarantined (when its content is suspect) or still dirty. */
static int give_back(struct boot *b, struct claim *c, bool suspect, const char *reason) {
        if (suspect)
                (void) quarantine(b, c->vol.id, reason);
        (void) detach(b, c->vol.id);
        return finish(b, c, suspect ? LB_BOOT_QUARANTINED : LB_BOOT_LEFT_DIRTY, reason, NULL);
}

/* Whether a failed mount says the filesystem itself is damaged (corrupt metadata, bad checksum,
 * unreadable superblock). Anything else (the mount point, memory, a busy or failing device) is
 * about this instance or the moment: the volume goes back dirty, not to a human. */
static bool mount_error_blames_content(int r) {
        return r == -EUCLEAN || r == -EBADMSG || r == -EINVAL;
}

static int mount_recovered(struct boot *b, struct claim *c, const struct lb_blockdev *dev, const char *mount_path,
                           char *reason, size_t reason_size, bool *ret_suspect) {
        struct lb_probe probe = { 0 };
        int r = lb_mount_is_mounted_at(dev->devno, mount_path);
        if (r > 0)
                return 0; /* an earlier run mounted it */

        r = lb_blockdev_verify(dev, lb_volume_tag(&c->vol, b->key_fs_uuid), &probe, reason, reason_size);
        if (r < 0) {
                /* Blank, foreign or mismatched content is never formatted nor mounted. A device
                 * that is busy or an I/O error says nothing about the content: leave it dirty. */
                *ret_suspect = r == -ENOMEDIUM || r == -EMEDIUMTYPE || r == -ENOTUNIQ || r == -ESTALE;
                return r;
        }
        r = lb_fluentd_check_recovery_path(mount_path, b->s->buffer_mount);
        if (r < 0) {
                (void) lb_snprintf(reason, reason_size, "recovery path %s overlaps the live buffer %s", mount_path,
                                   b->s->buffer_mount);
                *ret_suspect = false;
                return r;
        }
        char options[128], err[512] = "";
        r = lb_mount_options(probe.type, true, options, sizeof options);
        if (r >= 0)
                r = lb_mount(dev->node, mount_path, probe.type, options, err, sizeof err);
        if (r < 0) {
                (void) lb_snprintf(reason, reason_size, "mount failed: %s", err);
                *ret_suspect = mount_error_blames_content(r);
                return r;
        }
        return 0;
}

static int remember(struct boot *b, const struct claim *c, const struct lb_blockdev *dev, const char *mount_path,
                    const char *config_file) {
        struct lb_manifest_entry e = { .recovered_at = time(NULL) };
        (void) lb_strscpy(e.volume_id, sizeof e.volume_id, c->vol.id);
        (void) lb_strscpy(e.device, sizeof e.device, dev->node);
        (void) lb_strscpy(e.mount_path, sizeof e.mount_path, mount_path);
        (void) lb_strscpy(e.config_file, sizeof e.config_file, config_file);
        (void) lb_strscpy(e.previous_owner, sizeof e.previous_owner, previous_owner(b, c));
        const char *uuid = lb_volume_tag(&c->vol, b->key_fs_uuid);
        if (uuid)
                (void) lb_strscpy(e.fs_uuid, sizeof e.fs_uuid, uuid);
        const struct lb_manifest_entry *old = lb_manifest_find(&b->manifest, c->vol.id);
        if (old)
                e.recovered_at = old->recovered_at;
        int r = lb_manifest_add(&b->manifest, &e);
        if (r < 0)
                return r;
        return lb_manifest_save(b->s->run_dir, &b->manifest);
}

/* The volume is attached to us: find its device, verify, mount, write the snippet, take ownership. */
static int recover_attached(struct boot *b, struct claim *c, const struct lb_attachment *att) {
        const struct lb_settings *s = b->s;
        char reason[256] = "", mount_path[PATH_MAX], config_file[PATH_MAX] = "";
        bool suspect = false;
        int r;

        (void) lb_strscpy(c->device, sizeof c->device, att->device);
        r = lb_snprintf(mount_path, sizeof mount_path, "%s/%s", s->recovery_root, c->vol.id);
        if (r < 0)
                return give_back(b, c, false, "recovery path too long");

        const struct lb_blockdev_query q = {
                .sysfs_root = s->sysfs_root,
                .dev_root = s->dev_root,
                .volume_id = c->vol.id,
                .requested_name = att->device,
                .size_bytes = c->vol.size_gib << 30,
                .snapshot = c->resumed ? NULL : b->snapshot,
        };
        struct lb_blockdev dev;
        r = lb_blockdev_wait(&q, MIN(s->device_timeout_ms, remaining_ms(b)), b->ctx->interrupted, &dev, reason,
                             sizeof reason);
        if (r < 0) {
                char why[300];
                (void) lb_snprintf(why, sizeof why, "block device not found: %s", reason);
                return give_back(b, c, false, why);
        }

        bool was_recovered = c->resumed && lb_manifest_find(&b->manifest, c->vol.id) &&
                             lb_mount_is_mounted_at(dev.devno, mount_path) > 0;

        r = mount_recovered(b, c, &dev, mount_path, reason, sizeof reason, &suspect);
        if (r < 0)
                return give_back(b, c, suspect, reason);

        const struct lb_fluentd_vars vars = {
                .volume_id = c->vol.id,
                .mount_path = mount_path,
                .previous_owner = previous_owner(b, c),
                .group = s->group,
        };
        r = lb_fluentd_install_snippet(s->fluentd_template, s->fluentd_conf_dir, &vars, config_file,
                                       sizeof config_file, reason, sizeof reason);
        if (r < 0) {
                char why[300], err[256] = "";
                (void) lb_snprintf(why, sizeof why, "fluentd config not written: %s", reason);
                if (lb_umount(mount_path, err, sizeof err) < 0)
                        lb_warn(b->ctx, "unmounting %s failed: %s", mount_path, err);
                return give_back(b, c, false, why);
        }
        if (r > 0)
                b->snippets_changed = true;

        r = remember(b, c, &dev, mount_path, config_file);
        if (r < 0)
                lb_warn(b->ctx, "cannot save the manifest in %s: %s", s->run_dir, strerror(-r));

        const char *owner = lb_volume_tag(&c->vol, b->key_owner);
        c->owner_tag_pending = !owner || !streq(owner, b->self);

        struct lb_boot_volume *rv;
        bool already = was_recovered && r == 0;
        r = finish(b, c, already ? LB_BOOT_ALREADY_RECOVERED : LB_BOOT_RECOVERED, NULL, &rv);
        if (r < 0)
                return r;
        (void) lb_strscpy(rv->node, sizeof rv->node, dev.node);
        (void) lb_strscpy(rv->mount_path, sizeof rv->mount_path, mount_path);
        (void) lb_strscpy(rv->config_file, sizeof rv->config_file, config_file);
        if (!already)
                lb_info(b->ctx, "recovered %s (%s) at %s", c->vol.id, dev.node, mount_path);
        return 0;
}

/* Device names for n attachments: never a name of an attachment here or of a local disk. */
static int pick_device_names(struct boot *b, size_t n, char ***ret_names) {
        size_t n_used = 0;
        const char **used = calloc(b->here.n + strv_length(b->snapshot) + 1, sizeof *used);
        if (!used)
                return -ENOMEM;
        for (size_t i = 0; i < b->here.n; i++) {
                const struct lb_attachment *a = lb_volume_attachment_for(&b->here.items[i], b->self);
                if (a)
                        used[n_used++] = a->device;
        }
        for (char **p = b->snapshot; p && *p; p++)
                used[n_used++] = *p;
        int r = lb_devname_pick(&b->picker, used, n_used, n, ret_names);
        free(used);
        return r;
}

/* Moves a claim on by its AttachVolume answer. */
static int attach_answered(struct boot *b, struct claim *c, const struct lb_ec2_call *call) {
        c->attach_sent_ms = lb_now_ms();
        c->state = CLAIM_ATTACHING;
        c->attach_error = call->result >= 0 ? LB_EC2_OK : call->error.kind;
        if (call->result >= 0) {
                lb_info(b->ctx, "attaching %s at %s", c->vol.id, c->device);
                return 0;
        }
        char err[600];
        (void) lb_ec2_error_format(&call->error, err, sizeof err);
        switch (call->error.kind) {
        case LB_EC2_ERR_INVALID_PARAMETER:
                /* "Attachment point /dev/xvdba is already in use": take the next name. */
                if (c->name_tries < ATTACH_NAME_TRIES && strstr(call->error.message, "in use")) {
                        lb_debug(b->ctx, "%s: %s; trying another device name", c->vol.id, err);
                        c->state = CLAIM_TO_ATTACH;
                        return 0;
                }
                return finish(b, c, LB_BOOT_NOT_CLAIMED, err, NULL);
        case LB_EC2_ERR_ATTACHMENT_LIMIT:
                b->attach_limit_reached = true;
                return finish(b, c, LB_BOOT_NOT_CLAIMED, err, NULL);
        case LB_EC2_ERR_VOLUME_NOT_FOUND:
        case LB_EC2_ERR_ZONE_MISMATCH:
        case LB_EC2_ERR_AUTH:
                return finish(b, c, LB_BOOT_NOT_CLAIMED, err, NULL);
        default:
                /* VolumeInUse, IncorrectState, or a 5xx that may hide a success (an
                 * attach can succeed and still answer 500): describe to know. */
                lb_debug(b->ctx, "%s: %s; describing to see who holds it", c->vol.id, err);
                return 0;
        }
}

/* No device name is left for these claims: they stay for other instances. */
static int out_of_names(struct boot *b) {
        b->attach_limit_reached = true;
        for (size_t i = 0; i < b->n_claims; i++)
                if (b->claims[i].state == CLAIM_TO_ATTACH) {
                        int r = finish(b, &b->claims[i], LB_BOOT_NOT_CLAIMED, "no device name left to attach at",
                                       NULL);
                        if (r < 0)
                                return r;
                }
        return 0;
}

/* Sends AttachVolume for every claim that needs one, all at once. */
static int send_attaches(struct boot *b) {
        size_t n = 0;
        for (size_t i = 0; i < b->n_claims; i++)
                if (b->claims[i].state == CLAIM_TO_ATTACH)
                        n++;
        if (n == 0)
                return 0;

        char **names = NULL;
        int r = pick_device_names(b, n, &names);
        if (r == -ENOSPC)
                return out_of_names(b);
        if (r < 0)
                return r;

        struct lb_ec2_call *calls = calloc(n, sizeof *calls);
        struct claim **who = calloc(n, sizeof *who);
        if (!calls || !who) {
                free(calls);
                free(who);
                strv_free(names);
                return -ENOMEM;
        }
        size_t k = 0;
        for (size_t i = 0; i < b->n_claims && k < n; i++) {
                struct claim *c = &b->claims[i];
                if (c->state != CLAIM_TO_ATTACH)
                        continue;
                (void) lb_strscpy(c->device, sizeof c->device, names[k]);
                c->name_tries++;
                who[k] = c;
                if (lb_form_init_action(&calls[k].form, "AttachVolume") < 0 ||
                    lb_form_add(&calls[k].form, "VolumeId", c->vol.id) < 0 ||
                    lb_form_add(&calls[k].form, "InstanceId", b->self) < 0 ||
                    lb_form_add(&calls[k].form, "Device", c->device) < 0)
                        r = -ENOMEM;
                k++;
        }
        strv_free(names);
        if (r >= 0)
                r = lb_ec2_perform(b->aws.ec2, calls, n);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = attach_answered(b, who[i], &calls[i]);
        for (size_t i = 0; i < n; i++)
                lb_ec2_call_done(&calls[i]);
        free(calls);
        free(who);
        return r;
}

/* Claims more candidates while there is room: limit, slots, and time. */
static int claim_more(struct boot *b, const struct lb_volume_list *cand, size_t *next, size_t limit) {
        int r;
        while (*next < cand->n && holding_claims(b) < limit && !b->attach_limit_reached && !past_deadline(b)) {
                struct claim *c;
                r = add_claim(b, &cand->items[(*next)++], false, &c);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* An AttachVolume refused by throttling, a 5xx or a lost connection did not happen when the
 * volume is still free (an attach that succeeded behind a 5xx shows as attached): send it
 * again, a few times, while the volume is still dirty. */
static bool attach_worth_resending(const struct boot *b, const struct claim *c, const struct lb_volume *now) {
        bool transient = c->attach_error == LB_EC2_ERR_THROTTLED || c->attach_error == LB_EC2_ERR_SERVER ||
                         c->attach_error == LB_EC2_ERR_TRANSPORT;
        return transient && c->storm_tries < ATTACH_STORM_TRIES && streq(now->state, "available") &&
               lb_volume_state(b->s, now) == LB_VOL_DIRTY && !past_deadline(b);
}

/* One DescribeVolumes for every claim in flight; moves each one on. */
static int poll_claims(struct boot *b) {
        size_t n = 0;
        const char **ids = calloc(b->n_claims + 1, sizeof *ids);
        if (!ids)
                return -ENOMEM;
        for (size_t i = 0; i < b->n_claims; i++)
                if (b->claims[i].state == CLAIM_ATTACHING)
                        ids[n++] = b->claims[i].vol.id;
        if (n == 0) {
                free(ids);
                return 0;
        }
        _cleanup_volume_list_ struct lb_volume_list now = { 0 };
        int r = lb_ec2_describe_volumes(b->aws.ec2, NULL, 0, ids, n, &now);
        free(ids);
        if (r < 0) {
                char err[600];
                lb_warn(b->ctx, "DescribeVolumes while waiting for attachments failed: %s",
                        lb_ec2_last_error_text(b->aws.ec2, err, sizeof err));
                return 0; /* keep waiting; the deadline bounds it */
        }

        for (size_t i = 0; i < b->n_claims; i++) {
                struct claim *c = &b->claims[i];
                if (c->state != CLAIM_ATTACHING)
                        continue;
                const struct lb_volume *v = lb_volume_list_find(&now, c->vol.id);
                if (!v) {
                        r = finish(b, c, LB_BOOT_NOT_CLAIMED, "the volume disappeared", NULL);
                        if (r < 0)
                                return r;
                        continue;
                }
                const struct lb_attachment *mine = lb_volume_attachment_for(v, b->self);
                enum lb_vol_state st = lb_volume_state(b->s, v);
                if (mine && streq(mine->state, "attached") && st != LB_VOL_DIRTY) {
                        /* Tagged otherwise since it was chosen: a watch here is releasing it
                         * (flushed), or it was quarantined. Not ours to mount again. */
                        char why[96];
                        (void) lb_snprintf(why, sizeof why, "no longer dirty (state %s)", lb_vol_state_to_string(st));
                        r = c->resumed ? finish(b, c, LB_BOOT_NOT_CLAIMED, why, NULL) : give_back(b, c, false, why);
                } else if (mine && streq(mine->state, "attached")) {
                        r = recover_attached(b, c, mine);
                } else if (mine) {
                        if (lb_now_ms() - c->attach_sent_ms > b->s->attach_timeout_ms) {
                                char why[128];
                                (void) lb_snprintf(why, sizeof why, "stuck in '%s' for more than %" PRIu64 " ms",
                                                   mine->state, b->s->attach_timeout_ms);
                                r = give_back(b, c, false, why);
                        }
                } else if (v->n_attachments > 0) {
                        struct lb_boot_volume *rv;
                        r = finish(b, c, LB_BOOT_LOST_RACE, NULL, &rv);
                        if (r >= 0)
                                (void) lb_strscpy(rv->winner, sizeof rv->winner, v->attachments[0].instance_id);
                        lb_debug(b->ctx, "%s went to %s", c->vol.id, v->attachments[0].instance_id);
                } else if (attach_worth_resending(b, c, v)) {
                        lb_debug(b->ctx, "%s: AttachVolume did not happen (%s); sending it again", c->vol.id,
                                 lb_ec2_error_kind_to_string(c->attach_error));
                        c->storm_tries++;
                        c->state = CLAIM_TO_ATTACH;
                } else {
                        /* Not attached anywhere although AttachVolume was sent: it failed, or a
                         * racer attached and let go. Leave it for the next boot. */
                        r = finish(b, c, LB_BOOT_NOT_CLAIMED, "attach did not take effect", NULL);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool claims_in_flight(const struct boot *b) {
        for (size_t i = 0; i < b->n_claims; i++)
                if (b->claims[i].state != CLAIM_FINISHED)
                        return true;
        return false;
}

/* The deadline passed: give back what is not recovered yet, dirty, for the next boot. */
static int abandon_in_flight(struct boot *b) {
        b->report->timed_out = true;
        for (size_t i = 0; i < b->n_claims; i++) {
                struct claim *c = &b->claims[i];
                if (c->state == CLAIM_FINISHED)
                        continue;
                int r = c->state == CLAIM_ATTACHING ? give_back(b, c, false, "boot timeout")
                                                    : finish(b, c, LB_BOOT_NOT_CLAIMED, "boot timeout", NULL);
                if (r < 0)
                        return r;
        }
        return 0;
}

static size_t attachments_here(const struct boot *b) {
        size_t n = 0;
        for (size_t i = 0; i < b->here.n; i++)
                if (lb_volume_attachment_for(&b->here.items[i], b->self))
                        n++;
        return n;
}

/* Volumes an earlier run attached here (kill -9, reboot): finish or release them. */
static int resume_attached(struct boot *b) {
        for (size_t i = 0; i < b->here.n; i++) {
                const struct lb_volume *v = &b->here.items[i];
                if (is_own_buffer(b, v) || !in_group(b, v))
                        continue;
                enum lb_vol_state st = lb_volume_state(b->s, v);
                const struct lb_attachment *a = lb_volume_attachment_for(v, b->self);
                if (!a || streq(a->state, "detaching") || streq(a->state, "busy"))
                        continue;
                if (st == LB_VOL_DIRTY) {
                        struct claim *c;
                        int r = add_claim(b, v, true, &c);
                        if (r < 0)
                                return r;
                        (void) lb_strscpy(c->device, sizeof c->device, a->device);
                        c->attach_sent_ms = lb_now_ms();
                } else if (st == LB_VOL_QUARANTINED && !b->dry_run) {
                        lb_info(b->ctx, "detaching quarantined %s left attached by an earlier run", v->id);
                        (void) detach(b, v->id);
                }
        }
        return 0;
}

static int describe_candidates(struct boot *b, struct lb_volume_list *ret) {
        char group_filter[192], state_filter[192];
        (void) lb_tag_filter(b->s, LB_TAG_GROUP, group_filter, sizeof group_filter);
        (void) lb_tag_filter(b->s, LB_TAG_STATE, state_filter, sizeof state_filter);
        const char *az[] = { b->report->availability_zone };
        const char *status[] = { "available" };
        const char *group[] = { b->s->group };
        const char *dirty[] = { "dirty" };
        const struct lb_filter filters[] = {
                { "availability-zone", az, 1 },
                { "status", status, 1 },
                { group_filter, group, 1 },
                { state_filter, dirty, 1 },
        };
        _cleanup_volume_list_ struct lb_volume_list all = { 0 };
        unsigned round = 0;
        int r;
        do
                r = lb_ec2_describe_volumes(b->aws.ec2, filters, ELEMENTSOF(filters), NULL, 0, &all);
        while (r < 0 && wait_out_last_error(b, &round));
        if (r < 0)
                return r;
        /* Multi-attach volumes are skipped: attaching is no lock for them. */
        struct lb_volume_list out = { 0 };
        out.items = calloc(all.n + 1, sizeof *out.items);
        if (!out.items)
                return -ENOMEM;
        for (size_t i = 0; i < all.n; i++) {
                if (all.items[i].multi_attach) {
                        lb_info(b->ctx, "skipping multi-attach volume %s", all.items[i].id);
                        continue;
                }
                r = lb_volume_copy(&all.items[i], &out.items[out.n]);
                if (r < 0) {
                        lb_volume_list_done(&out);
                        return r;
                }
                out.n++;
        }
        *ret = out;
        return 0;
}

static void report_dry_run(struct boot *b, const struct lb_volume_list *cand, size_t limit) {
        for (size_t i = 0; i < cand->n; i++) {
                struct lb_boot_volume *v;
                bool take = i < limit;
                if (report_add(b, cand->items[i].id, take ? LB_BOOT_WOULD_RECOVER : LB_BOOT_NOT_CLAIMED, &v) < 0)
                        return;
                const char *prev = lb_volume_tag(&cand->items[i], b->key_owner);
                if (prev && lb_instance_id_valid(prev))
                        (void) lb_strscpy(v->previous_owner, sizeof v->previous_owner, prev);
                (void) lb_snprintf(v->mount_path, sizeof v->mount_path, "%s/%s", b->s->recovery_root,
                                   cand->items[i].id);
                if (!take)
                        (void) lb_strscpy(v->reason, sizeof v->reason, "over LIFEBOAT_MAX_RECOVER or the free slots");
        }
}

/* Whether an earlier run finished the volume: in the manifest, and its device mounted where
 * boot mounts it. Only looks (one sysfs scan, the mount table). */
static bool recovered_earlier(const struct boot *b, const struct claim *c, const char *mount_path) {
        const struct lb_attachment *a = lb_volume_attachment_for(&c->vol, b->self);
        if (!a || !lb_manifest_find(&b->manifest, c->vol.id))
                return false;
        const struct lb_blockdev_query q = {
                .sysfs_root = b->s->sysfs_root,
                .dev_root = b->s->dev_root,
                .volume_id = c->vol.id,
                .requested_name = a->device,
                .size_bytes = c->vol.size_gib << 30,
        };
        struct lb_blockdev dev;
        return lb_blockdev_find(&q, &dev, NULL, 0) == 0 && lb_mount_is_mounted_at(dev.devno, mount_path) > 0;
}

/* --dry-run: a volume an earlier run attached here is recovered already, or would be now. */
static int dry_run_resumed(struct boot *b, struct claim *c) {
        char mount_path[PATH_MAX];
        struct lb_boot_volume *v;
        int r = lb_snprintf(mount_path, sizeof mount_path, "%s/%s", b->s->recovery_root, c->vol.id);
        if (r < 0)
                return r;
        bool done = recovered_earlier(b, c, mount_path);
        r = finish(b, c, done ? LB_BOOT_ALREADY_RECOVERED : LB_BOOT_WOULD_RECOVER,
                   done ? NULL : "attached here by an earlier run", &v);
        if (r < 0)
                return r;
        (void) lb_strscpy(v->mount_path, sizeof v->mount_path, mount_path);
        const struct lb_manifest_entry *e = lb_manifest_find(&b->manifest, c->vol.id);
        if (done && e) {
                (void) lb_strscpy(v->node, sizeof v->node, e->device);
                (void) lb_strscpy(v->config_file, sizeof v->config_file, e->config_file);
        }
        return 0;
}

/* Takes ownership of every volume recovered since the last call with one CreateTags for all of
 * them (one round trip instead of one per volume); if that call fails (one volume went away
 * meanwhile), each volume is tagged on its own. */
static int tag_new_owners(struct boot *b) {
        const struct lb_tag tags[] = { { b->key_owner, (char *) b->self } };
        size_t n = 0;
        _cleanup_free_ const char **ids = calloc(b->n_claims + 1, sizeof *ids);
        if (!ids)
                return -ENOMEM;
        for (size_t i = 0; i < b->n_claims; i++)
                if (b->claims[i].owner_tag_pending) {
                        ids[n++] = b->claims[i].vol.id;
                        b->claims[i].owner_tag_pending = false;
                }
        if (n == 0)
                return 0;
        unsigned round = 0;
        int r;
        do
                r = lb_ec2_create_tags(b->aws.ec2, ids, n, tags, 1);
        while (r < 0 && wait_out_last_error(b, &round));
        if (r >= 0 || n == 1) {
                if (r < 0) {
                        char err[600];
                        lb_warn(b->ctx, "CreateTags on %s failed: %s", ids[0],
                                lb_ec2_last_error_text(b->aws.ec2, err, sizeof err));
                }
                return 0;
        }
        for (size_t i = 0; i < n; i++)
                (void) create_tags(b, ids[i], tags, 1);
        return 0;
}

/* Whether every claim waiting for its attachment was attached by an earlier run. */
static bool only_resumed_in_flight(const struct boot *b) {
        for (size_t i = 0; i < b->n_claims; i++)
                if (b->claims[i].state == CLAIM_ATTACHING && !b->claims[i].resumed)
                        return false;
        return true;
}

/* Claims candidates up to the limit, attaches them all at once and recovers each one as its
 * attachment completes, until nothing is in flight or the deadline passes. */
static int attach_and_recover(struct boot *b, const struct lb_volume_list *cand, size_t limit, size_t *next) {
        uint64_t poll_ms = POLL_FIRST_MS, started = lb_now_ms();
        bool first = true;
        int r;

        for (;; first = false) {
                r = claim_more(b, cand, next, limit);
                if (r >= 0)
                        r = send_attaches(b);
                if (r < 0)
                        return r;
                if (!claims_in_flight(b))
                        return 0;
                if (past_deadline(b))
                        return abandon_in_flight(b);
                /* Volumes an earlier run attached may be ready already: look at once, but only
                 * once (one still attaching must not make this a busy loop). */
                if (!first || !only_resumed_in_flight(b)) {
                        lb_sleep_ms(MIN(poll_ms, remaining_ms(b)), b->ctx->interrupted);
                        if (lb_now_ms() - started > 5000)
                                poll_ms = MIN(poll_ms * 3 / 2, POLL_MAX_MS);
                }
                r = poll_claims(b);
                if (r >= 0)
                        r = tag_new_owners(b);
                if (r < 0)
                        return r;
        }
}

/* Candidates never claimed stay dirty for the next boot or another instance; say why. */
static int report_unclaimed(struct boot *b, const struct lb_volume_list *cand, size_t next) {
        if (next < cand->n && !b->attach_limit_reached && past_deadline(b))
                b->report->timed_out = true;
        for (; next < cand->n; next++) {
                struct lb_boot_volume *v;
                int r = report_add(b, cand->items[next].id, LB_BOOT_NOT_CLAIMED, &v);
                if (r < 0)
                        return r;
                (void) lb_strscpy(v->reason, sizeof v->reason,
                                  b->attach_limit_reached ? "attachment limit reached"
                                  : past_deadline(b)      ? "boot timeout"
                                                          : "over LIFEBOAT_MAX_RECOVER or the free slots");
        }
        return 0;
}

static int recover_volumes(struct boot *b) {
        const struct lb_settings *s = b->s;
        int r;

        r = resume_attached(b);
        if (r < 0)
                return r;

        _cleanup_volume_list_ struct lb_volume_list cand = { 0 };
        r = describe_candidates(b, &cand);
        if (r < 0) {
                char err[600];
                lb_err(b->ctx, "DescribeVolumes for dirty volumes failed: %s",
                       lb_ec2_last_error_text(b->aws.ec2, err, sizeof err));
                return r;
        }
        b->report->candidates = cand.n;

        size_t used = attachments_here(b);
        size_t free_slots = s->attachment_slots > used ? s->attachment_slots - used : 0;
        size_t limit = MIN((size_t) s->max_recover, holding_claims(b) + free_slots);

        if (b->dry_run) {
                report_dry_run(b, &cand, limit > holding_claims(b) ? limit - holding_claims(b) : 0);
                for (size_t i = 0; i < b->n_claims; i++)
                        (void) dry_run_resumed(b, &b->claims[i]);
                return 0;
        }
        if (cand.n == 0 && b->n_claims == 0)
                return 0;

        r = lb_blockdev_snapshot(s->sysfs_root, &b->snapshot);
        if (r < 0 && r != -ENOENT)
                return r;

        size_t next = 0;
        r = attach_and_recover(b, &cand, limit, &next);
        if (r < 0)
                return r;
        return report_unclaimed(b, &cand, next);
}

/* Drops manifest entries and snippets of volumes no longer attached here. */
static int reconcile_manifest(struct boot *b) {
        for (size_t i = 0; i < b->manifest.n;) {
                const char *id = b->manifest.entries[i].volume_id;
                const struct lb_volume *v = lb_volume_list_find(&b->here, id);
                if (v && lb_volume_attachment_for(v, b->self)) {
                        i++;
                        continue;
                }
                lb_info(b->ctx, "%s is no longer attached here; forgetting it", id);
                (void) lb_manifest_remove(&b->manifest, id);
        }
        return 0;
}

static int prune_snippets(struct boot *b) {
        const char **keep = calloc(b->manifest.n + 1, sizeof *keep);
        if (!keep)
                return -ENOMEM;
        for (size_t i = 0; i < b->manifest.n; i++)
                keep[i] = b->manifest.entries[i].volume_id;
        int r = lb_fluentd_prune_snippets(b->s->fluentd_conf_dir, keep);
        free(keep);
        if (r > 0)
                b->snippets_changed = true;
        return r;
}

static int init_keys(struct boot *b) {
        const struct lb_settings *s = b->s;
        int r = lb_tag_key(s, LB_TAG_GROUP, b->key_group, sizeof b->key_group);
        if (r >= 0)
                r = lb_tag_key(s, LB_TAG_STATE, b->key_state, sizeof b->key_state);
        if (r >= 0)
                r = lb_tag_key(s, LB_TAG_OWNER, b->key_owner, sizeof b->key_owner);
        if (r >= 0)
                r = lb_tag_key(s, LB_TAG_FS_UUID, b->key_fs_uuid, sizeof b->key_fs_uuid);
        if (r >= 0)
                r = lb_tag_key(s, LB_TAG_REASON, b->key_reason, sizeof b->key_reason);
        return r;
}

static int describe_here(struct boot *b) {
        const char *self[] = { b->self };
        const struct lb_filter filters[] = { { "attachment.instance-id", self, 1 } };
        unsigned round = 0;
        int r;
        do
                r = lb_ec2_describe_volumes(b->aws.ec2, filters, 1, NULL, 0, &b->here);
        while (r < 0 && wait_out_last_error(b, &round));
        if (r < 0) {
                char err[600];
                lb_err(b->ctx, "DescribeVolumes for this instance's volumes failed: %s",
                       lb_ec2_last_error_text(b->aws.ec2, err, sizeof err));
        }
        return r;
}

static int boot_steps(struct boot *b) {
        struct lb_boot_report *rep = b->report;
        int r, partial = 0;

        r = lb_aws_open(b->ctx, LB_AWS_NEED_IDENTITY, &b->aws);
        if (r < 0)
                return r;
        b->self = b->aws.identity.instance_id;
        (void) lb_strscpy(rep->instance_id, sizeof rep->instance_id, b->self);
        (void) lb_strscpy(rep->availability_zone, sizeof rep->availability_zone,
                          b->aws.identity.availability_zone);

        r = lb_manifest_load(b->s->run_dir, &b->manifest);
        if (r < 0) {
                lb_warn(b->ctx, "ignoring an unreadable manifest in %s: %s", b->s->run_dir, strerror(-r));
                lb_manifest_done(&b->manifest);
        }

        r = describe_here(b);
        if (r < 0)
                return r;
        if (!b->dry_run)
                (void) reconcile_manifest(b);

        if (!isempty(b->s->buffer_device)) {
                r = prepare_own_volume(b);
                if (r < 0) {
                        lb_err(b->ctx, "own buffer volume at %s is not ready: %s", b->s->buffer_device,
                               rep->own.reason);
                        /* Recovery still runs: the old chunks matter more than this instance. */
                        partial = r;
                }
        }

        r = recover_volumes(b);
        if (r < 0)
                return r;

        if (!b->dry_run) {
                r = lb_manifest_save(b->s->run_dir, &b->manifest);
                if (r < 0)
                        lb_warn(b->ctx, "cannot save the manifest in %s: %s", b->s->run_dir, strerror(-r));
                (void) prune_snippets(b);
                if (b->snippets_changed && b->s->fluentd_reload && !isempty(b->s->fluentd_rpc)) {
                        char reason[256];
                        /* Normally fluentd is not running yet and reads the snippets when it starts. */
                        if (lb_fluentd_reload_config(b->ctx, reason, sizeof reason) < 0)
                                lb_debug(b->ctx, "fluentd reload not done (%s); it reads the snippets at start",
                                         reason);
                }
        }

        if (partial < 0)
                return partial;
        if (rep->timed_out)
                return 1;       /* volumes found dirty were left so */
        for (size_t i = 0; i < rep->n_volumes; i++)
                if (rep->volumes[i].outcome == LB_BOOT_QUARANTINED || rep->volumes[i].outcome == LB_BOOT_LEFT_DIRTY)
                        return 1;
        return 0;
}

int lb_boot_run(struct lb_context *ctx, bool dry_run, struct lb_boot_report *report) {
        struct boot b = {
                .ctx = ctx,
                .s = &ctx->settings,
                .dry_run = dry_run,
                .report = report,
                .deadline_ms = lb_now_ms() + ctx->settings.boot_timeout_ms,
        };
        uint64_t start = lb_now_ms();
        report->dry_run = dry_run;

        int r = init_keys(&b);
        if (r < 0)
                return r;

        /* Two boots at once (a unit and a hand-run) must not both claim: serialise them. */
        _cleanup_close_ int lock_fd = -EBADF;
        r = lb_lock_acquire(ctx->settings.run_dir, "boot.lock", true, ctx->settings.boot_timeout_ms, &lock_fd);
        if (r < 0) {
                lb_err(ctx, "cannot take the boot lock in %s: %s", ctx->settings.run_dir, strerror(-r));
                return r;
        }

        r = boot_steps(&b);
        report->imds_requests = b.aws.imds ? lb_imds_request_count(b.aws.imds) : 0;
        report->ec2_requests = b.aws.ec2 ? lb_ec2_request_count(b.aws.ec2) : 0;
        report->elapsed_ms = lb_now_ms() - start;
        boot_done(&b);
        return r;
}
