/* test_check_transform.c — cnnbench check is algorithm-aware: a backend that reports through
 * info() (cnb_abi.h: conv.transforms[shape]) that its convolution transforms the data (cuDNN's
 * FFT and Winograd) is held to the transform tolerance (1e-4) instead of 1e-5 and bit
 * equality, and the check says so; a backend with the same rounding that does not report it
 * fails. Driven through the "search" proxy fixture, whose forward is off by a relative 3e-5
 * under CNB_SEARCH_TRANSFORM. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define SEARCH_SO CNB_FIXTURE_DIR "/libfixture_search.so"

static int check_conv_fwd(const char *mode, char **out) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "CNB_SEARCH_TRANSFORM=%s '%s' check --backends naive,'%s' --family conv_fwd "
             "--out '%s/transform_%s.json'",
             mode, CNB_TEST_CNNBENCH, SEARCH_SO, CNB_TEST_TMP_DIR, mode);
    return tu_run(cmd, out);
}

Test(check_transform, a_reported_transform_algorithm_gets_its_tolerance, .timeout = 300) {
    char *out = NULL;
    int rc = check_conv_fwd("report", &out);
    cr_expect_eq(rc, 0, "cnnbench check failed:\n%s", out);
    cr_expect(strstr(out, "[transform algorithm]") != NULL, "no check says why it relaxed:\n%s",
              out);
    cr_expect(strstr(out, " 0 failed") != NULL, "%s", out);
    free(out);
}

Test(check_transform, the_same_rounding_unreported_fails, .timeout = 300) {
    char *out = NULL;
    int rc = check_conv_fwd("hide", &out);
    cr_expect_neq(rc, 0, "3e-5 off passed the strict checks:\n%s", out);
    cr_expect(strstr(out, "[transform algorithm]") == NULL, "%s", out);
    free(out);
}
