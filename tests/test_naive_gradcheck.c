/* test_naive_gradcheck.c — every backward kernel of the naive backend checked by finite
 * differences in float64 (DESIGN.md §4).
 *
 * Method: for a fixed random G, the scalar L = sum(forward(inputs) * G). The backend's backward
 * with dy = G must give dL/d(input). The test carries its own float64 forward, written
 * independently (gather loops, no shared code with the backend), and differentiates L
 * numerically with central differences in double. The backend's forward is also checked against
 * that float64 forward, so the function being differentiated is the backend's function.
 *
 * Tolerances. The backend sums in double and rounds once to float32, so each value is within
 * 2^-24 (6e-8) relative of the exact gradient (tanh/sigmoid/softmax use a float32 y or probs:
 * up to ~3 roundings, ~2e-7). The numerical gradient is far better: L is linear (conv, avg pool,
 * bias) or piecewise linear around the point (max pool with distinct values, ReLU/PReLU away
 * from 0), so central differences are exact up to double rounding (~1e-16 * |L| / eps ~ 1e-12);
 * for the smooth ones (tanh, sigmoid, softmax-CE) the truncation error eps^2/6 * f''' is ~1e-11
 * at eps = 1e-5. Comparing then costs one more float rounding. A relative L2 error of 1e-6 is
 * thus ~5x above the worst honest error and ~1e5x below any indexing or formula mistake (which
 * moves whole values by O(1)). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define GRAD_TOL 1e-6
#define FORWARD_TOL 1e-6
#define EPS_LINEAR 1e-3 /* L linear in the input: any step is exact */
#define EPS_KINKED 1e-4 /* piecewise linear: stay inside one piece (kinks are >= 4e-3 away) */
#define EPS_SMOOTH 1e-5 /* smooth: balance truncation (eps^2) against rounding (1/eps) */

/* ---- small helpers ---- */

static double *to_double(const float *f, size_t n) {
    double *d = malloc((n ? n : 1) * sizeof(double));
    cr_assert_not_null(d);
    for (size_t i = 0; i < n; i++) d[i] = f[i];
    return d;
}

static float *to_float(const double *d, size_t n) {
    float *f = malloc((n ? n : 1) * sizeof(float));
    cr_assert_not_null(f);
    for (size_t i = 0; i < n; i++) f[i] = (float)d[i];
    return f;
}

static double dot_g(const double *y, const float *g, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += y[i] * g[i];
    return s;
}

/* The loss of a problem as a function of whatever arrays the problem points to. */
typedef double (*loss_fn)(const void *problem);

/* grad[i] = (L(v + eps e_i) - L(v - eps e_i)) / (2 eps), for the array v the problem reads. */
static void numeric_grad(double *grad, double *v, size_t count, double eps, loss_fn loss,
                         const void *problem) {
    for (size_t i = 0; i < count; i++) {
        double saved = v[i];
        v[i] = saved + eps;
        double up = loss(problem);
        v[i] = saved - eps;
        double down = loss(problem);
        v[i] = saved;
        grad[i] = (up - down) / (2.0 * eps);
    }
}

/* Compare a backend gradient (float) with a numerical one (double). */
static void expect_grad(const char *what, const float *got, const double *numeric, size_t n) {
    float *ref = to_float(numeric, n);
    tu_expect_close(what, got, ref, n, GRAD_TOL);
    free(ref);
}

static void expect_forward(const char *what, const float *got, const double *ref64, size_t n) {
    float *ref = to_float(ref64, n);
    tu_expect_close(what, got, ref, n, FORWARD_TOL);
    free(ref);
}

/* A one-input layer checked whole: its forward y against the float64 reference that loss leaves
 * in ref_y, then its gradient dx against finite differences of loss over the n_in inputs at in.
 * The messages read "<fwd> vs float64<shape>" and "<bwd> vs finite differences<shape>". */
static void expect_forward_and_grad(const char *fwd, const char *bwd, const char *shape,
                                    const float *y, const double *ref_y, size_t ny,
                                    const float *dx, double *in, size_t n_in, double eps,
                                    loss_fn loss, const void *problem) {
    char what[256];
    loss(problem);
    snprintf(what, sizeof what, "%s vs float64%s", fwd, shape);
    expect_forward(what, y, ref_y, ny);
    double *num = malloc(n_in * sizeof(double));
    numeric_grad(num, in, n_in, eps, loss, problem);
    snprintf(what, sizeof what, "%s vs finite differences%s", bwd, shape);
    expect_grad(what, dx, num, n_in);
    free(num);
}

/* Distinct values spread over [-1, 1] in random order: neighbours differ by 2/n, so a max
 * pool's argmax cannot move under a perturbation of EPS_KINKED while 2/n > 2*EPS_KINKED. */
static float *distinct_values(cnb_rng *rng, size_t n) {
    float *v = malloc(n * sizeof(float));
    cr_assert_not_null(v);
    for (size_t i = 0; i < n; i++) v[i] = (float)(-1.0 + 2.0 * (i + 0.5) / n);
    for (size_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        size_t j = cnb_rng_below(rng, (uint32_t)(i + 1));
        float t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    return v;
}

/* Where every check here starts: naive on one thread and a generator seeded for the test. */
static void open_naive(tu_backend *b, cnb_rng *rng, uint64_t seed) {
    tu_open(b, "naive", 1);
    cnb_rng_seed(rng, seed);
}

/* ---- convolution ---- */

/* float64 reference: y is (n,k,p,q), x is (n,c,h,w), w is (k,c,r,s), bias is (k) or NULL. Each
 * output starts from its bias and adds its products in the loops' order. */
typedef struct f64_conv {
    double *y;
    const double *x, *w;
} f64_conv;

static void f64_conv_term(void *user, int yi, int xi, int wi) {
    f64_conv *c = user;
    c->y[yi] += c->x[xi] * c->w[wi];
}

static void conv_forward_f64(const cnb_conv_desc *d, double *y, const double *x, const double *w,
                             const double *bias) {
    size_t plane = (size_t)d->p * d->q;
    for (size_t e = 0; e < (size_t)d->n * d->k * plane; e++)
        y[e] = bias ? bias[(e / plane) % d->k] : 0.0;
    f64_conv c = {.y = y, .x = x, .w = w};
    tu_conv_each_connection(d, &c, f64_conv_term);
}

typedef struct conv_problem {
    const cnb_conv_desc *d;
    double *x, *w, *bias, *y;
    const float *g;
} conv_problem;

static double conv_loss(const void *problem) {
    const conv_problem *pr = problem;
    conv_forward_f64(pr->d, pr->y, pr->x, pr->w, pr->bias);
    return dot_g(pr->y, pr->g, (size_t)pr->d->n * pr->d->k * pr->d->p * pr->d->q);
}

static void check_conv(tu_backend *b, const cnb_conv_desc *d, cnb_rng *rng) {
    char what[160];
    const size_t nx = (size_t)d->n * d->c * d->h * d->w, nw = (size_t)d->k * d->c * d->r * d->s;
    const size_t ny = (size_t)d->n * d->k * d->p * d->q, nb = (size_t)d->k;
    char shape[96];
    snprintf(shape, sizeof shape, "x(%d,%d,%d,%d) w(%d,%d,%d,%d) stride(%d,%d) pad(%d,%d)", d->n,
             d->c, d->h, d->w, d->k, d->c, d->r, d->s, d->stride_h, d->stride_w, d->pad_h,
             d->pad_w);
    float *x = tu_random(rng, nx, -1, 1), *w = tu_random(rng, nw, -1, 1);
    float *bias = tu_random(rng, nb, -1, 1), *g = tu_random(rng, ny, -1, 1);

    /* backend: forward, then every backward with dy = G */
    float *dev_x = tu_dev_from(b, x, nx), *dev_w = tu_dev_from(b, w, nw);
    float *dev_b = tu_dev_from(b, bias, nb), *dev_g = tu_dev_from(b, g, ny);
    float *dev_y = tu_dev_from(b, NULL, ny), *dev_dx = tu_dev_from(b, NULL, nx);
    float *dev_dw = tu_dev_from(b, NULL, nw), *dev_db = tu_dev_from(b, NULL, nb);
    const cnb_backend *api = b->api;
    tu_check_status(b, api->conv_forward(b->ctx, d, dev_y, dev_x, dev_w, dev_b), "conv_forward");
    tu_check_status(b, api->conv_backward_data(b->ctx, d, dev_dx, dev_g, dev_w),
                    "conv_backward_data");
    tu_check_status(b, api->conv_backward_filter(b->ctx, d, dev_dw, dev_g, dev_x),
                    "conv_backward_filter");
    tu_check_status(b, api->bias_backward(b->ctx, dev_db, dev_g, d->n, d->k, d->p * d->q),
                    "bias_backward");
    float *y = malloc(ny * sizeof(float)), *dx = malloc(nx * sizeof(float));
    float *dw = malloc(nw * sizeof(float)), *db = malloc(nb * sizeof(float));
    tu_to_host(b, y, dev_y, ny * sizeof(float));
    tu_to_host(b, dx, dev_dx, nx * sizeof(float));
    tu_to_host(b, dw, dev_dw, nw * sizeof(float));
    tu_to_host(b, db, dev_db, nb * sizeof(float));

    /* float64: the same function, differentiated numerically */
    conv_problem pr = {.d = d, .x = to_double(x, nx), .w = to_double(w, nw),
                       .bias = to_double(bias, nb), .y = malloc(ny * sizeof(double)), .g = g};
    double *num_dx = malloc(nx * sizeof(double)), *num_dw = malloc(nw * sizeof(double));
    double *num_db = malloc(nb * sizeof(double));
    conv_forward_f64(d, pr.y, pr.x, pr.w, pr.bias);
    snprintf(what, sizeof what, "conv_forward vs float64, %s", shape);
    expect_forward(what, y, pr.y, ny);
    numeric_grad(num_dx, pr.x, nx, EPS_LINEAR, conv_loss, &pr);
    numeric_grad(num_dw, pr.w, nw, EPS_LINEAR, conv_loss, &pr);
    numeric_grad(num_db, pr.bias, nb, EPS_LINEAR, conv_loss, &pr);
    snprintf(what, sizeof what, "conv_backward_data vs finite differences, %s", shape);
    expect_grad(what, dx, num_dx, nx);
    snprintf(what, sizeof what, "conv_backward_filter vs finite differences, %s", shape);
    expect_grad(what, dw, num_dw, nw);
    snprintf(what, sizeof what, "bias_backward (conv) vs finite differences, %s", shape);
    expect_grad(what, db, num_db, nb);

    void *dev[] = {dev_x, dev_w, dev_b, dev_g, dev_y, dev_dx, dev_dw, dev_db};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) tu_dev_free(b, dev[i]);
    void *host[] = {x, w, bias, g, y, dx, dw, db, pr.x, pr.w, pr.bias, pr.y, num_dx, num_dw,
                    num_db};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

Test(naive_gradcheck, conv_data_filter_bias) {
    tu_backend b;
    cnb_rng rng;
    open_naive(&b, &rng, 2024);
    /*                            n  c  h   w  k  r  s  sh sw ph pw */
    const cnb_conv_desc shapes[] = {
        tu_conv_desc(1, 1, 5, 5, 1, 3, 3, 1, 1, 0, 0),  /* batch 1, the plain case */
        tu_conv_desc(3, 2, 7, 6, 3, 3, 2, 2, 1, 1, 0),  /* batch 3, stride (2,1), pad (1,0) */
        tu_conv_desc(2, 3, 8, 9, 2, 2, 3, 2, 2, 1, 1),  /* non-square filter, stride 2, pad 1 */
        tu_conv_desc(3, 2, 6, 5, 4, 5, 5, 2, 2, 2, 2),  /* 5x5 with pad 2, stride 2 */
        tu_conv_desc(1, 4, 4, 7, 2, 1, 1, 1, 1, 0, 0),  /* 1x1 filter, non-square image */
        tu_conv_desc(1, 1, 3, 3, 1, 2, 2, 1, 1, 2, 2),  /* pad >= filter: all-padding corners */
        tu_conv_desc(3, 3, 10, 7, 2, 3, 3, 2, 1, 0, 2), /* stride 2 leaves the last row unread */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) check_conv(&b, &shapes[i], &rng);
    tu_close(&b);
}

/* ---- bias over linear-layer outputs (hw = 1) ---- */

typedef struct bias_problem {
    int n, c, hw;
    const double *y0;
    double *bias, *y;
    const float *g;
} bias_problem;

static double bias_loss(const void *problem) {
    const bias_problem *pr = problem;
    size_t count = (size_t)pr->n * pr->c * pr->hw;
    for (size_t e = 0; e < count; e++) pr->y[e] = pr->y0[e] + pr->bias[(e / pr->hw) % pr->c];
    return dot_g(pr->y, pr->g, count);
}

Test(naive_gradcheck, bias_forward_backward_linear_and_spatial) {
    tu_backend b;
    cnb_rng rng;
    open_naive(&b, &rng, 99);
    const int shapes[][3] = {{1, 10, 1}, {3, 7, 1}, {3, 4, 6}}; /* n, c, hw */
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int n = shapes[s][0], c = shapes[s][1], hw = shapes[s][2];
        const size_t count = (size_t)n * c * hw;
        float *y0 = tu_random(&rng, count, -1, 1), *bias = tu_random(&rng, (size_t)c, -1, 1);
        float *g = tu_random(&rng, count, -1, 1);
        float *dev_y = tu_dev_from(&b, y0, count), *dev_b = tu_dev_from(&b, bias, (size_t)c);
        float *dev_g = tu_dev_from(&b, g, count), *dev_db = tu_dev_from(&b, NULL, (size_t)c);
        tu_check_status(&b, b.api->bias_forward(b.ctx, dev_y, dev_b, n, c, hw), "bias_forward");
        tu_check_status(&b, b.api->bias_backward(b.ctx, dev_db, dev_g, n, c, hw),
                        "bias_backward");
        float *y = malloc(count * sizeof(float)), *db = malloc((size_t)c * sizeof(float));
        tu_to_host(&b, y, dev_y, count * sizeof(float));
        tu_to_host(&b, db, dev_db, (size_t)c * sizeof(float));

        bias_problem pr = {.n = n, .c = c, .hw = hw, .y0 = to_double(y0, count),
                           .bias = to_double(bias, (size_t)c),
                           .y = malloc(count * sizeof(double)), .g = g};
        char shape[64];
        snprintf(shape, sizeof shape, ", (%d,%d,%d)", n, c, hw);
        expect_forward_and_grad("bias_forward", "bias_backward", shape, y, pr.y, count, db,
                                pr.bias, (size_t)c, EPS_LINEAR, bias_loss, &pr);

        tu_dev_free(&b, dev_y), tu_dev_free(&b, dev_b), tu_dev_free(&b, dev_g);
        tu_dev_free(&b, dev_db);
        free(y0), free(bias), free(g), free(y), free(db), free((void *)pr.y0), free(pr.bias);
        free(pr.y);
    }
    tu_close(&b);
}

/* ---- pooling ---- */

/* float64 reference: y is (n,c,p,q), x is (n,c,h,w). Max over the real cells (inputs here are
 * distinct, so no tie rule is needed); average divides by kh*kw, padding included. */
static void pool_forward_f64(const cnb_pool_desc *d, double *y, const double *x) {
    for (int plane = 0; plane < d->n * d->c; plane++)
        for (int oh = 0; oh < d->p; oh++)
            for (int ow = 0; ow < d->q; ow++) {
                double acc = d->mode == CNB_POOL_MAX ? -INFINITY : 0.0;
                for (int i = 0; i < d->kh; i++)
                    for (int j = 0; j < d->kw; j++) {
                        int ih = oh * d->stride_h - d->pad_h + i;
                        int iw = ow * d->stride_w - d->pad_w + j;
                        if (ih < 0 || ih >= d->h || iw < 0 || iw >= d->w) continue;
                        double v = x[(plane * d->h + ih) * d->w + iw];
                        acc = d->mode == CNB_POOL_MAX ? fmax(acc, v) : acc + v;
                    }
                if (d->mode == CNB_POOL_AVG) acc /= d->kh * d->kw;
                y[(plane * d->p + oh) * d->q + ow] = acc;
            }
}

typedef struct pool_problem {
    const cnb_pool_desc *d;
    double *x, *y;
    const float *g;
} pool_problem;

static double pool_loss(const void *problem) {
    const pool_problem *pr = problem;
    pool_forward_f64(pr->d, pr->y, pr->x);
    return dot_g(pr->y, pr->g, (size_t)pr->d->n * pr->d->c * pr->d->p * pr->d->q);
}

static void check_pool(tu_backend *b, const cnb_pool_desc *d, cnb_rng *rng) {
    const size_t nx = (size_t)d->n * d->c * d->h * d->w, ny = (size_t)d->n * d->c * d->p * d->q;
    char shape[128];
    snprintf(shape, sizeof shape, ", %s x(%d,%d,%d,%d) window %dx%d stride(%d,%d) pad(%d,%d)",
             d->mode == CNB_POOL_MAX ? "max" : "avg", d->n, d->c, d->h, d->w, d->kh, d->kw,
             d->stride_h, d->stride_w, d->pad_h, d->pad_w);
    cr_assert_lt(nx, (size_t)(1.0 / EPS_KINKED) / 2, "pool shape too big for distinct values");
    float *x = distinct_values(rng, nx), *g = tu_random(rng, ny, -1, 1);
    size_t ws_bytes = 0;
    tu_check_status(b, b->api->pool_workspace_size(b->ctx, d, &ws_bytes), "pool_workspace_size");
    void *ws = ws_bytes ? tu_dev_bytes(b, NULL, ws_bytes) : NULL;
    float *dev_x = tu_dev_from(b, x, nx), *dev_y = tu_dev_from(b, NULL, ny);
    float *dev_g = tu_dev_from(b, g, ny), *dev_dx = tu_dev_from(b, NULL, nx);
    tu_check_status(b, b->api->pool_forward(b->ctx, d, dev_y, dev_x, ws), "pool_forward");
    tu_check_status(b, b->api->pool_backward(b->ctx, d, dev_dx, dev_g, dev_x, dev_y, ws),
                    "pool_backward");
    float *y = malloc(ny * sizeof(float)), *dx = malloc(nx * sizeof(float));
    tu_to_host(b, y, dev_y, ny * sizeof(float));
    tu_to_host(b, dx, dev_dx, nx * sizeof(float));

    pool_problem pr = {.d = d, .x = to_double(x, nx), .y = malloc(ny * sizeof(double)), .g = g};
    expect_forward_and_grad("pool_forward", "pool_backward", shape, y, pr.y, ny, dx, pr.x, nx,
                            d->mode == CNB_POOL_MAX ? EPS_KINKED : EPS_LINEAR, pool_loss, &pr);

    if (ws) tu_dev_free(b, ws);
    tu_dev_free(b, dev_x), tu_dev_free(b, dev_y), tu_dev_free(b, dev_g), tu_dev_free(b, dev_dx);
    free(x), free(g), free(y), free(dx), free(pr.x), free(pr.y);
}

Test(naive_gradcheck, pool_max_and_avg) {
    tu_backend b;
    cnb_rng rng;
    open_naive(&b, &rng, 31337);
    for (int mode = CNB_POOL_MAX; mode <= CNB_POOL_AVG; mode++) {
        /*                               n  c  h  w  kh kw sh sw ph pw */
        const cnb_pool_desc shapes[] = {
            tu_pool_desc(mode, 1, 1, 4, 4, 2, 2, 2, 2, 0, 0), /* batch 1, simplecnn's pool */
            tu_pool_desc(mode, 3, 2, 6, 7, 2, 2, 2, 2, 0, 0), /* floor mode drops a column */
            tu_pool_desc(mode, 1, 2, 7, 6, 3, 3, 2, 2, 1, 1), /* overlapping windows, pad 1 */
            tu_pool_desc(mode, 3, 1, 5, 7, 2, 3, 1, 2, 1, 1), /* non-square window and stride */
        };
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            check_pool(&b, &shapes[i], &rng);
    }
    tu_close(&b);
}

/* ---- activations ---- */

static double act_f64(int act, double x, double slope) {
    switch (act) {
    case CNB_ACT_RELU: return x > 0 ? x : 0;
    case CNB_ACT_TANH: return tanh(x);
    case CNB_ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    default: return x > 0 ? x : slope * x;
    }
}

typedef struct act_problem {
    int act;
    size_t count;
    double *x, *slope, *y;
    const float *g;
} act_problem;

static double act_loss(const void *problem) {
    const act_problem *pr = problem;
    for (size_t i = 0; i < pr->count; i++) pr->y[i] = act_f64(pr->act, pr->x[i], *pr->slope);
    return dot_g(pr->y, pr->g, pr->count);
}

static void check_activation(tu_backend *b, int act, float slope, size_t count, cnb_rng *rng) {
    static const char *const names[] = {"relu", "tanh", "sigmoid", "prelu"};
    float *x = tu_random(rng, count, -2, 2), *g = tu_random(rng, count, -1, 1);
    /* ReLU and PReLU have a kink at 0: keep |x| >= 0.05, far beyond EPS_KINKED. */
    if (act == CNB_ACT_RELU || act == CNB_ACT_PRELU)
        for (size_t i = 0; i < count; i++)
            if (fabsf(x[i]) < 0.05f) x[i] = x[i] < 0 ? x[i] - 0.05f : x[i] + 0.05f;
    float *dev_x = tu_dev_from(b, x, count), *dev_g = tu_dev_from(b, g, count);
    float *dev_y = tu_dev_from(b, NULL, count), *dev_dx = tu_dev_from(b, NULL, count);
    float *dev_s = tu_dev_from(b, &slope, 1), *dev_ds = tu_dev_from(b, NULL, 1);
    tu_check_status(b, b->api->activation_forward(b->ctx, act, count, dev_y, dev_x, dev_s),
                    "activation_forward");
    tu_check_status(b, b->api->activation_backward(b->ctx, act, count, dev_dx, dev_ds, dev_g,
                                                   dev_x, dev_y, dev_s),
                    "activation_backward");
    float *y = malloc(count * sizeof(float)), *dx = malloc(count * sizeof(float)), ds = 0;
    tu_to_host(b, y, dev_y, count * sizeof(float));
    tu_to_host(b, dx, dev_dx, count * sizeof(float));
    if (act == CNB_ACT_PRELU) tu_to_host(b, &ds, dev_ds, sizeof ds);

    double slope64 = slope;
    act_problem pr = {.act = act, .count = count, .x = to_double(x, count), .slope = &slope64,
                      .y = malloc(count * sizeof(double)), .g = g};
    double num_ds = 0;
    const double eps = act == CNB_ACT_TANH || act == CNB_ACT_SIGMOID ? EPS_SMOOTH : EPS_KINKED;
    char fwd[32], bwd[32], shape[48];
    snprintf(fwd, sizeof fwd, "%s forward", names[act]);
    snprintf(bwd, sizeof bwd, "%s backward", names[act]);
    snprintf(shape, sizeof shape, " (count %zu)", count);
    expect_forward_and_grad(fwd, bwd, shape, y, pr.y, count, dx, pr.x, count, eps, act_loss, &pr);
    if (act == CNB_ACT_PRELU) {
        /* L is linear in the slope, so any step is exact. */
        numeric_grad(&num_ds, &slope64, 1, EPS_LINEAR, act_loss, &pr);
        cr_expect(fabs(ds - num_ds) <= GRAD_TOL * fmax(1.0, fabs(num_ds)),
                  "prelu dslope (slope %g, count %zu): backend %.9g, finite differences %.12g",
                  slope, count, ds, num_ds);
    }
    void *dev[] = {dev_x, dev_g, dev_y, dev_dx, dev_s, dev_ds};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) tu_dev_free(b, dev[i]);
    free(x), free(g), free(y), free(dx), free(pr.x), free(pr.y);
}

Test(naive_gradcheck, activations_relu_tanh_sigmoid_prelu) {
    tu_backend b;
    cnb_rng rng;
    open_naive(&b, &rng, 5);
    const size_t counts[] = {1, 105, 3 * 4 * 5 * 6};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        check_activation(&b, CNB_ACT_RELU, 0, counts[c], &rng);
        check_activation(&b, CNB_ACT_TANH, 0, counts[c], &rng);
        check_activation(&b, CNB_ACT_SIGMOID, 0, counts[c], &rng);
        check_activation(&b, CNB_ACT_PRELU, 0.25f, counts[c], &rng);
        check_activation(&b, CNB_ACT_PRELU, -0.3f, counts[c], &rng);
    }
    tu_close(&b);
}

/* ---- softmax + cross-entropy ---- */

typedef struct ce_problem {
    int n, classes;
    double *z;
    const int32_t *labels;
} ce_problem;

/* float64 reference: mean over rows of log(sum_j exp z_j) - z_label, with the row max taken
 * out first (the logits here are small, but the reference should not care). */
static double ce_loss(const void *problem) {
    const ce_problem *pr = problem;
    double total = 0.0;
    for (int i = 0; i < pr->n; i++) {
        const double *z = pr->z + (size_t)i * pr->classes;
        double m = z[0], s = 0.0;
        for (int j = 1; j < pr->classes; j++) m = fmax(m, z[j]);
        for (int j = 0; j < pr->classes; j++) s += exp(z[j] - m);
        total += m + log(s) - z[pr->labels[i]];
    }
    return total / pr->n;
}

Test(naive_gradcheck, softmax_ce) {
    tu_backend b;
    cnb_rng rng;
    open_naive(&b, &rng, 123);
    const int shapes[][2] = {{1, 10}, {3, 7}, {5, 2}, {64, 10}}; /* n, classes */
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int n = shapes[s][0], classes = shapes[s][1];
        const size_t count = (size_t)n * classes;
        float *z = tu_random(&rng, count, -3, 3);
        int32_t *labels = malloc((size_t)n * sizeof(int32_t));
        for (int i = 0; i < n; i++) labels[i] = (int32_t)cnb_rng_below(&rng, (uint32_t)classes);
        float *dev_z = tu_dev_from(&b, z, count), *dev_p = tu_dev_from(&b, NULL, count);
        float *dev_loss = tu_dev_from(&b, NULL, 1), *dev_dz = tu_dev_from(&b, NULL, count);
        int32_t *dev_lab = tu_dev_bytes(&b, labels, (size_t)n * sizeof(int32_t));
        tu_check_status(&b, b.api->softmax_ce_forward(b.ctx, n, classes, dev_p, dev_loss, NULL,
                                                      dev_z, dev_lab),
                        "softmax_ce_forward");
        tu_check_status(&b, b.api->softmax_ce_backward(b.ctx, n, classes, dev_dz, dev_p, dev_lab),
                        "softmax_ce_backward");
        float loss, *dz = malloc(count * sizeof(float));
        tu_to_host(&b, &loss, dev_loss, sizeof loss);
        tu_to_host(&b, dz, dev_dz, count * sizeof(float));

        ce_problem pr = {.n = n, .classes = classes, .z = to_double(z, count), .labels = labels};
        double want_loss = ce_loss(&pr), *num = malloc(count * sizeof(double));
        cr_expect(fabs(loss - want_loss) <= FORWARD_TOL * fabs(want_loss),
                  "softmax_ce loss (%d,%d): backend %.9g, float64 %.12g", n, classes, loss,
                  want_loss);
        numeric_grad(num, pr.z, count, EPS_SMOOTH, ce_loss, &pr);
        char what[96];
        snprintf(what, sizeof what, "softmax_ce_backward vs finite differences (%d,%d)", n,
                 classes);
        expect_grad(what, dz, num, count);

        tu_dev_free(&b, dev_z), tu_dev_free(&b, dev_p), tu_dev_free(&b, dev_loss);
        tu_dev_free(&b, dev_dz), tu_dev_free(&b, dev_lab);
        free(z), free(labels), free(dz), free(pr.z), free(num);
    }
    tu_close(&b);
}
