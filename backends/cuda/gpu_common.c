/* gpu_common.c — driver and device discovery, the GPU context's shared state, error helpers
 * and the memory slots, for the cuda and cudnn backends (see gpu_common.h). */
#include "gpu_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cuda_kernels.h"
#include "gpu_collective.h"
#include "cuda_plan.h"

#ifndef CNB_CUDA_ARCHS
#define CNB_CUDA_ARCHS "unknown"
#endif

void cnb_gpu_read_config(const cnb_config *cfg, cnb_gpu_options *out) {
    memset(out, 0, sizeof *out);
    if (!cfg) return;
    /* A field exists only if the caller's struct reaches past its end. */
#define CNB_HAS_FIELD(f) (cfg->size >= offsetof(cnb_config, f) + sizeof cfg->f)
    if (CNB_HAS_FIELD(deterministic)) out->deterministic = cfg->deterministic;
    if (CNB_HAS_FIELD(allow_tf32)) out->allow_tf32 = cfg->allow_tf32;
    if (CNB_HAS_FIELD(device_index)) out->device_index = cfg->device_index;
    if (CNB_HAS_FIELD(direct_conv)) out->direct_conv = cfg->direct_conv;
#undef CNB_HAS_FIELD
}

void cnb_gpu_error_words(cudaError_t e, char *buf, size_t len) {
    const char *name = cudaGetErrorName(e), *text = cudaGetErrorString(e);
    snprintf(buf, len, "%s: %s", name ? name : "cudaError?", text ? text : "?");
}

cnb_status cnb_gpu_open_device(const char *backend, int device_index, cnb_gpu_device *dev,
                               char *err, size_t len) {
    memset(dev, 0, sizeof *dev);
    char rt[32], drv[32];
    int driver = 0, runtime = 0, count = 0;
    /* With no libcuda.so, cudaDriverGetVersion succeeds and reports 0; the device count then
     * fails with cudaErrorInsufficientDriver. */
    cudaError_t e_drv = cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    cudaError_t e_cnt = cudaGetDeviceCount(&count);
    cudaGetLastError(); /* clear, so no later launch reports these */
    cnb_format_cuda_version(runtime, rt, sizeof rt);
    cnb_format_cuda_version(driver, drv, sizeof drv);
    if (e_drv != cudaSuccess || driver == 0) {
        cudaError_t e = e_drv != cudaSuccess ? e_drv : e_cnt;
        if (e == cudaSuccess) e = cudaErrorInsufficientDriver;
        snprintf(err, len,
                 "%s: no CUDA driver found (%s): %s; install the NVIDIA driver (the CUDA %s "
                 "runtime needs libcuda.so.1)",
                 backend, cudaGetErrorName(e), cudaGetErrorString(e), rt);
        return CNB_ERR_NO_DEVICE;
    }
    if (e_cnt == cudaErrorInsufficientDriver) {
        snprintf(err, len,
                 "%s: CUDA driver %s is older than the CUDA %s runtime (%s): update the NVIDIA "
                 "driver",
                 backend, drv, rt, cudaGetErrorName(e_cnt));
        return CNB_ERR_NO_DEVICE;
    }
    if (e_cnt != cudaSuccess || count == 0) {
        cudaError_t e = e_cnt != cudaSuccess ? e_cnt : cudaErrorNoDevice;
        snprintf(err, len, "%s: no CUDA device found (%s): %s (driver %s, runtime %s)", backend,
                 cudaGetErrorName(e), cudaGetErrorString(e), drv, rt);
        return CNB_ERR_NO_DEVICE;
    }
    if (device_index < 0 || device_index >= count) {
        snprintf(err, len, "%s: device_index %d is not one of the %d CUDA device(s) found",
                 backend, device_index, count);
        return CNB_ERR_INVALID_ARGUMENT;
    }
    struct cudaDeviceProp prop;
    cudaError_t e = cudaSetDevice(device_index);
    if (e == cudaSuccess) e = cudaGetDeviceProperties(&prop, device_index);
    if (e != cudaSuccess) {
        cudaGetLastError();
        snprintf(err, len, "%s: cannot use CUDA device %d (%s): %s", backend, device_index,
                 cudaGetErrorName(e), cudaGetErrorString(e));
        return CNB_ERR_NO_DEVICE;
    }
    dev->index = device_index;
    snprintf(dev->name, sizeof dev->name, "%s", prop.name);
    dev->cc_major = prop.major;
    dev->cc_minor = prop.minor;
    dev->sm_count = prop.multiProcessorCount > 0 ? prop.multiProcessorCount : 1;
    dev->total_mem = prop.totalGlobalMem;
    dev->driver_version = driver;
    dev->runtime_version = runtime;
    return CNB_OK;
}

cnb_status cnb_gpu_base_init(cnb_gpu_base *g, const char *backend, const cnb_config *cfg,
                             char *err, size_t len) {
    memset(g, 0, sizeof *g);
    cnb_gpu_read_config(cfg, &g->opt);
    cnb_status st = cnb_gpu_open_device(backend, g->opt.device_index, &g->dev, err, len);
    if (st != CNB_OK) return st;
    const char *step = "cudaStreamCreateWithFlags";
    /* Non-blocking: no implicit ordering with the legacy default stream other libraries use. */
    cudaError_t e = cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking);
    if (e == cudaSuccess) {
        step = "cudaHostAlloc (mapped flags)";
        void *host = NULL;
        e = cudaHostAlloc(&host, 64, cudaHostAllocMapped);
        g->flags_host = host;
    }
    if (e == cudaSuccess) {
        memset(g->flags_host, 0, 64);
        step = "cudaHostGetDevicePointer";
        void *dev = NULL;
        e = cudaHostGetDevicePointer(&dev, g->flags_host, 0);
        g->flags_dev = dev;
    }
    if (e != cudaSuccess) {
        cudaGetLastError();
        snprintf(err, len, "%s: %s failed on %s (%s): %s", backend, step, g->dev.name,
                 cudaGetErrorName(e), cudaGetErrorString(e));
        cnb_gpu_base_release(g);
        return e == cudaErrorMemoryAllocation ? CNB_ERR_OUT_OF_MEMORY : CNB_ERR_LIBRARY;
    }
    if (cnb_gpu_stage_init(g) != CNB_OK) {
        snprintf(err, len, "%s: %s", backend, g->err);
        cnb_gpu_base_release(g);
        return CNB_ERR_LIBRARY;
    }
    /* Fails now, not at the first layer, when the build holds no code for this device. */
    e = cnbk_probe(g->stream);
    if (e != cudaSuccess) {
        cudaGetLastError();
        snprintf(err, len,
                 "%s: cannot run kernels on %s (compute capability %d.%d; built for "
                 "CMAKE_CUDA_ARCHITECTURES=%s) (%s): %s; rebuild with "
                 "-DCMAKE_CUDA_ARCHITECTURES=%d%d",
                 backend, g->dev.name, g->dev.cc_major, g->dev.cc_minor, CNB_CUDA_ARCHS,
                 cudaGetErrorName(e), cudaGetErrorString(e), g->dev.cc_major, g->dev.cc_minor);
        cnb_gpu_base_release(g);
        return CNB_ERR_NO_DEVICE;
    }
    return CNB_OK;
}

void cnb_gpu_base_release(cnb_gpu_base *g) {
    if (g->collective) cnb_gpu_collective_destroy(g);
    if (g->stream) cudaStreamSynchronize(g->stream);
    cnb_gpu_stage_release(g);
    if (g->scratch) cudaFree(g->scratch);
    if (g->flags_host) cudaFreeHost(g->flags_host);
    if (g->stream) cudaStreamDestroy(g->stream);
    cudaGetLastError();
    g->scratch = NULL;
    g->scratch_bytes = 0;
    g->flags_host = g->flags_dev = NULL;
    g->stream = NULL;
}

cnb_status cnb_gpu_fail(cnb_gpu_base *g, cnb_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->err, sizeof g->err, fmt, ap);
    va_end(ap);
    return st;
}

cnb_status cnb_gpu_check(cnb_gpu_base *g, cudaError_t e, const char *what) {
    if (e == cudaSuccess) return CNB_OK;
    cudaGetLastError();
    cnb_status st = CNB_ERR_LIBRARY;
    if (e == cudaErrorMemoryAllocation) st = CNB_ERR_OUT_OF_MEMORY;
    else if (e == cudaErrorInvalidValue || e == cudaErrorInvalidDevicePointer)
        st = CNB_ERR_INVALID_ARGUMENT;
    else if (e == cudaErrorInvalidConfiguration) st = CNB_ERR_INTERNAL; /* a planning bug */
    return cnb_gpu_fail(g, st, "%s: %s: %s", what, cudaGetErrorName(e), cudaGetErrorString(e));
}

cnb_status cnb_gpu_realloc(cnb_gpu_base *g, int pinned, size_t want, void **buf,
                           size_t *buf_bytes, const char *what) {
    if (*buf) {
        if (pinned) cudaFreeHost(*buf);
        else cudaFree(*buf);
    }
    *buf = NULL;
    *buf_bytes = 0;
    void *p = NULL;
    cudaError_t e = pinned ? cudaHostAlloc(&p, want, cudaHostAllocDefault) : cudaMalloc(&p, want);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return cnb_gpu_fail(g, CNB_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes of %s (%s)",
                            what, want, pinned ? "pinned host memory" : "device memory",
                            cudaGetErrorName(e));
    }
    *buf = p;
    *buf_bytes = want;
    return CNB_OK;
}

cnb_status cnb_gpu_scratch(cnb_gpu_base *g, size_t bytes, void **out) {
    *out = NULL;
    if (bytes == 0) return CNB_OK;
    if (bytes > g->scratch_bytes) {
        /* The old buffer may still be read by queued kernels: wait before freeing it. */
        cnb_status st = cnb_gpu_check(g, cudaStreamSynchronize(g->stream), "scratch: sync");
        if (st != CNB_OK) return st;
        size_t want = bytes < ((size_t)1 << 20) ? ((size_t)1 << 20) : bytes; /* 1 MiB at least */
        st = cnb_gpu_realloc(g, 0, want, &g->scratch, &g->scratch_bytes, "scratch");
        if (st != CNB_OK) return st;
    }
    *out = g->scratch;
    return CNB_OK;
}

cnb_status cnb_gpu_sync_and_check(cnb_gpu_base *g, const char *what) {
    cnb_status st = cnb_gpu_check(g, cudaStreamSynchronize(g->stream), what);
    if (st != CNB_OK) return st;
    volatile int *flags = g->flags_host;
    if (flags[0]) {
        flags[0] = 0;
        return cnb_gpu_fail(g, CNB_ERR_INVALID_ARGUMENT,
                            "%s: a softmax_ce call since the last synchronization had a label "
                            "outside [0, classes); its loss and gradient rows are NaN",
                            what);
    }
    return CNB_OK;
}

void cnb_gpu_info_device(const cnb_gpu_base *g, cnb_info_fn fn, void *user, char *mismatch,
                         size_t mismatch_len) {
    const cnb_gpu_device *dev = &g->dev;
    char buf[320], compiled[32], loaded[32];
    fn(user, "device.name", dev->name);
    snprintf(buf, sizeof buf, "%d.%d", dev->cc_major, dev->cc_minor);
    fn(user, "device.compute_capability", buf);
    snprintf(buf, sizeof buf, "%d", dev->sm_count);
    fn(user, "device.multiprocessors", buf);
    snprintf(buf, sizeof buf, "%zu", dev->total_mem >> 20);
    fn(user, "device.memory_mib", buf);
    snprintf(buf, sizeof buf, "%d", dev->index);
    fn(user, "device.index", buf);
    cnb_format_cuda_version(dev->driver_version, buf, sizeof buf);
    fn(user, "cuda.driver", buf);
    cnb_format_cuda_version(CUDART_VERSION, compiled, sizeof compiled);
    fn(user, "cuda.runtime.compiled", compiled);
    cnb_format_cuda_version(dev->runtime_version, loaded, sizeof loaded);
    fn(user, "cuda.runtime.loaded", loaded);
    if (dev->runtime_version != CUDART_VERSION && mismatch && mismatch_len) {
        size_t used = strlen(mismatch);
        snprintf(mismatch + used, mismatch_len - used,
                 "%sCUDA runtime compiled %s but loaded %s: rebuild, or put the matching "
                 "libcudart first in LD_LIBRARY_PATH",
                 used ? "; " : "", compiled, loaded);
    }
}

cnb_status cnb_gpu_alloc(cnb_gpu_base *g, void **ptr, size_t bytes) {
    GPU_CHECK_PTR(g, "alloc", ptr);
    *ptr = NULL;
    /* A zero-byte request still gets a unique pointer, so free() after it is always valid;
     * cudaMalloc aligns to 256 bytes, past the ABI's 64. */
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return cnb_gpu_fail(g, e == cudaErrorMemoryAllocation ? CNB_ERR_OUT_OF_MEMORY
                                                              : CNB_ERR_LIBRARY,
                            "alloc: cannot allocate %zu bytes on %s (%s)", bytes, g->dev.name,
                            cudaGetErrorName(e));
    }
    *ptr = p;
    return CNB_OK;
}

cnb_status cnb_gpu_free(cnb_gpu_base *g, void *ptr) {
    if (!ptr) return CNB_OK;
    /* Queued kernels may still use the buffer. */
    cnb_status st = cnb_gpu_check(g, cudaStreamSynchronize(g->stream), "free: sync");
    if (st != CNB_OK) return st;
    return cnb_gpu_check(g, cudaFree(ptr), "free");
}

/* Both copies go on the stream, so they come after every kernel queued before them. An upload
 * goes through the pinned staging slots and does not wait (its source is copied first, so it
 * may be reused on return); only one too large to stage waits for its copy. A download waits:
 * its result is read on return (the ABI's completion point). */
cnb_status cnb_gpu_upload(cnb_gpu_base *g, void *dst_device, const void *src_host, size_t bytes) {
    if (bytes == 0) return CNB_OK;
    GPU_CHECK_PTR(g, "upload", dst_device);
    GPU_CHECK_PTR(g, "upload", src_host);
    if (bytes <= CNB_GPU_STAGE_MAX) return cnb_gpu_stage_upload(g, dst_device, src_host, bytes);
    cnb_status st = cnb_gpu_check(
        g, cudaMemcpyAsync(dst_device, src_host, bytes, cudaMemcpyHostToDevice, g->stream),
        "upload");
    if (st != CNB_OK) return st;
    return cnb_gpu_check(g, cudaStreamSynchronize(g->stream), "upload: sync");
}

cnb_status cnb_gpu_download(cnb_gpu_base *g, void *dst_host, const void *src_device,
                            size_t bytes) {
    if (bytes == 0) return cnb_gpu_sync_and_check(g, "download");
    GPU_CHECK_PTR(g, "download", dst_host);
    GPU_CHECK_PTR(g, "download", src_device);
    cnb_status st = cnb_gpu_check(
        g, cudaMemcpyAsync(dst_host, src_device, bytes, cudaMemcpyDeviceToHost, g->stream),
        "download");
    if (st != CNB_OK) return st;
    return cnb_gpu_sync_and_check(g, "download");
}

cnb_status cnb_gpu_synchronize(cnb_gpu_base *g) { return cnb_gpu_sync_and_check(g, "synchronize"); }

/* The event handle is the timer: no wrapper to allocate or free. */
static cudaEvent_t event_of(const cnb_timer *t) { return (cudaEvent_t)(uintptr_t)t; }

cnb_status cnb_gpu_timer_create(cnb_gpu_base *g, cnb_timer **out) {
    GPU_CHECK_PTR(g, "timer_create", out);
    *out = NULL;
    cudaEvent_t e = NULL;
    cnb_status st = cnb_gpu_check(g, cudaEventCreate(&e), "timer_create");
    if (st == CNB_OK) *out = (cnb_timer *)(uintptr_t)e;
    return st;
}

cnb_status cnb_gpu_timer_record(cnb_gpu_base *g, cnb_timer *t) {
    GPU_CHECK_PTR(g, "timer_record", t);
    return cnb_gpu_check(g, cudaEventRecord(event_of(t), g->stream), "timer_record");
}

cnb_status cnb_gpu_timer_elapsed(cnb_gpu_base *g, const cnb_timer *start, const cnb_timer *stop,
                                 double *ms) {
    GPU_CHECK_PTR3(g, "timer_elapsed", start, stop, ms);
    *ms = 0.0;
    cnb_status st = cnb_gpu_check(g, cudaEventSynchronize(event_of(stop)), "timer_elapsed: wait");
    if (st != CNB_OK) return st;
    float f = 0.0f;
    st = cnb_gpu_check(g, cudaEventElapsedTime(&f, event_of(start), event_of(stop)),
                       "timer_elapsed");
    /* The event clock's resolution is about half a microsecond; never report a negative span. */
    if (st == CNB_OK) *ms = f > 0.0f ? (double)f : 0.0;
    return st;
}

cnb_status cnb_gpu_timer_destroy(cnb_gpu_base *g, cnb_timer *t) {
    if (!t) return CNB_OK;
    return cnb_gpu_check(g, cudaEventDestroy(event_of(t)), "timer_destroy");
}
