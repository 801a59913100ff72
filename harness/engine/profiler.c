/* profiler.c — the profiling proxy (see profiler.h). Each slot forwards to the real backend. With
 * timing on, a backend with timers gets a timer pair recorded around the call in its stream, so
 * each kernel's device time lands in the family that launched it without the proxy waiting;
 * any other backend is synchronized after the call and timed on the host clock, for the same
 * reason (otherwise the time would land in whichever later call happens to wait). */
#define _POSIX_C_SOURCE 200809L
#include "profiler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const family_names[CNB_KF_COUNT] = {
    "conv_fwd", "conv_bwd_data", "conv_bwd_filter", "bias_fwd", "bias_bwd", "pool_fwd",
    "pool_bwd", "gemm_fwd", "gemm_bwd", "act_fwd", "act_bwd", "softmax_ce_fwd",
    "softmax_ce_bwd", "optimizer", "memory", "other", "conv_bias_act_fwd", "pool_act_bwd",
    "conv_bwd", "conv_act_pool_fwd", "pool_act_conv_bwd"};

const char *cnb_kfamily_name(int f) {
    return f >= 0 && f < CNB_KF_COUNT ? family_names[f] : "unknown";
}

const char *cnb_kfamily_direction(int f) {
    switch (f) {
    case CNB_KF_CONV_FWD: case CNB_KF_BIAS_FWD: case CNB_KF_POOL_FWD: case CNB_KF_GEMM_FWD:
    case CNB_KF_ACT_FWD: case CNB_KF_SOFTMAX_FWD: case CNB_KF_CONV_ACT_FWD:
    case CNB_KF_CONV_POOL_FWD: return "forward";
    case CNB_KF_CONV_BWD_DATA: case CNB_KF_CONV_BWD_FILTER: case CNB_KF_BIAS_BWD:
    case CNB_KF_POOL_BWD: case CNB_KF_GEMM_BWD: case CNB_KF_ACT_BWD:
    case CNB_KF_SOFTMAX_BWD: case CNB_KF_POOL_ACT_BWD: case CNB_KF_CONV_BWD:
    case CNB_KF_POOL_CONV_BWD: return "backward";
    case CNB_KF_OPTIMIZER: return "update";
    case CNB_KF_MEMORY: return "memory";
    default: return "other";
    }
}

static const char *fault_backend(void) {
    const char *b = getenv("CNB_TEST_FAULT_BACKEND");
    return b && *b ? b : "blas";
}

int cnb_test_faults(const char *backend_name, double *slowdown_conv, char *perturb_slot,
                    size_t slot_len) {
    *slowdown_conv = 1.0;
    if (slot_len) perturb_slot[0] = '\0';
    if (!backend_name || strcmp(backend_name, fault_backend()) != 0) return 0;
    const char *s = getenv("CNB_TEST_SLOWDOWN_CONV");
    if (s && *s) {
        double f = strtod(s, NULL);
        if (f > 1.0 && f < 1000.0) *slowdown_conv = f;
    }
    const char *p = getenv("CNB_TEST_PERTURB");
    if (p && *p && slot_len) snprintf(perturb_slot, slot_len, "%s", p);
    return *slowdown_conv > 1.0 || (slot_len && perturb_slot[0]);
}

void cnb_test_faults_env(const char *backend_name, char *out, size_t out_len) {
    double slow;
    char slot[64];
    out[0] = '\0';
    if (!cnb_test_faults(backend_name, &slow, slot, sizeof slot)) return;
    size_t n = 0;
    if (slow > 1.0) n += (size_t)snprintf(out + n, out_len - n, "CNB_TEST_SLOWDOWN_CONV=%g ", slow);
    if (slot[0] && n < out_len) n += (size_t)snprintf(out + n, out_len - n, "CNB_TEST_PERTURB=%s ", slot);
    if (n < out_len) snprintf(out + n, out_len - n, "CNB_TEST_FAULT_BACKEND=%s", backend_name);
}

#define P(ctx) ((cnb_profiler *)(void *)(ctx))

/* ---- device timers ---- */

#define TIMER_POOL_FIRST 64    /* pairs made at init: a training step of the models here */
#define TIMER_POOL_MAX 4096    /* beyond, read the pairs back and reuse them (bounded memory) */

/* Adds pairs up to `want` in all; 0 when at least one new pair exists. */
static int grow_timers(cnb_profiler *p, int want) {
    if (want > TIMER_POOL_MAX) want = TIMER_POOL_MAX;
    if (want <= p->timer_pairs) return -1;
    cnb_timer **t = realloc(p->timers, (size_t)want * 2 * sizeof *t);
    if (!t) return -1;
    p->timers = t;
    int *f = realloc(p->timer_family, (size_t)want * sizeof *f);
    if (!f) return -1;
    p->timer_family = f;
    int before = p->timer_pairs;
    while (p->timer_pairs < want) {
        cnb_timer *a = NULL, *b = NULL;
        if (p->real->timer_create(p->real_ctx, &a) != CNB_OK ||
            p->real->timer_create(p->real_ctx, &b) != CNB_OK) {
            if (a) p->real->timer_destroy(p->real_ctx, a);
            p->timer_errors++;
            break;
        }
        p->timers[2 * p->timer_pairs] = a;
        p->timers[2 * p->timer_pairs + 1] = b;
        p->timer_pairs++;
    }
    return p->timer_pairs > before ? 0 : -1;
}

/* Reads every recorded pair into `pending` (the first read waits for the device) and frees the
 * pool for reuse. */
static void resolve_timers(cnb_profiler *p) {
    for (int i = 0; i < p->timers_used; i++) {
        double ms = 0.0;
        int fam = p->timer_family[i];
        if (p->real->timer_elapsed(p->real_ctx, p->timers[2 * i], p->timers[2 * i + 1], &ms) ==
            CNB_OK)
            p->pending.seconds[fam] += ms / 1000.0;
        else
            p->timer_errors++;
        p->pending.calls[fam]++;
    }
    p->timers_used = 0;
}

/* The pair for the next call, its start recorded; -1 when recording failed. */
static int timer_start(cnb_profiler *p) {
    if (p->timers_used == p->timer_pairs && grow_timers(p, 2 * p->timer_pairs) != 0)
        resolve_timers(p);
    int i = p->timers_used;
    if (p->real->timer_record(p->real_ctx, p->timers[2 * i]) != CNB_OK) {
        p->timer_errors++;
        return -1;
    }
    return i;
}

static void timer_stop(cnb_profiler *p, int family, int pair) {
    if (pair >= 0 && p->real->timer_record(p->real_ctx, p->timers[2 * pair + 1]) == CNB_OK) {
        p->timer_family[pair] = family;
        p->timers_used++;
        return;
    }
    if (pair >= 0) p->timer_errors++;
    p->pending.calls[family]++; /* counted, not timed */
}

/* Start / stop around one real call. Timers never wait. Otherwise stop() synchronizes only when
 * timing (or a slowdown, which must know how long the call really took). */
typedef struct px_mark {
    double t0;
    int pair;
} px_mark;

static px_mark start(cnb_profiler *p) {
    px_mark m = {0.0, -1};
    if (p->use_timers) m.pair = timer_start(p);
    else if (p->timing || p->slowdown_conv > 1.0) m.t0 = cnb_now();
    return m;
}

static void stop(cnb_profiler *p, int family, px_mark m, int is_conv) {
    if (p->use_timers) {
        timer_stop(p, family, m.pair);
        return;
    }
    double t0 = m.t0;
    if (!p->timing && !(is_conv && p->slowdown_conv > 1.0)) return;
    p->real->synchronize(p->real_ctx);
    double t1 = cnb_now();
    if (is_conv && p->slowdown_conv > 1.0) {
        /* Busy wait, so the planted slowdown costs CPU time like a slower kernel would. */
        double until = t1 + (p->slowdown_conv - 1.0) * (t1 - t0);
        while ((t1 = cnb_now()) < until) {
        }
    }
    if (!p->timing) return;
    p->pending.seconds[family] += t1 - t0;
    p->pending.calls[family]++;
}

/* The planted bug of CNB_TEST_PERTURB: add 1 to the middle element of the slot's output. */
static void perturb(cnb_profiler *p, const char *slot, float *dev, size_t count) {
    if (!p->perturb_slot[0] || strcmp(p->perturb_slot, slot) != 0 || !dev || count == 0) return;
    float v;
    size_t i = count / 2;
    if (p->real->download(p->real_ctx, &v, dev + i, sizeof v) != CNB_OK) return;
    v += 1.0f;
    p->real->upload(p->real_ctx, dev + i, &v, sizeof v);
    p->perturbed_calls++;
}

static cnb_status px_create(const cnb_config *cfg, cnb_context **out, char *err, size_t err_len) {
    (void)cfg;
    *out = NULL;
    snprintf(err, err_len, "the profiling proxy wraps an existing context; it cannot create one");
    return CNB_ERR_UNSUPPORTED;
}
static void px_destroy(cnb_context *ctx) { (void)ctx; /* the real context belongs to its opener */ }
static const char *px_last_error(cnb_context *ctx) {
    return P(ctx)->real->last_error(P(ctx)->real_ctx);
}
static cnb_status px_info(cnb_context *ctx, cnb_info_fn fn, void *user) {
    return P(ctx)->real->info(P(ctx)->real_ctx, fn, user);
}

#define FORWARD(family, is_conv, call)                                                        \
    do {                                                                                      \
        cnb_profiler *p_ = P(ctx);                                                            \
        px_mark m_ = start(p_);                                                               \
        cnb_status st_ = p_->real->call;                                                      \
        stop(p_, family, m_, is_conv);                                                        \
        if (st_ != CNB_OK) return st_;                                                        \
    } while (0)

static cnb_status px_alloc(cnb_context *ctx, void **ptr, size_t bytes) {
    FORWARD(CNB_KF_MEMORY, 0, alloc(p_->real_ctx, ptr, bytes));
    return CNB_OK;
}
static cnb_status px_free(cnb_context *ctx, void *ptr) {
    FORWARD(CNB_KF_MEMORY, 0, free(p_->real_ctx, ptr));
    return CNB_OK;
}
static cnb_status px_upload(cnb_context *ctx, void *dst, const void *src, size_t bytes) {
    FORWARD(CNB_KF_MEMORY, 0, upload(p_->real_ctx, dst, src, bytes));
    return CNB_OK;
}
static cnb_status px_download(cnb_context *ctx, void *dst, const void *src, size_t bytes) {
    FORWARD(CNB_KF_MEMORY, 0, download(p_->real_ctx, dst, src, bytes));
    return CNB_OK;
}
static cnb_status px_synchronize(cnb_context *ctx) {
    FORWARD(CNB_KF_MEMORY, 0, synchronize(p_->real_ctx));
    return CNB_OK;
}
static cnb_status px_corr2d(cnb_context *ctx, float *y, const float *x, const float *k, int h,
                            int w, int kh, int kw) {
    FORWARD(CNB_KF_OTHER, 0, corr2d(p_->real_ctx, y, x, k, h, w, kh, kw));
    perturb(P(ctx), "corr2d", y, (size_t)(h - kh + 1) * (size_t)(w - kw + 1));
    return CNB_OK;
}
static cnb_status px_conv_forward(cnb_context *ctx, const cnb_conv_desc *d, float *y,
                                  const float *x, const float *w, const float *b) {
    FORWARD(CNB_KF_CONV_FWD, 1, conv_forward(p_->real_ctx, d, y, x, w, b));
    perturb(P(ctx), "conv_forward", y, (size_t)d->n * d->k * d->p * d->q);
    return CNB_OK;
}
static cnb_status px_conv_backward_data(cnb_context *ctx, const cnb_conv_desc *d, float *dx,
                                        const float *dy, const float *w) {
    FORWARD(CNB_KF_CONV_BWD_DATA, 1, conv_backward_data(p_->real_ctx, d, dx, dy, w));
    perturb(P(ctx), "conv_backward_data", dx, (size_t)d->n * d->c * d->h * d->w);
    return CNB_OK;
}
static cnb_status px_conv_backward_filter(cnb_context *ctx, const cnb_conv_desc *d, float *dw,
                                          const float *dy, const float *x) {
    FORWARD(CNB_KF_CONV_BWD_FILTER, 1, conv_backward_filter(p_->real_ctx, d, dw, dy, x));
    perturb(P(ctx), "conv_backward_filter", dw, (size_t)d->k * d->c * d->r * d->s);
    return CNB_OK;
}
static cnb_status px_bias_forward(cnb_context *ctx, float *y, const float *b, int n, int c,
                                  int hw) {
    FORWARD(CNB_KF_BIAS_FWD, 0, bias_forward(p_->real_ctx, y, b, n, c, hw));
    perturb(P(ctx), "bias_forward", y, (size_t)n * c * hw);
    return CNB_OK;
}
static cnb_status px_bias_backward(cnb_context *ctx, float *db, const float *dy, int n, int c,
                                   int hw) {
    FORWARD(CNB_KF_BIAS_BWD, 0, bias_backward(p_->real_ctx, db, dy, n, c, hw));
    perturb(P(ctx), "bias_backward", db, (size_t)c);
    return CNB_OK;
}
static cnb_status px_pool_workspace_size(cnb_context *ctx, const cnb_pool_desc *d, size_t *b) {
    FORWARD(CNB_KF_OTHER, 0, pool_workspace_size(p_->real_ctx, d, b));
    return CNB_OK;
}
static cnb_status px_pool_forward(cnb_context *ctx, const cnb_pool_desc *d, float *y,
                                  const float *x, void *ws) {
    FORWARD(CNB_KF_POOL_FWD, 0, pool_forward(p_->real_ctx, d, y, x, ws));
    perturb(P(ctx), "pool_forward", y, (size_t)d->n * d->c * d->p * d->q);
    return CNB_OK;
}
static cnb_status px_pool_backward(cnb_context *ctx, const cnb_pool_desc *d, float *dx,
                                   const float *dy, const float *x, const float *y,
                                   const void *ws) {
    FORWARD(CNB_KF_POOL_BWD, 0, pool_backward(p_->real_ctx, d, dx, dy, x, y, ws));
    perturb(P(ctx), "pool_backward", dx, (size_t)d->n * d->c * d->h * d->w);
    return CNB_OK;
}
static cnb_status px_gemm(cnb_context *ctx, int ta, int tb, int m, int n, int k, float alpha,
                          const float *a, int lda, const float *b, int ldb, float beta, float *c,
                          int ldc) {
    int family = ta == 0 && tb == 1 ? CNB_KF_GEMM_FWD : CNB_KF_GEMM_BWD;
    FORWARD(family, 0, gemm(p_->real_ctx, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc));
    if (m > 0 && n > 0) perturb(P(ctx), "gemm", c + (size_t)(m / 2) * ldc + n / 2, 1);
    return CNB_OK;
}
static cnb_status px_activation_forward(cnb_context *ctx, int act, size_t count, float *y,
                                        const float *x, const float *slope) {
    FORWARD(CNB_KF_ACT_FWD, 0, activation_forward(p_->real_ctx, act, count, y, x, slope));
    perturb(P(ctx), "activation_forward", y, count);
    return CNB_OK;
}
static cnb_status px_activation_backward(cnb_context *ctx, int act, size_t count, float *dx,
                                         float *dslope, const float *dy, const float *x,
                                         const float *y, const float *slope) {
    FORWARD(CNB_KF_ACT_BWD, 0,
            activation_backward(p_->real_ctx, act, count, dx, dslope, dy, x, y, slope));
    perturb(P(ctx), "activation_backward", dx, count);
    return CNB_OK;
}
static cnb_status px_softmax_ce_forward(cnb_context *ctx, int n, int classes, float *probs,
                                        float *loss, int32_t *pred, const float *logits,
                                        const int32_t *labels) {
    FORWARD(CNB_KF_SOFTMAX_FWD, 0,
            softmax_ce_forward(p_->real_ctx, n, classes, probs, loss, pred, logits, labels));
    perturb(P(ctx), "softmax_ce_forward", probs, (size_t)n * classes);
    return CNB_OK;
}
static cnb_status px_softmax_ce_backward(cnb_context *ctx, int n, int classes, float *dlogits,
                                         const float *probs, const int32_t *labels) {
    FORWARD(CNB_KF_SOFTMAX_BWD, 0,
            softmax_ce_backward(p_->real_ctx, n, classes, dlogits, probs, labels));
    perturb(P(ctx), "softmax_ce_backward", dlogits, (size_t)n * classes);
    return CNB_OK;
}

static cnb_status px_conv_bias_act_forward(cnb_context *ctx, const cnb_conv_desc *d, int act,
                                           float *y, const float *x, const float *w,
                                           const float *b) {
    FORWARD(CNB_KF_CONV_ACT_FWD, 1, conv_bias_act_forward(p_->real_ctx, d, act, y, x, w, b));
    perturb(P(ctx), "conv_bias_act_forward", y, (size_t)d->n * d->k * d->p * d->q);
    return CNB_OK;
}
static cnb_status px_pool_act_backward(cnb_context *ctx, const cnb_pool_desc *d, int act,
                                       float *dx, const float *dy, const float *x, const float *y,
                                       const void *ws) {
    FORWARD(CNB_KF_POOL_ACT_BWD, 0, pool_act_backward(p_->real_ctx, d, act, dx, dy, x, y, ws));
    perturb(P(ctx), "pool_act_backward", dx, (size_t)d->n * d->c * d->h * d->w);
    return CNB_OK;
}

static cnb_status px_conv_backward(cnb_context *ctx, const cnb_conv_desc *d, float *dx,
                                   float *dw, float *db, const float *dy, const float *x,
                                   const float *w) {
    FORWARD(CNB_KF_CONV_BWD, 1, conv_backward(p_->real_ctx, d, dx, dw, db, dy, x, w));
    perturb(P(ctx), "conv_backward", dw, (size_t)d->k * d->c * d->r * d->s);
    return CNB_OK;
}

static cnb_status px_conv_act_pool_forward(cnb_context *ctx, const cnb_conv_desc *cd, int act,
                                          const cnb_pool_desc *pd, float *a, float *y, void *ws,
                                          const float *x, const float *w, const float *b) {
    FORWARD(CNB_KF_CONV_POOL_FWD, 1,
            conv_act_pool_forward(p_->real_ctx, cd, act, pd, a, y, ws, x, w, b));
    perturb(P(ctx), "conv_act_pool_forward", y, (size_t)pd->n * pd->c * pd->p * pd->q);
    return CNB_OK;
}

static cnb_status px_pool_act_conv_backward(cnb_context *ctx, const cnb_pool_desc *pd, int act,
                                           const cnb_conv_desc *cd, float *dx, float *dw,
                                           float *db, const float *dy, const float *a,
                                           const float *y, const void *ws, const float *x,
                                           const float *w) {
    FORWARD(CNB_KF_POOL_CONV_BWD, 1,
            pool_act_conv_backward(p_->real_ctx, pd, act, cd, dx, dw, db, dy, a, y, ws, x, w));
    perturb(P(ctx), "pool_act_conv_backward", dw, (size_t)cd->k * cd->c * cd->r * cd->s);
    return CNB_OK;
}

/* The optimizer step ends a training step: fold the step's calls into the training totals. With
 * timers this is where the step's pairs are read back, one wait per step instead of per call. */
static void end_of_step(cnb_profiler *p) {
    resolve_timers(p);
    for (int f = 0; f < CNB_KF_COUNT; f++) {
        p->train.seconds[f] += p->pending.seconds[f];
        p->train.calls[f] += p->pending.calls[f];
    }
    memset(&p->pending, 0, sizeof p->pending);
}
static cnb_status px_sgd_step(cnb_context *ctx, const cnb_sgd_desc *d, size_t count,
                              float *param, float *velocity, const float *grad) {
    FORWARD(CNB_KF_OPTIMIZER, 0, sgd_step(p_->real_ctx, d, count, param, velocity, grad));
    perturb(P(ctx), "sgd_step", param, count);
    end_of_step(P(ctx));
    return CNB_OK;
}
static cnb_status px_adam_step(cnb_context *ctx, const cnb_adam_desc *d, size_t count,
                               float *param, float *m, float *v, const float *grad) {
    FORWARD(CNB_KF_OPTIMIZER, 0, adam_step(p_->real_ctx, d, count, param, m, v, grad));
    perturb(P(ctx), "adam_step", param, count);
    end_of_step(P(ctx));
    return CNB_OK;
}

/* The proxy passes the timer slots through untimed, so code handed the proxy sees what the real
 * backend offers. */
static cnb_status px_timer_create(cnb_context *ctx, cnb_timer **out) {
    return P(ctx)->real->timer_create(P(ctx)->real_ctx, out);
}
static cnb_status px_timer_record(cnb_context *ctx, cnb_timer *t) {
    return P(ctx)->real->timer_record(P(ctx)->real_ctx, t);
}
static cnb_status px_timer_elapsed(cnb_context *ctx, const cnb_timer *a, const cnb_timer *b,
                                   double *ms) {
    return P(ctx)->real->timer_elapsed(P(ctx)->real_ctx, a, b, ms);
}
static cnb_status px_timer_destroy(cnb_context *ctx, cnb_timer *t) {
    return P(ctx)->real->timer_destroy(P(ctx)->real_ctx, t);
}

void cnb_profiler_init(cnb_profiler *p, const cnb_backend *real, cnb_context *real_ctx,
                       int timing) {
    memset(p, 0, sizeof *p);
    p->real = real;
    p->real_ctx = real_ctx;
    p->timing = timing;
    cnb_test_faults(real->name, &p->slowdown_conv, p->perturb_slot, sizeof p->perturb_slot);
    /* A planted slowdown is a host busy wait that the device's timers would not see: keep the
     * host clock then, so it shows in the breakdown on every backend. */
    int has_timers = cnb_backend_has_timers(real);
    if (timing && has_timers && p->slowdown_conv <= 1.0)
        p->use_timers = grow_timers(p, TIMER_POOL_FIRST) == 0;
    p->table = (cnb_backend){
        .abi_version = CNB_ABI_VERSION,
        .struct_size = sizeof(cnb_backend),
        .name = real->name,
        .description = real->description,
        .device_kind = cnb_backend_device_kind(real),
        .create = px_create,
        .destroy = px_destroy,
        .last_error = px_last_error,
        .info = px_info,
        .alloc = px_alloc,
        .free = px_free,
        .upload = px_upload,
        .download = px_download,
        .synchronize = px_synchronize,
        .corr2d = px_corr2d,
        .conv_forward = px_conv_forward,
        .conv_backward_data = px_conv_backward_data,
        .conv_backward_filter = px_conv_backward_filter,
        .bias_forward = px_bias_forward,
        .bias_backward = px_bias_backward,
        .pool_workspace_size = px_pool_workspace_size,
        .pool_forward = px_pool_forward,
        .pool_backward = px_pool_backward,
        .gemm = px_gemm,
        .activation_forward = px_activation_forward,
        .activation_backward = px_activation_backward,
        .softmax_ce_forward = px_softmax_ce_forward,
        .softmax_ce_backward = px_softmax_ce_backward,
        .sgd_step = px_sgd_step,
        .adam_step = px_adam_step,
    };
    if (has_timers) {
        p->table.timer_create = px_timer_create;
        p->table.timer_record = px_timer_record;
        p->table.timer_elapsed = px_timer_elapsed;
        p->table.timer_destroy = px_timer_destroy;
    }
    if (cnb_backend_has_fusion(real)) {
        p->table.conv_bias_act_forward = px_conv_bias_act_forward;
        p->table.pool_act_backward = px_pool_act_backward;
    }
    if (cnb_backend_has_conv_backward(real)) p->table.conv_backward = px_conv_backward;
    if (cnb_backend_has_conv_pool_forward(real))
        p->table.conv_act_pool_forward = px_conv_act_pool_forward;
    if (cnb_backend_has_pool_conv_backward(real))
        p->table.pool_act_conv_backward = px_pool_act_conv_backward;
}

void cnb_profiler_release(cnb_profiler *p) {
    for (int i = 0; i < 2 * p->timer_pairs; i++)
        p->real->timer_destroy(p->real_ctx, p->timers[i]);
    free(p->timers);
    free(p->timer_family);
    p->timers = NULL;
    p->timer_family = NULL;
    p->timer_pairs = p->timers_used = 0;
    p->use_timers = 0;
}

void cnb_profiler_flush(cnb_profiler *p) { resolve_timers(p); }

const char *cnb_profiler_timing_method(const cnb_profiler *p) {
    return p->use_timers ? "device timers (cnb timer slots)" : "host clock after synchronize";
}

void cnb_profiler_reset(cnb_profiler *p) {
    p->timers_used = 0; /* pairs from before the reset are not read back */
    memset(&p->pending, 0, sizeof p->pending);
    memset(&p->train, 0, sizeof p->train);
}

int cnb_profiler_has_fault(const cnb_profiler *p) {
    return p->slowdown_conv > 1.0 || p->perturb_slot[0] != '\0';
}
