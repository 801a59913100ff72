/* cudnn_plan.c — descriptor parameters, the algorithm rule, the per-shape cache and version
 * rules of the cudnn backend (see cudnn_plan.h). Plain C with no cuDNN header, compiled into
 * the backend and into tests/test_gpu_plan.c. */
#include "cudnn_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cnb_cudnn_conv_params_from(const cnb_conv_desc *d, cnb_cudnn_conv_params *o) {
    memset(o, 0, sizeof *o);
    int x[4] = {d->n, d->c, d->h, d->w}, w[4] = {d->k, d->c, d->r, d->s},
        y[4] = {d->n, d->k, d->p, d->q}, b[4] = {1, d->k, 1, 1};
    memcpy(o->x, x, sizeof x);
    memcpy(o->w, w, sizeof w);
    memcpy(o->y, y, sizeof y);
    memcpy(o->bias, b, sizeof b);
    o->pad[0] = d->pad_h;
    o->pad[1] = d->pad_w;
    o->stride[0] = d->stride_h;
    o->stride[1] = d->stride_w;
    o->dilation[0] = o->dilation[1] = 1;
}

int cnb_cudnn_pool_uses_cudnn(int mode) { return mode == CNB_POOL_AVG; }

void cnb_cudnn_pool_params_from(const cnb_pool_desc *d, cnb_cudnn_pool_params *o) {
    memset(o, 0, sizeof *o);
    o->window[0] = d->kh;
    o->window[1] = d->kw;
    o->pad[0] = d->pad_h;
    o->pad[1] = d->pad_w;
    o->stride[0] = d->stride_h;
    o->stride[1] = d->stride_w;
    int x[4] = {d->n, d->c, d->h, d->w}, y[4] = {d->n, d->c, d->p, d->q};
    memcpy(o->x, x, sizeof x);
    memcpy(o->y, y, sizeof y);
}

int cnb_cudnn_pick(const cnb_cudnn_perf *perf, int count, int require_deterministic,
                   int allow_tf32, size_t max_workspace) {
    for (int i = 0; i < count; i++) {
        const cnb_cudnn_perf *p = &perf[i];
        if (!p->ok || p->memory > max_workspace) continue;
        if (require_deterministic && !p->deterministic) continue;
        if (!allow_tf32 && !p->fma_math) continue;
        return i;
    }
    return -1;
}

static const char *const fwd_names[] = {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT",
                                        "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
static const char *const bwd_data_names[] = {"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD",
                                             "WINOGRAD_NONFUSED"};
static const char *const bwd_filter_names[] = {"ALGO_0", "ALGO_1", "FFT", "ALGO_3",
                                               "WINOGRAD", "WINOGRAD_NONFUSED", "FFT_TILING"};

const char *cnb_cudnn_algo_name(int dir, int algo) {
    if (algo < 0) return "?";
    switch (dir) {
    case CNB_CUDNN_FWD:
        return algo < (int)(sizeof fwd_names / sizeof *fwd_names) ? fwd_names[algo] : "?";
    case CNB_CUDNN_BWD_DATA:
        return algo < (int)(sizeof bwd_data_names / sizeof *bwd_data_names) ? bwd_data_names[algo]
                                                                            : "?";
    case CNB_CUDNN_BWD_FILTER:
        return algo < (int)(sizeof bwd_filter_names / sizeof *bwd_filter_names)
                   ? bwd_filter_names[algo]
                   : "?";
    }
    return "?";
}

int cnb_cudnn_algo_sums_products(int dir, int algo) {
    switch (dir) {
    case CNB_CUDNN_FWD: return algo >= 0 && algo <= 3;               /* the GEMMs and DIRECT */
    case CNB_CUDNN_BWD_DATA: return algo == 0 || algo == 1;          /* ALGO_0, ALGO_1 */
    case CNB_CUDNN_BWD_FILTER: return algo == 0 || algo == 1 || algo == 3; /* ALGO_0/1/3 */
    }
    return 0;
}

void cnb_cudnn_keep_sums_only(cnb_cudnn_perf *perf, int count, int dir) {
    for (int i = 0; i < count; i++)
        if (!cnb_cudnn_algo_sums_products(dir, perf[i].algo)) perf[i].ok = 0;
}

int cnb_cudnn_conv_key_equal(const cnb_conv_desc *a, const cnb_conv_desc *b) {
    return a->n == b->n && a->c == b->c && a->h == b->h && a->w == b->w && a->k == b->k &&
           a->r == b->r && a->s == b->s && a->stride_h == b->stride_h &&
           a->stride_w == b->stride_w && a->pad_h == b->pad_h && a->pad_w == b->pad_w &&
           a->p == b->p && a->q == b->q;
}

cnb_cudnn_conv_entry *cnb_cudnn_cache_find(cnb_cudnn_conv_cache *c, const cnb_conv_desc *d) {
    for (int i = 0; i < c->count; i++)
        if (cnb_cudnn_conv_key_equal(&c->entries[i].key, d)) return &c->entries[i];
    return NULL;
}

cnb_cudnn_conv_entry *cnb_cudnn_cache_add(cnb_cudnn_conv_cache *c, const cnb_conv_desc *d) {
    if (c->count == c->cap) {
        int cap = c->cap ? 2 * c->cap : 16;
        cnb_cudnn_conv_entry *e = realloc(c->entries, (size_t)cap * sizeof *e);
        if (!e) return NULL;
        c->entries = e;
        c->cap = cap;
    }
    cnb_cudnn_conv_entry *e = &c->entries[c->count++];
    memset(e, 0, sizeof *e);
    e->key = *d;
    for (int i = 0; i < 3; i++) e->choice[i].algo = -1;
    return e;
}

void cnb_cudnn_cache_free(cnb_cudnn_conv_cache *c, void (*release)(void *descs)) {
    for (int i = 0; i < c->count; i++)
        if (c->entries[i].descs && release) release(c->entries[i].descs);
    free(c->entries);
    memset(c, 0, sizeof *c);
}

void cnb_cudnn_conv_key_format(const cnb_conv_desc *d, char *buf, size_t len) {
    snprintf(buf, len, "n%d c%d %dx%d k%d %dx%d s%dx%d p%dx%d", d->n, d->c, d->h, d->w, d->k,
             d->r, d->s, d->stride_h, d->stride_w, d->pad_h, d->pad_w);
}

static const char *source_words(int source) {
    switch (source) {
    case CNB_CUDNN_FROM_HEURISTIC_DET: return ", from heuristics (deterministic: no cudnnFind)";
    case CNB_CUDNN_FROM_HEURISTIC_NONE: return ", from heuristics (cudnnFind: none acceptable)";
    case CNB_CUDNN_FROM_HEURISTIC_ERROR: return ", from heuristics (cudnnFind failed)";
    }
    return "";
}

void cnb_cudnn_choice_format(int dir, const cnb_cudnn_choice *c, char *buf, size_t len) {
    if (c->failed) {
        snprintf(buf, len, "none acceptable (cached failure)");
        return;
    }
    if (c->algo < 0) {
        snprintf(buf, len, "not used yet");
        return;
    }
    char fell[64] = "";
    if (c->fallbacks)
        snprintf(fell, sizeof fell, ", after %d candidate(s) failed to run", c->fallbacks);
    snprintf(buf, len, "%s (%s, %s, workspace %zu B, %.3f ms%s%s)",
             cnb_cudnn_algo_name(dir, c->algo), c->fma_math ? "fma" : "tensor ops allowed",
             c->deterministic ? "deterministic" : "non-deterministic", c->workspace,
             (double)c->time_ms, source_words(c->source), fell);
}

/* Makes candidate i of c's ranked list the one in use. */
static void take_rank(cnb_cudnn_choice *c, int i) {
    const cnb_cudnn_perf *p = &c->ranked[i];
    c->rank = i;
    c->algo = p->algo;
    c->workspace = p->memory;
    c->deterministic = p->deterministic;
    c->fma_math = p->fma_math;
    c->math_type = p->math_type;
    c->time_ms = c->source == CNB_CUDNN_FROM_FIND ? p->time_ms : -1.0f;
}

cnb_status cnb_cudnn_choose(cnb_cudnn_choice *c, cnb_cudnn_query_fn query, void *user,
                            int deterministic, int allow_tf32, size_t max_workspace,
                            const char *what, char *err, size_t err_len) {
    cnb_cudnn_perf perf[CNB_CUDNN_MAX_ALGOS];
    char find_err[256] = "", heur_err[256] = "";
    int n = 0, pick = -1, find_n = -1, source = CNB_CUDNN_FROM_HEURISTIC_DET;
    if (!deterministic) {
        /* cudnnFind first; on an error or nothing acceptable, fall through to the heuristics. */
        n = 0;
        if (query(user, 0, perf, CNB_CUDNN_MAX_ALGOS, &n, find_err, sizeof find_err) == CNB_OK) {
            if (n < 0) n = 0;
            if (n > CNB_CUDNN_MAX_ALGOS) n = CNB_CUDNN_MAX_ALGOS;
            find_n = n;
            pick = cnb_cudnn_pick(perf, n, 0, allow_tf32, max_workspace);
            source = CNB_CUDNN_FROM_HEURISTIC_NONE;
        } else {
            if (!find_err[0]) snprintf(find_err, sizeof find_err, "failed");
            source = CNB_CUDNN_FROM_HEURISTIC_ERROR;
        }
        if (pick >= 0) source = CNB_CUDNN_FROM_FIND;
    }
    int heur_n = -1;
    if (pick < 0) {
        n = 0;
        cnb_status st = query(user, 1, perf, CNB_CUDNN_MAX_ALGOS, &n, heur_err, sizeof heur_err);
        if (st != CNB_OK && st != CNB_ERR_UNSUPPORTED) {
            /* A failed heuristics query (out of memory, a library error) may not recur: not
             * cached. */
            snprintf(err, err_len, "%s: %s", what, heur_err[0] ? heur_err : "heuristics failed");
            return st;
        }
        if (st == CNB_OK) {
            if (n < 0) n = 0;
            if (n > CNB_CUDNN_MAX_ALGOS) n = CNB_CUDNN_MAX_ALGOS;
            heur_n = n;
            pick = cnb_cudnn_pick(perf, n, deterministic, allow_tf32, max_workspace);
        }
    }
    if (pick < 0) {
        char find_part[300], heur_part[300];
        if (deterministic)
            snprintf(find_part, sizeof find_part, "cudnnFind not used (deterministic)");
        else if (find_n >= 0)
            snprintf(find_part, sizeof find_part, "cudnnFind: %d candidates", find_n);
        else
            snprintf(find_part, sizeof find_part, "cudnnFind: %s", find_err);
        if (heur_n >= 0)
            snprintf(heur_part, sizeof heur_part, "heuristics: %d candidates", heur_n);
        else
            snprintf(heur_part, sizeof heur_part, "heuristics: %s",
                     heur_err[0] ? heur_err : "not supported");
        memset(c, 0, sizeof *c);
        c->algo = -1;
        c->failed = 1;
        snprintf(c->failure, sizeof c->failure,
                 "%.100s: cuDNN offers no algorithm that is %s%s and needs at most %zu bytes of "
                 "workspace (%.120s; %.120s)",
                 what, allow_tf32 ? "any math" : "plain fp32 (CUDNN_FMA_MATH)",
                 deterministic ? ", deterministic" : "", max_workspace, find_part, heur_part);
        snprintf(err, err_len, "%s", c->failure);
        return CNB_ERR_UNSUPPORTED;
    }
    memset(c, 0, sizeof *c);
    c->source = source;
    /* The chosen one, then every later acceptable entry of the same list. */
    for (int i = pick; i < n; i++)
        if (i == pick || cnb_cudnn_pick(&perf[i], 1, deterministic, allow_tf32, max_workspace) == 0)
            c->ranked[c->ranked_count++] = perf[i];
    take_rank(c, 0);
    return CNB_OK;
}

int cnb_cudnn_fuse_bias(int fwd_algo, int have_bias, int refused) {
    return have_bias && !refused && fwd_algo == 1; /* CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM */
}

int cnb_cudnn_may_fall_back(cnb_status st) {
    return st == CNB_ERR_UNSUPPORTED || st == CNB_ERR_LIBRARY || st == CNB_ERR_OUT_OF_MEMORY;
}

cnb_status cnb_cudnn_run_ranked(cnb_cudnn_choice *c, int dir, cnb_cudnn_run_fn run, void *user,
                                const char *what, char *err, size_t err_len) {
    for (;;) {
        cnb_status st = run(user, c, err, err_len);
        if (st == CNB_OK || !cnb_cudnn_may_fall_back(st)) return st;
        if (c->rank + 1 < c->ranked_count) {
            take_rank(c, c->rank + 1);
            c->fallbacks++;
            continue;
        }
        char last[400];
        snprintf(last, sizeof last, "%.399s", err);
        int tried = c->ranked_count;
        c->algo = -1;
        c->failed = 1;
        snprintf(c->failure, sizeof c->failure,
                 "%.100s: every acceptable cuDNN algorithm failed to run (%d tried, the last %s: "
                 "%.300s)",
                 what, tried, cnb_cudnn_algo_name(dir, c->ranked[tried - 1].algo), last);
        snprintf(err, err_len, "%s", c->failure);
        return CNB_ERR_UNSUPPORTED;
    }
}

static void split(long v, long *major, long *minor, long *patch) {
    *major = v / 10000;
    *minor = (v % 10000) / 100;
    *patch = v % 100;
}

int cnb_cudnn_version_compat(long compiled, long loaded) {
    if (compiled == loaded) return CNB_VERSION_EQUAL;
    long cmaj, cmin, cpat, lmaj, lmin, lpat;
    split(compiled, &cmaj, &cmin, &cpat);
    split(loaded, &lmaj, &lmin, &lpat);
    (void)cpat;
    (void)lpat;
    if (cmaj != lmaj || lmin < cmin) return CNB_VERSION_REFUSE;
    return CNB_VERSION_COMPAT;
}

void cnb_cudnn_version_explain(const char *lib, long compiled, long loaded, char *buf,
                               size_t len) {
    long cmaj, cmin, cpat, lmaj, lmin, lpat;
    split(compiled, &cmaj, &cmin, &cpat);
    split(loaded, &lmaj, &lmin, &lpat);
    char cv[32], lv[32];
    snprintf(cv, sizeof cv, "%ld.%ld.%ld", cmaj, cmin, cpat);
    snprintf(lv, sizeof lv, "%ld.%ld.%ld", lmaj, lmin, lpat);
    if (compiled == loaded)
        snprintf(buf, len, "%s %s (compiled and loaded)", lib, cv);
    else if (cmaj != lmaj)
        snprintf(buf, len,
                 "built against %s %s but loaded %s %s: the major versions differ, which cannot "
                 "work; rebuild against %s %ld, or put a %s %ld.%ld or newer %ld.x library first "
                 "in LD_LIBRARY_PATH",
                 lib, cv, lib, lv, lib, lmaj, lib, cmaj, cmin, cmaj);
    else if (lmin < cmin)
        snprintf(buf, len,
                 "built against %s %s but loaded the older %s %s: an application built against "
                 "%ld.%ld is not guaranteed to work with an older %ld.%ld; put %s %ld.%ld or "
                 "newer first in LD_LIBRARY_PATH, or rebuild against %ld.%ld",
                 lib, cv, lib, lv, cmaj, cmin, lmaj, lmin, lib, cmaj, cmin, lmaj, lmin);
    else if (lmin > cmin)
        snprintf(buf, len,
                 "%s compiled %s, loaded %s: a newer minor release of the same major, backward "
                 "compatible (supported)",
                 lib, cv, lv);
    else
        snprintf(buf, len, "%s compiled %s, loaded %s: only the patch level differs (supported)",
                 lib, cv, lv);
}

int cnb_cudnn_cudart_compat(long compiled, long cudnn_cudart) {
    return compiled / 1000 == cudnn_cudart / 1000;
}
