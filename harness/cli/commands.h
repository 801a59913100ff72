/* commands.h — the cnnbench verbs besides training. Each takes the arguments after its verb
 * (argv[0] is the verb) and returns the process exit code. */
#ifndef CNB_COMMANDS_H
#define CNB_COMMANDS_H

int cnb_cmd_check(int argc, char **argv);   /* cross-check kernels and training vs. naive */
int cnb_cmd_bench(int argc, char **argv);   /* timing matrix backends x models */
int cnb_cmd_bench_distributed(int argc, char **argv); /* bench under mpirun: scaling, all-reduce */
int cnb_cmd_ceiling(int argc, char **argv); /* fp32 GEMM ceiling of each backend */
int cnb_cmd_compare(int argc, char **argv); /* regression gate between two results files */
int cnb_cmd_report(int argc, char **argv);  /* PNG charts + page from results JSON */
int cnb_cmd_history(int argc, char **argv);    /* results history database (history.h) */
int cnb_cmd_dashboard(int argc, char **argv);  /* static site of the history over commits */

#endif
