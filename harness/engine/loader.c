/* loader.c — finds a backend shared object, dlopens it and checks its function table before
 * the harness trusts a single slot. Every refusal names the file and what is wrong. */
#define _GNU_SOURCE
#include "loader.h"
#include "openblas_core.h"

#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "paths.h"
#include "util.h"

const char *const cnb_known_backends[] = {"naive", "blas", "onednn", "cuda", "cudnn"};
const int cnb_known_backend_count = 5;

const char *cnb_backend_dir(void) {
    static char dir[PATH_MAX];
    const char *env = getenv("CNNBENCH_BACKEND_DIR");
    if (env && *env) return env;
    return cnb_default_dir(CNB_DIR_BACKENDS, dir, sizeof dir);
}

/* <dir>/libcnb_<name>.so for the first search directory that has it ($CNNBENCH_BACKEND_PATH,
 * then the backend directory); the backend directory's path when none does. */
static void find_named_backend(const char *name, char *path, size_t len) {
    char *dirs[CNB_MAX_SEARCH_DIRS];
    int n = cnb_search_dirs("CNNBENCH_BACKEND_PATH", cnb_backend_dir(), dirs, CNB_MAX_SEARCH_DIRS);
    for (int i = 0; i < n; i++) {
        snprintf(path, len, "%s/libcnb_%s.so", dirs[i], name);
        if (access(path, F_OK) == 0) break;
    }
    cnb_free_search_dirs(dirs, n);
}

/* A slot of the table by name, so a refusal can say which one is empty. */
typedef struct slot_ref {
    const char *name;
    size_t offset;
} slot_ref;
#define SLOT(f) {#f, offsetof(cnb_backend, f)}
/* The v1 slots a table must fill. */
static const slot_ref required_v1[] = {
    SLOT(create), SLOT(destroy), SLOT(last_error), SLOT(info), SLOT(alloc), SLOT(free),
    SLOT(upload), SLOT(download), SLOT(synchronize), SLOT(corr2d), SLOT(conv_forward),
    SLOT(conv_backward_data), SLOT(conv_backward_filter), SLOT(bias_forward),
    SLOT(bias_backward), SLOT(pool_workspace_size), SLOT(pool_forward), SLOT(pool_backward),
    SLOT(gemm), SLOT(activation_forward), SLOT(activation_backward), SLOT(softmax_ce_forward),
    SLOT(softmax_ce_backward), SLOT(sgd_step), SLOT(adam_step),
};
/* The optional timer group: all four or none, and only when struct_size covers it. */
static const slot_ref timer_slots[] = {SLOT(timer_create), SLOT(timer_record),
                                       SLOT(timer_elapsed), SLOT(timer_destroy)};
/* The optional collective group (device all-reduce): all four or none, like the timers. */
static const slot_ref collective_slots[] = {SLOT(collective_id), SLOT(collective_init),
                                            SLOT(allreduce_sum), SLOT(collective_destroy)};
/* The optional fusion group: both or none, likewise. */
static const slot_ref fusion_slots[] = {SLOT(conv_bias_act_forward), SLOT(pool_act_backward)};
#undef SLOT

/* The name of the first empty slot of a group that is neither all filled nor all empty. */
static const char *partial_group(const cnb_backend *t, const slot_ref *slots, size_t n) {
    size_t filled = 0;
    const char *empty = NULL;
    for (size_t i = 0; i < n; i++) {
        void *slot;
        memcpy(&slot, (const char *)t + slots[i].offset, sizeof slot);
        if (slot) filled++;
        else if (!empty) empty = slots[i].name;
    }
    return filled && filled < n ? empty : NULL;
}

static int check_table(const cnb_backend *t, const char *path, char *err, size_t err_len) {
    if (t->abi_version < CNB_ABI_MIN_VERSION || t->abi_version > CNB_ABI_VERSION)
        return cnb_errf(err, err_len,
                        "%s: backend ABI version %u is not supported: this cnnbench expects "
                        "version %u (accepts %u..%u); rebuild the backend against this cnb_abi.h",
                        path, t->abi_version, CNB_ABI_VERSION, CNB_ABI_MIN_VERSION,
                        CNB_ABI_VERSION);
    if (t->struct_size < CNB_BACKEND_V1_SIZE)
        return cnb_errf(err, err_len,
                        "%s: backend table is %u bytes but ABI version %u needs at least %zu",
                        path, t->struct_size, t->abi_version, (size_t)CNB_BACKEND_V1_SIZE);
    if (!t->name || !*t->name)
        return cnb_errf(err, err_len, "%s: backend table has no name", path);
    for (size_t i = 0; i < sizeof required_v1 / sizeof required_v1[0]; i++) {
        void *slot;
        memcpy(&slot, (const char *)t + required_v1[i].offset, sizeof slot);
        if (!slot)
            return cnb_errf(err, err_len,
                            "%s: backend '%s' leaves the required slot '%s' empty (ABI v%u)",
                            path, t->name, required_v1[i].name, t->abi_version);
    }
    /* An optional group is all filled or all empty; a table that ends before a group (built
     * against an older header) simply lacks it. Half the timers would have the profiler record
     * markers it cannot read back; half a fused group would have the harness skip a layer's
     * separate call in one pass and find no fused slot to stand in for it in the other. */
    static const struct {
        size_t min_size;
        const slot_ref *slots;
        size_t n;
        const char *group, *all;
    } optional[] = {
        {CNB_BACKEND_TIMERS_SIZE, timer_slots, sizeof timer_slots / sizeof timer_slots[0],
         "timer", "all four"},
        {CNB_BACKEND_COLLECTIVES_SIZE, collective_slots,
         sizeof collective_slots / sizeof collective_slots[0], "collective", "all four"},
        {CNB_BACKEND_FUSION_SIZE, fusion_slots, sizeof fusion_slots / sizeof fusion_slots[0],
         "fusion", "both"},
    };
    for (size_t g = 0; g < sizeof optional / sizeof optional[0]; g++) {
        if (t->struct_size < optional[g].min_size) continue;
        const char *empty = partial_group(t, optional[g].slots, optional[g].n);
        if (empty)
            return cnb_errf(err, err_len,
                            "%s: backend '%s' fills only some of the optional %s slots: "
                            "'%s' is empty (give %s or none)",
                            path, t->name, optional[g].group, empty, optional[g].all);
    }
    return 0;
}

/* Code from a file that someone else can replace is someone else's code: refuse a library that
 * others can write, or that sits in a directory others can write without the sticky bit (they
 * could rename another file over it), or that belongs to another ordinary user. Checked on the
 * resolved path, so a symlink cannot point the check elsewhere. */
int cnb_check_backend_file(const char *path, char *err, size_t err_len) {
    char real[PATH_MAX];
    struct stat st, dst;
    if (!realpath(path, real))
        return cnb_errf(err, err_len, "%s: cannot resolve the path: %s", path, strerror(errno));
    if (stat(real, &st) != 0)
        return cnb_errf(err, err_len, "%s: cannot open backend: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return cnb_errf(err, err_len, "%s: not a regular file", path);
    if (st.st_mode & S_IWOTH)
        return cnb_errf(err, err_len,
                        "%s: refusing to load a backend that any user can write (mode %04o); "
                        "chmod o-w it", path, (unsigned)(st.st_mode & 07777));
    if (st.st_uid != 0 && st.st_uid != geteuid())
        return cnb_errf(err, err_len,
                        "%s: refusing to load a backend owned by another user (uid %u)", path,
                        (unsigned)st.st_uid);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", real);
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = '\0';
    else if (slash) *slash = '\0';
    if (stat(dir, &dst) != 0)
        return cnb_errf(err, err_len, "%s: cannot check its directory %s: %s", path, dir,
                        strerror(errno));
    if ((dst.st_mode & S_IWOTH) && !(dst.st_mode & S_ISVTX))
        return cnb_errf(err, err_len,
                        "%s: refusing to load a backend from %s, a directory any user can write "
                        "(mode %04o, no sticky bit): anyone could replace the library", path, dir,
                        (unsigned)(dst.st_mode & 07777));
    if (dst.st_uid != 0 && dst.st_uid != geteuid() && (dst.st_mode & (S_IWGRP | S_IWOTH)))
        return cnb_errf(err, err_len,
                        "%s: refusing to load a backend from %s, a directory owned by another "
                        "user (uid %u) that others can write", path, dir, (unsigned)dst.st_uid);
    return 0;
}

int cnb_load_backend(const char *name_or_path, cnb_loaded_backend *out, char *err,
                     size_t err_len) {
    memset(out, 0, sizeof *out);
    if (!name_or_path || !*name_or_path)
        return cnb_errf(err, err_len, "no backend named");
    if (strchr(name_or_path, '/')) {
        snprintf(out->path, sizeof out->path, "%s", name_or_path);
    } else {
        int known = 0;
        for (int i = 0; i < cnb_known_backend_count; i++)
            known |= strcmp(name_or_path, cnb_known_backends[i]) == 0;
        if (!known)
            return cnb_errf(err, err_len,
                            "unknown backend '%s' (valid: naive, blas, onednn, cuda, cudnn, or a "
                            "path to a backend .so)",
                            name_or_path);
        find_named_backend(name_or_path, out->path, sizeof out->path);
    }

    struct stat st;
    if (stat(out->path, &st) != 0) {
        if (!strchr(name_or_path, '/'))
            return cnb_errf(err, err_len, "%s: backend '%s' is not built here (%s)", out->path,
                            name_or_path, strerror(errno));
        return cnb_errf(err, err_len, "%s: cannot open backend: %s", out->path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
        return cnb_errf(err, err_len, "%s: not a regular file", out->path);
    if (cnb_check_backend_file(out->path, err, err_len) != 0) return -1;

    /* OpenBLAS fixes its kernels when it loads: choose them before any backend brings it in. */
    cnb_openblas_prepare();
    dlerror();
    /* RTLD_NODELETE: a backend's C++ runtime (oneDNN, CUDA) keeps static allocations that would
     * otherwise be unmapped, unreachable, on dlclose; keeping the code mapped costs nothing. */
    out->handle = dlopen(out->path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!out->handle) {
        const char *why = dlerror();
        return cnb_errf(err, err_len, "%s: cannot load backend: %s", out->path,
                        why ? why : "unknown dlopen error");
    }
    dlerror();
    void *sym = dlsym(out->handle, CNB_ENTRY_SYMBOL);
    if (!sym) {
        cnb_errf(err, err_len, "%s: not a cnnbench backend: entry point '%s' not found",
                 out->path, CNB_ENTRY_SYMBOL);
        dlclose(out->handle);
        out->handle = NULL;
        return -1;
    }
    cnb_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry); /* object → function pointer, as POSIX permits */
    const cnb_backend *table = entry(CNB_ABI_VERSION);
    if (!table) {
        cnb_errf(err, err_len,
                 "%s: backend refused ABI version %u (its entry point returned no table)",
                 out->path, CNB_ABI_VERSION);
    } else if (check_table(table, out->path, err, err_len) == 0) {
        out->api = table;
        out->device_kind = cnb_backend_device_kind(table);
        return 0;
    }
    dlclose(out->handle);
    out->handle = NULL;
    return -1;
}

void cnb_unload_backend(cnb_loaded_backend *b) {
    if (b && b->handle) dlclose(b->handle);
    if (b) memset(b, 0, sizeof *b);
}

int cnb_open_backend(const char *name_or_path, const cnb_config *cfg, cnb_loaded_backend *out,
                     cnb_context **ctx, char *err, size_t err_len) {
    *ctx = NULL;
    if (cnb_load_backend(name_or_path, out, err, err_len) != 0) return -1;
    cnb_config defaults = {.size = sizeof(cnb_config)};
    char why[CNB_ERR_LEN] = "";
    cnb_status st = out->api->create(cfg ? cfg : &defaults, ctx, why, sizeof why);
    if (st != CNB_OK || !*ctx) {
        cnb_errf(err, err_len, "%s: backend '%s' cannot run here: %s (%s)", out->path,
                 out->api->name, why[0] ? why : "create failed", cnb_status_str(st));
        int kind = out->device_kind;
        cnb_unload_backend(out);
        out->device_kind = kind; /* what the backend would have driven, for reports */
        *ctx = NULL;
        return -1;
    }
    return 0;
}

void cnb_close_backend(cnb_loaded_backend *b, cnb_context *ctx) {
    if (b && b->api && ctx) b->api->destroy(ctx);
    cnb_unload_backend(b);
}

typedef struct info_relay {
    cnb_info_fn fn;
    void *user;
    int on_openblas;
} info_relay;

static void relay_fact(void *user, const char *key, const char *value) {
    info_relay *r = user;
    if (strcmp(key, "openblas.corename") == 0) r->on_openblas = 1;
    r->fn(r->user, key, value);
}

cnb_status cnb_backend_info(const cnb_backend *api, cnb_context *ctx, cnb_info_fn fn, void *user) {
    info_relay r = {fn, user, 0};
    cnb_status st = api->info(ctx, relay_fact, &r);
    if (r.on_openblas) cnb_openblas_choice_facts(cnb_openblas_prepare(), fn, user);
    return st;
}
