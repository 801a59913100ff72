/* train.c — the training loop. The harness owns the model, the data, the random numbers and the
 * loop; the backend owns only kernels and device memory. Every device buffer is allocated once
 * in cnb_trainer_create (page faults are expensive here, DESIGN.md §5), so a step allocates
 * nothing. Layers are driven forward / backward with ping-pong gradient buffers. */
#define _POSIX_C_SOURCE 200809L
#include "train.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

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
    int32_t *stage_y, *host_pred;
    size_t in_size;         /* c*h*w of one input */
    /* device */
    float *params, *grads, *opt_m, *opt_v;
    float *x;               /* input batch (max_batch, in_size) */
    int32_t *y, *pred;      /* labels and predictions (max_batch) */
    float *probs, *loss;
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
    /* Fusion (the backend's optional fused slots, unless --no-fusion): per layer, 0 = not tried
     * yet, 1 = the last call fused, -1 = the backend said unsupported, separate calls from now
     * on. fuse_fwd is indexed by the convolution, fuse_bwd by the pooling layer. */
    int fusion;
    signed char fuse_fwd[CNB_MAX_LAYERS], fuse_bwd[CNB_MAX_LAYERS];
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

static int activation_of(cnb_layer_type t) {
    switch (t) {
    case CNB_LAYER_RELU: return CNB_ACT_RELU;
    case CNB_LAYER_TANH: return CNB_ACT_TANH;
    case CNB_LAYER_SIGMOID: return CNB_ACT_SIGMOID;
    case CNB_LAYER_PRELU: return CNB_ACT_PRELU;
    default: return -1;
    }
}

static const float *layer_input(const cnb_trainer *t, int i) {
    return i == 0 ? t->x : t->act[i - 1];
}

static void trainer_free_device(cnb_trainer *t) {
    void *bufs[] = {t->params, t->grads, t->opt_m, t->opt_v, t->x, t->y, t->pred,
                    t->probs, t->loss, t->dbuf[0], t->dbuf[1]};
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
    free(t->host_pred);
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

int cnb_trainer_create(const cnb_backend *api, cnb_context *ctx, const cnb_model *m,
                       const cnb_dataset *train, const cnb_dataset *test,
                       const cnb_run_settings *s, cnb_trainer **out, char *err, size_t err_len) {
    *out = NULL;
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
    size_t mb = (size_t)t->max_batch;

    t->train_x = normalized_copy(train, m);
    t->test_x = normalized_copy(test, m);
    t->order = malloc((size_t)train->count * sizeof(int32_t));
    t->stage_x = cnb_aligned_alloc(mb * t->in_size * sizeof(float));
    t->stage_y = malloc(mb * sizeof(int32_t));
    t->host_pred = malloc(mb * sizeof(int32_t));
    if (!t->train_x || !t->test_x || !t->order || !t->stage_x || !t->stage_y || !t->host_pred) {
        cnb_trainer_destroy(t);
        return cnb_errf(err, err_len, "out of host memory for the data sets");
    }
    for (int i = 0; i < train->count; i++) t->order[i] = i;

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
             dev_alloc(t, (void **)&t->pred, mb, sizeof(int32_t), "alloc predictions", err,
                       err_len) ||
             dev_alloc(t, (void **)&t->probs, mb * (size_t)m->classes, sizeof(float),
                       "alloc probabilities", err, err_len) ||
             dev_alloc(t, (void **)&t->loss, 1, sizeof(float), "alloc loss", err, err_len);
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
    if (ok != 0) {
        cnb_trainer_destroy(t);
        return -1;
    }

    t->fusion = !s->no_fusion && cnb_backend_has_fusion(api);
    /* Same seed → same initial bits on every backend; the generator then drives shuffling. */
    cnb_rng_seed(&t->rng, s->seed);
    float *host = calloc(np ? np : 1, sizeof(float));
    if (!host) {
        cnb_trainer_destroy(t);
        return cnb_errf(err, err_len, "out of host memory");
    }
    cnb_init_params(m, &t->rng, host);
    t->shuffle_start = t->rng;
    t->pos_epoch = 1;
    cnb_status st = api->upload(ctx, t->params, host, np * sizeof(float));
    memset(host, 0, np * sizeof(float));
    if (st == CNB_OK) st = api->upload(ctx, t->opt_m, host, np * sizeof(float));
    if (st == CNB_OK) st = api->upload(ctx, t->opt_v, host, np * sizeof(float));
    free(host);
    if (st != CNB_OK) {
        cnb_errf(err, err_len, "%s: upload of the initial parameters failed: %s", api->name,
                 api->last_error(ctx));
        cnb_trainer_destroy(t);
        return -1;
    }
    *out = t;
    return 0;
}

/* The activation a fused slot can take for layer j (CNB_ACT_RELU, TANH or SIGMOID), or -1 when
 * fusion is off or layer j is not such an activation. */
static int fusable_activation(const cnb_trainer *t, int j) {
    if (!t->fusion || j < 0 || j >= t->m->n_layers) return -1;
    cnb_layer_type ty = t->m->layers[j].type;
    return ty == CNB_LAYER_RELU || ty == CNB_LAYER_TANH || ty == CNB_LAYER_SIGMOID
               ? activation_of(ty) : -1;
}

/* Convolution i and the activation after it as one call, written into the activation's output
 * (the convolution's own output is then not computed). 1: fused; 0: run the separate calls;
 * -1: error. */
static int conv_act_forward_fused(cnb_trainer *t, int i, const cnb_conv_desc *d, const float *in,
                                  const float *w, const float *b, char *err, size_t err_len) {
    int act = fusable_activation(t, i + 1);
    if (act < 0 || t->fuse_fwd[i] < 0) return 0;
    cnb_status st = t->api->conv_bias_act_forward(t->ctx, d, act, t->act[i + 1], in, w, b);
    if (st == CNB_ERR_UNSUPPORTED) {
        t->fuse_fwd[i] = -1;
        return 0;
    }
    KCHECK(t, st, "conv_bias_act_forward");
    t->fuse_fwd[i] = 1;
    return 1;
}

/* Pooling i's backward with the activation i-1 before it folded in: dx is the gradient of the
 * activation's input. 1: fused; 0: run the separate calls; -1: error. */
static int pool_act_backward_fused(cnb_trainer *t, int i, const cnb_pool_desc *d, float *dx,
                                   const float *dy, char *err, size_t err_len) {
    int act = fusable_activation(t, i - 1);
    if (act < 0 || i < 2 || t->fuse_bwd[i] < 0) return 0;
    cnb_status st = t->api->pool_act_backward(t->ctx, d, act, dx, dy, t->act[i - 1], t->act[i],
                                              t->pool_ws[i]);
    if (st == CNB_ERR_UNSUPPORTED) {
        t->fuse_bwd[i] = -1;
        return 0;
    }
    KCHECK(t, st, "pool_act_backward");
    t->fuse_bwd[i] = 1;
    return 1;
}

/* Forward pass for n images already in t->x; logits end up in the last layer's output. */
static int forward(cnb_trainer *t, int n, char *err, size_t err_len) {
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
            int fused = conv_act_forward_fused(t, i, &d, in, w, b, err, err_len);
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
            KCHECK(t, t->api->activation_forward(t->ctx, activation_of(l->type),
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
        if (i > 0 && t->fuse_fwd[i - 1] == 1 && activation_of(l->type) >= 0) in = out;
        const float *dy = t->dbuf[cur];
        float *dx = i > 0 ? t->dbuf[1 - cur] : NULL; /* no gradient for the input images */
        const float *w = t->params + l->param_offset;
        float *dw = t->grads + l->param_offset;
        switch (l->type) {
        case CNB_LAYER_CONV: {
            cnb_conv_desc d;
            conv_desc(l, n, &d);
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
            int fused = pool_act_backward_fused(t, i, &d, dx, dy, err, err_len);
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
                          t->ctx, activation_of(l->type), (size_t)n * layer_out_size(l),
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

/* Loss (mean over n) and correct predictions of the batch in t->x, after a forward pass. */
static int loss_and_predictions(cnb_trainer *t, int n, float *loss, char *err, size_t err_len) {
    const float *logits = t->act[t->m->n_layers - 1];
    KCHECK(t, t->api->softmax_ce_forward(t->ctx, n, t->m->classes, t->probs, t->loss, t->pred,
                                         logits, t->y),
           "softmax_ce_forward");
    KCHECK(t, t->api->download(t->ctx, loss, t->loss, sizeof(float)), "download (loss)");
    KCHECK(t, t->api->download(t->ctx, t->host_pred, t->pred, (size_t)n * sizeof(int32_t)),
           "download (predictions)");
    return 0;
}

static int evaluate(cnb_trainer *t, cnb_run_result *r, double *loss_out, double *acc_out,
                    double *seconds, char *err, size_t err_len) {
    const cnb_dataset *d = t->test;
    int eb = t->s.eval_batch < t->max_batch ? t->s.eval_batch : t->max_batch;
    double loss_sum = 0.0;
    long correct = 0;
    memset(r->confusion, 0, sizeof r->confusion);
    double start = cnb_now();
    for (int first = 0; first < d->count; first += eb) {
        int n = d->count - first < eb ? d->count - first : eb;
        float loss;
        if (upload_batch(t, t->test_x, d->labels, NULL, first, n, err, err_len) != 0 ||
            forward(t, n, err, err_len) != 0 ||
            loss_and_predictions(t, n, &loss, err, err_len) != 0)
            return -1;
        loss_sum += (double)loss * n;
        for (int b = 0; b < n; b++) {
            int truth = d->labels[first + b], p = t->host_pred[b];
            correct += truth == p;
            if (p >= 0 && p < t->m->classes) r->confusion[truth][p]++;
        }
    }
    *seconds = cnb_now() - start;
    *loss_out = loss_sum / d->count;
    *acc_out = (double)correct / d->count;
    r->have_confusion = 1;
    return 0;
}

static int record_step_loss(cnb_run_result *r, float loss) {
    if (r->total_steps >= r->step_losses_cap) {
        long cap = r->step_losses_cap ? 2 * r->step_losses_cap : 4096;
        float *p = realloc(r->step_losses, (size_t)cap * sizeof(float));
        if (!p) return -1;
        r->step_losses = p;
        r->step_losses_cap = cap;
    }
    r->step_losses[r->total_steps++] = loss;
    return 0;
}

static void progress_line(const cnb_trainer *t, int epoch, long step, long steps, double loss,
                          double ips) {
    fprintf(stderr, "\r\033[Kepoch %d/%d  step %ld/%ld  loss %.4f  %.0f img/s", epoch,
            t->s.epochs, step, steps, loss, ips);
}

int cnb_trainer_run(cnb_trainer *t, cnb_run_result *r) {
    char err[CNB_ERR_LEN] = "";
    const size_t err_len = sizeof err;
    const cnb_dataset *d = t->train;
    const cnb_model *m = t->m;
    double run_start = cnb_now();
    int batch = t->s.batch < d->count ? t->s.batch : d->count;
    long steps_per_epoch = (d->count + batch - 1) / batch;
    int rc = 0;
    r->classes = m->classes;
    r->status = CNB_RUN_OK;
    stop_requested = 0;

    for (int e = t->pos_epoch; e <= t->s.epochs && rc == 0; e++) {
        cnb_epoch_metrics *em = &r->epoch[r->epochs_done];
        memset(em, 0, sizeof *em);
        em->epoch = e;
        /* A resumed run has already rebuilt this epoch's permutation (cnb_trainer_set_state). */
        if (t->shuffled_epoch != e) cnb_shuffle(&t->rng, t->order, d->count);
        t->shuffled_epoch = e;
        long first_step = e == t->pos_epoch ? t->pos_step : 0;
        t->pos_epoch = e;
        double loss_sum = 0.0, progress_at = 0.0;
        long correct = 0;
        double start = cnb_now();
        for (long s = first_step; s < steps_per_epoch; s++) {
            t->pos_step = s;
            if (t->s.max_steps && t->global_step >= t->s.max_steps) break;
            if (stop_requested) {
                r->status = CNB_RUN_INTERRUPTED;
                snprintf(r->message, sizeof r->message,
                         "interrupted by signal %d at epoch %d step %ld", (int)stop_requested, e,
                         s + 1);
                rc = -1;
                break;
            }
            int first = (int)(s * batch), n = d->count - first < batch ? d->count - first : batch;
            float loss;
            if (upload_batch(t, t->train_x, d->labels, t->order + first, 0, n, err, err_len) ||
                forward(t, n, err, err_len) || loss_and_predictions(t, n, &loss, err, err_len) ||
                t->api->softmax_ce_backward(t->ctx, n, m->classes, t->dbuf[0], t->probs, t->y) !=
                    CNB_OK ||
                backward(t, n, err, err_len) || optimizer_step(t, err, err_len)) {
                if (!err[0])
                    snprintf(err, err_len, "%s: softmax_ce_backward failed: %s", t->api->name,
                             t->api->last_error(t->ctx));
                r->status = CNB_RUN_BACKEND_ERROR;
                snprintf(r->message, sizeof r->message, "epoch %d step %ld (step %ld overall): %s",
                         e, s + 1, t->global_step + 1, err);
                rc = -1;
                break;
            }
            if (record_step_loss(r, loss) != 0) {
                r->status = CNB_RUN_BACKEND_ERROR;
                snprintf(r->message, sizeof r->message, "out of host memory for the loss log");
                rc = -1;
                break;
            }
            if (!isfinite(loss)) {
                r->status = CNB_RUN_DIVERGED;
                snprintf(r->message, sizeof r->message,
                         "training diverged: loss became %s at epoch %d step %ld (step %ld "
                         "overall); try a smaller --lr",
                         isnan(loss) ? "NaN" : "infinite", e, s + 1, t->global_step + 1);
                rc = -1;
                break;
            }
            t->global_step++;
            t->pos_step = s + 1;
            if (t->s.checkpoint_every > 0 && t->s.checkpoint &&
                t->global_step % t->s.checkpoint_every == 0 &&
                t->s.checkpoint(t->s.checkpoint_user, t, err, err_len) != 0) {
                r->status = CNB_RUN_CHECKPOINT_ERROR;
                snprintf(r->message, sizeof r->message,
                         "checkpoint after epoch %d step %ld (step %ld overall) failed: %s", e,
                         s + 1, t->global_step, err);
                rc = -1;
                break;
            }
            loss_sum += (double)loss * n;
            em->train_images += n;
            em->steps++;
            for (int b = 0; b < n; b++) correct += t->host_pred[b] == t->stage_y[b];
            double now = cnb_now();
            if (t->s.progress && now - progress_at > 0.25) {
                progress_line(t, e, s + 1, steps_per_epoch, loss_sum / em->train_images,
                              em->train_images / (now - start));
                progress_at = now;
            }
        }
        em->train_seconds = cnb_now() - start;
        if (t->s.progress) fprintf(stderr, "\r\033[K");
        if (em->steps == 0 && rc == 0) break; /* max_steps reached at an epoch boundary */
        if (em->steps > 0) {
            em->train_loss = loss_sum / em->train_images;
            em->train_accuracy = (double)correct / em->train_images;
            em->train_images_per_s = em->train_images / em->train_seconds;
        }
        /* A diverged model is not evaluated (its outputs are NaN); an interrupted or finished
         * epoch is, so the results say how far training got. */
        if (r->status == CNB_RUN_OK || r->status == CNB_RUN_INTERRUPTED) {
            if (em->steps > 0 || r->status == CNB_RUN_OK) {
                if (evaluate(t, r, &em->test_loss, &em->test_accuracy, &em->eval_seconds, err,
                             err_len) != 0) {
                    r->status = CNB_RUN_BACKEND_ERROR;
                    snprintf(r->message, sizeof r->message, "evaluation after epoch %d: %s", e,
                             err);
                    rc = -1;
                } else {
                    em->infer_images_per_s = t->test->count / em->eval_seconds;
                    r->final_test_loss = em->test_loss;
                    r->final_test_accuracy = em->test_accuracy;
                }
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
    r->step_losses = NULL;
    r->step_losses_cap = 0;
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
            forward(t, k, err, err_len) != 0)
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
