/* cmd_bench.c — `cnnbench bench`: a timing matrix of backends x models (x batch sizes). Each cell
 * is warmed up, then timed in runs of a fixed number of training steps plus one inference pass,
 * until both a minimum time and a minimum count are reached (DESIGN.md §5). The backends of one
 * (model, batch) group are run in time-balanced rounds: in each round every backend runs for
 * about as long as the slowest backend's single run (a fast backend repeats its run), so that
 * the shared machine's swings — on this host a 1-thread backend's speed moves by ~20% between
 * stretches of seconds — touch every backend of a round alike, and the within-run ratios
 * (blas / naive), taken per round, stay comparable between runs. One run each per round would
 * compare a 0.4 s snapshot of blas with 7 s of naive.
 * Beside the median of per-round ratios, every speed-up is also given "uncontended": the upper
 * quartile of each backend's per-round speeds, divided. Contention from the host's other tenants
 * only ever slows a run down, and here it comes and goes in stretches of tens of seconds that hit
 * the two vCPUs independently; the median ratio moves with the share of the window the neighbours
 * happened to be busy (13% between two back-to-back runs), while the speed each backend reaches
 * when left alone does not (0.2% in the same pair). results/bench-repeat/README.md has the data.
 * A separate pass through the profiling proxy gives the per-kernel-family breakdown; throughput
 * is never measured through the proxy, whose synchronizations would distort it. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bench.h"
#include "commands.h"
#include "data.h"
#include "distributed.h"
#include "loader.h"
#include "machine.h"
#include "model.h"
#include "options.h"
#include "openblas_core.h"
#include "profiler.h"
#include "results.h"
#include "runctx.h"
#include "train.h"
#include "util.h"

enum { EXIT_USAGE = 2 };
static void usage(FILE *f) {
    fprintf(f,
        "usage: cnnbench bench [options]\n"
        "\n"
        "Times training and inference for every backend x model (x batch size) cell: warm-up,\n"
        "then runs until both --min-time and --min-runs are reached. Reports min / median / max\n"
        "/ MAD images per second, a per-kernel-family breakdown, the harness overhead outside\n"
        "kernels, and ratios between backends measured in the same run: the median of per-round\n"
        "ratios, and the uncontended ratio (upper quartiles of per-round speeds), which holds\n"
        "still on a shared host whose neighbours come and go.\n"
        "\n"
        "  --backends LIST       backends (default: every known one that loads here); NAME:nofusion\n"
        "                        is NAME with --no-fusion, timed in the same rounds\n"
        "  --model LIST          models (default simplecnn)\n"
        "  --batch LIST          training batch sizes (default: each model's own)\n"
        "  --min-time S          minimum timed seconds per cell (default 3)\n"
        "  --min-runs N          minimum timed runs per cell (default 150); the slowest backend\n"
        "                        runs once per round, so this is also the number of rounds\n"
        "  --max-runs N          stop a cell after N runs even if --min-time is not reached (6000)\n"
        "  --warmup N            untimed runs first (default 1)\n"
        "  --steps-per-run N     training steps in one run (default 1)\n"
        "  --infer-images N      images in the inference pass of one run (default 64)\n"
        "  --eval-batch N        inference batch (default: the training batch)\n"
        "  --profile-runs N      runs of the profiled pass for the breakdown (default 40)\n"
        "  --no-breakdown        skip the profiled pass\n"
        "  --settle-ms N         untimed pause before each backend's turn in a round (default %d;\n"
        "                        0: none): a thread pool the previous backend left spinning\n"
        "                        (libgomp spins ~5 ms after each parallel region) would\n"
        "                        otherwise take cores from the next one\n"
        "  --no-fusion           separate kernels only, never the backends' fused ones\n"
        "  --direct-conv         convolution by direct or GEMM-based algorithms only (no\n"
        "                        Winograd or FFT)\n"
        "  --quick               short bounded run for CI: min-time 0.5, min-runs 5, max-runs 30,\n"
        "                        warmup 1, 10 steps per run, 200 inference images, 1 profile run\n"
        "  --threads N           CPU backend threads (default: all cores)\n"
        "  --seed N              seed (default 42)\n"
        "  --dataset NAME, --data PATH   as for training (default fashion-mnist)\n"
        "  --out FILE            results JSON (default cnnbench-bench.json)\n"
        "  --csv FILE            also write one CSV row per cell\n"
        "  --gab FILE            also write github-action-benchmark customBiggerIsBetter JSON\n"
        "  --quiet               only the tables\n",
        BENCH_DEFAULT_SETTLE_MS);
}

#define BENCH_PROG "cnnbench bench"

enum { O_MIN_TIME = 256, O_MIN_RUNS, O_MAX_RUNS, O_WARMUP, O_STEPS, O_INFER, O_EVAL_BATCH,
       O_PROFILE_RUNS, O_NO_BREAKDOWN, O_QUICK, O_CSV, O_GAB, O_NO_FUSION, O_SETTLE,
       O_DIRECT_CONV };

static const struct option bench_flags[] = {
    {"min-time", required_argument, 0, O_MIN_TIME}, {"min-runs", required_argument, 0, O_MIN_RUNS},
    {"max-runs", required_argument, 0, O_MAX_RUNS}, {"warmup", required_argument, 0, O_WARMUP},
    {"steps-per-run", required_argument, 0, O_STEPS},
    {"infer-images", required_argument, 0, O_INFER},
    {"eval-batch", required_argument, 0, O_EVAL_BATCH},
    {"profile-runs", required_argument, 0, O_PROFILE_RUNS},
    {"no-breakdown", no_argument, 0, O_NO_BREAKDOWN}, {"quick", no_argument, 0, O_QUICK},
    {"csv", required_argument, 0, O_CSV}, {"gab", required_argument, 0, O_GAB},
    {"no-fusion", no_argument, 0, O_NO_FUSION}, {"settle-ms", required_argument, 0, O_SETTLE},
    {"direct-conv", no_argument, 0, O_DIRECT_CONV},
    {0, 0, 0, 0}};

/* The schedule's knobs: the defaults, --quick's, and what the command line set (-1: not set). */
typedef struct bn_knobs {
    double min_time;
    int min_runs, max_runs, warmup, steps_per_run, infer_images, profile_runs;
} bn_knobs;

/* Many short rounds rather than a few long ones: the upper quartile of per-round speeds (the
 * uncontended figure) needs many rounds to be sharp, and a naive run of one step (~0.5 s on
 * simplecnn) is about as long as the host's fast and slow stretches last. 150 rounds of 1 step +
 * 64 inference images keep naive,blas on simplecnn near three minutes with the breakdown (40
 * profiled steps); results/bench-repeat/README.md has the measurements behind this. */
static const bn_knobs default_knobs = {3.0, 150, 6000, 1, 1, 64, 40};
/* --quick: a short bounded run for CI; explicit flags given with it still win. */
static const bn_knobs quick_knobs = {0.5, 5, 30, 1, 10, 200, 1};

typedef struct bn_parse {
    bn_opts *o;
    bn_knobs set;
} bn_parse;

static int on_bench_flag(void *user, int id, const char *arg) {
    bn_parse *p = user;
    bn_knobs *k = &p->set;
    long v = 0;
    int bad = 0;
    switch (id) {
    case O_MIN_TIME: return cnb_opt_double(BENCH_PROG, "--min-time", arg, 0, 86400, &k->min_time);
    case O_MIN_RUNS: bad = cnb_opt_long(BENCH_PROG, "--min-runs", arg, 1, MAX_RUNS, &v); k->min_runs = (int)v; break;
    case O_MAX_RUNS: bad = cnb_opt_long(BENCH_PROG, "--max-runs", arg, 1, MAX_RUNS, &v); k->max_runs = (int)v; break;
    case O_WARMUP: bad = cnb_opt_long(BENCH_PROG, "--warmup", arg, 0, 1000, &v); k->warmup = (int)v; break;
    case O_STEPS: bad = cnb_opt_long(BENCH_PROG, "--steps-per-run", arg, 1, 100000, &v); k->steps_per_run = (int)v; break;
    case O_INFER: bad = cnb_opt_long(BENCH_PROG, "--infer-images", arg, 1, 10000, &v); k->infer_images = (int)v; break;
    case O_PROFILE_RUNS: bad = cnb_opt_long(BENCH_PROG, "--profile-runs", arg, 1, 1000, &v); k->profile_runs = (int)v; break;
    case O_EVAL_BATCH:
        bad = cnb_opt_long(BENCH_PROG, "--eval-batch", arg, 1, CNB_OPT_MAX_BATCH, &v);
        p->o->eval_batch = (int)v;
        break;
    case O_NO_BREAKDOWN: p->o->breakdown = 0; break;
    case O_QUICK: p->o->quick = 1; break;
    case O_CSV: p->o->csv = arg; break;
    case O_GAB: p->o->gab = arg; break;
    case O_NO_FUSION: p->o->no_fusion = 1; break;
    case O_DIRECT_CONV: p->o->direct_conv = 1; break;
    case O_SETTLE:
        bad = cnb_opt_long(BENCH_PROG, "--settle-ms", arg, 0, 10000, &v);
        p->o->settle_ms = (int)v;
        break;
    default: return -1;
    }
    return bad;
}

static int parse_opts(int argc, char **argv, bn_opts *o) {
    *o = (bn_opts){.breakdown = 1, .seed = 42, .out = "cnnbench-bench.json",
                   .settle_ms = BENCH_DEFAULT_SETTLE_MS};
    bn_parse p = {.o = o, .set = {-1, -1, -1, -1, -1, -1, -1}};
    cnb_common_opts *co = &o->common;
    int rc = cnb_parse_options(BENCH_PROG, argc, argv,
                               CNB_OPT_BACKENDS | CNB_OPT_MODELS | CNB_OPT_BATCH | CNB_OPT_SEED |
                                   CNB_OPT_THREADS | CNB_OPT_DATA | CNB_OPT_OUT | CNB_OPT_QUIET,
                               bench_flags, on_bench_flag, &p, usage, co, NULL);
    if (rc != 0) return rc;
    const bn_knobs *base = o->quick ? &quick_knobs : &default_knobs;
    o->min_time = p.set.min_time >= 0 ? p.set.min_time : base->min_time;
    o->min_runs = p.set.min_runs >= 0 ? p.set.min_runs : base->min_runs;
    o->max_runs = p.set.max_runs >= 0 ? p.set.max_runs : base->max_runs;
    o->warmup = p.set.warmup >= 0 ? p.set.warmup : base->warmup;
    o->steps_per_run = p.set.steps_per_run >= 0 ? p.set.steps_per_run : base->steps_per_run;
    o->infer_images = p.set.infer_images >= 0 ? p.set.infer_images : base->infer_images;
    o->profile_runs = p.set.profile_runs >= 0 ? p.set.profile_runs : base->profile_runs;
    if (o->max_runs < o->min_runs) o->max_runs = o->min_runs;
    CNB_TAKE_COMMON_OPTS(o, co);
    for (int i = 0; i < co->n_batches; i++) o->batches[i] = co->batches[i];
    o->n_batches = co->n_batches;
    return 0;
}

/* ---- the verb ---- */

static void free_cells(bn_cell *cells, int n) {
    for (int i = 0; cells && i < n; i++) {
        cnb_trainer_destroy(cells[i].t);
        free(cells[i].params0);
        free(cells[i].train_ips);
        free(cells[i].infer_ips);
        free(cells[i].step_ms);
        free(cells[i].round_end);
    }
    free(cells);
}

/* The named models, or simplecnn; the count, or -1 (printed). */
static int load_models(bn_opts *o, cnb_model **models) {
    if (o->n_models == 0) {
        o->models[0] = "simplecnn";
        o->n_models = 1;
    }
    char err[CNB_ERR_LEN];
    for (int i = 0; i < o->n_models; i++) {
        char path[PATH_MAX];
        cnb_model *m = calloc(1, sizeof *m);
        if (!m || cnb_model_resolve(o->models[i], path, sizeof path, err, sizeof err) != 0 ||
            cnb_model_load(path, m, NULL, err, sizeof err) != 0) {
            fprintf(stderr, BENCH_PROG ": --model %s: %s\n", o->models[i],
                    m ? err : "out of memory");
            free(m);
            for (int j = 0; j < i; j++) free(models[j]);
            return -1;
        }
        models[i] = m;
    }
    return o->n_models;
}

/* Every named backend (default: every known one); one that cannot run here stays, unusable,
 * with its reason, so its cells say SKIPPED. */
static bn_backend *open_backends(bn_opts *o, const cnb_config *cfg, int *nb) {
    if (o->n_backends == 0) {
        o->n_backends = cnb_known_backend_count < CNB_MAX_LIST ? cnb_known_backend_count
                                                                : CNB_MAX_LIST;
        for (int i = 0; i < o->n_backends; i++) o->backends[i] = (char *)cnb_known_backends[i];
    }
    bn_backend *backends = calloc((size_t)o->n_backends, sizeof *backends);
    if (!backends) return NULL;
    *nb = o->n_backends;
    for (int i = 0; i < *nb; i++) {
        bn_backend *b = &backends[i];
        b->name = o->backends[i];
        size_t len = strlen(b->name), sl = strlen(NOFUSION_SUFFIX);
        if (len > sl && strcmp(b->name + len - sl, NOFUSION_SUFFIX) == 0) {
            b->no_fusion = 1;
            o->backends[i][len - sl] = '\0'; /* open the backend by its own name */
        }
        int opened = cnb_open_backend(b->name, cfg, &b->lib, &b->ctx, b->why, sizeof b->why);
        b->is_gpu = b->lib.device_kind == CNB_DEVICE_GPU;
        if (opened != 0) {
            if (!o->quiet) printf("SKIPPED backend %s: %s\n", b->name, b->why);
            continue;
        }
        b->usable = 1;
        snprintf(b->label, sizeof b->label, "%s%s", b->lib.api->name,
                 b->no_fusion ? NOFUSION_SUFFIX : "");
        b->name = b->label;
        cnb_backend_info(b->lib.api, b->ctx, cnb_info_collect, &b->info);
        const char *mismatch = cnb_info_get(&b->info, "version_mismatch");
        if (mismatch) fprintf(stderr, "warning: %s: %s\n", b->name, mismatch);
        if (!o->quiet)
            cnb_openblas_note(b->name, cnb_info_get(&b->info, "openblas.corename"), stdout);
        cnb_test_faults_env(b->name, b->fault_env, sizeof b->fault_env);
        if (b->fault_env[0])
            fprintf(stderr, BENCH_PROG ": TEST FAULT ACTIVE for %s: %s\n", b->name, b->fault_env);
    }
    return backends;
}

static bn_cell *alloc_cells(int n) {
    bn_cell *cells = n > 0 ? calloc((size_t)n, sizeof *cells) : NULL;
    for (int i = 0; cells && i < n; i++) {
        cells[i].train_ips = malloc(MAX_RUNS * sizeof(double));
        cells[i].infer_ips = malloc(MAX_RUNS * sizeof(double));
        cells[i].step_ms = malloc(MAX_RUNS * sizeof(double));
        cells[i].round_end = malloc(MAX_RUNS * sizeof(int));
        if (!cells[i].train_ips || !cells[i].infer_ips || !cells[i].step_ms ||
            !cells[i].round_end) {
            free_cells(cells, n);
            return NULL;
        }
    }
    return cells;
}

/* Says where one output file went, or why it was not saved (then 1). */
static int said_saved(int write_rc, const char *what, const char *label, const char *path,
                      const char *err) {
    if (write_rc != 0) {
        fprintf(stderr, BENCH_PROG ": %s not saved: %s\n", what, err);
        return 1;
    }
    printf("%s: %s\n", label, path);
    return 0;
}

/* The results JSON, and the CSV and github-action-benchmark files when asked for; 0 or 1. */
static int write_outputs(const bn_opts *o, const cJSON *root, bn_cell *cells, int n_cells,
                         double *buf) {
    char err[CNB_ERR_LEN];
    int rc = 0;
    rc |= said_saved(cnb_write_json(o->out, root, err, sizeof err), "results", "results",
                     o->out, err);
    if (o->csv)
        rc |= said_saved(bench_write_csv(o->csv, cells, n_cells, buf, err, sizeof err), "CSV",
                         "csv", o->csv, err);
    if (o->gab)
        rc |= said_saved(bench_write_gab(o->gab, cells, n_cells, buf, err, sizeof err),
                         "benchmark-action file", "github-action-benchmark", o->gab, err);
    return rc;
}

int cnb_cmd_bench(int argc, char **argv) {
    /* Under mpirun the question is scaling, not the single-process matrix (bench_dist.c). */
    if (cnb_dist_size(cnb_dist_world()) > 1) return cnb_cmd_bench_distributed(argc, argv);
    static bn_opts o;
    int prc = parse_opts(argc, argv, &o);
    if (prc != 0) return prc > 0 ? 0 : EXIT_USAGE;
    int rc = EXIT_USAGE;
    char err[CNB_ERR_LEN];
    cnb_machine mc;
    cnb_machine_probe(&mc);
    int threads = o.threads ? o.threads : (mc.cores > 0 ? mc.cores : 1);
    cnb_config cfg = {.size = sizeof cfg, .threads = threads, .direct_conv = o.direct_conv};
    cnb_model *models[CNB_MAX_LIST] = {0};
    int n_models = 0;
    bn_backend *backends = NULL;
    int nb = 0;
    bn_cell *cells = NULL;
    int n_cells = 0;
    cnb_dataset train = {0}, test = {0};
    cnb_run_result *r = calloc(1, sizeof *r);
    double *buf = malloc(MAX_RUNS * sizeof(double));
    cJSON *root = NULL;
    if (!r || !buf) goto done;

    n_models = load_models(&o, models);
    if (n_models < 0) goto done;
    backends = open_backends(&o, &cfg, &nb);
    if (!backends) goto done;

    /* data: enough training images for one run of the largest batch, and the inference set */
    int n_batches = o.n_batches ? o.n_batches : 1;
    long need = 0;
    for (int i = 0; i < n_models; i++)
        for (int j = 0; j < n_batches; j++) {
            long bsz = o.n_batches ? o.batches[j] : models[i]->batch;
            if (bsz * o.steps_per_run > need) need = bsz * o.steps_per_run;
        }
    if (need > INT_MAX) need = INT_MAX;
    const char *kind = o.dataset ? o.dataset : "fashion-mnist";
    if (cnb_dataset_open(kind, o.data, (int)need, o.infer_images, &train, &test, err, sizeof err) != 0) {
        fprintf(stderr, "cnnbench bench: data: %s\n", err);
        goto done;
    }

    n_cells = n_models * n_batches * nb;
    cells = alloc_cells(n_cells);
    if (!cells) goto done;
    if (!o.quiet)
        printf("cnnbench bench: %d threads, min %.2g s and %d runs per cell (at most %d), %d "
               "warm-up run(s); backends of a group run in time-balanced rounds\n",
               threads, o.min_time, o.min_runs, o.max_runs, o.warmup);

    int any_failed = 0;
    for (int mi = 0; mi < n_models; mi++)
        for (int bj = 0; bj < n_batches; bj++) {
            bn_cell *g = &cells[(mi * n_batches + bj) * nb];
            int batch = o.n_batches ? o.batches[bj] : models[mi]->batch;
            cnb_dataset view = train;
            long want = (long)batch * o.steps_per_run;
            if (view.count > want) view.count = (int)want;
            bench_prepare_group(g, nb, backends, models[mi], batch, &o, &view, &test);
            bench_run_group(g, nb, &o, &view, &test, r);
            for (int k = 0; k < nb; k++) any_failed |= g[k].status == 2;
        }

    for (int mi = 0; mi < n_models; mi++)
        for (int bj = 0; bj < n_batches; bj++) {
            bn_cell *g = &cells[(mi * n_batches + bj) * nb];
            bench_print_group(g, nb, &o, stdout);
            bench_print_ratios(g, nb, stdout, buf);
        }
    printf("note: compare runs by the within-run ratios; absolute images/s on a shared machine "
           "swing by tens of percent between runs\n");

    for (int k = 0; k < nb; k++)
        if (backends[k].usable) cnb_info_refresh(&backends[k].info, backends[k].lib.api,
                                                 backends[k].ctx);
    root = bench_results_json(&o, argc, argv, threads, &mc, kind, test.count, backends, nb, cells,
                              n_cells, buf);
    rc = write_outputs(&o, root, cells, n_cells, buf);
    if (any_failed) rc = 1;
done:
    cJSON_Delete(root);
    free_cells(cells, n_cells);
    for (int i = 0; i < nb; i++)
        if (backends[i].usable) cnb_close_backend(&backends[i].lib, backends[i].ctx);
    free(backends);
    cnb_dataset_free(&train);
    cnb_dataset_free(&test);
    if (r) cnb_run_result_free(r);
    free(r);
    free(buf);
    for (int i = 0; i < n_models; i++) free(models[i]);
    return rc;
}
