/* train.c — the training loop. The harness owns the model, the data, the random numbers and the
 * loop; the backend owns only kernels and device memory. Every device buffer is allocated once
 * in cnb_trainer_create (page faults are expensive here, DESIGN.md §5), so a step allocates
 * nothing. Layers are driven forward / backward with ping-pong gradient buffers. */
#define _POSIX_C_SOURCE 200809L
#include "train.h"

#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distributed.h"
#include "nonfinite.h"

/* The words ahead of the predictions in the results buffer: the loss, and the parameter check's
 * two sums (params_diverged), so one download per step brings all three and the predictions. */
#define RESULTS_HEAD 3

static volatile sig_atomic_t stop_requested = 0;

void cnb_request_stop(int signal_number) { stop_requested = signal_number ? signal_number : 1; }

struct cnb_trainer {
    const cnb_backend *api;
    cnb_context *ctx;
    const cnb_model *m;
    cnb_run_settings s;
    const cnb_dataset *train, *test;
    int max_batch;          /* largest batch any buffer must hold (train or eval) */
    /* host */
    float *train_x, *test_x; /* normalized images, count * in_size */
    int32_t *order;         /* shuffled training order */
    float *stage_x;         /* one batch, gathered for upload */
    int32_t *stage_y;
    int32_t *host_results;  /* RESULTS_HEAD words (the loss's bits, the parameter sums'), then
                             * the predictions (host_pred) */
    int32_t *host_pred;
    size_t in_size;         /* c*h*w of one input */
    /* device */
    float *params, *grads, *opt_m, *opt_v;
    float *x;               /* input batch (max_batch, in_size) */
    int32_t *y, *pred;      /* labels and predictions (max_batch) */
    float *probs, *loss;
    /* loss (one float) then pred, in one buffer: one download, one wait, per batch */
    int32_t *results;       /* on the device: loss, parameter sums, predictions (one download) */
    float *param_sums;      /* two floats inside results: the parameter check's sums */
    float *act[CNB_MAX_LAYERS];   /* each layer's output; flatten aliases its input */
    int act_owned[CNB_MAX_LAYERS];
    void *pool_ws[CNB_MAX_LAYERS];
    size_t pool_ws_bytes[CNB_MAX_LAYERS];
    float *dbuf[2];         /* ping-pong gradient buffers, max activation size each */
    long adam_step;
    cnb_rng rng;            /* after initialization: drives shuffling */
    cnb_rng shuffle_start;  /* rng as it was at the start of epoch 1 (saved in checkpoints) */
    /* Position: the next step to run, and the epoch whose shuffle t->order already holds. */
    long global_step;
    int pos_epoch;
    long pos_step;
    int shuffled_epoch;
    /* Data-parallel runs: the host copy of the gradients for the all-reduce, and the stop
     * decision all ranks took together at the last step. */
    float *host_grads;
    int dist_stop;
    /* Fusion (the backend's optional fused slots, unless --no-fusion): per layer, 0 = not tried
     * yet, 1 = the last call fused, -1 = the backend said unsupported, separate calls from now
     * on. fuse_fwd, fuse_conv_pool and fuse_conv_bwd are indexed by the convolution, fuse_bwd
     * and fuse_pool_conv by the pooling layer. fusion_conv_bwd, fusion_conv_pool,
     * fusion_pool_conv: the backend has the fused convolution backward, the fused convolution
     * + activation + pooling forward, the fused pooling + activation + convolution backward. */
    int fusion, fusion_conv_bwd, fusion_conv_pool, fusion_pool_conv;
    signed char fuse_fwd[CNB_MAX_LAYERS], fuse_bwd[CNB_MAX_LAYERS], fuse_conv_bwd[CNB_MAX_LAYERS];
    signed char fuse_conv_pool[CNB_MAX_LAYERS], fuse_pool_conv[CNB_MAX_LAYERS];
};

void cnb_settings_from_model(const cnb_model *m, cnb_run_settings *s) {
    memset(s, 0, sizeof *s);
    s->epochs = m->epochs;
    s->batch = m->batch;
    s->eval_batch = 1000;
    snprintf(s->optimizer, sizeof s->optimizer, "%s", m->optimizer);
    s->lr = m->lr;
    s->momentum = m->momentum;
    s->weight_decay = m->weight_decay;
    s->beta1 = m->beta1;
    s->beta2 = m->beta2;
    s->eps = m->eps;
    s->seed = 42;
}

void cnb_init_params(const cnb_model *m, cnb_rng *rng, float *params) {
    for (int i = 0; i < m->n_layers; i++) {
        const cnb_layer *l = &m->layers[i];
        float *w = params + l->param_offset;
        if (l->type == CNB_LAYER_PRELU) {
            w[0] = l->prelu_init;
            continue;
        }
        if (l->type != CNB_LAYER_CONV && l->type != CNB_LAYER_LINEAR) continue;
        size_t fan_in = (size_t)l->in_c * (l->type == CNB_LAYER_CONV
                                               ? (size_t)l->size_h * (size_t)l->size_w
                                               : (size_t)l->in_h * (size_t)l->in_w);
        double bound = 1.0 / sqrt((double)fan_in);
        size_t total = l->weight_count + l->bias_count;
        for (size_t k = 0; k < total; k++)
            w[k] = (float)((2.0 * cnb_rng_uniform(rng) - 1.0) * bound);
    }
}

/* Returns -1 with the backend's words when a kernel fails. */
#define KCHECK(t, call, what)                                                                   \
    do {                                                                                        \
        cnb_status st_ = (call);                                                                \
        if (st_ != CNB_OK)                                                                      \
            return cnb_errf(err, err_len, "%s: %s failed (%s): %s", (t)->api->name, what,       \
                            cnb_status_str(st_), (t)->api->last_error((t)->ctx));               \
    } while (0)

static size_t layer_out_size(const cnb_layer *l) {
    return (size_t)l->out_c * (size_t)l->out_h * (size_t)l->out_w;
}

static void conv_desc(const cnb_layer *l, int n, cnb_conv_desc *d) {
    *d = (cnb_conv_desc){.n = n, .c = l->in_c, .h = l->in_h, .w = l->in_w, .k = l->out_c,
                         .r = l->size_h, .s = l->size_w, .stride_h = l->stride_h,
                         .stride_w = l->stride_w, .pad_h = l->pad_h, .pad_w = l->pad_w,
                         .p = l->out_h, .q = l->out_w};
}

static void pool_desc(const cnb_layer *l, int n, cnb_pool_desc *d) {
    *d = (cnb_pool_desc){.mode = l->type == CNB_LAYER_MAXPOOL ? CNB_POOL_MAX : CNB_POOL_AVG,
                         .n = n, .c = l->in_c, .h = l->in_h, .w = l->in_w, .kh = l->size_h,
                         .kw = l->size_w, .stride_h = l->stride_h, .stride_w = l->stride_w,
                         .pad_h = l->pad_h, .pad_w = l->pad_w, .p = l->out_h, .q = l->out_w};
}

static const float *layer_input(const cnb_trainer *t, int i) {
    return i == 0 ? t->x : t->act[i - 1];
}

static void trainer_free_device(cnb_trainer *t) {
    void *bufs[] = {t->params, t->grads, t->opt_m, t->opt_v, t->x, t->y, t->results,
                    t->probs, t->dbuf[0], t->dbuf[1]};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) t->api->free(t->ctx, bufs[i]);
    for (int i = 0; i < t->m->n_layers; i++) {
        if (t->act_owned[i] && t->act[i]) t->api->free(t->ctx, t->act[i]);
        if (t->pool_ws[i]) t->api->free(t->ctx, t->pool_ws[i]);
    }
}

void cnb_trainer_destroy(cnb_trainer *t) {
    if (!t) return;
    trainer_free_device(t);
    free(t->train_x);
    free(t->test_x);
    free(t->order);
    free(t->stage_x);
    free(t->stage_y);
    free(t->host_results);
    free(t->host_grads);
    free(t);
}

static int dev_alloc(cnb_trainer *t, void **p, size_t count, size_t elem, const char *what,
                     char *err, size_t err_len) {
    size_t bytes;
    if (cnb_mul_size(count, elem, &bytes) != 0)
        return cnb_errf(err, err_len, "%s: buffer size overflows", what);
    KCHECK(t, t->api->alloc(t->ctx, p, bytes), what);
    return 0;
}

static float *normalized_copy(const cnb_dataset *d, const cnb_model *m) {
    size_t n = (size_t)d->count * (size_t)d->rows * (size_t)d->cols;
    float *out = cnb_aligned_alloc(n * sizeof(float));
    if (!out) return NULL;
    cnb_dataset_to_float(d, m->normalize ? m->norm_mean : 0.0f, m->normalize ? m->norm_std : 1.0f,
                         out);
    return out;
}

static int warm_up(cnb_trainer *t, char *err, size_t err_len);

static void warm_up_fact(void *user, const char *key, const char *value) {
    if (strcmp(key, "warm_up") == 0 && strcmp(value, "yes") == 0) *(int *)user = 1;
}

/* 1 when the backend does per-shape work on a shape's first call (cnb_abi.h, info()). */
static int wants_warm_up(const cnb_backend *api, cnb_context *ctx) {
    int yes = cnb_backend_has_timers(api);
    if (!yes && api->info) api->info(ctx, warm_up_fact, &yes);
    return yes;
}

/* What a run needs of its inputs and settings; 0 or -1 (err says what does not fit). */
static int check_run_inputs(const cnb_model *m, const cnb_dataset *train, const cnb_dataset *test,
                            const cnb_run_settings *s, char *err, size_t err_len) {
    if (m->in_c != 1 || train->rows != m->in_h || train->cols != m->in_w)
        return cnb_errf(err, err_len,
                        "model %s expects %dx%dx%d inputs but %s holds 1x%dx%d images", m->name,
                        m->in_c, m->in_h, m->in_w, train->images_path, train->rows, train->cols);
    if (test->rows != train->rows || test->cols != train->cols)
        return cnb_errf(err, err_len, "%s: test images are %dx%d but training images are %dx%d",
                        test->images_path, test->rows, test->cols, train->rows, train->cols);
    if (train->classes > m->classes || test->classes > m->classes)
        return cnb_errf(err, err_len, "data set has %d classes but model %s outputs %d",
                        train->classes, m->name, m->classes);
    if (m->classes > CNB_MAX_CLASSES)
        return cnb_errf(err, err_len, "model %s has %d classes; at most %d are supported",
                        m->name, m->classes, CNB_MAX_CLASSES);
    if (s->batch < 1 || s->eval_batch < 1 || s->epochs < 1 || s->epochs > CNB_MAX_EPOCHS)
        return cnb_errf(err, err_len, "batch, eval batch and epochs must be positive (epochs <= %d)",
                        CNB_MAX_EPOCHS);
    if (train->count < 1 || test->count < 1)
        return cnb_errf(err, err_len, "empty data set (%d training, %d test images)",
                        train->count, test->count);

    return 0;
}

/* Host buffers: the normalized data sets, the order, the staging of one batch and its results. */
static int alloc_host(cnb_trainer *t, char *err, size_t err_len) {
    const cnb_model *m = t->m;
    const cnb_dataset *train = t->train, *test = t->test;
    const cnb_run_settings *s = &t->s;
    size_t mb = (size_t)t->max_batch;
    t->train_x = normalized_copy(train, m);
    t->test_x = normalized_copy(test, m);
    t->order = malloc((size_t)train->count * sizeof(int32_t));
    t->stage_x = cnb_aligned_alloc(mb * t->in_size * sizeof(float));
    t->stage_y = malloc(mb * sizeof(int32_t));
    t->host_results = malloc((mb + RESULTS_HEAD) * sizeof(int32_t));
    t->host_pred = t->host_results ? t->host_results + RESULTS_HEAD : NULL;
    if (!t->train_x || !t->test_x || !t->order || !t->stage_x || !t->stage_y || !t->host_pred)
        return cnb_errf(err, err_len, "out of host memory for the data sets");
    for (int i = 0; i < train->count; i++) t->order[i] = i;
    if (s->dist &&
        !(t->host_grads = cnb_aligned_alloc((m->n_params ? m->n_params : 1) * sizeof(float))))
        return cnb_errf(err, err_len, "out of host memory for the gradient exchange");
    return 0;
}

/* Device buffers, every one allocated once before the first step (a page fault costs ~10 us per
 * 4 KiB here): parameters, gradients, optimizer state, a batch, results, activations, pooling
 * workspaces and two gradient buffers for the backward pass. 0 or -1. */
static int alloc_device(cnb_trainer *t, char *err, size_t err_len) {
    const cnb_backend *api = t->api;
    cnb_context *ctx = t->ctx;
    const cnb_model *m = t->m;
    size_t mb = (size_t)t->max_batch;
    size_t np = m->n_params, max_act = t->in_size;
    int ok = dev_alloc(t, (void **)&t->params, np, sizeof(float), "alloc params", err, err_len) ||
             dev_alloc(t, (void **)&t->grads, np, sizeof(float), "alloc grads", err, err_len) ||
             dev_alloc(t, (void **)&t->opt_m, np, sizeof(float), "alloc optimizer state", err,
                       err_len) ||
             dev_alloc(t, (void **)&t->opt_v, np, sizeof(float), "alloc optimizer state", err,
                       err_len) ||
             dev_alloc(t, (void **)&t->x, mb * t->in_size, sizeof(float), "alloc input", err,
                       err_len) ||
             dev_alloc(t, (void **)&t->y, mb, sizeof(int32_t), "alloc labels", err, err_len) ||
             dev_alloc(t, (void **)&t->results, mb + RESULTS_HEAD, sizeof(int32_t),
                       "alloc loss and predictions", err, err_len) ||
             dev_alloc(t, (void **)&t->probs, mb * (size_t)m->classes, sizeof(float),
                       "alloc probabilities", err, err_len);
    if (ok == 0) {
        t->loss = (float *)t->results;
        t->param_sums = (float *)t->results + 1;
        t->pred = t->results + RESULTS_HEAD;
    }
    for (int i = 0; ok == 0 && i < m->n_layers; i++) {
        const cnb_layer *l = &m->layers[i];
        size_t sz = layer_out_size(l);
        if (sz > max_act) max_act = sz;
        if (l->type == CNB_LAYER_FLATTEN) {
            t->act[i] = (float *)layer_input(t, i); /* same bytes, new shape: no copy */
            continue;
        }
        ok = dev_alloc(t, (void **)&t->act[i], mb * sz, sizeof(float), "alloc activations", err,
                       err_len);
        t->act_owned[i] = ok == 0;
        if (ok == 0 && (l->type == CNB_LAYER_MAXPOOL || l->type == CNB_LAYER_AVGPOOL)) {
            /* The workspace is sized for the largest batch; smaller batches use a prefix. */
            cnb_pool_desc pd;
            pool_desc(l, t->max_batch, &pd);
            cnb_status st = api->pool_workspace_size(ctx, &pd, &t->pool_ws_bytes[i]);
            if (st != CNB_OK)
                ok = cnb_errf(err, err_len, "%s: pool_workspace_size failed: %s", api->name,
                              api->last_error(ctx));
            else if (t->pool_ws_bytes[i])
                ok = dev_alloc(t, &t->pool_ws[i], t->pool_ws_bytes[i], 1, "alloc pool workspace",
                               err, err_len);
        }
    }
    if (ok == 0)
        ok = dev_alloc(t, (void **)&t->dbuf[0], mb * max_act, sizeof(float), "alloc gradients",
                       err, err_len) ||
             dev_alloc(t, (void **)&t->dbuf[1], mb * max_act, sizeof(float), "alloc gradients",
                       err, err_len);
    return ok != 0 ? -1 : 0;
}

/* PyTorch's initialization from the seed, uploaded, and a zeroed optimizer state. 0 or -1. */
static int init_and_upload(cnb_trainer *t, char *err, size_t err_len) {
    const cnb_backend *api = t->api;
    cnb_context *ctx = t->ctx;
    const cnb_model *m = t->m;
    size_t np = m->n_params;
    /* Same seed → same initial bits on every backend; the generator then drives shuffling. */
    cnb_rng_seed(&t->rng, t->s.seed);
    float *host = calloc(np ? np : 1, sizeof(float));
    if (!host) return cnb_errf(err, err_len, "out of host memory");
    cnb_init_params(m, &t->rng, host);
    t->shuffle_start = t->rng;
    t->pos_epoch = 1;
    cnb_status st = api->upload(ctx, t->params, host, np * sizeof(float));
    memset(host, 0, np * sizeof(float));
    if (st == CNB_OK) st = api->upload(ctx, t->opt_m, host, np * sizeof(float));
    if (st == CNB_OK) st = api->upload(ctx, t->opt_v, host, np * sizeof(float));
    free(host);
    if (st != CNB_OK)
        return cnb_errf(err, err_len, "%s: upload of the initial parameters failed: %s",
                        api->name, api->last_error(ctx));
    return 0;
}

int cnb_trainer_create(const cnb_backend *api, cnb_context *ctx, const cnb_model *m,
                       const cnb_dataset *train, const cnb_dataset *test,
                       const cnb_run_settings *s, cnb_trainer **out, char *err, size_t err_len) {
    *out = NULL;
    if (check_run_inputs(m, train, test, s, err, err_len) != 0) return -1;
    cnb_trainer *t = calloc(1, sizeof *t);
    if (!t) return cnb_errf(err, err_len, "out of host memory");
    t->api = api;
    t->ctx = ctx;
    t->m = m;
    t->s = *s;
    t->train = train;
    t->test = test;
    t->in_size = (size_t)m->in_c * (size_t)m->in_h * (size_t)m->in_w;
    int train_batch = s->batch < train->count ? s->batch : train->count;
    int eval_batch = s->eval_batch < test->count ? s->eval_batch : test->count;
    t->max_batch = train_batch > eval_batch ? train_batch : eval_batch;
    t->fusion = !s->no_fusion && cnb_backend_has_fusion(api);
    t->fusion_conv_bwd = !s->no_fusion && cnb_backend_has_conv_backward(api);
    t->fusion_conv_pool = !s->no_fusion && cnb_backend_has_conv_pool_forward(api);
    t->fusion_pool_conv = !s->no_fusion && cnb_backend_has_pool_conv_backward(api);
    /* Per-shape work on first use (cuDNN's and oneDNN's algorithm searches, scratch growth) is
     * done here, before anything is timed: always for a device backend, and for a CPU backend
     * that says so in info() (cnb_abi.h: "warm_up"); the others skip it. */
    if (alloc_host(t, err, err_len) != 0 || alloc_device(t, err, err_len) != 0 ||
        init_and_upload(t, err, err_len) != 0 ||
        (wants_warm_up(api, ctx) && warm_up(t, err, err_len) != 0)) {
        cnb_trainer_destroy(t);
        return -1;
    }
    *out = t;
    return 0;
}

/* The activation a fused slot can take for layer j (CNB_ACT_RELU, TANH or SIGMOID), or -1 when
 * layer j is not such an activation. */
static int fused_slot_activation(const cnb_model *m, int j) {
    if (j < 0 || j >= m->n_layers) return -1;
    cnb_layer_type ty = m->layers[j].type;
    return ty == CNB_LAYER_RELU || ty == CNB_LAYER_TANH || ty == CNB_LAYER_SIGMOID
               ? cnb_layer_activation(ty) : -1;
}

/* fused_slot_activation, or -1 when the fusion group is off. */
static int fusable_activation(const cnb_trainer *t, int j) {
    return t->fusion ? fused_slot_activation(t->m, j) : -1;
}

/* 1 when layer j is a pooling layer. */
static int is_pooling(const cnb_model *m, int j) {
    return j >= 0 && j < m->n_layers &&
           (m->layers[j].type == CNB_LAYER_MAXPOOL || m->layers[j].type == CNB_LAYER_AVGPOOL);
}

/* 1 when convolution i's output was not written by the last forward pass (a fused slot wrote
 * the activation after it instead). */
static int conv_output_skipped(const cnb_trainer *t, int i) {
    return t->fuse_fwd[i] == 1 || t->fuse_conv_pool[i] == 1;
}

/* What a fused slot's answer st means for the layer whose state is *state: CNB_ERR_UNSUPPORTED
 * makes it run the separate calls from now on (0), success is 1, anything else an error (-1). */
static int fused_outcome(cnb_trainer *t, signed char *state, cnb_status st, const char *slot,
                         char *err, size_t err_len) {
    if (st == CNB_ERR_UNSUPPORTED) {
        *state = -1;
        return 0;
    }
    KCHECK(t, st, slot);
    *state = 1;
    return 1;
}

/* Convolution i and the activation after it as one call, written into the activation's output
 * (the convolution's own output is then not computed). 1: fused; 0: run the separate calls;
 * -1: error. */
static int conv_act_forward_fused(cnb_trainer *t, int i, const cnb_conv_desc *d, const float *in,
                                  const float *w, const float *b, char *err, size_t err_len) {
    int act = fusable_activation(t, i + 1);
    if (act < 0 || t->fuse_fwd[i] < 0) return 0;
    cnb_status st = t->api->conv_bias_act_forward(t->ctx, d, act, t->act[i + 1], in, w, b);
    return fused_outcome(t, &t->fuse_fwd[i], st, "conv_bias_act_forward", err, err_len);
}

/* Whether a training step's fused block forward before pooling layer `pool` keeps the
 * activation's output a. Only a backward outside the fused block backward reads a, so a max
 * pooling whose fused block backward has run (it reads y at each window's argmax) does not keep
 * it, which saves writing the block's biggest tensor. The backward of the same step asks again:
 * the answer changes only when that backward declines. */
static int block_keeps_a(const cnb_trainer *t, int pool) {
    return !(t->m->layers[pool].type == CNB_LAYER_MAXPOOL && t->fuse_pool_conv[pool] == 1);
}

/* Convolution i, the activation i+1 and the pooling i+2 as one call (cnb_abi.h's
 * conv_act_pool_forward), writing the pooling's output, and the activation's output a when a
 * backward pass may read it: never in an inference pass (training 0), in training as
 * block_keeps_a says. 1: fused; 0: run the separate calls; -1: error. */
static int conv_act_pool_forward_fused(cnb_trainer *t, int i, const cnb_conv_desc *d, int n,
                                       int training, const float *in, const float *w,
                                       const float *b, char *err, size_t err_len) {
    int act = fused_slot_activation(t->m, i + 1);
    if (!t->fusion_conv_pool || t->fuse_conv_pool[i] < 0 || act < 0 || !is_pooling(t->m, i + 2))
        return 0;
    cnb_pool_desc pd;
    pool_desc(&t->m->layers[i + 2], n, &pd);
    int keep = training && block_keeps_a(t, i + 2);
    cnb_status st = t->api->conv_act_pool_forward(t->ctx, d, act, &pd,
                                                  keep ? t->act[i + 1] : NULL, t->act[i + 2],
                                                  t->pool_ws[i + 2], in, w, b);
    return fused_outcome(t, &t->fuse_conv_pool[i], st, "conv_act_pool_forward", err, err_len);
}

/* Pooling i's backward, the activation i-1 and the convolution i-2 before it as one call
 * (cnb_abi.h's pool_act_conv_backward): the convolution's weight and bias gradients and dx, the
 * gradient of its input (NULL for the first layer). 1: fused; 0: run the separate calls; -1:
 * error. */
static int pool_act_conv_backward_fused(cnb_trainer *t, int i, const cnb_pool_desc *pd, int n,
                                        float *dx, const float *dy, char *err, size_t err_len) {
    const cnb_model *m = t->m;
    int act = fused_slot_activation(m, i - 1);
    if (!t->fusion_pool_conv || t->fuse_pool_conv[i] < 0 || act < 0 || i < 2 ||
        m->layers[i - 2].type != CNB_LAYER_CONV)
        return 0;
    const cnb_layer *cl = &m->layers[i - 2];
    cnb_conv_desc cd;
    conv_desc(cl, n, &cd);
    const float *w = t->params + cl->param_offset;
    float *dw = t->grads + cl->param_offset;
    /* the forward kept a unless it ran fused and block_keeps_a said no */
    const float *a = t->fuse_conv_pool[i - 2] == 1 && !block_keeps_a(t, i) ? NULL : t->act[i - 1];
    cnb_status st = t->api->pool_act_conv_backward(
        t->ctx, pd, act, &cd, i - 2 > 0 ? dx : NULL, dw, cl->bias_count ? dw + cl->weight_count : NULL,
        dy, a, t->act[i], t->pool_ws[i], layer_input(t, i - 2), w);
    if (st == CNB_ERR_UNSUPPORTED && !a) {
        /* the separate calls read a, which the forward did not keep: write it again (the same
         * y and workspace come with it) */
        KCHECK(t, t->api->conv_act_pool_forward(t->ctx, &cd, act, pd, t->act[i - 1], t->act[i],
                                                t->pool_ws[i], layer_input(t, i - 2), w,
                                                cl->bias_count ? w + cl->weight_count : NULL),
               "conv_act_pool_forward (keeping a for the separate backward)");
    }
    return fused_outcome(t, &t->fuse_pool_conv[i], st, "pool_act_conv_backward", err, err_len);
}

/* Pooling i's backward with the activation i-1 before it folded in: dx is the gradient of the
 * activation's input. 1: fused; 0: run the separate calls; -1: error. */
static int pool_act_backward_fused(cnb_trainer *t, int i, const cnb_pool_desc *d, float *dx,
                                   const float *dy, char *err, size_t err_len) {
    int act = fusable_activation(t, i - 1);
    if (act < 0 || i < 2 || t->fuse_bwd[i] < 0) return 0;
    cnb_status st = t->api->pool_act_backward(t->ctx, d, act, dx, dy, t->act[i - 1], t->act[i],
                                              t->pool_ws[i]);
    return fused_outcome(t, &t->fuse_bwd[i], st, "pool_act_backward", err, err_len);
}

/* Convolution i's three gradients in one call (cnb_abi.h's conv_backward). 1: fused; 0: run
 * the separate calls; -1: error. */
static int conv_backward_fused(cnb_trainer *t, int i, const cnb_conv_desc *d, float *dx,
                               float *dw, float *db, const float *dy, const float *in,
                               const float *w, char *err, size_t err_len) {
    if (!t->fusion_conv_bwd || t->fuse_conv_bwd[i] < 0) return 0;
    cnb_status st = t->api->conv_backward(t->ctx, d, dx, dw, db, dy, in, w);
    return fused_outcome(t, &t->fuse_conv_bwd[i], st, "conv_backward", err, err_len);
}

/* Forward pass for n images already in t->x; logits end up in the last layer's output.
 * training: a backward pass follows (it needs what inference may skip). */
static int forward(cnb_trainer *t, int n, int training, char *err, size_t err_len) {
    const cnb_model *m = t->m;
    for (int i = 0; i < m->n_layers; i++) {
        const cnb_layer *l = &m->layers[i];
        const float *in = layer_input(t, i);
        float *out = t->act[i];
        float *w = t->params + l->param_offset;
        const float *b = l->bias_count ? w + l->weight_count : NULL;
        switch (l->type) {
        case CNB_LAYER_CONV: {
            cnb_conv_desc d;
            conv_desc(l, n, &d);
            int fused = conv_act_pool_forward_fused(t, i, &d, n, training, in, w, b, err,
                                                    err_len);
            if (fused < 0) return -1;
            if (fused) {
                i += 2; /* the activation and the pooling after it are done too */
                break;
            }
            fused = conv_act_forward_fused(t, i, &d, in, w, b, err, err_len);
            if (fused < 0) return -1;
            if (fused) {
                i++; /* the activation after it is done too */
                break;
            }
            KCHECK(t, t->api->conv_forward(t->ctx, &d, out, in, w, b), "conv_forward");
            break;
        }
        case CNB_LAYER_LINEAR: {
            int fin = l->in_c * l->in_h * l->in_w, fout = l->out_c;
            /* y (n, fout) = x (n, fin) · W (fout, fin)^T */
            KCHECK(t, t->api->gemm(t->ctx, 0, 1, n, fout, fin, 1.0f, in, fin, w, fin, 0.0f, out,
                                   fout),
                   "gemm (linear forward)");
            if (b) KCHECK(t, t->api->bias_forward(t->ctx, out, b, n, fout, 1), "bias_forward");
            break;
        }
        case CNB_LAYER_MAXPOOL:
        case CNB_LAYER_AVGPOOL: {
            cnb_pool_desc d;
            pool_desc(l, n, &d);
            KCHECK(t, t->api->pool_forward(t->ctx, &d, out, in, t->pool_ws[i]), "pool_forward");
            break;
        }
        case CNB_LAYER_RELU:
        case CNB_LAYER_TANH:
        case CNB_LAYER_SIGMOID:
        case CNB_LAYER_PRELU:
            KCHECK(t, t->api->activation_forward(t->ctx, cnb_layer_activation(l->type),
                                                 (size_t)n * layer_out_size(l), out, in, w),
                   "activation_forward");
            break;
        case CNB_LAYER_FLATTEN: break;
        }
    }
    return 0;
}

/* Backward pass from dlogits in t->dbuf[0]; writes every parameter gradient into t->grads. */
static int backward(cnb_trainer *t, int n, char *err, size_t err_len) {
    const cnb_model *m = t->m;
    int cur = 0;
    for (int i = m->n_layers - 1; i >= 0; i--) {
        const cnb_layer *l = &m->layers[i];
        const float *in = layer_input(t, i), *out = t->act[i];
        /* After a fused forward the activation's input was never written; its output stands in
         * for it (ReLU's gradient tests x > 0, which holds exactly when the output is > 0;
         * tanh and sigmoid use the output alone). */
        if (i > 0 && conv_output_skipped(t, i - 1) && cnb_layer_activation(l->type) >= 0)
            in = out;
        const float *dy = t->dbuf[cur];
        float *dx = i > 0 ? t->dbuf[1 - cur] : NULL; /* no gradient for the input images */
        const float *w = t->params + l->param_offset;
        float *dw = t->grads + l->param_offset;
        switch (l->type) {
        case CNB_LAYER_CONV: {
            cnb_conv_desc d;
            conv_desc(l, n, &d);
            int fused = conv_backward_fused(t, i, &d, dx, dw,
                                            l->bias_count ? dw + l->weight_count : NULL, dy, in,
                                            w, err, err_len);
            if (fused < 0) return -1;
            if (fused) break;
            KCHECK(t, t->api->conv_backward_filter(t->ctx, &d, dw, dy, in),
                   "conv_backward_filter");
            if (l->bias_count)
                KCHECK(t, t->api->bias_backward(t->ctx, dw + l->weight_count, dy, n, l->out_c,
                                                l->out_h * l->out_w),
                       "bias_backward");
            if (dx) KCHECK(t, t->api->conv_backward_data(t->ctx, &d, dx, dy, w),
                           "conv_backward_data");
            break;
        }
        case CNB_LAYER_LINEAR: {
            int fin = l->in_c * l->in_h * l->in_w, fout = l->out_c;
            /* dW (fout, fin) = dy^T (fout, n) · x (n, fin);  dx (n, fin) = dy (n, fout) · W */
            KCHECK(t, t->api->gemm(t->ctx, 1, 0, fout, fin, n, 1.0f, dy, fout, in, fin, 0.0f, dw,
                                   fin),
                   "gemm (linear weight gradient)");
            if (l->bias_count)
                KCHECK(t, t->api->bias_backward(t->ctx, dw + l->weight_count, dy, n, fout, 1),
                       "bias_backward");
            if (dx) KCHECK(t, t->api->gemm(t->ctx, 0, 0, n, fin, fout, 1.0f, dy, fout, w, fin,
                                           0.0f, dx, fin),
                           "gemm (linear input gradient)");
            break;
        }
        case CNB_LAYER_MAXPOOL:
        case CNB_LAYER_AVGPOOL: {
            if (!dx) break;
            cnb_pool_desc d;
            pool_desc(l, n, &d);
            int fused = pool_act_conv_backward_fused(t, i, &d, n, dx, dy, err, err_len);
            if (fused < 0) return -1;
            if (fused) {
                i -= 2; /* dx is already the gradient of the convolution's input */
                break;
            }
            fused = pool_act_backward_fused(t, i, &d, dx, dy, err, err_len);
            if (fused < 0) return -1;
            if (fused) {
                i--; /* dx is already the gradient of the activation's input */
                break;
            }
            KCHECK(t, t->api->pool_backward(t->ctx, &d, dx, dy, in, out, t->pool_ws[i]),
                   "pool_backward");
            break;
        }
        case CNB_LAYER_RELU:
        case CNB_LAYER_TANH:
        case CNB_LAYER_SIGMOID:
        case CNB_LAYER_PRELU:
            /* PReLU's slope needs its gradient even at the first layer; dx then goes to the
             * spare buffer and is dropped. */
            KCHECK(t, t->api->activation_backward(
                          t->ctx, cnb_layer_activation(l->type), (size_t)n * layer_out_size(l),
                          dx ? dx : t->dbuf[1 - cur], l->type == CNB_LAYER_PRELU ? dw : NULL, dy,
                          in, out, w),
                   "activation_backward");
            break;
        case CNB_LAYER_FLATTEN: continue; /* the gradient stays where it is */
        }
        cur = 1 - cur;
    }
    return 0;
}

static int optimizer_step(cnb_trainer *t, char *err, size_t err_len) {
    const cnb_run_settings *s = &t->s;
    if (strcmp(s->optimizer, "adam") == 0) {
        cnb_adam_desc d = {.lr = s->lr, .beta1 = s->beta1, .beta2 = s->beta2, .eps = s->eps,
                           .weight_decay = s->weight_decay, .step = (int)++t->adam_step};
        KCHECK(t, t->api->adam_step(t->ctx, &d, t->m->n_params, t->params, t->opt_m, t->opt_v,
                                    t->grads),
               "adam_step");
    } else {
        cnb_sgd_desc d = {.lr = s->lr, .momentum = s->momentum, .weight_decay = s->weight_decay};
        KCHECK(t, t->api->sgd_step(t->ctx, &d, t->m->n_params, t->params, t->opt_m, t->grads),
               "sgd_step");
    }
    return 0;
}

/* Divergence from the parameters, not only the loss (a NaN weight behind a ReLU can leave the
 * loss finite for a while). After each optimizer step the backend sums the parameter block with
 * its bias_backward, viewed as PARAM_CHECK_ROWS images of one channel (backends split that
 * kernel over images or channels; rows keep it parallel) plus the tail that does not divide,
 * into two floats of the results buffer, which come down with the step's loss in the one
 * download the step waits for (the data-parallel path reads them on their own): a sum is finite
 * unless a value is NaN or +-Inf (or the sum passes float's range, 3.4e38: diverged too). Only
 * then is the whole block downloaded to name the tensor. */
#define PARAM_CHECK_ROWS 16
static int queue_param_sums(cnb_trainer *t, char *err, size_t err_len) {
    const size_t np = t->m->n_params, row = np / PARAM_CHECK_ROWS, tail = np % PARAM_CHECK_ROWS;
    if (np == 0 || np > INT_MAX) return 0;
    if (row)
        KCHECK(t, t->api->bias_backward(t->ctx, t->param_sums, t->params, PARAM_CHECK_ROWS, 1,
                                        (int)row),
               "bias_backward (parameter check)");
    if (tail)
        KCHECK(t, t->api->bias_backward(t->ctx, t->param_sums + 1, t->params + np - tail, 1, 1,
                                        (int)tail),
               "bias_backward (parameter check)");
    return 0;
}

/* 1 (what names the tensor and the value) when the downloaded sums say a parameter is not
 * finite, 0 when all are, -1 on an error. */
static int params_diverged(cnb_trainer *t, const float *sums, char *what, size_t what_len,
                           char *err, size_t err_len) {
    const size_t np = t->m->n_params, row = np / PARAM_CHECK_ROWS, tail = np % PARAM_CHECK_ROWS;
    if (np == 0 || np > INT_MAX) return 0;
    float sum[2] = {row ? sums[0] : 0.0f, tail ? sums[1] : 0.0f};
    if (isfinite(sum[0]) && isfinite(sum[1])) return 0;
    float *host = malloc(np * sizeof *host);
    if (!host) return cnb_errf(err, err_len, "out of host memory for the parameter check");
    if (cnb_trainer_get_params(t, host, err, err_len) != 0) {
        free(host);
        return -1;
    }
    cnb_describe_nonfinite(t->m, host, isfinite(sum[0]) ? sum[1] : sum[0], what, what_len);
    free(host);
    return 1;
}

/* The data-parallel path reads the sums on their own (its loss came down before the update). */
static int download_param_sums(cnb_trainer *t, char *err, size_t err_len) {
    KCHECK(t, t->api->download(t->ctx, t->host_results + 1, t->param_sums, 2 * sizeof(float)),
           "download (parameter check)");
    return 0;
}

/* Gather images idx[0..n) (or the contiguous range from `first` when idx is NULL) and upload. */
static int upload_batch(cnb_trainer *t, const float *images, const uint8_t *labels,
                        const int32_t *idx, int first, int n, char *err, size_t err_len) {
    for (int b = 0; b < n; b++) {
        int j = idx ? idx[b] : first + b;
        memcpy(t->stage_x + (size_t)b * t->in_size, images + (size_t)j * t->in_size,
               t->in_size * sizeof(float));
        t->stage_y[b] = labels[j];
    }
    KCHECK(t, t->api->upload(t->ctx, t->x, t->stage_x, (size_t)n * t->in_size * sizeof(float)),
           "upload (batch)");
    KCHECK(t, t->api->upload(t->ctx, t->y, t->stage_y, (size_t)n * sizeof(int32_t)),
           "upload (labels)");
    return 0;
}

/* Queues the loss (mean over n) and predictions of the batch in t->x, after a forward pass. */
static int queue_loss(cnb_trainer *t, int n, char *err, size_t err_len) {
    const float *logits = t->act[t->m->n_layers - 1];
    KCHECK(t, t->api->softmax_ce_forward(t->ctx, n, t->m->classes, t->probs, t->loss, t->pred,
                                         logits, t->y),
           "softmax_ce_forward");
    return 0;
}

/* Grows a per-step or per-batch log to hold one more value; 0 or -1. */
static int grow_log(void **p, long *cap, long used, size_t elem) {
    if (used < *cap) return 0;
    long n = *cap ? 2 * *cap : 4096;
    void *q = realloc(*p, (size_t)n * elem);
    if (!q) return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* Sums the ranks' test loss, correct count and confusion matrix. */
static int reduce_evaluation(cnb_trainer *t, cnb_run_result *r, double *loss_sum, long *correct,
                             char *err, size_t err_len) {
    int k = t->m->classes;
    double sums[CNB_MAX_CLASSES * CNB_MAX_CLASSES + 2];
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++) sums[i * k + j] = (double)r->confusion[i][j];
    sums[k * k] = *loss_sum;
    sums[k * k + 1] = (double)*correct;
    if (cnb_dist_sum_doubles(t->s.dist, sums, k * k + 2, err, err_len) != 0) return -1;
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++) r->confusion[i][j] = (long)sums[i * k + j];
    *loss_sum = sums[k * k];
    *correct = (long)sums[k * k + 1];
    return 0;
}

/* Waits for the queued loss and predictions: one download, so one wait, for both. */
static int read_loss(cnb_trainer *t, int n, float *loss, char *err, size_t err_len) {
    KCHECK(t, t->api->download(t->ctx, t->host_results, t->results,
                               ((size_t)n + RESULTS_HEAD) * sizeof(int32_t)),
           "download (loss and predictions)");
    memcpy(loss, t->host_results, sizeof *loss);
    return 0;
}

static int loss_and_predictions(cnb_trainer *t, int n, float *loss, char *err, size_t err_len) {
    return queue_loss(t, n, err, err_len) || read_loss(t, n, loss, err, err_len);
}

static int evaluate(cnb_trainer *t, cnb_run_result *r, double *loss_out, double *acc_out,
                    double *seconds, char *err, size_t err_len) {
    const cnb_dataset *d = t->test;
    int eb = t->s.eval_batch < t->max_batch ? t->s.eval_batch : t->max_batch;
    double loss_sum = 0.0;
    long correct = 0;
    memset(r->confusion, 0, sizeof r->confusion);
    double start = cnb_now();
    int lo, count; /* this rank's slice of the test set (all of it when alone) */
    cnb_dist_slice(t->s.dist, d->count, &lo, &count);
    for (int first = lo; first < lo + count; first += eb) {
        int n = lo + count - first < eb ? lo + count - first : eb;
        float loss;
        double batch_start = cnb_now();
        if (upload_batch(t, t->test_x, d->labels, NULL, first, n, err, err_len) != 0 ||
            forward(t, n, 0, err, err_len) != 0 ||
            loss_and_predictions(t, n, &loss, err, err_len) != 0)
            return -1;
        loss_sum += (double)loss * n;
        for (int b = 0; b < n; b++) {
            int truth = d->labels[first + b], p = t->host_pred[b];
            correct += truth == p;
            if (p >= 0 && p < t->m->classes) r->confusion[truth][p]++;
        }
        if (grow_log((void **)&r->eval_images_per_s, &r->eval_log_cap, r->eval_batches,
                     sizeof(double)) != 0)
            return cnb_errf(err, err_len, "out of host memory for the evaluation log");
        double dt = cnb_now() - batch_start;
        r->eval_images_per_s[r->eval_batches++] = dt > 0 ? n / dt : 0.0;
    }
    if (cnb_dist_size(t->s.dist) > 1 &&
        reduce_evaluation(t, r, &loss_sum, &correct, err, err_len) != 0)
        return -1;
    *seconds = cnb_dist_max(t->s.dist, cnb_now() - start);
    *loss_out = loss_sum / d->count;
    *acc_out = (double)correct / d->count;
    r->have_confusion = 1;
    return 0;
}

/* One pass at batch n on the first images of its data set: forward and loss, and the backward
 * pass when training uses n. No optimizer step, so parameters and optimizer state do not
 * change; activations and gradients are overwritten by the first real step. */
static int warm_up_batch(cnb_trainer *t, int n, int train, char *err, size_t err_len) {
    if (n <= 0) return 0;
    const cnb_dataset *d = train ? t->train : t->test;
    if (upload_batch(t, train ? t->train_x : t->test_x, d->labels, NULL, 0, n, err, err_len) ||
        forward(t, n, train, err, err_len) || queue_loss(t, n, err, err_len))
        return -1;
    if (!train) return 0;
    KCHECK(t, t->api->softmax_ce_backward(t->ctx, n, t->m->classes, t->dbuf[0], t->probs, t->y),
           "softmax_ce_backward");
    return backward(t, n, err, err_len);
}

/* Every batch size the run will use — the training batch, the epoch's last partial batch, the
 * evaluation batch and its last partial batch — once, then a wait for the device. */
static int warm_up(cnb_trainer *t, char *err, size_t err_len) {
    int batch = t->s.batch < t->train->count ? t->s.batch : t->train->count;
    int eb = t->s.eval_batch < t->max_batch ? t->s.eval_batch : t->max_batch;
    int sizes[4] = {batch, t->train->count % batch, eb < t->test->count ? eb : t->test->count,
                    t->test->count % eb};
    for (int i = 0; i < 4; i++) {
        int seen = 0; /* each size once; a training size covers evaluation too */
        for (int j = 0; j < i; j++) seen |= sizes[j] == sizes[i];
        if (!seen && warm_up_batch(t, sizes[i], i < 2, err, err_len) != 0) return -1;
    }
    KCHECK(t, t->api->synchronize(t->ctx), "synchronize (warm-up)");
    return 0;
}

/* Uploads the batch of training step `next` of this epoch ahead of time, when there is one
 * and the run will take it. Returns next; -1 when there is nothing to upload; -2 when the
 * upload failed (the message in err belongs to step next). */
static long upload_next(cnb_trainer *t, long next, long steps_per_epoch, int batch, char *err,
                        size_t err_len) {
    const cnb_dataset *d = t->train;
    if (next >= steps_per_epoch || (t->s.max_steps && t->global_step + 1 >= t->s.max_steps))
        return -1;
    int first = (int)(next * batch), n = d->count - first < batch ? d->count - first : batch;
    return upload_batch(t, t->train_x, d->labels, t->order + first, 0, n, err, err_len) ? -2
                                                                                        : next;
}

/* The loss of a step and its time (upload to optimizer update), for the per-step throughput. */
static int record_step_loss(cnb_run_result *r, float loss, double seconds, int images) {
    if (grow_log((void **)&r->step_losses, &r->step_losses_cap, r->total_steps, sizeof(float)) ||
        grow_log((void **)&r->step_images_per_s, &r->step_ips_cap, r->total_steps,
                 sizeof(double)))
        return -1;
    r->step_losses[r->total_steps] = loss;
    r->step_images_per_s[r->total_steps] = seconds > 0 ? images / seconds : 0.0;
    r->total_steps++;
    return 0;
}

static void progress_line(const cnb_trainer *t, int epoch, long step, long steps, double loss,
                          double ips) {
    fprintf(stderr, "\r\033[Kepoch %d/%d  step %ld/%ld  loss %.4f  %.0f img/s", epoch,
            t->s.epochs, step, steps, loss, ips);
}

/* Forward, loss and backward of this rank's n images order[0..n); *correct counts its right
 * predictions. A rank with no images in this batch (a batch smaller than the rank count) only
 * contributes zeros to the exchange. */
static int local_step(cnb_trainer *t, const int32_t *order, int n, float *loss, long *correct,
                      char *err, size_t err_len) {
    *loss = 0.0f;
    *correct = 0;
    if (n == 0) return 0;
    int classes = t->m->classes;
    if (upload_batch(t, t->train_x, t->train->labels, order, 0, n, err, err_len) ||
        forward(t, n, 1, err, err_len) || loss_and_predictions(t, n, loss, err, err_len))
        return -1;
    KCHECK(t, t->api->softmax_ce_backward(t->ctx, n, classes, t->dbuf[0], t->probs, t->y),
           "softmax_ce_backward");
    if (backward(t, n, err, err_len) != 0) return -1;
    for (int b = 0; b < n; b++) *correct += t->host_pred[b] == t->stage_y[b];
    return 0;
}

/* A barrier just before the all-reduce splits the exchange's time into waiting for the slowest
 * rank (skew: a busy core, an uneven slice) and the all-reduce proper (the link); inside one
 * figure they cannot be told apart. */
static void wait_for_ranks(cnb_trainer *t, cnb_run_result *r) {
    double arrived = cnb_now();
    cnb_dist_barrier(t->s.dist);
    r->wait_seconds += cnb_now() - arrived;
}

/* The gradients summed on the device by the backend's communicator: each rank's weighted by
 * its share. Synchronized on both sides so the time is the all-reduce's own. A rank with no
 * images contributes zeros (its gradient buffer holds the last step's, or nothing yet). */
static int device_allreduce(cnb_trainer *t, cnb_run_result *r, int n_local, float weight,
                            double *seconds, char *err, size_t err_len) {
    size_t np = t->m->n_params;
    if (n_local == 0) {
        memset(t->host_grads, 0, np * sizeof(float));
        KCHECK(t, t->api->upload(t->ctx, t->grads, t->host_grads, np * sizeof(float)),
               "upload (zero gradients)");
    }
    KCHECK(t, t->api->synchronize(t->ctx), "synchronize (before the all-reduce)");
    wait_for_ranks(t, r);
    double start = cnb_now();
    KCHECK(t, t->api->allreduce_sum(t->ctx, t->grads, np, weight), "allreduce_sum (gradients)");
    KCHECK(t, t->api->synchronize(t->ctx), "synchronize (after the all-reduce)");
    *seconds = cnb_now() - start;
    return 0;
}

/* The data-parallel exchange between backward and update. softmax-CE's backward divides by the
 * LOCAL batch n_local, so each rank weights its gradient by n_local / n before the sum: the sum
 * is then the gradient of the mean over the global batch n, also when n does not divide evenly
 * or the last batch is short. The batch's loss and correct count are summed with it, and so is
 * the stop flag, so every rank stops at the same step. */
static int exchange_gradients(cnb_trainer *t, cnb_run_result *r, int n_local, int n, float *loss,
                              long *correct, char *err, size_t err_len) {
    cnb_dist *d = t->s.dist;
    size_t np = t->m->n_params;
    double start = cnb_now(), allreduce = 0.0;
    float weight = (float)((double)n_local / n);
    if (t->s.device_allreduce) {
        if (device_allreduce(t, r, n_local, weight, &allreduce, err, err_len) != 0) return -1;
    } else if (n_local > 0) {
        KCHECK(t, t->api->download(t->ctx, t->host_grads, t->grads, np * sizeof(float)),
               "download (gradients)");
        for (size_t i = 0; i < np; i++) t->host_grads[i] *= weight;
    } else {
        memset(t->host_grads, 0, np * sizeof(float));
    }
    if (!t->s.device_allreduce) {
        wait_for_ranks(t, r);
        if (cnb_dist_sum_floats(d, t->host_grads, np, &allreduce, err, err_len) != 0) return -1;
        KCHECK(t, t->api->upload(t->ctx, t->grads, t->host_grads, np * sizeof(float)),
               "upload (gradients)");
    }
    double sums[3] = {(double)*loss * n_local, (double)*correct, stop_requested ? 1.0 : 0.0};
    if (cnb_dist_sum_doubles(d, sums, 3, err, err_len) != 0) return -1;
    *loss = (float)(sums[0] / n);
    *correct = (long)sums[1];
    t->dist_stop = sums[2] > 0;
    r->allreduce_seconds += allreduce;
    r->exchange_seconds += cnb_now() - start;
    return 0;
}

/* One training step of global batch [first, first + n) of this epoch's order: alone, the whole
 * step is queued, then the next batch's upload, and only then does the harness wait for this
 * step's loss (a device never idles while the host gathers); under mpirun, this rank's slice and
 * the gradient exchange. 0, or -1 with *failed_step the 0-based step whose work failed. */
static int run_step(cnb_trainer *t, cnb_run_result *r, long s, int first, int n, long *uploaded,
                    long steps_per_epoch, int batch, float *loss, long *step_correct,
                    long *failed_step, char *err, size_t err_len) {
    const cnb_dataset *d = t->train;
    *step_correct = 0;
    *failed_step = s;
    if (t->s.dist) {
        int lo, n_local;
        cnb_dist_slice(t->s.dist, n, &lo, &n_local);
        if (local_step(t, t->order + first + lo, n_local, loss, step_correct, err, err_len) ||
            exchange_gradients(t, r, n_local, n, loss, step_correct, err, err_len) ||
            optimizer_step(t, err, err_len) || queue_param_sums(t, err, err_len) ||
            download_param_sums(t, err, err_len))
            return -1;
        r->local_images += n_local;
        return 0;
    }
    if ((*uploaded != s &&
         upload_batch(t, t->train_x, d->labels, t->order + first, 0, n, err, err_len)) ||
        forward(t, n, 1, err, err_len) || queue_loss(t, n, err, err_len))
        return -1;
    KCHECK(t, t->api->softmax_ce_backward(t->ctx, n, t->m->classes, t->dbuf[0], t->probs, t->y),
           "softmax_ce_backward");
    if (backward(t, n, err, err_len) || optimizer_step(t, err, err_len) ||
        queue_param_sums(t, err, err_len))
        return -1;
    *uploaded = upload_next(t, s + 1, steps_per_epoch, batch, err, err_len);
    if (*uploaded == -2) {
        *failed_step = s + 1; /* it was that step's batch */
        return -1;
    }
    if (read_loss(t, n, loss, err, err_len) != 0) return -1;
    /* stage_y may hold the next batch's labels already */
    for (int b = 0; b < n; b++) *step_correct += t->host_pred[b] == d->labels[t->order[first + b]];
    return 0;
}

/* After a step's update: its loss and time recorded, divergence caught from the loss and from
 * the parameters, the periodic checkpoint. 0, or -1 with r's status and message set. */
static int after_step(cnb_trainer *t, cnb_run_result *r, int e, long s, float loss, int n,
                      double seconds, char *err, size_t err_len) {
    if (record_step_loss(r, loss, seconds, n) != 0) {
        r->status = CNB_RUN_BACKEND_ERROR;
        snprintf(r->message, sizeof r->message, "out of host memory for the loss log");
        return -1;
    }
    if (!isfinite(loss)) {
        r->status = CNB_RUN_DIVERGED;
        snprintf(r->message, sizeof r->message,
                 "training diverged: loss became %s at epoch %d step %ld (step %ld overall); "
                 "try a smaller --lr",
                 isnan(loss) ? "NaN" : "infinite", e, s + 1, t->global_step + 1);
        return -1;
    }
    char bad[256];
    int pd = params_diverged(t, (const float *)t->host_results + 1, bad, sizeof bad, err, err_len);
    if (pd > 0) {
        r->status = CNB_RUN_DIVERGED;
        snprintf(r->message, sizeof r->message,
                 "training diverged: %s after the optimizer step of epoch %d step %ld (step %ld "
                 "overall; the loss was still %g)",
                 bad, e, s + 1, t->global_step + 1, (double)loss);
        return -1;
    }
    if (pd < 0) {
        r->status = CNB_RUN_BACKEND_ERROR;
        snprintf(r->message, sizeof r->message, "epoch %d step %ld (step %ld overall): %s", e,
                 s + 1, t->global_step + 1, err);
        return -1;
    }
    t->global_step++;
    t->pos_step = s + 1;
    /* Only one rank writes; all of them stop together when that failed. */
    if (t->s.checkpoint_every > 0 && t->s.checkpoint &&
        t->global_step % t->s.checkpoint_every == 0 &&
        cnb_dist_any(t->s.dist, t->s.checkpoint(t->s.checkpoint_user, t, err, err_len))) {
        if (!err[0]) snprintf(err, err_len, "it failed on another rank");
        r->status = CNB_RUN_CHECKPOINT_ERROR;
        snprintf(r->message, sizeof r->message,
                 "checkpoint after epoch %d step %ld (step %ld overall) failed: %s", e, s + 1,
                 t->global_step, err);
        return -1;
    }
    return 0;
}

/* The training steps of epoch e into em; 0, or -1 when the run stops (r says why). */
static int train_epoch(cnb_trainer *t, cnb_run_result *r, cnb_epoch_metrics *em, int e,
                       long first_step, long steps_per_epoch, int batch, long *correct) {
    char err[CNB_ERR_LEN] = "";
    const cnb_dataset *d = t->train;
    double loss_sum = 0.0, progress_at = 0.0, start = cnb_now();
    long uploaded = -1; /* the step whose batch is already on the device */
    for (long s = first_step; s < steps_per_epoch; s++) {
        t->pos_step = s;
        if (t->s.max_steps && t->global_step >= t->s.max_steps) break;
        if (t->s.dist ? t->dist_stop : stop_requested) {
            r->status = CNB_RUN_INTERRUPTED;
            snprintf(r->message, sizeof r->message, "interrupted by signal %d at epoch %d step %ld",
                     (int)stop_requested, e, s + 1);
            return -1;
        }
        int first = (int)(s * batch), n = d->count - first < batch ? d->count - first : batch;
        float loss = 0.0f;
        long step_correct, failed_step;
        double step_start = cnb_now();
        if (run_step(t, r, s, first, n, &uploaded, steps_per_epoch, batch, &loss, &step_correct,
                     &failed_step, err, sizeof err) != 0) {
            r->status = CNB_RUN_BACKEND_ERROR;
            snprintf(r->message, sizeof r->message, "epoch %d step %ld (step %ld overall): %s", e,
                     failed_step + 1, t->global_step + 1 + (failed_step - s), err);
            return -1;
        }
        if (after_step(t, r, e, s, loss, n, cnb_now() - step_start, err, sizeof err) != 0)
            return -1;
        loss_sum += (double)loss * n;
        em->train_images += n;
        em->steps++;
        *correct += step_correct;
        em->train_loss = loss_sum; /* the sum for now: the mean when the epoch ends */
        double now = cnb_now();
        if (t->s.progress && now - progress_at > 0.25) {
            progress_line(t, e, s + 1, steps_per_epoch, loss_sum / em->train_images,
                          em->train_images / (now - start));
            progress_at = now;
        }
    }
    return 0;
}

/* The end of epoch e: its means, the evaluation (not of a diverged model: its outputs are NaN;
 * an interrupted or finished epoch is, so the results say how far training got), the log line.
 * 0, or -1 when the evaluation failed. */
static int finish_epoch(cnb_trainer *t, cnb_run_result *r, cnb_epoch_metrics *em, int e,
                        long correct) {
    char err[CNB_ERR_LEN] = "";
    int rc = 0;
    if (em->steps > 0) {
        em->train_loss /= em->train_images;
        em->train_accuracy = (double)correct / em->train_images;
        em->train_images_per_s = em->train_images / em->train_seconds;
    }
    if ((r->status == CNB_RUN_OK || r->status == CNB_RUN_INTERRUPTED) &&
        (em->steps > 0 || r->status == CNB_RUN_OK)) {
        if (evaluate(t, r, &em->test_loss, &em->test_accuracy, &em->eval_seconds, err,
                     sizeof err) != 0) {
            r->status = CNB_RUN_BACKEND_ERROR;
            snprintf(r->message, sizeof r->message, "evaluation after epoch %d: %s", e, err);
            rc = -1;
        } else {
            em->infer_images_per_s = t->test->count / em->eval_seconds;
            r->final_test_loss = em->test_loss;
            r->final_test_accuracy = em->test_accuracy;
        }
    }
    if (em->steps > 0) {
        r->epochs_done++;
        if (t->s.log && em->eval_seconds > 0)
            fprintf(t->s.log,
                    "epoch %2d  train loss %.4f  acc %6.2f%%  |  test loss %.4f  acc %6.2f%%"
                    "  |  %7.0f train img/s  %7.0f infer img/s  (%.1f s)\n",
                    e, em->train_loss, 100 * em->train_accuracy, em->test_loss,
                    100 * em->test_accuracy, em->train_images_per_s, em->infer_images_per_s,
                    em->train_seconds + em->eval_seconds);
        else if (t->s.log)
            fprintf(t->s.log, "epoch %2d  stopped after %ld steps, not evaluated: %s\n", e,
                    em->steps, r->message);
    }
    return rc;
}

int cnb_trainer_run(cnb_trainer *t, cnb_run_result *r) {
    const cnb_dataset *d = t->train;
    double run_start = cnb_now();
    int batch = t->s.batch < d->count ? t->s.batch : d->count;
    long steps_per_epoch = (d->count + batch - 1) / batch;
    int rc = 0;
    r->classes = t->m->classes;
    r->status = CNB_RUN_OK;
    stop_requested = 0;
    t->dist_stop = 0;
    for (int e = t->pos_epoch; e <= t->s.epochs && rc == 0; e++) {
        cnb_epoch_metrics *em = &r->epoch[r->epochs_done];
        memset(em, 0, sizeof *em);
        em->epoch = e;
        /* A resumed run has already rebuilt this epoch's permutation (cnb_trainer_set_state). */
        if (t->shuffled_epoch != e) cnb_shuffle(&t->rng, t->order, d->count);
        t->shuffled_epoch = e;
        long first_step = e == t->pos_epoch ? t->pos_step : 0, correct = 0;
        t->pos_epoch = e;
        double start = cnb_now();
        rc = train_epoch(t, r, em, e, first_step, steps_per_epoch, batch, &correct);
        em->train_seconds = cnb_now() - start;
        r->train_seconds += em->train_seconds;
        if (t->s.progress) fprintf(stderr, "\r\033[K");
        if (em->steps == 0 && rc == 0) break; /* max_steps reached at an epoch boundary */
        if (finish_epoch(t, r, em, e, correct) != 0) rc = -1;
        if (t->pos_step >= steps_per_epoch) {
            t->pos_epoch = e + 1;
            t->pos_step = 0;
        }
        if (t->s.max_steps && t->global_step >= t->s.max_steps) break;
    }
    r->wall_seconds = cnb_now() - run_start;
    return rc;
}

int cnb_trainer_get_params(cnb_trainer *t, float *host, char *err, size_t err_len) {
    KCHECK(t, t->api->download(t->ctx, host, t->params, t->m->n_params * sizeof(float)),
           "download (parameters)");
    return 0;
}

void cnb_run_result_free(cnb_run_result *r) {
    free(r->step_losses);
    free(r->step_images_per_s);
    free(r->eval_images_per_s);
    r->step_losses = NULL;
    r->step_images_per_s = r->eval_images_per_s = NULL;
    r->step_losses_cap = r->step_ips_cap = r->eval_log_cap = 0;
}

void cnb_trainer_get_state(const cnb_trainer *t, cnb_train_state *st) {
    int batch = t->s.batch < t->train->count ? t->s.batch : t->train->count;
    long steps_per_epoch = (t->train->count + batch - 1) / batch;
    memset(st, 0, sizeof *st);
    st->global_step = t->global_step;
    st->epoch = t->pos_epoch;
    st->step_in_epoch = t->pos_step;
    if (st->step_in_epoch >= steps_per_epoch) { /* a finished epoch: the next one's start */
        st->epoch++;
        st->step_in_epoch = 0;
    }
    st->adam_step = t->adam_step;
    st->shuffle_state = t->shuffle_start.state;
    st->shuffle_inc = t->shuffle_start.inc;
    st->train_count = t->train->count;
    st->batch = batch;
}

int cnb_trainer_set_state(cnb_trainer *t, const cnb_train_state *st, char *err, size_t err_len) {
    int batch = t->s.batch < t->train->count ? t->s.batch : t->train->count;
    long steps_per_epoch = (t->train->count + batch - 1) / batch;
    if (st->train_count != t->train->count)
        return cnb_errf(err, err_len,
                        "the checkpoint was taken on %d training images but this run has %d "
                        "(use the same --train-limit and data set to resume)",
                        st->train_count, t->train->count);
    if (st->batch != batch)
        return cnb_errf(err, err_len,
                        "the checkpoint was taken with batch %d but this run uses batch %d",
                        st->batch, batch);
    if (st->epoch < 1 || st->epoch > CNB_MAX_EPOCHS + 1 || st->step_in_epoch < 0 ||
        st->step_in_epoch >= steps_per_epoch || st->global_step < 0 || st->adam_step < 0 ||
        st->adam_step > st->global_step || (st->shuffle_inc & 1u) == 0)
        return cnb_errf(err, err_len,
                        "inconsistent position (epoch %d, step %ld of %ld, %ld steps done, "
                        "adam step %ld)",
                        st->epoch, st->step_in_epoch, steps_per_epoch, st->global_step,
                        st->adam_step);
    if ((long)(st->epoch - 1) * steps_per_epoch + st->step_in_epoch != st->global_step)
        return cnb_errf(err, err_len,
                        "position (epoch %d, step %ld) does not match %ld steps done at %ld "
                        "steps per epoch",
                        st->epoch, st->step_in_epoch, st->global_step, steps_per_epoch);
    t->shuffle_start.state = st->shuffle_state;
    t->shuffle_start.inc = st->shuffle_inc;
    t->rng = t->shuffle_start;
    for (int i = 0; i < t->train->count; i++) t->order[i] = i;
    /* Epochs 1..epoch each shuffled the previous permutation in place: replay them. */
    for (int e = 1; e <= st->epoch && e <= t->s.epochs; e++) cnb_shuffle(&t->rng, t->order, t->train->count);
    t->shuffled_epoch = st->epoch <= t->s.epochs ? st->epoch : 0;
    t->global_step = st->global_step;
    t->pos_epoch = st->epoch;
    t->pos_step = st->step_in_epoch;
    t->adam_step = st->adam_step;
    return 0;
}

int cnb_trainer_get_tensors(cnb_trainer *t, float *params, float *opt_m, float *opt_v, char *err,
                            size_t err_len) {
    size_t bytes = t->m->n_params * sizeof(float);
    if (params) KCHECK(t, t->api->download(t->ctx, params, t->params, bytes), "download (parameters)");
    if (opt_m) KCHECK(t, t->api->download(t->ctx, opt_m, t->opt_m, bytes), "download (optimizer state)");
    if (opt_v) KCHECK(t, t->api->download(t->ctx, opt_v, t->opt_v, bytes), "download (optimizer state)");
    return 0;
}

int cnb_trainer_set_tensors(cnb_trainer *t, const float *params, const float *opt_m,
                            const float *opt_v, char *err, size_t err_len) {
    size_t np = t->m->n_params, bytes = np * sizeof(float);
    float *zeros = NULL;
    if (!opt_m || !opt_v) {
        zeros = calloc(np ? np : 1, sizeof(float));
        if (!zeros) return cnb_errf(err, err_len, "out of host memory");
    }
    cnb_status st = t->api->upload(t->ctx, t->params, params, bytes);
    if (st == CNB_OK) st = t->api->upload(t->ctx, t->opt_m, opt_m ? opt_m : zeros, bytes);
    if (st == CNB_OK) st = t->api->upload(t->ctx, t->opt_v, opt_v ? opt_v : zeros, bytes);
    free(zeros);
    if (st != CNB_OK)
        return cnb_errf(err, err_len, "%s: upload (parameters) failed (%s): %s", t->api->name,
                        cnb_status_str(st), t->api->last_error(t->ctx));
    return 0;
}

int cnb_trainer_test_logits(cnb_trainer *t, int first, int n, float *logits, float *inputs,
                            char *err, size_t err_len) {
    int eb = t->s.eval_batch < t->max_batch ? t->s.eval_batch : t->max_batch;
    if (first < 0 || n < 0 || first > t->test->count - n)
        return cnb_errf(err, err_len, "test images [%d, %d) are outside the %d test images", first,
                        first + n, t->test->count);
    int classes = t->m->classes;
    for (int done = 0; done < n; done += eb) {
        int k = n - done < eb ? n - done : eb;
        if (upload_batch(t, t->test_x, t->test->labels, NULL, first + done, k, err, err_len) != 0 ||
            forward(t, k, 0, err, err_len) != 0)
            return -1;
        KCHECK(t, t->api->download(t->ctx, logits + (size_t)done * classes,
                                   t->act[t->m->n_layers - 1],
                                   (size_t)k * classes * sizeof(float)),
               "download (logits)");
        if (inputs)
            memcpy(inputs + (size_t)done * t->in_size, t->stage_x,
                   (size_t)k * t->in_size * sizeof(float));
    }
    return 0;
}

void cnb_trainer_set_adam_step(cnb_trainer *t, long step) { t->adam_step = step; }
