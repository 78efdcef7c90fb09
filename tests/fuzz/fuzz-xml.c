/* SPDX-License-Identifier: MIT */
/* basic/xml: any bytes into the element tree, which is then walked whole. */
#include "lifeboat/basic/xml.h"
#include "fuzz.h"

static size_t walk(const struct lb_xml_node *n, unsigned depth) {
        size_t count = 0;
        for (; n; n = n->next) {
                fuzz_check(n->name && n->text);
                fuzz_check(depth == 0 || n->parent);
                count += 1 + strlen(n->text) + walk(n->first_child, depth + 1);
        }
        return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_xml_ struct lb_xml_node *root = NULL;
        if (lb_xml_parse((const char *) data, size, &root) < 0)
                return 0;
        (void) walk(root, 0);
        (void) lb_xml_path(root, "Errors/Error/Code");
        (void) lb_xml_child_text(root, "requestId");
        return 0;
}
