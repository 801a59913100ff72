/* test_loader.c — the loader refuses every broken backend with a message naming the file and
 * the problem, and accepts a well-formed one. */
#define _POSIX_C_SOURCE 200809L /* symlink, chmod in the appended tests */
#include <criterion/criterion.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "loader.h"
#include "util.h"

static void fixture(char *path, size_t len, const char *which) {
    snprintf(path, len, "%s/libfixture_%s.so", CNB_FIXTURE_DIR, which);
}

/* Loading `which` must fail with a message containing the file path and `phrase`. */
static void expect_refusal(const char *which, const char *phrase) {
    char path[4096], err[CNB_ERR_LEN] = "";
    fixture(path, sizeof path, which);
    cnb_loaded_backend b;
    int rc = cnb_load_backend(path, &b, err, sizeof err);
    cr_assert_eq(rc, -1, "%s was accepted", path);
    cr_assert_null(b.handle, "handle left open after a refusal");
    cr_expect(strstr(err, path) != NULL, "message does not name the file: %s", err);
    cr_expect(strstr(err, phrase) != NULL, "message lacks '%s': %s", phrase, err);
}

Test(loader, refuses_missing_file) {
    char err[CNB_ERR_LEN];
    cnb_loaded_backend b;
    cr_assert_eq(cnb_load_backend("/nonexistent/libcnb_x.so", &b, err, sizeof err), -1);
    cr_expect(strstr(err, "/nonexistent/libcnb_x.so") && strstr(err, "No such file"), "%s", err);
}

Test(loader, refuses_unknown_name_listing_choices) {
    char err[CNB_ERR_LEN];
    cnb_loaded_backend b;
    cr_assert_eq(cnb_load_backend("fastest", &b, err, sizeof err), -1);
    cr_expect(strstr(err, "'fastest'") && strstr(err, "naive, blas, onednn, cuda, cudnn"), "%s",
              err);
}

Test(loader, refuses_a_file_that_is_not_a_shared_object) {
    char path[4096], err[CNB_ERR_LEN];
    snprintf(path, sizeof path, "%s/not_a_library.so", CNB_TEST_TMP_DIR);
    mkdir(CNB_TEST_TMP_DIR, 0755);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("this is text, not ELF\n", f);
    fclose(f);
    cnb_loaded_backend b;
    cr_assert_eq(cnb_load_backend(path, &b, err, sizeof err), -1);
    cr_expect(strstr(err, path) && strstr(err, "cannot load backend"), "%s", err);
}

Test(loader, refuses_a_directory) {
    char err[CNB_ERR_LEN];
    cnb_loaded_backend b;
    cr_assert_eq(cnb_load_backend(CNB_TEST_TMP_DIR "/", &b, err, sizeof err), -1);
    cr_expect(strstr(err, "not a regular file"), "%s", err);
}

Test(loader, refuses_missing_entry_point) { expect_refusal("no_entry", "cnb_backend_entry"); }

Test(loader, refuses_other_abi_version_naming_both) {
    char phrase[128];
    snprintf(phrase, sizeof phrase, "ABI version %u is not supported", CNB_ABI_VERSION + 41);
    expect_refusal("wrong_version", phrase);
    char path[4096], err[CNB_ERR_LEN];
    fixture(path, sizeof path, "wrong_version");
    cnb_loaded_backend b;
    cnb_load_backend(path, &b, err, sizeof err);
    snprintf(phrase, sizeof phrase, "expects version %u", CNB_ABI_VERSION);
    cr_expect(strstr(err, phrase), "expected version not named: %s", err);
}

Test(loader, refuses_empty_required_slot_by_name) {
    expect_refusal("empty_slot", "conv_backward_filter");
}

Test(loader, refuses_short_table) { expect_refusal("short_table", "table is 16 bytes"); }

Test(loader, refuses_null_table) { expect_refusal("null_table", "returned no table"); }

Test(loader, reports_a_backend_that_cannot_run_here) {
    char path[4096], err[CNB_ERR_LEN];
    fixture(path, sizeof path, "no_device");
    cnb_loaded_backend b;
    cnb_context *ctx;
    cr_assert_eq(cnb_load_backend(path, &b, err, sizeof err), 0, "%s", err);
    cnb_unload_backend(&b);
    cr_assert_eq(cnb_open_backend(path, NULL, &b, &ctx, err, sizeof err), -1);
    cr_expect(strstr(err, "cannot run here") && strstr(err, "no CUDA driver") &&
                  strstr(err, "no device"),
              "%s", err);
    cr_expect_null(ctx);
    cr_expect_null(b.handle);
}

Test(loader, accepts_well_formed_table) {
    char path[4096], err[CNB_ERR_LEN];
    fixture(path, sizeof path, "ok");
    cnb_loaded_backend b;
    cnb_context *ctx;
    cr_assert_eq(cnb_open_backend(path, NULL, &b, &ctx, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(b.api->name, "fixture");
    cr_expect_eq(b.api->abi_version, CNB_ABI_VERSION);
    cnb_close_backend(&b, ctx);
}

/* The optional slot groups: all filled or all empty. A half-filled one is refused naming the
 * group, its first empty slot and the rule; a full one is reported, an empty one is not. A table
 * whose declared size ends before a group (ends_before, declared_size) is loaded without it,
 * though the fixture plants a slot past that end (planted_slot). */
static const struct {
    const char *group, *partial_fixture, *empty_slot, *rule;
    int (*has)(const cnb_backend *t);
    struct {
        const char *which;
        int has;
    } accepted[4];
    const char *ends_before;
    uint32_t declared_size;
    size_t planted_slot;
} groups[] = {
    {"timer", "partial_timers", "'timer_destroy' is empty", "all four or none",
     cnb_backend_has_timers, {{"timers", 1}, {"ok", 0}}, "pre_timer_table", CNB_BACKEND_V1_SIZE,
     offsetof(cnb_backend, timer_create)},
    {"collective", "partial_collectives", "'collective_destroy' is empty", "all four or none",
     cnb_backend_has_collectives,
     {{"collectives", 1}, {"ok", 0}, {"timers", 0}, {"pre_collective_table", 0}}, NULL, 0, 0},
    {"fusion", "partial_fusion", "'pool_act_backward' is empty", "both or none",
     cnb_backend_has_fusion, {{"fusion", 1}, {"ok", 0}, {"timers", 0}}, "pre_fusion_table",
     CNB_BACKEND_TIMERS_SIZE, offsetof(cnb_backend, conv_bias_act_forward)},
};

Test(loader, refuses_a_partial_group_naming_the_group_and_the_empty_slot) {
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        char group[64];
        snprintf(group, sizeof group, "optional %s slots", groups[g].group);
        expect_refusal(groups[g].partial_fixture, groups[g].empty_slot);
        expect_refusal(groups[g].partial_fixture, group);
        expect_refusal(groups[g].partial_fixture, groups[g].rule);
    }
}

Test(loader, accepts_a_full_group_none_and_a_table_that_ends_before_it) {
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
        for (int i = 0; i < 4 && groups[g].accepted[i].which; i++) {
            char path[4096], err[CNB_ERR_LEN];
            fixture(path, sizeof path, groups[g].accepted[i].which);
            cnb_loaded_backend b;
            cr_assert_eq(cnb_load_backend(path, &b, err, sizeof err), 0, "%s: %s", path, err);
            cr_expect_eq(groups[g].has(b.api), groups[g].accepted[i].has, "%s group of %s",
                         groups[g].group, groups[g].accepted[i].which);
            cnb_unload_backend(&b);
        }
}

/* The timer group's table ends at adam_step, the fusion group's after the timers: whatever lies
 * past the declared size (here a half-filled group) is not the backend's to answer for. */
Test(loader, accepts_a_table_that_ends_before_a_group) {
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        if (!groups[g].ends_before) continue;
        char path[4096], err[CNB_ERR_LEN];
        fixture(path, sizeof path, groups[g].ends_before);
        cnb_loaded_backend b;
        cr_assert_eq(cnb_load_backend(path, &b, err, sizeof err), 0, "%s", err);
        cr_expect_eq(b.api->struct_size, groups[g].declared_size, "%s", groups[g].ends_before);
        void *planted;
        memcpy(&planted, (const char *)b.api + groups[g].planted_slot, sizeof planted);
        cr_expect_not_null(planted, "%s: the fixture plants a slot past the end",
                           groups[g].ends_before);
        cr_expect_eq(groups[g].has(b.api), 0, "%s", groups[g].ends_before);
        cnb_unload_backend(&b);
    }
}

Test(loader, loads_built_backends_by_name) {
    const char *names[] = {"naive", "blas"};
    for (int i = 0; i < 2; i++) {
        cnb_loaded_backend b;
        cnb_context *ctx;
        char err[CNB_ERR_LEN];
        cr_assert_eq(cnb_open_backend(names[i], NULL, &b, &ctx, err, sizeof err), 0, "%s", err);
        cr_expect_str_eq(b.api->name, names[i]);
        cr_expect_eq(cnb_backend_has_timers(b.api), 0, "%s: calls finish on return", names[i]);
        cnb_close_backend(&b, ctx);
    }
}

/* ---- appended by the robustness work: refusing libraries others could have replaced ---- */

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

/* A copy of the naive backend at dir/libcnb_copy.so with the given modes. */
static void planted_copy(char *path, size_t len, const char *dir_name, mode_t dir_mode,
                         mode_t file_mode) {
    char dir[2048], cmd[16384], *out;
    snprintf(dir, sizeof dir, "%s/%s", CNB_TEST_TMP_DIR, dir_name);
    snprintf(path, len, "%s/libcnb_copy.so", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/libcnb_naive.so' '%s'", dir,
             cnb_backend_dir(), path);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s: %s", cmd, out);
    free(out);
    cr_assert_eq(chmod(path, file_mode), 0);
    cr_assert_eq(chmod(dir, dir_mode), 0);
}

/* A copy planted with these modes is refused, naming the file and the mode anyone can write. */
static void expect_writable_copy_refused(const char *dir_name, mode_t dir_mode, mode_t file_mode,
                                         const char *mode_text) {
    char path[4096], err[CNB_ERR_LEN];
    planted_copy(path, sizeof path, dir_name, dir_mode, file_mode);
    cnb_loaded_backend b;
    cr_expect_eq(cnb_load_backend(path, &b, err, sizeof err), -1, "loaded %s", path);
    cr_expect(strstr(err, path) && strstr(err, "any user can write") && strstr(err, mode_text),
              "%s", err);
    cr_expect_null(b.handle);
}

Test(loader, refuses_a_backend_in_a_world_writable_directory) {
    expect_writable_copy_refused("loader_ww", 0777, 0755, "0777");
}

Test(loader, accepts_a_sticky_world_writable_directory) {
    char path[4096], err[CNB_ERR_LEN];
    planted_copy(path, sizeof path, "loader_sticky", 01777, 0755);
    cnb_loaded_backend b;
    cr_assert_eq(cnb_load_backend(path, &b, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(b.api->name, "naive");
    cnb_unload_backend(&b);
}

Test(loader, refuses_a_world_writable_library) {
    expect_writable_copy_refused("loader_wfile", 0755, 0666, "0666");
}

Test(loader, refuses_a_library_reached_through_a_symlink_into_an_unsafe_directory) {
    char path[4096], link[4096], err[CNB_ERR_LEN];
    planted_copy(path, sizeof path, "loader_ww2", 0777, 0755);
    snprintf(link, sizeof link, "%s/loader_link.so", CNB_TEST_TMP_DIR);
    unlink(link);
    cr_assert_eq(symlink(path, link), 0);
    cnb_loaded_backend b;
    cr_expect_eq(cnb_load_backend(link, &b, err, sizeof err), -1, "loaded %s", link);
    cr_expect(strstr(err, "any user can write"), "%s", err);
}

/* The device kind comes from the table (not the name); a table that ends before the field is
 * UNKNOWN, and a backend that cannot run here still says what it would have driven. */
Test(loader, device_kind_from_the_table) {
    cnb_loaded_backend b;
    char err[CNB_ERR_LEN];
    cr_assert_eq(cnb_load_backend("naive", &b, err, sizeof err), 0, "%s", err);
    cr_expect_eq(cnb_backend_device_kind(b.api), CNB_DEVICE_CPU);
    cr_expect_eq(b.device_kind, CNB_DEVICE_CPU);
    cnb_unload_backend(&b);
    cr_assert_eq(cnb_load_backend(CNB_FIXTURE_DIR "/libfixture_pre_timer_table.so", &b, err,
                                  sizeof err), 0, "%s", err);
    cr_expect_eq(cnb_backend_device_kind(b.api), CNB_DEVICE_UNKNOWN,
                 "a table shorter than the field must not be read past its end");
    cnb_unload_backend(&b);
    cnb_context *ctx;
    if (cnb_open_backend("cuda", NULL, &b, &ctx, err, sizeof err) == 0) {
        cr_expect_eq(b.device_kind, CNB_DEVICE_GPU);
        cnb_close_backend(&b, ctx);
    } else if (strstr(err, "not built") == NULL) {
        cr_expect_eq(b.device_kind, CNB_DEVICE_GPU, "cuda failed to start (%s) but lost its kind",
                     err);
    }
}
