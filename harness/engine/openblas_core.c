/* openblas_core.c — chooses OpenBLAS's kernel core from the CPU's feature bits before OpenBLAS
 * loads (see openblas_core.h for why). */
#define _GNU_SOURCE
#include "openblas_core.h"

#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#define OPENBLAS_SONAME "libopenblas.so.0"

void cnb_cpu_features_probe(cnb_cpu_features *f) {
    memset(f, 0, sizeof *f);
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return;
    unsigned max_leaf = a;
    char vendor[13];
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &d, 4);
    memcpy(vendor + 8, &c, 4);
    vendor[12] = 0;
    f->amd = strcmp(vendor, "AuthenticAMD") == 0 || strcmp(vendor, "HygonGenuine") == 0;
    __get_cpuid(1, &a, &b, &c, &d);
    int osxsave = (c >> 27) & 1;
    unsigned long long xcr0 = 0;
    if (osxsave) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = ((unsigned long long)hi << 32) | lo;
    }
    /* The OS must save the registers: XMM|YMM for AVX, plus opmask|ZMM_Hi256|Hi16_ZMM for AVX-512. */
    int ymm_ok = (xcr0 & 0x6) == 0x6, zmm_ok = (xcr0 & 0xe6) == 0xe6;
    f->avx = ymm_ok && ((c >> 28) & 1);
    f->fma = ymm_ok && ((c >> 12) & 1);
    if (max_leaf < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    f->avx2 = ymm_ok && ((b >> 5) & 1);
    f->avx512f = zmm_ok && ((b >> 16) & 1);
    f->avx512dq = zmm_ok && ((b >> 17) & 1);
    f->avx512bw = zmm_ok && ((b >> 30) & 1);
    f->avx512vl = zmm_ok && ((b >> 31) & 1);
    f->avx512_fp16 = zmm_ok && ((d >> 23) & 1);
    f->amx_bf16 = (d >> 22) & 1;
    unsigned sub_max = a;
    if (sub_max >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        f->avx512_bf16 = zmm_ok && ((a >> 5) & 1);
    }
#endif
}

int cnb_cpu_isa_tier(const cnb_cpu_features *f) {
    if (f->avx512f && f->avx512bw && f->avx512dq && f->avx512vl) return 4;
    if (f->avx2 && f->fma) return 3;
    if (f->avx) return 2;
    return 1;
}

const char *cnb_isa_tier_name(int tier) {
    static const char *const names[] = {"unknown", "SSE", "AVX", "AVX2+FMA", "AVX-512"};
    return tier >= 0 && tier <= 4 ? names[tier] : "unknown";
}

/* OpenBLAS's x86-64 core names (openblas_get_corename) and the ISA their kernels use. */
static const struct {
    const char *name;
    int tier;
} core_tiers[] = {
    {"katmai", 1},      {"coppermine", 1}, {"northwood", 1},  {"prescott", 1},
    {"banias", 1},      {"core2", 1},      {"penryn", 1},     {"dunnington", 1},
    {"nehalem", 1},     {"atom", 1},       {"opteron", 1},    {"opteron_sse3", 1},
    {"barcelona", 1},   {"bobcat", 1},     {"sandybridge", 2}, {"bulldozer", 2},
    {"piledriver", 2},  {"steamroller", 2}, {"excavator", 2}, {"haswell", 3},
    {"zen", 3},         {"skylakex", 4},   {"cooperlake", 4}, {"sapphirerapids", 4},
};

int cnb_openblas_core_tier(const char *core) {
    if (!core) return 0;
    for (size_t i = 0; i < sizeof core_tiers / sizeof core_tiers[0]; i++)
        if (strcasecmp(core, core_tiers[i].name) == 0) return core_tiers[i].tier;
    return 0;
}

/* The cores worth trying on this CPU, best first, each only where the CPU has what its kernels
 * use. Returns the count. */
static int candidate_cores(const cnb_cpu_features *f, const char **out) {
    int n = 0, tier = cnb_cpu_isa_tier(f);
    if (tier >= 4) {
        if (f->avx512_bf16 && f->avx512_fp16 && f->amx_bf16) out[n++] = "SapphireRapids";
        if (f->avx512_bf16) out[n++] = "Cooperlake";
        out[n++] = "SkylakeX";
    }
    if (tier >= 3) {
        out[n++] = f->amd ? "Zen" : "Haswell";
        out[n++] = f->amd ? "Haswell" : "Zen";
    }
    if (tier >= 2) out[n++] = "Sandybridge";
    return n;
}

void cnb_openblas_decide(const cnb_cpu_features *f, const char *env_value,
                         const char *default_core, cnb_core_offered_fn offered, void *user,
                         cnb_openblas_choice *out) {
    int decided = out->decided, available = out->available;
    memset(out, 0, sizeof *out);
    out->decided = decided;
    out->available = available;
    int cpu_tier = cnb_cpu_isa_tier(f);
    snprintf(out->default_core, sizeof out->default_core, "%s", default_core ? default_core : "");
    if (env_value) {
        out->env_was_set = 1;
        snprintf(out->env_value, sizeof out->env_value, "%s", env_value);
        snprintf(out->chosen_core, sizeof out->chosen_core, "%s", env_value);
        int t = cnb_openblas_core_tier(env_value);
        if (t && t < cpu_tier)
            snprintf(out->reason, sizeof out->reason,
                     "OPENBLAS_CORETYPE=%s was set before cnnbench started and is respected; it "
                     "holds OpenBLAS to %s kernels on this %s CPU (unset it to let cnnbench "
                     "choose)",
                     env_value, cnb_isa_tier_name(t), cnb_isa_tier_name(cpu_tier));
        else
            snprintf(out->reason, sizeof out->reason,
                     "OPENBLAS_CORETYPE=%s was set before cnnbench started and is respected",
                     env_value);
        return;
    }
    snprintf(out->chosen_core, sizeof out->chosen_core, "%s", out->default_core);
    int def_tier = cnb_openblas_core_tier(default_core);
    if (!default_core || !*default_core) {
        snprintf(out->reason, sizeof out->reason, "OpenBLAS's own choice could not be probed");
        return;
    }
    if (def_tier == 0) {
        snprintf(out->reason, sizeof out->reason,
                 "OpenBLAS chose %s, a core cnnbench does not rank; left as it is", default_core);
        return;
    }
    if (def_tier >= cpu_tier) {
        snprintf(out->reason, sizeof out->reason,
                 "OpenBLAS's own choice %s uses the best ISA this CPU has (%s)", default_core,
                 cnb_isa_tier_name(cpu_tier));
        return;
    }
    const char *cand[8];
    int n = candidate_cores(f, cand);
    for (int i = 0; i < n; i++) {
        if (cnb_openblas_core_tier(cand[i]) <= def_tier) break;
        if (!offered(user, cand[i])) continue;
        out->set_by_cnnbench = 1;
        snprintf(out->env_value, sizeof out->env_value, "%s", cand[i]);
        snprintf(out->chosen_core, sizeof out->chosen_core, "%s", cand[i]);
        snprintf(out->reason, sizeof out->reason,
                 "OpenBLAS alone would run its %s (%s) kernels on this %s CPU; cnnbench set "
                 "OPENBLAS_CORETYPE=%s, the best core this OpenBLAS build offers for it",
                 default_core, cnb_isa_tier_name(def_tier), cnb_isa_tier_name(cpu_tier), cand[i]);
        return;
    }
    snprintf(out->reason, sizeof out->reason,
             "OpenBLAS chose %s (%s) on this %s CPU, and this build offers no better core for it",
             default_core, cnb_isa_tier_name(def_tier), cnb_isa_tier_name(cpu_tier));
}

/* Which core OpenBLAS runs with OPENBLAS_CORETYPE=force (NULL: unset), asked in a child process
 * because OpenBLAS fixes its core when it loads and cannot be loaded twice. 0 or -1. */
static int probe_core(const char *force, char *core, size_t len) {
    int fd[2];
    if (pipe(fd) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        close(fd[0]);
        if (force) setenv("OPENBLAS_CORETYPE", force, 1);
        else unsetenv("OPENBLAS_CORETYPE");
        setenv("OPENBLAS_NUM_THREADS", "1", 1); /* no thread pool for a probe */
        unsetenv("OPENBLAS_VERBOSE");
        void *h = dlopen(OPENBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
        char *(*name_fn)(void) = NULL;
        if (h) *(void **)&name_fn = dlsym(h, "openblas_get_corename");
        const char *name = name_fn ? name_fn() : NULL;
        if (name && write(fd[1], name, strlen(name)) < 0) _exit(2);
        _exit(name ? 0 : 1);
    }
    close(fd[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < len && (r = read(fd[0], core + got, len - 1 - got)) != 0) {
        if (r < 0) {
            if (errno == EINTR) continue;
            break;
        }
        got += (size_t)r;
    }
    core[got] = 0;
    close(fd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 && got > 0 ? 0 : -1;
}

static int build_offers(void *user, const char *core) {
    (void)user;
    char got[64];
    return probe_core(core, got, sizeof got) == 0 && strcasecmp(got, core) == 0;
}

static cnb_openblas_choice choice;

const cnb_openblas_choice *cnb_openblas_prepare(void) {
    if (choice.decided) return &choice;
    choice.decided = 1;
    /* Too late once OpenBLAS is in the process: it chose when it loaded. */
    void *already = dlopen(OPENBLAS_SONAME, RTLD_NOW | RTLD_NOLOAD);
    const char *env = getenv("OPENBLAS_CORETYPE");
    cnb_cpu_features f;
    cnb_cpu_features_probe(&f);
    char def[64] = "";
    if (already) {
        dlclose(already);
        choice.available = 1;
        cnb_openblas_decide(&f, env, NULL, build_offers, NULL, &choice);
        if (!env)
            snprintf(choice.reason, sizeof choice.reason,
                     "OpenBLAS was already loaded before cnnbench could choose its core");
        return &choice;
    }
    if (env) {
        choice.available = 1;
        cnb_openblas_decide(&f, env, NULL, build_offers, NULL, &choice);
        return &choice;
    }
    if (probe_core(NULL, def, sizeof def) != 0) {
        snprintf(choice.reason, sizeof choice.reason, "no OpenBLAS library (%s) to probe",
                 OPENBLAS_SONAME);
        return &choice;
    }
    choice.available = 1;
    cnb_openblas_decide(&f, NULL, def, build_offers, NULL, &choice);
    if (choice.set_by_cnnbench) setenv("OPENBLAS_CORETYPE", choice.env_value, 1);
    return &choice;
}

void cnb_openblas_choice_facts(const cnb_openblas_choice *c, cnb_fact_fn fn, void *user) {
    if (!c->decided || !c->available) return;
    if (c->default_core[0]) fn(user, "openblas.core_default", c->default_core);
    fn(user, "openblas.core_chosen_by",
       c->env_was_set ? "environment (OPENBLAS_CORETYPE set before cnnbench started)"
       : c->set_by_cnnbench ? "cnnbench (OPENBLAS_CORETYPE set from the CPU's feature bits)"
                            : "OpenBLAS");
    fn(user, "openblas.core_reason", c->reason);
}

void cnb_openblas_note(const char *backend, const char *core_in_use, FILE *f) {
    const cnb_openblas_choice *c = cnb_openblas_prepare();
    if (!core_in_use || !c->available) return;
    cnb_cpu_features feat;
    cnb_cpu_features_probe(&feat);
    int cpu = cnb_cpu_isa_tier(&feat), used = cnb_openblas_core_tier(core_in_use);
    if (c->set_by_cnnbench && strcasecmp(core_in_use, c->chosen_core) == 0)
        fprintf(f, "note: %s: %s\n", backend, c->reason);
    else if (used && used < cpu)
        fprintf(f, "note: %s: OpenBLAS runs its %s (%s) kernels on this %s CPU: %s\n", backend,
                core_in_use, cnb_isa_tier_name(used), cnb_isa_tier_name(cpu), c->reason);
}
