/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>

#include "lifeboat/boot/boot.h"

#include "boot-internal.h"

/* lifeboat boot, recovering a volume attached here, or giving it back; the manifest and owner tags. */

/* Records the end of a claim in the report; *ret (may be NULL) points at its entry. */
int boot_finish(struct boot *b, struct claim *c, enum lb_boot_outcome outcome, const char *reason,
                struct lb_boot_volume **ret);
/* Gives a claimed volume back: quarantined (when its content is suspect) or still dirty. */
int boot_give_back(struct boot *b, struct claim *c, bool suspect, const char *reason);
/* Recovers every claim in CLAIM_RECOVERING (attached here, at c->device) at the same time, on
 * a few threads: find its device, verify, mount, write the snippet; then, back on this thread,
 * remember them all in the manifest and mark their owner tags due, or give them back. Each ends
 * CLAIM_FINISHED. */
int boot_recover_attached(struct boot *b);
/* --dry-run: a volume an earlier run attached here is recovered already, or would be now. */
int boot_dry_run_resumed(struct boot *b, struct claim *c);
/* Tags this instance the owner of every volume recovered since the last call. */
int boot_tag_new_owners(struct boot *b);
/* Drops manifest entries of volumes no longer attached here. */
int boot_reconcile_manifest(struct boot *b);
/* Removes the fluentd snippets of volumes the manifest no longer holds. */
int boot_prune_snippets(struct boot *b);
