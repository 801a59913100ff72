/* options.h — the command line's one options layer: the flags several verbs share (backends,
 * models, batch, seed, threads, data, limits, out, quiet) are parsed here, once, with one set of
 * limits and messages; each verb declares only its own flags, as a getopt table and a handler. */
#ifndef CNB_OPTIONS_H
#define CNB_OPTIONS_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#define CNB_OPT_LIST_MAX 64    /* items in a comma list */
#define CNB_OPT_MAX_BATCH 65536
#define CNB_OPT_MAX_THREADS 4096

/* The shared flags a verb accepts (a bit mask). */
enum {
    CNB_OPT_BACKENDS = 1 << 0,  /* --backend / --backends NAME|LIST */
    CNB_OPT_MODELS = 1 << 1,    /* --model / --models NAME|LIST */
    CNB_OPT_BATCH = 1 << 2,     /* --batch N or LIST */
    CNB_OPT_SEED = 1 << 3,      /* --seed N */
    CNB_OPT_THREADS = 1 << 4,   /* --threads N */
    CNB_OPT_DATA = 1 << 5,      /* --dataset NAME, --data PATH */
    CNB_OPT_TRAIN_LIMIT = 1 << 6, /* --train-limit N */
    CNB_OPT_TEST_LIMIT = 1 << 7,  /* --test-limit N */
    CNB_OPT_OUT = 1 << 8,       /* --out FILE */
    CNB_OPT_QUIET = 1 << 9,     /* --quiet */
};

typedef struct cnb_common_opts {
    const char *backend_arg;                 /* the --backend value as given, or NULL */
    char *backends[CNB_OPT_LIST_MAX];        /* the same split at commas */
    int n_backends;
    const char *model_arg;
    char *models[CNB_OPT_LIST_MAX];
    int n_models;
    int batches[CNB_OPT_LIST_MAX];
    int n_batches;                           /* 0: not given */
    uint64_t seed;
    int have_seed;
    int threads;                             /* 0: not given */
    const char *dataset, *data;              /* NULL: not given */
    int train_limit, test_limit;             /* 0: not given */
    const char *out;                         /* NULL: not given */
    int quiet;
    char lists[2][4096];                     /* storage the split lists point into */
} cnb_common_opts;

/* Copies the shared flags into a verb's options struct o whose fields have the same names:
 * the backend and model lists, threads, dataset, data and quiet; seed and out only when given,
 * so the verb's defaults stand otherwise. A macro because each verb has its own struct. */
#define CNB_TAKE_COMMON_OPTS(o, co)                                                          \
    do {                                                                                     \
        for (int i_ = 0; i_ < (co)->n_backends; i_++) (o)->backends[i_] = (co)->backends[i_]; \
        (o)->n_backends = (co)->n_backends;                                                  \
        for (int i_ = 0; i_ < (co)->n_models; i_++) (o)->models[i_] = (co)->models[i_];     \
        (o)->n_models = (co)->n_models;                                                      \
        if ((co)->have_seed) (o)->seed = (co)->seed;                                         \
        if ((co)->out) (o)->out = (co)->out;                                                 \
        (o)->threads = (co)->threads;                                                        \
        (o)->dataset = (co)->dataset;                                                        \
        (o)->data = (co)->data;                                                              \
        (o)->quiet = (co)->quiet;                                                            \
    } while (0)

/* A verb's own flags: getopt entries whose val is the verb's id (any value below 1000), and a
 * handler that returns 0, or -1 after printing what is wrong with the flag. */
typedef int (*cnb_own_flag_fn)(void *user, int id, const char *arg);

/* Parse argv (argv[0] is the program or the verb) for `prog` (used in messages: "cnnbench",
 * "cnnbench bench"). shared is a mask of CNB_OPT_*; own may be NULL. --help and -h call
 * help(stdout) and return 1. Returns 0, 1 (help shown) or -1 (a message was printed and usage
 * goes to stderr). Positional arguments are left in argv from *first_positional on (NULL: none
 * allowed). */
int cnb_parse_options(const char *prog, int argc, char **argv, unsigned shared,
                      const struct option *own, cnb_own_flag_fn on_own, void *user,
                      void (*help)(FILE *), cnb_common_opts *out, int *first_positional);

/* Helpers for verbs' own flags, with the same messages: an integer in [lo, hi], a number in
 * [lo, hi]. 0 or -1 (printed). */
int cnb_opt_long(const char *prog, const char *flag, const char *arg, long lo, long hi, long *out);
int cnb_opt_double(const char *prog, const char *flag, const char *arg, double lo, double hi,
                   double *out);

/* For verbs that take one value of a list flag: -1 (printed) when more were given. */
int cnb_opt_single(const char *prog, const char *flag, int n);

#endif
