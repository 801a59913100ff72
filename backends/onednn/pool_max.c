/* pool_max.c — max pooling, and average pooling's forward, as OpenMP loops over planes instead of oneDNN's primitive, on the
 * plane loops the CPU backends share (cpu_common's pool_planes.c: argmax in the workspace, the
 * backward a scatter per plane with a folded activation applied while the plane is in L1).
 * Measured here (2 threads, best of 300 calls, simplecnn's two 2x2 poolings at batch 64, ms):
 * forward 0.50 + 0.26 with the primitive, 0.26 + 0.18 with these loops; backward with ReLU's
 * backward after it 0.74 + 0.39 (primitive + eltwise primitive), 0.34 + 0.17 (loops + eltwise),
 * and 0.26 + 0.12 with ReLU folded in (pool_act_backward). */
#include "onednn.h"

/* Planes per thread at least, so that small layers stay on one thread. */
#define POOL_PAR_MIN_FLOATS 16384

size_t odn_maxpool_workspace_bytes(const cnb_pool_desc *d) {
    return (size_t)d->n * d->c * d->p * d->q * sizeof(int32_t);
}

/* Average pooling's forward on the shared plane loop: oneDNN 2.6's primitive on plain nchw is
 * 4x slower here (lenet5's first pooling, n256 c6 28x28 2x2: 0.56 ms against 0.14 ms). */
void odn_avgpool_forward(const cnb_pool_desc *d, float *y, const float *x) {
    const long planes = (long)d->n * d->c;
    const size_t in = (size_t)d->h * d->w, out = (size_t)d->p * d->q;
#pragma omp parallel for schedule(static) if (planes * (long)in >= POOL_PAR_MIN_FLOATS)
    for (long pl = 0; pl < planes; pl++) cpu_avgpool_plane(d, y + pl * out, x + pl * in);
}

void odn_maxpool_forward(const cnb_pool_desc *d, float *y, const float *x, int32_t *arg) {
    const long planes = (long)d->n * d->c;
    const size_t in = (size_t)d->h * d->w, out = (size_t)d->p * d->q;
#pragma omp parallel for schedule(static) if (planes * (long)in >= POOL_PAR_MIN_FLOATS)
    for (long pl = 0; pl < planes; pl++)
        cpu_maxpool_plane(d, y + pl * out, arg + pl * out, x + pl * in);
}

/* Returns -1 when every argmax is inside its plane, else the first bad workspace entry. */
long odn_maxpool_backward(const cnb_pool_desc *d, int act, float *dx, const float *dy,
                          const float *a, const int32_t *arg) {
    const long planes = (long)d->n * d->c;
    const size_t in = (size_t)d->h * d->w, out = (size_t)d->p * d->q;
    long bad = -1;
#pragma omp parallel for schedule(static) if (planes * (long)in >= POOL_PAR_MIN_FLOATS)
    for (long pl = 0; pl < planes; pl++) {
        long o = cpu_maxpool_backward_plane(d, act, dx + pl * in, dy + pl * out, arg + pl * out,
                                            a ? a + pl * in : NULL);
        if (o >= 0) {
#pragma omp critical(odn_maxpool_bad)
            if (bad < 0 || pl * (long)out + o < bad) bad = pl * (long)out + o;
        }
    }
    return bad;
}
