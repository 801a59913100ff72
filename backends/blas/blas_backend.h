/* blas_backend.h — private to the OpenBLAS backend: the context, reusable scratch buffers, the
 * error helper and argument checks, and the per-family kernel prototypes that backend.c puts into
 * the function table. */
#ifndef CNB_BLAS_BACKEND_H
#define CNB_BLAS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "cnb_abi.h"
#include "cnb_abi_check.h"
#include "cpu_common.h"

/* Scratch slots. Each is grown only when a larger request arrives and kept until destroy:
 * a page fault costs ~10 us per 4 KiB page on this machine (DESIGN.md §5), so a training step
 * must not allocate once it has warmed up. */
enum blas_scratch_slot {
    BLAS_SCRATCH_COL = 0,   /* im2col columns / their gradient */
    BLAS_SCRATCH_GEMM = 1,  /* a GEMM result or operand in a layout other than NCHW */
    BLAS_SCRATCH_DWEIGHT = 2, /* a thread's partial sum of a filter gradient */
    BLAS_SCRATCH_COUNT
};

/* How convolutions arrange their sgemms (conv.c). AUTO picks per pass; the environment variable
 * CNB_BLAS_CONV=batched|per-image|auto, read by create(), forces one for testing and measuring. */
enum blas_conv_algo {
    BLAS_CONV_AUTO = 0,
    BLAS_CONV_BATCHED = 1,   /* one sgemm per chunk of images, reordered to / from NCHW */
    BLAS_CONV_PER_IMAGE = 2  /* one sgemm per image, straight into / out of NCHW */
};

/* One thread's scratch buffers: each thread of the team has its own set. */
typedef struct {
    float *buf[BLAS_SCRATCH_COUNT];
    size_t cap[BLAS_SCRATCH_COUNT]; /* in floats */
} blas_scratch_set;

/* The most threads a context runs (the size of OpenBLAS's own MAX_THREADS in Debian's build). */
#define BLAS_MAX_THREADS 64

struct blas_team;

struct cnb_context {
    char err[CPU_ERR_LEN]; /* message of the last failed call, "" if none failed yet */
    int threads;        /* threads this context's kernels run on (its team, the caller's included) */
    int conv_algo;      /* enum blas_conv_algo */
    struct blas_team *team;     /* team.c */
    blas_scratch_set *scratch;  /* one set per thread of the team */
};

CPU_CONTEXT_BEGINS_WITH_ERR;

/* At least count floats of thread `thread`'s scratch slot `slot` in *out (contents undefined),
 * or CNB_ERR_OUT_OF_MEMORY with a message. Called by the caller's thread only, before it hands
 * work to the team: a worker never allocates. */
cnb_status blas_scratch(cnb_context *ctx, int thread, int slot, size_t count, float **out);

/* OpenBLAS's thread count is process-wide; the backend's own team does the threading, so every
 * entry point that reaches sgemm first makes sure OpenBLAS is still single-threaded (something
 * else in the process may have changed it). Caller's thread only. */
void blas_keep_openblas_serial(void);

/* team.c: the context's threads. fn(arg, thread, lo, hi) does items [lo, hi); thread 0 is the
 * caller's. */
typedef void (*blas_range_fn)(void *arg, int thread, size_t lo, size_t hi);
/* Start size-1 workers (size <= 1: none); on failure the context has no team threads and the
 * message is in ctx->err. */
cnb_status blas_team_start(cnb_context *ctx, int size);
void blas_team_stop(cnb_context *ctx);
/* How many parts to split `items` into: one per thread, but none smaller than `grain` items. */
int blas_team_parts(const cnb_context *ctx, size_t items, size_t grain);
/* Split [0, items) into `parts` contiguous ranges (from blas_team_parts), run them on the team
 * and return when all are done. Part p covers [items*p/parts, items*(p+1)/parts). */
void blas_parallel(cnb_context *ctx, size_t items, int parts, blas_range_fn fn, void *arg);

/* The product of the given non-negative dimensions, or 0 with a message in ctx when it does not
 * fit in an int (OpenBLAS's index type here, and every conv index below is an int product). */
int blas_dims_fit(cnb_context *ctx, const char *fn, const char *what, int64_t a, int64_t b,
                  int64_t c, int64_t d);

/* im2col.c: one image's columns. col is (c*r*s, p*q) with row stride ld (>= p*q), x is
 * (c, h, w); out-of-image taps are 0. col2im adds each column entry back to its input pixel
 * (and may clobber col, which is always scratch). */
void blas_im2col(float *col, size_t ld, const float *x, const cnb_conv_desc *d);
void blas_col2im(float *dx, float *col, size_t ld, const cnb_conv_desc *d);

CPU_DECLARE_KERNELS(blas);

#endif
