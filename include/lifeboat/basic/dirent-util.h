/* SPDX-License-Identifier: MIT */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "lifeboat/basic/macro.h"

/* Directories: one way to list one (FOREACH_DIRENT, after systemd's) and one way to walk a tree
 * (lb_walk()). Nothing here follows a symbolic link below the top. */

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);
#define _cleanup_closedir_ _cleanup_(closedirp)

/* readdir() with errno cleared first, so that NULL with errno 0 is the end of the directory. */
static inline struct dirent *lb_readdir(DIR *d) {
        errno = 0;
        return readdir(d);
}

static inline bool lb_dot_or_dot_dot(const char *name) {
        return streq(name, ".") || streq(name, "..");
}

/*
 * Runs the statement after it for every entry of d but "." and ".."; when readdir() fails,
 * runs on_error (errno holds the error) and stops:
 *
 *     FOREACH_DIRENT(de, d, return -errno) {
 *             ... de->d_name ...
 *     }
 */
#define FOREACH_DIRENT(de, d, on_error)                                         \
        for (struct dirent *de = lb_readdir(d);; de = lb_readdir(d))            \
                if (!de) {                                                      \
                        if (errno > 0) {                                        \
                                on_error;                                       \
                        }                                                       \
                        break;                                                  \
                } else if (lb_dot_or_dot_dot(de->d_name)) {                     \
                        continue;                                               \
                } else

/* What a walk callback answers for an entry. */
enum {
        LB_WALK_NEXT = 0,               /* go on with the next entry */
        LB_WALK_DESCEND = 1,            /* the entry is a directory: walk into it first */
};

/*
 * Called for every entry of every directory of a walk: dfd is the open directory (for
 * fstatat()/openat() relative to it), dir_path its path ("" for "/"), de the entry, depth 0
 * for the entries of the top directory. Returns LB_WALK_NEXT, LB_WALK_DESCEND, or a negative
 * errno that ends the walk with it.
 */
typedef int (*lb_walk_fn)(void *userdata, int dfd, const char *dir_path, const struct dirent *de, unsigned depth);

/*
 * Walks the tree below dir depth first. A directory the callback descends into is opened
 * relative to its parent with O_NOFOLLOW (a symbolic link is never walked through); one that
 * vanished meanwhile is skipped. Descending below max_depth levels fails with -ELOOP: a tree
 * deeper than the caller expects is reported, not half-walked. A directory that cannot be
 * listed fails the walk: a count that is too small could hide chunks.
 */
int lb_walk(const char *dir, unsigned max_depth, lb_walk_fn fn, void *userdata);
