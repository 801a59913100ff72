/* check_dist.h — the "distributed" family of `cnnbench check`, run under mpirun: N ranks against
 * one process. (1) Each weight-gradient kernel of a model (conv_backward_filter, bias_backward,
 * the linear layers' weight-gradient gemm) run on each rank's slice of a batch and summed over
 * the ranks must equal the same backend's result on the whole batch: bit for bit on exact-integer inputs (every
 * partial sum is an exact float32 integer, so the order in which slices and ranks are added
 * cannot matter), within the fp32 tolerance on random inputs. (2) The first steps of training
 * with the global batch split over N ranks against one process with the same batch: losses and
 * final weights within the fp32 tolerance, and the same parameters on every rank. */
#ifndef CNB_CHECK_DIST_H
#define CNB_CHECK_DIST_H

#include <cjson/cJSON.h>

#include "checks.h"
#include "data.h"
#include "distributed.h"
#include "model.h"

/* fp32 tolerance for N ranks against one (relative L2), and its reason: the same kernels run on
 * the same numbers; only the order in which the batch's gradient terms are added changes (each
 * rank sums its slice, then the slices are summed), as between two fp32 backends (1e-5 in
 * cmd_check.c). Measured: 1.1e-7 on the weights after 60 steps of network on 2 ranks. */
#define CNB_TOL_DIST 1e-5

/* Receives each outcome: family "distributed", a label, the shape text, the mode. */
typedef void (*cnb_dist_check_emit)(void *user, const char *label, const char *shape,
                                    const char *mode, const cnb_check_outcome *o,
                                    const char *note, cJSON *extra);

/* Collective over d. batch: the global batch of the gradient checks. */
void cnb_dist_check_gradients(cnb_dist *d, const cnb_backend *api, cnb_context *ctx,
                              const cnb_model *m, int batch, uint64_t seed, int modes_exact,
                              int modes_random, cnb_dist_check_emit emit, void *user);
void cnb_dist_check_training(cnb_dist *d, const cnb_backend *api, cnb_context *ctx,
                             const cnb_model *m, const cnb_dataset *train,
                             const cnb_dataset *test, int steps, uint64_t seed,
                             cnb_dist_check_emit emit, void *user);

#endif
