/* test_dashboard.c — the dashboard in a real browser. A temporary history database is fed with
 * committed results/ files (bench, training) and two hand-made GPU bench runs, the second twice
 * as slow; `cnnbench dashboard` writes the site; headless Chromium opens index.html from the file
 * system, and the test reads back the summary the page writes into the DOM after rendering:
 * every chart has the series and points the files hold (counted by hand below, from the files),
 * Chart.js laid out every point, the slowdown is marked, the page caught no error and Chromium
 * logged no console message. A screenshot is saved as build/tests/dashboard.png. Skipped with
 * the reason when history was not built or chromium / Chart.js are missing. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#define CNB CNB_TEST_CNNBENCH
#define RES CNB_SOURCE_DIR "/results"
#define CHARTJS "/usr/share/javascript/chart.js/chart.min.js"
#define SCREENSHOT CNB_TEST_TMP_DIR "/../dashboard.png"

/* simplecnn: 4 bench runs (naive, blas), 3 blas and 2 onednn training runs.
 * network: 1 bench run (naive, blas), 1 blas and 1 onednn training run. */
static const char *const committed[] = {
    RES "/bench-repeat/time-balanced-1.json", RES "/bench-repeat/time-balanced-2.json",
    RES "/bench-repeat/time-balanced-3.json", RES "/bench-repeat/time-balanced-4.json",
    RES "/simplecnn-blas-3epochs.json",
    RES "/pytorch-race/2026-11-23/simplecnn-cnnbench-blas.json",
    RES "/pytorch-race/2026-11-23/simplecnn-cnnbench-onednn.json",
    RES "/pytorch-race/2026-11-23-simplecnn-repeat2/simplecnn-cnnbench-blas.json",
    RES "/pytorch-race/2026-11-23-simplecnn-repeat2/simplecnn-cnnbench-onednn.json",
    RES "/ci-baseline.json",
    RES "/pytorch-race/2026-11-23/network-cnnbench-blas.json",
    RES "/pytorch-race/2026-11-23/network-cnnbench-onednn.json",
};

typedef struct expected_chart {
    const char *id, *model, *type;
    int series;
    const char *labels[6];
    int points[6];
    int marked;
} expected_chart;

/* Models are laid out with the most runs first: simplecnn (9 runs) is m0, network (5) m1. */
static const expected_chart expected[] = {
    {"m0-train", "simplecnn", "line", 4,
     {"blas · bench", "blas · train", "naive · bench", "onednn · train"}, {4, 3, 4, 2}, -1},
    {"m0-infer", "simplecnn", "line", 4,
     {"blas · bench", "blas · train", "naive · bench", "onednn · train"}, {4, 3, 4, 2}, -1},
    {"m0-speedup", "simplecnn", "line", 2, {"blas · infer", "blas · train"}, {4, 4}, -1},
    {"m0-accuracy", "simplecnn", "line", 2, {"blas · train", "onednn · train"}, {3, 2}, 0},
    {"m0-kernels", "simplecnn", "bar", 2, {"blas", "naive"}, {15, 15}, 0},
    {"m1-train", "network", "line", 5,
     {"blas · bench", "blas · train", "cuda · bench", "naive · bench", "onednn · train"},
     {1, 1, 2, 1, 1}, 1},
    {"m1-infer", "network", "line", 5,
     {"blas · bench", "blas · train", "cuda · bench", "naive · bench", "onednn · train"},
     {1, 1, 2, 1, 1}, 1},
    {"m1-speedup", "network", "line", 2, {"blas · infer", "blas · train"}, {1, 1}, 0},
    {"m1-cpugpu", "network", "line", 2, {"cuda:blas · infer", "cuda:blas · train"}, {2, 2}, 0},
    {"m1-accuracy", "network", "line", 2, {"blas · train", "onednn · train"}, {1, 1}, 0},
    {"m1-kernels", "network", "bar", 2, {"blas", "naive"}, {15, 15}, 0},
};

static char dir[512];

static int have(const char *cmd) {
    char *out = NULL;
    int rc = tu_run(cmd, &out);
    free(out);
    return rc == 0;
}

static void skip_unless_possible(void) {
    char *out = NULL;
    tu_run(CNB " history --help", &out);
    int built = !strstr(out, "not built here");
    free(out);
    const char *why = !built ? "cnnbench was built without history (no SQLite or libcrypto)"
                      : !have("command -v chromium") ? "chromium is not installed"
                      : access(CHARTJS, R_OK) != 0 ? "Chart.js (libjs-chart.js) is not installed"
                                                  : NULL;
    if (why) {
        printf("[SKIP-ALL] %s\n", why);
        cr_skip_test("%s", why);
    }
}

/* A GPU bench run of network on another machine: a cuda cell and its ratio to blas. */
static void gpu_bench(const char *path, const char *created, double ips) {
    char text[2048];
    snprintf(text, sizeof text,
             "{\"schema_version\": 1, \"kind\": \"bench\", \"tool\": \"cnnbench 0.1.0\","
             " \"created\": \"%s\", \"git_commit\": \"%s\","
             " \"machine\": {\"cpu_model\": \"Test GPU host\", \"cores\": 16},"
             " \"cells\": [{\"backend\": \"cuda\", \"model\": \"network\", \"batch\": 100,"
             "   \"status\": \"ok\", \"train_images_per_s\": {\"median\": %g, \"mad\": 50},"
             "   \"infer_images_per_s\": {\"median\": %g, \"mad\": 50}}],"
             " \"ratios\": [{\"kind\": \"vs_best_cpu\", \"model\": \"network\", \"batch\": 100,"
             "   \"backend\": \"cuda\", \"baseline\": \"blas\","
             "   \"train\": {\"median\": %g, \"mad\": 0.1}, \"infer\": {\"median\": %g, \"mad\": 0.1}}]}",
             created, ips > 15000 ? "aaaaaaaaaaaa" : "bbbbbbbbbbbb", ips, 3 * ips, ips / 3000,
             ips / 1000);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

static void build_site(void) {
    tu_make_dir(dir, sizeof dir, "dashboard");
    char cmd[8192], *out = NULL;
    char gpu1[1024], gpu2[1024];
    snprintf(gpu1, sizeof gpu1, "%s/gpu-1.json", dir);
    snprintf(gpu2, sizeof gpu2, "%s/gpu-2.json", dir);
    gpu_bench(gpu1, "2026-12-01T10:00:00Z", 20000);
    gpu_bench(gpu2, "2026-12-02T10:00:00Z", 10000);
    int n = snprintf(cmd, sizeof cmd, CNB " history add --quiet --db '%s/h.sqlite' '%s' '%s'", dir,
                     gpu1, gpu2);
    for (size_t i = 0; i < sizeof committed / sizeof committed[0]; i++)
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " '%s'", committed[i]);
    int rc = tu_run(cmd, &out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert_not_null(strstr(out, "14 added"), "%s", out);
    free(out);
    rc = tu_runf(&out,
                 CNB " dashboard --db '%s/h.sqlite' --out '%s/site'", dir, dir);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert_not_null(strstr(out, "14 run pages"), "%s", out);
    free(out);
}

/* Headless Chromium on the site with `flags`: its output into <dir>/<name>.out, its log (one
 * line per console message among others) into <dir>/<name>.log. */
static void open_in_chromium(const char *name, const char *flags) {
    char *out = NULL;
    int rc = tu_runf(&out,
                     "timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run"
                     " --user-data-dir='%s/profile' --enable-logging=stderr --v=0 --hide-scrollbars"
                     " --window-size=1600,1400 --virtual-time-budget=10000 %s"
                     " 'file://%s/site/index.html' > '%s/%s.out' 2> '%s/%s.log'",
                     dir, flags, dir, dir, name, dir, name);
    cr_assert_eq(rc, 0, "chromium failed (%d): %s", rc, out);
    free(out);
}

/* The JSON the page wrote into <pre id="cnb-summary">, HTML entities undone. */
static cJSON *page_summary(const char *dom) {
    const char *start = strstr(dom, "id=\"cnb-summary\"");
    cr_assert_not_null(start, "the page wrote no summary: did dashboard.js run?\n%.2000s", dom);
    start = strchr(start, '>') + 1;
    const char *end = strstr(start, "</pre>");
    cr_assert_not_null(end);
    char *text = strndup(start, (size_t)(end - start)), *w = text;
    for (const char *r = text; *r;) {
        if (strncmp(r, "&amp;", 5) == 0) { *w++ = '&'; r += 5; }
        else if (strncmp(r, "&lt;", 4) == 0) { *w++ = '<'; r += 4; }
        else if (strncmp(r, "&gt;", 4) == 0) { *w++ = '>'; r += 4; }
        else *w++ = *r++;
    }
    *w = '\0';
    cJSON *s = cJSON_Parse(text);
    cr_assert_not_null(s, "summary is not JSON: %s", text);
    free(text);
    return s;
}

static const cJSON *find_chart(const cJSON *charts, const char *id) {
    const cJSON *c;
    cJSON_ArrayForEach(c, charts)
        if (strcmp(cJSON_GetObjectItem(c, "id")->valuestring, id) == 0) return c;
    return NULL;
}

static void check_chart(const cJSON *c, const expected_chart *e) {
    cr_assert_not_null(c, "chart %s was not drawn", e->id);
    cr_expect_str_eq(cJSON_GetObjectItem(c, "model")->valuestring, e->model, "%s", e->id);
    cr_expect_str_eq(cJSON_GetObjectItem(c, "type")->valuestring, e->type, "%s", e->id);
    cr_assert_eq(cJSON_GetObjectItem(c, "series")->valueint, e->series, "%s: series", e->id);
    const cJSON *labels = cJSON_GetObjectItem(c, "series_labels");
    const cJSON *points = cJSON_GetObjectItem(c, "points");
    const cJSON *rendered = cJSON_GetObjectItem(c, "rendered");
    for (int i = 0; i < e->series; i++) {
        cr_expect_str_eq(cJSON_GetArrayItem(labels, i)->valuestring, e->labels[i], "%s", e->id);
        cr_expect_eq(cJSON_GetArrayItem(points, i)->valueint, e->points[i], "%s series %s points",
                     e->id, e->labels[i]);
        cr_expect_eq(cJSON_GetArrayItem(rendered, i)->valueint, e->points[i],
                     "%s series %s: Chart.js laid out a different number of points", e->id,
                     e->labels[i]);
    }
    if (e->marked >= 0)
        cr_expect_eq(cJSON_GetObjectItem(c, "marked")->valueint, e->marked, "%s: marked", e->id);
}

/* Every point's run has its details page. */
static void check_run_pages(const cJSON *c) {
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(c, "runs")) {
        char page[1024];
        snprintf(page, sizeof page, "%s/site/runs/run-%d.html", dir, r->valueint);
        cr_expect_eq(access(page, R_OK), 0, "%s: no details page %s", 
                     cJSON_GetObjectItem(c, "id")->valuestring, page);
    }
}

/* Chromium's log has a line per console message ("...:CONSOLE:..."); the page logs none. */
static void expect_no_console_messages(const char *log_path) {
    char *log = tu_slurp(log_path, NULL);
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n"))
        cr_expect_null(strstr(line, ":CONSOLE"), "console message: %s", line);
    free(log);
}

/* The scratch directory goes after each test (the messages say what failed). */
static void remove_scratch(void) { tu_remove_dir(dir); }

TestSuite(dashboard, .fini = remove_scratch);

Test(dashboard, renders_every_chart_in_chromium, .timeout = 300) {
    skip_unless_possible();
    build_site();
    open_in_chromium("dom", "--dump-dom");
    char path[1024];
    snprintf(path, sizeof path, "%s/dom.out", dir);
    char *dom = tu_slurp(path, NULL);
    cJSON *s = page_summary(dom);
    free(dom);
    const cJSON *errors = cJSON_GetObjectItem(s, "errors");
    cr_expect_eq(cJSON_GetArraySize(errors), 0, "page errors: %s", cJSON_PrintUnformatted(errors));
    snprintf(path, sizeof path, "%s/dom.log", dir);
    expect_no_console_messages(path);

    const cJSON *charts = cJSON_GetObjectItem(s, "charts");
    size_t n = sizeof expected / sizeof expected[0];
    cr_expect_eq(cJSON_GetArraySize(charts), (int)n, "charts drawn: %s",
                 cJSON_PrintUnformatted(charts));
    for (size_t i = 0; i < n; i++) {
        const cJSON *c = find_chart(charts, expected[i].id);
        check_chart(c, &expected[i]);
        check_run_pages(c);
    }
    cr_expect_eq(cJSON_GetObjectItem(s, "runs")->valueint, 14);
    cr_expect_geq(cJSON_GetObjectItem(s, "regressions")->valueint, 2,
                  "the halved GPU run must be a regression in train and infer");
    cJSON_Delete(s);

    unlink(SCREENSHOT);
    open_in_chromium("shot", "--screenshot='" SCREENSHOT "'");
    struct stat st;
    cr_assert_eq(stat(SCREENSHOT, &st), 0, "no screenshot at %s", SCREENSHOT);
    cr_expect_gt(st.st_size, 20000, "a screenshot of %ld bytes cannot show the charts",
                 (long)st.st_size);
    printf("dashboard screenshot: %s\n", SCREENSHOT);
}
