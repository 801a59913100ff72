/* test_warmup.c — no per-shape search inside timed work: a device backend searches for an
 * algorithm on the first use of each convolution shape, batch included (cuDNN's cudnnFind),
 * and the training batch, the epoch's last partial batch and the evaluation batches each are
 * one. cnb_trainer_create runs every one of them before anything is timed. Checked through the
 * "search" proxy fixture (naive kernels, device timers, a search counter in info()), on any
 * machine; and the warm-up changes no result: the run is bit-identical to one on naive, which
 * has no timers and so no warm-up. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "loader.h"
#include "model.h"
#include "train.h"
#include "testutil.h"

#define SEARCH_SO CNB_FIXTURE_DIR "/libfixture_search.so"

typedef struct counts {
    long searches, at_first_step;
} counts;

static void collect(void *user, const char *key, const char *value) {
    counts *c = user;
    if (strcmp(key, "conv.searches") == 0) c->searches = strtol(value, NULL, 10);
    if (strcmp(key, "conv.searches_at_first_step") == 0) c->at_first_step = strtol(value, NULL, 10);
}

/* One epoch of "network" on 20 training images in batches of 8 (the last one 4) and 10 test
 * images in batches of 4 (the last one 2); the final parameters into params. */
static void run(const char *backend, float *params, size_t np, counts *c) {
    char err[CNB_ERR_LEN];
    cnb_model *m = tu_load_model("network");
    cr_assert_eq(m->n_params, np);
    cnb_dataset train = {0}, test = {0};
    tu_open_fashion(20, 10, &train, &test);
    cnb_config cfg = {.size = sizeof cfg, .threads = 1};
    cnb_loaded_backend lib;
    cnb_context *ctx;
    cr_assert_eq(cnb_open_backend(backend, &cfg, &lib, &ctx, err, sizeof err), 0, "%s", err);
    cnb_run_settings s;
    cnb_settings_from_model(m, &s);
    s.epochs = 1;
    s.batch = 8;
    s.eval_batch = 4;
    cnb_trainer *t = tu_trainer(lib.api, ctx, m, &train, &test, &s);
    cnb_run_result *r = tu_train_to_end(t);
    cr_assert_eq(r->total_steps, 3);
    cr_assert_eq(cnb_trainer_get_params(t, params, err, sizeof err), 0, "%s", err);
    if (c) {
        c->searches = c->at_first_step = -2;
        lib.api->info(ctx, collect, c);
    }
    tu_train_free(t, r);
    cnb_close_backend(&lib, ctx);
    cnb_dataset_free(&train);
    cnb_dataset_free(&test);
    free(m);
}

Test(warmup, no_search_after_the_first_timed_step_and_results_unchanged) {
    size_t np = 0;
    {
        char path[4096], err[CNB_ERR_LEN];
        cnb_model m;
        cr_assert_eq(cnb_model_resolve("network", path, sizeof path, err, sizeof err), 0);
        cr_assert_eq(cnb_model_load(path, &m, NULL, err, sizeof err), 0, "%s", err);
        np = m.n_params;
    }
    float *with = malloc(np * sizeof(float)), *without = malloc(np * sizeof(float));
    counts c;
    run(SEARCH_SO, with, np, &c);
    /* network's two convolutions: forward and filter gradient each, data gradient for the
     * second only, at batches 8 and 4 (training): 2 * (2 + 2 + 1) = 10; evaluation adds the
     * forward at batch 2: 2. Batch 4 was seen in training. */
    cr_expect_eq(c.searches, 12, "searches: %ld", c.searches);
    cr_expect_eq(c.at_first_step, c.searches,
                 "%ld of %ld searches came after the first optimizer step (inside timed work)",
                 c.searches - c.at_first_step, c.searches);
    run("naive", without, np, NULL);
    tu_expect_equal("parameters after a warmed-up run vs naive", with, without, np);
    free(with);
    free(without);
}
