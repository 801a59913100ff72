/* sgemm.cu — the cuda backend's SGEMM developed alone, in the llm.c dev/cuda manner: a CPU
 * reference, numbered GPU versions, validation against the reference, cudaEvent timing.
 *   version 1: naive, one thread per element of C
 *   version 2: 32x32 shared-memory tiles, one element per thread
 *   version 3: the backend's kernel (backends/cuda/tiled_gemm.cuh via cnbk_gemm): 64x64 tiles,
 *              k-steps of 16, a 4x4 micro-tile per thread, split-K when tiles are few
 *   version 4: cuBLAS (cublasSgemm, default math: no TF32), the bar to measure against
 * Row-major C (m, n) = A (m, k) B (k, n).
 * usage: ./sgemm [version] [m n k]      (default: all versions, 1024 1024 1024)
 * Runs only on a GPU; builds anywhere with the CUDA toolkit (dev/cuda/Makefile or CMake). */
#include <cublas_v2.h>
#include <string.h>

#include "common.h"
#include "../../backends/cuda/gemm.cu" /* cnbk_gemm, the backend's entry point */

static void sgemm_cpu(double *c, const float *a, const float *b, int m, int n, int k) {
    for (int i = 0; i < m; i++) {
        double *row = c + (size_t)i * n;
        for (int j = 0; j < n; j++) row[j] = 0.0;
        for (int p = 0; p < k; p++) {
            double av = a[(size_t)i * k + p];
            const float *brow = b + (size_t)p * n;
            for (int j = 0; j < n; j++) row[j] += av * brow[j];
        }
    }
}

__global__ void sgemm_kernel1(float *c, const float *a, const float *b, int m, int n, int k) {
    int row = blockIdx.y * blockDim.y + threadIdx.y, col = blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= m || col >= n) return;
    float sum = 0.0f;
    for (int p = 0; p < k; p++) sum = fmaf(a[row * k + p], b[p * n + col], sum);
    c[row * n + col] = sum;
}

#define T2 32
__global__ void sgemm_kernel2(float *c, const float *a, const float *b, int m, int n, int k) {
    __shared__ float as[T2][T2], bs[T2][T2 + 1];
    int tx = threadIdx.x, ty = threadIdx.y;
    int row = blockIdx.y * T2 + ty, col = blockIdx.x * T2 + tx;
    float sum = 0.0f;
    for (int k0 = 0; k0 < k; k0 += T2) {
        as[ty][tx] = (row < m && k0 + tx < k) ? a[row * k + k0 + tx] : 0.0f;
        bs[ty][tx] = (k0 + ty < k && col < n) ? b[(k0 + ty) * n + col] : 0.0f;
        __syncthreads();
        for (int p = 0; p < T2; p++) sum = fmaf(as[ty][p], bs[p][tx], sum);
        __syncthreads();
    }
    if (row < m && col < n) c[row * n + col] = sum;
}

int main(int argc, char **argv) {
    int version = argc > 1 ? atoi(argv[1]) : 0;
    int m = argc > 4 ? atoi(argv[2]) : 1024, n = argc > 4 ? atoi(argv[3]) : 1024,
        k = argc > 4 ? atoi(argv[4]) : 1024;
    cudaDeviceProp prop = device_props();
    printf("device: %s (sm_%d%d, %d SMs); C (%d, %d) = A (%d, %d) B (%d, %d)\n", prop.name,
           prop.major, prop.minor, prop.multiProcessorCount, m, n, m, k, k, n);

    float *a = make_random((size_t)m * k, 1), *b = make_random((size_t)k * n, 2);
    double *ref = (double *)malloc((size_t)m * n * sizeof(double));
    sgemm_cpu(ref, a, b, m, n, k);
    float *d_a = to_device(a, (size_t)m * k), *d_b = to_device(b, (size_t)k * n),
          *d_c = to_device(NULL, (size_t)m * n);

    cnb_gemm_plan plan = plan_gemm_or_exit(m, n, k, prop);
    float *d_partial = partial_buffer(plan.partial_floats);
    cublasHandle_t blas;
    if (cublasCreate(&blas) != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "cublasCreate failed\n");
        return EXIT_FAILURE;
    }
    cublasSetMathMode(blas, CUBLAS_DEFAULT_MATH);

    const double flops = 2.0 * m * n * k;
    auto launch = [&](int v) {
        switch (v) {
        case 1: {
            dim3 block(16, 16), grid(ceil_div(n, 16), ceil_div(m, 16));
            sgemm_kernel1<<<grid, block>>>(d_c, d_a, d_b, m, n, k);
            break;
        }
        case 2: {
            dim3 block(T2, T2), grid(ceil_div(n, T2), ceil_div(m, T2));
            sgemm_kernel2<<<grid, block>>>(d_c, d_a, d_b, m, n, k);
            break;
        }
        case 3:
            cudaCheck(cnbk_gemm(0, &plan, d_partial, 0, 0, 1.0f, d_a, k, d_b, n, 0.0f, d_c, n));
            break;
        case 4: {
            const float one = 1.0f, zero = 0.0f; /* row-major via the operand swap */
            cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &one, d_b, n, d_a, k, &zero, d_c,
                        n);
            break;
        }
        }
    };
    const char *const notes[5] = {"", "", "", plan.splits > 1 ? " (split-K)" : "", ""};
    int failed = run_versions("sgemm", 4, version, launch, d_c, ref, (size_t)m * n, 1e-5, flops,
                              notes);
    cublasDestroy(blas);
    free_device({d_a, d_b, d_c, d_partial});
    free(a), free(b), free(ref);
    return failed ? EXIT_FAILURE : 0;
}
