/* main.c — the cnnbench command line: `cnnbench --backend X --model Y` trains a model and reports
 * accuracy and throughput; the listing flags show what is available here. Only this file decides
 * to exit. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "commands.h"
#include "data.h"
#include "loader.h"
#include "machine.h"
#include "model.h"
#include "results.h"
#include "train.h"
#include "util.h"

#ifndef CNB_BUILD_TYPE
#define CNB_BUILD_TYPE ""
#endif

enum { EXIT_USAGE = 2, EXIT_DIVERGED = 3, EXIT_INTERRUPTED = 130 };

typedef struct cli {
    const char *backend, *model, *dataset, *data, *out;
    const char *save, *load, *resume, *checkpoint, *dump_logits;
    long checkpoint_every;
    int eval_only;
    int epochs, batch, eval_batch, threads, train_limit, test_limit;
    long steps;
    double lr;
    unsigned long long seed;
    int have_seed, quiet, progress, deterministic, tf32;
    int no_fusion;
} cli;

static void usage(FILE *f) {
    fprintf(f,
            "usage: cnnbench [--backend NAME|PATH] [--model NAME|PATH] [options]\n"
            "\n"
            "Trains a model under one kernel backend and reports accuracy and throughput.\n"
            "\n"
            "  --backend NAME|PATH   naive, blas, onednn, cuda, cudnn, or a backend .so (default blas)\n"
            "  --model NAME|PATH     a model in %s or a model file (default simplecnn)\n"
            "  --epochs N            epochs (default: the model file's)\n"
            "  --batch N             training batch size (default: the model file's)\n"
            "  --eval-batch N        evaluation batch size (default 1000)\n"
            "  --lr X                learning rate (default: the model file's)\n"
            "  --seed N              seed for initialization and shuffling (default 42)\n"
            "  --threads N           worker threads for CPU backends (default: all cores)\n"
            "  --dataset NAME        fashion-mnist (default), mnist, csv\n"
            "  --data PATH           data directory (mnist, fashion-mnist) or train.csv,test.csv\n"
            "  --train-limit N       use only the first N training images\n"
            "  --test-limit N        use only the first N test images\n"
            "  --steps N             stop after N training steps\n"
            "  --out FILE            results JSON (default cnnbench-MODEL-BACKEND.json)\n"
            "  --save FILE           write the final parameters and optimizer state (safetensors,\n"
            "                        PyTorch state_dict names and layouts)\n"
            "  --load FILE           start from the parameters in FILE (and its optimizer state)\n"
            "  --resume FILE         continue a checkpointed run from the step it reached\n"
            "  --checkpoint FILE     where periodic and on-signal checkpoints go (default: the\n"
            "                        --save file, else cnnbench-MODEL-BACKEND.ckpt.safetensors)\n"
            "  --checkpoint-every N  write a checkpoint every N steps\n"
            "  --dump-logits FILE    write the test images and their logits (safetensors) at the end\n"
            "  --eval-only           no training: evaluate the starting (or --load) parameters\n"
            "  --deterministic       GPU backends: deterministic algorithms only\n"
            "  --tf32                GPU backends: allow TF32 math (looser agreement)\n"
            "  --no-fusion           separate kernels only, never the backend's fused ones\n"
            "  --no-progress         no progress line on stderr\n"
            "  --quiet               only the final summary\n"
            "  --list-backends       each backend and whether it loads here\n"
            "  --list-models         the models in the models directory\n"
            "  --show-model NAME     print a model's layer table and training settings\n"
            "  --version, --help\n",
            cnb_models_dir());
}

static int parse_long(const char *flag, const char *s, long lo, long hi, long *out) {
    return cnb_parse_long_flag("cnnbench", flag, s, lo, hi, out);
}

static int parse_int(const char *flag, const char *s, int lo, int hi, int *out) {
    long v;
    if (parse_long(flag, s, lo, hi, &v) != 0) return -1;
    *out = (int)v;
    return 0;
}

static int list_backends(int threads) {
    printf("backend directory: %s\n", cnb_backend_dir());
    int usable = 0;
    for (int i = 0; i < cnb_known_backend_count; i++) {
        cnb_loaded_backend b;
        cnb_context *ctx;
        char err[CNB_ERR_LEN];
        cnb_config cfg = {.size = sizeof cfg, .threads = threads};
        if (cnb_open_backend(cnb_known_backends[i], &cfg, &b, &ctx, err, sizeof err) == 0) {
            printf("  %-8s loads   %s\n", cnb_known_backends[i], b.api->description);
            cnb_close_backend(&b, ctx);
            usable++;
        } else {
            printf("  %-8s no      %s\n", cnb_known_backends[i], err);
        }
    }
    return usable > 0 ? 0 : 1;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_models(void) {
    const char *dir = cnb_models_dir();
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "cnnbench: %s: cannot list models: %s\n", dir, strerror(errno));
        return 1;
    }
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".cfg") == 0) names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    printf("models in %s:\n", dir);
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX + 300], err[CNB_ERR_LEN];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        cnb_model *m = calloc(1, sizeof *m);
        if (m && cnb_model_load(path, m, NULL, err, sizeof err) == 0)
            printf("  %-10s %8zu params  %-5s lr %-6g batch %-4d %2d epochs  %s\n", m->name,
                   m->n_params, m->optimizer, m->lr, m->batch, m->epochs, m->source);
        else
            printf("  %-10s invalid: %s\n", names[i], m ? err : "out of memory");
        free(m);
        free(names[i]);
    }
    return 0;
}

static int load_model(const char *name, cnb_model *m) {
    char path[PATH_MAX], err[CNB_ERR_LEN];
    if (cnb_model_resolve(name, path, sizeof path, err, sizeof err) != 0 ||
        cnb_model_load(path, m, stderr, err, sizeof err) != 0) {
        fprintf(stderr, "cnnbench: --model: %s\n", err);
        return -1;
    }
    return 0;
}

static void print_settings(const cnb_model *m, const cnb_run_settings *s, FILE *f) {
    fprintf(f, "training: %s lr %g", s->optimizer, s->lr);
    if (strcmp(s->optimizer, "sgd") == 0) fprintf(f, " momentum %g", s->momentum);
    else fprintf(f, " betas (%g, %g) eps %g", s->beta1, s->beta2, s->eps);
    if (s->weight_decay) fprintf(f, " weight decay %g", s->weight_decay);
    fprintf(f, ", batch %d, %d epochs, ", s->batch, s->epochs);
    if (m->normalize) fprintf(f, "normalize (%g, %g)\n", m->norm_mean, m->norm_std);
    else fprintf(f, "no normalization\n");
}

static int show_model(const char *name) {
    cnb_model *m = calloc(1, sizeof *m);
    if (!m || load_model(name, m) != 0) {
        free(m);
        return EXIT_USAGE;
    }
    printf("%s (%s)\n", m->name, m->path);
    if (m->source[0]) printf("source: %s\n", m->source);
    cnb_run_settings s;
    cnb_settings_from_model(m, &s);
    print_settings(m, &s, stdout);
    cnb_model_print(m, m->batch, stdout);
    free(m);
    return 0;
}

/* OpenBLAS honours OPENBLAS_CORETYPE; a user may set it on purpose, so it is never overridden,
 * only reported when it costs speed (DESIGN.md §5). */
static void openblas_note(const cnb_info_list *info, const cnb_machine *mc, FILE *f) {
    const char *core = cnb_info_get(info, "openblas.corename");
    if (!core || !mc->has_avx512f) return;
    const char *avx512_cores[] = {"skylakex", "cooperlake", "sapphirerapids"};
    for (size_t i = 0; i < 3; i++)
        if (strcasecmp(core, avx512_cores[i]) == 0) return;
    const char *env = getenv("OPENBLAS_CORETYPE");
    fprintf(f,
            "note: OpenBLAS runs its %s kernels on this AVX-512 CPU%s%s%s: sgemm runs at about "
            "half the speed the CPU allows; unset OPENBLAS_CORETYPE to let OpenBLAS choose.\n",
            core, env ? " (OPENBLAS_CORETYPE=" : "", env ? env : "", env ? " is set)" : "");
}

static void print_confusion(const cnb_run_result *r, FILE *f) {
    fprintf(f, "confusion matrix (rows: true class, columns: predicted):\n      ");
    for (int j = 0; j < r->classes; j++) fprintf(f, "%6d", j);
    fprintf(f, "\n");
    for (int i = 0; i < r->classes; i++) {
        fprintf(f, "  %2d  ", i);
        for (int j = 0; j < r->classes; j++) fprintf(f, "%6ld", r->confusion[i][j]);
        fprintf(f, "\n");
    }
}

static void on_signal(int sig) { cnb_request_stop(sig); }

typedef struct ckpt_ctx {
    const char *path;
    const cnb_model *m;
    const cnb_run_settings *s;
} ckpt_ctx;

static int periodic_checkpoint(void *user, cnb_trainer *t, char *err, size_t err_len) {
    const ckpt_ctx *k = user;
    return cnb_checkpoint_save_trainer(k->path, t, k->m, k->s->optimizer, k->s->seed, err,
                                       err_len);
}

/* Logits of the first n test images (and the inputs they came from) into a safetensors file;
 * also counts the correct predictions. */
static int dump_logits(const char *path, cnb_trainer *t, const cnb_model *m,
                       const cnb_dataset *test, long *correct, char *err, size_t err_len) {
    int n = test->count;
    size_t in = (size_t)m->in_c * m->in_h * m->in_w;
    float *logits = malloc((size_t)n * m->classes * sizeof(float));
    float *inputs = path ? malloc((size_t)n * in * sizeof(float)) : NULL;
    int rc = -1;
    if (!logits || (path && !inputs)) {
        cnb_errf(err, err_len, "out of host memory for %d logits", n);
    } else if (cnb_trainer_test_logits(t, 0, n, logits, inputs, err, err_len) == 0) {
        *correct = 0;
        for (int i = 0; i < n; i++) {
            const float *row = logits + (size_t)i * m->classes;
            int best = 0;
            for (int j = 1; j < m->classes; j++)
                if (row[j] > row[best]) best = j;
            *correct += best == test->labels[i];
        }
        rc = 0;
        if (path) {
            const char *names[] = {"inputs", "logits"};
            int ranks[] = {4, 2};
            const int64_t shapes[2][4] = {{n, m->in_c, m->in_h, m->in_w}, {n, m->classes}};
            const float *data[] = {inputs, logits};
            rc = cnb_safetensors_write_f32(path, 2, names, ranks, shapes, data, err, err_len);
        }
    }
    free(logits);
    free(inputs);
    return rc;
}

static int train_command(const cli *c, int argc, char **argv) {
    int rc = 1;
    char err[CNB_ERR_LEN];
    cnb_model *m = calloc(1, sizeof *m);
    cnb_run_result *r = calloc(1, sizeof *r);
    cnb_dataset train = {0}, test = {0};
    cnb_loaded_backend lib = {0};
    cnb_context *ctx = NULL;
    cnb_trainer *t = NULL;
    FILE *log = c->quiet ? NULL : stdout;
    if (!m || !r) {
        fprintf(stderr, "cnnbench: out of memory\n");
        goto done;
    }
    if (load_model(c->model, m) != 0) {
        rc = EXIT_USAGE;
        goto done;
    }
    cnb_run_settings s;
    cnb_settings_from_model(m, &s);
    if (c->epochs) s.epochs = c->epochs;
    if (c->batch) s.batch = c->batch;
    if (c->eval_batch) s.eval_batch = c->eval_batch;
    if (c->lr > 0) s.lr = (float)c->lr;
    if (c->have_seed) s.seed = c->seed;
    s.max_steps = c->steps;
    s.no_fusion = c->no_fusion;
    s.progress = c->progress && isatty(STDERR_FILENO);
    s.log = log;
    char ckpt_default[512];
    snprintf(ckpt_default, sizeof ckpt_default, "cnnbench-%s-%s.ckpt.safetensors", m->name,
             c->backend && !strchr(c->backend, '/') ? c->backend : "custom");
    const char *ckpt_path = c->checkpoint ? c->checkpoint : c->save ? c->save : ckpt_default;
    ckpt_ctx kctx = {.path = ckpt_path, .m = m, .s = &s};
    s.checkpoint_every = c->checkpoint_every;
    s.checkpoint = periodic_checkpoint;
    s.checkpoint_user = &kctx;

    cnb_machine mc;
    cnb_machine_probe(&mc);
    int threads = c->threads ? c->threads : (mc.cores > 0 ? mc.cores : 1);
    cnb_config cfg = {.size = sizeof cfg, .threads = threads, .deterministic = c->deterministic,
                      .allow_tf32 = c->tf32};
    if (cnb_open_backend(c->backend, &cfg, &lib, &ctx, err, sizeof err) != 0) {
        fprintf(stderr, "cnnbench: --backend: %s\n", err);
        goto done;
    }
    cnb_info_list info = {0};
    lib.api->info(ctx, cnb_info_collect, &info);
    const char *mismatch = cnb_info_get(&info, "version_mismatch");
    if (mismatch) fprintf(stderr, "warning: %s: %s\n", lib.api->name, mismatch);

    const char *kind = c->dataset ? c->dataset : "fashion-mnist";
    if (cnb_dataset_open(kind, c->data, c->train_limit, c->test_limit, &train, &test, err,
                         sizeof err) != 0) {
        fprintf(stderr, "cnnbench: data: %s\n", err);
        goto done;
    }

    if (log) {
        fprintf(log, "cnnbench %s: model %s (%zu parameters), backend %s (%d threads)\n",
                CNB_VERSION, m->name, m->n_params, lib.api->name, threads);
        fprintf(log, "machine: %s, %d cores / %d threads\n", mc.cpu_model, mc.cores, mc.pus);
        for (int i = 0; i < info.count; i++)
            fprintf(log, "  %s: %s\n", info.key[i], info.value[i]);
        openblas_note(&info, &mc, log);
        fprintf(log, "data: %s, %d training / %d test images (%s)\n", kind, train.count,
                test.count, train.images_path);
        print_settings(m, &s, log);
    }

    if (cnb_trainer_create(lib.api, ctx, m, &train, &test, &s, &t, err, sizeof err) != 0) {
        fprintf(stderr, "cnnbench: %s\n", err);
        goto done;
    }
    const char *from = c->resume ? c->resume : c->load;
    if (from) {
        if (cnb_checkpoint_load_trainer(from, t, m, s.optimizer, c->resume != NULL, err,
                                        sizeof err) != 0) {
            fprintf(stderr, "cnnbench: %s: %s\n", c->resume ? "--resume" : "--load", err);
            rc = EXIT_USAGE;
            goto done;
        }
        if (log) {
            cnb_train_state st;
            cnb_trainer_get_state(t, &st);
            fprintf(log, "%s %s: starting at epoch %d step %ld (%ld steps done)\n",
                    c->resume ? "resumed from" : "loaded", from, st.epoch, st.step_in_epoch + 1,
                    st.global_step);
        }
    }
    if (c->eval_only) {
        long correct = 0;
        if (dump_logits(c->dump_logits, t, m, &test, &correct, err, sizeof err) != 0) {
            fprintf(stderr, "cnnbench: --dump-logits: %s\n", err);
            goto done;
        }
        printf("result: %s on %s: test accuracy %.2f%% on %d images (no training)\n", m->name,
               lib.api->name, 100.0 * correct / test.count, test.count);
        if (c->dump_logits) printf("logits: %s\n", c->dump_logits);
        rc = 0;
        goto done;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int run_rc = cnb_trainer_run(t, r);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);

    char out_default[512];
    snprintf(out_default, sizeof out_default, "cnnbench-%s-%s.json", m->name, lib.api->name);
    const char *out = c->out ? c->out : out_default;
    cnb_run_record rec = {.argc = argc, .argv = argv, .model = m, .settings = &s,
                          .backend_name = lib.api->name, .backend_path = lib.path,
                          .backend_info = &info, .machine = &mc, .dataset_kind = kind,
                          .train = &train, .test = &test, .result = r,
                          .build_type = CNB_BUILD_TYPE, .threads = threads};
    int write_rc = cnb_results_write(out, &rec, err, sizeof err);

    if (r->have_confusion && log) print_confusion(r, log);
    double ips[CNB_MAX_EPOCHS], iips[CNB_MAX_EPOCHS];
    int n_ips = 0, n_iips = 0;
    for (int i = 0; i < r->epochs_done; i++) {
        if (r->epoch[i].train_images_per_s > 0) ips[n_ips++] = r->epoch[i].train_images_per_s;
        if (r->epoch[i].infer_images_per_s > 0) iips[n_iips++] = r->epoch[i].infer_images_per_s;
    }
    cnb_summary ts, is;
    cnb_summarize(ips, n_ips, &ts);
    cnb_summarize(iips, n_iips, &is);
    printf("result: %s on %s: test accuracy %.2f%%, test loss %.4f after %d epoch(s), %ld steps; "
           "train %.0f img/s, infer %.0f img/s (medians over %d epoch(s)); %.1f s\n",
           m->name, lib.api->name, 100 * r->final_test_accuracy, r->final_test_loss,
           r->epochs_done, r->total_steps, ts.median, is.median, n_ips, r->wall_seconds);
    cnb_train_state pos;
    cnb_trainer_get_state(t, &pos);
    if (write_rc == 0) printf("results: %s\n", out);
    else fprintf(stderr, "cnnbench: results not saved after %ld steps: %s\n", pos.global_step, err);

    /* Parameters worth keeping: a finished run's (--save) and an interrupted one's (always, so
     * it can be resumed). A diverged or failed run's parameters are NaN or half-updated. */
    int save_rc = 0;
    const char *save_path = NULL;
    if (r->status == CNB_RUN_INTERRUPTED) save_path = ckpt_path;
    else if ((r->status == CNB_RUN_OK || r->status == CNB_RUN_CHECKPOINT_ERROR) && c->save)
        save_path = c->save;
    char save_err[CNB_ERR_LEN] = "";
    if (save_path) {
        save_rc = cnb_checkpoint_save_trainer(save_path, t, m, s.optimizer, s.seed, save_err,
                                              sizeof save_err);
        if (save_rc == 0) printf("checkpoint: %s (after %ld steps)\n", save_path, pos.global_step);
        else fprintf(stderr, "cnnbench: checkpoint not saved: %s\n", save_err);
    }
    int dump_rc = 0;
    if (c->dump_logits && (r->status == CNB_RUN_OK || r->status == CNB_RUN_INTERRUPTED)) {
        long correct;
        dump_rc = dump_logits(c->dump_logits, t, m, &test, &correct, err, sizeof err);
        if (dump_rc != 0) fprintf(stderr, "cnnbench: --dump-logits: %s\n", err);
    }

    if (run_rc != 0) {
        fprintf(stderr, "cnnbench: stopped: %s%s%s%s%s\n", r->message,
                write_rc == 0 ? "; results so far are in " : "; results could not be saved",
                write_rc == 0 ? out : "",
                save_path && save_rc == 0 ? "; checkpoint in " : "",
                save_path && save_rc == 0 ? save_path : "");
        rc = r->status == CNB_RUN_DIVERGED      ? EXIT_DIVERGED
             : r->status == CNB_RUN_INTERRUPTED ? EXIT_INTERRUPTED
                                                : 1;
    } else {
        rc = write_rc == 0 && save_rc == 0 && dump_rc == 0 ? 0 : 1;
    }
done:
    cnb_trainer_destroy(t);
    if (ctx) cnb_close_backend(&lib, ctx);
    cnb_dataset_free(&train);
    cnb_dataset_free(&test);
    if (r) cnb_run_result_free(r);
    free(r);
    free(m);
    return rc;
}

int main(int argc, char **argv) {
    static const struct {
        const char *verb;
        int (*run)(int, char **);
    } verbs[] = {{"check", cnb_cmd_check}, {"bench", cnb_cmd_bench},
                 {"compare", cnb_cmd_compare}, {"report", cnb_cmd_report}};
    if (argc > 1 && argv[1][0] != '-') {
        for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
            if (strcmp(argv[1], verbs[i].verb) == 0) return verbs[i].run(argc - 1, argv + 1);
        if (strcmp(argv[1], "train") == 0) { argv[1] = argv[0]; argc--; argv++; }
    }
    enum { O_EPOCHS = 256, O_BATCH, O_EVAL_BATCH, O_LR, O_SEED, O_THREADS, O_DATASET, O_DATA,
           O_TRAIN_LIMIT, O_TEST_LIMIT, O_STEPS, O_OUT, O_LIST_BACKENDS, O_LIST_MODELS,
           O_SHOW_MODEL, O_NO_PROGRESS, O_QUIET, O_DETERMINISTIC, O_TF32, O_VERSION,
           O_SAVE, O_LOAD, O_RESUME, O_CHECKPOINT, O_CHECKPOINT_EVERY, O_DUMP_LOGITS,
           O_EVAL_ONLY, O_NO_FUSION };
    static const struct option opts[] = {
        {"backend", required_argument, 0, 'b'},  {"model", required_argument, 0, 'm'},
        {"epochs", required_argument, 0, O_EPOCHS}, {"batch", required_argument, 0, O_BATCH},
        {"eval-batch", required_argument, 0, O_EVAL_BATCH}, {"lr", required_argument, 0, O_LR},
        {"seed", required_argument, 0, O_SEED}, {"threads", required_argument, 0, O_THREADS},
        {"dataset", required_argument, 0, O_DATASET}, {"data", required_argument, 0, O_DATA},
        {"train-limit", required_argument, 0, O_TRAIN_LIMIT},
        {"test-limit", required_argument, 0, O_TEST_LIMIT},
        {"steps", required_argument, 0, O_STEPS}, {"out", required_argument, 0, O_OUT},
        {"list-backends", no_argument, 0, O_LIST_BACKENDS},
        {"list-models", no_argument, 0, O_LIST_MODELS},
        {"show-model", required_argument, 0, O_SHOW_MODEL},
        {"no-progress", no_argument, 0, O_NO_PROGRESS}, {"quiet", no_argument, 0, O_QUIET},
        {"deterministic", no_argument, 0, O_DETERMINISTIC}, {"tf32", no_argument, 0, O_TF32},
        {"no-fusion", no_argument, 0, O_NO_FUSION},
        {"version", no_argument, 0, O_VERSION}, {"help", no_argument, 0, 'h'},
        {"save", required_argument, 0, O_SAVE}, {"load", required_argument, 0, O_LOAD},
        {"resume", required_argument, 0, O_RESUME},
        {"checkpoint", required_argument, 0, O_CHECKPOINT},
        {"checkpoint-every", required_argument, 0, O_CHECKPOINT_EVERY},
        {"dump-logits", required_argument, 0, O_DUMP_LOGITS},
        {"eval-only", no_argument, 0, O_EVAL_ONLY},
        {0, 0, 0, 0}};
    cli c = {.backend = "blas", .model = "simplecnn", .progress = 1};
    int action = 0;
    const char *show = NULL;
    long v;
    opterr = 0;
    for (;;) {
        int optidx = 0;
        int o = getopt_long(argc, argv, ":b:m:h", opts, &optidx);
        if (o == -1) break;
        int bad = 0;
        switch (o) {
        case 'b': c.backend = optarg; break;
        case 'm': c.model = optarg; break;
        case O_EPOCHS: bad = parse_int("--epochs", optarg, 1, CNB_MAX_EPOCHS, &c.epochs); break;
        case O_BATCH: bad = parse_int("--batch", optarg, 1, 1 << 20, &c.batch); break;
        case O_EVAL_BATCH: bad = parse_int("--eval-batch", optarg, 1, 1 << 20, &c.eval_batch); break;
        case O_THREADS: bad = parse_int("--threads", optarg, 1, 4096, &c.threads); break;
        case O_TRAIN_LIMIT: bad = parse_int("--train-limit", optarg, 1, INT_MAX, &c.train_limit); break;
        case O_TEST_LIMIT: bad = parse_int("--test-limit", optarg, 1, INT_MAX, &c.test_limit); break;
        case O_STEPS: bad = parse_long("--steps", optarg, 1, LONG_MAX, &c.steps); break;
        case O_SEED:
            bad = parse_long("--seed", optarg, 0, LONG_MAX, &v);
            c.seed = (unsigned long long)v;
            c.have_seed = 1;
            break;
        case O_LR: {
            char *end;
            errno = 0;
            c.lr = strtod(optarg, &end);
            if (errno || end == optarg || *end || !isfinite(c.lr) || c.lr <= 0 || c.lr > 100) {
                fprintf(stderr, "cnnbench: --lr: '%s' is not a learning rate in (0, 100]\n", optarg);
                bad = -1;
            }
            break;
        }
        case O_DATASET:
            c.dataset = optarg;
            if (strcmp(optarg, "fashion-mnist") && strcmp(optarg, "mnist") && strcmp(optarg, "csv")) {
                fprintf(stderr, "cnnbench: --dataset: unknown data set '%s' (valid: fashion-mnist, mnist, csv)\n", optarg);
                bad = -1;
            }
            break;
        case O_DATA: c.data = optarg; break;
        case O_OUT: c.out = optarg; break;
        case O_SAVE: c.save = optarg; break;
        case O_LOAD: c.load = optarg; break;
        case O_RESUME: c.resume = optarg; break;
        case O_CHECKPOINT: c.checkpoint = optarg; break;
        case O_CHECKPOINT_EVERY:
            bad = parse_long("--checkpoint-every", optarg, 1, LONG_MAX, &c.checkpoint_every);
            break;
        case O_DUMP_LOGITS: c.dump_logits = optarg; break;
        case O_EVAL_ONLY: c.eval_only = 1; break;
        case O_LIST_BACKENDS: action = O_LIST_BACKENDS; break;
        case O_LIST_MODELS: action = O_LIST_MODELS; break;
        case O_SHOW_MODEL: action = O_SHOW_MODEL; show = optarg; break;
        case O_NO_PROGRESS: c.progress = 0; break;
        case O_QUIET: c.quiet = 1; break;
        case O_DETERMINISTIC: c.deterministic = 1; break;
        case O_TF32: c.tf32 = 1; break;
        case O_NO_FUSION: c.no_fusion = 1; break;
        case O_VERSION: printf("cnnbench %s (kernel ABI %u)\n", CNB_VERSION, CNB_ABI_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        case ':':
            fprintf(stderr, "cnnbench: %s needs a value\n", argv[optind - 1]);
            return EXIT_USAGE;
        default:
            fprintf(stderr, "cnnbench: unknown option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return EXIT_USAGE;
        }
        if (bad) return EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "cnnbench: unexpected argument '%s' (see --help)\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (c.load && c.resume) {
        fprintf(stderr, "cnnbench: --load and --resume exclude each other (--resume FILE also "
                        "loads the parameters)\n");
        return EXIT_USAGE;
    }
    if (c.eval_only && c.resume) {
        fprintf(stderr, "cnnbench: --eval-only takes --load, not --resume\n");
        return EXIT_USAGE;
    }
    if (action == O_LIST_BACKENDS) return list_backends(c.threads);
    if (action == O_LIST_MODELS) return list_models();
    if (action == O_SHOW_MODEL) return show_model(show);
    return train_command(&c, argc, argv);
}
