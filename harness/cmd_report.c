/* cmd_report.c — placeholder while being written. */
#include <stdio.h>
#include "commands.h"
int cnb_cmd_report(int argc, char **argv) { (void)argc; (void)argv; return 2; }
