/* core_speed.c — how fast each of this machine's cores runs a fixed piece of scalar work, over
 * time. The same work is timed on core 0, then core 1, about half a second each, N times; on a
 * shared virtual machine the host's other tenants slow a core down without showing up as steal,
 * and this shows when, by how much and for how long. The measurement behind the uncontended
 * speed-ups of `cnnbench bench` (results/bench-repeat/README.md).
 *
 *   cc -O2 -o core_speed dev/host/core_speed.c && ./core_speed 240
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float work[1 << 16]; /* 256 KiB: stays in the core's own L2 */

static double timed_work_on(int core) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) return -1.0;
    double t0 = now();
    for (int rep = 0; rep < 50000; rep++)
        for (int i = 0; i < (1 << 16); i++) work[i] = work[i] * 0.999f + 1.0f;
    return now() - t0;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 40;
    if (n < 1) {
        fprintf(stderr, "usage: core_speed [ROUNDS]  (ROUNDS >= 1)\n");
        return 2;
    }
    printf("round  core0_s  core1_s\n");
    for (int r = 0; r < n; r++) {
        double a = timed_work_on(0), b = timed_work_on(1);
        if (a < 0 || b < 0) {
            fprintf(stderr, "core_speed: cannot pin to cores 0 and 1\n");
            return 1;
        }
        printf("%5d  %7.3f  %7.3f\n", r, a, b);
        fflush(stdout);
    }
    printf("checksum %g\n", (double)work[5]); /* keeps the work from being optimized away */
    return 0;
}
