/* cuda_compat.h — the one place that decides what "CUDA" is for a file of the GPU backends:
 * the real runtime (nvcc for .cu files, cuda_runtime_api.h for .c files), or the CPU emulator
 * when CNB_CUDA_EMU is defined (the cuda_emu test backend). Also cnb_launch(), the kernel
 * launch both spellings share, since <<<...>>> is not C++. */
#ifndef CNB_CUDA_COMPAT_H
#define CNB_CUDA_COMPAT_H

#if defined(CNB_CUDA_EMU)
#include "emu/cuda_emu.h"
#elif defined(__CUDACC__)
#include <cuda_runtime.h>
#else
#include <cuda_runtime_api.h>
#endif

#ifdef __cplusplus
/* Launches kernel on (grid, block) in stream s and returns the launch's own error (bad
 * configuration, no device); errors while the kernel runs surface at the next synchronizing
 * call, as with any CUDA launch. The runtime's last error is cleared first: a non-sticky error
 * that a cuDNN or cuBLAS call left set would otherwise come back from the launch's
 * cudaGetLastError and be blamed on this kernel. */
#if defined(CNB_CUDA_EMU)
template <typename F>
static void cnb_emu_trampoline(void *f) {
    (*static_cast<F *>(f))();
}
template <typename... KArgs, typename... Args>
static inline cudaError_t cnb_launch(void (*kernel)(KArgs...), dim3 grid, dim3 block,
                                     cudaStream_t s, Args... args) {
    (void)s;
    auto body = [=]() { kernel(args...); };
    (void)cudaGetLastError(); /* the same steps as the real launch below */
    cnb_emu_launch(cnb_emu_dim{grid.x, grid.y, grid.z}, cnb_emu_dim{block.x, block.y, block.z},
                   &cnb_emu_trampoline<decltype(body)>, &body);
    return cudaGetLastError();
}
#else
template <typename... KArgs, typename... Args>
static inline cudaError_t cnb_launch(void (*kernel)(KArgs...), dim3 grid, dim3 block,
                                     cudaStream_t s, Args... args) {
    (void)cudaGetLastError();
    kernel<<<grid, block, 0, s>>>(args...);
    return cudaGetLastError();
}
#endif
#endif /* __cplusplus */

#endif /* CNB_CUDA_COMPAT_H */
