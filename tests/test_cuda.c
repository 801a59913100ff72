/* test_cuda.c — the cuda backend (hand-written CUDA kernels) against the naive oracle on a GPU:
 * every kernel at every layer shape of the five models and at odd shapes, strict fp32
 * (relative L2 < 1e-5), exact integers bit-identical, determinism, memory and error semantics
 * (the checks are in gpu_checks.inc, shared with test_cudnn.c and test_cuda_emu.c). Without a
 * built backend, a driver or a device, every test prints "[SKIP-ALL] cuda: <reason>" and is
 * skipped; test_gpu_device.c asserts that reason, and test_cuda_emu.c runs these kernels on the
 * CPU. */
#include <stdio.h>

#define GPU_SUITE cuda
#define GPU_LABEL "cuda"
#define GPU_BATCH_CAP 1000000
#define GPU_TIES_EXACT 1
#define GPU_INFO_KEYS                                                                        \
    {"backend", "device.name", "device.compute_capability", "device.multiprocessors",       \
     "cuda.driver", "cuda.runtime.compiled", "cuda.runtime.loaded", "cuda.architectures",   \
     "conv.algorithm", "math", "deterministic", NULL}

static void gpu_backend_path(char *buf, size_t len) { snprintf(buf, len, "cuda"); }

#include "gpu_checks.inc"
