/* test_install.c — cnnbench installed and packaged, run away from the source and build trees.
 * `cmake --install` into a scratch prefix lays out bin/cnnbench, lib/cnnbench/ and
 * share/cnnbench/models/; the program holds no path of the source or build tree; the prefix is
 * moved elsewhere and a short training run from it completes, loading its backend and model from
 * the moved prefix; CNNBENCH_BACKEND_PATH and CNNBENCH_MODEL_PATH add directories. `cpack -G DEB`
 * builds a .deb whose Depends name the Debian libraries it links and which carries no CUDA
 * backend; extracted with dpkg-deb -x into another directory, it trains too (skipped with the
 * reason when dpkg-deb or dpkg-shlibdeps are missing). */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define BUILD_DIR CNB_TEST_TMP_DIR "/../.."
/* every CNNBENCH_ variable that could point the program back at the trees */
#define CLEAN_ENV "env -u CNNBENCH_BACKEND_DIR -u CNNBENCH_MODELS_DIR -u CNNBENCH_BACKEND_PATH" \
                  " -u CNNBENCH_MODEL_PATH "
#define SHORT_RUN " --steps 2 --train-limit 256 --test-limit 256 --quiet"

static char dir[512];

static void make_scratch(void) {
    tu_make_dir(dir, sizeof dir, "install");
}

static int run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(char **out, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return tu_run(cmd, out);
}

static void expect_file(const char *prefix, const char *rel) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", prefix, rel);
    cr_expect_eq(access(path, R_OK), 0, "missing %s", path);
}

/* The program must hold neither tree's path (the build tree's marker is how it finds them).
 * Looked for in what the program loads (.rodata, .data), not in debug information, which names
 * the sources by design; skipped under the sanitizers, whose reports carry source locations. */
static void expect_no_tree_paths(const char *prefix) {
    if (getenv("CNB_SANITIZED")) {
        printf("install: path check skipped: sanitizer builds embed source file names\n");
        return;
    }
    char exe[1200], sections[1200], *out = NULL;
    snprintf(exe, sizeof exe, "%s/bin/cnnbench", prefix);
    snprintf(sections, sizeof sections, "%s/sections.bin", dir);
    int rc = run(&out, "objcopy -O binary --only-section=.rodata --only-section=.data '%s' '%s'",
                 exe, sections);
    cr_assert_eq(rc, 0, "objcopy: %s", out);
    free(out);
    size_t len;
    char *bin = tu_slurp(sections, &len);
    cr_assert_gt(len, 1000, "no .rodata in %s?", exe);
    cr_assert_not_null(memmem(bin, len, "CNNBENCH_BACKEND_PATH", 21), "the scan sees the strings");
    char build[4096];
    cr_assert_not_null(realpath(BUILD_DIR, build));
    cr_expect_null(memmem(bin, len, CNB_SOURCE_DIR, strlen(CNB_SOURCE_DIR)),
                   "%s holds the source tree's path %s", exe, CNB_SOURCE_DIR);
    cr_expect_null(memmem(bin, len, build, strlen(build)), "%s holds the build tree's path %s",
                   exe, build);
    free(bin);
    unlink(sections);
}

/* A short training run of `backend` from prefix; its results must name files under prefix. */
static void train_from(const char *prefix, const char *backend, const char *model) {
    char *out = NULL, json[1024];
    snprintf(json, sizeof json, "%s/train-%s.json", dir, backend);
    int rc = run(&out, "cd / && " CLEAN_ENV "'%s/bin/cnnbench' --backend %s --model %s" SHORT_RUN
                 " --out '%s'", prefix, backend, model, json);
    cr_assert_eq(rc, 0, "training from %s failed:\n%s", prefix, out);
    free(out);
    size_t len;
    char *text = tu_slurp(json, &len);
    cJSON *r = cJSON_Parse(text);
    free(text);
    cr_assert_not_null(r);
    const char *bpath = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "backend"), "path")->valuestring;
    const char *mpath = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "model"), "path")->valuestring;
    cr_expect_eq(strncmp(bpath, prefix, strlen(prefix)), 0, "backend from %s, not %s", bpath, prefix);
    cr_expect_eq(strncmp(mpath, prefix, strlen(prefix)), 0, "model from %s, not %s", mpath, prefix);
    cr_expect_str_eq(cJSON_GetObjectItem(r, "status")->valuestring, "completed");
    cJSON_Delete(r);
}

/* The scratch directory goes after each test (the messages say what failed). */
static void remove_scratch(void) { tu_remove_dir(dir); }

TestSuite(install, .fini = remove_scratch);

Test(install, moved_prefix_trains_and_search_paths_add_directories, .timeout = 600) {
    make_scratch();
    char *out = NULL, prefix[1024], moved[1024];
    snprintf(prefix, sizeof prefix, "%s/prefix", dir);
    snprintf(moved, sizeof moved, "%s/elsewhere/cnnbench", dir);
    int rc = run(&out, "cmake --install '%s' --prefix '%s'", BUILD_DIR, prefix);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    expect_file(prefix, "bin/cnnbench");
    expect_file(prefix, "lib/cnnbench/libcnb_naive.so");
    expect_file(prefix, "share/cnnbench/models/simplecnn.cfg");
    expect_file(prefix, "share/cnnbench/models/lenet5.cfg");
    expect_no_tree_paths(prefix);

    /* the prefix moved away: nothing can lead back to where it was installed */
    rc = run(&out, "mkdir -p '%s/elsewhere' && mv '%s' '%s'", dir, prefix, moved);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    train_from(moved, "naive", "network");

    /* extra directories: a model and a backend found only through the variables */
    rc = run(&out, "mkdir -p '%s/models' '%s/backends' && cp '%s/share/cnnbench/models/network.cfg'"
             " '%s/models/mynet.cfg' && mv '%s/lib/cnnbench/libcnb_naive.so' '%s/backends/'",
             dir, dir, moved, dir, moved, dir);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    rc = run(&out, CLEAN_ENV "'%s/bin/cnnbench' --backend naive --model mynet" SHORT_RUN
             " --out '%s/x.json'", moved, dir);
    cr_expect_neq(rc, 0, "without the variables neither is found:\n%s", out);
    free(out);
    rc = run(&out, CLEAN_ENV "CNNBENCH_BACKEND_PATH='/nonexistent:%s/backends'"
             " CNNBENCH_MODEL_PATH='%s/models' '%s/bin/cnnbench' --backend naive --model mynet"
             SHORT_RUN " --out '%s/x.json'", dir, dir, moved, dir);
    cr_expect_eq(rc, 0, "with them both are:\n%s", out);
    free(out);
}

static int have(const char *tool) {
    char *out = NULL;
    int rc = run(&out, "command -v %s", tool);
    free(out);
    return rc == 0;
}

Test(install, deb_package_depends_on_debian_libraries_and_trains, .timeout = 600) {
    if (!have("dpkg-deb") || !have("dpkg-shlibdeps") || !have("cpack")) {
        printf("[SKIP-ALL] dpkg-deb, dpkg-shlibdeps (dpkg-dev) or cpack is missing\n");
        cr_skip_test("no Debian packaging tools");
    }
    make_scratch();
    char *out = NULL, root[1024];
    int rc = run(&out, "cd '%s' && cpack -G DEB -B '%s/pkg' --config CPackConfig.cmake", BUILD_DIR,
                 dir);
    cr_assert_eq(rc, 0, "cpack failed:\n%s", out);
    free(out);
    rc = run(&out, "dpkg-deb -f '%s'/pkg/cnnbench_*.deb Depends", dir);
    cr_assert_eq(rc, 0, "%s", out);
    /* what the program and the CPU backends link, by Debian package name */
    static const char *const needed[] = {"libc6", "libcjson1", "libhwloc15", "libsqlite3-0",
                                         "zlib1g", "libopenblas0"};
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++)
        cr_expect_not_null(strstr(out, needed[i]), "Depends lacks %s: %s", needed[i], out);
    cr_expect_null(strstr(out, "cuda"), "a CUDA library is not a Debian dependency: %s", out);
    free(out);
    rc = run(&out, "dpkg-deb -c '%s'/pkg/cnnbench_*.deb", dir);
    cr_expect_not_null(strstr(out, "./usr/lib/cnnbench/libcnb_naive.so"), "%s", out);
    cr_expect_null(strstr(out, "libcnb_cuda"), "the CUDA backends stay out of the .deb: %s", out);
    free(out);

    snprintf(root, sizeof root, "%s/root", dir);
    rc = run(&out, "dpkg-deb -x '%s'/pkg/cnnbench_*.deb '%s'", dir, root);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    char usr[1100];
    snprintf(usr, sizeof usr, "%s/usr", root);
    expect_no_tree_paths(usr);
    train_from(usr, "blas", "simplecnn");
}
