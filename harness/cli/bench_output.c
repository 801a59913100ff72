/* bench_output.c — `cnnbench bench`'s tables (per group: throughput, machine load, per-kernel
 * breakdown, speed-ups) and files (results JSON, CSV, github-action-benchmark). */
#define _GNU_SOURCE
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flops.h"
#include "machine.h"

typedef double (*speedup_fn)(const bn_cell *a, const bn_cell *b, int infer, double *buf);

/* One line on the machine's other work during the group's timed runs; a warning when it was
 * enough to move the figures. */
static void print_load(const bn_cell *cells, int n, FILE *f) {
    const bn_cell *c = NULL;
    for (int i = 0; i < n && !c; i++)
        if (!cells[i].status) c = &cells[i];
    if (!c) return;
    if (!c->load_known) {
        fprintf(f, "  machine load during the timed runs: unknown (/proc/stat unreadable)\n");
        return;
    }
    fprintf(f, "  machine load during the timed runs: other work %.2f cores, steal %.2f cores\n",
            c->other_cores, c->steal_cores);
    if (bench_cell_disturbed(c))
        fprintf(f, "  WARNING: the machine was busy (more than %.1f core of other work or steal): "
                   "speed-ups between backends with different thread counts shift under such "
                   "load; rerun on a quiet machine before trusting them\n",
                CNB_LOAD_DISTURBED_CORES);
}

/* The arithmetic the medians stand for (flops.h), to set beside `cnnbench ceiling`. */
static void print_work(const bn_cell *cells, int n, FILE *f) {
    cnb_model_flops w;
    cnb_model_flops_count(cells[0].m, &w);
    fprintf(f, "  work: %.2f MFLOP per training image, %.2f per inference image; median GFLOP/s:",
            w.training * 1e-6, w.inference * 1e-6);
    for (int i = 0; i < n; i++) {
        if (cells[i].status) continue;
        fprintf(f, " %s %.1f train / %.1f infer", cells[i].b->name,
                cnb_gflops(bench_median_of(cells[i].train_ips, cells[i].runs), w.training),
                cnb_gflops(bench_median_of(cells[i].infer_ips, cells[i].runs), w.inference));
        fprintf(f, i + 1 < n ? "," : "");
    }
    fprintf(f, "\n");
}

void bench_print_group(const bn_cell *cells, int n, const bn_opts *o, FILE *f) {
    const bn_cell *c0 = &cells[0];
    fprintf(f, "\n%s, batch %d: %d training step%s + %d inference images per run\n", c0->m->name,
            c0->batch, o->steps_per_run, o->steps_per_run == 1 ? "" : "s", o->infer_images);
    fprintf(f, "  %-8s %5s  %-40s  %-40s  %8s\n", "backend", "runs",
            "train img/s: median [min .. max] ±MAD", "infer img/s: median [min .. max] ±MAD",
            "ms/step");
    for (int i = 0; i < n; i++) {
        const bn_cell *c = &cells[i];
        if (c->status) {
            fprintf(f, "  %-8s %s: %s\n", c->b->name, c->status == 1 ? "SKIPPED" : "FAILED",
                    c->why);
            continue;
        }
        cnb_summary t, inf, st;
        cnb_summarize(c->train_ips, c->runs, &t);
        cnb_summarize(c->infer_ips, c->runs, &inf);
        cnb_summarize(c->step_ms, c->runs, &st);
        char a[64], b[64];
        snprintf(a, sizeof a, "%.0f [%.0f .. %.0f] ±%.0f", t.median, t.min, t.max, t.mad);
        snprintf(b, sizeof b, "%.0f [%.0f .. %.0f] ±%.0f", inf.median, inf.min, inf.max, inf.mad);
        int idx[MAX_RUNS];
        int ko = bench_outliers(c->train_ips, c->runs, &t, idx, MAX_RUNS) +
                 bench_outliers(c->infer_ips, c->runs, &inf, idx, MAX_RUNS);
        fprintf(f, "  %-8s %5d  %-40s  %-40s  %8.2f", c->b->name, c->runs, a, b, st.median);
        if (ko) fprintf(f, "  (%d outlier sample%s > %.0f MAD, kept)", ko, ko > 1 ? "s" : "",
                        OUTLIER_MADS);
        fprintf(f, "\n");
    }
    print_load(cells, n, f);
    print_work(cells, n, f);
    if (!o->breakdown) return;
    /* Device timers and the host clock measure different things (device time vs wall time with a
     * synchronize after each call): say which column used which. */
    fprintf(f, "  per-kernel breakdown of a training step, ms (share of the step), profiled pass");
    const char *first = NULL;
    int mixed = 0;
    for (int i = 0; i < n; i++) {
        if (cells[i].status || !cells[i].profiled_steps || !cells[i].timing) continue;
        if (!first) first = cells[i].timing;
        else mixed |= strcmp(first, cells[i].timing) != 0;
    }
    if (first && !mixed) fprintf(f, ", timed by %s", first);
    if (mixed) {
        fprintf(f, ", timed by");
        const char *sep = " ";
        for (int i = 0; i < n; i++) {
            if (cells[i].status || !cells[i].profiled_steps || !cells[i].timing) continue;
            fprintf(f, "%s%s: %s", sep, cells[i].b->name, cells[i].timing);
            sep = "; ";
        }
    }
    fprintf(f, ":\n");
    fprintf(f, "  %-16s %-9s", "family", "pass");
    for (int i = 0; i < n; i++)
        if (!cells[i].status && cells[i].profiled_steps) fprintf(f, " %18s", cells[i].b->name);
    fprintf(f, "\n");
    for (int fam = 0; fam < CNB_KF_COUNT; fam++) {
        int any = 0;
        for (int i = 0; i < n; i++) any |= !cells[i].status && cells[i].train_k.calls[fam] > 0;
        if (!any) continue;
        fprintf(f, "  %-16s %-9s", cnb_kfamily_name(fam), cnb_kfamily_direction(fam));
        for (int i = 0; i < n; i++) {
            const bn_cell *c = &cells[i];
            if (c->status || !c->profiled_steps) continue;
            double step = c->profiled_train_seconds / c->profiled_steps;
            double ms = 1000 * c->train_k.seconds[fam] / c->profiled_steps;
            fprintf(f, " %9.3f (%5.1f%%)", ms, step > 0 ? 100 * ms / 1000 / step : 0);
        }
        fprintf(f, "\n");
    }
    const char *rows[] = {"kernels", "harness", "step"};
    for (int r = 0; r < 3; r++) {
        fprintf(f, "  %-16s %-9s", rows[r], r == 1 ? "overhead" : "total");
        for (int i = 0; i < n; i++) {
            const bn_cell *c = &cells[i];
            if (c->status || !c->profiled_steps) continue;
            double step = c->profiled_train_seconds / c->profiled_steps;
            double kern = bench_ksum(&c->train_k) / c->profiled_steps;
            double v = r == 0 ? kern : r == 1 ? step - kern : step;
            fprintf(f, " %9.3f (%5.1f%%)", 1000 * v, step > 0 ? 100 * v / step : 0);
        }
        fprintf(f, "\n");
    }
}

/* One block of speed-ups (every backend vs naive and vs the best CPU backend, then CPU:GPU). */
static void print_speedups(const bn_cell *cells, int n, speedup_fn figure, FILE *f, double *buf) {
    int naive = -1;
    for (int i = 0; i < n; i++)
        if (!cells[i].status && strcmp(cells[i].b->name, "naive") == 0) naive = i;
    int bcpu = bench_best_cell(cells, n, 0), bgpu = bench_best_cell(cells, n, 1);
    for (int i = 0; i < n; i++) {
        const bn_cell *c = &cells[i];
        if (c->status) continue;
        fprintf(f, "    %-8s", c->b->name);
        if (naive >= 0)
            fprintf(f, "  vs naive: train %7.2fx infer %7.2fx", figure(c, &cells[naive], 0, buf),
                    figure(c, &cells[naive], 1, buf));
        if (bcpu >= 0)
            fprintf(f, "  vs best CPU (%s): train %6.2fx infer %6.2fx", cells[bcpu].b->name,
                    figure(c, &cells[bcpu], 0, buf), figure(c, &cells[bcpu], 1, buf));
        fprintf(f, "\n");
    }
    if (bcpu >= 0 && bgpu >= 0)
        fprintf(f, "    CPU:GPU (best %s vs best %s): 1 : %.2f in training\n",
                cells[bcpu].b->name, cells[bgpu].b->name,
                figure(&cells[bgpu], &cells[bcpu], 0, buf));
    else if (bgpu < 0)
        fprintf(f, "    CPU:GPU: no GPU backend ran here\n");
}

void bench_print_ratios(const bn_cell *cells, int n, FILE *f, double *buf) {
    fprintf(f, "  ratios (speed-ups, medians of per-round ratios: the figures to compare across "
               "runs):\n");
    print_speedups(cells, n, bench_median_ratio, f, buf);
    fprintf(f, "  uncontended ratios (upper quartile of each backend's per-round speeds: its speed "
               "while the host's other tenants leave it alone; steadier on a shared host):\n");
    print_speedups(cells, n, bench_uncontended_ratio, f, buf);
}

int bench_write_csv(const char *path, bn_cell *cells, int n, double *buf, char *err,
                     size_t err_len) {
    size_t cap = 4096 + (size_t)n * 512, len = 0;
    char *t = malloc(cap);
    if (!t) return cnb_errf(err, err_len, "%s: out of memory", path);
    len += (size_t)snprintf(t + len, cap - len,
                            "backend,model,batch,status,runs,train_ips_median,train_ips_min,"
                            "train_ips_max,train_ips_mad,infer_ips_median,infer_ips_min,"
                            "infer_ips_max,infer_ips_mad,step_ms_median,train_speedup_vs_naive,"
                            "infer_speedup_vs_naive,kernel_ms_per_step,overhead_ms_per_step,"
                            "train_speedup_uncontended_vs_naive,infer_speedup_uncontended_vs_naive\n");
    for (int i = 0; i < n; i++) {
        bn_cell *c = &cells[i];
        if (c->status) {
            len += (size_t)snprintf(t + len, cap - len, "%s,%s,%d,%s,0,,,,,,,,,,,,,,,\n",
                                    c->b->name, c->m->name, c->batch,
                                    c->status == 1 ? "skipped" : "failed");
            continue;
        }
        const bn_cell *naive = NULL;
        for (int j = 0; j < n; j++)
            if (!cells[j].status && cells[j].m == c->m && cells[j].batch == c->batch &&
                strcmp(cells[j].b->name, "naive") == 0)
                naive = &cells[j];
        cnb_summary tr, in, st;
        cnb_summarize(c->train_ips, c->runs, &tr);
        cnb_summarize(c->infer_ips, c->runs, &in);
        cnb_summarize(c->step_ms, c->runs, &st);
        char sp_t[32] = "", sp_i[32] = "", kern[32] = "", ovh[32] = "", un_t[32] = "",
             un_i[32] = "";
        if (naive) {
            snprintf(sp_t, sizeof sp_t, "%.4f", bench_median_ratio(c, naive, 0, buf));
            snprintf(sp_i, sizeof sp_i, "%.4f", bench_median_ratio(c, naive, 1, buf));
            snprintf(un_t, sizeof un_t, "%.4f", bench_uncontended_ratio(c, naive, 0, buf));
            snprintf(un_i, sizeof un_i, "%.4f", bench_uncontended_ratio(c, naive, 1, buf));
        }
        if (c->profiled_steps) {
            double kk = bench_ksum(&c->train_k) / c->profiled_steps;
            snprintf(kern, sizeof kern, "%.4f", 1000 * kk);
            snprintf(ovh, sizeof ovh, "%.4f",
                     1000 * (c->profiled_train_seconds / c->profiled_steps - kk));
        }
        len += (size_t)snprintf(t + len, cap - len,
                                "%s,%s,%d,ok,%d,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f,%.4f,%s,%s,"
                                "%s,%s,%s,%s\n",
                                c->b->name, c->m->name, c->batch, c->runs, tr.median, tr.min,
                                tr.max, tr.mad, in.median, in.min, in.max, in.mad, st.median, sp_t,
                                sp_i, kern, ovh, un_t, un_i);
    }
    int rc = cnb_write_file_atomic(path, t, err, err_len);
    free(t);
    return rc;
}

/* One github-action-benchmark entry: the median of n samples, "± MAD" to `decimals` places as
 * its range. */
static void add_gab_entry(cJSON *arr, const char *name, const char *unit, const double *x, int n,
                          int decimals) {
    cnb_summary s;
    cnb_summarize(x, n, &s);
    char range[64];
    snprintf(range, sizeof range, "± %.*f", decimals, s.mad);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", name);
    cJSON_AddStringToObject(e, "unit", unit);
    cJSON_AddNumberToObject(e, "value", s.median);
    cJSON_AddStringToObject(e, "range", range);
    cJSON_AddItemToArray(arr, e);
}

/* github-action-benchmark's customBiggerIsBetter: [{name, unit, value, range}], one entry per
 * measured figure; the within-run speed-ups are the ones worth alerting on. */
int bench_write_gab(const char *path, bn_cell *cells, int n, double *buf, char *err,
                     size_t err_len) {
    cJSON *arr = cJSON_CreateArray();
    char name[256];
    for (int i = 0; i < n; i++) {
        bn_cell *c = &cells[i];
        if (c->status) continue;
        const char *what[2] = {"train", "infer"};
        for (int w = 0; w < 2; w++) {
            snprintf(name, sizeof name, "%s/%s/batch%d %s images/s", c->m->name, c->b->name,
                     c->batch, what[w]);
            add_gab_entry(arr, name, "images/s", w ? c->infer_ips : c->train_ips, c->runs, 2);
        }
        for (int j = 0; j < n; j++) {
            const bn_cell *b = &cells[j];
            if (b->status || b == c || b->m != c->m || b->batch != c->batch ||
                strcmp(b->b->name, "naive") != 0)
                continue;
            for (int w = 0; w < 2; w++) {
                int k = bench_ratio_samples(c, b, w, buf);
                snprintf(name, sizeof name, "%s/batch%d %s/naive %s speed-up", c->m->name,
                         c->batch, c->b->name, what[w]);
                add_gab_entry(arr, name, "x", buf, k, 4);
            }
        }
    }
    int rc = cnb_write_json(path, arr, err, err_len);
    cJSON_Delete(arr);
    return rc;
}

static cJSON *kernels_json(const cnb_kernel_times *k, double per, double whole) {
    cJSON *o = cJSON_CreateObject();
    for (int f = 0; f < CNB_KF_COUNT; f++) {
        if (!k->calls[f]) continue;
        cJSON *e = cJSON_AddObjectToObject(o, cnb_kfamily_name(f));
        cJSON_AddStringToObject(e, "pass", cnb_kfamily_direction(f));
        cJSON_AddNumberToObject(e, "ms", 1000 * k->seconds[f] / per);
        cJSON_AddNumberToObject(e, "calls", (double)k->calls[f] / per);
        cJSON_AddNumberToObject(e, "share", whole > 0 ? k->seconds[f] / per / whole : 0);
    }
    return o;
}

cJSON *bench_cell_json(const bn_cell *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "backend", c->b->name);
    cJSON_AddStringToObject(o, "model", c->m->name);
    cJSON_AddNumberToObject(o, "batch", c->batch);
    cJSON_AddStringToObject(o, "status", c->status == 0 ? "ok" : c->status == 1 ? "skipped" : "failed");
    if (c->status) {
        cJSON_AddStringToObject(o, "reason", c->why);
        return o;
    }
    cJSON_AddNumberToObject(o, "runs", c->runs);
    cJSON_AddNumberToObject(o, "rounds", c->rounds);
    cJSON_AddNumberToObject(o, "timed_seconds", c->timed_seconds);
    cJSON_AddItemToObject(o, "train_images_per_s", bench_summary_json(c->train_ips, c->runs));
    cJSON_AddItemToObject(o, "infer_images_per_s", bench_summary_json(c->infer_ips, c->runs));
    cJSON_AddItemToObject(o, "step_ms", bench_summary_json(c->step_ms, c->runs));
    cnb_model_flops w;
    cnb_model_flops_count(c->m, &w);
    cJSON *wj = cJSON_AddObjectToObject(o, "work");
    cJSON_AddNumberToObject(wj, "train_flop_per_image", w.training);
    cJSON_AddNumberToObject(wj, "infer_flop_per_image", w.inference);
    cJSON_AddNumberToObject(wj, "train_gflops_median",
                            cnb_gflops(bench_median_of(c->train_ips, c->runs), w.training));
    cJSON_AddNumberToObject(wj, "infer_gflops_median",
                            cnb_gflops(bench_median_of(c->infer_ips, c->runs), w.inference));
    if (c->load_known) {
        cJSON *l = cJSON_AddObjectToObject(o, "machine_load");
        cJSON_AddNumberToObject(l, "other_cores", c->other_cores);
        cJSON_AddNumberToObject(l, "steal_cores", c->steal_cores);
        cJSON_AddNumberToObject(l, "disturbed_above_cores", CNB_LOAD_DISTURBED_CORES);
        cJSON_AddBoolToObject(l, "disturbed", bench_cell_disturbed(c));
    }
    if (c->profiled_steps) {
        cJSON *b = cJSON_AddObjectToObject(o, "breakdown");
        double steps = (double)c->profiled_steps, runs = c->profiled_runs;
        double step = c->profiled_train_seconds / steps, kern = bench_ksum(&c->train_k) / steps;
        cJSON_AddNumberToObject(b, "profiled_runs", runs);
        cJSON_AddNumberToObject(b, "profiled_steps", steps);
        cJSON *tr = cJSON_AddObjectToObject(b, "train");
        cJSON_AddNumberToObject(tr, "step_ms", 1000 * step);
        cJSON_AddNumberToObject(tr, "kernel_ms", 1000 * kern);
        cJSON_AddNumberToObject(tr, "overhead_ms", 1000 * (step - kern));
        cJSON_AddNumberToObject(tr, "overhead_share", step > 0 ? (step - kern) / step : 0);
        cJSON_AddItemToObject(tr, "families", kernels_json(&c->train_k, steps, step));
        cJSON *in = cJSON_AddObjectToObject(b, "infer");
        double pass = c->profiled_infer_seconds / runs, ik = bench_ksum(&c->infer_k) / runs;
        cJSON_AddNumberToObject(in, "pass_ms", 1000 * pass);
        cJSON_AddNumberToObject(in, "kernel_ms", 1000 * ik);
        cJSON_AddNumberToObject(in, "overhead_ms", 1000 * (pass - ik));
        cJSON_AddItemToObject(in, "families", kernels_json(&c->infer_k, runs, pass));
        int timers = c->timing && strstr(c->timing, "device timers") != NULL;
        cJSON_AddStringToObject(b, "timing", c->timing ? c->timing : "");
        cJSON_AddStringToObject(b, "note",
                                timers ? "profiled through the proxy (a device timer pair around "
                                         "every kernel, read back once per step); training: per "
                                         "step, inference: per pass; memory = uploads, downloads; "
                                         "overhead = wall time outside kernels"
                                       : "profiled through the proxy (synchronize after every "
                                         "kernel); training: per step, inference: per pass; "
                                         "memory = uploads, downloads; overhead = wall time "
                                         "outside kernels");
    }
    return o;
}

cJSON *bench_results_json(const bn_opts *o, int argc, char **argv, int threads,
                          const cnb_machine *mc, const char *dataset_kind, int infer_images,
                          const bn_backend *backends, int nb, bn_cell *cells, int n_cells,
                          double *buf) {
    cJSON *root = cnb_context_json("bench", argc, argv, o->seed, threads, mc);
    cJSON *set = cJSON_AddObjectToObject(root, "settings");
    cJSON_AddNumberToObject(set, "min_time_s", o->min_time);
    cJSON_AddNumberToObject(set, "min_runs", o->min_runs);
    cJSON_AddNumberToObject(set, "max_runs", o->max_runs);
    cJSON_AddNumberToObject(set, "warmup_runs", o->warmup);
    cJSON_AddNumberToObject(set, "settle_ms", o->settle_ms);
    cJSON_AddNumberToObject(set, "steps_per_run", o->steps_per_run);
    cJSON_AddNumberToObject(set, "infer_images", infer_images);
    cJSON_AddNumberToObject(set, "eval_batch", o->eval_batch);
    cJSON_AddNumberToObject(set, "profile_runs", o->breakdown ? o->profile_runs : 0);
    cJSON_AddBoolToObject(set, "quick", o->quick);
    cJSON_AddBoolToObject(set, "fusion", !o->no_fusion);
    cJSON_AddBoolToObject(set, "direct_conv", o->direct_conv);
    cJSON_AddNumberToObject(set, "outlier_mads", OUTLIER_MADS);
    cJSON_AddStringToObject(set, "schedule",
                            "time-balanced rounds: in each round every backend runs about as long "
                            "as the slowest backend's single run (faster ones repeat, at most "
                            "max_runs / min_runs times); within-run ratios are per-round medians");
    cJSON_AddStringToObject(set, "dataset", dataset_kind);
    cJSON *bj = cJSON_AddArrayToObject(root, "backends");
    for (int i = 0; i < nb; i++) {
        const bn_backend *b = &backends[i];
        cJSON_AddItemToArray(bj, cnb_backend_json(b->name, b->usable, b->is_gpu ? "gpu" : "cpu",
                                                  b->why, b->lib.path, &b->info, b->fault_env));
    }
    cJSON *cj = cJSON_AddArrayToObject(root, "cells");
    for (int i = 0; i < n_cells; i++) cJSON_AddItemToArray(cj, bench_cell_json(&cells[i]));
    cJSON *rj = cJSON_AddArrayToObject(root, "ratios");
    for (int g0 = 0; g0 < n_cells; g0 += nb) {
        bn_cell *g = &cells[g0];
        int naive = -1;
        for (int k = 0; k < nb; k++)
            if (!g[k].status && strcmp(g[k].b->name, "naive") == 0) naive = k;
        int bcpu = bench_best_cell(g, nb, 0), bgpu = bench_best_cell(g, nb, 1);
        for (int k = 0; k < nb; k++) {
            if (g[k].status) continue;
            if (naive >= 0 && k != naive)
                cJSON_AddItemToArray(rj, bench_ratio_json("vs_naive", &g[k], &g[naive], buf));
            if (bcpu >= 0 && k != bcpu)
                cJSON_AddItemToArray(rj, bench_ratio_json("vs_best_cpu", &g[k], &g[bcpu], buf));
        }
        if (bcpu >= 0 && bgpu >= 0)
            cJSON_AddItemToArray(rj, bench_ratio_json("gpu_vs_cpu", &g[bgpu], &g[bcpu], buf));
    }
    return root;
}
