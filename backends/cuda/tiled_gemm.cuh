/* tiled_gemm.cuh — the shared-memory SGEMM every matrix product of the cuda backend runs on:
 * gemm itself and the three implicit-GEMM convolutions. An Op supplies how to read A (m, k)
 * and B (k, n) — from a strided matrix, or gathered from an image — and where a finished
 * element goes, so the tiling, the barriers and the split-K bookkeeping are written once.
 *
 * Op interface (device functions, all ints already bounds-checked by the caller):
 *   float a(int row, int kk) const;   float b(int kk, int col) const;
 *   void store(int row, int col, float acc) const;   // the epilogue
 * A_K_FASTEST / B_N_FASTEST say along which index consecutive memory lies, so consecutive
 * threads load consecutive addresses (coalesced) whichever way a matrix is stored. */
#ifndef CNB_TILED_GEMM_CUH
#define CNB_TILED_GEMM_CUH

#include "cuda_compat.h"
#include "cuda_plan.h"

/* Sums in fixed order: acc = fma(a, b, acc) over k, one k-tile after another, so a given
 * plan always gives the same bits (and exact integers stay exact). */
template <class Op, bool A_K_FASTEST, bool B_N_FASTEST>
__global__ void __launch_bounds__(CNB_TILE_THREADS)
    tiled_gemm_kernel(Op op, int M, int N, int K, int k_per_split, float *partial) {
    /* As is stored transposed (k-major) so the inner loop reads a row of it per k. The +1
     * column staggers banks on the transposing store. */
    __shared__ float As[CNB_TILE_K][CNB_TILE_M + 1];
    __shared__ float Bs[CNB_TILE_K][CNB_TILE_N + 1];

    const int tid = (int)threadIdx.x;
    const int tx = tid % 16, ty = tid / 16;
    const int m0 = (int)blockIdx.y * CNB_TILE_M, n0 = (int)blockIdx.x * CNB_TILE_N;
    const int k_begin = (int)blockIdx.z * k_per_split;
    const long long slice_end = (long long)k_begin + k_per_split; /* may pass INT_MAX */
    const int k_end = slice_end < K ? (int)slice_end : K;

    float acc[CNB_TILE_MICRO][CNB_TILE_MICRO];
    for (int i = 0; i < CNB_TILE_MICRO; i++)
        for (int j = 0; j < CNB_TILE_MICRO; j++) acc[i][j] = 0.0f;

    for (int k0 = k_begin; k0 < k_end; k0 += CNB_TILE_K) {
        for (int e = tid; e < CNB_TILE_M * CNB_TILE_K; e += CNB_TILE_THREADS) {
            int mm = A_K_FASTEST ? e / CNB_TILE_K : e % CNB_TILE_M;
            int kk = A_K_FASTEST ? e % CNB_TILE_K : e / CNB_TILE_M;
            int row = m0 + mm, kg = k0 + kk;
            As[kk][mm] = (row < M && kg < k_end) ? op.a(row, kg) : 0.0f;
        }
        for (int e = tid; e < CNB_TILE_K * CNB_TILE_N; e += CNB_TILE_THREADS) {
            int nn = B_N_FASTEST ? e % CNB_TILE_N : e / CNB_TILE_K;
            int kk = B_N_FASTEST ? e / CNB_TILE_N : e % CNB_TILE_K;
            int col = n0 + nn, kg = k0 + kk;
            Bs[kk][nn] = (col < N && kg < k_end) ? op.b(kg, col) : 0.0f;
        }
        __syncthreads();
        for (int kk = 0; kk < CNB_TILE_K; kk++) {
            float ar[CNB_TILE_MICRO], br[CNB_TILE_MICRO];
            for (int i = 0; i < CNB_TILE_MICRO; i++) ar[i] = As[kk][ty + 16 * i];
            for (int j = 0; j < CNB_TILE_MICRO; j++) br[j] = Bs[kk][tx + 16 * j];
            for (int i = 0; i < CNB_TILE_MICRO; i++)
                for (int j = 0; j < CNB_TILE_MICRO; j++) acc[i][j] = fmaf(ar[i], br[j], acc[i][j]);
        }
        __syncthreads(); /* before the next k-tile overwrites As and Bs */
    }

    for (int i = 0; i < CNB_TILE_MICRO; i++) {
        int row = m0 + ty + 16 * i;
        if (row >= M) continue;
        for (int j = 0; j < CNB_TILE_MICRO; j++) {
            int col = n0 + tx + 16 * j;
            if (col >= N) continue;
            if (partial)
                partial[((int)blockIdx.z * M + row) * N + col] = acc[i][j];
            else
                op.store(row, col, acc[i][j]);
        }
    }
}

/* Second pass of a split: out(row, col) = sum over slices in slice order, then the epilogue. */
template <class Op>
__global__ void split_k_reduce_kernel(Op op, const float *partial, int M, int N, int splits) {
    const int total = M * N;
    CNB_GRID_STRIDE(e64, total) {
        const int e = (int)e64;
        float sum = partial[e];
        for (int z = 1; z < splits; z++) sum += partial[z * total + e];
        op.store(e / N, e % N, sum);
    }
}

/* Runs the plan: one launch, or the split launch and its reduction. */
template <class Op, bool A_K_FASTEST, bool B_N_FASTEST>
static cudaError_t run_tiled_gemm(cudaStream_t s, const Op &op, const cnb_gemm_plan *p,
                                  float *partial) {
    dim3 grid((unsigned)p->grid_x, (unsigned)p->grid_y, (unsigned)p->splits);
    float *part = p->splits > 1 ? partial : (float *)0;
    cudaError_t e = cnb_launch(tiled_gemm_kernel<Op, A_K_FASTEST, B_N_FASTEST>, grid,
                               dim3(CNB_TILE_THREADS), s, op, p->m, p->n, p->k, p->k_per_split,
                               part);
    if (e != cudaSuccess || p->splits == 1) return e;
    return cnb_launch(split_k_reduce_kernel<Op>, dim3((unsigned)p->reduce_blocks),
                      dim3(CNB_EW_THREADS), s, op, (const float *)partial, p->m, p->n,
                      p->splits);
}

#endif /* CNB_TILED_GEMM_CUH */
