/* test_compare.c — the agreement statistics of harness/engine/compare.c must catch planted errors (one
 * element changed, a NaN, an Inf, a scaled output, a NaN in the reference), flag a mostly-zero
 * reference as MISTRUSTED, and pass identical or rounding-noise outputs: a check that cannot fail
 * proves nothing, and neither does one that always fails. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"
#include "util.h"

#define N 10000
#define TOL 1e-5

/* A reference like a kernel output: uniform in [-1, 1), no exact zeros. */
static float *make_ref(uint64_t seed) {
    cnb_rng rng;
    cnb_rng_seed(&rng, seed);
    float *p = malloc(N * sizeof(float));
    cr_assert_not_null(p);
    for (int i = 0; i < N; i++) {
        p[i] = (float)(2.0 * cnb_rng_uniform(&rng) - 1.0);
        if (p[i] == 0.0f) p[i] = 0.25f;
    }
    return p;
}

static float *copy_of(const float *a) {
    float *p = malloc(N * sizeof(float));
    cr_assert_not_null(p);
    memcpy(p, a, N * sizeof(float));
    return p;
}

/* What cnb_compare_print_mismatches writes, as a string (caller frees). */
static char *printed(const float *got, const float *ref, size_t count, double point_tol) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    cnb_compare_print_mismatches(f, got, ref, count, point_tol, 5);
    fclose(f);
    return buf;
}

Test(compare, identical_arrays_pass_with_zero_error) {
    float *ref = make_ref(1), *got = copy_of(ref);
    cnb_compare_stats s;
    cnb_compare(got, ref, N, TOL, &s);
    cr_expect_eq(s.count, (size_t)N);
    cr_expect_eq(s.rel_l2, 0.0, "rel_l2 %g", s.rel_l2);
    cr_expect_eq(s.max_abs, 0.0, "max_abs %g", s.max_abs);
    cr_expect_eq(s.max_rel, 0.0, "max_rel %g", s.max_rel);
    cr_expect_eq(s.mismatches, 0u, "mismatches %zu", s.mismatches);
    cr_expect_eq(s.nonfinite, 0u);
    cr_expect(cnb_compare_passed(&s, TOL), "identical arrays must pass");
    cr_expect(!cnb_compare_mistrusted(&s), "a reference without zeros is not mistrusted");
    char *out = printed(got, ref, N, TOL);
    cr_expect_str_empty(out, "nothing to print for identical arrays, got '%s'", out);
    free(out), free(ref), free(got);
}

/* One-ulp noise on every element, as a different summation order would leave: must pass. */
Test(compare, rounding_noise_passes) {
    float *ref = make_ref(2), *got = copy_of(ref);
    for (int i = 0; i < N; i++) got[i] = nextafterf(got[i], i % 2 ? INFINITY : -INFINITY);
    cnb_compare_stats s;
    cnb_compare(got, ref, N, TOL, &s);
    cr_expect_gt(s.rel_l2, 0.0, "noise must be seen: rel_l2 %g", s.rel_l2);
    cr_expect_lt(s.rel_l2, 1e-6, "one ulp is ~6e-8 relative, rel_l2 %g", s.rel_l2);
    cr_expect(cnb_compare_passed(&s, TOL), "rounding noise must pass at %g", TOL);
    cr_expect_eq(s.mismatches, 0u, "mismatches %zu", s.mismatches);
    free(ref), free(got);
}

Test(compare, one_changed_element_is_caught_and_located) {
    float *ref = make_ref(3), *got = copy_of(ref);
    const size_t at = 4321;
    got[at] += 1.0f;
    cnb_compare_stats s;
    cnb_compare(got, ref, N, TOL, &s);
    cr_expect(!cnb_compare_passed(&s, TOL), "a changed element must fail (rel_l2 %g)", s.rel_l2);
    cr_expect_eq(s.mismatches, 1u, "mismatches %zu, expected 1", s.mismatches);
    cr_expect_eq(s.max_abs_index, at, "max_abs_index %zu, expected %zu", s.max_abs_index, at);
    cr_expect(fabs(s.max_abs - 1.0) < 1e-6, "max_abs %g, expected 1", s.max_abs);
    cr_expect(fabs(s.mismatch_share - 1.0 / N) < 1e-12, "mismatch_share %g", s.mismatch_share);
    char *out = printed(got, ref, N, TOL);
    char want[32];
    snprintf(want, sizeof want, "[%zu] expected", at);
    cr_expect(strstr(out, want) != NULL, "printout '%s' does not show index %zu", out, at);
    free(out), free(ref), free(got);
}

Test(compare, nan_and_inf_in_output_are_caught) {
    const float bad[2] = {NAN, INFINITY};
    for (int k = 0; k < 2; k++) {
        float *ref = make_ref(4), *got = copy_of(ref);
        got[17] = bad[k];
        cnb_compare_stats s;
        cnb_compare(got, ref, N, TOL, &s);
        cr_expect_eq(s.nonfinite, 1u, "%g: nonfinite %zu", bad[k], s.nonfinite);
        cr_expect(!cnb_compare_passed(&s, TOL), "%g in the output must fail", bad[k]);
        cr_expect(isinf(s.rel_l2), "%g: rel_l2 %g, expected inf", bad[k], s.rel_l2);
        cr_expect_geq(s.mismatches, 1u, "%g: mismatches %zu", bad[k], s.mismatches);
        char *out = printed(got, ref, N, TOL);
        cr_expect(strstr(out, "[17]") != NULL, "%g: printout '%s' misses index 17", bad[k], out);
        free(out), free(ref), free(got);
    }
}

/* A NaN in the reference means the check itself is broken: it must not pass, and the point must
 * count as (and print as) a mismatch. */
Test(compare, nan_in_reference_fails_and_is_listed) {
    float *ref = make_ref(5), *got = copy_of(ref);
    ref[99] = NAN;
    cnb_compare_stats s;
    cnb_compare(got, ref, N, TOL, &s);
    cr_expect(!cnb_compare_passed(&s, TOL), "NaN in the reference must not pass (rel_l2 %g)",
              s.rel_l2);
    cr_expect_eq(s.mismatches, 1u, "mismatches %zu, expected 1", s.mismatches);
    char *out = printed(got, ref, N, TOL);
    cr_expect(strstr(out, "[99]") != NULL, "printout '%s' misses index 99", out);
    free(out), free(ref), free(got);
}

/* A uniformly scaled output (a wrong alpha, a missing 1/n) is caught by rel_l2, which equals
 * the scale error exactly. */
Test(compare, scaled_output_is_caught_with_the_right_error) {
    float *ref = make_ref(6), *got = copy_of(ref);
    for (int i = 0; i < N; i++) got[i] = ref[i] * 1.001f;
    cnb_compare_stats s;
    cnb_compare(got, ref, N, TOL, &s);
    cr_expect(fabs(s.rel_l2 - 1e-3) < 1e-5, "rel_l2 %g, expected 1e-3", s.rel_l2);
    cr_expect(fabs(s.max_rel - 1e-3) < 1e-5, "max_rel %g, expected 1e-3", s.max_rel);
    cr_expect(!cnb_compare_passed(&s, TOL), "a 0.1%% scale error must fail at %g", TOL);
    cr_expect(cnb_compare_passed(&s, 1e-2), "but pass at 1e-2");
    free(ref), free(got);
}

/* benchdnn's rule: over 30% zeros in the reference is MISTRUSTED, whatever the error. */
Test(compare, mostly_zero_reference_is_mistrusted) {
    float *ref = make_ref(7), *got;
    for (int i = 0; i < N; i++)
        if (i % 10 < 4) ref[i] = 0.0f; /* 40% zeros */
    got = copy_of(ref);
    cnb_compare_stats s;
    cnb_compare(got, ref, N, TOL, &s);
    cr_expect(fabs(s.zero_share - 0.4) < 1e-12, "zero_share %g, expected 0.4", s.zero_share);
    cr_expect(cnb_compare_mistrusted(&s), "40%% zeros must be mistrusted");

    for (int i = 0; i < N; i++) ref[i] = i % 10 < 2 ? 0.0f : 0.5f; /* 20% zeros */
    cnb_compare(ref, ref, N, TOL, &s);
    cr_expect(!cnb_compare_mistrusted(&s), "20%% zeros is not mistrusted (zero_share %g)",
              s.zero_share);

    for (int i = 0; i < N; i++) ref[i] = 0.0f; /* all zeros: error is absolute, still mistrusted */
    for (int i = 0; i < N; i++) got[i] = 0.0f;
    got[5] = 1e-3f;
    cnb_compare(got, ref, N, TOL, &s);
    cr_expect(cnb_compare_mistrusted(&s), "an all-zero reference must be mistrusted");
    cr_expect(fabs(s.rel_l2 - 1e-3) < 1e-9, "all-zero reference: rel_l2 is the absolute L2 "
              "error, got %g", s.rel_l2);
    cr_expect(!cnb_compare_passed(&s, TOL), "a 1e-3 error on a zero reference must fail");
    free(ref), free(got);
}

/* Ten elements off by 1% out of a hundred: share, largest error and its index. */
Test(compare, mismatch_share_and_largest_error) {
    float ref[100], got[100];
    for (int i = 0; i < 100; i++) ref[i] = got[i] = 2.0f + (float)i;
    for (int i = 0; i < 100; i += 10) got[i] = ref[i] * 1.01f;
    got[50] = ref[50] * 1.5f; /* the largest */
    cnb_compare_stats s;
    cnb_compare(got, ref, 100, 1e-3, &s);
    cr_expect_eq(s.mismatches, 10u, "mismatches %zu", s.mismatches);
    cr_expect(fabs(s.mismatch_share - 0.1) < 1e-12, "mismatch_share %g", s.mismatch_share);
    cr_expect_eq(s.max_abs_index, 50u, "max_abs_index %zu", s.max_abs_index);
    cr_expect(fabs(s.max_rel - 0.5) < 1e-6, "max_rel %g", s.max_rel);
    cr_expect(!cnb_compare_passed(&s, TOL));
}
