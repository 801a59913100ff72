/* dist_report.h — what a data-parallel training run reports beside the usual results: the ranks,
 * the communicator, each rank's images/s, the gradient all-reduce's time per step and share of
 * the step, whether the ranks ended with the same parameters, and the scaling efficiency against
 * a 1-rank results file. */
#ifndef CNB_DIST_REPORT_H
#define CNB_DIST_REPORT_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "distributed.h"
#include "model.h"
#include "train.h"

/* Threads per rank when --threads is not given: the node's cores shared among the ranks on it
 * (each rank would otherwise start a thread for every core, and N pools on the same cores fight,
 * DESIGN.md §5). */
int cnb_dist_default_threads(const cnb_dist *d, int cores);

/* Collective: every rank calls it after the run; all get the same object (caller frees).
 * device_library: the device communicator's library when the gradients were summed on the
 * device (s->device_allreduce), else NULL. baseline: a 1-rank results file of the same run, or NULL. NULL with err set on failure. */
cJSON *cnb_dist_run_json(cnb_dist *d, cnb_trainer *t, const cnb_model *m,
                         const cnb_run_settings *s, const cnb_run_result *r, int threads,
                         const char *device_library, const char *baseline, char *err,
                         size_t err_len);
/* A few lines for the log: ranks, communicator, images/s per rank, all-reduce share, scaling. */
void cnb_dist_print(FILE *f, const cJSON *j);

#endif
