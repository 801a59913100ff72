/* bench_stats.c — figures from a cell's samples: summaries with outliers flagged (never
 * dropped), per-round ratios and their medians, the uncontended ratio (see cmd_bench.c). */
#define _GNU_SOURCE
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double bench_ksum(const cnb_kernel_times *k) {
    double s = 0;
    for (int f = 0; f < CNB_KF_COUNT; f++) s += k->seconds[f];
    return s;
}

int bench_outliers(const double *x, int n, const cnb_summary *s, int *idx, int max) {
    int k = 0;
    for (int i = 0; i < n; i++)
        if (s->mad > 0 && fabs(x[i] - s->median) > OUTLIER_MADS * s->mad && k < max) idx[k++] = i;
    return k;
}

cJSON *bench_summary_json(const double *x, int n) {
    cJSON *o = cnb_summary_json(x, n);
    cnb_summary s;
    cnb_summarize(x, n, &s);
    int idx[MAX_RUNS];
    int k = bench_outliers(x, n, &s, idx, MAX_RUNS);
    cJSON *ol = cJSON_AddArrayToObject(o, "outliers");
    for (int i = 0; i < k; i++) cJSON_AddItemToArray(ol, cJSON_CreateNumber(idx[i]));
    return o;
}

double bench_median_of(const double *x, int n) {
    cnb_summary s;
    cnb_summarize(x, n, &s);
    return s.median;
}

/* Median of a cell's samples in round r (0 when it has none there). */
double bench_round_median(const bn_cell *c, int r, int infer) {
    if (r >= c->rounds) return 0.0;
    int from = r ? c->round_end[r - 1] : 0, n = c->round_end[r] - from;
    return n > 0 ? bench_median_of((infer ? c->infer_ips : c->train_ips) + from, n) : 0.0;
}

/* Ratio samples, one per round both cells ran in (side by side): the median of a's runs in the
 * round over the median of b's. */
int bench_ratio_samples(const bn_cell *a, const bn_cell *b, int infer, double *out) {
    int rounds = a->rounds < b->rounds ? a->rounds : b->rounds, n = 0;
    for (int r = 0; r < rounds; r++) {
        double x = bench_round_median(a, r, infer), y = bench_round_median(b, r, infer);
        if (x > 0 && y > 0) out[n++] = x / y;
    }
    return n;
}

/* The upper quartile of a cell's per-round speeds over the first `rounds` rounds: the speed it
 * reaches when the host's other tenants leave it alone (they only ever slow a run down). */
double bench_uncontended_speed(const bn_cell *c, int rounds, int infer, double *buf) {
    int n = 0;
    for (int r = 0; r < rounds; r++) {
        double x = bench_round_median(c, r, infer);
        if (x > 0) buf[n++] = x;
    }
    return cnb_quantile(buf, n, UNCONTENDED_QUANTILE);
}

/* a's uncontended speed over b's, both over the rounds they both ran (0: no rounds). */
double bench_uncontended_ratio(const bn_cell *a, const bn_cell *b, int infer, double *buf) {
    int rounds = a->rounds < b->rounds ? a->rounds : b->rounds;
    double y = bench_uncontended_speed(b, rounds, infer, buf);
    double x = bench_uncontended_speed(a, rounds, infer, buf);
    return y > 0 ? x / y : 0.0;
}

cJSON *bench_ratio_json(const char *kind, const bn_cell *a, const bn_cell *b, double *buf) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", kind);
    cJSON_AddStringToObject(o, "model", a->m->name);
    cJSON_AddNumberToObject(o, "batch", a->batch);
    cJSON_AddStringToObject(o, "backend", a->b->name);
    cJSON_AddStringToObject(o, "baseline", b->b->name);
    int n = bench_ratio_samples(a, b, 0, buf);
    cJSON_AddItemToObject(o, "train", bench_summary_json(buf, n));
    n = bench_ratio_samples(a, b, 1, buf);
    cJSON_AddItemToObject(o, "infer", bench_summary_json(buf, n));
    cJSON *unc = cJSON_AddObjectToObject(o, "uncontended");
    cJSON_AddNumberToObject(unc, "train", bench_uncontended_ratio(a, b, 0, buf));
    cJSON_AddNumberToObject(unc, "infer", bench_uncontended_ratio(a, b, 1, buf));
    cJSON_AddNumberToObject(unc, "quantile", UNCONTENDED_QUANTILE);
    /* Best-of-runs ratio: the fastest run of each. Shown for reference; compare gates on the
     * per-round medians (a fast backend's many short runs let its fastest one catch the
     * machine's brief fast phases, so this ratio is the less steady one here). */
    cnb_summary sa, sb;
    cJSON *best = cJSON_AddObjectToObject(o, "best");
    cnb_summarize(a->train_ips, a->runs, &sa);
    cnb_summarize(b->train_ips, b->runs, &sb);
    cJSON_AddNumberToObject(best, "train", sb.max > 0 ? sa.max / sb.max : 0);
    cnb_summarize(a->infer_ips, a->runs, &sa);
    cnb_summarize(b->infer_ips, b->runs, &sb);
    cJSON_AddNumberToObject(best, "infer", sb.max > 0 ? sa.max / sb.max : 0);
    return o;
}

/* Index of the CPU (gpu = 0) or GPU (gpu = 1) cell with the highest median training speed. */
int bench_best_cell(const bn_cell *cells, int n, int gpu) {
    int best = -1;
    double bv = -1;
    for (int i = 0; i < n; i++) {
        if (cells[i].status || cells[i].b->is_gpu != gpu) continue;
        double v = bench_median_of(cells[i].train_ips, cells[i].runs);
        if (v > bv) {
            bv = v;
            best = i;
        }
    }
    return best;
}

double bench_median_ratio(const bn_cell *a, const bn_cell *b, int infer, double *buf) {
    return bench_median_of(buf, bench_ratio_samples(a, b, infer, buf));
}

int bench_cell_disturbed(const bn_cell *c) {
    return c->load_known && (c->other_cores > CNB_LOAD_DISTURBED_CORES ||
                             c->steal_cores > CNB_LOAD_DISTURBED_CORES);
}
