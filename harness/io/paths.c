/* paths.c — backends and models found relative to the running program (see paths.h). */
#define _GNU_SOURCE
#include "paths.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The directory holding the running executable, or "" when /proc is unavailable. */
static void exe_dir(char *buf, size_t len) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    buf[0] = '\0';
    if (n <= 0) return;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return;
    *slash = '\0';
    snprintf(buf, len, "%s", exe[0] ? exe : "/");
}

/* Reads "key=value" from a build-tree marker in dir; 0 when found. */
static int marker_value(const char *dir, const char *key, char *out, size_t len) {
    char path[PATH_MAX], line[PATH_MAX + 64];
    if (snprintf(path, sizeof path, "%s/%s", dir, CNB_BUILD_TREE_MARKER) >= (int)sizeof path)
        return -1;
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int rc = -1;
    size_t klen = strlen(key);
    while (rc != 0 && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
            snprintf(out, len, "%s", line + klen + 1);
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}

const char *cnb_default_dir(cnb_dir_kind kind, char *buf, size_t len) {
    char dir[PATH_MAX], parent[PATH_MAX + 4];
    const char *key = kind == CNB_DIR_BACKENDS ? "backends" : "models";
    exe_dir(dir, sizeof dir);
    if (!dir[0]) {
        snprintf(buf, len, "%s", kind == CNB_DIR_BACKENDS ? "." : "models");
        return buf;
    }
    snprintf(parent, sizeof parent, "%s/..", dir);
    /* a build tree: the program sits in build/harness, the tests in build/tests */
    if (marker_value(dir, key, buf, len) == 0 || marker_value(parent, key, buf, len) == 0)
        return buf;
    char rel[PATH_MAX + 32], real[PATH_MAX];
    snprintf(rel, sizeof rel, "%s/../%s", dir,
             kind == CNB_DIR_BACKENDS ? "lib/cnnbench" : "share/cnnbench/models");
    snprintf(buf, len, "%s", realpath(rel, real) ? real : rel); /* "<prefix>/lib/..", not "bin/.." */
    return buf;
}

int cnb_search_dirs(const char *path_var, const char *primary, char **dirs, int max) {
    int n = 0;
    const char *env = getenv(path_var);
    if (env && *env) {
        char *copy = strdup(env), *save = NULL;
        for (char *t = copy ? strtok_r(copy, ":", &save) : NULL; t && n < max - 1;
             t = strtok_r(NULL, ":", &save))
            if (*t && (dirs[n] = strdup(t))) n++;
        free(copy);
    }
    if (n < max && (dirs[n] = strdup(primary))) n++;
    return n;
}

void cnb_free_search_dirs(char **dirs, int n) {
    for (int i = 0; i < n; i++) free(dirs[i]);
}
