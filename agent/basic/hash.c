/* SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <string.h>

#include "lifeboat/basic/hash.h"

#define FNV1A64_PRIME UINT64_C(0x100000001b3)

uint64_t lb_fnv1a64(const void *data, size_t len, uint64_t h) {
        const unsigned char *p = data;
        for (size_t i = 0; i < len; i++) {
                h ^= p[i];
                h *= FNV1A64_PRIME;
        }
        return h;
}

uint64_t lb_mix64(uint64_t h) {
        h ^= h >> 33;
        h *= UINT64_C(0xff51afd7ed558ccd);
        h ^= h >> 33;
        h *= UINT64_C(0xc4ceb9fe1a85ec53);
        h ^= h >> 33;
        return h;
}

uint64_t lb_rendezvous_weight(const char *node, const char *item) {
        node = node ? node : "";
        item = item ? item : "";
        uint64_t h = lb_fnv1a64(node, strlen(node) + 1, LB_FNV1A64_OFFSET); /* with its NUL */
        h = lb_fnv1a64(item, strlen(item), h);
        return lb_mix64(h);
}
