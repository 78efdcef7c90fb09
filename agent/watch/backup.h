/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>
#include <time.h>

#include "watch-internal.h"

/* lifeboat watch, fluentd's backup directory: chunks it could not deliver. */

/* Counts the regular files in fluentd's backup directory whose path below it contains needle
 * (NULL: any) and whose mtime is at or after newer_than (0: any). 0 files when the directory
 * does not exist, -EOPNOTSUPP when none is configured. */
int watch_count_backup(const struct watch *w, const char *needle, time_t newer_than, uint64_t *ret);
/* Warns when files appeared in the backup directory since watch started; updates st.backup_files. */
void watch_check_backup_since_start(struct watch *w);
