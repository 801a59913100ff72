/* fuzz_idx.c — libFuzzer target: IDX image and label files, raw or gzip'd (zlib's gzopen reads
 * both), through cnb_idx_read_images / cnb_idx_read_labels with and without a limit. */
#include "fuzz_common.h" /* first: it defines _GNU_SOURCE */
#include <stdlib.h>
#include <zlib.h>

#include "data.h"

/* Bytes the header promises for `limit` items (0: all), peeked through zlib like the reader. For a
 * .gz file the reader allocates what the header promises before it can know the file is short
 * (up to CNB_DATA_MAX_BYTES, 1 GiB): correct, but under ASan each such allocation costs ~0.1 s of
 * shadow-memory work, which would cut the fuzzer to ~100 runs/s. So runs that would allocate
 * more than 4 MiB are skipped; every header check before the allocation is still exercised with
 * limit 3. */
static unsigned long long promised(const char *path, int limit) {
    gzFile f = gzopen(path, "rb");
    if (!f) return 0;
    unsigned char h[16] = {0};
    int n = gzread(f, h, sizeof h);
    gzclose(f);
    if (n < 8) return 0;
    unsigned long long dims = h[3], v = 1;
    for (unsigned long long d = 0; d < dims && d < 3 && (int)(8 + 4 * d) <= n; d++) {
        unsigned long long x = (unsigned long long)h[4 + 4 * d] << 24 | h[5 + 4 * d] << 16 |
                               h[6 + 4 * d] << 8 | h[7 + 4 * d];
        if (d == 0 && limit > 0 && x > (unsigned long long)limit) x = (unsigned long long)limit;
        v *= x ? x : 1;
        if (v > (1ull << 40)) return v;
    }
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(0, data, size);
    char err[1024];
    uint8_t *pixels = NULL, *labels = NULL;
    int count, rows, cols;
    for (int limit = 0; limit <= 3; limit += 3) {
        if (promised(path, limit) > (4u << 20)) continue;
        if (cnb_idx_read_images(path, limit, &pixels, &count, &rows, &cols, err, sizeof err) == 0) {
            /* Touch every byte the reader claims to return, so a short buffer shows in ASan. */
            volatile uint8_t sink = 0;
            for (size_t i = 0; i < (size_t)count * (size_t)rows * (size_t)cols; i++) sink ^= pixels[i];
            (void)sink;
            free(pixels);
        }
        if (cnb_idx_read_labels(path, limit, &labels, &count, 10, err, sizeof err) == 0) {
            for (int i = 0; i < count; i++)
                if (labels[i] >= 10) abort(); /* the reader promised labels in range */
            free(labels);
        }
    }
    return 0;
}
