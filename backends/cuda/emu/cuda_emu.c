/* cuda_emu.c — the CPU emulator behind cuda_emu.h: "device" memory with guard pages, NaN fill
 * and canaries, synchronous copies, and a fiber scheduler that runs each block's threads
 * between barriers. Single-threaded and deterministic; used only by the cuda_emu test backend. */
#define _GNU_SOURCE
#include "cuda_emu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

cnb_emu_dim cnb_emu_thread_idx, cnb_emu_block_idx, cnb_emu_block_dim, cnb_emu_grid_dim;

static cudaError_t last_error = cudaSuccess;  /* returned and cleared by cudaGetLastError */
static cudaError_t async_error = cudaSuccess;  /* sticky, like a device fault */

#define EMU_EXPORT __attribute__((visibility("default")))

static long n_stream_syncs, n_event_syncs, n_pageable_uploads, n_pinned_uploads, n_launches;

EMU_EXPORT void cnb_emu_test_set_last_error(int e) { last_error = (cudaError_t)e; }

EMU_EXPORT long cnb_emu_test_count(const char *what) {
    if (strcmp(what, "stream_syncs") == 0) return n_stream_syncs;
    if (strcmp(what, "event_syncs") == 0) return n_event_syncs;
    if (strcmp(what, "pageable_uploads") == 0) return n_pageable_uploads;
    if (strcmp(what, "pinned_uploads") == 0) return n_pinned_uploads;
    if (strcmp(what, "launches") == 0) return n_launches;
    return -1;
}

/* ---- pinned host memory and the copies from it that have not run yet ---- */

typedef struct pinned_block {
    char *p;
    size_t bytes;
} pinned_block;
static pinned_block *pinned;
static size_t pinned_count, pinned_cap;

static int is_pinned(const void *p, size_t bytes) {
    const char *c = p;
    for (size_t i = 0; i < pinned_count; i++)
        if (c >= pinned[i].p && bytes <= pinned[i].bytes &&
            (size_t)(c - pinned[i].p) <= pinned[i].bytes - bytes)
            return 1;
    return 0;
}

typedef struct held_copy {
    void *dst;
    const void *src;
    size_t bytes;
} held_copy;
static held_copy *held;
static size_t held_count, held_cap;

/* Runs the held copies in issue order: the point at which a device would have done them. */
static void run_held_copies(void) {
    for (size_t i = 0; i < held_count; i++) memmove(held[i].dst, held[i].src, held[i].bytes);
    held_count = 0;
}

static cudaError_t set_error(cudaError_t e) {
    if (e != cudaSuccess) last_error = e;
    return e;
}

cudaError_t cudaGetLastError(void) {
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    }
    return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorLaunchFailure:
        return "unspecified launch failure (emulator: divergent __syncthreads, a barrier "
               "reached by only part of a block)";
    }
    return "unknown error";
}

/* ---- device ---- */

cudaError_t cudaDriverGetVersion(int *version) {
    if (!version) return set_error(cudaErrorInvalidValue);
    *version = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *version) {
    if (!version) return set_error(cudaErrorInvalidValue);
    *version = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int *count) {
    if (!count) return set_error(cudaErrorInvalidValue);
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    return device == 0 ? cudaSuccess : set_error(cudaErrorInvalidDevice);
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device) {
    if (!prop) return set_error(cudaErrorInvalidValue);
    if (device != 0) return set_error(cudaErrorInvalidDevice);
    memset(prop, 0, sizeof *prop);
    strcpy(prop->name, "cnnbench CPU emulator (fibers, one block at a time)");
    prop->totalGlobalMem = (size_t)1 << 30;
    prop->major = 9;
    prop->minor = 0;
    /* Few "SMs", so the split-K path of the GEMM planner runs at test sizes too. */
    prop->multiProcessorCount = 4;
    return cudaSuccess;
}

struct cnb_emu_stream {
    int unused;
};

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags) {
    (void)flags;
    if (!stream) return set_error(cudaErrorInvalidValue);
    *stream = calloc(1, sizeof(struct cnb_emu_stream));
    return *stream ? cudaSuccess : set_error(cudaErrorMemoryAllocation);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    free(stream);
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    (void)stream;
    n_stream_syncs++;
    run_held_copies();
    return async_error != cudaSuccess ? set_error(async_error) : cudaSuccess;
}

/* ---- events: the host clock at record time (everything before has finished by then) ---- */

struct cnb_emu_event {
    int recorded;
    struct timespec at;
};

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags) {
    (void)flags;
    return cudaEventCreate(event);
}

cudaError_t cudaEventCreate(cudaEvent_t *event) {
    if (!event) return set_error(cudaErrorInvalidValue);
    *event = calloc(1, sizeof(struct cnb_emu_event));
    return *event ? cudaSuccess : set_error(cudaErrorMemoryAllocation);
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    (void)stream;
    if (!event) return set_error(cudaErrorInvalidResourceHandle);
    clock_gettime(CLOCK_MONOTONIC, &event->at);
    event->recorded = 1;
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
    if (!event) return set_error(cudaErrorInvalidResourceHandle);
    n_event_syncs++;
    run_held_copies(); /* all of them: at least those before the event's record */
    return async_error != cudaSuccess ? set_error(async_error) : cudaSuccess;
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
    if (!ms) return set_error(cudaErrorInvalidValue);
    if (!start || !end || !start->recorded || !end->recorded)
        return set_error(cudaErrorInvalidResourceHandle);
    *ms = (float)((double)(end->at.tv_sec - start->at.tv_sec) * 1e3 +
                  (double)(end->at.tv_nsec - start->at.tv_nsec) * 1e-6);
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
    free(event);
    return cudaSuccess;
}

/* ---- memory: [guard page][data ... canaries to the 64-byte boundary][rest of last page] ---- */

typedef struct allocation {
    char *base;       /* the mapping, starting with the guard page */
    size_t map_bytes;
    char *data;       /* what cudaMalloc returned: right after the guard page */
    size_t bytes;     /* requested */
    size_t padded;    /* bytes rounded up to 64: the canary zone is [bytes, padded) */
} allocation;

static allocation *allocs;
static size_t alloc_count, alloc_cap;
static size_t page_size;

static allocation *find_alloc(const void *p, size_t bytes) {
    const char *c = (const char *)p;
    for (size_t i = 0; i < alloc_count; i++) {
        allocation *a = &allocs[i];
        if (c >= a->data && c <= a->data + a->bytes && bytes <= (size_t)(a->data + a->bytes - c))
            return a;
    }
    return NULL;
}

static const uint32_t nan_bits = 0x7fc00bad; /* a quiet NaN with a recognizable payload */

/* Room for one more element of a growable array (capacity doubling from first); -1 when out of
 * memory, the array unchanged. */
static int reserve_one(void **items, size_t *cap, size_t count, size_t size, size_t first) {
    if (count < *cap) return 0;
    size_t n = *cap ? 2 * *cap : first;
    void *p = realloc(*items, n * size);
    if (!p) return -1;
    *items = p;
    *cap = n;
    return 0;
}

cudaError_t cudaMalloc(void **ptr, size_t bytes) {
    if (!ptr) return set_error(cudaErrorInvalidValue);
    if (!page_size) page_size = (size_t)sysconf(_SC_PAGESIZE);
    size_t padded = (bytes + 63) & ~(size_t)63;
    if (padded == 0) padded = 64;
    size_t map_bytes = page_size + ((padded + page_size - 1) / page_size) * page_size;
    char *base = mmap(NULL, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return set_error(cudaErrorMemoryAllocation);
    if (mprotect(base, page_size, PROT_NONE) != 0) {
        munmap(base, map_bytes);
        return set_error(cudaErrorMemoryAllocation);
    }
    if (reserve_one((void **)&allocs, &alloc_cap, alloc_count, sizeof *allocs, 64)) {
        munmap(base, map_bytes);
        return set_error(cudaErrorMemoryAllocation);
    }
    char *data = base + page_size;
    for (size_t off = 0; off + 4 <= padded; off += 4) memcpy(data + off, &nan_bits, 4);
    allocs[alloc_count++] = (allocation){base, map_bytes, data, bytes, padded};
    *ptr = data;
    return cudaSuccess;
}

cudaError_t cudaFree(void *ptr) {
    if (!ptr) return cudaSuccess;
    run_held_copies(); /* cudaFree waits for the device */
    for (size_t i = 0; i < alloc_count; i++) {
        allocation *a = &allocs[i];
        if (a->data != ptr) continue;
        cudaError_t e = cudaSuccess;
        /* Canaries: a kernel wrote past the end of the buffer. */
        for (size_t off = a->bytes; off < a->padded; off++)
            if ((unsigned char)a->data[off] != ((const unsigned char *)&nan_bits)[off % 4])
                e = cudaErrorLaunchFailure;
        munmap(a->base, a->map_bytes);
        allocs[i] = allocs[--alloc_count];
        if (e != cudaSuccess) async_error = e;
        return set_error(e);
    }
    return set_error(cudaErrorInvalidDevicePointer);
}

cudaError_t cudaHostAlloc(void **ptr, size_t bytes, unsigned int flags) {
    (void)flags;
    if (!ptr) return set_error(cudaErrorInvalidValue);
    if (reserve_one((void **)&pinned, &pinned_cap, pinned_count, sizeof *pinned, 16))
        return set_error(cudaErrorMemoryAllocation);
    *ptr = calloc(1, bytes ? bytes : 1);
    if (!*ptr) return set_error(cudaErrorMemoryAllocation);
    pinned[pinned_count++] = (pinned_block){*ptr, bytes ? bytes : 1};
    return cudaSuccess;
}

cudaError_t cudaFreeHost(void *ptr) {
    run_held_copies(); /* as the runtime, which synchronizes the device first */
    for (size_t i = 0; i < pinned_count; i++)
        if (pinned[i].p == ptr) pinned[i] = pinned[--pinned_count];
    free(ptr);
    return cudaSuccess;
}

cudaError_t cudaHostGetDevicePointer(void **device, void *host, unsigned int flags) {
    (void)flags;
    if (!device || !host) return set_error(cudaErrorInvalidValue);
    *device = host;
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind,
                            cudaStream_t stream) {
    (void)stream;
    if (async_error != cudaSuccess) return set_error(async_error);
    if (bytes == 0) return cudaSuccess;
    if (!dst || !src) return set_error(cudaErrorInvalidValue);
    int dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    int src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if ((dst_dev && !find_alloc(dst, bytes)) || (src_dev && !find_alloc(src, bytes)))
        return set_error(cudaErrorInvalidValue);
    if (kind == cudaMemcpyHostToDevice && is_pinned(src, bytes)) {
        n_pinned_uploads++;
        if (reserve_one((void **)&held, &held_cap, held_count, sizeof *held, 16))
            return set_error(cudaErrorMemoryAllocation);
        held[held_count++] = (held_copy){dst, src, bytes};
        return cudaSuccess;
    }
    if (kind == cudaMemcpyHostToDevice) n_pageable_uploads++;
    run_held_copies();
    memmove(dst, src, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *ptr, int value, size_t bytes, cudaStream_t stream) {
    (void)stream;
    if (bytes == 0) return cudaSuccess;
    if (!ptr || !find_alloc(ptr, bytes)) return set_error(cudaErrorInvalidValue);
    run_held_copies();
    memset(ptr, value, bytes);
    return cudaSuccess;
}

/* ---- kernels: one block at a time, its threads as fibers ---- */

enum { FIBER_READY, FIBER_AT_BARRIER, FIBER_DONE };

typedef struct fiber {
    ucontext_t ctx;
    int state;
} fiber;

#define FIBER_STACK (64 * 1024)

static fiber *fibers;
static char *stacks;
static unsigned fiber_cap;
static ucontext_t scheduler;
static unsigned current;
static void (*cur_body)(void *);
static void *cur_arg;

static void fiber_main(void) {
    cur_body(cur_arg);
    fibers[current].state = FIBER_DONE; /* then uc_link returns to the scheduler */
}

void cnb_emu_syncthreads(void) {
    fibers[current].state = FIBER_AT_BARRIER;
    swapcontext(&fibers[current].ctx, &scheduler);
}

static int ensure_fibers(unsigned count) {
    if (count <= fiber_cap) return 0;
    fiber *f = realloc(fibers, count * sizeof *f);
    if (!f) return -1;
    fibers = f;
    free(stacks);
    stacks = malloc((size_t)count * FIBER_STACK);
    if (!stacks) {
        fiber_cap = 0;
        return -1;
    }
    fiber_cap = count;
    return 0;
}

static void set_thread_idx(unsigned t) {
    current = t;
    cnb_emu_thread_idx.x = t % cnb_emu_block_dim.x;
    cnb_emu_thread_idx.y = (t / cnb_emu_block_dim.x) % cnb_emu_block_dim.y;
    cnb_emu_thread_idx.z = t / (cnb_emu_block_dim.x * cnb_emu_block_dim.y);
}

/* Runs one block; returns 0, or -1 when its threads disagreed about a barrier. */
static int run_block(unsigned threads, int reverse) {
    for (unsigned t = 0; t < threads; t++) {
        fiber *f = &fibers[t];
        getcontext(&f->ctx);
        f->ctx.uc_stack.ss_sp = stacks + (size_t)t * FIBER_STACK;
        f->ctx.uc_stack.ss_size = FIBER_STACK;
        f->ctx.uc_link = &scheduler;
        makecontext(&f->ctx, fiber_main, 0);
        f->state = FIBER_READY;
    }
    for (;;) {
        for (unsigned i = 0; i < threads; i++) {
            unsigned t = reverse ? threads - 1 - i : i;
            if (fibers[t].state != FIBER_READY) continue;
            set_thread_idx(t);
            swapcontext(&scheduler, &fibers[t].ctx);
        }
        unsigned at_barrier = 0, done = 0;
        for (unsigned t = 0; t < threads; t++) {
            if (fibers[t].state == FIBER_AT_BARRIER) at_barrier++;
            else if (fibers[t].state == FIBER_DONE) done++;
        }
        if (done == threads) return 0;
        if (at_barrier != threads) return -1; /* some finished, some wait: divergent barrier */
        for (unsigned t = 0; t < threads; t++) fibers[t].state = FIBER_READY;
    }
}

cudaError_t cnb_emu_launch(cnb_emu_dim grid, cnb_emu_dim block, void (*body)(void *), void *arg) {
    unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 ||
        grid.z == 0 || grid.y > 65535 || grid.z > 65535 || grid.x > 0x7fffffffu)
        return set_error(cudaErrorInvalidConfiguration);
    if (async_error != cudaSuccess) return cudaSuccess; /* a faulted context runs nothing */
    n_launches++;
    run_held_copies();
    if (ensure_fibers((unsigned)threads) != 0) return set_error(cudaErrorMemoryAllocation);
    const char *order = getenv("CNB_CUDA_EMU_ORDER");
    int reverse = order && strcmp(order, "reverse") == 0;
    cur_body = body;
    cur_arg = arg;
    cnb_emu_block_dim = block;
    cnb_emu_grid_dim = grid;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                cnb_emu_block_idx = (cnb_emu_dim){x, y, z};
                if (run_block((unsigned)threads, reverse) != 0) {
                    async_error = cudaErrorLaunchFailure;
                    return cudaSuccess; /* reported at the next synchronizing call */
                }
            }
    return cudaSuccess;
}
