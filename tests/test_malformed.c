/* test_malformed.c — hand-made malformed inputs (tests/malformed/, plus the damaged data files of
 * tests/data/bad and tests/data/models/bad_*.cfg by reference) and bad flags, each passed to the
 * cnnbench program: every one must end with a non-zero exit code and a message naming the file
 * or flag, never a crash (a signal) and never a hang (each run is bounded by `timeout`). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define MAL CNB_SOURCE_DIR "/tests/malformed"
#define BAD CNB_TEST_DATA_DIR "/bad"
/* A tiny model on the 8x8 CSV fixture: runs start in milliseconds. */
#define TINY "--backend naive --model " MAL "/tiny.cfg --dataset csv --data " CNB_TEST_DATA_DIR "/csv --steps 2 --quiet --no-progress --out " CNB_TEST_TMP_DIR "/malformed.json"

typedef struct mcase {
    const char *args;   /* flags after the program name */
    const char *named;  /* the file or flag the message must name */
} mcase;

static const mcase cases[] = {
    /* checkpoints: every rule of the safetensors reader */
    {TINY " --resume " MAL "/ckpt-empty.safetensors", "ckpt-empty.safetensors"},
    {TINY " --resume " MAL "/ckpt-short-length.safetensors", "ckpt-short-length.safetensors"},
    {TINY " --resume " MAL "/ckpt-header-past-end.safetensors", "ckpt-header-past-end.safetensors"},
    {TINY " --resume " MAL "/ckpt-truncated.safetensors", "ckpt-truncated.safetensors"},
    {TINY " --resume " MAL "/ckpt-not-json.safetensors", "ckpt-not-json.safetensors"},
    {TINY " --resume " MAL "/ckpt-json-array.safetensors", "ckpt-json-array.safetensors"},
    {TINY " --resume " MAL "/ckpt-wrong-dtype.safetensors", "ckpt-wrong-dtype.safetensors"},
    {TINY " --resume " MAL "/ckpt-wrong-shape.safetensors", "ckpt-wrong-shape.safetensors"},
    {TINY " --resume " MAL "/ckpt-negative-shape.safetensors", "ckpt-negative-shape.safetensors"},
    {TINY " --resume " MAL "/ckpt-offsets-past-end.safetensors", "ckpt-offsets-past-end.safetensors"},
    {TINY " --resume " MAL "/ckpt-offsets-reversed.safetensors", "ckpt-offsets-reversed.safetensors"},
    {TINY " --resume " MAL "/ckpt-overlap.safetensors", "ckpt-overlap.safetensors"},
    {TINY " --resume " MAL "/ckpt-missing-tensor.safetensors", "ckpt-missing-tensor.safetensors"},
    {TINY " --resume " MAL "/ckpt-extra-tensor.safetensors", "ckpt-extra-tensor.safetensors"},
    {TINY " --resume " MAL "/ckpt-partial-optimizer.safetensors", "ckpt-partial-optimizer.safetensors"},
    {TINY " --resume " MAL "/ckpt-metadata-number.safetensors", "ckpt-metadata-number.safetensors"},
    {TINY " --resume " MAL "/ckpt-metadata-garbage.safetensors", "ckpt-metadata-garbage.safetensors"},
    {TINY " --resume " MAL "/ckpt-partial-position.safetensors", "ckpt-partial-position.safetensors"},
    {TINY " --load " MAL "/ckpt-wrong-model.safetensors", "ckpt-wrong-model.safetensors"},
    {TINY " --resume " MAL "/ckpt-bad-position.safetensors", "ckpt-bad-position.safetensors"},
    {TINY " --resume " MAL "/ckpt-missing-offsets.safetensors", "ckpt-missing-offsets.safetensors"},
    {TINY " --load " MAL "/tiny.cfg", "tiny.cfg"},                  /* a text file as weights */
    {TINY " --load " MAL, MAL},                                      /* a directory */
    {TINY " --load /nonexistent/w.safetensors", "/nonexistent/w.safetensors"},
    {"--backend naive --model network --train-limit 10 --test-limit 10 --steps 1 --quiet --resume "
     MAL "/good.safetensors", "good.safetensors"},                   /* another model's file */
    /* model files */
    {"--backend naive --model " MAL "/model-empty.cfg", "model-empty.cfg"},
    {"--backend naive --model " MAL "/model-unknown-section.cfg", "model-unknown-section.cfg"},
    {"--backend naive --model " MAL "/model-too-small.cfg", "model-too-small.cfg"},
    {"--backend naive --model " MAL "/model-huge-number.cfg", "model-huge-number.cfg"},
    {"--backend naive --model " MAL "/model-wrong-classes.cfg", "model-wrong-classes.cfg"},
    {"--backend naive --model " MAL "/model-no-equals.cfg", "model-no-equals.cfg"},
    {"--backend naive --model " MAL "/model-unclosed-section.cfg", "model-unclosed-section.cfg"},
    {"--backend naive --model " MAL "/model-binary.cfg", "model-binary.cfg"},
    {"--backend naive --model " MAL "/model-nan-lr.cfg", "model-nan-lr.cfg"},
    {"--backend naive --model " CNB_TEST_DATA_DIR "/models/bad_kernel_too_big.cfg", "bad_kernel_too_big.cfg"},
    /* data files */
    {"--backend naive --model " MAL "/tiny.cfg --dataset csv --data " MAL "/data-nul.csv," MAL "/data-nul.csv --quiet", "data-nul.csv"},
    {"--backend naive --model " MAL "/tiny.cfg --dataset csv --data " MAL "/data-long-line.csv," MAL "/data-long-line.csv --quiet", "data-long-line.csv"},
    {"--backend naive --model " MAL "/tiny.cfg --dataset csv --data " MAL "/data-huge-pixel.csv," MAL "/data-huge-pixel.csv --quiet", "data-huge-pixel.csv"},
    {"--backend naive --model " MAL "/tiny.cfg --dataset csv --data " BAD "/nonsquare.csv," BAD "/nonsquare.csv --quiet", "nonsquare.csv"},
    {"--backend naive --model " MAL "/tiny.cfg --dataset csv --data " BAD "/corrupt.csv.gz," BAD "/corrupt.csv.gz --quiet", "corrupt.csv.gz"},
    {"--backend naive --model " MAL "/tiny.cfg --dataset mnist --data " MAL " --quiet", MAL},
    {"--backend naive --dataset csv --data " CNB_TEST_DATA_DIR "/csv/train.csv," BAD "/label.csv --quiet", "label.csv"},
    /* flags */
    {"--backend naive --checkpoint-every 0", "--checkpoint-every"},
    {"--backend naive --checkpoint-every -5", "--checkpoint-every"},
    {"--backend naive --load a --resume b", "--resume"},
    {"--backend naive --eval-only --resume b", "--eval-only"},
    {"--backend naive --steps 1x", "--steps"},
    {"--backend naive --lr inf", "--lr"},
    {"--backend naive --save", "--save"},
    {"--backend " MAL "/tiny.cfg", "tiny.cfg"},                     /* not a shared object */
    {"--backend /dev/null", "/dev/null"},                           /* not a regular file */
};

Test(malformed, every_input_fails_cleanly_naming_the_culprit, .timeout = 300) {
    size_t n = sizeof cases / sizeof cases[0];
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        char cmd[8192], *out;
        int rc = tu_runf(&out,
                         "timeout 30 %s %s", CNB_TEST_CNNBENCH, cases[i].args);
        /* 124: timeout killed it (a hang); >= 128: a signal (a crash). */
        int ok = rc > 0 && rc < 124 && strstr(out, cases[i].named) != NULL &&
                 strstr(out, "AddressSanitizer") == NULL && strstr(out, "runtime error") == NULL;
        if (!ok) {
            failures++;
            fprintf(stderr, "case %zu: exit %d, expected a non-zero exit below 124 and a message "
                            "naming '%s'\n  command: %s\n  output: %s\n",
                    i, rc, cases[i].named, cmd, out);
        }
        free(out);
    }
    cr_expect_eq(failures, 0, "%d of %zu malformed inputs were not refused cleanly (see above)",
                 failures, n);
    cr_expect_geq(n, 30, "the bar is at least 30 malformed inputs; %zu here", n);
}
