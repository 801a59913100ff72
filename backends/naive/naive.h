/* naive.h — private to the naive backend: the context, its scratch, and the kernel prototypes
 * that backend.c puts into the function table (cpu_common.h declares them). */
#ifndef CNB_NAIVE_H
#define CNB_NAIVE_H

#include <stddef.h>
#include <stdint.h>

#include "cnb_abi.h"
#include "cnb_abi_check.h"
#include "cpu_common.h"

struct cnb_context {
    char err[CPU_ERR_LEN]; /* message of the last failed call, "" if none failed yet */
    /* Reusable double-precision scratch (accumulator rows, dx planes); grown on demand and kept,
     * so a training step does not allocate once it has warmed up. */
    double *scratch;
    size_t scratch_count;
};
CPU_CONTEXT_BEGINS_WITH_ERR;

/* At least count doubles of scratch in *out (contents undefined), or CNB_ERR_OUT_OF_MEMORY. */
cnb_status naive_scratch(cnb_context *ctx, size_t count, double **out);

CPU_DECLARE_KERNELS(naive);

#endif
