/* gemm.c — row-major C = alpha * op(A) * op(B) + beta * C with double accumulation, the linear
 * layers' kernel. With beta == 0, C is written without being read (it may hold garbage or NaN),
 * as in BLAS. */
#include "naive.h"

/* C is (m, n) with row stride ldc. op(A) is (m, k): A is stored (m, k), or (k, m) when trans_a.
 * op(B) is (k, n): B is stored (k, n), or (n, k) when trans_b. */
cnb_status naive_gemm(cnb_context *ctx, int trans_a, int trans_b, int m, int n, int k, float alpha,
                      const float *a, int lda, const float *b, int ldb, float beta, float *c,
                      int ldc) {
    NAIVE_CHECK_CTX(ctx);
    if ((trans_a != 0 && trans_a != 1) || (trans_b != 0 && trans_b != 1))
        return naive_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                          "gemm: trans_a=%d, trans_b=%d must each be 0 or 1", trans_a, trans_b);
    NAIVE_CHECK_POSITIVE(ctx, "gemm", m);
    NAIVE_CHECK_POSITIVE(ctx, "gemm", n);
    NAIVE_CHECK_POSITIVE(ctx, "gemm", k);
    NAIVE_CHECK_PTR(ctx, "gemm", a);
    NAIVE_CHECK_PTR(ctx, "gemm", b);
    NAIVE_CHECK_PTR(ctx, "gemm", c);
    int a_cols = trans_a ? m : k, b_cols = trans_b ? k : n;
    if (lda < a_cols)
        return naive_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                          "gemm: lda=%d is less than the %d columns of A as stored", lda, a_cols);
    if (ldb < b_cols)
        return naive_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                          "gemm: ldb=%d is less than the %d columns of B as stored", ldb, b_cols);
    if (ldc < n)
        return naive_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                          "gemm: ldc=%d is less than the %d columns of C", ldc, n);

    double *acc; /* (n): one row of op(A) * op(B) */
    cnb_status st = naive_scratch(ctx, (size_t)n, &acc);
    if (st != CNB_OK) return st;

    for (int i = 0; i < m; i++) {
        if (!trans_b) {
            /* i-k-j order: a row of B at a time, unit stride, into the row of doubles. */
            for (int j = 0; j < n; j++) acc[j] = 0.0;
            for (int p = 0; p < k; p++) {
                double av = trans_a ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                const float *brow = b + (size_t)p * ldb;
                for (int j = 0; j < n; j++) acc[j] += av * brow[j];
            }
        } else {
            /* B's rows are op(B)'s columns: each C value is a dot product of two length-k
             * vectors (unit stride in B, and in A too when A is not transposed). */
            for (int j = 0; j < n; j++) {
                const float *bcol = b + (size_t)j * ldb;
                double sum = 0.0;
                for (int p = 0; p < k; p++) {
                    double av = trans_a ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                    sum += av * bcol[p];
                }
                acc[j] = sum;
            }
        }
        float *crow = c + (size_t)i * ldc;
        for (int j = 0; j < n; j++) {
            double prior = beta == 0.0f ? 0.0 : (double)beta * crow[j];
            crow[j] = (float)((double)alpha * acc[j] + prior);
        }
    }
    return CNB_OK;
}
