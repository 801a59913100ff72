/* cudnn_plan.h — the cudnn backend's host-side decisions in plain C (no cuDNN header), so a test
 * runs them without a device or the library: a layer shape to cuDNN descriptor parameters, which
 * pooling mode goes to cuDNN, the per-shape algorithm cache, the rule that picks an algorithm
 * (cudnnFind, or the *_v7 heuristics in deterministic mode and when Find fails or offers nothing
 * acceptable) under the strict-fp32 and deterministic options, names for the algorithms, and
 * the version rules checked by create and reported by info(). */
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

/* Pooling routes by mode. Average pooling goes to cuDNN (CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_
 * PADDING, the ABI's count_include_pad). Max pooling does not: the ABI (cnb_abi.h, CNB_POOL_MAX)
 * fixes the tie rule "the first maximum in row-major window order wins", cuDNN documents no tie
 * rule for its max modes, and its backward rebuilds the argmax from x and y. Max pooling runs on
 * backends/cuda's kernels, which record the first maximum in the argmax workspace in the forward
 * and read it back in the backward (PyTorch's CUDA max_pool2d likewise uses its own kernels with
 * indices rather than cuDNN). 1 when mode goes to cuDNN. */
int cnb_cudnn_pool_uses_cudnn(int mode);

/* cuDNN's parameters of an average pooling shape. */
typedef struct cnb_cudnn_pool_params {
    int window[2], pad[2], stride[2];
    int x[4], y[4];
} cnb_cudnn_pool_params;
void cnb_cudnn_pool_params_from(const cnb_pool_desc *d, cnb_cudnn_pool_params *out);

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

/* cnb_config.direct_conv: marks every result of direction dir whose algorithm transforms the
 * data (FFT, Winograd) as not ok, so that cnb_cudnn_pick passes over it. */
void cnb_cudnn_keep_sums_only(cnb_cudnn_perf *perf, int count, int dir);

/* "IMPLICIT_PRECOMP_GEMM", "ALGO_1", ...; "?" for a value this build does not know. */
const char *cnb_cudnn_algo_name(int dir, int algo);
/* 1 when the algorithm adds the products themselves (direct or GEMM-based), so integer data
 * gives exact integer results; 0 for FFT and Winograd, which transform the data. */
int cnb_cudnn_algo_sums_products(int dir, int algo);

/* ---- the per-shape cache ---- */

/* Where a direction's algorithm came from. */
typedef enum cnb_cudnn_source {
    CNB_CUDNN_FROM_FIND = 0,          /* cudnnFind*Algorithm, fastest measured acceptable */
    CNB_CUDNN_FROM_HEURISTIC_DET = 1, /* deterministic mode: *_v7 only, never cudnnFind */
    CNB_CUDNN_FROM_HEURISTIC_NONE = 2, /* cudnnFind offered nothing acceptable */
    CNB_CUDNN_FROM_HEURISTIC_ERROR = 3 /* cudnnFind failed */
} cnb_cudnn_source;

#define CNB_CUDNN_MAX_ALGOS 16

typedef struct cnb_cudnn_choice {
    int algo;           /* -1 until chosen (or when failed) */
    size_t workspace;
    int deterministic, fma_math;
    int math_type;      /* cudnnMathType_t to set on the convolution descriptor for this call */
    float time_ms;      /* measured by cudnnFind; -1 from the heuristics */
    int source;         /* cnb_cudnn_source */
    /* 1 when neither cudnnFind nor the heuristics offered an acceptable algorithm: cached, so
     * an unsupported shape fails at once on every later call with failure as the message
     * (instead of rerunning cudnnFind). */
    int failed;
    char failure[512]; /* fits the backend's last-error buffer */
    /* The acceptable candidates of the list the choice came from, in its order (the chosen one
     * at index rank): when the chosen algorithm fails to run, the next one takes its place
     * (cnb_cudnn_run_ranked), as PyTorch does. */
    cnb_cudnn_perf ranked[CNB_CUDNN_MAX_ALGOS];
    int ranked_count, rank;
    int fallbacks; /* how many chosen algorithms failed to run and gave way */
    int no_fused_bias; /* forward: cuDNN refused the fused bias here; it is added apart */
} cnb_cudnn_choice;

/* 1 when the forward adds its bias inside cudnnConvolutionBiasActivationForward: there is a
 * bias, the fusion was not refused before, and the algorithm is IMPLICIT_PRECOMP_GEMM, the
 * only one cuDNN documents for the identity activation (any other runs the convolution, then
 * cudnnAddTensor). */
int cnb_cudnn_fuse_bias(int fwd_algo, int have_bias, int refused);

/* One algorithm query for cnb_cudnn_choose: heuristic 0 is cudnnFind*Algorithm, 1 the
 * cudnnGet*Algorithm_v7 heuristics. Fills at most max results into perf and their number into
 * *count and returns CNB_OK, or returns the failure's status with a one-line message in err. */
typedef cnb_status (*cnb_cudnn_query_fn)(void *user, int heuristic, cnb_cudnn_perf *perf,
                                         int max, int *count, char *err, size_t err_len);


/* The algorithm rule for one shape and direction, filling *c:
 *  - deterministic: the *_v7 heuristics only, taking the first acceptable (deterministic)
 *    entry in their fixed order. cudnnFind ranks by measured time, so timing noise from run to
 *    run could pick a different deterministic algorithm and different bits;
 *  - otherwise cudnnFind, then the heuristics when Find fails (any error) or offers nothing
 *    acceptable.
 * Returns CNB_OK with c chosen; CNB_ERR_UNSUPPORTED with c->failed set and the reason in
 * c->failure and err when nothing acceptable was offered (the heuristics answered but every
 * entry was refused, or they answered CNB_ERR_UNSUPPORTED): the caller keeps c so the shape is
 * not searched again; any other status from the heuristics query as is, with c untouched (not
 * cached: it may be transient). what names the call and shape in messages. */
cnb_status cnb_cudnn_choose(cnb_cudnn_choice *c, cnb_cudnn_query_fn query, void *user,
                            int deterministic, int allow_tf32, size_t max_workspace,
                            const char *what, char *err, size_t err_len);

/* Runs one call with c's current algorithm: CNB_OK, or a status with its message in err. */
typedef cnb_status (*cnb_cudnn_run_fn)(void *user, const cnb_cudnn_choice *c, char *err,
                                       size_t err_len);
/* 1 when a failed run is worth retrying with the next candidate: the library refused or
 * failed this algorithm (unsupported here, execution failed, its workspace not allocated);
 * 0 for a caller's mistake (invalid argument) or a bug. */
int cnb_cudnn_may_fall_back(cnb_status st);
/* Runs c's algorithm; when it fails in a way cnb_cudnn_may_fall_back accepts, moves c to the
 * next ranked candidate (kept: later calls start there) and runs again. When every candidate
 * has failed, c becomes a cached failure naming the last error and CNB_ERR_UNSUPPORTED is
 * returned; any other failure is returned as is. err gets the message of a failure. */
cnb_status cnb_cudnn_run_ranked(cnb_cudnn_choice *c, int dir, cnb_cudnn_run_fn run, void *user,
                                const char *what, char *err, size_t err_len);

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
/* "IMPLICIT_PRECOMP_GEMM (fma, deterministic, workspace 0 B, 0.012 ms)", with ", from
 * heuristics (...)" when *_v7 chose it; "not used yet"; or "none acceptable (cached failure)". */
void cnb_cudnn_choice_format(int dir, const cnb_cudnn_choice *c, char *buf, size_t len);

/* ---- versions ---- */

/* cuDNN 9 and cuBLAS encode versions as 10000*major + 100*minor + patch. NVIDIA's rule: an
 * application built against x.z is not guaranteed to work with an older x.y (y < z), while a
 * newer minor of the same major, or another patch level, is backward compatible. */
typedef enum cnb_cudnn_version_rule {
    CNB_VERSION_EQUAL = 0,  /* the same version */
    CNB_VERSION_COMPAT = 1, /* same major, loaded minor newer or only the patch differs: works */
    CNB_VERSION_REFUSE = 2  /* different major, or loaded major.minor older than compiled */
} cnb_cudnn_version_rule;
int cnb_cudnn_version_compat(long compiled, long loaded);
/* One sentence for info() or create's error: "cuDNN compiled 9.19.0, loaded 9.20.1: newer
 * minor release of the same major, backward compatible" and the like; lib names the library
 * ("cuDNN", "cuBLAS"). For CNB_VERSION_REFUSE it names both versions and the remedy. */
void cnb_cudnn_version_explain(const char *lib, long compiled, long loaded, char *buf,
                               size_t len);

/* CUDA runtime versions (1000*major + 10*minor): the runtime cuDNN was built with
 * (cudnnGetCudartVersion) must have the major of the one this backend was compiled with
 * (CUDART_VERSION). 1 when the majors agree. */
int cnb_cudnn_cudart_compat(long compiled, long cudnn_cudart);

#endif /* CNB_CUDNN_PLAN_H */
