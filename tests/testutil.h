/* testutil.h — helpers shared by the Criterion tests: random tensors, backend handles, and
 * comparisons that print what they compared when they fail. */
#ifndef CNB_TESTUTIL_H
#define CNB_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cnb_abi.h"
#include "data.h"
#include "loader.h"
#include "model.h"
#include "train.h"
#include "util.h"

/* A loaded backend with a live context; tu_open fails the current test if it cannot load. */
typedef struct tu_backend {
    cnb_loaded_backend lib;
    cnb_context *ctx;
    const cnb_backend *api;
} tu_backend;
void tu_open(tu_backend *b, const char *name, int threads);
/* Like tu_open but returns -1 with the reason (not built here, no device, ...) instead of
 * failing; the caller then skips with cr_skip_test and prints "[SKIP-ALL] reason". */
int tu_try_open(tu_backend *b, const char *name, int threads, char *why, size_t why_len);
/* The same with a whole config (direct_conv, deterministic, ...). */
int tu_try_open_cfg(tu_backend *b, const char *name, const cnb_config *cfg, char *why,
                    size_t why_len);
void tu_close(tu_backend *b);

/* Device buffers for a test: copy a host array up, or a device array down (fail on error). */
float *tu_dev_from(tu_backend *b, const float *host, size_t count);
void *tu_dev_bytes(tu_backend *b, const void *host, size_t bytes); /* host may be NULL */
void tu_to_host(tu_backend *b, void *host, const void *dev, size_t bytes);
void tu_dev_free(tu_backend *b, void *dev);
/* Fail the test with the backend's message if st is not CNB_OK. */
void tu_check_status(tu_backend *b, cnb_status st, const char *what);

/* Host tensors. */
float *tu_random(cnb_rng *rng, size_t count, float lo, float hi); /* uniform, never all zero */
float *tu_small_ints(cnb_rng *rng, size_t count, int lo, int hi, double zero_share);

/* Relative-L2 comparison; prints the first mismatches and the largest errors on failure and
 * fails the test. Returns the relative L2 error. */
double tu_expect_close(const char *what, const float *got, const float *ref, size_t count,
                       double rel_l2_tol);
/* Bit-for-bit comparison for exact mode. */
void tu_expect_equal(const char *what, const float *got, const float *ref, size_t count);

/* ---- appended by the robustness work ---- */

/* Run `sh -c cmd` with stdin from /dev/null, capturing stdout and stderr together into *out
 * (malloc'd, NUL-terminated). Returns the exit code, or 128 + the signal that killed it. */
int tu_run(const char *cmd, char **out);
/* tu_run on a command formatted like printf. */
int tu_runf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A shell prefix for a cnnbench run that loads onednn: under tools/sanitize.sh LeakSanitizer's
 * exit-time scan crashes ("Tracer caught signal 11") once oneDNN's OpenMP threads exist, so such
 * runs keep ASan and UBSan but drop the leak scan; "" otherwise. */
const char *tu_no_leak_check(int loads_onednn);

/* The model file `name` (as --model takes it) resolved and loaded into a calloc'd model. */
cnb_model *tu_load_model(const char *name);
/* fashion-mnist, limited to the first train_limit / test_limit examples (0: all). */
void tu_open_fashion(int train_limit, int test_limit, cnb_dataset *train, cnb_dataset *test);

/* A trainer for m on api/ctx with settings s; fails the test if it cannot be made. */
cnb_trainer *tu_trainer(const cnb_backend *api, cnb_context *ctx, const cnb_model *m,
                        const cnb_dataset *train, const cnb_dataset *test,
                        const cnb_run_settings *s);
/* Runs t to its end; fails the test unless the run completed. The result is calloc'd. */
cnb_run_result *tu_train_to_end(cnb_trainer *t);
/* Destroys t and frees r (either may be NULL). */
void tu_train_free(cnb_trainer *t, cnb_run_result *r);

/* A whole file, NUL-terminated (malloc'd); *len gets its length when len is not NULL. */
char *tu_slurp(const char *path, size_t *len);
/* A JSON file parsed (cJSON_Delete it); fails the test if it is missing or does not parse. */
cJSON *tu_read_json(const char *path);
/* A fresh scratch directory CNB_TEST_TMP_DIR/<name>_<pid> into dir; tu_remove_dir deletes it
 * (a test suite's .fini; nothing when dir is empty, a message if it cannot). */
void tu_make_dir(char *dir, size_t dir_len, const char *name);
void tu_remove_dir(const char *dir);

/* Layer descriptors with the output size filled in by the usual floor formula
 * (in + 2 pad - filter) / stride + 1, written here once for every test that builds them. */
cnb_conv_desc tu_conv_desc(int n, int c, int h, int w, int k, int r, int s, int sh, int sw, int ph,
                           int pw);
cnb_pool_desc tu_pool_desc(int mode, int n, int c, int h, int w, int kh, int kw, int sh, int sw,
                           int ph, int pw);

/* Direct convolution loops, written independently of any backend: visit(user, yi, xi, wi) for
 * every connection of an output (yi) to an input (xi) through a weight (wi), padding skipped, in
 * the order (b, o, oh, ow, ci, i, j). */
void tu_conv_each_connection(const cnb_conv_desc *d, void *user,
                             void (*visit)(void *user, int yi, int xi, int wi));

#endif
