/* cmd_compare.c — placeholder while being written. */
#include <stdio.h>
#include "commands.h"
int cnb_cmd_compare(int argc, char **argv) { (void)argc; (void)argv; return 2; }
