/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "lifeboat/aws/ec2.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/state/volume.h"

int lb_tag_key(const struct lb_settings *s, const char *name, char *buf, size_t size) {
        return lb_snprintf(buf, size, "%s:%s", s->tag_prefix, name);
}

int lb_tag_filter(const struct lb_settings *s, const char *name, char *buf, size_t size) {
        return lb_snprintf(buf, size, "tag:%s:%s", s->tag_prefix, name);
}

const char *lb_volume_lb_tag(const struct lb_settings *s, const struct lb_volume *v, const char *name) {
        char key[160];
        if (lb_tag_key(s, name, key, sizeof key) < 0)
                return NULL;
        return lb_volume_tag(v, key);
}

const char *lb_snapshot_lb_tag(const struct lb_settings *s, const struct lb_snapshot *snap, const char *name) {
        char key[160];
        if (lb_tag_key(s, name, key, sizeof key) < 0)
                return NULL;
        return lb_snapshot_tag(snap, key);
}

static const char *const state_names[_LB_VOL_STATE_MAX] = {
        [LB_VOL_UNMARKED] = "unmarked",
        [LB_VOL_DIRTY] = "dirty",
        [LB_VOL_FLUSHED] = "flushed",
        [LB_VOL_QUARANTINED] = "quarantined",
        [LB_VOL_RELOCATED] = "relocated",
        [LB_VOL_UNKNOWN] = "unknown",
};

enum lb_vol_state lb_volume_state(const struct lb_settings *s, const struct lb_volume *v) {
        const char *value = lb_volume_lb_tag(s, v, LB_TAG_STATE);
        if (!value)
                return LB_VOL_UNMARKED;
        for (int i = LB_VOL_DIRTY; i <= LB_VOL_RELOCATED; i++)
                if (streq(value, state_names[i]))
                        return (enum lb_vol_state) i;
        return LB_VOL_UNKNOWN;
}

const char *lb_vol_state_to_string(enum lb_vol_state st) {
        if (st < 0 || st >= _LB_VOL_STATE_MAX)
                return "unknown";
        return state_names[st];
}

/* ---- the own buffer volume ---- */

const struct lb_volume *lb_own_volume_find(const struct lb_volume_list *l, const char *instance_id,
                                           const char *device, const struct lb_attachment **ret_att) {
        for (size_t i = 0; i < l->n; i++) {
                const struct lb_attachment *a = lb_volume_attachment_for(&l->items[i], instance_id);
                if (a && lb_devname_same_slot(a->device, device)) {
                        *ret_att = a;
                        return &l->items[i];
                }
        }
        return NULL;
}

void lb_own_volume_query(const struct lb_settings *s, const struct lb_volume *v, const struct lb_attachment *att,
                         struct lb_blockdev_query *ret) {
        *ret = (struct lb_blockdev_query) {
                .sysfs_root = s->sysfs_root,
                .dev_root = s->dev_root,
                .volume_id = v->id,
                .requested_name = att->device,
                .size_bytes = v->size_gib << 30,
                .snapshot = NULL, /* attached at launch */
        };
}
