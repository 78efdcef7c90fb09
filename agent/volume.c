/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "lifeboat/ec2.h"

static int copy_tags(const struct lb_tag *src, size_t n, struct lb_tag **ret) {
        struct lb_tag *t = calloc(n ? n : 1, sizeof *t);
        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                t[i].key = strdup(src[i].key);
                t[i].value = strdup(src[i].value ? src[i].value : "");
                if (!t[i].key || !t[i].value) {
                        for (size_t j = 0; j <= i; j++) {
                                free(t[j].key);
                                free(t[j].value);
                        }
                        free(t);
                        return -ENOMEM;
                }
        }
        *ret = t;
        return 0;
}

int lb_volume_copy(const struct lb_volume *v, struct lb_volume *ret) {
        struct lb_volume c = *v;
        c.attachments = NULL;
        c.tags = NULL;
        if (v->n_attachments > 0) {
                c.attachments = calloc(v->n_attachments, sizeof *c.attachments);
                if (!c.attachments)
                        return -ENOMEM;
                memcpy(c.attachments, v->attachments, v->n_attachments * sizeof *c.attachments);
        }
        if (v->n_tags > 0) {
                int r = copy_tags(v->tags, v->n_tags, &c.tags);
                if (r < 0) {
                        free(c.attachments);
                        return r;
                }
        }
        *ret = c;
        return 0;
}
