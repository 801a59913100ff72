/* gemm.c — row-major C = alpha * op(A) * op(B) + beta * C, the linear layers' kernel: cblas_sgemm
 * after the argument checks, split across the context's threads by blocks of C's columns (or
 * rows, when C is taller than wide), each block one single-threaded sgemm. Every element of C is
 * still one sgemm's dot product over all of k, so the split changes no result. With beta == 0,
 * C is written without being read (it may hold garbage or NaN), as in BLAS. */
#include <cblas.h>

#include "blas_backend.h"

/* Below this many multiply-adds a second thread costs more to wake than it saves. */
#define GEMM_SPLIT_MIN_MACS ((size_t)1 << 20)
/* Column blocks are whole multiples of this many floats (a cache line, and OpenBLAS's widest
 * micro-tile on this CPU), so no two threads write the same line of C. */
#define GEMM_COLUMN_ALIGN 16

typedef struct {
    int trans_a, trans_b, m, n, k, lda, ldb, ldc, by_rows;
    float alpha, beta;
    const float *a, *b;
    float *c;
} gemm_job;

/* Items are rows of C (by_rows) or column blocks of GEMM_COLUMN_ALIGN. */
static void gemm_range(void *arg, int thread, size_t lo, size_t hi) {
    (void)thread;
    const gemm_job *j = arg;
    if (j->by_rows) {
        const int r0 = (int)lo, rows = (int)(hi - lo);
        /* rows r0.. of op(A): rows of A, or columns of A when it is transposed */
        const float *a = j->a + (j->trans_a ? (size_t)r0 : (size_t)r0 * j->lda);
        cblas_sgemm(CblasRowMajor, j->trans_a ? CblasTrans : CblasNoTrans,
                    j->trans_b ? CblasTrans : CblasNoTrans, rows, j->n, j->k, j->alpha, a, j->lda,
                    j->b, j->ldb, j->beta, j->c + (size_t)r0 * j->ldc, j->ldc);
        return;
    }
    const int c0 = (int)lo * GEMM_COLUMN_ALIGN;
    const int c1 = (int)hi * GEMM_COLUMN_ALIGN < j->n ? (int)hi * GEMM_COLUMN_ALIGN : j->n;
    /* columns c0.. of op(B): columns of B, or rows of B when it is transposed */
    const float *b = j->b + (j->trans_b ? (size_t)c0 * j->ldb : (size_t)c0);
    cblas_sgemm(CblasRowMajor, j->trans_a ? CblasTrans : CblasNoTrans,
                j->trans_b ? CblasTrans : CblasNoTrans, j->m, c1 - c0, j->k, j->alpha, j->a,
                j->lda, b, j->ldb, j->beta, j->c + c0, j->ldc);
}

/* C is (m, n) with row stride ldc. op(A) is (m, k): A is stored (m, k), or (k, m) when trans_a.
 * op(B) is (k, n): B is stored (k, n), or (n, k) when trans_b. */
cnb_status blas_gemm(cnb_context *ctx, int trans_a, int trans_b, int m, int n, int k, float alpha,
                     const float *a, int lda, const float *b, int ldb, float beta, float *c,
                     int ldc) {
    CNB_CHECK_CTX(ctx);
    cnb_status st = cnb_check_gemm("gemm", trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc,
                                   ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    blas_keep_openblas_serial();
    gemm_job j = {.trans_a = trans_a, .trans_b = trans_b, .m = m, .n = n, .k = k, .lda = lda,
                  .ldb = ldb, .ldc = ldc, .alpha = alpha, .beta = beta, .a = a, .b = b, .c = c,
                  .by_rows = m > n};
    const size_t macs = (size_t)m * (size_t)n * (size_t)k;
    const size_t items = j.by_rows ? (size_t)m : ((size_t)n + GEMM_COLUMN_ALIGN - 1) / GEMM_COLUMN_ALIGN;
    const int parts = macs < GEMM_SPLIT_MIN_MACS ? 1 : blas_team_parts(ctx, items, 1);
    blas_parallel(ctx, items, parts, gemm_range, &j);
    return CNB_OK;
}
