/* cmd_report.c — `cnnbench report RESULTS.json... [--out DIR]`: PNG charts drawn by gnuplot
 * (pngcairo; data in temporary files, script through a pipe) and a Markdown page embedding them.
 * Training results give loss and accuracy per epoch, the per-step loss and the confusion matrix;
 * bench results give images/s per backend and model and the per-kernel breakdown; check results
 * give a status table. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "commands.h"
#include "options.h"
#include "profiler.h"
#include "runctx.h"
#include "util.h"

enum { EXIT_USAGE = 2 };

typedef struct rp {
    const char *out;
    FILE *md;
    int charts, failures;
    char tmpdir[64];
    int tmp_seq;
} rp;

static void usage(FILE *f) {
    fprintf(f,
        "usage: cnnbench report RESULTS.json [MORE.json ...] [--out DIR]\n"
        "\n"
        "Draws PNG charts with gnuplot and writes DIR/report.md embedding them (default DIR:\n"
        "cnnbench-report). Training results: loss and accuracy per epoch, loss per step, the\n"
        "confusion matrix. Bench results: images/s per backend and model, per-kernel breakdown.\n"
        "Check results: a status table. Comparison results (--backend all): the table,\n"
        "images/s per backend and every backend's loss curve on one chart.\n");
}

/* A temporary data file for gnuplot; its path goes into path. */
static FILE *data_file(rp *r, char *path, size_t len) {
    snprintf(path, len, "%s/data%d.dat", r->tmpdir, r->tmp_seq++);
    return fopen(path, "w");
}

/* Run one gnuplot script; 0 when gnuplot exited 0. */
static int gnuplot(rp *r, const char *script, const char *png) {
    FILE *g = popen("gnuplot 2>&1", "w");
    if (!g) {
        fprintf(stderr, "cnnbench report: cannot start gnuplot: %s\n", strerror(errno));
        r->failures++;
        return -1;
    }
    fputs(script, g);
    int st = pclose(g);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "cnnbench report: gnuplot failed on %s (exit %d)%s\n", png,
                WIFEXITED(st) ? WEXITSTATUS(st) : -1,
                WIFEXITED(st) && WEXITSTATUS(st) == 127
                    ? ": gnuplot is not installed (apt-get install gnuplot-nox)" : "");
        r->failures++;
        return -1;
    }
    r->charts++;
    return 0;
}

static void png_path(const rp *r, const char *stem, const char *name, char *path, size_t len) {
    snprintf(path, len, "%s/%s-%s.png", r->out, stem, name);
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* gnuplot strings are single-quoted; a quote inside is doubled. */
static void gp_quote(char *dst, size_t len, const char *src) {
    size_t j = 0;
    for (size_t i = 0; src[i] && j + 3 < len; i++) {
        if (src[i] == '\'') dst[j++] = '\'';
        dst[j++] = src[i];
    }
    dst[j] = '\0';
}

#define HEADER "set terminal pngcairo size 900,540 enhanced font 'DejaVu Sans,11'\n" \
               "set grid ytics lc rgb '#dddddd'\nset key outside right top\n"

/* Draw one chart: the terminal line(s), its output file, then the rest of the script; on
 * success the page embeds it. */
static void chart(rp *r, const char *stem, const char *name, const char *alt, const char *term,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void chart(rp *r, const char *stem, const char *name, const char *alt, const char *term,
                  const char *fmt, ...) {
    char png[1024], script[8192];
    png_path(r, stem, name, png, sizeof png);
    int at = snprintf(script, sizeof script, "%sset output '%s'\n", term, png);
    if (at > 0 && (size_t)at < sizeof script) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(script + at, sizeof script - (size_t)at, fmt, ap);
        va_end(ap);
    }
    if (gnuplot(r, script, png) == 0) fprintf(r->md, "![%s](%s)\n\n", alt, base_name(png));
}

/* One "step loss" per line, numbered from 1, into a new data file; -1 when it cannot be made. */
static int step_loss_file(rp *r, const cJSON *steps, char *dat, size_t len) {
    FILE *f = data_file(r, dat, len);
    if (!f) return -1;
    int i = 1;
    const cJSON *e;
    cJSON_ArrayForEach(e, steps) fprintf(f, "%d %.8g\n", i++, e->valuedouble);
    fclose(f);
    return 0;
}

static void context_md(rp *r, const cJSON *root, const char *path) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "machine");
    fprintf(r->md, "Source: `%s`, created %s, %s.  \n", path, cnb_json_str(root, "created", "?"),
            cnb_json_str(root, "tool", "cnnbench"));
    fprintf(r->md, "Machine: %s, %d cores / %d threads; build %s.\n\n",
            cnb_json_str(m, "cpu_model", "?"), cnb_json_int(m, "cores", 0),
            cnb_json_int(m, "pus", 0), cnb_json_str(root, "build_type", "?"));
}

/* ---- training results ---- */

static void report_training(rp *r, const cJSON *root, const char *path, const char *stem) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *backend = cJSON_GetObjectItemCaseSensitive(root, "backend");
    const cJSON *epochs = cJSON_GetObjectItemCaseSensitive(root, "epochs");
    const char *mname = cnb_json_str(model, "name", "?"), *bname = cnb_json_str(backend, "name", "?");
    fprintf(r->md, "## Training: %s on %s\n\n", mname, bname);
    context_md(r, root, path);
    const cJSON *fin = cJSON_GetObjectItemCaseSensitive(root, "final");
    double acc = cnb_json_num(fin, "test_accuracy", NAN);
    if (!isnan(acc))
        fprintf(r->md, "Final test accuracy **%.2f%%**, test loss %.4f after %d epoch(s).\n\n",
                100 * acc, cnb_json_num(fin, "test_loss", NAN), cnb_json_int(fin, "epochs_done", 0));
    char dat[256], title[256], q[512];
    snprintf(title, sizeof title, "%s on %s", mname, bname);
    gp_quote(q, sizeof q, title);
    int n = cJSON_GetArraySize(epochs);
    if (n > 0) {
        FILE *f = data_file(r, dat, sizeof dat);
        if (!f) return;
        const cJSON *e;
        cJSON_ArrayForEach(e, epochs)
            fprintf(f, "%d %.8g %.8g %.8g %.8g\n", cnb_json_int(e, "epoch", 0),
                    cnb_json_num(e, "train_loss", NAN), cnb_json_num(e, "test_loss", NAN),
                    100 * cnb_json_num(e, "train_accuracy", NAN),
                    100 * cnb_json_num(e, "test_accuracy", NAN));
        fclose(f);
        /* loss in columns 2-3, accuracy in 4-5: one chart each, the same style */
        static const struct { const char *name, *what, *ylabel; int col; } per_epoch[] = {
            {"loss", "loss", "cross-entropy loss", 2},
            {"accuracy", "accuracy", "accuracy (%)", 4},
        };
        for (size_t c = 0; c < sizeof per_epoch / sizeof per_epoch[0]; c++) {
            char alt[64];
            snprintf(alt, sizeof alt, "%s per epoch", per_epoch[c].what);
            chart(r, stem, per_epoch[c].name, alt, HEADER,
                  "set title '%s: %s per epoch'\nset xlabel 'epoch'\n"
                  "set ylabel '%s'\nset xtics 1\nset offsets 0.2,0.2,0,0\n"
                  "plot '%s' using 1:%d with linespoints lw 2 pt 7 title 'train %s', "
                  "'' using 1:%d with linespoints lw 2 pt 5 title 'test %s'\n",
                  q, per_epoch[c].what, per_epoch[c].ylabel, dat, per_epoch[c].col,
                  per_epoch[c].what, per_epoch[c].col + 1, per_epoch[c].what);
        }
        fprintf(r->md, "| epoch | train loss | train acc | test loss | test acc | train img/s | infer img/s |\n"
                       "|---:|---:|---:|---:|---:|---:|---:|\n");
        cJSON_ArrayForEach(e, epochs)
            fprintf(r->md, "| %d | %.4f | %.2f%% | %.4f | %.2f%% | %.0f | %.0f |\n",
                    cnb_json_int(e, "epoch", 0), cnb_json_num(e, "train_loss", NAN),
                    100 * cnb_json_num(e, "train_accuracy", NAN), cnb_json_num(e, "test_loss", NAN),
                    100 * cnb_json_num(e, "test_accuracy", NAN),
                    cnb_json_num(e, "train_images_per_s", NAN),
                    cnb_json_num(e, "infer_images_per_s", NAN));
        fprintf(r->md, "\n");
    }
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(root, "step_losses");
    if (cJSON_GetArraySize(steps) > 1) {
        if (step_loss_file(r, steps, dat, sizeof dat)) return;
        chart(r, stem, "step-loss", "loss per step", HEADER,
              "set title '%s: training loss per step'\n"
              "set xlabel 'training step'\nset ylabel 'cross-entropy loss (batch mean)'\n"
              "plot '%s' using 1:2 with lines lw 1 lc rgb '#9ecae1' title 'step loss', "
              "'' using 1:2 smooth bezier lw 2 lc rgb '#08519c' title 'smoothed'\n",
              q, dat);
    }
    const cJSON *cm = cJSON_GetObjectItemCaseSensitive(root, "confusion_matrix");
    int k = cJSON_GetArraySize(cm);
    if (k > 0) {
        FILE *f = data_file(r, dat, sizeof dat);
        if (!f) return;
        const cJSON *row;
        cJSON_ArrayForEach(row, cm) {
            const cJSON *v;
            cJSON_ArrayForEach(v, row) fprintf(f, "%.0f ", v->valuedouble);
            fprintf(f, "\n");
        }
        fclose(f);
        chart(r, stem, "confusion", "confusion matrix",
              "set terminal pngcairo size 760,680 enhanced font 'DejaVu Sans,11'\n",
              "set title '%s: confusion matrix (test set)'\n"
              "set xlabel 'predicted class'\nset ylabel 'true class'\n"
              "set cblabel 'images'\nset xrange [-0.5:%d.5]\nset yrange [%d.5:-0.5]\n"
              "set xtics 1\nset ytics 1\nset palette defined (0 'white', 1 '#c6dbef', 2 '#08306b')\n"
              "set key off\n"
              "plot '%s' matrix with image notitle, "
              "'' matrix using 1:2:(sprintf('%%d', $3)) with labels font ',8' notitle\n",
              q, k - 1, k - 1, dat);
    }
}

/* ---- comparison results (cnnbench --backend all|LIST) ---- */

static void comparison_table_md(rp *r, const cJSON *rows) {
    fprintf(r->md, "| backend | run | test acc | test loss | train img/s | infer img/s | x naive | "
                   "agreement |\n|---|---|---:|---:|---:|---:|---:|---|\n");
    const cJSON *row;
    cJSON_ArrayForEach(row, rows) {
        double acc = cnb_json_num(row, "test_accuracy", NAN);
        double vn = cnb_json_num(row, "speedup_vs_naive", NAN);
        fprintf(r->md, "| %s | %s | ", cnb_json_str(row, "backend", "?"),
                cnb_json_str(row, "run", "?"));
        if (isnan(acc)) fprintf(r->md, "- | - | ");
        else fprintf(r->md, "%.2f%% | %.4f | ", 100 * acc, cnb_json_num(row, "test_loss", NAN));
        double tr = cnb_json_num(row, "train_images_per_s", NAN);
        double in = cnb_json_num(row, "infer_images_per_s", NAN);
        if (isnan(tr)) fprintf(r->md, "- | ");
        else fprintf(r->md, "%.0f ± %.0f | ", tr, cnb_json_num(row, "train_images_per_s_mad", 0));
        if (isnan(in)) fprintf(r->md, "- | ");
        else fprintf(r->md, "%.0f ± %.0f | ", in, cnb_json_num(row, "infer_images_per_s_mad", 0));
        if (isnan(vn)) fprintf(r->md, "- | ");
        else fprintf(r->md, "%.2fx | ", vn);
        fprintf(r->md, "%s |\n", cnb_json_str(row, "agreement", "?"));
    }
    fprintf(r->md, "\n");
}

static void comparison_throughput_chart(rp *r, const cJSON *rows, const char *stem,
                                        const char *q) {
    char dat[256];
    FILE *f = data_file(r, dat, sizeof dat);
    if (!f) return;
    int n = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, rows) {
        double tr = cnb_json_num(row, "train_images_per_s", NAN);
        if (isnan(tr)) continue;
        fprintf(f, "%s %.6g %.6g\n", cnb_json_str(row, "backend", "?"), tr,
                cnb_json_num(row, "infer_images_per_s", 0));
        n++;
    }
    fclose(f);
    if (n == 0) return;
    chart(r, stem, "throughput", "throughput per backend", HEADER,
          "set title '%s: images/s per backend (medians)'\n"
          "set style data histograms\nset style histogram clustered gap 1\n"
          "set style fill solid 0.85 border -1\nset ylabel 'images/s'\nset yrange [0:*]\n"
          "plot '%s' using 2:xtic(1) title 'train', '' using 3 title 'infer'\n",
          q, dat);
}

static void comparison_loss_chart(rp *r, const cJSON *runs, const char *stem, const char *q) {
    char plot[4096] = "";
    size_t len = 0;
    const cJSON *run;
    cJSON_ArrayForEach(run, runs) {
        const cJSON *steps = cJSON_GetObjectItemCaseSensitive(run, "step_losses");
        if (cJSON_GetArraySize(steps) < 1) continue;
        char dat[256], name[128];
        if (step_loss_file(r, steps, dat, sizeof dat)) return;
        gp_quote(name, sizeof name,
                 cnb_json_str(cJSON_GetObjectItemCaseSensitive(run, "backend"), "name", "?"));
        len += (size_t)snprintf(plot + len, sizeof plot - len, "%s'%s' using 1:2 with lines lw 1.5 "
                                "title '%s'", len ? ", " : "", dat, name);
        if (len >= sizeof plot) return;
    }
    if (!len) return;
    chart(r, stem, "loss-curves", "loss curves", HEADER,
          "set title '%s: training loss per step, every backend'\n"
          "set xlabel 'training step'\nset ylabel 'cross-entropy loss (batch mean)'\nplot %s\n",
          q, plot);
}

static void report_comparison(rp *r, const cJSON *root, const char *path, const char *stem) {
    const char *mname = cnb_json_str(root, "model_name", "?");
    fprintf(r->md, "## Comparison: %s under every backend\n\n", mname);
    context_md(r, root, path);
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(root, "comparison");
    comparison_table_md(r, rows);
    const cJSON *cg = cJSON_GetObjectItemCaseSensitive(root, "cpu_gpu");
    if (cJSON_IsObject(cg))
        fprintf(r->md, "CPU:GPU: %s trains %.2fx as fast as %s.\n\n",
                cnb_json_str(cg, "best_gpu", "?"), cnb_json_num(cg, "train_ratio", NAN),
                cnb_json_str(cg, "best_cpu", "?"));
    char q[512];
    gp_quote(q, sizeof q, mname);
    comparison_throughput_chart(r, rows, stem, q);
    comparison_loss_chart(r, cJSON_GetObjectItemCaseSensitive(root, "runs"), stem, q);
}

/* ---- bench results ---- */

/* The throughput table and chart: one row per cell, images/s with min..max whiskers. */
static void bench_throughput(rp *r, const cJSON *cells, const char *stem) {
    char dat[256];
    FILE *f = data_file(r, dat, sizeof dat);
    if (!f) return;
    int n = 0;
    const cJSON *c;
    fprintf(r->md, "| model | batch | backend | runs | train img/s (median, min..max, MAD) | "
                   "infer img/s (median, min..max, MAD) |\n|---|---:|---|---:|---:|---:|\n");
    cJSON_ArrayForEach(c, cells) {
        const char *status = cnb_json_str(c, "status", "?");
        if (strcmp(status, "ok") != 0) {
            fprintf(r->md, "| %s | %d | %s | - | %s: %s | |\n", cnb_json_str(c, "model", "?"),
                    cnb_json_int(c, "batch", 0), cnb_json_str(c, "backend", "?"), status,
                    cnb_json_str(c, "reason", ""));
            continue;
        }
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "train_images_per_s");
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(c, "infer_images_per_s");
        fprintf(f, "\"%s\\n%s b%d\" %.6g %.6g %.6g %.6g %.6g %.6g\n", cnb_json_str(c, "backend", "?"),
                cnb_json_str(c, "model", "?"), cnb_json_int(c, "batch", 0),
                cnb_json_num(t, "median", 0), cnb_json_num(t, "min", 0), cnb_json_num(t, "max", 0),
                cnb_json_num(i, "median", 0), cnb_json_num(i, "min", 0), cnb_json_num(i, "max", 0));
        fprintf(r->md, "| %s | %d | %s | %d | %.0f (%.0f..%.0f, ±%.0f) | %.0f (%.0f..%.0f, ±%.0f) |\n",
                cnb_json_str(c, "model", "?"), cnb_json_int(c, "batch", 0),
                cnb_json_str(c, "backend", "?"), cnb_json_int(c, "runs", 0),
                cnb_json_num(t, "median", 0), cnb_json_num(t, "min", 0), cnb_json_num(t, "max", 0),
                cnb_json_num(t, "mad", 0), cnb_json_num(i, "median", 0), cnb_json_num(i, "min", 0),
                cnb_json_num(i, "max", 0), cnb_json_num(i, "mad", 0));
        n++;
    }
    fclose(f);
    fprintf(r->md, "\n");
    if (n > 0)
        chart(r, stem, "throughput", "images per second", HEADER,
              "set title 'images per second (median; whiskers: min..max)'\n"
              "set ylabel 'images / s (log scale)'\nset xlabel 'backend, model, batch' offset 0,-1\n"
              "set bmargin 5\n"
              "set logscale y\nset style data histogram\n"
              "set style histogram errorbars gap 1 lw 1\nset style fill solid 0.8 border -1\n"
              "set boxwidth 0.9\nset yrange [*:*]\n"
              "plot '%s' using 2:3:4:xtic(1) title 'training' lc rgb '#3182bd', "
              "'' using 5:6:7 title 'inference' lc rgb '#fd8d3c'\n",
              dat);
}

/* Speed-ups measured within the run: per-round medians and the uncontended figure. */
static void bench_ratios(rp *r, const cJSON *root) {
    const cJSON *ratios = cJSON_GetObjectItemCaseSensitive(root, "ratios");
    if (cJSON_GetArraySize(ratios) > 0) {
        fprintf(r->md, "Speed-ups measured within this run: medians of per-round ratios, and "
                       "uncontended (upper quartiles of per-round speeds, divided; steadier on a "
                       "shared host):\n\n"
                       "| model | batch | backend | against | training | inference | "
                       "training, uncontended | inference, uncontended |\n"
                       "|---|---:|---|---|---:|---:|---:|---:|\n");
        const cJSON *e;
        cJSON_ArrayForEach(e, ratios) {
            const cJSON *unc = cJSON_GetObjectItemCaseSensitive(e, "uncontended");
            char ut[32] = "n/a", ui[32] = "n/a"; /* files from before the uncontended figure */
            if (unc) {
                snprintf(ut, sizeof ut, "%.2fx", cnb_json_num(unc, "train", 0));
                snprintf(ui, sizeof ui, "%.2fx", cnb_json_num(unc, "infer", 0));
            }
            fprintf(r->md, "| %s | %d | %s | %s%s | %.2fx | %.2fx | %s | %s |\n",
                    cnb_json_str(e, "model", "?"), cnb_json_int(e, "batch", 0),
                    cnb_json_str(e, "backend", "?"),
                    strcmp(cnb_json_str(e, "kind", ""), "vs_best_cpu") == 0 ? "best CPU: " : "",
                    cnb_json_str(e, "baseline", "?"),
                    cnb_json_num(cJSON_GetObjectItemCaseSensitive(e, "train"), "median", 0),
                    cnb_json_num(cJSON_GetObjectItemCaseSensitive(e, "infer"), "median", 0), ut,
                    ui);
        }
        fprintf(r->md, "\n");
    }
}

/* Where a training step goes: a stacked bar per cell and the harness's own overhead. */
static void bench_breakdown(rp *r, const cJSON *cells, const char *stem) {
    char dat[256], plot[6144];
    FILE *f;
    const cJSON *c;
    /* per-kernel breakdown: one stacked bar per cell, ms per training step */
    f = data_file(r, dat, sizeof dat);
    if (!f) return;
    fprintf(f, "cell");
    for (int k = 0; k < CNB_KF_COUNT; k++) fprintf(f, " %s", cnb_kfamily_name(k));
    fprintf(f, " harness_overhead\n");
    int nb = 0;
    double col_total[CNB_KF_COUNT + 1] = {0};
    cJSON_ArrayForEach(c, cells) {
        const cJSON *tr = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(c, "breakdown"), "train");
        if (!tr) continue;
        const cJSON *fam = cJSON_GetObjectItemCaseSensitive(tr, "families");
        fprintf(f, "\"%s\\n%s b%d\"", cnb_json_str(c, "backend", "?"), cnb_json_str(c, "model", "?"),
                cnb_json_int(c, "batch", 0));
        for (int k = 0; k < CNB_KF_COUNT; k++) {
            double ms = cnb_json_num(cJSON_GetObjectItemCaseSensitive(fam, cnb_kfamily_name(k)), "ms", 0);
            col_total[k] += ms;
            fprintf(f, " %.6g", ms);
        }
        double ov = cnb_json_num(tr, "overhead_ms", 0);
        col_total[CNB_KF_COUNT] += ov > 0 ? ov : 0;
        fprintf(f, " %.6g\n", ov > 0 ? ov : 0);
        nb++;
    }
    fclose(f);
    if (nb > 0) {
        /* one distinct colour per family (gnuplot's default cycle repeats after 8) */
        static const char *const colours[CNB_KF_COUNT + 1] = {
            "#08519c", "#3182bd", "#6baed6", "#fdae6b", "#e6550d", "#31a354", "#a1d99b",
            "#756bb1", "#bcbddc", "#de2d26", "#fc9272", "#636363", "#bdbdbd", "#e7ba52",
            "#8c6d31", "#7b4173", "#17becf", "#9edae5", "#393b79", "#b15928", "#fb9a99",
            "#000000"};
        int at = 0, first = 1;
        plot[0] = '\0';
        for (int k = 0; k <= CNB_KF_COUNT && at < (int)sizeof plot - 200; k++) {
            if (col_total[k] <= 0) continue; /* families no cell spent time in */
            at += snprintf(plot + at, sizeof plot - (size_t)at,
                           "%s'%s' using %d%s title columnheader(%d) lc rgb '%s'",
                           first ? "" : ", ", dat, k + 2, first ? ":xtic(1)" : "", k + 2,
                           colours[k]);
            first = 0;
        }
        chart(r, stem, "breakdown", "per-kernel breakdown",
              "set terminal pngcairo size 1000,600 noenhanced font 'DejaVu Sans,11'\n",
              "set title 'where a training step goes (profiled pass)'\n"
              "set ylabel 'ms per training step'\nset xlabel 'backend, model, batch' offset 0,-1\n"
              "set bmargin 5\nset style data histogram\nset style histogram rowstacked\n"
              "set style fill solid 0.85 border -1\nset boxwidth 0.6\n"
              "set key outside right top title 'kernel family'\n"
              "set grid ytics lc rgb '#dddddd'\nplot %s\n",
              plot);
        fprintf(r->md, "| cell | step ms | kernels ms | harness overhead ms (share) |\n|---|---:|---:|---:|\n");
        cJSON_ArrayForEach(c, cells) {
            const cJSON *tr = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(c, "breakdown"), "train");
            if (!tr) continue;
            fprintf(r->md, "| %s %s b%d | %.3f | %.3f | %.3f (%.1f%%) |\n",
                    cnb_json_str(c, "backend", "?"), cnb_json_str(c, "model", "?"),
                    cnb_json_int(c, "batch", 0), cnb_json_num(tr, "step_ms", 0),
                    cnb_json_num(tr, "kernel_ms", 0), cnb_json_num(tr, "overhead_ms", 0),
                    100 * cnb_json_num(tr, "overhead_share", 0));
        }
        fprintf(r->md, "\n");
    }
}

static void report_bench(rp *r, const cJSON *root, const char *path, const char *stem) {
    const cJSON *cells = cJSON_GetObjectItemCaseSensitive(root, "cells");
    fprintf(r->md, "## Benchmark\n\n");
    context_md(r, root, path);
    const cJSON *set = cJSON_GetObjectItemCaseSensitive(root, "settings");
    int steps = cnb_json_int(set, "steps_per_run", 0);
    fprintf(r->md, "%d training step%s + %d inference images per run; at least %g s and %d runs "
                   "per cell; %d threads.\n\n",
            steps, steps == 1 ? "" : "s", cnb_json_int(set, "infer_images", 0),
            cnb_json_num(set, "min_time_s", 0), cnb_json_int(set, "min_runs", 0),
            cnb_json_int(root, "threads", 0));
    bench_throughput(r, cells, stem);
    bench_ratios(r, root);
    bench_breakdown(r, cells, stem);
}

/* ---- check results ---- */

static void report_check(rp *r, const cJSON *root, const char *path) {
    fprintf(r->md, "## Agreement checks\n\n");
    context_md(r, root, path);
    const cJSON *b, *backends = cJSON_GetObjectItemCaseSensitive(root, "backends");
    fprintf(r->md, "| backend | passed | failed | skipped | mistrusted | note |\n"
                   "|---|---:|---:|---:|---:|---|\n");
    cJSON_ArrayForEach(b, backends) {
        const cJSON *cnt = cJSON_GetObjectItemCaseSensitive(b, "counts");
        fprintf(r->md, "| %s | %d | %d | %d | %d | %s |\n", cnb_json_str(b, "name", "?"),
                cnb_json_int(cnt, "PASSED", 0), cnb_json_int(cnt, "FAILED", 0),
                cnb_json_int(cnt, "SKIPPED", 0), cnb_json_int(cnt, "MISTRUSTED", 0),
                cnb_json_str(b, "reason", ""));
    }
    fprintf(r->md, "\n");
    const cJSON *c, *checks = cJSON_GetObjectItemCaseSensitive(root, "checks");
    int failed = 0;
    cJSON_ArrayForEach(c, checks) {
        if (strcmp(cnb_json_str(c, "status", ""), "FAILED") != 0) continue;
        if (!failed++) fprintf(r->md, "Failed checks:\n\n");
        fprintf(r->md, "- %s %s %s (%s): relL2 %.3g; reproduce with `%s`\n",
                cnb_json_str(c, "backend", "?"), cnb_json_str(c, "family", "?"),
                cnb_json_str(c, "label", "?"), cnb_json_str(c, "mode", "?"),
                cnb_json_num(c, "rel_l2", NAN), cnb_json_str(c, "reproduce", ""));
    }
    if (failed) fprintf(r->md, "\n");
}

int cnb_cmd_report(int argc, char **argv) {
    rp r = {.out = "cnnbench-report"};
    cnb_common_opts co;
    int first = 0;
    int prc = cnb_parse_options("cnnbench report", argc, argv, CNB_OPT_OUT, NULL, NULL, NULL,
                                usage, &co, &first);
    if (prc != 0) return prc > 0 ? 0 : EXIT_USAGE;
    if (co.out) r.out = co.out;
    if (first >= argc) {
        fprintf(stderr, "cnnbench report: needs at least one results JSON file\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    if (mkdir(r.out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "cnnbench report: %s: cannot create the directory: %s\n", r.out,
                strerror(errno));
        return EXIT_USAGE;
    }
    snprintf(r.tmpdir, sizeof r.tmpdir, "/tmp/cnnbench-report.XXXXXX");
    if (!mkdtemp(r.tmpdir)) {
        fprintf(stderr, "cnnbench report: cannot create a temporary directory: %s\n", strerror(errno));
        return EXIT_USAGE;
    }
    char md_path[4096], md_tmp[4200];
    snprintf(md_path, sizeof md_path, "%s/report.md", r.out);
    snprintf(md_tmp, sizeof md_tmp, "%s/report.md", r.tmpdir);
    r.md = fopen(md_tmp, "w");
    int rc = 0;
    if (!r.md) {
        fprintf(stderr, "cnnbench report: %s: %s\n", md_tmp, strerror(errno));
        rc = EXIT_USAGE;
        goto cleanup;
    }
    fprintf(r.md, "# cnnbench report\n\n");
    for (int i = first; i < argc; i++) {
        char err[CNB_ERR_LEN], stem[256];
        cJSON *root = cnb_read_json(argv[i], err, sizeof err);
        if (!root) {
            fprintf(stderr, "cnnbench report: %s\n", err);
            rc = 1;
            continue;
        }
        /* chart names: the input's file name without .json */
        snprintf(stem, sizeof stem, "%s", base_name(argv[i]));
        char *dot = strstr(stem, ".json");
        if (dot) *dot = '\0';
        const char *kind = cnb_results_kind(root);
        if (strcmp(kind, "bench") == 0) report_bench(&r, root, argv[i], stem);
        else if (strcmp(kind, "check") == 0) report_check(&r, root, argv[i]);
        else if (strcmp(kind, "comparison") == 0) report_comparison(&r, root, argv[i], stem);
        else if (strcmp(kind, "train") == 0) report_training(&r, root, argv[i], stem);
        else {
            fprintf(stderr, "cnnbench report: %s: a '%s' file, not a training, comparison, bench "
                            "or check results file\n", argv[i], kind);
            rc = 1;
        }
        cJSON_Delete(root);
    }
    fclose(r.md);
    r.md = NULL;
    /* the page goes into place whole, like every results file */
    char err[CNB_ERR_LEN];
    char *text = cnb_read_file(md_tmp, NULL, err, sizeof err);
    if (text && cnb_write_file_atomic(md_path, text, err, sizeof err) != 0) {
        fprintf(stderr, "cnnbench report: %s\n", err);
        rc = 1;
    }
    free(text);
    if (r.failures) rc = 1;
    printf("report: %s (%d chart%s)\n", md_path, r.charts, r.charts == 1 ? "" : "s");
cleanup:
    for (int i = 0; i < r.tmp_seq; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s/data%d.dat", r.tmpdir, i);
        unlink(p);
    }
    unlink(md_tmp);
    rmdir(r.tmpdir);
    return rc;
}
