/* conv_backward_filter.cu — the cuda backend's weight gradient developed alone, in the llm.c
 * dev/cuda manner: a CPU reference, numbered GPU versions, validation, cudaEvent timing. The
 * hard part of this kernel is its shape: few outputs (k*c*r*s, as little as 150) each summing
 * n*p*q products (up to 200,704), so parallelism must come from the reduction.
 *   version 1: one thread per weight, a sequential sum over (n, p, q)
 *   version 2: one block per weight, a strided sum per thread and a fixed-order tree
 *   version 3: the backend's implicit GEMM (cnbk_conv_backward_filter): dW = dy col(x)^T on the
 *              tiled SGEMM, split-K slices summed in order by a second kernel
 * All three are deterministic (no atomics).
 * usage: ./conv_backward_filter [version] [layer]   (default: all versions, simplecnn.conv1)
 * Runs only on a GPU. */
#include <string.h>

#include "common.h"
#include "layers.h"
#include "../../backends/cuda/conv.cu" /* cnbk_conv_backward_filter */

/* dw (k,c,r,s) = sum over (n,p,q) of dy (n,k,p,q) * x (n,c,...) in double. */
static void conv_backward_filter_cpu(double *dw, const float *dy, const float *x,
                                     const cnb_conv_desc *d) {
    for (size_t e = 0; e < (size_t)d->k * d->c * d->r * d->s; e++) dw[e] = 0.0;
    conv_each_connection(d, [&](int yi, int xi, int wi) { dw[wi] += (double)dy[yi] * x[xi]; });
}

__device__ float dw_term(const float *dy, const float *x, const cnb_conv_desc &d, int o, int ci,
                         int i, int j, int e) {
    int ow = e % d.q, oh = (e / d.q) % d.p, b = e / (d.q * d.p);
    int ih = oh * d.stride_h - d.pad_h + i, iw = ow * d.stride_w - d.pad_w + j;
    if (ih < 0 || ih >= d.h || iw < 0 || iw >= d.w) return 0.0f;
    return dy[((b * d.k + o) * d.p + oh) * d.q + ow] * x[((b * d.c + ci) * d.h + ih) * d.w + iw];
}

__global__ void dw_kernel1(float *dw, const float *dy, const float *x, cnb_conv_desc d) {
    int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= d.k * d.c * d.r * d.s) return;
    int j = e % d.s, i = (e / d.s) % d.r, ci = (e / (d.s * d.r)) % d.c, o = e / (d.s * d.r * d.c);
    float sum = 0.0f;
    for (int t = 0; t < d.n * d.p * d.q; t++) sum += dw_term(dy, x, d, o, ci, i, j, t);
    dw[e] = sum;
}

__global__ void dw_kernel2(float *dw, const float *dy, const float *x, cnb_conv_desc d) {
    __shared__ float part[256];
    int e = blockIdx.x;
    int j = e % d.s, i = (e / d.s) % d.r, ci = (e / (d.s * d.r)) % d.c, o = e / (d.s * d.r * d.c);
    float sum = 0.0f;
    for (int t = threadIdx.x; t < d.n * d.p * d.q; t += 256) sum += dw_term(dy, x, d, o, ci, i, j, t);
    part[threadIdx.x] = sum;
    __syncthreads();
    for (int half = 128; half > 0; half /= 2) {
        if ((int)threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) dw[e] = part[0];
}

int main(int argc, char **argv) {
    int version;
    cnb_conv_desc d;
    const dev_layer *layer = dev_layer_args(argc, argv, 0, &version, &d);
    cudaDeviceProp prop = device_props();
    size_t nx = (size_t)d.n * d.c * d.h * d.w, nw = (size_t)d.k * d.c * d.r * d.s,
           ny = (size_t)d.n * d.k * d.p * d.q;
    printf("device: %s; %s: dW (%d,%d,%d,%d), each a sum of %d products\n", prop.name,
           layer->name, d.k, d.c, d.r, d.s, d.n * d.p * d.q);
    float *x = make_random(nx, 3), *dy = make_random(ny, 4);
    double *ref = (double *)malloc(nw * sizeof(double));
    conv_backward_filter_cpu(ref, dy, x, &d);
    float *d_x = to_device(x, nx), *d_dy = to_device(dy, ny), *d_dw = to_device(NULL, nw);

    cnb_conv_geom g;
    int k;
    cnb_gemm_plan plan = conv_pass_plan(&d, cnb_conv_backward_filter_mnk, prop, &g, &k);
    float *d_partial = partial_buffer(plan.partial_floats);
    printf("backend plan: %d x %d tiles, %d split(s) of %d\n", plan.grid_y, plan.grid_x,
           plan.splits, plan.k_per_split);

    const double flops = 2.0 * ny * d.c * d.r * d.s;
    auto launch = [&](int v) {
        if (v == 1)
            dw_kernel1<<<ceil_div(nw, 128), 128>>>(d_dw, d_dy, d_x, d);
        else if (v == 2)
            dw_kernel2<<<(unsigned)nw, 256>>>(d_dw, d_dy, d_x, d);
        else
            cudaCheck(cnbk_conv_backward_filter(0, &g, &plan, d_partial, d_dw, d_dy, d_x));
    };
    /* float sums of up to 2e5 products: 1e-5 relative L2 as in the backend tests */
    int failed = run_versions("conv_backward_filter", 3, version, launch, d_dw, ref, nw, 1e-5,
                              flops);
    free_device({d_x, d_dy, d_dw, d_partial});
    free(x), free(dy), free(ref);
    return failed ? EXIT_FAILURE : 0;
}
