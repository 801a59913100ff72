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
#include "comparison.h"
#include "data.h"
#include "dist_device.h"
#include "dist_report.h"
#include "distributed.h"
#include "flops.h"
#include "loader.h"
#include "machine.h"
#include "model.h"
#include "openblas_core.h"
#include "options.h"
#include "results.h"
#include "train.h"
#include "util.h"

#ifndef CNB_BUILD_TYPE
#define CNB_BUILD_TYPE ""
#endif

enum { EXIT_USAGE = 2, EXIT_DIVERGED = 3, EXIT_INTERRUPTED = 130 };

typedef struct cli {
    const char *backend, *model, *dataset, *data, *out;
    const char *save, *load, *resume, *checkpoint, *dump_logits, *scaling_baseline;
    long checkpoint_every, naive_steps;
    int eval_only;
    int epochs, batch, eval_batch, threads, train_limit, test_limit;
    long steps;
    double lr;
    unsigned long long seed;
    int have_seed, quiet, progress, deterministic, tf32;
    int no_fusion, direct_conv;
    int allow_nonfinite;
} cli;

static void usage(FILE *f) {
    fprintf(f,
            "usage: cnnbench [--backend NAME|PATH] [--model NAME|PATH] [options]\n"
            "\n"
            "Trains a model under one kernel backend and reports accuracy and throughput.\n"
            "\n"
            "  --backend NAME|PATH   naive, blas, onednn, cuda, cudnn, or a backend .so (default blas)\n"
            "  --backend all|LIST    the same training under every backend (or a comma list), their\n"
            "                        agreement with naive, and one comparison table\n"
            "  --naive-steps N       in a comparison, steps naive trains as its timed sample (default %d)\n"
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
            "  --allow-nonfinite     let --load/--resume read NaN or Inf values (fault studies)\n"
            "  --checkpoint FILE     where periodic and on-signal checkpoints go (default: the\n"
            "                        --save file, else cnnbench-MODEL-BACKEND.ckpt.safetensors)\n"
            "  --checkpoint-every N  write a checkpoint every N steps\n"
            "  --dump-logits FILE    write the test images and their logits (safetensors) at the end\n"
            "  --eval-only           no training: evaluate the starting (or --load) parameters\n"
            "  --scaling-baseline FILE  under mpirun: a 1-rank results file of the same run, for\n"
            "                        the speed-up and scaling efficiency\n"
            "  --deterministic       GPU backends: deterministic algorithms only\n"
            "  --tf32                GPU backends: allow TF32 math (looser agreement)\n"
            "  --no-fusion           separate kernels only, never the backend's fused ones\n"
            "  --direct-conv         convolution by direct or GEMM-based algorithms only (no\n"
            "                        Winograd or FFT: exact on integer data, same bits every run)\n"
            "  --no-progress         no progress line on stderr\n"
            "  --quiet               only the final summary\n"
            "  --list-backends       each backend and whether it loads here\n"
            "  --list-models         the models in the models directory\n"
            "  --show-model NAME     print a model's layer table and training settings\n"
            "  --version, --help\n"
            "\n"
            "Under mpirun -np N every rank trains its slice of each global batch and the gradients\n"
            "are summed across ranks (MPI, or NCCL on GPUs); only rank 0 prints and writes.\n"
            "\n"
            "Other commands (each with --help): cnnbench check | bench | ceiling | compare |\n"
            "report | history | dashboard.\n",
            CNB_NAIVE_SAMPLE_STEPS, cnb_models_dir());
}

static int parse_long(const char *flag, const char *s, long lo, long hi, long *out) {
    return cnb_parse_long_flag("cnnbench", flag, s, lo, hi, out);
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
    cnb_model_flops_print(m, stdout);
    free(m);
    return 0;
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
    if (cnb_dist_rank(cnb_dist_world()) != 0) return 0; /* the ranks hold the same parameters */
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

/* The model file's training settings with the command line's overrides. */
static void settings_for(const cli *c, const cnb_model *m, cnb_run_settings *s) {
    cnb_settings_from_model(m, s);
    if (c->epochs) s->epochs = c->epochs;
    if (c->batch) s->batch = c->batch;
    if (c->eval_batch) s->eval_batch = c->eval_batch;
    if (c->lr > 0) s->lr = (float)c->lr;
    if (c->have_seed) s->seed = c->seed;
    s->max_steps = c->steps;
    s->no_fusion = c->no_fusion;
    s->direct_conv = c->direct_conv;
    s->progress = c->progress && isatty(STDERR_FILENO);
}

/* `--backend all|LIST`: flags that only make sense for one backend are refused. */
static int comparison_command(const cli *c, const cnb_model *m, int argc, char **argv) {
    const char *single[] = {c->save, c->load, c->resume, c->checkpoint, c->dump_logits,
                            c->eval_only ? "" : NULL};
    const char *names[] = {"--save", "--load", "--resume", "--checkpoint", "--dump-logits",
                           "--eval-only"};
    for (size_t i = 0; i < sizeof single / sizeof single[0]; i++)
        if (single[i]) {
            fprintf(stderr, "cnnbench: %s works with one backend, not with --backend %s\n",
                    names[i], c->backend);
            return EXIT_USAGE;
        }
    if (cnb_dist_size(cnb_dist_world()) > 1) {
        fprintf(stderr, "cnnbench: --backend %s compares backends in one process; under mpirun "
                        "give one backend\n", c->backend);
        return EXIT_USAGE;
    }
    cnb_run_settings s;
    settings_for(c, m, &s);
    s.checkpoint_every = 0;
    cnb_comparison_request q = {.backends = c->backend, .model = m, .settings = &s,
                                .dataset_kind = c->dataset, .data = c->data,
                                .train_limit = c->train_limit, .test_limit = c->test_limit,
                                .threads = c->threads, .deterministic = c->deterministic,
                                .tf32 = c->tf32, .quiet = c->quiet,
                                .naive_steps = c->naive_steps, .out = c->out, .argc = argc,
                                .argv = argv};
    return cnb_train_comparison(&q);
}

/* Everything one training run holds, so its stages below stay short. */
typedef struct train_run {
    const cli *c;
    int argc;
    char **argv;
    cnb_model *m;
    cnb_run_result *r;
    cnb_run_settings s;
    cnb_dataset train, test;
    cnb_loaded_backend lib;
    cnb_context *ctx;
    cnb_trainer *t;
    cnb_info_list info;
    cnb_machine mc;
    cnb_dist *dist;
    int rank0, threads, joined; /* joined: this rank joined the backend's device communicator */
    FILE *log;
    const char *kind, *ckpt_path;
    char ckpt_default[512], device_library[128], host_why[CNB_ERR_LEN];
    ckpt_ctx kctx;
} train_run;

/* Settings from the model file and the flags; only rank 0 prints and writes. */
static void prepare_settings(train_run *w) {
    const cli *c = w->c;
    settings_for(c, w->m, &w->s);
    w->dist = cnb_dist_world();
    w->rank0 = cnb_dist_rank(w->dist) == 0;
    w->log = c->quiet || !w->rank0 ? NULL : stdout;
    w->s.progress = w->rank0 && c->progress && isatty(STDERR_FILENO);
    w->s.log = w->log;
    w->s.dist = w->dist;
    snprintf(w->ckpt_default, sizeof w->ckpt_default, "cnnbench-%s-%s.ckpt.safetensors",
             w->m->name, c->backend && !strchr(c->backend, '/') ? c->backend : "custom");
    w->ckpt_path = c->checkpoint ? c->checkpoint : c->save ? c->save : w->ckpt_default;
    w->kctx = (ckpt_ctx){.path = w->ckpt_path, .m = w->m, .s = &w->s};
    w->s.checkpoint_every = c->checkpoint_every;
    w->s.checkpoint = periodic_checkpoint;
    w->s.checkpoint_user = &w->kctx;
}

/* The backend (and, under mpirun, its device communicator) and the data; 0 or -1 (printed). */
static int open_backend_and_data(train_run *w) {
    const cli *c = w->c;
    char err[CNB_ERR_LEN];
    cnb_machine_probe(&w->mc);
    w->threads = c->threads ? c->threads
                 : w->dist  ? cnb_dist_default_threads(w->dist, w->mc.cores)
                            : (w->mc.cores > 0 ? w->mc.cores : 1);
    cnb_config cfg = {.size = sizeof cfg, .threads = w->threads, .deterministic = c->deterministic,
                      .allow_tf32 = c->tf32, .device_index = cnb_dist_local_rank(w->dist),
                      .direct_conv = c->direct_conv};
    if (cnb_open_backend(c->backend, &cfg, &w->lib, &w->ctx, err, sizeof err) != 0) {
        fprintf(stderr, "cnnbench: --backend: %s%s\n", err,
                w->dist ? " (under mpirun each rank takes the device numbered by its rank on "
                          "the node: start at most as many ranks per node as it has devices)"
                        : "");
        return -1;
    }
    w->joined = cnb_dist_device_join(w->dist, w->lib.api, w->ctx, w->device_library,
                                     sizeof w->device_library, w->host_why, sizeof w->host_why);
    if (w->joined < 0) {
        fprintf(stderr, "cnnbench: device communicator: %s\n", w->host_why);
        return -1;
    }
    w->s.device_allreduce = w->joined;
    cnb_backend_info(w->lib.api, w->ctx, cnb_info_collect, &w->info);
    const char *mismatch = cnb_info_get(&w->info, "version_mismatch");
    if (mismatch && w->rank0) fprintf(stderr, "warning: %s: %s\n", w->lib.api->name, mismatch);
    w->kind = c->dataset ? c->dataset : "fashion-mnist";
    if (cnb_dataset_open(w->kind, c->data, c->train_limit, c->test_limit, &w->train, &w->test,
                         err, sizeof err) != 0) {
        fprintf(stderr, "cnnbench: data: %s\n", err);
        return -1;
    }
    return 0;
}

static void print_header(const train_run *w) {
    FILE *log = w->log;
    if (!log) return;
    fprintf(log, "cnnbench %s: model %s (%zu parameters), backend %s (%d threads)\n", CNB_VERSION,
            w->m->name, w->m->n_params, w->lib.api->name, w->threads);
    fprintf(log, "machine: %s, %d cores / %d threads\n", w->mc.cpu_model, w->mc.cores,
            w->mc.pus);
    for (int i = 0; i < w->info.count; i++)
        fprintf(log, "  %s: %s\n", w->info.key[i], w->info.value[i]);
    cnb_openblas_note(w->lib.api->name, cnb_info_get(&w->info, "openblas.corename"), log);
    fprintf(log, "data: %s, %d training / %d test images (%s)\n", w->kind, w->train.count,
            w->test.count, w->train.images_path);
    print_settings(w->m, &w->s, log);
    if (w->dist)
        fprintf(log, "data parallel: %d ranks split each global batch of %d; gradients summed "
                "%s%s%s%s\n", cnb_dist_size(w->dist), w->s.batch,
                w->joined ? "on the device by " : "on the host by MPI_Allreduce",
                w->joined ? w->device_library : " (", w->joined ? "" : w->host_why,
                w->joined ? "" : ")");
}

/* --load / --resume into the trainer; 0 or EXIT_USAGE (printed). */
static int load_start(train_run *w) {
    const cli *c = w->c;
    const char *from = c->resume ? c->resume : c->load;
    if (!from) return 0;
    char err[CNB_ERR_LEN];
    if (cnb_checkpoint_load_trainer(from, w->t, w->m, w->s.optimizer, c->resume != NULL,
                                    c->allow_nonfinite, err, sizeof err) != 0) {
        fprintf(stderr, "cnnbench: %s: %s\n", c->resume ? "--resume" : "--load", err);
        return EXIT_USAGE;
    }
    if (w->log) {
        cnb_train_state st;
        cnb_trainer_get_state(w->t, &st);
        fprintf(w->log, "%s %s: starting at epoch %d step %ld (%ld steps done)\n",
                c->resume ? "resumed from" : "loaded", from, st.epoch, st.step_in_epoch + 1,
                st.global_step);
    }
    return 0;
}

/* --eval-only: the starting parameters on the test set; the exit code. */
static int evaluate_only(train_run *w) {
    if (!w->rank0) return 0;
    long correct = 0;
    char err[CNB_ERR_LEN];
    if (dump_logits(w->c->dump_logits, w->t, w->m, &w->test, &correct, err, sizeof err) != 0) {
        fprintf(stderr, "cnnbench: --dump-logits: %s\n", err);
        return 1;
    }
    printf("result: %s on %s: test accuracy %.2f%% on %d images (no training)\n", w->m->name,
           w->lib.api->name, 100.0 * correct / w->test.count, w->test.count);
    if (w->c->dump_logits) printf("logits: %s\n", w->c->dump_logits);
    return 0;
}

static int exit_code_of(const cnb_run_result *r) {
    return r->status == CNB_RUN_DIVERGED      ? EXIT_DIVERGED
           : r->status == CNB_RUN_INTERRUPTED ? EXIT_INTERRUPTED
                                              : 1;
}

static void print_result_line(const train_run *w) {
    const cnb_run_result *r = w->r;
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
           w->m->name, w->lib.api->name, 100 * r->final_test_accuracy, r->final_test_loss,
           r->epochs_done, r->total_steps, ts.median, is.median, n_ips, r->wall_seconds);
}

/* Parameters worth keeping: a finished run's (--save) and an interrupted one's (always, so it
 * can be resumed). A diverged or failed run's parameters are NaN or half-updated. Returns the
 * path written, or NULL (*rc = 1 when the save failed). */
static const char *save_after_run(const train_run *w, long steps, int *rc) {
    const cnb_run_result *r = w->r;
    const char *save_path = NULL;
    if (r->status == CNB_RUN_INTERRUPTED) save_path = w->ckpt_path;
    else if ((r->status == CNB_RUN_OK || r->status == CNB_RUN_CHECKPOINT_ERROR) && w->c->save)
        save_path = w->c->save;
    *rc = 0;
    if (!save_path) return NULL;
    char err[CNB_ERR_LEN];
    if (cnb_checkpoint_save_trainer(save_path, w->t, w->m, w->s.optimizer, w->s.seed, err,
                                    sizeof err) != 0) {
        fprintf(stderr, "cnnbench: checkpoint not saved: %s\n", err);
        *rc = 1;
        return NULL;
    }
    printf("checkpoint: %s (after %ld steps)\n", save_path, steps);
    return save_path;
}

/* After training (rank 0): the results file, the summary, the checkpoint, the logits; the exit
 * code. dist_json (data-parallel runs) is taken over. */
static int finish_run(train_run *w, int run_rc, cJSON *dist_json) {
    char err[CNB_ERR_LEN], out_default[512];
    snprintf(out_default, sizeof out_default, "cnnbench-%s-%s.json", w->m->name,
             w->lib.api->name);
    const char *out = w->c->out ? w->c->out : out_default;
    cnb_info_refresh(&w->info, w->lib.api, w->ctx);
    cnb_run_record rec = {.argc = w->argc, .argv = w->argv, .model = w->m, .settings = &w->s,
                          .backend_name = w->lib.api->name, .backend_path = w->lib.path,
                          .backend_info = &w->info, .machine = &w->mc, .dataset_kind = w->kind,
                          .train = &w->train, .test = &w->test, .result = w->r,
                          .build_type = CNB_BUILD_TYPE, .threads = w->threads,
                          .distributed = dist_json};
    int write_rc = cnb_results_write(out, &rec, err, sizeof err);
    cJSON_Delete(dist_json);
    if (w->r->have_confusion && w->log) print_confusion(w->r, w->log);
    print_result_line(w);
    cnb_train_state pos;
    cnb_trainer_get_state(w->t, &pos);
    if (write_rc == 0) printf("results: %s\n", out);
    else fprintf(stderr, "cnnbench: results not saved after %ld steps: %s\n", pos.global_step, err);
    int save_rc, dump_rc = 0;
    const char *saved = save_after_run(w, pos.global_step, &save_rc);
    const cnb_run_result *r = w->r;
    if (w->c->dump_logits && (r->status == CNB_RUN_OK || r->status == CNB_RUN_INTERRUPTED)) {
        long correct;
        dump_rc = dump_logits(w->c->dump_logits, w->t, w->m, &w->test, &correct, err, sizeof err);
        if (dump_rc != 0) fprintf(stderr, "cnnbench: --dump-logits: %s\n", err);
    }
    if (run_rc == 0) return write_rc == 0 && save_rc == 0 && dump_rc == 0 ? 0 : 1;
    fprintf(stderr, "cnnbench: stopped: %s%s%s%s%s\n", r->message,
            write_rc == 0 ? "; results so far are in " : "; results could not be saved",
            write_rc == 0 ? out : "", saved ? "; checkpoint in " : "", saved ? saved : "");
    return exit_code_of(r);
}

/* Train, then report: every rank trains; under mpirun every rank reports its share and rank 0
 * writes. Returns the exit code. */
static int run_and_report(train_run *w) {
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int run_rc = cnb_trainer_run(w->t, w->r);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    cJSON *dist_json = NULL;
    if (w->dist) {
        /* Collective: every rank reports its share before rank 0 writes. */
        char err[CNB_ERR_LEN];
        dist_json = cnb_dist_run_json(w->dist, w->t, w->m, &w->s, w->r, w->threads,
                                      w->joined ? w->device_library : NULL,
                                      w->c->scaling_baseline, err, sizeof err);
        if (!dist_json) {
            fprintf(stderr, "cnnbench: %s\n", err);
            return 1;
        }
        if (w->log) cnb_dist_print(w->log, dist_json);
    }
    if (!w->rank0) {
        cJSON_Delete(dist_json);
        return run_rc == 0 ? 0 : exit_code_of(w->r);
    }
    return finish_run(w, run_rc, dist_json);
}

static int train_command(const cli *c, int argc, char **argv) {
    int rc = 1;
    train_run *w = calloc(1, sizeof *w);
    if (!w) {
        fprintf(stderr, "cnnbench: out of memory\n");
        return 1;
    }
    *w = (train_run){.c = c, .argc = argc, .argv = argv, .m = calloc(1, sizeof *w->m),
                     .r = calloc(1, sizeof *w->r)};
    char err[CNB_ERR_LEN];
    if (!w->m || !w->r) {
        fprintf(stderr, "cnnbench: out of memory\n");
    } else if (load_model(c->model, w->m) != 0) {
        rc = EXIT_USAGE;
    } else if (cnb_is_backend_list(c->backend)) {
        rc = comparison_command(c, w->m, argc, argv);
    } else {
        prepare_settings(w);
        if (open_backend_and_data(w) == 0) {
            print_header(w);
            if (cnb_trainer_create(w->lib.api, w->ctx, w->m, &w->train, &w->test, &w->s, &w->t,
                                   err, sizeof err) != 0)
                fprintf(stderr, "cnnbench: %s\n", err);
            else if ((rc = load_start(w)) == 0)
                rc = c->eval_only ? evaluate_only(w) : run_and_report(w);
        }
    }
    /* A failure on one rank leaves the others waiting in a collective: stop them all. */
    if (rc == 1) cnb_dist_abort(cnb_dist_world(), rc);
    cnb_trainer_destroy(w->t);
    if (w->joined > 0) cnb_dist_device_leave(w->lib.api, w->ctx);
    if (w->ctx) cnb_close_backend(&w->lib, w->ctx);
    cnb_dataset_free(&w->train);
    cnb_dataset_free(&w->test);
    if (w->r) cnb_run_result_free(w->r);
    free(w->r);
    free(w->m);
    free(w);
    return rc;
}

/* The training verb's own flags (the shared ones are in options.c). */
enum { O_EPOCHS = 256, O_EVAL_BATCH, O_LR, O_STEPS, O_LIST_BACKENDS, O_LIST_MODELS, O_SHOW_MODEL,
       O_NO_PROGRESS, O_DETERMINISTIC, O_TF32, O_VERSION, O_SAVE, O_LOAD, O_RESUME, O_CHECKPOINT,
       O_CHECKPOINT_EVERY, O_DUMP_LOGITS, O_EVAL_ONLY, O_NAIVE_STEPS, O_SCALING_BASELINE,
       O_ALLOW_NONFINITE, O_NO_FUSION, O_DIRECT_CONV };

static const struct option train_flags[] = {
    {"epochs", required_argument, 0, O_EPOCHS}, {"eval-batch", required_argument, 0, O_EVAL_BATCH},
    {"lr", required_argument, 0, O_LR}, {"steps", required_argument, 0, O_STEPS},
    {"list-backends", no_argument, 0, O_LIST_BACKENDS},
    {"list-models", no_argument, 0, O_LIST_MODELS},
    {"show-model", required_argument, 0, O_SHOW_MODEL},
    {"no-progress", no_argument, 0, O_NO_PROGRESS},
    {"deterministic", no_argument, 0, O_DETERMINISTIC}, {"tf32", no_argument, 0, O_TF32},
    {"version", no_argument, 0, O_VERSION}, {"save", required_argument, 0, O_SAVE},
    {"load", required_argument, 0, O_LOAD}, {"resume", required_argument, 0, O_RESUME},
    {"checkpoint", required_argument, 0, O_CHECKPOINT},
    {"checkpoint-every", required_argument, 0, O_CHECKPOINT_EVERY},
    {"dump-logits", required_argument, 0, O_DUMP_LOGITS},
    {"eval-only", no_argument, 0, O_EVAL_ONLY},
    {"naive-steps", required_argument, 0, O_NAIVE_STEPS},
    {"scaling-baseline", required_argument, 0, O_SCALING_BASELINE},
    {"allow-nonfinite", no_argument, 0, O_ALLOW_NONFINITE},
    {"no-fusion", no_argument, 0, O_NO_FUSION}, {"direct-conv", no_argument, 0, O_DIRECT_CONV},
    {0, 0, 0, 0}};

typedef struct train_parse {
    cli *c;
    int action;
    const char *show;
} train_parse;

static int on_train_flag(void *user, int id, const char *arg) {
    train_parse *p = user;
    cli *c = p->c;
    long v;
    int bad = 0;
    switch (id) {
    case O_EPOCHS:
        bad = parse_long("--epochs", arg, 1, CNB_MAX_EPOCHS, &v);
        c->epochs = (int)v;
        break;
    case O_EVAL_BATCH:
        bad = parse_long("--eval-batch", arg, 1, CNB_OPT_MAX_BATCH, &v);
        c->eval_batch = (int)v;
        break;
    case O_STEPS: bad = parse_long("--steps", arg, 1, LONG_MAX, &c->steps); break;
    case O_LR: bad = cnb_opt_double("cnnbench", "--lr", arg, 1e-12, 100, &c->lr); break;
    case O_SAVE: c->save = arg; break;
    case O_LOAD: c->load = arg; break;
    case O_RESUME: c->resume = arg; break;
    case O_CHECKPOINT: c->checkpoint = arg; break;
    case O_CHECKPOINT_EVERY:
        bad = parse_long("--checkpoint-every", arg, 1, LONG_MAX, &c->checkpoint_every);
        break;
    case O_DUMP_LOGITS: c->dump_logits = arg; break;
    case O_EVAL_ONLY: c->eval_only = 1; break;
    case O_SCALING_BASELINE: c->scaling_baseline = arg; break;
    case O_ALLOW_NONFINITE: c->allow_nonfinite = 1; break;
    case O_NO_FUSION: c->no_fusion = 1; break;
    case O_DIRECT_CONV: c->direct_conv = 1; break;
    case O_NAIVE_STEPS: bad = parse_long("--naive-steps", arg, 1, 100000, &c->naive_steps); break;
    case O_LIST_BACKENDS: case O_LIST_MODELS: case O_VERSION: p->action = id; break;
    case O_SHOW_MODEL: p->action = id; p->show = arg; break;
    case O_NO_PROGRESS: c->progress = 0; break;
    case O_DETERMINISTIC: c->deterministic = 1; break;
    case O_TF32: c->tf32 = 1; break;
    default: return -1;
    }
    return bad;
}

/* The shared flags into the training verb's settings; 0 or -1 (printed). */
static int take_common(const cnb_common_opts *co, cli *c) {
    if (cnb_opt_single("cnnbench", "--model", co->n_models) != 0 ||
        cnb_opt_single("cnnbench", "--batch", co->n_batches) != 0)
        return -1;
    if (co->backend_arg) c->backend = co->backend_arg;
    if (co->model_arg) c->model = co->model_arg;
    if (co->n_batches) c->batch = co->batches[0];
    c->seed = co->seed;
    c->have_seed = co->have_seed;
    c->threads = co->threads;
    c->dataset = co->dataset;
    c->data = co->data;
    c->train_limit = co->train_limit;
    c->test_limit = co->test_limit;
    c->out = co->out;
    c->quiet = co->quiet;
    return 0;
}

static int run_command_line(int argc, char **argv) {
    static const struct {
        const char *verb;
        int (*run)(int, char **);
    } verbs[] = {{"check", cnb_cmd_check}, {"bench", cnb_cmd_bench},
                 {"ceiling", cnb_cmd_ceiling}, {"compare", cnb_cmd_compare}, {"report", cnb_cmd_report},
                 {"history", cnb_cmd_history}, {"dashboard", cnb_cmd_dashboard}};
    if (argc > 1 && argv[1][0] != '-') {
        for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
            if (strcmp(argv[1], verbs[i].verb) == 0) return verbs[i].run(argc - 1, argv + 1);
        if (strcmp(argv[1], "train") == 0) { argv[1] = argv[0]; argc--; argv++; }
    }
    cli c = {.backend = "blas", .model = "simplecnn", .progress = 1};
    train_parse tp = {.c = &c};
    cnb_common_opts co;
    int prc = cnb_parse_options("cnnbench", argc, argv,
                                CNB_OPT_BACKENDS | CNB_OPT_MODELS | CNB_OPT_BATCH | CNB_OPT_SEED |
                                    CNB_OPT_THREADS | CNB_OPT_DATA | CNB_OPT_TRAIN_LIMIT |
                                    CNB_OPT_TEST_LIMIT | CNB_OPT_OUT |
                                    CNB_OPT_QUIET,
                                train_flags, on_train_flag, &tp, usage, &co, NULL);
    if (prc != 0) return prc > 0 ? 0 : EXIT_USAGE;
    if (take_common(&co, &c) != 0) return EXIT_USAGE;
    if (tp.action == O_VERSION) {
        printf("cnnbench %s (kernel ABI %u)\n", CNB_VERSION, CNB_ABI_VERSION);
        return 0;
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
    if (tp.action == O_LIST_BACKENDS) return list_backends(c.threads);
    if (tp.action == O_LIST_MODELS) return list_models();
    if (tp.action == O_SHOW_MODEL) return show_model(tp.show);
    return train_command(&c, argc, argv);
}

/* Under mpirun every rank runs this program; MPI starts only then (a plain run never touches
 * it), and only rank 0 prints to stdout. */
int main(int argc, char **argv) {
    char err[CNB_ERR_LEN];
    cnb_dist *dist;
    if (cnb_dist_init(&argc, &argv, &dist, err, sizeof err) != 0) {
        fprintf(stderr, "cnnbench: %s\n", err);
        return 1;
    }
    if (cnb_dist_rank(dist) != 0 && !freopen("/dev/null", "w", stdout)) {
        fprintf(stderr, "cnnbench: rank %d: cannot silence stdout\n", cnb_dist_rank(dist));
        cnb_dist_abort(dist, 1);
    }
    int rc = run_command_line(argc, argv);
    cnb_dist_finalize(dist);
    return rc;
}
