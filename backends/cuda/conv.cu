/* conv.cu — convolution forward, backward-data and backward-filter as implicit GEMMs on the
 * tiled SGEMM (the index maps are in cuda_plan.h), and the bias pair. Nothing here uses
 * atomics: backward data gathers, the weight gradient's long reduction is split into fixed
 * slices summed in order, and the bias gradient is one fixed-order tree per channel. */
#include <math.h>

#include "cuda_kernels.h"
#include "tiled_gemm.cuh"

namespace {

/* The tiled GEMM's operands (tiled_gemm.cuh): each address is a row (column) part, computed
 * once per thread, plus a k part, computed once per tile. The image gathers keep the pieces
 * their bounds checks need: input pixel (ih, iw) = (row part + k part) per axis, and the
 * element is read only when both land inside the image (zero padding otherwise). Only the
 * epilogue (store, once per output) still divides. */

/* A part or k part that is one offset. */
struct Offset {
    int at;
};
/* One side of an image gather: an offset and the two coordinates it adds to. */
struct Pixel {
    int at, ih, iw;
};

/* The pixel x[b, ci, ih0 + i, iw0 + j] from its (b, ih0, iw0) part and its (ci, i, j) part,
 * zero outside the image. */
__device__ __forceinline__ float x_gather(const cnb_conv_geom &g, const float *x,
                                          const Pixel &pos, const Pixel &tap) {
    const int ih = pos.ih + tap.ih, iw = pos.iw + tap.iw;
    if ((unsigned)ih >= (unsigned)g.h || (unsigned)iw >= (unsigned)g.w) return 0.0f;
    return x[pos.at + tap.at];
}
/* (b, oh, ow) as the image part of a gather: x offset b*c*h*w + ih0*w + iw0, with
 * ih0 = oh*sh - ph and iw0 = ow*sw - pw (the offset may point before the image; it is only
 * read with a tap that lands inside). */
__device__ __forceinline__ Pixel output_pixel(const cnb_conv_geom &g, int bpq) {
    const int b = bpq / g.pq, pix = bpq - b * g.pq, oh = pix / g.q, ow = pix - oh * g.q;
    const int ih0 = oh * g.stride_h - g.pad_h, iw0 = ow * g.stride_w - g.pad_w;
    return Pixel{b * g.c * g.hw + ih0 * g.w + iw0, ih0, iw0};
}
/* (ci, i, j) as the tap part of a gather: x offset ci*h*w + i*w + j. */
__device__ __forceinline__ Pixel filter_tap(const cnb_conv_geom &g, int crs) {
    const int ci = crs / g.rs, ij = crs - ci * g.rs, i = ij / g.s, j = ij - i * g.s;
    return Pixel{ci * g.hw + i * g.w + j, i, j};
}

/* y = W col(x) + bias. A = W (k, c*r*s) as stored; B = col(x) (c*r*s, n*p*q). */
struct ConvForwardOp {
    cnb_conv_geom g;
    float *y;
    const float *x, *w, *bias;
    typedef Offset ARow;
    typedef Offset AK;
    typedef Pixel BK;
    typedef Pixel BCol;
    __device__ ARow a_row(int row) const { return Offset{row * g.crs}; }
    __device__ AK a_k(int kk) const { return Offset{kk}; }
    __device__ float a(const ARow &r, const AK &k) const { return w[r.at + k.at]; }
    __device__ BK b_k(int kk) const { return filter_tap(g, kk); }
    __device__ BCol b_col(int col) const { return output_pixel(g, col); }
    __device__ float b(const BK &k, const BCol &c) const { return x_gather(g, x, c, k); }
    __device__ void store(int row, int col, float acc) const {
        y[cnb_conv_forward_y_index(&g, row, col)] = bias ? acc + bias[row] : acc;
    }
};

/* dx = W^T gather(dy). A = W^T (c, k*r*s): W[o, ci, i, j] = w[(o*c + ci)*rs + ij], a row part
 * ci*rs and a k part o*c*rs + ij. B = gather(dy) (k*r*s, n*h*w): dy[b, o, oh, ow] where
 * (ih + ph - i, iw + pw - j) = (oh*sh, ow*sw) exactly, inside [0, p) x [0, q). */
struct ConvBackwardDataOp {
    cnb_conv_geom g;
    float *dx;
    const float *dy, *w;
    typedef Offset ARow;
    typedef Offset AK;
    struct BK {
        int at, i, j; /* o*p*q and the tap */
    };
    struct BCol {
        int at, ihp, iwp; /* b*k*p*q, ih + ph, iw + pw */
    };
    __device__ ARow a_row(int row) const { return Offset{row * g.rs}; }
    __device__ AK a_k(int kk) const {
        const int o = kk / g.rs;
        return Offset{o * g.c * g.rs + (kk - o * g.rs)};
    }
    __device__ float a(const ARow &r, const AK &k) const { return w[r.at + k.at]; }
    __device__ BK b_k(int kk) const {
        const int o = kk / g.rs, ij = kk - o * g.rs, i = ij / g.s;
        return BK{o * g.pq, i, ij - i * g.s};
    }
    __device__ BCol b_col(int col) const {
        const int b = col / g.hw, pix = col - b * g.hw, ih = pix / g.w;
        return BCol{b * g.k * g.pq, ih + g.pad_h, pix - ih * g.w + g.pad_w};
    }
    __device__ float b(const BK &k, const BCol &c) const {
        int oh = c.ihp - k.i, ow = c.iwp - k.j;
        if (oh < 0 || ow < 0) return 0.0f;
        if (g.stride_h != 1) { /* the common stride 1 needs no division */
            if (oh % g.stride_h) return 0.0f;
            oh /= g.stride_h;
        }
        if (g.stride_w != 1) {
            if (ow % g.stride_w) return 0.0f;
            ow /= g.stride_w;
        }
        if (oh >= g.p || ow >= g.q) return 0.0f;
        return dy[c.at + k.at + oh * g.q + ow];
    }
    __device__ void store(int row, int col, float acc) const {
        dx[cnb_conv_backward_data_dx_index(&g, row, col)] = acc;
    }
};

/* dW = dy col(x)^T. A = dy (k, n*p*q): dy[b, row, pix], a row part row*p*q and a k part
 * b*k*p*q + pix. B = col(x)^T (n*p*q, c*r*s): the forward's gather with the roles of k and
 * column swapped. */
struct ConvBackwardFilterOp {
    cnb_conv_geom g;
    float *dw;
    const float *dy, *x;
    typedef Offset ARow;
    typedef Offset AK;
    typedef Pixel BK;
    typedef Pixel BCol;
    __device__ ARow a_row(int row) const { return Offset{row * g.pq}; }
    __device__ AK a_k(int kk) const {
        const int b = kk / g.pq;
        return Offset{b * g.k * g.pq + (kk - b * g.pq)};
    }
    __device__ float a(const ARow &r, const AK &k) const { return dy[r.at + k.at]; }
    __device__ BK b_k(int kk) const { return output_pixel(g, kk); }
    __device__ BCol b_col(int col) const { return filter_tap(g, col); }
    __device__ float b(const BK &k, const BCol &c) const { return x_gather(g, x, k, c); }
    __device__ void store(int row, int col, float acc) const {
        dw[cnb_conv_backward_filter_dw_index(&g, row, col)] = acc;
    }
};

/* y (n,c,hw) += bias (c). */
__global__ void bias_forward_kernel(float *y, const float *bias, int c, int hw, int total) {
    CNB_GRID_STRIDE(e64, total) {
        const int e = (int)e64;
        y[e] = __fadd_rn(y[e], bias[(e / hw) % c]);
    }
}

/* One block per channel: each thread sums a fixed stride of the channel's n*hw values, then a
 * tree halves the block's sums. */
__global__ void __launch_bounds__(CNB_REDUCE_THREADS)
    bias_backward_kernel(float *dbias, const float *dy, int n, int c, int hw) {
    __shared__ float part[CNB_REDUCE_THREADS];
    const int ch = (int)blockIdx.x, tid = (int)threadIdx.x;
    float sum = 0.0f;
    CNB_BLOCK_STRIDE(e64, (long long)n * hw, CNB_REDUCE_THREADS) {
        const int e = (int)e64, b = e / hw, i = e - b * hw;
        sum += dy[(b * c + ch) * hw + i];
    }
    part[tid] = sum;
    __syncthreads();
    for (int half = CNB_REDUCE_THREADS / 2; half > 0; half /= 2) {
        if (tid < half) part[tid] += part[tid + half];
        __syncthreads();
    }
    if (tid == 0) dbias[ch] = part[0];
}

} // namespace

extern "C" cudaError_t cnbk_conv_forward(cudaStream_t s, const cnb_conv_geom *g,
                                         const cnb_gemm_plan *plan, float *partial, float *y,
                                         const float *x, const float *weight, const float *bias) {
    ConvForwardOp op{*g, y, x, weight, bias};
    /* A = W is k-contiguous; B's columns are output pixels, contiguous in x along a row. */
    return run_tiled_gemm<ConvForwardOp, true, true>(s, op, plan, partial);
}

extern "C" cudaError_t cnbk_conv_backward_data(cudaStream_t s, const cnb_conv_geom *g,
                                               const cnb_gemm_plan *plan, float *partial,
                                               float *dx, const float *dy, const float *weight) {
    ConvBackwardDataOp op{*g, dx, dy, weight};
    return run_tiled_gemm<ConvBackwardDataOp, true, true>(s, op, plan, partial);
}

extern "C" cudaError_t cnbk_conv_backward_filter(cudaStream_t s, const cnb_conv_geom *g,
                                                 const cnb_gemm_plan *plan, float *partial,
                                                 float *dweight, const float *dy,
                                                 const float *x) {
    ConvBackwardFilterOp op{*g, dweight, dy, x};
    /* Both operands run along (image, pixel) in k: dy and x are contiguous there. */
    return run_tiled_gemm<ConvBackwardFilterOp, true, false>(s, op, plan, partial);
}

extern "C" cudaError_t cnbk_bias_forward(cudaStream_t s, float *y, const float *bias, int n,
                                         int c, int hw) {
    int total = n * c * hw;
    int blocks = cnb_plan_blocks((size_t)total, CNB_EW_THREADS, CNB_EW_MAX_BLOCKS);
    return cnb_launch(bias_forward_kernel, dim3((unsigned)blocks), dim3(CNB_EW_THREADS), s, y,
                      bias, c, hw, total);
}

extern "C" cudaError_t cnbk_bias_backward(cudaStream_t s, float *dbias, const float *dy, int n,
                                          int c, int hw) {
    return cnb_launch(bias_backward_kernel, dim3((unsigned)c), dim3(CNB_REDUCE_THREADS), s,
                      dbias, dy, n, c, hw);
}
