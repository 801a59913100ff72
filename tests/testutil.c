/* testutil.c — see testutil.h. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compare.h"

void tu_open(tu_backend *b, const char *name, int threads) {
    char err[CNB_ERR_LEN];
    cnb_config cfg = {.size = sizeof(cnb_config), .threads = threads};
    memset(b, 0, sizeof *b);
    if (cnb_open_backend(name, &cfg, &b->lib, &b->ctx, err, sizeof err) != 0)
        cr_assert_fail("cannot open backend %s: %s", name, err);
    b->api = b->lib.api;
}

int tu_try_open(tu_backend *b, const char *name, int threads, char *why, size_t why_len) {
    cnb_config cfg = {.size = sizeof(cnb_config), .threads = threads};
    return tu_try_open_cfg(b, name, &cfg, why, why_len);
}

int tu_try_open_cfg(tu_backend *b, const char *name, const cnb_config *cfg, char *why,
                    size_t why_len) {
    memset(b, 0, sizeof *b);
    if (cnb_open_backend(name, cfg, &b->lib, &b->ctx, why, why_len) != 0) return -1;
    b->api = b->lib.api;
    return 0;
}

void tu_close(tu_backend *b) {
    cnb_close_backend(&b->lib, b->ctx);
    memset(b, 0, sizeof *b);
}

void tu_check_status(tu_backend *b, cnb_status st, const char *what) {
    if (st != CNB_OK)
        cr_assert_fail("%s: %s failed: %s (%s)", b->api->name, what, cnb_status_str(st),
                 b->api->last_error(b->ctx));
}

void *tu_dev_bytes(tu_backend *b, const void *host, size_t bytes) {
    void *p = NULL;
    tu_check_status(b, b->api->alloc(b->ctx, &p, bytes), "alloc");
    if (host) tu_check_status(b, b->api->upload(b->ctx, p, host, bytes), "upload");
    return p;
}

float *tu_dev_from(tu_backend *b, const float *host, size_t count) {
    return tu_dev_bytes(b, host, count * sizeof(float));
}

void tu_to_host(tu_backend *b, void *host, const void *dev, size_t bytes) {
    tu_check_status(b, b->api->download(b->ctx, host, dev, bytes), "download");
}

void tu_dev_free(tu_backend *b, void *dev) {
    tu_check_status(b, b->api->free(b->ctx, dev), "free");
}

float *tu_random(cnb_rng *rng, size_t count, float lo, float hi) {
    float *p = malloc((count ? count : 1) * sizeof(float));
    cr_assert_not_null(p);
    for (size_t i = 0; i < count; i++) p[i] = lo + (hi - lo) * (float)cnb_rng_uniform(rng);
    return p;
}

float *tu_small_ints(cnb_rng *rng, size_t count, int lo, int hi, double zero_share) {
    float *p = malloc((count ? count : 1) * sizeof(float));
    cr_assert_not_null(p);
    for (size_t i = 0; i < count; i++) {
        if (cnb_rng_uniform(rng) < zero_share) {
            p[i] = 0.0f;
            continue;
        }
        int v;
        do v = lo + (int)cnb_rng_below(rng, (uint32_t)(hi - lo + 1));
        while (v == 0 && lo != 0 && hi != 0 && lo < 0 && hi > 0);
        p[i] = (float)v;
    }
    return p;
}

double tu_expect_close(const char *what, const float *got, const float *ref, size_t count,
                       double rel_l2_tol) {
    cnb_compare_stats s;
    cnb_compare(got, ref, count, rel_l2_tol * 10, &s);
    if (!cnb_compare_passed(&s, rel_l2_tol)) {
        fprintf(stderr, "%s: rel_l2 %.3g > %.3g, max_abs %.3g at [%zu], max_rel %.3g, "
                        "mismatches %zu/%zu\n",
                what, s.rel_l2, rel_l2_tol, s.max_abs, s.max_abs_index, s.max_rel, s.mismatches,
                s.count);
        cnb_compare_print_mismatches(stderr, got, ref, count, rel_l2_tol * 10, 5);
        cr_expect_fail("%s: relative L2 error %.3g exceeds %.3g (max abs diff %.3g at index %zu)", what,
                s.rel_l2, rel_l2_tol, s.max_abs, s.max_abs_index);
    }
    return s.rel_l2;
}

void tu_expect_equal(const char *what, const float *got, const float *ref, size_t count) {
    size_t bad = 0;
    for (size_t i = 0; i < count; i++) {
        if (memcmp(&got[i], &ref[i], sizeof(float)) != 0) {
            if (bad < 5)
                fprintf(stderr, "%s: [%zu] expected %.9g got %.9g\n", what, i, ref[i], got[i]);
            bad++;
        }
    }
    cr_expect_eq(bad, 0, "%s: %zu of %zu values differ bit-wise", what, bad, count);
}

/* ---- appended by the robustness work ---- */

int tu_run(const char *cmd, char **out) {
    static int counter;
    char path[512], full[16384];
    mkdir(CNB_TEST_TMP_DIR, 0755);
    snprintf(path, sizeof path, "%s/tu_run_%d_%d.txt", CNB_TEST_TMP_DIR, (int)getpid(),
             counter++);
    snprintf(full, sizeof full, "( %s ) > '%s' 2>&1 < /dev/null", cmd, path);
    int status = system(full);
    FILE *f = fopen(path, "r");
    *out = NULL;
    if (f) {
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        *out = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
        if (*out && n > 0 && fread(*out, 1, (size_t)n, f) != (size_t)n) (*out)[0] = '\0';
        fclose(f);
        remove(path);
    }
    if (!*out) *out = calloc(1, 1);
    if (status == -1) return -1;
    /* sh reports a child killed by a signal as 128 + signal. */
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int tu_runf(char **out, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    cr_assert_geq(len, 0, "bad command format: %s", fmt);
    char *cmd = malloc((size_t)len + 1);
    cr_assert_not_null(cmd);
    va_start(ap, fmt);
    vsnprintf(cmd, (size_t)len + 1, fmt, ap);
    va_end(ap);
    int rc = tu_run(cmd, out);
    free(cmd);
    return rc;
}

void tu_conv_each_connection(const cnb_conv_desc *d, void *user,
                             void (*visit)(void *user, int yi, int xi, int wi)) {
    for (int b = 0; b < d->n; b++)
        for (int o = 0; o < d->k; o++)
            for (int oh = 0; oh < d->p; oh++)
                for (int ow = 0; ow < d->q; ow++) {
                    int yi = ((b * d->k + o) * d->p + oh) * d->q + ow;
                    for (int ci = 0; ci < d->c; ci++)
                        for (int i = 0; i < d->r; i++)
                            for (int j = 0; j < d->s; j++) {
                                int ih = oh * d->stride_h - d->pad_h + i;
                                int iw = ow * d->stride_w - d->pad_w + j;
                                if (ih < 0 || ih >= d->h || iw < 0 || iw >= d->w) continue;
                                visit(user, yi, ((b * d->c + ci) * d->h + ih) * d->w + iw,
                                      ((o * d->c + ci) * d->r + i) * d->s + j);
                            }
                }
}

/* Output size along one axis: floor((in + 2 pad - filter) / stride) + 1. */
static int out_size(int in, int pad, int filter, int stride) {
    return (in + 2 * pad - filter) / stride + 1;
}

cnb_conv_desc tu_conv_desc(int n, int c, int h, int w, int k, int r, int s, int sh, int sw, int ph,
                           int pw) {
    return (cnb_conv_desc){.n = n, .c = c, .h = h, .w = w, .k = k, .r = r, .s = s,
                           .stride_h = sh, .stride_w = sw, .pad_h = ph, .pad_w = pw,
                           .p = out_size(h, ph, r, sh), .q = out_size(w, pw, s, sw)};
}

cnb_pool_desc tu_pool_desc(int mode, int n, int c, int h, int w, int kh, int kw, int sh, int sw,
                           int ph, int pw) {
    return (cnb_pool_desc){.mode = mode, .n = n, .c = c, .h = h, .w = w, .kh = kh, .kw = kw,
                           .stride_h = sh, .stride_w = sw, .pad_h = ph, .pad_w = pw,
                           .p = out_size(h, ph, kh, sh), .q = out_size(w, pw, kw, sw)};
}

cnb_model *tu_load_model(const char *name) {
    char path[4096], err[CNB_ERR_LEN];
    cnb_model *m = calloc(1, sizeof *m);
    cr_assert_not_null(m);
    cr_assert_eq(cnb_model_resolve(name, path, sizeof path, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cnb_model_load(path, m, NULL, err, sizeof err), 0, "%s", err);
    return m;
}

void tu_open_fashion(int train_limit, int test_limit, cnb_dataset *train, cnb_dataset *test) {
    char err[CNB_ERR_LEN];
    cr_assert_eq(cnb_dataset_open("fashion-mnist", NULL, train_limit, test_limit, train, test,
                                  err, sizeof err),
                 0, "%s", err);
}

cnb_trainer *tu_trainer(const cnb_backend *api, cnb_context *ctx, const cnb_model *m,
                        const cnb_dataset *train, const cnb_dataset *test,
                        const cnb_run_settings *s) {
    char err[CNB_ERR_LEN];
    cnb_trainer *t = NULL;
    cr_assert_eq(cnb_trainer_create(api, ctx, m, train, test, s, &t, err, sizeof err), 0, "%s",
                 err);
    return t;
}

cnb_run_result *tu_train_to_end(cnb_trainer *t) {
    cnb_run_result *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    cr_assert_eq(cnb_trainer_run(t, r), 0, "%s", r->message);
    return r;
}

void tu_train_free(cnb_trainer *t, cnb_run_result *r) {
    if (t) cnb_trainer_destroy(t);
    if (r) {
        cnb_run_result_free(r);
        free(r);
    }
}

char *tu_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    size_t got = fread(buf, 1, (size_t)n, f);
    cr_assert_eq(got, (size_t)n, "%s: short read", path);
    buf[got] = '\0';
    fclose(f);
    if (len) *len = got;
    return buf;
}

cJSON *tu_read_json(const char *path) {
    size_t len;
    char *text = tu_slurp(path, &len);
    cJSON *root = cJSON_Parse(text);
    free(text);
    cr_assert_not_null(root, "%s does not parse", path);
    return root;
}

void tu_make_dir(char *dir, size_t dir_len, const char *name) {
    snprintf(dir, dir_len, "%s/%s_%d", CNB_TEST_TMP_DIR, name, (int)getpid());
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

void tu_remove_dir(const char *dir) {
    if (!dir[0]) return;
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

const char *tu_no_leak_check(int loads_onednn) {
    if (!getenv("CNB_SANITIZED") || !loads_onednn) return "";
    return "ASAN_OPTIONS=\"$ASAN_OPTIONS:detect_leaks=0\" ";
}
