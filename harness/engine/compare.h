/* compare.h — how two tensors are said to agree (DESIGN.md §4): relative L2 error, largest
 * point-wise absolute and relative differences, mismatch share, and the mistrust rule. */
#ifndef CNB_COMPARE_H
#define CNB_COMPARE_H

#include <stddef.h>
#include <stdio.h>

typedef struct cnb_compare_stats {
    size_t count;
    double rel_l2;            /* ||got - ref||_2 / ||ref||_2 (or ||got - ref||_2 when ref is 0) */
    double max_abs;           /* largest |got - ref| */
    double max_rel;           /* largest |got - ref| / |ref| over points where ref != 0 */
    size_t max_abs_index;
    size_t mismatches;        /* points with |got - ref| > point_tol * max(1, |ref|) */
    double mismatch_share;    /* mismatches / count */
    double zero_share;        /* share of reference points that are exactly 0 */
    size_t nonfinite;         /* NaN or Inf in got where ref is finite */
} cnb_compare_stats;

/* point_tol decides which points count as mismatches (for the share and the listing). */
void cnb_compare(const float *got, const float *ref, size_t count, double point_tol,
                 cnb_compare_stats *s);

/* The same where non-finite values are expected (benchdnn's rule): a point whose reference or
 * output is NaN or +-Inf must be the same in the other (NaN for NaN, Inf of the same sign), else
 * it counts in `nonfinite` and as a mismatch; rel_l2, max_abs, max_rel are taken over the points
 * finite in both. */
void cnb_compare_nonfinite(const float *got, const float *ref, size_t count, double point_tol,
                           cnb_compare_stats *s);
/* 1 when got agrees with ref at one point under cnb_compare_nonfinite's rule. */
int cnb_compare_point_same(float got, float ref, double point_tol);

/* benchdnn's rule: a check whose reference is over 30% zeros proves little. */
#define CNB_MISTRUST_ZERO_SHARE 0.30
int cnb_compare_mistrusted(const cnb_compare_stats *s);

/* A pass needs finite output and rel_l2 <= tol. */
int cnb_compare_passed(const cnb_compare_stats *s, double rel_l2_tol);

/* Print up to `limit` mismatching points as "  [index] expected E got G (diff D)". */
void cnb_compare_print_mismatches(FILE *out, const float *got, const float *ref, size_t count,
                                  double point_tol, int limit);

#endif
