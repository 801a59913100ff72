/* checkpoint.c — safetensors checkpoints (see checkpoint.h): a writer that lays tensors out the
 * way a PyTorch state_dict names them, and a reader that trusts nothing in the file. */
#define _POSIX_C_SOURCE 200809L
#include "checkpoint.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atomic_file.h"
#include "util.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint.c stores tensors as host floats: a big-endian host needs byte swapping here"
#endif

#define MAX_TENSORS (3 * 2 * CNB_MAX_LAYERS + 8)

/* One tensor of a file, as the writer lays it out or the reader expects it. */
typedef struct ck_tensor {
    char name[96];
    int rank;
    int64_t shape[4];
    size_t count;            /* product of shape */
    const float *src;        /* writer: where the values come from */
    float *dst;              /* reader: where they go */
    int found;               /* reader */
} ck_tensor;

static const char *const opt_suffix[3][2] = {{NULL, NULL},
                                             {"momentum_buffer", NULL},
                                             {"exp_avg", "exp_avg_sq"}};

/* The model's parameter tensors, in layer order, pointing into a flat block (base may be NULL). */
static int model_tensors(const cnb_model *m, ck_tensor *t, const char *prefix, const char *suffix,
                         const float *src, float *dst) {
    int n = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const cnb_layer *l = &m->layers[i];
        if (l->weight_count == 0) continue;
        const char *pre = prefix ? prefix : "", *dot = suffix ? "." : "", *suf = suffix ? suffix : "";
        ck_tensor *w = &t[n++];
        memset(w, 0, sizeof *w);
        snprintf(w->name, sizeof w->name, "%s%s.weight%s%s", pre, l->name, dot, suf);
        if (l->type == CNB_LAYER_CONV) {
            w->rank = 4;
            w->shape[0] = l->out_c;
            w->shape[1] = l->in_c;
            w->shape[2] = l->size_h;
            w->shape[3] = l->size_w;
        } else if (l->type == CNB_LAYER_LINEAR) {
            w->rank = 2;
            w->shape[0] = l->out_c;
            w->shape[1] = (int64_t)l->in_c * l->in_h * l->in_w;
        } else { /* PReLU: one slope, shape [1] as nn.PReLU() */
            w->rank = 1;
            w->shape[0] = (int64_t)l->weight_count;
        }
        w->count = l->weight_count;
        if (src) w->src = src + l->param_offset;
        if (dst) w->dst = dst + l->param_offset;
        if (l->bias_count) {
            ck_tensor *b = &t[n++];
            memset(b, 0, sizeof *b);
            snprintf(b->name, sizeof b->name, "%s%s.bias%s%s", pre, l->name, dot, suf);
            b->rank = 1;
            b->shape[0] = (int64_t)l->bias_count;
            b->count = l->bias_count;
            if (src) b->src = src + l->param_offset + l->weight_count;
            if (dst) b->dst = dst + l->param_offset + l->weight_count;
        }
    }
    return n;
}

/* ---- writing ---- */

static int write_tensors(const char *path, const ck_tensor *t, int n, cJSON *meta, char *err,
                         size_t err_len) {
    cJSON *root = cJSON_CreateObject();
    if (!root) {
        cJSON_Delete(meta);
        return cnb_errf(err, err_len, "%s: out of memory building the header", path);
    }
    if (meta) cJSON_AddItemToObject(root, "__metadata__", meta);
    size_t offset = 0;
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject(), *shape = cJSON_CreateArray(), *offs = cJSON_CreateArray();
        if (!e || !shape || !offs) {
            cJSON_Delete(e);
            cJSON_Delete(shape);
            cJSON_Delete(offs);
            cJSON_Delete(root);
            return cnb_errf(err, err_len, "%s: out of memory building the header", path);
        }
        cJSON_AddStringToObject(e, "dtype", "F32");
        for (int d = 0; d < t[i].rank; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t[i].shape[d]));
        cJSON_AddItemToObject(e, "shape", shape);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)offset));
        offset += t[i].count * sizeof(float);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)offset));
        cJSON_AddItemToObject(e, "data_offsets", offs);
        cJSON_AddItemToObject(root, t[i].name, e);
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json) return cnb_errf(err, err_len, "%s: out of memory building the header", path);
    size_t hlen = strlen(json);
    size_t padded = (hlen + 7) / 8 * 8; /* the format pads the header with spaces to 8 bytes */
    size_t total = 8 + padded + offset;
    unsigned char *buf = malloc(total);
    if (!buf) {
        free(json);
        return cnb_errf(err, err_len, "%s: out of host memory (%zu bytes)", path, total);
    }
    for (int b = 0; b < 8; b++) buf[b] = (unsigned char)((uint64_t)padded >> (8 * b));
    memcpy(buf + 8, json, hlen);
    memset(buf + 8 + hlen, ' ', padded - hlen);
    free(json);
    size_t at = 8 + padded;
    for (int i = 0; i < n; i++) {
        memcpy(buf + at, t[i].src, t[i].count * sizeof(float));
        at += t[i].count * sizeof(float);
    }
    int rc = cnb_write_bytes_atomic(path, buf, total, err, err_len);
    free(buf);
    return rc;
}

static void meta_u64(cJSON *meta, const char *key, uint64_t v) {
    char s[32];
    snprintf(s, sizeof s, "%" PRIu64, v);
    cJSON_AddStringToObject(meta, key, s);
}

int cnb_checkpoint_write(const char *path, const cnb_model *m, const cnb_checkpoint *c, char *err,
                         size_t err_len) {
    static ck_tensor t[MAX_TENSORS];
    int n = model_tensors(m, t, NULL, NULL, c->params, NULL);
    int opt = c->optimizer;
    for (int k = 0; k < 2 && opt != CNB_CKPT_OPT_NONE; k++)
        if (opt_suffix[opt][k])
            n += model_tensors(m, t + n, "optimizer.", opt_suffix[opt][k],
                               k == 0 ? c->opt_m : c->opt_v, NULL);
    cJSON *meta = cJSON_CreateObject();
    if (!meta) return cnb_errf(err, err_len, "%s: out of memory building the header", path);
    cJSON_AddStringToObject(meta, "format", "cnnbench-checkpoint");
    cJSON_AddStringToObject(meta, "version", "1");
    cJSON_AddStringToObject(meta, "model", c->model[0] ? c->model : m->name);
    cJSON_AddStringToObject(meta, "optimizer", opt == CNB_CKPT_OPT_SGD    ? "sgd"
                                               : opt == CNB_CKPT_OPT_ADAM ? "adam"
                                                                          : "none");
    meta_u64(meta, "seed", c->seed);
    if (c->have_state) {
        const cnb_train_state *s = &c->state;
        meta_u64(meta, "global_step", (uint64_t)s->global_step);
        meta_u64(meta, "epoch", (uint64_t)s->epoch);
        meta_u64(meta, "step_in_epoch", (uint64_t)s->step_in_epoch);
        meta_u64(meta, "adam_step", (uint64_t)s->adam_step);
        meta_u64(meta, "rng_state", s->shuffle_state);
        meta_u64(meta, "rng_inc", s->shuffle_inc);
        meta_u64(meta, "train_count", (uint64_t)s->train_count);
        meta_u64(meta, "batch", (uint64_t)s->batch);
    }
    return write_tensors(path, t, n, meta, err, err_len);
}

int cnb_safetensors_write_f32(const char *path, int n, const char *const *names,
                              const int *ranks, const int64_t (*shapes)[4],
                              const float *const *data, char *err, size_t err_len) {
    ck_tensor t[8];
    if (n < 0 || n > 8) return cnb_errf(err, err_len, "%s: too many tensors", path);
    for (int i = 0; i < n; i++) {
        memset(&t[i], 0, sizeof t[i]);
        snprintf(t[i].name, sizeof t[i].name, "%s", names[i]);
        t[i].rank = ranks[i];
        t[i].count = 1;
        for (int d = 0; d < ranks[i]; d++) {
            t[i].shape[d] = shapes[i][d];
            t[i].count *= (size_t)shapes[i][d];
        }
        t[i].src = data[i];
    }
    return write_tensors(path, t, n, NULL, err, err_len);
}

/* ---- reading ---- */

void cnb_checkpoint_free(cnb_checkpoint *c) {
    free(c->params);
    free(c->opt_m);
    free(c->opt_v);
    c->params = c->opt_m = c->opt_v = NULL;
}

/* A JSON number that is a whole value in [0, 2^53]: the only integers the format holds. */
static int json_index(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > 9007199254740992.0 || d != (double)(uint64_t)d) return -1;
    *out = (uint64_t)d;
    return 0;
}

/* Metadata value "key" as a decimal integer in [0, max]; -1 when absent or malformed (err set
 * only when malformed). */
static int meta_get_u64(const cJSON *meta, const char *key, uint64_t max, uint64_t *out,
                        const char *name, int *bad, char *err, size_t err_len) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, key);
    if (!v) return -1;
    const char *s = v->valuestring;
    int ok = cJSON_IsString(v) && s && *s && strlen(s) <= 20;
    uint64_t x = 0;
    for (const char *p = s; ok && *p; p++) {
        if (*p < '0' || *p > '9' || x > (UINT64_MAX - (uint64_t)(*p - '0')) / 10) ok = 0;
        else x = x * 10 + (uint64_t)(*p - '0');
    }
    if (!ok || x > max) {
        *bad = 1;
        cnb_errf(err, err_len, "%s: metadata '%s' is not an integer in [0, %" PRIu64 "]", name,
                 key, max);
        return -1;
    }
    *out = x;
    return 0;
}

typedef struct span {
    uint64_t begin, end;
    const char *name;
} span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

static int parse_metadata(const cJSON *meta, const char *name, cnb_checkpoint *c,
                          cnb_ckpt_optimizer found_opt, char *err, size_t err_len) {
    if (!cJSON_IsObject(meta))
        return cnb_errf(err, err_len, "%s: __metadata__ is not an object of strings", name);
    for (const cJSON *v = meta->child; v; v = v->next)
        if (!cJSON_IsString(v))
            return cnb_errf(err, err_len, "%s: metadata '%s' is not a string (the format allows "
                            "string values only)", name, v->string ? v->string : "?");
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(meta, "format");
    if (fmt && strcmp(fmt->valuestring, "cnnbench-checkpoint") != 0)
        return cnb_errf(err, err_len, "%s: metadata format '%.64s' is not a cnnbench checkpoint",
                        name, fmt->valuestring);
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(meta, "version");
    if (fmt && (!ver || strcmp(ver->valuestring, "1") != 0))
        return cnb_errf(err, err_len, "%s: checkpoint version '%.32s' is not supported (this "
                        "cnnbench reads version 1)", name, ver ? ver->valuestring : "(none)");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(meta, "model");
    if (model) snprintf(c->model, sizeof c->model, "%s", model->valuestring);
    const cJSON *opt = cJSON_GetObjectItemCaseSensitive(meta, "optimizer");
    if (opt) {
        const char *o = opt->valuestring;
        cnb_ckpt_optimizer said = strcmp(o, "sgd") == 0    ? CNB_CKPT_OPT_SGD
                                  : strcmp(o, "adam") == 0 ? CNB_CKPT_OPT_ADAM
                                  : strcmp(o, "none") == 0 ? CNB_CKPT_OPT_NONE
                                                           : (cnb_ckpt_optimizer)-1;
        if ((int)said < 0)
            return cnb_errf(err, err_len, "%s: metadata optimizer '%.32s' is not sgd, adam or none",
                            name, o);
        if (found_opt != CNB_CKPT_OPT_NONE && said != found_opt)
            return cnb_errf(err, err_len, "%s: metadata says optimizer '%s' but the file holds %s "
                            "state", name, o, found_opt == CNB_CKPT_OPT_SGD ? "SGD" : "Adam");
    }
    int bad = 0;
    uint64_t seed = 0;
    if (meta_get_u64(meta, "seed", UINT64_MAX, &seed, name, &bad, err, err_len) == 0) c->seed = seed;
    if (bad) return -1;
    static const char *const keys[] = {"global_step", "epoch",   "step_in_epoch", "adam_step",
                                       "rng_state",   "rng_inc", "train_count",   "batch"};
    static const uint64_t max[] = {(uint64_t)1 << 50, CNB_MAX_EPOCHS + 1, (uint64_t)1 << 40,
                                   (uint64_t)1 << 50, UINT64_MAX, UINT64_MAX, INT32_MAX,
                                   INT32_MAX};
    uint64_t val[8];
    int have = 0;
    for (int k = 0; k < 8; k++) {
        if (meta_get_u64(meta, keys[k], max[k], &val[k], name, &bad, err, err_len) == 0) have++;
        if (bad) return -1;
    }
    if (have != 0 && have != 8)
        return cnb_errf(err, err_len, "%s: metadata holds only part of the run's position (%d of "
                        "8 keys: global_step, epoch, step_in_epoch, adam_step, rng_state, "
                        "rng_inc, train_count, batch)", name, have);
    if (have == 8) {
        c->have_state = 1;
        c->state = (cnb_train_state){.global_step = (long)val[0], .epoch = (int)val[1],
                                     .step_in_epoch = (long)val[2], .adam_step = (long)val[3],
                                     .shuffle_state = val[4], .shuffle_inc = val[5],
                                     .train_count = (int)val[6], .batch = (int)val[7]};
    }
    return 0;
}

/* The first NaN or +-Inf of any tensor, named: a checkpoint holding one would train on silently
 * (ReLU and the optimizers carry it along) or diverge at once, so it is refused unless asked. */
static int refuse_nonfinite(const ck_tensor *t, int n, const char *name, char *err,
                            size_t err_len) {
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < t[i].count; k++)
            if (!isfinite(t[i].dst[k]))
                return cnb_errf(err, err_len,
                                "%s: tensor '%s' holds %g at index %zu (its first non-finite "
                                "value); pass --allow-nonfinite to load it on purpose",
                                name, t[i].name, (double)t[i].dst[k], k);
    return 0;
}

static int parse_checkpoint(const void *data, size_t len, const char *name, const cnb_model *m,
                            int allow_nonfinite, cnb_checkpoint *c, char *err, size_t err_len);

int cnb_checkpoint_parse(const void *data, size_t len, const char *name, const cnb_model *m,
                         cnb_checkpoint *c, char *err, size_t err_len) {
    return parse_checkpoint(data, len, name, m, 0, c, err, err_len);
}

/* One header entry: dtype, shape and data offsets checked against the tensor the model
 * expects, and its data copied; *sp records where it lies. 0 or -1 (err names the tensor). */
static int read_tensor(const cJSON *e, ck_tensor *x, const char *name, const cnb_model *m,
                       const unsigned char *body, uint64_t body_len, span *sp, char *err,
                       size_t err_len) {
    const char *tn = x->name;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsObject(e) || !cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(of))
        return cnb_errf(err, err_len, "%s: tensor '%s' needs \"dtype\", \"shape\" and "
                        "\"data_offsets\"", name, tn);
    if (strcmp(dt->valuestring, "F32") != 0)
        return cnb_errf(err, err_len, "%s: tensor '%s' has dtype %.16s; cnnbench reads F32 only",
                        name, tn, dt->valuestring);
    int rank = cJSON_GetArraySize(sh);
    char got[128] = "", want[128] = "";
    int same = rank == x->rank;
    size_t gl = 0, wl = 0;
    int d = 0;
    for (const cJSON *v = sh->child; v; v = v->next, d++) {
        uint64_t dim;
        if (json_index(v, &dim) != 0)
            return cnb_errf(err, err_len, "%s: tensor '%s' has a shape entry that is not a "
                            "non-negative integer", name, tn);
        if (gl < sizeof got)
            gl += (size_t)snprintf(got + gl, sizeof got - gl, "%s%" PRIu64, d ? ", " : "", dim);
        if (d >= x->rank || (int64_t)dim != x->shape[d]) same = 0;
    }
    for (d = 0; d < x->rank && wl < sizeof want; d++)
        wl += (size_t)snprintf(want + wl, sizeof want - wl, "%s%" PRId64, d ? ", " : "",
                               x->shape[d]);
    if (!same)
        return cnb_errf(err, err_len, "%s: tensor '%s' has shape [%s] but model %s needs [%s]",
                        name, tn, got, m->name, want);
    uint64_t b, en;
    if (cJSON_GetArraySize(of) != 2 || json_index(of->child, &b) != 0 ||
        json_index(of->child->next, &en) != 0 || b > en || en > body_len)
        return cnb_errf(err, err_len, "%s: tensor '%s' has data_offsets outside the %" PRIu64
                        " data bytes (or not [begin, end] with begin <= end)", name, tn, body_len);
    if (en - b != (uint64_t)x->count * sizeof(float))
        return cnb_errf(err, err_len, "%s: tensor '%s' spans %" PRIu64 " bytes but [%s] F32 "
                        "needs %zu", name, tn, en - b, want, x->count * sizeof(float));
    *sp = (span){b, en, x->name};
    memcpy(x->dst, body + b, x->count * sizeof(float));
    return 0;
}

static int parse_checkpoint(const void *data, size_t len, const char *name, const cnb_model *m,
                            int allow_nonfinite, cnb_checkpoint *c, char *err, size_t err_len) {
    static ck_tensor expect[MAX_TENSORS];
    static span spans[MAX_TENSORS];
    const unsigned char *p = data;
    memset(c, 0, sizeof *c);
    if (len < 8)
        return cnb_errf(err, err_len, "%s: %zu bytes is too short for a safetensors file (the "
                        "header length alone takes 8)", name, len);
    uint64_t hlen = 0;
    for (int b = 7; b >= 0; b--) hlen = hlen << 8 | p[b];
    if (hlen < 2 || hlen > CNB_CKPT_MAX_HEADER || hlen > len - 8)
        return cnb_errf(err, err_len, "%s: header length %" PRIu64 " does not fit the file (%zu "
                        "bytes after the length field)", name, hlen, len - 8);
    const char *json = (const char *)p + 8;
    const unsigned char *body = p + 8 + hlen;
    uint64_t body_len = len - 8 - hlen;
    if (json[0] != '{')
        return cnb_errf(err, err_len, "%s: header is not a JSON object (first byte 0x%02x)", name,
                        (unsigned char)json[0]);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, (size_t)hlen, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return cnb_errf(err, err_len, "%s: header is not valid JSON (near byte %td of %" PRIu64
                        ")", name, end ? end - json : 0, hlen);
    }
    for (const char *q = end; q && q < json + hlen; q++)
        if (*q != ' ' && *q != '\0' && *q != '\n' && *q != '\t' && *q != '\r') {
            cJSON_Delete(root);
            return cnb_errf(err, err_len, "%s: bytes after the header's JSON object", name);
        }

    /* What the file must hold for this model: parameters, and all or none of an optimizer's
     * state. Which optimizer is decided by the first optimizer tensor seen. */
    size_t np = m->n_params;
    int rc = -1;
    cnb_ckpt_optimizer opt = CNB_CKPT_OPT_NONE;
    for (const cJSON *e = root->child; e; e = e->next)
        if (e->string && strncmp(e->string, "optimizer.", 10) == 0) {
            size_t l = strlen(e->string);
            opt = (l > 16 && strcmp(e->string + l - 16, ".momentum_buffer") == 0)
                      ? CNB_CKPT_OPT_SGD
                      : CNB_CKPT_OPT_ADAM;
            break;
        }
    c->params = malloc((np ? np : 1) * sizeof(float));
    if (opt != CNB_CKPT_OPT_NONE) c->opt_m = calloc(np ? np : 1, sizeof(float));
    if (opt == CNB_CKPT_OPT_ADAM) c->opt_v = calloc(np ? np : 1, sizeof(float));
    if (!c->params || (opt != CNB_CKPT_OPT_NONE && !c->opt_m) ||
        (opt == CNB_CKPT_OPT_ADAM && !c->opt_v)) {
        cnb_errf(err, err_len, "%s: out of host memory", name);
        goto out;
    }
    int n = model_tensors(m, expect, NULL, NULL, NULL, c->params);
    for (int k = 0; k < 2 && opt != CNB_CKPT_OPT_NONE; k++)
        if (opt_suffix[opt][k])
            n += model_tensors(m, expect + n, "optimizer.", opt_suffix[opt][k], NULL,
                               k == 0 ? c->opt_m : c->opt_v);
    c->optimizer = opt;

    int n_spans = 0;
    const cJSON *meta = NULL;
    for (const cJSON *e = root->child; e; e = e->next) {
        const char *tn = e->string ? e->string : "";
        if (strcmp(tn, "__metadata__") == 0) {
            if (meta) {
                cnb_errf(err, err_len, "%s: __metadata__ appears twice", name);
                goto out;
            }
            meta = e;
            continue;
        }
        ck_tensor *x = NULL;
        for (int i = 0; i < n && !x; i++)
            if (strcmp(expect[i].name, tn) == 0) x = &expect[i];
        if (!x) {
            cnb_errf(err, err_len, "%s: unexpected tensor '%.96s': model %s has no such parameter%s",
                     name, tn, m->name,
                     strncmp(tn, "optimizer.", 10) == 0 ? " (or optimizer state of two kinds)" : "");
            goto out;
        }
        if (x->found) {
            cnb_errf(err, err_len, "%s: tensor '%s' appears twice", name, tn);
            goto out;
        }
        x->found = 1;
        if (read_tensor(e, x, name, m, body, body_len, &spans[n_spans], err, err_len) != 0)
            goto out;
        n_spans++;
    }
    qsort(spans, (size_t)n_spans, sizeof spans[0], cmp_span);
    for (int i = 1; i < n_spans; i++)
        if (spans[i].begin < spans[i - 1].end) {
            cnb_errf(err, err_len, "%s: tensors '%s' and '%s' overlap in the data section", name,
                     spans[i - 1].name, spans[i].name);
            goto out;
        }
    for (int i = 0; i < n; i++)
        if (!expect[i].found) {
            cnb_errf(err, err_len, "%s: tensor '%s' is missing (model %s needs it%s)", name,
                     expect[i].name, m->name,
                     strncmp(expect[i].name, "optimizer.", 10) == 0
                         ? "; optimizer state must be complete or absent"
                         : "");
            goto out;
        }
    if (!allow_nonfinite && refuse_nonfinite(expect, n, name, err, err_len) != 0) goto out;
    if (meta && parse_metadata(meta, name, c, opt, err, err_len) != 0) goto out;
    rc = 0;
out:
    cJSON_Delete(root);
    if (rc != 0) cnb_checkpoint_free(c);
    return rc;
}

int cnb_checkpoint_read(const char *path, const cnb_model *m, cnb_checkpoint *c, char *err,
                        size_t err_len) {
    return cnb_checkpoint_read_ex(path, m, 0, c, err, err_len);
}

int cnb_checkpoint_read_ex(const char *path, const cnb_model *m, int allow_nonfinite,
                           cnb_checkpoint *c, char *err, size_t err_len) {
    memset(c, 0, sizeof *c);
    FILE *f = fopen(path, "rb");
    if (!f) return cnb_errf(err, err_len, "%s: cannot open checkpoint: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return cnb_errf(err, err_len, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > CNB_CKPT_MAX_FILE) {
        fclose(f);
        return cnb_errf(err, err_len, "%s: %lld bytes is larger than any checkpoint cnnbench "
                        "writes", path, (long long)st.st_size);
    }
    size_t len = (size_t)st.st_size;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) {
        fclose(f);
        return cnb_errf(err, err_len, "%s: out of host memory (%zu bytes)", path, len);
    }
    size_t got = fread(buf, 1, len, f);
    int read_err = ferror(f);
    fclose(f);
    if (got != len || read_err) {
        free(buf);
        return cnb_errf(err, err_len, "%s: read failed after %zu of %zu bytes", path, got, len);
    }
    int rc = parse_checkpoint(buf, len, path, m, allow_nonfinite, c, err, err_len);
    free(buf);
    return rc;
}

/* ---- trainer glue ---- */

static cnb_ckpt_optimizer optimizer_kind(const char *optimizer) {
    return strcmp(optimizer, "adam") == 0 ? CNB_CKPT_OPT_ADAM : CNB_CKPT_OPT_SGD;
}

int cnb_checkpoint_save_trainer(const char *path, cnb_trainer *t, const cnb_model *m,
                                const char *optimizer, uint64_t seed, char *err, size_t err_len) {
    size_t np = m->n_params ? m->n_params : 1;
    cnb_checkpoint c = {.optimizer = optimizer_kind(optimizer), .have_state = 1, .seed = seed};
    snprintf(c.model, sizeof c.model, "%s", m->name);
    c.params = malloc(np * sizeof(float));
    c.opt_m = malloc(np * sizeof(float));
    c.opt_v = malloc(np * sizeof(float));
    int rc = -1;
    if (!c.params || !c.opt_m || !c.opt_v)
        cnb_errf(err, err_len, "%s: out of host memory", path);
    else if (cnb_trainer_get_tensors(t, c.params, c.opt_m, c.opt_v, err, err_len) == 0) {
        cnb_trainer_get_state(t, &c.state);
        rc = cnb_checkpoint_write(path, m, &c, err, err_len);
    }
    cnb_checkpoint_free(&c);
    return rc;
}

int cnb_checkpoint_load_trainer(const char *path, cnb_trainer *t, const cnb_model *m,
                                const char *optimizer, int resume, int allow_nonfinite, char *err,
                                size_t err_len) {
    cnb_checkpoint c;
    if (cnb_checkpoint_read_ex(path, m, allow_nonfinite, &c, err, err_len) != 0) return -1;
    int rc = -1;
    cnb_ckpt_optimizer want = optimizer_kind(optimizer);
    if (c.model[0] && strcmp(c.model, m->name) != 0)
        cnb_errf(err, err_len, "%s: checkpoint is of model '%s' but this run trains '%s'", path,
                 c.model, m->name);
    else if (resume && c.optimizer != want)
        cnb_errf(err, err_len, "%s: cannot resume: the file holds %s optimizer state but this run "
                 "uses %s", path, c.optimizer == CNB_CKPT_OPT_NONE ? "no" :
                 c.optimizer == CNB_CKPT_OPT_SGD ? "SGD" : "Adam", optimizer);
    else if (resume && !c.have_state)
        cnb_errf(err, err_len, "%s: cannot resume: the file holds no run position (metadata "
                 "global_step, epoch, ...); use --load to start from its weights", path);
    else {
        int same = c.optimizer == want;
        char why[CNB_ERR_LEN];
        if (cnb_trainer_set_tensors(t, c.params, same ? c.opt_m : NULL,
                                    same && want == CNB_CKPT_OPT_ADAM ? c.opt_v : NULL, why,
                                    sizeof why) != 0)
            cnb_errf(err, err_len, "%s: %s", path, why);
        else if (resume && cnb_trainer_set_state(t, &c.state, why, sizeof why) != 0)
            cnb_errf(err, err_len, "%s: cannot resume: %s", path, why);
        else if (!resume && same && want == CNB_CKPT_OPT_ADAM && c.have_state) {
            /* Adam's bias correction needs its step count along with m and v. */
            cnb_trainer_set_adam_step(t, c.state.adam_step);
            rc = 0;
        } else
            rc = 0;
    }
    cnb_checkpoint_free(&c);
    return rc;
}
