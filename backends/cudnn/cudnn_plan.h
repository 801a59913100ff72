/* cudnn_plan.h — the cudnn backend's host-side decisions in plain C (no cuDNN header), so a test
 * runs them without a device or the library: a layer shape to cuDNN descriptor parameters, the
 * per-shape algorithm cache (one cudnnFind per shape and direction), the rule that picks an
 * algorithm from cudnnFind's results under the strict-fp32 and deterministic options, names for
 * the algorithms, and the version rules for info(). */
#ifndef CNB_CUDNN_PLAN_H
#define CNB_CUDNN_PLAN_H

#include <stddef.h>

#include "cnb_abi.h"

/* ---- descriptor parameters ---- */

/* The four dimensions of each cuDNN descriptor of a convolution (NCHW, fully packed). */
typedef struct cnb_cudnn_conv_params {
    int x[4];              /* n, c, h, w */
    int w[4];              /* k, c, r, s (filter) */
    int y[4];              /* n, k, p, q */
    int bias[4];           /* 1, k, 1, 1 */
    int pad[2], stride[2], dilation[2];
} cnb_cudnn_conv_params;
void cnb_cudnn_conv_params_from(const cnb_conv_desc *d, cnb_cudnn_conv_params *out);

typedef enum cnb_cudnn_pool_kind {
    CNB_CUDNN_POOL_MAX = 0,               /* CUDNN_POOLING_MAX */
    CNB_CUDNN_POOL_MAX_DETERMINISTIC = 1, /* CUDNN_POOLING_MAX_DETERMINISTIC */
    CNB_CUDNN_POOL_AVG_INCLUDE_PAD = 2    /* CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING */
} cnb_cudnn_pool_kind;

typedef struct cnb_cudnn_pool_params {
    int kind;              /* cnb_cudnn_pool_kind */
    int window[2], pad[2], stride[2];
    int x[4], y[4];
} cnb_cudnn_pool_params;
void cnb_cudnn_pool_params_from(const cnb_pool_desc *d, int deterministic,
                                cnb_cudnn_pool_params *out);

/* An element-wise tensor of count values as the 4-D descriptors cuDNN takes: (1, 1, 1, count)
 * in chunks of at most CNB_CUDNN_CHUNK values (cuDNN dimensions are int). */
#define CNB_CUDNN_CHUNK ((size_t)1 << 30)

/* ---- algorithm choice ---- */

typedef enum cnb_cudnn_dir {
    CNB_CUDNN_FWD = 0,
    CNB_CUDNN_BWD_DATA = 1,
    CNB_CUDNN_BWD_FILTER = 2
} cnb_cudnn_dir;

/* One result of cudnnFind*Algorithm / cudnnGet*Algorithm_v7, reduced to what the choice uses. */
typedef struct cnb_cudnn_perf {
    int algo;
    int ok;             /* status == CUDNN_STATUS_SUCCESS */
    float time_ms;      /* measured by cudnnFind (-1 from the heuristics) */
    size_t memory;      /* workspace bytes */
    int deterministic;  /* determinism == CUDNN_DETERMINISTIC */
    int fma_math;       /* mathType == CUDNN_FMA_MATH: plain fp32 FMA, no tensor-core TF32 */
    int math_type;      /* the library's mathType value, set on the descriptor when used */
} cnb_cudnn_perf;

/* The first acceptable result, in cuDNN's order (fastest first): ok, within max_workspace,
 * deterministic when required, and FMA math unless TF32 is allowed. -1 if none. */
int cnb_cudnn_pick(const cnb_cudnn_perf *perf, int count, int require_deterministic,
                   int allow_tf32, size_t max_workspace);

/* "IMPLICIT_PRECOMP_GEMM", "ALGO_1", ...; "?" for a value this build does not know. */
const char *cnb_cudnn_algo_name(int dir, int algo);
/* 1 when the algorithm adds the products themselves (direct or GEMM-based), so integer data
 * gives exact integer results; 0 for FFT and Winograd, which transform the data. */
int cnb_cudnn_algo_sums_products(int dir, int algo);

/* ---- the per-shape cache ---- */

typedef struct cnb_cudnn_choice {
    int algo;           /* -1 until chosen */
    size_t workspace;
    int deterministic, fma_math;
    int math_type;      /* cudnnMathType_t to set on the convolution descriptor for this call */
    float time_ms;
    int from_heuristic; /* 1 when cudnnFind gave nothing acceptable and *_v7 was used */
} cnb_cudnn_choice;

/* Key: the convolution descriptor (p and q follow from the rest). */
typedef struct cnb_cudnn_conv_entry {
    cnb_conv_desc key;
    cnb_cudnn_choice choice[3]; /* by cnb_cudnn_dir */
    void *descs;                /* the backend's cuDNN descriptors for this shape */
} cnb_cudnn_conv_entry;

typedef struct cnb_cudnn_conv_cache {
    cnb_cudnn_conv_entry *entries;
    int count, cap;
} cnb_cudnn_conv_cache;

int cnb_cudnn_conv_key_equal(const cnb_conv_desc *a, const cnb_conv_desc *b);
/* The entry for d, or NULL. */
cnb_cudnn_conv_entry *cnb_cudnn_cache_find(cnb_cudnn_conv_cache *c, const cnb_conv_desc *d);
/* A new entry for d with nothing chosen and descs NULL; NULL when out of memory. Pointers to
 * earlier entries may move: use indices or find again after adding. */
cnb_cudnn_conv_entry *cnb_cudnn_cache_add(cnb_cudnn_conv_cache *c, const cnb_conv_desc *d);
/* Calls release(descs) for every entry that has some, then frees the cache. */
void cnb_cudnn_cache_free(cnb_cudnn_conv_cache *c, void (*release)(void *descs));

/* "n64 c1 28x28 k32 3x3 s1x1 p1x1" */
void cnb_cudnn_conv_key_format(const cnb_conv_desc *d, char *buf, size_t len);
/* "IMPLICIT_PRECOMP_GEMM (fma, deterministic, workspace 0 B, 0.012 ms)" or "not used yet". */
void cnb_cudnn_choice_format(int dir, const cnb_cudnn_choice *c, char *buf, size_t len);

/* ---- versions ---- */

/* cuDNN 9 and cuBLAS encode versions as 10000*major + 100*minor + patch. 0: equal;
 * 1: different but the same major (works, report it); 2: different majors (cannot work). */
int cnb_cudnn_version_compat(long compiled, long loaded);

#endif /* CNB_CUDNN_PLAN_H */
