/* dist_report.c — the "distributed" object of a data-parallel run's results and its log lines. */
#define _POSIX_C_SOURCE 200809L
#include "dist_report.h"

#include <stdlib.h>
#include <string.h>

#include "runctx.h"
#include "util.h"

int cnb_dist_default_threads(const cnb_dist *d, int cores) {
    int per_rank = (cores > 0 ? cores : 1) / cnb_dist_local_size(d);
    return per_rank > 0 ? per_rank : 1;
}

static cJSON *per_rank_array(cnb_dist *d, double v, double *mean) {
    int n = cnb_dist_size(d);
    double *all = calloc((size_t)n, sizeof *all);
    cJSON *a = cJSON_CreateArray();
    *mean = 0.0;
    if (!all) return a;
    cnb_dist_gather(d, v, all);
    for (int i = 0; i < n; i++) {
        cJSON_AddItemToArray(a, cJSON_CreateNumber(all[i]));
        *mean += all[i] / n;
    }
    free(all);
    return a;
}

/* This rank's figure v: every rank's value under per_rank_key, their mean under mean_key. */
static void add_rank_figure(cJSON *j, cnb_dist *d, double v, const char *per_rank_key,
                            const char *mean_key) {
    double mean;
    cJSON_AddItemToObject(j, per_rank_key, per_rank_array(d, v, &mean));
    cJSON_AddNumberToObject(j, mean_key, mean);
}

static double median_train_ips(const cnb_run_result *r) {
    double ips[CNB_MAX_EPOCHS];
    int n = 0;
    for (int i = 0; i < r->epochs_done; i++)
        if (r->epoch[i].train_images_per_s > 0) ips[n++] = r->epoch[i].train_images_per_s;
    return n ? cnb_quantile(ips, n, 0.5) : 0.0;
}

/* Speed-up and efficiency against a 1-rank results file: aggregate images/s over ranks × the
 * 1-rank images/s (medians over epochs, as the throughput block reports them). */
static int add_scaling(cJSON *j, const char *baseline, const cnb_model *m, int ranks,
                       double ips, char *err, size_t err_len) {
    cJSON *b = cnb_read_json(baseline, err, err_len);
    if (!b) return -1;
    const cJSON *dist = cJSON_GetObjectItemCaseSensitive(b, "distributed");
    int base_ranks = dist ? cnb_json_int(dist, "ranks", 1) : 1;
    const cJSON *tp = cJSON_GetObjectItemCaseSensitive(b, "throughput");
    double base = cnb_json_num(cJSON_GetObjectItemCaseSensitive(tp, "train_images_per_s"),
                               "median", 0.0);
    const char *model = cnb_json_str(cJSON_GetObjectItemCaseSensitive(b, "model"), "name", "");
    int rc = 0;
    if (base_ranks != 1 || !(base > 0))
        rc = cnb_errf(err, err_len, "--scaling-baseline %s: not a finished 1-rank training run "
                      "(ranks %d, train images/s %g)", baseline, base_ranks, base);
    else if (strcmp(model, m->name) != 0)
        rc = cnb_errf(err, err_len, "--scaling-baseline %s: trained model '%s', this run '%s'",
                      baseline, model, m->name);
    if (rc == 0) {
        cJSON *sc = cJSON_AddObjectToObject(j, "scaling");
        cJSON_AddStringToObject(sc, "baseline", baseline);
        cJSON_AddNumberToObject(sc, "baseline_images_per_s", base);
        cJSON_AddNumberToObject(sc, "images_per_s", ips);
        cJSON_AddNumberToObject(sc, "speedup", ips / base);
        cJSON_AddNumberToObject(sc, "efficiency", ips / (ranks * base));
    }
    cJSON_Delete(b);
    return rc;
}

static int params_agree(cnb_dist *d, cnb_trainer *t, const cnb_model *m) {
    float *p = malloc((m->n_params ? m->n_params : 1) * sizeof *p);
    char err[CNB_ERR_LEN];
    int ok = p && cnb_trainer_get_params(t, p, err, sizeof err) == 0;
    /* Every rank must take part in the comparison, even one that could not read its copy. */
    int same = cnb_dist_same_bytes(d, p && ok ? (const void *)p : "", ok ? m->n_params * 4 : 0);
    free(p);
    return same && !cnb_dist_any(d, !ok);
}

cJSON *cnb_dist_run_json(cnb_dist *d, cnb_trainer *t, const cnb_model *m,
                         const cnb_run_settings *s, const cnb_run_result *r, int threads,
                         const char *device_library, const char *baseline, char *err,
                         size_t err_len) {
    int ranks = cnb_dist_size(d);
    long steps = r->total_steps > 0 ? r->total_steps : 1;
    double train_s = r->train_seconds > 0 ? r->train_seconds : 1e-300, mean;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "ranks", ranks);
    cJSON_AddNumberToObject(j, "ranks_on_this_node", cnb_dist_local_size(d));
    cJSON_AddNumberToObject(j, "threads_per_rank", threads);
    cJSON *c = cJSON_AddObjectToObject(j, "communicator");
    cJSON_AddStringToObject(c, "kind", "MPI");
    cJSON_AddStringToObject(c, "library", cnb_dist_library(d));
    cJSON_AddStringToObject(c, "mpi_standard", cnb_dist_standard(d));
    if (s->device_allreduce && device_library) {
        cJSON_AddStringToObject(c, "device_library", device_library);
        cJSON_AddStringToObject(j, "gradient_exchange",
                                "on the device: the backend's allreduce_sum (NCCL) of the "
                                "float32 gradient block, each rank's scaled by its images / "
                                "the global batch");
    } else {
        cJSON_AddNullToObject(c, "device_library");
        cJSON_AddStringToObject(j, "gradient_exchange",
                                "host MPI_Allreduce(MPI_SUM) of the float32 gradient block; each "
                                "rank weights its gradient by its images / the global batch");
    }
    cJSON_AddNumberToObject(j, "gradient_bytes", (double)m->n_params * sizeof(float));
    cJSON_AddNumberToObject(j, "global_batch", s->batch);
    cJSON_AddNumberToObject(j, "images_per_s", median_train_ips(r));
    cJSON_AddItemToObject(j, "per_rank_images_per_s",
                          per_rank_array(d, r->local_images / train_s, &mean));
    add_rank_figure(j, d, r->allreduce_seconds / steps, "per_rank_allreduce_s_per_step",
                    "allreduce_s_per_step");
    add_rank_figure(j, d, r->wait_seconds / steps, "per_rank_wait_s_per_step", "wait_s_per_step");
    add_rank_figure(j, d, r->wait_seconds / train_s, "per_rank_wait_share",
                    "wait_share_of_step");
    add_rank_figure(j, d, r->allreduce_seconds / train_s, "per_rank_allreduce_share",
                    "allreduce_share_of_step");
    add_rank_figure(j, d, r->exchange_seconds / train_s, "per_rank_exchange_share",
                    "exchange_share_of_step");
    cJSON_AddStringToObject(j, "note",
                            "wait: at a barrier just before the all-reduce, for the slowest "
                            "rank; all-reduce: the call itself once all ranks arrived; the "
                            "exchange: both plus the gradient download / upload and the loss "
                            "sums");
    cJSON_AddBoolToObject(j, "parameters_identical_on_all_ranks", params_agree(d, t, m));
    if (baseline && add_scaling(j, baseline, m, ranks, median_train_ips(r), err, err_len) != 0) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

void cnb_dist_print(FILE *f, const cJSON *j) {
    fprintf(f, "data parallel: %d ranks (%d on this node, %d threads each) over %s (MPI %s)%s%s\n",
            cnb_json_int(j, "ranks", 1), cnb_json_int(j, "ranks_on_this_node", 1),
            cnb_json_int(j, "threads_per_rank", 1),
            cnb_json_str(cJSON_GetObjectItemCaseSensitive(j, "communicator"), "library", "?"),
            cnb_json_str(cJSON_GetObjectItemCaseSensitive(j, "communicator"), "mpi_standard", "?"),
            cnb_json_str(cJSON_GetObjectItemCaseSensitive(j, "communicator"), "device_library",
                         NULL) ? "; gradients summed on the device by " : "",
            cnb_json_str(cJSON_GetObjectItemCaseSensitive(j, "communicator"), "device_library",
                         ""));
    fprintf(f, "  images/s: %.0f in all; per rank:", cnb_json_num(j, "images_per_s", 0));
    const cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(j, "per_rank_images_per_s"))
        fprintf(f, " %.0f", v->valuedouble);
    fprintf(f, "\n  gradient all-reduce: %.3f ms per step, %.1f%% of the step, after waiting "
               "%.3f ms (%.1f%%) for the slowest rank (whole exchange %.1f%%); parameters "
               "identical on all ranks: %s\n",
            1e3 * cnb_json_num(j, "allreduce_s_per_step", 0),
            100 * cnb_json_num(j, "allreduce_share_of_step", 0),
            1e3 * cnb_json_num(j, "wait_s_per_step", 0),
            100 * cnb_json_num(j, "wait_share_of_step", 0),
            100 * cnb_json_num(j, "exchange_share_of_step", 0),
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "parameters_identical_on_all_ranks"))
                ? "yes" : "NO");
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(j, "scaling");
    if (sc)
        fprintf(f, "  scaling against %s (%.0f images/s on 1 rank): speed-up %.2fx, efficiency "
                   "%.0f%%\n",
                cnb_json_str(sc, "baseline", "?"), cnb_json_num(sc, "baseline_images_per_s", 0),
                cnb_json_num(sc, "speedup", 0), 100 * cnb_json_num(sc, "efficiency", 0));
}
