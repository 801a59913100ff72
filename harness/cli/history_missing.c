/* history_missing.c — the history and dashboard verbs in a build without SQLite or libcrypto. */
#include <stdio.h>

#include "commands.h"

static int not_built(const char *verb) {
    fprintf(stderr, "cnnbench %s: not built here: SQLite or libcrypto was missing when cnnbench "
            "was configured (install libsqlite3-dev libssl-dev and rebuild)\n", verb);
    return 1;
}

int cnb_cmd_history(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return not_built("history");
}

int cnb_cmd_dashboard(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return not_built("dashboard");
}
