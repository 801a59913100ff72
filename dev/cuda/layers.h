/* layers.h — the convolution layers of the five models (with their training batch), the
 * shapes the conv benches run; pick one by index on the command line. */
#ifndef CNB_DEV_LAYERS_H
#define CNB_DEV_LAYERS_H

#include <stdio.h>
#include <stdlib.h>

#include "cnb_abi.h"

typedef struct dev_layer {
    const char *name;
    int n, c, h, w, k, r, s, stride, pad;
} dev_layer;

static const dev_layer dev_layers[] = {
    {"simplecnn.conv1", 64, 1, 28, 28, 32, 3, 3, 1, 1},
    {"simplecnn.conv2", 64, 32, 14, 14, 64, 3, 3, 1, 1},
    {"cnn.conv1", 64, 1, 28, 28, 16, 5, 5, 1, 2},
    {"cnn.conv2", 64, 16, 14, 14, 32, 5, 5, 1, 2},
    {"network.conv1", 100, 1, 28, 28, 6, 5, 5, 1, 0},
    {"network.conv2", 100, 6, 12, 12, 12, 5, 5, 1, 0},
    {"network3.conv3", 40, 12, 4, 4, 24, 2, 2, 1, 1},
    {"lenet5.conv1", 256, 1, 28, 28, 6, 5, 5, 1, 2},
    {"lenet5.conv2", 256, 6, 14, 14, 16, 5, 5, 1, 0},
};
#define DEV_LAYER_COUNT ((int)(sizeof dev_layers / sizeof dev_layers[0]))

static inline cnb_conv_desc dev_layer_desc(const dev_layer *l) {
    cnb_conv_desc d;
    d.n = l->n, d.c = l->c, d.h = l->h, d.w = l->w, d.k = l->k, d.r = l->r, d.s = l->s;
    d.stride_h = d.stride_w = l->stride;
    d.pad_h = d.pad_w = l->pad;
    d.p = (d.h + 2 * d.pad_h - d.r) / d.stride_h + 1;
    d.q = (d.w + 2 * d.pad_w - d.s) / d.stride_w + 1;
    return d;
}

/* The bench's command line "[version] [layer]": the version (0: all) into *version, the chosen
 * layer (default_layer when absent) returned and its descriptor in *d; a layer out of range ends
 * the bench. */
static inline const dev_layer *dev_layer_args(int argc, char **argv, int default_layer,
                                              int *version, cnb_conv_desc *d) {
    *version = argc > 1 ? atoi(argv[1]) : 0;
    int layer = argc > 2 ? atoi(argv[2]) : default_layer;
    if (layer < 0 || layer >= DEV_LAYER_COUNT) {
        fprintf(stderr, "layer must be in [0, %d)\n", DEV_LAYER_COUNT);
        exit(EXIT_FAILURE);
    }
    *d = dev_layer_desc(&dev_layers[layer]);
    return &dev_layers[layer];
}

/* visit(yi, xi, wi) for every product of a direct convolution: output y[yi] takes x[xi] times
 * weight w[wi]; in the order (b, o, oh, ow, ci, i, j), padding skipped. Each output's products,
 * and each weight's, come in the loops' order, so a reference summed through it is fixed. */
template <class F>
static void conv_each_connection(const cnb_conv_desc *d, F visit) {
    for (int b = 0; b < d->n; b++)
        for (int o = 0; o < d->k; o++)
            for (int oh = 0; oh < d->p; oh++)
                for (int ow = 0; ow < d->q; ow++)
                    for (int ci = 0; ci < d->c; ci++)
                        for (int i = 0; i < d->r; i++)
                            for (int j = 0; j < d->s; j++) {
                                int ih = oh * d->stride_h - d->pad_h + i;
                                int iw = ow * d->stride_w - d->pad_w + j;
                                if (ih < 0 || ih >= d->h || iw < 0 || iw >= d->w) continue;
                                visit(((b * d->k + o) * d->p + oh) * d->q + ow,
                                      ((b * d->c + ci) * d->h + ih) * d->w + iw,
                                      ((o * d->c + ci) * d->r + i) * d->s + j);
                            }
}

/* Direct convolution in double: y (n,k,p,q) from x (n,c,h,w) and w (k,c,r,s). */
static inline void conv_forward_cpu(double *y, const float *x, const float *wt,
                                    const cnb_conv_desc *d) {
    for (size_t e = 0; e < (size_t)d->n * d->k * d->p * d->q; e++) y[e] = 0.0;
    conv_each_connection(d, [&](int yi, int xi, int wi) { y[yi] += (double)x[xi] * wt[wi]; });
}

#endif /* CNB_DEV_LAYERS_H */
