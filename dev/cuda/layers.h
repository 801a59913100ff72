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

/* The bench's command line "[version] [layer]": the version (0: all) into *version and the
 * chosen layer's index (default_layer when absent); a layer out of range ends the bench. */
static inline int dev_layer_args(int argc, char **argv, int default_layer, int *version) {
    *version = argc > 1 ? atoi(argv[1]) : 0;
    int layer = argc > 2 ? atoi(argv[2]) : default_layer;
    if (layer < 0 || layer >= DEV_LAYER_COUNT) {
        fprintf(stderr, "layer must be in [0, %d)\n", DEV_LAYER_COUNT);
        exit(EXIT_FAILURE);
    }
    return layer;
}

static inline cnb_conv_desc dev_layer_desc(const dev_layer *l) {
    cnb_conv_desc d;
    d.n = l->n, d.c = l->c, d.h = l->h, d.w = l->w, d.k = l->k, d.r = l->r, d.s = l->s;
    d.stride_h = d.stride_w = l->stride;
    d.pad_h = d.pad_w = l->pad;
    d.p = (d.h + 2 * d.pad_h - d.r) / d.stride_h + 1;
    d.q = (d.w + 2 * d.pad_w - d.s) / d.stride_w + 1;
    return d;
}

/* Direct convolution in double: y (n,k,p,q) from x (n,c,h,w) and w (k,c,r,s). */
static inline void conv_forward_cpu(double *y, const float *x, const float *wt, const cnb_conv_desc *d) {
    for (int b = 0; b < d->n; b++)
        for (int o = 0; o < d->k; o++)
            for (int oh = 0; oh < d->p; oh++)
                for (int ow = 0; ow < d->q; ow++) {
                    double s = 0;
                    for (int ci = 0; ci < d->c; ci++)
                        for (int i = 0; i < d->r; i++) {
                            int ih = oh * d->stride_h - d->pad_h + i;
                            if (ih < 0 || ih >= d->h) continue;
                            for (int j = 0; j < d->s; j++) {
                                int iw = ow * d->stride_w - d->pad_w + j;
                                if (iw < 0 || iw >= d->w) continue;
                                s += (double)x[((b * d->c + ci) * d->h + ih) * d->w + iw] *
                                     wt[((o * d->c + ci) * d->r + i) * d->s + j];
                            }
                        }
                    y[((b * d->k + o) * d->p + oh) * d->q + ow] = s;
                }
}

#endif /* CNB_DEV_LAYERS_H */
