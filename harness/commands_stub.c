/* commands_stub.c — placeholder verbs until check / bench / compare / report land. */
#include <stdio.h>

#include "commands.h"

static int not_yet(const char *verb) {
    fprintf(stderr, "cnnbench %s: not available in this build yet\n", verb);
    return 2;
}
int cnb_cmd_check(int argc, char **argv) { (void)argc; (void)argv; return not_yet("check"); }
int cnb_cmd_bench(int argc, char **argv) { (void)argc; (void)argv; return not_yet("bench"); }
int cnb_cmd_compare(int argc, char **argv) { (void)argc; (void)argv; return not_yet("compare"); }
int cnb_cmd_report(int argc, char **argv) { (void)argc; (void)argv; return not_yet("report"); }
