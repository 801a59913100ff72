/* gpu_collective.c — the device-collective slots of the GPU backends (cnb_abi.h): the gradient
 * all-reduce of data-parallel training through NCCL on the context's stream, so gradients never
 * leave the device. Each rank scales its own buffer before the sum with NCCL's pre-multiplied
 * sum (ncclRedOpCreatePreMulSum), which is how the harness weights a rank by its share of the
 * global batch. The cuda_emu build (no NCCL, no second device) emulates a communicator of one
 * rank, so the harness's device path runs on the CPU; more ranks there are CNB_ERR_UNSUPPORTED
 * and the harness sums on the host. */
#include <stdio.h>
#include <string.h>

#include "gpu_collective.h"

#if defined(CNB_HAVE_NCCL) && !defined(CNB_CUDA_EMU)
#include <nccl.h>

static cnb_status nccl_fail(cnb_gpu_base *g, ncclResult_t r, const char *what) {
    const char *last = g->collective ? ncclGetLastError((ncclComm_t)g->collective) : NULL;
    return cnb_gpu_fail(g, CNB_ERR_LIBRARY, "%s: %s%s%s", what, ncclGetErrorString(r),
                        last && *last ? ": " : "", last ? last : "");
}

cnb_status cnb_gpu_collective_id(cnb_gpu_base *g, void *id, size_t *id_bytes, char *library,
                                 size_t library_len) {
    GPU_CHECK_PTR(g, "collective_id", id);
    GPU_CHECK_PTR(g, "collective_id", id_bytes);
    if (*id_bytes < sizeof(ncclUniqueId))
        return cnb_gpu_fail(g, CNB_ERR_INVALID_ARGUMENT, "collective_id: %zu bytes for an id of %zu",
                            *id_bytes, sizeof(ncclUniqueId));
    ncclUniqueId u;
    ncclResult_t r = ncclGetUniqueId(&u);
    if (r != ncclSuccess) return nccl_fail(g, r, "ncclGetUniqueId");
    memcpy(id, &u, sizeof u);
    *id_bytes = sizeof u;
    int v = 0;
    ncclGetVersion(&v);
    /* NCCL >= 2.9 codes versions as major * 10000 + minor * 100 + patch */
    if (library && library_len)
        snprintf(library, library_len, "NCCL %d.%d.%d (compiled against %d.%d.%d)", v / 10000,
                 v / 100 % 100, v % 100, NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH);
    return CNB_OK;
}

cnb_status cnb_gpu_collective_init(cnb_gpu_base *g, const void *id, size_t id_bytes, int ranks,
                                   int rank) {
    GPU_CHECK_PTR(g, "collective_init", id);
    if (id_bytes != sizeof(ncclUniqueId) || ranks < 1 || rank < 0 || rank >= ranks)
        return cnb_gpu_fail(g, CNB_ERR_INVALID_ARGUMENT,
                            "collective_init: id of %zu bytes (NCCL's is %zu), rank %d of %d",
                            id_bytes, sizeof(ncclUniqueId), rank, ranks);
    if (g->collective) cnb_gpu_collective_destroy(g);
    ncclUniqueId u;
    memcpy(&u, id, sizeof u);
    ncclComm_t comm = NULL;
    ncclResult_t r = ncclCommInitRank(&comm, ranks, u, rank);
    if (r != ncclSuccess) return nccl_fail(g, r, "ncclCommInitRank");
    g->collective = comm;
    return CNB_OK;
}

cnb_status cnb_gpu_allreduce_sum(cnb_gpu_base *g, float *buf, size_t count, float scale) {
    GPU_CHECK_PTR(g, "allreduce_sum", buf);
    if (!g->collective)
        return cnb_gpu_fail(g, CNB_ERR_INVALID_ARGUMENT, "allreduce_sum: no communicator joined");
    ncclComm_t comm = (ncclComm_t)g->collective;
    ncclRedOp_t op = ncclSum;
    ncclResult_t r = ncclSuccess;
    if (scale != 1.0f) {
        r = ncclRedOpCreatePreMulSum(&op, &scale, ncclFloat, ncclScalarHostImmediate, comm);
        if (r != ncclSuccess) return nccl_fail(g, r, "ncclRedOpCreatePreMulSum");
    }
    r = ncclAllReduce(buf, buf, count, ncclFloat, op, comm, g->stream);
    cnb_status st = r == ncclSuccess ? CNB_OK : nccl_fail(g, r, "ncclAllReduce");
    if (op != ncclSum) ncclRedOpDestroy(op, comm);
    return st;
}

cnb_status cnb_gpu_collective_destroy(cnb_gpu_base *g) {
    if (!g->collective) return CNB_OK;
    ncclResult_t r = ncclCommDestroy((ncclComm_t)g->collective);
    g->collective = NULL;
    return r == ncclSuccess ? CNB_OK : nccl_fail(g, r, "ncclCommDestroy");
}

#else /* emulated: a communicator of one rank */

static int emulated_comm; /* the address stands for the joined communicator */

cnb_status cnb_gpu_collective_id(cnb_gpu_base *g, void *id, size_t *id_bytes, char *library,
                                 size_t library_len) {
    GPU_CHECK_PTR(g, "collective_id", id);
    GPU_CHECK_PTR(g, "collective_id", id_bytes);
    if (*id_bytes < 1)
        return cnb_gpu_fail(g, CNB_ERR_INVALID_ARGUMENT, "collective_id: no room for the id");
    memset(id, 0x5a, 1);
    *id_bytes = 1;
    if (library && library_len) snprintf(library, library_len, "emulated (one rank, no NCCL)");
    return CNB_OK;
}

cnb_status cnb_gpu_collective_init(cnb_gpu_base *g, const void *id, size_t id_bytes, int ranks,
                                   int rank) {
    GPU_CHECK_PTR(g, "collective_init", id);
    if (id_bytes != 1 || rank < 0 || rank >= ranks)
        return cnb_gpu_fail(g, CNB_ERR_INVALID_ARGUMENT, "collective_init: rank %d of %d", rank,
                            ranks);
    if (ranks != 1)
        return cnb_gpu_fail(g, CNB_ERR_UNSUPPORTED,
                            "this build has no NCCL: its device communicator holds one rank, not "
                            "%d", ranks);
    g->collective = &emulated_comm;
    return CNB_OK;
}

cnb_status cnb_gpu_allreduce_sum(cnb_gpu_base *g, float *buf, size_t count, float scale) {
    GPU_CHECK_PTR(g, "allreduce_sum", buf);
    if (!g->collective)
        return cnb_gpu_fail(g, CNB_ERR_INVALID_ARGUMENT, "allreduce_sum: no communicator joined");
    if (scale == 1.0f) return CNB_OK; /* the sum over one rank */
    /* Through the host, in stream order: an emulator's "device" is the host anyway. */
    cnb_status st = cnb_gpu_synchronize(g);
    float tmp[1024];
    for (size_t done = 0; st == CNB_OK && done < count; done += 1024) {
        size_t n = count - done < 1024 ? count - done : 1024;
        st = cnb_gpu_download(g, tmp, buf + done, n * sizeof(float));
        for (size_t i = 0; st == CNB_OK && i < n; i++) tmp[i] *= scale;
        if (st == CNB_OK) st = cnb_gpu_upload(g, buf + done, tmp, n * sizeof(float));
        if (st == CNB_OK) st = cnb_gpu_synchronize(g);
    }
    return st;
}

cnb_status cnb_gpu_collective_destroy(cnb_gpu_base *g) {
    g->collective = NULL;
    return CNB_OK;
}

#endif
