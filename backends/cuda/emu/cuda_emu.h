/* cuda_emu.h — a CPU stand-in for the part of the CUDA runtime the cuda backend uses, so that
 * its kernels (the same .cu files, compiled as C++) and its host code (the same .c files) run
 * and are tested on a machine without a GPU. It builds only the test backend cuda_emu.
 *
 * Kernels run one block at a time; the block's threads are fibers (ucontext) that run until
 * __syncthreads() or their end, so shared memory (a `static` array here) and barriers behave
 * as on a device. What it checks on top of running the code:
 *  - a barrier reached by some threads of a block while others have finished (divergent
 *    __syncthreads), reported as a launch failure;
 *  - launch limits: at most 1024 threads per block, grid y and z at most 65535;
 *  - device allocations start right after an inaccessible page (an access before the start
 *    faults), are filled with NaN (reading memory nobody wrote shows up in results), and the
 *    bytes between the end and the next 64-byte boundary are NaN canaries checked at free;
 *  - copies must lie inside one allocation;
 *  - a host-to-device copy from pinned memory (cudaHostAlloc) is asynchronous, as on a device:
 *    it is held back, reading its source only when something that could see the result
 *    happens (a launch, another kind of copy, a memset, a stream or event synchronization),
 *    so a host write into a staging buffer whose copy has not been waited for corrupts the
 *    copy here too.
 * The thread order within a phase is forward by default; CNB_CUDA_EMU_ORDER=reverse runs the
 * fibers last-first, which exposes a read of shared memory that a missing barrier left
 * unordered. What it cannot check: races between blocks, warp-synchronous code (none here),
 * and the device's own rounding of expf/tanhf (the host libm's is used). */
#ifndef CNB_CUDA_EMU_H
#define CNB_CUDA_EMU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The values match the CUDA runtime's, so messages read the same. */
typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInsufficientDriver = 35,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorLaunchFailure = 719
} cudaError_t;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
};

typedef struct cnb_emu_stream *cudaStream_t;
/* Kernels and copies finish before their call returns, so an event is the host clock when it
 * was recorded: elapsed time between two is the time the work between them took. */
typedef struct cnb_emu_event *cudaEvent_t;
#define cudaStreamNonBlocking 0x01
#define cudaHostAllocDefault 0x00
#define cudaHostAllocMapped 0x02
#define cudaEventDisableTiming 0x02
#define CUDART_VERSION 13000

struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    int major, minor;
    int multiProcessorCount;
};

cudaError_t cudaDriverGetVersion(int *version);
cudaError_t cudaRuntimeGetVersion(int *version);
cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaMalloc(void **ptr, size_t bytes);
cudaError_t cudaFree(void *ptr);
cudaError_t cudaHostAlloc(void **ptr, size_t bytes, unsigned int flags);
cudaError_t cudaFreeHost(void *ptr);
cudaError_t cudaHostGetDevicePointer(void **device, void *host, unsigned int flags);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind,
                            cudaStream_t stream);
cudaError_t cudaMemsetAsync(void *ptr, int value, size_t bytes, cudaStream_t stream);
cudaError_t cudaEventCreate(cudaEvent_t *event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
/* cudaErrorInvalidResourceHandle when either event was never recorded, as the runtime. */
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaGetLastError(void);
const char *cudaGetErrorName(cudaError_t e);
const char *cudaGetErrorString(cudaError_t e);

/* ---- the kernel side ---- */
typedef struct cnb_emu_dim {
    unsigned x, y, z;
} cnb_emu_dim;
extern cnb_emu_dim cnb_emu_thread_idx, cnb_emu_block_idx, cnb_emu_block_dim, cnb_emu_grid_dim;

/* Runs body(arg) once per thread of every block; returns (and records for cudaGetLastError) a
 * configuration error, or records a launch failure that the next synchronizing call returns. */
cudaError_t cnb_emu_launch(cnb_emu_dim grid, cnb_emu_dim block, void (*body)(void *), void *arg);
void cnb_emu_syncthreads(void);

/* ---- test hooks, exported from the cuda_emu backend for tests (dlsym) ---- */
/* Leaves e as the runtime's last error, as a failed library call would. */
void cnb_emu_test_set_last_error(int e);
/* Counters since load: "stream_syncs", "event_syncs", "pageable_uploads" (host-to-device
 * copies from memory not from cudaHostAlloc), "pinned_uploads", "launches"; -1 if unknown. */
long cnb_emu_test_count(const char *what);

#ifdef __cplusplus
}

/* CUDA C++ spellings for the kernels compiled as host C++. */
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
#define threadIdx cnb_emu_thread_idx
#define blockIdx cnb_emu_block_idx
#define blockDim cnb_emu_block_dim
#define gridDim cnb_emu_grid_dim
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
/* One block runs at a time, so one static array per kernel is exactly a block's shared memory. */
#define __shared__ static
/* The asm clobber stops the compiler from keeping shared values in registers across the
 * barrier, which is where other fibers change them. */
static inline void cnb_emu_barrier() {
    cnb_emu_syncthreads();
    __asm__ __volatile__("" ::: "memory");
}
#define __syncthreads() cnb_emu_barrier()
/* Correctly rounded single operations, as the device intrinsics are (no contraction here). */
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
#endif /* __cplusplus */

#endif /* CNB_CUDA_EMU_H */
