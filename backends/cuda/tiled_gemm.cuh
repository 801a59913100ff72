/* tiled_gemm.cuh — the shared-memory SGEMM every matrix product of the cuda backend runs on:
 * gemm itself and the three implicit-GEMM convolutions. An Op supplies how to read A (m, k)
 * and B (k, n) — from a strided matrix, or gathered from an image — and where a finished
 * element goes, so the tiling, the barriers and the split-K bookkeeping are written once.
 *
 * Index arithmetic stays out of the k-loop. Each element's address splits into a part that
 * depends only on its row of A (column of B) and a part that depends only on its k:
 *   ARow a_row(int row) const;  AK a_k(int kk) const;  float a(const ARow &, const AK &) const;
 *   BCol b_col(int col) const;  BK b_k(int kk) const;  float b(const BK &, const BCol &) const;
 *   void store(int row, int col, float acc) const;   // the epilogue
 * A thread loads the same rows and columns in every k-tile, so it decomposes them once before
 * the loop; the 16 k values of a tile are decomposed once per block, by 32 threads, into
 * shared memory (double-buffered, so the next tile's are ready while this one is multiplied).
 * The next tile is fetched into registers while the current one is multiplied. AK and BK must
 * be plain structs (they live in __shared__ arrays).
 * A_K_FASTEST / B_N_FASTEST say along which index consecutive memory lies, so consecutive
 * threads load consecutive addresses (coalesced) whichever way a matrix is stored. */
#ifndef CNB_TILED_GEMM_CUH
#define CNB_TILED_GEMM_CUH

#include "cuda_compat.h"
#include "cuda_plan.h"

/* Sums in fixed order: acc = fma(a, b, acc) over k, one k-tile after another, so a given
 * plan always gives the same bits (and exact integers stay exact). TM is the tile's height:
 * 64, or 32 when M <= 32 (a 64-row tile would be half empty). */
template <class Op, bool A_K_FASTEST, bool B_N_FASTEST, int TM>
__global__ void __launch_bounds__(CNB_TILE_THREADS)
    tiled_gemm_kernel(Op op, int M, int N, int K, int k_per_split, float *partial) {
    constexpr int MICRO_M = TM / 16;
    constexpr int A_LOADS = TM * CNB_TILE_K / CNB_TILE_THREADS;
    constexpr int B_LOADS = CNB_TILE_K * CNB_TILE_N / CNB_TILE_THREADS;
    /* As is stored transposed (k-major) so the inner loop reads a row of it per k. The +1
     * column staggers banks on the transposing store. */
    __shared__ float As[CNB_TILE_K][TM + 1];
    __shared__ float Bs[CNB_TILE_K][CNB_TILE_N + 1];
    __shared__ typename Op::AK ak_s[2][CNB_TILE_K];
    __shared__ typename Op::BK bk_s[2][CNB_TILE_K];

    const int tid = (int)threadIdx.x;
    const int tx = tid % 16, ty = tid / 16;
    const int m0 = (int)blockIdx.y * TM, n0 = (int)blockIdx.x * CNB_TILE_N;
    const int k_begin = (int)blockIdx.z * k_per_split;
    const long long slice_end = (long long)k_begin + k_per_split; /* may pass INT_MAX */
    const int k_end = slice_end < K ? (int)slice_end : K;

    /* This thread's load positions: the same in every k-tile. */
    int a_mm[A_LOADS], a_kk[A_LOADS], b_nn[B_LOADS], b_kk[B_LOADS];
    bool a_in[A_LOADS], b_in[B_LOADS];
    typename Op::ARow a_row[A_LOADS];
    typename Op::BCol b_col[B_LOADS];
    for (int l = 0; l < A_LOADS; l++) {
        const int e = tid + l * CNB_TILE_THREADS;
        a_mm[l] = A_K_FASTEST ? e / CNB_TILE_K : e % TM;
        a_kk[l] = A_K_FASTEST ? e % CNB_TILE_K : e / TM;
        a_in[l] = m0 + a_mm[l] < M;
        a_row[l] = op.a_row(a_in[l] ? m0 + a_mm[l] : 0);
    }
    for (int l = 0; l < B_LOADS; l++) {
        const int e = tid + l * CNB_TILE_THREADS;
        b_nn[l] = B_N_FASTEST ? e % CNB_TILE_N : e / CNB_TILE_K;
        b_kk[l] = B_N_FASTEST ? e / CNB_TILE_N : e % CNB_TILE_K;
        b_in[l] = n0 + b_nn[l] < N;
        b_col[l] = op.b_col(b_in[l] ? n0 + b_nn[l] : 0);
    }

    float acc[MICRO_M][CNB_TILE_MICRO];
    for (int i = 0; i < MICRO_M; i++)
        for (int j = 0; j < CNB_TILE_MICRO; j++) acc[i][j] = 0.0f;
    float a_next[A_LOADS], b_next[B_LOADS];

    /* The k parts of tile k0 into buffer buf: threads 0-15 for A, 16-31 for B. */
    auto k_parts = [&](int buf, int k0) {
        const int kk = tid % CNB_TILE_K, kg = k0 + kk < k_end ? k0 + kk : k_begin;
        if (tid < CNB_TILE_K)
            ak_s[buf][kk] = op.a_k(kg);
        else if (tid < 2 * CNB_TILE_K)
            bk_s[buf][kk] = op.b_k(kg);
    };
    /* Tile k0's elements into registers, from the k parts in buf. */
    auto fetch = [&](int buf, int k0) {
        for (int l = 0; l < A_LOADS; l++)
            a_next[l] = a_in[l] && k0 + a_kk[l] < k_end ? op.a(a_row[l], ak_s[buf][a_kk[l]])
                                                        : 0.0f;
        for (int l = 0; l < B_LOADS; l++)
            b_next[l] = b_in[l] && k0 + b_kk[l] < k_end ? op.b(bk_s[buf][b_kk[l]], b_col[l])
                                                        : 0.0f;
    };

    if (k_begin < k_end) k_parts(0, k_begin);
    __syncthreads();
    if (k_begin < k_end) fetch(0, k_begin);
    int buf = 0;
    for (int k0 = k_begin; k0 < k_end; k0 += CNB_TILE_K) {
        for (int l = 0; l < A_LOADS; l++) As[a_kk[l]][a_mm[l]] = a_next[l];
        for (int l = 0; l < B_LOADS; l++) Bs[b_kk[l]][b_nn[l]] = b_next[l];
        const int next = k0 + CNB_TILE_K; /* k <= INT_MAX - 32 (cnb_plan_gemm): no wrap */
        if (next < k_end) k_parts(buf ^ 1, next);
        __syncthreads();
        /* The next tile's loads are in flight while this one is multiplied. */
        if (next < k_end) fetch(buf ^ 1, next);
        for (int kk = 0; kk < CNB_TILE_K; kk++) {
            float ar[MICRO_M], br[CNB_TILE_MICRO];
            for (int i = 0; i < MICRO_M; i++) ar[i] = As[kk][ty + 16 * i];
            for (int j = 0; j < CNB_TILE_MICRO; j++) br[j] = Bs[kk][tx + 16 * j];
            for (int i = 0; i < MICRO_M; i++)
                for (int j = 0; j < CNB_TILE_MICRO; j++) acc[i][j] = fmaf(ar[i], br[j], acc[i][j]);
        }
        __syncthreads(); /* before the next k-tile overwrites As and Bs */
        buf ^= 1;
    }

    for (int i = 0; i < MICRO_M; i++) {
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
    cudaError_t e =
        p->tile_m == CNB_TILE_M_SMALL
            ? cnb_launch(tiled_gemm_kernel<Op, A_K_FASTEST, B_N_FASTEST, CNB_TILE_M_SMALL>, grid,
                         dim3(CNB_TILE_THREADS), s, op, p->m, p->n, p->k, p->k_per_split, part)
            : cnb_launch(tiled_gemm_kernel<Op, A_K_FASTEST, B_N_FASTEST, CNB_TILE_M>, grid,
                         dim3(CNB_TILE_THREADS), s, op, p->m, p->n, p->k, p->k_per_split, part);
    if (e != cudaSuccess || p->splits == 1) return e;
    return cnb_launch(split_k_reduce_kernel<Op>, dim3((unsigned)p->reduce_blocks),
                      dim3(CNB_EW_THREADS), s, op, (const float *)partial, p->m, p->n,
                      p->splits);
}

#endif /* CNB_TILED_GEMM_CUH */
