/* test_distributed.c — data-parallel training under `mpirun -np 2 --oversubscribe`: the weights
 * of 2 ranks agree with 1 process at the same global batch (even, uneven, a batch smaller than
 * the rank count, a short last batch), evaluation is split and summed, only rank 0 writes, the
 * results record the ranks and the all-reduce, a 2-rank run resumes from its checkpoint, and the
 * check family passes and fails a planted fault. Skipped (the reason printed) without MPI. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "model.h"
#include "runctx.h"
#include "testutil.h"

#ifdef CNB_TEST_MPIEXEC
/* Each mpirun gets its own session directory: concurrent Open MPI 4 jobs of one user on one host
 * race to create /tmp/ompi.HOST.UID ("mkdir ... File exists", orte_init fails). Under the
 * sanitizer build (tools/sanitize.sh) the ranks run without LeakSanitizer: Open MPI leaves
 * thousands of allocations of its dlopen'd plugins at exit, which LSan reports from modules it
 * can no longer name, so no suppression can single them out; every other sanitizer check stays
 * on, and the same training code is leak-checked by the single-process tests. */
#define MPI_SESSION                                                                           \
    "d=$(mktemp -d /tmp/cnb-ompi.XXXXXX) && trap 'rm -rf \"$d\"' EXIT && "                   \
    "export ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\" && "                \
    "OMPI_MCA_orte_tmpdir_base=$d "
#define MPIRUN MPI_SESSION CNB_TEST_MPIEXEC " -np 2 --oversubscribe "
#define MPIRUN1 MPI_SESSION CNB_TEST_MPIEXEC " -np 1 "
#else
#define MPIRUN "false "
#define MPIRUN1 "false "
#endif
#ifndef CNB_BUILD_BACKEND_DIR_FOR_TESTS
#define CNB_BUILD_BACKEND_DIR_FOR_TESTS "."
#endif
#define TMP CNB_TEST_TMP_DIR "/dist_"
/* Tiny runs: network, a few hundred images, the start of the test set. */
#define SMALL " --model network --no-progress --test-limit 300 "

static void skip_without_mpi(void) {
#ifndef CNB_TEST_MPIEXEC
    printf("[SKIP-ALL] this build has no MPI (CMake found no MPI C library, or -DCNB_WITH_MPI=OFF)\n");
    fflush(stdout);
    cr_skip_test("no MPI in this build");
#endif
}

static void run_ok(const char *cmd) {
    char *out;
    int rc = tu_run(cmd, &out);
    cr_assert_eq(rc, 0, "exit %d from: %s\n%s", rc, cmd, out);
    free(out);
}

static cnb_model *network(void) { return tu_load_model("network"); }

/* Relative L2 distance of the parameters in two checkpoints of `network`. */
static double weights_distance(const char *a, const char *b, int *identical) {
    cnb_model *m = network();
    cnb_checkpoint ca, cb;
    char err[CNB_ERR_LEN];
    cr_assert_eq(cnb_checkpoint_read(a, m, &ca, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cnb_checkpoint_read(b, m, &cb, err, sizeof err), 0, "%s", err);
    double num = 0, den = 0;
    *identical = memcmp(ca.params, cb.params, m->n_params * sizeof(float)) == 0;
    for (size_t i = 0; i < m->n_params; i++) {
        double d = (double)ca.params[i] - cb.params[i];
        num += d * d;
        den += (double)ca.params[i] * ca.params[i];
    }
    cnb_checkpoint_free(&ca);
    cnb_checkpoint_free(&cb);
    free(m);
    return sqrt(num / den);
}

static cJSON *results(const char *path) {
    char err[CNB_ERR_LEN];
    cJSON *j = cnb_read_json(path, err, sizeof err);
    cr_assert_not_null(j, "%s", err);
    return j;
}

/* 1 process and 2 ranks with the same flags; returns the weights' relative L2 distance. */
static double one_vs_two(const char *name, const char *flags, int *identical) {
    char cmd[2048], one[256], two[256];
    snprintf(one, sizeof one, TMP "%s_1.safetensors", name);
    snprintf(two, sizeof two, TMP "%s_2.safetensors", name);
    snprintf(cmd, sizeof cmd, CNB_TEST_CNNBENCH " --backend blas --threads 1" SMALL "%s --save %s "
             "--out " TMP "%s_1.json --quiet", flags, one, name);
    run_ok(cmd);
    snprintf(cmd, sizeof cmd, MPIRUN CNB_TEST_CNNBENCH " --backend blas" SMALL "%s --save %s --out "
             TMP "%s_2.json --quiet", flags, two, name);
    run_ok(cmd);
    return weights_distance(one, two, identical);
}

Test(distributed, two_ranks_agree_with_one_process, .init = skip_without_mpi) {
    int same;
    double d = one_vs_two("even", "--train-limit 600 --epochs 1", &same);
    printf("2 ranks vs 1, batch 100: weights relative L2 %.3g\n", d);
    cr_expect_leq(d, 1e-5, "2 ranks vs 1 process: weights relative L2 %.3g > 1e-5", d);
    cr_expect(d > 0 || same, "distance 0 but the bytes differ");

    cJSON *one = results(TMP "even_1.json"), *two = results(TMP "even_2.json");
    cr_expect_null(cJSON_GetObjectItem(one, "distributed"), "a plain run must not report ranks");
    const cJSON *dist = cJSON_GetObjectItem(two, "distributed");
    cr_assert_not_null(dist, "the 2-rank results have no 'distributed' object");
    cr_expect_eq(cnb_json_int(dist, "ranks", 0), 2);
    cr_expect_eq(cnb_json_int(dist, "global_batch", 0), 100);
    const char *lib = cnb_json_str(cJSON_GetObjectItem(dist, "communicator"), "library", "");
    cr_expect(strstr(lib, "MPI") != NULL, "communicator library '%s'", lib);
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(dist, "per_rank_images_per_s")), 2);
    double share = cnb_json_num(dist, "allreduce_share_of_step", -1);
    cr_expect(share > 0 && share < 1, "all-reduce share of the step %g not in (0, 1)", share);
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(dist, "parameters_identical_on_all_ranks")));
    /* Evaluation split over the ranks and summed: the confusion matrix counts every test image
     * once, and the accuracy is the 1-process one. */
    long total = 0;
    const cJSON *row, *v;
    cJSON_ArrayForEach(row, cJSON_GetObjectItem(two, "confusion_matrix"))
        cJSON_ArrayForEach(v, row) total += (long)v->valuedouble;
    cr_expect_eq(total, 300, "the confusion matrix counts %ld test images, not 300", total);
    double a1 = cnb_json_num(cJSON_GetObjectItem(one, "final"), "test_accuracy", -1);
    double a2 = cnb_json_num(cJSON_GetObjectItem(two, "final"), "test_accuracy", -2);
    cr_expect_leq(fabs(a1 - a2), 0.005, "test accuracy %g on 2 ranks, %g on 1", a2, a1);
    cJSON_Delete(one);
    cJSON_Delete(two);
}

Test(distributed, uneven_and_short_batches_agree, .init = skip_without_mpi) {
    int same;
    /* batch 7 splits 4 + 3; 53 images leave a last batch of 4 (2 + 2) */
    double d = one_vs_two("uneven", "--train-limit 53 --batch 7 --epochs 2", &same);
    cr_expect_leq(d, 1e-5, "uneven batches: weights relative L2 %.3g > 1e-5", d);
    /* batch 1 on 2 ranks: one rank has nothing to compute at every step */
    d = one_vs_two("tiny", "--train-limit 20 --batch 1 --epochs 1 --lr 0.01", &same);
    cr_expect_leq(d, 1e-5, "batch 1 on 2 ranks: weights relative L2 %.3g > 1e-5", d);
}

Test(distributed, resume_from_a_two_rank_checkpoint, .init = skip_without_mpi) {
    run_ok(MPIRUN CNB_TEST_CNNBENCH " --backend blas" SMALL "--train-limit 400 --epochs 2 --save "
           TMP "full.safetensors --out " TMP "full.json --quiet");
    run_ok(MPIRUN CNB_TEST_CNNBENCH " --backend blas" SMALL "--train-limit 400 --epochs 2 --steps 5 "
           "--checkpoint-every 5 --checkpoint " TMP "part.safetensors --out " TMP "part.json --quiet");
    run_ok(MPIRUN CNB_TEST_CNNBENCH " --backend blas" SMALL "--train-limit 400 --epochs 2 --resume "
           TMP "part.safetensors --save " TMP "resumed.safetensors --out " TMP "resumed.json --quiet");
    int same;
    double d = weights_distance(TMP "full.safetensors", TMP "resumed.safetensors", &same);
    cr_expect(same, "a resumed 2-rank run differs from an uninterrupted one (relative L2 %.3g)", d);
}

Test(distributed, check_family_passes_and_catches_a_planted_fault, .init = skip_without_mpi) {
    run_ok(MPIRUN CNB_TEST_CNNBENCH " check --backends naive,blas --model network --steps 3 "
           "--test-limit 100 --out " TMP "check.json --quiet");
    cJSON *j = results(TMP "check.json");
    const cJSON *sum = cJSON_GetObjectItem(j, "summary");
    cr_expect_eq(cnb_json_int(sum, "FAILED", -1), 0);
    cr_expect_geq(cnb_json_int(sum, "PASSED", 0), 2 * 11, "too few distributed checks ran");
    cJSON_Delete(j);

    char *out;
    int rc = tu_run("export CNB_TEST_FAULT_BACKEND=blas CNB_TEST_PERTURB=gemm; " MPIRUN CNB_TEST_CNNBENCH
                    " check --backends blas --model network --no-training --mode exact --out "
                    TMP "check_bad.json --quiet", &out);
    cr_expect_neq(rc, 0, "a planted gemm fault passed the distributed check:\n%s", out);
    cr_expect(strstr(out, "FAILED     blas    distributed") != NULL, "%s", out);
    free(out);
}

Test(distributed, alone_the_family_is_skipped_with_the_reason) {
    char *out;
    int rc = tu_run(CNB_TEST_CNNBENCH " check --backends naive --family distributed --model "
                    "network --out " TMP "alone.json", &out);
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "SKIPPED") && (strstr(out, "mpirun") || strstr(out, "MPI")), "%s", out);
    free(out);
}

Test(distributed, bench_reports_scaling_and_allreduce_bandwidth, .init = skip_without_mpi) {
    run_ok(MPIRUN CNB_TEST_CNNBENCH " bench --backends blas --model network --steps 2 --runs 1 "
           "--iters 3 --out " TMP "bench.json --quiet");
    cJSON *j = results(TMP "bench.json");
    const cJSON *cell = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "cells"), 0);
    cr_assert_not_null(cell, "no bench cell");
    const cJSON *sc = cJSON_GetObjectItem(cell, "scaling");
    cr_assert_eq(cJSON_GetArraySize(sc), 2, "scaling rows for 1 and 2 ranks expected");
    for (int i = 0; i < 2; i++) {
        const cJSON *row = cJSON_GetArrayItem(sc, i);
        cr_expect_eq(cnb_json_int(row, "ranks", 0), i + 1);
        cr_expect_gt(cnb_json_num(row, "images_per_s", 0), 0, "row %d has no speed", i);
        cr_expect_null(cJSON_GetObjectItem(row, "error"));
    }
    cr_expect_eq(cnb_json_num(cJSON_GetArrayItem(sc, 0), "allreduce_ms_per_step", -1), 0,
                 "one rank exchanges nothing");
    /* network has 5 weights and 5 biases, plus the whole block; busbw = algbw * 2(n-1)/n */
    const cJSON *ar = cJSON_GetObjectItem(cell, "allreduce"), *e;
    cr_expect_eq(cJSON_GetArraySize(ar), 11);
    cJSON_ArrayForEach(e, ar) {
        double alg = cnb_json_num(e, "algbw_GBps", -1), bus = cnb_json_num(e, "busbw_GBps", -2);
        double t = cnb_json_num(e, "time_us", -1), bytes = cnb_json_num(e, "bytes", -1);
        cr_expect_gt(t, 0);
        cr_expect_leq(fabs(alg - bytes / t / 1e3), 1e-9 * alg + 1e-12, "algbw %g != bytes/time", alg);
        cr_expect_leq(fabs(bus - alg * 2.0 * (2 - 1) / 2), 1e-12 + 1e-9 * alg, "busbw %g", bus);
    }
    const cJSON *last = cJSON_GetArrayItem(ar, 10);
    cr_expect_eq(cnb_json_num(last, "bytes", 0), 131992.0, "the whole gradient block of network");
    cJSON_Delete(j);
}

/* The device path (the backend's collective group) on the CPU: cuda_emu's one-rank
 * communicator under mpirun -np 1 must give the plain run's weights bit for bit (scale 1, sum
 * over one rank), and the results must say the gradients were summed on the device. */
Test(distributed, device_allreduce_path_on_the_emulator, .init = skip_without_mpi) {
    const char *emu = CNB_BUILD_BACKEND_DIR_FOR_TESTS "/libcnb_cuda_emu.so";
    FILE *f = fopen(emu, "rb");
    if (!f) cr_skip_test("cuda_emu is not built here");
    fclose(f);
    char cmd[2048];
#define EMU_RUN " --model network --train-limit 20 --batch 10 --test-limit 10 --epochs 1 " \
                "--no-progress --quiet "
    snprintf(cmd, sizeof cmd, CNB_TEST_CNNBENCH " --backend %s" EMU_RUN "--save " TMP
             "emu_1.safetensors --out " TMP "emu_1.json", emu);
    run_ok(cmd);
    snprintf(cmd, sizeof cmd, MPIRUN1 CNB_TEST_CNNBENCH " --backend %s" EMU_RUN
             "--save " TMP "emu_2.safetensors --out " TMP "emu_2.json", emu);
    run_ok(cmd);
    int same;
    double d = weights_distance(TMP "emu_1.safetensors", TMP "emu_2.safetensors", &same);
    cr_expect(same, "one rank through the device all-reduce changed the weights (relL2 %.3g)", d);
    cJSON *j = results(TMP "emu_2.json");
    const cJSON *dist = cJSON_GetObjectItem(j, "distributed");
    const char *how = cnb_json_str(dist, "gradient_exchange", "");
    cr_expect(strstr(how, "on the device") != NULL, "gradient exchange: '%s'", how);
    const char *lib = cnb_json_str(cJSON_GetObjectItem(dist, "communicator"), "device_library", "");
    cr_expect(strstr(lib, "emulated") != NULL, "device library '%s'", lib);
    cJSON_Delete(j);
}
