/* team.c — the blas backend's own threads. OpenBLAS runs single-threaded inside them; the
 * backend splits each kernel's work (images of a batch, planes, columns of a GEMM, runs of
 * elements) into one contiguous range per thread, and the caller's thread takes the first range.
 *
 * Why not OpenBLAS's own pool: on this virtual machine its fine-grained hand-offs inside every
 * sgemm are at the mercy of where the host places the two vCPUs. A 60 s run of simplecnn's
 * per-image conv2 sgemms (dev/blas/thread_split.c) went from 145 to 108
 * GFLOP/s for twenty seconds with OpenBLAS's 2 threads, while the same work split by image over
 * two single-threaded sgemm callers held 150-160 throughout; and OpenBLAS's pool left pooling,
 * activations and im2col on one core. One pool, ours, also keeps DESIGN.md §5's rule: exactly
 * one pool owns the cores.
 *
 * Hand-off: the caller bumps a generation counter under the team's lock; a worker that finished
 * its previous range spins on the counter for up to BLAS_TEAM_SPIN_NS (the next kernel of a
 * training step usually follows within microseconds) and then sleeps on a condition variable,
 * so an idle backend costs no CPU. The caller spins (then yields) until every worker is done. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blas_backend.h"

/* How long an idle worker polls before it sleeps: long enough to bridge the gaps between the
 * kernels of one step, short enough that another backend in the same process (bench, check)
 * never runs beside a spinning pool. */
#define BLAS_TEAM_SPIN_NS 1000000L

struct blas_team {
    int size;                  /* threads, the caller's included */
    pthread_t *workers;        /* size - 1 of them */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int sleeping;              /* workers waiting on `wake`, guarded by lock */
    atomic_uint generation;    /* bumped (under lock) for each job and for shutdown */
    atomic_int pending;        /* workers that have not finished the current job */
    atomic_int stop;
    /* The current job, written by the caller before the generation bump. */
    blas_range_fn fn;
    void *arg;
    size_t items;
    int parts;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static long elapsed_ns(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000000000L + (t.tv_nsec - t0->tv_nsec);
}

static void part_range(size_t items, int parts, int part, size_t *lo, size_t *hi) {
    *lo = items * (size_t)part / (size_t)parts;
    *hi = items * (size_t)(part + 1) / (size_t)parts;
}

typedef struct {
    struct blas_team *team;
    int id; /* 1 .. size-1; the caller is 0 */
} worker_arg;

static void *worker_main(void *p) {
    worker_arg wa = *(worker_arg *)p;
    free(p);
    struct blas_team *t = wa.team;
    unsigned seen = 0;
    for (;;) {
        unsigned g = atomic_load_explicit(&t->generation, memory_order_acquire);
        if (g == seen) {
            struct timespec t0;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            for (int i = 1; (g = atomic_load_explicit(&t->generation, memory_order_acquire)) ==
                            seen; i++) {
                cpu_relax();
                if ((i & 1023) == 0 && elapsed_ns(&t0) > BLAS_TEAM_SPIN_NS) break;
            }
        }
        if (g == seen) {
            pthread_mutex_lock(&t->lock);
            while ((g = atomic_load_explicit(&t->generation, memory_order_acquire)) == seen) {
                t->sleeping++;
                pthread_cond_wait(&t->wake, &t->lock);
                t->sleeping--;
            }
            pthread_mutex_unlock(&t->lock);
        }
        seen = g;
        if (atomic_load_explicit(&t->stop, memory_order_acquire)) return NULL;
        if (wa.id < t->parts) {
            size_t lo, hi;
            part_range(t->items, t->parts, wa.id, &lo, &hi);
            t->fn(t->arg, wa.id, lo, hi);
        }
        atomic_fetch_sub_explicit(&t->pending, 1, memory_order_release);
    }
}

/* Bump the generation under the lock (so a worker about to sleep cannot miss it) and wake the
 * sleepers. */
static void publish(struct blas_team *t) {
    pthread_mutex_lock(&t->lock);
    atomic_fetch_add_explicit(&t->generation, 1, memory_order_release);
    if (t->sleeping > 0) pthread_cond_broadcast(&t->wake);
    pthread_mutex_unlock(&t->lock);
}

static void wait_workers(struct blas_team *t) {
    for (long i = 1; atomic_load_explicit(&t->pending, memory_order_acquire) > 0; i++) {
        if (i < 100000) cpu_relax();
        else sched_yield(); /* a worker lost its core: stop burning ours */
    }
}

cnb_status blas_team_start(cnb_context *ctx, int size) {
    struct blas_team *t = calloc(1, sizeof *t);
    if (!t) return cpu_fail(ctx, CNB_ERR_OUT_OF_MEMORY, "create: cannot allocate the thread team");
    t->size = 1;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->wake, NULL);
    ctx->team = t;
    if (size <= 1) return CNB_OK;
    t->workers = calloc((size_t)size - 1, sizeof *t->workers);
    if (!t->workers) {
        blas_team_stop(ctx);
        return cpu_fail(ctx, CNB_ERR_OUT_OF_MEMORY, "create: cannot allocate %d threads", size);
    }
    for (int i = 1; i < size; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        int rc = wa ? 0 : ENOMEM;
        if (wa) {
            *wa = (worker_arg){.team = t, .id = i};
            rc = pthread_create(&t->workers[i - 1], NULL, worker_main, wa);
            if (rc) free(wa);
        }
        if (rc) {
            blas_team_stop(ctx);
            return cpu_fail(ctx, CNB_ERR_OUT_OF_MEMORY,
                            "create: cannot start thread %d of %d: %s", i + 1, size,
                            strerror(rc));
        }
        t->size = i + 1; /* blas_team_stop joins exactly the started ones */
    }
    return CNB_OK;
}

void blas_team_stop(cnb_context *ctx) {
    struct blas_team *t = ctx->team;
    if (!t) return;
    if (t->size > 1) {
        atomic_store_explicit(&t->stop, 1, memory_order_release);
        publish(t);
        for (int i = 0; i < t->size - 1; i++) pthread_join(t->workers[i], NULL);
    }
    free(t->workers);
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->wake);
    free(t);
    ctx->team = NULL;
}

int blas_team_parts(const cnb_context *ctx, size_t items, size_t grain) {
    const int size = ctx->team ? ctx->team->size : 1;
    if (grain == 0) grain = 1;
    size_t parts = items / grain;
    if (parts < 1) parts = 1;
    return parts < (size_t)size ? (int)parts : size;
}

void blas_parallel(cnb_context *ctx, size_t items, int parts, blas_range_fn fn, void *arg) {
    struct blas_team *t = ctx->team;
    if (items == 0) return;
    if (!t || parts <= 1 || t->size <= 1) {
        fn(arg, 0, 0, items);
        return;
    }
    if (parts > t->size) parts = t->size;
    t->fn = fn;
    t->arg = arg;
    t->items = items;
    t->parts = parts;
    atomic_store_explicit(&t->pending, t->size - 1, memory_order_relaxed);
    publish(t);
    size_t lo, hi;
    part_range(items, parts, 0, &lo, &hi);
    fn(arg, 0, lo, hi);
    wait_workers(t);
}
