/* bench_schedule.c — running bench cells: each run starts from the same weights and position,
 * the backends of a group run in time-balanced rounds, and a separate profiled pass gives the
 * per-kernel breakdown. */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "machine.h"

void bench_settings(const bn_opts *o, const bn_backend *b, const cnb_model *m, int batch,
                    cnb_run_settings *s) {
    cnb_settings_from_model(m, s);
    s->batch = batch;
    s->eval_batch = o->eval_batch ? o->eval_batch : batch;
    s->epochs = 1;
    s->max_steps = o->steps_per_run;
    s->seed = o->seed;
    s->no_fusion = o->no_fusion || b->no_fusion;
    s->direct_conv = o->direct_conv;
}

/* Remember where a fresh trainer stands, to start every run from there. */
int bench_trainer_mark(cnb_trainer *t, const cnb_model *m, cnb_train_state *st, float **params,
                        char *err, size_t err_len) {
    cnb_trainer_get_state(t, st);
    *params = malloc((m->n_params ? m->n_params : 1) * sizeof(float));
    if (!*params) return cnb_errf(err, err_len, "out of host memory");
    return cnb_trainer_get_tensors(t, *params, NULL, NULL, err, err_len);
}

/* Back to the marked position and weights with a fresh optimizer: each run is the same work. */
static int trainer_rewind(cnb_trainer *t, const cnb_train_state *st, const float *params,
                          char *err, size_t err_len) {
    if (cnb_trainer_set_state(t, st, err, err_len) != 0) return -1;
    return cnb_trainer_set_tensors(t, params, NULL, NULL, err, err_len);
}

/* One run: steps_per_run training steps, then one inference pass over the test view. */
int bench_cell_run(bn_cell *c, cnb_run_result *r, double *train_ips, double *infer_ips,
                    double *step_ms, double *seconds) {
    cnb_run_result_free(r);
    memset(r, 0, sizeof *r);
    char err[CNB_ERR_LEN];
    if (trainer_rewind(c->t, &c->start, c->params0, err, sizeof err) != 0) {
        snprintf(c->why, sizeof c->why, "cannot start a run: %.1000s", err);
        return -1;
    }
    double t0 = cnb_now();
    if (cnb_trainer_run(c->t, r) != 0 || r->epochs_done < 1) {
        snprintf(c->why, sizeof c->why, "run failed: %.1000s", r->message);
        return -1;
    }
    *seconds = cnb_now() - t0;
    const cnb_epoch_metrics *e = &r->epoch[0];
    *train_ips = e->train_images_per_s;
    *infer_ips = e->infer_images_per_s;
    *step_ms = e->steps ? 1000.0 * e->train_seconds / (double)e->steps : 0.0;
    return 0;
}

int bench_cell_profile(bn_cell *c, const bn_opts *o, const cnb_dataset *train,
                        const cnb_dataset *test, cnb_run_result *r) {
    cnb_profiler *p = malloc(sizeof *p);
    if (!p) return -1;
    cnb_profiler_init(p, c->b->lib.api, c->b->ctx, 1);
    cnb_run_settings s;
    bench_settings(o, c->b, c->m, c->batch, &s);
    cnb_trainer *t = NULL;
    char err[CNB_ERR_LEN];
    int rc = 0;
    if (cnb_trainer_create(cnb_profiler_api(p), cnb_profiler_ctx(p), c->m, train, test, &s, &t,
                           err, sizeof err) != 0) {
        fprintf(stderr, "cnnbench bench: %s on %s: profiled pass: %s\n", c->m->name, c->b->name,
                err);
        cnb_profiler_release(p);
        free(p);
        return -1;
    }
    c->timing = cnb_profiler_timing_method(p);
    memset(&c->train_k, 0, sizeof c->train_k);
    memset(&c->infer_k, 0, sizeof c->infer_k);
    cnb_train_state st0;
    float *params0 = NULL;
    if (bench_trainer_mark(t, c->m, &st0, &params0, err, sizeof err) != 0) rc = -1;
    for (int run = 0; run < 1 + o->profile_runs && rc == 0; run++) { /* run 0 warms up */
        cnb_run_result_free(r);
        memset(r, 0, sizeof *r);
        if (trainer_rewind(t, &st0, params0, err, sizeof err) != 0) {
            fprintf(stderr, "cnnbench bench: %s on %s: profiled pass: %s\n", c->m->name,
                    c->b->name, err);
            rc = -1;
            break;
        }
        cnb_profiler_reset(p);
        if (cnb_trainer_run(t, r) != 0 || r->epochs_done < 1) {
            fprintf(stderr, "cnnbench bench: %s on %s: profiled run failed: %s\n", c->m->name,
                    c->b->name, r->message);
            rc = -1;
            break;
        }
        cnb_profiler_flush(p); /* the evaluation's timer pairs, into pending */
        if (run == 0) continue;
        for (int f = 0; f < CNB_KF_COUNT; f++) {
            c->train_k.seconds[f] += p->train.seconds[f];
            c->train_k.calls[f] += p->train.calls[f];
            c->infer_k.seconds[f] += p->pending.seconds[f]; /* after the last optimizer step */
            c->infer_k.calls[f] += p->pending.calls[f];
        }
        c->profiled_steps += r->epoch[0].steps;
        c->profiled_runs++;
        c->profiled_train_seconds += r->epoch[0].train_seconds;
        c->profiled_infer_seconds += r->epoch[0].eval_seconds;
    }
    if (p->timer_errors)
        fprintf(stderr, "cnnbench bench: %s on %s: %ld timer calls failed in the profiled pass "
                "(those kernels counted, not timed): %s\n", c->m->name, c->b->name,
                p->timer_errors, c->b->lib.api->last_error(c->b->ctx));
    cnb_trainer_destroy(t);
    free(params0);
    cnb_profiler_release(p);
    free(p);
    return rc;
}

/* The untimed pause before a backend's turn, when it shares the rounds with others: the pool
 * of the backend before it must stop spinning first (BENCH_DEFAULT_SETTLE_MS says why). */
static void settle(const bn_opts *o, int backends) {
    if (backends < 2 || o->settle_ms <= 0) return;
    struct timespec ts = {o->settle_ms / 1000, (long)(o->settle_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void bench_run_group(bn_cell *g, int nb, const bn_opts *o, const cnb_dataset *view,
                     const cnb_dataset *test, cnb_run_result *r) {
    if (!o->quiet) {
        printf("%s batch %d: warming up", g[0].m->name, g[0].batch);
        fflush(stdout);
    }
    double x1, x2, x3, secs;
    for (int w = 0; w < o->warmup; w++)
        for (int k = 0; k < nb; k++) {
            if (!g[k].status && bench_cell_run(&g[k], r, &x1, &x2, &x3, &secs) != 0) g[k].status = 2;
            else g[k].run_estimate = secs;
        }
    if (!o->quiet) {
        printf(", timing");
        fflush(stdout);
    }
    cnb_load_probe load;
    cnb_load_probe_start(&load);
    /* Rounds go on until every cell is done; every cell below --max-runs runs in every
     * round, so the ratios have a sample per round. A round lasts about as long as the
     * slowest cell's run; faster cells repeat, at most max_runs / min_runs times, so
     * min_runs rounds fit in max_runs. */
    int reps_cap = o->max_runs / o->min_runs > 1 ? o->max_runs / o->min_runs : 1;
    for (int left = 1; left;) {
        double slowest = 0;
        for (int k = 0; k < nb; k++)
            if (!g[k].status && g[k].run_estimate > slowest) slowest = g[k].run_estimate;
        for (int k = 0; k < nb; k++) {
            bn_cell *c = &g[k];
            if (c->status || c->runs >= o->max_runs) continue;
            long reps = c->run_estimate > 0 ? lround(slowest / c->run_estimate) : 1;
            if (reps < 1) reps = 1;
            if (reps > reps_cap) reps = reps_cap;
            if (reps > o->max_runs - c->runs) reps = o->max_runs - c->runs;
            double round_seconds = 0;
            settle(o, nb);
            for (long rep = 0; rep < reps && !c->status; rep++) {
                int i = c->runs;
                if (bench_cell_run(c, r, &c->train_ips[i], &c->infer_ips[i], &c->step_ms[i],
                             &secs) != 0) {
                    c->status = 2;
                    break;
                }
                c->runs++;
                c->timed_seconds += secs;
                round_seconds += secs;
            }
            if (c->status) continue;
            c->round_end[c->rounds++] = c->runs;
            c->run_estimate = round_seconds / (double)reps;
            c->done = c->runs >= o->max_runs ||
                      (c->runs >= o->min_runs && c->timed_seconds >= o->min_time &&
                       c->rounds >= (o->min_runs < 3 ? o->min_runs : 3));
        }
        left = 0;
        for (int k = 0; k < nb; k++) left |= !g[k].status && !g[k].done;
        if (!o->quiet) {
            printf(".");
            fflush(stdout);
        }
    }
    double other, steal;
    int known = cnb_load_probe_stop(&load, &other, &steal) == 0;
    for (int k = 0; k < nb; k++) {
        g[k].load_known = known;
        g[k].other_cores = other;
        g[k].steal_cores = steal;
        cnb_trainer_destroy(g[k].t);
        g[k].t = NULL;
    }
    if (o->breakdown) {
        if (!o->quiet) {
            printf(", profiling");
            fflush(stdout);
        }
        for (int k = 0; k < nb; k++)
            if (!g[k].status) bench_cell_profile(&g[k], o, view, test, r);
    }
    if (!o->quiet) printf("\n");
}

void bench_prepare_group(bn_cell *g, int nb, bn_backend *backends, const cnb_model *m, int batch,
                         const bn_opts *o, const cnb_dataset *view, const cnb_dataset *test) {
    char err[CNB_ERR_LEN];
    for (int k = 0; k < nb; k++) {
        bn_cell *c = &g[k];
        c->b = &backends[k];
        c->m = m;
        c->batch = batch;
        if (!c->b->usable) {
            c->status = 1;
            snprintf(c->why, sizeof c->why, "%.1000s", c->b->why);
            continue;
        }
        cnb_run_settings s;
        bench_settings(o, c->b, c->m, batch, &s);
        const cnb_backend *api = c->b->lib.api;
        cnb_context *ctx = c->b->ctx;
        if (c->b->fault_env[0]) { /* the planted slowdown must act on the timed runs */
            cnb_profiler_init(&c->thin, api, ctx, 0);
            api = cnb_profiler_api(&c->thin);
            ctx = cnb_profiler_ctx(&c->thin);
        }
        if (cnb_trainer_create(api, ctx, c->m, view, test, &s, &c->t, err, sizeof err) != 0 ||
            bench_trainer_mark(c->t, c->m, &c->start, &c->params0, err, sizeof err) != 0) {
            c->status = 2;
            snprintf(c->why, sizeof c->why, "%.1000s", err);
        }
    }
}
