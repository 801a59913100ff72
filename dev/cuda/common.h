/* common.h — what the dev/cuda kernel benches share, in the llm.c dev/cuda manner: an error
 * check that names file and line, random inputs, validation of a GPU result against the CPU
 * reference (printing the first mismatches), and a cudaEvent timer. Each bench is one .cu file:
 * a CPU reference, numbered kernel versions chosen on the command line, a check, a timing. */
#ifndef CNB_DEV_COMMON_H
#define CNB_DEV_COMMON_H

#include <cuda_runtime.h>
#include <initializer_list>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../backends/cuda/cuda_plan.h" /* cnb_plan_gemm */

#define cudaCheck(call) cuda_check_((call), #call, __FILE__, __LINE__)
static inline void cuda_check_(cudaError_t e, const char *what, const char *file, int line) {
    if (e != cudaSuccess) {
        fprintf(stderr, "%s:%d: %s: %s (%s)\n", file, line, what, cudaGetErrorString(e),
                cudaGetErrorName(e));
        exit(EXIT_FAILURE);
    }
}

static inline int ceil_div(long long a, long long b) { return (int)((a + b - 1) / b); }

/* Uniform in [-1, 1) from a fixed xorshift stream, so every run sees the same data. */
static inline float *make_random(size_t n, uint32_t seed) {
    float *p = (float *)malloc(n * sizeof(float));
    uint32_t s = seed * 2654435761u + 1u;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        p[i] = (float)(s >> 8) / (float)(1u << 23) - 1.0f;
    }
    return p;
}

static inline float *to_device(const float *host, size_t n) {
    float *d = NULL;
    cudaCheck(cudaMalloc(&d, n * sizeof(float)));
    if (host) cudaCheck(cudaMemcpy(d, host, n * sizeof(float), cudaMemcpyHostToDevice));
    return d;
}

/* The properties of device 0, the one the benches run on. */
static inline cudaDeviceProp device_props(void) {
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, 0));
    return prop;
}

/* Frees the bench's device buffers; NULL ones (a plan without split-K) are skipped. */
static inline void free_device(std::initializer_list<float *> bufs) {
    for (float *b : bufs)
        if (b) cudaCheck(cudaFree(b));
}

/* Compares the device result with the reference; prints the first mismatches and the relative
 * L2 error; returns 1 when it is within tol. */
static inline int validate_result(const float *device, const double *ref, size_t n,
                                  const char *name, double tol) {
    float *got = (float *)malloc(n * sizeof(float));
    cudaCheck(cudaMemcpy(got, device, n * sizeof(float), cudaMemcpyDeviceToHost));
    double num = 0, den = 0;
    int shown = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
        if (fabs(d) > 1e-4 * fmax(1.0, fabs(ref[i])) && shown < 5) {
            printf("  %s[%zu]: expected %.7g got %.7g\n", name, i, ref[i], (double)got[i]);
            shown++;
        }
    }
    double rel = den > 0 ? sqrt(num / den) : sqrt(num);
    printf("%s: relative L2 error %.3g (tolerance %.1g) %s\n", name, rel, tol,
           rel <= tol ? "OK" : "FAILED");
    free(got);
    return rel <= tol;
}

/* Milliseconds per call of launch(), averaged over repeats after a warm-up, with cudaEvents. */
template <class F>
static float benchmark_kernel(int repeats, F launch) {
    launch(); /* warm-up: module load, caches */
    cudaCheck(cudaGetLastError());
    cudaEvent_t start, stop;
    cudaCheck(cudaEventCreate(&start));
    cudaCheck(cudaEventCreate(&stop));
    cudaCheck(cudaEventRecord(start));
    for (int i = 0; i < repeats; i++) launch();
    cudaCheck(cudaEventRecord(stop));
    cudaCheck(cudaEventSynchronize(stop));
    cudaCheck(cudaGetLastError());
    float ms = 0;
    cudaCheck(cudaEventElapsedTime(&ms, start, stop));
    cudaCheck(cudaEventDestroy(start));
    cudaCheck(cudaEventDestroy(stop));
    return ms / repeats;
}

/* One version of a bench: launched once, checked against ref (relative L2 within tol), then
 * timed over 20 calls and reported as "version v: ms, GFLOP/s" and note. 1 when the check
 * failed. */
template <class F>
static int check_and_time(const char *bench, int v, F launch, const float *d_out,
                          const double *ref, size_t n, double tol, double flops,
                          const char *note = "") {
    launch();
    cudaCheck(cudaDeviceSynchronize());
    char name[64];
    snprintf(name, sizeof name, "%s version %d", bench, v);
    int failed = !validate_result(d_out, ref, n, name, tol);
    float ms = benchmark_kernel(20, launch);
    printf("version %d: %.4f ms, %.1f GFLOP/s%s\n", v, ms, flops / (ms * 1e6), note);
    return failed;
}

/* The backend's GEMM plan for (m, n, k) on this device; a plan that cannot be made ends the
 * bench with the planner's message. */
static inline cnb_gemm_plan plan_gemm_or_exit(int m, int n, int k, const cudaDeviceProp &prop) {
    char err[256];
    cnb_gemm_plan plan;
    if (cnb_plan_gemm(&plan, m, n, k, prop.multiProcessorCount, err, sizeof err) != CNB_OK) {
        fprintf(stderr, "plan: %s\n", err);
        exit(EXIT_FAILURE);
    }
    return plan;
}

/* The backend's implicit-GEMM geometry of convolution d into *g and the plan of one pass of it,
 * whose GEMM dimensions mnk gives; the GEMM depth goes to *k. */
static inline cnb_gemm_plan conv_pass_plan(const cnb_conv_desc *d,
                                           void (*mnk)(const cnb_conv_geom *, int *, int *, int *),
                                           const cudaDeviceProp &prop, cnb_conv_geom *g, int *k) {
    cnb_conv_geom_init(g, d);
    int m, n;
    mnk(g, &m, &n, k);
    return plan_gemm_or_exit(m, n, *k, prop);
}

/* Device room for split-K partial sums; NULL when the plan needs none. */
static inline float *partial_buffer(size_t floats) {
    return floats ? to_device(NULL, floats) : NULL;
}

/* Every version 1..count of a bench (or only `version` when it is not 0): its output poisoned
 * with NaN (it must be written), launch_version(v) checked against ref and timed, with
 * notes[v] after the timing when notes is given. The count of failed checks. */
template <class F>
static int run_versions(const char *bench, int count, int version, F launch_version,
                        float *d_out, const double *ref, size_t n, double tol, double flops,
                        const char *const *notes = nullptr) {
    int failed = 0;
    for (int v = 1; v <= count; v++) {
        if (version && v != version) continue;
        cudaCheck(cudaMemset(d_out, 0xff, n * sizeof(float)));
        auto launch = [&]() { launch_version(v); };
        failed += check_and_time(bench, v, launch, d_out, ref, n, tol, flops,
                                 notes ? notes[v] : "");
    }
    return failed;
}

#endif /* CNB_DEV_COMMON_H */
