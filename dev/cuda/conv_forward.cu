/* conv_forward.cu — the cuda backend's convolution forward developed alone, in the llm.c
 * dev/cuda manner: a CPU reference, numbered GPU versions, validation, cudaEvent timing.
 *   version 1: direct, one thread per output, loops over (c, r, s)
 *   version 2: im2col into a buffer, then the backend's tiled SGEMM once per image (Caffe)
 *   version 3: the backend's implicit GEMM (cnbk_conv_forward): the gather happens inside the
 *              SGEMM's tile loads, no buffer
 * usage: ./conv_forward [version] [layer]   (layer: index into layers.h; default: all
 * versions, simplecnn.conv2). Runs only on a GPU. */
#include <string.h>

#include "common.h"
#include "layers.h"
#include "../../backends/cuda/conv.cu" /* cnbk_conv_forward */
#include "../../backends/cuda/gemm.cu" /* cnbk_gemm */

__global__ void conv_forward_kernel1(float *y, const float *x, const float *wt, cnb_conv_desc d) {
    int total = d.n * d.k * d.p * d.q;
    int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= total) return;
    int ow = e % d.q, oh = (e / d.q) % d.p, o = (e / (d.q * d.p)) % d.k, b = e / (d.q * d.p * d.k);
    float sum = 0.0f;
    for (int ci = 0; ci < d.c; ci++)
        for (int i = 0; i < d.r; i++) {
            int ih = oh * d.stride_h - d.pad_h + i;
            if (ih < 0 || ih >= d.h) continue;
            for (int j = 0; j < d.s; j++) {
                int iw = ow * d.stride_w - d.pad_w + j;
                if (iw < 0 || iw >= d.w) continue;
                sum = fmaf(x[((b * d.c + ci) * d.h + ih) * d.w + iw],
                           wt[((o * d.c + ci) * d.r + i) * d.s + j], sum);
            }
        }
    y[e] = sum;
}

/* col (c*r*s, p*q) of one image. */
__global__ void im2col_kernel(float *col, const float *x, cnb_conv_desc d) {
    int pq = d.p * d.q, total = d.c * d.r * d.s * pq;
    int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= total) return;
    int pix = e % pq, kk = e / pq;
    int oh = pix / d.q, ow = pix % d.q;
    int ci = kk / (d.r * d.s), i = (kk / d.s) % d.r, j = kk % d.s;
    int ih = oh * d.stride_h - d.pad_h + i, iw = ow * d.stride_w - d.pad_w + j;
    col[e] = (ih >= 0 && ih < d.h && iw >= 0 && iw < d.w) ? x[(ci * d.h + ih) * d.w + iw] : 0.0f;
}

int main(int argc, char **argv) {
    int version;
    cnb_conv_desc d;
    const dev_layer *layer = dev_layer_args(argc, argv, 1, &version, &d);
    cudaDeviceProp prop = device_props();
    printf("device: %s; %s: x (%d,%d,%d,%d) w (%d,%d,%d,%d) stride %d pad %d -> y (%d,%d,%d,%d)\n",
           prop.name, layer->name, d.n, d.c, d.h, d.w, d.k, d.c, d.r, d.s, d.stride_h,
           d.pad_h, d.n, d.k, d.p, d.q);
    size_t nx = (size_t)d.n * d.c * d.h * d.w, nw = (size_t)d.k * d.c * d.r * d.s,
           ny = (size_t)d.n * d.k * d.p * d.q, ncol = (size_t)d.c * d.r * d.s * d.p * d.q;
    float *x = make_random(nx, 1), *wt = make_random(nw, 2);
    double *ref = (double *)malloc(ny * sizeof(double));
    conv_forward_cpu(ref, x, wt, &d);
    float *d_x = to_device(x, nx), *d_w = to_device(wt, nw), *d_y = to_device(NULL, ny),
          *d_col = to_device(NULL, ncol);

    cnb_conv_geom g;
    int k;
    cnb_gemm_plan plan = conv_pass_plan(&d, cnb_conv_forward_mnk, prop, &g, &k);
    cnb_gemm_plan plan_img = plan_gemm_or_exit(d.k, d.p * d.q, k, prop);
    float *d_partial = partial_buffer(plan.partial_floats > plan_img.partial_floats
                                          ? plan.partial_floats
                                          : plan_img.partial_floats);

    const double flops = 2.0 * ny * d.c * d.r * d.s;
    auto launch = [&](int v) {
        if (v == 1) {
            conv_forward_kernel1<<<ceil_div(ny, 256), 256>>>(d_y, d_x, d_w, d);
        } else if (v == 2) {
            for (int b = 0; b < d.n; b++) {
                const float *x_b = d_x + (size_t)b * d.c * d.h * d.w;
                im2col_kernel<<<ceil_div(ncol, 256), 256>>>(d_col, x_b, d);
                cudaCheck(cnbk_gemm(0, &plan_img, d_partial, 0, 0, 1.0f, d_w, k, d_col, d.p * d.q,
                                    0.0f, d_y + (size_t)b * d.k * d.p * d.q, d.p * d.q));
            }
        } else {
            cudaCheck(cnbk_conv_forward(0, &g, &plan, d_partial, d_y, d_x, d_w, NULL));
        }
    };
    int failed = run_versions("conv_forward", 3, version, launch, d_y, ref, ny, 1e-5, flops);
    free_device({d_x, d_w, d_y, d_col, d_partial});
    free(x), free(wt), free(ref);
    return failed ? EXIT_FAILURE : 0;
}
