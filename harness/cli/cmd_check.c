/* cmd_check.c — `cnnbench check`: every kernel family of every backend against the naive
 * reference at every layer shape of every model plus edge shapes, on random and exact-integer
 * inputs, then whole-training agreement over the first steps of each model (DESIGN.md §4).
 * One line per check, a summary, a JSON report, and a non-zero exit on any FAILED. */
#define _GNU_SOURCE
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_dist.h"
#include "dist_report.h"
#include "checks.h"
#include "commands.h"
#include "compare.h"
#include "data.h"
#include "loader.h"
#include "machine.h"
#include "model.h"
#include "options.h"
#include "profiler.h"
#include "results.h"
#include "runctx.h"
#include "train.h"
#include "util.h"

/* Tolerances (relative L2 error unless said otherwise), with the reason for each value.
 *  - fp32 on a CPU: 1e-5. float32's unit roundoff is 2^-24 = 6e-8; the error of a float sum
 *    against naive's double accumulation grows roughly with sqrt(terms). Measured here: at the
 *    default batch 8 the worst check (a weight gradient, n*p*q = 6272 terms) is 3.3e-7 for blas;
 *    at batch 64 (50,176 terms) 3.1e-6 for oneDNN's weight gradient. 1e-5 keeps a margin of
 *    3x at batch 64 and 30x at the default; a wrong index or a missed term gives 1e-3 and more.
 *  - fp32 on a GPU (TF32 off): the same 1e-5; strict fp32 differs from a CPU only in the order
 *    of summation.
 *  - TF32 (--tf32): 5e-3 for convolution and gemm. TF32 keeps 10 mantissa bits (unit roundoff
 *    2^-11 = 4.9e-4) for the products; 10x that covers the sums of a few hundred products.
 *  - a convolution whose algorithm transforms the data (a backend's info() lists its direction
 *    under conv.transforms[shape], cnb_abi.h; cuDNN's FFT and Winograd): 1e-4, in random and
 *    exact mode alike. The transforms add rounding beyond the sum's (published fp32 Winograd
 *    errors reach ~1e-5 relative for 3x3) and integer data does not stay exact; 1e-4 still
 *    catches a wrong index (O(1)). The check's shape says "[transform algorithm]".
 *  - exact mode: bit for bit (every partial sum is an exact float32 integer).
 *  - naive against itself: bit for bit (the reference must be deterministic).
 *  - memory round trip: bit for bit.
 *  - training over the first N steps: 1e-4 for the per-step losses and the final weights.
 *    Per-kernel differences of ~1e-7 compound through N steps of SGD / Adam; measured here
 *    (blas vs naive, 10 steps) they stay near 1e-6; 1e-4 flags a real divergence.
 *  - training with a transform algorithm in any of the model's convolutions: 1e-3. Winograd's
 *    extra rounding (relL2 ~6e-7 per call against ~1e-7 direct) now and then flips a max-pool
 *    near-tie, which routes that window's gradient elsewhere and compounds: oneDNN's Winograd
 *    on simplecnn, 10 steps, seeds 1-5 and 42: weights relL2 1.4e-8 to 6.6e-5 (direct: 4.7e-8
 *    at 42). 1e-3 keeps a margin of 15x; a wrong gradient still lands at 1e-2 and more.
 *  - final test accuracy: within 0.5 percentage points (a few images of the evaluation set
 *    may flip when their logits are nearly tied). */
#define TOL_FP32 CNB_CHECK_TOL_FP32
#define TOL_TF32 5e-3
#define TOL_TRAIN 1e-4
#define TOL_TRAIN_TRANSFORM 1e-3
#define TOL_TRANSFORM 1e-4
#define TOL_ACC_PP 0.5
#define POINT_TOL CNB_CHECK_POINT_TOL

enum { EXIT_USAGE = 2 };
enum { MODE_RANDOM = 1, MODE_EXACT = 2, MODE_NONFINITE = 4 };

typedef struct ck_backend {
    const char *name;
    cnb_loaded_backend lib;
    cnb_context *ctx;
    const cnb_backend *api;     /* what checks call: the real table, or the fault proxy */
    cnb_context *actx;
    cnb_profiler proxy;
    int usable, is_gpu, is_naive;
    char why[CNB_ERR_LEN];
    char fault_env[256];
    cnb_info_list info;
    long count[4];              /* by cnb_check_status */
    long slot_absent[CNB_CK_COUNT]; /* fused cases SKIPPED: the backend leaves the slot empty */
} ck_backend;

typedef struct ck_opts {
    char *backends[CNB_MAX_LIST];
    int n_backends;
    int family_on[CNB_CK_COUNT];
    char *models[CNB_MAX_LIST];
    int n_models;
    const char *shape_glob;
    int modes;
    int batch;
    uint64_t seed;
    int steps, test_limit, training, threads, tf32, deterministic, quiet, any_family;
    int no_fusion, direct_conv;
    const char *out, *dataset, *data;
    cnb_common_opts common;     /* the shared flags as parsed (the lists point into it) */
} ck_opts;

typedef struct ck_state {
    ck_opts o;
    ck_backend *b;
    int nb;
    cnb_loaded_backend ref_lib;
    cnb_context *ref_ctx;
    cJSON *checks;
    long total[4];
    int argc;
    char **argv;
} ck_state;

static void usage(FILE *f) {
    fprintf(f,
        "usage: cnnbench check [options]\n"
        "\n"
        "Checks every kernel family of each backend against the naive reference at every layer\n"
        "shape of every model and at edge shapes, on random and exact-integer inputs, then\n"
        "whole-training agreement over the first steps of each model.\n"
        "\n"
        "  --backends LIST   backends to check (default: every known one; those that cannot\n"
        "                    run here are SKIPPED with the reason)\n"
        "  --family LIST     kernel families: corr2d conv_fwd conv_bwd_data conv_bwd_filter\n"
        "                    bias_fwd bias_bwd pool_fwd pool_bwd gemm act_fwd act_bwd\n"
        "                    softmax_ce_fwd softmax_ce_bwd sgd adam memory, the fused\n"
        "                    conv_bias_act_fwd pool_act_bwd conv_bwd conv_act_pool_fwd\n"
        "                    pool_act_conv_bwd,\n"
        "                    training,\n"
        "                    distributed (N ranks against one: run under mpirun -np N;\n"
        "                    under mpirun it is the default and only rank 0 prints)\n"
        "                    (ABI slot names such as conv_backward_data work too)\n"
        "  --model LIST      models whose layer shapes to check (default: all in %s),\n"
        "                    and 'edge' for the edge shapes\n"
        "  --shape GLOB      only shapes whose label matches, e.g. 'simplecnn.conv*'\n"
        "  --mode M          random, exact, nonfinite (NaN, +-Inf and +-0 planted in the\n"
        "                    inputs of activations, pooling, softmax-CE and optimizers),\n"
        "                    both (random and exact) or all (default all)\n"
        "  --batch N         batch for the layer shapes (default 8)\n"
        "  --steps N         training steps compared (default 10)\n"
        "  --test-limit N    test images for the training agreement (default 500)\n"
        "  --no-training     kernel checks only\n"
        "  --seed N          seed of the inputs (default 42)\n"
        "  --threads N       CPU backend threads (default: all cores)\n"
        "  --tf32            GPU backends may use TF32 (looser tolerance for conv and gemm)\n"
        "  --deterministic   GPU backends: deterministic algorithms only\n"
        "  --no-fusion       training agreement with separate kernels only\n"
        "  --direct-conv     backends use direct or GEMM-based convolution only (no Winograd\n"
        "                    or FFT: exact mode is then bit for bit there too)\n"
        "  --dataset NAME, --data PATH   data for the training agreement (as for training)\n"
        "  --out FILE        JSON report (default cnnbench-check.json)\n"
        "  --quiet           print only failures, skips and the summary\n",
        cnb_models_dir());
}

/* FNV-1a: each check's inputs come from the run's seed and the check's own name, so a
 * reproduction command that selects one check regenerates exactly its inputs. */
static const char *mode_name(int mode) {
    return mode == CNB_CHECK_EXACT ? "exact" : mode == CNB_CHECK_NONFINITE ? "nonfinite" : "random";
}

static uint64_t check_seed(uint64_t seed, const char *family, const char *label, int mode) {
    uint64_t h = 1469598103934665603ull ^ seed;
    const char *parts[3] = {family, label, mode_name(mode)};
    for (int p = 0; p < 3; p++) {
        for (const char *c = parts[p]; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
        h = (h ^ '/') * 1099511628211ull;
    }
    return h;
}

/* The info() key and direction that say whether b ran case c with a transform algorithm. */
typedef struct transform_query {
    char key[160];
    const char *dir;
    int found;
} transform_query;

static void transform_collect(void *user, const char *key, const char *value) {
    transform_query *q = user;
    if (strcmp(key, q->key) != 0) return;
    size_t n = strlen(q->dir);
    for (const char *p = value; (p = strstr(p, q->dir)) != NULL; p += n)
        if ((p == value || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' ')) q->found = 1;
}

/* 1 when b reports (cnb_abi.h, info()) that its algorithm for case c transforms the data. */
static int uses_transform(const ck_backend *b, const cnb_check_case *c) {
    static const char *const dirs[] = {"fwd", "bwd_data", "bwd_filter"};
    int dir = c->family == CNB_CK_CONV_FWD || c->family == CNB_CK_CORR2D ||
                      c->family == CNB_CK_CONV_ACT_FWD || c->family == CNB_CK_CONV_POOL_FWD
                  ? 0
              : c->family == CNB_CK_CONV_BWD_DATA                        ? 1
              : c->family == CNB_CK_CONV_BWD_FILTER                      ? 2
                                                                         : -1;
    if (c->family == CNB_CK_CONV_BWD_FUSED || c->family == CNB_CK_POOL_CONV_BWD) {
        /* either backward direction */
        cnb_check_case one = *c;
        one.family = CNB_CK_CONV_BWD_FILTER;
        if (uses_transform(b, &one)) return 1;
        one.family = CNB_CK_CONV_BWD_DATA;
        return c->with_dx && uses_transform(b, &one);
    }
    if (dir < 0 || !b->api->info) return 0;
    cnb_conv_desc d = c->conv;
    if (c->family == CNB_CK_CORR2D) /* the convolution n1 c1 k1, valid, stride 1 */
        d = (cnb_conv_desc){.n = 1, .c = 1, .h = d.h, .w = d.w, .k = 1, .r = d.r, .s = d.s,
                            .stride_h = 1, .stride_w = 1};
    transform_query q = {.dir = dirs[dir]};
    snprintf(q.key, sizeof q.key, "conv.transforms[n%d c%d %dx%d k%d %dx%d s%dx%d p%dx%d]", d.n,
             d.c, d.h, d.w, d.k, d.r, d.s, d.stride_h, d.stride_w, d.pad_h, d.pad_w);
    b->api->info(b->actx, transform_collect, &q);
    return q.found;
}

/* 1 when b ran any convolution of model m at batch n with a transform algorithm, in any
 * direction (the training agreement's looser tolerance, TOL_TRAIN_TRANSFORM). */
static int training_uses_transform(const ck_backend *b, const cnb_model *m, int n) {
    for (int i = 0; i < m->n_layers; i++) {
        const cnb_layer *l = &m->layers[i];
        if (l->type != CNB_LAYER_CONV) continue;
        cnb_check_case c = {
            .family = CNB_CK_CONV_FWD,
            .conv = {.n = n, .c = l->in_c, .h = l->in_h, .w = l->in_w, .k = l->filters,
                     .r = l->size_h, .s = l->size_w, .stride_h = l->stride_h,
                     .stride_w = l->stride_w, .pad_h = l->pad_h, .pad_w = l->pad_w,
                     .p = l->out_h, .q = l->out_w}};
        if (uses_transform(b, &c)) return 1;
        c.family = CNB_CK_CONV_BWD_FUSED; /* either backward direction */
        c.with_dx = 1;
        if (uses_transform(b, &c)) return 1;
    }
    return 0;
}


static double tolerance_for(const ck_state *s, const ck_backend *b, int family) {
    if (b->is_naive || family == CNB_CK_MEMORY) return 0.0;
    if (b->is_gpu && s->o.tf32 &&
        (family == CNB_CK_CONV_FWD || family == CNB_CK_CONV_BWD_DATA ||
         family == CNB_CK_CONV_BWD_FILTER || family == CNB_CK_GEMM || family == CNB_CK_CORR2D))
        return TOL_TF32;
    return TOL_FP32;
}

static void repro_command(const ck_state *s, const ck_backend *b, const char *family,
                          const char *label, const char *mode, char *buf, size_t len) {
    char launcher[64] = "";
    if (strcmp(family, "distributed") == 0)
        snprintf(launcher, sizeof launcher, "mpirun -np %d ", cnb_dist_size(cnb_dist_world()));
    snprintf(buf, len,
             "%s%s%scnnbench check --backends %s --family %s --shape '%s'%s%s --seed %llu "
             "--batch %d%s",
             b->fault_env, b->fault_env[0] ? " " : "", launcher, b->name, family, label,
             mode ? " --mode " : "", mode ? mode : "", (unsigned long long)s->o.seed, s->o.batch,
             strcmp(family, "training") == 0 ? "" : " --no-training");
    if (s->o.direct_conv) {
        size_t n = strlen(buf);
        snprintf(buf + n, len - n, " --direct-conv");
    }
    if (strcmp(family, "training") == 0) {
        size_t n = strlen(buf);
        snprintf(buf + n, len - n, " --steps %d --test-limit %d --family training", s->o.steps,
                 s->o.test_limit);
    }
}

static void print_line(const ck_state *s, const ck_backend *b, const char *family,
                       const char *label, const char *shape, const char *mode,
                       const cnb_check_outcome *o, const char *extra) {
    if (s->o.quiet && o->status == CNB_CHECK_PASSED) return;
    printf("%-10s %-7s %-15s %-24s %-36s %-9s", cnb_check_status_name(o->status), b->name,
           family, label, shape, mode);
    if (o->status == CNB_CHECK_SKIPPED) {
        printf("  %s\n", o->reason);
        return;
    }
    printf("  relL2 %.2e (tol %.0e)  max|d| %.2e  max rel %.2e  mismatch %.3f%%%s%s\n",
           o->stats.rel_l2, o->tol, o->stats.max_abs, o->stats.max_rel,
           100 * o->stats.mismatch_share, extra ? "  " : "", extra ? extra : "");
    if (o->status == CNB_CHECK_MISTRUSTED) printf("           %s\n", o->reason);
    if (o->status == CNB_CHECK_FAILED) {
        if (o->reason[0]) printf("           %s\n", o->reason);
        for (int i = 0; i < o->listed; i++)
            printf("           [%zu] expected %.9g got %.9g (diff %.3g)\n", o->bad_index[i],
                   o->bad_expected[i], o->bad_got[i],
                   fabs((double)o->bad_got[i] - (double)o->bad_expected[i]));
        char repro[1024];
        repro_command(s, b, family, label, strcmp(family, "training") ? mode : NULL, repro,
                      sizeof repro);
        printf("           reproduce: %s\n", repro);
    }
    fflush(stdout);
}

static void record(ck_state *s, ck_backend *b, const char *family, const char *label,
                   const char *shape, const char *mode, const cnb_check_outcome *o,
                   cJSON *extra) {
    b->count[o->status]++;
    s->total[o->status]++;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "backend", b->name);
    cJSON_AddStringToObject(j, "family", family);
    cJSON_AddStringToObject(j, "label", label);
    cJSON_AddStringToObject(j, "shape", shape);
    cJSON_AddStringToObject(j, "mode", mode);
    cJSON_AddStringToObject(j, "status", cnb_check_status_name(o->status));
    if (o->reason[0]) cJSON_AddStringToObject(j, "reason", o->reason);
    if (o->status != CNB_CHECK_SKIPPED) {
        cJSON_AddNumberToObject(j, "rel_l2", isfinite(o->stats.rel_l2) ? o->stats.rel_l2 : 1e308);
        cJSON_AddNumberToObject(j, "max_abs", o->stats.max_abs);
        cJSON_AddNumberToObject(j, "max_rel", o->stats.max_rel);
        cJSON_AddNumberToObject(j, "mismatch_share", o->stats.mismatch_share);
        cJSON_AddNumberToObject(j, "zero_share", o->stats.zero_share);
        cJSON_AddNumberToObject(j, "count", (double)o->stats.count);
        cJSON_AddNumberToObject(j, "tolerance", o->tol);
        cJSON_AddNumberToObject(j, "point_tolerance", o->point_tol);
    }
    if (o->status == CNB_CHECK_FAILED) {
        cJSON *mm = cJSON_AddArrayToObject(j, "first_mismatches");
        for (int i = 0; i < o->listed; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "index", (double)o->bad_index[i]);
            cJSON_AddNumberToObject(e, "expected", o->bad_expected[i]);
            cJSON_AddNumberToObject(e, "got", isfinite(o->bad_got[i]) ? o->bad_got[i] : 1e308);
            cJSON_AddItemToArray(mm, e);
        }
        char repro[1024];
        repro_command(s, b, family, label, strcmp(family, "training") ? mode : NULL, repro,
                      sizeof repro);
        cJSON_AddStringToObject(j, "reproduce", repro);
    }
    if (extra) cJSON_AddItemToObject(j, "details", extra);
    cJSON_AddItemToArray(s->checks, j);
}

/* ---- kernel checks ---- */

static int family_selected(const ck_state *s, int f) { return s->o.family_on[f]; }

static int model_selected(const ck_state *s, const char *name) {
    if (s->o.n_models == 0) return 1;
    for (int i = 0; i < s->o.n_models; i++)
        if (strcmp(s->o.models[i], name) == 0) return 1;
    return 0;
}

static void run_kernel_case(ck_state *s, const cnb_check_case *c, int exact) {
    const char *family = cnb_check_family_name(c->family);
    const char *mode = mode_name(exact);
    char shape[256], err[CNB_ERR_LEN];
    cnb_check_case_shape(c, shape, sizeof shape);
    cnb_check_data d;
    cnb_check_outcome o;
    if (cnb_check_prepare(c, exact, check_seed(s->o.seed, family, c->label, exact), &d, err,
                          sizeof err) != 0) {
        fprintf(stderr, "cnnbench check: %s\n", err);
        return;
    }
    /* the reference runs a fused family as the separate kernels it stands for */
    cnb_status ref_st = cnb_check_run_composed(&d, s->ref_lib.api, s->ref_ctx,
                                               d.ref, err, sizeof err);
    char ref_err[CNB_ERR_LEN];
    snprintf(ref_err, sizeof ref_err, "%s", err);
    float *got = malloc((d.out_count ? d.out_count : 1) * sizeof(float));
    for (int i = 0; i < s->nb; i++) {
        ck_backend *b = &s->b[i];
        if (!b->usable) continue;
        memset(&o, 0, sizeof o);
        int slot_absent = 0;
        char line_shape[sizeof shape + 32]; /* the shape, and how this backend was judged */
        snprintf(line_shape, sizeof line_shape, "%s", shape);
        if (!got) {
            o.status = CNB_CHECK_FAILED;
            snprintf(o.reason, sizeof o.reason, "out of host memory");
        } else if (ref_st != CNB_OK) {
            /* The reference could not run this shape: nothing to compare with. */
            o.status = ref_st == CNB_ERR_UNSUPPORTED ? CNB_CHECK_SKIPPED : CNB_CHECK_FAILED;
            snprintf(o.reason, sizeof o.reason, "reference failed: %.1200s", ref_err);
        } else {
            cnb_status st = cnb_check_run(&d, b->api, b->actx, got, err, sizeof err);
            if (st == CNB_ERR_UNSUPPORTED) {
                o.status = CNB_CHECK_SKIPPED;
                snprintf(o.reason, sizeof o.reason, "not supported by the backend: %.1200s", err);
                slot_absent = !cnb_check_case_slot_present(c, b->api);
            } else if (st != CNB_OK) {
                o.status = CNB_CHECK_FAILED;
                snprintf(o.reason, sizeof o.reason, "%.1200s", err);
            } else if (!b->is_naive && uses_transform(b, c)) {
                /* not a sum of products: the tolerance, never bit equality */
                cnb_check_data relaxed = d;
                relaxed.exact = 0;
                double tol = tolerance_for(s, b, c->family);
                cnb_check_judge(&relaxed, got, tol > TOL_TRANSFORM ? tol : TOL_TRANSFORM,
                                TOL_TRANSFORM, &o);
                size_t used = strlen(line_shape);
                snprintf(line_shape + used, sizeof line_shape - used, " [transform algorithm]");
            } else {
                cnb_check_judge(&d, got, tolerance_for(s, b, c->family),
                                b->is_naive || c->family == CNB_CK_MEMORY ? 0.0 : POINT_TOL, &o);
                if (b->is_naive && o.status == CNB_CHECK_FAILED)
                    snprintf(o.reason, sizeof o.reason,
                             "naive differs from itself: the reference is not deterministic");
            }
        }
        /* a backend that leaves an optional fused slot to the harness: one line in the summary
         * instead of one per case (the cases stay in the report, SKIPPED) */
        if (slot_absent) b->slot_absent[c->family]++;
        else print_line(s, b, family, c->label, line_shape, mode, &o, NULL);
        record(s, b, family, c->label, line_shape, mode, &o, NULL);
    }
    free(got);
    cnb_check_data_free(&d);
}

/* The design's seed vector: corr2d of a 4x4 ramp with a 3x3 ramp is [[96,132],[132,168]]. */
static void run_corr2d_vector(ck_state *s) {
    const float x[16] = {0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6};
    const float k[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    const float want[4] = {96, 132, 132, 168};
    cnb_check_case c = {.family = CNB_CK_CORR2D, .conv = {.h = 4, .w = 4, .r = 3, .s = 3}};
    snprintf(c.label, sizeof c.label, "vector.design");
    if (!model_selected(s, "edge") && !model_selected(s, "vector")) return;
    if (s->o.shape_glob && fnmatch(s->o.shape_glob, c.label, 0) != 0) return;
    if (!(s->o.modes & MODE_EXACT)) return;
    cnb_check_data d;
    char err[CNB_ERR_LEN];
    if (cnb_check_prepare(&c, 1, 0, &d, err, sizeof err) != 0) return;
    memcpy(d.host[0], x, sizeof x);
    memcpy(d.host[1], k, sizeof k);
    memcpy(d.ref, want, sizeof want);
    for (int i = 0; i < s->nb; i++) {
        ck_backend *b = &s->b[i];
        if (!b->usable) continue;
        float got[4] = {0};
        cnb_check_outcome o;
        memset(&o, 0, sizeof o);
        cnb_status st = cnb_check_run(&d, b->api, b->actx, got, err, sizeof err);
        if (st != CNB_OK) {
            o.status = st == CNB_ERR_UNSUPPORTED ? CNB_CHECK_SKIPPED : CNB_CHECK_FAILED;
            snprintf(o.reason, sizeof o.reason, "%.1200s", err);
        } else {
            cnb_check_judge(&d, got, 0.0, 0.0, &o);
        }
        print_line(s, b, "corr2d", c.label, "4x4 * 3x3 = [[96,132],[132,168]]", "exact", &o,
                   NULL);
        record(s, b, "corr2d", c.label, "4x4 * 3x3 = [[96,132],[132,168]]", "exact", &o, NULL);
    }
    cnb_check_data_free(&d);
}

#define MAX_CASES 4096

static int run_kernel_checks(ck_state *s, cnb_model **models, int n_models) {
    cnb_check_case *cases = malloc(MAX_CASES * sizeof *cases);
    char (*keys)[320] = malloc(MAX_CASES * sizeof *keys);
    if (!cases || !keys) {
        free(cases);
        free(keys);
        fprintf(stderr, "cnnbench check: out of memory\n");
        return -1;
    }
    int n = 0;
    for (int i = 0; i < n_models; i++)
        n += cnb_check_cases_for_model(models[i], s->o.batch, cases + n, MAX_CASES - n);
    if (model_selected(s, "edge")) n += cnb_check_edge_cases(cases + n, MAX_CASES - n);

    run_corr2d_vector(s);
    int run = 0, dup = 0;
    for (int i = 0; i < n; i++) {
        const cnb_check_case *c = &cases[i];
        if (!family_selected(s, c->family)) continue;
        if (s->o.shape_glob && fnmatch(s->o.shape_glob, c->label, 0) != 0) continue;
        /* Two models with the same layer shape (network and network3 share their first
         * convolutions) are checked once, under the first model's name. */
        cnb_check_case_key(c, keys[run], sizeof keys[run]);
        int seen = 0;
        for (int j = 0; j < run && !seen; j++) seen = strcmp(keys[j], keys[run]) == 0;
        if (seen) {
            dup++;
            continue;
        }
        run++;
        if (s->o.modes & MODE_RANDOM) run_kernel_case(s, c, 0);
        if ((s->o.modes & MODE_EXACT) && cnb_check_case_supports_exact(c))
            run_kernel_case(s, c, CNB_CHECK_EXACT);
        if ((s->o.modes & MODE_NONFINITE) && cnb_check_case_supports_nonfinite(c))
            run_kernel_case(s, c, CNB_CHECK_NONFINITE);
    }
    if (dup && !s->o.quiet)
        printf("(%d shapes shared between models were checked once, under the first model)\n",
               dup);
    free(cases);
    free(keys);
    return 0;
}

/* ---- whole-training agreement ---- */

typedef struct train_out {
    float *losses;
    long steps;
    float *params;
    double test_accuracy;
    int ok;
    char why[CNB_ERR_LEN + 64];
} train_out;

static void train_once(const cnb_backend *api, cnb_context *ctx, const cnb_model *m,
                       const cnb_dataset *train, const cnb_dataset *test,
                       const cnb_run_settings *st, train_out *out) {
    memset(out, 0, sizeof *out);
    cnb_trainer *t = NULL;
    cnb_run_result *r = calloc(1, sizeof *r);
    char err[CNB_ERR_LEN];
    out->params = malloc((m->n_params ? m->n_params : 1) * sizeof(float));
    if (!r || !out->params) {
        snprintf(out->why, sizeof out->why, "out of host memory");
    } else if (cnb_trainer_create(api, ctx, m, train, test, st, &t, err, sizeof err) != 0) {
        snprintf(out->why, sizeof out->why, "%s", err);
    } else if (cnb_trainer_run(t, r) != 0) {
        snprintf(out->why, sizeof out->why, "%.1000s", r->message);
    } else if (cnb_trainer_get_params(t, out->params, err, sizeof err) != 0) {
        snprintf(out->why, sizeof out->why, "%s", err);
    } else {
        out->ok = 1;
        out->steps = r->total_steps;
        out->losses = r->step_losses; /* taken over */
        r->step_losses = NULL;
        out->test_accuracy = r->final_test_accuracy;
    }
    cnb_trainer_destroy(t);
    if (r) cnb_run_result_free(r);
    free(r);
}

static void train_out_free(train_out *o) {
    free(o->losses);
    free(o->params);
    memset(o, 0, sizeof *o);
}

/* The data the training checks run on: need training images, the test limit as given. Returns
 * the dataset's kind, or NULL after saying why (for the checks named by what). */
static const char *open_check_data(const ck_state *s, int need, const char *what,
                                   cnb_dataset *train, cnb_dataset *test) {
    char err[CNB_ERR_LEN];
    const char *kind = s->o.dataset ? s->o.dataset : "fashion-mnist";
    if (cnb_dataset_open(kind, s->o.data, need, s->o.test_limit, train, test, err,
                         sizeof err) != 0) {
        fprintf(stderr, "cnnbench check: %s: data: %s\n", what, err);
        return NULL;
    }
    return kind;
}

static int run_training_checks(ck_state *s, cnb_model **models, int n_models) {
    if (!s->o.training || !family_selected(s, CNB_CK_TRAINING) || n_models == 0) return 0;
    int need = 0;
    for (int i = 0; i < n_models; i++) {
        char label[128];
        snprintf(label, sizeof label, "%s.steps%d", models[i]->name, s->o.steps);
        if (s->o.shape_glob && fnmatch(s->o.shape_glob, label, 0) != 0) continue;
        if (models[i]->batch * s->o.steps > need) need = models[i]->batch * s->o.steps;
    }
    if (need == 0) return 0;
    cnb_dataset train = {0}, test = {0};
    const char *kind = open_check_data(s, need, "training agreement", &train, &test);
    if (!kind) return -1;
    if (!s->o.quiet)
        printf("training agreement: %d steps per model on %s (%d test images), vs naive\n",
               s->o.steps, kind, test.count);
    for (int i = 0; i < n_models; i++) {
        const cnb_model *m = models[i];
        char label[128], shape[256];
        snprintf(label, sizeof label, "%s.steps%d", m->name, s->o.steps);
        if (s->o.shape_glob && fnmatch(s->o.shape_glob, label, 0) != 0) continue;
        cnb_run_settings st;
        cnb_settings_from_model(m, &st);
        st.epochs = 1;
        st.max_steps = s->o.steps;
        st.seed = s->o.seed;
        cnb_dataset view = train;
        if (view.count > m->batch * s->o.steps) view.count = m->batch * s->o.steps;
        snprintf(shape, sizeof shape, "batch %d, %s lr %g, %d test images", m->batch,
                 st.optimizer, st.lr, test.count);
        /* The reference is naive's separate kernels; the backends use their fused slots
         * unless --no-fusion. */
        train_out ref;
        st.no_fusion = 1;
        train_once(s->ref_lib.api, s->ref_ctx, m, &view, &test, &st, &ref);
        st.no_fusion = s->o.no_fusion;
        for (int bi = 0; bi < s->nb; bi++) {
            ck_backend *b = &s->b[bi];
            if (!b->usable) continue;
            cnb_check_outcome o;
            memset(&o, 0, sizeof o);
            o.tol = b->is_naive ? 0.0 : TOL_TRAIN;
            o.point_tol = o.tol;
            cJSON *extra = NULL;
            char note[256] = "", line_shape[sizeof shape + 32];
            snprintf(line_shape, sizeof line_shape, "%s", shape);
            if (!ref.ok) {
                o.status = CNB_CHECK_FAILED;
                snprintf(o.reason, sizeof o.reason, "reference training failed: %.1200s", ref.why);
            } else {
                train_out got;
                train_once(b->api, b->actx, m, &view, &test, &st, &got);
                if (!got.ok) {
                    o.status = CNB_CHECK_FAILED;
                    snprintf(o.reason, sizeof o.reason, "training failed: %.1200s", got.why);
                } else if (got.steps != ref.steps) {
                    o.status = CNB_CHECK_FAILED;
                    snprintf(o.reason, sizeof o.reason, "ran %ld steps, the reference %ld",
                             got.steps, ref.steps);
                } else {
                    if (training_uses_transform(b, m, m->batch)) {
                        o.tol = o.point_tol = TOL_TRAIN_TRANSFORM;
                        snprintf(line_shape, sizeof line_shape, "%s [transform algorithm]",
                                 shape);
                    }
                    cnb_compare_stats ls;
                    cnb_compare(got.losses, ref.losses, (size_t)ref.steps, o.tol, &ls);
                    cnb_compare(got.params, ref.params, m->n_params, o.tol, &o.stats);
                    double dacc = 100.0 * fabs(got.test_accuracy - ref.test_accuracy);
                    int pass = cnb_compare_passed(&o.stats, o.tol) &&
                               cnb_compare_passed(&ls, o.tol) &&
                               (b->is_naive ? dacc == 0.0 : dacc <= TOL_ACC_PP);
                    snprintf(note, sizeof note,
                             "losses relL2 %.2e max rel %.2e; test acc %.2f%% vs %.2f%%", ls.rel_l2,
                             ls.max_rel, 100 * got.test_accuracy, 100 * ref.test_accuracy);
                    extra = cJSON_CreateObject();
                    cJSON_AddNumberToObject(extra, "steps", (double)ref.steps);
                    cJSON_AddNumberToObject(extra, "loss_rel_l2", ls.rel_l2);
                    cJSON_AddNumberToObject(extra, "loss_max_rel", ls.max_rel);
                    cJSON_AddNumberToObject(extra, "test_accuracy", got.test_accuracy);
                    cJSON_AddNumberToObject(extra, "reference_test_accuracy", ref.test_accuracy);
                    cJSON_AddNumberToObject(extra, "accuracy_tolerance_pp", TOL_ACC_PP);
                    o.status = pass ? CNB_CHECK_PASSED : CNB_CHECK_FAILED;
                    if (!pass) {
                        snprintf(o.reason, sizeof o.reason,
                                 "weights relL2 %.2e, losses relL2 %.2e (tol %.0e), test accuracy "
                                 "differs by %.2f pp (tol %.1f)",
                                 o.stats.rel_l2, ls.rel_l2, o.tol, dacc, TOL_ACC_PP);
                        /* the first steps whose losses differ, as the mismatch listing */
                        for (long k = 0; k < ref.steps && o.listed < CNB_CHECK_LIST; k++) {
                            double dl = fabs((double)got.losses[k] - ref.losses[k]);
                            if (dl <= o.tol * fmax(1.0, fabs((double)ref.losses[k]))) continue;
                            o.bad_index[o.listed] = (size_t)k;
                            o.bad_expected[o.listed] = ref.losses[k];
                            o.bad_got[o.listed] = got.losses[k];
                            o.listed++;
                        }
                    }
                }
                train_out_free(&got);
            }
            print_line(s, b, "training", label, line_shape, "random", &o, note[0] ? note : NULL);
            record(s, b, "training", label, line_shape, "random", &o, extra);
        }
        train_out_free(&ref);
    }
    cnb_dataset_free(&train);
    cnb_dataset_free(&test);
    return 0;
}

/* ---- N ranks against one (check_dist.h) ---- */

typedef struct dist_emit_ctx {
    ck_state *s;
    ck_backend *b;
} dist_emit_ctx;

static void dist_emit(void *user, const char *label, const char *shape, const char *mode,
                      const cnb_check_outcome *o, const char *note, cJSON *extra) {
    dist_emit_ctx *e = user;
    print_line(e->s, e->b, "distributed", label, shape, mode, o, note);
    record(e->s, e->b, "distributed", label, shape, mode, o, extra);
}

static int run_distributed_checks(ck_state *s, cnb_model **models, int n_models) {
    if (!family_selected(s, CNB_CK_DISTRIBUTED) || n_models == 0) return 0;
    cnb_dist *d = cnb_dist_world();
    int ranks = cnb_dist_size(d);
    for (int bi = 0; ranks < 2 && bi < s->nb; bi++) {
        if (!s->b[bi].usable) continue;
        cnb_check_outcome o;
        memset(&o, 0, sizeof o);
        o.status = CNB_CHECK_SKIPPED;
        snprintf(o.reason, sizeof o.reason, "%s",
                 cnb_dist_built() ? "needs 2 or more ranks: run it under mpirun -np N (N >= 2)"
                                  : "this cnnbench was built without MPI");
        print_line(s, &s->b[bi], "distributed", "*", "N ranks against one", "-", &o, NULL);
        record(s, &s->b[bi], "distributed", "*", "N ranks against one", "-", &o, NULL);
    }
    if (ranks < 2) return 0;
    int need = 0;
    for (int i = 0; i < n_models; i++)
        if (models[i]->batch * s->o.steps > need) need = models[i]->batch * s->o.steps;
    cnb_dataset train = {0}, test = {0};
    const char *kind = open_check_data(s, need, "distributed", &train, &test);
    if (!kind) return -1;
    /* One more than a multiple of the ranks, so the slices are uneven. */
    int batch = s->o.batch * ranks + 1;
    if (!s->o.quiet)
        printf("distributed: %d ranks (%s) against one process: sharded weight gradients at "
               "batch %d, %d training steps per model\n",
               ranks, cnb_dist_library(d), batch, s->o.steps);
    for (int i = 0; i < n_models; i++) {
        const cnb_model *m = models[i];
        for (int bi = 0; bi < s->nb; bi++) {
            ck_backend *b = &s->b[bi];
            if (!b->usable) continue;
            dist_emit_ctx e = {s, b};
            cnb_dist_check_gradients(d, b->api, b->actx, m, batch, s->o.seed,
                                     (s->o.modes & MODE_EXACT) != 0,
                                     (s->o.modes & MODE_RANDOM) != 0, dist_emit, &e);
            if (!s->o.training) continue;
            cnb_dataset view = train;
            if (view.count > m->batch * s->o.steps) view.count = m->batch * s->o.steps;
            cnb_dist_check_training(d, b->api, b->actx, m, &view, &test, s->o.steps, s->o.seed,
                                    dist_emit, &e);
        }
    }
    cnb_dataset_free(&train);
    cnb_dataset_free(&test);
    return 0;
}

/* ---- the verb ---- */

enum { O_FAMILY = 256, O_SHAPE, O_MODE, O_STEPS, O_NO_TRAINING, O_TF32, O_DET, O_NO_FUSION,
       O_DIRECT_CONV };

static const struct option check_flags[] = {
    {"family", required_argument, 0, O_FAMILY}, {"shape", required_argument, 0, O_SHAPE},
    {"mode", required_argument, 0, O_MODE}, {"steps", required_argument, 0, O_STEPS},
    {"no-training", no_argument, 0, O_NO_TRAINING}, {"tf32", no_argument, 0, O_TF32},
    {"deterministic", no_argument, 0, O_DET}, {"no-fusion", no_argument, 0, O_NO_FUSION},
    {"direct-conv", no_argument, 0, O_DIRECT_CONV},
    {0, 0, 0, 0}};

#define CHECK_PROG "cnnbench check"

static int parse_families(const char *arg, ck_opts *o) {
    char buf[4096], *items[CNB_MAX_LIST];
    snprintf(buf, sizeof buf, "%s", arg);
    int n = cnb_split_list(buf, items, CNB_MAX_LIST);
    if (n < 0) {
        fprintf(stderr, CHECK_PROG ": --family: '%s' is not a comma list\n", arg);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int f = cnb_check_family_parse(items[i]);
        if (f < 0) {
            fprintf(stderr, CHECK_PROG ": --family: unknown kernel family '%s' (see --help)\n",
                    items[i]);
            return -1;
        }
        o->family_on[f] = 1;
        o->any_family = 1;
    }
    return 0;
}

static int on_check_flag(void *user, int id, const char *arg) {
    ck_opts *o = user;
    long v;
    switch (id) {
    case O_FAMILY: return parse_families(arg, o);
    case O_SHAPE: o->shape_glob = arg; return 0;
    case O_MODE:
        if (strcmp(arg, "random") == 0) o->modes = MODE_RANDOM;
        else if (strcmp(arg, "exact") == 0) o->modes = MODE_EXACT;
        else if (strcmp(arg, "nonfinite") == 0) o->modes = MODE_NONFINITE;
        else if (strcmp(arg, "both") == 0) o->modes = MODE_RANDOM | MODE_EXACT;
        else if (strcmp(arg, "all") == 0) o->modes = MODE_RANDOM | MODE_EXACT | MODE_NONFINITE;
        else {
            fprintf(stderr, CHECK_PROG ": --mode: '%s' is not random, exact, nonfinite, both or "
                            "all\n", arg);
            return -1;
        }
        return 0;
    case O_STEPS:
        if (cnb_opt_long(CHECK_PROG, "--steps", arg, 1, 100000, &v) != 0) return -1;
        o->steps = (int)v;
        return 0;
    case O_NO_TRAINING: o->training = 0; return 0;
    case O_TF32: o->tf32 = 1; return 0;
    case O_DET: o->deterministic = 1; return 0;
    case O_NO_FUSION: o->no_fusion = 1; return 0;
    case O_DIRECT_CONV: o->direct_conv = 1; return 0;
    }
    return -1;
}

static int parse_opts(int argc, char **argv, ck_opts *o) {
    *o = (ck_opts){.modes = MODE_RANDOM | MODE_EXACT | MODE_NONFINITE, .batch = 8, .seed = 42, .steps = 10,
                   .test_limit = 500, .training = 1, .out = "cnnbench-check.json"};
    cnb_common_opts *co = &o->common;
    int rc = cnb_parse_options(CHECK_PROG, argc, argv,
                               CNB_OPT_BACKENDS | CNB_OPT_MODELS | CNB_OPT_BATCH | CNB_OPT_SEED |
                                   CNB_OPT_THREADS | CNB_OPT_DATA | CNB_OPT_TEST_LIMIT |
                                   CNB_OPT_OUT | CNB_OPT_QUIET,
                               check_flags, on_check_flag, o, usage, co, NULL);
    if (rc != 0) return rc;
    if (cnb_opt_single(CHECK_PROG, "--batch", co->n_batches) != 0) return -1;
    CNB_TAKE_COMMON_OPTS(o, co);
    if (co->n_batches) o->batch = co->batches[0];
    if (co->test_limit) o->test_limit = co->test_limit;
    /* Under mpirun the check is about the ranks; alone, the distributed family needs asking. */
    int ranks = cnb_dist_size(cnb_dist_world());
    if (!o->any_family)
        for (int f = 0; f < CNB_CK_COUNT; f++)
            o->family_on[f] = ranks > 1 ? f == CNB_CK_DISTRIBUTED : f != CNB_CK_DISTRIBUTED;
    return 0;
}

static void open_backends(ck_state *s, const cnb_config *cfg) {
    static const char *defaults[16];
    if (s->o.n_backends == 0) {
        for (int i = 0; i < cnb_known_backend_count && i < 16; i++)
            defaults[i] = cnb_known_backends[i];
        s->o.n_backends = cnb_known_backend_count < 16 ? cnb_known_backend_count : 16;
        for (int i = 0; i < s->o.n_backends; i++) s->o.backends[i] = (char *)defaults[i];
    }
    s->b = calloc((size_t)s->o.n_backends, sizeof *s->b);
    if (!s->b) return;
    s->nb = s->o.n_backends;
    for (int i = 0; i < s->nb; i++) {
        ck_backend *b = &s->b[i];
        b->name = s->o.backends[i];
        int opened = cnb_open_backend(b->name, cfg, &b->lib, &b->ctx, b->why, sizeof b->why);
        b->is_gpu = b->lib.device_kind == CNB_DEVICE_GPU;
        if (opened != 0) {
            b->usable = 0;
            continue;
        }
        b->usable = 1;
        b->name = b->lib.api->name;
        b->is_naive = strcmp(b->name, "naive") == 0;
        cnb_backend_info(b->lib.api, b->ctx, cnb_info_collect, &b->info);
        b->api = b->lib.api;
        b->actx = b->ctx;
        cnb_test_faults_env(b->name, b->fault_env, sizeof b->fault_env);
        if (b->fault_env[0]) {
            /* a planted fault for the tests of the checks themselves: route through the proxy */
            cnb_profiler_init(&b->proxy, b->lib.api, b->ctx, 0);
            b->api = cnb_profiler_api(&b->proxy);
            b->actx = cnb_profiler_ctx(&b->proxy);
            fprintf(stderr, "cnnbench check: TEST FAULT ACTIVE for %s: %s\n", b->name,
                    b->fault_env);
        }
    }
}

static void print_summary(const ck_state *s) {
    printf("\nsummary:\n");
    for (int i = 0; i < s->nb; i++) {
        const ck_backend *b = &s->b[i];
        printf("  %-8s %5ld passed  %4ld failed  %4ld skipped  %4ld mistrusted", b->name,
               b->count[CNB_CHECK_PASSED], b->count[CNB_CHECK_FAILED], b->count[CNB_CHECK_SKIPPED],
               b->count[CNB_CHECK_MISTRUSTED]);
        if (!b->usable) printf("  (cannot run here: see the SKIPPED line above)");
        printf("\n");
        for (int f = 0; f < CNB_CK_COUNT; f++)
            if (b->slot_absent[f])
                printf("           %ld of the skipped: %s, %s, which %s leaves to the harness (it "
                       "runs the separate kernels checked above)\n",
                       b->slot_absent[f], cnb_check_family_name(f),
                       f == CNB_CK_CONV_BWD_FUSED  ? "the fused convolution backward"
                       : f == CNB_CK_CONV_POOL_FWD ? "the fused convolution + activation + "
                                                     "pooling forward"
                       : f == CNB_CK_POOL_CONV_BWD ? "the fused pooling + activation + "
                                                     "convolution backward"
                                                   : "a fused slot",
                       b->name);
    }
    printf("  total    %5ld passed  %4ld failed  %4ld skipped  %4ld mistrusted\n",
           s->total[CNB_CHECK_PASSED], s->total[CNB_CHECK_FAILED], s->total[CNB_CHECK_SKIPPED],
           s->total[CNB_CHECK_MISTRUSTED]);
}

/* The report: the context block, tolerances and their reasons, settings, backends, every check
 * (taken over from s->checks) and the summary. */
static cJSON *check_report_json(ck_state *s, int argc, char **argv, int threads,
                                const cnb_machine *mc) {
    cJSON *root = cnb_context_json("check", argc, argv, s->o.seed, threads, mc);
    cJSON *tol = cJSON_AddObjectToObject(root, "tolerances");
    cJSON_AddNumberToObject(tol, "fp32_rel_l2", TOL_FP32);
    cJSON_AddNumberToObject(tol, "tf32_rel_l2", TOL_TF32);
    cJSON_AddNumberToObject(tol, "training_rel_l2", TOL_TRAIN);
    cJSON_AddNumberToObject(tol, "transform_rel_l2", TOL_TRANSFORM);
    cJSON_AddNumberToObject(tol, "training_transform_rel_l2", TOL_TRAIN_TRANSFORM);
    cJSON_AddNumberToObject(tol, "test_accuracy_pp", TOL_ACC_PP);
    cJSON_AddNumberToObject(tol, "point_tolerance", POINT_TOL);
    cJSON_AddStringToObject(tol, "exact_mode", "bit for bit");
    cJSON_AddStringToObject(tol, "nonfinite_mode",
                            "NaN and +-Inf at the same positions, finite points as random mode");
    cJSON_AddStringToObject(tol, "reasons", "see the comment at the top of harness/cli/cmd_check.c");
    cJSON *set = cJSON_AddObjectToObject(root, "settings");
    cJSON_AddNumberToObject(set, "batch", s->o.batch);
    cJSON_AddNumberToObject(set, "training_steps", s->o.training ? s->o.steps : 0);
    cJSON_AddNumberToObject(set, "test_limit", s->o.test_limit);
    cJSON_AddBoolToObject(set, "tf32", s->o.tf32);
    cJSON_AddBoolToObject(set, "deterministic", s->o.deterministic);
    cJSON_AddBoolToObject(set, "fusion", !s->o.no_fusion);
    cJSON_AddBoolToObject(set, "direct_conv", s->o.direct_conv);
    cJSON *bj = cJSON_AddArrayToObject(root, "backends");
    for (int i = 0; i < s->nb; i++) {
        const ck_backend *b = &s->b[i];
        cJSON *e = cnb_backend_json(b->name, b->usable, NULL, b->why, b->lib.path, &b->info,
                                    b->fault_env);
        cJSON *cnt = cJSON_AddObjectToObject(e, "counts");
        for (int k = 0; k < 4; k++) cJSON_AddNumberToObject(cnt, cnb_check_status_name(k), (double)b->count[k]);
        cJSON_AddItemToArray(bj, e);
    }
    cJSON_AddItemToObject(root, "checks", s->checks);
    s->checks = NULL;
    cJSON *sum = cJSON_AddObjectToObject(root, "summary");
    for (int k = 0; k < 4; k++) cJSON_AddNumberToObject(sum, cnb_check_status_name(k), (double)s->total[k]);
    return root;
}

int cnb_cmd_check(int argc, char **argv) {
    static ck_state s;
    memset(&s, 0, sizeof s);
    int prc = parse_opts(argc, argv, &s.o);
    if (prc != 0) return prc > 0 ? 0 : EXIT_USAGE;
    s.argc = argc;
    s.argv = argv;
    int rc = EXIT_USAGE;
    cnb_machine mc;
    cnb_machine_probe(&mc);
    int threads = s.o.threads ? s.o.threads
                  : cnb_dist_world() ? cnb_dist_default_threads(cnb_dist_world(), mc.cores)
                                     : (mc.cores > 0 ? mc.cores : 1);
    cnb_config cfg = {.size = sizeof cfg, .threads = threads, .deterministic = s.o.deterministic,
                      .allow_tf32 = s.o.tf32, .direct_conv = s.o.direct_conv};
    char err[CNB_ERR_LEN];
    cnb_model *models[CNB_MAX_LIST] = {0};
    int n_models = 0;
    cJSON *root = NULL;

    /* models: the named ones, or every file in the models directory */
    char *names[CNB_MAX_LIST];
    int n_names = 0;
    if (s.o.n_models == 0) {
        n_names = cnb_list_model_names(names, CNB_MAX_LIST - 1); /* one slot for "edge" */
        for (int i = 0; i < n_names; i++) s.o.models[i] = names[i];
        s.o.models[n_names] = "edge";
        s.o.n_models = n_names + 1;
    }
    for (int i = 0; i < s.o.n_models; i++) {
        if (strcmp(s.o.models[i], "edge") == 0 || strcmp(s.o.models[i], "vector") == 0) continue;
        char path[PATH_MAX];
        cnb_model *m = calloc(1, sizeof *m);
        if (!m || cnb_model_resolve(s.o.models[i], path, sizeof path, err, sizeof err) != 0 ||
            cnb_model_load(path, m, NULL, err, sizeof err) != 0) {
            fprintf(stderr, "cnnbench check: --model %s: %s\n", s.o.models[i],
                    m ? err : "out of memory");
            free(m);
            goto done;
        }
        models[n_models++] = m;
    }

    if (cnb_open_backend("naive", &cfg, &s.ref_lib, &s.ref_ctx, err, sizeof err) != 0) {
        fprintf(stderr, "cnnbench check: the naive reference backend cannot be loaded: %s\n", err);
        goto done;
    }
    open_backends(&s, &cfg);
    if (!s.b) goto done;
    s.checks = cJSON_CreateArray();

    printf("cnnbench check: reference naive (%s); seed %llu, layer shapes at batch %d, modes %s%s%s\n",
           s.ref_lib.path, (unsigned long long)s.o.seed, s.o.batch,
           s.o.modes & MODE_RANDOM ? "random " : "", s.o.modes & MODE_EXACT ? "exact " : "",
           s.o.modes & MODE_NONFINITE ? "nonfinite" : "");
    printf("tolerances: fp32 relL2 %.0e; exact mode and naive-vs-naive bit for bit; nonfinite "
           "mode NaN and +-Inf positions exactly; training relL2 %.0e over %d steps and test "
           "accuracy within %.1f pp; Winograd or FFT convolution (marked as a transform "
           "algorithm) %.0e, in "
           "training %.0e%s\n",
           TOL_FP32, TOL_TRAIN, s.o.steps, TOL_ACC_PP, TOL_TRANSFORM, TOL_TRAIN_TRANSFORM,
           s.o.tf32 ? "; TF32 conv/gemm 5e-3" : "");
    for (int i = 0; i < s.nb; i++) {
        ck_backend *b = &s.b[i];
        if (b->usable) continue;
        cnb_check_outcome o;
        memset(&o, 0, sizeof o);
        o.status = CNB_CHECK_SKIPPED;
        snprintf(o.reason, sizeof o.reason, "%.1200s", b->why);
        print_line(&s, b, "all", "*", "every check of this backend", "-", &o, NULL);
        record(&s, b, "all", "*", "every check of this backend", "-", &o, NULL);
    }

    if (run_kernel_checks(&s, models, n_models) != 0) goto done;
    if (run_training_checks(&s, models, n_models) != 0) goto done;
    if (run_distributed_checks(&s, models, n_models) != 0) goto done;

    print_summary(&s);
    root = check_report_json(&s, argc, argv, threads, &mc);
    if (cnb_dist_rank(cnb_dist_world()) != 0) { /* only rank 0 writes the report */
        rc = s.total[CNB_CHECK_FAILED] ? 1 : 0;
    } else if (cnb_write_json(s.o.out, root, err, sizeof err) != 0) {
        fprintf(stderr, "cnnbench check: report not saved: %s\n", err);
        rc = 1;
    } else {
        printf("report: %s\n", s.o.out);
        rc = s.total[CNB_CHECK_FAILED] ? 1 : 0;
    }
    if (s.total[CNB_CHECK_FAILED]) printf("FAILED: %ld check(s) disagree with the reference\n",
                                          s.total[CNB_CHECK_FAILED]);
done:
    cJSON_Delete(root);
    cJSON_Delete(s.checks);
    for (int i = 0; i < s.nb; i++)
        if (s.b[i].usable) cnb_close_backend(&s.b[i].lib, s.b[i].ctx);
    free(s.b);
    if (s.ref_ctx) cnb_close_backend(&s.ref_lib, s.ref_ctx);
    for (int i = 0; i < n_models; i++) free(models[i]);
    cnb_free_names(names, n_names);
    return rc;
}
