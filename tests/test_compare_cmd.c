/* test_compare_cmd.c — `cnnbench compare`, the regression gate: on hand-made results it flags a
 * within-run speed-up drop beyond threshold and noise, lets a drop inside the noise or below the
 * threshold pass, gates absolute images/s only when asked, and fails on a lost agreement in
 * check results; end to end, a planted 2x slowdown of blas's convolutions (through the profiling
 * proxy's CNB_TEST_SLOWDOWN_CONV) is reported as a regression and exits non-zero. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testutil.h"

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* A bench results file with one blas cell and one blas/naive ratio. */
static void bench_file(const char *path, double ratio, double ratio_mad, double ips,
                       double ips_mad) {
    char text[4096];
    snprintf(text, sizeof text,
             "{\"schema_version\": 1, \"kind\": \"bench\", \"created\": \"x\","
             " \"machine\": {\"cpu_model\": \"test cpu\"},"
             " \"cells\": [{\"backend\": \"blas\", \"model\": \"network\", \"batch\": 100,"
             "   \"status\": \"ok\", \"train_images_per_s\": {\"median\": %g, \"mad\": %g},"
             "   \"infer_images_per_s\": {\"median\": %g, \"mad\": %g}}],"
             " \"ratios\": [{\"kind\": \"vs_naive\", \"model\": \"network\", \"batch\": 100,"
             "   \"backend\": \"blas\", \"baseline\": \"naive\","
             "   \"train\": {\"median\": %g, \"mad\": %g}, \"infer\": {\"median\": %g, \"mad\": %g}}]}",
             ips, ips_mad, 3 * ips, ips_mad, ratio, ratio_mad, ratio, ratio_mad);
    write_file(path, text);
}

/* A time-balanced bench file (per-round median ratio with its spread, a best-of ratio and, when
 * unc > 0, the uncontended ratio), or one from the older one-run-per-round schedule when balanced
 * is 0. */
static void rounds_file(const char *path, int balanced, double ratio, double ratio_mad,
                        double best, double unc) {
    char text[4096], uncontended[128] = "";
    if (unc > 0)
        snprintf(uncontended, sizeof uncontended,
                 ", \"uncontended\": {\"train\": %g, \"infer\": %g, \"quantile\": 0.75}", unc, unc);
    snprintf(text, sizeof text,
             "{\"schema_version\": 1, \"kind\": \"bench\", \"created\": \"x\","
             " \"settings\": {\"schedule\": \"%s\"},"
             " \"cells\": [],"
             " \"ratios\": [{\"kind\": \"vs_naive\", \"model\": \"network\", \"batch\": 100,"
             "   \"backend\": \"blas\", \"baseline\": \"naive\","
             "   \"train\": {\"median\": %g, \"mad\": %g}, \"infer\": {\"median\": %g, \"mad\": %g},"
             "   \"best\": {\"train\": %g, \"infer\": %g}%s}]}",
             balanced ? "time-balanced rounds: test" : "round-robin: one run of each backend per round",
             ratio, ratio_mad, ratio, ratio_mad, best, best, uncontended);
    write_file(path, text);
}

static int compare(const char *base, const char *now, const char *extra, char **out) {
    return tu_runf(out, "%s compare %s %s %s 2>&1", CNB_TEST_CNNBENCH, base, now,
                   extra ? extra : "");
}

/* compare BASE NOW [EXTRA] must exit want_rc and, when says is not NULL, print says; why names
 * the case in a failure. */
static void expect_compare(const char *base, const char *now, const char *extra, int want_rc,
                           const char *says, const char *why) {
    char *out;
    int rc = compare(base, now, extra, &out);
    cr_expect_eq(rc, want_rc, "%s: exit %d, expected %d:\n%s", why, rc, want_rc, out);
    if (says) cr_expect_not_null(strstr(out, says), "%s: no '%s' in:\n%s", why, says, out);
    free(out);
}

#define TMP(name) CNB_TEST_TMP_DIR "/" name

Test(compare_cmd, ratio_drop_beyond_threshold_and_noise_is_a_regression) {
    bench_file(TMP("cmp-base.json"), 4.0, 0.05, 10000, 200);
    bench_file(TMP("cmp-slow.json"), 2.0, 0.05, 10000, 200);
    char *out;
    int rc = compare(TMP("cmp-base.json"), TMP("cmp-slow.json"), NULL, &out);
    cr_expect_eq(rc, 1, "exit %d:\n%s", rc, out);
    cr_expect_not_null(strstr(out, "REGRESSION"), "%s", out);
    cr_expect_not_null(strstr(out, "-50.0%"), "the change is printed: %s", out);
    cr_expect_not_null(strstr(out, "within one run"), "says what it gates on: %s", out);
    free(out);
}

Test(compare_cmd, changes_inside_noise_or_threshold_pass) {
    bench_file(TMP("cmp-base2.json"), 4.0, 0.05, 10000, 200);
    /* 5% drop, tiny noise: below the 10% threshold */
    bench_file(TMP("cmp-small.json"), 3.8, 0.01, 10000, 200);
    expect_compare(TMP("cmp-base2.json"), TMP("cmp-small.json"), NULL, 0, NULL,
                   "5% drop must pass at 10%");
    /* 20% drop but a spread of 0.5 on each side: 0.8 < 3 * 0.71, inside the noise */
    bench_file(TMP("cmp-noisy-base.json"), 4.0, 0.5, 10000, 200);
    bench_file(TMP("cmp-noisy.json"), 3.2, 0.5, 10000, 200);
    expect_compare(TMP("cmp-noisy-base.json"), TMP("cmp-noisy.json"), NULL, 0, NULL,
                   "a drop inside 3 x combined MAD must pass");
    /* the same 5% drop fails when the threshold is 2% */
    expect_compare(TMP("cmp-base2.json"), TMP("cmp-small.json"), "--threshold 2", 1, NULL,
                   "5% drop must fail at 2%");
}

Test(compare_cmd, absolute_figures_are_gated_only_when_asked) {
    bench_file(TMP("cmp-abs-base.json"), 4.0, 0.05, 10000, 100);
    bench_file(TMP("cmp-abs-new.json"), 4.0, 0.05, 6000, 100); /* machine got slower */
    expect_compare(TMP("cmp-abs-base.json"), TMP("cmp-abs-new.json"), NULL, 0, "not gated",
                   "absolute drop is not gated by default");
    expect_compare(TMP("cmp-abs-base.json"), TMP("cmp-abs-new.json"), "--gate absolute", 1, NULL,
                   "--gate absolute fails on it");
}

Test(compare_cmd, lost_agreement_fails_and_mismatched_kinds_are_refused) {
    const char *base = "{\"schema_version\": 1, \"kind\": \"check\", \"checks\": ["
                       "{\"backend\": \"blas\", \"family\": \"conv_fwd\", \"label\": \"a\","
                       " \"mode\": \"random\", \"status\": \"PASSED\"},"
                       "{\"backend\": \"blas\", \"family\": \"gemm\", \"label\": \"b\","
                       " \"mode\": \"exact\", \"status\": \"PASSED\"}]}";
    const char *lost = "{\"schema_version\": 1, \"kind\": \"check\", \"checks\": ["
                       "{\"backend\": \"blas\", \"family\": \"conv_fwd\", \"label\": \"a\","
                       " \"mode\": \"random\", \"status\": \"PASSED\"},"
                       "{\"backend\": \"blas\", \"family\": \"gemm\", \"label\": \"b\","
                       " \"mode\": \"exact\", \"status\": \"FAILED\", \"reproduce\": \"cnnbench check x\"}]}";
    write_file(TMP("cmp-check-base.json"), base);
    write_file(TMP("cmp-check-lost.json"), lost);
    expect_compare(TMP("cmp-check-base.json"), TMP("cmp-check-lost.json"), NULL, 1,
                   "LOST AGREEMENT blas gemm b exact", "a lost PASSED fails");
    expect_compare(TMP("cmp-check-base.json"), TMP("cmp-check-base.json"), NULL, 0, NULL,
                   "the same checks pass");
    bench_file(TMP("cmp-kind.json"), 4.0, 0.05, 10000, 100);
    expect_compare(TMP("cmp-check-base.json"), TMP("cmp-kind.json"), NULL, 2, NULL,
                   "a check file against a bench file is a usage error");
    expect_compare(TMP("cmp-check-base.json"), TMP("does-not-exist.json"), NULL, 2,
                   "does-not-exist.json", "a missing file is named");
}

Test(compare_cmd, planted_conv_slowdown_is_a_regression_end_to_end, .timeout = 180) {
    tu_backend b;
    char why[CNB_ERR_LEN];
    if (tu_try_open(&b, "blas", 1, why, sizeof why) != 0) {
        printf("[SKIP-ALL] blas backend not usable here: %s\n", why);
        cr_skip_test("blas not usable");
    }
    tu_close(&b);
    const char *flags = "--backends naive,blas --model network --quick --no-breakdown --quiet";
    char *out;
    int rc = tu_runf(&out,
                     "%s bench %s --out %s 2>&1", CNB_TEST_CNNBENCH, flags,
                     TMP("e2e-base.json"));
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    rc = tu_runf(&out,
                 "CNB_TEST_SLOWDOWN_CONV=2 %s bench %s --out %s 2>&1",
                 CNB_TEST_CNNBENCH, flags, TMP("e2e-slow.json"));
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    expect_compare(TMP("e2e-base.json"), TMP("e2e-slow.json"), NULL, 1,
                   "REGRESSION network/batch100 blas/naive",
                   "a 2x slower blas convolution must fail the gate");
    /* and the slowed run says it was made with a test fault */
    FILE *f = fopen(TMP("e2e-slow.json"), "r");
    cr_assert_not_null(f);
    char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    cr_expect_not_null(strstr(text, "CNB_TEST_SLOWDOWN_CONV"), "fault recorded in the results");
}

/* Time-balanced files gate on the per-round medians; the best-of ratio only confirms a median
 * that moved by more than twice the threshold inside a wide spread. Older files gate on best-of. */
Test(compare_cmd, time_balanced_files_gate_on_medians_confirmed_by_best_of) {
    static const struct {
        const char *what;
        int balanced;
        double base, base_mad, base_best, now, now_mad, now_best;
        int rc;
    } cases[] = {
        {"best-of fell 28% (a fast phase missed), the median 4%", 1, 20, 0.5, 25, 19.2, 0.5, 18, 0},
        {"median -60% inside a huge spread, best-of -50%", 1, 8, 2, 10, 3.2, 2, 5, 1},
        {"median -15% inside the spread, best-of -50%", 1, 8, 2, 10, 6.8, 2, 5, 0},
        {"median -60% inside the spread, best-of steady", 1, 8, 2, 10, 3.2, 2, 10, 0},
        {"older files: best-of -28% is the gate", 0, 20, 0.5, 25, 19.2, 0.5, 18, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out;
        rounds_file(TMP("tb-base.json"), cases[i].balanced, cases[i].base, cases[i].base_mad,
                    cases[i].base_best, 0);
        rounds_file(TMP("tb-new.json"), cases[i].balanced, cases[i].now, cases[i].now_mad,
                    cases[i].now_best, 0);
        int rc = compare(TMP("tb-base.json"), TMP("tb-new.json"), NULL, &out);
        cr_expect_eq(rc, cases[i].rc, "%s: exit %d, expected %d:\n%s", cases[i].what, rc,
                     cases[i].rc, out);
        if (cases[i].rc == 1)
            cr_expect_not_null(strstr(out, "REGRESSION network/batch100 blas/naive"), "%s", out);
        if (!cases[i].balanced)
            cr_expect_not_null(strstr(out, "predates time-balanced rounds"), "%s", out);
        free(out);
    }
}

/* Where both files carry the uncontended ratio it confirms a median that moved beyond the
 * threshold inside the noise; a median that moved only because the host's neighbours were busier
 * (uncontended steady) passes. Without it in both files the best-of rule (twice the threshold)
 * still applies. */
Test(compare_cmd, uncontended_ratio_confirms_a_median_inside_the_noise) {
    static const struct {
        const char *what;
        double base, base_unc, now, now_unc; /* MAD 3 and best-of 30 -> 30 in every file */
        int now_has_unc, rc;
    } cases[] = {
        {"median -13% (neighbours busier), uncontended steady", 29, 27.7, 25.2, 27.6, 1, 0},
        {"median -15%, uncontended -15%", 29, 27.7, 24.6, 23.5, 1, 1},
        {"median -8%, uncontended -15%", 29, 27.7, 26.7, 23.5, 1, 0},
        {"median +15%, uncontended +15%: faster, no regression", 29, 27.7, 33.4, 31.9, 1, 0},
        {"median -15%, uncontended only in BASE: best-of rule, 15% < 2 x 10%", 29, 27.7, 24.6, 0,
         0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out;
        rounds_file(TMP("unc-base.json"), 1, cases[i].base, 3, 30, cases[i].base_unc);
        rounds_file(TMP("unc-new.json"), 1, cases[i].now, 3, 30,
                    cases[i].now_has_unc ? cases[i].now_unc : 0);
        int rc = compare(TMP("unc-base.json"), TMP("unc-new.json"), NULL, &out);
        cr_expect_eq(rc, cases[i].rc, "%s: exit %d, expected %d:\n%s", cases[i].what, rc,
                     cases[i].rc, out);
        if (cases[i].now_has_unc)
            cr_expect_not_null(strstr(out, "train unc."), "%s: no uncontended row:\n%s",
                               cases[i].what, out);
        if (cases[i].rc == 1)
            cr_expect_not_null(strstr(out, "REGRESSION network/batch100 blas/naive"), "%s", out);
        free(out);
    }
}
