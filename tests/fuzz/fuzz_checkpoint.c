/* fuzz_checkpoint.c — libFuzzer target: safetensors checkpoints through cnb_checkpoint_parse,
 * against two models (an SGD network with conv and linear layers, and lenet5 with PReLU). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "model.h"

static const char *const tiny_cfg =
    "[net]\nname = tiny\nheight = 8\nwidth = 8\nnormalize = none\nbatch = 4\nepochs = 2\n"
    "optimizer = sgd\nlr = 0.05\nmomentum = 0.9\n[conv]\nfilters = 2\nsize = 3\n[relu]\n"
    "[maxpool]\nsize = 3\n[flatten]\n[linear]\noutputs = 10\n";
static const char *const prelu_cfg =
    "[net]\nname = small\nheight = 8\nwidth = 8\noptimizer = adam\nlr = 0.001\nbatch = 2\n"
    "epochs = 1\nnormalize = none\n[conv]\nfilters = 2\nsize = 3\npad = 1\n[prelu]\n[avgpool]\nsize = 4\n"
    "[flatten]\n[linear]\noutputs = 10\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static cnb_model models[2];
    static int ready;
    char err[1024];
    if (!ready) {
        if (cnb_model_parse(tiny_cfg, "tiny", &models[0], NULL, err, sizeof err) != 0 ||
            cnb_model_parse(prelu_cfg, "small", &models[1], NULL, err, sizeof err) != 0)
            abort();
        ready = 1;
    }
    for (int i = 0; i < 2; i++) {
        cnb_checkpoint c;
        if (cnb_checkpoint_parse(data, size, "fuzz.safetensors", &models[i], &c, err, sizeof err) == 0) {
            volatile float sink = 0;
            for (size_t k = 0; k < models[i].n_params; k++) {
                sink += c.params[k];
                if (c.opt_m) sink += c.opt_m[k];
                if (c.opt_v) sink += c.opt_v[k];
            }
            (void)sink;
            cnb_checkpoint_free(&c);
        }
    }
    return 0;
}
