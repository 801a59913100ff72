/* model.h — model description files (Darknet-style [sections] of key=value), shape inference and
 * the layer table. A model file holds the network and the training settings of its source. */
#ifndef CNB_MODEL_H
#define CNB_MODEL_H

#include <stddef.h>
#include <stdio.h>

#define CNB_MAX_LAYERS 64

typedef enum cnb_layer_type {
    CNB_LAYER_CONV = 0,    /* [conv]    filters, size (or size_h/size_w), stride, pad, bias */
    CNB_LAYER_LINEAR,      /* [linear]  outputs, bias; input must be flat (c=features, h=w=1) */
    CNB_LAYER_MAXPOOL,     /* [maxpool] size, stride (default = size), pad */
    CNB_LAYER_AVGPOOL,     /* [avgpool] size, stride (default = size), pad */
    CNB_LAYER_RELU,        /* [relu] */
    CNB_LAYER_TANH,        /* [tanh] */
    CNB_LAYER_SIGMOID,     /* [sigmoid] */
    CNB_LAYER_PRELU,       /* [prelu]   init (default 0.25): one learned slope */
    CNB_LAYER_FLATTEN      /* [flatten] (c,h,w) -> (c*h*w,1,1) in C,H,W order */
} cnb_layer_type;

typedef struct cnb_layer {
    cnb_layer_type type;
    char name[32];          /* e.g. "conv1", "fc2", "prelu1": parameter names in results/checkpoints */
    int line;               /* line of the [section] header in the file */
    /* options (those that apply to the type) */
    int filters, outputs;
    int size_h, size_w, stride_h, stride_w, pad_h, pad_w;
    int has_bias;           /* conv / linear; default 1 */
    float prelu_init;
    /* inferred by shape inference: input and output shapes of one sample */
    int in_c, in_h, in_w;
    int out_c, out_h, out_w;
    size_t weight_count;    /* conv: filters*in_c*size_h*size_w; linear: outputs*in; prelu: 1 */
    size_t bias_count;      /* conv: filters; linear: outputs; else 0 */
    size_t param_offset;    /* where this layer's weights start in the flat parameter block;
                               its bias (if any) follows the weights */
} cnb_layer;

typedef struct cnb_model {
    char name[64];
    char path[4096];
    /* [net] section: input and training settings from the source notebook */
    int in_c, in_h, in_w;   /* channels, height, width (default 1, 28, 28) */
    int classes;            /* default 10; the last layer must produce exactly this many */
    int batch, epochs;
    char optimizer[16];     /* "sgd" or "adam" */
    float lr, momentum, weight_decay;   /* momentum: SGD only */
    float beta1, beta2, eps;            /* Adam only; defaults 0.9, 0.999, 1e-8 */
    int normalize;          /* 1: x = (pixel/255 - mean) / std; 0: x = pixel/255 */
    float norm_mean, norm_std;
    char dataset[32];       /* data set the source trained on, e.g. "mnist"; informational */
    char source[256];       /* one line on where the network and settings come from */
    int n_layers;
    cnb_layer layers[CNB_MAX_LAYERS];
    size_t n_params;        /* total learned parameters (the flat block's length) */
} cnb_model;

/* Parse a model file and run shape inference. Unknown sections, malformed or out-of-range values
 * and shapes that do not work are errors naming the file, the line and the layer; unknown keys
 * are warnings ("file:line: unused key 'x'") printed to `warn` (may be NULL). 0 or -1. */
int cnb_model_load(const char *path, cnb_model *m, FILE *warn, char *err, size_t err_len);
/* The same from a string in memory; `name` stands for the file in messages. */
int cnb_model_parse(const char *text, const char *name, cnb_model *m, FILE *warn, char *err,
                    size_t err_len);

/* Resolve a --model argument: a path (contains '/' or ends in .cfg) or a name looked up as
 * <name>.cfg in $CNNBENCH_MODEL_PATH's directories, then in the models directory:
 * $CNNBENCH_MODELS_DIR, else the one beside the program (paths.h: <exe>/../share/cnnbench/models,
 * or the source tree's models/ for a build-tree program). */
const char *cnb_models_dir(void);
int cnb_model_resolve(const char *name_or_path, char *path, size_t path_len, char *err,
                      size_t err_len);

/* Print the layer table: index, name, type, options, output shape [batch, c, h, w], parameters. */
void cnb_model_print(const cnb_model *m, int batch, FILE *out);

const char *cnb_layer_type_name(cnb_layer_type t);

/* ---- appended by the model-file work ---- */

/* One line with the [net] settings, e.g. "simplecnn: data mnist, batch 64, 5 epochs, sgd lr 0.01
 * momentum 0.9, normalize (0.5, 0.5)". `dataset` is "" when the file does not name one (the
 * program then uses its default data set). */
void cnb_model_print_settings(const cnb_model *m, FILE *out);

/* Index of the layer called `name`, or -1. */
int cnb_model_find_layer(const cnb_model *m, const char *name);

/* The CNB_ACT_* an activation layer runs, or -1 for any other layer. */
int cnb_layer_activation(cnb_layer_type t);

#endif
