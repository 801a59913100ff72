/* nonfinite.c — see nonfinite.h. */
#include "nonfinite.h"

#include <math.h>
#include <stdio.h>

/* The tensor holding flat index i: "conv1.weight" or "conv1.bias", and the index within it. */
static void tensor_of(const cnb_model *m, size_t i, char *name, size_t len, size_t *within) {
    snprintf(name, len, "parameter block");
    *within = i;
    for (int k = 0; k < m->n_layers; k++) {
        const cnb_layer *l = &m->layers[k];
        size_t at = l->param_offset;
        if (i >= at && i < at + l->weight_count) {
            snprintf(name, len, "%s.weight", l->name);
            *within = i - at;
            return;
        }
        if (i >= at + l->weight_count && i < at + l->weight_count + l->bias_count) {
            snprintf(name, len, "%s.bias", l->name);
            *within = i - at - l->weight_count;
            return;
        }
    }
}

int cnb_describe_nonfinite(const cnb_model *m, const float *params, float sum, char *buf,
                           size_t len) {
    char name[80];
    size_t within, largest = 0;
    for (size_t i = 0; i < m->n_params; i++) {
        if (isfinite(params[i])) {
            if (fabsf(params[i]) > fabsf(params[largest])) largest = i;
            continue;
        }
        tensor_of(m, i, name, sizeof name, &within);
        snprintf(buf, len, "parameter %s[%zu] became %s", name, within,
                 isnan(params[i]) ? "NaN" : params[i] > 0 ? "+Inf" : "-Inf");
        return 1;
    }
    tensor_of(m, largest, name, sizeof name, &within);
    snprintf(buf, len, "the parameters' sum overflowed to %g (largest magnitude %g at %s[%zu])",
             (double)sum, m->n_params ? (double)params[largest] : 0.0, name, within);
    return 0;
}
