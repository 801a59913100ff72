/* test_comparison.c — `cnnbench --backend LIST|all`: the same training under each backend, one
 * table, one results file with every run and a `comparison` array, agreement with naive, and a
 * non-zero exit when a backend disagrees (a planted wrong kernel). */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runctx.h"
#include "testutil.h"

#define CNB CNB_TEST_CNNBENCH
#define LSAN_OFF tu_no_leak_check(1) /* these runs load onednn */
#define SHORT "--model network --steps 4 --train-limit 400 --test-limit 300 --naive-steps 3 " \
              "--no-progress"

static cJSON *read_results(const char *path) {
    char err[1024];
    cJSON *root = cnb_read_json(path, err, sizeof err);
    cr_assert_not_null(root, "%s", err);
    return root;
}

static const cJSON *row_of(const cJSON *root, const char *backend) {
    const cJSON *row;
    cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(root, "comparison")) {
        if (strcmp(cnb_json_str(row, "backend", ""), backend) == 0) return row;
    }
    return NULL;
}

static const cJSON *run_of(const cJSON *root, const char *backend) {
    const cJSON *run;
    cJSON_ArrayForEach(run, cJSON_GetObjectItemCaseSensitive(root, "runs")) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(run, "backend");
        if (strcmp(cnb_json_str(b, "name", ""), backend) == 0) return run;
    }
    return NULL;
}

Test(comparison, every_backend_one_table_and_file) {
    const char *out_path = CNB_TEST_TMP_DIR "/cmp-all.json";
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s%s --backend all " SHORT " --out %s", LSAN_OFF, CNB, out_path);
    char *out = NULL;
    int rc = tu_run(cmd, &out);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    cr_expect_not_null(strstr(out, "agreement with naive"), "%s", out);
    cr_expect_not_null(strstr(out, "CPU:GPU"), "%s", out);
    free(out);

    cJSON *root = read_results(out_path);
    cr_expect_str_eq(cnb_json_str(root, "kind", ""), "comparison");
    cr_expect_str_eq(cnb_json_str(root, "status", ""), "completed");
    const char *cpu[] = {"naive", "blas", "onednn"};
    for (int i = 0; i < 3; i++) {
        const cJSON *row = row_of(root, cpu[i]);
        cr_assert_not_null(row, "no comparison row for %s", cpu[i]);
        cr_expect_str_eq(cnb_json_str(row, "agreement", ""), "PASSED", "%s: %s", cpu[i],
                         cnb_json_str(row, "agreement_detail", ""));
        cr_expect_gt(cnb_json_num(row, "train_images_per_s", 0), 0, "%s", cpu[i]);
        cr_expect_gt(cnb_json_num(row, "infer_images_per_s", 0), 0, "%s", cpu[i]);
        cr_expect_gt(cnb_json_num(row, "speedup_vs_naive", 0), 0, "%s", cpu[i]);
        cr_expect_not_null(run_of(root, cpu[i]), "no run for %s", cpu[i]);
    }
    cr_expect_float_eq(cnb_json_num(row_of(root, "naive"), "speedup_vs_naive", 0), 1.0, 1e-12);
    cr_expect_str_eq(cnb_json_str(row_of(root, "naive"), "run", ""), "sample");
    cr_expect(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(row_of(root, "naive"),
                                                            "test_accuracy")),
              "naive's sample accuracy must not be reported as a test accuracy");
    const cJSON *blas = row_of(root, "blas");
    double acc = cnb_json_num(blas, "test_accuracy", -1);
    cr_expect(acc >= 0 && acc <= 1, "blas test accuracy %g", acc);
    /* a GPU backend that cannot run here is SKIPPED with its reason, never an error */
    const char *gpu[] = {"cuda", "cudnn"};
    for (int i = 0; i < 2; i++) {
        const cJSON *row = row_of(root, gpu[i]);
        if (!row) continue; /* not built here */
        if (strcmp(cnb_json_str(row, "run", ""), "skipped") != 0) continue; /* a GPU is here */
        cr_expect_str_eq(cnb_json_str(row, "agreement", ""), "SKIPPED", "%s", gpu[i]);
        cr_expect_str_eq(cnb_json_str(row, "device", ""), "gpu", "%s", gpu[i]);
        cr_expect_gt(strlen(cnb_json_str(row, "reason", "")), 10, "%s: no reason", gpu[i]);
    }
    /* same initial bits and batches: the first step's loss is the same under every backend */
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(run_of(root, "naive"), "step_losses");
    double first = cJSON_GetArrayItem(ref, 0)->valuedouble;
    for (int i = 1; i < 3; i++) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(run_of(root, cpu[i]), "step_losses");
        cr_assert_not_null(l);
        double got = cJSON_GetArrayItem(l, 0)->valuedouble;
        cr_expect(fabs(got - first) <= 1e-5 * fabs(first), "%s: first loss %.9g, naive %.9g",
                  cpu[i], got, first);
        cr_expect_eq(cJSON_GetArraySize(l), 4, "%s ran %d steps", cpu[i], cJSON_GetArraySize(l));
    }
    cr_expect_eq(cJSON_GetArraySize(ref), 3, "naive's sample is --naive-steps long");
    cJSON_Delete(root);
}

/* A planted wrong convolution in blas (the check engine's test fault) must make the comparison
 * say FAILED for blas, keep naive and onednn PASSED, and exit non-zero. */
Test(comparison, planted_wrong_kernel_fails) {
    const char *out_path = CNB_TEST_TMP_DIR "/cmp-fault.json";
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%sCNB_TEST_FAULT_BACKEND=blas CNB_TEST_PERTURB=conv_forward %s --backend "
             "naive,blas,onednn " SHORT " --out %s",
             LSAN_OFF, CNB, out_path);
    char *out = NULL;
    int rc = tu_run(cmd, &out);
    cr_expect_eq(rc, 1, "a disagreeing backend must exit 1, got %d:\n%s", rc, out);
    cr_expect_not_null(strstr(out, "blas: agreement FAILED"), "%s", out);
    free(out);
    cJSON *root = read_results(out_path);
    cr_expect_str_eq(cnb_json_str(row_of(root, "blas"), "agreement", ""), "FAILED");
    cr_expect_str_eq(cnb_json_str(row_of(root, "naive"), "agreement", ""), "PASSED");
    cr_expect_str_eq(cnb_json_str(row_of(root, "onednn"), "agreement", ""), "PASSED");
    cJSON_Delete(root);
}

Test(comparison, usage_errors_name_the_flag) {
    static const struct {
        const char *args, *expect;
    } cases[] = {
        {"--backend naive,naive", "listed twice"},
        {"--backend naive,blsa", "unknown backend 'blsa'"},
        {"--backend naive,blas --save x.safetensors", "--save works with one backend"},
        {"--backend all --eval-only", "--eval-only works with one backend"},
        {"--backend naive,,blas", "not a comma list"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        int rc = tu_runf(&out,
                         "%s --model network %s", CNB, cases[i].args);
        cr_expect_eq(rc, 2, "%s: exit %d\n%s", cases[i].args, rc, out);
        cr_expect_not_null(strstr(out, cases[i].expect), "%s: %s", cases[i].args, out);
        free(out);
    }
}

/* `cnnbench report` reads a comparison file by its kind: the table, throughput per backend and
 * every backend's loss curve on one chart. */
Test(comparison, report_draws_it) {
    const char *out_path = CNB_TEST_TMP_DIR "/cmp-report.json";
    char *out = NULL;
    int rc = tu_runf(&out,
                     "%s --backend naive,blas " SHORT " --quiet --out %s", CNB, out_path);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    if (system("command -v gnuplot > /dev/null 2>&1") != 0) cr_skip_test("gnuplot not installed");
    rc = tu_runf(&out,
                 "%s report %s --out %s/cmp-report", CNB, out_path, CNB_TEST_TMP_DIR);
    cr_assert_eq(rc, 0, "%s", out);
    cr_expect_not_null(strstr(out, "(2 charts)"), "%s", out);
    free(out);
    const char *files[] = {"cmp-report-throughput.png", "cmp-report-loss-curves.png", "report.md"};
    for (int i = 0; i < 3; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/cmp-report/%s", CNB_TEST_TMP_DIR, files[i]);
        FILE *f = fopen(p, "r");
        cr_expect_not_null(f, "%s missing", p);
        if (f) fclose(f);
    }
}
