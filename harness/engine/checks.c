/* checks.c — per-kernel check cases: shapes from model files and edge shapes, input generation
 * (random or exact small integers), running a case on a backend and judging it against the
 * reference. One generic runner: a case lists its buffers (inputs, outputs, in-outs, scratch),
 * and one switch makes the kernel call, so every backend sees exactly the same bytes. */
#define _POSIX_C_SOURCE 200809L
#include "checks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const ck_names[CNB_CK_COUNT] = {
    "corr2d", "conv_fwd", "conv_bwd_data", "conv_bwd_filter", "bias_fwd", "bias_bwd",
    "pool_fwd", "pool_bwd", "gemm", "act_fwd", "act_bwd", "softmax_ce_fwd", "softmax_ce_bwd",
    "sgd", "adam", "memory", "conv_bias_act_fwd", "pool_act_bwd", "conv_bwd",
    "conv_act_pool_fwd", "pool_act_conv_bwd", "training", "distributed"};
/* The ABI slot names, accepted as aliases on the command line. */
static const char *const ck_slots[CNB_CK_COUNT] = {
    "corr2d", "conv_forward", "conv_backward_data", "conv_backward_filter", "bias_forward",
    "bias_backward", "pool_forward", "pool_backward", "gemm", "activation_forward",
    "activation_backward", "softmax_ce_forward", "softmax_ce_backward", "sgd_step", "adam_step",
    "upload", "conv_bias_act_forward", "pool_act_backward", "conv_backward",
    "conv_act_pool_forward", "pool_act_conv_backward", "train", "allreduce"};

const char *cnb_check_family_name(int f) {
    return f >= 0 && f < CNB_CK_COUNT ? ck_names[f] : "unknown";
}

int cnb_check_family_parse(const char *name) {
    for (int f = 0; f < CNB_CK_COUNT; f++)
        if (strcmp(name, ck_names[f]) == 0 || strcmp(name, ck_slots[f]) == 0) return f;
    return -1;
}

const char *cnb_check_status_name(int s) {
    switch (s) {
    case CNB_CHECK_PASSED: return "PASSED";
    case CNB_CHECK_FAILED: return "FAILED";
    case CNB_CHECK_SKIPPED: return "SKIPPED";
    case CNB_CHECK_MISTRUSTED: return "MISTRUSTED";
    default: return "UNKNOWN";
    }
}

static const char *act_name(int a) {
    switch (a) {
    case CNB_ACT_RELU: return "relu";
    case CNB_ACT_TANH: return "tanh";
    case CNB_ACT_SIGMOID: return "sigmoid";
    case CNB_ACT_PRELU: return "prelu";
    case CNB_FUSED_ACT_NONE: return "none";
    default: return "?";
    }
}

void cnb_check_case_shape(const cnb_check_case *c, char *buf, size_t len) {
    const cnb_conv_desc *d = &c->conv;
    const cnb_pool_desc *p = &c->pool;
    switch (c->family) {
    case CNB_CK_CORR2D:
        snprintf(buf, len, "%dx%d * %dx%d", d->h, d->w, d->r, d->s);
        break;
    case CNB_CK_CONV_FWD: case CNB_CK_CONV_BWD_DATA: case CNB_CK_CONV_BWD_FILTER:
        snprintf(buf, len, "n%d c%d %dx%d k%d %dx%d st%d,%d pad%d,%d%s", d->n, d->c, d->h, d->w,
                 d->k, d->r, d->s, d->stride_h, d->stride_w, d->pad_h, d->pad_w,
                 c->family == CNB_CK_CONV_FWD && !c->has_bias ? " nobias" : "");
        break;
    case CNB_CK_BIAS_FWD: case CNB_CK_BIAS_BWD:
        snprintf(buf, len, "n%d c%d hw%d", c->bn, c->bc, c->bhw);
        break;
    case CNB_CK_POOL_FWD: case CNB_CK_POOL_BWD:
        snprintf(buf, len, "%s n%d c%d %dx%d win%dx%d st%d,%d pad%d,%d",
                 p->mode == CNB_POOL_MAX ? "max" : "avg", p->n, p->c, p->h, p->w, p->kh, p->kw,
                 p->stride_h, p->stride_w, p->pad_h, p->pad_w);
        break;
    case CNB_CK_GEMM:
        snprintf(buf, len, "%c%c m%d n%d k%d alpha%g beta%g", c->trans_a ? 'T' : 'N',
                 c->trans_b ? 'T' : 'N', c->m, c->n, c->k, c->alpha, c->beta);
        break;
    case CNB_CK_ACT_FWD: case CNB_CK_ACT_BWD:
        snprintf(buf, len, "%s count%zu", act_name(c->act), c->count);
        break;
    case CNB_CK_CONV_ACT_FWD:
        snprintf(buf, len, "n%d c%d %dx%d k%d %dx%d st%d,%d pad%d,%d%s +%s", d->n, d->c, d->h,
                 d->w, d->k, d->r, d->s, d->stride_h, d->stride_w, d->pad_h, d->pad_w,
                 c->has_bias ? "" : " nobias", act_name(c->act));
        break;
    case CNB_CK_CONV_BWD_FUSED:
        snprintf(buf, len, "n%d c%d %dx%d k%d %dx%d st%d,%d pad%d,%d%s%s", d->n, d->c, d->h,
                 d->w, d->k, d->r, d->s, d->stride_h, d->stride_w, d->pad_h, d->pad_w,
                 c->has_bias ? " +dbias" : "", c->with_dx ? " +dx" : "");
        break;
    case CNB_CK_CONV_POOL_FWD:
        snprintf(buf, len, "n%d c%d %dx%d k%d %dx%d st%d,%d pad%d,%d%s +%s +%s win%dx%d st%d,%d "
                 "pad%d,%d", d->n, d->c, d->h, d->w, d->k, d->r, d->s, d->stride_h, d->stride_w,
                 d->pad_h, d->pad_w, c->has_bias ? "" : " nobias", act_name(c->act),
                 p->mode == CNB_POOL_MAX ? "max" : "avg", p->kh, p->kw, p->stride_h, p->stride_w,
                 p->pad_h, p->pad_w);
        break;
    case CNB_CK_POOL_CONV_BWD:
        snprintf(buf, len, "%s win%dx%d st%d,%d pad%d,%d +%s, n%d c%d %dx%d k%d %dx%d st%d,%d "
                 "pad%d,%d%s%s", p->mode == CNB_POOL_MAX ? "max" : "avg", p->kh, p->kw,
                 p->stride_h, p->stride_w, p->pad_h, p->pad_w, act_name(c->act), d->n, d->c,
                 d->h, d->w, d->k, d->r, d->s, d->stride_h, d->stride_w, d->pad_h, d->pad_w,
                 c->has_bias ? " +dbias" : "", c->with_dx ? " +dx" : "");
        break;
    case CNB_CK_POOL_ACT_BWD:
        snprintf(buf, len, "%s n%d c%d %dx%d win%dx%d st%d,%d pad%d,%d +%s",
                 p->mode == CNB_POOL_MAX ? "max" : "avg", p->n, p->c, p->h, p->w, p->kh, p->kw,
                 p->stride_h, p->stride_w, p->pad_h, p->pad_w, act_name(c->act));
        break;
    case CNB_CK_SOFTMAX_FWD: case CNB_CK_SOFTMAX_BWD:
        snprintf(buf, len, "n%d classes%d", c->bn, c->bc);
        break;
    case CNB_CK_ADAM:
        snprintf(buf, len, "count%zu t%d", c->count, c->adam_step);
        break;
    default:
        snprintf(buf, len, "count%zu", c->count);
        break;
    }
    size_t used = strlen(buf);
    if (c->drop_a && used < len) snprintf(buf + used, len - used, " a-not-kept");
}

void cnb_check_case_key(const cnb_check_case *c, char *buf, size_t len) {
    char shape[256];
    cnb_check_case_shape(c, shape, sizeof shape);
    snprintf(buf, len, "%s %s", cnb_check_family_name(c->family), shape);
}

int cnb_check_case_supports_exact(const cnb_check_case *c) {
    switch (c->family) {
    case CNB_CK_CORR2D: case CNB_CK_CONV_FWD: case CNB_CK_CONV_BWD_DATA:
    case CNB_CK_CONV_BWD_FILTER: case CNB_CK_BIAS_FWD: case CNB_CK_BIAS_BWD: case CNB_CK_GEMM:
    case CNB_CK_CONV_BWD_FUSED:
        return 1;
    case CNB_CK_POOL_FWD: case CNB_CK_POOL_BWD: {
        if (c->pool.mode == CNB_POOL_MAX) return 1;
        int area = c->pool.kh * c->pool.kw; /* x / 2^k is exact; x / 9 is not */
        return area > 0 && (area & (area - 1)) == 0;
    }
    /* fused: exact when the separate kernels are and the activation keeps integers */
    case CNB_CK_CONV_ACT_FWD:
        return c->act == CNB_ACT_RELU || c->act == CNB_FUSED_ACT_NONE;
    case CNB_CK_POOL_ACT_BWD:
    case CNB_CK_CONV_POOL_FWD:
    case CNB_CK_POOL_CONV_BWD: {
        cnb_check_case pool = *c;
        pool.family = CNB_CK_POOL_BWD;
        return (c->act == CNB_ACT_RELU || c->act == CNB_FUSED_ACT_NONE) &&
               cnb_check_case_supports_exact(&pool);
    }
    case CNB_CK_ACT_FWD: case CNB_CK_ACT_BWD: /* comparisons and products by 0.25: exact */
        return c->act == CNB_ACT_RELU || c->act == CNB_ACT_PRELU;
    default:
        return 0;
    }
}

int cnb_check_family_is_fused(int family) {
    return family == CNB_CK_CONV_ACT_FWD || family == CNB_CK_POOL_ACT_BWD ||
           family == CNB_CK_CONV_BWD_FUSED || family == CNB_CK_CONV_POOL_FWD ||
           family == CNB_CK_POOL_CONV_BWD;
}

int cnb_check_case_slot_present(const cnb_check_case *c, const cnb_backend *api) {
    if (c->family == CNB_CK_CONV_BWD_FUSED) return cnb_backend_has_conv_backward(api);
    if (c->family == CNB_CK_CONV_POOL_FWD) return cnb_backend_has_conv_pool_forward(api);
    if (c->family == CNB_CK_POOL_CONV_BWD) return cnb_backend_has_pool_conv_backward(api);
    return !cnb_check_family_is_fused(c->family) || cnb_backend_has_fusion(api);
}

size_t cnb_check_argmax_routed_count(const cnb_check_case *c) {
    if (!c || c->family != CNB_CK_CONV_POOL_FWD || c->pool.mode != CNB_POOL_MAX) return 0;
    return (size_t)c->pool.n * c->pool.c * c->pool.h * c->pool.w;
}

int cnb_check_case_supports_nonfinite(const cnb_check_case *c) {
    switch (c->family) {
    case CNB_CK_ACT_FWD: case CNB_CK_ACT_BWD: case CNB_CK_POOL_FWD: case CNB_CK_POOL_BWD:
    case CNB_CK_SOFTMAX_FWD: case CNB_CK_SOFTMAX_BWD: case CNB_CK_SGD: case CNB_CK_ADAM:
        return 1;
    default:
        return 0;
    }
}

/* ---- case lists ---- */

static int push(cnb_check_case *out, int *n, int max, const cnb_check_case *c) {
    if (*n >= max) return -1;
    out[(*n)++] = *c;
    return 0;
}

static cnb_conv_desc conv_d(int n, int c, int h, int w, int k, int r, int s, int sh, int sw,
                            int ph, int pw) {
    cnb_conv_desc d = {.n = n, .c = c, .h = h, .w = w, .k = k, .r = r, .s = s, .stride_h = sh,
                       .stride_w = sw, .pad_h = ph, .pad_w = pw};
    d.p = (h + 2 * ph - r) / sh + 1;
    d.q = (w + 2 * pw - s) / sw + 1;
    return d;
}

static cnb_pool_desc pool_d(int mode, int n, int c, int h, int w, int kh, int kw, int sh, int sw,
                            int ph, int pw) {
    cnb_pool_desc d = {.mode = mode, .n = n, .c = c, .h = h, .w = w, .kh = kh, .kw = kw,
                       .stride_h = sh, .stride_w = sw, .pad_h = ph, .pad_w = pw};
    d.p = (h + 2 * ph - kh) / sh + 1;
    d.q = (w + 2 * pw - kw) / sw + 1;
    return d;
}

static void add_conv(cnb_check_case *out, int *n, int max, const char *label, cnb_conv_desc d,
                     int has_bias) {
    cnb_check_case c = {.conv = d, .has_bias = has_bias};
    snprintf(c.label, sizeof c.label, "%.95s", label);
    int fams[] = {CNB_CK_CONV_FWD, CNB_CK_CONV_BWD_DATA, CNB_CK_CONV_BWD_FILTER};
    for (int i = 0; i < 3; i++) {
        c.family = fams[i];
        push(out, n, max, &c);
    }
    if (has_bias) {
        cnb_check_case b = {.bn = d.n, .bc = d.k, .bhw = d.p * d.q};
        snprintf(b.label, sizeof b.label, "%.95s", label);
        b.family = CNB_CK_BIAS_FWD;
        push(out, n, max, &b);
        b.family = CNB_CK_BIAS_BWD;
        push(out, n, max, &b);
    }
}

static void add_pool(cnb_check_case *out, int *n, int max, const char *label, cnb_pool_desc d) {
    cnb_check_case c = {.pool = d};
    snprintf(c.label, sizeof c.label, "%.95s", label);
    c.family = CNB_CK_POOL_FWD;
    push(out, n, max, &c);
    c.family = CNB_CK_POOL_BWD;
    push(out, n, max, &c);
}

static void add_gemm(cnb_check_case *out, int *n, int max, const char *label, int ta, int tb,
                     int m, int nn, int k, float alpha, float beta) {
    cnb_check_case c = {.family = CNB_CK_GEMM, .trans_a = ta, .trans_b = tb, .m = m, .n = nn,
                        .k = k, .alpha = alpha, .beta = beta};
    snprintf(c.label, sizeof c.label, "%.95s", label);
    push(out, n, max, &c);
}

static void add_act(cnb_check_case *out, int *n, int max, const char *label, int act,
                    size_t count) {
    cnb_check_case c = {.act = act, .count = count};
    snprintf(c.label, sizeof c.label, "%.95s", label);
    c.family = CNB_CK_ACT_FWD;
    push(out, n, max, &c);
    c.family = CNB_CK_ACT_BWD;
    push(out, n, max, &c);
}

/* The fused slots' activations: those without a parameter (PReLU is never fused). */
static int fusable_act(cnb_layer_type t) {
    return t == CNB_LAYER_RELU ? CNB_ACT_RELU : t == CNB_LAYER_TANH ? CNB_ACT_TANH
           : t == CNB_LAYER_SIGMOID ? CNB_ACT_SIGMOID : -2;
}

static void add_conv_act(cnb_check_case *out, int *n, int max, const char *label,
                         cnb_conv_desc d, int has_bias, int act) {
    cnb_check_case c = {.family = CNB_CK_CONV_ACT_FWD, .conv = d, .has_bias = has_bias,
                        .act = act};
    snprintf(c.label, sizeof c.label, "%.95s", label);
    push(out, n, max, &c);
}

static void add_conv_bwd(cnb_check_case *out, int *n, int max, const char *label,
                         cnb_conv_desc d, int has_bias, int with_dx) {
    cnb_check_case c = {.family = CNB_CK_CONV_BWD_FUSED, .conv = d, .has_bias = has_bias,
                        .with_dx = with_dx};
    snprintf(c.label, sizeof c.label, "%.95s", label);
    push(out, n, max, &c);
}

/* drop_a: the fused call gets a = NULL (an inference pass, or training whose fused block
 * backward reads y) */
static void add_conv_pool(cnb_check_case *out, int *n, int max, const char *label,
                          cnb_conv_desc d, int has_bias, int act, cnb_pool_desc pd, int drop_a) {
    cnb_check_case c = {.family = CNB_CK_CONV_POOL_FWD, .conv = d, .pool = pd,
                        .has_bias = has_bias, .act = act, .drop_a = drop_a};
    snprintf(c.label, sizeof c.label, "%.95s", label);
    push(out, n, max, &c);
}

/* drop_a (max pooling only): the fused call gets a = NULL, as after a forward that did not
 * keep it */
static void add_pool_conv(cnb_check_case *out, int *n, int max, const char *label,
                          cnb_pool_desc pd, int act, cnb_conv_desc d, int has_bias, int with_dx,
                          int drop_a) {
    cnb_check_case c = {.family = CNB_CK_POOL_CONV_BWD, .pool = pd, .conv = d, .act = act,
                        .has_bias = has_bias, .with_dx = with_dx, .drop_a = drop_a};
    snprintf(c.label, sizeof c.label, "%.95s", label);
    push(out, n, max, &c);
}

static void add_pool_act(cnb_check_case *out, int *n, int max, const char *label,
                         cnb_pool_desc d, int act) {
    cnb_check_case c = {.family = CNB_CK_POOL_ACT_BWD, .pool = d, .act = act};
    snprintf(c.label, sizeof c.label, "%.95s", label);
    push(out, n, max, &c);
}

static void add_simple(cnb_check_case *out, int *n, int max, const char *label, int family,
                       size_t count, int bn, int bc, int step) {
    cnb_check_case c = {.family = family, .count = count, .bn = bn, .bc = bc, .adam_step = step};
    snprintf(c.label, sizeof c.label, "%.95s", label);
    push(out, n, max, &c);
}

/* The descriptor of convolution layer l, and of pooling layer l, at batch n. */
static cnb_conv_desc layer_conv_d(const cnb_layer *l, int n) {
    return conv_d(n, l->in_c, l->in_h, l->in_w, l->out_c, l->size_h, l->size_w, l->stride_h,
                  l->stride_w, l->pad_h, l->pad_w);
}
static cnb_pool_desc layer_pool_d(const cnb_layer *l, int n) {
    return pool_d(l->type == CNB_LAYER_MAXPOOL ? CNB_POOL_MAX : CNB_POOL_AVG, n, l->in_c,
                  l->in_h, l->in_w, l->size_h, l->size_w, l->stride_h, l->stride_w, l->pad_h,
                  l->pad_w);
}
static int is_pool_layer(const cnb_layer *l) {
    return l->type == CNB_LAYER_MAXPOOL || l->type == CNB_LAYER_AVGPOOL;
}

int cnb_check_cases_for_model(const cnb_model *m, int n, cnb_check_case *out, int max) {
    int cnt = 0;
    char label[96];
    for (int i = 0; i < m->n_layers; i++) {
        const cnb_layer *l = &m->layers[i];
        snprintf(label, sizeof label, "%s.%s", m->name, l->name);
        size_t out_size = (size_t)l->out_c * l->out_h * l->out_w;
        switch (l->type) {
        case CNB_LAYER_CONV: {
            cnb_conv_desc d = layer_conv_d(l, n);
            add_conv(out, &cnt, max, label, d, l->bias_count > 0);
            /* the fused backward as train.c calls it: no dx for the first layer */
            add_conv_bwd(out, &cnt, max, label, d, l->bias_count > 0, i > 0);
            /* the fused pair train.c runs when an activation follows */
            int act = i + 1 < m->n_layers ? fusable_act(m->layers[i + 1].type) : -2;
            if (act != -2) add_conv_act(out, &cnt, max, label, d, l->bias_count > 0, act);
            /* and the fused block when a pooling follows the activation */
            const cnb_layer *pl = i + 2 < m->n_layers ? &m->layers[i + 2] : NULL;
            /* (with and without a kept, as train.c calls it for training and inference) */
            for (int drop_a = 0; act != -2 && pl && is_pool_layer(pl) && drop_a <= 1; drop_a++)
                add_conv_pool(out, &cnt, max, label, d, l->bias_count > 0, act,
                              layer_pool_d(pl, n), drop_a);
            break;
        }
        case CNB_LAYER_LINEAR: {
            int fin = l->in_c * l->in_h * l->in_w, fout = l->out_c;
            /* the three products of train.c: forward, weight gradient, input gradient */
            char gl[128];
            snprintf(gl, sizeof gl, "%s.fwd", label);
            add_gemm(out, &cnt, max, gl, 0, 1, n, fout, fin, 1.0f, 0.0f);
            snprintf(gl, sizeof gl, "%s.wgrad", label);
            add_gemm(out, &cnt, max, gl, 1, 0, fout, fin, n, 1.0f, 0.0f);
            snprintf(gl, sizeof gl, "%s.dgrad", label);
            if (i > 0) add_gemm(out, &cnt, max, gl, 0, 0, n, fin, fout, 1.0f, 0.0f);
            if (l->bias_count) {
                cnb_check_case b = {.bn = n, .bc = fout, .bhw = 1};
                snprintf(b.label, sizeof b.label, "%.95s", label);
                b.family = CNB_CK_BIAS_FWD;
                push(out, &cnt, max, &b);
                b.family = CNB_CK_BIAS_BWD;
                push(out, &cnt, max, &b);
            }
            break;
        }
        case CNB_LAYER_MAXPOOL:
        case CNB_LAYER_AVGPOOL: {
            cnb_pool_desc d = layer_pool_d(l, n);
            add_pool(out, &cnt, max, label, d);
            int act = i > 0 ? fusable_act(m->layers[i - 1].type) : -2;
            if (act != -2) add_pool_act(out, &cnt, max, label, d, act);
            /* and the fused block backward when a convolution comes before the activation */
            const cnb_layer *cl = i > 1 ? &m->layers[i - 2] : NULL;
            if (act != -2 && cl && cl->type == CNB_LAYER_CONV) {
                char block[96]; /* named after the block's convolution */
                snprintf(block, sizeof block, "%.40s.%.40s", m->name, cl->name);
                for (int drop_a = 0; drop_a <= (d.mode == CNB_POOL_MAX); drop_a++)
                    add_pool_conv(out, &cnt, max, block, d, act, layer_conv_d(cl, n),
                                  cl->bias_count > 0, i - 2 > 0, drop_a);
            }
            break;
        }
        case CNB_LAYER_RELU:
        case CNB_LAYER_TANH:
        case CNB_LAYER_SIGMOID:
        case CNB_LAYER_PRELU:
            add_act(out, &cnt, max, label, cnb_layer_activation(l->type), (size_t)n * out_size);
            break;
        case CNB_LAYER_FLATTEN:
            break;
        }
    }
    snprintf(label, sizeof label, "%s.loss", m->name);
    add_simple(out, &cnt, max, label, CNB_CK_SOFTMAX_FWD, 0, n, m->classes, 0);
    add_simple(out, &cnt, max, label, CNB_CK_SOFTMAX_BWD, 0, n, m->classes, 0);
    snprintf(label, sizeof label, "%s.%s", m->name, m->optimizer);
    if (strcmp(m->optimizer, "adam") == 0) {
        char al[128];
        snprintf(al, sizeof al, "%s.t1", label);
        add_simple(out, &cnt, max, al, CNB_CK_ADAM, m->n_params, 0, 0, 1);
        snprintf(al, sizeof al, "%s.t10", label);
        add_simple(out, &cnt, max, al, CNB_CK_ADAM, m->n_params, 0, 0, 10);
    } else {
        add_simple(out, &cnt, max, label, CNB_CK_SGD, m->n_params, 0, 0, 0);
    }
    return cnt;
}

int cnb_check_edge_cases(cnb_check_case *out, int max) {
    int n = 0;
    /* corr2d: the design's test vector shape, odd and degenerate sizes */
    cnb_check_case c = {.family = CNB_CK_CORR2D, .conv = {.h = 4, .w = 4, .r = 3, .s = 3}};
    snprintf(c.label, sizeof c.label, "edge.corr2d-4x4");
    push(out, &n, max, &c);
    c.conv = (cnb_conv_desc){.h = 7, .w = 5, .r = 3, .s = 2};
    snprintf(c.label, sizeof c.label, "edge.corr2d-odd");
    push(out, &n, max, &c);
    c.conv = (cnb_conv_desc){.h = 3, .w = 3, .r = 3, .s = 3};
    snprintf(c.label, sizeof c.label, "edge.corr2d-full");
    push(out, &n, max, &c);

    add_conv(out, &n, max, "edge.batch1-odd", conv_d(1, 3, 7, 5, 4, 3, 3, 1, 1, 0, 0), 1);
    add_conv(out, &n, max, "edge.stride2-pad1", conv_d(2, 2, 9, 9, 3, 3, 3, 2, 2, 1, 1), 1);
    add_conv(out, &n, max, "edge.nonsquare", conv_d(3, 2, 11, 6, 5, 5, 2, 2, 1, 2, 0), 1);
    add_conv(out, &n, max, "edge.1x1", conv_d(2, 8, 5, 5, 4, 1, 1, 1, 1, 0, 0), 1);
    add_conv(out, &n, max, "edge.kernel-is-image", conv_d(2, 3, 5, 5, 2, 5, 5, 1, 1, 0, 0), 1);
    add_conv(out, &n, max, "edge.stride3-pad2", conv_d(1, 2, 4, 4, 3, 3, 3, 3, 3, 2, 2), 0);
    add_conv(out, &n, max, "edge.stride-gt-kernel", conv_d(2, 1, 10, 9, 2, 2, 2, 3, 3, 0, 0), 1);

    add_pool(out, &n, max, "edge.maxpool-overlap",
             pool_d(CNB_POOL_MAX, 2, 3, 9, 9, 3, 3, 2, 2, 1, 1));
    add_pool(out, &n, max, "edge.maxpool-odd", pool_d(CNB_POOL_MAX, 1, 2, 7, 5, 2, 2, 2, 2, 0, 0));
    add_pool(out, &n, max, "edge.maxpool-nonsquare",
             pool_d(CNB_POOL_MAX, 3, 2, 8, 9, 2, 3, 2, 3, 0, 0));
    add_pool(out, &n, max, "edge.avgpool-pad", pool_d(CNB_POOL_AVG, 2, 3, 6, 6, 2, 2, 2, 2, 1, 1));
    add_pool(out, &n, max, "edge.avgpool-3x3", pool_d(CNB_POOL_AVG, 1, 2, 7, 7, 3, 3, 2, 2, 1, 1));
    add_pool(out, &n, max, "edge.avgpool-odd", pool_d(CNB_POOL_AVG, 2, 1, 5, 7, 2, 2, 2, 2, 0, 0));

    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            char gl[64];
            snprintf(gl, sizeof gl, "edge.gemm-odd-%c%c", ta ? 'T' : 'N', tb ? 'T' : 'N');
            add_gemm(out, &n, max, gl, ta, tb, 7, 5, 3, 1.0f, 0.0f);
            snprintf(gl, sizeof gl, "edge.gemm-alpha-beta-%c%c", ta ? 'T' : 'N', tb ? 'T' : 'N');
            add_gemm(out, &n, max, gl, ta, tb, 13, 11, 17, 0.5f, 0.75f);
        }
    add_gemm(out, &n, max, "edge.gemm-1x1x1", 0, 0, 1, 1, 1, 1.0f, 0.0f);
    add_gemm(out, &n, max, "edge.gemm-row", 0, 1, 1, 10, 33, 1.0f, 0.0f);
    add_gemm(out, &n, max, "edge.gemm-col", 1, 0, 33, 1, 7, 1.0f, 1.0f);

    for (int a = CNB_ACT_RELU; a <= CNB_ACT_PRELU; a++) {
        char al[64];
        snprintf(al, sizeof al, "edge.%s-one", act_name(a));
        add_act(out, &n, max, al, a, 1);
        snprintf(al, sizeof al, "edge.%s-odd", act_name(a));
        add_act(out, &n, max, al, a, 1023);
    }
    /* fused slots at odd shapes, every activation they take */
    add_conv_act(out, &n, max, "edge.fused-stride2-relu", conv_d(2, 2, 9, 9, 3, 3, 3, 2, 2, 1, 1),
                 1, CNB_ACT_RELU);
    add_conv_act(out, &n, max, "edge.fused-nonsquare-tanh",
                 conv_d(3, 2, 11, 6, 5, 5, 2, 2, 1, 2, 0), 1, CNB_ACT_TANH);
    add_conv_act(out, &n, max, "edge.fused-batch1-sigmoid",
                 conv_d(1, 3, 7, 5, 4, 3, 3, 1, 1, 0, 0), 1, CNB_ACT_SIGMOID);
    add_conv_act(out, &n, max, "edge.fused-nobias-none", conv_d(2, 8, 5, 5, 4, 1, 1, 1, 1, 0, 0),
                 0, CNB_FUSED_ACT_NONE);
    add_conv_bwd(out, &n, max, "edge.fused-bwd-batch1-odd", conv_d(1, 3, 7, 5, 4, 3, 3, 1, 1, 0, 0),
                 1, 1);
    add_conv_bwd(out, &n, max, "edge.fused-bwd-stride2-nobias",
                 conv_d(2, 2, 9, 9, 3, 3, 3, 2, 2, 1, 1), 0, 1);
    add_conv_bwd(out, &n, max, "edge.fused-bwd-3x3-nodx", conv_d(2, 16, 6, 5, 16, 3, 3, 1, 1, 1, 1),
                 1, 0);
    /* the fused block: odd channel counts (a partial channel block), padded and overlapping
     * windows, every activation, no bias, batch 1; the first three also with a not kept
     * (overlapping windows, a partial channel block, average pooling as in inference) */
    for (int drop_a = 0; drop_a <= 1; drop_a++) {
        add_conv_pool(out, &n, max, "edge.fused-block-odd-channels-relu",
                      conv_d(2, 3, 9, 9, 5, 3, 3, 1, 1, 1, 1), 1, CNB_ACT_RELU,
                      pool_d(CNB_POOL_MAX, 2, 5, 9, 9, 3, 3, 2, 2, 1, 1), drop_a);
        add_conv_pool(out, &n, max, "edge.fused-block-20ch-tanh-avg",
                      conv_d(2, 8, 8, 6, 20, 3, 3, 1, 1, 1, 1), 1, CNB_ACT_TANH,
                      pool_d(CNB_POOL_AVG, 2, 20, 8, 6, 2, 2, 2, 2, 0, 0), drop_a);
        add_conv_pool(out, &n, max, "edge.fused-block-batch1-sigmoid",
                      conv_d(1, 16, 7, 7, 16, 3, 3, 1, 1, 1, 1), 1, CNB_ACT_SIGMOID,
                      pool_d(CNB_POOL_MAX, 1, 16, 7, 7, 2, 2, 2, 2, 0, 0), drop_a);
    }
    add_conv_pool(out, &n, max, "edge.fused-block-nobias-none",
                  conv_d(2, 16, 10, 10, 32, 3, 3, 2, 2, 1, 1), 0, CNB_FUSED_ACT_NONE,
                  pool_d(CNB_POOL_MAX, 2, 32, 5, 5, 2, 2, 1, 1, 0, 0), 0);
    add_conv_pool(out, &n, max, "edge.fused-block-wide-relu",
                  conv_d(3, 32, 12, 12, 48, 3, 3, 1, 1, 1, 1), 1, CNB_ACT_RELU,
                  pool_d(CNB_POOL_MAX, 3, 48, 12, 12, 2, 2, 2, 2, 0, 0), 0);
    /* the fused block backward: the same kinds of shapes, with and without dx and dbias; the
     * first two also without a (overlapping windows, no dx) */
    for (int drop_a = 0; drop_a <= 1; drop_a++) {
        add_pool_conv(out, &n, max, "edge.fused-block-bwd-odd-channels-relu",
                      pool_d(CNB_POOL_MAX, 2, 5, 9, 9, 3, 3, 2, 2, 1, 1), CNB_ACT_RELU,
                      conv_d(2, 3, 9, 9, 5, 3, 3, 1, 1, 1, 1), 1, 1, drop_a);
        add_pool_conv(out, &n, max, "edge.fused-block-bwd-20ch-nodx",
                      pool_d(CNB_POOL_MAX, 2, 20, 8, 6, 2, 2, 2, 2, 0, 0), CNB_ACT_RELU,
                      conv_d(2, 8, 8, 6, 20, 3, 3, 1, 1, 1, 1), 1, 0, drop_a);
    }
    add_pool_conv(out, &n, max, "edge.fused-block-bwd-nobias-none",
                  pool_d(CNB_POOL_MAX, 2, 32, 5, 5, 2, 2, 1, 1, 0, 0), CNB_FUSED_ACT_NONE,
                  conv_d(2, 16, 10, 10, 32, 3, 3, 2, 2, 1, 1), 0, 1, 0);
    add_pool_conv(out, &n, max, "edge.fused-block-bwd-wide-relu",
                  pool_d(CNB_POOL_MAX, 3, 48, 12, 12, 2, 2, 2, 2, 0, 0), CNB_ACT_RELU,
                  conv_d(3, 32, 12, 12, 48, 3, 3, 1, 1, 1, 1), 1, 1, 0);
    add_pool_conv(out, &n, max, "edge.fused-block-bwd-avg-tanh",
                  pool_d(CNB_POOL_AVG, 2, 20, 8, 6, 2, 2, 2, 2, 0, 0), CNB_ACT_TANH,
                  conv_d(2, 8, 8, 6, 20, 3, 3, 1, 1, 1, 1), 1, 1, 0);
    add_pool_act(out, &n, max, "edge.fused-maxpool-overlap-relu",
                 pool_d(CNB_POOL_MAX, 2, 3, 9, 9, 3, 3, 2, 2, 1, 1), CNB_ACT_RELU);
    add_pool_act(out, &n, max, "edge.fused-maxpool-odd-sigmoid",
                 pool_d(CNB_POOL_MAX, 1, 2, 7, 5, 2, 2, 2, 2, 0, 0), CNB_ACT_SIGMOID);
    add_pool_act(out, &n, max, "edge.fused-avgpool-pad-tanh",
                 pool_d(CNB_POOL_AVG, 2, 3, 6, 6, 2, 2, 2, 2, 1, 1), CNB_ACT_TANH);
    add_pool_act(out, &n, max, "edge.fused-avgpool-odd-relu",
                 pool_d(CNB_POOL_AVG, 2, 1, 5, 7, 2, 2, 2, 2, 0, 0), CNB_ACT_RELU);
    add_simple(out, &n, max, "edge.softmax-batch1", CNB_CK_SOFTMAX_FWD, 0, 1, 10, 0);
    add_simple(out, &n, max, "edge.softmax-batch1", CNB_CK_SOFTMAX_BWD, 0, 1, 10, 0);
    add_simple(out, &n, max, "edge.softmax-odd", CNB_CK_SOFTMAX_FWD, 0, 7, 3, 0);
    add_simple(out, &n, max, "edge.softmax-odd", CNB_CK_SOFTMAX_BWD, 0, 7, 3, 0);
    add_simple(out, &n, max, "edge.sgd-one", CNB_CK_SGD, 1, 0, 0, 0);
    add_simple(out, &n, max, "edge.sgd-odd", CNB_CK_SGD, 1001, 0, 0, 0);
    add_simple(out, &n, max, "edge.adam-one", CNB_CK_ADAM, 1, 0, 0, 1);
    add_simple(out, &n, max, "edge.adam-odd", CNB_CK_ADAM, 1001, 0, 0, 3);
    add_simple(out, &n, max, "edge.memory-one", CNB_CK_MEMORY, 1, 0, 0, 0);
    add_simple(out, &n, max, "edge.memory-odd", CNB_CK_MEMORY, 100003, 0, 0, 0);
    return n;
}

/* ---- buffers and generation ---- */

enum { R_IN = 0, R_OUT, R_INOUT, R_SCRATCH, R_WS };

/* What a buffer holds: the range of its random values, or labels / small-integer kinds. */
enum { F_SIGNED = 0, F_BIAS, F_RELU_IN, F_PRELU_IN, F_POSITIVE, F_LOGITS, F_PROBS, F_LABELS, F_SLOPE, F_NONE,
       F_RELU_OUT, F_TANH_OUT };

/* A fused convolution before ReLU draws x and w leaning positive, so that under 30% of its
 * outputs are zero; an activation's output (the fused pooling backward's x) lies in its range. */
static int conv_act_fill(int act) { return act == CNB_ACT_RELU ? F_RELU_IN : F_SIGNED; }
static int act_out_fill(int act) {
    return act == CNB_ACT_RELU ? F_RELU_OUT : act == CNB_ACT_TANH ? F_TANH_OUT
           : act == CNB_ACT_SIGMOID ? F_PROBS : F_SIGNED;
}

typedef struct buf_spec {
    int role, is_int, fill;
    size_t count;
} buf_spec;

/* ReLU's inputs lean positive so that under 30% of its outputs are zero; a single PReLU input is
 * negative, so that its slope gradient is not zero. */
static int act_fill(int act) {
    return act == CNB_ACT_RELU ? F_RELU_IN : act == CNB_ACT_PRELU ? F_PRELU_IN : F_SIGNED;
}

/* The buffers of a case, in the order the call takes them. */
static int layout(const cnb_check_case *c, buf_spec *b) {
    const cnb_conv_desc *d = &c->conv;
    const cnb_pool_desc *p = &c->pool;
    size_t x = (size_t)d->n * d->c * d->h * d->w, y = (size_t)d->n * d->k * d->p * d->q,
           w = (size_t)d->k * d->c * d->r * d->s;
    size_t px = (size_t)p->n * p->c * p->h * p->w, py = (size_t)p->n * p->c * p->p * p->q;
    size_t bias = (size_t)c->bn * c->bc * c->bhw;
    int nb = 0;
#define B(role_, int_, fill_, count_) b[nb++] = (buf_spec){role_, int_, fill_, count_}
    switch (c->family) {
    case CNB_CK_CORR2D:
        B(R_IN, 0, F_SIGNED, (size_t)d->h * d->w);
        B(R_IN, 0, F_SIGNED, (size_t)d->r * d->s);
        B(R_OUT, 0, F_NONE, (size_t)(d->h - d->r + 1) * (d->w - d->s + 1));
        break;
    case CNB_CK_CONV_FWD:
        B(R_IN, 0, F_SIGNED, x);
        B(R_IN, 0, F_SIGNED, w);
        B(c->has_bias ? R_IN : R_SCRATCH, 0, F_BIAS, (size_t)d->k);
        B(R_OUT, 0, F_NONE, y);
        break;
    case CNB_CK_CONV_BWD_DATA:
        B(R_IN, 0, F_SIGNED, y);
        B(R_IN, 0, F_SIGNED, w);
        B(R_OUT, 0, F_NONE, x);
        break;
    case CNB_CK_CONV_BWD_FILTER:
        B(R_IN, 0, F_SIGNED, y);
        B(R_IN, 0, F_SIGNED, x);
        B(R_OUT, 0, F_NONE, w);
        break;
    case CNB_CK_BIAS_FWD:
        B(R_INOUT, 0, F_SIGNED, bias);
        B(R_IN, 0, F_BIAS, (size_t)c->bc);
        break;
    case CNB_CK_BIAS_BWD:
        B(R_IN, 0, F_SIGNED, bias);
        B(R_OUT, 0, F_NONE, (size_t)c->bc);
        break;
    case CNB_CK_POOL_FWD:
        B(R_IN, 0, F_SIGNED, px);
        B(R_WS, 0, F_NONE, 0);
        B(R_OUT, 0, F_NONE, py);
        break;
    case CNB_CK_POOL_BWD:
        B(R_IN, 0, F_SIGNED, px);
        B(R_WS, 0, F_NONE, 0);
        B(R_SCRATCH, 0, F_NONE, py);   /* y, from the backend's own forward */
        B(R_IN, 0, F_SIGNED, py);      /* dy */
        B(R_OUT, 0, F_NONE, px);       /* dx */
        break;
    case CNB_CK_GEMM:
        B(R_IN, 0, F_SIGNED, (size_t)c->m * c->k);
        B(R_IN, 0, F_SIGNED, (size_t)c->k * c->n);
        B(c->beta != 0.0f ? R_INOUT : R_OUT, 0, F_SIGNED, (size_t)c->m * c->n);
        break;
    case CNB_CK_ACT_FWD:
        B(R_IN, 0, act_fill(c->act), c->count);
        B(R_IN, 0, F_SLOPE, 1);
        B(R_OUT, 0, F_NONE, c->count);
        break;
    case CNB_CK_ACT_BWD:
        B(R_IN, 0, act_fill(c->act), c->count); /* x */
        B(R_IN, 0, F_SLOPE, 1);
        B(R_SCRATCH, 0, F_NONE, c->count);  /* y, from the backend's own forward */
        B(R_IN, 0, F_SIGNED, c->count);     /* dy */
        B(R_OUT, 0, F_NONE, c->count);      /* dx */
        B(c->act == CNB_ACT_PRELU ? R_OUT : R_SCRATCH, 0, F_NONE, 1); /* dslope */
        break;
    case CNB_CK_CONV_ACT_FWD:
        B(R_IN, 0, conv_act_fill(c->act), x);
        B(R_IN, 0, conv_act_fill(c->act), w);
        B(c->has_bias ? R_IN : R_SCRATCH, 0, F_BIAS, (size_t)d->k);
        B(R_OUT, 0, F_NONE, y);
        B(R_SCRATCH, 0, F_NONE, y);    /* the pre-activation, when composed */
        break;
    case CNB_CK_CONV_BWD_FUSED:
        B(R_IN, 0, F_SIGNED, y);                               /* dy */
        B(R_IN, 0, F_SIGNED, x);                               /* x */
        B(R_IN, 0, F_SIGNED, w);                               /* weight */
        B(c->with_dx ? R_OUT : R_SCRATCH, 0, F_NONE, x);       /* dx */
        B(R_OUT, 0, F_NONE, w);                                /* dweight */
        B(c->has_bias ? R_OUT : R_SCRATCH, 0, F_NONE, (size_t)d->k); /* dbias */
        break;
    case CNB_CK_CONV_POOL_FWD:
        B(R_IN, 0, conv_act_fill(c->act), x);
        B(R_IN, 0, conv_act_fill(c->act), w);
        B(c->has_bias ? R_IN : R_SCRATCH, 0, F_BIAS, (size_t)d->k);
        B(R_OUT, 0, F_NONE, y);        /* a: the activation's output */
        B(R_WS, 0, F_NONE, 0);
        B(R_OUT, 0, F_NONE, py);       /* the pooling's output */
        B(R_IN, 0, F_SIGNED, py);      /* dy, for pool_backward on the workspace it left */
        B(R_OUT, 0, F_NONE, y);        /* pool_backward's dx */
        B(R_SCRATCH, 0, F_NONE, y);    /* the pre-activation, when composed */
        break;
    case CNB_CK_POOL_CONV_BWD:
        B(R_IN, 0, act_out_fill(c->act), px);                 /* a: the pooling's input */
        B(R_WS, 0, F_NONE, 0);
        B(R_SCRATCH, 0, F_NONE, py);                          /* y, from its own forward */
        B(R_IN, 0, F_SIGNED, py);                             /* dy of the pooling's output */
        B(R_IN, 0, F_SIGNED, x);                              /* the convolution's x */
        B(R_IN, 0, F_SIGNED, w);                              /* weight */
        B(c->with_dx ? R_OUT : R_SCRATCH, 0, F_NONE, x);      /* dx */
        B(R_OUT, 0, F_NONE, w);                               /* dweight */
        B(c->has_bias ? R_OUT : R_SCRATCH, 0, F_NONE, (size_t)d->k); /* dbias */
        B(R_SCRATCH, 0, F_NONE, px);                          /* g, when composed */
        break;
    case CNB_CK_POOL_ACT_BWD:
        B(R_IN, 0, act_out_fill(c->act), px); /* x: the activation's output */
        B(R_WS, 0, F_NONE, 0);
        B(R_SCRATCH, 0, F_NONE, py);   /* y, from the backend's own forward */
        B(R_IN, 0, F_SIGNED, py);      /* dy */
        B(R_OUT, 0, F_NONE, px);       /* dx */
        B(R_SCRATCH, 0, F_NONE, px);   /* pool_backward's output, when composed */
        break;
    case CNB_CK_SOFTMAX_FWD:
        B(R_IN, 0, F_LOGITS, (size_t)c->bn * c->bc);
        B(R_IN, 1, F_LABELS, (size_t)c->bn);
        B(R_OUT, 0, F_NONE, (size_t)c->bn * c->bc); /* probs */
        B(R_OUT, 0, F_NONE, 1);                     /* loss */
        B(R_OUT, 1, F_NONE, (size_t)c->bn);         /* pred */
        break;
    case CNB_CK_SOFTMAX_BWD:
        B(R_IN, 0, F_PROBS, (size_t)c->bn * c->bc);
        B(R_IN, 1, F_LABELS, (size_t)c->bn);
        B(R_OUT, 0, F_NONE, (size_t)c->bn * c->bc);
        break;
    case CNB_CK_SGD:
        B(R_INOUT, 0, F_SIGNED, c->count);   /* param */
        B(R_INOUT, 0, F_SIGNED, c->count);   /* velocity */
        B(R_IN, 0, F_SIGNED, c->count);      /* grad */
        break;
    case CNB_CK_ADAM:
        B(R_INOUT, 0, F_SIGNED, c->count);   /* param */
        B(R_INOUT, 0, F_SIGNED, c->count);   /* m */
        B(R_INOUT, 0, F_POSITIVE, c->count); /* v >= 0 */
        B(R_IN, 0, F_SIGNED, c->count);      /* grad */
        break;
    case CNB_CK_MEMORY:
        B(R_INOUT, 0, F_SIGNED, c->count);
        break;
    }
#undef B
    return nb;
}

static float uniform(cnb_rng *r, float lo, float hi) {
    return lo + (hi - lo) * (float)cnb_rng_uniform(r);
}

/* Exact mode: integers in {-2, -1, 1, 2} (no zeros, so that outputs are rarely zero). Every
 * partial sum of the largest reduction here (a weight gradient over n*p*q <= 2^16 terms of
 * |x*w| <= 4) stays below 2^24, so any order of summation gives the same float. */
static float small_int(cnb_rng *r) {
    static const float v[4] = {-2.0f, -1.0f, 1.0f, 2.0f};
    return v[cnb_rng_below(r, 4)];
}

/* Share of input positions along one axis that no window touches (stride > window, or a floor
 * that drops the last rows): their gradient is zero by construction. */
static double uncovered_share(int in, int out, int window, int stride, int pad) {
    int covered = 0;
    for (int i = 0; i < in; i++) {
        int hit = 0;
        for (int o = 0; o < out && !hit; o++) {
            int k = i + pad - o * stride;
            hit = k >= 0 && k < window;
        }
        covered += hit;
    }
    return in ? 1.0 - (double)covered / in : 0.0;
}

/* Exact activation inputs: integers with +0 and -0 among them (the boundary where ReLU's and
 * PReLU's branches meet), leaning positive so that under 30% of ReLU's outputs are zero. A
 * tensor of under 8 values gets positive ones (ReLU) or negative ones (PReLU, so dslope != 0),
 * as in random mode. */
static float exact_act_input(cnb_rng *r, int fill_kind, size_t count) {
    static const float relu_in[12] = {-2, -0.0f, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    static const float prelu_in[12] = {-4, -3, -2, -1, -0.0f, 0, 1, 2, 3, 4, 5, 6};
    if (count < 8) return fill_kind == F_RELU_IN ? 1.0f + (float)cnb_rng_below(r, 4)
                                                 : -1.0f - (float)cnb_rng_below(r, 4);
    return (fill_kind == F_RELU_IN ? relu_in : prelu_in)[cnb_rng_below(r, 12)];
}

/* Non-finite mode: after the usual fill, about one value in 8 becomes NaN, +Inf, -Inf, +0 or -0
 * (NaN twice as often: max pooling windows then hold two NaNs often enough to test which one
 * takes the gradient). Labels and the PReLU slope stay finite. A tensor of one value gets NaN,
 * so even the smallest shapes carry one. */
static void plant_nonfinite(cnb_rng *r, const buf_spec *b, float *v) {
    static const float special[6] = {NAN, NAN, INFINITY, -INFINITY, 0.0f, -0.0f};
    if (b->is_int || b->fill == F_SLOPE || b->count == 0) return;
    if (b->count == 1) {
        v[0] = NAN;
        return;
    }
    for (size_t i = 0; i < b->count; i++)
        if (cnb_rng_below(r, 8) == 0) v[i] = special[cnb_rng_below(r, 6)];
}

static void fill(cnb_rng *r, const buf_spec *b, const cnb_check_case *c, int mode, void *host) {
    const int exact = mode == CNB_CHECK_EXACT;
    if (b->is_int) {
        int32_t *v = host;
        for (size_t i = 0; i < b->count; i++) v[i] = (int32_t)cnb_rng_below(r, (uint32_t)c->bc);
        return;
    }
    float *v = host;
    for (size_t i = 0; i < b->count; i++) {
        if (exact && b->fill == F_SIGNED) {
            v[i] = small_int(r);
            continue;
        }
        if (exact && (b->fill == F_RELU_OUT ||
                      (b->fill == F_RELU_IN && (c->family == CNB_CK_CONV_ACT_FWD ||
                                                c->family == CNB_CK_CONV_POOL_FWD)))) {
            /* a fused convolution's inputs lean positive (under 30% of its ReLU outputs are
             * zero), or a ReLU's output with a quarter zeros */
            static const float lean[2][4] = {{-1.0f, 1.0f, 2.0f, 2.0f}, {0.0f, 1.0f, 2.0f, 3.0f}};
            v[i] = lean[b->fill == F_RELU_OUT][cnb_rng_below(r, 4)];
            continue;
        }
        if (exact && (b->fill == F_RELU_IN || b->fill == F_PRELU_IN)) {
            v[i] = exact_act_input(r, b->fill, b->count);
            continue;
        }
        if (exact && b->fill == F_SLOPE) { /* a*x is exact for small integers x */
            v[i] = 0.25f;
            continue;
        }
        if (exact && b->fill == F_BIAS) { /* +-3 or +-4: y + b is never 0 for y in +-{1, 2} */
            static const float bias_values[4] = {-4.0f, -3.0f, 3.0f, 4.0f};
            v[i] = bias_values[cnb_rng_below(r, 4)];
            continue;
        }
        switch (b->fill) {
        case F_RELU_IN: v[i] = b->count < 8 ? uniform(r, 0.05f, 1.0f) : uniform(r, -0.25f, 1.0f);
            break;
        case F_PRELU_IN: v[i] = b->count < 8 ? uniform(r, -1.0f, -0.05f) : uniform(r, -1.0f, 1.0f);
            break;
        case F_POSITIVE: v[i] = uniform(r, 0.0f, 0.01f); break;
        case F_RELU_OUT: v[i] = fmaxf(0.0f, uniform(r, -0.25f, 1.0f)); break;
        case F_TANH_OUT: v[i] = uniform(r, -0.99f, 0.99f); break;
        case F_LOGITS: v[i] = uniform(r, -3.0f, 3.0f); break;
        case F_PROBS: v[i] = uniform(r, 0.0f, 1.0f); break;
        case F_SLOPE: v[i] = uniform(r, 0.1f, 0.5f); break;
        default: v[i] = uniform(r, -1.0f, 1.0f); break;
        }
    }
    if (mode == CNB_CHECK_NONFINITE) plant_nonfinite(r, b, v);
}

void cnb_check_data_free(cnb_check_data *d) {
    for (int i = 0; i < d->nbufs; i++) free(d->host[i]);
    free(d->ref);
    memset(d, 0, sizeof *d);
}

int cnb_check_prepare(const cnb_check_case *c, int exact, uint64_t seed, cnb_check_data *d,
                      char *err, size_t err_len) {
    memset(d, 0, sizeof *d);
    d->c = c;
    d->exact = exact;
    buf_spec b[CNB_CHECK_MAX_BUFS];
    d->nbufs = layout(c, b);
    cnb_rng rng;
    cnb_rng_seed(&rng, seed);
    for (int i = 0; i < d->nbufs; i++) {
        d->role[i] = b[i].role;
        d->is_int[i] = b[i].is_int;
        d->count[i] = b[i].count;
        if (b[i].role == R_OUT || b[i].role == R_INOUT) d->out_count += b[i].count;
        if (b[i].role != R_IN && b[i].role != R_INOUT) continue;
        d->host[i] = malloc((b[i].count ? b[i].count : 1) * 4);
        if (!d->host[i]) {
            cnb_check_data_free(d);
            return cnb_errf(err, err_len, "out of host memory for the check's inputs");
        }
        fill(&rng, &b[i], c, exact, d->host[i]);
    }
    /* Input gradients are zero, by construction, where no window reaches, and max pooling's
     * wherever no window's maximum sits (at least 1 - p*q/covered of the covered positions).
     * Only zeros beyond those structural ones make a check untrustworthy. */
    double structural = 0.0;
    if (c->family == CNB_CK_POOL_BWD || c->family == CNB_CK_POOL_ACT_BWD ||
        c->family == CNB_CK_CONV_POOL_FWD || c->family == CNB_CK_CONV_BWD_DATA ||
        (c->family == CNB_CK_CONV_BWD_FUSED && c->with_dx)) {
        int pool = c->family == CNB_CK_POOL_BWD || c->family == CNB_CK_POOL_ACT_BWD ||
                   c->family == CNB_CK_CONV_POOL_FWD;
        const cnb_pool_desc *p = &c->pool;
        const cnb_conv_desc *cd = &c->conv;
        double uh = pool ? uncovered_share(p->h, p->p, p->kh, p->stride_h, p->pad_h)
                         : uncovered_share(cd->h, cd->p, cd->r, cd->stride_h, cd->pad_h);
        double uw = pool ? uncovered_share(p->w, p->q, p->kw, p->stride_w, p->pad_w)
                         : uncovered_share(cd->w, cd->q, cd->s, cd->stride_w, cd->pad_w);
        double covered = (1.0 - uh) * (1.0 - uw);
        structural = 1.0 - covered;
        if (pool && p->mode == CNB_POOL_MAX && covered > 0) {
            double maxima = (double)(p->p * p->q) / ((double)p->h * p->w);
            if (maxima < covered) structural = 1.0 - maxima;
        }
        /* the fused block's outputs: the pooling's dx is the last part of them */
        size_t routed = cnb_check_argmax_routed_count(c);
        if (routed) structural *= (double)routed / (double)d->out_count;
    }
    /* Planted zeros, and -Inf through ReLU or a softmax, add zeros of their own. */
    if (exact == CNB_CHECK_NONFINITE) structural += 0.15;
    d->allowed_zero_share = fmin(0.99, structural + CNB_MISTRUST_ZERO_SHARE);
    d->ref = malloc((d->out_count ? d->out_count : 1) * sizeof(float));
    if (!d->ref) {
        cnb_check_data_free(d);
        return cnb_errf(err, err_len, "out of host memory for the reference output");
    }
    return 0;
}

#define RUN(what, call)                                                                       \
    do {                                                                                      \
        st = (call);                                                                          \
        if (st != CNB_OK) {                                                                   \
            cnb_errf(err, err_len, "%s: %s failed (%s): %s", api->name, what,                 \
                     cnb_status_str(st), api->last_error(ctx));                               \
            goto done;                                                                        \
        }                                                                                     \
    } while (0)

/* Every bit of bytes of device memory at dst set: NaN as floats, -1 as int32. */
static cnb_status poison(const cnb_backend *api, cnb_context *ctx, void *dst, size_t bytes) {
    unsigned char *host = malloc(bytes ? bytes : 1);
    if (!host) return CNB_ERR_OUT_OF_MEMORY;
    memset(host, 0xff, bytes);
    cnb_status st = api->upload(ctx, dst, host, bytes);
    free(host);
    return st;
}

/* A fused family: the fused slot, or (compose) the separate slots it stands for, the
 * intermediate in the case's last (scratch) buffer. */
static cnb_status run_fused(const cnb_check_data *d, const cnb_backend *api, cnb_context *ctx,
                            void **dev, int compose, char *err, size_t err_len) {
    const cnb_check_case *c = d->c;
    float **f = (float **)dev;
    cnb_status st = CNB_OK;
    if (!compose && !cnb_check_case_slot_present(c, api)) {
        cnb_errf(err, err_len, "%s has no %s slot (the harness runs the separate ones)",
                 api->name, c->family == CNB_CK_CONV_BWD_FUSED  ? "conv_backward"
                            : c->family == CNB_CK_CONV_POOL_FWD ? "conv_act_pool_forward"
                            : c->family == CNB_CK_POOL_CONV_BWD ? "pool_act_conv_backward"
                                                                : "fused");
        return CNB_ERR_UNSUPPORTED;
    }
    if (c->family == CNB_CK_CONV_BWD_FUSED) {
        const cnb_conv_desc *cd = &c->conv;
        float *dx = c->with_dx ? f[3] : NULL, *db = c->has_bias ? f[5] : NULL;
        if (!compose) {
            RUN("conv_backward", api->conv_backward(ctx, cd, dx, f[4], db, f[0], f[1], f[2]));
            return CNB_OK;
        }
        RUN("conv_backward_filter", api->conv_backward_filter(ctx, cd, f[4], f[0], f[1]));
        if (db)
            RUN("bias_backward", api->bias_backward(ctx, db, f[0], cd->n, cd->k, cd->p * cd->q));
        if (dx) RUN("conv_backward_data", api->conv_backward_data(ctx, cd, dx, f[0], f[2]));
        return CNB_OK;
    }
    if (c->family == CNB_CK_POOL_CONV_BWD) {
        /* the pooling's forward on a (its workspace), then the fused call or pool_backward,
         * activation_backward (a stands for the activation's input: cnb_abi.h's rule for
         * pool_act_backward) and the convolution's three gradients of g */
        const cnb_pool_desc *pd = &c->pool;
        const cnb_conv_desc *cd = &c->conv;
        float *dx = c->with_dx ? f[6] : NULL, *db = c->has_bias ? f[8] : NULL;
        size_t count = (size_t)pd->n * pd->c * pd->h * pd->w;
        RUN("pool_forward", api->pool_forward(ctx, pd, f[2], f[0], dev[1]));
        if (!compose) {
            RUN("pool_act_conv_backward",
                api->pool_act_conv_backward(ctx, pd, c->act, cd, dx, f[7], db, f[3],
                                            c->drop_a ? NULL : f[0], f[2], dev[1], f[4], f[5]));
            return CNB_OK;
        }
        RUN("pool_backward", api->pool_backward(ctx, pd, f[9], f[3], f[0], f[2], dev[1]));
        if (c->act != CNB_FUSED_ACT_NONE)
            RUN("activation_backward", api->activation_backward(ctx, c->act, count, f[9], NULL,
                                                                f[9], f[0], f[0], NULL));
        RUN("conv_backward_filter", api->conv_backward_filter(ctx, cd, f[7], f[9], f[4]));
        if (db)
            RUN("bias_backward", api->bias_backward(ctx, db, f[9], cd->n, cd->k, cd->p * cd->q));
        if (dx) RUN("conv_backward_data", api->conv_backward_data(ctx, cd, dx, f[9], f[5]));
        return CNB_OK;
    }
    const float *bias = c->has_bias ? f[2] : NULL;
    if (c->family == CNB_CK_CONV_POOL_FWD) {
        /* a (f[3]) and the pooling's y (f[5]) and workspace (dev[4]); then pool_backward on
         * that workspace (dy f[6], dx f[7]), which holds the workspace to the same meaning.
         * drop_a: a from a call that keeps it, then y and the workspace, poisoned in between
         * (all bits set: NaN, argmax -1), from one without a (so that pool_backward may read a
         * as well as the workspace) */
        const cnb_pool_desc *pd = &c->pool;
        size_t count = (size_t)c->conv.n * c->conv.k * c->conv.p * c->conv.q;
        if (!compose) {
            RUN("conv_act_pool_forward", api->conv_act_pool_forward(ctx, &c->conv, c->act, pd,
                                                                    f[3], f[5], dev[4], f[0],
                                                                    f[1], bias));
            if (c->drop_a) {
                RUN("poison", poison(api, ctx, f[5], (size_t)pd->n * pd->c * pd->p * pd->q * 4));
                size_t ws_bytes = 0;
                RUN("pool_workspace_size", api->pool_workspace_size(ctx, pd, &ws_bytes));
                if (dev[4]) RUN("poison", poison(api, ctx, dev[4], ws_bytes));
                RUN("conv_act_pool_forward (a not kept)",
                    api->conv_act_pool_forward(ctx, &c->conv, c->act, pd, NULL, f[5], dev[4],
                                               f[0], f[1], bias));
            }
        }
        else {
            if (c->act == CNB_FUSED_ACT_NONE)
                RUN("conv_forward", api->conv_forward(ctx, &c->conv, f[3], f[0], f[1], bias));
            else {
                RUN("conv_forward", api->conv_forward(ctx, &c->conv, f[8], f[0], f[1], bias));
                RUN("activation_forward",
                    api->activation_forward(ctx, c->act, count, f[3], f[8], NULL));
            }
            RUN("pool_forward", api->pool_forward(ctx, pd, f[5], f[3], dev[4]));
        }
        RUN("pool_backward", api->pool_backward(ctx, pd, f[7], f[6], f[3], f[5], dev[4]));
        return CNB_OK;
    }
    if (c->family == CNB_CK_CONV_ACT_FWD) {
        size_t count = (size_t)c->conv.n * c->conv.k * c->conv.p * c->conv.q;
        if (!compose)
            RUN("conv_bias_act_forward",
                api->conv_bias_act_forward(ctx, &c->conv, c->act, f[3], f[0], f[1], bias));
        else if (c->act == CNB_FUSED_ACT_NONE)
            RUN("conv_forward", api->conv_forward(ctx, &c->conv, f[3], f[0], f[1], bias));
        else {
            RUN("conv_forward", api->conv_forward(ctx, &c->conv, f[4], f[0], f[1], bias));
            RUN("activation_forward", api->activation_forward(ctx, c->act, count, f[3], f[4], NULL));
        }
        return CNB_OK;
    }
    /* pool + activation backward: x (f[0]) is the activation's output */
    size_t count = (size_t)c->pool.n * c->pool.c * c->pool.h * c->pool.w;
    RUN("pool_forward", api->pool_forward(ctx, &c->pool, f[2], f[0], dev[1]));
    if (!compose)
        RUN("pool_act_backward", api->pool_act_backward(ctx, &c->pool, c->act, f[4], f[3], f[0],
                                                        f[2], dev[1]));
    else if (c->act == CNB_FUSED_ACT_NONE)
        RUN("pool_backward", api->pool_backward(ctx, &c->pool, f[4], f[3], f[0], f[2], dev[1]));
    else {
        RUN("pool_backward", api->pool_backward(ctx, &c->pool, f[5], f[3], f[0], f[2], dev[1]));
        RUN("activation_backward", api->activation_backward(ctx, c->act, count, f[4], NULL, f[5],
                                                            f[0], f[0], NULL));
    }
done:
    return st;
}

static cnb_status run_case(const cnb_check_data *d, const cnb_backend *api, cnb_context *ctx,
                           float *out, int compose, char *err, size_t err_len) {
    const cnb_check_case *c = d->c;
    void *dev[CNB_CHECK_MAX_BUFS] = {0};
    cnb_status st = CNB_OK;
    size_t ws_bytes = 0;
    if (c->family == CNB_CK_POOL_FWD || c->family == CNB_CK_POOL_BWD ||
        c->family == CNB_CK_POOL_ACT_BWD || c->family == CNB_CK_CONV_POOL_FWD ||
        c->family == CNB_CK_POOL_CONV_BWD)
        RUN("pool_workspace_size", api->pool_workspace_size(ctx, &c->pool, &ws_bytes));
    for (int i = 0; i < d->nbufs; i++) {
        size_t bytes = d->role[i] == R_WS ? ws_bytes : d->count[i] * 4;
        if (d->role[i] == R_WS && bytes == 0) continue;
        RUN("alloc", api->alloc(ctx, &dev[i], bytes ? bytes : 4));
        if (d->host[i]) RUN("upload", api->upload(ctx, dev[i], d->host[i], bytes));
    }
    const cnb_conv_desc *cd = &c->conv;
    float **f = (float **)dev;
    switch (c->family) {
    case CNB_CK_CORR2D:
        RUN("corr2d", api->corr2d(ctx, f[2], f[0], f[1], cd->h, cd->w, cd->r, cd->s));
        break;
    case CNB_CK_CONV_FWD:
        RUN("conv_forward",
            api->conv_forward(ctx, cd, f[3], f[0], f[1], c->has_bias ? f[2] : NULL));
        break;
    case CNB_CK_CONV_BWD_DATA:
        RUN("conv_backward_data", api->conv_backward_data(ctx, cd, f[2], f[0], f[1]));
        break;
    case CNB_CK_CONV_BWD_FILTER:
        RUN("conv_backward_filter", api->conv_backward_filter(ctx, cd, f[2], f[0], f[1]));
        break;
    case CNB_CK_BIAS_FWD:
        RUN("bias_forward", api->bias_forward(ctx, f[0], f[1], c->bn, c->bc, c->bhw));
        break;
    case CNB_CK_BIAS_BWD:
        RUN("bias_backward", api->bias_backward(ctx, f[1], f[0], c->bn, c->bc, c->bhw));
        break;
    case CNB_CK_POOL_FWD:
        RUN("pool_forward", api->pool_forward(ctx, &c->pool, f[2], f[0], dev[1]));
        break;
    case CNB_CK_POOL_BWD:
        RUN("pool_forward", api->pool_forward(ctx, &c->pool, f[2], f[0], dev[1]));
        RUN("pool_backward", api->pool_backward(ctx, &c->pool, f[4], f[3], f[0], f[2], dev[1]));
        break;
    case CNB_CK_GEMM: {
        /* stored shapes: A is (m, k) or (k, m) when transposed; B is (k, n) or (n, k) */
        int lda = c->trans_a ? c->m : c->k, ldb = c->trans_b ? c->k : c->n;
        RUN("gemm", api->gemm(ctx, c->trans_a, c->trans_b, c->m, c->n, c->k, c->alpha, f[0], lda,
                              f[1], ldb, c->beta, f[2], c->n));
        break;
    }
    case CNB_CK_ACT_FWD:
        RUN("activation_forward", api->activation_forward(ctx, c->act, c->count, f[2], f[0], f[1]));
        break;
    case CNB_CK_ACT_BWD:
        RUN("activation_forward", api->activation_forward(ctx, c->act, c->count, f[2], f[0], f[1]));
        RUN("activation_backward", api->activation_backward(ctx, c->act, c->count, f[4], f[5],
                                                            f[3], f[0], f[2], f[1]));
        break;
    case CNB_CK_SOFTMAX_FWD:
        RUN("softmax_ce_forward", api->softmax_ce_forward(ctx, c->bn, c->bc, f[2], f[3],
                                                          (int32_t *)dev[4], f[0],
                                                          (const int32_t *)dev[1]));
        break;
    case CNB_CK_SOFTMAX_BWD:
        RUN("softmax_ce_backward", api->softmax_ce_backward(ctx, c->bn, c->bc, f[2], f[0],
                                                            (const int32_t *)dev[1]));
        break;
    case CNB_CK_SGD: {
        cnb_sgd_desc sd = {.lr = 0.05f, .momentum = 0.9f, .weight_decay = 1e-4f};
        RUN("sgd_step", api->sgd_step(ctx, &sd, c->count, f[0], f[1], f[2]));
        break;
    }
    case CNB_CK_ADAM: {
        cnb_adam_desc ad = {.lr = 0.001f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                            .weight_decay = 1e-4f, .step = c->adam_step};
        RUN("adam_step", api->adam_step(ctx, &ad, c->count, f[0], f[1], f[2], f[3]));
        break;
    }
    case CNB_CK_CONV_ACT_FWD:
    case CNB_CK_POOL_ACT_BWD:
    case CNB_CK_CONV_BWD_FUSED:
    case CNB_CK_CONV_POOL_FWD:
    case CNB_CK_POOL_CONV_BWD:
        st = run_fused(d, api, ctx, dev, compose, err, err_len);
        if (st != CNB_OK) goto done;
        break;
    case CNB_CK_MEMORY:
        if (((uintptr_t)dev[0] & 63u) != 0) {
            st = CNB_ERR_INTERNAL;
            cnb_errf(err, err_len, "%s: alloc returned %p, not aligned to 64 bytes", api->name,
                     dev[0]);
            goto done;
        }
        break;
    }
    RUN("synchronize", api->synchronize(ctx));
    size_t at = 0;
    for (int i = 0; i < d->nbufs; i++) {
        if (d->role[i] != R_OUT && d->role[i] != R_INOUT) continue;
        RUN("download", api->download(ctx, out + at, dev[i], d->count[i] * 4));
        if (d->is_int[i]) /* predictions: compared as floats (small integers are exact) */
            for (size_t j = 0; j < d->count[i]; j++) {
                int32_t v;
                memcpy(&v, out + at + j, 4);
                out[at + j] = (float)v;
            }
        at += d->count[i];
    }
done:
    for (int i = 0; i < d->nbufs; i++)
        if (dev[i]) api->free(ctx, dev[i]);
    return st;
}

cnb_status cnb_check_run(const cnb_check_data *d, const cnb_backend *api, cnb_context *ctx,
                         float *out, char *err, size_t err_len) {
    return run_case(d, api, ctx, out, 0, err, err_len);
}

cnb_status cnb_check_run_composed(const cnb_check_data *d, const cnb_backend *api,
                                  cnb_context *ctx, float *out, char *err, size_t err_len) {
    return run_case(d, api, ctx, out, 1, err, err_len);
}

/* The judgement of got against d->ref, every output compared. */
static void judge_outputs(const cnb_check_data *d, const float *got, double tol,
                          double point_tol, cnb_check_outcome *o) {
    memset(o, 0, sizeof *o);
    const int exact = d->exact == CNB_CHECK_EXACT;
    o->tol = exact ? 0.0 : tol;
    o->point_tol = exact ? 0.0 : point_tol;
    int pass;
    if (d->exact == CNB_CHECK_NONFINITE) {
        cnb_compare_nonfinite(got, d->ref, d->out_count, o->point_tol, &o->stats);
        pass = o->stats.nonfinite == 0 && o->stats.rel_l2 <= o->tol;
    } else {
        cnb_compare(got, d->ref, d->out_count, o->point_tol, &o->stats);
        pass = exact ? (o->stats.mismatches == 0 && o->stats.nonfinite == 0)
                     : cnb_compare_passed(&o->stats, o->tol);
    }
    if (!pass) {
        o->status = CNB_CHECK_FAILED;
        for (size_t i = 0; i < d->out_count && o->listed < CNB_CHECK_LIST; i++) {
            double diff = fabs((double)got[i] - (double)d->ref[i]);
            if (d->exact == CNB_CHECK_NONFINITE ? cnb_compare_point_same(got[i], d->ref[i],
                                                                         o->point_tol)
                : isfinite(got[i]) && diff <= o->point_tol * fmax(1.0, fabs((double)d->ref[i])))
                continue;
            o->bad_index[o->listed] = i;
            o->bad_expected[o->listed] = d->ref[i];
            o->bad_got[o->listed] = got[i];
            o->listed++;
        }
    } else if (o->stats.zero_share > d->allowed_zero_share) {
        o->status = CNB_CHECK_MISTRUSTED;
        snprintf(o->reason, sizeof o->reason,
                 "%.0f%% of the reference output is zero (limit %.0f%%): agreement proves little",
                 100 * o->stats.zero_share, 100 * d->allowed_zero_share);
    } else {
        o->status = CNB_CHECK_PASSED;
    }
}

void cnb_check_judge(const cnb_check_data *d, const float *got, double tol, double point_tol,
                     cnb_check_outcome *o) {
    /* outputs routed by an argmax are compared in exact mode only (checks.h): outside it they
     * are judged as the reference's own */
    const size_t routed = d->exact == CNB_CHECK_EXACT ? 0 : cnb_check_argmax_routed_count(d->c);
    if (!routed || routed > d->out_count) {
        judge_outputs(d, got, tol, point_tol, o);
        return;
    }
    float *masked = malloc(d->out_count * sizeof *masked);
    if (!masked) {
        memset(o, 0, sizeof *o);
        o->status = CNB_CHECK_FAILED;
        snprintf(o->reason, sizeof o->reason, "out of host memory");
        return;
    }
    memcpy(masked, got, (d->out_count - routed) * sizeof *masked);
    memcpy(masked + d->out_count - routed, d->ref + d->out_count - routed,
           routed * sizeof *masked);
    judge_outputs(d, masked, tol, point_tol, o);
    free(masked);
}
