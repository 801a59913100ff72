/* cmd_history.c — `cnnbench history add|list|show`: the results history (history.h) from the
 * command line. `add` takes every file in its own transaction, so one refused file (truncated,
 * corrupt, foreign) costs nothing already stored; it is named on stderr and the exit status is
 * 1. The database defaults to cnnbench-history.sqlite beside the first file added (for add),
 * or in the current directory (list, show). */
#define _GNU_SOURCE
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "history.h"
#include "options.h"
#include "util.h"

enum { EXIT_FAIL = 1, EXIT_USAGE = 2 };

typedef struct hist_opts {
    const char *db, *commit, *model, *backend, *metric, *kind;
    long long run;
    int quiet;
} hist_opts;

static void usage(FILE *f) {
    fprintf(f,
        "usage: cnnbench history add [--db PATH] [--commit ID] [--quiet] FILE...\n"
        "       cnnbench history list [--db PATH] [--kind KIND]\n"
        "       cnnbench history show [--db PATH] [--model M] [--backend B] [--metric X]\n"
        "       cnnbench history show [--db PATH] --run ID\n"
        "\n"
        "Keeps every results file (training, bench, check, compare) in an SQLite database, keyed\n"
        "by commit, machine, backend, model, batch and time, the whole JSON included. Adding the\n"
        "same file twice does nothing; a truncated, corrupt or foreign file is refused by name\n"
        "(exit 1) and nothing stored before is lost.\n"
        "\n"
        "  --db PATH      the database (default: %s beside the first FILE for add,\n"
        "                 in the current directory otherwise)\n"
        "  --commit ID    record this commit instead of the file's git_commit (older files lack it)\n"
        "  --kind KIND    list only runs of this kind (train, bench, check, compare, ...)\n"
        "  --model M, --backend B, --metric X   which series show prints\n"
        "  --run ID       print the stored JSON of one run\n",
        CNB_HISTORY_DEFAULT_NAME);
}

enum { O_DB = 256, O_COMMIT, O_METRIC, O_KIND, O_RUN };

static const struct option history_flags[] = {
    {"db", required_argument, 0, O_DB}, {"commit", required_argument, 0, O_COMMIT},
    {"metric", required_argument, 0, O_METRIC}, {"kind", required_argument, 0, O_KIND},
    {"run", required_argument, 0, O_RUN}, {0, 0, 0, 0}};

static int on_history_flag(void *user, int id, const char *arg) {
    hist_opts *o = user;
    long v;
    switch (id) {
    case O_DB: o->db = arg; return 0;
    case O_COMMIT: o->commit = arg; return 0;
    case O_METRIC: o->metric = arg; return 0;
    case O_KIND: o->kind = arg; return 0;
    case O_RUN:
        if (cnb_opt_long("cnnbench history", "--run", arg, 1, LONG_MAX, &v) != 0) return -1;
        o->run = v;
        return 0;
    }
    return -1;
}

/* argv[0] is the sub-verb; *first is where the files begin. */
static int parse_opts(int argc, char **argv, hist_opts *o, int *first) {
    *o = (hist_opts){.run = 0};
    cnb_common_opts co;
    int rc = cnb_parse_options("cnnbench history", argc, argv,
                               CNB_OPT_MODELS | CNB_OPT_BACKENDS | CNB_OPT_QUIET, history_flags,
                               on_history_flag, o, usage, &co, first);
    if (rc != 0) return rc;
    if (cnb_opt_single("cnnbench history", "--model", co.n_models) != 0 ||
        cnb_opt_single("cnnbench history", "--backend", co.n_backends) != 0)
        return -1;
    o->model = co.model_arg;
    o->backend = co.backend_arg;
    o->quiet = co.quiet;
    return 0;
}

static sqlite3 *open_db(const hist_opts *o, const char *beside) {
    char path[PATH_MAX], err[CNB_ERR_LEN];
    if (o->db) snprintf(path, sizeof path, "%s", o->db);
    else if (beside) {
        char *copy = strdup(beside);
        snprintf(path, sizeof path, "%s/%s", copy ? dirname(copy) : ".", CNB_HISTORY_DEFAULT_NAME);
        free(copy);
    } else snprintf(path, sizeof path, "%s", CNB_HISTORY_DEFAULT_NAME);
    if (!beside && access(path, F_OK) != 0) { /* list and show never create one */
        fprintf(stderr, "cnnbench history: %s: no such database (fill one with `cnnbench history "
                "add`)\n", path);
        return NULL;
    }
    sqlite3 *db = cnb_history_open(path, err, sizeof err);
    if (!db) fprintf(stderr, "cnnbench history: %s\n", err);
    else if (!o->quiet && !o->db) fprintf(stderr, "cnnbench history: database %s\n", path);
    return db;
}

static int cmd_add(const hist_opts *o, int nfiles, char **files) {
    if (nfiles == 0) {
        fprintf(stderr, "cnnbench history add: no results files named\n");
        return EXIT_USAGE;
    }
    sqlite3 *db = open_db(o, files[0]);
    if (!db) return EXIT_FAIL;
    int added = 0, known = 0, refused = 0;
    for (int i = 0; i < nfiles; i++) {
        char err[CNB_ERR_LEN];
        long long id = 0;
        int rc = cnb_history_add_file(db, files[i], o->commit, &id, err, sizeof err);
        if (rc < 0) {
            fprintf(stderr, "cnnbench history add: %s\n", err);
            refused++;
        } else if (!o->quiet) {
            printf("%-8s run %-5lld %s\n", rc ? "added" : "known", id, files[i]);
        }
        added += rc == 1;
        known += rc == 0;
    }
    printf("history: %d added, %d already stored, %d refused\n", added, known, refused);
    sqlite3_close(db);
    return refused ? EXIT_FAIL : 0;
}

/* Prints every row of a prepared statement as a table of text columns of the given widths. */
static int print_rows(sqlite3_stmt *s, const int *widths) {
    int n = sqlite3_column_count(s), rows = 0;
    for (int c = 0; c < n; c++) printf("%-*s ", widths[c], sqlite3_column_name(s, c));
    printf("\n");
    while (sqlite3_step(s) == SQLITE_ROW) {
        for (int c = 0; c < n; c++) {
            const unsigned char *t = sqlite3_column_text(s, c);
            printf("%-*s ", widths[c], t ? (const char *)t : "");
        }
        printf("\n");
        rows++;
    }
    return rows;
}

static int cmd_list(const hist_opts *o) {
    sqlite3 *db = open_db(o, NULL);
    if (!db) return EXIT_FAIL;
    sqlite3_stmt *s;
    const char *sql =
        "SELECT r.id AS run, r.created, r.kind, r.git_commit AS 'commit', r.machine,"
        " (SELECT group_concat(DISTINCT model) FROM measurements m WHERE m.run_id = r.id"
        "   AND model <> '') AS models,"
        " (SELECT group_concat(DISTINCT backend) FROM measurements m WHERE m.run_id = r.id"
        "   AND backend <> '') AS backends, r.source"
        " FROM runs r WHERE ?1 IS NULL OR r.kind = ?1 ORDER BY r.created, r.id";
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, o->kind, -1, SQLITE_STATIC);
        static const int widths[] = {4, 20, 7, 16, 20, 16, 20, 0};
        printf("%d runs\n", print_rows(s, widths));
        sqlite3_finalize(s);
    } else fprintf(stderr, "cnnbench history list: %s\n", sqlite3_errmsg(db));
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : EXIT_FAIL;
}

static int show_run(sqlite3 *db, long long run) {
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "SELECT json FROM runs WHERE id = ?", -1, &s, NULL) != SQLITE_OK)
        return EXIT_FAIL;
    sqlite3_bind_int64(s, 1, run);
    int found = sqlite3_step(s) == SQLITE_ROW;
    if (found) fputs((const char *)sqlite3_column_text(s, 0), stdout);
    else fprintf(stderr, "cnnbench history show: no run %lld in the database\n", run);
    sqlite3_finalize(s);
    return found ? 0 : EXIT_FAIL;
}

/* Every series (model, backend, batch, metric) matching the filters, its points in time order. */
static int show_series(sqlite3 *db, const hist_opts *o) {
    sqlite3_stmt *s;
    const char *sql =
        "SELECT m.model, m.backend, m.batch, m.metric, m.baseline, r.created, r.git_commit AS"
        " 'commit', r.machine, printf('%.6g', m.value) AS value, printf('%.3g', m.mad) AS mad,"
        " r.id AS run FROM measurements m JOIN runs r ON r.id = m.run_id"
        " WHERE (?1 IS NULL OR m.model = ?1) AND (?2 IS NULL OR m.backend = ?2)"
        "   AND (?3 IS NULL OR m.metric = ?3)"
        " ORDER BY m.model, m.metric, m.backend, m.batch, m.baseline, r.created, r.id";
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        fprintf(stderr, "cnnbench history show: %s\n", sqlite3_errmsg(db));
        return EXIT_FAIL;
    }
    sqlite3_bind_text(s, 1, o->model, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, o->backend, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, o->metric, -1, SQLITE_STATIC);
    static const int widths[] = {10, 8, 5, 24, 8, 20, 16, 18, 10, 8, 0};
    printf("%d points\n", print_rows(s, widths));
    sqlite3_finalize(s);
    return 0;
}

static int cmd_show(const hist_opts *o) {
    sqlite3 *db = open_db(o, NULL);
    if (!db) return EXIT_FAIL;
    int rc = o->run ? show_run(db, o->run) : show_series(db, o);
    sqlite3_close(db);
    return rc;
}

int cnb_cmd_history(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    const char *sub = argv[1];
    hist_opts o;
    int first = 0;
    int prc = parse_opts(argc - 1, argv + 1, &o, &first);
    if (prc != 0) return prc > 0 ? 0 : EXIT_USAGE;
    int nrest = argc - 1 - first;
    char **rest = argv + 1 + first;
    if (strcmp(sub, "add") == 0) return cmd_add(&o, nrest, rest);
    if (nrest > 0) {
        fprintf(stderr, "cnnbench history %s: unexpected argument '%s'\n", sub, rest[0]);
        return EXIT_USAGE;
    }
    if (strcmp(sub, "list") == 0) return cmd_list(&o);
    if (strcmp(sub, "show") == 0) return cmd_show(&o);
    fprintf(stderr, "cnnbench history: unknown sub-command '%s' (valid: add, list, show)\n", sub);
    usage(stderr);
    return EXIT_USAGE;
}
