/* test_cli.c — the cnnbench program as a user meets it: exact front-door command, flag errors
 * that name the flag, listings, and the results JSON keys scripts read. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Run cnnbench with `args`; returns its exit code and its stdout+stderr in *out (malloc'd). */
static int cnnbench(const char *args, char **out) {
    char cmd[8192], path[512];
    static int counter;
    mkdir(CNB_TEST_TMP_DIR, 0755);
    snprintf(path, sizeof path, "%s/cli_%d_%d.txt", CNB_TEST_TMP_DIR, (int)getpid(), counter++);
    snprintf(cmd, sizeof cmd, "%s %s > %s 2>&1 < /dev/null", CNB_TEST_CNNBENCH, args, path);
    int status = system(cmd);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *out = calloc(1, (size_t)n + 1);
    fread(*out, 1, (size_t)n, f);
    fclose(f);
    remove(path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void expect_usage_error(const char *args, const char *phrase) {
    char *out;
    int rc = cnnbench(args, &out);
    cr_expect_eq(rc, 2, "'%s' exited %d, expected 2; output: %s", args, rc, out);
    cr_expect(strstr(out, phrase) != NULL, "'%s': output lacks '%s': %s", args, phrase, out);
    free(out);
}

Test(cli, bad_flags_name_the_flag) {
    expect_usage_error("--epochs abc", "--epochs: 'abc'");
    expect_usage_error("--epochs 0", "--epochs");
    expect_usage_error("--batch -3", "--batch: '-3'");
    expect_usage_error("--lr nan", "--lr: 'nan'");
    expect_usage_error("--lr 0", "--lr");
    expect_usage_error("--threads 2x", "--threads: '2x'");
    expect_usage_error("--steps 99999999999999999999999", "--steps");
    expect_usage_error("--dataset cifar", "valid: fashion-mnist, mnist, csv");
    expect_usage_error("--frobnicate", "unknown option '--frobnicate'");
    expect_usage_error("--epochs", "--epochs needs a value");
    expect_usage_error("stray", "unexpected argument 'stray'");
    expect_usage_error("--model nosuchmodel", "nosuchmodel");
    expect_usage_error("--show-model nosuchmodel", "simplecnn");
}

Test(cli, unknown_backend_lists_choices) {
    char *out;
    int rc = cnnbench("--backend fastest --steps 1", &out);
    cr_expect_neq(rc, 0);
    cr_expect(strstr(out, "--backend") && strstr(out, "naive, blas, onednn, cuda, cudnn"), "%s",
              out);
    free(out);
}

Test(cli, missing_data_names_the_path) {
    char *out;
    int rc = cnnbench("--backend naive --dataset mnist --data /nonexistent/mnist --steps 1", &out);
    cr_expect_neq(rc, 0);
    cr_expect(strstr(out, "/nonexistent/mnist") != NULL, "%s", out);
    free(out);
}

Test(cli, listings) {
    char *out;
    cr_expect_eq(cnnbench("--list-backends", &out), 0);
    cr_expect(strstr(out, "naive") && strstr(out, "blas") && strstr(out, "loads"), "%s", out);
    free(out);
    cr_expect_eq(cnnbench("--list-models", &out), 0);
    const char *models[] = {"simplecnn", "cnn", "network", "network3", "lenet5"};
    for (int i = 0; i < 5; i++) cr_expect(strstr(out, models[i]), "%s missing: %s", models[i], out);
    free(out);
    cr_expect_eq(cnnbench("--show-model simplecnn", &out), 0);
    cr_expect(strstr(out, "[64, 32, 28, 28]") && strstr(out, "421642"), "%s", out);
    free(out);
}

Test(cli, front_door_trains_and_writes_results, .timeout = 300) {
    char *out, args[1024], json[512];
    snprintf(json, sizeof json, "%s/cli_result.json", CNB_TEST_TMP_DIR);
    snprintf(args, sizeof args,
             "--backend naive --model simplecnn --steps 3 --batch 8 --train-limit 64 "
             "--test-limit 50 --seed 5 --out %s",
             json);
    int rc = cnnbench(args, &out);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
    cr_expect(strstr(out, "test accuracy") && strstr(out, "confusion matrix"), "%s", out);
    free(out);
    FILE *f = fopen(json, "r");
    cr_assert_not_null(f, "%s not written", json);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    cJSON *root = cJSON_Parse(text);
    cr_assert_not_null(root, "results are not JSON");
    cr_expect_eq(cJSON_GetObjectItem(root, "schema_version")->valueint, 2);
    cJSON *fin = cJSON_GetObjectItem(root, "final");
    double acc = cJSON_GetObjectItem(fin, "test_accuracy")->valuedouble;
    cr_expect(acc >= 0 && acc <= 1, "test_accuracy %g is not a fraction", acc);
    cr_expect(cJSON_IsNumber(cJSON_GetObjectItem(fin, "test_loss")));
    cJSON *tp = cJSON_GetObjectItem(root, "throughput");
    const char *keys[] = {"train_images_per_s", "infer_images_per_s"};
    for (int i = 0; i < 2; i++) {
        cJSON *o = cJSON_GetObjectItem(tp, keys[i]);
        cr_assert_not_null(o, "throughput.%s missing", keys[i]);
        double mn = cJSON_GetObjectItem(o, "min")->valuedouble;
        double md = cJSON_GetObjectItem(o, "median")->valuedouble;
        double mx = cJSON_GetObjectItem(o, "max")->valuedouble;
        cr_expect(mn > 0 && mn <= md && md <= mx, "%s: %g %g %g", keys[i], mn, md, mx);
    }
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(root, "step_losses")), 3);
    cr_expect_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "backend"), "name")->valuestring,
                     "naive");
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(root, "confusion_matrix")), 10);
    cJSON *mc = cJSON_GetObjectItem(root, "machine");
    cr_expect_gt(cJSON_GetObjectItem(mc, "cores")->valueint, 0);
    cJSON_Delete(root);
}

Test(cli, divergence_exits_nonzero_and_keeps_results, .timeout = 300) {
    char *out, args[1024], json[512];
    snprintf(json, sizeof json, "%s/cli_diverged.json", CNB_TEST_TMP_DIR);
    snprintf(args, sizeof args,
             "--backend blas --model %s/diverge.cfg --train-limit 2560 --test-limit 100 --out %s",
             CNB_TEST_DATA_DIR, json);
    int rc = cnnbench(args, &out);
    cr_expect_eq(rc, 3, "exit %d: %s", rc, out);
    cr_expect(strstr(out, "diverged") && strstr(out, json), "%s", out);
    free(out);
    FILE *f = fopen(json, "r");
    cr_assert_not_null(f, "partial results not written");
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    cJSON *root = cJSON_Parse(text);
    cr_assert_not_null(root);
    cr_expect_str_eq(cJSON_GetObjectItem(root, "status")->valuestring, "diverged");
    cr_expect_gt(cJSON_GetArraySize(cJSON_GetObjectItem(root, "step_losses")), 0);
    cJSON_Delete(root);
}
