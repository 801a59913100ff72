/* thread_split.c — why the blas backend threads by itself (backends/blas/team.c).
 *
 * Runs simplecnn conv2's per-image sgemms (64 images of k=64 x pq=196 x crs=288) three ways,
 * one second each, in rounds, and prints GFLOP/s per round:
 *   openblas-2t  OpenBLAS's own pool: one 2-thread sgemm per image (the hand-offs inside every
 *                sgemm);
 *   split-2x1t   two threads, each running single-threaded sgemms on half of the images, one
 *                barrier per batch (what team.c does);
 *   1t           one thread, for scale.
 * On the 2-core VM this project was measured on, openblas-2t dropped from ~145 to ~108 GFLOP/s
 * for twenty seconds at a time while split-2x1t held ~150-160.
 *
 * usage: <build>/dev/blas/thread_split [rounds]   (default 20)   */
#define _GNU_SOURCE
#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { M = 64, K = 288, N = 196, IMAGES = 64 };

static float *weight, *cols, *out;
static pthread_barrier_t barrier;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void images(int lo, int hi) {
    for (int i = lo; i < hi; i++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, weight, K,
                    cols + (size_t)i * K * N, N, 0.0f, out + (size_t)i * M * N, N);
}

static void *second_half(void *unused) {
    (void)unused;
    for (;;) {
        pthread_barrier_wait(&barrier);
        images(IMAGES / 2, IMAGES);
        pthread_barrier_wait(&barrier);
    }
    return NULL;
}

int main(int argc, char **argv) {
    const int rounds = argc > 1 ? atoi(argv[1]) : 20;
    weight = malloc(sizeof(float) * M * K);
    cols = malloc(sizeof(float) * (size_t)K * N * IMAGES);
    out = malloc(sizeof(float) * (size_t)M * N * IMAGES);
    if (!weight || !cols || !out || rounds < 1) {
        fprintf(stderr, "thread_split: usage: thread_split [rounds >= 1]\n");
        return 2;
    }
    for (int i = 0; i < M * K; i++) weight[i] = 1e-3f * (float)(i % 7);
    for (size_t i = 0; i < (size_t)K * N * IMAGES; i++) cols[i] = 1e-3f * (float)(i % 5);
    pthread_barrier_init(&barrier, NULL, 2);
    pthread_t helper;
    if (pthread_create(&helper, NULL, second_half, NULL) != 0) return 2;
    const double gflop = 2.0 * M * N * K * IMAGES / 1e9, t0 = now();
    for (int r = 0; r < rounds; r++) {
        double rate[3];
        for (int way = 0; way < 3; way++) {
            openblas_set_num_threads(way == 0 ? 2 : 1);
            long batches = 0;
            const double start = now();
            while (now() - start < 1.0) {
                if (way == 1) {
                    pthread_barrier_wait(&barrier);
                    images(0, IMAGES / 2);
                    pthread_barrier_wait(&barrier);
                } else {
                    images(0, IMAGES);
                }
                batches++;
            }
            rate[way] = (double)batches * gflop / (now() - start);
        }
        printf("%6.1f s  openblas-2t %6.1f  split-2x1t %6.1f  1t %6.1f GFLOP/s\n", now() - t0,
               rate[0], rate[1], rate[2]);
        fflush(stdout);
    }
    return 0;
}
