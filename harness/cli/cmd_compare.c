/* cmd_compare.c — `cnnbench compare BASE NEW`: the regression gate. For bench results it compares
 * every cell's median and says whether the change exceeds the noise; it gates on the ratios
 * measured within one run (blas / naive speed-up), because absolute times on a shared machine
 * swing by tens of percent from run to run (DESIGN.md §5). For check results it fails on a lost
 * agreement: a check that PASSED in BASE and FAILED in NEW.
 *
 * The test. A change counts when the difference of the medians exceeds BOTH the threshold
 * (--threshold PCT, default 10%) AND k times the combined spread (--k, default 3; spread =
 * sqrt(MAD_base^2 + MAD_new^2)). For a within-run speed-up the median is over per-round ratios
 * of a time-balanced bench (every backend ran about equally long in each round, see
 * cmd_bench.c); that is the gated figure. The best-of-runs ratio (fastest run over fastest run)
 * is shown beside it but gated only for files from the older one-run-per-round schedule, where
 * it was steadier than the median: with time-balanced rounds a fast backend has many short runs,
 * its fastest one catches the machine's brief fast phases, and the best-of ratio moved 25%
 * between two quiet runs while the per-round median moved under 12%.
 * Newer bench files also carry each speed-up "uncontended" (upper quartiles of per-round speeds,
 * see cmd_bench.c), which holds still when the host's neighbours come and go: where both files
 * have it, it is the confirming figure instead of best-of, and a median beyond the threshold
 * (not twice it) counts when the uncontended ratio moved the same way beyond the threshold.
 * Every figure is bigger-is-better (images/s, speed-ups), so a drop is a regression. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "machine.h"
#include "options.h"
#include "runctx.h"
#include "util.h"

enum { EXIT_REGRESSION = 1, EXIT_USAGE = 2 };
enum { GATE_RATIOS = 1, GATE_ABSOLUTE = 2 };

typedef struct cmp_opts {
    const char *base, *new_path, *json_out;
    double threshold_pct, k;
    int gate;
    int quiet;
} cmp_opts;

typedef struct verdict {
    int regressions, improvements, unchanged, missing, failures;
    int disturbed; /* bench cells, in either file, timed while other work used the machine */
    cJSON *rows;
} verdict;

static void usage(FILE *f) {
    fprintf(f,
        "usage: cnnbench compare BASE.json NEW.json [options]\n"
        "\n"
        "Bench results: per cell, the change of the median and whether it exceeds the noise\n"
        "(|change| > threshold AND > k * sqrt(MAD_base^2 + MAD_new^2)). Gates on the speed-ups\n"
        "measured within one run (e.g. blas / naive), not on absolute images/s; a speed-up's\n"
        "median beyond the threshold but inside the noise still counts when its uncontended\n"
        "ratio (upper quartiles of per-round speeds) moved the same way beyond the threshold.\n"
        "Check results: fails when a check that PASSED in BASE FAILED in NEW.\n"
        "Exit status: 0 no regression, 1 regression or lost agreement, 2 usage or file error.\n"
        "\n"
        "  --threshold PCT   smallest change that counts, percent of the base median (default 10)\n"
        "  --k K             noise multiple (default 3)\n"
        "  --gate WHAT       ratios (default), absolute, or both\n"
        "  --json FILE       write the verdict as JSON\n"
        "  --quiet           print only changes and the verdict\n");
}

#define COMPARE_PROG "cnnbench compare"

enum { O_THRESHOLD = 256, O_K, O_GATE, O_JSON };

static const struct option compare_flags[] = {
    {"threshold", required_argument, 0, O_THRESHOLD}, {"k", required_argument, 0, O_K},
    {"gate", required_argument, 0, O_GATE}, {"json", required_argument, 0, O_JSON},
    {0, 0, 0, 0}};

static int on_compare_flag(void *user, int id, const char *arg) {
    cmp_opts *o = user;
    switch (id) {
    case O_THRESHOLD:
        return cnb_opt_double(COMPARE_PROG, "--threshold", arg, 0, 1000, &o->threshold_pct);
    case O_K: return cnb_opt_double(COMPARE_PROG, "--k", arg, 0, 100, &o->k);
    case O_GATE:
        if (strcmp(arg, "ratios") == 0) o->gate = GATE_RATIOS;
        else if (strcmp(arg, "absolute") == 0) o->gate = GATE_ABSOLUTE;
        else if (strcmp(arg, "both") == 0) o->gate = GATE_RATIOS | GATE_ABSOLUTE;
        else {
            fprintf(stderr, COMPARE_PROG ": --gate: '%s' is not ratios, absolute or both\n", arg);
            return -1;
        }
        return 0;
    case O_JSON: o->json_out = arg; return 0;
    }
    return -1;
}

static int parse_opts(int argc, char **argv, cmp_opts *o) {
    *o = (cmp_opts){.threshold_pct = 10.0, .k = 3.0, .gate = GATE_RATIOS};
    cnb_common_opts co;
    int first = 0;
    int rc = cnb_parse_options(COMPARE_PROG, argc, argv, CNB_OPT_QUIET, compare_flags,
                               on_compare_flag, o, usage, &co, &first);
    if (rc != 0) return rc;
    o->quiet = co.quiet;
    if (argc - first != 2) {
        fprintf(stderr, COMPARE_PROG ": needs two results files, BASE and NEW\n");
        usage(stderr);
        return -1;
    }
    o->base = argv[first];
    o->new_path = argv[first + 1];
    return 0;
}

/* One figure compared: returns -1 regression, +1 improvement, 0 within the noise. */
static int judge(const cmp_opts *o, double base, double base_mad, double now, double now_mad,
                 double *change_pct, double *noise) {
    double diff = now - base;
    *noise = sqrt(base_mad * base_mad + now_mad * now_mad);
    *change_pct = base != 0 ? 100.0 * diff / base : 0.0;
    int big = fabs(*change_pct) > o->threshold_pct && fabs(diff) > o->k * *noise;
    return big ? (diff < 0 ? -1 : 1) : 0;
}

static void add_row(verdict *v, const char *what, const char *key, const char *metric,
                    double base, double now, double change, double noise, int sign, int gated) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "kind", what);
    cJSON_AddStringToObject(r, "cell", key);
    cJSON_AddStringToObject(r, "metric", metric);
    cJSON_AddNumberToObject(r, "base_median", base);
    cJSON_AddNumberToObject(r, "new_median", now);
    cJSON_AddNumberToObject(r, "change_pct", change);
    cJSON_AddNumberToObject(r, "noise", noise);
    cJSON_AddStringToObject(r, "verdict",
                            sign < 0 ? "regression" : sign > 0 ? "improvement" : "within noise");
    cJSON_AddBoolToObject(r, "gated", gated);
    cJSON_AddItemToArray(v->rows, r);
}

/* A single-valued figure (best-of-runs or uncontended ratio): threshold only, there is no spread
 * to test against. `aside` says why an ungated row is shown. */
static void compare_single(const cmp_opts *o, verdict *v, const char *kind, const char *key,
                           const char *metric, double bm, double nm, int gated, const char *aside) {
    double change = bm != 0 ? 100.0 * (nm - bm) / bm : 0.0;
    int s = fabs(change) > o->threshold_pct ? (change < 0 ? -1 : 1) : 0;
    const char *word = s < 0 ? (gated ? "REGRESSION" : "slower") : s > 0 ? "faster" : "ok";
    if (!o->quiet || s != 0)
        printf("  %-10s %-44s %-11s %10.3f -> %10.3f  %+7.1f%%%s%s\n", word, key, metric, bm, nm,
               change, gated ? "" : "  ", gated ? "" : aside);
    if (gated) {
        if (s < 0) v->regressions++;
        else if (s > 0) v->improvements++;
        else v->unchanged++;
    }
    add_row(v, kind, key, metric, bm, nm, change, 0.0, s, gated);
}

/* confirm_pct: the change of a confirming figure (NAN: none). A median that moved by more than
 * confirm_factor x the threshold but not beyond k x noise still counts when the confirming figure
 * moved the same way beyond the threshold: two estimators agreeing on a large change. (On a
 * loaded machine the per-round spread gets so wide that a 2x slowdown can hide inside k x noise.)
 * The uncontended ratio confirms at factor 1; the best-of ratio, which moved 25% between two
 * quiet runs here, only at factor 2. */
static void compare_figure(const cmp_opts *o, verdict *v, const char *what, const char *key,
                           const char *metric, const cJSON *b, const cJSON *n, int gated,
                           double confirm_pct, double confirm_factor) {
    double bm = cnb_json_num(b, "median", NAN), nm = cnb_json_num(n, "median", NAN);
    if (isnan(bm) || isnan(nm)) return;
    double change, noise;
    int s = judge(o, bm, cnb_json_num(b, "mad", 0), nm, cnb_json_num(n, "mad", 0), &change, &noise);
    if (s == 0 && !isnan(confirm_pct) && fabs(change) > confirm_factor * o->threshold_pct &&
        fabs(confirm_pct) > o->threshold_pct && (change < 0) == (confirm_pct < 0))
        s = change < 0 ? -1 : 1;
    const char *word = s < 0 ? (gated ? "REGRESSION" : "slower") : s > 0 ? "faster" : "ok";
    if (!o->quiet || s != 0)
        printf("  %-10s %-44s %-11s %10.3f -> %10.3f  %+7.1f%%  (noise ±%.3g)%s\n", word, key,
               metric, bm, nm, change, noise, gated ? "" : "  [not gated]");
    if (gated) {
        if (s < 0) v->regressions++;
        else if (s > 0) v->improvements++;
        else v->unchanged++;
    }
    add_row(v, what, key, metric, bm, nm, change, noise, s, gated);
}

/* The absolute images/s of a bench cell or a training run: train and infer, each judged alone. */
static void compare_throughput(const cmp_opts *o, verdict *v, const char *key, const cJSON *b,
                               const cJSON *n, int gated) {
    compare_figure(o, v, "absolute", key, "train",
                   cJSON_GetObjectItemCaseSensitive(b, "train_images_per_s"),
                   cJSON_GetObjectItemCaseSensitive(n, "train_images_per_s"), gated, NAN, 0);
    compare_figure(o, v, "absolute", key, "infer",
                   cJSON_GetObjectItemCaseSensitive(b, "infer_images_per_s"),
                   cJSON_GetObjectItemCaseSensitive(n, "infer_images_per_s"), gated, NAN, 0);
}

static const cJSON *find_by_key(const cJSON *arr, const char *key,
                                void (*key_of)(const cJSON *, char *, size_t)) {
    const cJSON *e;
    char k[512];
    cJSON_ArrayForEach(e, arr) {
        key_of(e, k, sizeof k);
        if (strcmp(k, key) == 0) return e;
    }
    return NULL;
}

static void cell_key(const cJSON *c, char *buf, size_t len) {
    snprintf(buf, len, "%s/%s/batch%d", cnb_json_str(c, "model", "?"),
             cnb_json_str(c, "backend", "?"), cnb_json_int(c, "batch", 0));
}

static void ratio_key(const cJSON *c, char *buf, size_t len) {
    const char *kind = cnb_json_str(c, "kind", "?");
    const char *base = cnb_json_str(c, "baseline", "?");
    snprintf(buf, len, "%s/batch%d %s/%s%s", cnb_json_str(c, "model", "?"),
             cnb_json_int(c, "batch", 0), cnb_json_str(c, "backend", "?"),
             strcmp(kind, "vs_best_cpu") == 0 ? "best-cpu:" : "", base);
}

/* Says how busy the machine was while one file's cells were timed (their "machine_load", written
 * by bench); counts the disturbed cells. Figures from a busy machine are still compared, but the
 * reader is told which ones to distrust. */
static void report_load(const char *which, const cJSON *cells, verdict *v) {
    const cJSON *c;
    double most = -1;
    int busy = 0;
    cJSON_ArrayForEach(c, cells) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(c, "machine_load");
        if (!l) continue;
        double other = cnb_json_num(l, "other_cores", 0), steal = cnb_json_num(l, "steal_cores", 0);
        if (other > most) most = other;
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(l, "disturbed"))) {
            char key[512];
            cell_key(c, key, sizeof key);
            printf("  %-4s BUSY  %-44s other work %.2f cores, steal %.2f cores: its figures are "
                   "suspect\n", which, key, other, steal);
            busy++;
        }
    }
    if (most < 0)
        printf("  %-4s not recorded (bench results from before machine_load)\n", which);
    else if (!busy)
        printf("  %-4s quiet: at most %.2f cores of other work while timing\n", which, most);
    v->disturbed += busy;
}

/* Whether a bench file comes from the time-balanced schedule (per-round median ratios). */
static int time_balanced(const cJSON *root) {
    const cJSON *set = cJSON_GetObjectItemCaseSensitive(root, "settings");
    return strncmp(cnb_json_str(set, "schedule", ""), "time-balanced", 13) == 0;
}

static int compare_bench(const cmp_opts *o, const cJSON *base, const cJSON *now, verdict *v) {
    const cJSON *br = cJSON_GetObjectItemCaseSensitive(base, "ratios");
    const cJSON *nr = cJSON_GetObjectItemCaseSensitive(now, "ratios");
    const cJSON *bc = cJSON_GetObjectItemCaseSensitive(base, "cells");
    const cJSON *nc = cJSON_GetObjectItemCaseSensitive(now, "cells");
    int gate_r = o->gate & GATE_RATIOS, gate_a = o->gate & GATE_ABSOLUTE;
    int balanced = time_balanced(base) && time_balanced(now);
    if (balanced)
        printf("bench results: a median counts when |new - base| exceeds %.3g%% of the base AND "
               "%.3g x sqrt(MAD_base^2 + MAD_new^2); within-run speed-ups are medians of "
               "per-round ratios (time-balanced rounds); a median beyond the threshold but inside "
               "the noise still counts when the uncontended ratio (upper quartiles of per-round "
               "speeds) moved the same way beyond the threshold (files without it: a median "
               "beyond twice the threshold, confirmed by the best-of-runs ratio)\n",
               o->threshold_pct, o->k);
    else
        printf("bench results: a within-run speed-up regresses when its best-of-runs ratio "
               "(fastest run over fastest run) drops by more than %.3g%% (a file predates "
               "time-balanced rounds); a median counts when |new - base| exceeds %.3g%% of the "
               "base AND %.3g x sqrt(MAD_base^2 + MAD_new^2)\n",
               o->threshold_pct, o->threshold_pct, o->k);
    printf("gated on: %s%s%s\n", gate_r ? "speed-ups measured within one run (preferred: they "
                                          "cancel the machine's run-to-run swings)" : "",
           gate_r && gate_a ? " and " : "", gate_a ? "absolute images/s" : "");
    printf("machine load while timing:\n");
    report_load("BASE", bc, v);
    report_load("NEW", nc, v);
    printf("within-run speed-ups:\n");
    const cJSON *e;
    int n_ratio = 0;
    cJSON_ArrayForEach(e, br) {
        /* vs_best_cpu moves whenever the best CPU backend changes; the naive and GPU ratios
         * are the stable ones to gate on */
        const char *kind = cnb_json_str(e, "kind", "");
        int gated = gate_r && strcmp(kind, "vs_best_cpu") != 0;
        char key[512];
        ratio_key(e, key, sizeof key);
        const cJSON *m = find_by_key(nr, key, ratio_key);
        if (!m) {
            printf("  MISSING    %-44s (in BASE, not in NEW)\n", key);
            v->missing++;
            continue;
        }
        n_ratio++;
        const cJSON *bb = cJSON_GetObjectItemCaseSensitive(e, "best");
        const cJSON *nb = cJSON_GetObjectItemCaseSensitive(m, "best");
        const cJSON *bu = cJSON_GetObjectItemCaseSensitive(e, "uncontended");
        const cJSON *nu = cJSON_GetObjectItemCaseSensitive(m, "uncontended");
        int gate_best = bb && nb && !balanced;
        /* the confirming figure: uncontended where both files have it, else best-of */
        const cJSON *cb = NULL, *cn = NULL;
        double confirm_factor = 2.0;
        if (balanced && bu && nu) {
            cb = bu;
            cn = nu;
            confirm_factor = 1.0;
        } else if (balanced && bb && nb) {
            cb = bb;
            cn = nb;
        }
        double confirm_train = NAN, confirm_infer = NAN;
        if (cb) {
            double b_tr = cnb_json_num(cb, "train", 0), b_in = cnb_json_num(cb, "infer", 0);
            if (b_tr > 0) confirm_train = 100.0 * (cnb_json_num(cn, "train", 0) - b_tr) / b_tr;
            if (b_in > 0) confirm_infer = 100.0 * (cnb_json_num(cn, "infer", 0) - b_in) / b_in;
        }
        if (bb && nb) {
            compare_single(o, v, "ratio-best", key, "train best", cnb_json_num(bb, "train", 0),
                           cnb_json_num(nb, "train", 0), gated && gate_best, "[not gated]");
            compare_single(o, v, "ratio-best", key, "infer best", cnb_json_num(bb, "infer", 0),
                           cnb_json_num(nb, "infer", 0), gated && gate_best, "[not gated]");
        }
        if (bu && nu) {
            const char *aside = cb == bu && gated ? "[confirms the median]" : "[not gated]";
            compare_single(o, v, "ratio-uncontended", key, "train unc.",
                           cnb_json_num(bu, "train", 0), cnb_json_num(nu, "train", 0), 0, aside);
            compare_single(o, v, "ratio-uncontended", key, "infer unc.",
                           cnb_json_num(bu, "infer", 0), cnb_json_num(nu, "infer", 0), 0, aside);
        }
        compare_figure(o, v, "ratio", key, "train", cJSON_GetObjectItemCaseSensitive(e, "train"),
                       cJSON_GetObjectItemCaseSensitive(m, "train"), gated && !gate_best,
                       confirm_train, confirm_factor);
        compare_figure(o, v, "ratio", key, "infer", cJSON_GetObjectItemCaseSensitive(e, "infer"),
                       cJSON_GetObjectItemCaseSensitive(m, "infer"), gated && !gate_best,
                       confirm_infer, confirm_factor);
    }
    if (n_ratio == 0) printf("  (none in common: the files share no backend pair)\n");
    printf("absolute images/s%s:\n", gate_a ? "" : " (for information; not gated)");
    cJSON_ArrayForEach(e, bc) {
        char key[512];
        cell_key(e, key, sizeof key);
        const cJSON *m = find_by_key(nc, key, cell_key);
        const char *bs = cnb_json_str(e, "status", "?");
        if (!m) {
            if (strcmp(bs, "ok") == 0) { /* a cell skipped in BASE is no loss */
                printf("  MISSING    %-44s (in BASE, not in NEW)\n", key);
                v->missing++;
            }
            continue;
        }
        const char *ns = cnb_json_str(m, "status", "?");
        if (strcmp(bs, "ok") == 0 && strcmp(ns, "failed") == 0) {
            printf("  FAILED     %-44s ran in BASE, failed in NEW: %s\n", key,
                   cnb_json_str(m, "reason", ""));
            v->failures++;
            continue;
        }
        if (strcmp(bs, "ok") != 0 || strcmp(ns, "ok") != 0) {
            if (!o->quiet) printf("  %-10s %-44s base %s, new %s\n", "n/a", key, bs, ns);
            continue;
        }
        compare_throughput(o, v, key, e, m, gate_a);
    }
    return 0;
}

static void check_key(const cJSON *c, char *buf, size_t len) {
    snprintf(buf, len, "%s %s %s %s", cnb_json_str(c, "backend", "?"),
             cnb_json_str(c, "family", "?"), cnb_json_str(c, "label", "?"),
             cnb_json_str(c, "mode", "?"));
}

static int compare_checks(const cmp_opts *o, const cJSON *base, const cJSON *now, verdict *v) {
    const cJSON *bc = cJSON_GetObjectItemCaseSensitive(base, "checks");
    const cJSON *nc = cJSON_GetObjectItemCaseSensitive(now, "checks");
    printf("check results: a lost agreement is a check that PASSED in BASE and FAILED in NEW\n");
    const cJSON *e;
    int fixed = 0, same = 0;
    cJSON_ArrayForEach(e, nc) {
        char key[512];
        check_key(e, key, sizeof key);
        const char *ns = cnb_json_str(e, "status", "?");
        const cJSON *b = find_by_key(bc, key, check_key);
        const char *bs = b ? cnb_json_str(b, "status", "?") : "absent";
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "kind", "check");
        cJSON_AddStringToObject(r, "cell", key);
        cJSON_AddStringToObject(r, "base_status", bs);
        cJSON_AddStringToObject(r, "new_status", ns);
        if (strcmp(ns, "FAILED") == 0 && strcmp(bs, "FAILED") != 0) {
            int lost = strcmp(bs, "PASSED") == 0;
            printf("  %-14s %s (base %s)%s%s\n", lost ? "LOST AGREEMENT" : "NEW FAILURE", key, bs,
                   cnb_json_str(e, "reproduce", "")[0] ? "\n                 reproduce: " : "",
                   cnb_json_str(e, "reproduce", ""));
            if (lost) v->regressions++;
            else v->failures++;
            cJSON_AddStringToObject(r, "verdict", lost ? "lost agreement" : "new failure");
        } else if (strcmp(ns, "FAILED") == 0) {
            printf("  %-14s %s (failed in BASE too)\n", "STILL FAILING", key);
            v->failures++;
            cJSON_AddStringToObject(r, "verdict", "still failing");
        } else if (strcmp(bs, "FAILED") == 0) {
            if (!o->quiet) printf("  %-14s %s (now %s)\n", "FIXED", key, ns);
            fixed++;
            cJSON_AddStringToObject(r, "verdict", "fixed");
        } else {
            same++;
            cJSON_AddStringToObject(r, "verdict", "unchanged");
        }
        cJSON_AddItemToArray(v->rows, r);
    }
    cJSON_ArrayForEach(e, bc) {
        char key[512];
        check_key(e, key, sizeof key);
        if (!find_by_key(nc, key, check_key) && strcmp(cnb_json_str(e, "status", ""), "PASSED") == 0) {
            if (!o->quiet) printf("  %-14s %s (PASSED in BASE, not run in NEW)\n", "MISSING", key);
            v->missing++;
        }
    }
    printf("  %d unchanged, %d fixed\n", same, fixed);
    v->unchanged += same;
    v->improvements += fixed;
    return 0;
}

/* A training results file has no kind; it carries per-epoch throughput and accuracy. */
static int compare_training(const cmp_opts *o, const cJSON *base, const cJSON *now, verdict *v) {
    printf("training results: only absolute images/s exist here (no within-run ratio), so they "
           "are gated only with --gate absolute or both\n");
    const cJSON *bt = cJSON_GetObjectItemCaseSensitive(base, "throughput");
    const cJSON *nt = cJSON_GetObjectItemCaseSensitive(now, "throughput");
    char key[256];
    const cJSON *bm = cJSON_GetObjectItemCaseSensitive(base, "model");
    const cJSON *bb = cJSON_GetObjectItemCaseSensitive(base, "backend");
    snprintf(key, sizeof key, "%s/%s", cnb_json_str(bm, "name", "?"), cnb_json_str(bb, "name", "?"));
    int gate_a = (o->gate & GATE_ABSOLUTE) != 0;
    compare_throughput(o, v, key, bt, nt, gate_a);
    const cJSON *bf = cJSON_GetObjectItemCaseSensitive(base, "final");
    const cJSON *nf = cJSON_GetObjectItemCaseSensitive(now, "final");
    double ba = cnb_json_num(bf, "test_accuracy", NAN), na = cnb_json_num(nf, "test_accuracy", NAN);
    if (!isnan(ba) && !isnan(na))
        printf("  %-10s %-44s test accuracy %.2f%% -> %.2f%% (%+.2f pp)\n", "info", key, 100 * ba,
               100 * na, 100 * (na - ba));
    return 0;
}

int cnb_cmd_compare(int argc, char **argv) {
    cmp_opts o;
    int prc = parse_opts(argc, argv, &o);
    if (prc != 0) return prc > 0 ? 0 : EXIT_USAGE;
    char err[CNB_ERR_LEN];
    cJSON *base = cnb_read_json(o.base, err, sizeof err);
    if (!base) {
        fprintf(stderr, "cnnbench compare: BASE: %s\n", err);
        return EXIT_USAGE;
    }
    cJSON *now = cnb_read_json(o.new_path, err, sizeof err);
    if (!now) {
        fprintf(stderr, "cnnbench compare: NEW: %s\n", err);
        cJSON_Delete(base);
        return EXIT_USAGE;
    }
    int rc = EXIT_USAGE;
    const char *bk = cnb_results_kind(base), *nk = cnb_results_kind(now);
    verdict v = {.rows = cJSON_CreateArray()};
    double bsv = cnb_json_num(base, "schema_version", -1), nsv = cnb_json_num(now, "schema_version", -1);
    if (strcmp(bk, nk) != 0) {
        fprintf(stderr, "cnnbench compare: %s is a %s results file but %s is a %s one\n", o.base,
                bk, o.new_path, nk);
        goto done;
    }
    if (bsv != nsv)
        printf("note: schema versions differ (base %g, new %g); comparing the fields both have\n",
               bsv, nsv);
    printf("cnnbench compare: base %s (%s), new %s (%s)\n", o.base,
           cnb_json_str(base, "created", "?"), o.new_path, cnb_json_str(now, "created", "?"));
    const cJSON *bm = cJSON_GetObjectItemCaseSensitive(base, "machine");
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(now, "machine");
    if (strcmp(cnb_json_str(bm, "cpu_model", ""), cnb_json_str(nm, "cpu_model", "")) != 0)
        printf("note: different CPUs (%s vs %s): absolute figures are not comparable\n",
               cnb_json_str(bm, "cpu_model", "?"), cnb_json_str(nm, "cpu_model", "?"));
    if (strcmp(bk, "bench") == 0) compare_bench(&o, base, now, &v);
    else if (strcmp(bk, "check") == 0) compare_checks(&o, base, now, &v);
    else if (strcmp(bk, "train") == 0) compare_training(&o, base, now, &v);
    else {
        fprintf(stderr, "cnnbench compare: %s: not a bench, check or training results file\n",
                o.base);
        goto done;
    }
    int bad = v.regressions + v.failures;
    if (bad)
        printf("verdict: REGRESSION: %d regression(s)%s, %d failure(s)%s\n", v.regressions,
               strcmp(bk, "check") == 0 ? " (lost agreements)" : " beyond the noise",
               v.failures, v.missing ? "; some cells are missing in NEW" : "");
    else
        printf("verdict: no regression (%d within the noise, %d better%s)\n", v.unchanged,
               v.improvements, v.missing ? "; some cells are missing in NEW" : "");
    rc = bad ? EXIT_REGRESSION : 0;
    if (o.json_out) {
        cnb_machine mc;
        cnb_machine_probe(&mc);
        cJSON *out = cnb_context_json("compare", argc, argv, 0, 0, &mc);
        cJSON_AddStringToObject(out, "base", o.base);
        cJSON_AddStringToObject(out, "new", o.new_path);
        cJSON_AddNumberToObject(out, "threshold_pct", o.threshold_pct);
        cJSON_AddNumberToObject(out, "k", o.k);
        cJSON_AddNumberToObject(out, "regressions", v.regressions);
        cJSON_AddNumberToObject(out, "failures", v.failures);
        cJSON_AddNumberToObject(out, "disturbed_cells", v.disturbed);
        cJSON_AddItemToObject(out, "rows", v.rows);
        v.rows = NULL;
        if (cnb_write_json(o.json_out, out, err, sizeof err) != 0) {
            fprintf(stderr, "cnnbench compare: %s\n", err);
            if (rc == 0) rc = EXIT_USAGE;
        }
        cJSON_Delete(out);
    }
done:
    cJSON_Delete(v.rows);
    cJSON_Delete(base);
    cJSON_Delete(now);
    return rc;
}
