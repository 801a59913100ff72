/* util.h — small helpers shared by the harness: error messages, checked allocation, timing. */
#ifndef CNB_UTIL_H
#define CNB_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define CNB_ERR_LEN 1024 /* size of every error-message buffer the harness passes around */

/* Write a printf-style message into err (if err is not NULL). Always returns -1, so a failing
 * function can `return cnb_errf(err, len, "...")`. */
int cnb_errf(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parse a command-line integer: the whole string, in [lo, hi]. On failure prints
 * "<prog>: <flag>: '<s>' is not an integer in [lo, hi]" to stderr and returns -1. */
int cnb_parse_long_flag(const char *prog, const char *flag, const char *s, long lo, long hi,
                        long *out);

/* Monotonic wall clock in seconds. */
double cnb_now(void);

/* 64-byte aligned host allocation; NULL on failure (size 0 returns a valid pointer). */
void *cnb_aligned_alloc(size_t bytes);

/* a * b with overflow detection: returns 0 and stores the product, or -1 on overflow. */
int cnb_mul_size(size_t a, size_t b, size_t *out);

/* A whole file, NUL-terminated (malloc'd), its length in *len (when not NULL); NULL with
 * "<path>: cannot open: ..." or "<path>: cannot read" in err. */
char *cnb_read_file(const char *path, size_t *len, char *err, size_t err_len);

/* Deterministic random numbers owned by the harness (PCG32). One generator seeded once drives
 * initialization and shuffling, so every backend starts from the same bits. */
typedef struct cnb_rng {
    uint64_t state, inc;
} cnb_rng;
void cnb_rng_seed(cnb_rng *r, uint64_t seed);
uint32_t cnb_rng_u32(cnb_rng *r);
double cnb_rng_uniform(cnb_rng *r);               /* [0, 1) with 53 random bits */
uint32_t cnb_rng_below(cnb_rng *r, uint32_t bound); /* unbiased in [0, bound) */

#endif
