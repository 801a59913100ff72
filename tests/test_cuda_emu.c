/* test_cuda_emu.c — the cuda backend's kernels and host code, run on the CPU emulator
 * (backends/cuda/emu: each GPU thread a fiber, shared memory and barriers as on a device,
 * guard pages and NaN-filled allocations) against the naive oracle: the same checks
 * test_cuda.c runs on a GPU (gpu_checks.inc), with batches capped at 4 because the emulator is
 * slow; layer geometry is the models' own. Plus the checks only the emulator can make: fibers
 * scheduled last-first (a shared-memory read a missing barrier leaves unordered then sees
 * other data) must give the same bits as first-first. This is what runs the CUDA kernels on a
 * machine without a GPU; it proves their indexing, tiling, barriers and reductions, not the
 * device's own rounding of expf/tanhf or its timing. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>

#include "loader.h"

#define GPU_SUITE cuda_emu
#define GPU_LABEL "cuda_emu"
#define GPU_BATCH_CAP 4
#define GPU_TIES_EXACT 1
#define GPU_INFO_KEYS                                                                        \
    {"backend", "device.name", "device.compute_capability", "cuda.driver",                  \
     "cuda.runtime.compiled", "cuda.runtime.loaded", "conv.algorithm", "math",              \
     "deterministic", NULL}

static void gpu_backend_path(char *buf, size_t len) {
    snprintf(buf, len, "%s/libcnb_cuda_emu.so", cnb_backend_dir());
}

#include "gpu_checks.inc"

/* The emulated backend under the reverse fiber order (CNB_CUDA_EMU_ORDER=reverse). */
static void open_reverse(tu_backend *b) {
    setenv("CNB_CUDA_EMU_ORDER", "reverse", 1);
    open_gpu(b);
}

/* Every kernel with barriers — the tiled GEMM (with and without split-K), the bias and slope
 * reductions, the loss mean — in both fiber orders: barriers correct means identical bits. */
Test(cuda_emu, fiber_order_does_not_change_results) {
    const conv_case *cases[] = {&conv_cases[1], &conv_cases[8], &conv_cases[16]};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        cnb_conv_desc d = conv_desc(cases[c]);
        size_t nx = (size_t)d.n * d.c * d.h * d.w, nw = (size_t)d.k * d.c * d.r * d.s,
               ny = (size_t)d.n * d.k * d.p * d.q;
        cnb_rng rng;
        cnb_rng_seed(&rng, 500 + c);
        float *x = inputs(&rng, nx, 0), *w = inputs(&rng, nw, 0), *dy = inputs(&rng, ny, 0),
              *bias = inputs(&rng, (size_t)d.k, 0);
        float *y[2] = {host_floats(ny), host_floats(ny)}, *dx[2] = {host_floats(nx),
                                                                   host_floats(nx)},
              *dw[2] = {host_floats(nw), host_floats(nw)};
        float db[2][128], ds[2], loss[2];
        for (int order = 0; order < 2; order++) {
            tu_backend g;
            if (order)
                open_reverse(&g);
            else
                open_gpu(&g);
            conv_run(&g, &d, x, w, bias, dy, y[order], dx[order], dw[order]);
            devs m = {.b = &g};
            float *dy_ = dv(&m, dy, ny), *db_ = dv(&m, NULL, (size_t)d.k), *sl = dv(&m, w, 1),
                  *ds_ = dv(&m, NULL, 1), *dx_ = dv(&m, NULL, ny), *p_ = dv(&m, NULL, ny),
                  *l_ = dv(&m, NULL, 1);
            int32_t labels[4096];
            int rows = (int)(ny / 10 < 4096 ? ny / 10 : 4096);
            for (int i = 0; i < rows; i++) labels[i] = i % 10;
            int32_t *lab_ = dv_bytes(&m, labels, (size_t)rows * 4);
            check(&g, g.api->bias_backward(g.ctx, db_, dy_, d.n, d.k, d.p * d.q), "bias_backward");
            check(&g, g.api->activation_backward(g.ctx, CNB_ACT_PRELU, ny, dx_, ds_, dy_, dy_,
                                                 dy_, sl),
                  "prelu backward");
            check(&g, g.api->softmax_ce_forward(g.ctx, rows, 10, p_, l_, NULL, dy_, lab_),
                  "softmax_ce_forward");
            tu_to_host(&g, db[order], db_, (size_t)d.k * sizeof(float));
            tu_to_host(&g, &ds[order], ds_, sizeof(float));
            tu_to_host(&g, &loss[order], l_, sizeof(float));
            dv_free(&m);
            tu_close(&g);
            unsetenv("CNB_CUDA_EMU_ORDER");
        }
        char what[128];
        snprintf(what, sizeof what, "%s conv_forward, reverse fiber order", cases[c]->name);
        tu_expect_equal(what, y[1], y[0], ny);
        snprintf(what, sizeof what, "%s conv_backward_data, reverse fiber order", cases[c]->name);
        tu_expect_equal(what, dx[1], dx[0], nx);
        snprintf(what, sizeof what, "%s conv_backward_filter, reverse fiber order",
                 cases[c]->name);
        tu_expect_equal(what, dw[1], dw[0], nw);
        snprintf(what, sizeof what, "%s bias_backward, reverse fiber order", cases[c]->name);
        tu_expect_equal(what, db[1], db[0], (size_t)d.k);
        tu_expect_equal("prelu dslope, reverse fiber order", &ds[1], &ds[0], 1);
        tu_expect_equal("softmax_ce loss, reverse fiber order", &loss[1], &loss[0], 1);
        free(x), free(w), free(dy), free(bias);
        for (int i = 0; i < 2; i++) free(y[i]), free(dx[i]), free(dw[i]);
    }
}
