/* history.c — results files into the SQLite history (history.h). */
#define _GNU_SOURCE
#include "history.h"

#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runctx.h"
#include "util.h"

static const char *const schema_sql =
    "PRAGMA foreign_keys = ON;"
    "CREATE TABLE IF NOT EXISTS runs("
    "  id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,"
    "  git_commit TEXT NOT NULL, machine TEXT NOT NULL, created TEXT NOT NULL,"
    "  source TEXT NOT NULL, added TEXT NOT NULL, status TEXT NOT NULL, json TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS measurements("
    "  run_id INTEGER NOT NULL REFERENCES runs(id), model TEXT NOT NULL, backend TEXT NOT NULL,"
    "  batch INTEGER NOT NULL, metric TEXT NOT NULL, baseline TEXT NOT NULL DEFAULT '',"
    "  value REAL NOT NULL, mad REAL);"
    "CREATE INDEX IF NOT EXISTS measurements_series"
    "  ON measurements(model, backend, batch, metric);"
    "CREATE INDEX IF NOT EXISTS runs_time ON runs(created);";

sqlite3 *cnb_history_open(const char *path, char *err, size_t err_len) {
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        cnb_errf(err, err_len, "%s: cannot open the history database: %s", path,
                 db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000); /* CI jobs adding at once wait for each other */
    char *msg = NULL;
    if (sqlite3_exec(db, schema_sql, NULL, NULL, &msg) != SQLITE_OK) {
        cnb_errf(err, err_len, "%s: not a usable history database: %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

/* ------------------------------------------------------------------------------------------ */
/* What a file is                                                                              */

const char *cnb_history_kind(const cJSON *root, const char **why) {
    if (!cJSON_IsObject(root)) {
        *why = "the top level is not a JSON object";
        return NULL;
    }
    const char *tool = cnb_json_str(root, "tool", "");
    if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(root, "schema_version")) ||
        strncmp(tool, "cnnbench", 8) != 0) {
        *why = "not a cnnbench results file (no schema_version, or tool is not cnnbench)";
        return NULL;
    }
    const char *kind = cnb_json_str(root, "kind", NULL);
    if (kind) return kind;
    if (cJSON_GetObjectItemCaseSensitive(root, "epochs") ||
        cJSON_GetObjectItemCaseSensitive(root, "throughput"))
        return "train";
    *why = "a cnnbench file with neither a kind nor training results";
    return NULL;
}

/* "AMD EPYC, 2 cores": what makes absolute figures comparable (hostnames change per VM). */
static void machine_of(const cJSON *root, char *buf, size_t len) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "machine");
    snprintf(buf, len, "%s, %d cores", cnb_json_str(m, "cpu_model", "unknown CPU"),
             cnb_json_int(m, "cores", 0));
}

/* ------------------------------------------------------------------------------------------ */
/* Measurements                                                                                */

typedef struct adder {
    sqlite3 *db;
    sqlite3_stmt *stmt;
    long long run_id;
    int rc; /* first sqlite error */
} adder;

static void put(adder *a, const char *model, const char *backend, int batch, const char *metric,
                const char *baseline, double value, double mad) {
    if (a->rc != SQLITE_OK || !isfinite(value)) return;
    sqlite3_stmt *s = a->stmt;
    sqlite3_reset(s);
    sqlite3_bind_int64(s, 1, a->run_id);
    sqlite3_bind_text(s, 2, model, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, backend, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 4, batch);
    sqlite3_bind_text(s, 5, metric, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 6, baseline ? baseline : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(s, 7, value);
    if (isfinite(mad)) sqlite3_bind_double(s, 8, mad);
    else sqlite3_bind_null(s, 8);
    if (sqlite3_step(s) != SQLITE_DONE) a->rc = sqlite3_errcode(a->db);
}

/* A figure that is either a number or a {median, mad, ...} summary. */
static void put_figure(adder *a, const char *model, const char *backend, int batch,
                       const char *metric, const char *baseline, const cJSON *fig) {
    if (cJSON_IsNumber(fig)) put(a, model, backend, batch, metric, baseline, fig->valuedouble, NAN);
    else if (cJSON_IsObject(fig))
        put(a, model, backend, batch, metric, baseline, cnb_json_num(fig, "median", NAN),
            cnb_json_num(fig, "mad", NAN));
}

static const char *model_name(const cJSON *root) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (cJSON_IsString(m)) return m->valuestring;
    return cnb_json_str(m, "name", "?");
}

static int model_batch(const cJSON *root) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model");
    return cnb_json_int(cJSON_GetObjectItemCaseSensitive(m, "settings"), "batch",
                        cnb_json_int(root, "batch", 0));
}

static void measure_train(adder *a, const cJSON *root) {
    const char *model = model_name(root);
    const char *backend = cnb_json_str(cJSON_GetObjectItemCaseSensitive(root, "backend"), "name", "?");
    int batch = model_batch(root);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "throughput");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(root, "final");
    put_figure(a, model, backend, batch, "train_images_per_s", NULL,
               cJSON_GetObjectItemCaseSensitive(t, "train_images_per_s"));
    put_figure(a, model, backend, batch, "infer_images_per_s", NULL,
               cJSON_GetObjectItemCaseSensitive(t, "infer_images_per_s"));
    put(a, model, backend, batch, "test_accuracy", NULL, cnb_json_num(f, "test_accuracy", NAN), NAN);
    put(a, model, backend, batch, "test_loss", NULL, cnb_json_num(f, "test_loss", NAN), NAN);
}

static void measure_bench(adder *a, const cJSON *root) {
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(root, "cells")) {
        if (strcmp(cnb_json_str(e, "status", ""), "ok") != 0) continue;
        const char *model = cnb_json_str(e, "model", "?"), *backend = cnb_json_str(e, "backend", "?");
        int batch = cnb_json_int(e, "batch", 0);
        put_figure(a, model, backend, batch, "train_images_per_s", NULL,
                   cJSON_GetObjectItemCaseSensitive(e, "train_images_per_s"));
        put_figure(a, model, backend, batch, "infer_images_per_s", NULL,
                   cJSON_GetObjectItemCaseSensitive(e, "infer_images_per_s"));
    }
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(root, "ratios")) {
        const char *kind = cnb_json_str(e, "kind", "");
        const char *prefix = strcmp(kind, "vs_naive") == 0      ? "speedup_vs_naive"
                             : strcmp(kind, "vs_best_cpu") == 0 ? "vs_best_cpu"
                                                                : NULL;
        if (!prefix) continue;
        char metric[64];
        const char *model = cnb_json_str(e, "model", "?"), *backend = cnb_json_str(e, "backend", "?");
        const char *base = cnb_json_str(e, "baseline", "");
        int batch = cnb_json_int(e, "batch", 0);
        snprintf(metric, sizeof metric, "%s_train", prefix);
        put_figure(a, model, backend, batch, metric, base, cJSON_GetObjectItemCaseSensitive(e, "train"));
        snprintf(metric, sizeof metric, "%s_infer", prefix);
        put_figure(a, model, backend, batch, metric, base, cJSON_GetObjectItemCaseSensitive(e, "infer"));
    }
}

/* Per backend: how many checks ended PASSED, FAILED, SKIPPED, MISTRUSTED. */
static void measure_check(adder *a, const cJSON *root) {
    static const char *const statuses[] = {"PASSED", "FAILED", "SKIPPED", "MISTRUSTED"};
    static const char *const metrics[] = {"checks_passed", "checks_failed", "checks_skipped",
                                          "checks_mistrusted"};
    const cJSON *b;
    cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(root, "backends")) {
        const char *name = cnb_json_str(b, "name", "?");
        int count[4] = {0};
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(root, "checks")) {
            if (strcmp(cnb_json_str(c, "backend", ""), name) != 0) continue;
            for (int i = 0; i < 4; i++) count[i] += strcmp(cnb_json_str(c, "status", ""), statuses[i]) == 0;
        }
        for (int i = 0; i < 4; i++) put(a, "", name, 0, metrics[i], NULL, count[i], NAN);
    }
}

static void measure_compare(adder *a, const cJSON *root) {
    put(a, "", "", 0, "regressions", NULL, cnb_json_num(root, "regressions", NAN), NAN);
    put(a, "", "", 0, "failures", NULL, cnb_json_num(root, "failures", NAN), NAN);
}

/* A multi-backend training run: per-backend runs and a "comparison" array of {backend,
 * test_accuracy, train_images_per_s, infer_images_per_s, speedup_vs_naive, agreement}. */
static void measure_comparison(adder *a, const cJSON *root, const cJSON *cmp) {
    static const char *const figures[] = {"test_accuracy", "train_images_per_s",
                                          "infer_images_per_s", "speedup_vs_naive", "agreement"};
    const cJSON *e;
    cJSON_ArrayForEach(e, cmp) {
        const char *model = cnb_json_str(e, "model", model_name(root));
        const char *backend = cnb_json_str(e, "backend", "?");
        int batch = cnb_json_int(e, "batch", model_batch(root));
        for (size_t i = 0; i < sizeof figures / sizeof figures[0]; i++) {
            const cJSON *fig = cJSON_GetObjectItemCaseSensitive(e, figures[i]);
            const char *metric = strcmp(figures[i], "speedup_vs_naive") == 0 ? "speedup_vs_naive_train"
                                                                           : figures[i];
            if (cJSON_IsBool(fig)) put(a, model, backend, batch, metric, NULL, cJSON_IsTrue(fig), NAN);
            else put_figure(a, model, backend, batch, metric, "naive", fig);
        }
    }
}

static int measure(adder *a, const cJSON *root, const char *kind) {
    const cJSON *cmp = cJSON_GetObjectItemCaseSensitive(root, "comparison");
    if (cJSON_IsArray(cmp)) measure_comparison(a, root, cmp);
    else if (strcmp(kind, "train") == 0) measure_train(a, root);
    else if (strcmp(kind, "bench") == 0) measure_bench(a, root);
    else if (strcmp(kind, "check") == 0) measure_check(a, root);
    else if (strcmp(kind, "compare") == 0) measure_compare(a, root);
    return a->rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Adding a file                                                                               */

static void sha256_hex(const char *data, size_t len, char out[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < mdlen && i < 32; i++) sprintf(out + 2 * i, "%02x", md[i]);
    out[64] = '\0';
}

static long long find_run(sqlite3 *db, const char *sha) {
    sqlite3_stmt *s;
    long long id = 0;
    if (sqlite3_prepare_v2(db, "SELECT id FROM runs WHERE sha256 = ?", -1, &s, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(s, 1, sha, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW) id = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return id;
}

typedef struct run_row {
    const char *sha, *kind, *commit, *machine, *created, *source, *status, *json;
} run_row;

static int insert_run(sqlite3 *db, const run_row *r, long long *id) {
    sqlite3_stmt *s;
    const char *sql = "INSERT INTO runs(sha256, kind, git_commit, machine, created, source, added,"
                      " status, json) VALUES(?,?,?,?,?,?,strftime('%Y-%m-%dT%H:%M:%SZ','now'),?,?)";
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) return sqlite3_errcode(db);
    const char *v[] = {r->sha, r->kind, r->commit, r->machine, r->created, r->source, r->status,
                       r->json};
    for (int i = 0; i < 8; i++) sqlite3_bind_text(s, i + 1, v[i], -1, SQLITE_STATIC);
    int rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
    sqlite3_finalize(s);
    *id = sqlite3_last_insert_rowid(db);
    return rc;
}

/* The run and its measurements inside one transaction, rolled back on any error. */
static int store(sqlite3 *db, const run_row *r, const cJSON *root, long long *id) {
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) return sqlite3_errcode(db);
    adder a = {.db = db, .rc = insert_run(db, r, id)};
    a.run_id = *id;
    if (a.rc == SQLITE_OK)
        a.rc = sqlite3_prepare_v2(db, "INSERT INTO measurements VALUES(?,?,?,?,?,?,?,?)", -1,
                                  &a.stmt, NULL);
    if (a.rc == SQLITE_OK) measure(&a, root, r->kind);
    sqlite3_finalize(a.stmt);
    if (a.rc == SQLITE_OK && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) return SQLITE_OK;
    int rc = a.rc != SQLITE_OK ? a.rc : sqlite3_errcode(db);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int cnb_history_add_file(sqlite3 *db, const char *path, const char *commit, long long *run_id,
                         char *err, size_t err_len) {
    size_t len = 0;
    char *text = cnb_read_file(path, &len, err, err_len);
    if (!text) return -1;
    int rc = -1;
    cJSON *root = NULL;
    char sha[65], machine[256];
    sha256_hex(text, len, sha);
    long long id = find_run(db, sha);
    if (id != 0) {
        *run_id = id;
        rc = id > 0 ? 0 : cnb_errf(err, err_len, "%s: database error: %s", path, sqlite3_errmsg(db));
        goto done;
    }
    root = cJSON_ParseWithLength(text, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= text && at <= text + len ? (long)(at - text) : -1;
        cnb_errf(err, err_len, "%s: refused: not valid JSON (truncated or corrupt, near byte %ld "
                 "of %zu)", path, off, len);
        goto done;
    }
    const char *why = NULL, *kind = cnb_history_kind(root, &why);
    if (!kind) {
        cnb_errf(err, err_len, "%s: refused: %s", path, why);
        goto done;
    }
    machine_of(root, machine, sizeof machine);
    run_row r = {sha, kind, commit ? commit : cnb_json_str(root, "git_commit", "unknown"), machine,
                 cnb_json_str(root, "created", "unknown"), path,
                 cnb_json_str(root, "status", ""), text};
    int src = store(db, &r, root, run_id);
    if (src != SQLITE_OK)
        cnb_errf(err, err_len, "%s: not stored (database error: %s)", path, sqlite3_errstr(src));
    else
        rc = 1;
done:
    cJSON_Delete(root);
    free(text);
    return rc;
}
