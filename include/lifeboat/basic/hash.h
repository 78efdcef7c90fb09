/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * Non-cryptographic hashing for spreading work, not for secrets: the inputs (EC2 ids) come
 * from AWS, and nothing is gained by making one hash value collide with another.
 *
 * Rendezvous (highest random weight) hashing: every node gives every item a weight from a
 * hash of (node, item); a node works through the items in the order of its weights, highest
 * first. Nodes that know nothing of each other then prefer different items, and an item's
 * position in one node's order tells nothing about its position in another's.
 */

/* 64-bit FNV-1a over len bytes, continuing from h (start with LB_FNV1A64_OFFSET). */
#define LB_FNV1A64_OFFSET UINT64_C(0xcbf29ce484222325)
uint64_t lb_fnv1a64(const void *data, size_t len, uint64_t h);

/* MurmurHash3's 64-bit finalizer (fmix64): a bijection under which every input bit flips
 * each output bit with a probability close to 1/2. */
uint64_t lb_mix64(uint64_t h);

/*
 * The rendezvous weight of item for node: fmix64(FNV-1a64(node "\0" item)). FNV-1a alone
 * mixes its last bytes only into the higher bits (one multiplication per byte carries
 * upwards only), and ids that differ in their last hex digit are the common case; the
 * finalizer spreads every input bit over the whole word. The NUL keeps ("ab", "c") apart
 * from ("a", "bc"). NULL strings count as "".
 */
uint64_t lb_rendezvous_weight(const char *node, const char *item);
