/* fuzz_model.c — libFuzzer target: model description files through cnb_model_parse, then the
 * layer table printer over whatever parsed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static cnb_model m;
    static FILE *null_out;
    if (!null_out) null_out = fopen("/dev/null", "w");
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char err[1024];
    if (cnb_model_parse(text, "fuzz.cfg", &m, null_out, err, sizeof err) == 0) {
        cnb_model_print(&m, 1, null_out);
        cnb_model_print_settings(&m, null_out);
    }
    free(text);
    return 0;
}
