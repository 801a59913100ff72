/* test_data.c — the data readers: the real Fashion-MNIST, the fixtures of tools/make_test_data.py
 * (IDX raw and .gz, CSV, MNIST directory layouts), one refusal per kind of damaged file, float
 * conversion and the shuffle. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data.h"
#include "util.h"

#define FIX CNB_TEST_DATA_DIR
#define FASHION CNB_DEFAULT_FASHION_DIR

/* ---- helpers ---------------------------------------------------------------------------- */

/* Reads a whole file with stdio (independently of the readers under test). */
static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    cr_assert(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n, "short read of %s", path);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void put_file(const char *path, const unsigned char *data, size_t len) {
    FILE *f = fopen(path, "wb");
    cr_assert(f, "cannot create %s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static void copy_file(const char *src, const char *dst) {
    size_t n;
    unsigned char *b = slurp(src, &n);
    put_file(dst, b, n);
    free(b);
}

/* mkdir -p for a fresh per-test directory under CNB_TEST_TMP_DIR (tests run in parallel). */
static void make_dirs(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0777);
            *p = '/';
        }
    if (mkdir(buf, 0777) != 0) cr_assert_eq(errno, EEXIST, "mkdir %s: %s", buf, strerror(errno));
}

static int has_fashion(void) {
    struct stat st;
    return stat(FASHION "/train-images-idx3-ubyte.gz", &st) == 0;
}
#define NEED_FASHION()                                                                          \
    do {                                                                                        \
        if (!has_fashion())                                                                     \
            cr_skip_test("Fashion-MNIST is not installed in " FASHION                           \
                         " (Debian package dataset-fashion-mnist)");                            \
    } while (0)

static void expect_bytes(const char *what, const uint8_t *got, const uint8_t *want, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i])
            cr_assert_fail("%s: byte %zu differs: got %u, expected %u (of %zu bytes)", what, i,
                           got[i], want[i], n);
}

/* ---- the real Fashion-MNIST --------------------------------------------------------------- */

/* cnb_dataset_open that must succeed (the test fails with its message otherwise). */
static void open_ok(const char *kind, const char *dir, int train_limit, int test_limit,
                    cnb_dataset *tr, cnb_dataset *te) {
    char err[CNB_ERR_LEN] = "";
    cr_assert_eq(cnb_dataset_open(kind, dir, train_limit, test_limit, tr, te, err, sizeof err), 0,
                 "%s", err);
}

static void free_pair(cnb_dataset *tr, cnb_dataset *te) {
    cnb_dataset_free(tr);
    cnb_dataset_free(te);
}

Test(fashion, full_sets_have_the_known_counts_labels_and_pixels) {
    NEED_FASHION();
    char err[CNB_ERR_LEN] = "";
    cnb_dataset tr, te;
    double t0 = cnb_now();
    int rc = cnb_dataset_open("fashion-mnist", NULL, 0, 0, &tr, &te, err, sizeof err);
    double dt = cnb_now() - t0;
    cr_assert_eq(rc, 0, "open failed: %s", err);
    cr_log_info("loaded Fashion-MNIST train + test (55 MB of pixels from .gz) in %.3f s", dt);
    printf("fashion-mnist: train + test loaded in %.3f s\n", dt);
    cr_expect_lt(dt, 10.0, "loading took %.3f s", dt);

    cr_assert_eq(tr.count, 60000);
    cr_assert_eq(te.count, 10000);
    cr_assert_eq(tr.rows, 28);
    cr_assert_eq(tr.cols, 28);
    cr_assert_eq(te.rows, 28);
    cr_assert_eq(tr.classes, 10);
    cr_assert_str_eq(tr.images_path, FASHION "/train-images-idx3-ubyte.gz");
    cr_assert_str_eq(te.labels_path, FASHION "/t10k-labels-idx1-ubyte.gz");

    /* Facts checked with Python's gzip module: each class has exactly 6000 training and 1000
     * test images; the first labels; pixel sums of the first image and of the whole split. */
    int hist_tr[10] = {0}, hist_te[10] = {0};
    for (int i = 0; i < tr.count; i++) {
        cr_assert_lt(tr.labels[i], 10);
        hist_tr[tr.labels[i]]++;
    }
    for (int i = 0; i < te.count; i++) {
        cr_assert_lt(te.labels[i], 10);
        hist_te[te.labels[i]]++;
    }
    for (int c = 0; c < 10; c++) {
        cr_expect_eq(hist_tr[c], 6000, "train class %d has %d images", c, hist_tr[c]);
        cr_expect_eq(hist_te[c], 1000, "test class %d has %d images", c, hist_te[c]);
    }
    static const uint8_t first_tr[12] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9}; /* 9 = ankle boot */
    static const uint8_t first_te[12] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5};
    expect_bytes("first train labels", tr.labels, first_tr, 12);
    expect_bytes("first test labels", te.labels, first_te, 12);
    uint64_t s0 = 0, s_tr = 0, t0s = 0, s_te = 0;
    for (int i = 0; i < 784; i++) s0 += tr.pixels[i], t0s += te.pixels[i];
    for (size_t i = 0; i < (size_t)tr.count * 784; i++) s_tr += tr.pixels[i];
    for (size_t i = 0; i < (size_t)te.count * 784; i++) s_te += te.pixels[i];
    cr_expect_eq(s0, 76247, "first train image pixel sum %llu", (unsigned long long)s0);
    cr_expect_eq(t0s, 33456, "first test image pixel sum %llu", (unsigned long long)t0s);
    cr_expect_eq(s_tr, 3431114169ull, "train pixel sum %llu", (unsigned long long)s_tr);
    cr_expect_eq(s_te, 573469082ull, "test pixel sum %llu", (unsigned long long)s_te);
    free_pair(&tr, &te);
    cr_assert_null(tr.pixels);
}

Test(fashion, limit_keeps_the_first_items) {
    NEED_FASHION();
    char err[CNB_ERR_LEN] = "";
    cnb_dataset tr, te;
    double t0 = cnb_now();
    cr_assert_eq(cnb_dataset_open("fashion-mnist", NULL, 100, 50, &tr, &te, err, sizeof err), 0,
                 "%s", err);
    double dt = cnb_now() - t0;
    printf("fashion-mnist: 100 + 50 images loaded in %.4f s\n", dt);
    cr_assert_eq(tr.count, 100);
    cr_assert_eq(te.count, 50);
    static const uint8_t first_tr[12] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9};
    expect_bytes("first train labels", tr.labels, first_tr, 12);
    uint64_t s0 = 0;
    for (int i = 0; i < 784; i++) s0 += tr.pixels[i];
    cr_expect_eq(s0, 76247);

    /* The limited read is a prefix of the full one. */
    uint8_t *all = NULL;
    int n = 0, r = 0, c = 0;
    cr_assert_eq(cnb_idx_read_images(FASHION "/t10k-images-idx3-ubyte.gz", 0, &all, &n, &r, &c,
                                     err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(n, 10000);
    expect_bytes("limited test images vs full", te.pixels, all, 50 * 784);
    free(all);
    free_pair(&tr, &te);
}

Test(fashion, raw_and_gz_give_identical_bytes) {
    NEED_FASHION();
    /* Decompress with the gzip program, not with zlib, so the check is independent. */
    const char *dir = CNB_TEST_TMP_DIR "/data-rawgz";
    make_dirs(dir);
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "gzip -dc " FASHION "/t10k-images-idx3-ubyte.gz > %s/t10k-images-idx3-ubyte && "
             "gzip -dc " FASHION "/t10k-labels-idx1-ubyte.gz > %s/t10k-labels-idx1-ubyte",
             dir, dir);
    if (system(cmd) != 0) cr_skip_test("cannot run gzip -dc: %s", cmd);

    char err[CNB_ERR_LEN] = "", raw_i[4096], raw_l[4096];
    snprintf(raw_i, sizeof raw_i, "%s/t10k-images-idx3-ubyte", dir);
    snprintf(raw_l, sizeof raw_l, "%s/t10k-labels-idx1-ubyte", dir);
    cnb_dataset a, b;
    cr_assert_eq(cnb_dataset_load_idx(raw_i, raw_l, 0, 10, &a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cnb_dataset_load_idx(FASHION "/t10k-images-idx3-ubyte.gz",
                                      FASHION "/t10k-labels-idx1-ubyte.gz", 0, 10, &b, err,
                                      sizeof err),
                 0, "%s", err);
    cr_assert_eq(a.count, b.count);
    cr_assert_eq(a.rows, b.rows);
    cr_assert_eq(a.cols, b.cols);
    expect_bytes("raw vs gz pixels", a.pixels, b.pixels, (size_t)a.count * 784);
    expect_bytes("raw vs gz labels", a.labels, b.labels, (size_t)a.count);
    /* And the raw file's bytes after its 16-byte header, read by stdio. */
    size_t len;
    unsigned char *file = slurp(raw_i, &len);
    cr_assert_eq(len, 16 + (size_t)a.count * 784);
    expect_bytes("pixels vs file", a.pixels, file + 16, len - 16);
    free(file);
    cnb_dataset_free(&a);
    cnb_dataset_free(&b);
}

/* ---- fixtures: IDX ------------------------------------------------------------------------ */

Test(idx, tiny_raw_and_gz_match_the_file_bytes) {
    char err[CNB_ERR_LEN] = "";
    size_t len;
    unsigned char *file = slurp(FIX "/idx/tiny-images-idx3-ubyte", &len);
    cr_assert_eq(len, 16 + 12 * 35);
    const char *paths[2] = {FIX "/idx/tiny-images-idx3-ubyte", FIX "/idx/tiny-images-idx3-ubyte.gz"};
    for (int k = 0; k < 2; k++) {
        uint8_t *px = NULL;
        int n = 0, r = 0, c = 0;
        cr_assert_eq(cnb_idx_read_images(paths[k], 0, &px, &n, &r, &c, err, sizeof err), 0, "%s",
                     err);
        cr_assert_eq(n, 12, "%s", paths[k]);
        cr_assert_eq(r, 5, "rows of %s (5x7 images: rows and cols must not swap)", paths[k]);
        cr_assert_eq(c, 7, "cols of %s", paths[k]);
        expect_bytes(paths[k], px, file + 16, 12 * 35);
        for (int i = 0; i < 12; i++) {
            cr_expect_eq(px[i * 35], 0);
            cr_expect_eq(px[i * 35 + 34], 255);
        }
        free(px);
    }
    free(file);
    const char *lpaths[2] = {FIX "/idx/tiny-labels-idx1-ubyte", FIX "/idx/tiny-labels-idx1-ubyte.gz"};
    for (int k = 0; k < 2; k++) {
        uint8_t *lab = NULL;
        int n = 0;
        cr_assert_eq(cnb_idx_read_labels(lpaths[k], 0, &lab, &n, 10, err, sizeof err), 0, "%s", err);
        cr_assert_eq(n, 12);
        for (int i = 0; i < 12; i++) cr_expect_eq(lab[i], i % 10, "label %d of %s", i, lpaths[k]);
        free(lab);
    }
}

Test(idx, limit_prefix_and_larger_than_count) {
    char err[CNB_ERR_LEN] = "";
    size_t len;
    unsigned char *file = slurp(FIX "/idx/tiny-images-idx3-ubyte", &len);
    int limits[4] = {1, 3, 12, 1000}, want[4] = {1, 3, 12, 12};
    for (int k = 0; k < 4; k++) {
        cnb_dataset d;
        cr_assert_eq(cnb_dataset_load_idx(FIX "/idx/tiny-images-idx3-ubyte.gz",
                                          FIX "/idx/tiny-labels-idx1-ubyte.gz", limits[k], 10, &d,
                                          err, sizeof err),
                     0, "limit %d: %s", limits[k], err);
        cr_assert_eq(d.count, want[k], "limit %d gave %d images", limits[k], d.count);
        expect_bytes("limited pixels", d.pixels, file + 16, (size_t)want[k] * 35);
        for (int i = 0; i < want[k]; i++) cr_expect_eq(d.labels[i], i % 10);
        cnb_dataset_free(&d);
    }
    free(file);
    uint8_t *px = NULL;
    int n, r, c;
    cr_assert_eq(cnb_idx_read_images(FIX "/idx/tiny-images-idx3-ubyte", -1, &px, &n, &r, &c, err,
                                     sizeof err),
                 -1);
    cr_assert(strstr(err, "limit"), "%s", err);
}

/* A limited read stops early: a .gz cut after 4 complete images (of the 10 the header promises)
 * still serves the first 4, but not the first 5. A raw file's size is checked up front. */
Test(idx, limit_does_not_read_past_what_it_needs) {
    char err[CNB_ERR_LEN] = "";
    const char *gz = FIX "/bad/truncated-images-idx3-ubyte.gz";
    uint8_t *px = NULL;
    int n = 0, r = 0, c = 0;
    cr_assert_eq(cnb_idx_read_images(gz, 4, &px, &n, &r, &c, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 4);
    size_t len;
    unsigned char *good = slurp(FIX "/idx/sq8-train-images-idx3-ubyte", &len);
    expect_bytes("first 4 images", px, good + 16, 4 * 64);
    free(good);
    free(px);
    px = NULL;
    cr_assert_eq(cnb_idx_read_images(gz, 5, &px, &n, &r, &c, err, sizeof err), -1);
    cr_assert_null(px);
    cr_assert(strstr(err, gz) && strstr(err, "first 5 of them need 336 bytes") &&
                  strstr(err, "ends after 316 bytes"),
              "message: %s", err);
    cr_assert_eq(cnb_idx_read_images(FIX "/bad/truncated-images-idx3-ubyte", 4, &px, &n, &r, &c,
                                     err, sizeof err),
                 -1);
    cr_assert(strstr(err, "truncated"), "message: %s", err);
}

/* ---- MNIST directory layouts --------------------------------------------------------------- */

static const char *const std_names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
static const char *const fix_names[4] = {"sq8-train-images-idx3-ubyte", "sq8-train-labels-idx1-ubyte",
                                         "sq8-test-images-idx3-ubyte", "sq8-test-labels-idx1-ubyte"};

/* Copies the sq8 fixtures into dir under the standard MNIST names (suffix "" or ".gz"). */
static void make_mnist_dir(const char *dir, const char *suffix) {
    make_dirs(dir);
    for (int i = 0; i < 4; i++) {
        char src[4096], dst[4096];
        snprintf(src, sizeof src, FIX "/idx/%s%s", fix_names[i], suffix);
        snprintf(dst, sizeof dst, "%s/%s%s", dir, std_names[i], suffix);
        copy_file(src, dst);
    }
}

static void expect_sq8(const cnb_dataset *tr, const cnb_dataset *te) {
    static const uint8_t tr_labels[10] = {9, 0, 3, 1, 2, 8, 4, 7, 5, 6};
    static const uint8_t te_labels[6] = {1, 1, 0, 9, 4, 2};
    cr_assert_eq(tr->count, 10);
    cr_assert_eq(te->count, 6);
    cr_assert_eq(tr->rows, 8);
    cr_assert_eq(tr->cols, 8);
    cr_assert_eq(te->rows, 8);
    cr_assert_eq(te->cols, 8);
    expect_bytes("sq8 train labels", tr->labels, tr_labels, 10);
    expect_bytes("sq8 test labels", te->labels, te_labels, 6);
    size_t len;
    unsigned char *f = slurp(FIX "/idx/sq8-train-images-idx3-ubyte", &len);
    expect_bytes("sq8 train pixels", tr->pixels, f + 16, 10 * 64);
    free(f);
    f = slurp(FIX "/idx/sq8-test-images-idx3-ubyte", &len);
    expect_bytes("sq8 test pixels", te->pixels, f + 16, 6 * 64);
    free(f);
}

/* The sq8 files under each directory layout the readers accept: made in dir (with each suffix
 * listed), opened as kind from top, checked whole, and one path the reader chose compared. */
#define LAYOUT_DIR(name) CNB_TEST_TMP_DIR "/" name
static const struct {
    const char *what, *kind, *dir, *top, *suffixes[2];
    int check_test_labels; /* which path is compared: the test labels', else the train images' */
    const char *want_path;
} layouts[] = {
    {"flat directory", "mnist", LAYOUT_DIR("data-mnist-flat"), LAYOUT_DIR("data-mnist-flat"),
     {"", NULL}, 0, LAYOUT_DIR("data-mnist-flat/train-images-idx3-ubyte")},
    {"torchvision raw directory", "mnist", LAYOUT_DIR("data-mnist-torch/MNIST/raw"),
     LAYOUT_DIR("data-mnist-torch"), {".gz", NULL}, 1,
     LAYOUT_DIR("data-mnist-torch/MNIST/raw/t10k-labels-idx1-ubyte.gz")},
    {"raw preferred when both exist, fashion-mnist dir override", "fashion-mnist",
     LAYOUT_DIR("data-both"), LAYOUT_DIR("data-both"), {"", ".gz"}, 0,
     LAYOUT_DIR("data-both/train-images-idx3-ubyte")},
};

Test(layout, mnist_flat_torchvision_raw_and_both) {
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        for (int k = 0; k < 2 && layouts[i].suffixes[k]; k++)
            make_mnist_dir(layouts[i].dir, layouts[i].suffixes[k]);
        cnb_dataset tr, te;
        open_ok(layouts[i].kind, layouts[i].top, 0, 0, &tr, &te);
        expect_sq8(&tr, &te);
        const char *got = layouts[i].check_test_labels ? te.labels_path : tr.images_path;
        cr_assert_str_eq(got, layouts[i].want_path, "%s", layouts[i].what);
        free_pair(&tr, &te);
    }
    /* A layout with limits. */
    cnb_dataset tr, te;
    open_ok("mnist", LAYOUT_DIR("data-mnist-torch"), 3, 2, &tr, &te);
    cr_assert_eq(tr.count, 3);
    cr_assert_eq(te.count, 2);
    free_pair(&tr, &te);
}

Test(layout, refusals_name_what_is_missing) {
    char err[CNB_ERR_LEN] = "";
    cnb_dataset tr, te;
    cr_assert_eq(cnb_dataset_open("mnist", NULL, 0, 0, &tr, &te, err, sizeof err), -1);
    cr_assert(strstr(err, "--data"), "mnist without a dir: %s", err);

    cr_assert_eq(cnb_dataset_open("cifar", NULL, 0, 0, &tr, &te, err, sizeof err), -1);
    cr_assert(strstr(err, "cifar") && strstr(err, "fashion-mnist") && strstr(err, "mnist, csv"),
              "unknown kind: %s", err);

    cr_assert_eq(cnb_dataset_open("mnist", "/nonexistent/dir", 0, 0, &tr, &te, err, sizeof err), -1);
    cr_assert(strstr(err, "/nonexistent/dir") && strstr(err, "does not exist"), "%s", err);

    /* A directory with only the training files: every path tried for the test images named. */
    const char *dir = CNB_TEST_TMP_DIR "/data-partial";
    make_dirs(dir);
    copy_file(FIX "/idx/sq8-train-images-idx3-ubyte", CNB_TEST_TMP_DIR "/data-partial/train-images-idx3-ubyte");
    copy_file(FIX "/idx/sq8-train-labels-idx1-ubyte", CNB_TEST_TMP_DIR "/data-partial/train-labels-idx1-ubyte");
    cr_assert_eq(cnb_dataset_open("mnist", dir, 0, 0, &tr, &te, err, sizeof err), -1);
    const char *tried[4] = {CNB_TEST_TMP_DIR "/data-partial/t10k-images-idx3-ubyte,",
                            CNB_TEST_TMP_DIR "/data-partial/t10k-images-idx3-ubyte.gz",
                            CNB_TEST_TMP_DIR "/data-partial/MNIST/raw/t10k-images-idx3-ubyte,",
                            CNB_TEST_TMP_DIR "/data-partial/MNIST/raw/t10k-images-idx3-ubyte.gz"};
    for (int i = 0; i < 4; i++) cr_expect(strstr(err, tried[i]), "'%s' not in: %s", tried[i], err);
    cr_assert_null(tr.pixels);
    cr_assert_null(te.pixels);

    cr_assert_eq(cnb_dataset_open("csv", NULL, 0, 0, &tr, &te, err, sizeof err), -1);
    cr_assert(strstr(err, "csv") && strstr(err, "--data"), "%s", err);
    cr_assert_eq(cnb_dataset_open("csv", dir, 0, 0, &tr, &te, err, sizeof err), -1);
    cr_assert(strstr(err, CNB_TEST_TMP_DIR "/data-partial/train.csv"), "%s", err);
}

/* ---- CSV ------------------------------------------------------------------------------------ */

Test(csv, same_images_as_the_idx_fixture_lf_and_crlf) {
    char err[CNB_ERR_LEN] = "";
    cnb_dataset tr, te;
    cr_assert_eq(cnb_csv_read(FIX "/csv/train.csv", 0, 10, &tr, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cnb_csv_read(FIX "/csv/test.csv", 0, 10, &te, err, sizeof err), 0, "(CRLF) %s",
                 err);
    expect_sq8(&tr, &te);
    cr_assert_eq(tr.classes, 10);
    cr_assert_str_eq(tr.images_path, FIX "/csv/train.csv");
    cr_assert_str_eq(tr.labels_path, FIX "/csv/train.csv");
    free_pair(&tr, &te);

    open_ok("csv", FIX "/csv", 0, 0, &tr, &te);
    expect_sq8(&tr, &te);
    free_pair(&tr, &te);
    cr_assert_eq(cnb_dataset_open("csv", FIX "/csv/train.csv," FIX "/csv/test.csv", 4, 0, &tr, &te,
                                  err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(tr.count, 4);
    cr_assert_eq(te.count, 6);
    free_pair(&tr, &te);
}

Test(csv, gzip_compressed_csv_reads_the_same) {
    const char *dir = CNB_TEST_TMP_DIR "/data-csvgz";
    make_dirs(dir);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "gzip -c " FIX "/csv/test.csv > %s/test.csv.gz", dir);
    if (system(cmd) != 0) cr_skip_test("cannot run gzip");
    char err[CNB_ERR_LEN] = "";
    cnb_dataset a, b;
    cr_assert_eq(cnb_csv_read(FIX "/csv/test.csv", 0, 10, &a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cnb_csv_read(CNB_TEST_TMP_DIR "/data-csvgz/test.csv.gz", 0, 10, &b, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(a.count, b.count);
    expect_bytes("csv vs csv.gz", a.pixels, b.pixels, (size_t)a.count * 64);
    cnb_dataset_free(&a);
    cnb_dataset_free(&b);
}

/* Lines longer than the reader's first buffer (60x60 images: rows of ~14 KB), written here with
 * a final line that has no newline, and spot-checked against the values written. */
Test(csv, long_lines_and_no_final_newline) {
    enum { SIDE = 60, NPIX = SIDE * SIDE, ROWS = 3 };
    const char *dir = CNB_TEST_TMP_DIR "/data-csvlong";
    make_dirs(dir);
    const char *path = CNB_TEST_TMP_DIR "/data-csvlong/big.csv";
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    fputs("label", f);
    for (int i = 0; i < NPIX; i++) fprintf(f, ",pixel%d", i + 1);
    for (int r = 0; r < ROWS; r++) {
        fprintf(f, "\n%d", 7 - r);
        for (int i = 0; i < NPIX; i++) fprintf(f, ",%d", (i * 7 + r * 13) % 256);
    }
    fclose(f);
    char err[CNB_ERR_LEN] = "";
    cnb_dataset d;
    cr_assert_eq(cnb_csv_read(path, 0, 10, &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(d.count, ROWS);
    cr_assert_eq(d.rows, SIDE);
    cr_assert_eq(d.cols, SIDE);
    for (int r = 0; r < ROWS; r++) {
        cr_expect_eq(d.labels[r], 7 - r);
        for (int i = 0; i < NPIX; i++)
            if (d.pixels[(size_t)r * NPIX + i] != (i * 7 + r * 13) % 256)
                cr_assert_fail("row %d pixel %d: got %u, expected %d", r, i,
                               d.pixels[(size_t)r * NPIX + i], (i * 7 + r * 13) % 256);
    }
    cnb_dataset_free(&d);
}

/* ---- refusals ------------------------------------------------------------------------------- */

enum reader { IMAGES, LABELS, CSV };

/* Runs one reader on a damaged file; it must return -1, hand back nothing, and say the file's
 * path and the key phrase. */
static void expect_refusal(enum reader which, const char *path, const char *phrase) {
    char err[CNB_ERR_LEN] = "";
    int rc;
    uint8_t *buf = (uint8_t *)1;
    if (which == IMAGES) {
        int n = 0, r = 0, c = 0;
        rc = cnb_idx_read_images(path, 0, &buf, &n, &r, &c, err, sizeof err);
    } else if (which == LABELS) {
        int n = 0;
        rc = cnb_idx_read_labels(path, 0, &buf, &n, 10, err, sizeof err);
    } else {
        cnb_dataset d;
        rc = cnb_csv_read(path, 0, 10, &d, err, sizeof err);
        buf = d.pixels;
    }
    cr_assert_eq(rc, -1, "%s was accepted", path);
    cr_assert_null(buf, "%s: refused but returned data", path);
    cr_assert(strstr(err, path), "message does not name the file %s: '%s'", path, err);
    cr_assert(strstr(err, phrase), "message lacks '%s': '%s'", phrase, err);
    printf("refused as expected: %s\n", err);
}

#define REFUSE(suite, name, which, file, phrase)                                                \
    Test(suite, name) { expect_refusal(which, FIX "/" file, phrase); }

REFUSE(refuse_idx, wrong_type_byte, IMAGES, "bad/wrong-type-images-idx3-ubyte",
       "data type 0x0D (float)")
REFUSE(refuse_idx, wrong_dims_count, IMAGES, "bad/wrong-dims-images-idx3-ubyte",
       "2 dimensions, expected 3")
REFUSE(refuse_idx, not_an_idx_file, IMAGES, "bad/not-idx-images-idx3-ubyte", "not an IDX file")
REFUSE(refuse_idx, labels_file_as_images, IMAGES, "idx/sq8-train-labels-idx1-ubyte",
       "is this a labels file?")
REFUSE(refuse_idx, images_file_as_labels, LABELS, "idx/sq8-train-images-idx3-ubyte.gz",
       "is this an images file?")
REFUSE(refuse_idx, truncated_header, IMAGES, "bad/short-header-images-idx3-ubyte",
       "truncated header")
REFUSE(refuse_idx, truncated_data_raw, IMAGES, "bad/truncated-images-idx3-ubyte",
       "truncated: header promises 10 images of 8x8 (656 bytes with the header) but the file "
       "ends after 316 bytes")
REFUSE(refuse_idx, truncated_data_gz, IMAGES, "bad/truncated-images-idx3-ubyte.gz",
       "truncated: header promises 10 images of 8x8 (656 bytes with the 16-byte header) but the "
       "file ends after 316 bytes")
REFUSE(refuse_idx, truncated_labels, LABELS, "bad/truncated-labels-idx1-ubyte",
       "header promises 20 labels")
REFUSE(refuse_idx, trailing_garbage_raw, IMAGES, "bad/trailing-images-idx3-ubyte",
       "trailing garbage: 7 bytes")
REFUSE(refuse_idx, trailing_garbage_gz, IMAGES, "bad/trailing-images-idx3-ubyte.gz",
       "trailing garbage: 7 bytes")
REFUSE(refuse_idx, dims_overflow, IMAGES, "bad/overflow-images-idx3-ubyte", "overflows size_t")
REFUSE(refuse_idx, dims_over_limit, IMAGES, "bad/huge-images-idx3-ubyte",
       "100000 images of 100x200 = 2000000000 bytes, over the 1024 MiB limit")
REFUSE(refuse_idx, zero_rows, IMAGES, "bad/zero-rows-images-idx3-ubyte", "10 images of 0x8 (zero)")
REFUSE(refuse_idx, zero_labels, LABELS, "bad/zero-count-labels-idx1-ubyte", "0 labels")
REFUSE(refuse_idx, label_out_of_range, LABELS, "bad/label10-labels-idx1-ubyte",
       "label 10 at index 3 is out of range [0, 10)")
REFUSE(refuse_idx, corrupt_gzip, IMAGES, "bad/corrupt-images-idx3-ubyte.gz", "corrupt gzip stream")
REFUSE(refuse_idx, cut_gzip, IMAGES, "bad/cut-images-idx3-ubyte.gz", "corrupt gzip stream")
REFUSE(refuse_idx, missing_file, IMAGES, "idx/no-such-file-idx3-ubyte", "No such file")
REFUSE(refuse_idx, directory_not_file, IMAGES, "idx", "directory")

Test(refuse_idx, image_and_label_counts_disagree) {
    char err[CNB_ERR_LEN] = "";
    const char *im = FIX "/idx/sq8-train-images-idx3-ubyte", *lb = FIX "/bad/count9-labels-idx1-ubyte";
    /* With and without a limit: the headers disagree even if the first 5 of each exist. */
    for (int limit = 0; limit <= 5; limit += 5) {
        cnb_dataset d;
        cr_assert_eq(cnb_dataset_load_idx(im, lb, limit, 10, &d, err, sizeof err), -1,
                     "limit %d accepted", limit);
        cr_assert_null(d.pixels);
        cr_assert_null(d.labels);
        cr_assert(strstr(err, im) && strstr(err, lb) && strstr(err, "10 images here but 9 labels"),
                  "limit %d: %s", limit, err);
    }
}

Test(refuse_idx, classes_out_of_byte_range) {
    char err[CNB_ERR_LEN] = "";
    uint8_t *lab = NULL;
    int n;
    cr_assert_eq(cnb_idx_read_labels(FIX "/idx/tiny-labels-idx1-ubyte", 0, &lab, &n, 0, err,
                                     sizeof err),
                 -1);
    cr_assert(strstr(err, "classes"), "%s", err);
    /* 9 classes: label 9 (index 9 of tiny) is out of range. */
    cr_assert_eq(cnb_idx_read_labels(FIX "/idx/tiny-labels-idx1-ubyte", 0, &lab, &n, 9, err,
                                     sizeof err),
                 -1);
    cr_assert(strstr(err, "label 9 at index 9 is out of range [0, 9)"), "%s", err);
}

REFUSE(refuse_csv, empty_file, CSV, "bad/empty.csv", "empty file")
REFUSE(refuse_csv, header_only, CSV, "bad/header-only.csv", "no data rows")
REFUSE(refuse_csv, no_header, CSV, "bad/no-header.csv", "first column is '9', expected 'label'")
REFUSE(refuse_csv, bad_header, CSV, "bad/bad-header.csv", "column 18 is 'pixle17', expected 'pixel17'")
REFUSE(refuse_csv, non_square, CSV, "bad/nonsquare.csv", "63 pixel columns is not a square")
REFUSE(refuse_csv, wrong_column_count, CSV, "bad/columns.csv", "line 4 has 64 columns, expected 65")
REFUSE(refuse_csv, extra_column, CSV, "bad/extra-column.csv", "line 2 has 66 columns, expected 65")
REFUSE(refuse_csv, non_numeric, CSV, "bad/nonnumeric.csv", "line 3, column 11: 'abc' is not an integer")
REFUSE(refuse_csv, fraction, CSV, "bad/fraction.csv", "line 2, column 6: '3.5' is not an integer")
REFUSE(refuse_csv, pixel_over_255, CSV, "bad/range.csv",
       "line 3, column 21: pixel value '256' is out of range 0..255")
REFUSE(refuse_csv, negative_pixel, CSV, "bad/negative.csv",
       "line 4, column 65: pixel value '-1' is out of range")
REFUSE(refuse_csv, label_out_of_range, CSV, "bad/label.csv", "line 3: label '12' is out of range [0, 10)")
REFUSE(refuse_csv, blank_line_inside, CSV, "bad/blank-line.csv", "line 3 is empty")
REFUSE(refuse_csv, corrupt_gzip, CSV, "bad/corrupt.csv.gz", "corrupt gzip stream")

/* ---- conversion and shuffle ----------------------------------------------------------------- */

Test(convert, to_float_matches_torchvision_formula) {
    uint8_t px[6] = {0, 51, 255, 128, 1, 254};
    cnb_dataset d = {.count = 1, .rows = 2, .cols = 3, .classes = 10, .pixels = px};
    float out[6];
    cnb_dataset_to_float(&d, 0.5f, 0.5f, out);
    /* Hand-computed: (p/255 - 0.5) / 0.5 = 2p/255 - 1. */
    const double want[6] = {-1.0, -0.6, 1.0, 2 * 128 / 255.0 - 1, 2 / 255.0 - 1, 2 * 254 / 255.0 - 1};
    for (int i = 0; i < 6; i++)
        cr_expect(fabs(out[i] - want[i]) < 2e-7, "pixel %u: got %.9g, expected %.9g", px[i],
                  out[i], want[i]);
    cr_expect_eq(out[0], -1.0f);
    cr_expect_eq(out[2], 1.0f);
    cnb_dataset_to_float(&d, 0.0f, 1.0f, out);
    for (int i = 0; i < 6; i++)
        cr_expect(fabs(out[i] - px[i] / 255.0) < 1e-7, "pixel %u: got %.9g", px[i], out[i]);
    cnb_dataset_to_float(&d, 0.1307f, 0.3081f, out);
    cr_expect(fabs(out[0] - (-0.1307 / 0.3081)) < 1e-6, "MNIST normalization of 0: %.9g", out[0]);
    cr_expect(fabs(out[2] - (1 - 0.1307) / 0.3081) < 1e-6, "MNIST normalization of 255: %.9g",
              out[2]);
}

static void identity(int32_t *a, int n) {
    for (int i = 0; i < n; i++) a[i] = i;
}

Test(shuffle, deterministic_permutation) {
    enum { N = 1000 };
    static int32_t a[N], b[N], c[N];
    cnb_rng r1, r2, r3;
    cnb_rng_seed(&r1, 42);
    cnb_rng_seed(&r2, 42);
    cnb_rng_seed(&r3, 43);
    identity(a, N);
    identity(b, N);
    identity(c, N);
    cnb_shuffle(&r1, a, N);
    cnb_shuffle(&r2, b, N);
    cnb_shuffle(&r3, c, N);
    int same_ab = 1, same_ac = 1, fixed = 0;
    static int seen[N];
    for (int i = 0; i < N; i++) {
        same_ab &= a[i] == b[i];
        same_ac &= a[i] == c[i];
        fixed += a[i] == i;
        cr_assert(a[i] >= 0 && a[i] < N, "a[%d] = %d out of range", i, a[i]);
        cr_assert_eq(seen[a[i]], 0, "value %d appears twice", a[i]);
        seen[a[i]] = 1;
    }
    cr_expect(same_ab, "same seed gave different permutations");
    cr_expect(!same_ac, "seeds 42 and 43 gave the same permutation");
    cr_expect_lt(fixed, 20, "%d of %d items stayed in place: not shuffled", fixed, N);
    /* Trivial sizes are left alone. */
    int32_t one = 7;
    cnb_shuffle(&r1, &one, 1);
    cr_expect_eq(one, 7);
    cnb_shuffle(&r1, NULL, 0);
}

/* All 6 orders of 3 items come out about equally often (an off-by-one in the pick range, e.g.
 * Sattolo's variant, never yields the identity; a biased one skews the counts). */
Test(shuffle, uniform_over_permutations) {
    cnb_rng r;
    cnb_rng_seed(&r, 7);
    int counts[6] = {0};
    const int trials = 60000;
    for (int t = 0; t < trials; t++) {
        int32_t a[3] = {0, 1, 2};
        cnb_shuffle(&r, a, 3);
        cr_assert(a[0] != a[1] && a[1] != a[2] && a[0] != a[2]);
        counts[a[0] * 2 + (a[1] > a[2])]++; /* first item and the order of the other two */
    }
    for (int k = 0; k < 6; k++)
        cr_expect(abs(counts[k] - trials / 6) < 500, "order %d came %d times of %d (expected ~%d)",
                  k, counts[k], trials, trials / 6);
}
