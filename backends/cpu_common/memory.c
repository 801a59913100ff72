/* memory.c — "device" memory of the CPU backends is host memory: aligned allocations, memcpy
 * for upload and download, and nothing to wait for in synchronize. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cnb_abi_check.h"
#include "cpu_common.h"

void *cpu_host_alloc(size_t bytes) {
    /* 4 KiB pages, not transparent huge pages (madvise): measured here, huge pages gave onednn
     * 1.03x on simplecnn's training steps, but their first touch (the kernel zeroing 2 MiB at a
     * time, in a VM) took 19% of a one-epoch run's time (perf: clear_page_erms), against 0.4%. */
    const size_t align = bytes >= 4096 ? 4096 : 64;
    if (bytes > SIZE_MAX - align) return NULL;
    /* aligned_alloc wants a multiple of the alignment; a zero-byte request gets a unique block */
    size_t rounded = (bytes + align - 1) / align * align;
    if (rounded == 0) rounded = align;
    return aligned_alloc(align, rounded);
}

cnb_status cpu_alloc(cnb_context *ctx, void **ptr, size_t bytes) {
    CNB_CHECK_CTX(ctx);
    if (!ptr) return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT, "alloc: ptr is NULL");
    *ptr = cpu_host_alloc(bytes);
    if (!*ptr)
        return cpu_fail(ctx, CNB_ERR_OUT_OF_MEMORY, "alloc: cannot allocate %zu bytes", bytes);
    return CNB_OK;
}

cnb_status cpu_free(cnb_context *ctx, void *ptr) {
    CNB_CHECK_CTX(ctx);
    free(ptr);
    return CNB_OK;
}

/* One direction of a copy; `fn` names the call and the pointers' roles. */
static cnb_status copy(cnb_context *ctx, const char *fn, const char *dst_name, void *dst,
                       const char *src_name, const void *src, size_t bytes) {
    CNB_CHECK_CTX(ctx);
    if (bytes == 0) return CNB_OK;
    if (!dst) return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, dst_name);
    if (!src) return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, src_name);
    memcpy(dst, src, bytes);
    return CNB_OK;
}

cnb_status cpu_upload(cnb_context *ctx, void *dst_device, const void *src_host, size_t bytes) {
    return copy(ctx, "upload", "dst_device", dst_device, "src_host", src_host, bytes);
}

cnb_status cpu_download(cnb_context *ctx, void *dst_host, const void *src_device, size_t bytes) {
    return copy(ctx, "download", "dst_host", dst_host, "src_device", src_device, bytes);
}

cnb_status cpu_synchronize(cnb_context *ctx) {
    CNB_CHECK_CTX(ctx);
    return CNB_OK;
}
