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
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>

#include "data.h"
#include "loader.h"
#include "model.h"
#include "profiler.h"
#include "train.h"

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

/* The emulated GPU opened, "network" loaded, 16 training and 8 test images, and settings for
 * three steps in the largest batch the emulator runs quickly. */
static cnb_model *three_steps_of_network(tu_backend *g, cnb_dataset *train, cnb_dataset *test,
                                         cnb_run_settings *s) {
    open_gpu(g);
    cnb_model *m = tu_load_model("network");
    tu_open_fashion(16, 8, train, test);
    cnb_settings_from_model(m, s);
    s->epochs = 1;
    s->batch = GPU_BATCH_CAP;
    s->eval_batch = GPU_BATCH_CAP;
    s->max_steps = 3;
    return m;
}

/* The profiler on a backend with timers, end to end: every call of a short training run and its
 * evaluation timed by a device timer pair (no synchronize per call), read back per step and at
 * the flush, with the same call counts the host clock gives (test_bench) and a kernel total
 * inside the step time. */
Test(cuda_emu, profiler_times_kernels_with_the_device_timers, .timeout = 300) {
    tu_backend g;
    cnb_dataset train = {0}, test = {0};
    cnb_run_settings s;
    cnb_model *m = three_steps_of_network(&g, &train, &test, &s);
    cnb_profiler *p = malloc(sizeof *p);
    cnb_profiler_init(p, g.api, g.ctx, 1);
    cr_assert(p->use_timers, "the profiler does not use the backend's timers");
    cr_expect_str_eq(cnb_profiler_timing_method(p), "device timers (cnb timer slots)");
    cr_expect(cnb_backend_has_timers(cnb_profiler_api(p)), "the proxy hides the timer slots");
    cnb_trainer *t = tu_trainer(cnb_profiler_api(p), cnb_profiler_ctx(p), m, &train, &test, &s);
    cnb_profiler_reset(p);
    cnb_run_result *r = tu_train_to_end(t);
    cr_assert_eq(r->total_steps, 3);
    /* the last optimizer step read its pairs back; the evaluation's wait for the flush */
    cr_expect_gt(p->timers_used, 0, "the evaluation's pairs are read back only at the flush");
    cnb_profiler_flush(p);
    cr_expect_eq(p->timers_used, 0);
    cr_expect_eq(p->timer_errors, 0, "timer calls failed: %s", g.api->last_error(g.ctx));
    /* network: per step 2 conv forwards, 2 filter gradients, 1 data gradient, 3 forward
     * products, 6 gradient products, one optimizer call (as in test_bench on naive) */
    cr_expect_eq(p->train.calls[CNB_KF_CONV_FWD], 2 * 3);
    cr_expect_eq(p->train.calls[CNB_KF_CONV_BWD_FILTER], 2 * 3);
    cr_expect_eq(p->train.calls[CNB_KF_CONV_BWD_DATA], 1 * 3);
    cr_expect_eq(p->train.calls[CNB_KF_GEMM_FWD], 3 * 3);
    cr_expect_eq(p->train.calls[CNB_KF_GEMM_BWD], (3 + 3) * 3);
    cr_expect_eq(p->train.calls[CNB_KF_OPTIMIZER], 3);
    cr_expect_eq(p->pending.calls[CNB_KF_CONV_FWD], 2 * 2, "two evaluation batches of 4");
    cr_expect_eq(p->pending.calls[CNB_KF_OPTIMIZER], 0);
    cr_expect_eq(p->pending.calls[CNB_KF_CONV_BWD_FILTER], 0);
    double kern = 0;
    for (int f = 0; f < CNB_KF_COUNT; f++) {
        const cnb_kernel_times *k[2] = {&p->train, &p->pending};
        for (int i = 0; i < 2; i++) {
            cr_expect_geq(k[i]->seconds[f], 0.0, "%s: %g s", cnb_kfamily_name(f),
                          k[i]->seconds[f]);
            if (k[i]->calls[f] == 0)
                cr_expect_eq(k[i]->seconds[f], 0.0, "%s: time without calls",
                             cnb_kfamily_name(f));
        }
        kern += p->train.seconds[f];
    }
    /* the emulator runs kernels as they are called: the convolutions take measurable time */
    cr_expect_gt(p->train.seconds[CNB_KF_CONV_FWD], 0.0);
    cr_expect_gt(p->train.seconds[CNB_KF_CONV_BWD_FILTER], 0.0);
    cr_expect_leq(kern, r->epoch[0].train_seconds * 1.001 + 1e-4,
                  "kernel time %g exceeds the step time %g", kern, r->epoch[0].train_seconds);
    tu_train_free(t, r);
    cnb_profiler_release(p);
    cr_expect_eq(p->timer_pairs, 0);
    free(p);
    free(m);
    tu_close(&g);
    cnb_dataset_free(&train);
    cnb_dataset_free(&test);
}

/* A planted slowdown is a host busy wait the device timers cannot see: the profiler keeps the
 * host clock for the fault backend, and the timers for any other. */
Test(cuda_emu, planted_slowdown_keeps_the_host_clock) {
    tu_backend g;
    open_gpu(&g);
    setenv("CNB_TEST_SLOWDOWN_CONV", "3", 1);
    setenv("CNB_TEST_FAULT_BACKEND", g.api->name, 1);
    cnb_profiler p;
    cnb_profiler_init(&p, g.api, g.ctx, 1);
    cr_expect_eq(p.use_timers, 0);
    cr_expect_str_eq(cnb_profiler_timing_method(&p), "host clock after synchronize");
    cnb_profiler_release(&p);
    setenv("CNB_TEST_FAULT_BACKEND", "blas", 1);
    cnb_profiler_init(&p, g.api, g.ctx, 1);
    cr_expect_eq(p.use_timers, 1);
    cnb_profiler_release(&p);
    unsetenv("CNB_TEST_SLOWDOWN_CONV");
    unsetenv("CNB_TEST_FAULT_BACKEND");
    tu_close(&g);
}

/* The emulator's test hooks (backends/cuda/emu/cuda_emu.h), found in the loaded backend. */
typedef long (*emu_count_fn)(const char *what);
typedef void (*emu_set_error_fn)(int e);
static void *emu_hook(tu_backend *g, const char *name) {
    void *sym = dlsym(g->lib.handle, name);
    cr_assert_not_null(sym, "the cuda_emu backend does not export %s", name);
    return sym;
}
static long emu_count(tu_backend *g, const char *what) {
    emu_count_fn fn;
    void *sym = emu_hook(g, "cnb_emu_test_count");
    memcpy(&fn, &sym, sizeof fn);
    return fn(what);
}

/* upload() returns without waiting for the stream and copies through pinned staging; the
 * emulator holds pinned copies back until something could see them, so a staging slot written
 * again before its copy ran (no event guard), or a source not copied before return, shows up
 * as wrong data in the downloads. */
Test(cuda_emu, upload_returns_without_waiting_and_guards_its_staging) {
    tu_backend g;
    open_gpu(&g);
    enum { N = 1000, BUFS = 5 };
    float *dev[BUFS], host[BUFS][N], src[N], back[N];
    long syncs = emu_count(&g, "stream_syncs"), pageable = emu_count(&g, "pageable_uploads"),
         pinned = emu_count(&g, "pinned_uploads");
    for (int i = 0; i < BUFS; i++) {
        tu_check_status(&g, g.api->alloc(g.ctx, (void **)&dev[i], N * sizeof(float)), "alloc");
        for (int j = 0; j < N; j++) host[i][j] = (float)(i * N + j);
        /* one source buffer for all: reused as soon as upload returns */
        memcpy(src, host[i], sizeof src);
        tu_check_status(&g, g.api->upload(g.ctx, dev[i], src, sizeof src), "upload");
        memset(src, 0xff, sizeof src);
    }
    cr_expect_eq(emu_count(&g, "stream_syncs"), syncs, "upload waited for the stream");
    cr_expect_eq(emu_count(&g, "pageable_uploads"), pageable, "upload copied from pageable memory");
    cr_expect_eq(emu_count(&g, "pinned_uploads"), pinned + BUFS);
    for (int i = 0; i < BUFS; i++) {
        tu_check_status(&g, g.api->download(g.ctx, back, dev[i], sizeof back), "download");
        cr_expect(memcmp(back, host[i], sizeof back) == 0,
                  "buffer %d: got %g at 0, want %g (a staging slot reused too early?)", i,
                  (double)back[0], (double)host[i][0]);
    }
    cr_expect_eq(emu_count(&g, "stream_syncs"), syncs + BUFS, "one wait per download");
    for (int i = 0; i < BUFS; i++) g.api->free(g.ctx, dev[i]);
    tu_close(&g);
}

/* A training step waits for the device once: the download of its loss and predictions (in one
 * buffer), read after the next batch is already queued. Uploads never wait. */
Test(cuda_emu, a_training_step_waits_once, .timeout = 300) {
    tu_backend g;
    cnb_dataset train = {0}, test = {0};
    cnb_run_settings s;
    cnb_model *m = three_steps_of_network(&g, &train, &test, &s);
    /* a first run grows the context's scratch (one wait, once per context) */
    cnb_trainer *t = tu_trainer(g.api, g.ctx, m, &train, &test, &s);
    cnb_run_result *r = tu_train_to_end(t);
    cnb_trainer_destroy(t);
    cnb_run_result_free(r);
    memset(r, 0, sizeof *r);
    t = tu_trainer(g.api, g.ctx, m, &train, &test, &s);
    long syncs = emu_count(&g, "stream_syncs"), pageable = emu_count(&g, "pageable_uploads");
    cr_assert_eq(cnb_trainer_run(t, r), 0, "%s", r->message);
    cr_assert_eq(r->total_steps, 3);
    /* 3 training steps and 8 / 4 = 2 evaluation batches: one wait each */
    cr_expect_eq(emu_count(&g, "stream_syncs") - syncs, 3 + 2, "waits: %ld",
                 emu_count(&g, "stream_syncs") - syncs);
    cr_expect_eq(emu_count(&g, "pageable_uploads"), pageable);
    cr_expect(isfinite(r->step_losses[0]) && r->step_losses[0] > 0.0f);
    tu_train_free(t, r);
    free(m);
    tu_close(&g);
    cnb_dataset_free(&train);
    cnb_dataset_free(&test);
}

/* A non-sticky error a library call left behind is cleared before a launch, so the kernel's
 * own launch status is what the slot reports. */
Test(cuda_emu, a_leftover_error_is_not_blamed_on_a_kernel) {
    tu_backend g;
    open_gpu(&g);
    emu_set_error_fn plant;
    void *sym = emu_hook(&g, "cnb_emu_test_set_last_error");
    memcpy(&plant, &sym, sizeof plant);
    float x[8] = {-2, -1, 0, 1, 2, 3, -4, 5}, y[8];
    float *dx = tu_dev_from(&g, x, 8), *dy = tu_dev_from(&g, x, 8);
    plant(1); /* cudaErrorInvalidValue, as a failed cuBLAS or cuDNN argument check leaves it */
    cnb_status st = g.api->activation_forward(g.ctx, CNB_ACT_RELU, 8, dy, dx, NULL);
    cr_expect_eq(st, CNB_OK, "the kernel was blamed: %s", g.api->last_error(g.ctx));
    tu_check_status(&g, g.api->synchronize(g.ctx), "synchronize");
    tu_to_host(&g, y, dy, sizeof y);
    for (int i = 0; i < 8; i++) cr_expect_eq(y[i], x[i] > 0 ? x[i] : 0.0f, "y[%d]", i);
    tu_dev_free(&g, dx);
    tu_dev_free(&g, dy);
    tu_close(&g);
}
