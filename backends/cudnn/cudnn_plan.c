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

void cnb_cudnn_pool_params_from(const cnb_pool_desc *d, int deterministic,
                                cnb_cudnn_pool_params *o) {
    memset(o, 0, sizeof *o);
    o->kind = d->mode == CNB_POOL_AVG ? CNB_CUDNN_POOL_AVG_INCLUDE_PAD
              : deterministic        ? CNB_CUDNN_POOL_MAX_DETERMINISTIC
                                     : CNB_CUDNN_POOL_MAX;
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

void cnb_cudnn_choice_format(int dir, const cnb_cudnn_choice *c, char *buf, size_t len) {
    if (c->algo < 0) {
        snprintf(buf, len, "not used yet");
        return;
    }
    snprintf(buf, len, "%s (%s, %s, workspace %zu B, %.3f ms%s)", cnb_cudnn_algo_name(dir, c->algo),
             c->fma_math ? "fma" : "tensor ops allowed",
             c->deterministic ? "deterministic" : "non-deterministic", c->workspace,
             (double)c->time_ms, c->from_heuristic ? ", from heuristics" : "");
}

int cnb_cudnn_version_compat(long compiled, long loaded) {
    if (compiled == loaded) return 0;
    return compiled / 10000 == loaded / 10000 ? 1 : 2;
}
