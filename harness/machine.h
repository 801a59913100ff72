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

#endif
