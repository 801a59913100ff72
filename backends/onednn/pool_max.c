/* pool_max.c — max and average pooling as OpenMP loops over planes instead of oneDNN's
 * primitive, on the plane loops the CPU backends share (cpu_common's pool_planes.c: argmax in the
 * workspace, the backward a scatter per plane with a folded activation applied while the plane
 * is in L1).
 * Measured here (2 threads, best of 300 calls, simplecnn's two 2x2 poolings at batch 64, ms):
 * forward 0.50 + 0.26 with the primitive, 0.26 + 0.18 with these loops; backward with ReLU's
 * backward after it 0.74 + 0.39 (primitive + eltwise primitive), 0.34 + 0.17 (loops + eltwise),
 * and 0.26 + 0.12 with ReLU folded in (pool_act_backward). */
#include <string.h>

#include <omp.h>

#include "onednn.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

/* Average pooling's backward with an activation's backward folded in (act, a: its output),
 * plane by plane. The primitive it replaces, with the activation's pass after it: lenet5's first
 * pooling (n256 c6 28x28 2x2, after PReLU: no activation folded) took 0.76 ms. */
void odn_avgpool_backward(const cnb_pool_desc *d, int act, float *dx, const float *dy,
                          const float *a) {
    const long planes = (long)d->n * d->c;
    const size_t in = (size_t)d->h * d->w, out = (size_t)d->p * d->q;
#pragma omp parallel for schedule(static) if (planes * (long)in >= POOL_PAR_MIN_FLOATS)
    for (long pl = 0; pl < planes; pl++) {
        cpu_avgpool_backward_plane(d, dx + pl * in, dy + pl * out);
        cpu_act_grad_plane(dx + pl * in, a ? a + pl * in : NULL, in, act);
    }
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

/* Channels [c0, c1) of one image's channel block (src: the block, h*w rows of `block` floats,
 * c0 its first channel) unpacked to consecutive nchw planes (dst: channel c0's plane), ReLU'd
 * when relu is set: y = v < 0 ? 0 : v, so NaN and -0 pass as in odn_relu_forward_loop. Four hw
 * positions of four channels at a time go through a 4x4 transpose in SSE registers; the rest
 * one by one. */
static void unpack_block(const float *restrict src, float *restrict dst, int block, int c0,
                         int c1, size_t in, int relu) {
    int c = c0;
#ifdef __SSE2__
    const __m128 zero = _mm_setzero_ps();
    const size_t in4 = in & ~(size_t)3;
    for (; c + 4 <= c1; c += 4) {
        float *p0 = dst + (size_t)(c - c0) * in, *p1 = p0 + in, *p2 = p1 + in, *p3 = p2 + in;
        const float *s = src + (c % block);
        for (size_t i = 0; i < in4; i += 4) {
            __m128 r0 = _mm_loadu_ps(s + i * block), r1 = _mm_loadu_ps(s + (i + 1) * block);
            __m128 r2 = _mm_loadu_ps(s + (i + 2) * block), r3 = _mm_loadu_ps(s + (i + 3) * block);
            if (relu) {
                r0 = _mm_andnot_ps(_mm_cmplt_ps(r0, zero), r0);
                r1 = _mm_andnot_ps(_mm_cmplt_ps(r1, zero), r1);
                r2 = _mm_andnot_ps(_mm_cmplt_ps(r2, zero), r2);
                r3 = _mm_andnot_ps(_mm_cmplt_ps(r3, zero), r3);
            }
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
            _mm_storeu_ps(p0 + i, r0);
            _mm_storeu_ps(p1 + i, r1);
            _mm_storeu_ps(p2 + i, r2);
            _mm_storeu_ps(p3 + i, r3);
        }
        for (size_t i = in4; i < in; i++)
            for (int k = 0; k < 4; k++) {
                float v = s[i * block + k];
                dst[(size_t)(c - c0 + k) * in + i] = relu && v < 0.0f ? 0.0f : v;
            }
    }
#endif
    for (; c < c1; c++) {
        const float *s = src + (c % block);
        float *p = dst + (size_t)(c - c0) * in;
        for (size_t i = 0; i < in; i++) {
            float v = s[i * block];
            p[i] = relu && v < 0.0f ? 0.0f : v;
        }
    }
}

/* The pass after a fused block's convolution (conv.c, odn_conv_act_pool_forward), one image's
 * channel block at a time: its planes unpacked (src in nChw<block>c) with ReLU applied when
 * relu is set, then each plane pooled into y as the loops above do while the block is in L2.
 * The planes go to a (nchw), or, when a is NULL (the caller does not keep it), to this
 * thread's block x h*w floats of spare, which stay in L1/L2. block 0: src is the convolution's
 * nchw output and becomes a in place (a is not read): ReLU, then the pooling, plane by plane. */
void odn_act_pool_planes(const cnb_pool_desc *d, int relu, int block, const float *src, float *a,
                         float *y, int32_t *arg, float *spare) {
    const size_t in = (size_t)d->h * d->w, out = (size_t)d->p * d->q;
    const int span = block ? block : 1; /* channels per unit */
    const long cblocks = (d->c + span - 1) / span, units = (long)d->n * cblocks;
#pragma omp parallel for schedule(static) if ((long)d->n * d->c * (long)in >= POOL_PAR_MIN_FLOATS)
    for (long u = 0; u < units; u++) {
        const long img = u / cblocks;
        const int c0 = (int)(u % cblocks) * span, c1 = c0 + span < d->c ? c0 + span : d->c;
        /* channel c0's plane of a, wherever a goes */
        float *planes = (float *)src + ((size_t)img * d->c + c0) * in;
        if (block) {
            planes = a ? a + ((size_t)img * d->c + c0) * in
                       : spare + (size_t)omp_get_thread_num() * block * in;
            unpack_block(src + (size_t)u * in * block, planes, block, c0, c1, in, relu);
        } else if (relu) {
#pragma omp simd
            for (size_t i = 0; i < in; i++) planes[i] = planes[i] < 0.0f ? 0.0f : planes[i];
        }
        for (int c = c0; c < c1; c++) {
            const size_t pl = (size_t)img * d->c + c;
            const float *plane = planes + (size_t)(c - c0) * in;
            if (d->mode == CNB_POOL_MAX)
                cpu_maxpool_plane(d, y + pl * out, arg + pl * out, plane);
            else
                cpu_avgpool_plane(d, y + pl * out, plane);
        }
    }
}

/* The gradient of a max pooling's input, with ReLU's backward folded in when relu is set,
 * written in nChw<block>c (g: the blocked tensor, channels padded to whole blocks, padding
 * zeroed) for a fused block backward (conv.c, odn_pool_act_conv_backward): each image's
 * channel block is zeroed, then every window's dy is added at its argmax, 0 in its place where
 * ReLU's output there is not > 0 — the same sums in the same order as
 * cpu_maxpool_backward_plane, whose zero-then-add and `a <= 0 ? 0 : g` it follows (NaN passes
 * dy). ReLU's output at the argmax is the pooling's output y there: reading y in order instead
 * of gathering a, and masking instead of branching, took simplecnn's two scatters from 0.72 +
 * 0.32 to 0.47 + 0.20 ms per step here. Returns -1, or the first workspace entry outside its
 * plane. */
long odn_maxpool_grad_blocked(const cnb_pool_desc *d, int relu, int block, const float *dy,
                              const float *y, const int32_t *arg, float *g) {
    const size_t in = (size_t)d->h * d->w, out = (size_t)d->p * d->q;
    const long cblocks = (d->c + block - 1) / block, units = (long)d->n * cblocks;
    long bad = -1;
#pragma omp parallel for schedule(static) if ((long)d->n * d->c * (long)in >= POOL_PAR_MIN_FLOATS)
    for (long u = 0; u < units; u++) {
        const long img = u / cblocks;
        const int c0 = (int)(u % cblocks) * block, c1 = c0 + block < d->c ? c0 + block : d->c;
        float *restrict gu = g + (size_t)u * in * block;
        memset(gu, 0, in * block * sizeof *gu);
        for (int c = c0; c < c1; c++) {
            const size_t pl = (size_t)img * d->c + c;
            const int32_t *ar = arg + pl * out;
            const float *dyp = dy + pl * out, *yp = y + pl * out;
            float *gc = gu + (c - c0);
            for (size_t o = 0; o < out; o++) {
                const int32_t e = ar[o];
                if ((uint32_t)e >= (uint32_t)in) {
#pragma omp critical(odn_maxpool_grad_bad)
                    if (bad < 0 || (long)(pl * out + o) < bad) bad = (long)(pl * out + o);
                    break;
                }
                /* ReLU's test on y (a at the argmax, read in order, not gathered) and as a
                 * mask, not a branch: which windows it stops is random */
                const uint32_t stop = (uint32_t)relu & (uint32_t)(yp[o] <= 0.0f);
                uint32_t bits;
                memcpy(&bits, &dyp[o], sizeof bits);
                bits &= stop - 1u;
                float v;
                memcpy(&v, &bits, sizeof v);
                gc[(size_t)e * block] += v;
            }
        }
    }
    return bad;
}
