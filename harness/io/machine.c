/* machine.c — CPU model, cores and caches from hwloc; CPU flags from /proc/cpuinfo (hwloc does
 * not expose ISA flags); the kernel-speed environment variables. */
#define _GNU_SOURCE
#include "machine.h"

#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long cache_size(hwloc_topology_t topo, hwloc_obj_type_t type) {
    hwloc_obj_t o = hwloc_get_obj_by_type(topo, type, 0);
    return o && o->attr ? (long long)o->attr->cache.size : 0;
}

int cnb_machine_probe(cnb_machine *m) {
    memset(m, 0, sizeof *m);
    gethostname(m->hostname, sizeof m->hostname - 1);
    struct utsname u;
    if (uname(&u) == 0) snprintf(m->os, sizeof m->os, "%s %s %s", u.sysname, u.release, u.machine);
    unsigned v = hwloc_get_api_version();
    snprintf(m->hwloc_version, sizeof m->hwloc_version, "%u.%u.%u", v >> 16, (v >> 8) & 0xff,
             v & 0xff);

    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[8192];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "flags", 5) == 0) {
                m->has_avx2 = strstr(line, " avx2") != NULL;
                m->has_avx512f = strstr(line, " avx512f") != NULL;
                break;
            }
        }
        fclose(f);
    }

    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0) return -1;
    if (hwloc_topology_load(topo) != 0) {
        hwloc_topology_destroy(topo);
        return -1;
    }
    m->cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    m->pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    m->packages = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE);
    hwloc_obj_t pkg = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PACKAGE, 0);
    const char *model = pkg ? hwloc_obj_get_info_by_name(pkg, "CPUModel") : NULL;
    if (model) snprintf(m->cpu_model, sizeof m->cpu_model, "%s", model);
    m->l1d_bytes = cache_size(topo, HWLOC_OBJ_L1CACHE);
    m->l2_bytes = cache_size(topo, HWLOC_OBJ_L2CACHE);
    m->l3_bytes = cache_size(topo, HWLOC_OBJ_L3CACHE);
    hwloc_topology_destroy(topo);
    return 0;
}

void cnb_machine_env(void (*fn)(void *user, const char *key, const char *value), void *user) {
    static const char *const prefixes[] = {"OPENBLAS_", "OMP_", "GOMP_", "KMP_", "MKL_",
                                           "DNNL_", "ONEDNN_", "CUDA_", "MALLOC_", "CNNBENCH_"};
    for (char **e = environ; e && *e; e++) {
        for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
            size_t n = strlen(prefixes[i]);
            if (strncmp(*e, prefixes[i], n) != 0) continue;
            const char *eq = strchr(*e, '=');
            if (!eq) break;
            char key[128];
            snprintf(key, sizeof key, "%.*s", (int)(eq - *e), *e);
            fn(user, key, eq + 1);
            break;
        }
    }
}

/* Machine-wide busy and steal CPU seconds from the first line of /proc/stat. */
static int read_proc_stat(double *busy, double *steal) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    unsigned long long user, nice, sys, idle, iowait, irq, softirq, st;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle,
                   &iowait, &irq, &softirq, &st);
    fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    if (n != 8 || hz <= 0) return -1;
    *busy = (double)(user + nice + sys + irq + softirq) / (double)hz;
    *steal = (double)st / (double)hz;
    return 0;
}

static double clock_seconds(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cnb_load_probe_start(cnb_load_probe *p) {
    p->ok = read_proc_stat(&p->busy, &p->steal) == 0;
    p->own = clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
    p->wall = clock_seconds(CLOCK_MONOTONIC);
}

int cnb_load_probe_stop(const cnb_load_probe *p, double *other_cores, double *steal_cores) {
    double busy, steal, wall = clock_seconds(CLOCK_MONOTONIC) - p->wall;
    double own = clock_seconds(CLOCK_PROCESS_CPUTIME_ID) - p->own;
    *other_cores = *steal_cores = 0.0;
    if (!p->ok || read_proc_stat(&busy, &steal) != 0 || wall <= 0) return -1;
    double other = (busy - p->busy - own) / wall;
    /* /proc/stat counts in clock ticks: a short window can come out slightly negative. */
    *other_cores = other > 0 ? other : 0.0;
    *steal_cores = (steal - p->steal) / wall;
    return 0;
}
