/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "lifeboat/context.h"
#include "lifeboat/ec2.h"
#include "lifeboat/tags.h"
#include "lifeboat/util.h"

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

static const char *const state_names[_LB_VOL_STATE_MAX] = {
        [LB_VOL_UNMARKED] = "unmarked",
        [LB_VOL_DIRTY] = "dirty",
        [LB_VOL_FLUSHED] = "flushed",
        [LB_VOL_QUARANTINED] = "quarantined",
        [LB_VOL_UNKNOWN] = "unknown",
};

enum lb_vol_state lb_volume_state(const struct lb_settings *s, const struct lb_volume *v) {
        const char *value = lb_volume_lb_tag(s, v, LB_TAG_STATE);
        if (!value)
                return LB_VOL_UNMARKED;
        for (int i = LB_VOL_DIRTY; i <= LB_VOL_QUARANTINED; i++)
                if (streq(value, state_names[i]))
                        return (enum lb_vol_state) i;
        return LB_VOL_UNKNOWN;
}

const char *lb_vol_state_to_string(enum lb_vol_state st) {
        if (st < 0 || st >= _LB_VOL_STATE_MAX)
                return "unknown";
        return state_names[st];
}
