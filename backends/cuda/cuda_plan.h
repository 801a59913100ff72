/* cuda_plan.h — the host-side decisions of the GPU backends, in plain C so that tests run them
 * on a machine without a device: argument validation, the launch geometry of every kernel
 * (tiles, grids, split-K, reduction blocks), and the index maps that turn the three
 * convolutions into implicit GEMMs. The maps are `static inline` and marked __host__ __device__
 * under nvcc, so the kernels, the CPU emulator and the tests all run the same code. */
#ifndef CNB_CUDA_PLAN_H
#define CNB_CUDA_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "cnb_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __CUDACC__
#define CNB_HD static inline __host__ __device__
#else
#define CNB_HD static inline
#endif

/* ---- validation: each returns CNB_OK, or writes one line that starts with fn into err ---- */

/* The ABI's rules (cnb_check_conv_desc in cnb_abi_check.h: every field positive, padding >= 0,
 * p and q equal to the formula in cnb_abi.h), and every tensor under 2^31 elements (the kernels
 * index with int; CNB_ERR_UNSUPPORTED beyond). */
cnb_status cnb_gpu_check_conv(const char *fn, const cnb_conv_desc *d, char *err, size_t len);
/* As above for pooling (cnb_check_pool_desc); max pooling also needs padding smaller than the
 * window. */
cnb_status cnb_gpu_check_pool(const char *fn, const cnb_pool_desc *d, char *err, size_t len);
/* trans in {0,1}, sizes positive, leading dimensions at least the stored row lengths, and the
 * last element of each matrix under 2^31. */
cnb_status cnb_gpu_check_gemm(int trans_a, int trans_b, int m, int n, int k, int lda, int ldb,
                              int ldc, char *err, size_t len);
cnb_status cnb_gpu_check_corr2d(int h, int w, int kh, int kw, char *err, size_t len);
/* n, c, hw positive and n*c*hw under 2^31. */
cnb_status cnb_gpu_check_nchw(const char *fn, int n, int c, int hw, char *err, size_t len);
cnb_status cnb_gpu_check_activation(const char *fn, int act, size_t count, char *err,
                                    size_t len);
cnb_status cnb_gpu_check_softmax(const char *fn, int n, int classes, char *err, size_t len);

/* ---- the tiled SGEMM shared by gemm and the three convolutions (tiled_gemm.cuh) ----
 * A block of 16x16 threads computes a 64x64 tile of C, each thread a 4x4 micro-tile at rows
 * ty + 16*i and columns tx + 16*j (so a warp's shared-memory reads and global stores are
 * consecutive), stepping through k 16 at a time. When m <= 32 the tile is 32 rows high (each
 * thread 2x4), so no half-empty tile is computed. */
#define CNB_TILE_M 64
#define CNB_TILE_M_SMALL 32
#define CNB_TILE_N 64
#define CNB_TILE_K 16
#define CNB_TILE_THREADS 256
#define CNB_TILE_MICRO 4     /* CNB_TILE_M / 16 */
#define CNB_MAX_SPLITS 64    /* split-K slices at most, for problems of three tiles or more */
/* One or two output tiles (conv1's weight gradient: 32x9 from k = 50,176) get up to twice the
 * SM count of slices instead: at 64 they ran 49 dependent k-steps on 64 of 132 SMs. */
#define CNB_FEW_TILES 2
#define CNB_GRID_YZ_MAX 65535

/* C (m, n) = A (m, k) * B (k, n) as the kernels run it. When the tiles alone would leave the
 * GPU mostly idle (few output tiles, long k, as in the weight gradients), k is cut into
 * `splits` slices of k_per_split: each slice writes its partial tile to scratch
 * (partial[(slice*m + row)*n + col]) and a second kernel adds the slices in slice order.
 * Fixed slices and a fixed order keep results bit-identical from run to run, without atomics. */
typedef struct cnb_gemm_plan {
    int m, n, k;
    int tile_m;          /* CNB_TILE_M, or CNB_TILE_M_SMALL when m <= 32 */
    int grid_x;          /* column tiles: ceil(n / CNB_TILE_N) */
    int grid_y;          /* row tiles: ceil(m / tile_m) */
    int splits;          /* grid z; 1 means no split and no scratch */
    int k_per_split;     /* a multiple of CNB_TILE_K; the last slice may be shorter */
    size_t partial_floats; /* scratch the split needs: splits*m*n, or 0 */
    int reduce_blocks;   /* blocks of CNB_EW_THREADS for the slice sum */
} cnb_gemm_plan;

/* sm_count: the device's multiprocessors (the split aims at two blocks per SM). k is at most
 * INT_MAX - 2*CNB_TILE_K (slice ends stay within int); beyond, CNB_ERR_UNSUPPORTED. */
cnb_status cnb_plan_gemm(cnb_gemm_plan *p, int m, int n, int k, int sm_count, char *err,
                         size_t len);

/* ---- element-wise and reduction kernels ---- */
#define CNB_EW_THREADS 256
#define CNB_EW_MAX_BLOCKS 8192   /* beyond this the kernels loop (grid-stride) */
#define CNB_REDUCE_THREADS 256   /* must be a power of two: tree reductions halve it */
#define CNB_REDUCE_MAX_BLOCKS 256 /* partials of a two-pass reduction: one block sums them */

/* A grid-stride loop over [0, total) with a 64-bit counter: with int, the step past an end
 * near 2^31 wraps negative and the loop runs on (signed overflow, undefined). The body
 * narrows it once (`const int e = (int)e64;`): e64 < total <= INT_MAX there, and 32-bit
 * division stays cheap. */
#define CNB_GRID_STRIDE(e64, total)                                                          \
    for (long long e64 = (long long)blockIdx.x * blockDim.x + threadIdx.x;                  \
         e64 < (long long)(total); e64 += (long long)gridDim.x * blockDim.x)
/* The same over one block's threads, stepping by step. */
#define CNB_BLOCK_STRIDE(e64, total, step)                                                   \
    for (long long e64 = threadIdx.x; e64 < (long long)(total); e64 += (step))

/* Blocks of `threads` for a grid-stride loop over count items: ceil(count/threads), at least
 * 1, at most max_blocks. */
int cnb_plan_blocks(size_t count, int threads, int max_blocks);
/* Most split-K slices a problem of `tiles` output tiles may use on sm_count SMs. */
int cnb_plan_max_splits(long long tiles, int sm_count);
/* Blocks of the first pass of a two-pass sum over count values (PReLU's slope gradient): a
 * function of count alone, so the summation order, and the result, never change. */
int cnb_plan_reduce_blocks(size_t count);

/* ---- implicit-GEMM convolution ---- */

/* A convolution descriptor with the products the index maps need, computed once on the host. */
typedef struct cnb_conv_geom {
    int n, c, h, w, k, r, s, stride_h, stride_w, pad_h, pad_w, p, q;
    int rs, crs, pq, hw;
} cnb_conv_geom;
void cnb_conv_geom_init(cnb_conv_geom *g, const cnb_conv_desc *d);

/* The GEMM each convolution is:
 *   forward:         y (k, n*p*q)     = W (k, c*r*s)       x  col(x) (c*r*s, n*p*q)
 *   backward data:   dx (c, n*h*w)    = W^T (c, k*r*s)     x  gather(dy) (k*r*s, n*h*w)
 *   backward filter: dW (k, c*r*s)    = dy (k, n*p*q)      x  col(x)^T (n*p*q, c*r*s)
 * Columns of the forward and backward-data outputs run over (image, pixel), so a tile's
 * stores are contiguous within an image. The backward data pass gathers (each dx reads the dy
 * that depend on it) instead of scattering, so it needs neither atomics nor zeroing. */
CNB_HD void cnb_conv_forward_mnk(const cnb_conv_geom *g, int *m, int *n, int *k) {
    *m = g->k; *n = g->n * g->pq; *k = g->crs;
}
CNB_HD void cnb_conv_backward_data_mnk(const cnb_conv_geom *g, int *m, int *n, int *k) {
    *m = g->c; *n = g->n * g->hw; *k = g->k * g->rs;
}
CNB_HD void cnb_conv_backward_filter_mnk(const cnb_conv_geom *g, int *m, int *n, int *k) {
    *m = g->k; *n = g->crs; *k = g->n * g->pq;
}

/* x at (image b, channel ci, row ih, column iw), zero outside the image (the padding). */
CNB_HD float cnb_conv_x_at(const cnb_conv_geom *g, const float *x, int b, int ci, int ih,
                           int iw) {
    if ((unsigned)ih >= (unsigned)g->h || (unsigned)iw >= (unsigned)g->w) return 0.0f;
    return x[((b * g->c + ci) * g->h + ih) * g->w + iw];
}

/* forward A: W (k, c*r*s) as stored. */
CNB_HD float cnb_conv_forward_a(const cnb_conv_geom *g, const float *wt, int row, int kk) {
    return wt[row * g->crs + kk];
}
/* forward B: col(x)[(ci,i,j)][(b,oh,ow)] = x[b, ci, oh*sh - ph + i, ow*sw - pw + j]. */
CNB_HD float cnb_conv_forward_b(const cnb_conv_geom *g, const float *x, int kk, int col) {
    int b = col / g->pq, pix = col - b * g->pq, oh = pix / g->q, ow = pix - oh * g->q;
    int ci = kk / g->rs, ij = kk - ci * g->rs, i = ij / g->s, j = ij - i * g->s;
    return cnb_conv_x_at(g, x, b, ci, oh * g->stride_h - g->pad_h + i,
                         ow * g->stride_w - g->pad_w + j);
}
/* forward output: y[b, row, oh, ow] for column (b, oh, ow). */
CNB_HD int cnb_conv_forward_y_index(const cnb_conv_geom *g, int row, int col) {
    int b = col / g->pq;
    return (b * g->k + row) * g->pq + (col - b * g->pq);
}

/* backward data A: W^T[ci][(o,i,j)] = W[o, ci, i, j]. */
CNB_HD float cnb_conv_backward_data_a(const cnb_conv_geom *g, const float *wt, int row, int kk) {
    int o = kk / g->rs, ij = kk - o * g->rs;
    return wt[(o * g->c + row) * g->rs + ij];
}
/* backward data B: dy[b, o, oh, ow] where input pixel (ih, iw) = (oh*sh - ph + i,
 * ow*sw - pw + j), i.e. oh = (ih + ph - i) / sh when that divides exactly and lands inside
 * [0, p); zero otherwise. */
CNB_HD float cnb_conv_backward_data_b(const cnb_conv_geom *g, const float *dy, int kk, int col) {
    int o = kk / g->rs, ij = kk - o * g->rs, i = ij / g->s, j = ij - i * g->s;
    int b = col / g->hw, pix = col - b * g->hw, ih = pix / g->w, iw = pix - ih * g->w;
    int th = ih + g->pad_h - i, tw = iw + g->pad_w - j;
    if (th < 0 || tw < 0) return 0.0f;
    int oh = th / g->stride_h, ow = tw / g->stride_w;
    if (oh * g->stride_h != th || ow * g->stride_w != tw || oh >= g->p || ow >= g->q) return 0.0f;
    return dy[((b * g->k + o) * g->p + oh) * g->q + ow];
}
/* backward data output: dx[b, row, ih, iw] for column (b, ih, iw). */
CNB_HD int cnb_conv_backward_data_dx_index(const cnb_conv_geom *g, int row, int col) {
    int b = col / g->hw;
    return (b * g->c + row) * g->hw + (col - b * g->hw);
}

/* backward filter A: dy as (k, n*p*q): dy[b, row, oh, ow] for kk = (b, oh, ow). */
CNB_HD float cnb_conv_backward_filter_a(const cnb_conv_geom *g, const float *dy, int row,
                                        int kk) {
    int b = kk / g->pq;
    return dy[(b * g->k + row) * g->pq + (kk - b * g->pq)];
}
/* backward filter B: col(x)^T[(b,oh,ow)][(ci,i,j)], forward B transposed. */
CNB_HD float cnb_conv_backward_filter_b(const cnb_conv_geom *g, const float *x, int kk, int col) {
    return cnb_conv_forward_b(g, x, col, kk);
}
/* backward filter output: dW[row, (ci, i, j)] = dW (k, c*r*s) as stored. */
CNB_HD int cnb_conv_backward_filter_dw_index(const cnb_conv_geom *g, int row, int col) {
    return row * g->crs + col;
}

/* ---- pooling: the outputs whose window covers an input position ----
 * Output o covers input positions [o*stride - pad, o*stride - pad + win). For input position
 * i the covering outputs are o in [*lo, *hi] (empty when *lo > *hi). */
CNB_HD void cnb_pool_covering(int i, int pad, int win, int stride, int out, int *lo, int *hi) {
    int first = i + pad - win + 1; /* o*stride >= i + pad - win + 1 */
    *lo = first <= 0 ? 0 : (first + stride - 1) / stride;
    int last = (i + pad) / stride; /* o*stride <= i + pad, i + pad >= 0 */
    *hi = last < out - 1 ? last : out - 1;
}

/* ---- versions as the CUDA libraries encode them ---- */
/* CUDA runtime/driver: 1000*major + 10*minor (13000 -> "13.0"). */
void cnb_format_cuda_version(int v, char *buf, size_t len);
/* cuDNN 9 and cuBLAS: 10000*major + 100*minor + patch (91900 -> "9.19.0"). */
void cnb_format_lib_version(long v, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* CNB_CUDA_PLAN_H */
