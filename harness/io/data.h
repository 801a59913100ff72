/* data.h — image classification data sets: IDX (raw or gzip'd, via zlib), Kaggle CSV, and the
 * named sets (Fashion-MNIST from Debian's dataset-fashion-mnist, MNIST from a user's directory).
 * Every reader validates everything and fails with a message naming the file and the problem. */
#ifndef CNB_DATA_H
#define CNB_DATA_H

#include <stddef.h>
#include <stdint.h>

#define CNB_DEFAULT_FASHION_DIR "/usr/share/datasets/fashion-mnist"
/* Readers refuse a split whose pixels (or labels) would exceed this many bytes: a header with
 * such sizes is damaged, not a data set this harness can train on. */
#define CNB_DATA_MAX_BYTES ((size_t)1 << 30)

/* One split held as raw bytes, the way the files store it. */
typedef struct cnb_dataset {
    int count;                 /* number of images */
    int rows, cols;            /* image size; channels are always 1 */
    int classes;               /* labels are in [0, classes) */
    uint8_t *pixels;           /* count * rows * cols, row-major per image */
    uint8_t *labels;           /* count */
    char images_path[4096];    /* where the images came from (for results) */
    char labels_path[4096];    /* where the labels came from (same file for CSV) */
} cnb_dataset;

/* Readers. `limit` > 0 keeps only the first `limit` items (the file is still validated up to
 * what is read); 0 keeps all. Return 0 or -1 with a message in err. */
/* What "validated" means: the magic number (type byte 0x08, 3 or 1 dimensions), sizes that are
 * zero, overflow or exceed CNB_DATA_MAX_BYTES, files shorter or longer than the header says
 * (bytes after the data are an error, not a warning), labels outside [0, classes) and damaged
 * gzip streams. With a limit a .gz file is read only as far as needed, so damage past that
 * point goes unnoticed; a raw file's size is always checked (it costs one fstat). The arrays
 * are malloc'd; free them with free(). */
int cnb_idx_read_images(const char *path, int limit, uint8_t **pixels, int *count, int *rows,
                        int *cols, char *err, size_t err_len);
int cnb_idx_read_labels(const char *path, int limit, uint8_t **labels, int *count, int classes,
                        char *err, size_t err_len);
/* Kaggle layout: a header row "label,pixel1,...,pixelN" then one image a row; N must be a square
 * (28*28 = 784 for MNIST). */
int cnb_csv_read(const char *path, int limit, int classes, cnb_dataset *out, char *err,
                 size_t err_len);

/* A pair of IDX files (images + labels): checks that counts agree. */
int cnb_dataset_load_idx(const char *images_path, const char *labels_path, int limit, int classes,
                         cnb_dataset *out, char *err, size_t err_len);

/* Named sets. kind is "fashion-mnist", "mnist" or "csv". dir is the data location:
 *  - fashion-mnist / mnist: a directory holding train-images-idx3-ubyte[.gz],
 *    train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]
 *    (also looked for under <dir>/MNIST/raw/ as torchvision keeps them); NULL for fashion-mnist
 *    means CNB_DEFAULT_FASHION_DIR; mnist requires a dir.
 *  - csv: a directory holding train.csv and test.csv, or one file "train.csv,test.csv"
 *    as two comma-separated paths.
 * train_limit / test_limit as `limit` above. */
int cnb_dataset_open(const char *kind, const char *dir, int train_limit, int test_limit,
                     cnb_dataset *train, cnb_dataset *test, char *err, size_t err_len);

void cnb_dataset_free(cnb_dataset *d);

/* Convert to float NCHW images: out[i] = (pixel/255 - mean) / std. out holds count*rows*cols. */
void cnb_dataset_to_float(const cnb_dataset *d, float mean, float std, float *out);

/* Deterministic shuffle of an index permutation (Fisher-Yates with the harness generator). */
struct cnb_rng;
void cnb_shuffle(struct cnb_rng *rng, int32_t *index, int count);

#endif
