/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <time.h>

#include "watch-internal.h"

/* lifeboat watch, the state tags watch writes (flushed, dirty). */

/* Fills w->key_state and w->key_flushed_at from the settings: -EINVAL when they do not fit. */
int watch_tag_keys_init(struct watch *w);
/* Tags volume_id state=flushed with flushed-at=when, or state=dirty (dropping flushed-at).
 * A failure is warned about once until a CreateTags works again. */
int watch_tag_volume(struct watch *w, const char *volume_id, bool flushed, time_t when);
