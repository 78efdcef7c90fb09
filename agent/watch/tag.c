/* SPDX-License-Identifier: MIT */
/*
 * lifeboat watch: the state tags it writes on the own buffer volume and on
 * the recovered volumes it releases (state=flushed with flushed-at, or
 * state=dirty).
 */
#include <errno.h>

#include "lifeboat/aws/ec2.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/state/volume.h"
#include "watch-internal.h"
#include "notice.h"
#include "own.h"
#include "release.h"
#include "tag.h"
#include "backup.h"

int watch_tag_keys_init(struct watch *w) {
        int r = lb_tag_key(w->s, LB_TAG_STATE, w->key_state, sizeof w->key_state);
        if (r >= 0)
                r = lb_tag_key(w->s, LB_TAG_FLUSHED_AT, w->key_flushed_at, sizeof w->key_flushed_at);
        return r < 0 ? -EINVAL : 0;
}

/* flushed_at NULL: state=dirty; else state=flushed with that flushed-at. */
static int create_state_tags(struct watch *w, const char *volume_id, char *flushed_at) {
        const char *ids[] = { volume_id };
        if (!flushed_at) {
                const struct lb_tag tags[] = { { w->key_state, (char *) "dirty" } };
                return lb_ec2_create_tags(w->aws.ec2, ids, 1, tags, ELEMENTSOF(tags));
        }
        const struct lb_tag tags[] = {
                { w->key_state, (char *) "flushed" },
                { w->key_flushed_at, flushed_at },
        };
        return lb_ec2_create_tags(w->aws.ec2, ids, 1, tags, ELEMENTSOF(tags));
}

static void tag_failed(struct watch *w, const char *volume_id, bool flushed) {
        char err[600];
        if (!w->tag_failing)
                lb_warn(w->ctx, "CreateTags %s=%s on %s failed: %s (retrying every poll)", w->key_state,
                        flushed ? "flushed" : "dirty", volume_id, lb_ec2_last_error_text(w->aws.ec2, err, sizeof err));
        w->tag_failing = true;
}

int watch_tag_volume(struct watch *w, const char *volume_id, bool flushed, time_t when) {
        char at[40];
        int r;
        if (flushed) {
                r = lb_format_iso8601(when, at, sizeof at);
                if (r < 0)
                        return r;
        }
        r = create_state_tags(w, volume_id, flushed ? at : NULL);
        if (r < 0) {
                tag_failed(w, volume_id, flushed);
                return r;
        }
        if (w->tag_failing)
                lb_info(w->ctx, "CreateTags works again");
        w->tag_failing = false;
        if (!flushed) {
                /* The old flushed-at would only mislead; losing this call is harmless. */
                const char *ids[] = { volume_id };
                const struct lb_tag old[] = { { w->key_flushed_at, NULL } };
                (void) lb_ec2_delete_tags(w->aws.ec2, ids, 1, old, 1);
        }
        return 0;
}
