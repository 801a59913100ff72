/* results.c — builds the results JSON with cJSON and writes it atomically. */
#define _POSIX_C_SOURCE 200809L
#include "results.h"

#include "loader.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "flops.h"
#include "runctx.h"
#include "util.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_sorted(const double *x, int n) {
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

void cnb_summarize(const double *x, int n, cnb_summary *s) {
    memset(s, 0, sizeof *s);
    if (n < 1) return;
    double *v = malloc((size_t)n * sizeof *v);
    if (!v) return;
    memcpy(v, x, (size_t)n * sizeof *v);
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    s->n = n;
    s->min = v[0];
    s->max = v[n - 1];
    s->median = median_sorted(v, n);
    for (int i = 0; i < n; i++) v[i] = v[i] > s->median ? v[i] - s->median : s->median - v[i];
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    s->mad = median_sorted(v, n);
    free(v);
}

double cnb_quantile(const double *x, int n, double q) {
    if (n < 1) return 0.0;
    double *v = malloc((size_t)n * sizeof *v);
    if (!v) return 0.0;
    memcpy(v, x, (size_t)n * sizeof *v);
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    q = q < 0 ? 0 : q > 1 ? 1 : q;
    double pos = q * (n - 1);
    int lo = (int)pos;
    double r = lo + 1 < n ? v[lo] + (pos - lo) * (v[lo + 1] - v[lo]) : v[lo];
    free(v);
    return r;
}

void cnb_info_collect(void *user, const char *key, const char *value) {
    cnb_info_list *l = user;
    if (l->count >= CNB_MAX_INFO) return;
    snprintf(l->key[l->count], sizeof l->key[0], "%s", key ? key : "");
    snprintf(l->value[l->count], sizeof l->value[0], "%s", value ? value : "");
    l->count++;
}

const char *cnb_info_get(const cnb_info_list *l, const char *key) {
    for (int i = 0; l && i < l->count; i++)
        if (strcmp(l->key[i], key) == 0) return l->value[i];
    return NULL;
}

void cnb_info_refresh(cnb_info_list *l, const cnb_backend *api, cnb_context *ctx) {
    if (!api || !ctx) return;
    l->count = 0;
    cnb_backend_info(api, ctx, cnb_info_collect, l);
}

cJSON *cnb_summary_json(const double *x, int n) {
    cnb_summary s;
    cnb_summarize(x, n, &s);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "min", s.min);
    cJSON_AddNumberToObject(o, "median", s.median);
    cJSON_AddNumberToObject(o, "max", s.max);
    cJSON_AddNumberToObject(o, "mad", s.mad);
    cJSON_AddNumberToObject(o, "samples", s.n);
    cJSON *arr = cJSON_AddArrayToObject(o, "values");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(x[i]));
    return o;
}

/* The same without the values (per-step logs are thousands long); null when there are none. */
static cJSON *summary_only_json(const double *x, int n) {
    if (n < 1) return cJSON_CreateNull();
    cJSON *o = cnb_summary_json(x, n);
    cJSON_DeleteItemFromObjectCaseSensitive(o, "values");
    return o;
}

static cJSON *model_json(const cnb_model *m, const cnb_run_settings *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON_AddStringToObject(o, "path", m->path);
    cJSON_AddNumberToObject(o, "parameters", (double)m->n_params);
    cnb_model_flops w;
    cnb_model_flops_count(m, &w);
    cJSON_AddNumberToObject(o, "train_flop_per_image", w.training);
    cJSON_AddNumberToObject(o, "infer_flop_per_image", w.inference);
    cJSON *in = cJSON_AddArrayToObject(o, "input_shape");
    cJSON_AddItemToArray(in, cJSON_CreateNumber(m->in_c));
    cJSON_AddItemToArray(in, cJSON_CreateNumber(m->in_h));
    cJSON_AddItemToArray(in, cJSON_CreateNumber(m->in_w));
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    for (int i = 0; i < m->n_layers; i++) {
        const cnb_layer *l = &m->layers[i];
        cJSON *lj = cJSON_CreateObject();
        cJSON_AddStringToObject(lj, "name", l->name);
        cJSON_AddStringToObject(lj, "type", cnb_layer_type_name(l->type));
        cJSON *os = cJSON_AddArrayToObject(lj, "output_shape");
        cJSON_AddItemToArray(os, cJSON_CreateNumber(l->out_c));
        cJSON_AddItemToArray(os, cJSON_CreateNumber(l->out_h));
        cJSON_AddItemToArray(os, cJSON_CreateNumber(l->out_w));
        cJSON_AddNumberToObject(lj, "parameters", (double)(l->weight_count + l->bias_count));
        cJSON_AddItemToArray(layers, lj);
    }
    cJSON *t = cJSON_AddObjectToObject(o, "settings");
    cJSON_AddNumberToObject(t, "epochs", s->epochs);
    cJSON_AddNumberToObject(t, "batch", s->batch);
    cJSON_AddNumberToObject(t, "eval_batch", s->eval_batch);
    cJSON_AddStringToObject(t, "optimizer", s->optimizer);
    cJSON_AddNumberToObject(t, "lr", s->lr);
    cJSON_AddBoolToObject(t, "fusion", !s->no_fusion);
    cJSON_AddBoolToObject(t, "direct_conv", s->direct_conv);
    if (strcmp(s->optimizer, "adam") == 0) {
        cJSON_AddNumberToObject(t, "beta1", s->beta1);
        cJSON_AddNumberToObject(t, "beta2", s->beta2);
        cJSON_AddNumberToObject(t, "eps", s->eps);
    } else {
        cJSON_AddNumberToObject(t, "momentum", s->momentum);
    }
    cJSON_AddNumberToObject(t, "weight_decay", s->weight_decay);
    if (m->normalize) {
        cJSON *nrm = cJSON_AddObjectToObject(t, "normalize");
        cJSON_AddNumberToObject(nrm, "mean", m->norm_mean);
        cJSON_AddNumberToObject(nrm, "std", m->norm_std);
    } else {
        cJSON_AddNullToObject(t, "normalize");
    }
    cJSON_AddNumberToObject(t, "max_steps", (double)s->max_steps);
    return o;
}

static cJSON *dataset_json(const char *kind, const cnb_dataset *train, const cnb_dataset *test) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", kind);
    const cnb_dataset *sets[2] = {train, test};
    const char *names[2] = {"train", "test"};
    for (int i = 0; i < 2; i++) {
        cJSON *d = cJSON_AddObjectToObject(o, names[i]);
        cJSON_AddStringToObject(d, "images", sets[i]->images_path);
        cJSON_AddStringToObject(d, "labels", sets[i]->labels_path);
        cJSON_AddNumberToObject(d, "count", sets[i]->count);
    }
    cJSON_AddNumberToObject(o, "rows", train->rows);
    cJSON_AddNumberToObject(o, "cols", train->cols);
    return o;
}

static const char *status_name(cnb_run_status s) {
    switch (s) {
    case CNB_RUN_OK: return "completed";
    case CNB_RUN_DIVERGED: return "diverged";
    case CNB_RUN_INTERRUPTED: return "interrupted";
    case CNB_RUN_BACKEND_ERROR: return "backend_error";
    case CNB_RUN_CHECKPOINT_ERROR: return "checkpoint_error";
    }
    return "unknown";
}

cJSON *cnb_results_json(const cnb_run_record *rec) {
    const cnb_run_result *r = rec->result;
    /* argv[0] is the program's path: the context block names the tool itself */
    cJSON *root = cnb_context_json("train", rec->argc > 0 ? rec->argc - 1 : 0, rec->argv + 1,
                                   rec->settings->seed, rec->threads, rec->machine);
    cJSON_AddStringToObject(root, "status", status_name(r->status));
    cJSON_AddStringToObject(root, "message", r->message);
    cJSON_AddItemToObject(root, "model", model_json(rec->model, rec->settings));

    cJSON *b = cJSON_AddObjectToObject(root, "backend");
    cJSON_AddStringToObject(b, "name", rec->backend_name);
    cJSON_AddStringToObject(b, "path", rec->backend_path);
    cJSON_AddNumberToObject(b, "threads", rec->threads);
    cJSON *info = cJSON_AddObjectToObject(b, "info");
    for (int i = 0; rec->backend_info && i < rec->backend_info->count; i++)
        cJSON_AddStringToObject(info, rec->backend_info->key[i], rec->backend_info->value[i]);

    cJSON_AddItemToObject(root, "dataset", dataset_json(rec->dataset_kind, rec->train, rec->test));

    cJSON *epochs = cJSON_AddArrayToObject(root, "epochs");
    double train_ips[CNB_MAX_EPOCHS], infer_ips[CNB_MAX_EPOCHS];
    int n_train = 0, n_infer = 0;
    for (int i = 0; i < r->epochs_done; i++) {
        const cnb_epoch_metrics *e = &r->epoch[i];
        cJSON *ej = cJSON_CreateObject();
        cJSON_AddNumberToObject(ej, "epoch", e->epoch);
        cJSON_AddNumberToObject(ej, "steps", (double)e->steps);
        cJSON_AddNumberToObject(ej, "train_images", (double)e->train_images);
        cJSON_AddNumberToObject(ej, "train_loss", e->train_loss);
        cJSON_AddNumberToObject(ej, "train_accuracy", e->train_accuracy);
        cJSON_AddNumberToObject(ej, "test_loss", e->test_loss);
        cJSON_AddNumberToObject(ej, "test_accuracy", e->test_accuracy);
        cJSON_AddNumberToObject(ej, "train_seconds", e->train_seconds);
        cJSON_AddNumberToObject(ej, "eval_seconds", e->eval_seconds);
        cJSON_AddNumberToObject(ej, "train_images_per_s", e->train_images_per_s);
        cJSON_AddNumberToObject(ej, "infer_images_per_s", e->infer_images_per_s);
        cJSON_AddItemToArray(epochs, ej);
        if (e->train_images_per_s > 0) train_ips[n_train++] = e->train_images_per_s;
        if (e->infer_images_per_s > 0) infer_ips[n_infer++] = e->infer_images_per_s;
    }
    cJSON *fin = cJSON_AddObjectToObject(root, "final");
    cJSON_AddNumberToObject(fin, "epochs_done", r->epochs_done);
    cJSON_AddNumberToObject(fin, "steps", (double)r->total_steps);
    if (r->have_confusion) {
        cJSON_AddNumberToObject(fin, "test_accuracy", r->final_test_accuracy);
        cJSON_AddNumberToObject(fin, "test_loss", r->final_test_loss);
    } else {
        cJSON_AddNullToObject(fin, "test_accuracy");
        cJSON_AddNullToObject(fin, "test_loss");
    }
    if (r->epochs_done > 0) {
        cJSON_AddNumberToObject(fin, "train_loss", r->epoch[r->epochs_done - 1].train_loss);
        cJSON_AddNumberToObject(fin, "train_accuracy",
                                r->epoch[r->epochs_done - 1].train_accuracy);
    }
    cJSON *tp = cJSON_AddObjectToObject(root, "throughput");
    cJSON_AddItemToObject(tp, "train_images_per_s", cnb_summary_json(train_ips, n_train));
    cJSON_AddItemToObject(tp, "infer_images_per_s", cnb_summary_json(infer_ips, n_infer));
    cJSON_AddStringToObject(tp, "note",
                            "per-epoch samples; training excludes evaluation, data in memory");
    cJSON_AddItemToObject(tp, "train_step_images_per_s",
                          summary_only_json(r->step_images_per_s, (int)r->total_steps));
    cJSON_AddItemToObject(tp, "infer_batch_images_per_s",
                          summary_only_json(r->eval_images_per_s, (int)r->eval_batches));

    if (r->have_confusion) {
        cJSON *cm = cJSON_AddArrayToObject(root, "confusion_matrix");
        for (int i = 0; i < r->classes; i++) {
            cJSON *row = cJSON_CreateArray();
            for (int j = 0; j < r->classes; j++)
                cJSON_AddItemToArray(row, cJSON_CreateNumber((double)r->confusion[i][j]));
            cJSON_AddItemToArray(cm, row);
        }
    }
    cJSON *losses = cJSON_AddArrayToObject(root, "step_losses");
    for (long i = 0; i < r->total_steps; i++)
        cJSON_AddItemToArray(losses, cJSON_CreateNumber(r->step_losses[i]));
    cJSON_AddNumberToObject(root, "wall_time_s", r->wall_seconds);
    if (rec->distributed)
        cJSON_AddItemToObject(root, "distributed", cJSON_Duplicate(rec->distributed, 1));
    return root;
}

static char *record_to_text(const cnb_run_record *rec) {
    cJSON *root = cnb_results_json(rec);
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    return text;
}

int cnb_results_write(const char *path, const cnb_run_record *rec, char *err, size_t err_len) {
    char *text = record_to_text(rec);
    if (!text) return cnb_errf(err, err_len, "%s: out of memory building the results JSON", path);
    int rc = cnb_write_file_atomic(path, text, err, err_len);
    free(text);
    return rc;
}
