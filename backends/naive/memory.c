/* memory.c — "device" memory of the naive backend is host memory: 64-byte aligned allocations,
 * memcpy for upload and download, and nothing to wait for in synchronize. */
#define _POSIX_C_SOURCE 200112L
#include <stdlib.h>
#include <string.h>

#include "naive.h"

cnb_status naive_alloc(cnb_context *ctx, void **ptr, size_t bytes) {
    NAIVE_CHECK_CTX(ctx);
    NAIVE_CHECK_PTR(ctx, "alloc", ptr);
    *ptr = NULL;
    /* A zero-byte request still gets a unique pointer, so free() after it is always valid. */
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 1) != 0)
        return naive_fail(ctx, CNB_ERR_OUT_OF_MEMORY, "alloc: cannot allocate %zu bytes", bytes);
    *ptr = p;
    return CNB_OK;
}

cnb_status naive_free(cnb_context *ctx, void *ptr) {
    NAIVE_CHECK_CTX(ctx);
    free(ptr);
    return CNB_OK;
}

cnb_status naive_upload(cnb_context *ctx, void *dst_device, const void *src_host, size_t bytes) {
    NAIVE_CHECK_CTX(ctx);
    if (bytes == 0) return CNB_OK;
    NAIVE_CHECK_PTR(ctx, "upload", dst_device);
    NAIVE_CHECK_PTR(ctx, "upload", src_host);
    memcpy(dst_device, src_host, bytes);
    return CNB_OK;
}

cnb_status naive_download(cnb_context *ctx, void *dst_host, const void *src_device,
                          size_t bytes) {
    NAIVE_CHECK_CTX(ctx);
    if (bytes == 0) return CNB_OK;
    NAIVE_CHECK_PTR(ctx, "download", dst_host);
    NAIVE_CHECK_PTR(ctx, "download", src_device);
    memcpy(dst_host, src_device, bytes);
    return CNB_OK;
}

cnb_status naive_synchronize(cnb_context *ctx) {
    NAIVE_CHECK_CTX(ctx);
    return CNB_OK;
}
