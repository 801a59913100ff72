/* pool_planes.c — max pooling of one (h, w) plane and its backward, and average pooling's
 * forward of one plane: the loops blas and onednn both run (each splits the planes over its own threads). The argmax of each window (an int32
 * index into its plane) goes to the workspace, so the backward is a scatter per plane, and an
 * activation folded into it (pool_act_backward) is applied to the plane while it is in L1.
 * NaN follows cnb_abi.h: a window holding NaN yields NaN and its gradient goes to the LAST NaN
 * in window order; otherwise the first maximum wins a tie. */
#include <string.h>

#include "cpu_common.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* The cells of output (oh, ow)'s window inside the plane: rows [ilo, ihi), columns [jlo, jhi). */
typedef struct window_cells {
    int ilo, ihi, jlo, jhi;
} window_cells;

static inline window_cells window_at(const cnb_pool_desc *d, int oh, int ow) {
    const int r = oh * d->stride_h - d->pad_h, c = ow * d->stride_w - d->pad_w;
    return (window_cells){r < 0 ? 0 : r, r + d->kh > d->h ? d->h : r + d->kh,
                          c < 0 ? 0 : c, c + d->kw > d->w ? d->w : c + d->kw};
}

/* v beats the running maximum m: larger, or NaN. */
static inline int beats(float v, float m) { return v > m || v != v; }

/* Any window shape. */
static void max_plane(const cnb_pool_desc *d, float *restrict y, int32_t *restrict arg,
                      const float *restrict x) {
    for (int oh = 0; oh < d->p; oh++) {
        for (int ow = 0; ow < d->q; ow++) {
            const window_cells wc = window_at(d, oh, ow);
            const int ilo = wc.ilo, ihi = wc.ihi, jlo = wc.jlo, jhi = wc.jhi;
            int32_t at = ilo * d->w + jlo; /* the first real cell */
            float m = x[at];
            for (int ih = ilo; ih < ihi; ih++)
                for (int iw = jlo; iw < jhi; iw++)
                    if (beats(x[ih * d->w + iw], m)) {
                        at = ih * d->w + iw;
                        m = x[at];
                    }
            y[oh * d->q + ow] = m;
            arg[oh * d->q + ow] = at;
        }
    }
}

#ifdef __SSE2__
/* One step of the running maximum in four lanes: where v beats m (larger, or NaN), v and its
 * index replace them. Selects, not branches: on real activations a branch per cell mispredicts
 * about as often as not. */
static inline void max_step4(__m128 *m, __m128i *at, __m128 v, __m128i v_at) {
    const __m128 take = _mm_or_ps(_mm_cmpgt_ps(v, *m), _mm_cmpunord_ps(v, v));
    const __m128i take_i = _mm_castps_si128(take);
    *m = _mm_or_ps(_mm_and_ps(take, v), _mm_andnot_ps(take, *m));
    *at = _mm_or_si128(_mm_and_si128(take_i, v_at), _mm_andnot_si128(take_i, *at));
}

/* Four outputs of one row from o on: the even and odd columns of two input rows, in window
 * order. */
static inline void max_2x2_four(float *restrict yr, int32_t *restrict ar, const float *r0,
                                const float *r1, int32_t base, int w, int o) {
    const __m128 a0 = _mm_loadu_ps(r0 + 2 * o), a1 = _mm_loadu_ps(r0 + 2 * o + 4);
    const __m128 b0 = _mm_loadu_ps(r1 + 2 * o), b1 = _mm_loadu_ps(r1 + 2 * o + 4);
    const __m128i at = _mm_add_epi32(_mm_set1_epi32(base + 2 * o), _mm_setr_epi32(0, 2, 4, 6));
    __m128 m = _mm_shuffle_ps(a0, a1, 0x88);
    __m128i idx = at;
    max_step4(&m, &idx, _mm_shuffle_ps(a0, a1, 0xdd), _mm_add_epi32(at, _mm_set1_epi32(1)));
    max_step4(&m, &idx, _mm_shuffle_ps(b0, b1, 0x88), _mm_add_epi32(at, _mm_set1_epi32(w)));
    max_step4(&m, &idx, _mm_shuffle_ps(b0, b1, 0xdd), _mm_add_epi32(at, _mm_set1_epi32(w + 1)));
    _mm_storeu_ps(yr + o, m);
    _mm_storeu_si128((__m128i *)(ar + o), idx);
}
#endif

/* The 2x2 stride-2 unpadded window of every model here: the four cells in window order. */
static void max_2x2_plane(float *restrict y, int32_t *restrict arg, const float *restrict x,
                          int w, int p, int q) {
#ifdef __SSE2__
    if (q >= 4) {
        /* four outputs at a time; a row's last four overlap the ones before when q is not a
         * multiple of 4 (the same values are written twice) */
        for (int oh = 0; oh < p; oh++) {
            const float *r0 = x + (size_t)(2 * oh) * w, *r1 = r0 + w;
            float *yr = y + (size_t)oh * q;
            int32_t *ar = arg + (size_t)oh * q;
            for (int ow = 0; ow < q; ow += 4)
                max_2x2_four(yr, ar, r0, r1, 2 * oh * w, w, ow + 4 <= q ? ow : q - 4);
        }
        return;
    }
#endif
    for (int oh = 0; oh < p; oh++) {
        const float *r0 = x + (size_t)(2 * oh) * w, *r1 = r0 + w;
        const int32_t base = 2 * oh * w;
        float *yr = y + (size_t)oh * q;
        int32_t *ar = arg + (size_t)oh * q;
        for (int ow = 0; ow < q; ow++) {
            float m = r0[2 * ow], v;
            int32_t at = base + 2 * ow;
            v = r0[2 * ow + 1];
            if (beats(v, m)) m = v, at = base + 2 * ow + 1;
            v = r1[2 * ow];
            if (beats(v, m)) m = v, at = base + w + 2 * ow;
            v = r1[2 * ow + 1];
            if (beats(v, m)) m = v, at = base + w + 2 * ow + 1;
            yr[ow] = m;
            ar[ow] = at;
        }
    }
}

int cpu_pool_is_2x2_s2(const cnb_pool_desc *d) {
    return d->kh == 2 && d->kw == 2 && d->stride_h == 2 && d->stride_w == 2 && d->pad_h == 0 &&
           d->pad_w == 0;
}

void cpu_maxpool_plane(const cnb_pool_desc *d, float *y, int32_t *arg, const float *x) {
    if (cpu_pool_is_2x2_s2(d)) max_2x2_plane(y, arg, x, d->w, d->p, d->q);
    else max_plane(d, y, arg, x);
}

/* ---- average pooling (divides by kh*kw, padding included: PyTorch's count_include_pad) ---- */

static void avg_2x2_plane(float *restrict y, const float *restrict x, int w, int p, int q) {
    for (int oh = 0; oh < p; oh++) {
        const float *r0 = x + (size_t)(2 * oh) * w, *r1 = r0 + w;
        float *yr = y + (size_t)oh * q;
        for (int ow = 0; ow < q; ow++)
            yr[ow] = ((r0[2 * ow] + r0[2 * ow + 1]) + (r1[2 * ow] + r1[2 * ow + 1])) * 0.25f;
    }
}

/* Any window shape: the sum of the real cells over kh*kw. */
static void avg_plane(const cnb_pool_desc *d, float *restrict y, const float *restrict x) {
    const float window = (float)d->kh * (float)d->kw;
    for (int oh = 0; oh < d->p; oh++) {
        for (int ow = 0; ow < d->q; ow++) {
            const window_cells wc = window_at(d, oh, ow);
            const int ilo = wc.ilo, ihi = wc.ihi, jlo = wc.jlo, jhi = wc.jhi;
            float sum = 0.0f;
            for (int ih = ilo; ih < ihi; ih++) {
                const float *row = x + (size_t)ih * d->w;
                for (int iw = jlo; iw < jhi; iw++) sum += row[iw];
            }
            y[(size_t)oh * d->q + ow] = sum / window;
        }
    }
}

void cpu_avgpool_plane(const cnb_pool_desc *d, float *y, const float *x) {
    if (cpu_pool_is_2x2_s2(d)) avg_2x2_plane(y, x, d->w, d->p, d->q);
    else avg_plane(d, y, x);
}

/* Average pooling's backward of one plane: dx zeroed, then each dy / (kh*kw) added to the real
 * cells of its window in window order (overlapping windows add up). 2x2 stride-2 windows touch
 * each cell once: a store of 0 + g per cell, the same values without the read-modify-write. */
void cpu_avgpool_backward_plane(const cnb_pool_desc *d, float *restrict dx,
                                const float *restrict dy) {
    const float window = (float)d->kh * (float)d->kw;
    memset(dx, 0, (size_t)d->h * d->w * sizeof(float));
    if (cpu_pool_is_2x2_s2(d)) {
        for (int oh = 0; oh < d->p; oh++) {
            float *r0 = dx + (size_t)(2 * oh) * d->w, *r1 = r0 + d->w;
            const float *dyr = dy + (size_t)oh * d->q;
            for (int ow = 0; ow < d->q; ow++) {
                const float g = 0.0f + dyr[ow] / window;
                r0[2 * ow] = g, r0[2 * ow + 1] = g, r1[2 * ow] = g, r1[2 * ow + 1] = g;
            }
        }
        return;
    }
    for (int oh = 0; oh < d->p; oh++) {
        for (int ow = 0; ow < d->q; ow++) {
            const window_cells wc = window_at(d, oh, ow);
            const int ilo = wc.ilo, ihi = wc.ihi, jlo = wc.jlo, jhi = wc.jhi;
            const float g = dy[(size_t)oh * d->q + ow] / window;
            for (int ih = ilo; ih < ihi; ih++) {
                float *row = dx + (size_t)ih * d->w;
                for (int iw = jlo; iw < jhi; iw++) row[iw] += g;
            }
        }
    }
}

/* One loop per activation, each with a constant act, so that every one of them vectorizes.
 * ReLU's derivative is 0 at a == 0 (PyTorch's) and passes dx where a is NaN. */
void cpu_act_grad_plane(float *restrict dx, const float *restrict a, size_t n, int act) {
    switch (act) {
    case CNB_ACT_RELU:
        for (size_t i = 0; i < n; i++) dx[i] = a[i] <= 0.0f ? 0.0f : dx[i];
        break;
    case CNB_ACT_TANH:
        for (size_t i = 0; i < n; i++) dx[i] *= (1.0f - a[i]) * (1.0f + a[i]);
        break;
    case CNB_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) dx[i] *= a[i] * (1.0f - a[i]);
        break;
    default:
        break;
    }
}

long cpu_maxpool_backward_plane(const cnb_pool_desc *d, int act, float *restrict dx,
                                const float *restrict dy, const int32_t *restrict arg,
                                const float *a) {
    const size_t in = (size_t)d->h * d->w, out = (size_t)d->p * d->q;
    memset(dx, 0, in * sizeof(float));
    for (size_t o = 0; o < out; o++) {
        if ((uint32_t)arg[o] >= (uint32_t)in) return (long)o;
        dx[arg[o]] += dy[o];
    }
    cpu_act_grad_plane(dx, a, in, act);
    return -1;
}
