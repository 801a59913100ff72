/* openblas_core.h — makes OpenBLAS run the best kernels the CPU supports (DESIGN.md §5).
 *
 * A DYNAMIC_ARCH OpenBLAS picks its kernels ("core") from the CPU model when it loads, and an
 * older build that does not know the model falls back far below the CPU (Debian 12's 0.3.21 runs
 * its Prescott SSE3 kernels on a recent AVX-512 Xeon: a fifth of the speed). OpenBLAS reads
 * OPENBLAS_CORETYPE when it loads, so before the first backend is loaded the harness asks, in a
 * child process, which core OpenBLAS would choose, compares it with what the CPU's feature bits
 * (CPUID) allow, and sets OPENBLAS_CORETYPE to the best core the loaded build offers when
 * OpenBLAS's own choice is below it. A value the user or the environment set is never
 * overridden, only reported. */
#ifndef CNB_OPENBLAS_CORE_H
#define CNB_OPENBLAS_CORE_H

#include <stddef.h>
#include <stdio.h>

/* The CPU's vector features, as CPUID and XGETBV report them (usable = the OS saves the state). */
typedef struct cnb_cpu_features {
    int amd;                              /* vendor AuthenticAMD / HygonGenuine */
    int avx, avx2, fma;
    int avx512f, avx512bw, avx512dq, avx512vl;
    int avx512_bf16, avx512_fp16, amx_bf16;
} cnb_cpu_features;

/* Read this CPU's features (all zero off x86-64). */
void cnb_cpu_features_probe(cnb_cpu_features *f);

/* ISA tiers that OpenBLAS's x86-64 cores fall into: 1 SSE, 2 AVX, 3 AVX2+FMA, 4 AVX-512
 * (F/BW/DQ/VL). 0: unknown. */
int cnb_cpu_isa_tier(const cnb_cpu_features *f);
int cnb_openblas_core_tier(const char *core); /* case-insensitive core name; 0 if unknown */
const char *cnb_isa_tier_name(int tier);       /* "AVX-512", "AVX2", ... */

/* Whether the loaded OpenBLAS runs `core` when OPENBLAS_CORETYPE names it (a build without that
 * core falls back to its own choice). */
typedef int (*cnb_core_offered_fn)(void *user, const char *core);

typedef struct cnb_openblas_choice {
    int decided;              /* 1 once cnb_openblas_prepare ran */
    int available;            /* an OpenBLAS library could be probed */
    int env_was_set;          /* OPENBLAS_CORETYPE was set before cnnbench looked */
    int set_by_cnnbench;      /* cnnbench set OPENBLAS_CORETYPE */
    char env_value[64];       /* the value found (env_was_set) or set (set_by_cnnbench) */
    char default_core[32];    /* the core OpenBLAS chooses on its own ("" when not probed) */
    char chosen_core[32];     /* the core cnnbench expects in use */
    char reason[384];         /* one sentence: why this core */
} cnb_openblas_choice;

/* The decision, free of side effects so it can be tested as a table: f are the CPU's features,
 * env_value the user's OPENBLAS_CORETYPE (NULL when unset), default_core OpenBLAS's own choice,
 * offered(user, core) whether the build has a core. Fills everything but decided / available. */
void cnb_openblas_decide(const cnb_cpu_features *f, const char *env_value,
                         const char *default_core, cnb_core_offered_fn offered, void *user,
                         cnb_openblas_choice *out);

/* Probe and decide once per process, before any backend is loaded (the loader calls it), and
 * set OPENBLAS_CORETYPE when the decision says so. Returns the decision (also later). */
const cnb_openblas_choice *cnb_openblas_prepare(void);

/* The decision as backend info facts ("openblas.core_default", "openblas.core_chosen_by",
 * "openblas.core_reason"), for a backend whose info() reports "openblas.corename". */
typedef void (*cnb_fact_fn)(void *user, const char *key, const char *value);
void cnb_openblas_choice_facts(const cnb_openblas_choice *c, cnb_fact_fn fn, void *user);

/* One line on f when it matters: cnnbench changed OpenBLAS's core, or the core in use (as the
 * backend reports it) is below what the CPU supports. */
void cnb_openblas_note(const char *backend, const char *core_in_use, FILE *f);

#endif
