/* test_gpu_device.c — what the GPU backends (cuda, cudnn) say about the machine, checked against
 * an independent look at it: the test opens the NVIDIA driver library (libcuda.so.1) itself and
 * counts devices with the driver API. No driver: create() must fail with CNB_ERR_NO_DEVICE and
 * one line "<backend>: no CUDA driver found (cudaError...): ..." (what a machine without a GPU
 * shows). A driver without devices: CNB_ERR_NO_DEVICE naming the device or driver. Devices:
 * create() must succeed, info() must name the device, and a device index past the last one must
 * be refused. This runs on every machine; only a backend that is not built is skipped. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "loader.h"
#include "testutil.h"

/* Devices the driver reports: -1 when there is no driver library, 0 when it has no usable
 * device (cuInit or the count fails), else the count. */
static int driver_device_count(void) {
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) return -1;
    int (*cu_init)(unsigned) = (int (*)(unsigned))dlsym(h, "cuInit");
    int (*cu_count)(int *) = (int (*)(int *))dlsym(h, "cuDeviceGetCount");
    int count = 0;
    if (!cu_init || !cu_count || cu_init(0) != 0 || cu_count(&count) != 0) count = 0;
    dlclose(h);
    return count;
}

/* Loads backend name without creating a context; skips the test when it is not built. When
 * neither GPU backend is built (no CUDA toolkit), the program has nothing to check: it says
 * "[SKIP-ALL]" so CTest reports it skipped rather than passed. */
static void load_or_skip(const char *name, cnb_loaded_backend *lib) {
    char err[CNB_ERR_LEN], other_err[CNB_ERR_LEN];
    if (cnb_load_backend(name, lib, err, sizeof err) == 0) return;
    cnb_loaded_backend other;
    const char *other_name = strcmp(name, "cuda") == 0 ? "cudnn" : "cuda";
    if (cnb_load_backend(other_name, &other, other_err, sizeof other_err) == 0) {
        cnb_unload_backend(&other);
    } else {
        printf("[SKIP-ALL] gpu_device: neither GPU backend is built (%s)\n", err);
        fflush(stdout);
    }
    cr_skip_test("%s not built: %s", name, err);
}

typedef struct found {
    char name[256], cc[32];
} found;

static void collect(void *user, const char *key, const char *value) {
    found *f = user;
    if (strcmp(key, "device.name") == 0) snprintf(f->name, sizeof f->name, "%s", value);
    if (strcmp(key, "device.compute_capability") == 0) snprintf(f->cc, sizeof f->cc, "%s", value);
}

static void check_backend(const char *name) {
    cnb_loaded_backend lib;
    load_or_skip(name, &lib);
    int devices = driver_device_count();
    char err[CNB_ERR_LEN] = "";
    cnb_config cfg = {.size = sizeof cfg, .threads = 1};
    cnb_context *ctx = NULL;
    cnb_status st = lib.api->create(&cfg, &ctx, err, sizeof err);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%s: ", name);
    if (devices <= 0) {
        cr_expect_eq(st, CNB_ERR_NO_DEVICE, "%s with %s: create returned %d (%s), want no device; "
                     "message: %s", name, devices < 0 ? "no driver" : "no device", st,
                     cnb_status_str(st), err);
        cr_expect_null(ctx, "%s: a failed create left a context", name);
        cr_expect(strncmp(err, prefix, strlen(prefix)) == 0, "message does not start with '%s': %s",
                  prefix, err);
        cr_expect(strchr(err, '\n') == NULL, "message is not one line: %s", err);
        cr_expect(strstr(err, "(cudaError") != NULL, "message names no CUDA error: %s", err);
        if (devices < 0)
            cr_expect(strstr(err, "no CUDA driver found") != NULL,
                      "no libcuda.so.1 here, but the message says: %s", err);
        else
            cr_expect(strstr(err, "device") != NULL || strstr(err, "driver") != NULL,
                      "message mentions neither device nor driver: %s", err);
        printf("%s on this machine: %s\n", name, err);
        /* The harness's one-step open reports the same line. */
        cnb_loaded_backend lib2;
        cnb_context *ctx2 = NULL;
        char err2[CNB_ERR_LEN] = "";
        cr_expect_neq(cnb_open_backend(name, &cfg, &lib2, &ctx2, err2, sizeof err2), 0,
                      "cnb_open_backend succeeded without a device");
        cr_expect(strstr(err2, err) != NULL, "open's message '%s' lacks create's '%s'", err2, err);
    } else {
        cr_assert_eq(st, CNB_OK, "%s: %d device(s) visible to the driver, but create failed: %s",
                     name, devices, err);
        found f = {{0}, {0}};
        cr_expect_eq(lib.api->info(ctx, collect, &f), CNB_OK, "info failed");
        cr_expect(f.name[0] != '\0', "info reports no device.name");
        cr_expect(f.cc[0] != '\0', "info reports no device.compute_capability");
        printf("%s: %s (compute capability %s)\n", name, f.name, f.cc);
        lib.api->destroy(ctx);
        /* A device index past the last one is refused with a message naming it. */
        cnb_config bad = cfg;
        bad.device_index = devices + 7;
        ctx = NULL;
        st = lib.api->create(&bad, &ctx, err, sizeof err);
        cr_expect_eq(st, CNB_ERR_INVALID_ARGUMENT, "device_index %d: status %d (%s)",
                     bad.device_index, st, err);
        cr_expect_null(ctx);
    }
    fflush(stdout);
    cnb_unload_backend(&lib);
}

Test(gpu_device, cuda_create_matches_the_machine) { check_backend("cuda"); }
Test(gpu_device, cudnn_create_matches_the_machine) { check_backend("cudnn"); }
