/* memory.c — "device" memory of the CPU backends is host memory: 64-byte aligned allocations,
 * memcpy for upload and download, and nothing to wait for in synchronize. */
#define _POSIX_C_SOURCE 200112L
#include <stdlib.h>
#include <string.h>

#include "cnb_abi_check.h"
#include "cpu_common.h"

cnb_status cpu_alloc(cnb_context *ctx, void **ptr, size_t bytes) {
    CNB_CHECK_CTX(ctx);
    if (!ptr) return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT, "alloc: ptr is NULL");
    *ptr = NULL;
    /* A zero-byte request still gets a unique pointer, so free() after it is always valid.
     * (Transparent huge pages were measured here and make first touch 4x slower, so plain
     * pages it is.) */
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 1) != 0)
        return cpu_fail(ctx, CNB_ERR_OUT_OF_MEMORY, "alloc: cannot allocate %zu bytes", bytes);
    *ptr = p;
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
