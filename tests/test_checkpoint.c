/* test_checkpoint.c — safetensors checkpoints: the writer and the validating reader in process,
 * the PyTorch round trip both ways (tools/torch_roundtrip.py with Debian's torch), and resuming:
 * a run stopped after k steps (by --steps, or killed with SIGINT / SIGTERM) and resumed to N
 * steps ends with the same bytes in its --save file as a run of N steps straight. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "model.h"
#include "testutil.h"

#define MAL CNB_SOURCE_DIR "/tests/malformed"
#define TMP CNB_TEST_TMP_DIR

static cnb_model *load_model(const char *path) {
    char err[CNB_ERR_LEN];
    cnb_model *m = calloc(1, sizeof *m);
    cr_assert_not_null(m);
    cr_assert_eq(cnb_model_load(path, m, NULL, err, sizeof err), 0, "%s", err);
    return m;
}

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void expect_same_bytes(const char *a, const char *b) {
    size_t la, lb;
    unsigned char *x = slurp(a, &la), *y = slurp(b, &lb);
    size_t first = 0;
    while (first < la && first < lb && x[first] == y[first]) first++;
    cr_expect(la == lb && first == la,
              "%s (%zu bytes) and %s (%zu bytes) differ from byte %zu on", a, la, b, lb, first);
    free(x);
    free(y);
}

static int run(const char *args, char **out) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "timeout 120 %s %s", CNB_TEST_CNNBENCH, args);
    return tu_run(cmd, out);
}

static void run_ok(const char *args) {
    char *out;
    int rc = run(args, &out);
    cr_assert_eq(rc, 0, "cnnbench %s\nexited %d:\n%s", args, rc, out);
    free(out);
}

Test(checkpoint, write_then_read_gives_back_every_value) {
    cnb_model *m = load_model(MAL "/tiny.cfg");
    size_t np = m->n_params;
    cnb_rng rng;
    cnb_rng_seed(&rng, 3);
    cnb_checkpoint c = {.params = tu_random(&rng, np, -1, 1), .opt_m = tu_random(&rng, np, -1, 1),
                        .opt_v = tu_random(&rng, np, 0, 1), .optimizer = CNB_CKPT_OPT_ADAM,
                        .have_state = 1, .seed = 99,
                        .state = {.global_step = 7, .epoch = 3, .step_in_epoch = 1,
                                  .adam_step = 7, .shuffle_state = 0xfedcba9876543210ULL,
                                  .shuffle_inc = 12345, .train_count = 10, .batch = 4}};
    char err[CNB_ERR_LEN], path[] = TMP "/ck_roundtrip.safetensors";
    mkdir(TMP, 0755);
    cr_assert_eq(cnb_checkpoint_write(path, m, &c, err, sizeof err), 0, "%s", err);
    cnb_checkpoint r;
    cr_assert_eq(cnb_checkpoint_read(path, m, &r, err, sizeof err), 0, "%s", err);
    tu_expect_equal("params", r.params, c.params, np);
    tu_expect_equal("exp_avg", r.opt_m, c.opt_m, np);
    tu_expect_equal("exp_avg_sq", r.opt_v, c.opt_v, np);
    cr_expect_eq(r.optimizer, CNB_CKPT_OPT_ADAM);
    cr_expect_eq(r.have_state, 1);
    cr_expect(memcmp(&r.state, &c.state, sizeof r.state) == 0,
              "state: step %ld epoch %d pos %ld adam %ld rng %llx/%llx count %d batch %d",
              r.state.global_step, r.state.epoch, r.state.step_in_epoch, r.state.adam_step,
              (unsigned long long)r.state.shuffle_state, (unsigned long long)r.state.shuffle_inc,
              r.state.train_count, r.state.batch);
    cr_expect_eq(r.seed, 99);
    cr_expect_str_eq(r.model, "tiny");
    cnb_checkpoint_free(&r);

    /* The header must name tensors the way torch's state_dict does, with torch's layouts. */
    size_t len;
    unsigned char *bytes = slurp(path, &len);
    const char *want[] = {"\"conv1.weight\":{\"dtype\":\"F32\",\"shape\":[2,1,3,3]",
                          "\"conv1.bias\":{\"dtype\":\"F32\",\"shape\":[2]",
                          "\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[10,8]",
                          "\"optimizer.fc1.bias.exp_avg_sq\""};
    bytes[len - 1] = '\0';
    for (int i = 0; i < 4; i++)
        cr_expect(strstr((char *)bytes + 8, want[i]), "header lacks %s", want[i]);
    /* One flipped length byte: refused with the file named, never read past the end. */
    bytes[5] = 0x7f;
    cr_expect_eq(cnb_checkpoint_parse(bytes, len, "flipped.safetensors", m, &r, err, sizeof err),
                 -1);
    cr_expect(strstr(err, "flipped.safetensors") && strstr(err, "header length"), "%s", err);
    free(bytes);
    free(c.params);
    free(c.opt_m);
    free(c.opt_v);
    free(m);
}

static int have_torch(void) {
    char *out;
    int rc = tu_run("/usr/bin/python3 -c 'import torch'", &out);
    free(out);
    return rc == 0;
}

/* torch_roundtrip.py verify: the checkpoint TMP/<stem>_<model>.safetensors gives in PyTorch the
 * logits saved beside it (to 1e-5); direction names the trip in the messages. */
static void torch_verify(const char *cfg, const char *stem, const char *direction,
                         const char *model, const char *backend) {
    char *out;
    int rc = tu_runf(&out,
                     "/usr/bin/python3 " CNB_SOURCE_DIR "/tools/torch_roundtrip.py verify %s "
                     TMP "/%s_%s.safetensors " TMP "/%s_%s_logits.safetensors --tol 1e-5",
                     cfg, stem, model, stem, model);
    cr_expect_eq(rc, 0, "%s (%s on %s): %s", direction, model, backend, out);
    printf("%s, %s on %s: %s", direction, model, backend, out);
    free(out);
}

/* cnnbench → PyTorch: weights a cnnbench run saves give its logits in PyTorch; PyTorch →
 * cnnbench: a fresh PyTorch network's state_dict loads and gives PyTorch's logits. */
static void torch_round_trip(const char *model, const char *backend) {
    if (!have_torch()) cr_skip_test("[SKIP-ALL] /usr/bin/python3 has no torch module");
    char args[4096], cmd[8192], cfg[1024], *out;
    snprintf(cfg, sizeof cfg, CNB_SOURCE_DIR "/models/%s.cfg", model);
    snprintf(args, sizeof args,
             "--backend %s --model %s --steps 3 --batch 16 --train-limit 64 --test-limit 24 "
             "--quiet --no-progress --out " TMP "/rt_%s.json --save " TMP "/rt_%s.safetensors "
             "--dump-logits " TMP "/rt_%s_logits.safetensors",
             backend, model, model, model, model);
    run_ok(args);
    torch_verify(cfg, "rt", "cnnbench -> torch", model, backend);

    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 " CNB_SOURCE_DIR "/tools/torch_roundtrip.py make %s "
             TMP "/rt_torch_%s.safetensors --seed 5", cfg, model);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    free(out);
    snprintf(args, sizeof args,
             "--backend %s --model %s --eval-only --load " TMP "/rt_torch_%s.safetensors "
             "--train-limit 16 --test-limit 24 --quiet --dump-logits " TMP "/rt_torch_%s_logits.safetensors",
             backend, model, model, model);
    run_ok(args);
    torch_verify(cfg, "rt_torch", "torch -> cnnbench", model, backend);
}

Test(checkpoint, pytorch_round_trip_network, .timeout = 300) { torch_round_trip("network", "naive"); }
Test(checkpoint, pytorch_round_trip_lenet5_prelu, .timeout = 300) { torch_round_trip("lenet5", "blas"); }

/* N steps straight vs k steps, then --resume to N; the --save files must match byte for byte.
 * 64 images at batch 16 make 4 steps an epoch, so the resume crosses an epoch boundary and the
 * replayed shuffle is exercised. */
static void resume_matches_straight(const char *backend, const char *model, int k, int n) {
    char common[2048], args[4096];
    snprintf(common, sizeof common,
             "--backend %s --model %s --batch 16 --train-limit 64 --test-limit 16 --quiet "
             "--no-progress --out " TMP "/rs.json",
             backend, model);
    snprintf(args, sizeof args, "%s --steps %d --save " TMP "/rs_straight_%s_%s.safetensors",
             common, n, backend, model);
    run_ok(args);
    snprintf(args, sizeof args, "%s --steps %d --save " TMP "/rs_part_%s_%s.safetensors", common,
             k, backend, model);
    run_ok(args);
    snprintf(args, sizeof args,
             "%s --steps %d --resume " TMP "/rs_part_%s_%s.safetensors --save " TMP
             "/rs_resumed_%s_%s.safetensors",
             common, n, backend, model, backend, model);
    run_ok(args);
    char a[1024], b[1024];
    snprintf(a, sizeof a, TMP "/rs_straight_%s_%s.safetensors", backend, model);
    snprintf(b, sizeof b, TMP "/rs_resumed_%s_%s.safetensors", backend, model);
    expect_same_bytes(a, b);
}

Test(checkpoint, resume_is_bit_identical_naive_sgd, .timeout = 300) {
    resume_matches_straight("naive", "network", 5, 10);
}
Test(checkpoint, resume_is_bit_identical_blas_sgd, .timeout = 300) {
    resume_matches_straight("blas", "network", 6, 11);
}
Test(checkpoint, resume_is_bit_identical_naive_adam, .timeout = 300) {
    resume_matches_straight("naive", "cnn", 3, 6);
}

/* Start a long run, wait for its first periodic checkpoint, send `sig`, then resume the
 * checkpoint it wrote on the way out and compare with a straight run. */
static void kill_and_resume(const char *backend, int sig) {
    const int n = 200;
    char ck[1024], common[2048], args[4096];
    snprintf(ck, sizeof ck, TMP "/kill_%s_%d.safetensors", backend, sig);
    unlink(ck);
    snprintf(common, sizeof common,
             "--backend %s --model network --batch 16 --train-limit 64 --test-limit 16 --quiet "
             "--no-progress --out " TMP "/kill_%s.json --steps %d",
             backend, backend, n);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        char buf[4096], *argv[64];
        int argc = 0;
        snprintf(buf, sizeof buf, "%s --checkpoint-every 1 --checkpoint %s", common, ck);
        argv[argc++] = (char *)CNB_TEST_CNNBENCH;
        for (char *tok = strtok(buf, " "); tok && argc < 62; tok = strtok(NULL, " "))
            argv[argc++] = tok;
        argv[argc] = NULL;
        if (!freopen("/dev/null", "w", stdout)) _exit(126);
        execv(CNB_TEST_CNNBENCH, argv);
        _exit(127);
    }
    struct stat st;
    struct timespec nap = {0, 5 * 1000 * 1000};
    for (int i = 0; i < 6000 && stat(ck, &st) != 0; i++) nanosleep(&nap, NULL);
    cr_assert_eq(stat(ck, &st), 0, "no periodic checkpoint appeared at %s", ck);
    kill(pid, sig);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 130,
              "killed run: expected exit 130 (interrupted), got status 0x%x", status);

    char err[CNB_ERR_LEN];
    cnb_model *m = load_model(CNB_SOURCE_DIR "/models/network.cfg");
    cnb_checkpoint c;
    cr_assert_eq(cnb_checkpoint_read(ck, m, &c, err, sizeof err), 0, "%s", err);
    cr_assert(c.have_state && c.state.global_step >= 1 && c.state.global_step < n,
              "the kill landed at step %ld of %d; the test needs it inside the run",
              c.state.global_step, n);
    printf("%s: signal %d stopped the run after %ld of %d steps\n", backend, sig,
           c.state.global_step, n);
    cnb_checkpoint_free(&c);
    free(m);

    snprintf(args, sizeof args, "%s --resume %s --save " TMP "/kill_resumed_%s.safetensors",
             common, ck, backend);
    run_ok(args);
    snprintf(args, sizeof args, "%s --save " TMP "/kill_straight_%s.safetensors", common, backend);
    run_ok(args);
    char a[1024], b[1024];
    snprintf(a, sizeof a, TMP "/kill_straight_%s.safetensors", backend);
    snprintf(b, sizeof b, TMP "/kill_resumed_%s.safetensors", backend);
    expect_same_bytes(a, b);
}

Test(checkpoint, sigint_then_resume_is_bit_identical_naive, .timeout = 300) {
    kill_and_resume("naive", SIGINT);
}
Test(checkpoint, sigterm_then_resume_is_bit_identical_blas, .timeout = 300) {
    kill_and_resume("blas", SIGTERM);
}

Test(checkpoint, resume_refuses_a_different_data_set_size) {
    char *out;
    run_ok("--backend naive --model network --batch 16 --train-limit 64 --test-limit 16 --quiet "
           "--steps 2 --out " TMP "/rd.json --save " TMP "/rd.safetensors");
    int rc = run("--backend naive --model network --batch 16 --train-limit 80 --test-limit 16 "
                 "--quiet --steps 4 --out " TMP "/rd.json --resume " TMP "/rd.safetensors", &out);
    cr_expect(rc == 2 && strstr(out, "rd.safetensors") && strstr(out, "64 training images"),
              "exit %d: %s", rc, out);
    free(out);
}
