/* util.c — error formatting, clocks, aligned allocation and the harness's PCG32 generator. */
#define _POSIX_C_SOURCE 200809L
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cnb_errf(char *err, size_t err_len, const char *fmt, ...) {
    if (err && err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int cnb_parse_long_flag(const char *prog, const char *flag, const char *s, long lo, long hi,
                        long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "%s: %s: '%s' is not an integer in [%ld, %ld]\n", prog, flag, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

double cnb_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void *cnb_aligned_alloc(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return NULL;
    return p;
}

int cnb_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return -1;
    *out = a * b;
    return 0;
}

/* PCG32 (O'Neill, pcg-random.org), the minimal "pcg32_random_r" variant. */
void cnb_rng_seed(cnb_rng *r, uint64_t seed) {
    r->state = 0u;
    r->inc = (0xda3e39cb94b95bdbULL << 1u) | 1u;
    cnb_rng_u32(r);
    r->state += seed;
    cnb_rng_u32(r);
}

uint32_t cnb_rng_u32(cnb_rng *r) {
    uint64_t old = r->state;
    r->state = old * 6364136223846793005ULL + r->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

double cnb_rng_uniform(cnb_rng *r) {
    uint64_t hi = cnb_rng_u32(r) >> 5, lo = cnb_rng_u32(r) >> 6; /* 27 + 26 bits */
    return ((double)hi * 67108864.0 + (double)lo) / 9007199254740992.0;
}

uint32_t cnb_rng_below(cnb_rng *r, uint32_t bound) {
    uint32_t threshold = (-bound) % bound; /* Lemire/O'Neill rejection for an unbiased result */
    for (;;) {
        uint32_t x = cnb_rng_u32(r);
        if (x >= threshold) return x % bound;
    }
}

char *cnb_read_file(const char *path, size_t *len, char *err, size_t err_len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        cnb_errf(err, err_len, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int read_err = ferror(f);
    fclose(f);
    if (!buf || read_err) {
        free(buf);
        cnb_errf(err, err_len, "%s: cannot read%s", path, buf ? "" : " (out of memory)");
        return NULL;
    }
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}
