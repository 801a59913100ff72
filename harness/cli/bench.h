/* bench.h — what the parts of `cnnbench bench` share: the backends, the cells (one backend x
 * model x batch) with their samples, the options; bench_schedule.c runs the cells in
 * time-balanced rounds, bench_stats.c turns samples into figures and ratios, bench_output.c prints
 * the tables and writes the JSON, CSV and github-action-benchmark files, and cmd_bench.c is the
 * verb that ties them together. */
#ifndef CNB_BENCH_H
#define CNB_BENCH_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "data.h"
#include "loader.h"
#include "model.h"
#include "options.h"
#include "profiler.h"
#include "results.h"
#include "runctx.h"
#include "train.h"
#include "util.h"

#define MAX_RUNS 10000
/* Measured here: with onednn (libgomp) and blas (its own team) in one bench process and no pause,
 * blas's run right after onednn's took 19.2 ms per simplecnn step instead of 12-15 ms (libgomp's
 * workers spin ~5 ms after each parallel region, on the cores blas's team needs); with
 * GOMP_SPINCOUNT=0 the figures came back. 20 ms covers the spin of libgomp and of blas's team
 * (1 ms). */
#define BENCH_DEFAULT_SETTLE_MS 20
#define OUTLIER_MADS 3.0  /* a sample further than 3 MAD from the median is flagged, never dropped */

/* A backend list entry NAME:nofusion is backend NAME with --no-fusion, timed in the same rounds
 * as the others (so fused and separate kernels get a ratio measured in one run). */
#define NOFUSION_SUFFIX ":nofusion"

typedef struct bn_backend {
    const char *name;
    char label[64];          /* NAME:nofusion entries: the name shown and recorded */
    int no_fusion;
    cnb_loaded_backend lib;
    cnb_context *ctx;
    int usable, is_gpu;
    char why[CNB_ERR_LEN];
    char fault_env[256];
    cnb_info_list info;
} bn_backend;

typedef struct bn_cell {
    bn_backend *b;
    const cnb_model *m;
    int batch;
    int status;                /* 0 ok, 1 skipped (backend unusable), 2 failed */
    char why[CNB_ERR_LEN + 128];
    cnb_trainer *t;
    cnb_train_state start;     /* where every run begins again (the trainer counts steps) */
    float *params0;            /* and the weights it begins from, so no run drifts or diverges */
    cnb_profiler thin;         /* pass-through used only when a test fault is active */
    double *train_ips, *infer_ips, *step_ms;
    int runs;
    int *round_end;            /* runs done by the end of each round (samples of round r are
                                * [round_end[r-1], round_end[r])) */
    int rounds;
    double run_estimate;       /* seconds one run takes, from the warm-up and the last round */
    double timed_seconds;
    int done;
    /* breakdown from the profiled pass, seconds per training step / per inference pass */
    cnb_kernel_times train_k, infer_k;
    long profiled_steps;
    int profiled_runs;
    double profiled_train_seconds, profiled_infer_seconds;
    const char *timing;        /* how the profiled pass timed kernels (cnb_profiler_timing_method) */
    /* other work on the machine while the group's timed runs ran (cnb_load_probe) */
    int load_known;
    double other_cores, steal_cores;
} bn_cell;

typedef struct bn_opts {
    char *backends[CNB_MAX_LIST];
    int n_backends;
    char *models[CNB_MAX_LIST];
    int n_models;
    int batches[CNB_MAX_LIST];
    int n_batches;
    double min_time;
    int min_runs, max_runs, warmup, steps_per_run, infer_images, eval_batch, profile_runs;
    int threads, breakdown, quiet, quick;
    int no_fusion;
    int direct_conv;            /* backends made with cnb_config.direct_conv */
    int settle_ms;              /* untimed pause before each backend's turn in a round */
    uint64_t seed;
    const char *out, *csv, *gab, *dataset, *data;
    cnb_common_opts common;     /* the shared flags as parsed (the lists point into it) */
} bn_opts;

/* ---- bench_schedule.c: running cells ---- */
void bench_settings(const bn_opts *o, const bn_backend *b, const cnb_model *m, int batch,
                    cnb_run_settings *s);
int bench_trainer_mark(cnb_trainer *t, const cnb_model *m, cnb_train_state *st, float **params, char *err, size_t err_len);
int bench_cell_run(bn_cell *c, cnb_run_result *r, double *train_ips, double *infer_ips, double *step_ms, double *seconds);
int bench_cell_profile(bn_cell *c, const bn_opts *o, const cnb_dataset *train, const cnb_dataset *test, cnb_run_result *r);
/* Set up a group's cells (one per backend) for one model and batch: a trainer each, marked at
 * its starting weights; a backend that cannot run makes its cell SKIPPED (status 1). */
void bench_prepare_group(bn_cell *g, int nb, bn_backend *backends, const cnb_model *m, int batch,
                         const bn_opts *o, const cnb_dataset *view, const cnb_dataset *test);
/* Warm up, then time the group's cells (one per backend) in rounds until each is done, record
 * the machine's other load, and run the profiled pass; a cell that fails gets status 2. */
void bench_run_group(bn_cell *g, int nb, const bn_opts *o, const cnb_dataset *view,
                     const cnb_dataset *test, cnb_run_result *r);

/* ---- bench_stats.c: figures from the samples ---- */
#define UNCONTENDED_QUANTILE 0.75
double bench_ksum(const cnb_kernel_times *k);
int bench_outliers(const double *x, int n, const cnb_summary *s, int *idx, int max);
cJSON *bench_summary_json(const double *x, int n);
double bench_median_of(const double *x, int n);
double bench_round_median(const bn_cell *c, int r, int infer);
int bench_ratio_samples(const bn_cell *a, const bn_cell *b, int infer, double *out);
double bench_uncontended_speed(const bn_cell *c, int rounds, int infer, double *buf);
double bench_uncontended_ratio(const bn_cell *a, const bn_cell *b, int infer, double *buf);
cJSON *bench_ratio_json(const char *kind, const bn_cell *a, const bn_cell *b, double *buf);
int bench_best_cell(const bn_cell *cells, int n, int gpu);
double bench_median_ratio(const bn_cell *a, const bn_cell *b, int infer, double *buf);
int bench_cell_disturbed(const bn_cell *c);

/* ---- bench_output.c: tables and files ---- */
void bench_print_group(const bn_cell *cells, int n, const bn_opts *o, FILE *f);
void bench_print_ratios(const bn_cell *cells, int n, FILE *f, double *buf);
int bench_write_csv(const char *path, bn_cell *cells, int n, double *buf, char *err, size_t err_len);
int bench_write_gab(const char *path, bn_cell *cells, int n, double *buf, char *err, size_t err_len);
cJSON *bench_cell_json(const bn_cell *c);
/* The bench results file: the context block, settings, backends, cells and ratios. */
cJSON *bench_results_json(const bn_opts *o, int argc, char **argv, int threads,
                          const cnb_machine *mc, const char *dataset_kind, int infer_images,
                          const bn_backend *backends, int nb, bn_cell *cells, int n_cells,
                          double *buf);

#endif
