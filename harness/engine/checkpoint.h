/* checkpoint.h — model parameters and optimizer state in the safetensors format, named and laid
 * out as a PyTorch state_dict of the same network ("conv1.weight" [out, in, kh, kw], "fc1.bias"
 * [out], "prelu1.weight" [1]), so weights move both ways between cnnbench and PyTorch. Optimizer
 * state rides along as extra tensors ("optimizer.conv1.weight.momentum_buffer", ".exp_avg",
 * ".exp_avg_sq") and the run's position as string metadata, so a run can resume exactly.
 *
 * File layout (safetensors): 8-byte little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "value", ...}}
 * then the raw little-endian tensor bytes; offsets are relative to the end of the header. */
#ifndef CNB_CHECKPOINT_H
#define CNB_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "train.h"

/* Largest file or header the reader accepts: a header this big is damaged, not a checkpoint. */
#define CNB_CKPT_MAX_HEADER ((uint64_t)16 << 20)
#define CNB_CKPT_MAX_FILE ((uint64_t)4 << 30)

typedef enum cnb_ckpt_optimizer {
    CNB_CKPT_OPT_NONE = 0, /* parameters only (e.g. written by PyTorch) */
    CNB_CKPT_OPT_SGD,      /* momentum buffers */
    CNB_CKPT_OPT_ADAM      /* exp_avg and exp_avg_sq */
} cnb_ckpt_optimizer;

/* A checkpoint in host memory. params / opt_m / opt_v hold m->n_params floats each, in the flat
 * parameter block's order (opt_m: momentum or exp_avg; opt_v: exp_avg_sq). */
typedef struct cnb_checkpoint {
    float *params, *opt_m, *opt_v;
    cnb_ckpt_optimizer optimizer;
    int have_state;          /* 1: metadata holds a complete, well-formed position */
    cnb_train_state state;
    char model[64];          /* metadata "model" ("" when absent) */
    uint64_t seed;
} cnb_checkpoint;

/* Write m's parameters (and optimizer state / position when c says so) atomically. */
int cnb_checkpoint_write(const char *path, const cnb_model *m, const cnb_checkpoint *c, char *err,
                         size_t err_len);
/* Read and validate: header length against the file size, the JSON, dtypes, every tensor's
 * shape against m, offsets in range and not overlapping, no missing and no unexpected tensors,
 * optimizer state complete or absent, metadata strings well-formed. Messages name the file.
 * Allocates the arrays (free with cnb_checkpoint_free). 0 or -1. */
int cnb_checkpoint_read(const char *path, const cnb_model *m, cnb_checkpoint *c, char *err,
                        size_t err_len);
/* Every reader refuses a tensor holding NaN or +-Inf, naming the tensor, the index of its first
 * such value and the value; allow_nonfinite = 1 reads it anyway (fault studies). */
int cnb_checkpoint_read_ex(const char *path, const cnb_model *m, int allow_nonfinite,
                           cnb_checkpoint *c, char *err, size_t err_len);
/* The same from bytes in memory; `name` stands for the file in messages (used by the fuzzer). */
int cnb_checkpoint_parse(const void *data, size_t len, const char *name, const cnb_model *m,
                         cnb_checkpoint *c, char *err, size_t err_len);
void cnb_checkpoint_free(cnb_checkpoint *c);

/* Save a trainer's current parameters, optimizer state and position (optimizer is the run's
 * "sgd" or "adam"). */
int cnb_checkpoint_save_trainer(const char *path, cnb_trainer *t, const cnb_model *m,
                                const char *optimizer, uint64_t seed, char *err, size_t err_len);
/* Load into a trainer. resume = 0: parameters, plus the optimizer state when the file has it for
 * this optimizer (a fresh optimizer otherwise); the run starts at step 0. resume = 1: also the
 * position; the file must hold the optimizer state and a position. */
int cnb_checkpoint_load_trainer(const char *path, cnb_trainer *t, const cnb_model *m,
                                const char *optimizer, int resume, int allow_nonfinite, char *err,
                                size_t err_len);

/* A generic F32 safetensors file (used for logit dumps): n tensors with names, shapes (rank
 * dims each, rank <= 4) and data. */
int cnb_safetensors_write_f32(const char *path, int n, const char *const *names,
                              const int *ranks, const int64_t (*shapes)[4],
                              const float *const *data, char *err, size_t err_len);

#endif
