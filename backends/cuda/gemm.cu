/* gemm.cu — row-major C = alpha op(A) op(B) + beta C on the tiled SGEMM, for the linear
 * layers. Each transpose case gets its own instantiation, so loads stay coalesced: consecutive
 * threads walk the stored matrix along its rows whichever way it is used. */
#include <math.h>

#include "cuda_kernels.h"
#include "tiled_gemm.cuh"

namespace {

template <bool TRANS_A, bool TRANS_B>
struct GemmOp {
    const float *pa, *pb;
    float *pc;
    int lda, ldb, ldc;
    float alpha, beta;
    /* op(A) (m, k): A stored (m, k), or (k, m) when transposed; op(B) (k, n): B stored
     * (k, n), or (n, k) when transposed. Each address is a row (column) offset plus a k
     * offset (tiled_gemm.cuh). */
    struct Offset {
        int at;
    };
    typedef Offset ARow;
    typedef Offset AK;
    typedef Offset BK;
    typedef Offset BCol;
    __device__ ARow a_row(int row) const { return Offset{TRANS_A ? row : row * lda}; }
    __device__ AK a_k(int kk) const { return Offset{TRANS_A ? kk * lda : kk}; }
    __device__ float a(const ARow &r, const AK &k) const { return pa[r.at + k.at]; }
    __device__ BK b_k(int kk) const { return Offset{TRANS_B ? kk : kk * ldb}; }
    __device__ BCol b_col(int col) const { return Offset{TRANS_B ? col * ldb : col}; }
    __device__ float b(const BK &k, const BCol &c) const { return pb[k.at + c.at]; }
    /* BLAS semantics: with beta == 0, C is written without being read (it may be NaN). */
    __device__ void store(int row, int col, float acc) const {
        float *out = pc + row * ldc + col;
        *out = beta == 0.0f ? alpha * acc : alpha * acc + beta * *out;
    }
};

template <bool TRANS_A, bool TRANS_B>
cudaError_t run(cudaStream_t s, const cnb_gemm_plan *plan, float *partial, float alpha,
                const float *a, int lda, const float *b, int ldb, float beta, float *c,
                int ldc) {
    GemmOp<TRANS_A, TRANS_B> op{a, b, c, lda, ldb, ldc, alpha, beta};
    /* Stored A is contiguous along k unless transposed; stored B along n unless transposed. */
    return run_tiled_gemm<GemmOp<TRANS_A, TRANS_B>, !TRANS_A, !TRANS_B>(s, op, plan, partial);
}

} // namespace

extern "C" cudaError_t cnbk_gemm(cudaStream_t s, const cnb_gemm_plan *plan, float *partial,
                                 int trans_a, int trans_b, float alpha, const float *a, int lda,
                                 const float *b, int ldb, float beta, float *c, int ldc) {
    if (!trans_a && !trans_b)
        return run<false, false>(s, plan, partial, alpha, a, lda, b, ldb, beta, c, ldc);
    if (!trans_a && trans_b)
        return run<false, true>(s, plan, partial, alpha, a, lda, b, ldb, beta, c, ldc);
    if (trans_a && !trans_b)
        return run<true, false>(s, plan, partial, alpha, a, lda, b, ldb, beta, c, ldc);
    return run<true, true>(s, plan, partial, alpha, a, lda, b, ldb, beta, c, ldc);
}
