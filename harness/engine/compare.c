/* compare.c — agreement statistics between a backend's output and the reference's. */
#include "compare.h"

#include <math.h>

/* One pass for both comparisons. Plain: a non-finite value where the reference is finite is a
 * mismatch. Exact non-finite positions: NaN and Inf must stand where the reference has them. */
static void compare_pass(const float *got, const float *ref, size_t count, double point_tol,
                         int nonfinite_exact, cnb_compare_stats *s) {
    double diff2 = 0.0, ref2 = 0.0;
    *s = (cnb_compare_stats){.count = count};
    size_t zeros = 0;
    for (size_t i = 0; i < count; i++) {
        double g = got[i], r = ref[i];
        if (r == 0.0) zeros++;
        int skip = nonfinite_exact ? !isfinite(g) || !isfinite(r) : !isfinite(g) && isfinite(r);
        if (skip) {
            if (!nonfinite_exact || !cnb_compare_point_same(got[i], ref[i], point_tol)) {
                s->nonfinite++;
                s->mismatches++;
            }
            continue;
        }
        double d = fabs(g - r);
        diff2 += d * d;
        ref2 += r * r;
        if (d > s->max_abs) {
            s->max_abs = d;
            s->max_abs_index = i;
        }
        if (r != 0.0 && d / fabs(r) > s->max_rel) s->max_rel = d / fabs(r);
        /* Written as !(d <= lim) so a NaN difference (a NaN in the reference) counts too. */
        if (!(d <= point_tol * fmax(1.0, fabs(r)))) s->mismatches++;
    }
    s->rel_l2 = ref2 > 0.0 ? sqrt(diff2) / sqrt(ref2) : sqrt(diff2);
    if (s->nonfinite && !nonfinite_exact) s->rel_l2 = INFINITY;
    s->mismatch_share = count ? (double)s->mismatches / (double)count : 0.0;
    s->zero_share = count ? (double)zeros / (double)count : 0.0;
}

void cnb_compare(const float *got, const float *ref, size_t count, double point_tol,
                 cnb_compare_stats *s) {
    compare_pass(got, ref, count, point_tol, 0, s);
}

int cnb_compare_point_same(float got, float ref, double point_tol) {
    if (isnan(ref) || isnan(got)) return isnan(ref) && isnan(got);
    if (isinf(ref) || isinf(got)) return got == ref;
    return fabs((double)got - ref) <= point_tol * fmax(1.0, fabs((double)ref));
}

void cnb_compare_nonfinite(const float *got, const float *ref, size_t count, double point_tol,
                           cnb_compare_stats *s) {
    compare_pass(got, ref, count, point_tol, 1, s);
}

int cnb_compare_mistrusted(const cnb_compare_stats *s) {
    return s->zero_share > CNB_MISTRUST_ZERO_SHARE;
}

int cnb_compare_passed(const cnb_compare_stats *s, double rel_l2_tol) {
    return s->nonfinite == 0 && s->rel_l2 <= rel_l2_tol;
}

void cnb_compare_print_mismatches(FILE *out, const float *got, const float *ref, size_t count,
                                  double point_tol, int limit) {
    int shown = 0;
    for (size_t i = 0; i < count && shown < limit; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        int bad = !isfinite(got[i]) || !(d <= point_tol * fmax(1.0, fabs((double)ref[i])));
        if (!bad) continue;
        fprintf(out, "  [%zu] expected %.9g got %.9g (diff %.3g)\n", i, ref[i], got[i], d);
        shown++;
    }
}
