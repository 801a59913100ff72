/* test_work.c — the arithmetic a model costs (flops.h) and the machine's fp32 ceiling as the
 * backends reach it (`cnnbench ceiling`): the counts against sums worked out by hand from the
 * layer shapes in models/, the verb's figures, its product check and its usage errors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flops.h"
#include "runctx.h"
#include "testutil.h"

#define CNB CNB_TEST_CNNBENCH

/* Multiply-adds per image worked out by hand from the model files, and those of the first layer
 * (whose input gradient the trainer never computes: the images get none).
 *  simplecnn: conv1 32 maps of 28x28, 1x3x3 each = 225,792; conv2 64 maps of 14x14, 32x3x3
 *             each = 3,612,672; fc1 128 x 3136 = 401,408; fc2 10 x 128 = 1,280.
 *  network:   conv1 6 x 24x24 x 25 = 86,400; conv2 12 x 8x8 x 150 = 115,200; 192->120 = 23,040;
 *             120->60 = 7,200; 60->10 = 600.
 * Inference is 2 FLOP per multiply-add; training three times that, less the first layer's
 * input gradient. */
Test(work, counts_by_hand) {
    static const struct {
        const char *model;
        double macs, first_layer_macs;
    } cases[] = {{"simplecnn", 225792.0 + 3612672 + 401408 + 1280, 225792.0},
                 {"network", 86400.0 + 115200 + 23040 + 7200 + 600, 86400.0}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        cnb_model *m = tu_load_model(cases[c].model);
        cnb_model_flops f;
        cnb_model_flops_count(m, &f);
        const double fwd = 2.0 * cases[c].macs;
        cr_expect_float_eq(f.inference, fwd, 0.5, "%s inference %.0f", m->name, f.inference);
        cr_expect_float_eq(f.training, 3 * fwd - 2.0 * cases[c].first_layer_macs, 0.5,
                           "%s training %.0f", m->name, f.training);
        cr_expect_float_eq(f.layer[0].backward_data, 0.0, 0.0, "no input gradient at layer 0");
        for (int i = 0; i < m->n_layers; i++)
            if (m->layers[i].type != CNB_LAYER_CONV && m->layers[i].type != CNB_LAYER_LINEAR)
                cr_expect_float_eq(f.layer[i].forward, 0.0, 0.0, "%s counts no multiply-adds",
                                   m->layers[i].name);
        free(m);
    }
}

Test(work, show_model_prints_the_work) {
    char *out = NULL;
    int rc = tu_run(CNB " --show-model simplecnn", &out);
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect_not_null(strstr(out, "work per image: 8.48 MFLOP inference, 25.00 MFLOP training"),
                       "%s", out);
    free(out);
}

static const cJSON *backend_row(const cJSON *root, const char *name) {
    const cJSON *b;
    cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(root, "backends"))
        if (strcmp(cnb_json_str(b, "backend", ""), name) == 0) return b;
    return NULL;
}

Test(work, ceiling_measures_and_records) {
    const char *path = CNB_TEST_TMP_DIR "/ceiling.json";
    char *out = NULL;
    int rc = tu_run(CNB " ceiling --backends naive --size 96 --repeats 3 --threads 1 --out "
                        CNB_TEST_TMP_DIR "/ceiling.json",
                    &out);
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect_not_null(strstr(out, "96 x 96, 1 thread, 3 timed products"), "%s", out);
    free(out);
    cJSON *root = tu_read_json(path);
    cr_expect_str_eq(cnb_results_kind(root), "ceiling");
    const cJSON *b = backend_row(root, "naive");
    cr_assert_not_null(b);
    cr_expect_str_eq(cnb_json_str(b, "status", ""), "ok");
    double best = cnb_json_num(b, "gflops_best", -1), med = cnb_json_num(b, "gflops_median", -1);
    cr_expect(best > 0 && med > 0 && best >= med, "best %g, median %g", best, med);
    cr_expect(cnb_json_num(b, "max_rel_err", 1) < 1e-5, "naive's product is checked");
    cJSON_Delete(root);
}

/* A kernel that is fast but wrong cannot set the ceiling: the planted gemm fault (one entry of
 * C off by one) is caught by the sampled check and the run fails naming the backend. */
Test(work, ceiling_refuses_a_wrong_product) {
    char *out = NULL;
    int rc = tu_run("CNB_TEST_FAULT_BACKEND=naive CNB_TEST_PERTURB=gemm " CNB
                    " ceiling --backends naive --size 128 --repeats 1 --threads 1",
                    &out);
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect_not_null(strstr(out, "naive    FAILED: wrong product"), "%s", out);
    free(out);
}

Test(work, ceiling_usage_errors) {
    static const struct {
        const char *args, *expect;
        int rc;
    } cases[] = {
        {"--size 10", "--size", 2},
        {"--repeats 0", "--repeats", 2},
        {"--frobnicate", "frobnicate", 2},
        {"--backends nosuch --size 64", "nosuch", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[512], *out = NULL;
        snprintf(cmd, sizeof cmd, "%s ceiling %s", CNB, cases[i].args);
        int rc = tu_run(cmd, &out);
        cr_expect_eq(rc, cases[i].rc, "%s: exit %d\n%s", cases[i].args, rc, out);
        cr_expect_not_null(strstr(out, cases[i].expect), "%s: %s", cases[i].args, out);
        free(out);
    }
}

/* bench records the same work and the GFLOP/s its medians stand for. */
Test(work, bench_records_gflops) {
    const char *path = CNB_TEST_TMP_DIR "/work-bench.json";
    char *out = NULL;
    int rc = tu_run(CNB " bench --backends naive --model network --quick --no-breakdown --quiet "
                        "--threads 1 --out " CNB_TEST_TMP_DIR "/work-bench.json",
                    &out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_expect_not_null(strstr(out, "work: 1.22 MFLOP per training image"), "%s", out);
    free(out);
    cJSON *root = tu_read_json(path);
    const cJSON *cell = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "cells"), 0);
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(cell, "work");
    cr_assert_not_null(w, "cell has a work block");
    double ips = cnb_json_num(cJSON_GetObjectItemCaseSensitive(cell, "train_images_per_s"),
                              "median", -1);
    cr_expect_float_eq(cnb_json_num(w, "train_flop_per_image", 0), 1221840.0, 0.5);
    cr_expect_float_eq(cnb_json_num(w, "train_gflops_median", 0), ips * 1221840.0 * 1e-9,
                       1e-6 * ips, "GFLOP/s = median images/s x FLOP per image");
    cJSON_Delete(root);
}

/* A training results file carries the same counts, so its images/s convert to GFLOP/s. */
Test(work, training_results_carry_the_work) {
    const char *path = CNB_TEST_TMP_DIR "/work-train.json";
    char *out = NULL;
    int rc = tu_run(CNB " --backend naive --model network --steps 2 --train-limit 200 "
                        "--test-limit 100 --quiet --no-progress --out " CNB_TEST_TMP_DIR
                        "/work-train.json",
                    &out);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    cJSON *root = tu_read_json(path);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model");
    cr_expect_float_eq(cnb_json_num(m, "train_flop_per_image", 0), 1221840.0, 0.5);
    cr_expect_float_eq(cnb_json_num(m, "infer_flop_per_image", 0), 464880.0, 0.5);
    cJSON_Delete(root);
}
