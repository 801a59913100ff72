/* test_cuda_link.c — each GPU backend carries exactly one CUDA runtime: the shared libcudart
 * (NEEDED in its dynamic section), not also the static one linked in (cudart_static's own
 * functions defined inside the .so). Two runtimes in one process keep two sets of state (the
 * current device, the last error, registered kernels), so cuDNN's and cuBLAS's calls and ours
 * would not see each other. Inspects the built files with readelf and nm; a backend not built
 * here is skipped with the reason. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

/* Fills path with the backend's file; 0 when it was not built. */
static int backend_file(const char *name, char *path, size_t len) {
    snprintf(path, len, "%s/libcnb_%s.so", cnb_backend_dir(), name);
    return access(path, R_OK) == 0;
}

/* 1 when readelf lists libcudart.so.* among the file's NEEDED entries. */
static int needs_shared_cudart(const char *path) {
    char cmd[1200], *out = NULL;
    snprintf(cmd, sizeof cmd, "readelf -d '%s'", path);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s failed: %s", cmd, out ? out : "");
    int found = strstr(out, "[libcudart.so") != NULL;
    free(out);
    return found;
}

/* Runtime functions defined (T) inside the file: what cudart_static brings. A file linked
 * against the shared runtime only has them undefined (U ...@libcudart.so.N). */
static int defines_static_cudart(const char *path, char *first, size_t len) {
    char cmd[1200], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "nm --defined-only '%s' | grep -E ' [TtWw] (cudaMalloc|cudaStreamSynchronize|"
             "cudaGetLastError|__cudaRegisterFatBinary)$' | head -1",
             path);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s failed: %s", cmd, out ? out : "");
    snprintf(first, len, "%s", out);
    first[strcspn(first, "\n")] = '\0';
    int found = out[0] != '\0';
    free(out);
    return found;
}

static void check_one_runtime(const char *name) {
    char path[1024], sym[256];
    if (!backend_file(name, path, sizeof path)) {
        printf("[SKIP] %s: backend not built here (%s missing)\n", name, path);
        cr_skip_test("%s not built", name);
    }
    int shared = needs_shared_cudart(path);
    int stat = defines_static_cudart(path, sym, sizeof sym);
    cr_expect(shared, "%s does not list libcudart.so as NEEDED", path);
    cr_expect(!stat, "%s defines CUDA runtime functions itself (static cudart linked in: %s) "
                     "besides needing libcudart.so",
              path, sym);
}

/* The link line itself (the Makefile generator's link.txt and linkLibs.rsp): the linker takes
 * what it needs from the first runtime it meets, so a file can come out clean while the line
 * still names both; the line is what the CUDA_RUNTIME_LIBRARY property controls. */
static void check_link_line(const char *name, const char *subdir) {
    char dir[1024], cmd[2400], *out = NULL;
    snprintf(dir, sizeof dir, "%s/backends/%s/CMakeFiles/cnb_%s.dir", CNB_BINARY_DIR, subdir,
             name);
    if (access(dir, R_OK) != 0) cr_skip_test("no Makefile link files in %s", dir);
    snprintf(cmd, sizeof cmd, "cat '%s/link.txt' '%s/linkLibs.rsp' 2>/dev/null", dir, dir);
    tu_run(cmd, &out);
    cr_expect(strstr(out, "libcudart.so") || strstr(out, "-lcudart"),
              "%s links no shared CUDA runtime: %s", name, out);
    cr_expect(strstr(out, "cudart_static") == NULL,
              "%s's link line names the static CUDA runtime too: %s", name, out);
    free(out);
}

Test(cuda_link, cuda_backend_links_only_the_shared_runtime) {
    check_one_runtime("cuda");
    check_link_line("cuda", "cuda");
}
Test(cuda_link, cudnn_backend_links_only_the_shared_runtime) {
    check_one_runtime("cudnn");
    check_link_line("cudnn", "cudnn");
}

/* The check itself must be able to fail: a tiny library with cudart_static linked in is
 * caught. Built on the fly with the toolkit's static runtime when present. */
Test(cuda_link, the_check_sees_a_static_runtime) {
    char path[1024];
    if (!backend_file("cuda", path, sizeof path)) cr_skip_test("cuda not built");
    const char *root = getenv("CUDA_HOME") ? getenv("CUDA_HOME") : "/usr/local/cuda";
    char lib[512], cmd[2048], *out = NULL;
    snprintf(lib, sizeof lib, "%s/lib64/libcudart_static.a", root);
    if (access(lib, R_OK) != 0) snprintf(lib, sizeof lib, "%s/lib/libcudart_static.a", root);
    if (access(lib, R_OK) != 0) cr_skip_test("no libcudart_static.a under %s", root);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && printf 'extern int cudaGetLastError(void);\\n"
             "int probe(void){return cudaGetLastError();}\\n' > static_rt.c && "
             "cc -shared -fPIC -o libstatic_rt.so static_rt.c '%s' -lpthread -ldl -lrt",
             CNB_TEST_TMP_DIR, lib);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s: %s", cmd, out);
    free(out);
    char so[1024], sym[256];
    snprintf(so, sizeof so, "%s/libstatic_rt.so", CNB_TEST_TMP_DIR);
    cr_expect(defines_static_cudart(so, sym, sizeof sym), "static runtime not detected in %s", so);
    cr_expect(!needs_shared_cudart(so));
}
