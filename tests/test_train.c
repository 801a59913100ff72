/* test_train.c — the training loop end to end: PyTorch-default initialization, the same per-step
 * losses under naive and blas from one seed, learning on a real data slice, and a clear stop with
 * the results so far kept when the loss diverges. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "loader.h"
#include "model.h"
#include "testutil.h"
#include "train.h"

/* Train `m` under `backend`; returns the result (caller frees) and optionally final params. */
static cnb_run_result *run(const char *backend, const cnb_model *m, const cnb_dataset *train,
                           const cnb_dataset *test, const cnb_run_settings *s, float *params) {
    tu_backend b;
    tu_open(&b, backend, 2);
    cnb_trainer *t = tu_trainer(b.api, b.ctx, m, train, test, s);
    char err[CNB_ERR_LEN];
    cnb_run_result *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    cnb_trainer_run(t, r);
    if (params) cr_assert_eq(cnb_trainer_get_params(t, params, err, sizeof err), 0, "%s", err);
    cnb_trainer_destroy(t);
    tu_close(&b);
    return r;
}

Test(train, init_follows_pytorch_defaults) {
    cnb_model *m = tu_load_model("simplecnn");
    float *p = malloc(m->n_params * sizeof *p);
    cnb_rng rng;
    cnb_rng_seed(&rng, 7);
    cnb_init_params(m, &rng, p);
    for (int i = 0; i < m->n_layers; i++) {
        const cnb_layer *l = &m->layers[i];
        if (l->type != CNB_LAYER_CONV && l->type != CNB_LAYER_LINEAR) continue;
        double fan_in = l->type == CNB_LAYER_CONV ? (double)l->in_c * l->size_h * l->size_w
                                                  : (double)l->in_c * l->in_h * l->in_w;
        double bound = 1.0 / sqrt(fan_in), sum2 = 0, maxabs = 0;
        for (size_t k = 0; k < l->weight_count; k++) {
            double w = p[l->param_offset + k];
            sum2 += w * w;
            maxabs = fmax(maxabs, fabs(w));
        }
        double std = sqrt(sum2 / l->weight_count), want = bound / sqrt(3.0);
        cr_expect_leq(maxabs, bound, "%s: |w| %.5g exceeds 1/sqrt(fan_in) %.5g", l->name, maxabs,
                      bound);
        /* uniform(-b, b) has std b/sqrt(3); with >= 288 samples the estimate is within 15% */
        cr_expect(fabs(std - want) < 0.15 * want, "%s: std %.5g, expected %.5g", l->name, std,
                  want);
        for (size_t k = 0; k < l->bias_count; k++)
            cr_expect_leq(fabs(p[l->param_offset + l->weight_count + k]), bound);
    }
    /* The same seed gives the same bits: the contract every cross-backend check relies on. */
    float *q = malloc(m->n_params * sizeof *q);
    cnb_rng_seed(&rng, 7);
    cnb_init_params(m, &rng, q);
    cr_expect_eq(memcmp(p, q, m->n_params * sizeof *p), 0);
    free(p);
    free(q);
    free(m);
}

/* A model, a fashion-mnist slice and the model file's own run settings: what most tests here
 * train with. */
typedef struct setup {
    cnb_model *m;
    cnb_dataset train, test;
    cnb_run_settings s;
} setup;

static void setup_open(setup *u, const char *model, int train_limit, int test_limit) {
    u->m = tu_load_model(model);
    tu_open_fashion(train_limit, test_limit, &u->train, &u->test);
    cnb_settings_from_model(u->m, &u->s);
}

static void setup_close(setup *u) {
    cnb_dataset_free(&u->train);
    cnb_dataset_free(&u->test);
    free(u->m);
}

/* naive and blas start from the same bits and see the same batches, so their per-step losses
 * and final weights agree to float32 summation-order noise. */
static void agree(const char *model, int batch, int steps, double loss_tol, double weight_tol) {
    setup u;
    setup_open(&u, model, batch * steps, 200);
    cnb_model *m = u.m;
    cnb_run_settings s = u.s;
    s.batch = batch;
    s.epochs = 1;
    s.max_steps = steps;
    float *pn = malloc(m->n_params * sizeof *pn), *pb = malloc(m->n_params * sizeof *pb);
    cnb_run_result *rn = run("naive", m, &u.train, &u.test, &s, pn);
    cnb_run_result *rb = run("blas", m, &u.train, &u.test, &s, pb);
    cr_assert_eq(rn->status, CNB_RUN_OK, "%s", rn->message);
    cr_assert_eq(rb->status, CNB_RUN_OK, "%s", rb->message);
    cr_assert_eq(rn->total_steps, steps);
    cr_assert_eq(rb->total_steps, steps);
    for (long i = 0; i < steps; i++) {
        double a = rn->step_losses[i], b = rb->step_losses[i];
        cr_expect(fabs(a - b) <= loss_tol * fabs(a), "%s step %ld: naive loss %.9g, blas %.9g",
                  model, i + 1, a, b);
    }
    tu_expect_close("final weights", pb, pn, m->n_params, weight_tol);
    cr_expect(fabs(rn->final_test_accuracy - rb->final_test_accuracy) <= 0.01,
              "test accuracy naive %.4f blas %.4f", rn->final_test_accuracy,
              rb->final_test_accuracy);
    cnb_run_result_free(rn);
    cnb_run_result_free(rb);
    free(rn);
    free(rb);
    free(pn);
    free(pb);
    setup_close(&u);
}

/* Tolerances: float32 sums in a different order differ by ~1e-7 relative per operation; over a
 * few dozen SGD steps the difference grows but stays orders of magnitude below 1e-4. */
Test(train, naive_and_blas_agree_network, .timeout = 300) { agree("network", 50, 30, 1e-4, 1e-4); }
Test(train, naive_and_blas_agree_simplecnn, .timeout = 300) { agree("simplecnn", 16, 8, 1e-4, 1e-4); }
Test(train, naive_and_blas_agree_lenet5, .timeout = 300) { agree("lenet5", 32, 8, 1e-4, 1e-4); }

Test(train, learns_on_a_real_slice, .timeout = 300) {
    setup u;
    setup_open(&u, "network", 6000, 1000);
    cnb_model *m = u.m;
    cnb_run_settings s = u.s;
    s.epochs = 3; /* plain SGD at batch 100: 60 steps an epoch, a slow start */
    cnb_run_result *r = run("blas", m, &u.train, &u.test, &s, NULL);
    cr_assert_eq(r->status, CNB_RUN_OK, "%s", r->message);
    cr_assert_eq(r->epochs_done, 3);
    double first = 0, last = 0;
    for (int i = 0; i < 10; i++) first += r->step_losses[i] / 10;
    for (long i = r->total_steps - 10; i < r->total_steps; i++) last += r->step_losses[i] / 10;
    cr_expect_lt(last, 0.6 * first, "loss did not fall: first steps %.4f, last steps %.4f", first,
                 last);
    cr_expect_gt(r->epoch[2].test_accuracy, 0.50, "test accuracy %.3f is near chance (0.10)",
                 r->epoch[2].test_accuracy);
    cr_expect_gt(r->epoch[2].train_accuracy, r->epoch[0].train_accuracy);
    long total = 0, diag = 0;
    for (int i = 0; i < 10; i++)
        for (int j = 0; j < 10; j++) {
            total += r->confusion[i][j];
            if (i == j) diag += r->confusion[i][j];
        }
    cr_expect_eq(total, 1000, "confusion matrix counts %ld images", total);
    cr_expect(fabs((double)diag / total - r->final_test_accuracy) < 1e-12);
    tu_train_free(NULL, r);
    setup_close(&u);
}

Test(train, divergence_stops_cleanly_keeping_results, .timeout = 300) {
    /* A deep linear network at lr 5: a ReLU network at a huge lr tends to die (constant finite
     * loss) rather than diverge, so it would not exercise the NaN stop. */
    setup u;
    setup_open(&u, CNB_TEST_DATA_DIR "/diverge.cfg", 64 * 40, 100);
    cnb_model *m = u.m;
    cnb_run_settings s = u.s;
    cnb_run_result *r = run("blas", m, &u.train, &u.test, &s, NULL);
    cr_assert_eq(r->status, CNB_RUN_DIVERGED, "status %d: %s", r->status, r->message);
    cr_expect(strstr(r->message, "diverged") && strstr(r->message, "step"), "%s", r->message);
    cr_assert_gt(r->total_steps, 0);
    cr_expect(!isfinite(r->step_losses[r->total_steps - 1]));
    for (long i = 0; i + 1 < r->total_steps; i++) cr_expect(isfinite(r->step_losses[i]));
    tu_train_free(NULL, r);
    setup_close(&u);
}

Test(train, same_seed_same_run_different_seed_different_run, .timeout = 300) {
    setup u;
    setup_open(&u, "network", 1000, 100);
    cnb_model *m = u.m;
    cnb_run_settings s = u.s;
    s.epochs = 1;
    s.max_steps = 5;
    cnb_run_result *a = run("blas", m, &u.train, &u.test, &s, NULL);
    cnb_run_result *b = run("blas", m, &u.train, &u.test, &s, NULL);
    s.seed = 43;
    cnb_run_result *c = run("blas", m, &u.train, &u.test, &s, NULL);
    cr_expect_eq(memcmp(a->step_losses, b->step_losses, 5 * sizeof(float)), 0);
    cr_expect_neq(memcmp(a->step_losses, c->step_losses, 5 * sizeof(float)), 0);
    cnb_run_result *rs[] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        cnb_run_result_free(rs[i]);
        free(rs[i]);
    }
    setup_close(&u);
}
