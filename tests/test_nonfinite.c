/* test_nonfinite.c — issue 19: non-finite numbers are refused on load, caught in training and
 * carried through every kernel the way PyTorch carries them.
 *  - the rule kernel by kernel (nonfinite_rule.inc) on naive, blas and onednn (the cuda kernels
 *    run the same suite on the emulator through gpu_checks.inc);
 *  - the comparison `cnnbench check` judges the nonfinite mode with;
 *  - a `network` checkpoint saved after 2 steps with one conv1.weight value set to NaN: --load and
 *    --resume refuse it naming the tensor, index and value; --allow-nonfinite loads it and the
 *    run ends diverged (exit 3) within a step on every CPU backend and on the emulator;
 *  - the fault backend planting a NaN in one parameter while the loss stays finite: exit 3 at
 *    that step, the tensor named, the last periodic checkpoint the good one before it;
 *  - `cnnbench check` fails a backend whose ReLU backward uses x >= 0, and passes the real ones
 *    in the nonfinite mode. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "compare.h"
#include "model.h"
#include "nonfinite_rule.inc"
#include "testutil.h"

#define TMP CNB_TEST_TMP_DIR
#define FAULT_SO CNB_FIXTURE_DIR "/libfixture_fault.so"
#define SMALL "--model network --train-limit 400 --test-limit 100 --no-progress --quiet"

static int run(const char *env, const char *args, char **out) {
    char cmd[16384];
    const char *lsan = tu_no_leak_check(strstr(args, "onednn") || (env && strstr(env, "onednn")));
    snprintf(cmd, sizeof cmd, "%s%s timeout 300 %s %s", lsan, env ? env : "", CNB_TEST_CNNBENCH,
             args);
    return tu_run(cmd, out);
}

static void expect_in(const char *out, const char *phrase) {
    cr_expect(strstr(out, phrase) != NULL, "output lacks '%s':\n%s", phrase, out);
}

/* ---- the rule, kernel by kernel ---- */

static void rule_on(const char *name) {
    tu_backend b;
    char why[CNB_ERR_LEN];
    if (tu_try_open(&b, name, 2, why, sizeof why) != 0) {
        printf("[SKIP] %s: %s\n", name, why);
        cr_skip_test("%s: %s", name, why);
    }
    nf_rule_suite(&b, name);
    tu_close(&b);
}

Test(nonfinite, rule_naive) { rule_on("naive"); }
Test(nonfinite, rule_blas) { rule_on("blas"); }
Test(nonfinite, rule_onednn) { rule_on("onednn"); }

/* ---- the comparison of the nonfinite mode ---- */

Test(nonfinite, compare_nan_positions_exactly) {
    const float ref[5] = {NAN, 1.0f, INFINITY, -INFINITY, 2.0f};
    const float same[5] = {NAN, 1.0f, INFINITY, -INFINITY, 2.0f};
    cnb_compare_stats s;
    cnb_compare_nonfinite(same, ref, 5, 1e-5, &s);
    cr_expect_eq(s.nonfinite, 0);
    cr_expect_eq(s.mismatches, 0);
    const float nan_for_number[5] = {NAN, NAN, INFINITY, -INFINITY, 2.0f};
    cnb_compare_nonfinite(nan_for_number, ref, 5, 1e-5, &s);
    cr_expect_eq(s.nonfinite, 1, "NaN where the reference has a number must count");
    const float number_for_nan[5] = {0.0f, 1.0f, INFINITY, -INFINITY, 2.0f};
    cnb_compare_nonfinite(number_for_nan, ref, 5, 1e-5, &s);
    cr_expect_eq(s.nonfinite, 1, "a number where the reference has NaN must count");
    const float wrong_inf[5] = {NAN, 1.0f, -INFINITY, 3.0e38f, 2.0f};
    cnb_compare_nonfinite(wrong_inf, ref, 5, 1e-5, &s);
    cr_expect_eq(s.nonfinite, 2, "+Inf for -Inf's sign and a number for -Inf must count");
    const float close[5] = {NAN, 1.000001f, INFINITY, -INFINITY, 2.0f};
    cnb_compare_nonfinite(close, ref, 5, 1e-5, &s);
    cr_expect_eq(s.nonfinite, 0);
    cr_expect(s.rel_l2 > 0 && s.rel_l2 < 1e-5, "rel_l2 over the finite points: %g", s.rel_l2);
}

/* ---- checkpoints ---- */

/* Saves a `network` checkpoint after 2 steps on naive to `path`, then sets one value of `tensor`
 * at `index` to `value` (the safetensors header gives its offset). */
static void poisoned_checkpoint(const char *path, const char *tensor, size_t index, float value) {
    char args[2048], *out;
    snprintf(args, sizeof args, "--backend naive " SMALL " --steps 2 --save %s --out %s.json",
             path, path);
    int rc = run(NULL, args, &out);
    cr_assert_eq(rc, 0, "saving the checkpoint: exit %d\n%s", rc, out);
    free(out);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    unsigned char len8[8];
    cr_assert_eq(fread(len8, 1, 8, f), 8);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len8[i];
    char *header = calloc(1, hlen + 1);
    cr_assert_eq(fread(header, 1, hlen, f), hlen);
    cJSON *root = cJSON_Parse(header);
    cJSON *offs = cJSON_GetObjectItem(cJSON_GetObjectItem(root, tensor), "data_offsets");
    cr_assert(cJSON_IsArray(offs), "%s has no tensor %s", path, tensor);
    long at = (long)(8 + hlen + (uint64_t)cJSON_GetArrayItem(offs, 0)->valuedouble + 4 * index);
    cr_assert_eq(fseek(f, at, SEEK_SET), 0);
    cr_assert_eq(fwrite(&value, 4, 1, f), 1); /* little-endian host: as the file stores it */
    fclose(f);
    cJSON_Delete(root);
    free(header);
}

Test(nonfinite, load_refuses_nan_naming_tensor_index_value) {
    const char *ck = TMP "/nf_load.safetensors";
    poisoned_checkpoint(ck, "conv1.weight", 17, NAN);
    char args[2048], *out;
    snprintf(args, sizeof args, "--backend naive " SMALL " --steps 2 --load %s --out " TMP
             "/nf_load.json", ck);
    int rc = run(NULL, args, &out);
    cr_expect_eq(rc, 2, "exit %d\n%s", rc, out);
    expect_in(out, "--load");
    expect_in(out, ck);
    expect_in(out, "'conv1.weight'");
    expect_in(out, "index 17");
    expect_in(out, "nan");
    expect_in(out, "--allow-nonfinite");
    free(out);
    snprintf(args, sizeof args, "--backend naive " SMALL " --steps 3 --resume %s --out " TMP
             "/nf_resume.json", ck);
    rc = run(NULL, args, &out);
    cr_expect_eq(rc, 2, "--resume: exit %d\n%s", rc, out);
    expect_in(out, "--resume");
    expect_in(out, "'conv1.weight'");
    free(out);
}

Test(nonfinite, reader_refuses_inf_in_optimizer_state) {
    const char *ck = TMP "/nf_inf.safetensors";
    poisoned_checkpoint(ck, "optimizer.fc3.bias.momentum_buffer", 3, -INFINITY);
    char path[4096], err[CNB_ERR_LEN];
    cnb_model m;
    cr_assert_eq(cnb_model_resolve("network", path, sizeof path, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cnb_model_load(path, &m, NULL, err, sizeof err), 0, "%s", err);
    cnb_checkpoint c;
    cr_expect_eq(cnb_checkpoint_read(ck, &m, &c, err, sizeof err), -1);
    cr_expect(strstr(err, "'optimizer.fc3.bias.momentum_buffer'") && strstr(err, "index 3") &&
                  strstr(err, "-inf"),
              "%s", err);
    cr_expect_eq(cnb_checkpoint_read_ex(ck, &m, 1, &c, err, sizeof err), 0, "%s", err);
    cr_expect(isinf(c.opt_m[m.n_params - 10 + 3]), "the value read on purpose is -inf (fc3.bias is "
              "the last tensor of the block)");
    cnb_checkpoint_free(&c);
}

/* The NaN checkpoint loaded on purpose: the run ends diverged within one step. */
static void loaded_nan_diverges(const char *backend, const char *tag) {
    char ck[512], json[512], args[4096], *out;
    snprintf(ck, sizeof ck, TMP "/nf_allow_%s.safetensors", tag);
    snprintf(json, sizeof json, TMP "/nf_allow_%s.json", tag);
    poisoned_checkpoint(ck, "conv1.weight", 17, NAN);
    snprintf(args, sizeof args, "--backend %s " SMALL " --steps 20 --load %s --allow-nonfinite "
             "--out %s", backend, ck, json);
    int rc = run(NULL, args, &out);
    cr_expect_eq(rc, 3, "%s: exit %d\n%s", tag, rc, out);
    expect_in(out, "diverged");
    expect_in(out, "step 1 ");
    /* The NaN weight feeds conv1 -> ReLU -> ...: relu(NaN) is NaN, so it reaches the loss of the
     * first step, with the fused conv + ReLU slot as with the separate kernels (oneDNN's own
     * eltwise ReLU would turn it into 0 and leave the loss finite). */
    expect_in(out, "loss became NaN");
    free(out);
    FILE *f = fopen(json, "r");
    cr_assert_not_null(f, "%s: no results file", tag);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *root = cJSON_Parse(buf);
    cJSON *st = cJSON_GetObjectItem(root, "status");
    cr_expect(cJSON_IsString(st) && strcmp(st->valuestring, "diverged") == 0,
              "%s: status %s", tag, cJSON_IsString(st) ? st->valuestring : "(none)");
    cJSON_Delete(root);
}

Test(nonfinite, loaded_nan_diverges_naive) { loaded_nan_diverges("naive", "naive"); }
Test(nonfinite, loaded_nan_diverges_blas) { loaded_nan_diverges("blas", "blas"); }
Test(nonfinite, loaded_nan_diverges_onednn) { loaded_nan_diverges("onednn", "onednn"); }
Test(nonfinite, loaded_nan_diverges_cuda_emu, .timeout = 300) {
    char path[4096];
    snprintf(path, sizeof path, "%s/libcnb_cuda_emu.so", cnb_backend_dir());
    if (access(path, R_OK) != 0) cr_skip_test("cuda_emu not built");
    loaded_nan_diverges(path, "cuda_emu");
}

/* ---- a parameter turning NaN mid-run, the loss still finite ---- */

static void planted_nan_param(const char *inner) {
    char env[4096], ck[512], args[4096], *out;
    snprintf(env, sizeof env, "CNB_FAULT=nan_param:3 CNB_FAULT_INNER=%s/libcnb_%s.so",
             cnb_backend_dir(), inner);
    snprintf(ck, sizeof ck, TMP "/nf_planted_%s.safetensors", inner);
    unlink(ck);
    snprintf(args, sizeof args, "--backend " FAULT_SO " " SMALL " --steps 10 --checkpoint-every 1 "
             "--checkpoint %s --out " TMP "/nf_planted_%s.json", ck, inner);
    int rc = run(env, args, &out);
    cr_expect_eq(rc, 3, "%s: exit %d\n%s", inner, rc, out);
    expect_in(out, "parameter fc1.weight[");
    expect_in(out, "became NaN");
    expect_in(out, "step 3 ");
    expect_in(out, "the loss was still");
    free(out);
    /* The last checkpoint is the good one of step 2: it loads without --allow-nonfinite. */
    char path[4096], err[CNB_ERR_LEN];
    cnb_model m;
    cr_assert_eq(cnb_model_resolve("network", path, sizeof path, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cnb_model_load(path, &m, NULL, err, sizeof err), 0, "%s", err);
    cnb_checkpoint c;
    cr_expect_eq(cnb_checkpoint_read(ck, &m, &c, err, sizeof err), 0, "%s: %s", inner, err);
    cr_expect_eq(c.state.global_step, 2, "%s: checkpoint after %ld steps", inner,
                 c.state.global_step);
    cnb_checkpoint_free(&c);
}

Test(nonfinite, planted_nan_param_naive) { planted_nan_param("naive"); }
Test(nonfinite, planted_nan_param_blas) { planted_nan_param("blas"); }
Test(nonfinite, planted_nan_param_onednn) { planted_nan_param("onednn"); }

/* ---- cnnbench check ---- */

Test(nonfinite, check_fails_relu_backward_with_ge) {
    char *out;
    int rc = run("CNB_FAULT=relu_ge", "check --backends " FAULT_SO " --family act_bwd --model "
                 "edge,network --no-training --quiet --out " TMP "/nf_check_ge.json", &out);
    cr_expect_eq(rc, 1, "exit %d\n%s", rc, out);
    expect_in(out, "FAILED     fault   act_bwd");
    expect_in(out, "exact");
    expect_in(out, "relu count1023");
    free(out);
    /* the same proxy without the planted bug passes: the failure is the bug's */
    rc = run(NULL, "check --backends " FAULT_SO " --family act_bwd --model edge,network "
             "--no-training --quiet --out " TMP "/nf_check_ok.json", &out);
    cr_expect_eq(rc, 0, "exit %d\n%s", rc, out);
    free(out);
}

Test(nonfinite, check_nonfinite_mode_passes_cpu_backends, .timeout = 300) {
    char *out;
    int rc = run(NULL, "check --backends naive,blas,onednn --model edge,simplecnn --mode "
                 "nonfinite --no-training --out " TMP "/nf_check_mode.json", &out);
    cr_expect_eq(rc, 0, "exit %d\n%s", rc, out);
    expect_in(out, "PASSED     onednn  pool_bwd");
    expect_in(out, "nonfinite");
    cr_expect(strstr(out, "FAILED") == NULL, "%s", out);
    cr_expect(strstr(out, "MISTRUSTED") == NULL, "%s", out);
    free(out);
}
