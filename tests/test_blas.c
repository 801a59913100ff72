/* test_blas.c — the OpenBLAS backend against the naive oracle, both loaded through the loader
 * as the harness loads them. The kernel sweeps (random and exact-integer inputs at every layer
 * shape of the five models and at odd shapes, every convolution layout) are in cpu_checks.inc,
 * shared with test_onednn.c; here is what only this backend has: batch chunking and scratch
 * reuse of the batched convolution layout, thread counts 1 vs 2, info(), its argument messages,
 * its max-pool workspace check and aligned allocations.
 *
 * If the blas backend was not built here, every test prints "[SKIP-ALL] reason" and skips. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

/* The three layouts a convolution can take (read by create() from CNB_BLAS_CONV); every
 * convolution check runs all of them. */
#define CPU_NVARIANTS 3
static const char *const cpu_variants[CPU_NVARIANTS] = {"auto", "batched", "per-image"};

/* Open the blas backend with `threads` and convolution layout `variant`. Skip the whole test if
 * the backend was not built here (CMake skips it without OpenBLAS); any other failure to open
 * it is a failure. */
static void cpu_open(tu_backend *b, int variant, int threads) {
    char why[CNB_ERR_LEN], path[4096];
    snprintf(path, sizeof path, "%s/libcnb_blas.so", cnb_backend_dir());
    if (access(path, F_OK) != 0) {
        const char *reason = "not built here (no libcnb_blas.so in the backend directory; CMake "
                             "skips it without OpenBLAS)";
        printf("[SKIP-ALL] blas backend unavailable: %s\n", reason);
        fflush(stdout);
        cr_skip_test("blas backend unavailable: %s", reason);
    }
    setenv("CNB_BLAS_CONV", cpu_variants[variant], 1);
    int rc = tu_try_open(b, "blas", threads, why, sizeof why);
    unsetenv("CNB_BLAS_CONV");
    if (rc != 0) cr_assert_fail("%s exists but does not open: %s", path, why);
}

#define CPU_SUITE blas
#define CPU_LABEL "blas"
#define CPU_EXACT_ZERO_SHARE 0.1
#define CPU_MAXPOOL_WS_BYTES sizeof(int32_t) /* one int32 argmax per output */
#define CPU_OPTIMIZER_EXACT 1                /* same formulas, same order as naive */
#define CPU_AVG_BACKWARD_EXACT 1
#define CPU_SIGNED_ZERO_EXACT 1

#include "cpu_checks.inc"

/* ---- convolution: the batched layout's chunks and scratch -------------------------------- */

/* The batched layout splits a batch into chunks of about 2 MB of columns (9 images at
 * simplecnn conv2's shape, so 20 images take 9 + 9 + 2, a partial chunk last, and the filter
 * gradient accumulates over them); an image whose columns alone exceed a chunk (1.6 M floats
 * here) goes one image per chunk. The model layers above split too; these pin the edge cases. */
Test(blas_conv, batch_split_into_chunks) {
    cpu_set p;
    cpu_set_open(&p);
    conv_case partial = {"chunks 9+9+2: 32->64 3x3 p1 14x14", 20, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1};
    conv_case big = {"one image per chunk: 16->4 5x5 p2 64x64", 3, 16, 64, 64, 4, 5, 5, 1, 1, 2, 2};
    check_conv(&p, &partial, 0, 500);
    check_conv(&p, &partial, 1, 501);
    check_conv(&p, &big, 0, 502);
    check_conv(&p, &big, 1, 503);
    cpu_set_close(&p);
}

/* Scratch buffers grow when a larger shape arrives and are reused for smaller ones; a stale or
 * too-small buffer would show up as a mismatch in one of these, run in this order on the same
 * contexts. */
Test(blas_conv, scratch_reuse_growing_then_shrinking) {
    cpu_set p;
    cpu_set_open(&p);
    const conv_case seq[] = {
        {"small first", 2, 2, 6, 6, 3, 3, 3, 1, 1, 1, 1},
        {"grow", 8, 16, 20, 20, 12, 3, 3, 1, 1, 1, 1},
        {"grow more", 16, 24, 18, 18, 20, 5, 5, 1, 1, 2, 2},
        {"shrink", 3, 4, 9, 7, 5, 3, 3, 2, 1, 0, 1},
        {"grow again, other aspect", 4, 8, 11, 31, 6, 3, 5, 1, 2, 1, 2},
        {"tiny", 1, 1, 3, 3, 1, 2, 2, 1, 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) check_conv(&p, &seq[i], 0, 600 + i);
    cpu_set_close(&p);
}

/* ---- threads, info ----------------------------------------------------------------------- */

typedef struct info_seen {
    char threads[32], openblas_threads[32], coretype[64], backend[32], compiled[64], core[64];
} info_seen;

static void collect_info(void *user, const char *key, const char *value) {
    info_seen *s = user;
    if (strcmp(key, "threads") == 0) snprintf(s->threads, sizeof s->threads, "%s", value);
    if (strcmp(key, "openblas.threads") == 0)
        snprintf(s->openblas_threads, sizeof s->openblas_threads, "%s", value);
    if (strcmp(key, "env.OPENBLAS_CORETYPE") == 0)
        snprintf(s->coretype, sizeof s->coretype, "%s", value);
    if (strcmp(key, "backend") == 0) snprintf(s->backend, sizeof s->backend, "%s", value);
    if (strcmp(key, "openblas.compiled") == 0)
        snprintf(s->compiled, sizeof s->compiled, "%s", value);
    if (strcmp(key, "openblas.corename") == 0) snprintf(s->core, sizeof s->core, "%s", value);
}

Test(blas_threads, one_and_two_threads_agree_and_each_context_keeps_its_count) {
    tu_backend t1, t2, r;
    cpu_open(&t1, 0, 1);
    cpu_open(&t2, 0, 2);
    tu_open(&r, "naive", 1);
    cnb_rng rng;
    cnb_rng_seed(&rng, 1600);
    cnb_conv_desc d = conv_desc(&model_convs[1]); /* simplecnn conv2 */
    const size_t nx = (size_t)d.n * d.c * d.h * d.w, ny = (size_t)d.n * d.k * d.p * d.q,
                 nw = (size_t)d.k * d.c * d.r * d.s;
    float *x = rand_nonzero(&rng, nx), *w = rand_nonzero(&rng, nw);
    float *y1 = host_floats(ny), *y2 = host_floats(ny), *yr = host_floats(ny);
    tu_backend *bs[2] = {&t1, &t2};
    float *outs[2] = {y1, y2};
    for (int i = 0; i < 2; i++) {
        tu_backend *b = bs[i];
        float *bx = tu_dev_from(b, x, nx), *bw = tu_dev_from(b, w, nw), *by = tu_dev_from(b, NULL, ny);
        tu_check_status(b, b->api->conv_forward(b->ctx, &d, by, bx, bw, NULL), "conv_forward");
        tu_to_host(b, outs[i], by, ny * sizeof(float));
        /* The pool size is process-wide: after this context's kernel it must be its own. */
        info_seen s = {0};
        tu_check_status(b, b->api->info(b->ctx, collect_info, &s), "info");
        cr_expect_eq(atoi(s.threads), i + 1, "context %d: info threads=%s", i + 1, s.threads);
        cr_expect_eq(atoi(s.openblas_threads), i + 1,
                     "context with threads=%d: OpenBLAS ran with %s threads", i + 1,
                     s.openblas_threads);
        tu_dev_free(b, bx), tu_dev_free(b, bw), tu_dev_free(b, by);
    }
    float *rx = tu_dev_from(&r, x, nx), *rw = tu_dev_from(&r, w, nw), *ry = tu_dev_from(&r, NULL, ny);
    tu_check_status(&r, r.api->conv_forward(r.ctx, &d, ry, rx, rw, NULL), "conv_forward");
    tu_to_host(&r, yr, ry, ny * sizeof(float));
    tu_expect_close("conv_forward threads=2 vs threads=1", y2, y1, ny, TOL);
    tu_expect_close("conv_forward threads=1 vs naive", y1, yr, ny, TOL);
    tu_expect_close("conv_forward threads=2 vs naive", y2, yr, ny, TOL);
    tu_dev_free(&r, rx), tu_dev_free(&r, rw), tu_dev_free(&r, ry);
    free(x), free(w), free(y1), free(y2), free(yr);
    tu_close(&t1);
    tu_close(&t2);
    tu_close(&r);
}

Test(blas_info, reports_openblas_and_environment) {
    tu_backend b;
    cpu_open(&b, 0, 2);
    info_seen s = {0};
    tu_check_status(&b, b.api->info(b.ctx, collect_info, &s), "info");
    cr_expect_str_eq(s.backend, "blas");
    cr_expect(strstr(s.compiled, "OpenBLAS") != NULL, "openblas.compiled='%s'", s.compiled);
    cr_expect(s.core[0] != '\0', "openblas.corename is empty");
    cr_expect_eq(atoi(s.threads), 2, "threads=%s, asked for 2", s.threads);
    const char *ct = getenv("OPENBLAS_CORETYPE");
    if (ct) cr_expect_str_eq(s.coretype, ct, "env.OPENBLAS_CORETYPE not reported as set");
    else cr_expect_str_eq(s.coretype, "", "env.OPENBLAS_CORETYPE reported but not set");
    tu_close(&b);
}

/* ---- argument checks --------------------------------------------------------------------- */

Test(blas_args, bad_arguments_are_refused_with_a_message) {
    tu_backend b;
    cpu_open(&b, 0, 1);
    float *buf = tu_dev_from(&b, NULL, 4096);
    cnb_conv_desc d = conv_desc(&edge_convs[0]);
    cnb_conv_desc bad = d;
    bad.p += 1;
    expect_invalid(&b, b.api->conv_forward(b.ctx, &bad, buf, buf, buf, NULL), "conv p", "p=");
    bad = d;
    bad.stride_w = 0;
    expect_invalid(&b, b.api->conv_backward_data(b.ctx, &bad, buf, buf, buf), "conv stride",
                   "stride_w");
    bad = d;
    bad.r = 20;
    expect_invalid(&b, b.api->conv_backward_filter(b.ctx, &bad, buf, buf, buf), "conv r",
                   "larger than the padded input");
    expect_invalid(&b, b.api->conv_forward(b.ctx, &d, buf, NULL, buf, NULL), "conv x", "x is NULL");

    cnb_pool_desc pd = {CNB_POOL_MAX, 1, 1, 4, 4, 2, 2, 2, 2, 0, 0, 2, 2};
    expect_invalid(&b, b.api->pool_forward(b.ctx, &pd, buf, buf, NULL), "max pool no workspace",
                   "workspace");
    cnb_pool_desc pbad = pd;
    pbad.pad_h = 2;
    pbad.p = 4;
    expect_invalid(&b, b.api->pool_forward(b.ctx, &pbad, buf, buf, buf), "max pool pad",
                   "padding");
    pbad = pd;
    pbad.mode = 7;
    expect_invalid(&b, b.api->pool_forward(b.ctx, &pbad, buf, buf, buf), "pool mode", "mode=7");

    expect_invalid(&b, b.api->gemm(b.ctx, 0, 0, 4, 4, 4, 1.0f, buf, 3, buf, 4, 0.0f, buf, 4),
                   "gemm lda", "lda=3");
    expect_invalid(&b, b.api->gemm(b.ctx, 0, 2, 4, 4, 4, 1.0f, buf, 4, buf, 4, 0.0f, buf, 4),
                   "gemm trans", "trans_b=2");
    expect_invalid(&b, b.api->activation_forward(b.ctx, 9, 4, buf, buf, NULL), "activation",
                   "unknown activation 9");

    int32_t labels[2] = {1, 10};
    int32_t *dl = tu_dev_bytes(&b, labels, sizeof labels);
    float *probs = tu_dev_from(&b, NULL, 20);
    expect_invalid(&b, b.api->softmax_ce_forward(b.ctx, 2, 10, probs, buf, NULL, buf, dl),
                   "softmax label", "labels[1]=10");
    cnb_adam_desc ad = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .step = 0};
    expect_invalid(&b, b.api->adam_step(b.ctx, &ad, 4, buf, buf, buf, buf), "adam step 0",
                   "step=0");
    tu_dev_free(&b, dl), tu_dev_free(&b, probs), tu_dev_free(&b, buf);
    tu_close(&b);
}

/* A max-pool backward given a workspace that pool_forward did not write must refuse, not
 * scatter out of bounds. */
Test(blas_args, pool_backward_rejects_a_foreign_workspace) {
    tu_backend b;
    cpu_open(&b, 0, 1);
    cnb_pool_desc pd = {CNB_POOL_MAX, 1, 1, 4, 4, 2, 2, 2, 2, 0, 0, 2, 2};
    int32_t junk[4] = {0, 5, 99, 3};
    void *ws = tu_dev_bytes(&b, junk, sizeof junk);
    float *dx = tu_dev_from(&b, NULL, 16), *dy = tu_dev_from(&b, NULL, 4);
    float ones[4] = {1, 1, 1, 1};
    tu_check_status(&b, b.api->upload(b.ctx, dy, ones, sizeof ones), "upload");
    expect_invalid(&b, b.api->pool_backward(b.ctx, &pd, dx, dy, NULL, NULL, ws),
                   "pool_backward junk workspace", "workspace");
    tu_dev_free(&b, ws), tu_dev_free(&b, dx), tu_dev_free(&b, dy);
    tu_close(&b);
}

/* ---- memory ------------------------------------------------------------------------------ */

Test(blas_memory, aligned_allocations_round_trip) {
    tu_backend b;
    cpu_open(&b, 0, 1);
    const size_t sizes[] = {0, 1, 63, 4096, 3 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = NULL;
        tu_check_status(&b, b.api->alloc(b.ctx, &p, sizes[i]), "alloc");
        cr_assert_not_null(p, "alloc(%zu) gave NULL", sizes[i]);
        cr_expect_eq((uintptr_t)p % 64, 0u, "alloc(%zu) = %p is not 64-byte aligned", sizes[i], p);
        if (sizes[i] > 0) {
            unsigned char *src = malloc(sizes[i]), *back = malloc(sizes[i]);
            cr_assert(src && back);
            for (size_t j = 0; j < sizes[i]; j++) src[j] = (unsigned char)(j * 31 + i);
            tu_check_status(&b, b.api->upload(b.ctx, p, src, sizes[i]), "upload");
            tu_check_status(&b, b.api->synchronize(b.ctx), "synchronize");
            tu_check_status(&b, b.api->download(b.ctx, back, p, sizes[i]), "download");
            cr_expect_eq(memcmp(src, back, sizes[i]), 0, "round trip of %zu bytes differs",
                         sizes[i]);
            free(src), free(back);
        }
        tu_check_status(&b, b.api->free(b.ctx, p), "free");
    }
    tu_close(&b);
}
