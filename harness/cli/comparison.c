/* comparison.c — `cnnbench --backend all|LIST --model M`: the same training under each backend,
 * agreement with naive through the check engine, and one table (see comparison.h). */
#define _GNU_SOURCE
#include "comparison.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "data.h"
#include "loader.h"
#include "machine.h"
#include "openblas_core.h"
#include "results.h"
#include "runctx.h"
#include "util.h"

enum { EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_DIVERGED = 3, EXIT_INTERRUPTED = 130 };

typedef enum row_state {
    ROW_SKIPPED = 0, /* cannot load or start here: the reason is in why */
    ROW_RAN,         /* trained with the run's settings */
    ROW_SAMPLE,      /* naive: a timed sample of the first steps */
    ROW_STOPPED      /* started, then failed, diverged or was interrupted: r says why */
} row_state;

typedef struct cmp_row {
    const char *name;
    char why[CNB_ERR_LEN];
    int device_kind;
    row_state state;
    cnb_run_result *r;
    cnb_summary train, infer;          /* per-step and per-evaluation-batch images/s */
    cJSON *run;                        /* the single-run JSON */
    const char *agreement;             /* PASSED / FAILED / SKIPPED */
    char agreement_note[512];
} cmp_row;

typedef struct cmp_state {
    const cnb_comparison_request *req;
    cmp_row rows[CNB_MAX_LIST];
    int n;
    cnb_machine mc;
    int threads;
    char out[1024], check_out[1100];
    cnb_dataset train, test;
} cmp_state;

int cnb_is_backend_list(const char *value) {
    return value && (strcmp(value, "all") == 0 || strchr(value, ',') != NULL);
}

static void on_signal(int sig) { cnb_request_stop(sig); }

/* The backends named: every known one for "all", else the comma list. -1 on a bad list. */
static int expand_backends(cmp_state *st, char *buf, size_t len) {
    char *items[CNB_MAX_LIST];
    int n;
    if (strcmp(st->req->backends, "all") == 0) {
        n = cnb_known_backend_count < CNB_MAX_LIST ? cnb_known_backend_count : CNB_MAX_LIST;
        for (int i = 0; i < n; i++) items[i] = (char *)cnb_known_backends[i];
    } else {
        snprintf(buf, len, "%s", st->req->backends);
        n = cnb_split_list(buf, items, CNB_MAX_LIST);
        if (n < 0) {
            fprintf(stderr, "cnnbench: --backend: '%s' is not a comma list of backends\n",
                    st->req->backends);
            return -1;
        }
    }
    for (int i = 0; i < n; i++) {
        int known = strchr(items[i], '/') != NULL;
        for (int k = 0; k < cnb_known_backend_count; k++)
            known |= strcmp(items[i], cnb_known_backends[k]) == 0;
        if (!known) {
            fprintf(stderr, "cnnbench: --backend: unknown backend '%s' (valid: all, or a comma "
                            "list of naive, blas, onednn, cuda, cudnn or paths to backend .so "
                            "files)\n", items[i]);
            return -1;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(items[i], items[j]) == 0) {
                fprintf(stderr, "cnnbench: --backend: '%s' is listed twice\n", items[i]);
                return -1;
            }
        st->rows[i] = (cmp_row){.name = items[i], .agreement = "SKIPPED"};
    }
    st->n = n;
    return 0;
}

static int is_naive(const cmp_row *row) { return strcmp(row->name, "naive") == 0; }

/* ---- agreement: the check engine on this model's layer shapes and first training steps ---- */

/* The check verb's report for one backend: counts and the training agreement's status. */
static void read_agreement(cmp_state *st, const cJSON *report) {
    const cJSON *backends = cJSON_GetObjectItemCaseSensitive(report, "backends");
    const cJSON *checks = cJSON_GetObjectItemCaseSensitive(report, "checks");
    for (int i = 0; i < st->n; i++) {
        cmp_row *row = &st->rows[i];
        if (row->state == ROW_SKIPPED) continue;
        const cJSON *b;
        const cJSON *counts = NULL;
        cJSON_ArrayForEach(b, backends) {
            if (strcmp(cnb_json_str(b, "name", ""), row->name) == 0)
                counts = cJSON_GetObjectItemCaseSensitive(b, "counts");
        }
        const char *training = "missing";
        const cJSON *c;
        cJSON_ArrayForEach(c, checks) {
            if (strcmp(cnb_json_str(c, "backend", ""), row->name) == 0 &&
                strcmp(cnb_json_str(c, "family", ""), "training") == 0)
                training = cnb_json_str(c, "status", "missing");
        }
        int passed = cnb_json_int(counts, "PASSED", 0), failed = cnb_json_int(counts, "FAILED", 0);
        int mistrusted = cnb_json_int(counts, "MISTRUSTED", 0);
        if (!counts) {
            row->agreement = "SKIPPED";
            snprintf(row->agreement_note, sizeof row->agreement_note, "not in the check report");
            continue;
        }
        row->agreement = failed == 0 && passed > 0 && strcmp(training, "PASSED") == 0 ? "PASSED"
                                                                                     : "FAILED";
        snprintf(row->agreement_note, sizeof row->agreement_note,
                 "%d kernel and training checks passed, %d failed, %d mistrusted; training "
                 "steps %s",
                 passed, failed, mistrusted, training);
    }
}

static int run_agreement(cmp_state *st) {
    const cnb_comparison_request *q = st->req;
    char list[4096] = "naive";
    for (int i = 0; i < st->n; i++) {
        if (st->rows[i].state == ROW_SKIPPED || is_naive(&st->rows[i])) continue;
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, ",%s", st->rows[i].name);
    }
    char seed[32], threads[16];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)q->settings->seed);
    snprintf(threads, sizeof threads, "%d", st->threads);
    char *argv[24];
    int argc = 0;
    argv[argc++] = "check";
    argv[argc++] = "--backends";
    argv[argc++] = list;
    argv[argc++] = "--model";
    argv[argc++] = (char *)q->model->path;
    argv[argc++] = "--seed";
    argv[argc++] = seed;
    argv[argc++] = "--threads";
    argv[argc++] = threads;
    argv[argc++] = "--out";
    argv[argc++] = st->check_out;
    argv[argc++] = "--quiet";
    if (q->dataset_kind) {
        argv[argc++] = "--dataset";
        argv[argc++] = (char *)q->dataset_kind;
    }
    if (q->data) {
        argv[argc++] = "--data";
        argv[argc++] = (char *)q->data;
    }
    if (q->deterministic) argv[argc++] = "--deterministic";
    if (q->tf32) argv[argc++] = "--tf32";
    if (q->settings->direct_conv) argv[argc++] = "--direct-conv";
    argv[argc] = NULL;
    printf("\n== agreement with naive: %s's layer shapes and first training steps ==\n",
           q->model->name);
    fflush(stdout);
    int rc = cnb_cmd_check(argc, argv);
    char err[CNB_ERR_LEN];
    cJSON *report = cnb_read_json(st->check_out, err, sizeof err);
    if (!report) {
        for (int i = 0; i < st->n; i++)
            if (st->rows[i].state != ROW_SKIPPED) {
                st->rows[i].agreement = "FAILED";
                snprintf(st->rows[i].agreement_note, sizeof st->rows[i].agreement_note,
                         "the check did not finish (exit %d): %.400s", rc, err);
            }
        return -1;
    }
    read_agreement(st, report);
    cJSON_Delete(report);
    return 0;
}

/* ---- training under each backend ---- */

static void summarize_row(cmp_row *row) {
    const cnb_run_result *r = row->r;
    cnb_summarize(r->step_images_per_s, (int)r->total_steps, &row->train);
    cnb_summarize(r->eval_images_per_s, (int)r->eval_batches, &row->infer);
    if (r->total_steps < 1) row->train = (cnb_summary){0};
    if (r->eval_batches < 1) row->infer = (cnb_summary){0};
}

static void train_row(cmp_state *st, cmp_row *row) {
    const cnb_comparison_request *q = st->req;
    cnb_config cfg = {.size = sizeof cfg, .threads = st->threads,
                      .deterministic = q->deterministic, .allow_tf32 = q->tf32,
                      .direct_conv = q->settings->direct_conv};
    cnb_loaded_backend lib = {0};
    cnb_context *ctx = NULL;
    cnb_trainer *t = NULL;
    char err[CNB_ERR_LEN];
    int opened = cnb_open_backend(row->name, &cfg, &lib, &ctx, row->why, sizeof row->why);
    row->device_kind = lib.device_kind;
    if (opened != 0) {
        printf("\n== %s: SKIPPED: %s ==\n", row->name, row->why);
        return;
    }
    cnb_info_list info = {0};
    cnb_backend_info(lib.api, ctx, cnb_info_collect, &info);
    cnb_run_settings s = *q->settings;
    s.log = q->quiet ? NULL : stdout;
    cnb_dataset test_view = st->test;
    row->state = ROW_RAN;
    if (is_naive(row)) {
        long steps = q->naive_steps ? q->naive_steps : CNB_NAIVE_SAMPLE_STEPS;
        if (!s.max_steps || s.max_steps > steps) s.max_steps = steps;
        if (test_view.count > CNB_NAIVE_SAMPLE_TEST) test_view.count = CNB_NAIVE_SAMPLE_TEST;
        row->state = ROW_SAMPLE;
    }
    printf("\n== %s: %s ==\n", lib.api->name,
           row->state == ROW_SAMPLE ? "a timed sample (the reference is too slow for whole epochs)"
                                    : "training");
    const char *mismatch = cnb_info_get(&info, "version_mismatch");
    if (mismatch) fprintf(stderr, "warning: %s: %s\n", lib.api->name, mismatch);
    if (!q->quiet) cnb_openblas_note(lib.api->name, cnb_info_get(&info, "openblas.corename"), stdout);
    fflush(stdout);
    row->r = calloc(1, sizeof *row->r);
    if (!row->r) {
        snprintf(row->why, sizeof row->why, "out of host memory");
        row->state = ROW_STOPPED;
    } else if (cnb_trainer_create(lib.api, ctx, q->model, &st->train, &test_view, &s, &t, err,
                                  sizeof err) != 0) {
        snprintf(row->why, sizeof row->why, "%s", err);
        row->state = ROW_STOPPED;
    } else {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        if (cnb_trainer_run(t, row->r) != 0) {
            row->state = ROW_STOPPED;
            snprintf(row->why, sizeof row->why, "%.900s", row->r->message);
        }
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        summarize_row(row);
        cnb_info_refresh(&info, lib.api, ctx);
        cnb_run_record rec = {.argc = q->argc, .argv = q->argv, .model = q->model, .settings = &s,
                              .backend_name = lib.api->name, .backend_path = lib.path,
                              .backend_info = &info, .machine = &st->mc,
                              .dataset_kind = q->dataset_kind ? q->dataset_kind : "fashion-mnist",
                              .train = &st->train, .test = &test_view, .result = row->r,
                              .build_type = cnb_build_description(), .threads = st->threads};
        row->run = cnb_results_json(&rec);
    }
    if (row->state == ROW_STOPPED) printf("%s: stopped: %s\n", row->name, row->why);
    cnb_trainer_destroy(t);
    cnb_close_backend(&lib, ctx);
}

/* ---- the table and the results file ---- */

/* The fastest CPU (gpu = 0) or GPU (gpu = 1) backend that trained with the run's settings. */
static const cmp_row *best_row(const cmp_state *st, int gpu) {
    const cmp_row *best = NULL;
    for (int i = 0; i < st->n; i++) {
        const cmp_row *r = &st->rows[i];
        if (r->state != ROW_RAN || (r->device_kind == CNB_DEVICE_GPU) != gpu || r->train.n < 1)
            continue;
        if (!best || r->train.median > best->train.median) best = r;
    }
    return best;
}

static const cmp_row *naive_row(const cmp_state *st) {
    for (int i = 0; i < st->n; i++)
        if (is_naive(&st->rows[i]) && st->rows[i].train.n > 0) return &st->rows[i];
    return NULL;
}

static double ratio(double a, double b) { return b > 0 && a > 0 ? a / b : 0.0; }

static const char *state_name(row_state s) {
    static const char *const names[] = {"skipped", "trained", "sample", "stopped"};
    return names[s];
}

/* <what>_images_per_s (median), its MAD and how many were timed; null when none were. */
static void add_speed(cJSON *o, const char *what, const cnb_summary *sp, const char *timed_key) {
    char key[64];
    snprintf(key, sizeof key, "%s_images_per_s", what);
    if (sp->n <= 0) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    cJSON_AddNumberToObject(o, key, sp->median);
    snprintf(key, sizeof key, "%s_images_per_s_mad", what);
    cJSON_AddNumberToObject(o, key, sp->mad);
    cJSON_AddNumberToObject(o, timed_key, sp->n);
}

static cJSON *row_json(const cmp_state *st, const cmp_row *row) {
    const cmp_row *naive = naive_row(st), *cpu = best_row(st, 0);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "backend", row->name);
    cJSON_AddStringToObject(o, "device", row->device_kind == CNB_DEVICE_GPU   ? "gpu"
                                         : row->device_kind == CNB_DEVICE_CPU ? "cpu"
                                                                              : "unknown");
    cJSON_AddStringToObject(o, "run", state_name(row->state));
    if (row->state == ROW_SKIPPED || row->state == ROW_STOPPED)
        cJSON_AddStringToObject(o, "reason", row->why);
    int full = row->state == ROW_RAN && row->r && row->r->have_confusion;
    if (full) {
        cJSON_AddNumberToObject(o, "test_accuracy", row->r->final_test_accuracy);
        cJSON_AddNumberToObject(o, "test_loss", row->r->final_test_loss);
    } else {
        cJSON_AddNullToObject(o, "test_accuracy");
        cJSON_AddNullToObject(o, "test_loss");
    }
    add_speed(o, "train", &row->train, "train_steps_timed");
    add_speed(o, "infer", &row->infer, "infer_batches_timed");
    double vs_naive = naive ? ratio(row->train.median, naive->train.median) : 0.0;
    double vs_cpu = cpu ? ratio(row->train.median, cpu->train.median) : 0.0;
    if (vs_naive > 0) cJSON_AddNumberToObject(o, "speedup_vs_naive", vs_naive);
    else cJSON_AddNullToObject(o, "speedup_vs_naive");
    if (vs_cpu > 0) cJSON_AddNumberToObject(o, "ratio_to_best_cpu", vs_cpu);
    else cJSON_AddNullToObject(o, "ratio_to_best_cpu");
    cJSON_AddStringToObject(o, "agreement", row->agreement);
    if (row->agreement_note[0]) cJSON_AddStringToObject(o, "agreement_detail", row->agreement_note);
    else if (row->state == ROW_SKIPPED) cJSON_AddStringToObject(o, "agreement_detail", row->why);
    return o;
}

static int write_results(const cmp_state *st, const char *status) {
    const cnb_comparison_request *q = st->req;
    cJSON *root = cnb_context_json("comparison", q->argc > 0 ? q->argc - 1 : 0, q->argv + 1,
                                   q->settings->seed, st->threads, &st->mc);
    cJSON_AddStringToObject(root, "status", status);
    cJSON_AddStringToObject(root, "model_name", q->model->name);
    cJSON_AddStringToObject(root, "agreement_report", st->check_out);
    cJSON *notes = cJSON_AddObjectToObject(root, "notes");
    cJSON_AddStringToObject(notes, "throughput",
                            "medians over training steps and evaluation batches, MAD as spread; "
                            "ratios from this one run");
    char naive_note[256];
    snprintf(naive_note, sizeof naive_note,
             "naive trains a timed sample of %ld steps, evaluated on %d test images; its accuracy "
             "is not reported",
             q->naive_steps ? q->naive_steps : (long)CNB_NAIVE_SAMPLE_STEPS, CNB_NAIVE_SAMPLE_TEST);
    cJSON_AddStringToObject(notes, "naive", naive_note);
    cJSON *runs = cJSON_AddArrayToObject(root, "runs");
    cJSON *table = cJSON_AddArrayToObject(root, "comparison");
    for (int i = 0; i < st->n; i++) {
        if (st->rows[i].run) cJSON_AddItemReferenceToArray(runs, st->rows[i].run);
        cJSON_AddItemToArray(table, row_json(st, &st->rows[i]));
    }
    const cmp_row *cpu = best_row(st, 0), *gpu = best_row(st, 1);
    if (cpu && gpu) {
        cJSON *cg = cJSON_AddObjectToObject(root, "cpu_gpu");
        cJSON_AddStringToObject(cg, "best_cpu", cpu->name);
        cJSON_AddStringToObject(cg, "best_gpu", gpu->name);
        cJSON_AddNumberToObject(cg, "train_ratio", ratio(gpu->train.median, cpu->train.median));
        cJSON_AddNumberToObject(cg, "infer_ratio", ratio(gpu->infer.median, cpu->infer.median));
    } else {
        cJSON_AddNullToObject(root, "cpu_gpu");
    }
    char err[CNB_ERR_LEN];
    int rc = cnb_write_json(st->out, root, err, sizeof err);
    if (rc != 0) fprintf(stderr, "cnnbench: results not saved: %s\n", err);
    cJSON_Delete(root);
    return rc;
}

static void fmt_speed(char *buf, size_t len, const cnb_summary *s) {
    if (s->n < 1) snprintf(buf, len, "-");
    else snprintf(buf, len, "%.0f ± %.0f", s->median, s->mad);
}

static void fmt_ratio(char *buf, size_t len, double r) {
    if (r > 0) snprintf(buf, len, "%.2fx", r);
    else snprintf(buf, len, "-");
}

static void print_table(const cmp_state *st) {
    const cmp_row *naive = naive_row(st), *cpu = best_row(st, 0), *gpu = best_row(st, 1);
    printf("\n== %s: %d backend(s) from the same initial weights and batches ==\n",
           st->req->model->name, st->n);
    printf("%-8s %-8s %9s %9s %18s %18s %9s %9s  %s\n", "backend", "run", "test acc", "test loss",
           "train img/s", "infer img/s", "x naive", "x best", "agreement with naive");
    for (int i = 0; i < st->n; i++) {
        const cmp_row *r = &st->rows[i];
        char acc[16] = "-", loss[16] = "-", tr[32], in[32], vn[16], vc[16];
        if (r->state == ROW_RAN && r->r && r->r->have_confusion) {
            snprintf(acc, sizeof acc, "%.2f%%", 100 * r->r->final_test_accuracy);
            snprintf(loss, sizeof loss, "%.4f", r->r->final_test_loss);
        }
        fmt_speed(tr, sizeof tr, &r->train);
        fmt_speed(in, sizeof in, &r->infer);
        fmt_ratio(vn, sizeof vn, naive ? ratio(r->train.median, naive->train.median) : 0);
        fmt_ratio(vc, sizeof vc, cpu ? ratio(r->train.median, cpu->train.median) : 0);
        printf("%-8s %-8s %9s %9s %18s %18s %9s %9s  %s", r->name, state_name(r->state), acc,
               loss, tr, in, vn, vc, r->agreement);
        printf("\n");
    }
    for (int i = 0; i < st->n; i++) {
        const cmp_row *r = &st->rows[i];
        if (r->state == ROW_SKIPPED) printf("%s: skipped: %s\n", r->name, r->why);
        else if (r->state == ROW_STOPPED) printf("%s: stopped: %s\n", r->name, r->why);
        if (r->state != ROW_SKIPPED && strcmp(r->agreement, "PASSED") != 0)
            printf("%s: agreement %s: %s\n", r->name, r->agreement, r->agreement_note);
    }
    if (naive)
        printf("naive: a timed sample of %ld steps on %d test images (too slow for whole epochs); "
               "its accuracy is not comparable and not shown\n",
               naive->r->total_steps, CNB_NAIVE_SAMPLE_TEST);
    printf("images/s: median ± MAD over training steps and evaluation batches; x best: training "
           "speed over the fastest CPU backend (%s)\n", cpu ? cpu->name : "none ran");
    if (cpu && gpu)
        printf("CPU:GPU: %s trains %.2fx and infers %.2fx as fast as %s\n", gpu->name,
               ratio(gpu->train.median, cpu->train.median),
               ratio(gpu->infer.median, cpu->infer.median), cpu->name);
    else printf("CPU:GPU: no GPU backend ran here\n");
}

static int exit_code(const cmp_state *st) {
    int rc = 0;
    for (int i = 0; i < st->n; i++) {
        const cmp_row *r = &st->rows[i];
        if (r->state == ROW_STOPPED && r->r && r->r->status == CNB_RUN_INTERRUPTED)
            return EXIT_INTERRUPTED;
        if (r->state == ROW_STOPPED && r->r && r->r->status == CNB_RUN_DIVERGED)
            rc = EXIT_DIVERGED;
        else if ((r->state == ROW_STOPPED || strcmp(r->agreement, "FAILED") == 0) && rc == 0)
            rc = EXIT_FAIL;
    }
    return rc;
}

static void free_rows(cmp_state *st) {
    for (int i = 0; i < st->n; i++) {
        cJSON_Delete(st->rows[i].run);
        if (st->rows[i].r) cnb_run_result_free(st->rows[i].r);
        free(st->rows[i].r);
    }
}

int cnb_train_comparison(const cnb_comparison_request *req) {
    cmp_state *st = calloc(1, sizeof *st);
    if (!st) {
        fprintf(stderr, "cnnbench: out of memory\n");
        return EXIT_FAIL;
    }
    st->req = req;
    char list_buf[4096];
    if (expand_backends(st, list_buf, sizeof list_buf) != 0) {
        free(st);
        return EXIT_USAGE;
    }
    cnb_machine_probe(&st->mc);
    st->threads = req->threads ? req->threads : (st->mc.cores > 0 ? st->mc.cores : 1);
    if (req->out) snprintf(st->out, sizeof st->out, "%s", req->out);
    else snprintf(st->out, sizeof st->out, "cnnbench-%s-comparison.json", req->model->name);
    size_t stem = strlen(st->out);
    if (stem > 5 && strcmp(st->out + stem - 5, ".json") == 0) stem -= 5;
    snprintf(st->check_out, sizeof st->check_out, "%.*s.check.json", (int)stem, st->out);
    char err[CNB_ERR_LEN];
    const char *kind = req->dataset_kind ? req->dataset_kind : "fashion-mnist";
    if (cnb_dataset_open(kind, req->data, req->train_limit, req->test_limit, &st->train,
                         &st->test, err, sizeof err) != 0) {
        fprintf(stderr, "cnnbench: data: %s\n", err);
        free(st);
        return EXIT_FAIL;
    }
    printf("cnnbench %s: comparison of %d backend(s) on %s (%zu parameters); machine %s, %d "
           "cores; data %s, %d training / %d test images; seed %llu\n",
           CNB_VERSION, st->n, req->model->name, req->model->n_params, st->mc.cpu_model,
           st->mc.cores, kind, st->train.count, st->test.count,
           (unsigned long long)req->settings->seed);
    int rc = 0;
    for (int i = 0; i < st->n && rc == 0; i++) {
        train_row(st, &st->rows[i]);
        if (st->rows[i].state == ROW_SKIPPED)
            snprintf(st->rows[i].agreement_note, sizeof st->rows[i].agreement_note, "%s",
                     st->rows[i].why);
        write_results(st, "running");
        if (exit_code(st) == EXIT_INTERRUPTED) rc = EXIT_INTERRUPTED;
    }
    if (rc == 0) run_agreement(st);
    print_table(st);
    rc = rc ? rc : exit_code(st);
    if (write_results(st, rc == EXIT_INTERRUPTED ? "interrupted" : "completed") == 0)
        printf("results: %s (agreement report: %s)\n", st->out, st->check_out);
    else if (rc == 0) rc = EXIT_FAIL;
    free_rows(st);
    cnb_dataset_free(&st->train);
    cnb_dataset_free(&st->test);
    free(st);
    return rc;
}
