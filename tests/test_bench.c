/* test_bench.c — the profiling proxy and `cnnbench bench`: the proxy forwards every call and
 * accounts kernel time per family, splitting training steps from the evaluation that follows;
 * a quick bench writes results JSON (schema, context, per-run samples, breakdown, ratios), the
 * CSV and the github-action-benchmark export, and reports an unusable backend as SKIPPED. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "data.h"
#include "machine.h"
#include "model.h"
#include "profiler.h"
#include "results.h"
#include "runctx.h"
#include "testutil.h"
#include "train.h"

Test(bench, proxy_times_families_and_splits_training_from_evaluation, .timeout = 60) {
    cnb_model *m = tu_load_model("network");
    cnb_dataset train = {0}, test = {0};
    tu_open_fashion(300, 50, &train, &test);
    tu_backend b;
    tu_open(&b, "naive", 1);
    cnb_profiler *p = malloc(sizeof *p);
    cnb_profiler_init(p, b.api, b.ctx, 1);
    cr_expect_str_eq(cnb_profiler_api(p)->name, "naive");
    cr_expect_eq(p->use_timers, 0, "naive has no timer slots");
    cnb_run_settings s;
    cnb_settings_from_model(m, &s);
    s.epochs = 1;
    s.max_steps = 3;
    s.eval_batch = 50;
    s.no_fusion = 1; /* the separate kernels; fused_families_get_their_own_rows has the rest */
    cnb_trainer *t = tu_trainer(cnb_profiler_api(p), cnb_profiler_ctx(p), m, &train, &test, &s);
    cnb_profiler_reset(p);
    cnb_run_result *r = tu_train_to_end(t);
    cr_assert_eq(r->total_steps, 3);
    /* network has 2 convolutions and 3 linear layers: per step 2 conv forwards, 2 filter
     * gradients, 1 data gradient (the first layer needs none), 3 forward products, 6 gradient
     * products, and one optimizer call over the flat parameter block */
    cr_expect_eq(p->train.calls[CNB_KF_CONV_FWD], 2 * 3);
    cr_expect_eq(p->train.calls[CNB_KF_CONV_BWD_FILTER], 2 * 3);
    cr_expect_eq(p->train.calls[CNB_KF_CONV_BWD_DATA], 1 * 3);
    cr_expect_eq(p->train.calls[CNB_KF_GEMM_FWD], 3 * 3);
    cr_expect_eq(p->train.calls[CNB_KF_GEMM_BWD], (3 + 3) * 3); /* weight and input gradients */
    cr_expect_eq(p->train.calls[CNB_KF_OPTIMIZER], 3);
    cr_expect_gt(p->train.seconds[CNB_KF_CONV_FWD], 0.0);
    cr_expect_gt(p->train.seconds[CNB_KF_CONV_BWD_FILTER], 0.0);
    /* what followed the last optimizer step is the evaluation: forward kernels only */
    cr_expect_eq(p->pending.calls[CNB_KF_CONV_FWD], 2, "one evaluation batch of 50");
    cr_expect_eq(p->pending.calls[CNB_KF_OPTIMIZER], 0);
    cr_expect_eq(p->pending.calls[CNB_KF_CONV_BWD_FILTER], 0);
    cr_expect_gt(p->pending.calls[CNB_KF_SOFTMAX_FWD], 0);
    double kern = 0;
    for (int f = 0; f < CNB_KF_COUNT; f++) kern += p->train.seconds[f];
    cr_expect_leq(kern, r->epoch[0].train_seconds * 1.001 + 1e-4,
                  "kernel time %g exceeds the step time %g", kern, r->epoch[0].train_seconds);
    tu_train_free(t, r);
    cnb_profiler_release(p);
    free(p);
    tu_close(&b);
    cnb_dataset_free(&train);
    cnb_dataset_free(&test);
    free(m);
}

/* With fusion (naive fills the group), each conv + ReLU forward is one conv_bias_act_fwd call
 * and each max pool + ReLU backward one pool_act_bwd call; the linear layers' ReLUs stay
 * separate, and the losses are those of the separate kernels bit for bit (naive's fused slots
 * are its separate kernels in a row). */
Test(bench, fused_families_get_their_own_rows, .timeout = 60) {
    char path[4096], err[CNB_ERR_LEN];
    cnb_model *m = calloc(1, sizeof *m);
    cr_assert_eq(cnb_model_resolve("network", path, sizeof path, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cnb_model_load(path, m, NULL, err, sizeof err), 0, "%s", err);
    cnb_dataset train = {0}, test = {0};
    cr_assert_eq(cnb_dataset_open("fashion-mnist", NULL, 300, 50, &train, &test, err, sizeof err),
                 0, "%s", err);
    tu_backend b;
    tu_open(&b, "naive", 1);
    float losses[2][3];
    for (int fused = 1; fused >= 0; fused--) {
        cnb_profiler *p = malloc(sizeof *p);
        cnb_profiler_init(p, b.api, b.ctx, 1);
        cnb_run_settings s;
        cnb_settings_from_model(m, &s);
        s.epochs = 1;
        s.max_steps = 3;
        s.eval_batch = 50;
        s.no_fusion = !fused;
        cnb_trainer *t;
        cr_assert_eq(cnb_trainer_create(cnb_profiler_api(p), cnb_profiler_ctx(p), m, &train,
                                        &test, &s, &t, err, sizeof err), 0, "%s", err);
        cnb_profiler_reset(p);
        cnb_run_result *r = calloc(1, sizeof *r);
        cr_assert_eq(cnb_trainer_run(t, r), 0, "%s", r->message);
        memcpy(losses[fused], r->step_losses, sizeof losses[fused]);
        const long *c = p->train.calls;
        /* network: conv-relu-maxpool twice, then linear-relu twice and a last linear */
        cr_expect_eq(c[CNB_KF_CONV_ACT_FWD], fused ? 2 * 3 : 0);
        cr_expect_eq(c[CNB_KF_CONV_FWD], fused ? 0 : 2 * 3);
        cr_expect_eq(c[CNB_KF_POOL_ACT_BWD], fused ? 2 * 3 : 0);
        cr_expect_eq(c[CNB_KF_POOL_BWD], fused ? 0 : 2 * 3);
        cr_expect_eq(c[CNB_KF_ACT_FWD], (fused ? 2 : 4) * 3);
        cr_expect_eq(c[CNB_KF_ACT_BWD], (fused ? 2 : 4) * 3);
        if (fused) cr_expect_gt(p->train.seconds[CNB_KF_CONV_ACT_FWD], 0.0);
        cr_expect_str_eq(cnb_kfamily_name(CNB_KF_CONV_ACT_FWD), "conv_bias_act_fwd");
        cr_expect_str_eq(cnb_kfamily_direction(CNB_KF_POOL_ACT_BWD), "backward");
        cnb_trainer_destroy(t);
        cnb_run_result_free(r);
        free(r);
        cnb_profiler_release(p);
        free(p);
    }
    cr_expect_eq(memcmp(losses[0], losses[1], sizeof losses[0]), 0,
                 "fused losses %g %g %g, separate %g %g %g", losses[1][0], losses[1][1],
                 losses[1][2], losses[0][0], losses[0][1], losses[0][2]);
    tu_close(&b);
    cnb_dataset_free(&train);
    cnb_dataset_free(&test);
    free(m);
}

/* numpy.percentile's default (linear between order statistics) gives these; order of the input
 * does not matter and the input is left as it was. */
Test(bench, quantile_interpolates_between_order_statistics) {
    double x[] = {4, 1, 3, 2};
    cr_expect_float_eq(cnb_quantile(x, 4, 0.75), 3.25, 1e-12);
    cr_expect_float_eq(cnb_quantile(x, 4, 0.5), 2.5, 1e-12);
    cr_expect_float_eq(cnb_quantile(x, 4, 0.0), 1.0, 1e-12);
    cr_expect_float_eq(cnb_quantile(x, 4, 1.0), 4.0, 1e-12);
    cr_expect_float_eq(cnb_quantile(x, 3, 0.75), 3.5, 1e-12); /* {4, 1, 3}: 3 + 0.5 x (4 - 3) */
    cr_expect_float_eq(cnb_quantile(x, 1, 0.75), 4.0, 1e-12);
    cr_expect_float_eq(cnb_quantile(x, 0, 0.75), 0.0, 1e-12);
    cr_expect(x[0] == 4 && x[1] == 1 && x[2] == 3 && x[3] == 2, "input reordered");
}

/* NAME:nofusion is NAME with --no-fusion in the same rounds: its breakdown has the separate
 * rows and no fused ones, the plain entry the reverse, and both get a ratio. */
Test(bench, nofusion_entry_runs_the_separate_kernels_beside_the_fused_ones, .timeout = 120) {
    const char *json = CNB_TEST_TMP_DIR "/bench-nofusion.json";
    char *out;
    int rc = tu_runf(&out,
                     "%s bench --backends naive,naive:nofusion --model network --quick "
                     "--min-runs 2 --max-runs 2 --min-time 0 --steps-per-run 1 --infer-images 50 "
                     "--out %s 2>&1",
                     CNB_TEST_CNNBENCH, json);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    cr_expect_not_null(strstr(out, "naive:nofusion"), "%s", out);
    cJSON *root = tu_read_json(json);
    const cJSON *c, *cells = cJSON_GetObjectItem(root, "cells");
    int seen = 0;
    cJSON_ArrayForEach(c, cells) {
        const char *be = cJSON_GetObjectItem(c, "backend")->valuestring;
        int separate = strcmp(be, "naive:nofusion") == 0;
        cr_assert(separate || strcmp(be, "naive") == 0, "unexpected backend %s", be);
        const cJSON *fam = cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(c, "breakdown"), "train"), "families");
        cr_assert_not_null(fam, "%s: no breakdown", be);
        const cJSON *fused = cJSON_GetObjectItem(cJSON_GetObjectItem(fam, "conv_bias_act_fwd"),
                                                 "calls");
        const cJSON *conv = cJSON_GetObjectItem(cJSON_GetObjectItem(fam, "conv_fwd"), "calls");
        double nf = cJSON_IsNumber(fused) ? fused->valuedouble : 0;
        double nc = cJSON_IsNumber(conv) ? conv->valuedouble : 0;
        cr_expect(separate ? nf == 0 && nc > 0 : nf > 0 && nc == 0,
                  "%s: %g fused and %g separate convolution calls", be, nf, nc);
        seen++;
    }
    cr_expect_eq(seen, 2);
    cJSON_Delete(root);
    free(out);
}

Test(bench, quick_bench_writes_json_csv_and_gab, .timeout = 120) {
    const char *json = CNB_TEST_TMP_DIR "/bench-quick.json", *csv = CNB_TEST_TMP_DIR "/bench-quick.csv",
               *gab = CNB_TEST_TMP_DIR "/bench-quick.gab.json";
    char *out;
    int rc = tu_runf(&out,
                     "%s bench --backends naive,blas,cuda --model network --quick --min-runs 3 "
                     "--max-runs 3 --min-time 0 --steps-per-run 3 --infer-images 100 --out %s "
                     "--csv %s --gab %s 2>&1",
                     CNB_TEST_CNNBENCH, json, csv, gab);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    cr_expect_not_null(strstr(out, "per-kernel breakdown"), "%s", out);
    cr_expect_not_null(strstr(out, "vs naive"), "%s", out);
    cJSON *root = tu_read_json(json);
    cr_expect_eq(cJSON_GetObjectItem(root, "schema_version")->valueint, 2);
    cr_expect_str_eq(cJSON_GetObjectItem(root, "kind")->valuestring, "bench");
    const char *ctx_keys[] = {"machine", "environment", "pinning", "threads", "seed", "build_type",
                              "settings", "backends"};
    for (size_t i = 0; i < sizeof ctx_keys / sizeof ctx_keys[0]; i++)
        cr_expect_not_null(cJSON_GetObjectItem(root, ctx_keys[i]), "missing %s", ctx_keys[i]);
    cr_expect_eq(cnb_json_int(cJSON_GetObjectItem(root, "settings"), "settle_ms", -1),
                 BENCH_DEFAULT_SETTLE_MS, "the settle pause is recorded");
    const cJSON *c, *cells = cJSON_GetObjectItem(root, "cells");
    int ok = 0, skipped = 0;
    cJSON_ArrayForEach(c, cells) {
        const char *be = cJSON_GetObjectItem(c, "backend")->valuestring;
        const char *st = cJSON_GetObjectItem(c, "status")->valuestring;
        if (strcmp(be, "cuda") == 0) {
            cr_expect_str_eq(st, "skipped");
            cr_expect_not_null(cJSON_GetObjectItem(c, "reason"));
            skipped++;
            continue;
        }
        if (strcmp(be, "blas") == 0 && strcmp(st, "ok") != 0) continue; /* blas not built */
        cr_assert_str_eq(st, "ok", "%s: %s", be, cJSON_GetObjectItem(c, "reason")
                                                      ? cJSON_GetObjectItem(c, "reason")->valuestring
                                                      : "");
        ok++;
        cr_expect_eq(cJSON_GetObjectItem(c, "runs")->valueint, 3);
        const cJSON *tr = cJSON_GetObjectItem(c, "train_images_per_s");
        cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(tr, "values")), 3);
        double mn = cJSON_GetObjectItem(tr, "min")->valuedouble,
               md = cJSON_GetObjectItem(tr, "median")->valuedouble,
               mx = cJSON_GetObjectItem(tr, "max")->valuedouble;
        cr_expect(mn > 0 && mn <= md && md <= mx, "%s: min %g median %g max %g", be, mn, md, mx);
        cr_expect_not_null(cJSON_GetObjectItem(tr, "outliers"));
        const cJSON *load = cJSON_GetObjectItem(c, "machine_load");
        cr_assert_not_null(load, "%s: no machine_load", be);
        cr_expect_geq(cJSON_GetObjectItem(load, "other_cores")->valuedouble, 0.0);
        cr_expect(cJSON_IsBool(cJSON_GetObjectItem(load, "disturbed")));
        const cJSON *bd = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "breakdown"), "train");
        cr_assert_not_null(bd, "%s has no breakdown", be);
        /* CPU backends have no timer slots: the breakdown says it used the host clock */
        const cJSON *how = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "breakdown"), "timing");
        cr_expect(cJSON_IsString(how) &&
                      strcmp(how->valuestring, "host clock after synchronize") == 0,
                  "%s: breakdown timing %s", be, cJSON_IsString(how) ? how->valuestring : "?");
        const cJSON *fam = cJSON_GetObjectItem(bd, "families");
        /* a backend with the fusion group runs conv + ReLU as one fused call */
        cr_expect(cJSON_GetObjectItem(fam, "conv_fwd") ||
                      cJSON_GetObjectItem(fam, "conv_bias_act_fwd"), "%s: no convolution row", be);
        cr_expect_not_null(cJSON_GetObjectItem(fam, "conv_bwd_filter"));
        double step = cJSON_GetObjectItem(bd, "step_ms")->valuedouble;
        double kern = cJSON_GetObjectItem(bd, "kernel_ms")->valuedouble;
        double ovh = cJSON_GetObjectItem(bd, "overhead_ms")->valuedouble;
        cr_expect(step > 0 && kern > 0 && kern <= step * 1.01, "step %g kernel %g", step, kern);
        cr_expect(ovh > -0.01 * step && ovh < step, "overhead %g of a %g ms step", ovh, step);
    }
    cr_expect_geq(ok, 1);
    cr_expect_eq(skipped, 1);
    if (ok == 2) {
        const cJSON *rr = cJSON_GetObjectItem(root, "ratios"), *c2;
        int vs_naive = 0;
        cJSON_ArrayForEach(c, rr) {
            if (strcmp(cJSON_GetObjectItem(c, "kind")->valuestring, "vs_naive") != 0) continue;
            vs_naive++;
            cr_expect_str_eq(cJSON_GetObjectItem(c, "backend")->valuestring, "blas");
            double med = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "train"), "median")->valuedouble;
            cr_expect_gt(med, 0.0);
            /* One run per round here (max-runs / min-runs = 1), so the per-round speeds are the
             * runs: the uncontended ratio is the upper quartiles of the runs, divided. */
            const cJSON *unc = cJSON_GetObjectItem(c, "uncontended");
            cr_assert_not_null(unc, "no uncontended ratio");
            double q[2];
            int k = 0;
            cJSON_ArrayForEach(c2, cells) {
                const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(c2, "train_images_per_s"),
                                                     "values");
                const char *be = cJSON_GetObjectItem(c2, "backend")->valuestring;
                if (!v || cJSON_GetArraySize(v) != 3) continue;
                double x[3];
                for (int i = 0; i < 3; i++) x[i] = cJSON_GetArrayItem(v, i)->valuedouble;
                /* sorted, the upper quartile of 3 lies halfway between the middle and the top */
                for (int a = 0; a < 3; a++)
                    for (int b = a + 1; b < 3; b++)
                        if (x[b] < x[a]) { double t = x[a]; x[a] = x[b]; x[b] = t; }
                q[strcmp(be, "blas") == 0 ? 0 : 1] = 0.5 * (x[1] + x[2]);
                k++;
            }
            cr_assert_eq(k, 2);
            cr_expect_float_eq(cJSON_GetObjectItem(unc, "train")->valuedouble, q[0] / q[1],
                               1e-9 * q[0] / q[1], "uncontended %g, expected %g / %g",
                               cJSON_GetObjectItem(unc, "train")->valuedouble, q[0], q[1]);
            cr_expect_float_eq(cJSON_GetObjectItem(unc, "quantile")->valuedouble, 0.75, 1e-12);
        }
        cr_expect_eq(vs_naive, 1);
    }
    /* CSV: a header and one row per cell */
    FILE *f = fopen(csv, "r");
    cr_assert_not_null(f);
    char line[4096];
    int rows = 0;
    cr_assert_not_null(fgets(line, sizeof line, f));
    cr_expect_eq(strncmp(line, "backend,model,batch,status,runs,train_ips_median", 48), 0, "%s", line);
    cr_expect_not_null(strstr(line, ",train_speedup_uncontended_vs_naive,"), "%s", line);
    while (fgets(line, sizeof line, f)) rows++;
    fclose(f);
    cr_expect_eq(rows, 3);
    /* github-action-benchmark: [{name, unit, value, range}] */
    cJSON *g = tu_read_json(gab);
    cr_assert(cJSON_IsArray(g));
    cr_expect_geq(cJSON_GetArraySize(g), 2);
    cJSON_ArrayForEach(c, g) {
        cr_expect(cJSON_IsString(cJSON_GetObjectItem(c, "name")));
        cr_expect(cJSON_IsString(cJSON_GetObjectItem(c, "unit")));
        cr_expect(cJSON_IsNumber(cJSON_GetObjectItem(c, "value")));
        cr_expect(cJSON_IsString(cJSON_GetObjectItem(c, "range")));
    }
    cJSON_Delete(g);
    cJSON_Delete(root);
    free(out);
}

/* Every backend's turn in a round starts after the settle pause (so a pool the previous backend
 * left spinning has stopped): 3 rounds of 2 backends with --settle-ms 250 cannot take less than
 * 6 pauses. A lower bound only, which load on the machine cannot break. */
Test(bench, backends_turns_wait_for_the_settle_pause, .timeout = 120) {
    char *out;
    double t0 = cnb_now();
    int rc = tu_runf(&out,
                     "%s bench --backends naive,naive:nofusion --model network --min-runs 3 "
                     "--max-runs 3 --min-time 0 --warmup 0 --infer-images 10 --no-breakdown "
                     "--settle-ms 250 --quiet --out %s/bench-settle.json 2>&1",
                     CNB_TEST_CNNBENCH, CNB_TEST_TMP_DIR);
    double took = cnb_now() - t0;
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    cr_expect_geq(took, 6 * 0.25, "3 rounds x 2 backends x 250 ms, took %.2f s", took);
    free(out);
    rc = tu_runf(&out, "%s bench --settle-ms -1 2>&1", CNB_TEST_CNNBENCH);
    cr_expect_eq(rc, 2, "exit %d:\n%s", rc, out);
    cr_expect_not_null(strstr(out, "--settle-ms"), "%s", out);
    free(out);
}

Test(bench, report_draws_charts_from_training_and_bench_results, .timeout = 120) {
    char *out;
    const char *train = CNB_TEST_TMP_DIR "/report-train.json";
    int rc = tu_runf(&out,
                     "%s --backend naive --model network --epochs 2 --train-limit 200 "
                     "--test-limit 100 --no-progress --quiet --out %s 2>&1",
                     CNB_TEST_CNNBENCH, train);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    const char *bench = CNB_TEST_TMP_DIR "/report-bench.json";
    rc = tu_runf(&out,
                 "%s bench --backends naive --model network --quick --min-runs 2 --max-runs 2 "
                 "--min-time 0 --steps-per-run 2 --infer-images 50 --out %s --quiet 2>&1",
                 CNB_TEST_CNNBENCH, bench);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    if (system("command -v gnuplot > /dev/null 2>&1") != 0) {
        printf("gnuplot not installed: report charts not checked\n");
        cr_skip_test("gnuplot not installed");
    }
    rc = tu_runf(&out,
                 "rm -rf %s/report && %s report %s %s --out %s/report 2>&1",
                 CNB_TEST_TMP_DIR, CNB_TEST_CNNBENCH, train, bench, CNB_TEST_TMP_DIR);
    cr_expect_eq(rc, 0, "%s", out);
    const char *pngs[] = {"report-train-loss.png", "report-train-accuracy.png",
                          "report-train-confusion.png", "report-bench-throughput.png",
                          "report-bench-breakdown.png"};
    char md[8192] = "";
    char path[4096];
    snprintf(path, sizeof path, "%s/report/report.md", CNB_TEST_TMP_DIR);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "no %s", path);
    size_t n = fread(md, 1, sizeof md - 1, f);
    md[n] = '\0';
    fclose(f);
    for (size_t i = 0; i < sizeof pngs / sizeof pngs[0]; i++) {
        snprintf(path, sizeof path, "%s/report/%s", CNB_TEST_TMP_DIR, pngs[i]);
        FILE *p = fopen(path, "rb");
        cr_expect_not_null(p, "missing chart %s", path);
        if (p) {
            unsigned char sig[8] = {0};
            cr_expect_eq(fread(sig, 1, 8, p), 8u);
            cr_expect(sig[0] == 0x89 && sig[1] == 'P' && sig[2] == 'N' && sig[3] == 'G',
                      "%s is not a PNG", path);
            fclose(p);
        }
        cr_expect_not_null(strstr(md, pngs[i]), "report.md does not embed %s", pngs[i]);
    }
    free(out);
}

/* The load probe counts another process's CPU as other work and this process's own CPU not. A
 * child spins for 0.6 s while the parent sleeps: at least half a core of other work must show
 * (other processes on the machine can only add to it). */
Test(bench, load_probe_sees_another_process_spinning, .timeout = 30) {
    cnb_load_probe p;
    cnb_load_probe_start(&p);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        volatile unsigned long spin = 0;
        do {
            for (int i = 0; i < 100000; i++) spin++;
            clock_gettime(CLOCK_MONOTONIC, &t);
        } while ((double)(t.tv_sec - t0.tv_sec) + 1e-9 * (double)(t.tv_nsec - t0.tv_nsec) < 0.6);
        _exit(0);
    }
    int st;
    cr_assert_eq(waitpid(child, &st, 0), child);
    double other, steal;
    cr_assert_eq(cnb_load_probe_stop(&p, &other, &steal), 0);
    cr_expect_geq(other, 0.5, "a spinning child showed as only %.2f cores of other work", other);
    cr_expect_geq(steal, 0.0);
}
