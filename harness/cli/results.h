/* results.h — the results JSON every run writes (schema versioned, written atomically), and the
 * summary statistics used for every timing figure. */
#ifndef CNB_RESULTS_H
#define CNB_RESULTS_H

#include <stddef.h>

#include "data.h"
#include "machine.h"
#include "model.h"
#include "train.h"

/* 2: every file starts from the one context block (runctx.c) and has a kind; training files
 * gained kind, threads and pinning, and command_line / build_type take the context's form.
 * Readers accept version 1 files (a training file there has no kind but has "epochs"). */
#define CNB_RESULTS_SCHEMA_VERSION 2

/* min / median / max and the median absolute deviation of n samples (n >= 1). */
typedef struct cnb_summary {
    int n;
    double min, median, max, mad;
} cnb_summary;
void cnb_summarize(const double *x, int n, cnb_summary *s);
/* {"min", "median", "max", "mad", "samples", "values"} of n samples, the block every timing
 * figure in a results file is written as. */
struct cJSON *cnb_summary_json(const double *x, int n);
/* The q-quantile (0 <= q <= 1) of n samples, interpolated linearly between order statistics
 * (numpy's default); 0 when n < 1 or memory runs out. */
double cnb_quantile(const double *x, int n, double q);

#define CNB_MAX_INFO 64
typedef struct cnb_info_list {
    int count;
    char key[CNB_MAX_INFO][64];
    char value[CNB_MAX_INFO][512];
} cnb_info_list;
/* cnb_info_fn-compatible collector (user = cnb_info_list *). */
void cnb_info_collect(void *user, const char *key, const char *value);
const char *cnb_info_get(const cnb_info_list *l, const char *key);
/* l = the backend's info() now: after a run it also names what the backend chose on first use
 * of each shape (cuDNN's and oneDNN's convolution algorithms). */
struct cnb_backend;
struct cnb_context;
void cnb_info_refresh(cnb_info_list *l, const struct cnb_backend *api, struct cnb_context *ctx);

/* Everything one training run reports. */
typedef struct cnb_run_record {
    int argc;
    char **argv;
    const cnb_model *model;
    const cnb_run_settings *settings;
    const char *backend_name, *backend_path;
    const cnb_info_list *backend_info;
    const cnb_machine *machine;
    const char *dataset_kind;
    const cnb_dataset *train, *test;
    const cnb_run_result *result;
    const char *build_type;
    int threads;
    const struct cJSON *distributed; /* data-parallel facts (dist_report.h); NULL: one process */
} cnb_run_record;

/* The record as a JSON object in the single-run schema (kind "train"); NULL when out of memory. */
struct cJSON;
struct cJSON *cnb_results_json(const cnb_run_record *rec);

/* Write the record as JSON to path atomically: a temporary file in the same directory, flushed
 * and fsync'd, then renamed over path. 0 or -1 (err names the file and the failure). */
int cnb_results_write(const char *path, const cnb_run_record *rec, char *err, size_t err_len);

#include "atomic_file.h" /* cnb_write_file_atomic, cnb_write_bytes_atomic */

#endif
