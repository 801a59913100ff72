/* checks.h — per-kernel agreement checks (DESIGN.md §4): a check case is one kernel family at one
 * shape; its inputs are generated once from a seed, the naive reference runs them, and any other
 * backend's output is compared against the reference's with compare.h's statistics. */
#ifndef CNB_CHECKS_H
#define CNB_CHECKS_H

#include <stddef.h>
#include <stdint.h>

#include "cnb_abi.h"
#include "compare.h"
#include "model.h"

typedef enum cnb_check_family {
    CNB_CK_CORR2D = 0,
    CNB_CK_CONV_FWD,
    CNB_CK_CONV_BWD_DATA,
    CNB_CK_CONV_BWD_FILTER,
    CNB_CK_BIAS_FWD,
    CNB_CK_BIAS_BWD,
    CNB_CK_POOL_FWD,
    CNB_CK_POOL_BWD,
    CNB_CK_GEMM,
    CNB_CK_ACT_FWD,
    CNB_CK_ACT_BWD,
    CNB_CK_SOFTMAX_FWD,
    CNB_CK_SOFTMAX_BWD,
    CNB_CK_SGD,
    CNB_CK_ADAM,
    CNB_CK_MEMORY,
    CNB_CK_CONV_ACT_FWD, /* fused conv_bias_act_forward against conv_forward + activation */
    CNB_CK_POOL_ACT_BWD, /* fused pool_act_backward against pool_backward + activation */
    CNB_CK_CONV_BWD_FUSED, /* fused conv_backward against the filter, bias and data gradients */
    CNB_CK_CONV_POOL_FWD, /* fused conv_act_pool_forward against conv + activation + pooling */
    CNB_CK_POOL_CONV_BWD, /* fused pool_act_conv_backward against pooling + activation + conv */
    CNB_CK_TRAINING,   /* whole-training agreement; run by cmd_check.c, not by this file */
    CNB_CK_DISTRIBUTED,/* N ranks against one, under mpirun (check_dist.h) */
    CNB_CK_COUNT
} cnb_check_family;

/* "conv_bwd_data", ...; parse also accepts the ABI slot names ("conv_backward_data"). -1 if
 * unknown. */
const char *cnb_check_family_name(int f);
int cnb_check_family_parse(const char *name);

typedef enum cnb_check_status {
    CNB_CHECK_PASSED = 0,
    CNB_CHECK_FAILED,
    CNB_CHECK_SKIPPED,
    CNB_CHECK_MISTRUSTED
} cnb_check_status;
const char *cnb_check_status_name(int s);

/* One kernel family at one shape. */
typedef struct cnb_check_case {
    int family;
    char label[96];          /* where the shape comes from: "simplecnn.conv2", "edge.stride2" */
    cnb_conv_desc conv;      /* conv_*; corr2d uses h, w, r, s */
    cnb_pool_desc pool;      /* pool_* */
    int trans_a, trans_b, m, n, k; /* gemm: C (m, n) */
    float alpha, beta;
    int act;                 /* act_*, fused: cnb_activation (fused: or CNB_FUSED_ACT_NONE) */
    size_t count;            /* act_*, sgd, adam, memory: elements; bias_*: see n, c, hw */
    int bn, bc, bhw;         /* bias_*: (n, c, hw); softmax: bn = batch, bc = classes */
    int adam_step;           /* adam: the step number t (bias correction) */
    int has_bias;            /* conv_fwd, conv_act_fwd, conv_bwd (dbias wanted), conv_act_pool_fwd */
    int with_dx;             /* conv_bwd, pool_act_conv_bwd: dx wanted (not for a network's
                              * first layer) */
    int drop_a;              /* conv_act_pool_fwd, pool_act_conv_bwd: the fused call gets
                              * a = NULL, as train.c passes it when a is not kept */
} cnb_check_case;

/* 1 for the fused families (conv_bias_act_fwd, pool_act_bwd, conv_bwd, conv_act_pool_fwd,
 * pool_act_conv_bwd): their slots are
 * optional, and a backend may leave them, or a combination, to the harness's separate calls. */
int cnb_check_family_is_fused(int family);
/* 1 when api fills the slot case c calls (always, but for a fused family whose optional slot
 * the backend leaves empty: the fusion group, conv_backward, conv_act_pool_forward, pool_act_conv_backward). */
int cnb_check_case_slot_present(const cnb_check_case *c, const cnb_backend *api);

/* Shape text for output, e.g. "n8 c32 14x14 k64 3x3 st1 pad1". */
void cnb_check_case_shape(const cnb_check_case *c, char *buf, size_t len);
/* A key that is equal for two cases with the same family and shape (for de-duplication). */
void cnb_check_case_key(const cnb_check_case *c, char *buf, size_t len);
/* 1 when the exact-integer mode applies (the result is exact in float32 whatever the order of
 * summation): corr2d, convolution, bias, gemm, max pooling, average pooling over 2^k windows,
 * ReLU and PReLU (whose exact inputs include +0 and -0, the boundary of both). */
int cnb_check_case_supports_exact(const cnb_check_case *c);
/* How many of case c's last outputs are a max pooling's dx, which sends each window's gradient
 * to the cell its argmax picked: conv_act_pool_fwd checks its workspace that way. Only exact
 * mode compares them (cnb_check_judge): there the convolution is exact and a tie is the same
 * tie on both sides, while with rounding (random inputs, or a transform algorithm, which the
 * check judges as random) two nearly tied cells of a window may swap, and the gradient goes
 * to the other one — measured at one window of the edge shapes with oneDNN's separate
 * kernels as much as with its fused slot. 0 for every other case. */
size_t cnb_check_argmax_routed_count(const cnb_check_case *c);
/* 1 when the non-finite mode applies: activations, pooling, softmax-CE and the optimizers get
 * inputs with NaN, +Inf, -Inf, +0 and -0 planted at chosen places (cnb_abi.h's rule). */
int cnb_check_case_supports_nonfinite(const cnb_check_case *c);

/* Input modes of cnb_check_prepare. */
enum { CNB_CHECK_RANDOM = 0, CNB_CHECK_EXACT = 1, CNB_CHECK_NONFINITE = 2 };

/* Append the cases of every layer of m at batch n (conv, bias, pool, gemm of the three products
 * a linear layer uses, activations, softmax-CE, the model's optimizer over all parameters).
 * Returns the number appended (at most max). */
int cnb_check_cases_for_model(const cnb_model *m, int n, cnb_check_case *out, int max);
/* Edge shapes: batch 1, odd sizes, stride 2, padding, non-square images and kernels, 1x1, a
 * kernel as large as the image, overlapping pools, gemm with every transpose, ... */
int cnb_check_edge_cases(cnb_check_case *out, int max);

/* The inputs of one case (generated once) and the reference output. */
#define CNB_CHECK_MAX_BUFS 10
typedef struct cnb_check_data {
    const cnb_check_case *c;
    int exact;                        /* the mode: CNB_CHECK_RANDOM, _EXACT or _NONFINITE */
    int nbufs;
    int role[CNB_CHECK_MAX_BUFS];     /* internal: input / output / in-out / scratch / workspace */
    int is_int[CNB_CHECK_MAX_BUFS];
    size_t count[CNB_CHECK_MAX_BUFS]; /* elements (bytes for the workspace) */
    void *host[CNB_CHECK_MAX_BUFS];   /* initial values (inputs, in-outs) */
    size_t out_count;                 /* floats in the concatenated outputs */
    float *ref;                       /* the reference's outputs, out_count floats */
    double allowed_zero_share;        /* the mistrust limit for this case */
} cnb_check_data;

/* Generate the inputs (exact: the mode; CNB_CHECK_EXACT: small integers, CNB_CHECK_NONFINITE:
 * non-finite values and signed zeros among them) from seed. 0 or -1 (out of memory). */
int cnb_check_prepare(const cnb_check_case *c, int exact, uint64_t seed, cnb_check_data *d,
                      char *err, size_t err_len);
/* Run the case on a backend; out holds d->out_count floats. Returns the kernel's status (a
 * message in err when not CNB_OK). */
cnb_status cnb_check_run(const cnb_check_data *d, const cnb_backend *api, cnb_context *ctx,
                         float *out, char *err, size_t err_len);
/* The same, but a fused family runs as the separate kernels it stands for (the reference). */
cnb_status cnb_check_run_composed(const cnb_check_data *d, const cnb_backend *api,
                                  cnb_context *ctx, float *out, char *err, size_t err_len);
void cnb_check_data_free(cnb_check_data *d);

/* The verdict of one comparison. */
#define CNB_CHECK_LIST 5
typedef struct cnb_check_outcome {
    int status;
    cnb_compare_stats stats;
    double tol, point_tol;
    char reason[1536];
    int listed;                        /* first mismatches: index, expected, got */
    size_t bad_index[CNB_CHECK_LIST];
    float bad_expected[CNB_CHECK_LIST], bad_got[CNB_CHECK_LIST];
} cnb_check_outcome;

/* The fp32 tolerances of `cnnbench check` and of the backends' tests (harness/cli/cmd_check.c
 * gives the reasons): relative L2 1e-5, and point-wise 1e-5 where the reference is not near 0. */
#define CNB_CHECK_TOL_FP32 1e-5
#define CNB_CHECK_POINT_TOL 1e-5

/* Compare got with d->ref: PASSED when rel L2 <= tol (exact mode: every point equal), FAILED
 * otherwise, MISTRUSTED when the reference is mostly zeros. In the non-finite mode NaN positions
 * must match exactly (NaN against a number is a mismatch either way) and so must +-Inf; the
 * finite points are judged as in random mode. */
void cnb_check_judge(const cnb_check_data *d, const float *got, double tol, double point_tol,
                     cnb_check_outcome *o);

#endif
