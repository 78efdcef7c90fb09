/* SPDX-License-Identifier: MIT */
/* state/manifest: recovered.json. Whatever parses formats, and what it formats parses back to
 * the same entries and the same text. */
#include "lifeboat/state/manifest.h"
#include "fuzz.h"

static void check_equal(const struct lb_manifest *a, const struct lb_manifest *b) {
        fuzz_check(a->n == b->n);
        for (size_t i = 0; i < a->n; i++) {
                const struct lb_manifest_entry *x = &a->entries[i], *y = &b->entries[i];
                fuzz_check(streq(x->volume_id, y->volume_id) && streq(x->device, y->device));
                fuzz_check(streq(x->mount_path, y->mount_path) && streq(x->previous_owner, y->previous_owner));
                fuzz_check(streq(x->config_file, y->config_file) && streq(x->fs_uuid, y->fs_uuid));
                fuzz_check(x->recovered_at == y->recovered_at);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_manifest_ struct lb_manifest m = { 0 }, back = { 0 };
        if (size > LB_MANIFEST_MAX_BYTES || lb_manifest_parse((const char *) data, size, &m) < 0)
                return 0;
        fuzz_check(m.n <= LB_MANIFEST_MAX_ENTRIES);
        _cleanup_free_ char *text = NULL, *again = NULL;
        fuzz_check(lb_manifest_format(&m, &text) == 0);
        fuzz_check(lb_manifest_parse(text, strlen(text), &back) == 0);
        check_equal(&m, &back);
        fuzz_check(lb_manifest_format(&back, &again) == 0);
        fuzz_check(streq(text, again));
        return 0;
}
