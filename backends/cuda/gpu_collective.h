/* gpu_collective.h — the device-collective slots shared by the cuda and cudnn backends
 * (gpu_collective.c): NCCL when the build found it, else an emulated one-rank communicator. */
#ifndef CNB_GPU_COLLECTIVE_H
#define CNB_GPU_COLLECTIVE_H

#include "gpu_common.h"

cnb_status cnb_gpu_collective_id(cnb_gpu_base *g, void *id, size_t *id_bytes, char *library,
                                 size_t library_len);
cnb_status cnb_gpu_collective_init(cnb_gpu_base *g, const void *id, size_t id_bytes, int ranks,
                                   int rank);
cnb_status cnb_gpu_allreduce_sum(cnb_gpu_base *g, float *buf, size_t count, float scale);
cnb_status cnb_gpu_collective_destroy(cnb_gpu_base *g);

#endif
