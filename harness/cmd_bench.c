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

#include "commands.h"
#include "data.h"
#include "loader.h"
#include "machine.h"
#include "model.h"
#include "profiler.h"
#include "results.h"
#include "runctx.h"
#include "train.h"
#include "util.h"

enum { EXIT_USAGE = 2 };
#define MAX_RUNS 10000
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
    uint64_t seed;
    const char *out, *csv, *gab, *dataset, *data;
} bn_opts;

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
        "  --no-fusion           separate kernels only, never the backends' fused ones\n"
        "  --quick               short bounded run for CI: min-time 0.5, min-runs 5, max-runs 30,\n"
        "                        warmup 1, 10 steps per run, 200 inference images, 1 profile run\n"
        "  --threads N           CPU backend threads (default: all cores)\n"
        "  --seed N              seed (default 42)\n"
        "  --dataset NAME, --data PATH   as for training (default fashion-mnist)\n"
        "  --out FILE            results JSON (default cnnbench-bench.json)\n"
        "  --csv FILE            also write one CSV row per cell\n"
        "  --gab FILE            also write github-action-benchmark customBiggerIsBetter JSON\n"
        "  --quiet               only the tables\n");
}

static int parse_long_opt(const char *flag, const char *s, long lo, long hi, long *out) {
    return cnb_parse_long_flag("cnnbench bench", flag, s, lo, hi, out);
}

static int parse_opts(int argc, char **argv, bn_opts *o, char *lists) {
    enum { O_BACKENDS = 256, O_MODEL, O_BATCH, O_MIN_TIME, O_MIN_RUNS, O_MAX_RUNS, O_WARMUP,
           O_STEPS, O_INFER, O_EVAL_BATCH, O_PROFILE_RUNS, O_NO_BREAKDOWN, O_QUICK, O_THREADS,
           O_SEED, O_DATASET, O_DATA, O_OUT, O_CSV, O_GAB, O_QUIET, O_HELP, O_NO_FUSION };
    static const struct option opts[] = {
        {"backends", required_argument, 0, O_BACKENDS}, {"backend", required_argument, 0, O_BACKENDS},
        {"model", required_argument, 0, O_MODEL}, {"models", required_argument, 0, O_MODEL},
        {"batch", required_argument, 0, O_BATCH}, {"min-time", required_argument, 0, O_MIN_TIME},
        {"min-runs", required_argument, 0, O_MIN_RUNS}, {"max-runs", required_argument, 0, O_MAX_RUNS},
        {"warmup", required_argument, 0, O_WARMUP}, {"steps-per-run", required_argument, 0, O_STEPS},
        {"infer-images", required_argument, 0, O_INFER},
        {"eval-batch", required_argument, 0, O_EVAL_BATCH},
        {"profile-runs", required_argument, 0, O_PROFILE_RUNS},
        {"no-breakdown", no_argument, 0, O_NO_BREAKDOWN}, {"quick", no_argument, 0, O_QUICK},
        {"no-fusion", no_argument, 0, O_NO_FUSION},
        {"threads", required_argument, 0, O_THREADS}, {"seed", required_argument, 0, O_SEED},
        {"dataset", required_argument, 0, O_DATASET}, {"data", required_argument, 0, O_DATA},
        {"out", required_argument, 0, O_OUT}, {"csv", required_argument, 0, O_CSV},
        {"gab", required_argument, 0, O_GAB}, {"quiet", no_argument, 0, O_QUIET},
        {"help", no_argument, 0, O_HELP}, {0, 0, 0, 0}};
    /* Many short rounds rather than a few long ones: the upper quartile of per-round speeds (the
     * uncontended figure) needs many rounds to be sharp, and a naive run of one step (~0.5 s on
     * simplecnn) is about as long as the host's fast and slow stretches last. 150 rounds of 1 step
     * + 64 inference images keep naive,blas on simplecnn near three minutes with the breakdown
     * (40 profiled steps); results/bench-repeat/README.md has the measurements behind this. */
    *o = (bn_opts){.min_time = 3.0, .min_runs = 150, .max_runs = 6000, .warmup = 1,
                   .steps_per_run = 1, .infer_images = 64, .profile_runs = 40, .breakdown = 1,
                   .seed = 42, .out = "cnnbench-bench.json"};
    /* --quick first, so that explicit flags given with it still win */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--quick") == 0) {
            o->quick = 1;
            o->min_time = 0.5;
            o->min_runs = 5;
            o->max_runs = 30;
            o->warmup = 1;
            o->steps_per_run = 10;
            o->infer_images = 200;
            o->profile_runs = 1;
        }
    long v;
    optind = 0;
    opterr = 0;
    char *bl = lists, *ml = lists + 4096, *batl = lists + 8192;
    for (;;) {
        int c = getopt_long(argc, argv, "h", opts, NULL);
        if (c == -1) break;
        switch (c) {
        case O_BACKENDS:
            snprintf(bl, 4096, "%s", optarg);
            if ((o->n_backends = cnb_split_list(bl, o->backends, CNB_MAX_LIST)) < 0) {
                fprintf(stderr, "cnnbench bench: --backends: '%s' is not a comma list\n", optarg);
                return -1;
            }
            break;
        case O_MODEL:
            snprintf(ml, 4096, "%s", optarg);
            if ((o->n_models = cnb_split_list(ml, o->models, CNB_MAX_LIST)) < 0) {
                fprintf(stderr, "cnnbench bench: --model: '%s' is not a comma list\n", optarg);
                return -1;
            }
            break;
        case O_BATCH: {
            snprintf(batl, 4096, "%s", optarg);
            char *items[CNB_MAX_LIST];
            int n = cnb_split_list(batl, items, CNB_MAX_LIST);
            if (n < 0) {
                fprintf(stderr, "cnnbench bench: --batch: '%s' is not a comma list\n", optarg);
                return -1;
            }
            for (int i = 0; i < n; i++) {
                if (parse_long_opt("--batch", items[i], 1, 1 << 16, &v)) return -1;
                o->batches[i] = (int)v;
            }
            o->n_batches = n;
            break;
        }
        case O_MIN_TIME: {
            char *end;
            o->min_time = strtod(optarg, &end);
            if (end == optarg || *end || !(o->min_time >= 0) || o->min_time > 86400) {
                fprintf(stderr, "cnnbench bench: --min-time: '%s' is not seconds in [0, 86400]\n",
                        optarg);
                return -1;
            }
            break;
        }
        case O_MIN_RUNS:
            if (parse_long_opt("--min-runs", optarg, 1, MAX_RUNS, &v)) return -1;
            o->min_runs = (int)v;
            break;
        case O_MAX_RUNS:
            if (parse_long_opt("--max-runs", optarg, 1, MAX_RUNS, &v)) return -1;
            o->max_runs = (int)v;
            break;
        case O_WARMUP:
            if (parse_long_opt("--warmup", optarg, 0, 1000, &v)) return -1;
            o->warmup = (int)v;
            break;
        case O_STEPS:
            if (parse_long_opt("--steps-per-run", optarg, 1, 100000, &v)) return -1;
            o->steps_per_run = (int)v;
            break;
        case O_INFER:
            if (parse_long_opt("--infer-images", optarg, 1, 10000, &v)) return -1;
            o->infer_images = (int)v;
            break;
        case O_EVAL_BATCH:
            if (parse_long_opt("--eval-batch", optarg, 1, 1 << 16, &v)) return -1;
            o->eval_batch = (int)v;
            break;
        case O_PROFILE_RUNS:
            if (parse_long_opt("--profile-runs", optarg, 1, 1000, &v)) return -1;
            o->profile_runs = (int)v;
            break;
        case O_NO_BREAKDOWN: o->breakdown = 0; break;
        case O_QUICK: break;
        case O_THREADS:
            if (parse_long_opt("--threads", optarg, 1, 4096, &v)) return -1;
            o->threads = (int)v;
            break;
        case O_SEED:
            if (parse_long_opt("--seed", optarg, 0, LONG_MAX, &v)) return -1;
            o->seed = (uint64_t)v;
            break;
        case O_DATASET: o->dataset = optarg; break;
        case O_DATA: o->data = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_CSV: o->csv = optarg; break;
        case O_GAB: o->gab = optarg; break;
        case O_QUIET: o->quiet = 1; break;
        case O_NO_FUSION: o->no_fusion = 1; break;
        case O_HELP: case 'h': usage(stdout); return 1;
        default:
            fprintf(stderr, "cnnbench bench: unknown option or missing value: '%s'\n",
                    argv[optind - 1]);
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "cnnbench bench: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (o->max_runs < o->min_runs) o->max_runs = o->min_runs;
    return 0;
}

/* ---- one cell ---- */

static void settings_for(const bn_opts *o, const bn_backend *b, const cnb_model *m, int batch,
                         cnb_run_settings *s) {
    cnb_settings_from_model(m, s);
    s->batch = batch;
    s->eval_batch = o->eval_batch ? o->eval_batch : batch;
    s->epochs = 1;
    s->max_steps = o->steps_per_run;
    s->seed = o->seed;
    s->no_fusion = o->no_fusion || b->no_fusion;
}

/* Remember where a fresh trainer stands, to start every run from there. */
static int trainer_mark(cnb_trainer *t, const cnb_model *m, cnb_train_state *st, float **params,
                        char *err, size_t err_len) {
    cnb_trainer_get_state(t, st);
    *params = malloc((m->n_params ? m->n_params : 1) * sizeof(float));
    if (!*params) return cnb_errf(err, err_len, "out of host memory");
    return cnb_trainer_get_tensors(t, *params, NULL, NULL, err, err_len);
}

/* Back to the marked position and weights with a fresh optimizer: each run is the same work. */
static int trainer_rewind(cnb_trainer *t, const cnb_train_state *st, const float *params,
                          char *err, size_t err_len) {
    if (cnb_trainer_set_state(t, st, err, err_len) != 0) return -1;
    return cnb_trainer_set_tensors(t, params, NULL, NULL, err, err_len);
}

/* One run: steps_per_run training steps, then one inference pass over the test view. */
static int cell_run(bn_cell *c, cnb_run_result *r, double *train_ips, double *infer_ips,
                    double *step_ms, double *seconds) {
    cnb_run_result_free(r);
    memset(r, 0, sizeof *r);
    char err[CNB_ERR_LEN];
    if (trainer_rewind(c->t, &c->start, c->params0, err, sizeof err) != 0) {
        snprintf(c->why, sizeof c->why, "cannot start a run: %.1000s", err);
        return -1;
    }
    double t0 = cnb_now();
    if (cnb_trainer_run(c->t, r) != 0 || r->epochs_done < 1) {
        snprintf(c->why, sizeof c->why, "run failed: %.1000s", r->message);
        return -1;
    }
    *seconds = cnb_now() - t0;
    const cnb_epoch_metrics *e = &r->epoch[0];
    *train_ips = e->train_images_per_s;
    *infer_ips = e->infer_images_per_s;
    *step_ms = e->steps ? 1000.0 * e->train_seconds / (double)e->steps : 0.0;
    return 0;
}

static int cell_profile(bn_cell *c, const bn_opts *o, const cnb_dataset *train,
                        const cnb_dataset *test, cnb_run_result *r) {
    cnb_profiler *p = malloc(sizeof *p);
    if (!p) return -1;
    cnb_profiler_init(p, c->b->lib.api, c->b->ctx, 1);
    cnb_run_settings s;
    settings_for(o, c->b, c->m, c->batch, &s);
    cnb_trainer *t = NULL;
    char err[CNB_ERR_LEN];
    int rc = 0;
    if (cnb_trainer_create(cnb_profiler_api(p), cnb_profiler_ctx(p), c->m, train, test, &s, &t,
                           err, sizeof err) != 0) {
        fprintf(stderr, "cnnbench bench: %s on %s: profiled pass: %s\n", c->m->name, c->b->name,
                err);
        cnb_profiler_release(p);
        free(p);
        return -1;
    }
    c->timing = cnb_profiler_timing_method(p);
    memset(&c->train_k, 0, sizeof c->train_k);
    memset(&c->infer_k, 0, sizeof c->infer_k);
    cnb_train_state st0;
    float *params0 = NULL;
    if (trainer_mark(t, c->m, &st0, &params0, err, sizeof err) != 0) rc = -1;
    for (int run = 0; run < 1 + o->profile_runs && rc == 0; run++) { /* run 0 warms up */
        cnb_run_result_free(r);
        memset(r, 0, sizeof *r);
        if (trainer_rewind(t, &st0, params0, err, sizeof err) != 0) {
            fprintf(stderr, "cnnbench bench: %s on %s: profiled pass: %s\n", c->m->name,
                    c->b->name, err);
            rc = -1;
            break;
        }
        cnb_profiler_reset(p);
        if (cnb_trainer_run(t, r) != 0 || r->epochs_done < 1) {
            fprintf(stderr, "cnnbench bench: %s on %s: profiled run failed: %s\n", c->m->name,
                    c->b->name, r->message);
            rc = -1;
            break;
        }
        cnb_profiler_flush(p); /* the evaluation's timer pairs, into pending */
        if (run == 0) continue;
        for (int f = 0; f < CNB_KF_COUNT; f++) {
            c->train_k.seconds[f] += p->train.seconds[f];
            c->train_k.calls[f] += p->train.calls[f];
            c->infer_k.seconds[f] += p->pending.seconds[f]; /* after the last optimizer step */
            c->infer_k.calls[f] += p->pending.calls[f];
        }
        c->profiled_steps += r->epoch[0].steps;
        c->profiled_runs++;
        c->profiled_train_seconds += r->epoch[0].train_seconds;
        c->profiled_infer_seconds += r->epoch[0].eval_seconds;
    }
    if (p->timer_errors)
        fprintf(stderr, "cnnbench bench: %s on %s: %ld timer calls failed in the profiled pass "
                "(those kernels counted, not timed): %s\n", c->m->name, c->b->name,
                p->timer_errors, c->b->lib.api->last_error(c->b->ctx));
    cnb_trainer_destroy(t);
    free(params0);
    cnb_profiler_release(p);
    free(p);
    return rc;
}

static double ksum(const cnb_kernel_times *k) {
    double s = 0;
    for (int f = 0; f < CNB_KF_COUNT; f++) s += k->seconds[f];
    return s;
}

/* ---- statistics ---- */

static int outliers(const double *x, int n, const cnb_summary *s, int *idx, int max) {
    int k = 0;
    for (int i = 0; i < n; i++)
        if (s->mad > 0 && fabs(x[i] - s->median) > OUTLIER_MADS * s->mad && k < max) idx[k++] = i;
    return k;
}

static cJSON *summary_json(const double *x, int n) {
    cnb_summary s;
    cnb_summarize(x, n, &s);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "min", s.min);
    cJSON_AddNumberToObject(o, "median", s.median);
    cJSON_AddNumberToObject(o, "max", s.max);
    cJSON_AddNumberToObject(o, "mad", s.mad);
    cJSON_AddNumberToObject(o, "samples", s.n);
    cJSON *v = cJSON_AddArrayToObject(o, "values");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(v, cJSON_CreateNumber(x[i]));
    int idx[MAX_RUNS];
    int k = outliers(x, n, &s, idx, MAX_RUNS);
    cJSON *ol = cJSON_AddArrayToObject(o, "outliers");
    for (int i = 0; i < k; i++) cJSON_AddItemToArray(ol, cJSON_CreateNumber(idx[i]));
    return o;
}

static double median_of(const double *x, int n) {
    cnb_summary s;
    cnb_summarize(x, n, &s);
    return s.median;
}

/* Median of a cell's samples in round r (0 when it has none there). */
static double round_median(const bn_cell *c, int r, int infer) {
    if (r >= c->rounds) return 0.0;
    int from = r ? c->round_end[r - 1] : 0, n = c->round_end[r] - from;
    return n > 0 ? median_of((infer ? c->infer_ips : c->train_ips) + from, n) : 0.0;
}

/* Ratio samples, one per round both cells ran in (side by side): the median of a's runs in the
 * round over the median of b's. */
static int ratio_samples(const bn_cell *a, const bn_cell *b, int infer, double *out) {
    int rounds = a->rounds < b->rounds ? a->rounds : b->rounds, n = 0;
    for (int r = 0; r < rounds; r++) {
        double x = round_median(a, r, infer), y = round_median(b, r, infer);
        if (x > 0 && y > 0) out[n++] = x / y;
    }
    return n;
}

/* The upper quartile of a cell's per-round speeds over the first `rounds` rounds: the speed it
 * reaches when the host's other tenants leave it alone (they only ever slow a run down). */
#define UNCONTENDED_QUANTILE 0.75
static double uncontended_speed(const bn_cell *c, int rounds, int infer, double *buf) {
    int n = 0;
    for (int r = 0; r < rounds; r++) {
        double x = round_median(c, r, infer);
        if (x > 0) buf[n++] = x;
    }
    return cnb_quantile(buf, n, UNCONTENDED_QUANTILE);
}

/* a's uncontended speed over b's, both over the rounds they both ran (0: no rounds). */
static double uncontended_ratio(const bn_cell *a, const bn_cell *b, int infer, double *buf) {
    int rounds = a->rounds < b->rounds ? a->rounds : b->rounds;
    double y = uncontended_speed(b, rounds, infer, buf);
    double x = uncontended_speed(a, rounds, infer, buf);
    return y > 0 ? x / y : 0.0;
}

static cJSON *ratio_json(const char *kind, const bn_cell *a, const bn_cell *b, double *buf) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", kind);
    cJSON_AddStringToObject(o, "model", a->m->name);
    cJSON_AddNumberToObject(o, "batch", a->batch);
    cJSON_AddStringToObject(o, "backend", a->b->name);
    cJSON_AddStringToObject(o, "baseline", b->b->name);
    int n = ratio_samples(a, b, 0, buf);
    cJSON_AddItemToObject(o, "train", summary_json(buf, n));
    n = ratio_samples(a, b, 1, buf);
    cJSON_AddItemToObject(o, "infer", summary_json(buf, n));
    cJSON *unc = cJSON_AddObjectToObject(o, "uncontended");
    cJSON_AddNumberToObject(unc, "train", uncontended_ratio(a, b, 0, buf));
    cJSON_AddNumberToObject(unc, "infer", uncontended_ratio(a, b, 1, buf));
    cJSON_AddNumberToObject(unc, "quantile", UNCONTENDED_QUANTILE);
    /* Best-of-runs ratio: the fastest run of each. Shown for reference; compare gates on the
     * per-round medians (a fast backend's many short runs let its fastest one catch the
     * machine's brief fast phases, so this ratio is the less steady one here). */
    cnb_summary sa, sb;
    cJSON *best = cJSON_AddObjectToObject(o, "best");
    cnb_summarize(a->train_ips, a->runs, &sa);
    cnb_summarize(b->train_ips, b->runs, &sb);
    cJSON_AddNumberToObject(best, "train", sb.max > 0 ? sa.max / sb.max : 0);
    cnb_summarize(a->infer_ips, a->runs, &sa);
    cnb_summarize(b->infer_ips, b->runs, &sb);
    cJSON_AddNumberToObject(best, "infer", sb.max > 0 ? sa.max / sb.max : 0);
    return o;
}

/* ---- printing ---- */

static int cell_disturbed(const bn_cell *c) {
    return c->load_known && (c->other_cores > CNB_LOAD_DISTURBED_CORES ||
                             c->steal_cores > CNB_LOAD_DISTURBED_CORES);
}

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
    if (cell_disturbed(c))
        fprintf(f, "  WARNING: the machine was busy (more than %.1f core of other work or steal): "
                   "speed-ups between backends with different thread counts shift under such "
                   "load; rerun on a quiet machine before trusting them\n",
                CNB_LOAD_DISTURBED_CORES);
}

static void print_group(const bn_cell *cells, int n, const bn_opts *o, FILE *f) {
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
        int ko = outliers(c->train_ips, c->runs, &t, idx, MAX_RUNS) +
                 outliers(c->infer_ips, c->runs, &inf, idx, MAX_RUNS);
        fprintf(f, "  %-8s %5d  %-40s  %-40s  %8.2f", c->b->name, c->runs, a, b, st.median);
        if (ko) fprintf(f, "  (%d outlier sample%s > %.0f MAD, kept)", ko, ko > 1 ? "s" : "",
                        OUTLIER_MADS);
        fprintf(f, "\n");
    }
    print_load(cells, n, f);
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
            double kern = ksum(&c->train_k) / c->profiled_steps;
            double v = r == 0 ? kern : r == 1 ? step - kern : step;
            fprintf(f, " %9.3f (%5.1f%%)", 1000 * v, step > 0 ? 100 * v / step : 0);
        }
        fprintf(f, "\n");
    }
}

static int is_gpu_name(const char *name) {
    return strcmp(name, "cuda") == 0 || strcmp(name, "cudnn") == 0;
}

/* Index of the CPU (gpu = 0) or GPU (gpu = 1) cell with the highest median training speed. */
static int best_cell(const bn_cell *cells, int n, int gpu) {
    int best = -1;
    double bv = -1;
    for (int i = 0; i < n; i++) {
        if (cells[i].status || cells[i].b->is_gpu != gpu) continue;
        double v = median_of(cells[i].train_ips, cells[i].runs);
        if (v > bv) {
            bv = v;
            best = i;
        }
    }
    return best;
}

static double median_ratio(const bn_cell *a, const bn_cell *b, int infer, double *buf) {
    return median_of(buf, ratio_samples(a, b, infer, buf));
}

typedef double (*speedup_fn)(const bn_cell *a, const bn_cell *b, int infer, double *buf);

/* One block of speed-ups (every backend vs naive and vs the best CPU backend, then CPU:GPU). */
static void print_speedups(const bn_cell *cells, int n, speedup_fn figure, FILE *f, double *buf) {
    int naive = -1;
    for (int i = 0; i < n; i++)
        if (!cells[i].status && strcmp(cells[i].b->name, "naive") == 0) naive = i;
    int bcpu = best_cell(cells, n, 0), bgpu = best_cell(cells, n, 1);
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

static void print_ratios(const bn_cell *cells, int n, FILE *f, double *buf) {
    fprintf(f, "  ratios (speed-ups, medians of per-round ratios: the figures to compare across "
               "runs):\n");
    print_speedups(cells, n, median_ratio, f, buf);
    fprintf(f, "  uncontended ratios (upper quartile of each backend's per-round speeds: its speed "
               "while the host's other tenants leave it alone; steadier on a shared host):\n");
    print_speedups(cells, n, uncontended_ratio, f, buf);
}

static void openblas_note(const bn_backend *b, const cnb_machine *mc, FILE *f) {
    const char *core = cnb_info_get(&b->info, "openblas.corename");
    if (!core || !mc->has_avx512f) return;
    const char *avx512[] = {"skylakex", "cooperlake", "sapphirerapids"};
    for (int i = 0; i < 3; i++)
        if (strcasecmp(core, avx512[i]) == 0) return;
    const char *env = getenv("OPENBLAS_CORETYPE");
    fprintf(f, "note: %s: OpenBLAS runs its %s kernels on this AVX-512 CPU%s%s%s; its sgemm runs "
               "at about half the speed the CPU allows (unset OPENBLAS_CORETYPE to let OpenBLAS "
               "choose)\n",
            b->name, core, env ? " (OPENBLAS_CORETYPE=" : "", env ? env : "", env ? " is set)" : "");
}

/* ---- exports ---- */

static int write_csv(const char *path, bn_cell *cells, int n, double *buf, char *err,
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
            snprintf(sp_t, sizeof sp_t, "%.4f", median_ratio(c, naive, 0, buf));
            snprintf(sp_i, sizeof sp_i, "%.4f", median_ratio(c, naive, 1, buf));
            snprintf(un_t, sizeof un_t, "%.4f", uncontended_ratio(c, naive, 0, buf));
            snprintf(un_i, sizeof un_i, "%.4f", uncontended_ratio(c, naive, 1, buf));
        }
        if (c->profiled_steps) {
            double kk = ksum(&c->train_k) / c->profiled_steps;
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

/* github-action-benchmark's customBiggerIsBetter: [{name, unit, value, range}], one entry per
 * measured figure; the within-run speed-ups are the ones worth alerting on. */
static int write_gab(const char *path, bn_cell *cells, int n, double *buf, char *err,
                     size_t err_len) {
    cJSON *arr = cJSON_CreateArray();
    char name[256], range[64];
    for (int i = 0; i < n; i++) {
        bn_cell *c = &cells[i];
        if (c->status) continue;
        const char *what[2] = {"train", "infer"};
        for (int w = 0; w < 2; w++) {
            cnb_summary s;
            cnb_summarize(w ? c->infer_ips : c->train_ips, c->runs, &s);
            cJSON *e = cJSON_CreateObject();
            snprintf(name, sizeof name, "%s/%s/batch%d %s images/s", c->m->name, c->b->name,
                     c->batch, what[w]);
            snprintf(range, sizeof range, "± %.2f", s.mad);
            cJSON_AddStringToObject(e, "name", name);
            cJSON_AddStringToObject(e, "unit", "images/s");
            cJSON_AddNumberToObject(e, "value", s.median);
            cJSON_AddStringToObject(e, "range", range);
            cJSON_AddItemToArray(arr, e);
        }
        for (int j = 0; j < n; j++) {
            const bn_cell *b = &cells[j];
            if (b->status || b == c || b->m != c->m || b->batch != c->batch ||
                strcmp(b->b->name, "naive") != 0)
                continue;
            for (int w = 0; w < 2; w++) {
                int k = ratio_samples(c, b, w, buf);
                cnb_summary s;
                cnb_summarize(buf, k, &s);
                cJSON *e = cJSON_CreateObject();
                snprintf(name, sizeof name, "%s/batch%d %s/naive %s speed-up", c->m->name,
                         c->batch, c->b->name, what[w]);
                snprintf(range, sizeof range, "± %.4f", s.mad);
                cJSON_AddStringToObject(e, "name", name);
                cJSON_AddStringToObject(e, "unit", "x");
                cJSON_AddNumberToObject(e, "value", s.median);
                cJSON_AddStringToObject(e, "range", range);
                cJSON_AddItemToArray(arr, e);
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

static cJSON *cell_json(const bn_cell *c) {
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
    cJSON_AddItemToObject(o, "train_images_per_s", summary_json(c->train_ips, c->runs));
    cJSON_AddItemToObject(o, "infer_images_per_s", summary_json(c->infer_ips, c->runs));
    cJSON_AddItemToObject(o, "step_ms", summary_json(c->step_ms, c->runs));
    if (c->load_known) {
        cJSON *l = cJSON_AddObjectToObject(o, "machine_load");
        cJSON_AddNumberToObject(l, "other_cores", c->other_cores);
        cJSON_AddNumberToObject(l, "steal_cores", c->steal_cores);
        cJSON_AddNumberToObject(l, "disturbed_above_cores", CNB_LOAD_DISTURBED_CORES);
        cJSON_AddBoolToObject(l, "disturbed", cell_disturbed(c));
    }
    if (c->profiled_steps) {
        cJSON *b = cJSON_AddObjectToObject(o, "breakdown");
        double steps = (double)c->profiled_steps, runs = c->profiled_runs;
        double step = c->profiled_train_seconds / steps, kern = ksum(&c->train_k) / steps;
        cJSON_AddNumberToObject(b, "profiled_runs", runs);
        cJSON_AddNumberToObject(b, "profiled_steps", steps);
        cJSON *tr = cJSON_AddObjectToObject(b, "train");
        cJSON_AddNumberToObject(tr, "step_ms", 1000 * step);
        cJSON_AddNumberToObject(tr, "kernel_ms", 1000 * kern);
        cJSON_AddNumberToObject(tr, "overhead_ms", 1000 * (step - kern));
        cJSON_AddNumberToObject(tr, "overhead_share", step > 0 ? (step - kern) / step : 0);
        cJSON_AddItemToObject(tr, "families", kernels_json(&c->train_k, steps, step));
        cJSON *in = cJSON_AddObjectToObject(b, "infer");
        double pass = c->profiled_infer_seconds / runs, ik = ksum(&c->infer_k) / runs;
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

/* ---- the verb ---- */

int cnb_cmd_bench(int argc, char **argv) {
    static char lists[3 * 4096];
    bn_opts o;
    int prc = parse_opts(argc, argv, &o, lists);
    if (prc != 0) return prc > 0 ? 0 : EXIT_USAGE;
    int rc = EXIT_USAGE;
    char err[CNB_ERR_LEN];
    cnb_machine mc;
    cnb_machine_probe(&mc);
    int threads = o.threads ? o.threads : (mc.cores > 0 ? mc.cores : 1);
    cnb_config cfg = {.size = sizeof cfg, .threads = threads};
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

    if (o.n_models == 0) {
        o.models[0] = "simplecnn";
        o.n_models = 1;
    }
    for (int i = 0; i < o.n_models; i++) {
        char path[PATH_MAX];
        cnb_model *m = calloc(1, sizeof *m);
        if (!m || cnb_model_resolve(o.models[i], path, sizeof path, err, sizeof err) != 0 ||
            cnb_model_load(path, m, NULL, err, sizeof err) != 0) {
            fprintf(stderr, "cnnbench bench: --model %s: %s\n", o.models[i], m ? err : "out of memory");
            free(m);
            goto done;
        }
        models[n_models++] = m;
    }
    static const char *defaults[16];
    if (o.n_backends == 0) {
        for (int i = 0; i < cnb_known_backend_count && i < 16; i++) defaults[i] = cnb_known_backends[i];
        o.n_backends = cnb_known_backend_count < 16 ? cnb_known_backend_count : 16;
        for (int i = 0; i < o.n_backends; i++) o.backends[i] = (char *)defaults[i];
    }
    if (o.n_backends <= 0 || o.n_backends > CNB_MAX_LIST) goto done;
    backends = calloc((size_t)o.n_backends, sizeof *backends);
    if (!backends) goto done;
    nb = o.n_backends;
    for (int i = 0; i < nb; i++) {
        bn_backend *b = &backends[i];
        b->name = o.backends[i];
        size_t len = strlen(b->name), sl = strlen(NOFUSION_SUFFIX);
        if (len > sl && strcmp(b->name + len - sl, NOFUSION_SUFFIX) == 0) {
            b->no_fusion = 1;
            o.backends[i][len - sl] = '\0'; /* open the backend by its own name */
        }
        b->is_gpu = is_gpu_name(b->name);
        if (cnb_open_backend(b->name, &cfg, &b->lib, &b->ctx, b->why, sizeof b->why) != 0) {
            if (!o.quiet) printf("SKIPPED backend %s: %s\n", b->name, b->why);
            continue;
        }
        b->usable = 1;
        snprintf(b->label, sizeof b->label, "%s%s", b->lib.api->name,
                 b->no_fusion ? NOFUSION_SUFFIX : "");
        b->name = b->label;
        b->lib.api->info(b->ctx, cnb_info_collect, &b->info);
        const char *mismatch = cnb_info_get(&b->info, "version_mismatch");
        if (mismatch) fprintf(stderr, "warning: %s: %s\n", b->name, mismatch);
        if (!o.quiet) openblas_note(b, &mc, stdout);
        cnb_test_faults_env(b->name, b->fault_env, sizeof b->fault_env);
        if (b->fault_env[0])
            fprintf(stderr, "cnnbench bench: TEST FAULT ACTIVE for %s: %s\n", b->name, b->fault_env);
    }

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
    if (n_cells <= 0) goto done;
    cells = calloc((size_t)n_cells, sizeof *cells);
    if (!cells) goto done;
    for (int i = 0; i < n_cells; i++) {
        cells[i].train_ips = malloc(MAX_RUNS * sizeof(double));
        cells[i].infer_ips = malloc(MAX_RUNS * sizeof(double));
        cells[i].step_ms = malloc(MAX_RUNS * sizeof(double));
        cells[i].round_end = malloc(MAX_RUNS * sizeof(int));
        if (!cells[i].train_ips || !cells[i].infer_ips || !cells[i].step_ms || !cells[i].round_end)
            goto done;
    }
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
            for (int k = 0; k < nb; k++) {
                bn_cell *c = &g[k];
                c->b = &backends[k];
                c->m = models[mi];
                c->batch = batch;
                if (!c->b->usable) {
                    c->status = 1;
                    snprintf(c->why, sizeof c->why, "%.1000s", c->b->why);
                    continue;
                }
                cnb_run_settings s;
                settings_for(&o, c->b, c->m, batch, &s);
                const cnb_backend *api = c->b->lib.api;
                cnb_context *ctx = c->b->ctx;
                if (c->b->fault_env[0]) { /* the planted slowdown must act on the timed runs */
                    cnb_profiler_init(&c->thin, api, ctx, 0);
                    api = cnb_profiler_api(&c->thin);
                    ctx = cnb_profiler_ctx(&c->thin);
                }
                if (cnb_trainer_create(api, ctx, c->m, &view, &test, &s, &c->t, err, sizeof err) != 0 ||
                    trainer_mark(c->t, c->m, &c->start, &c->params0, err, sizeof err) != 0) {
                    c->status = 2;
                    snprintf(c->why, sizeof c->why, "%.1000s", err);
                }
            }
            if (!o.quiet) {
                printf("%s batch %d: warming up", models[mi]->name, batch);
                fflush(stdout);
            }
            double x1, x2, x3, secs;
            for (int w = 0; w < o.warmup; w++)
                for (int k = 0; k < nb; k++) {
                    if (!g[k].status && cell_run(&g[k], r, &x1, &x2, &x3, &secs) != 0) g[k].status = 2;
                    else g[k].run_estimate = secs;
                }
            if (!o.quiet) {
                printf(", timing");
                fflush(stdout);
            }
            cnb_load_probe load;
            cnb_load_probe_start(&load);
            /* Rounds go on until every cell is done; every cell below --max-runs runs in every
             * round, so the ratios have a sample per round. A round lasts about as long as the
             * slowest cell's run; faster cells repeat, at most max_runs / min_runs times, so
             * min_runs rounds fit in max_runs. */
            int reps_cap = o.max_runs / o.min_runs > 1 ? o.max_runs / o.min_runs : 1;
            for (int left = 1; left;) {
                double slowest = 0;
                for (int k = 0; k < nb; k++)
                    if (!g[k].status && g[k].run_estimate > slowest) slowest = g[k].run_estimate;
                for (int k = 0; k < nb; k++) {
                    bn_cell *c = &g[k];
                    if (c->status || c->runs >= o.max_runs) continue;
                    long reps = c->run_estimate > 0 ? lround(slowest / c->run_estimate) : 1;
                    if (reps < 1) reps = 1;
                    if (reps > reps_cap) reps = reps_cap;
                    if (reps > o.max_runs - c->runs) reps = o.max_runs - c->runs;
                    double round_seconds = 0;
                    for (long rep = 0; rep < reps && !c->status; rep++) {
                        int i = c->runs;
                        if (cell_run(c, r, &c->train_ips[i], &c->infer_ips[i], &c->step_ms[i],
                                     &secs) != 0) {
                            c->status = 2;
                            break;
                        }
                        c->runs++;
                        c->timed_seconds += secs;
                        round_seconds += secs;
                    }
                    if (c->status) continue;
                    c->round_end[c->rounds++] = c->runs;
                    c->run_estimate = round_seconds / (double)reps;
                    c->done = c->runs >= o.max_runs ||
                              (c->runs >= o.min_runs && c->timed_seconds >= o.min_time &&
                               c->rounds >= (o.min_runs < 3 ? o.min_runs : 3));
                }
                left = 0;
                for (int k = 0; k < nb; k++) left |= !g[k].status && !g[k].done;
                if (!o.quiet) {
                    printf(".");
                    fflush(stdout);
                }
            }
            double other, steal;
            int known = cnb_load_probe_stop(&load, &other, &steal) == 0;
            for (int k = 0; k < nb; k++) {
                g[k].load_known = known;
                g[k].other_cores = other;
                g[k].steal_cores = steal;
                cnb_trainer_destroy(g[k].t);
                g[k].t = NULL;
            }
            if (o.breakdown) {
                if (!o.quiet) {
                    printf(", profiling");
                    fflush(stdout);
                }
                for (int k = 0; k < nb; k++)
                    if (!g[k].status) cell_profile(&g[k], &o, &view, &test, r);
            }
            if (!o.quiet) printf("\n");
            for (int k = 0; k < nb; k++) any_failed |= g[k].status == 2;
        }

    for (int mi = 0; mi < n_models; mi++)
        for (int bj = 0; bj < n_batches; bj++) {
            bn_cell *g = &cells[(mi * n_batches + bj) * nb];
            print_group(g, nb, &o, stdout);
            print_ratios(g, nb, stdout, buf);
        }
    printf("note: compare runs by the within-run ratios; absolute images/s on a shared machine "
           "swing by tens of percent between runs\n");

    root = cnb_context_json("bench", argc, argv, o.seed, threads, &mc);
    cJSON *set = cJSON_AddObjectToObject(root, "settings");
    cJSON_AddNumberToObject(set, "min_time_s", o.min_time);
    cJSON_AddNumberToObject(set, "min_runs", o.min_runs);
    cJSON_AddNumberToObject(set, "max_runs", o.max_runs);
    cJSON_AddNumberToObject(set, "warmup_runs", o.warmup);
    cJSON_AddNumberToObject(set, "steps_per_run", o.steps_per_run);
    cJSON_AddNumberToObject(set, "infer_images", test.count);
    cJSON_AddNumberToObject(set, "eval_batch", o.eval_batch);
    cJSON_AddNumberToObject(set, "profile_runs", o.breakdown ? o.profile_runs : 0);
    cJSON_AddBoolToObject(set, "quick", o.quick);
    cJSON_AddBoolToObject(set, "fusion", !o.no_fusion);
    cJSON_AddNumberToObject(set, "outlier_mads", OUTLIER_MADS);
    cJSON_AddStringToObject(set, "schedule",
                            "time-balanced rounds: in each round every backend runs about as long "
                            "as the slowest backend's single run (faster ones repeat, at most "
                            "max_runs / min_runs times); within-run ratios are per-round medians");
    cJSON_AddStringToObject(set, "dataset", kind);
    cJSON *bj = cJSON_AddArrayToObject(root, "backends");
    for (int i = 0; i < nb; i++) {
        bn_backend *b = &backends[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", b->name);
        cJSON_AddStringToObject(e, "status", b->usable ? "loaded" : "skipped");
        cJSON_AddStringToObject(e, "device", b->is_gpu ? "gpu" : "cpu");
        if (!b->usable) cJSON_AddStringToObject(e, "reason", b->why);
        else {
            cJSON_AddStringToObject(e, "path", b->lib.path);
            cJSON_AddItemToObject(e, "info", cnb_info_json(&b->info));
        }
        if (b->fault_env[0]) cJSON_AddStringToObject(e, "test_fault", b->fault_env);
        cJSON_AddItemToArray(bj, e);
    }
    cJSON *cj = cJSON_AddArrayToObject(root, "cells");
    for (int i = 0; i < n_cells; i++) cJSON_AddItemToArray(cj, cell_json(&cells[i]));
    cJSON *rj = cJSON_AddArrayToObject(root, "ratios");
    for (int g0 = 0; g0 < n_cells; g0 += nb) {
        bn_cell *g = &cells[g0];
        int naive = -1;
        for (int k = 0; k < nb; k++)
            if (!g[k].status && strcmp(g[k].b->name, "naive") == 0) naive = k;
        int bcpu = best_cell(g, nb, 0), bgpu = best_cell(g, nb, 1);
        for (int k = 0; k < nb; k++) {
            if (g[k].status) continue;
            if (naive >= 0 && k != naive)
                cJSON_AddItemToArray(rj, ratio_json("vs_naive", &g[k], &g[naive], buf));
            if (bcpu >= 0 && k != bcpu)
                cJSON_AddItemToArray(rj, ratio_json("vs_best_cpu", &g[k], &g[bcpu], buf));
        }
        if (bcpu >= 0 && bgpu >= 0)
            cJSON_AddItemToArray(rj, ratio_json("gpu_vs_cpu", &g[bgpu], &g[bcpu], buf));
    }
    rc = any_failed ? 1 : 0;
    if (cnb_write_json(o.out, root, err, sizeof err) != 0) {
        fprintf(stderr, "cnnbench bench: results not saved: %s\n", err);
        rc = 1;
    } else {
        printf("results: %s\n", o.out);
    }
    if (o.csv) {
        if (write_csv(o.csv, cells, n_cells, buf, err, sizeof err) != 0) {
            fprintf(stderr, "cnnbench bench: CSV not saved: %s\n", err);
            rc = 1;
        } else {
            printf("csv: %s\n", o.csv);
        }
    }
    if (o.gab) {
        if (write_gab(o.gab, cells, n_cells, buf, err, sizeof err) != 0) {
            fprintf(stderr, "cnnbench bench: benchmark-action file not saved: %s\n", err);
            rc = 1;
        } else {
            printf("github-action-benchmark: %s\n", o.gab);
        }
    }
done:
    cJSON_Delete(root);
    for (int i = 0; cells && i < n_cells; i++) {
        cnb_trainer_destroy(cells[i].t);
        free(cells[i].params0);
        free(cells[i].train_ips);
        free(cells[i].infer_ips);
        free(cells[i].step_ms);
        free(cells[i].round_end);
    }
    free(cells);
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
