/* gpu_stage.c — upload() without draining the stream: the caller's bytes are copied into a
 * pinned buffer and the device copy is queued from there, so the harness gathers the next
 * batch while the device still runs this one. A copy from pageable memory would have to
 * finish before the call returned (the source may change afterwards); from pinned memory it
 * runs asynchronously, and the slot's event says when the slot may be written again. */
#include <string.h>

#include "gpu_common.h"

cnb_status cnb_gpu_stage_init(cnb_gpu_base *g) {
    for (int i = 0; i < CNB_GPU_STAGES; i++) {
        cnb_gpu_stage *s = &g->stage[i];
        s->host = NULL;
        s->bytes = 0;
        cnb_status st = cnb_gpu_check(g, cudaEventCreateWithFlags(&s->done, cudaEventDisableTiming),
                                      "upload staging: cudaEventCreateWithFlags");
        if (st != CNB_OK) return st;
    }
    g->next_stage = 0;
    return CNB_OK;
}

void cnb_gpu_stage_release(cnb_gpu_base *g) {
    if (g->stream) cudaStreamSynchronize(g->stream); /* no copy may still read a slot */
    for (int i = 0; i < CNB_GPU_STAGES; i++) {
        cnb_gpu_stage *s = &g->stage[i];
        if (s->host) cudaFreeHost(s->host);
        if (s->done) cudaEventDestroy(s->done);
        memset(s, 0, sizeof *s);
    }
    cudaGetLastError();
}

/* Makes s at least bytes long; s's previous copy has finished. Grows to 1 MiB at least so a
 * run's uploads settle after the first step. */
static cnb_status stage_reserve(cnb_gpu_base *g, cnb_gpu_stage *s, size_t bytes) {
    if (bytes <= s->bytes) return CNB_OK;
    size_t want = bytes < ((size_t)1 << 20) ? ((size_t)1 << 20) : bytes;
    return cnb_gpu_realloc(g, 1, want, &s->host, &s->bytes, "upload");
}

cnb_status cnb_gpu_stage_upload(cnb_gpu_base *g, void *dst_device, const void *src_host,
                                size_t bytes) {
    cnb_gpu_stage *s = &g->stage[g->next_stage];
    g->next_stage = (g->next_stage + 1) % CNB_GPU_STAGES;
    /* The slot's last copy must have read it before it is written again. */
    cnb_status st = cnb_gpu_check(g, cudaEventSynchronize(s->done), "upload: wait for staging");
    if (st == CNB_OK) st = stage_reserve(g, s, bytes);
    if (st != CNB_OK) return st;
    memcpy(s->host, src_host, bytes);
    st = cnb_gpu_check(
        g, cudaMemcpyAsync(dst_device, s->host, bytes, cudaMemcpyHostToDevice, g->stream),
        "upload");
    if (st != CNB_OK) return st;
    return cnb_gpu_check(g, cudaEventRecord(s->done, g->stream), "upload: cudaEventRecord");
}
