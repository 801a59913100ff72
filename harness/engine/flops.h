/* flops.h — the arithmetic work of a model: how many floating-point operations one image costs
 * in inference and in a training step, as the trainer issues them.
 *
 * Counted: the multiply-adds of convolutions and linear layers, 2 FLOP each (the convention of
 * GEMM GFLOP/s, so a throughput converts to a share of the machine's sgemm ceiling). A training
 * step runs each such layer three times: forward, weight gradient, and input gradient, except at
 * the first layer, whose input gradient the trainer never computes. Not counted: bias, pooling,
 * activations, the loss and the optimizer — memory-bound passes with a handful of operations per
 * value, which cost time but not arithmetic. */
#ifndef CNB_FLOPS_H
#define CNB_FLOPS_H
#include "model.h"

typedef struct cnb_layer_flops {
    double forward;          /* per image */
    double backward_data;    /* 0 for the first layer and for layers without multiply-adds */
    double backward_filter;
} cnb_layer_flops;

typedef struct cnb_model_flops {
    double inference;        /* FLOP per image of the forward pass */
    double training;         /* FLOP per image of a training step */
    cnb_layer_flops layer[CNB_MAX_LAYERS];
} cnb_model_flops;

void cnb_model_flops_count(const cnb_model *m, cnb_model_flops *f);

/* One line for the layer table: "work per image: 8.48 MFLOP inference, 25.0 MFLOP training ...". */
void cnb_model_flops_print(const cnb_model *m, FILE *out);

/* Images per second -> GFLOP/s at flop_per_image. */
static inline double cnb_gflops(double images_per_s, double flop_per_image) {
    return images_per_s * flop_per_image * 1e-9;
}
#endif
