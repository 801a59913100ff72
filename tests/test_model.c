/* test_model.c — model files: the five shipped networks load with the shapes and parameter
 * counts of their torch.nn twins, broken and malformed files are refused with messages that name
 * the file, the line and the layer, unknown keys warn, names resolve, and the table prints. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "util.h"

#define MODELS_DIR CNB_SOURCE_DIR "/models"
#define FIXTURES CNB_TEST_DATA_DIR "/models"

/* Expected shapes and counts from the torch.nn twins of the model files:
 * `/usr/bin/python3 tests/data/models/torch_models.py` (Debian python3-torch 1.13), which builds
 * each network with nn.Conv2d/nn.Linear/nn.MaxPool2d/..., runs a zero [1,1,28,28] batch through
 * it and prints each layer's output shape and sum(p.numel()) per layer and in total. */
typedef struct expect_layer {
    cnb_layer_type type;
    const char *name; /* "" for layers without parameters */
    int c, h, w;      /* output of one image; flat layers have h = w = 1 */
    size_t params;
} expect_layer;

typedef struct expect_model {
    const char *file;
    int n_layers;
    size_t total;
    expect_layer layers[16];
    /* [net] settings copied from the source notebooks (DESIGN.md §7) */
    const char *dataset, *optimizer;
    int batch, epochs, normalize;
    float lr, momentum, mean, std;
} expect_model;

#define CONV CNB_LAYER_CONV
#define LIN CNB_LAYER_LINEAR
#define MAXP CNB_LAYER_MAXPOOL
#define AVGP CNB_LAYER_AVGPOOL
#define RELU CNB_LAYER_RELU
#define TANH CNB_LAYER_TANH
#define PRELU CNB_LAYER_PRELU
#define FLAT CNB_LAYER_FLATTEN

static const expect_model expected[] = {
    {"simplecnn", 10, 421642,
     {{CONV, "conv1", 32, 28, 28, 320}, {RELU, "", 32, 28, 28, 0}, {MAXP, "", 32, 14, 14, 0},
      {CONV, "conv2", 64, 14, 14, 18496}, {RELU, "", 64, 14, 14, 0}, {MAXP, "", 64, 7, 7, 0},
      {FLAT, "", 3136, 1, 1, 0}, {LIN, "fc1", 128, 1, 1, 401536}, {RELU, "", 128, 1, 1, 0},
      {LIN, "fc2", 10, 1, 1, 1290}},
     "mnist", "sgd", 64, 5, 1, 0.01f, 0.9f, 0.5f, 0.5f},
    {"cnn", 8, 28938,
     {{CONV, "conv1", 16, 28, 28, 416}, {RELU, "", 16, 28, 28, 0}, {MAXP, "", 16, 14, 14, 0},
      {CONV, "conv2", 32, 14, 14, 12832}, {RELU, "", 32, 14, 14, 0}, {MAXP, "", 32, 7, 7, 0},
      {FLAT, "", 1568, 1, 1, 0}, {LIN, "fc1", 10, 1, 1, 15690}},
     "mnist", "adam", 64, 10, 0, 0.001f, 0.0f, 0.0f, 0.0f},
    {"network", 12, 32998,
     {{CONV, "conv1", 6, 24, 24, 156}, {RELU, "", 6, 24, 24, 0}, {MAXP, "", 6, 12, 12, 0},
      {CONV, "conv2", 12, 8, 8, 1812}, {RELU, "", 12, 8, 8, 0}, {MAXP, "", 12, 4, 4, 0},
      {FLAT, "", 192, 1, 1, 0}, {LIN, "fc1", 120, 1, 1, 23160}, {RELU, "", 120, 1, 1, 0},
      {LIN, "fc2", 60, 1, 1, 7260}, {RELU, "", 60, 1, 1, 0}, {LIN, "fc3", 10, 1, 1, 610}},
     "mnist", "sgd", 100, 10, 1, 0.1f, 0.0f, 0.1307f, 0.3081f},
    {"network3", 15, 22654,
     {{CONV, "conv1", 6, 24, 24, 156}, {RELU, "", 6, 24, 24, 0}, {MAXP, "", 6, 12, 12, 0},
      {CONV, "conv2", 12, 8, 8, 1812}, {RELU, "", 12, 8, 8, 0}, {MAXP, "", 12, 4, 4, 0},
      {CONV, "conv3", 24, 5, 5, 1176}, {RELU, "", 24, 5, 5, 0}, {MAXP, "", 24, 2, 2, 0},
      {FLAT, "", 96, 1, 1, 0}, {LIN, "fc1", 120, 1, 1, 11640}, {RELU, "", 120, 1, 1, 0},
      {LIN, "fc2", 60, 1, 1, 7260}, {RELU, "", 60, 1, 1, 0}, {LIN, "fc3", 10, 1, 1, 610}},
     "fashion-mnist", "sgd", 40, 10, 0, 0.1f, 0.0f, 0.0f, 0.0f},
    {"lenet5", 12, 61707,
     {{CONV, "conv1", 6, 28, 28, 156}, {PRELU, "prelu1", 6, 28, 28, 1}, {AVGP, "", 6, 14, 14, 0},
      {CONV, "conv2", 16, 10, 10, 2416}, {TANH, "", 16, 10, 10, 0}, {AVGP, "", 16, 5, 5, 0},
      {FLAT, "", 400, 1, 1, 0}, {LIN, "fc1", 120, 1, 1, 48120}, {RELU, "", 120, 1, 1, 0},
      {LIN, "fc2", 84, 1, 1, 10164}, {RELU, "", 84, 1, 1, 0}, {LIN, "fc3", 10, 1, 1, 850}},
     "fashion-mnist", "adam", 256, 10, 0, 0.001f, 0.0f, 0.0f, 0.0f},
};
#define N_EXPECTED (int)(sizeof expected / sizeof expected[0])

/* Warnings go to a memory stream so tests can read them back. */
typedef struct capture {
    char *buf;
    size_t len;
    FILE *f;
} capture;
static void cap_open(capture *c) {
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    cr_assert_not_null(c->f, "open_memstream failed");
}
static const char *cap_text(capture *c) {
    fflush(c->f);
    return c->buf ? c->buf : "";
}
static void cap_close(capture *c) {
    fclose(c->f);
    free(c->buf);
}

static cnb_model *new_model(void) {
    cnb_model *m = malloc(sizeof *m); /* ~14 KiB: keep it off Criterion's stack */
    cr_assert_not_null(m);
    return m;
}

Test(model, shipped_models_match_torch) {
    cnb_model *m = new_model();
    char err[CNB_ERR_LEN], path[4096];
    for (int k = 0; k < N_EXPECTED; k++) {
        const expect_model *e = &expected[k];
        capture warn;
        cap_open(&warn);
        snprintf(path, sizeof path, "%s/%s.cfg", MODELS_DIR, e->file);
        int rc = cnb_model_load(path, m, warn.f, err, sizeof err);
        cr_assert_eq(rc, 0, "%s: load failed: %s", path, err);
        cr_expect_str_empty(cap_text(&warn), "%s: unexpected warnings:\n%s", e->file, cap_text(&warn));
        cap_close(&warn);

        cr_expect_str_eq(m->name, e->file);
        cr_expect_str_eq(m->path, path);
        cr_expect(m->in_c == 1 && m->in_h == 28 && m->in_w == 28 && m->classes == 10,
                  "%s: input %dx%dx%d classes %d", e->file, m->in_c, m->in_h, m->in_w, m->classes);
        cr_assert_eq(m->n_layers, e->n_layers, "%s: %d layers, expected %d", e->file,
                     m->n_layers, e->n_layers);
        size_t offset = 0;
        for (int i = 0; i < m->n_layers; i++) {
            const cnb_layer *l = &m->layers[i];
            const expect_layer *x = &e->layers[i];
            cr_expect_eq(l->type, x->type, "%s layer %d: type %s, expected %s", e->file, i + 1,
                         cnb_layer_type_name(l->type), cnb_layer_type_name(x->type));
            cr_expect_str_eq(l->name, x->name, "%s layer %d: name '%s', expected '%s'", e->file,
                             i + 1, l->name, x->name);
            cr_expect(l->out_c == x->c && l->out_h == x->h && l->out_w == x->w,
                      "%s layer %d (%s): output %dx%dx%d, torch says %dx%dx%d", e->file, i + 1,
                      l->name, l->out_c, l->out_h, l->out_w, x->c, x->h, x->w);
            cr_expect_eq(l->weight_count + l->bias_count, x->params,
                         "%s layer %d (%s): %zu parameters, torch says %zu", e->file, i + 1,
                         l->name, l->weight_count + l->bias_count, x->params);
            /* One flat block in layer order; each layer's weights then its bias. */
            cr_expect_eq(l->param_offset, offset, "%s layer %d: offset %zu, expected %zu",
                         e->file, i + 1, l->param_offset, offset);
            offset += l->weight_count + l->bias_count;
            if (i > 0) {
                const cnb_layer *prev = &m->layers[i - 1];
                cr_expect(l->in_c == prev->out_c && l->in_h == prev->out_h &&
                              l->in_w == prev->out_w,
                          "%s layer %d: input %dx%dx%d is not layer %d's output", e->file, i + 1,
                          l->in_c, l->in_h, l->in_w, i);
            }
        }
        cr_expect_eq(m->n_params, e->total, "%s: %zu parameters, torch says %zu", e->file,
                     m->n_params, e->total);
        cr_expect_eq(offset, m->n_params);

        cr_expect_str_eq(m->dataset, e->dataset, "%s: dataset", e->file);
        cr_expect_str_eq(m->optimizer, e->optimizer, "%s: optimizer", e->file);
        cr_expect_eq(m->batch, e->batch, "%s: batch %d, expected %d", e->file, m->batch, e->batch);
        cr_expect_eq(m->epochs, e->epochs, "%s: epochs %d", e->file, m->epochs);
        cr_expect_float_eq(m->lr, e->lr, 1e-9, "%s: lr %g, expected %g", e->file, m->lr, e->lr);
        cr_expect_float_eq(m->momentum, e->momentum, 1e-9, "%s: momentum %g", e->file, m->momentum);
        cr_expect_eq(m->normalize, e->normalize, "%s: normalize", e->file);
        if (e->normalize) {
            cr_expect_float_eq(m->norm_mean, e->mean, 1e-9, "%s: mean %g", e->file, m->norm_mean);
            cr_expect_float_eq(m->norm_std, e->std, 1e-9, "%s: std %g", e->file, m->norm_std);
        }
        cr_expect_float_eq(m->weight_decay, 0.0f, 0.0);
        cr_expect(m->source[0] != '\0', "%s: no source line", e->file);
    }
    /* The specific layer options the notebooks use, beyond what the shapes already prove. */
    snprintf(path, sizeof path, "%s/lenet5.cfg", MODELS_DIR);
    cr_assert_eq(cnb_model_load(path, m, NULL, err, sizeof err), 0, "%s", err);
    cr_expect(m->layers[0].pad_h == 2 && m->layers[0].size_h == 5 && m->layers[0].stride_h == 1);
    cr_expect_float_eq(m->layers[1].prelu_init, 0.25f, 0.0);
    cr_expect_eq(m->layers[1].weight_count, 1u);
    cr_expect_eq(m->layers[1].bias_count, 0u);
    cr_expect(m->layers[2].size_h == 2 && m->layers[2].stride_h == 2, "avgpool stride = size");
    cr_expect_float_eq(m->beta1, 0.9f, 0.0);
    cr_expect_float_eq(m->beta2, 0.999f, 0.0);
    cr_expect_float_eq(m->eps, 1e-8f, 0.0);
    free(m);
}

/* DESIGN.md §7's negative case: PyTorch only fails at the first forward pass. */
Test(model, broken_lenet_rejected_at_load) {
    cnb_model *m = new_model();
    char err[CNB_ERR_LEN] = "";
    int rc = cnb_model_load(FIXTURES "/broken_lenet.cfg", m, NULL, err, sizeof err);
    cr_assert_eq(rc, -1, "broken_lenet.cfg was accepted");
    const char *want[] = {"broken_lenet.cfg:34:", "layer 9 avgpool", "input 16x1x1",
                          "2x2 window", "16x0x0"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect_not_null(strstr(err, want[i]), "message lacks '%s':\n  %s", want[i], err);
    cr_expect_eq(m->n_layers, 0, "a refused model must not be left half-filled");
    free(m);
}

/* Each malformed fixture: the line its message must name and words it must contain. */
typedef struct bad_case {
    const char *file;
    int line;
    const char *words[3];
} bad_case;

static const bad_case bad_cases[] = {
    {"bad_no_net", 3, {"first section must be [net]", "[conv]"}},
    {"bad_key_before_section", 2, {"'batch'", "before any section"}},
    {"bad_unknown_section", 7, {"unknown section [convolution]", "layer 1"}},
    {"bad_missing_filters", 7, {"layer 1 conv conv1", "missing required key 'filters'"}},
    {"bad_missing_outputs", 8, {"layer 2 linear fc1", "missing required key 'outputs'"}},
    {"bad_missing_size", 7, {"layer 1 maxpool", "missing required key 'size'"}},
    {"bad_duplicate_key", 10, {"duplicate key 'size'", "line 9"}},
    {"bad_number_suffix", 8, {"layer 1 conv conv1", "'filters'", "'3x'"}},
    {"bad_empty_value", 9, {"layer 2 linear fc1", "'outputs' has no value"}},
    {"bad_overflow", 8, {"conv1", "'filters' = '99999999999999999999' is out of range"}},
    {"bad_zero_stride", 10, {"conv1", "'stride' must be an integer >= 1", "'0'"}},
    {"bad_negative_pad", 10, {"conv1", "'pad' must be an integer >= 0", "'-1'"}},
    {"bad_lr_zero", 6, {"[net]", "'lr' must be a number > 0", "'0'"}},
    {"bad_lr_nan", 6, {"[net]", "'lr'", "'nan'"}},
    {"bad_trailing_garbage", 8, {"conv1", "'filters'", "'32 64'"}},
    {"bad_inline_comment", 8, {"'filters'", "comments must be on their own line"}},
    {"bad_no_flatten", 13, {"layer 3 linear fc1", "linear needs a flat input; add [flatten]",
                            "input is 64x7x7"}},
    {"bad_classes", 8, {"layer 2 linear fc1", "ends with 12 values", "classes=10"}},
    {"bad_kernel_too_big", 9, {"layer 1 conv conv1", "input 1x3x3 is smaller than the 5x5 kernel",
                                "4x0x0"}},
    {"bad_pad_ge_size", 7, {"layer 1 conv conv1", "pad 3x3 must be smaller than the 3x3 kernel"}},
    {"bad_pool_pad", 7, {"layer 1 maxpool", "pad 2x2 must be at most half of the 2x2 window"}},
    {"bad_optimizer", 5, {"[net]", "'sgd' or 'adam'", "'rmsprop'"}},
    {"bad_normalize", 7, {"[net]", "'normalize'", "'0.5,0'"}},
    {"bad_duplicate_name", 10, {"layer 2 conv conv1", "already used by layer 1 (line 7)"}},
    {"bad_unclosed_section", 7, {"'[conv'", "no closing ']'"}},
    {"bad_line_syntax", 8, {"expected '[section]' or 'key = value'", "'filters 4'"}},
    {"bad_bias", 10, {"layer 2 linear fc1", "'bias' must be an integer from 0 to 1", "'2'"}},
    {"bad_second_net", 7, {"second [net]", "line 2"}},
    {"bad_conv_after_flatten", 8, {"layer 2 conv conv1", "needs an image input", "784 values"}},
    {"bad_size_both", 10, {"conv1", "either 'size' or 'size_h' and 'size_w'"}},
    {"bad_no_layers", 2, {"[net] is followed by no layers"}},
    {"bad_missing_batch", 2, {"[net]", "missing required key 'batch'"}},
    {"bad_too_many_layers", 71, {"too many layers", "layer 65", "at most 64"}},
};
#define N_BAD (int)(sizeof bad_cases / sizeof bad_cases[0])

Test(model, malformed_files_rejected_with_file_and_line) {
    cnb_model *m = new_model();
    char err[CNB_ERR_LEN], path[4096], where[300];
    for (int k = 0; k < N_BAD; k++) {
        const bad_case *b = &bad_cases[k];
        snprintf(path, sizeof path, "%s/%s.cfg", FIXTURES, b->file);
        err[0] = '\0';
        int rc = cnb_model_load(path, m, NULL, err, sizeof err);
        cr_expect_eq(rc, -1, "%s.cfg was accepted", b->file);
        if (rc != -1) continue;
        snprintf(where, sizeof where, "%s.cfg:%d: ", b->file, b->line);
        cr_expect_not_null(strstr(err, where), "%s.cfg: message lacks '%s':\n  %s", b->file,
                           where, err);
        for (int i = 0; i < 3 && b->words[i]; i++)
            cr_expect_not_null(strstr(err, b->words[i]), "%s.cfg: message lacks '%s':\n  %s",
                               b->file, b->words[i], err);
    }
    free(m);
}

/* A fixture nobody checks is a fixture that proves nothing: every bad_*.cfg must be listed. */
Test(model, every_bad_fixture_is_checked) {
    DIR *d = opendir(FIXTURES);
    cr_assert_not_null(d, "cannot open %s", FIXTURES);
    struct dirent *e;
    int seen = 0;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, "bad_", 4) != 0 || n < 5 || strcmp(e->d_name + n - 4, ".cfg") != 0)
            continue;
        seen++;
        int listed = 0;
        for (int k = 0; k < N_BAD; k++)
            if (strlen(bad_cases[k].file) == n - 4 && strncmp(bad_cases[k].file, e->d_name, n - 4) == 0)
                listed = 1;
        cr_expect(listed, "%s has no entry in bad_cases", e->d_name);
    }
    closedir(d);
    cr_expect_eq(seen, N_BAD, "%d bad_*.cfg files, %d cases", seen, N_BAD);
    cr_expect_geq(seen, 12);
}

static const char *minimal_net = "[net]\nbatch = 8\nepochs = 1\noptimizer = sgd\nlr = 0.1\n";

static int parse_with(const char *layers, cnb_model *m, FILE *warn, char *err, size_t len) {
    static char text[8192];
    snprintf(text, sizeof text, "%s%s", minimal_net, layers);
    return cnb_model_parse(text, "mem.cfg", m, warn, err, len);
}

Test(model, unused_keys_warn_with_file_and_line) {
    cnb_model *m = new_model();
    char err[CNB_ERR_LEN];
    capture warn;
    cap_open(&warn);
    /* Lines: 1-5 [net]; 6 [conv]; 7 filters; 8 size; 9 strde (typo); 10 [flatten]; 11 [linear];
     * 12 outputs; 13 filters (not a linear key). */
    int rc = parse_with("[conv]\nfilters = 2\nsize = 3\nstrde = 2\n[flatten]\n[linear]\n"
                        "outputs = 10\nfilters = 3\n",
                        m, warn.f, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    const char *w = cap_text(&warn);
    cr_expect_not_null(strstr(w, "mem.cfg:9: warning: unused key 'strde' in [conv]"), "got:\n%s", w);
    cr_expect_not_null(strstr(w, "mem.cfg:13: warning: unused key 'filters' in [linear]"),
                       "got:\n%s", w);
    cr_expect_eq(m->layers[0].stride_h, 1, "the typo must not have set the stride");
    cap_close(&warn);

    /* A setting of the other optimizer has no effect: that is worth a warning too. */
    cap_open(&warn);
    rc = cnb_model_parse("[net]\nbatch = 8\nepochs = 1\noptimizer = adam\nlr = 0.001\n"
                         "momentum = 0.9\nsubdivisions = 2\n[flatten]\n[linear]\noutputs = 10\n",
                         "adam.cfg", m, warn.f, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    w = cap_text(&warn);
    cr_expect_not_null(strstr(w, "adam.cfg:6: warning: key 'momentum' in [net] has no effect with "
                                 "optimizer=adam"), "got:\n%s", w);
    cr_expect_not_null(strstr(w, "adam.cfg:7: warning: unused key 'subdivisions' in [net]"),
                       "got:\n%s", w);
    cap_close(&warn);

    /* NULL warn stream: same result, nothing printed. */
    rc = parse_with("[conv]\nfilters = 2\nsize = 3\nstrde = 2\n[flatten]\n[linear]\noutputs = 10\n",
                    m, NULL, err, sizeof err);
    cr_expect_eq(rc, 0, "%s", err);
    free(m);
}

Test(model, defaults_and_names) {
    cnb_model *m = new_model();
    char err[CNB_ERR_LEN];
    int rc = cnb_model_parse("# comment\n  ; another comment\r\n[net]\r\nbatch=8\r\n"
                             "epochs = 2\noptimizer=sgd\nlr= 0.5\n\n"
                             "[ conv ]\nname = features.0\nfilters = 3\nsize = 3\nbias = 0\n"
                             "[conv]\nfilters = 2\nsize = 1\n[prelu]\n[maxpool]\nsize = 3\n"
                             "[sigmoid]\n[flatten]\n[linear]\noutputs = 20\n[prelu]\ninit = -0.5\n"
                             "[linear]\nname = head\noutputs = 10\n",
                             "models/tiny.cfg", m, NULL, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_expect_str_eq(m->name, "tiny", "the name defaults to the file's stem");
    cr_expect(m->in_c == 1 && m->in_h == 28 && m->in_w == 28 && m->classes == 10);
    cr_expect_float_eq(m->momentum, 0.0f, 0.0);
    cr_expect_float_eq(m->weight_decay, 0.0f, 0.0);
    cr_expect_float_eq(m->lr, 0.5f, 0.0);
    cr_expect_eq(m->normalize, 0);
    cr_expect_str_eq(m->dataset, "");
    cr_assert_eq(m->n_layers, 9);
    const cnb_layer *L = m->layers;
    cr_expect_str_eq(L[0].name, "features.0", "name= overrides conv1");
    cr_expect(L[0].has_bias == 0 && L[0].bias_count == 0 && L[0].weight_count == 27);
    cr_expect(L[0].stride_h == 1 && L[0].stride_w == 1 && L[0].pad_h == 0 && L[0].pad_w == 0);
    cr_expect_str_eq(L[1].name, "conv2", "the second conv is conv2 even when the first is renamed");
    cr_expect(L[1].has_bias == 1 && L[1].weight_count == 6 && L[1].bias_count == 2);
    cr_expect_str_eq(L[2].name, "prelu1");
    cr_expect_float_eq(L[2].prelu_init, 0.25f, 0.0);
    cr_expect(L[3].stride_h == 3 && L[3].stride_w == 3, "pool stride defaults to size");
    /* 28 -> conv3 26 -> conv1 26 -> pool3 8 (floor of 26/3) */
    cr_expect(L[3].out_c == 2 && L[3].out_h == 8 && L[3].out_w == 8, "pool out %dx%dx%d",
              L[3].out_c, L[3].out_h, L[3].out_w);
    cr_expect_eq(L[5].out_c, 128);
    cr_expect_str_eq(L[6].name, "fc1");
    cr_expect_eq(L[6].weight_count, 128u * 20u);
    cr_expect_str_eq(L[7].name, "prelu2");
    cr_expect_float_eq(L[7].prelu_init, -0.5f, 0.0);
    cr_expect_str_eq(L[8].name, "head");
    cr_expect_eq(cnb_model_find_layer(m, "head"), 8);
    cr_expect_eq(cnb_model_find_layer(m, "conv1"), -1);
    cr_expect_eq(m->n_params, 27u + 8u + 1u + 128u * 20u + 20u + 1u + 20u * 10u + 10u);
    free(m);
}

/* Non-square images, kernels, strides and pads; shapes from torch:
 * Conv2d(3,4,(3,5),stride=(2,1),padding=(1,2)) -> MaxPool2d((2,3),stride=(2,2),padding=(1,1))
 * -> AvgPool2d(3,stride=1) -> Flatten -> Linear(192,7,bias=False) on [2,3,20,28] gives
 * [2,4,10,28], [2,4,6,14], [2,4,4,12], [2,192], [2,7] and 1528 parameters. */
Test(model, non_square_shapes_match_torch) {
    cnb_model *m = new_model();
    char err[CNB_ERR_LEN];
    int rc = cnb_model_parse("[net]\nchannels = 3\nheight = 20\nwidth = 28\nclasses = 7\nbatch = 2\n"
                             "epochs = 1\noptimizer = adam\nlr = 1e-3\nbeta1 = 0.8\neps = 1e-6\n"
                             "[conv]\nfilters = 4\nsize_h = 3\nsize_w = 5\nstride_h = 2\n"
                             "stride_w = 1\npad_h = 1\npad_w = 2\n"
                             "[maxpool]\nsize_h = 2\nsize_w = 3\nstride = 2\npad = 1\n"
                             "[avgpool]\nsize = 3\nstride = 1\n[flatten]\n[linear]\noutputs = 7\n"
                             "bias = 0\n",
                             "ns.cfg", m, NULL, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    const int want[4][3] = {{4, 10, 28}, {4, 6, 14}, {4, 4, 12}, {192, 1, 1}};
    for (int i = 0; i < 4; i++)
        cr_expect(m->layers[i].out_c == want[i][0] && m->layers[i].out_h == want[i][1] &&
                      m->layers[i].out_w == want[i][2],
                  "layer %d: %dx%dx%d, torch says %dx%dx%d", i + 1, m->layers[i].out_c,
                  m->layers[i].out_h, m->layers[i].out_w, want[i][0], want[i][1], want[i][2]);
    cr_expect_eq(m->layers[4].out_c, 7);
    cr_expect_eq(m->n_params, 1528u);
    cr_expect_float_eq(m->beta1, 0.8f, 0.0);
    cr_expect_float_eq(m->beta2, 0.999f, 0.0);
    cr_expect_float_eq(m->eps, 1e-6f, 0.0);
    free(m);
}

Test(model, layer_limit_is_exact) {
    cnb_model *m = new_model();
    char err[CNB_ERR_LEN];
    static char layers[4096];
    layers[0] = '\0';
    for (int i = 0; i < CNB_MAX_LAYERS - 2; i++) strcat(layers, "[relu]\n");
    strcat(layers, "[flatten]\n[linear]\noutputs = 10\n");
    int rc = parse_with(layers, m, NULL, err, sizeof err);
    cr_expect_eq(rc, 0, "%d layers must be accepted: %s", CNB_MAX_LAYERS, err);
    cr_expect_eq(m->n_layers, CNB_MAX_LAYERS);
    free(m);
}

Test(model, other_rejections) {
    cnb_model *m = new_model();
    char err[CNB_ERR_LEN];
    /* Shapes that overflow int must not wrap around into plausible numbers. */
    int rc = cnb_model_parse("[net]\nchannels = 100000\nheight = 100000\nwidth = 100000\n"
                             "batch = 1\nepochs = 1\noptimizer = sgd\nlr = 1\n[flatten]\n"
                             "[linear]\noutputs = 10\n",
                             "huge.cfg", m, NULL, err, sizeof err);
    cr_expect_eq(rc, -1);
    cr_expect_not_null(strstr(err, "huge.cfg:1:"), "%s", err);
    /* A network that ends on an image. */
    rc = parse_with("[conv]\nfilters = 10\nsize = 28\n", m, NULL, err, sizeof err);
    cr_expect_eq(rc, -1);
    cr_expect_not_null(strstr(err, "mem.cfg:6: layer 1 conv conv1: the network ends with an image "
                              "10x1x1"), "%s", err);
    /* Empty text. */
    rc = cnb_model_parse("", "empty.cfg", m, NULL, err, sizeof err);
    cr_expect_eq(rc, -1);
    cr_expect_not_null(strstr(err, "empty.cfg:1: no sections"), "%s", err);
    /* A file that does not exist. */
    rc = cnb_model_load(FIXTURES "/no_such_model.cfg", m, NULL, err, sizeof err);
    cr_expect_eq(rc, -1);
    cr_expect_not_null(strstr(err, "no_such_model.cfg"), "%s", err);
    /* An lr that underflows float. */
    rc = cnb_model_parse("[net]\nbatch = 1\nepochs = 1\noptimizer = sgd\nlr = 1e-60\n[flatten]\n"
                         "[linear]\noutputs = 10\n", "tiny_lr.cfg", m, NULL, err, sizeof err);
    cr_expect_eq(rc, -1);
    cr_expect_not_null(strstr(err, "tiny_lr.cfg:5: [net]: 'lr'"), "%s", err);
    free(m);
}

Test(model, resolve_by_name_and_path) {
    char path[4096], err[CNB_ERR_LEN];
    unsetenv("CNNBENCH_MODELS_DIR");
    cr_expect_str_eq(cnb_models_dir(), MODELS_DIR);
    cr_assert_eq(cnb_model_resolve("simplecnn", path, sizeof path, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(path, MODELS_DIR "/simplecnn.cfg");
    cr_assert_eq(cnb_model_resolve("lenet5.cfg", path, sizeof path, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(path, MODELS_DIR "/lenet5.cfg", "a bare file name falls back to the models dir");
    cr_assert_eq(cnb_model_resolve(FIXTURES "/broken_lenet.cfg", path, sizeof path, err,
                                   sizeof err), 0, "%s", err);
    cr_expect_str_eq(path, FIXTURES "/broken_lenet.cfg");

    int rc = cnb_model_resolve("simplecn", path, sizeof path, err, sizeof err);
    cr_expect_eq(rc, -1);
    const char *names[] = {"'simplecn'", "cnn, lenet5, network, network3, simplecnn"};
    for (int i = 0; i < 2; i++)
        cr_expect_not_null(strstr(err, names[i]), "message lacks '%s': %s", names[i], err);
    rc = cnb_model_resolve("nope/x.cfg", path, sizeof path, err, sizeof err);
    cr_expect_eq(rc, -1);
    cr_expect_not_null(strstr(err, "nope/x.cfg"), "%s", err);

    /* $CNNBENCH_MODELS_DIR takes precedence. */
    setenv("CNNBENCH_MODELS_DIR", FIXTURES, 1);
    cr_expect_str_eq(cnb_models_dir(), FIXTURES);
    cr_assert_eq(cnb_model_resolve("broken_lenet", path, sizeof path, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(path, FIXTURES "/broken_lenet.cfg");
    rc = cnb_model_resolve("simplecnn", path, sizeof path, err, sizeof err);
    cr_expect_eq(rc, -1, "simplecnn is not in the fixtures directory");
    cr_expect_not_null(strstr(err, "broken_lenet"), "the list names what is there: %s", err);
    unsetenv("CNNBENCH_MODELS_DIR");
}

/* Find the table line that starts with `prefix` (after leading blanks are normalized away). */
static const char *find_row(const char *text, const char *row_start) {
    for (const char *line = text; line && *line;) {
        const char *s = line;
        while (*s == ' ') s++;
        if (strncmp(s, row_start, strlen(row_start)) == 0) return line;
        line = strchr(line, '\n');
        if (line) line++;
    }
    return NULL;
}

/* True if `line` (up to its newline) holds the words in order, separated by blanks only. */
static int row_has(const char *line, const char *const *words, int n) {
    const char *p = line, *end = strchr(line, '\n');
    for (int i = 0; i < n; i++) {
        while (*p == ' ') p++;
        size_t l = strlen(words[i]);
        if (strncmp(p, words[i], l) != 0) return 0;
        p += l;
    }
    while (*p == ' ') p++;
    return p == end;
}

Test(model, print_table) {
    cnb_model *m = new_model();
    char err[CNB_ERR_LEN];
    cr_assert_eq(cnb_model_load(MODELS_DIR "/simplecnn.cfg", m, NULL, err, sizeof err), 0, "%s", err);
    capture out;
    cap_open(&out);
    cnb_model_print(m, 64, out.f);
    const char *t = cap_text(&out);
    struct {
        const char *start;
        const char *words[8];
        int n;
    } rows[] = {
        {"#", {"#", "name", "type", "options", "output", "params"}, 6},
        {"0 ", {"0", "input", "[64, 1, 28, 28]"}, 3},
        {"1 ", {"1", "conv1", "conv", "32 3x3 /1 pad 1", "[64, 32, 28, 28]", "320"}, 6},
        {"2 ", {"2", "relu", "[64, 32, 28, 28]"}, 3},
        {"3 ", {"3", "maxpool", "2x2 /2", "[64, 32, 14, 14]"}, 4},
        {"4 ", {"4", "conv2", "conv", "64 3x3 /1 pad 1", "[64, 64, 14, 14]", "18496"}, 6},
        {"7 ", {"7", "flatten", "[64, 3136]"}, 3},
        {"8 ", {"8", "fc1", "linear", "3136 -> 128", "[64, 128]", "401536"}, 6},
        {"10 ", {"10", "fc2", "linear", "128 -> 10", "[64, 10]", "1290"}, 6},
        {"total", {"total parameters: 421642"}, 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *line = find_row(t, rows[i].start);
        cr_expect_not_null(line, "no row starting with '%s' in:\n%s", rows[i].start, t);
        if (line)
            cr_expect(row_has(line, rows[i].words, rows[i].n), "row '%s' is not as expected in:\n%s",
                      rows[i].start, t);
    }
    /* The columns line up: 'conv1' starts where 'name' does. */
    const char *head = find_row(t, "#"), *r1 = find_row(t, "1 ");
    if (head && r1)
        cr_expect_eq(strstr(head, "name") - head, strstr(r1, "conv1") - r1, "misaligned:\n%s", t);
    cap_close(&out);

    cap_open(&out);
    cnb_model_print_settings(m, out.f);
    cr_expect_not_null(strstr(cap_text(&out), "simplecnn: input 1x28x28, 10 classes, data mnist, "
                                              "batch 64, 5 epochs, sgd lr 0.01 momentum 0.9, "
                                              "normalize (0.5, 0.5)"),
                       "%s", cap_text(&out));
    cap_close(&out);
    free(m);
}
