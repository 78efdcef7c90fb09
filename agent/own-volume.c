/* SPDX-License-Identifier: MIT */
#include "lifeboat/own-volume.h"

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
