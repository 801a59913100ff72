/* test_openblas_core.c — the choice of OpenBLAS's kernel core from the CPU's feature bits
 * (harness/engine/openblas_core.c): the decision as a table of CPUs, OpenBLAS defaults and builds, and
 * end to end, the core the blas backend runs on this machine. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "loader.h"
#include "openblas_core.h"
#include "results.h"
#include "testutil.h"

/* CPUs by their feature bits. */
static const cnb_cpu_features sapphire_rapids = {.avx = 1, .avx2 = 1, .fma = 1, .avx512f = 1,
    .avx512bw = 1, .avx512dq = 1, .avx512vl = 1, .avx512_bf16 = 1, .avx512_fp16 = 1, .amx_bf16 = 1};
static const cnb_cpu_features skylake_sp = {.avx = 1, .avx2 = 1, .fma = 1, .avx512f = 1,
    .avx512bw = 1, .avx512dq = 1, .avx512vl = 1};
static const cnb_cpu_features zen4 = {.amd = 1, .avx = 1, .avx2 = 1, .fma = 1, .avx512f = 1,
    .avx512bw = 1, .avx512dq = 1, .avx512vl = 1, .avx512_bf16 = 1};
static const cnb_cpu_features zen2 = {.amd = 1, .avx = 1, .avx2 = 1, .fma = 1};
static const cnb_cpu_features haswell = {.avx = 1, .avx2 = 1, .fma = 1};
static const cnb_cpu_features sandy_bridge = {.avx = 1};
static const cnb_cpu_features knl_like = {.avx = 1, .avx2 = 1, .fma = 1, .avx512f = 1}; /* no BW/DQ/VL */

/* Builds: the cores each offers, as a comma list. */
#define DEBIAN_0_3_21 "SkylakeX,Cooperlake,Haswell,Zen,Sandybridge,Prescott,Nehalem"
#define WITH_SPR DEBIAN_0_3_21 ",SapphireRapids"
#define SSE_ONLY "Prescott,Nehalem"

static int offered_in(void *user, const char *core) {
    char list[256];
    snprintf(list, sizeof list, "%s", (const char *)user);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ","))
        if (strcasecmp(tok, core) == 0) return 1;
    return 0;
}

typedef struct decision_case {
    const char *what;
    const cnb_cpu_features *cpu;
    const char *env;           /* OPENBLAS_CORETYPE before cnnbench, or NULL */
    const char *default_core;  /* OpenBLAS's own choice */
    const char *build;         /* cores the build offers */
    const char *expect_core;
    int expect_set;            /* cnnbench sets OPENBLAS_CORETYPE */
} decision_case;

static const decision_case cases[] = {
    {"Xeon model 207 on Debian's 0.3.21 (falls back to Prescott)", &sapphire_rapids, NULL,
     "Prescott", DEBIAN_0_3_21, "Cooperlake", 1},
    {"the same CPU on a build with SapphireRapids", &sapphire_rapids, NULL, "Prescott", WITH_SPR,
     "SapphireRapids", 1},
    {"Skylake-SP without BF16 falls back", &skylake_sp, NULL, "Prescott", WITH_SPR, "SkylakeX", 1},
    {"Zen 4 detected as Zen (AVX2)", &zen4, NULL, "Zen", DEBIAN_0_3_21, "Cooperlake", 1},
    {"Zen 4 already on Cooperlake", &zen4, NULL, "Cooperlake", DEBIAN_0_3_21, "Cooperlake", 0},
    {"Zen 2 falls back to Prescott: Zen first on AMD", &zen2, NULL, "Prescott", DEBIAN_0_3_21,
     "Zen", 1},
    {"Haswell detected as Sandybridge", &haswell, NULL, "Sandybridge", DEBIAN_0_3_21, "Haswell", 1},
    {"Haswell already on Haswell", &haswell, NULL, "Haswell", DEBIAN_0_3_21, "Haswell", 0},
    {"Sandy Bridge falls back to Prescott", &sandy_bridge, NULL, "Prescott", DEBIAN_0_3_21,
     "Sandybridge", 1},
    {"AVX-512F without BW/DQ/VL ranks as AVX2", &knl_like, NULL, "Prescott", DEBIAN_0_3_21,
     "Haswell", 1},
    {"an AVX2 CPU never gets an AVX-512 core", &haswell, NULL, "Prescott", WITH_SPR, "Haswell", 1},
    {"a build without better cores is left alone", &sapphire_rapids, NULL, "Prescott", SSE_ONLY,
     "Prescott", 0},
    {"a user's OPENBLAS_CORETYPE=Haswell is respected", &sapphire_rapids, "Haswell", "Prescott",
     DEBIAN_0_3_21, "Haswell", 0},
    {"a user's OPENBLAS_CORETYPE=Prescott is respected", &zen4, "Prescott", "Cooperlake",
     DEBIAN_0_3_21, "Prescott", 0},
    {"an unknown default core is left alone", &sapphire_rapids, NULL, "Loongson3R4",
     DEBIAN_0_3_21, "Loongson3R4", 0},
};

Test(openblas_core, decision_table) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const decision_case *c = &cases[i];
        cnb_openblas_choice out;
        memset(&out, 0, sizeof out);
        cnb_openblas_decide(c->cpu, c->env, c->default_core, offered_in, (void *)c->build, &out);
        cr_expect_str_eq(out.chosen_core, c->expect_core, "%s: chose %s, expected %s (%s)",
                         c->what, out.chosen_core, c->expect_core, out.reason);
        cr_expect_eq(out.set_by_cnnbench, c->expect_set, "%s: set_by_cnnbench %d (%s)", c->what,
                     out.set_by_cnnbench, out.reason);
        cr_expect_eq(out.env_was_set, c->env != NULL, "%s: env_was_set", c->what);
        cr_expect_str_eq(out.default_core, c->default_core, "%s: default core not recorded",
                         c->what);
        cr_expect(out.reason[0] != 0, "%s: no reason given", c->what);
        if (c->expect_set) {
            cr_expect_str_eq(out.env_value, c->expect_core, "%s: value to set", c->what);
            cr_expect(strstr(out.reason, c->default_core) != NULL,
                      "%s: the reason does not name OpenBLAS's own choice: %s", c->what,
                      out.reason);
        }
    }
}

Test(openblas_core, tiers) {
    cr_expect_eq(cnb_openblas_core_tier("prescott"), 1);
    cr_expect_eq(cnb_openblas_core_tier("SkylakeX"), 4);
    cr_expect_eq(cnb_openblas_core_tier("Zen"), 3);
    cr_expect_eq(cnb_openblas_core_tier("no such core"), 0);
    cr_expect_eq(cnb_cpu_isa_tier(&sapphire_rapids), 4);
    cr_expect_eq(cnb_cpu_isa_tier(&knl_like), 3);
    cr_expect_eq(cnb_cpu_isa_tier(&sandy_bridge), 2);
}

/* This machine: the blas backend runs a core at least as good as the CPU allows, unless the
 * environment set one, and the results facts say who chose it. */
static void collect(void *user, const char *key, const char *value) {
    cnb_info_collect(user, key, value);
}

Test(openblas_core, end_to_end_core_in_use) {
    tu_backend b;
    char why[512];
    if (tu_try_open(&b, "blas", 1, why, sizeof why) != 0) cr_skip_test("blas: %s", why);
    cnb_info_list info = {0};
    tu_check_status(&b, cnb_backend_info(b.api, b.ctx, collect, &info), "info");
    const char *core = cnb_info_get(&info, "openblas.corename");
    const char *by = cnb_info_get(&info, "openblas.core_chosen_by");
    const char *reason = cnb_info_get(&info, "openblas.core_reason");
    cr_assert(core && by && reason, "core facts missing from the blas backend's info");
    cnb_cpu_features f;
    cnb_cpu_features_probe(&f);
    const cnb_openblas_choice *c = cnb_openblas_prepare();
    cr_log_info("OpenBLAS core in use: %s (OpenBLAS alone: %s); chosen by %s: %s", core,
                c->default_core, by, reason);
    if (c->env_was_set) {
        cr_expect(strncmp(by, "environment", 11) == 0, "chosen_by: %s", by);
    } else {
        if (!strstr(reason, "offers no better core"))
            cr_expect_geq(cnb_openblas_core_tier(core), cnb_cpu_isa_tier(&f),
                      "OpenBLAS runs %s (%s) on a %s CPU: %s", core,
                      cnb_isa_tier_name(cnb_openblas_core_tier(core)),
                      cnb_isa_tier_name(cnb_cpu_isa_tier(&f)), reason);
        cr_expect_str_eq(core, c->chosen_core, "the core in use is not the one chosen");
    }
    tu_close(&b);
}
