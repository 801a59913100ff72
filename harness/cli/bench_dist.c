/* bench_dist.c — `cnnbench bench` under mpirun: how training scales with the rank count, and
 * what the gradient all-reduce costs. The scaling table trains each model with its global batch
 * split over the first k ranks, for each k asked for (strong scaling: the work per step stays
 * the same), and reports images/s, speed-up and efficiency against k = 1, and the all-reduce's
 * time and share of the step. The microbenchmark times MPI_Allreduce over all ranks at the
 * model's gradient sizes (every parameter tensor, and the whole block train.c sends), with the
 * bandwidths nccl-tests reports: algbw = bytes / time, busbw = algbw * 2 (n - 1) / n (the bytes
 * each rank must move in an optimal ring all-reduce), so busbw compares with the link's speed
 * whatever the rank count. */
#define _GNU_SOURCE
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "data.h"
#include "dist_report.h"
#include "distributed.h"
#include "loader.h"
#include "machine.h"
#include "model.h"
#include "options.h"
#include "results.h"
#include "runctx.h"
#include "train.h"
#include "util.h"

enum { EXIT_USAGE = 2 };

typedef struct bd_opts {
    char *backends[CNB_MAX_LIST], *models[CNB_MAX_LIST];
    int n_backends, n_models, ranks[CNB_MAX_LIST], n_ranks;
    int steps, runs, iters, threads;
    uint64_t seed;
    int quiet;
    const char *out, *dataset, *data;
    cnb_common_opts common;     /* the shared flags as parsed (the lists point into it) */
} bd_opts;

static void usage(FILE *f) {
    fprintf(f,
        "usage: mpirun -np N cnnbench bench [options]\n"
        "\n"
        "Under mpirun, bench measures scaling instead of the single-process matrix: each model\n"
        "trains with its global batch split over the first k ranks for every k of --ranks, then\n"
        "MPI_Allreduce is timed at the model's gradient sizes (algbw and busbw as nccl-tests).\n"
        "Only rank 0 prints and writes.\n"
        "\n"
        "  --backends LIST   backends (default blas)\n"
        "  --model LIST      models (default simplecnn)\n"
        "  --ranks LIST      rank counts of the scaling table (default 1,2,4,... up to N, and N)\n"
        "  --steps N         training steps per timed run (default 20)\n"
        "  --runs N          timed runs per rank count, after one warm-up (default 5)\n"
        "  --iters N         all-reduce calls timed per size (default 50)\n"
        "  --threads N       threads per rank (default: the node's cores / its ranks)\n"
        "  --seed N, --dataset NAME, --data PATH   as for training\n"
        "  --out FILE        results JSON (default cnnbench-bench-dist.json)\n"
        "  --quiet           only the tables\n");
}

static int parse_list(const char *flag, char *arg, char **items, int *n) {
    *n = cnb_split_list(arg, items, CNB_MAX_LIST);
    if (*n >= 1) return 0;
    fprintf(stderr, "cnnbench bench: %s: '%s' is not a comma list\n", flag, arg);
    return -1;
}

static int parse_ranks(char *arg, bd_opts *o, int world) {
    char *items[CNB_MAX_LIST];
    int n;
    if (parse_list("--ranks", arg, items, &n) != 0) return -1;
    for (int i = 0; i < n; i++) {
        long v;
        if (cnb_parse_long_flag("cnnbench bench", "--ranks", items[i], 1, world, &v) != 0)
            return -1;
        o->ranks[o->n_ranks++] = (int)v;
    }
    return 0;
}

enum { O_RANKS = 256, O_STEPS, O_RUNS, O_ITERS };

static const struct option bench_dist_flags[] = {
    {"ranks", required_argument, 0, O_RANKS}, {"steps", required_argument, 0, O_STEPS},
    {"runs", required_argument, 0, O_RUNS}, {"iters", required_argument, 0, O_ITERS},
    {0, 0, 0, 0}};

typedef struct bd_parse {
    bd_opts *o;
    int world;
    char ranks_buf[4096];
} bd_parse;

static int on_bench_dist_flag(void *user, int id, const char *arg) {
    bd_parse *p = user;
    long v;
    int bad = 0;
    switch (id) {
    case O_RANKS:
        snprintf(p->ranks_buf, sizeof p->ranks_buf, "%s", arg);
        return parse_ranks(p->ranks_buf, p->o, p->world);
    case O_STEPS: bad = cnb_opt_long("cnnbench bench", "--steps", arg, 1, 100000, &v); p->o->steps = (int)v; break;
    case O_RUNS: bad = cnb_opt_long("cnnbench bench", "--runs", arg, 1, 10000, &v); p->o->runs = (int)v; break;
    case O_ITERS: bad = cnb_opt_long("cnnbench bench", "--iters", arg, 1, 1000000, &v); p->o->iters = (int)v; break;
    default: return -1;
    }
    return bad;
}

/* 0 to go on, 1 after --help, -1 on a usage error. */
static int parse_opts(int argc, char **argv, bd_opts *o, int world) {
    memset(o, 0, sizeof *o);
    o->steps = 20;
    o->runs = 5;
    o->iters = 50;
    o->seed = 42;
    o->out = "cnnbench-bench-dist.json";
    static bd_parse p;
    p.o = o;
    p.world = world;
    cnb_common_opts *co = &o->common;
    int rc = cnb_parse_options("cnnbench bench", argc, argv,
                               CNB_OPT_BACKENDS | CNB_OPT_MODELS | CNB_OPT_SEED | CNB_OPT_THREADS |
                                   CNB_OPT_DATA | CNB_OPT_OUT | CNB_OPT_QUIET,
                               bench_dist_flags, on_bench_dist_flag, &p, usage, co, NULL);
    if (rc != 0) return rc;
    CNB_TAKE_COMMON_OPTS(o, co);
    if (o->n_ranks == 0) {
        for (int k = 1; k < world && o->n_ranks < CNB_MAX_LIST - 1; k *= 2) o->ranks[o->n_ranks++] = k;
        o->ranks[o->n_ranks++] = world;
    }
    return 0;
}

/* One scaling row: median images/s over the runs, and the all-reduce's time and share. */
typedef struct bd_row {
    int ranks;
    double images_per_s, allreduce_ms, share, wait_ms;
    char why[CNB_ERR_LEN];
} bd_row;

static int timed_runs(cnb_dist *sub, cnb_trainer *t, const cnb_model *m, int runs, bd_row *row,
                      char *err, size_t err_len) {
    cnb_train_state start;
    cnb_trainer_get_state(t, &start);
    float *p0 = malloc((m->n_params ? m->n_params : 1) * sizeof(float));
    double ips[1024], ar_ms[1024], share[1024], wait_ms[1024];
    cnb_run_result *r = calloc(1, sizeof *r);
    int rc = !p0 || !r ? cnb_errf(err, err_len, "out of host memory")
                       : cnb_trainer_get_tensors(t, p0, NULL, NULL, err, err_len);
    if (runs > 1023) runs = 1023;
    for (int i = 0; rc == 0 && i <= runs; i++) { /* run 0 warms up */
        cnb_run_result_free(r);
        memset(r, 0, sizeof *r);
        if (cnb_trainer_set_state(t, &start, err, err_len) != 0 ||
            cnb_trainer_set_tensors(t, p0, NULL, NULL, err, err_len) != 0) {
            rc = -1;
            break;
        }
        if (cnb_trainer_run(t, r) != 0) {
            rc = cnb_errf(err, err_len, "%.900s", r->message);
            break;
        }
        /* The step ends when the slowest rank's does. */
        double secs = cnb_dist_max(sub, r->train_seconds);
        if (i == 0) continue;
        long images = r->epochs_done ? r->epoch[0].train_images : 0;
        ips[i - 1] = images / secs;
        ar_ms[i - 1] = 1e3 * cnb_dist_max(sub, r->allreduce_seconds) / (r->total_steps ? r->total_steps : 1);
        share[i - 1] = cnb_dist_max(sub, r->allreduce_seconds) / secs;
        wait_ms[i - 1] = 1e3 * cnb_dist_max(sub, r->wait_seconds) / (r->total_steps ? r->total_steps : 1);
    }
    if (rc == 0) {
        row->images_per_s = cnb_quantile(ips, runs, 0.5);
        row->allreduce_ms = cnb_quantile(ar_ms, runs, 0.5);
        row->share = cnb_quantile(share, runs, 0.5);
        row->wait_ms = cnb_quantile(wait_ms, runs, 0.5);
    }
    if (r) cnb_run_result_free(r);
    free(r);
    free(p0);
    return rc;
}

/* The row for the first k ranks; ranks beyond k wait. Rank 0 ends up with the figures. */
static void scaling_row(cnb_dist *world, const bd_opts *o, const cnb_backend *api,
                        cnb_context *ctx, const cnb_model *m, const cnb_dataset *train,
                        const cnb_dataset *test, int k, bd_row *row) {
    memset(row, 0, sizeof *row);
    row->ranks = k;
    cnb_dist *sub = NULL;
    int member = 0;
    char err[CNB_ERR_LEN] = "";
    if (cnb_dist_split_first(world, k, &sub, &member, err, sizeof err) != 0) {
        snprintf(row->why, sizeof row->why, "%s", err);
    } else if (member) {
        cnb_run_settings s;
        cnb_settings_from_model(m, &s);
        s.epochs = 1;
        s.max_steps = o->steps;
        s.seed = o->seed;
        s.dist = k > 1 ? sub : NULL; /* the 1-rank row is a plain single process */
        cnb_trainer *t = NULL;
        if (cnb_trainer_create(api, ctx, m, train, test, &s, &t, err, sizeof err) != 0 ||
            timed_runs(sub, t, m, o->runs, row, err, sizeof err) != 0)
            snprintf(row->why, sizeof row->why, "%s", err);
        cnb_trainer_destroy(t);
        cnb_dist_free_sub(sub);
    }
    cnb_dist_barrier(world);
}

static void print_scaling(const char *backend, const cnb_model *m, int threads, const bd_row *rows,
                          int n) {
    printf("\nscaling: %s on %s, global batch %d split over the ranks, %d thread(s) per rank\n",
           m->name, backend, m->batch, threads);
    printf("  ranks  images/s  speed-up  efficiency  wait ms/step  all-reduce ms/step  share of "
           "step\n");
    double base = 0;
    for (int i = 0; i < n; i++)
        if (rows[i].ranks == 1 && !rows[i].why[0]) base = rows[i].images_per_s;
    for (int i = 0; i < n; i++) {
        if (rows[i].why[0]) {
            printf("  %5d  failed: %s\n", rows[i].ranks, rows[i].why);
            continue;
        }
        printf("  %5d  %8.0f", rows[i].ranks, rows[i].images_per_s);
        if (base > 0)
            printf("  %7.2fx  %9.0f%%", rows[i].images_per_s / base,
                   100 * rows[i].images_per_s / (rows[i].ranks * base));
        else
            printf("  %8s  %10s", "-", "-");
        printf("  %12.3f  %18.3f  %12.1f%%\n", rows[i].wait_ms, rows[i].allreduce_ms,
               100 * rows[i].share);
    }
}

/* MPI_Allreduce over every rank at `floats` elements, each call timed: the median and the mean
 * seconds per call (each the slowest rank's). On a shared host a rank that loses its core for a
 * time slice stalls one call by milliseconds; the median is the link's cost, the mean (what
 * nccl-tests prints) includes those stalls. */
static void time_allreduce(cnb_dist *d, float *buf, size_t floats, int iters, double *median,
                           double *mean) {
    char err[CNB_ERR_LEN];
    double *t = malloc((size_t)iters * sizeof *t), sum = 0;
    *median = *mean = 0;
    if (!t) return;
    for (int i = 0; i < 5; i++) cnb_dist_sum_floats(d, buf, floats, NULL, err, sizeof err);
    cnb_dist_barrier(d);
    for (int i = 0; i < iters; i++) {
        cnb_dist_sum_floats(d, buf, floats, &t[i], err, sizeof err);
        sum += t[i];
    }
    *median = cnb_dist_max(d, cnb_quantile(t, iters, 0.5));
    *mean = cnb_dist_max(d, sum / iters);
    free(t);
}

static cJSON *allreduce_bench(cnb_dist *d, const cnb_model *m, int iters, int quiet) {
    int n = cnb_dist_size(d);
    size_t sizes[2 * CNB_MAX_LAYERS + 1];
    char names[2 * CNB_MAX_LAYERS + 1][80];
    int ns = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const cnb_layer *l = &m->layers[i];
        if (l->weight_count) {
            snprintf(names[ns], sizeof names[ns], "%s.weight", l->name);
            sizes[ns++] = l->weight_count;
        }
        if (l->bias_count) {
            snprintf(names[ns], sizeof names[ns], "%s.bias", l->name);
            sizes[ns++] = l->bias_count;
        }
    }
    snprintf(names[ns], sizeof names[ns], "all parameters (what train.c sends)");
    sizes[ns++] = m->n_params;
    float *buf = calloc(m->n_params ? m->n_params : 1, sizeof *buf);
    cJSON *a = cJSON_CreateArray();
    if (!buf) return a;
    if (!quiet)
        printf("\nall-reduce (MPI_Allreduce, float32 sum, %d ranks, %d calls per size; bandwidths "
               "from the median call): %s\n", n, iters, m->name);
    printf("  %-36s %10s %10s %10s %11s %11s\n", "tensor", "bytes", "median us", "mean us",
           "algbw GB/s", "busbw GB/s");
    for (int i = 0; i < ns; i++) {
        double secs, mean;
        time_allreduce(d, buf, sizes[i], iters, &secs, &mean);
        double bytes = 4.0 * sizes[i], algbw = secs > 0 ? bytes / secs / 1e9 : 0;
        double busbw = algbw * 2.0 * (n - 1) / n;
        printf("  %-36s %10.0f %10.2f %10.2f %11.3f %11.3f\n", names[i], bytes, 1e6 * secs,
               1e6 * mean, algbw, busbw);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "tensor", names[i]);
        cJSON_AddNumberToObject(e, "bytes", bytes);
        cJSON_AddNumberToObject(e, "time_us", 1e6 * secs);
        cJSON_AddNumberToObject(e, "mean_time_us", 1e6 * mean);
        cJSON_AddNumberToObject(e, "algbw_GBps", algbw);
        cJSON_AddNumberToObject(e, "busbw_GBps", busbw);
        cJSON_AddItemToArray(a, e);
    }
    free(buf);
    return a;
}

static cJSON *rows_json(const char *backend, const cnb_model *m, const bd_row *rows, int n,
                        cJSON *allreduce) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "backend", backend);
    cJSON_AddStringToObject(j, "model", m->name);
    cJSON_AddNumberToObject(j, "global_batch", m->batch);
    cJSON *a = cJSON_AddArrayToObject(j, "scaling");
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "ranks", rows[i].ranks);
        if (rows[i].why[0]) cJSON_AddStringToObject(e, "error", rows[i].why);
        cJSON_AddNumberToObject(e, "images_per_s", rows[i].images_per_s);
        cJSON_AddNumberToObject(e, "allreduce_ms_per_step", rows[i].allreduce_ms);
        cJSON_AddNumberToObject(e, "allreduce_share_of_step", rows[i].share);
        cJSON_AddNumberToObject(e, "wait_ms_per_step", rows[i].wait_ms);
        cJSON_AddItemToArray(a, e);
    }
    cJSON_AddItemToObject(j, "allreduce", allreduce);
    return j;
}

static int load_model(const char *name, cnb_model *m) {
    char path[PATH_MAX], err[CNB_ERR_LEN];
    if (cnb_model_resolve(name, path, sizeof path, err, sizeof err) != 0 ||
        cnb_model_load(path, m, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "cnnbench bench: --model %s: %s\n", name, err);
        return -1;
    }
    return 0;
}

/* One backend x model: the scaling rows, then the all-reduce sizes. */
static int bench_one(cnb_dist *world, const bd_opts *o, const char *backend, const cnb_model *m,
                     const cnb_config *cfg, cJSON *out) {
    cnb_loaded_backend lib;
    cnb_context *ctx;
    char err[CNB_ERR_LEN];
    int ok = cnb_open_backend(backend, cfg, &lib, &ctx, err, sizeof err) == 0;
    if (cnb_dist_any(world, !ok)) {
        fprintf(stderr, "cnnbench bench: --backends %s: %s\n", backend, ok ? "fails on another rank" : err);
        if (ok) cnb_close_backend(&lib, ctx);
        return -1;
    }
    cnb_dataset train = {0}, test = {0};
    const char *kind = o->dataset ? o->dataset : "fashion-mnist";
    ok = cnb_dataset_open(kind, o->data, m->batch * o->steps, m->batch, &train, &test, err,
                          sizeof err) == 0;
    if (cnb_dist_any(world, !ok)) {
        fprintf(stderr, "cnnbench bench: data: %s\n", ok ? "fails on another rank" : err);
        cnb_close_backend(&lib, ctx);
        return -1;
    }
    bd_row rows[CNB_MAX_LIST];
    for (int i = 0; i < o->n_ranks; i++)
        scaling_row(world, o, lib.api, ctx, m, &train, &test, o->ranks[i], &rows[i]);
    print_scaling(lib.api->name, m, cfg->threads, rows, o->n_ranks);
    cJSON *ar = allreduce_bench(world, m, o->iters, o->quiet);
    cJSON_AddItemToArray(out, rows_json(lib.api->name, m, rows, o->n_ranks, ar));
    cnb_dataset_free(&train);
    cnb_dataset_free(&test);
    cnb_close_backend(&lib, ctx);
    return 0;
}

int cnb_cmd_bench_distributed(int argc, char **argv) {
    cnb_dist *world = cnb_dist_world();
    static bd_opts o;
    int prc = parse_opts(argc, argv, &o, cnb_dist_size(world));
    if (prc != 0) return prc > 0 ? 0 : EXIT_USAGE;
    if (o.n_backends == 0) o.backends[o.n_backends++] = "blas";
    if (o.n_models == 0) o.models[o.n_models++] = "simplecnn";
    cnb_machine mc;
    cnb_machine_probe(&mc);
    int threads = o.threads ? o.threads : cnb_dist_default_threads(world, mc.cores);
    cnb_config cfg = {.size = sizeof cfg, .threads = threads};
    if (!o.quiet)
        printf("cnnbench bench: %d ranks (%d on this node) over %s (MPI %s), %d thread(s) per "
               "rank; %d runs of %d steps per rank count\n",
               cnb_dist_size(world), cnb_dist_local_size(world), cnb_dist_library(world),
               cnb_dist_standard(world), threads, o.runs, o.steps);
    cJSON *root = cnb_context_json("bench-distributed", argc, argv, o.seed, threads, &mc);
    cJSON *c = cJSON_AddObjectToObject(root, "communicator");
    cJSON_AddNumberToObject(c, "ranks", cnb_dist_size(world));
    cJSON_AddNumberToObject(c, "ranks_on_this_node", cnb_dist_local_size(world));
    cJSON_AddStringToObject(c, "library", cnb_dist_library(world));
    cJSON_AddStringToObject(c, "mpi_standard", cnb_dist_standard(world));
    cJSON *cells = cJSON_AddArrayToObject(root, "cells");
    int rc = 0;
    for (int mi = 0; rc == 0 && mi < o.n_models; mi++) {
        cnb_model *m = calloc(1, sizeof *m);
        if (!m || load_model(o.models[mi], m) != 0) rc = EXIT_USAGE;
        for (int bi = 0; rc == 0 && bi < o.n_backends; bi++)
            if (bench_one(world, &o, o.backends[bi], m, &cfg, cells) != 0) rc = 1;
        free(m);
    }
    char err[CNB_ERR_LEN];
    if (rc == 0 && cnb_dist_rank(world) == 0) {
        if (cnb_write_json(o.out, root, err, sizeof err) != 0) {
            fprintf(stderr, "cnnbench bench: %s\n", err);
            rc = 1;
        } else {
            printf("results: %s\n", o.out);
        }
    }
    cJSON_Delete(root);
    return rc;
}
