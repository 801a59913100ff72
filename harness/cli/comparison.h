/* comparison.h — the main job: `cnnbench --backend all|LIST --model M` trains the same network
 * under each listed backend, from the same initial bits and the same batches, checks each one's
 * kernels and first training steps against the naive reference (the `check` engine), and ends
 * with one table and one results file (kind "comparison"). */
#ifndef CNB_COMPARISON_H
#define CNB_COMPARISON_H

#include "model.h"
#include "train.h"

/* Steps the naive reference trains in a comparison: a timed sample for the speed-up column
 * (a whole simplecnn epoch takes about six minutes under naive on two cores). */
#define CNB_NAIVE_SAMPLE_STEPS 20
/* Test images the naive sample is evaluated on (its inference speed; its accuracy after a
 * sample is not comparable and is not reported). */
#define CNB_NAIVE_SAMPLE_TEST 1000

typedef struct cnb_comparison_request {
    const char *backends;        /* "all" or a comma list */
    const cnb_model *model;
    const cnb_run_settings *settings; /* the model's settings after command-line overrides */
    const char *dataset_kind, *data;
    int train_limit, test_limit;
    int threads, deterministic, tf32, quiet;
    long naive_steps;            /* 0: CNB_NAIVE_SAMPLE_STEPS */
    const char *out;             /* NULL: cnnbench-MODEL-comparison.json */
    int argc;                    /* the command line, for the results' context */
    char **argv;
} cnb_comparison_request;

/* 1 when a --backend value names several backends ("all", or a comma list). */
int cnb_is_backend_list(const char *value);

/* Runs the comparison and returns the process exit code: 0 when every backend that ran agrees
 * with naive and finished, 1 when one disagrees or fails, 2 on a usage error, 3 when a run
 * diverged, 130 when interrupted. The results file is rewritten after each backend, so an
 * interrupted comparison keeps what it computed. */
int cnb_train_comparison(const cnb_comparison_request *req);

#endif
