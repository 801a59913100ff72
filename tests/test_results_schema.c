/* test_results_schema.c — every results file cnnbench writes starts from the same context block
 * (docs/results-schema.md): train, comparison, check, bench and compare files, made here by the
 * program itself; and compare and report still read schema-1 files. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runctx.h"
#include "testutil.h"

#define CNB CNB_TEST_CNNBENCH
#define TMP CNB_TEST_TMP_DIR

static void run_ok(const char *cmd) {
    char *out = NULL;
    int rc = tu_run(cmd, &out);
    cr_assert(rc == 0 || rc == 1, "%s: exit %d\n%s", cmd, rc, out);
    free(out);
}

/* The context block's keys, with the types a reader relies on. */
static void expect_context(const char *path, const char *kind) {
    char err[1024];
    cJSON *root = cnb_read_json(path, err, sizeof err);
    cr_assert_not_null(root, "%s", err);
    cr_expect_eq(cnb_json_int(root, "schema_version", 0), 2, "%s: schema_version", path);
    cr_expect_str_eq(cnb_json_str(root, "kind", ""), kind, "%s: kind", path);
    cr_expect_str_eq(cnb_results_kind(root), kind, "%s", path);
    static const char *const strings[] = {"tool", "created", "build_type", "git_commit"};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        cr_expect(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, strings[i])),
                  "%s: no string '%s'", path, strings[i]);
    static const char *const numbers[] = {"seed", "threads"};
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
        cr_expect(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(root, numbers[i])),
                  "%s: no number '%s'", path, numbers[i]);
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(root, "command_line");
    cr_expect(cJSON_IsArray(cmd) && cJSON_GetArraySize(cmd) > 1, "%s: command_line", path);
    cr_expect_str_eq(cJSON_GetArrayItem(cmd, 0)->valuestring, "cnnbench", "%s", path);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "machine");
    cr_expect(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "cpu_model")), "%s: machine",
              path);
    cr_expect(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "pinning")), "%s: pinning",
              path);
    cr_expect(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "environment")),
              "%s: environment", path);
    cJSON_Delete(root);
}

Test(results_schema, every_kind_starts_from_the_context_block, .timeout = 300) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s --backend naive --model network --steps 2 --train-limit 200 "
             "--test-limit 100 --no-progress --quiet --out %s/schema-train.json", CNB, TMP);
    run_ok(cmd);
    expect_context(TMP "/schema-train.json", "train");
    snprintf(cmd, sizeof cmd, "%s --backend naive,blas --model network --steps 2 --train-limit 200 "
             "--test-limit 100 --naive-steps 2 --no-progress --quiet --out %s/schema-cmp.json",
             CNB, TMP);
    run_ok(cmd);
    expect_context(TMP "/schema-cmp.json", "comparison");
    expect_context(TMP "/schema-cmp.check.json", "check");
    snprintf(cmd, sizeof cmd, "%s bench --backends naive --model network --quick --min-runs 2 "
             "--max-runs 2 --no-breakdown --quiet --out %s/schema-bench.json", CNB, TMP);
    run_ok(cmd);
    expect_context(TMP "/schema-bench.json", "bench");
    snprintf(cmd, sizeof cmd, "%s compare %s/schema-bench.json %s/schema-bench.json --quiet "
             "--json %s/schema-compare.json", CNB, TMP, TMP, TMP);
    run_ok(cmd);
    expect_context(TMP "/schema-compare.json", "compare");
}

/* A schema-1 training file (no kind, no context block) is still a training file to compare and
 * report: the committed 3-epoch simplecnn result against a fresh schema-2 one. */
Test(results_schema, schema_1_training_files_still_read, .timeout = 300) {
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s --backend blas --model simplecnn --steps 3 --train-limit 300 "
             "--test-limit 200 --no-progress --quiet --out %s/schema-new-train.json", CNB, TMP);
    run_ok(cmd);
    int rc = tu_runf(&out,
                     "%s compare %s/results/simplecnn-blas-3epochs.json "
                     "%s/schema-new-train.json", CNB, CNB_SOURCE_DIR, TMP);
    cr_expect(rc == 0 || rc == 1, "compare refused a schema-1 training file (exit %d):\n%s", rc,
              out);
    cr_expect_not_null(strstr(out, "verdict"), "%s", out);
    free(out);
    rc = tu_runf(&out,
                 "%s report %s/results/simplecnn-blas-3epochs.json --out "
                 "%s/schema-report", CNB, CNB_SOURCE_DIR, TMP);
    cr_expect_not_null(strstr(out, "report:"), "%s", out);
    cr_expect_null(strstr(out, "not a training"), "%s", out);
    free(out);
}
