/* test_faults.c — runs that meet a fault end with a message naming what happened, the step, and
 * where the partial results are: a NaN loss, a device allocation failure and kernel errors
 * mid-run (through the "fault" proxy backend of tests/fixtures, CNB_FAULT=slot:N), a host
 * allocation failure (an address-space limit), a disk that is full (/dev/full) for the results or
 * the checkpoint, and a checkpoint directory that does not exist. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#define TMP CNB_TEST_TMP_DIR
#define FAULT_SO CNB_FIXTURE_DIR "/libfixture_fault.so"
#define SMALL "--model network --batch 16 --train-limit 64 --test-limit 16 --no-progress --quiet"

static int run(const char *env, const char *args, char **out) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s timeout 120 %s %s", env ? env : "", CNB_TEST_CNNBENCH, args);
    return tu_run(cmd, out);
}

static void expect_all(const char *out, const char *const *phrases) {
    for (int i = 0; phrases[i]; i++)
        cr_expect(strstr(out, phrases[i]) != NULL, "output lacks '%s':\n%s", phrases[i], out);
}

/* Runs cnnbench with env and args; expects exit code want_rc and every phrase of want in the
 * output, which it returns (free it). */
static char *expect_run(const char *env, const char *args, int want_rc,
                        const char *const *want) {
    char *out;
    int rc = run(env, args, &out);
    cr_expect_eq(rc, want_rc, "exit %d\n%s", rc, out);
    expect_all(out, want);
    return out;
}

static char *results_status(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return strdup("(no file)");
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *root = cJSON_Parse(buf);
    cJSON *s = cJSON_GetObjectItem(root, "status");
    char *v = strdup(cJSON_IsString(s) ? s->valuestring : "(no status)");
    cJSON_Delete(root);
    return v;
}

/* A kernel fails at a chosen call mid-run: exit 1, the kernel and the step named, results kept. */
static void kernel_fault(const char *spec, const char *kernel, const char *step) {
    char env[256], args[2048], json[512], *out;
    snprintf(env, sizeof env, "CNB_FAULT=%s", spec);
    snprintf(json, sizeof json, TMP "/fault_%s.json", kernel);
    unlink(json);
    snprintf(args, sizeof args, "--backend " FAULT_SO " " SMALL " --steps 8 --out %s", json);
    int rc = run(env, args, &out);
    cr_expect_eq(rc, 1, "CNB_FAULT=%s: exit %d\n%s", spec, rc, out);
    const char *want[] = {"stopped", kernel, step, "injected fault", "results so far are in",
                          json, NULL};
    expect_all(out, want);
    char *status = results_status(json);
    cr_expect_str_eq(status, "backend_error", "%s holds status %s", json, status);
    free(status);
    free(out);
}

Test(faults, conv_backward_data_fails_at_step_5) {
    kernel_fault("conv_backward_data:5", "conv_backward_data", "step 5");
}
Test(faults, optimizer_fails_at_step_3) { kernel_fault("sgd_step:3", "sgd_step", "step 3"); }
Test(faults, upload_fails_mid_run) { kernel_fault("upload:7", "upload", "step 2"); }

Test(faults, device_allocation_failure_is_named) {
    const char *want[] = {"alloc", "out of memory", "call 3 of alloc", NULL};
    free(expect_run("CNB_FAULT=alloc:3", "--backend " FAULT_SO " " SMALL " --steps 2 --out " TMP
                    "/fault_alloc.json", 1, want));
}

Test(faults, evaluation_failure_after_training_is_named) {
    /* network has 2 convolutions, each followed by ReLU: 4 training steps make 8 convolution
     * calls, so call 9 is the first of the evaluation that follows; fused (the naive inside has
     * the fusion group) or, with --no-fusion, the separate conv_forward. */
    const char *slots[] = {"conv_bias_act_forward", "conv_forward"};
    for (int i = 0; i < 2; i++) {
        char env[128];
        snprintf(env, sizeof env, "CNB_FAULT=%s:9", slots[i]);
        const char *want[] = {"evaluation after epoch 1", slots[i], "results so far are in",
                              NULL};
        free(expect_run(env,
                        i ? "--backend " FAULT_SO " " SMALL " --steps 4 --no-fusion --out " TMP
                            "/fault_eval.json"
                          : "--backend " FAULT_SO " " SMALL " --steps 4 --out " TMP
                            "/fault_eval.json",
                        1, want));
    }
}

/* A backend whose fused slots decline (CNB_ERR_UNSUPPORTED) gets the separate calls for those
 * layers instead: the run completes with the same test loss as the separate kernels' run. */
static double test_loss_of(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1.0;
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *root = cJSON_Parse(buf);
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "final"), "test_loss");
    double loss = cJSON_IsNumber(v) ? v->valuedouble : -1.0;
    cJSON_Delete(root);
    return loss;
}

Test(faults, declined_fused_slots_fall_back_to_the_separate_ones) {
    const char *env[] = {"CNB_FAULT_UNSUPPORTED=conv_bias_act_forward,pool_act_backward",
                         "CNB_FAULT_UNSUPPORTED=pool_act_backward", NULL};
    char *out;
    int rc = run(NULL, "--backend naive " SMALL " --steps 3 --no-fusion --out " TMP
                 "/fallback_ref.json", &out);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    double ref = test_loss_of(TMP "/fallback_ref.json");
    for (int i = 0; env[i]; i++) {
        rc = run(env[i], "--backend " FAULT_SO " " SMALL " --steps 3 --out " TMP
                 "/fallback.json", &out);
        cr_expect_eq(rc, 0, "%s: exit %d\n%s", env[i], rc, out);
        free(out);
        double got = test_loss_of(TMP "/fallback.json");
        cr_expect(got == ref && ref > 0, "%s: test loss %.9g, separate kernels %.9g", env[i],
                  got, ref);
    }
}

Test(faults, nan_loss_names_the_step) {
    const char *want[] = {"diverged", "step", "results so far are in", "fault_nan.json", NULL};
    free(expect_run(NULL,
                    "--backend blas --model " CNB_TEST_DATA_DIR "/diverge.cfg --train-limit 2560 "
                    "--test-limit 100 --no-progress --quiet --out " TMP "/fault_nan.json",
                    3, want));
    char *status = results_status(TMP "/fault_nan.json");
    cr_expect_str_eq(status, "diverged");
    free(status);
}

Test(faults, full_disk_for_results_is_named_and_the_device_survives) {
    const char *want[] = {"results not saved after 3 steps", "/dev/full", "No space left", NULL};
    free(expect_run(NULL, "--backend naive " SMALL " --steps 3 --out /dev/full", 1, want));
    struct stat st;
    cr_expect(stat("/dev/full", &st) == 0 && S_ISCHR(st.st_mode),
              "/dev/full is no longer a character device");
}

Test(faults, full_disk_for_the_checkpoint_is_named) {
    const char *want[] = {"checkpoint not saved", "/dev/full", "No space left", NULL};
    free(expect_run(NULL,
                    "--backend naive " SMALL " --steps 3 --out " TMP "/fault_full.json --save "
                    "/dev/full",
                    1, want));
}

Test(faults, periodic_checkpoint_failure_stops_the_run) {
    const char *want[] = {"checkpoint after epoch 1 step 2", "/nonexistent-dir/ck.safetensors",
                          "results so far are in", NULL};
    free(expect_run(NULL, "--backend naive " SMALL " --steps 6 --checkpoint-every 2 --checkpoint "
                    "/nonexistent-dir/ck.safetensors --out " TMP "/fault_ck.json", 1, want));
    char *status = results_status(TMP "/fault_ck.json");
    cr_expect_str_eq(status, "checkpoint_error");
    free(status);
}

Test(faults, host_allocation_failure_is_named) {
    /* An address-space limit that holds the compressed data but not its float copy. Sanitizer
     * builds reserve terabytes of shadow memory and cannot run under such a limit. */
    if (getenv("CNB_SANITIZED")) cr_skip_test("address-space limits do not work under ASan");
    char *out;
    int rc = run("ulimit -v 200000;", "--backend naive --model network --train-limit 60000 "
                 "--test-limit 100 --steps 1 --no-progress --quiet --out " TMP "/fault_host.json",
                 &out);
    cr_expect(rc != 0 && rc < 124, "exit %d\n%s", rc, out);
    cr_expect(strstr(out, "out of host memory") || strstr(out, "Cannot allocate memory") ||
                  strstr(out, "out of memory"),
              "%s", out);
    free(out);
}

/* The lines of the proxy's block trace at path (CNB_FAULT_TRACE), "" when there is none. */
static char *read_trace(const char *path) {
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 1 << 20);
    if (!f || !buf) {
        if (f) fclose(f);
        return buf;
    }
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Three steps of network on the proxy with the fused block slots (fault: CNB_FAULT, or NULL),
 * which must exit 0 with the test loss of naive's separate kernels; returns the proxy's block
 * trace (free it). tag names the files. */
static char *block_run(const char *fault, const char *tag) {
    char env[1024], args[2048], ref_json[512], json[512], trace_path[512], *out;
    snprintf(ref_json, sizeof ref_json, TMP "/block_ref_%s.json", tag);
    snprintf(json, sizeof json, TMP "/block_%s.json", tag);
    snprintf(trace_path, sizeof trace_path, TMP "/block_trace_%s.txt", tag);
    snprintf(args, sizeof args, "--backend naive " SMALL " --steps 3 --no-fusion --out %s",
             ref_json);
    int rc = run(NULL, args, &out);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    remove(trace_path);
    snprintf(env, sizeof env, "%s%s CNB_FAULT_BLOCK=1 CNB_FAULT_TRACE=%s",
             fault ? "CNB_FAULT=" : "", fault ? fault : "", trace_path);
    snprintf(args, sizeof args, "--backend " FAULT_SO " " SMALL " --steps 3 --out %s", json);
    rc = run(env, args, &out);
    cr_expect_eq(rc, 0, "exit %d\n%s", rc, out);
    free(out);
    double ref = test_loss_of(ref_json), got = test_loss_of(json);
    cr_expect(got == ref && ref > 0, "test loss %.9g, separate kernels %.9g", got, ref);
    return read_trace(trace_path);
}

/* A backend with the fused block slots (the proxy composes them of naive's kernels) gets a = NULL
 * where nothing reads a — every inference pass, and training once the block backward has run,
 * which then gets a = NULL too — and the run ends with the separate kernels' test loss. */
Test(faults, fused_blocks_drop_a_where_nothing_reads_it) {
    char *trace = block_run(NULL, "drop");
    /* the first step keeps both blocks' a (no block backward has run yet) and its backward
     * reads them; later steps drop a in both directions, and evaluation never keeps it */
    cr_expect(strncmp(trace, "fwd a n16\nfwd a n16\nbwd a n16\nbwd a n16\n", 40) == 0, "%s",
              trace);
    cr_expect(strstr(trace, "fwd - n16\nfwd - n16\nbwd - n16\nbwd - n16\n") != NULL, "%s", trace);
    int kept = 0;
    for (const char *p = trace; (p = strstr(p, " a n16")) != NULL; p++) kept++;
    cr_expect_eq(kept, 4, "a kept %d times, not only in the first step's 4 calls:\n%s", kept, trace);
    free(trace);
}

/* A block backward that declines a layer after the forward dropped a: the harness writes a
 * again (the forward once more, keeping it) and runs the separate calls, with the same loss. */
Test(faults, a_declined_block_backward_gets_a_written_again) {
    char *trace = block_run("block_unsupported:3", "declined");
    /* the third block backward (step 2's) is the first without a: declined, then that block's
     * forward runs again keeping a */
    cr_expect(strstr(trace, "bwd - n16 unsupported\nfwd a n16\n") != NULL, "%s", trace);
    free(trace);
}
