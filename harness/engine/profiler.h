/* profiler.h — a profiling proxy: a cnb_backend table whose slots call a real backend's slot and
 * add the time it took to a per-kernel-family accumulator. The trainer is handed the proxy table
 * like any backend, so per-kernel timing needs no hook in the training loop. How a call is
 * timed depends on the backend:
 *  - with the optional timer slots (GPU backends): a start/stop timer pair recorded around the
 *    call in the device's stream, nothing waited for; the pairs are read back at the end of each
 *    training step (the optimizer call) and at cnb_profiler_flush;
 *  - without them (CPU backends, whose calls have finished when they return), or while a
 *    planted slowdown is active: synchronize after the call and read the host clock.
 *
 * The proxy also carries the test faults that prove the checks and the regression gate can fail
 * (never set in normal use; each is announced on stderr and recorded in results):
 *   CNB_TEST_SLOWDOWN_CONV=F     the convolution slots (fused one included) take F times as long
 *   CNB_TEST_PERTURB=SLOT        that slot's float output gets one element changed by +1%
 *   CNB_TEST_FAULT_BACKEND=NAME  which backend the faults apply to (default: blas)
 */
#ifndef CNB_PROFILER_H
#define CNB_PROFILER_H

#include <stddef.h>

#include "cnb_abi.h"

typedef enum cnb_kfamily {
    CNB_KF_CONV_FWD = 0,
    CNB_KF_CONV_BWD_DATA,
    CNB_KF_CONV_BWD_FILTER,
    CNB_KF_BIAS_FWD,
    CNB_KF_BIAS_BWD,
    CNB_KF_POOL_FWD,
    CNB_KF_POOL_BWD,
    CNB_KF_GEMM_FWD,   /* the linear layers' forward product: gemm with (trans_a, trans_b) = (0, 1) */
    CNB_KF_GEMM_BWD,   /* every other gemm: the weight and input gradients of linear layers */
    CNB_KF_ACT_FWD,
    CNB_KF_ACT_BWD,
    CNB_KF_SOFTMAX_FWD,
    CNB_KF_SOFTMAX_BWD,
    CNB_KF_OPTIMIZER,
    CNB_KF_MEMORY,     /* upload, download, alloc, free, synchronize */
    CNB_KF_OTHER,      /* corr2d, pool_workspace_size */
    CNB_KF_CONV_ACT_FWD, /* fused: convolution + bias + activation forward */
    CNB_KF_POOL_ACT_BWD, /* fused: pooling backward with the activation's backward folded in */
    CNB_KF_CONV_BWD,     /* fused: a convolution's data, filter and bias gradients in one call */
    CNB_KF_CONV_POOL_FWD, /* fused: convolution + bias + activation + pooling forward */
    CNB_KF_POOL_CONV_BWD, /* fused: pooling + activation + convolution backward */
    CNB_KF_COUNT
} cnb_kfamily;

/* Short stable names ("conv_fwd", ...) used in output and JSON, and the pass each family belongs
 * to ("forward", "backward", "update", "memory", "other"). */
const char *cnb_kfamily_name(int f);
const char *cnb_kfamily_direction(int f);

typedef struct cnb_kernel_times {
    double seconds[CNB_KF_COUNT];
    long calls[CNB_KF_COUNT];
} cnb_kernel_times;

/* The proxy's state; its address is the cnb_context * the proxy table's slots receive. */
typedef struct cnb_profiler {
    cnb_backend table;             /* hand &table to the trainer, with (cnb_context *)this */
    const cnb_backend *real;
    cnb_context *real_ctx;
    int timing;                    /* 1: time every call and accumulate */
    /* Device timers (timing with a backend that has them): pair i is timers[2i] (start) and
     * timers[2i+1] (stop), created once and grown as needed, the family of its call in
     * timer_family[i]; timers_used pairs are recorded and not yet read back. */
    int use_timers;
    cnb_timer **timers;
    int *timer_family;
    int timer_pairs, timers_used;
    long timer_errors;             /* timer calls that failed: those calls counted, not timed */
    /* Calls since the last optimizer step. At each optimizer step they are folded into `train`,
     * so after a training run followed by an evaluation, `pending` holds the evaluation's calls
     * (every training step ends with an optimizer step; evaluation has none). */
    cnb_kernel_times pending, train;
    /* test faults */
    double slowdown_conv;          /* > 1: convolution slots take this many times as long */
    char perturb_slot[64];         /* "" or an ABI slot name whose output is perturbed */
    long perturbed_calls;
} cnb_profiler;

/* Build a proxy around (real, real_ctx). timing = 0 gives a pass-through that only applies the
 * test faults. Reads the CNB_TEST_* variables when the backend is the fault backend. With timing
 * and a backend that has timers, creates the timer pool: cnb_profiler_release frees it. */
void cnb_profiler_init(cnb_profiler *p, const cnb_backend *real, cnb_context *real_ctx,
                       int timing);
/* Destroys the timers (before the real context goes); the proxy is unusable after. */
void cnb_profiler_release(cnb_profiler *p);
/* Reads back the timer pairs recorded since the last optimizer step into `pending` (waiting for
 * the device); call before reading `pending` after a run (the evaluation's calls). A no-op with
 * the host clock, which fills `pending` as it goes. */
void cnb_profiler_flush(cnb_profiler *p);
/* How the breakdown is timed: "device timers (cnb timer slots)" or "host clock after
 * synchronize". */
const char *cnb_profiler_timing_method(const cnb_profiler *p);
/* The table and context to hand to code that wants a backend. */
static inline const cnb_backend *cnb_profiler_api(cnb_profiler *p) { return &p->table; }
static inline cnb_context *cnb_profiler_ctx(cnb_profiler *p) { return (cnb_context *)(void *)p; }
/* Zeroes pending and train, dropping timer pairs not yet read back. */
void cnb_profiler_reset(cnb_profiler *p);
/* 1 when a test fault is active for this proxy. */
int cnb_profiler_has_fault(const cnb_profiler *p);

/* Test faults from the environment for a backend of this name: slowdown factor (1 = none) and
 * the perturbed slot ("" = none). Returns 1 when any applies. */
int cnb_test_faults(const char *backend_name, double *slowdown_conv, char *perturb_slot,
                    size_t slot_len);
/* One line describing the active faults for a backend ("" when none), e.g. for a reproduction
 * command's environment prefix: "CNB_TEST_PERTURB=conv_backward_data CNB_TEST_FAULT_BACKEND=blas". */
void cnb_test_faults_env(const char *backend_name, char *out, size_t out_len);

#endif
