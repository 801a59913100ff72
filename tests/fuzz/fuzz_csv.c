/* fuzz_csv.c — libFuzzer target: Kaggle-layout CSV files through cnb_csv_read. */
#include "fuzz_common.h" /* first: it defines _GNU_SOURCE */
#include <stdlib.h>

#include "data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(0, data, size);
    char err[1024];
    for (int limit = 0; limit <= 2; limit += 2) {
        cnb_dataset d = {0};
        if (cnb_csv_read(path, limit, 10, &d, err, sizeof err) == 0) {
            volatile uint8_t sink = 0;
            for (size_t i = 0; i < (size_t)d.count * (size_t)d.rows * (size_t)d.cols; i++)
                sink ^= d.pixels[i];
            (void)sink;
            for (int i = 0; i < d.count; i++)
                if (d.labels[i] >= 10) abort();
            cnb_dataset_free(&d);
        }
    }
    return 0;
}
