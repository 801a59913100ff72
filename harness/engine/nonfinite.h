/* nonfinite.h — naming the first NaN or +-Inf in a model's flat parameter block, for the
 * divergence check of the training loop (cnb_abi.h states how kernels carry non-finite values). */
#ifndef CNB_NONFINITE_H
#define CNB_NONFINITE_H

#include <stddef.h>

#include "model.h"

/* Writes e.g. "parameter conv1.weight[17] became NaN" into buf for the first non-finite value of
 * params (m->n_params floats, host memory, layer order as in checkpoints). When every value is
 * finite (the block's sum overflowed), names the largest magnitude instead. Returns 1 when a
 * non-finite value was found, else 0. */
int cnb_describe_nonfinite(const cnb_model *m, const float *params, float sum, char *buf,
                           size_t len);

#endif
