/* gemm.c — row-major C = alpha * op(A) * op(B) + beta * C, the linear layers' kernel: straight
 * to cblas_sgemm after the argument checks. With beta == 0, C is written without being read (it
 * may hold garbage or NaN), as in BLAS. */
#include <cblas.h>

#include "blas_backend.h"

/* C is (m, n) with row stride ldc. op(A) is (m, k): A is stored (m, k), or (k, m) when trans_a.
 * op(B) is (k, n): B is stored (k, n), or (n, k) when trans_b. */
cnb_status blas_gemm(cnb_context *ctx, int trans_a, int trans_b, int m, int n, int k, float alpha,
                     const float *a, int lda, const float *b, int ldb, float beta, float *c,
                     int ldc) {
    BLAS_CHECK_CTX(ctx);
    if ((trans_a != 0 && trans_a != 1) || (trans_b != 0 && trans_b != 1))
        return blas_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                         "gemm: trans_a=%d, trans_b=%d must each be 0 or 1", trans_a, trans_b);
    BLAS_CHECK_POSITIVE(ctx, "gemm", m);
    BLAS_CHECK_POSITIVE(ctx, "gemm", n);
    BLAS_CHECK_POSITIVE(ctx, "gemm", k);
    BLAS_CHECK_PTR(ctx, "gemm", a);
    BLAS_CHECK_PTR(ctx, "gemm", b);
    BLAS_CHECK_PTR(ctx, "gemm", c);
    int a_cols = trans_a ? m : k, b_cols = trans_b ? k : n;
    if (lda < a_cols)
        return blas_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                         "gemm: lda=%d is less than the %d columns of A as stored", lda, a_cols);
    if (ldb < b_cols)
        return blas_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                         "gemm: ldb=%d is less than the %d columns of B as stored", ldb, b_cols);
    if (ldc < n)
        return blas_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                         "gemm: ldc=%d is less than the %d columns of C", ldc, n);
    blas_apply_threads(ctx);
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c,
                ldc);
    return CNB_OK;
}
