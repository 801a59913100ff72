/* flops.c — see flops.h for what is counted and why. */
#include "flops.h"

#include <string.h>

/* Multiply-adds of one image through layer l: each output value of a convolution sums
 * in_c * kh * kw products, each output of a linear layer sums all its inputs. */
static double layer_macs(const cnb_layer *l) {
    const double out = (double)l->out_c * l->out_h * l->out_w;
    switch (l->type) {
    case CNB_LAYER_CONV: return out * l->in_c * l->size_h * l->size_w;
    case CNB_LAYER_LINEAR: return out * ((double)l->in_c * l->in_h * l->in_w);
    default: return 0.0;
    }
}

void cnb_model_flops_count(const cnb_model *m, cnb_model_flops *f) {
    memset(f, 0, sizeof *f);
    for (int i = 0; i < m->n_layers; i++) {
        const double flop = 2.0 * layer_macs(&m->layers[i]);
        cnb_layer_flops *lf = &f->layer[i];
        lf->forward = flop;
        lf->backward_filter = flop;
        lf->backward_data = i > 0 ? flop : 0.0; /* no gradient for the input images */
        f->inference += lf->forward;
        f->training += lf->forward + lf->backward_filter + lf->backward_data;
    }
}

void cnb_model_flops_print(const cnb_model *m, FILE *out) {
    cnb_model_flops f;
    cnb_model_flops_count(m, &f);
    fprintf(out,
            " work per image: %.2f MFLOP inference, %.2f MFLOP training step (conv and linear "
            "multiply-adds, 2 FLOP each)\n",
            f.inference * 1e-6, f.training * 1e-6);
}
