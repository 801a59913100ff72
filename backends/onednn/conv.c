/* conv.c — convolution forward, backward-data and backward-filter on oneDNN convolution
 * primitives, and the bias kernels as OpenMP loops.
 *
 * Algorithm. oneDNN has a direct algorithm (sums of products: exact on integer data) and, for
 * 3x3 stride-1 kernels, Winograd F(4x4, 3x3), which trades most multiplications for transforms
 * of the tiles (measured here, simplecnn conv2 at batch 64, ms per call direct / Winograd:
 * forward 1.80 / 1.12, backward-data 1.85 / 1.22, backward-filter 2.06 / 1.22; at few
 * channels the transforms cost more than they save). oneDNN's own choice
 * (convolution_auto) keeps direct for backward-filter there, so a shape that may use Winograd
 * is timed once on its first call — each algorithm on the caller's tensors, best of a few runs
 * — and Winograd is kept only when clearly faster, as cuDNN's algorithm search does. The
 * directions that run Winograd are reported in info() (conv.transforms, cnb_abi.h), so checks
 * hold them to the transform tolerance. cnb_config.direct_conv keeps everything direct;
 * deterministic mode takes oneDNN's convolution_auto instead of timing, so the choice does
 * not move between runs.
 *
 * Memory formats. The ABI hands over plain NCHW tensors and OIHW weights. oneDNN's fastest
 * convolution kernels want blocked layouts (nChw16c activations, OIhw16i16o weights), chosen by
 * format_tag_any; using them means reordering at the ABI boundary on every call — input,
 * weights (they change every step) and output. Those reorders are cached primitives writing into
 * buffers the op owns, allocated once. ODN_LAYOUT_PLAIN asks for nchw/oihw directly, which
 * oneDNN serves with its nchw-capable or gemm-based kernels and no reorders at all.
 * Which is faster for these small nets was measured per kind and shape (see conv_use_blocked):
 * mostly blocked, plain where the reorders cost more than they save. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <omp.h>

#include "cnb_abi_check.h"
#include "onednn.h"

/* Slots of a convolution op. */
enum {
    P_MAIN = 0,  /* the convolution itself */
    P_IN1 = 1,   /* reorder of the first input, plain -> chosen (x, or dy for backward data) */
    P_IN2 = 2,   /* reorder of the second input, plain -> chosen (weights, or dy) */
    P_OUT = 3,   /* reorder of the output, chosen -> plain */
    P_HINT = 5   /* backward ops: the forward primitive descriptor oneDNN wants as a hint */
};
enum { B_IN1 = 0, B_IN2 = 1, B_OUT = 2 };

/* The algorithm a cached op was built with. */
enum { ALGO_DIRECT = 0, ALGO_WINOGRAD = 1, ALGO_AUTO = 2 /* oneDNN decides (convolution_auto) */ };

typedef struct conv_key {
    cnb_conv_desc d;
    int has_bias;
    int blocked;
    int act;          /* forward: a fused activation (a post-op), or CNB_FUSED_ACT_NONE */
    int algo;         /* ALGO_* */
} conv_key;

static dnnl_alg_kind_t conv_alg(const conv_key *key) {
    return key->algo == ALGO_WINOGRAD ? dnnl_convolution_winograd
           : key->algo == ALGO_AUTO   ? dnnl_convolution_auto
                                      : dnnl_convolution_direct;
}

/* One shape's algorithm for one kind (conv.c's header says how it is chosen). */
struct odn_conv_choice {
    int kind;                /* ODN_CONV_* */
    conv_key key;            /* as the caller builds it, algo ALGO_DIRECT */
    int build_algo;          /* what the op is built with */
    int winograd;            /* 1: the op runs Winograd (reported as a transform) */
    double direct_ms, winograd_ms; /* the timings that decided; < 0: not timed */
    const char *how;
};

/* Where a shape's fused backward sums dbias (bias_placement says how it is chosen). */
struct odn_bias_choice {
    cnb_conv_desc d;
    int inside;
    double inside_ms, loop_ms; /* < 0: not timed */
};

/* Whether a convolution of this kind (ODN_CONV_*) goes through blocked layouts.
 *
 * Measured on this machine (2 cores of an AVX-512 EPYC, oneDNN 2.6.3, 2 OpenMP threads; ms per
 * call, plain / blocked incl. its boundary reorders; the tables are in the helper's report):
 *  - backward-filter: blocked wins everywhere, 2x to 8x (simplecnn conv1 0.70 / 0.33, conv2
 *    1.80 / 1.18; cnn conv2 1.85 / 0.72).
 *  - backward-data: blocked wins 2x for C > 1 (simplecnn conv2 2.00 / 1.13) but is 3x to 9x
 *    slower for C = 1 (n64 c1 28x28 k32 3x3: 0.38 / 2.18): the blocked kernel pads the one
 *    diff_src channel to 16 (aBcd16b), sixteen times the work and the memory.
 *  - forward: blocked wins for C > 1 (simplecnn conv2 1.74 / 1.12, cnn conv2 1.76 / 0.67) and
 *    for C = 1 with few output channels (cnn conv1 k16 5x5: 0.35 / 0.22, lenet5 conv1 k6 at
 *    n256: 0.96 / 0.59). For C = 1 with 32 or more output channels the work per output value
 *    is tiny and the reorder of the big nChw16c output back to nchw dominates: plain (gemm)
 *    wins (simplecnn conv1 k32 3x3: 0.30 / 0.45 inside a training step; n256: 1.12 / 1.82).
 * CNB_ONEDNN_CONV_LAYOUT=plain|blocked overrides the rule (for measuring it again). */
static int conv_use_blocked(const cnb_context *ctx, const cnb_conv_desc *d, int kind) {
    if (ctx->conv_layout == ODN_LAYOUT_PLAIN) return 0;
    if (ctx->conv_layout == ODN_LAYOUT_BLOCKED) return 1;
    switch (kind) {
    case ODN_CONV_BACKWARD_FILTER: return 1;
    case ODN_CONV_BACKWARD_DATA: return d->c > 1;
    default: return d->c > 1 || d->k < 32;
    }
}

static void conv_dims(const cnb_conv_desc *d, dnnl_dims_t src, dnnl_dims_t wei, dnnl_dims_t bia,
                      dnnl_dims_t dst, dnnl_dims_t strides, dnnl_dims_t pad) {
    src[0] = d->n, src[1] = d->c, src[2] = d->h, src[3] = d->w;
    wei[0] = d->k, wei[1] = d->c, wei[2] = d->r, wei[3] = d->s;
    bia[0] = d->k;
    dst[0] = d->n, dst[1] = d->k, dst[2] = d->p, dst[3] = d->q;
    strides[0] = d->stride_h, strides[1] = d->stride_w;
    /* Symmetric padding: oneDNN checks (h - r + pad_l + pad_r) / stride + 1 == p with integer
     * division, which is the ABI's floor-mode formula. */
    pad[0] = d->pad_h, pad[1] = d->pad_w;
}

/* The plain (ABI) memory descriptors and the ones the primitive is asked for. */
typedef struct conv_mds {
    dnnl_memory_desc_t src, wei, bia, dst;          /* plain: nchw, oihw, x, nchw */
    dnnl_memory_desc_t src_q, wei_q, dst_q;         /* what we ask for: plain or any */
    dnnl_dims_t strides, pad;
} conv_mds;

static cnb_status conv_make_mds(cnb_context *ctx, const cnb_conv_desc *d, int blocked,
                                conv_mds *m) {
    dnnl_dims_t sd, wd, bd, dd;
    memset(m, 0, sizeof *m);
    conv_dims(d, sd, wd, bd, dd, m->strides, m->pad);
    ODN_TRY(ctx, dnnl_memory_desc_init_by_tag(&m->src, 4, sd, dnnl_f32, dnnl_nchw));
    ODN_TRY(ctx, dnnl_memory_desc_init_by_tag(&m->wei, 4, wd, dnnl_f32, dnnl_oihw));
    ODN_TRY(ctx, dnnl_memory_desc_init_by_tag(&m->bia, 1, bd, dnnl_f32, dnnl_a));
    ODN_TRY(ctx, dnnl_memory_desc_init_by_tag(&m->dst, 4, dd, dnnl_f32, dnnl_nchw));
    dnnl_format_tag_t any = dnnl_format_tag_any;
    ODN_TRY(ctx, dnnl_memory_desc_init_by_tag(&m->src_q, 4, sd, dnnl_f32, blocked ? any : dnnl_nchw));
    ODN_TRY(ctx, dnnl_memory_desc_init_by_tag(&m->wei_q, 4, wd, dnnl_f32, blocked ? any : dnnl_oihw));
    ODN_TRY(ctx, dnnl_memory_desc_init_by_tag(&m->dst_q, 4, dd, dnnl_f32, blocked ? any : dnnl_nchw));
    return CNB_OK;
}

/* If the primitive chose a format other than the plain one for argument arg, build the boundary
 * reorder into slot `prim` with a scratch tensor in slot `buf`. to_chosen: plain -> chosen (an
 * input), else chosen -> plain (an output). */
static cnb_status conv_boundary(cnb_context *ctx, odn_op *op, int arg,
                                const dnnl_memory_desc_t *plain, int prim, int buf, int to_chosen) {
    const dnnl_memory_desc_t *chosen = odn_arg_md(&op->prim[P_MAIN], arg);
    if (dnnl_memory_desc_equal(chosen, plain)) return CNB_OK;
    cnb_status st = odn_op_buffer(ctx, op, buf, dnnl_memory_desc_get_size(chosen));
    if (st != CNB_OK) return st;
    return to_chosen ? odn_reorder_init(ctx, &op->prim[prim], plain, chosen)
                     : odn_reorder_init(ctx, &op->prim[prim], chosen, plain);
}

/* Run an input reorder if the op has one; returns the pointer the main primitive reads. */
static cnb_status conv_in(cnb_context *ctx, odn_op *op, int prim, int buf, const void *plain,
                          void **use) {
    *use = (void *)plain;
    if (!op->prim[prim].prim) return CNB_OK;
    void *ptrs[2] = {(void *)plain, op->buf[buf]};
    *use = op->buf[buf];
    return odn_exec(ctx, &op->prim[prim], ptrs);
}

/* A call's tensors in the main primitive's argument order: forward (x, weight, y, bias),
 * backward-data (dy, weight, dx), backward-filter (x, dy, dweight). */
typedef struct conv_io {
    const void *in1, *in2;
    void *out;
    const void *extra;
} conv_io;

/* One call of a built op: input reorders and the convolution (conv_out runs the output
 * reorder). in1_ready / in2_ready, when not NULL, are an input already in the layout the op
 * wants (its reorder is skipped); *in2_used, when asked for, is where the second input was read
 * from (the caller's tensor or the op's reorder buffer). */
static cnb_status conv_exec_with(cnb_context *ctx, odn_op *op, const conv_io *io,
                                 const void *in1_ready, const void *in2_ready, void **in2_used) {
    void *a = (void *)in1_ready, *b = (void *)in2_ready;
    cnb_status st;
    if (!a && (st = conv_in(ctx, op, P_IN1, B_IN1, io->in1, &a)) != CNB_OK) return st;
    if (!b && (st = conv_in(ctx, op, P_IN2, B_IN2, io->in2, &b)) != CNB_OK) return st;
    if (in2_used) *in2_used = b;
    void *o = op->prim[P_OUT].prim ? op->buf[B_OUT] : io->out;
    void *ptrs[4] = {a, b, o, (void *)io->extra};
    return odn_exec(ctx, &op->prim[P_MAIN], ptrs);
}

/* The output reorder, chosen -> plain, when the op has one. */
static cnb_status conv_out(cnb_context *ctx, odn_op *op, const conv_io *io) {
    if (!op->prim[P_OUT].prim) return CNB_OK;
    void *rp[2] = {op->buf[B_OUT], io->out};
    return odn_exec(ctx, &op->prim[P_OUT], rp);
}

static cnb_status conv_exec(cnb_context *ctx, odn_op *op, const conv_io *io) {
    cnb_status st = conv_exec_with(ctx, op, io, NULL, NULL, NULL);
    return st != CNB_OK ? st : conv_out(ctx, op, io);
}

/* ---- algorithm choice (the header says why) ------------------------------------------------ */

typedef cnb_status (*conv_build_fn)(cnb_context *ctx, const conv_key *key, odn_op **out);

#define CHOICE_RUNS 3        /* timed runs of each algorithm, after one untimed run of each */
#define CHOICE_MARGIN 0.9    /* Winograd is kept when it takes under 90% of direct's time:
                              * in a near tie the algorithm with less rounding stays */

/* Shapes worth timing: oneDNN 2.6's Winograd is F(4x4, 3x3), stride 1, on blocked layouts;
 * with fewer than 8 input or output channels the tile transforms dominate (measured: even at
 * 8 -> 16 channels forward is 0.49 ms direct / 0.68 Winograd). */
static int winograd_candidate(const cnb_context *ctx, const cnb_conv_desc *d) {
    return !ctx->direct_conv && ctx->conv_layout != ODN_LAYOUT_PLAIN && d->r == 3 &&
           d->s == 3 && d->stride_h == 1 && d->stride_w == 1 &&
           (ctx->force_winograd || (d->c >= 8 && d->k >= 8));
}

/* A per-context array of count items of size bytes (capacity *cap) with room for one more:
 * items itself, or a doubled copy (*cap updated). NULL when out of memory, with the message set
 * and items left as it was. Shared by the algorithm and dbias-placement choices. */
static void *room_for_one(cnb_context *ctx, void *items, int count, int *cap, size_t size,
                          const char *what) {
    if (count < *cap) return items;
    const int grown_cap = *cap ? 2 * *cap : 16;
    void *grown = realloc(items, (size_t)grown_cap * size);
    if (!grown) {
        cpu_fail(ctx, CNB_ERR_OUT_OF_MEMORY, "%s", what);
        return NULL;
    }
    *cap = grown_cap;
    return grown;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static odn_conv_choice *choice_find(cnb_context *ctx, int kind, const conv_key *key) {
    for (int i = 0; i < ctx->choice_count; i++)
        if (ctx->choices[i].kind == kind && memcmp(&ctx->choices[i].key, key, sizeof *key) == 0)
            return &ctx->choices[i];
    return NULL;
}

/* Best of CHOICE_RUNS calls of each op, alternating so that a slow spell of the host hits
 * both; the last run leaves the caller's output written (by b). */
static cnb_status time_pair(cnb_context *ctx, odn_op *a, odn_op *b, const conv_io *io,
                            double *a_ms, double *b_ms) {
    *a_ms = *b_ms = -1.0;
    for (int run = 0; run <= CHOICE_RUNS; run++) {
        cnb_status st;
        double t0 = now_ms();
        if ((st = conv_exec(ctx, a, io)) != CNB_OK) return st;
        double t1 = now_ms();
        if ((st = conv_exec(ctx, b, io)) != CNB_OK) return st;
        double t2 = now_ms();
        if (run == 0) continue; /* first touch of buffers and JIT code */
        if (*a_ms < 0 || t1 - t0 < *a_ms) *a_ms = t1 - t0;
        if (*b_ms < 0 || t2 - t1 < *b_ms) *b_ms = t2 - t1;
    }
    return CNB_OK;
}

static int op_runs_winograd(const odn_op *op) {
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(op->prim[P_MAIN].pd, dnnl_query_impl_info_str, 0, &impl) !=
        dnnl_success)
        return 0;
    return impl && strstr(impl, "wino") != NULL;
}

/* Decide the algorithm of a new (kind, shape) and remember it. */
static cnb_status conv_choose(cnb_context *ctx, int kind, const conv_key *key,
                              conv_build_fn build, const conv_io *io, odn_conv_choice **out) {
    odn_conv_choice c = {.kind = kind, .key = *key, .build_algo = ALGO_DIRECT,
                         .direct_ms = -1.0, .winograd_ms = -1.0};
    cnb_status st;
    odn_op *wop, *dop;
    if (ctx->deterministic && !ctx->force_winograd) {
        conv_key k = *key;
        k.algo = ALGO_AUTO;
        if ((st = build(ctx, &k, &wop)) != CNB_OK) return st;
        c.build_algo = ALGO_AUTO;
        c.winograd = op_runs_winograd(wop);
        c.how = "oneDNN's convolution_auto (deterministic: not timed)";
    } else {
        conv_key w = *key;
        w.algo = ALGO_WINOGRAD;
        w.blocked = 1;
        st = build(ctx, &w, &wop);
        if (st == CNB_ERR_OUT_OF_MEMORY) return st;
        if (st != CNB_OK) {
            /* oneDNN has no Winograd kernel for it (or refuses this shape): direct, and not a
             * failure of the call */
            ctx->err[0] = '\0';
            c.how = "no Winograd kernel for it here";
        } else if (ctx->force_winograd) {
            c.build_algo = ALGO_WINOGRAD;
            c.winograd = 1;
            c.how = "CNB_ONEDNN_CONV_ALGO=winograd";
        } else {
            if ((st = build(ctx, key, &dop)) != CNB_OK) return st;
            if ((st = time_pair(ctx, dop, wop, io, &c.direct_ms, &c.winograd_ms)) != CNB_OK)
                return st;
            c.winograd = c.winograd_ms < CHOICE_MARGIN * c.direct_ms;
            c.build_algo = c.winograd ? ALGO_WINOGRAD : ALGO_DIRECT;
            c.how = "timed";
            odn_cache_drop(ctx, c.winograd ? dop : wop); /* the loser's buffers go now */
        }
    }
    odn_conv_choice *room = room_for_one(ctx, ctx->choices, ctx->choice_count, &ctx->choice_cap,
                                         sizeof *room, "convolution choices");
    if (!room) return CNB_ERR_OUT_OF_MEMORY;
    ctx->choices = room;
    ctx->choices[ctx->choice_count] = c;
    *out = &ctx->choices[ctx->choice_count++];
    return CNB_OK;
}

/* The op a call runs: direct, or the shape's chosen algorithm (decided on its first call). */
static cnb_status conv_select(cnb_context *ctx, int kind, conv_key *key, conv_build_fn build,
                              const conv_io *io, odn_op **op) {
    key->algo = ALGO_DIRECT;
    if (!winograd_candidate(ctx, &key->d)) return build(ctx, key, op);
    odn_conv_choice *c = choice_find(ctx, kind, key);
    cnb_status st;
    if (!c && (st = conv_choose(ctx, kind, key, build, io, &c)) != CNB_OK) return st;
    key->algo = c->build_algo;
    if (c->build_algo == ALGO_WINOGRAD) key->blocked = 1;
    return build(ctx, key, op);
}

/* One call: pick (or build) the op, run it. */
static cnb_status conv_call(cnb_context *ctx, int kind, conv_key *key, conv_build_fn build,
                            const conv_io *io) {
    odn_op *op;
    cnb_status st = conv_select(ctx, kind, key, build, io, &op);
    return st != CNB_OK ? st : conv_exec(ctx, op, io);
}

static const char *const kind_word[] = {"?", "fwd", "bwd_data", "bwd_filter"};

static void shape_words(const cnb_conv_desc *d, char *buf, size_t len) {
    snprintf(buf, len, "n%d c%d %dx%d k%d %dx%d s%dx%d p%dx%d", d->n, d->c, d->h, d->w, d->k,
             d->r, d->s, d->stride_h, d->stride_w, d->pad_h, d->pad_w);
}

void odn_conv_info(cnb_context *ctx, cnb_info_fn fn, void *user) {
    for (int i = 0; i < ctx->choice_count; i++) {
        const cnb_conv_desc *d = &ctx->choices[i].key.d;
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = memcmp(&ctx->choices[j].key.d, d, sizeof *d) == 0;
        if (seen) continue;
        char shape[96], key[128], value[1024] = "", dirs[40] = "";
        shape_words(d, shape, sizeof shape);
        for (int j = i; j < ctx->choice_count; j++) {
            const odn_conv_choice *c = &ctx->choices[j];
            if (memcmp(&c->key.d, d, sizeof *d) != 0) continue;
            const char *dir = kind_word[c->kind >= 1 && c->kind <= 3 ? c->kind : 0];
            size_t used = strlen(value);
            if (c->direct_ms >= 0)
                snprintf(value + used, sizeof value - used,
                         "%s%s%s=%s (%s: direct %.3f ms, Winograd %.3f ms)", used ? "; " : "",
                         dir, c->kind == ODN_CONV_FORWARD && c->key.act != CNB_FUSED_ACT_NONE ? "+act" : "",
                         c->winograd ? "winograd" : "direct", c->how, c->direct_ms,
                         c->winograd_ms);
            else
                snprintf(value + used, sizeof value - used, "%s%s%s=%s (%s)", used ? "; " : "",
                         dir, c->kind == ODN_CONV_FORWARD && c->key.act != CNB_FUSED_ACT_NONE ? "+act" : "",
                         c->winograd ? "winograd" : "direct", c->how);
            if (c->winograd && !strstr(dirs, dir))
                snprintf(dirs + strlen(dirs), sizeof dirs - strlen(dirs), "%s%s",
                         dirs[0] ? " " : "", dir);
        }
        snprintf(key, sizeof key, "onednn.conv[%s]", shape);
        fn(user, key, value);
        if (dirs[0]) {
            snprintf(key, sizeof key, "conv.transforms[%s]", shape);
            fn(user, key, dirs);
        }
    }
    for (int i = 0; i < ctx->bias_choice_count; i++) {
        const odn_bias_choice *b = &ctx->bias_choices[i];
        char shape[96], key[128], value[160];
        shape_words(&b->d, shape, sizeof shape);
        snprintf(key, sizeof key, "onednn.conv_dbias[%s]", shape);
        if (b->inside_ms >= 0)
            snprintf(value, sizeof value,
                     "%s (timed: in the weight-gradient primitive %.3f ms, loop beside it %.3f ms)",
                     b->inside ? "in the weight-gradient primitive" : "loop", b->inside_ms,
                     b->loop_ms);
        else
            snprintf(value, sizeof value, "in the weight-gradient primitive (deterministic: not "
                                          "timed)");
        fn(user, key, value);
    }
}

/* The eltwise algorithm of a fused activation. ReLU never gets here: oneDNN 2.6's eltwise ReLU
 * maps NaN to 0 (measured: a NaN weight left the loss finite), so it runs as the backend's own
 * NaN-keeping loop after the convolution (odn_conv_bias_act_forward). */
static dnnl_alg_kind_t eltwise_alg(int act) {
    return act == CNB_ACT_RELU ? dnnl_eltwise_relu
           : act == CNB_ACT_TANH ? dnnl_eltwise_tanh : dnnl_eltwise_logistic;
}

/* The forward primitive, with the activation as an eltwise post-op when there is one: oneDNN
 * applies it to each output block while it is still in registers. */
static cnb_status conv_forward_prim(cnb_context *ctx, odn_op *op, const conv_key *key,
                                    const dnnl_convolution_desc_t *cd) {
    int ids[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
    int nargs = key->has_bias ? 4 : 3;
    if (key->act == CNB_FUSED_ACT_NONE)
        return odn_prim_init(ctx, &op->prim[P_MAIN], cd, NULL, ids, nargs);
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t post = NULL;
    dnnl_status_t s = dnnl_primitive_attr_clone(&attr, ctx->attr);
    if (s == dnnl_success) s = dnnl_post_ops_create(&post);
    if (s == dnnl_success) s = dnnl_post_ops_append_eltwise(post, 1.0f, eltwise_alg(key->act), 0, 0);
    if (s == dnnl_success) s = dnnl_primitive_attr_set_post_ops(attr, post);
    cnb_status st = s == dnnl_success
                        ? odn_prim_init_attr(ctx, &op->prim[P_MAIN], cd, attr, NULL, ids, nargs)
                        : odn_fail_dnnl(ctx, s, "convolution eltwise post-op");
    if (post) dnnl_post_ops_destroy(post);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return st;
}

static cnb_status conv_forward_op(cnb_context *ctx, const conv_key *key, odn_op **out) {
    odn_op *op = odn_cache_find(ctx, ODN_CONV_FORWARD, key, sizeof *key);
    if (op) return *out = op, CNB_OK;
    cnb_status st = odn_cache_new(ctx, ODN_CONV_FORWARD, key, sizeof *key, &op);
    if (st != CNB_OK) return st;
    conv_mds m;
    dnnl_convolution_desc_t cd;
    dnnl_status_t s;
    if ((st = conv_make_mds(ctx, &key->d, key->blocked, &m)) != CNB_OK) goto fail;
    s = dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, conv_alg(key),
                                           &m.src_q, &m.wei_q, key->has_bias ? &m.bia : NULL,
                                           &m.dst_q, m.strides, m.pad, m.pad);
    if (s != dnnl_success) {
        st = odn_fail_dnnl(ctx, s, "dnnl_convolution_forward_desc_init");
        goto fail;
    }
    if ((st = conv_forward_prim(ctx, op, key, &cd)) != CNB_OK) goto fail;
    /* Boundary reorders (blocked layout only; with plain formats the chosen ones are plain). */
    if ((st = conv_boundary(ctx, op, DNNL_ARG_SRC, &m.src, P_IN1, B_IN1, 1)) != CNB_OK) goto fail;
    if ((st = conv_boundary(ctx, op, DNNL_ARG_WEIGHTS, &m.wei, P_IN2, B_IN2, 1)) != CNB_OK) goto fail;
    if ((st = conv_boundary(ctx, op, DNNL_ARG_DST, &m.dst, P_OUT, B_OUT, 0)) != CNB_OK) goto fail;
    *out = op;
    return CNB_OK;
fail:
    odn_cache_drop(ctx, op);
    return st;
}

/* Images per chunk when a chunk may hold per_thread bytes of output for each of the context's
 * threads and one image's output takes img_bytes: at least 1, at most n, and the chunks of a
 * batch equal but for the last, so that at most two primitives serve it. */
static int chunk_images(const cnb_context *ctx, size_t img_bytes, size_t per_thread, int n) {
    const size_t budget = (size_t)ctx->threads * per_thread;
    size_t chunk = img_bytes >= budget ? 1 : budget / img_bytes;
    if (chunk > (size_t)n) chunk = (size_t)n;
    const size_t parts = ((size_t)n + chunk - 1) / chunk;
    return (int)(((size_t)n + parts - 1) / parts);
}

/* Bytes of blocked output per thread in one chunk of forward_chunked's images. Measured here
 * (lenet5 at eval batch 1000, 2 threads, the same `cnnbench bench` rounds against the whole
 * batch in one primitive): 192 KiB 1.03x inference, 512 KiB 1.11x, 1 MiB 1.14-1.16x (training
 * at batch 256: 1.05x), 2 MiB 1.16x. */
#define FORWARD_CHUNK_BYTES_PER_THREAD (1024u * 1024u)

/* A blocked forward (not a Winograd candidate, whose algorithm is timed on the whole batch),
 * `chunk` images at a time: the blocked output, its channels padded to whole blocks (lenet5's
 * conv1: 6 channels in 16), stays in L2 for the reorder to y instead of going to memory and
 * back; the padded layout is sized with oneDNN's widest block, 16. */
static cnb_status forward_chunked(cnb_context *ctx, const conv_key *key, float *y, const float *x,
                                  const float *weight, const float *bias) {
    const cnb_conv_desc *d = &key->d;
    const size_t in_img = (size_t)d->c * d->h * d->w, out_img = (size_t)d->k * d->p * d->q;
    const size_t blocked_img = (size_t)(d->k + 15) / 16 * 16 * d->p * d->q * sizeof(float);
    const int chunk = chunk_images(ctx, blocked_img, FORWARD_CHUNK_BYTES_PER_THREAD, d->n);
    for (int i0 = 0; i0 < d->n; i0 += chunk) {
        conv_key ck = *key;
        ck.d.n = d->n - i0 < chunk ? d->n - i0 : chunk;
        conv_io io = {x + (size_t)i0 * in_img, weight, y + (size_t)i0 * out_img, bias};
        cnb_status st = conv_call(ctx, ODN_CONV_FORWARD, &ck, conv_forward_op, &io);
        if (st != CNB_OK) return st;
    }
    return CNB_OK;
}

static cnb_status conv_forward(cnb_context *ctx, const char *fn, const cnb_conv_desc *d, int act,
                               float *y, const float *x, const float *weight, const float *bias) {
    cnb_status st = cnb_check_conv_desc(fn, d, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    CNB_CHECK_PTR(ctx, fn, y);
    CNB_CHECK_PTR(ctx, fn, x);
    CNB_CHECK_PTR(ctx, fn, weight);
    odn_enter(ctx);
    conv_key key;
    memset(&key, 0, sizeof key);
    key.d = *d;
    key.has_bias = bias != NULL;
    key.act = act;
    /* With a post-op the plain-layout (gemm) kernel is 4x slower here (simplecnn conv1 at batch
     * 64, best of 100: 1.69 ms against 0.34 ms blocked, reorders included, and 0.46 ms for the
     * plain convolution and a separate ReLU): a fused convolution goes blocked. */
    key.blocked = act != CNB_FUSED_ACT_NONE ? ctx->conv_layout != ODN_LAYOUT_PLAIN
                                            : conv_use_blocked(ctx, d, ODN_CONV_FORWARD);
    if (key.blocked && !winograd_candidate(ctx, d))
        return forward_chunked(ctx, &key, y, x, weight, bias);
    conv_io io = {x, weight, y, bias};
    return conv_call(ctx, ODN_CONV_FORWARD, &key, conv_forward_op, &io);
}

cnb_status odn_conv_forward(cnb_context *ctx, const cnb_conv_desc *d, float *y, const float *x,
                            const float *weight, const float *bias) {
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    return conv_forward(ctx, "conv_forward", d, CNB_FUSED_ACT_NONE, y, x, weight, bias);
}

/* y = act(conv(x, weight) + bias): tanh and sigmoid as an eltwise post-op in the one primitive;
 * ReLU as the backend's own NaN-keeping pass over y right after it (see eltwise_alg). */
cnb_status odn_conv_bias_act_forward(cnb_context *ctx, const cnb_conv_desc *d, int act, float *y,
                                     const float *x, const float *weight, const float *bias) {
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    cnb_status st = cnb_check_fused_act("conv_bias_act_forward", act, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    if (act != CNB_ACT_RELU)
        return conv_forward(ctx, "conv_bias_act_forward", d, act, y, x, weight, bias);
    st = conv_forward(ctx, "conv_bias_act_forward", d, CNB_FUSED_ACT_NONE, y, x, weight, bias);
    if (st == CNB_OK) odn_relu_forward_loop(ctx, (size_t)d->n * d->k * d->p * d->q, y, y);
    return st;
}

/* The channel block of a convolution output in oneDNN's nChw<B>c layout, dense and unpadded in
 * h and w (what its blocked kernels choose), or 0 for any other layout. */
static int nchw_block(const dnnl_memory_desc_t *md) {
    if (md->format_kind != dnnl_blocked || md->ndims != 4 || md->offset0 != 0) return 0;
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    if (b->inner_nblks != 1 || b->inner_idxs[0] != 1) return 0;
    const dnnl_dim_t B = b->inner_blks[0], h = md->dims[2], w = md->dims[3];
    if (B < 2 || md->padded_dims[1] % B != 0 || md->padded_dims[2] != h ||
        md->padded_dims[3] != w || md->padded_dims[0] != md->dims[0])
        return 0;
    const dnnl_dim_t *s = b->strides;
    if (s[3] != B || s[2] != w * B || s[1] != h * w * B || s[0] != md->padded_dims[1] * h * w)
        return 0;
    return (int)B;
}

/* The descriptors of a fused block (a convolution, its activation, a pooling of its output):
 * each valid, and the pooling's input the convolution's output. */
static cnb_status check_block(cnb_context *ctx, const char *fn, int act, const cnb_conv_desc *cd,
                              const cnb_pool_desc *pd) {
    cnb_status st = cnb_check_fused_act(fn, act, ctx->err, sizeof ctx->err);
    if (st == CNB_OK) st = cnb_check_conv_desc(fn, cd, ctx->err, sizeof ctx->err);
    if (st == CNB_OK) st = cnb_check_pool_desc(fn, pd, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    if (pd->n != cd->n || pd->c != cd->k || pd->h != cd->p || pd->w != cd->q)
        return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                        "%s: the pooling's input (n%d c%d %dx%d) is not the convolution's "
                        "output (n%d k%d %dx%d)",
                        fn, pd->n, pd->c, pd->h, pd->w, cd->n, cd->k, cd->p, cd->q);
    return CNB_OK;
}

/* Bytes of convolution output per thread in one chunk of images, when the fused block forward
 * runs a plain-layout convolution for a caller that does not keep a: the chunk's output stays in
 * the threads' L2 for the ReLU and pooling pass and never goes to memory, and the stand-in for
 * a stays small (measured here, simplecnn conv1: the same speed as writing the whole output to
 * a stand-in, at batch 64 and at batch 1000, for chunks of 2 to 16 images). */
#define BLOCK_CHUNK_BYTES_PER_THREAD (256u * 1024u)

/* The plain-layout fused block forward without a: the convolution of `chunk` images at a time
 * into ctx->spare, activated and pooled from there into y and the workspace. */
static cnb_status block_forward_chunked(cnb_context *ctx, const conv_key *key,
                                        const cnb_pool_desc *pd, int relu, int chunk, float *y,
                                        int32_t *arg, const float *x, const float *weight,
                                        const float *bias) {
    const cnb_conv_desc *cd = &key->d;
    const size_t in_img = (size_t)cd->c * cd->h * cd->w, out_img = (size_t)cd->k * cd->p * cd->q;
    const size_t pooled_img = (size_t)pd->c * pd->p * pd->q;
    cnb_status st = odn_spare_reserve(ctx, (size_t)chunk * out_img);
    if (st != CNB_OK) return st;
    for (int i0 = 0; i0 < cd->n; i0 += chunk) {
        conv_key ck = *key;
        ck.d.n = cd->n - i0 < chunk ? cd->n - i0 : chunk;
        conv_io io = {x + (size_t)i0 * in_img, weight, ctx->spare, bias};
        odn_op *op;
        if ((st = conv_select(ctx, ODN_CONV_FORWARD, &ck, conv_forward_op, &io, &op)) != CNB_OK ||
            (st = conv_exec(ctx, op, &io)) != CNB_OK)
            return st;
        cnb_pool_desc cp = *pd;
        cp.n = ck.d.n;
        odn_act_pool_planes(&cp, relu, 0, ctx->spare, NULL, y + (size_t)i0 * pooled_img,
                            arg ? arg + (size_t)i0 * pooled_img : NULL, NULL);
    }
    return CNB_OK;
}

/* The fused block forward (cnb_abi.h's conv_act_pool_forward): the convolution into its
 * blocked output buffer, then one pass that unpacks each image's channel block to a (nchw),
 * applies ReLU on the way (tanh and sigmoid are the convolution's post-op) and pools the block's
 * planes while they are in cache (pool_max.c), in place of the output reorder, the ReLU pass
 * and the pooling's own read of a. A convolution whose output stays plain (the layout rule of
 * conv_use_blocked) is activated and pooled in place. Measured here, 2 threads, median of 300
 * calls at batch 64 against conv_bias_act_forward + pool_forward: simplecnn conv1 0.648 /
 * 0.681 ms, conv2 1.431 / 1.460 ms.
 * When the caller does not keep a (NULL: inference, or a max pooling whose backward reads y),
 * the unpacked planes go to a per-thread block of ctx->spare, and a plain-layout convolution
 * runs in chunks of images whose output stays in L2 (block_forward_chunked): a is never
 * written to memory. A shape's first call, which times the algorithm on a whole output, writes
 * a stand-in a freed after it; a blocked output without a channel block one in ctx->spare. */
cnb_status odn_conv_act_pool_forward(cnb_context *ctx, const cnb_conv_desc *cd, int act,
                                     const cnb_pool_desc *pd, float *a, float *y,
                                     void *workspace, const float *x, const float *weight,
                                     const float *bias) {
    static const char fn[] = "conv_act_pool_forward";
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    cnb_status st = check_block(ctx, fn, act, cd, pd);
    if (st != CNB_OK) return st;
    CNB_CHECK_PTR(ctx, fn, y);
    CNB_CHECK_PTR(ctx, fn, x);
    CNB_CHECK_PTR(ctx, fn, weight);
    if (pd->mode == CNB_POOL_MAX && !workspace)
        return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                        "%s: max pooling needs the %zu-byte workspace pool_workspace_size "
                        "reports, got NULL",
                        fn, odn_maxpool_workspace_bytes(pd));
    odn_enter(ctx);
    conv_key key;
    memset(&key, 0, sizeof key);
    key.d = *cd;
    key.has_bias = bias != NULL;
    /* ReLU goes into the unpack pass (oneDNN's ReLU post-op would not keep NaN) */
    key.act = act == CNB_ACT_RELU ? CNB_FUSED_ACT_NONE : act;
    key.blocked = key.act != CNB_FUSED_ACT_NONE ? ctx->conv_layout != ODN_LAYOUT_PLAIN
                                                : conv_use_blocked(ctx, cd, ODN_CONV_FORWARD);
    const int relu = act == CNB_ACT_RELU;
    const size_t count = (size_t)cd->n * cd->k * cd->p * cd->q;
    conv_io io = {x, weight, a, bias};
    /* A shape's first call times the algorithm on a whole output: without a, a stand-in held
     * for that call only. */
    float *first = NULL;
    if (!a && winograd_candidate(ctx, cd) && !choice_find(ctx, ODN_CONV_FORWARD, &key) &&
        !(io.out = first = cpu_host_alloc(count * sizeof *first)))
        return cpu_fail(ctx, CNB_ERR_OUT_OF_MEMORY, "%s: %zu floats", fn, count);
    odn_op *op;
    st = conv_select(ctx, ODN_CONV_FORWARD, &key, conv_forward_op, &io, &op);
    free(first);
    io.out = a;
    if (st != CNB_OK) return st;
    int block = op->prim[P_OUT].prim ? nchw_block(odn_arg_md(&op->prim[P_MAIN], DNNL_ARG_DST))
                                     : 0;
    if (block) {
        if (!a && (st = odn_spare_reserve(ctx, (size_t)ctx->threads * block * cd->p * cd->q)) !=
                      CNB_OK)
            return st;
        if ((st = conv_exec_with(ctx, op, &io, NULL, NULL, NULL)) != CNB_OK) return st;
        odn_act_pool_planes(pd, relu, block, op->buf[B_OUT], a, y, workspace, ctx->spare);
        return CNB_OK;
    }
    if (!a && !op->prim[P_OUT].prim) {
        const size_t img_bytes = (size_t)cd->k * cd->p * cd->q * sizeof(float);
        return block_forward_chunked(
            ctx, &key, pd, relu,
            chunk_images(ctx, img_bytes, BLOCK_CHUNK_BYTES_PER_THREAD, cd->n), y, workspace, x,
            weight, bias);
    }
    if (!a) { /* a blocked output without a channel block: a whole stand-in */
        if ((st = odn_spare_reserve(ctx, count)) != CNB_OK) return st;
        io.out = ctx->spare;
    }
    if ((st = conv_exec(ctx, op, &io)) != CNB_OK) return st;
    odn_act_pool_planes(pd, relu, 0, io.out, NULL, y, workspace, NULL);
    return CNB_OK;
}

/* The cache key of a backward call of kind (ODN_CONV_BACKWARD_*); has_bias: the weight gradient
 * also sums dbias (the fused conv_backward). */
static conv_key backward_key(const cnb_context *ctx, const cnb_conv_desc *d, int kind,
                             int has_bias) {
    conv_key key;
    memset(&key, 0, sizeof key);
    key.d = *d;
    key.has_bias = has_bias;
    key.blocked = conv_use_blocked(ctx, d, kind);
    return key;
}

/* The forward primitive descriptor a backward primitive needs as its hint. */
static cnb_status conv_hint(cnb_context *ctx, odn_op *op, const conv_mds *m, int with_bias,
                            dnnl_alg_kind_t alg) {
    dnnl_convolution_desc_t fd;
    ODN_TRY(ctx, dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training,
                                                   alg, &m->src_q, &m->wei_q,
                                                   with_bias ? &m->bia : NULL, &m->dst_q,
                                                   m->strides, m->pad, m->pad));
    ODN_TRY(ctx, dnnl_primitive_desc_create(&op->prim[P_HINT].pd, &fd, ctx->attr, ctx->engine,
                                            NULL));
    return CNB_OK;
}

static cnb_status conv_backward_data_op(cnb_context *ctx, const conv_key *key, odn_op **out) {
    odn_op *op = odn_cache_find(ctx, ODN_CONV_BACKWARD_DATA, key, sizeof *key);
    if (op) return *out = op, CNB_OK;
    cnb_status st = odn_cache_new(ctx, ODN_CONV_BACKWARD_DATA, key, sizeof *key, &op);
    if (st != CNB_OK) return st;
    conv_mds m;
    dnnl_convolution_desc_t cd;
    dnnl_status_t s;
    if ((st = conv_make_mds(ctx, &key->d, key->blocked, &m)) != CNB_OK) goto fail;
    if ((st = conv_hint(ctx, op, &m, 0, conv_alg(key))) != CNB_OK) goto fail;
    s = dnnl_convolution_backward_data_desc_init(&cd, conv_alg(key), &m.src_q,
                                                 &m.wei_q, &m.dst_q, m.strides, m.pad, m.pad);
    if (s != dnnl_success) {
        st = odn_fail_dnnl(ctx, s, "dnnl_convolution_backward_data_desc_init");
        goto fail;
    }
    int ids[3] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC};
    if ((st = odn_prim_init(ctx, &op->prim[P_MAIN], &cd, op->prim[P_HINT].pd, ids, 3)) != CNB_OK)
        goto fail;
    if ((st = conv_boundary(ctx, op, DNNL_ARG_DIFF_DST, &m.dst, P_IN1, B_IN1, 1)) != CNB_OK) goto fail;
    if ((st = conv_boundary(ctx, op, DNNL_ARG_WEIGHTS, &m.wei, P_IN2, B_IN2, 1)) != CNB_OK) goto fail;
    if ((st = conv_boundary(ctx, op, DNNL_ARG_DIFF_SRC, &m.src, P_OUT, B_OUT, 0)) != CNB_OK) goto fail;
    *out = op;
    return CNB_OK;
fail:
    odn_cache_drop(ctx, op);
    return st;
}

cnb_status odn_conv_backward_data(cnb_context *ctx, const cnb_conv_desc *d, float *dx,
                                  const float *dy, const float *weight) {
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    cnb_status st = cnb_check_conv_desc("conv_backward_data", d, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    CNB_CHECK_PTR(ctx, "conv_backward_data", dx);
    CNB_CHECK_PTR(ctx, "conv_backward_data", dy);
    CNB_CHECK_PTR(ctx, "conv_backward_data", weight);
    odn_enter(ctx);
    conv_key key = backward_key(ctx, d, ODN_CONV_BACKWARD_DATA, 0);
    conv_io io = {dy, weight, dx, NULL};
    return conv_call(ctx, ODN_CONV_BACKWARD_DATA, &key, conv_backward_data_op, &io);
}

static cnb_status conv_backward_filter_op(cnb_context *ctx, const conv_key *key, odn_op **out) {
    odn_op *op = odn_cache_find(ctx, ODN_CONV_BACKWARD_FILTER, key, sizeof *key);
    if (op) return *out = op, CNB_OK;
    cnb_status st = odn_cache_new(ctx, ODN_CONV_BACKWARD_FILTER, key, sizeof *key, &op);
    if (st != CNB_OK) return st;
    conv_mds m;
    dnnl_convolution_desc_t cd;
    dnnl_status_t s;
    if ((st = conv_make_mds(ctx, &key->d, key->blocked, &m)) != CNB_OK) goto fail;
    if ((st = conv_hint(ctx, op, &m, 0, conv_alg(key))) != CNB_OK) goto fail;
    /* dweight, and dbias only for the fused conv_backward (the ABI's bias_backward is its own
     * slot otherwise) */
    s = dnnl_convolution_backward_weights_desc_init(&cd, conv_alg(key), &m.src_q, &m.wei_q,
                                                    key->has_bias ? &m.bia : NULL, &m.dst_q,
                                                    m.strides, m.pad, m.pad);
    if (s != dnnl_success) {
        st = odn_fail_dnnl(ctx, s, "dnnl_convolution_backward_weights_desc_init");
        goto fail;
    }
    int ids[4] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_BIAS};
    if ((st = odn_prim_init(ctx, &op->prim[P_MAIN], &cd, op->prim[P_HINT].pd, ids,
                            key->has_bias ? 4 : 3)) != CNB_OK)
        goto fail;
    if ((st = conv_boundary(ctx, op, DNNL_ARG_SRC, &m.src, P_IN1, B_IN1, 1)) != CNB_OK) goto fail;
    if ((st = conv_boundary(ctx, op, DNNL_ARG_DIFF_DST, &m.dst, P_IN2, B_IN2, 1)) != CNB_OK) goto fail;
    if ((st = conv_boundary(ctx, op, DNNL_ARG_DIFF_WEIGHTS, &m.wei, P_OUT, B_OUT, 0)) != CNB_OK)
        goto fail;
    *out = op;
    return CNB_OK;
fail:
    odn_cache_drop(ctx, op);
    return st;
}

cnb_status odn_conv_backward_filter(cnb_context *ctx, const cnb_conv_desc *d, float *dweight,
                                    const float *dy, const float *x) {
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    cnb_status st = cnb_check_conv_desc("conv_backward_filter", d, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    CNB_CHECK_PTR(ctx, "conv_backward_filter", dweight);
    CNB_CHECK_PTR(ctx, "conv_backward_filter", dy);
    CNB_CHECK_PTR(ctx, "conv_backward_filter", x);
    odn_enter(ctx);
    conv_key key = backward_key(ctx, d, ODN_CONV_BACKWARD_FILTER, 0);
    conv_io io = {x, dy, dweight, NULL};
    return conv_call(ctx, ODN_CONV_BACKWARD_FILTER, &key, conv_backward_filter_op, &io);
}

/* Where dbias is summed: inside oneDNN's weight-gradient primitive (one read of dy) or by
 * odn_bias_backward's loop beside it. Neither always wins (2 threads, median of 200 calls, ms,
 * inside / loop, the weight gradient included): n64 c1 28x28 k32 3x3 0.28 / 0.35, n256 c6
 * 14x14 k16 5x5 2.90 / 2.64, n256 c1 28x28 k6 5x5 1.14 / 0.97. So a shape's first call times
 * both (best of 3 after one untimed run each) and keeps the faster; deterministic mode keeps
 * it inside without timing, so the bits do not depend on the host's speed. */
static odn_bias_choice *bias_choice_find(cnb_context *ctx, const cnb_conv_desc *d) {
    for (int i = 0; i < ctx->bias_choice_count; i++)
        if (memcmp(&ctx->bias_choices[i].d, d, sizeof *d) == 0) return &ctx->bias_choices[i];
    return NULL;
}

/* The weight gradient of a fused backward, with dbias inside (bias_inside) or by the loop. */
static cnb_status weight_grad(cnb_context *ctx, const cnb_conv_desc *d, int bias_inside,
                              float *dweight, float *dbias, const float *dy, const float *x,
                              void **dy_seen, odn_op **fop_out) {
    conv_key fk = backward_key(ctx, d, ODN_CONV_BACKWARD_FILTER, dbias && bias_inside);
    conv_io fio = {x, dy, dweight, bias_inside ? dbias : NULL};
    odn_op *fop;
    cnb_status st = conv_select(ctx, ODN_CONV_BACKWARD_FILTER, &fk, conv_backward_filter_op,
                                &fio, &fop);
    if (st == CNB_OK) st = conv_exec_with(ctx, fop, &fio, NULL, NULL, dy_seen);
    if (st == CNB_OK) st = conv_out(ctx, fop, &fio);
    if (st == CNB_OK && dbias && !bias_inside)
        st = odn_bias_backward(ctx, dbias, dy, d->n, d->k, d->p * d->q);
    if (fop_out) *fop_out = fop;
    return st;
}

static cnb_status bias_placement(cnb_context *ctx, const cnb_conv_desc *d, float *dweight,
                                 float *dbias, const float *dy, const float *x, int *inside) {
    odn_bias_choice *c = bias_choice_find(ctx, d);
    if (c) return *inside = c->inside, CNB_OK;
    odn_bias_choice n = {.d = *d, .inside = 1, .inside_ms = -1.0, .loop_ms = -1.0};
    if (!ctx->deterministic) {
        for (int run = 0; run <= CHOICE_RUNS; run++) {
            cnb_status st;
            double t0 = now_ms();
            if ((st = weight_grad(ctx, d, 1, dweight, dbias, dy, x, NULL, NULL)) != CNB_OK)
                return st;
            double t1 = now_ms();
            if ((st = weight_grad(ctx, d, 0, dweight, dbias, dy, x, NULL, NULL)) != CNB_OK)
                return st;
            double t2 = now_ms();
            if (run == 0) continue; /* first touch of buffers and JIT code */
            if (n.inside_ms < 0 || t1 - t0 < n.inside_ms) n.inside_ms = t1 - t0;
            if (n.loop_ms < 0 || t2 - t1 < n.loop_ms) n.loop_ms = t2 - t1;
        }
        n.inside = n.inside_ms <= n.loop_ms;
    }
    odn_bias_choice *room = room_for_one(ctx, ctx->bias_choices, ctx->bias_choice_count,
                                         &ctx->bias_choice_cap, sizeof *room,
                                         "dbias placement choices");
    if (!room) return CNB_ERR_OUT_OF_MEMORY;
    ctx->bias_choices = room;
    ctx->bias_choices[ctx->bias_choice_count++] = n;
    *inside = n.inside;
    return CNB_OK;
}

/* The fused backward (cnb_abi.h's conv_backward): the weight gradient first, with dbias summed
 * inside it or beside it (bias_placement), then the data gradient reading dy from the weight
 * gradient's reorder buffer when both chose the same layout for it (dy's second reorder saved:
 * 0.18 ms of a simplecnn step). */
cnb_status odn_conv_backward(cnb_context *ctx, const cnb_conv_desc *d, float *dx, float *dweight,
                             float *dbias, const float *dy, const float *x, const float *weight) {
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    cnb_status st = cnb_check_conv_desc("conv_backward", d, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    CNB_CHECK_PTR(ctx, "conv_backward", dweight);
    CNB_CHECK_PTR(ctx, "conv_backward", dy);
    CNB_CHECK_PTR(ctx, "conv_backward", x);
    if (dx) CNB_CHECK_PTR(ctx, "conv_backward", weight);
    odn_enter(ctx);
    int inside = 1;
    if (dbias && (st = bias_placement(ctx, d, dweight, dbias, dy, x, &inside)) != CNB_OK)
        return st;
    void *dy_seen;
    odn_op *fop;
    if ((st = weight_grad(ctx, d, inside, dweight, dbias, dy, x, &dy_seen, &fop)) != CNB_OK)
        return st;
    if (!dx) return CNB_OK;
    conv_key dk = backward_key(ctx, d, ODN_CONV_BACKWARD_DATA, 0);
    conv_io dio = {dy, weight, dx, NULL};
    odn_op *dop;
    if ((st = conv_select(ctx, ODN_CONV_BACKWARD_DATA, &dk, conv_backward_data_op, &dio, &dop)) !=
        CNB_OK)
        return st;
    /* the same layout for dy in both: the data gradient reads the reordered copy (a plain dy
     * that neither reorders is the caller's tensor either way) */
    int same = dnnl_memory_desc_equal(odn_arg_md(&fop->prim[P_MAIN], DNNL_ARG_DIFF_DST),
                                      odn_arg_md(&dop->prim[P_MAIN], DNNL_ARG_DIFF_DST));
    if ((st = conv_exec_with(ctx, dop, &dio, same ? dy_seen : NULL, NULL, NULL)) != CNB_OK)
        return st;
    return conv_out(ctx, dop, &dio);
}

/* The fused block backward (cnb_abi.h's pool_act_conv_backward), for max pooling after ReLU
 * (or no activation): the pooling's gradient g goes straight into the buffer where the weight
 * gradient's primitive reads dy in its blocked layout (pool_max.c's scatter: each window's dy to
 * its argmax, zero where ReLU's output is not > 0), and the data gradient reads the same buffer
 * when it wants the same layout — no plain g, no reorder of it. a is never read (ReLU's output
 * at each window's argmax is y there), so it may be NULL. A shape's first call scatters into a
 * plain g and runs the convolution's separate kernels instead, so that the algorithm choice
 * (conv_choose) is timed on real data; other activations, average pooling and layouts without
 * a channel block are left to the separate slots (CNB_ERR_UNSUPPORTED). */
cnb_status odn_pool_act_conv_backward(cnb_context *ctx, const cnb_pool_desc *pd, int act,
                                      const cnb_conv_desc *cd, float *dx, float *dweight,
                                      float *dbias, const float *dy, const float *a,
                                      const float *y, const void *workspace, const float *x,
                                      const float *weight) {
    static const char fn[] = "pool_act_conv_backward";
    (void)a; /* see above: y stands in for it */
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    cnb_status st = check_block(ctx, fn, act, cd, pd);
    if (st != CNB_OK) return st;
    CNB_CHECK_PTR(ctx, fn, dweight);
    CNB_CHECK_PTR(ctx, fn, dy);
    CNB_CHECK_PTR(ctx, fn, y);
    CNB_CHECK_PTR(ctx, fn, x);
    if (dx) CNB_CHECK_PTR(ctx, fn, weight);
    if (act != CNB_ACT_RELU && act != CNB_FUSED_ACT_NONE)
        return cpu_fail(ctx, CNB_ERR_UNSUPPORTED, "%s: fused for ReLU or no activation only", fn);
    if (pd->mode != CNB_POOL_MAX)
        return cpu_fail(ctx, CNB_ERR_UNSUPPORTED, "%s: fused for max pooling only", fn);
    if (!workspace)
        return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                        "%s: max pooling needs the forward's workspace, got NULL", fn);
    odn_enter(ctx);
    conv_key fk = backward_key(ctx, cd, ODN_CONV_BACKWARD_FILTER, dbias != NULL);
    conv_key dk = backward_key(ctx, cd, ODN_CONV_BACKWARD_DATA, 0);
    if (winograd_candidate(ctx, cd) &&
        (!choice_find(ctx, ODN_CONV_BACKWARD_FILTER, &fk) ||
         (dx && !choice_find(ctx, ODN_CONV_BACKWARD_DATA, &dk)))) {
        /* first call of the shape: the separate kernels, on a plain g (nchw is nChw1c) */
        size_t count = (size_t)pd->n * pd->c * pd->h * pd->w;
        float *g = cpu_host_alloc(count * sizeof *g);
        if (!g) return cpu_fail(ctx, CNB_ERR_OUT_OF_MEMORY, "%s: %zu floats", fn, count);
        long bad = odn_maxpool_grad_blocked(pd, act == CNB_ACT_RELU, 1, dy, y, workspace, g);
        st = bad >= 0 ? odn_bad_workspace(ctx, fn, pd, bad)
                      : odn_conv_backward(ctx, cd, dx, dweight, dbias, g, x, weight);
        free(g);
        return st;
    }
    conv_io fio = {x, NULL, dweight, dbias};
    odn_op *fop, *dop = NULL;
    if ((st = conv_select(ctx, ODN_CONV_BACKWARD_FILTER, &fk, conv_backward_filter_op, &fio,
                          &fop)) != CNB_OK)
        return st;
    const dnnl_memory_desc_t *g_md = odn_arg_md(&fop->prim[P_MAIN], DNNL_ARG_DIFF_DST);
    int block = fop->prim[P_IN2].prim ? nchw_block(g_md) : 0;
    conv_io dio = {NULL, weight, dx, NULL};
    if (block && dx) {
        if ((st = conv_select(ctx, ODN_CONV_BACKWARD_DATA, &dk, conv_backward_data_op, &dio,
                              &dop)) != CNB_OK)
            return st;
        if (!dnnl_memory_desc_equal(g_md, odn_arg_md(&dop->prim[P_MAIN], DNNL_ARG_DIFF_DST)))
            block = 0;
    }
    if (!block)
        return cpu_fail(ctx, CNB_ERR_UNSUPPORTED,
                        "%s: the convolution reads dy in a layout without a channel block", fn);
    float *g = fop->buf[B_IN2];
    long bad = odn_maxpool_grad_blocked(pd, act == CNB_ACT_RELU, block, dy, y, workspace, g);
    if (bad >= 0) return odn_bad_workspace(ctx, fn, pd, bad);
    if ((st = conv_exec_with(ctx, fop, &fio, NULL, g, NULL)) != CNB_OK ||
        (st = conv_out(ctx, fop, &fio)) != CNB_OK)
        return st;
    if (!dx) return CNB_OK;
    if ((st = conv_exec_with(ctx, dop, &dio, g, NULL, NULL)) != CNB_OK) return st;
    return conv_out(ctx, dop, &dio);
}

/* ---- bias ----------------------------------------------------------------------------------- */

/* Plain OpenMP loops, measured against oneDNN: the reduction primitive (sum over n and hw)
 * only has its reference implementation for (n, c, hw) -> (1, c, 1) in 2.6 — 15.5 ms against
 * the loop's 0.09 ms for simplecnn conv1's (64, 32, 784) on 2 threads. */

/* Below this many values the fork/join of the OpenMP team costs more than the loop. */
#define ODN_PAR_MIN 32768

cnb_status odn_bias_forward(cnb_context *ctx, float *y, const float *bias, int n, int c, int hw) {
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    CNB_CHECK_PTR(ctx, "bias_forward", y);
    CNB_CHECK_PTR(ctx, "bias_forward", bias);
    CNB_CHECK_POSITIVE(ctx, "bias_forward", n);
    CNB_CHECK_POSITIVE(ctx, "bias_forward", c);
    CNB_CHECK_POSITIVE(ctx, "bias_forward", hw);
    odn_enter(ctx);
    long long total = (long long)n * c * hw;
    if (hw == 1) {
        /* Linear layers: y (n, c); one vectorizable row per image. */
#pragma omp parallel for schedule(static) if (total >= ODN_PAR_MIN)
        for (int img = 0; img < n; img++) {
            float *yr = y + (long long)img * c;
            for (int ch = 0; ch < c; ch++) yr[ch] += bias[ch];
        }
        return CNB_OK;
    }
    /* y (n, c, hw): one row of hw values per (image, channel). */
#pragma omp parallel for collapse(2) schedule(static) if (total >= ODN_PAR_MIN)
    for (int img = 0; img < n; img++) {
        for (int ch = 0; ch < c; ch++) {
            float b = bias[ch];
            float *yr = y + ((long long)img * c + ch) * hw;
            for (int i = 0; i < hw; i++) yr[i] += b;
        }
    }
    return CNB_OK;
}

cnb_status odn_bias_backward(cnb_context *ctx, float *dbias, const float *dy, int n, int c,
                             int hw) {
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    CNB_CHECK_PTR(ctx, "bias_backward", dbias);
    CNB_CHECK_PTR(ctx, "bias_backward", dy);
    CNB_CHECK_POSITIVE(ctx, "bias_backward", n);
    CNB_CHECK_POSITIVE(ctx, "bias_backward", c);
    CNB_CHECK_POSITIVE(ctx, "bias_backward", hw);
    odn_enter(ctx);
    /* dy (n, c, hw) -> dbias (c). Each thread takes a contiguous range of images (rows are
     * contiguous, so this streams memory) and sums into its own row of double accumulators;
     * the rows are then added in thread order, so the result does not depend on timing. Inside
     * one (image, channel) row the sum is float (vectorized): the error stays at one row's
     * rounding whatever the batch size. */
    long long total = (long long)n * c * hw;
    int teams = total >= ODN_PAR_MIN ? ctx->threads : 1;
    cnb_status st = odn_acc_reserve(ctx, (size_t)teams * c);
    if (st != CNB_OK) return st;
    double *acc = ctx->acc;
    for (long long i = 0; i < (long long)teams * c; i++) acc[i] = 0.0;
#pragma omp parallel num_threads(teams) if (teams > 1)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        double *a = acc + (long long)t * c;
        int img0 = (int)((long long)n * t / nt), img1 = (int)((long long)n * (t + 1) / nt);
        for (int img = img0; img < img1; img++) {
            const float *plane = dy + (long long)img * c * hw;
            if (hw == 1) {
                for (int ch = 0; ch < c; ch++) a[ch] += plane[ch];
                continue;
            }
            for (int ch = 0; ch < c; ch++) {
                const float *row = plane + (long long)ch * hw;
                float s = 0.0f;
#pragma omp simd reduction(+ : s)
                for (int i = 0; i < hw; i++) s += row[i];
                a[ch] += s;
            }
        }
    }
    for (int ch = 0; ch < c; ch++) {
        double s = 0.0;
        for (int t = 0; t < teams; t++) s += acc[(long long)t * c + ch];
        dbias[ch] = (float)s;
    }
    return CNB_OK;
}
