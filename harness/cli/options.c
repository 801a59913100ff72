/* options.c — one getopt pass over the shared flags and a verb's own (see options.h). */
#define _GNU_SOURCE
#include "options.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runctx.h"
#include "util.h"

enum {
    S_BACKENDS = 1000, S_MODELS, S_BATCH, S_SEED, S_THREADS, S_DATASET, S_DATA, S_TRAIN_LIMIT,
    S_TEST_LIMIT, S_OUT, S_QUIET, S_HELP
};

/* The shared table: each entry with the mask bit that enables it. */
static const struct {
    struct option opt;
    unsigned mask;
} shared_table[] = {
    {{"backend", required_argument, 0, S_BACKENDS}, CNB_OPT_BACKENDS},
    {{"backends", required_argument, 0, S_BACKENDS}, CNB_OPT_BACKENDS},
    {{"model", required_argument, 0, S_MODELS}, CNB_OPT_MODELS},
    {{"models", required_argument, 0, S_MODELS}, CNB_OPT_MODELS},
    {{"batch", required_argument, 0, S_BATCH}, CNB_OPT_BATCH},
    {{"seed", required_argument, 0, S_SEED}, CNB_OPT_SEED},
    {{"threads", required_argument, 0, S_THREADS}, CNB_OPT_THREADS},
    {{"dataset", required_argument, 0, S_DATASET}, CNB_OPT_DATA},
    {{"data", required_argument, 0, S_DATA}, CNB_OPT_DATA},
    {{"train-limit", required_argument, 0, S_TRAIN_LIMIT}, CNB_OPT_TRAIN_LIMIT},
    {{"test-limit", required_argument, 0, S_TEST_LIMIT}, CNB_OPT_TEST_LIMIT},
    {{"out", required_argument, 0, S_OUT}, CNB_OPT_OUT},
    {{"quiet", no_argument, 0, S_QUIET}, CNB_OPT_QUIET},
    {{"help", no_argument, 0, S_HELP}, ~0u},
};
#define N_SHARED (sizeof shared_table / sizeof shared_table[0])

int cnb_opt_long(const char *prog, const char *flag, const char *arg, long lo, long hi, long *out) {
    return cnb_parse_long_flag(prog, flag, arg, lo, hi, out);
}

int cnb_opt_double(const char *prog, const char *flag, const char *arg, double lo, double hi,
                   double *out) {
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "%s: %s: '%s' is not a number in [%g, %g]\n", prog, flag, arg, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cnb_opt_single(const char *prog, const char *flag, int n) {
    if (n <= 1) return 0;
    fprintf(stderr, "%s: %s takes one value here, not a list\n", prog, flag);
    return -1;
}

static int split(const char *prog, const char *flag, const char *arg, char *buf, char **items,
                 int *n) {
    snprintf(buf, 4096, "%s", arg);
    *n = cnb_split_list(buf, items, CNB_OPT_LIST_MAX);
    if (*n < 0 || strlen(arg) >= 4096) {
        fprintf(stderr, "%s: %s: '%s' is not a comma list (no empty items, at most %d)\n", prog,
                flag, arg, CNB_OPT_LIST_MAX);
        return -1;
    }
    return 0;
}

static int parse_batches(const char *prog, const char *arg, cnb_common_opts *o) {
    char buf[4096], *items[CNB_OPT_LIST_MAX];
    int n;
    if (split(prog, "--batch", arg, buf, items, &n) != 0) return -1;
    for (int i = 0; i < n; i++) {
        long v;
        if (cnb_opt_long(prog, "--batch", items[i], 1, CNB_OPT_MAX_BATCH, &v) != 0) return -1;
        o->batches[i] = (int)v;
    }
    o->n_batches = n;
    return 0;
}

static int parse_dataset(const char *prog, const char *arg, cnb_common_opts *o) {
    static const char *const kinds[] = {"fashion-mnist", "mnist", "csv"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(arg, kinds[i]) == 0) {
            o->dataset = arg;
            return 0;
        }
    fprintf(stderr, "%s: --dataset: unknown data set '%s' (valid: fashion-mnist, mnist, csv)\n",
            prog, arg);
    return -1;
}

/* One shared flag; 0 or -1 (printed). */
static int on_shared(const char *prog, int id, const char *arg, cnb_common_opts *o) {
    long v;
    switch (id) {
    case S_BACKENDS:
        o->backend_arg = arg;
        return split(prog, "--backend", arg, o->lists[0], o->backends, &o->n_backends);
    case S_MODELS:
        o->model_arg = arg;
        return split(prog, "--model", arg, o->lists[1], o->models, &o->n_models);
    case S_BATCH: return parse_batches(prog, arg, o);
    case S_SEED:
        if (cnb_opt_long(prog, "--seed", arg, 0, LONG_MAX, &v) != 0) return -1;
        o->seed = (uint64_t)v;
        o->have_seed = 1;
        return 0;
    case S_THREADS:
        if (cnb_opt_long(prog, "--threads", arg, 1, CNB_OPT_MAX_THREADS, &v) != 0) return -1;
        o->threads = (int)v;
        return 0;
    case S_DATASET: return parse_dataset(prog, arg, o);
    case S_DATA: o->data = arg; return 0;
    case S_TRAIN_LIMIT:
        if (cnb_opt_long(prog, "--train-limit", arg, 1, INT_MAX, &v) != 0) return -1;
        o->train_limit = (int)v;
        return 0;
    case S_TEST_LIMIT:
        if (cnb_opt_long(prog, "--test-limit", arg, 1, INT_MAX, &v) != 0) return -1;
        o->test_limit = (int)v;
        return 0;
    case S_OUT: o->out = arg; return 0;
    case S_QUIET: o->quiet = 1; return 0;
    }
    return -1;
}

int cnb_parse_options(const char *prog, int argc, char **argv, unsigned shared,
                      const struct option *own, cnb_own_flag_fn on_own, void *user,
                      void (*help)(FILE *), cnb_common_opts *out, int *first_positional) {
    memset(out, 0, sizeof *out);
    struct option table[N_SHARED + 64];
    size_t n = 0;
    for (size_t i = 0; i < N_SHARED; i++)
        if (shared_table[i].mask & shared) table[n++] = shared_table[i].opt;
    for (size_t i = 0; own && own[i].name && n + 1 < sizeof table / sizeof table[0]; i++)
        table[n++] = own[i];
    table[n] = (struct option){0, 0, 0, 0};
    char shorts[16] = ":h"; /* -b NAME and -m NAME stand for --backend and --model */
    if (shared & CNB_OPT_BACKENDS) strcat(shorts, "b:");
    if (shared & CNB_OPT_MODELS) strcat(shorts, "m:");
    optind = 0;
    opterr = 0;
    for (;;) {
        int id = getopt_long(argc, argv, shorts, table, NULL);
        if (id == -1) break;
        if (id == 'b') id = S_BACKENDS;
        if (id == 'm') id = S_MODELS;
        int bad;
        if (id == 'h' || id == S_HELP) {
            help(stdout);
            return 1;
        } else if (id == ':') {
            fprintf(stderr, "%s: %s needs a value\n", prog, argv[optind - 1]);
            bad = -1;
        } else if (id == '?') {
            fprintf(stderr, "%s: unknown option '%s'\n", prog, argv[optind - 1]);
            help(stderr);
            return -1;
        } else if (id >= S_BACKENDS) {
            bad = on_shared(prog, id, optarg, out);
        } else {
            bad = on_own ? on_own(user, id, optarg) : -1;
        }
        if (bad) return -1;
    }
    if (first_positional) {
        *first_positional = optind;
    } else if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", prog, argv[optind]);
        return -1;
    }
    return 0;
}
