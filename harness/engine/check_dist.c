/* check_dist.c — N ranks against one process: sharded weight gradients summed over the ranks,
 * and the first training steps (see check_dist.h). */
#define _POSIX_C_SOURCE 200809L
#include "check_dist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train.h"
#include "util.h"

/* The weight-gradient cases of m at batch n: the kernels whose output sums over the batch. */
static int gradient_cases(const cnb_model *m, int n, cnb_check_case *out, int max) {
    cnb_check_case all[256];
    int total = cnb_check_cases_for_model(m, n, all, 256), k = 0;
    for (int i = 0; i < total && k < max; i++) {
        const cnb_check_case *c = &all[i];
        int wgrad = c->family == CNB_CK_CONV_BWD_FILTER || c->family == CNB_CK_BIAS_BWD ||
                    (c->family == CNB_CK_GEMM && c->trans_a && !c->trans_b);
        if (wgrad) out[k++] = *c;
    }
    return k;
}

/* The case and inputs of this rank's slice [first, first + count) of the batch: the batch axis
 * is the leading one of every input (dy and x; for the weight-gradient gemm the k rows of A and
 * B), so a slice is a pointer offset. */
static void slice_case(const cnb_check_data *whole, int first, int count, cnb_check_case *c,
                       cnb_check_data *part) {
    *c = *whole->c;
    *part = *whole;
    part->c = c;
    int n = c->family == CNB_CK_GEMM ? c->k : c->family == CNB_CK_BIAS_BWD ? c->bn : c->conv.n;
    if (c->family == CNB_CK_GEMM) c->k = count;
    else if (c->family == CNB_CK_BIAS_BWD) c->bn = count;
    else c->conv.n = count;
    int inputs = c->family == CNB_CK_BIAS_BWD ? 1 : 2;
    for (int i = 0; i < inputs; i++) {
        size_t per_item = whole->count[i] / (size_t)n;
        part->count[i] = per_item * (size_t)count;
        part->host[i] = (float *)whole->host[i] + per_item * (size_t)first;
    }
}

static void one_gradient_check(cnb_dist *d, const cnb_backend *api, cnb_context *ctx,
                               const cnb_check_case *c, int exact, uint64_t seed,
                               cnb_dist_check_emit emit, void *user) {
    char err[CNB_ERR_LEN], shape[256], note[128];
    cnb_check_data whole;
    cnb_check_outcome o;
    memset(&o, 0, sizeof o);
    cnb_check_case_shape(c, shape, sizeof shape);
    if (cnb_check_prepare(c, exact, seed, &whole, err, sizeof err) != 0) {
        o.status = CNB_CHECK_FAILED;
        snprintf(o.reason, sizeof o.reason, "%.1400s", err);
        emit(user, c->label, shape, exact ? "exact" : "random", &o, NULL, NULL);
        return;
    }
    int n = c->family == CNB_CK_GEMM ? c->k : c->family == CNB_CK_BIAS_BWD ? c->bn : c->conv.n;
    int first, count;
    cnb_dist_slice(d, n, &first, &count);
    float *sum = calloc(whole.out_count ? whole.out_count : 1, sizeof *sum);
    cnb_status st = CNB_OK;
    if (sum && count > 0) {
        cnb_check_case part_case;
        cnb_check_data part;
        slice_case(&whole, first, count, &part_case, &part);
        st = cnb_check_run(&part, api, ctx, sum, err, sizeof err);
    }
    /* The 1-rank answer: the same backend on the whole batch. */
    if (st == CNB_OK) st = cnb_check_run(&whole, api, ctx, whole.ref, err, sizeof err);
    int failed = cnb_dist_any(d, !sum || st != CNB_OK);
    if (!failed && cnb_dist_sum_floats(d, sum, whole.out_count, NULL, err, sizeof err) != 0)
        failed = 1;
    if (failed) {
        o.status = CNB_CHECK_FAILED;
        snprintf(o.reason, sizeof o.reason, "%.1400s",
                 !sum ? "out of host memory" : st != CNB_OK ? err : "failed on another rank");
    } else {
        cnb_check_judge(&whole, sum, CNB_TOL_DIST, 1e-5, &o);
    }
    snprintf(note, sizeof note, "%d ranks, slices of %d..%d of %d", cnb_dist_size(d),
             n / cnb_dist_size(d), (n + cnb_dist_size(d) - 1) / cnb_dist_size(d), n);
    emit(user, c->label, shape, exact ? "exact" : "random", &o, note, NULL);
    free(sum);
    cnb_check_data_free(&whole);
}

void cnb_dist_check_gradients(cnb_dist *d, const cnb_backend *api, cnb_context *ctx,
                              const cnb_model *m, int batch, uint64_t seed, int modes_exact,
                              int modes_random, cnb_dist_check_emit emit, void *user) {
    cnb_check_case cases[64];
    int n = gradient_cases(m, batch, cases, 64);
    for (int i = 0; i < n; i++) {
        snprintf(cases[i].label + strlen(cases[i].label),
                 sizeof cases[i].label - strlen(cases[i].label), ".%s",
                 cnb_check_family_name(cases[i].family));
        if (modes_exact && cnb_check_case_supports_exact(&cases[i]))
            one_gradient_check(d, api, ctx, &cases[i], 1, seed + 2 * (uint64_t)i, emit, user);
        if (modes_random)
            one_gradient_check(d, api, ctx, &cases[i], 0, seed + 2 * (uint64_t)i + 1, emit, user);
    }
}

/* One training run: losses of every step and the final parameters (malloc'd). */
static int train_steps(cnb_dist *d, const cnb_backend *api, cnb_context *ctx,
                       const cnb_model *m, const cnb_dataset *train, const cnb_dataset *test,
                       const cnb_run_settings *base, float **losses, long *steps,
                       float **params, char *err, size_t err_len) {
    cnb_run_settings s = *base;
    s.dist = d;
    cnb_trainer *t = NULL;
    cnb_run_result *r = calloc(1, sizeof *r);
    *params = malloc((m->n_params ? m->n_params : 1) * sizeof(float));
    int rc = -1;
    if (!r || !*params) cnb_errf(err, err_len, "out of host memory");
    else if (cnb_trainer_create(api, ctx, m, train, test, &s, &t, err, err_len) != 0) {
    } else if (cnb_trainer_run(t, r) != 0) {
        cnb_errf(err, err_len, "%.900s", r->message);
    } else if (cnb_trainer_get_params(t, *params, err, err_len) == 0) {
        *losses = r->step_losses;
        *steps = r->total_steps;
        r->step_losses = NULL;
        rc = 0;
    }
    cnb_trainer_destroy(t);
    if (r) cnb_run_result_free(r);
    free(r);
    return rc;
}

void cnb_dist_check_training(cnb_dist *d, const cnb_backend *api, cnb_context *ctx,
                             const cnb_model *m, const cnb_dataset *train,
                             const cnb_dataset *test, int steps, uint64_t seed,
                             cnb_dist_check_emit emit, void *user) {
    char label[128], shape[256], note[256] = "", err[CNB_ERR_LEN] = "";
    snprintf(label, sizeof label, "%s.steps%d", m->name, steps);
    cnb_run_settings s;
    cnb_settings_from_model(m, &s);
    s.epochs = 1;
    s.max_steps = steps;
    s.seed = seed;
    snprintf(shape, sizeof shape, "%d ranks vs 1, global batch %d, %s lr %g", cnb_dist_size(d),
             s.batch, s.optimizer, s.lr);
    float *ref_losses = NULL, *ref_params = NULL, *losses = NULL, *params = NULL;
    long ref_steps = 0, got_steps = 0;
    /* Every rank trains the 1-process reference itself: no collective, same bits everywhere. */
    int ref_ok = train_steps(NULL, api, ctx, m, train, test, &s, &ref_losses, &ref_steps,
                             &ref_params, err, sizeof err) == 0;
    int got_ok = ref_ok && train_steps(d, api, ctx, m, train, test, &s, &losses, &got_steps,
                                       &params, err, sizeof err) == 0;
    cnb_check_outcome o;
    memset(&o, 0, sizeof o);
    o.tol = o.point_tol = CNB_TOL_DIST;
    cJSON *extra = NULL;
    int same = cnb_dist_same_bytes(d, got_ok ? (const void *)params : "",
                                   got_ok ? m->n_params * sizeof(float) : 0);
    if (!ref_ok || !got_ok) {
        o.status = CNB_CHECK_FAILED;
        snprintf(o.reason, sizeof o.reason, "%s training failed: %.1200s",
                 ref_ok ? "distributed" : "1-process", err);
    } else if (got_steps != ref_steps) {
        o.status = CNB_CHECK_FAILED;
        snprintf(o.reason, sizeof o.reason, "ran %ld steps, the 1-process run %ld", got_steps,
                 ref_steps);
    } else {
        cnb_compare_stats ls;
        cnb_compare(losses, ref_losses, (size_t)ref_steps, o.tol, &ls);
        cnb_compare(params, ref_params, m->n_params, o.tol, &o.stats);
        int pass = same && cnb_compare_passed(&o.stats, o.tol) && cnb_compare_passed(&ls, o.tol);
        o.status = pass ? CNB_CHECK_PASSED : CNB_CHECK_FAILED;
        snprintf(note, sizeof note, "losses relL2 %.2e; parameters identical on all ranks: %s",
                 ls.rel_l2, same ? "yes" : "NO");
        if (!pass)
            snprintf(o.reason, sizeof o.reason,
                     "weights relL2 %.2e, losses relL2 %.2e (tol %.0e)%s", o.stats.rel_l2,
                     ls.rel_l2, o.tol, same ? "" : "; the ranks' parameters differ");
        extra = cJSON_CreateObject();
        cJSON_AddNumberToObject(extra, "ranks", cnb_dist_size(d));
        cJSON_AddNumberToObject(extra, "steps", (double)ref_steps);
        cJSON_AddNumberToObject(extra, "loss_rel_l2", ls.rel_l2);
        cJSON_AddNumberToObject(extra, "weights_rel_l2", o.stats.rel_l2);
        cJSON_AddBoolToObject(extra, "parameters_identical_on_all_ranks", same);
    }
    emit(user, label, shape, "random", &o, note[0] ? note : NULL, extra);
    free(ref_losses);
    free(ref_params);
    free(losses);
    free(params);
}
