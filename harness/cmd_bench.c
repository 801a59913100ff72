/* cmd_bench.c — placeholder while being written. */
#include <stdio.h>
#include "commands.h"
int cnb_cmd_bench(int argc, char **argv) { (void)argc; (void)argv; return 2; }
