/* test_abi_check.c — the shared descriptor validator (harness/abi/cnb_abi_check.h) driven
 * directly: good descriptors pass and leave err alone; each bad one returns
 * CNB_ERR_INVALID_ARGUMENT with a message that starts with the function's name and names the
 * bad field; the fits-int limits refuse tensors of 2^31 elements; activation calls are checked
 * for their kind, count and exactly the pointers they use. */
#include <criterion/criterion.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cnb_abi_check.h"
#include "testutil.h"

/* The check of d must fail with invalid argument and a message "fn: ..." containing every
 * needle (up to three; NULL ends the list early). */
#define EXPECT_BAD(call, err, n1, n2, n3)                                                       \
    do {                                                                                        \
        const char *needles_[3] = {n1, n2, n3};                                                 \
        (err)[0] = '\0';                                                                        \
        cnb_status st_ = (call);                                                                \
        cr_expect_eq(st_, CNB_ERR_INVALID_ARGUMENT, "%s: status %d (%s)", #call, st_,           \
                     cnb_status_str(st_));                                                      \
        cr_expect(strncmp((err), "fn: ", 4) == 0, "%s: message does not start with fn: '%s'",   \
                  #call, (err));                                                                \
        for (int i_ = 0; i_ < 3 && needles_[i_]; i_++)                                          \
            cr_expect(strstr((err), needles_[i_]) != NULL, "%s: message '%s' lacks '%s'",       \
                      #call, (err), needles_[i_]);                                              \
    } while (0)

/* A validator of one descriptor type, so the helpers below serve conv and pool alike. */
typedef cnb_status (*desc_check)(const void *d, char *err, size_t err_len);
static cnb_status check_conv(const void *d, char *err, size_t err_len) {
    return cnb_check_conv_desc("fn", d, err, err_len);
}
static cnb_status check_pool(const void *d, char *err, size_t err_len) {
    return cnb_check_pool_desc("fn", d, err, err_len);
}

typedef int (*desc_fits)(const void *d, char *err, size_t err_len);
static int fits_conv(const void *d, char *err, size_t err_len) {
    return cnb_check_conv_fits_int("fn", d, err, err_len);
}
static int fits_pool(const void *d, char *err, size_t err_len) {
    return cnb_check_pool_fits_int("fn", d, err, err_len);
}

/* Each of the n good descriptors (size bytes apart) passes, leaves err alone, and fits int. */
static void expect_good(desc_check check, desc_fits fits, const void *descs, size_t size,
                        size_t n) {
    for (size_t i = 0; i < n; i++) {
        const void *d = (const char *)descs + i * size;
        char err[128] = "untouched";
        cr_expect_eq(check(d, err, sizeof err), CNB_OK, "case %zu: %s", i, err);
        cr_expect_str_eq(err, "untouched", "case %zu wrote err", i);
        cr_expect(fits(d, err, sizeof err), "case %zu: %s", i, err);
    }
}

/* One int field of a good descriptor changed, and the phrases the refusal must contain. */
typedef struct one_change {
    size_t offset;
    int value;
    const char *phrases[3];
} one_change;
#define CONV_FIELD(f) offsetof(cnb_conv_desc, f)
#define POOL_FIELD(f) offsetof(cnb_pool_desc, f)

static void expect_changes_refused(desc_check check, const void *good, size_t size,
                                   const one_change *cases, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char err[256];
        union {
            cnb_conv_desc conv;
            cnb_pool_desc pool;
        } b;
        cr_assert_leq(size, sizeof b);
        memcpy(&b, good, size);
        memcpy((char *)&b + cases[i].offset, &cases[i].value, sizeof(int));
        EXPECT_BAD(check(&b, err, sizeof err), err, cases[i].phrases[0], cases[i].phrases[1],
                   cases[i].phrases[2]);
    }
}

/* Each field that must be positive, set to every value from 0 down to lowest, is refused as
 * "<field>=<value> must be positive". */
typedef struct named_field {
    const char *name;
    size_t offset;
} named_field;

static void expect_positive_fields(desc_check check, const void *good, size_t size,
                                   const named_field *fields, size_t n, int lowest) {
    for (size_t f = 0; f < n; f++)
        for (int v = 0; v >= lowest; v--) {
            char want[32];
            snprintf(want, sizeof want, ": %s=%d must be positive", fields[f].name, v);
            one_change c = {fields[f].offset, v, {want, NULL, NULL}};
            expect_changes_refused(check, good, size, &c, 1);
        }
}

Test(abi_check, good_conv_descriptors_pass_and_leave_err_alone) {
    const cnb_conv_desc good[] = {
        tu_conv_desc(64, 1, 28, 28, 32, 3, 3, 1, 1, 1, 1), /* simplecnn conv1 */
        tu_conv_desc(2, 3, 9, 7, 4, 3, 2, 2, 3, 0, 1),     /* uneven strides, one-sided padding */
        tu_conv_desc(1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0),     /* the smallest */
        tu_conv_desc(1, 1, 2, 2, 1, 4, 4, 1, 1, 1, 1),     /* filter as large as padded input */
        tu_conv_desc(1, 1, 5, 5, 1, 2, 2, 3, 3, 0, 0),     /* stride skips the last column */
    };
    expect_good(check_conv, fits_conv, good, sizeof good[0], sizeof good / sizeof good[0]);
}

Test(abi_check, bad_conv_descriptors_name_the_field) {
    char err[256];
    const cnb_conv_desc d = tu_conv_desc(1, 2, 14, 14, 2, 3, 3, 1, 1, 1, 1); /* 14x14 -> 14x14 */
    cnb_conv_desc b;

    EXPECT_BAD(cnb_check_conv_desc("fn", NULL, err, sizeof err), err, "descriptor is NULL", NULL,
               NULL);

    /* Each positive field, zero and negative. */
    static const named_field positive[] = {
        {"n", CONV_FIELD(n)}, {"c", CONV_FIELD(c)}, {"h", CONV_FIELD(h)},
        {"w", CONV_FIELD(w)}, {"k", CONV_FIELD(k)}, {"r", CONV_FIELD(r)},
        {"s", CONV_FIELD(s)}, {"stride_h", CONV_FIELD(stride_h)},
        {"stride_w", CONV_FIELD(stride_w)},
    };
    expect_positive_fields(check_conv, &d, sizeof d, positive,
                           sizeof positive / sizeof positive[0], -1);

    static const one_change changes[] = {
        {CONV_FIELD(pad_h), -1, {"pad_h=-1", "is negative", "padding"}},
        {CONV_FIELD(pad_w), -2, {"pad_w=-2", "is negative", NULL}},
        {CONV_FIELD(r), 17, {"r=17", "larger than the padded input", "=16"}}, /* 14+2*1 < 17 */
        {CONV_FIELD(s), 20, {"s=20", "larger than the padded input", NULL}},
        {CONV_FIELD(p), 13, {"p=13", "(h+2*pad_h-r)/stride_h+1=14", "expected 14x14"}},
        {CONV_FIELD(q), 15, {"q=15", "(w+2*pad_w-s)/stride_w+1=14", "expected 14x14"}},
    };
    expect_changes_refused(check_conv, &d, sizeof d, changes, sizeof changes / sizeof changes[0]);
    b = d;
    b.q = 15;

    /* err may be NULL or empty: the status alone comes back. */
    cr_expect_eq(cnb_check_conv_desc("fn", &b, NULL, 0), CNB_ERR_INVALID_ARGUMENT);
    char one[1] = {'x'};
    cr_expect_eq(cnb_check_conv_desc("fn", &b, one, 0), CNB_ERR_INVALID_ARGUMENT);
    cr_expect_eq(one[0], 'x', "err_len 0 must leave err alone");
    /* A short buffer is cut, still terminated. */
    char small[8];
    cr_expect_eq(cnb_check_conv_desc("fn", &b, small, sizeof small), CNB_ERR_INVALID_ARGUMENT);
    cr_expect_str_eq(small, "fn: q=1");
}

Test(abi_check, padding_near_int_max_does_not_overflow) {
    char err[256];
    cnb_conv_desc b = tu_conv_desc(1, 1, 4, 4, 1, 3, 3, 1, 1, 0, 0);
    b.pad_h = 2147483647; /* 4 + 2*pad overflows int; the check works in long long */
    EXPECT_BAD(cnb_check_conv_desc("fn", &b, err, sizeof err), err, "p=2", "does not match",
               "=4294967296");
}

Test(abi_check, good_pool_descriptors_pass) {
    const cnb_pool_desc good[] = {
        tu_pool_desc(CNB_POOL_MAX, 64, 32, 28, 28, 2, 2, 2, 2, 0, 0),
        tu_pool_desc(CNB_POOL_MAX, 2, 3, 9, 7, 3, 3, 2, 2, 1, 1),
        tu_pool_desc(CNB_POOL_AVG, 2, 3, 9, 7, 3, 3, 2, 2, 2, 2), /* avg may pad a whole window */
        tu_pool_desc(CNB_POOL_AVG, 1, 1, 3, 3, 3, 3, 1, 1, 0, 0),
    };
    expect_good(check_pool, fits_pool, good, sizeof good[0], sizeof good / sizeof good[0]);
}

Test(abi_check, bad_pool_descriptors_name_the_field) {
    char err[256];
    /* 7x7 -> 3x3 */
    const cnb_pool_desc d = tu_pool_desc(CNB_POOL_MAX, 1, 1, 7, 7, 2, 2, 2, 2, 0, 0);
    cnb_pool_desc b;

    EXPECT_BAD(cnb_check_pool_desc("fn", NULL, err, sizeof err), err, "descriptor is NULL", NULL,
               NULL);
    static const one_change changes[] = {
        {POOL_FIELD(mode), 7, {"mode=7", NULL, NULL}},
        {POOL_FIELD(mode), -1, {"mode=-1", NULL, NULL}},
        {POOL_FIELD(pad_w), -1, {"pad_w=-1", "is negative", NULL}},
        {POOL_FIELD(kh), 8, {"kh=8", "larger than the padded input", NULL}},
        {POOL_FIELD(kw), 9, {"kw=9", "larger than the padded input", NULL}},
        {POOL_FIELD(p), 4, {"p=4", "(h+2*pad_h-kh)/stride_h+1=3", "expected 3x3"}},
        {POOL_FIELD(q), 2, {"q=2", "(w+2*pad_w-kw)/stride_w+1=3", "expected 3x3"}},
    };
    expect_changes_refused(check_pool, &d, sizeof d, changes, sizeof changes / sizeof changes[0]);

    static const named_field positive[] = {
        {"n", POOL_FIELD(n)},   {"c", POOL_FIELD(c)},   {"h", POOL_FIELD(h)},
        {"w", POOL_FIELD(w)},   {"kh", POOL_FIELD(kh)}, {"kw", POOL_FIELD(kw)},
        {"stride_h", POOL_FIELD(stride_h)}, {"stride_w", POOL_FIELD(stride_w)},
    };
    expect_positive_fields(check_pool, &d, sizeof d, positive,
                           sizeof positive / sizeof positive[0], 0);


    /* Max pooling: padding must be smaller than the window; average pooling may pad more. */
    b = tu_pool_desc(CNB_POOL_MAX, 1, 1, 7, 7, 2, 2, 2, 2, 2, 0);
    EXPECT_BAD(cnb_check_pool_desc("fn", &b, err, sizeof err), err, "pad_h=2",
               "smaller than the window", "2x2");
    b = tu_pool_desc(CNB_POOL_MAX, 1, 1, 7, 7, 3, 2, 2, 2, 1, 2);
    EXPECT_BAD(cnb_check_pool_desc("fn", &b, err, sizeof err), err, "pad_w=2",
               "smaller than the window", "3x2");
    b.mode = CNB_POOL_AVG;
    cr_expect_eq(cnb_check_pool_desc("fn", &b, err, sizeof err), CNB_OK, "%s", err);
}

Test(abi_check, fits_int_names_the_tensor) {
    char err[256];
    /* x = 65536 * 1 * 256 * 128 = 2^31 elements: a valid descriptor past an int index. */
    cnb_conv_desc big = tu_conv_desc(65536, 1, 256, 128, 1, 1, 1, 1, 1, 0, 0);
    cr_expect_eq(cnb_check_conv_desc("fn", &big, err, sizeof err), CNB_OK, "%s", err);
    cr_expect_not(cnb_check_conv_fits_int("fn", &big, err, sizeof err));
    cr_expect(strncmp(err, "fn: x = ", 8) == 0 && strstr(err, "65536 x 1 x 256 x 128"), "%s",
              err);
    /* x fits, y does not (k = 2). */
    big = tu_conv_desc(32768, 1, 256, 128, 2, 1, 1, 1, 1, 0, 0);
    cr_expect_not(cnb_check_conv_fits_int("fn", &big, err, sizeof err));
    cr_expect(strstr(err, "fn: y = "), "%s", err);
    /* Only the weight is large. */
    big = tu_conv_desc(1, 32768, 4, 4, 32768, 2, 2, 1, 1, 0, 0);
    cr_expect_not(cnb_check_conv_fits_int("fn", &big, err, sizeof err));
    cr_expect(strstr(err, "fn: weight = "), "%s", err);

    cnb_pool_desc p = tu_pool_desc(CNB_POOL_AVG, 65536, 1, 256, 128, 1, 1, 1, 1, 0, 0);
    cr_expect_not(cnb_check_pool_fits_int("fn", &p, err, sizeof err));
    cr_expect(strstr(err, "fn: x = "), "%s", err);

    /* One element under the limit passes; the largest factors do not overflow the product. */
    cr_expect(cnb_check_fits_int("fn", "t", 2147483647, 1, 1, 1, err, sizeof err));
    cr_expect_not(cnb_check_fits_int("fn", "t", 2147483647, 2147483647, 2147483647, 2147483647,
                                     err, sizeof err));
    cr_expect(strstr(err, "fn: t = 2147483647 x"), "%s", err);
}

/* Activations: the kind and count, then exactly the pointers the call reads or writes. */
/* cnb_check_activation_backward with only the pointers lettered in given (dx, dslope as 's',
 * dy as 'g', x, y, slope as 'p') set, to v; the others NULL. */
static cnb_status backward_given(int act, const char *given, float *v, char *err,
                                 size_t err_len) {
#define GIVEN(c) (strchr(given, c) ? v : NULL)
    return cnb_check_activation_backward("fn", act, 4, GIVEN('d'), GIVEN('s'), GIVEN('g'),
                                         GIVEN('x'), GIVEN('y'), GIVEN('p'), err, err_len);
#undef GIVEN
}

Test(abi_check, activation_arguments) {
    char err[256];
    float v[4] = {0};
    for (int act = CNB_ACT_RELU; act <= CNB_ACT_PRELU; act++) {
        err[0] = '\0';
        cr_expect_eq(cnb_check_activation_forward("fn", act, 4, v, v, v, err, sizeof err), CNB_OK);
        cr_expect_eq(cnb_check_activation_backward("fn", act, 4, v, v, v, v, v, v, err, sizeof err),
                     CNB_OK);
        cr_expect_str_empty(err, "a good call leaves err alone: '%s'", err);
    }
    EXPECT_BAD(cnb_check_activation_forward("fn", 9, 4, v, v, v, err, sizeof err), err,
               "unknown activation 9", NULL, NULL);
    EXPECT_BAD(cnb_check_activation_backward("fn", CNB_ACT_TANH, 0, v, v, v, v, v, v, err,
                                             sizeof err),
               err, "count is 0", NULL, NULL);
    EXPECT_BAD(cnb_check_activation_forward("fn", CNB_ACT_RELU, 4, v, NULL, v, err, sizeof err),
               err, "x is NULL", NULL, NULL);
    /* the slope only matters to PReLU */
    cr_expect_eq(cnb_check_activation_forward("fn", CNB_ACT_RELU, 4, v, v, NULL, err, sizeof err),
                 CNB_OK);
    EXPECT_BAD(cnb_check_activation_forward("fn", CNB_ACT_PRELU, 4, v, v, NULL, err, sizeof err),
               err, "slope is NULL", NULL, NULL);
    /* backward reads x for ReLU / PReLU and y for tanh / sigmoid, and not the other one */
    static const struct {
        int act;
        const char *given, *refusal; /* NULL: accepted */
    } backward[] = {
        {CNB_ACT_RELU, "dgx", NULL},
        {CNB_ACT_RELU, "dgy", "x is NULL"},
        {CNB_ACT_SIGMOID, "dgy", NULL},
        {CNB_ACT_TANH, "dgx", "y is NULL"},
        {CNB_ACT_PRELU, "dgxyp", "dslope is NULL"},
        {CNB_ACT_PRELU, "sgxyp", "dx is NULL"},
    };
    for (size_t i = 0; i < sizeof backward / sizeof backward[0]; i++) {
        if (!backward[i].refusal)
            cr_expect_eq(backward_given(backward[i].act, backward[i].given, v, err, sizeof err),
                         CNB_OK, "case %zu: %s", i, err);
        else
            EXPECT_BAD(backward_given(backward[i].act, backward[i].given, v, err, sizeof err), err,
                       backward[i].refusal, NULL, NULL);
    }
}
