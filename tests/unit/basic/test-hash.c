/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lifeboat/basic/hash.h"
#include "lifeboat/basic/macro.h"

/* Ids as EC2 makes them ("i-" / "vol-" and 17 hex digits), from a fixed pseudo-random
 * sequence (splitmix64), so every run of the test sees the same ones. */
static uint64_t seq_state = UINT64_C(0x6c696665626f6174);

static uint64_t seq_next(void) {
        uint64_t z = (seq_state += UINT64_C(0x9e3779b97f4a7c15));
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

static void make_id(char *buf, size_t size, const char *prefix) {
        uint64_t a = seq_next(), b = seq_next();
        (void) snprintf(buf, size, "%s0%01x%015llx", prefix, (unsigned) (a & 0xf),
                        (unsigned long long) (b & UINT64_C(0xfffffffffffffff)));
}

#define ID_MAX 32
static char (*make_ids(size_t n, const char *prefix))[ID_MAX] {
        char (*ids)[ID_MAX] = calloc(n, ID_MAX);
        assert_non_null(ids);
        for (size_t i = 0; i < n; i++)
                make_id(ids[i], ID_MAX, prefix);
        return ids;
}

static void test_fnv1a64_vectors(void **state) {
        /* The reference values of the FNV authors' test suite. */
        assert_true(lb_fnv1a64("", 0, LB_FNV1A64_OFFSET) == UINT64_C(0xcbf29ce484222325));
        assert_true(lb_fnv1a64("a", 1, LB_FNV1A64_OFFSET) == UINT64_C(0xaf63dc4c8601ec8c));
        assert_true(lb_fnv1a64("foobar", 6, LB_FNV1A64_OFFSET) == UINT64_C(0x85944171f73967e8));
        /* Continuing from a state is hashing the concatenation. */
        assert_true(lb_fnv1a64("bar", 3, lb_fnv1a64("foo", 3, LB_FNV1A64_OFFSET)) ==
                    UINT64_C(0x85944171f73967e8));
        assert_true(lb_mix64(0) == 0);
}

static void test_weight_depends_on_both_in_order(void **state) {
        const char *i = "i-0b6c1d2e3f4a5b6c7", *v = "vol-0f9e8d7c6b5a49382";
        assert_true(lb_rendezvous_weight(i, v) == lb_rendezvous_weight(i, v));
        assert_true(lb_rendezvous_weight(i, v) != lb_rendezvous_weight(v, i));
        assert_true(lb_rendezvous_weight("ab", "c") != lb_rendezvous_weight("a", "bc"));
        assert_true(lb_rendezvous_weight(NULL, v) == lb_rendezvous_weight("", v));
        assert_true(lb_rendezvous_weight(i, "vol-0f9e8d7c6b5a49382") != lb_rendezvous_weight(i, "vol-0f9e8d7c6b5a49383"));
}

/* Every output bit is set in about half of the weights of a fleet's (instance, volume) pairs. */
static void test_bits_balanced(void **state) {
        enum { N = 20, V = 80 };
        char (*inst)[ID_MAX] = make_ids(N, "i-"), (*vol)[ID_MAX] = make_ids(V, "vol-");
        unsigned ones[64] = { 0 };
        for (size_t i = 0; i < N; i++)
                for (size_t v = 0; v < V; v++) {
                        uint64_t w = lb_rendezvous_weight(inst[i], vol[v]);
                        for (unsigned bit = 0; bit < 64; bit++)
                                ones[bit] += (w >> bit) & 1;
                }
        /* 1600 samples: a share outside 45..55 % is 4 standard deviations off. */
        for (unsigned bit = 0; bit < 64; bit++) {
                if (ones[bit] < N * V * 45 / 100 || ones[bit] > N * V * 55 / 100)
                        fail_msg("bit %u set in %u of %u weights", bit, ones[bit], N * V);
        }
        free(inst);
        free(vol);
}

/* Ids that differ in their last hex digit (the common case) get unrelated weights: about
 * half of the 64 bits differ, the fewest far from 0. */
static void test_avalanche_on_last_digit(void **state) {
        enum { PAIRS = 400 };
        char (*inst)[ID_MAX] = make_ids(PAIRS, "i-"), (*vol)[ID_MAX] = make_ids(PAIRS, "vol-");
        unsigned total = 0, fewest = 64;
        for (size_t k = 0; k < PAIRS; k++) {
                char other[ID_MAX];
                memcpy(other, vol[k], ID_MAX);
                size_t last = strlen(other) - 1;
                other[last] = other[last] == '0' ? '1' : '0';
                unsigned d = (unsigned) __builtin_popcountll(lb_rendezvous_weight(inst[k], vol[k]) ^
                                                             lb_rendezvous_weight(inst[k], other));
                total += d;
                fewest = MIN(fewest, d);
                /* And the same for the instance id. */
                memcpy(other, inst[k], ID_MAX);
                last = strlen(other) - 1;
                other[last] = other[last] == 'a' ? 'b' : 'a';
                d = (unsigned) __builtin_popcountll(lb_rendezvous_weight(inst[k], vol[k]) ^
                                                    lb_rendezvous_weight(other, vol[k]));
                total += d;
                fewest = MIN(fewest, d);
        }
        double mean = (double) total / (2 * PAIRS);
        if (mean < 31.0 || mean > 33.0 || fewest < 14)
                fail_msg("flipping one digit changes %.2f bits on average, %u at least", mean, fewest);
        free(inst);
        free(vol);
}

static size_t top_choice(const char *node, char (*items)[ID_MAX], size_t n) {
        size_t best = 0;
        for (size_t v = 1; v < n; v++)
                if (lb_rendezvous_weight(node, items[v]) > lb_rendezvous_weight(node, items[best]))
                        best = v;
        return best;
}

/* Many instances spread their first choices evenly over the volumes (chi-square test). */
static void test_first_choices_spread(void **state) {
        enum { N = 2000, V = 40 };
        char (*inst)[ID_MAX] = make_ids(N, "i-"), (*vol)[ID_MAX] = make_ids(V, "vol-");
        unsigned count[V] = { 0 };
        for (size_t i = 0; i < N; i++)
                count[top_choice(inst[i], vol, V)]++;
        double expected = (double) N / V, chi2 = 0;
        for (size_t v = 0; v < V; v++)
                chi2 += ((double) count[v] - expected) * ((double) count[v] - expected) / expected;
        /* 39 degrees of freedom: mean 39, standard deviation 8.8; 80 is beyond 4.5 of them. */
        if (chi2 > 80.0)
                fail_msg("first choices are uneven: chi-square %.1f over %d volumes", chi2, V);
        free(inst);
        free(vol);
}

static int by_weight_desc(const void *a, const void *b) {
        const uint64_t *x = a, *y = b;
        return x[0] < y[0] ? 1 : x[0] > y[0] ? -1 : 0;
}

/* N instances each attach the first 4 of 4N volumes in their own order, all at once: a volume
 * chosen by k > 1 instances costs k - 1 lost attaches. With independent orders k is about
 * Poisson(1), so about 4N/e ~ 1.5 N are lost; with one shared order 4 (N - 1). */
static unsigned first_wave_losses(size_t n_inst) {
        size_t n_vol = 4 * n_inst;
        char (*inst)[ID_MAX] = make_ids(n_inst, "i-"), (*vol)[ID_MAX] = make_ids(n_vol, "vol-");
        unsigned *chosen = calloc(n_vol, sizeof *chosen);
        uint64_t (*order)[2] = calloc(n_vol, sizeof *order);
        assert_non_null(chosen);
        assert_non_null(order);
        for (size_t i = 0; i < n_inst; i++) {
                for (size_t v = 0; v < n_vol; v++) {
                        order[v][0] = lb_rendezvous_weight(inst[i], vol[v]);
                        order[v][1] = v;
                }
                qsort(order, n_vol, sizeof *order, by_weight_desc);
                for (size_t k = 0; k < 4; k++)
                        chosen[order[k][1]]++;
        }
        unsigned lost = 0;
        for (size_t v = 0; v < n_vol; v++)
                lost += chosen[v] > 1 ? chosen[v] - 1 : 0;
        free(order);
        free(chosen);
        free(inst);
        free(vol);
        return lost;
}

static void test_fleet_first_wave_collides_rarely(void **state) {
        for (size_t n = 10; n <= 40; n += 10) {
                unsigned lost = first_wave_losses(n);
                unsigned shared_order = 4 * (unsigned) (n - 1);
                if (lost > 2 * n || lost * 2 > shared_order)
                        fail_msg("%zu instances lose %u attaches in the first wave (one shared order: %u)", n, lost,
                                 shared_order);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fnv1a64_vectors),
                cmocka_unit_test(test_weight_depends_on_both_in_order),
                cmocka_unit_test(test_bits_balanced),
                cmocka_unit_test(test_avalanche_on_last_digit),
                cmocka_unit_test(test_first_choices_spread),
                cmocka_unit_test(test_fleet_first_wave_collides_rarely),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
