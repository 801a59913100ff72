/* runctx.c — shared context and helpers for the check / bench / compare / report verbs. */
#define _GNU_SOURCE
#include <math.h>
#include <limits.h>
#ifndef CNB_GIT_COMMIT /* the build's commit, written by cmake/git_commit.cmake */
#include "cnb_git_commit.h"
#endif
#include "runctx.h"

#include <dirent.h>
#include <errno.h>
#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"
#include "util.h"

#ifndef CNB_VERSION
#define CNB_VERSION "unknown"
#endif

int cnb_split_list(char *buf, char **items, int max) {
    int n = 0;
    char *save = NULL;
    size_t len = strlen(buf);
    if (len == 0 || buf[0] == ',' || buf[len - 1] == ',' || strstr(buf, ",,")) return -1;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n >= max) return -1;
        items[n++] = tok;
    }
    return n;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int cnb_list_model_names(char **names, int max) {
    DIR *d = opendir(cnb_models_dir());
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".cfg") == 0)
            names[n++] = strndup(e->d_name, len - 4);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    return n;
}

void cnb_free_names(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
}

void cnb_pinning_probe(cnb_pinning *p) {
    memset(p, 0, sizeof *p);
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0) return;
    if (hwloc_topology_load(topo) != 0) {
        hwloc_topology_destroy(topo);
        return;
    }
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    char *s = NULL;
    if (set && hwloc_get_cpubind(topo, set, HWLOC_CPUBIND_PROCESS) == 0 &&
        hwloc_bitmap_list_asprintf(&s, set) >= 0) {
        snprintf(p->bound, sizeof p->bound, "%s", s);
        free(s);
        s = NULL;
    }
    hwloc_const_bitmap_t allowed = hwloc_topology_get_allowed_cpuset(topo);
    if (allowed && hwloc_bitmap_list_asprintf(&s, allowed) >= 0) {
        snprintf(p->allowed, sizeof p->allowed, "%s", s);
        free(s);
    }
    p->pinned = set && allowed && !hwloc_bitmap_isequal(set, allowed);
    hwloc_bitmap_free(set);
    hwloc_topology_destroy(topo);
}

const char *cnb_build_description(void) {
#ifdef CNB_BUILD_TYPE
    if (CNB_BUILD_TYPE[0]) return CNB_BUILD_TYPE;
#endif
#if defined(__OPTIMIZE__) && defined(NDEBUG)
    return "optimized, NDEBUG (Release-like)";
#elif defined(__OPTIMIZE__)
    return "optimized, assertions on";
#else
    return "unoptimized (Debug-like)";
#endif
}

static void env_to_json(void *user, const char *key, const char *value) {
    cJSON_AddStringToObject((cJSON *)user, key, value);
}

cJSON *cnb_machine_json(const cnb_machine *mc) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "cpu_model", mc->cpu_model);
    cJSON_AddNumberToObject(m, "packages", mc->packages);
    cJSON_AddNumberToObject(m, "cores", mc->cores);
    cJSON_AddNumberToObject(m, "pus", mc->pus);
    cJSON_AddNumberToObject(m, "l1d_bytes", (double)mc->l1d_bytes);
    cJSON_AddNumberToObject(m, "l2_bytes", (double)mc->l2_bytes);
    cJSON_AddNumberToObject(m, "l3_bytes", (double)mc->l3_bytes);
    cJSON_AddBoolToObject(m, "avx2", mc->has_avx2);
    cJSON_AddBoolToObject(m, "avx512f", mc->has_avx512f);
    cJSON_AddStringToObject(m, "hostname", mc->hostname);
    cJSON_AddStringToObject(m, "os", mc->os);
    cJSON_AddStringToObject(m, "hwloc", mc->hwloc_version);
    return m;
}

cJSON *cnb_context_json(const char *kind, int argc, char **argv, uint64_t seed, int threads,
                        const cnb_machine *mc) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "schema_version", CNB_RESULTS_SCHEMA_VERSION);
    cJSON_AddStringToObject(root, "kind", kind);
    cJSON_AddStringToObject(root, "tool", "cnnbench " CNB_VERSION);
    cJSON_AddStringToObject(root, "git_commit", CNB_GIT_COMMIT);
    char when[64];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    cJSON_AddStringToObject(root, "created", when);
    cJSON *cmd = cJSON_AddArrayToObject(root, "command_line");
    cJSON_AddItemToArray(cmd, cJSON_CreateString("cnnbench"));
    for (int i = 0; i < argc; i++) cJSON_AddItemToArray(cmd, cJSON_CreateString(argv[i]));
    cJSON_AddNumberToObject(root, "seed", (double)seed);
    cJSON_AddStringToObject(root, "build_type", cnb_build_description());
    cJSON_AddNumberToObject(root, "threads", threads);
    cnb_pinning pin;
    cnb_pinning_probe(&pin);
    cJSON *pj = cJSON_AddObjectToObject(root, "pinning");
    cJSON_AddStringToObject(pj, "bound_pus", pin.bound);
    cJSON_AddStringToObject(pj, "allowed_pus", pin.allowed);
    cJSON_AddBoolToObject(pj, "pinned", pin.pinned);
    cJSON_AddItemToObject(root, "machine", cnb_machine_json(mc));
    cJSON *env = cJSON_AddObjectToObject(root, "environment");
    cnb_machine_env(env_to_json, env);
    /* the test faults are not in machine.c's prefixes; a result made with one must say so */
    static const char *const faults[] = {"CNB_TEST_SLOWDOWN_CONV", "CNB_TEST_PERTURB",
                                         "CNB_TEST_FAULT_BACKEND"};
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
        if (getenv(faults[i])) cJSON_AddStringToObject(env, faults[i], getenv(faults[i]));
    return root;
}

const char *cnb_results_kind(const cJSON *root) {
    const char *k = cnb_json_str(root, "kind", NULL);
    if (k) return k;
    if (cJSON_GetObjectItemCaseSensitive(root, "epochs")) return "train";
    return "unknown";
}

cJSON *cnb_info_json(const cnb_info_list *info) {
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; info && i < info->count; i++)
        cJSON_AddStringToObject(o, info->key[i], info->value[i]);
    return o;
}

cJSON *cnb_backend_json(const char *name, int usable, const char *device, const char *why,
                        const char *path, const cnb_info_list *info, const char *fault_env) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", name);
    cJSON_AddStringToObject(e, "status", usable ? "loaded" : "skipped");
    if (device) cJSON_AddStringToObject(e, "device", device);
    if (!usable) cJSON_AddStringToObject(e, "reason", why);
    else {
        cJSON_AddStringToObject(e, "path", path);
        cJSON_AddItemToObject(e, "info", cnb_info_json(info));
    }
    if (fault_env[0]) cJSON_AddStringToObject(e, "test_fault", fault_env);
    return e;
}

cJSON *cnb_read_json(const char *path, char *err, size_t err_len) {
    size_t len = 0;
    char *buf = cnb_read_file(path, &len, err, err_len);
    if (!buf) return NULL;
    cJSON *root = cJSON_Parse(buf);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= buf && at <= buf + len ? (long)(at - buf) : -1;
        cnb_errf(err, err_len, "%s: not valid JSON (near byte %ld)", path, off);
    }
    free(buf);
    return root;
}

int cnb_write_json(const char *path, const cJSON *root, char *err, size_t err_len) {
    char *text = cJSON_Print(root);
    if (!text) return cnb_errf(err, err_len, "%s: out of memory building JSON", path);
    size_t n = strlen(text);
    char *with_nl = malloc(n + 2);
    if (!with_nl) {
        free(text);
        return cnb_errf(err, err_len, "%s: out of memory", path);
    }
    memcpy(with_nl, text, n);
    with_nl[n] = '\n';
    with_nl[n + 1] = '\0';
    free(text);
    int rc = cnb_write_file_atomic(path, with_nl, err, err_len);
    free(with_nl);
    return rc;
}

double cnb_json_num(const cJSON *o, const char *key, double dflt) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

int cnb_json_int(const cJSON *o, const char *key, int dflt) {
    double v = cnb_json_num(o, key, NAN);
    if (!(v >= INT_MIN && v <= INT_MAX)) return dflt; /* also false for NaN */
    return (int)v;
}

const char *cnb_json_str(const cJSON *o, const char *key, const char *dflt) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : dflt;
}
