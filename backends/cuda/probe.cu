/* probe.cu — an empty kernel launched once by create(), so a build whose GPU code does not fit
 * the device (no sm_XX machine code and no PTX the driver can compile) fails there, with a
 * message naming both, instead of at the first real kernel. */
#include "cuda_kernels.h"

namespace {
__global__ void probe_kernel(int *unused) { (void)unused; }
} // namespace

extern "C" cudaError_t cnbk_probe(cudaStream_t s) {
    cudaError_t e = cnb_launch(probe_kernel, dim3(1), dim3(1), s, (int *)0);
    if (e != cudaSuccess) return e;
    return cudaStreamSynchronize(s);
}
