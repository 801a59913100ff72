/* machine.h — the context every number is reported with: CPU (via hwloc), caches, OS, and the
 * environment variables that change kernel speed. */
#ifndef CNB_MACHINE_H
#define CNB_MACHINE_H

typedef struct cnb_machine {
    char cpu_model[256];
    char hostname[256];
    char os[256];
    int cores, pus, packages;
    long long l1d_bytes, l2_bytes, l3_bytes;
    int has_avx2, has_avx512f;
    char hwloc_version[32];
} cnb_machine;

/* Fill m; fields that cannot be read stay empty/zero. 0 on success, -1 if hwloc failed. */
int cnb_machine_probe(cnb_machine *m);

/* Environment variables recorded with every result (OPENBLAS_*, OMP_*, MKL_*, DNNL_*, ...):
 * calls fn for each one that is set. */
void cnb_machine_env(void (*fn)(void *user, const char *key, const char *value), void *user);

/* What the rest of the machine did while a measurement ran. On a shared 2-core machine one busy
 * core stalls every barrier of a 2-thread backend but barely touches a 1-thread one, so speed-ups
 * between backends with different thread counts move with other work; measuring that work lets a
 * report say which figures were taken on a busy machine instead of leaving it to guesswork. */
typedef struct cnb_load_probe {
    double wall, busy, steal, own; /* seconds: wall clock, machine busy / steal CPU, own CPU */
    int ok;                        /* /proc/stat was readable at the start */
} cnb_load_probe;

/* Other work above this many cores on average marks a measurement as disturbed. */
#define CNB_LOAD_DISTURBED_CORES 0.1

void cnb_load_probe_start(cnb_load_probe *p);
/* other_cores: average cores busy with anything but this process (machine busy CPU time minus
 * this process's CPU time, over the wall time); steal_cores: CPU the hypervisor gave to other
 * guests. 0 on success, -1 when /proc/stat could not be read (both then 0). */
int cnb_load_probe_stop(const cnb_load_probe *p, double *other_cores, double *steal_cores);

#endif
