/* test_check.c — `cnnbench check` and the check engine behind it: blas agrees with naive on
 * layer and edge shapes, a planted bug in one kernel (the profiling proxy perturbing
 * conv_backward_data) fails exactly that kernel's checks with a working reproduction line, exact
 * mode catches a one-ulp difference, the mistrust rule fires on a mostly-zero reference, and a
 * backend that cannot run here is SKIPPED with its reason. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "checks.h"
#include "profiler.h"
#include "runctx.h"
#include "testutil.h"

/* Run a shell command; returns its exit status and (if out) its stdout, malloc'd. */
static int backend_or_skip(const char *name) {
    tu_backend b;
    char why[CNB_ERR_LEN];
    if (tu_try_open(&b, name, 1, why, sizeof why) != 0) {
        printf("[SKIP-ALL] %s backend not usable here: %s\n", name, why);
        return -1;
    }
    tu_close(&b);
    return 0;
}
static int blas_or_skip(void) { return backend_or_skip("blas"); }

/* Run one case on naive (reference) and on (api, ctx); returns the verdict. */
static int judge_case(const cnb_check_case *c, int exact, const cnb_backend *api,
                      cnb_context *ctx, tu_backend *ref, cnb_check_outcome *o) {
    cnb_check_data d;
    char err[CNB_ERR_LEN];
    cr_assert_eq(cnb_check_prepare(c, exact, 1234, &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cnb_check_run(&d, ref->api, ref->ctx, d.ref, err, sizeof err), CNB_OK, "%s", err);
    float *got = malloc(d.out_count * sizeof *got);
    cr_assert_eq(cnb_check_run(&d, api, ctx, got, err, sizeof err), CNB_OK, "%s", err);
    cnb_check_judge(&d, got, 1e-5, 1e-5, o);
    free(got);
    cnb_check_data_free(&d);
    return o->status;
}

static const cnb_check_case *find_case(const cnb_check_case *cs, int n, int family,
                                       const char *label) {
    for (int i = 0; i < n; i++)
        if (cs[i].family == family && strcmp(cs[i].label, label) == 0) return &cs[i];
    cr_assert_fail("no %s case labelled %s", cnb_check_family_name(family), label);
    return NULL;
}

Test(check, layer_shapes_come_from_the_model_file) {
    cnb_model *m = tu_load_model("simplecnn");
    cnb_check_case cs[256];
    int n = cnb_check_cases_for_model(m, 4, cs, 256);
    /* conv2: 32 -> 64 channels at 14x14, 3x3 pad 1, as the model file says */
    const cnb_check_case *c = find_case(cs, n, CNB_CK_CONV_BWD_DATA, "simplecnn.conv2");
    cr_expect_eq(c->conv.n, 4);
    cr_expect_eq(c->conv.c, 32);
    cr_expect_eq(c->conv.k, 64);
    cr_expect_eq(c->conv.h, 14);
    cr_expect_eq(c->conv.p, 14);
    cr_expect_eq(c->conv.pad_h, 1);
    /* fc1's forward product: (4, 3136) x (128, 3136)^T */
    const cnb_check_case *g = find_case(cs, n, CNB_CK_GEMM, "simplecnn.fc1.fwd");
    cr_expect(g->m == 4 && g->n == 128 && g->k == 3136 && g->trans_b == 1,
              "fc1.fwd is m%d n%d k%d tb%d", g->m, g->n, g->k, g->trans_b);
    find_case(cs, n, CNB_CK_SGD, "simplecnn.sgd");
    find_case(cs, n, CNB_CK_SOFTMAX_FWD, "simplecnn.loss");
    free(m);
}

Test(check, planted_bug_fails_only_its_kernel_in_process) {
    if (blas_or_skip()) cr_skip_test("blas not usable");
    tu_backend ref, blas;
    tu_open(&ref, "naive", 1);
    tu_open(&blas, "blas", 1);
    cnb_profiler *p = malloc(sizeof *p);
    cnb_profiler_init(p, blas.api, blas.ctx, 0);
    snprintf(p->perturb_slot, sizeof p->perturb_slot, "conv_backward_data");
    cnb_check_case cs[512];
    int n = cnb_check_edge_cases(cs, 512);
    int conv_cases = 0;
    for (int i = 0; i < n; i++) {
        int f = cs[i].family;
        if (f != CNB_CK_CONV_FWD && f != CNB_CK_CONV_BWD_DATA && f != CNB_CK_CONV_BWD_FILTER)
            continue;
        for (int exact = 0; exact < 2; exact++) {
            cnb_check_outcome clean, bad;
            judge_case(&cs[i], exact, blas.api, blas.ctx, &ref, &clean);
            judge_case(&cs[i], exact, cnb_profiler_api(p), cnb_profiler_ctx(p), &ref, &bad);
            cr_expect_eq(clean.status, CNB_CHECK_PASSED, "%s %s: clean blas %s, relL2 %g",
                         cnb_check_family_name(f), cs[i].label,
                         cnb_check_status_name(clean.status), clean.stats.rel_l2);
            int want = f == CNB_CK_CONV_BWD_DATA ? CNB_CHECK_FAILED : CNB_CHECK_PASSED;
            cr_expect_eq(bad.status, want, "%s %s (%s): perturbed blas %s, relL2 %g",
                         cnb_check_family_name(f), cs[i].label, exact ? "exact" : "random",
                         cnb_check_status_name(bad.status), bad.stats.rel_l2);
            if (want == CNB_CHECK_FAILED)
                cr_expect(bad.listed >= 1 && fabs(bad.bad_got[0] - bad.bad_expected[0]) > 0.5,
                          "the listing shows the planted +1 (listed %d)", bad.listed);
            conv_cases++;
        }
    }
    cr_expect_gt(conv_cases, 20, "only %d convolution checks ran", conv_cases);
    cr_expect_gt(p->perturbed_calls, 0);
    free(p);
    tu_close(&blas);
    tu_close(&ref);
}

Test(check, exact_mode_catches_one_ulp_and_mistrust_fires) {
    cnb_check_case c = {.family = CNB_CK_GEMM, .m = 3, .n = 4, .k = 5, .alpha = 1, .beta = 0};
    snprintf(c.label, sizeof c.label, "unit");
    cnb_check_data d;
    char err[CNB_ERR_LEN];
    cr_assert_eq(cnb_check_prepare(&c, 1, 7, &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(d.out_count, 12u);
    float got[12];
    for (int i = 0; i < 12; i++) d.ref[i] = got[i] = (float)(i + 1);
    cnb_check_outcome o;
    cnb_check_judge(&d, got, 1e-5, 1e-5, &o);
    cr_expect_eq(o.status, CNB_CHECK_PASSED);
    got[5] = nextafterf(got[5], 100.0f); /* relL2 ~ 1e-8: fine in random mode, not in exact */
    cnb_check_judge(&d, got, 1e-5, 1e-5, &o);
    cr_expect_eq(o.status, CNB_CHECK_FAILED, "one ulp off at [5] must fail exact mode, got %s",
                 cnb_check_status_name(o.status));
    cr_expect_eq(o.listed, 1);
    cr_expect_eq(o.bad_index[0], 5u);
    d.exact = 0;
    cnb_check_judge(&d, got, 1e-5, 1e-5, &o);
    cr_expect_eq(o.status, CNB_CHECK_PASSED, "random mode tolerates one ulp (relL2 %g)",
                 o.stats.rel_l2);
    for (int i = 0; i < 12; i++) d.ref[i] = got[i] = i < 8 ? 0.0f : 1.0f; /* 67% zeros */
    cnb_check_judge(&d, got, 1e-5, 1e-5, &o);
    cr_expect_eq(o.status, CNB_CHECK_MISTRUSTED, "got %s", cnb_check_status_name(o.status));
    cnb_check_data_free(&d);
}

/* A check of `family` SKIPPED because the backend leaves the optional `slot` empty (naive and
 * blas: the harness runs their separate kernels, checked on their own). */
static int without_slot(const cJSON *c, const char *family, const char *slot) {
    const cJSON *why = cJSON_GetObjectItem(c, "reason");
    char want[96];
    snprintf(want, sizeof want, "has no %s slot", slot);
    return strcmp(cJSON_GetObjectItem(c, "family")->valuestring, family) == 0 &&
           strcmp(cJSON_GetObjectItem(c, "status")->valuestring, "SKIPPED") == 0 && why &&
           strstr(why->valuestring, want) != NULL;
}
static int without_conv_backward(const cJSON *c) {
    return without_slot(c, "conv_bwd", "conv_backward");
}
static int without_conv_pool_forward(const cJSON *c) {
    return without_slot(c, "conv_act_pool_fwd", "conv_act_pool_forward");
}
static int without_pool_conv_backward(const cJSON *c) {
    return without_slot(c, "pool_act_conv_bwd", "pool_act_conv_backward");
}

/* Runs `cnnbench check` on `backend` with the proxy perturbing `slot` (exit 1 expected), then
 * expects every check of `bad_family` FAILED and every other PASSED. Returns the parsed results;
 * the counts of bad_family checks and of the others go to *bad and *others. */
static cJSON *run_planted_on(const char *backend, const char *slot, const char *bad_family,
                             const char *args, const char *json, char **out, int *bad,
                             int *others) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%sCNB_TEST_PERTURB=%s CNB_TEST_FAULT_BACKEND=%s %s check "
             "--backends %s --model network,edge %s--no-training --out %s 2>&1",
             tu_no_leak_check(strcmp(backend, "onednn") == 0), slot, backend, CNB_TEST_CNNBENCH,
             backend, args, json);
    int rc = tu_run(cmd, out);
    cr_expect_eq(rc, 1, "exit %d, want 1 on a FAILED check; output:\n%s", rc, *out);
    cJSON *root = tu_read_json(json);
    const cJSON *c, *checks = cJSON_GetObjectItem(root, "checks");
    *bad = *others = 0;
    cJSON_ArrayForEach(c, checks) {
        const char *fam = cJSON_GetObjectItem(c, "family")->valuestring;
        const char *st = cJSON_GetObjectItem(c, "status")->valuestring;
        int is_bad = strcmp(fam, bad_family) == 0;
        if (!is_bad && (without_conv_backward(c) || without_conv_pool_forward(c) ||
                        without_pool_conv_backward(c)))
            continue;
        /* a fused slot may decline a combination (CNB_ERR_UNSUPPORTED): nothing ran */
        const cJSON *why = cJSON_GetObjectItem(c, "reason");
        if (is_bad && strcmp(st, "SKIPPED") == 0 && why &&
            strstr(why->valuestring, "not supported by the backend") != NULL)
            continue;
        *bad += is_bad;
        *others += !is_bad;
        cr_expect_str_eq(st, is_bad ? "FAILED" : "PASSED", "%s %s %s", fam,
                         cJSON_GetObjectItem(c, "label")->valuestring,
                         cJSON_GetObjectItem(c, "mode")->valuestring);
    }
    return root;
}

static cJSON *run_planted_check(const char *slot, const char *bad_family, const char *args,
                                const char *json, char **out, int *bad, int *others) {
    return run_planted_on("blas", slot, bad_family, args, json, out, bad, others);
}

/* A planted error in one of oneDNN's optional fused slots fails every check of its family
 * (at least 8 of them, random and exact), while the separate kernel beside it still passes. */
static void expect_planted_onednn_slot_fails(const char *slot, const char *family,
                                             const char *args, const char *json) {
    if (backend_or_skip("onednn")) cr_skip_test("onednn not usable");
    char *out;
    int fused, plain;
    cJSON *root = run_planted_on("onednn", slot, family, args, json, &out, &fused, &plain);
    cr_expect_geq(fused, 8, "only %d %s checks", fused, family);
    cr_expect_gt(plain, 0);
    cJSON_Delete(root);
    free(out);
}

/* The fused convolution backward (the weight gradient it returns). */
Test(check, cli_planted_bug_in_the_fused_conv_backward_fails_it, .timeout = 120) {
    expect_planted_onednn_slot_fails("conv_backward", "conv_bwd",
                                     "--family conv_bwd_filter,conv_bwd ",
                                     CNB_TEST_TMP_DIR "/check-planted-conv-bwd.json");
}

/* The fused convolution + activation + pooling forward (the pooled output it returns). Direct
 * convolution: under Winograd's looser tolerance one value off by 1 in an exact-mode output of
 * magnitude ~300 is within it, which is not what this test is about. */
Test(check, cli_planted_bug_in_the_fused_block_forward_fails_it, .timeout = 120) {
    expect_planted_onednn_slot_fails("conv_act_pool_forward", "conv_act_pool_fwd",
                                     "--family conv_fwd,conv_act_pool_fwd --direct-conv ",
                                     CNB_TEST_TMP_DIR "/check-planted-conv-pool.json");
}

/* The fused pooling + activation + convolution backward (the weight gradient it returns). */
Test(check, cli_planted_bug_in_the_fused_block_backward_fails_it, .timeout = 120) {
    expect_planted_onednn_slot_fails("pool_act_conv_backward", "pool_act_conv_bwd",
                                     "--family conv_bwd_filter,pool_act_conv_bwd --direct-conv ",
                                     CNB_TEST_TMP_DIR "/check-planted-pool-conv.json");
}

/* A planted error in blas's fused convolution fails exactly the fused family's checks (each of
 * them, random and exact), while the separate conv_fwd it must agree with still passes. */
Test(check, cli_planted_bug_in_a_fused_slot_fails_that_family, .timeout = 120) {
    if (blas_or_skip()) cr_skip_test("blas not usable");
    char *out;
    int fused, plain;
    cJSON *root = run_planted_check("conv_bias_act_forward", "conv_bias_act_fwd",
                                    "--family conv_fwd,conv_bias_act_fwd ",
                                    CNB_TEST_TMP_DIR "/check-planted-fused.json", &out, &fused,
                                    &plain);
    cr_expect_geq(fused, 8, "only %d fused checks", fused);
    cr_expect_gt(plain, 0);
    cJSON_Delete(root);
    free(out);
}

Test(check, cli_planted_bug_fails_exactly_conv_bwd_data_with_reproduction, .timeout = 120) {
    if (blas_or_skip()) cr_skip_test("blas not usable");
    char *out;
    int bwd_data, others;
    cJSON *root = run_planted_check("conv_backward_data", "conv_bwd_data", "",
                                    CNB_TEST_TMP_DIR "/check-planted.json", &out, &bwd_data,
                                    &others);
    cr_expect_gt(bwd_data, 10, "only %d conv_bwd_data checks", bwd_data);
    /* the reproduction line of one failure, run as printed, fails that one check again */
    const char *line = strstr(out, "reproduce: ");
    cr_assert_not_null(line, "no reproduction line in:\n%s", out);
    line += strlen("reproduce: ");
    size_t len = strcspn(line, "\n");
    char repro[1024];
    snprintf(repro, sizeof repro, "%.*s", (int)len, line);
    cr_expect(strncmp(repro, "CNB_TEST_PERTURB=conv_backward_data", 35) == 0,
              "the planted fault is part of the reproduction: %s", repro);
    char *cnnbench = strstr(repro, "cnnbench check");
    cr_assert_not_null(cnnbench);
    char cmd2[2048];
    snprintf(cmd2, sizeof cmd2, "%.*s%s %s --out %s/check-repro.json 2>&1",
             (int)(cnnbench - repro), repro, CNB_TEST_CNNBENCH, cnnbench + strlen("cnnbench"),
             CNB_TEST_TMP_DIR);
    char *out2;
    int rc2 = tu_run(cmd2, &out2);
    cr_expect_eq(rc2, 1, "reproduction exit %d: %s\n%s", rc2, cmd2, out2);
    cr_expect_not_null(strstr(out2, "FAILED: 1 check(s)"), "reproduction should fail exactly one check:\n%s",
                       out2);
    free(out2);
    cJSON_Delete(root);
    free(out);
}

Test(check, cli_naive_blas_pass_and_unusable_backend_is_skipped, .timeout = 120) {
    if (blas_or_skip()) cr_skip_test("blas not usable");
    const char *json = CNB_TEST_TMP_DIR "/check-clean.json";
    char *out;
    int rc = tu_runf(&out,
                     "%s check --backends naive,blas,cuda --model network,edge --steps 3 "
                     "--test-limit 200 --out %s 2>&1",
                     CNB_TEST_CNNBENCH, json);
    cr_expect_eq(rc, 0, "exit %d; output:\n%s", rc, out);
    cJSON *root = tu_read_json(json);
    cr_expect_eq(cJSON_GetObjectItem(root, "schema_version")->valueint, 2);
    cr_expect_str_eq(cJSON_GetObjectItem(root, "kind")->valuestring, "check");
    cr_expect_not_null(cJSON_GetObjectItem(root, "machine"));
    const cJSON *c, *checks = cJSON_GetObjectItem(root, "checks");
    int passed = 0, training = 0, exact = 0, cuda_skipped = 0, no_conv_backward = 0;
    int no_conv_pool = 0, no_pool_conv = 0;
    cJSON_ArrayForEach(c, checks) {
        const char *be = cJSON_GetObjectItem(c, "backend")->valuestring;
        const char *st = cJSON_GetObjectItem(c, "status")->valuestring;
        const char *fam = cJSON_GetObjectItem(c, "family")->valuestring;
        if (strcmp(be, "cuda") == 0) {
            cr_expect_str_eq(st, "SKIPPED");
            const cJSON *why = cJSON_GetObjectItem(c, "reason");
            cr_expect(why && strlen(why->valuestring) > 5, "a skip names its reason");
            cuda_skipped++;
            continue;
        }
        if (without_conv_backward(c)) {
            no_conv_backward++;
            continue;
        }
        if (without_conv_pool_forward(c)) {
            no_conv_pool++;
            continue;
        }
        if (without_pool_conv_backward(c)) {
            no_pool_conv++;
            continue;
        }
        cr_expect_str_eq(st, "PASSED", "%s %s %s %s", be, fam,
                         cJSON_GetObjectItem(c, "label")->valuestring,
                         cJSON_GetObjectItem(c, "mode")->valuestring);
        passed++;
        training += strcmp(fam, "training") == 0;
        exact += strcmp(cJSON_GetObjectItem(c, "mode")->valuestring, "exact") == 0;
    }
    cr_expect_eq(cuda_skipped, 1);
    /* network's two convolutions and the three edge ones, random and exact, on both */
    cr_expect_eq(no_conv_backward, 2 * 5 * 2, "conv_bwd SKIPPED %d times", no_conv_backward);
    cr_expect_not_null(strstr(out, "10 of the skipped: conv_bwd, the fused convolution backward, "
                                   "which blas leaves to the harness"),
                       "one summary line instead of a line per case:\n%s", out);
    cr_expect_null(strstr(out, "SKIPPED    blas    conv_bwd"), "%s", out);
    /* the fused block: network's two with a kept and not, the five edge ones and three without
     * a; random, and exact where the pooling and activation keep integers (network's four,
     * four edge ones), on both */
    cr_expect_eq(no_conv_pool, 2 * (12 + 8), "conv_act_pool_fwd SKIPPED %d times", no_conv_pool);
    /* and the fused block backward: network's two with a and without, five edge ones and two
     * without a; exact for max pooling (network's four, six edge ones) */
    cr_expect_eq(no_pool_conv, 2 * (11 + 10), "pool_act_conv_bwd SKIPPED %d times",
                 no_pool_conv);
    cr_expect_eq(training, 2, "network's training agreement for naive and blas");
    cr_expect_gt(exact, 50);
    cr_expect_gt(passed, 200);
    cr_expect_not_null(strstr(out, "summary:"));
    cJSON_Delete(root);
    free(out);
}

Test(check, cli_rejects_unknown_family) {
    char *out;
    int rc = tu_runf(&out,
                     "%s check --family convolution 2>&1", CNB_TEST_CNNBENCH);
    cr_expect_eq(rc, 2);
    cr_expect_not_null(strstr(out, "unknown kernel family 'convolution'"), "%s", out);
    free(out);
}
