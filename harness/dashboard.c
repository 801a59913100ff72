#include "commands.h"
int cnb_cmd_dashboard(int argc, char **argv) { (void)argc; (void)argv; return 1; }
