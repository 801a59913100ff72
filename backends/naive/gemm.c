/* gemm.c — row-major C = alpha * op(A) * op(B) + beta * C with double accumulation, the linear
 * layers' kernel. With beta == 0, C is written without being read (it may hold garbage or NaN),
 * as in BLAS. */
#include "naive.h"

/* C is (m, n) with row stride ldc. op(A) is (m, k): A is stored (m, k), or (k, m) when trans_a.
 * op(B) is (k, n): B is stored (k, n), or (n, k) when trans_b. */
cnb_status naive_gemm(cnb_context *ctx, int trans_a, int trans_b, int m, int n, int k, float alpha,
                      const float *a, int lda, const float *b, int ldb, float beta, float *c,
                      int ldc) {
    CNB_CHECK_CTX(ctx);
    cnb_status st = cnb_check_gemm("gemm", trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc,
                                   ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;

    double *acc; /* (n): one row of op(A) * op(B) */
    if ((st = naive_scratch(ctx, (size_t)n, &acc)) != CNB_OK) return st;

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
