/* memory.c — the oneDNN backend's "device" memory: the CPU engine works on host memory, so
 * alloc, free, upload and download are cpu_common's; synchronize waits on the stream. */
#include "onednn.h"

cnb_status odn_synchronize(cnb_context *ctx) {
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    /* Every kernel already waits on the stream before it returns. */
    if (dnnl_stream_wait(ctx->stream) != dnnl_success)
        return cpu_fail(ctx, CNB_ERR_LIBRARY, "synchronize: dnnl_stream_wait failed");
    return CNB_OK;
}
