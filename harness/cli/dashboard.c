/* dashboard.c — `cnnbench dashboard --db PATH --out DIR`: a static site of the results history
 * that opens from the file system (no server, no fetch of file:// URLs): index.html, the page's
 * script and style (embedded in the program at build time), Chart.js copied from Debian's
 * libjs-chart.js, data.js holding the data as one JavaScript assignment, and runs/run-N.html,
 * one details page per stored run that every chart point links to.
 *
 * Regressions are what `cnnbench compare --gate both` finds between consecutive runs of the same
 * kind on the same machine over the same (model, backend) cells: compare itself is run on the
 * two stored files, so the dashboard marks exactly what the CI gate would say. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cnb_dashboard_assets.h"
#include "commands.h"
#include "history.h"
#include "options.h"
#include "runctx.h"
#include "util.h"

enum { EXIT_FAIL = 1, EXIT_USAGE = 2 };
#define DEFAULT_CHARTJS "/usr/share/javascript/chart.js/chart.min.js"

typedef struct dash_opts {
    const char *db, *out, *chartjs, *threshold;
} dash_opts;

static void usage(FILE *f) {
    fprintf(f,
        "usage: cnnbench dashboard --db PATH --out DIR [--chartjs FILE] [--threshold PCT]\n"
        "\n"
        "Writes a static site of the history database (see `cnnbench history`): per model, train\n"
        "and infer images/s per backend over commits, within-run speed-ups over naive and the\n"
        "GPU:best-CPU ratio, test accuracy, the per-kernel breakdown of the latest bench run, and\n"
        "the regressions `cnnbench compare --gate both` finds between consecutive runs, marked.\n"
        "Open DIR/index.html in a browser; it needs no server.\n"
        "\n"
        "  --chartjs FILE   Chart.js 3 to copy into the site (default %s,\n"
        "                   from Debian's libjs-chart.js; or $CNNBENCH_CHARTJS)\n"
        "  --threshold PCT  compare's threshold for a regression (default 10)\n",
        DEFAULT_CHARTJS);
}

enum { O_DB = 256, O_CHARTJS, O_THRESHOLD };

static const struct option dashboard_flags[] = {
    {"db", required_argument, 0, O_DB}, {"chartjs", required_argument, 0, O_CHARTJS},
    {"threshold", required_argument, 0, O_THRESHOLD}, {0, 0, 0, 0}};

static int on_dashboard_flag(void *user, int id, const char *arg) {
    dash_opts *o = user;
    double t;
    switch (id) {
    case O_DB: o->db = arg; return 0;
    case O_CHARTJS: o->chartjs = arg; return 0;
    case O_THRESHOLD:
        if (cnb_opt_double("cnnbench dashboard", "--threshold", arg, 0, 1000, &t) != 0) return -1;
        o->threshold = arg;
        return 0;
    }
    return -1;
}

static int parse_opts(int argc, char **argv, dash_opts *o) {
    const char *env = getenv("CNNBENCH_CHARTJS");
    *o = (dash_opts){.chartjs = env && *env ? env : DEFAULT_CHARTJS, .threshold = "10"};
    cnb_common_opts co;
    int rc = cnb_parse_options("cnnbench dashboard", argc, argv, CNB_OPT_OUT, dashboard_flags,
                               on_dashboard_flag, o, usage, &co, NULL);
    if (rc != 0) return rc;
    o->out = co.out;
    if (!o->db || !o->out) {
        fprintf(stderr, "cnnbench dashboard: needs --db PATH and --out DIR\n");
        usage(stderr);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Files                                                                                       */

static int write_text(const char *dir, const char *name, const char *text, char *err, size_t len) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return cnb_write_file_atomic(path, text, err, len);
}

static int copy_file(const char *from, const char *dir, const char *name, char *err, size_t len) {
    FILE *in = fopen(from, "rb");
    if (!in)
        return cnb_errf(err, len, "%s: cannot open Chart.js: %s (install libjs-chart.js or give "
                        "--chartjs FILE)", from, strerror(errno));
    char path[PATH_MAX], buf[1 << 16];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *out = fopen(path, "wb");
    size_t n;
    int bad = !out;
    while (out && (n = fread(buf, 1, sizeof buf, in)) > 0) bad |= fwrite(buf, 1, n, out) != n;
    bad |= ferror(in);
    fclose(in);
    if (out) bad |= fclose(out) != 0;
    return bad ? cnb_errf(err, len, "%s: cannot copy %s there", path, from) : 0;
}

static int make_dir(const char *path, char *err, size_t len) {
    if (mkdir(path, 0777) == 0 || errno == EEXIST) return 0;
    return cnb_errf(err, len, "%s: cannot create the directory: %s", path, strerror(errno));
}

/* Text with <, > and & escaped, appended to f. */
static void put_html(FILE *f, const char *s) {
    for (; s && *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Data                                                                                        */

/* Every row of a query as an array of objects keyed by column name (numbers stay numbers). */
static cJSON *query_json(sqlite3 *db, const char *sql) {
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) return NULL;
    cJSON *arr = cJSON_CreateArray();
    while (sqlite3_step(s) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        for (int c = 0; c < sqlite3_column_count(s); c++) {
            const char *name = sqlite3_column_name(s, c);
            int t = sqlite3_column_type(s, c);
            if (t == SQLITE_INTEGER || t == SQLITE_FLOAT)
                cJSON_AddNumberToObject(o, name, sqlite3_column_double(s, c));
            else if (t == SQLITE_NULL) cJSON_AddNullToObject(o, name);
            else cJSON_AddStringToObject(o, name, (const char *)sqlite3_column_text(s, c));
        }
        cJSON_AddItemToArray(arr, o);
    }
    sqlite3_finalize(s);
    return arr;
}

/* The stored JSON of one run, parsed; NULL when absent. */
static cJSON *run_json(sqlite3 *db, long long id) {
    sqlite3_stmt *s;
    cJSON *root = NULL;
    if (sqlite3_prepare_v2(db, "SELECT json FROM runs WHERE id = ?", -1, &s, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_int64(s, 1, id);
    if (sqlite3_step(s) == SQLITE_ROW) root = cJSON_Parse((const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return root;
}

/* Per model, the per-kernel training breakdown of the latest bench run that timed it:
 * {model: {run, backends: {backend: {family: ms}}}}. */
static cJSON *breakdowns(sqlite3 *db) {
    cJSON *out = cJSON_CreateObject();
    cJSON *runs = query_json(db, "SELECT id FROM runs WHERE kind = 'bench' ORDER BY created DESC, id DESC");
    const cJSON *r;
    cJSON_ArrayForEach(r, runs) {
        long long id = (long long)cnb_json_num(r, "id", 0);
        cJSON *root = run_json(db, id);
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(root, "cells")) {
            const char *model = cnb_json_str(c, "model", "?");
            const cJSON *bd = cJSON_GetObjectItemCaseSensitive(c, "breakdown");
            const cJSON *fam = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(bd, "train"), "families");
            if (!cJSON_IsObject(fam)) continue;
            cJSON *m = cJSON_GetObjectItemCaseSensitive(out, model);
            if (!m) {
                m = cJSON_AddObjectToObject(out, model);
                cJSON_AddNumberToObject(m, "run", (double)id);
                cJSON_AddObjectToObject(m, "backends");
            }
            if ((long long)cnb_json_num(m, "run", 0) != id) continue; /* an older run */
            cJSON *b = cJSON_AddObjectToObject(cJSON_GetObjectItemCaseSensitive(m, "backends"),
                                               cnb_json_str(c, "backend", "?"));
            const cJSON *f;
            cJSON_ArrayForEach(f, fam) cJSON_AddNumberToObject(b, f->string, cnb_json_num(f, "ms", 0));
        }
        cJSON_Delete(root);
    }
    cJSON_Delete(runs);
    return out;
}

/* ------------------------------------------------------------------------------------------ */
/* Regressions: compare between consecutive runs of a group                                    */

/* Runs `cnnbench compare --gate both --json` in this process on the two stored files, its
 * report silenced; returns the verdict's rows, or NULL. */
static cJSON *compare_runs(sqlite3 *db, const char *tmp, long long base, long long now,
                           const char *threshold) {
    char bpath[PATH_MAX], npath[PATH_MAX], vpath[PATH_MAX], err[CNB_ERR_LEN];
    snprintf(bpath, sizeof bpath, "%s/base.json", tmp);
    snprintf(npath, sizeof npath, "%s/new.json", tmp);
    snprintf(vpath, sizeof vpath, "%s/verdict.json", tmp);
    cJSON *b = run_json(db, base), *n = run_json(db, now);
    int ok = b && n && cnb_write_json(bpath, b, err, sizeof err) == 0 &&
             cnb_write_json(npath, n, err, sizeof err) == 0;
    cJSON_Delete(b);
    cJSON_Delete(n);
    if (!ok) return NULL;
    char *argv[] = {"compare", "--gate", "both", "--quiet", "--threshold", (char *)threshold,
                    "--json", vpath, bpath, npath, NULL};
    fflush(stdout);
    int saved = dup(STDOUT_FILENO), null = open("/dev/null", O_WRONLY);
    if (saved < 0 || null < 0) return NULL;
    dup2(null, STDOUT_FILENO);
    close(null);
    cnb_cmd_compare(10, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    cJSON *verdict = cnb_read_json(vpath, err, sizeof err);
    unlink(vpath);
    cJSON *rows = cJSON_DetachItemFromObjectCaseSensitive(verdict, "rows");
    cJSON_Delete(verdict);
    return rows;
}

/* A gated regression row of compare, as {run, base_run, model, backend, metric, change_pct}
 * naming the series it belongs to (history.h's metric names). NULL for other rows. */
static cJSON *regression_point(const cJSON *row, long long base, long long now) {
    const char *kind = cnb_json_str(row, "kind", ""), *cell = cnb_json_str(row, "cell", "");
    const char *what = cnb_json_str(row, "metric", "");
    if (strcmp(cnb_json_str(row, "verdict", ""), "regression") != 0 ||
        !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "gated")))
        return NULL;
    char model[128] = "", backend[128] = "", rest[256] = "", metric[64];
    if (strcmp(kind, "absolute") == 0) {
        /* "model/backend" (training) or "model/backend/batchN" (bench) */
        if (sscanf(cell, "%127[^/]/%127[^/]", model, backend) != 2) return NULL;
        snprintf(metric, sizeof metric, "%s_images_per_s", what);
    } else if (strcmp(kind, "ratio") == 0) {
        /* "model/batchN backend/baseline" or "... backend/best-cpu:baseline" */
        if (sscanf(cell, "%127[^/]/%*s %127[^/]/%255s", model, backend, rest) != 3) return NULL;
        snprintf(metric, sizeof metric, "%s_%s",
                 strncmp(rest, "best-cpu:", 9) == 0 ? "vs_best_cpu" : "speedup_vs_naive", what);
    } else {
        return NULL;
    }
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "run", (double)now);
    cJSON_AddNumberToObject(p, "base_run", (double)base);
    cJSON_AddStringToObject(p, "model", model);
    cJSON_AddStringToObject(p, "backend", backend);
    cJSON_AddStringToObject(p, "metric", metric);
    cJSON_AddNumberToObject(p, "change_pct", cnb_json_num(row, "change_pct", 0));
    return p;
}

static cJSON *regressions(sqlite3 *db, const char *threshold, char *err, size_t err_len) {
    /* a group: same kind, machine and (model/backend) cells, in time order */
    cJSON *runs = query_json(db,
        "SELECT r.id, r.kind || '|' || r.machine || '|' || ifnull((SELECT group_concat(k) FROM"
        " (SELECT DISTINCT model || '/' || backend AS k FROM measurements WHERE run_id = r.id"
        " ORDER BY k)), '') AS grp FROM runs r WHERE r.kind IN ('train', 'bench')"
        " ORDER BY r.created, r.id");
    char tmp[] = "/tmp/cnnbench-dashboard-XXXXXX";
    if (!runs || !mkdtemp(tmp)) {
        cJSON_Delete(runs);
        cnb_errf(err, err_len, "cannot list runs or make a temporary directory: %s", strerror(errno));
        return NULL;
    }
    cJSON *out = cJSON_CreateArray(), *last = cJSON_CreateObject(); /* group -> last run id */
    const cJSON *r;
    cJSON_ArrayForEach(r, runs) {
        const char *grp = cnb_json_str(r, "grp", "");
        long long id = (long long)cnb_json_num(r, "id", 0);
        const cJSON *prev = cJSON_GetObjectItemCaseSensitive(last, grp);
        if (prev) {
            long long base = (long long)prev->valuedouble;
            cJSON *rows = compare_runs(db, tmp, base, id, threshold);
            const cJSON *row;
            cJSON_ArrayForEach(row, rows) {
                cJSON *p = regression_point(row, base, id);
                if (p) cJSON_AddItemToArray(out, p);
            }
            cJSON_Delete(rows);
            cJSON_DeleteItemFromObjectCaseSensitive(last, grp);
        }
        cJSON_AddNumberToObject(last, grp, (double)id);
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/base.json", tmp);
    unlink(path);
    snprintf(path, sizeof path, "%s/new.json", tmp);
    unlink(path);
    rmdir(tmp);
    cJSON_Delete(last);
    cJSON_Delete(runs);
    return out;
}

/* ------------------------------------------------------------------------------------------ */
/* Pages                                                                                       */

static int write_data_js(sqlite3 *db, const char *dir, const char *db_path, const char *threshold,
                         char *err, size_t len) {
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "database", db_path);
    cJSON_AddStringToObject(data, "threshold_pct", threshold);
    cJSON_AddItemToObject(data, "runs", query_json(db,
        "SELECT id, kind, git_commit AS 'commit', machine, created, source, status FROM runs"
        " ORDER BY created, id"));
    cJSON_AddItemToObject(data, "points", query_json(db,
        "SELECT m.run_id AS run, model, backend, batch, metric, baseline, value, mad"
        " FROM measurements m JOIN runs r ON r.id = m.run_id ORDER BY r.created, r.id"));
    cJSON *reg = regressions(db, threshold, err, len);
    if (!reg) {
        cJSON_Delete(data);
        return -1;
    }
    cJSON_AddItemToObject(data, "regressions", reg);
    cJSON_AddItemToObject(data, "breakdowns", breakdowns(db));
    char *json = cJSON_PrintUnformatted(data);
    cJSON_Delete(data);
    if (!json) return cnb_errf(err, len, "out of memory building the dashboard data");
    size_t n = strlen(json);
    char *js = malloc(n + 64);
    int rc = -1;
    if (js) {
        snprintf(js, n + 64, "window.CNB_DASHBOARD = %s;\n", json);
        rc = write_text(dir, "data.js", js, err, len);
    }
    free(js);
    free(json);
    return rc;
}

static const char index_html[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<title>cnnbench results over time</title>\n"
    "<link rel=\"stylesheet\" href=\"dashboard.css\">\n"
    /* first, so that an error in any later script is caught and reported in the page */
    "<script>window.CNB_ERRORS = [];\n"
    "window.addEventListener('error', function (e) { window.CNB_ERRORS.push(String(e.message ||"
    " (e.target && (e.target.src || e.target.href)) || 'error')); }, true);\n"
    "(function () { var ce = console.error; console.error = function () {\n"
    "  window.CNB_ERRORS.push(Array.prototype.join.call(arguments, ' ')); ce.apply(console, arguments);"
    " }; })();</script>\n"
    "<script src=\"chart.min.js\"></script>\n<script src=\"data.js\"></script>\n"
    "</head><body>\n<h1>cnnbench results over time</h1>\n<div id=\"meta\"></div>\n"
    "<div id=\"models\"></div>\n<h2>Regressions between consecutive runs</h2>\n"
    "<div id=\"regressions\"></div>\n<script src=\"dashboard.js\"></script>\n</body></html>\n";

/* runs/run-N.html: what the run was, its figures and the whole stored JSON. */
static int write_run_page(sqlite3 *db, const char *dir, sqlite3_stmt *s, char *err, size_t len) {
    long long id = sqlite3_column_int64(s, 0);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/runs/run-%lld.html", dir, id);
    FILE *f = fopen(path, "w");
    if (!f) return cnb_errf(err, len, "%s: cannot write: %s", path, strerror(errno));
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>cnnbench "
               "run %lld</title><link rel=\"stylesheet\" href=\"../dashboard.css\"></head><body>\n"
               "<p><a href=\"../index.html\">&larr; dashboard</a></p><h1>Run %lld</h1>\n<table>",
            id, id);
    static const char *const labels[] = {"kind", "commit", "machine", "created", "file", "status",
                                         "added"};
    for (int c = 1; c <= 7; c++) {
        fprintf(f, "<tr><th>%s</th><td>", labels[c - 1]);
        put_html(f, (const char *)sqlite3_column_text(s, c));
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n<h2>Figures</h2>\n<table><tr><th>model</th><th>backend</th><th>batch</th>"
          "<th>metric</th><th>baseline</th><th>value</th><th>MAD</th></tr>\n", f);
    sqlite3_stmt *m;
    if (sqlite3_prepare_v2(db, "SELECT model, backend, batch, metric, baseline, printf('%.6g', value),"
                           " ifnull(printf('%.3g', mad), '') FROM measurements WHERE run_id = ?",
                           -1, &m, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(m, 1, id);
        while (sqlite3_step(m) == SQLITE_ROW) {
            fputs("<tr>", f);
            for (int c = 0; c < 7; c++) {
                fputs("<td>", f);
                put_html(f, (const char *)sqlite3_column_text(m, c));
                fputs("</td>", f);
            }
            fputs("</tr>\n", f);
        }
        sqlite3_finalize(m);
    }
    fputs("</table>\n<h2>Stored results file</h2>\n<pre class=\"json\">", f);
    put_html(f, (const char *)sqlite3_column_text(s, 8));
    fputs("</pre>\n</body></html>\n", f);
    return fclose(f) == 0 ? 0 : cnb_errf(err, len, "%s: cannot write", path);
}

static int write_run_pages(sqlite3 *db, const char *dir, int *count, char *err, size_t len) {
    char sub[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/runs", dir);
    if (make_dir(sub, err, len) != 0) return -1;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "SELECT id, kind, git_commit, machine, created, source, status,"
                           " added, json FROM runs ORDER BY id", -1, &s, NULL) != SQLITE_OK)
        return cnb_errf(err, len, "cannot list the runs: %s", sqlite3_errmsg(db));
    int rc = 0;
    *count = 0;
    while (rc == 0 && sqlite3_step(s) == SQLITE_ROW) {
        rc = write_run_page(db, dir, s, err, len);
        *count += rc == 0;
    }
    sqlite3_finalize(s);
    return rc;
}

static int build_site(sqlite3 *db, const dash_opts *o, char *err, size_t len) {
    int pages = 0;
    if (make_dir(o->out, err, len) != 0 ||
        copy_file(o->chartjs, o->out, "chart.min.js", err, len) != 0 ||
        write_text(o->out, "index.html", index_html, err, len) != 0 ||
        write_text(o->out, "dashboard.js", cnb_asset_dashboard_js, err, len) != 0 ||
        write_text(o->out, "dashboard.css", cnb_asset_dashboard_css, err, len) != 0 ||
        write_data_js(db, o->out, o->db, o->threshold, err, len) != 0 ||
        write_run_pages(db, o->out, &pages, err, len) != 0)
        return -1;
    printf("dashboard: %s/index.html (%d run pages)\n", o->out, pages);
    return 0;
}

int cnb_cmd_dashboard(int argc, char **argv) {
    dash_opts o;
    int prc = parse_opts(argc, argv, &o);
    if (prc != 0) return prc > 0 ? 0 : EXIT_USAGE;
    char err[CNB_ERR_LEN];
    struct stat st;
    if (stat(o.db, &st) != 0) {
        fprintf(stderr, "cnnbench dashboard: %s: no such database (fill one with `cnnbench history "
                "add`)\n", o.db);
        return EXIT_FAIL;
    }
    sqlite3 *db = cnb_history_open(o.db, err, sizeof err);
    if (!db) {
        fprintf(stderr, "cnnbench dashboard: %s\n", err);
        return EXIT_FAIL;
    }
    int rc = build_site(db, &o, err, sizeof err);
    if (rc != 0) fprintf(stderr, "cnnbench dashboard: %s\n", err);
    sqlite3_close(db);
    return rc == 0 ? 0 : EXIT_FAIL;
}
