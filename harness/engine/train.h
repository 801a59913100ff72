/* train.h — the training loop: harness-owned initialization, shuffling, forward / backward /
 * update through a backend's kernels, evaluation, per-epoch metrics and throughput. */
#ifndef CNB_TRAIN_H
#define CNB_TRAIN_H

#include <stdint.h>
#include <stdio.h>

#include "cnb_abi.h"
#include "data.h"
#include "model.h"
#include "util.h"

#define CNB_MAX_EPOCHS 1000
#define CNB_MAX_CLASSES 64

struct cnb_trainer;

/* Settings of one run: the model file's values after command-line overrides. */
typedef struct cnb_run_settings {
    int epochs, batch, eval_batch;
    char optimizer[16];
    float lr, momentum, weight_decay, beta1, beta2, eps;
    uint64_t seed;
    long max_steps;          /* stop after this many training steps in total; 0 = no limit */
    int progress;            /* 1: a progress line on stderr */
    FILE *log;               /* per-epoch lines go here (NULL: silent) */
    /* Every checkpoint_every steps (counted over the whole run, resumed steps included) the loop
     * calls checkpoint(checkpoint_user, trainer, ...) after the optimizer step; a non-zero return
     * stops the run with CNB_RUN_CHECKPOINT_ERROR and the callback's message. 0 / NULL: never. */
    long checkpoint_every;
    int (*checkpoint)(void *user, struct cnb_trainer *t, char *err, size_t err_len);
    void *checkpoint_user;
    /* Data-parallel training (harness/engine/distributed.h): NULL trains alone. Under mpirun each rank
     * takes its slice of every global batch (s->batch) and of the test set, and the gradients
     * are summed between backward and update (also on a single rank, which then times the
     * exchange's code path). */
    struct cnb_dist *dist;
    /* 1: the backend's allreduce_sum sums the gradients on the device (its communicator joined,
     * dist_device.h); 0: download, MPI_Allreduce on the host, upload. */
    int device_allreduce;
    int no_fusion;           /* 1: never call the backend's fused slots (--no-fusion) */
    int direct_conv;         /* 1: the backend was made with cnb_config.direct_conv (--direct-conv) */
} cnb_run_settings;

typedef struct cnb_epoch_metrics {
    int epoch;               /* 1-based */
    long steps;              /* training steps in this epoch */
    long train_images;
    double train_loss, train_accuracy;   /* mean over the epoch's batches, fraction */
    double test_loss, test_accuracy;
    double train_seconds, eval_seconds;
    double train_images_per_s, infer_images_per_s;
} cnb_epoch_metrics;

typedef enum cnb_run_status {
    CNB_RUN_OK = 0,
    CNB_RUN_DIVERGED,        /* loss became NaN or infinite */
    CNB_RUN_INTERRUPTED,     /* SIGINT / SIGTERM */
    CNB_RUN_BACKEND_ERROR,   /* a kernel returned an error */
    CNB_RUN_CHECKPOINT_ERROR /* the periodic checkpoint could not be written */
} cnb_run_status;

typedef struct cnb_run_result {
    cnb_run_status status;
    char message[2048];      /* why the run stopped early, in words ("" when it did not) */
    int epochs_done;         /* epochs with metrics below (a partial last epoch counts) */
    cnb_epoch_metrics epoch[CNB_MAX_EPOCHS];
    long total_steps;
    int classes;
    long confusion[CNB_MAX_CLASSES][CNB_MAX_CLASSES]; /* [true][predicted], final evaluation */
    int have_confusion;
    double final_test_loss, final_test_accuracy;
    double wall_seconds;
    float *step_losses;      /* loss of every training step (total_steps values), malloc'd */
    long step_losses_cap;
    double *step_images_per_s; /* each step's images / its time (total_steps values), malloc'd */
    long step_ips_cap;
    double *eval_images_per_s; /* each evaluation batch's images / its time, malloc'd */
    long eval_batches, eval_log_cap;
    /* Data-parallel runs: this rank's share and what the gradient exchange cost it. */
    long local_images;       /* training images this rank computed */
    double train_seconds;    /* the training steps' wall time, summed over epochs */
    double wait_seconds;     /* at a barrier before it: waiting for the slowest rank */
    double allreduce_seconds;/* inside the gradient all-reduce itself, all ranks arrived */
    double exchange_seconds; /* the whole exchange: download, weighting, all-reduce, upload, sums */
} cnb_run_result;

/* Fill settings from the model file's training section (no log, no progress). */
void cnb_settings_from_model(const cnb_model *m, cnb_run_settings *s);

/* PyTorch's default initialization, drawn from rng in layer order: conv / linear weights and
 * biases uniform in ±1/sqrt(fan_in) (kaiming_uniform with a = sqrt(5) reduces to that), PReLU
 * slopes at their init value. params holds m->n_params values. */
void cnb_init_params(const cnb_model *m, cnb_rng *rng, float *params);

/* A trainer owns every device buffer of a run, allocated once before the first step. */
typedef struct cnb_trainer cnb_trainer;

/* Allocate buffers, initialize parameters from settings->seed and upload them. The data sets are
 * converted to floats with the model's normalization. 0 or -1 (err says why). */
int cnb_trainer_create(const cnb_backend *api, cnb_context *ctx, const cnb_model *m,
                       const cnb_dataset *train, const cnb_dataset *test,
                       const cnb_run_settings *s, cnb_trainer **out, char *err, size_t err_len);
/* Train for the configured epochs (or max_steps). Returns 0 when the run completed; -1 when it
 * stopped early (result->status and result->message say why, and what was computed so far stays
 * in result). */
int cnb_trainer_run(cnb_trainer *t, cnb_run_result *result);
/* Copy the current parameters to host memory (m->n_params floats). */
int cnb_trainer_get_params(cnb_trainer *t, float *host, char *err, size_t err_len);
void cnb_trainer_destroy(cnb_trainer *t);

/* ---- checkpoints and resuming ---- */

/* Where a run stands: the next step to run and what the data order and optimizer need to go on
 * exactly as an uninterrupted run would. The shuffle generator is stored as it was at the start
 * of epoch 1; a resumed trainer replays the earlier epochs' shuffles to rebuild the permutation
 * (each epoch shuffles the previous one in place). */
typedef struct cnb_train_state {
    long global_step;        /* steps done so far over the whole run */
    int epoch;               /* 1-based epoch of the next step */
    long step_in_epoch;      /* 0-based index of the next step within that epoch */
    long adam_step;          /* Adam's t (0 for SGD) */
    uint64_t shuffle_state, shuffle_inc; /* the shuffle generator at the start of epoch 1 */
    int train_count;         /* training images the permutation covers */
    int batch;               /* training batch size */
} cnb_train_state;

void cnb_trainer_get_state(const cnb_trainer *t, cnb_train_state *st);
/* Continue from st: checks that the data set size and batch match this trainer, then replays
 * the shuffles. Call before cnb_trainer_run. 0 or -1. */
int cnb_trainer_set_state(cnb_trainer *t, const cnb_train_state *st, char *err, size_t err_len);
/* Adam's step count t, for a run that starts from loaded Adam state without resuming. */
void cnb_trainer_set_adam_step(cnb_trainer *t, long step);
/* Parameters (m->n_params floats) and the optimizer's buffers (momentum / Adam m, Adam v; the
 * same length). Get: any pointer may be NULL to skip it. Set: params required; NULL optimizer
 * buffers are zeroed (a fresh optimizer). */
int cnb_trainer_get_tensors(cnb_trainer *t, float *params, float *opt_m, float *opt_v, char *err,
                            size_t err_len);
int cnb_trainer_set_tensors(cnb_trainer *t, const float *params, const float *opt_m,
                            const float *opt_v, char *err, size_t err_len);
/* Run the current parameters forward on test images [first, first + n) and download their
 * logits (n, classes) and, when inputs is not NULL, the normalized inputs (n, c, h, w) they saw. */
int cnb_trainer_test_logits(cnb_trainer *t, int first, int n, float *logits, float *inputs,
                            char *err, size_t err_len);

void cnb_run_result_free(cnb_run_result *r);

/* Ask a running cnb_train to stop after the current step (async-signal-safe). */
void cnb_request_stop(int signal_number);

#endif
