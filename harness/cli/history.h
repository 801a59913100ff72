/* history.h — the results history: every results file cnnbench writes (training, bench, check,
 * compare, and kinds yet to come) kept whole in an SQLite database, with the figures that make
 * series pulled out into rows keyed by commit, machine, backend, model, batch and time.
 *
 * runs:          one row per file: sha256 of its bytes (unique: the same file twice is a no-op),
 *                kind, git_commit, machine, created, source path, added, status, the whole JSON.
 * measurements:  (run_id, model, backend, batch, metric, baseline, value, mad), one row per
 *                figure: train_images_per_s, infer_images_per_s, test_accuracy, test_loss,
 *                speedup_vs_naive_{train,infer}, vs_best_cpu_{train,infer} (baseline: that CPU
 *                backend), checks_{passed,failed,skipped,mistrusted}, compare's regressions...
 * Each file goes in its own transaction: a refused file leaves what is stored untouched. */
#ifndef CNB_HISTORY_H
#define CNB_HISTORY_H

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stddef.h>

#define CNB_HISTORY_DEFAULT_NAME "cnnbench-history.sqlite"

/* Open (creating when absent) and set up the schema. NULL with err naming the file. */
sqlite3 *cnb_history_open(const char *path, char *err, size_t err_len);

/* Add one results file. commit overrides the file's git_commit when not NULL. Returns 1 when
 * added (*run_id set), 0 when the same bytes are already stored (*run_id: that run), -1 when
 * refused or on a database error (err names the file and the reason; nothing was written). */
int cnb_history_add_file(sqlite3 *db, const char *path, const char *commit, long long *run_id,
                         char *err, size_t err_len);

/* The kind of a parsed results file: its "kind", or "train" for a training file (which has
 * none). NULL when root is not a cnnbench results file; why says what is missing. */
const char *cnb_history_kind(const cJSON *root, const char **why);

#endif
