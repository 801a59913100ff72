/* dist_device.h — data-parallel training on devices: when a backend has the collective group
 * (cnb_abi.h; NCCL in the GPU backends), every rank joins one device communicator and the
 * gradients are summed on the device; MPI only carries the communicator's id from rank 0. */
#ifndef CNB_DIST_DEVICE_H
#define CNB_DIST_DEVICE_H

#include <stddef.h>

#include "cnb_abi.h"
#include "distributed.h"

/* Collective over d. 1: joined (library names it, e.g. "NCCL 2.27.3"); 0: the harness sums on
 * the host, why says why (no collective group, or the backend cannot take this many ranks);
 * -1: a failure (why says what). A NULL d (a plain run) gives 0. */
int cnb_dist_device_join(cnb_dist *d, const cnb_backend *api, cnb_context *ctx, char *library,
                         size_t library_len, char *why, size_t why_len);
/* Leaves the communicator joined by cnb_dist_device_join. */
void cnb_dist_device_leave(const cnb_backend *api, cnb_context *ctx);

#endif
