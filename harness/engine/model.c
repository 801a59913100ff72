/* model.c — reads model description files (Darknet-style [sections] of key=value), fills
 * defaults, checks every value, infers the shapes layer by layer and prints the layer table.
 * Every error names the file, the line and the layer; nothing here exits or asserts. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"
#include "cnb_abi.h"
#include "paths.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define MAX_KEYS 32            /* keys in one section; no section needs half of that */
#define MAX_SECTIONS (CNB_MAX_LAYERS + 1)
#define MAX_FILE_BYTES (1 << 20)

/* ------------------------------------------------------------------------------------------ */
/* The raw file: sections of key=value pairs, pointing into one mutable copy of the text.     */

typedef struct kv {
    const char *key, *val;
    int line;
    int used;                  /* read by the section's handler; the rest are reported unused */
} kv;

typedef struct section {
    const char *name;
    int line;
    int n_kv;
    kv kv[MAX_KEYS];
} section;

typedef struct parser {
    const char *file;          /* stands for the file in every message */
    FILE *warn;
    char *err;
    size_t err_len;
    section *sec;              /* MAX_SECTIONS of them */
    int n_sec;
} parser;

static int perr(parser *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(parser *p, int line, const char *fmt, ...) {
    char msg[CNB_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cnb_errf(p->err, p->err_len, "%s:%d: %s", p->file, line, msg);
}

static void pwarn(parser *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pwarn(parser *p, int line, const char *fmt, ...) {
    if (!p->warn) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(p->warn, "%s:%d: warning: ", p->file, line);
    vfprintf(p->warn, fmt, ap);
    fputc('\n', p->warn);
    va_end(ap);
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

static char *trim(char *s) {
    while (is_space(*s)) s++;
    char *e = s + strlen(s);
    while (e > s && is_space(e[-1])) *--e = '\0';
    return s;
}

/* Split the text into sections. Only syntax is checked here; meaning comes later. */
static int split_sections(parser *p, char *text) {
    int line_no = 0;
    char *line = text;
    if ((unsigned char)line[0] == 0xEF && (unsigned char)line[1] == 0xBB &&
        (unsigned char)line[2] == 0xBF)
        line += 3; /* UTF-8 byte-order mark from some editors */
    while (line) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        line_no++;
        char *s = trim(line);
        line = next;
        if (*s == '\0' || *s == '#' || *s == ';') continue; /* comments are whole lines */
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close) return perr(p, line_no, "section header '%s' has no closing ']'", s);
            char *rest = trim(close + 1);
            if (*rest)
                return perr(p, line_no, "unexpected text '%s' after section header%s", rest,
                            (*rest == '#' || *rest == ';')
                                ? " (comments must be on their own line)"
                                : "");
            *close = '\0';
            char *name = trim(s + 1);
            if (*name == '\0') return perr(p, line_no, "empty section header '[]'");
            if (p->n_sec == MAX_SECTIONS)
                return perr(p, line_no, "too many layers: [%s] would be layer %d, at most %d "
                            "are allowed", name, p->n_sec, CNB_MAX_LAYERS);
            section *sec = &p->sec[p->n_sec++];
            sec->name = name;
            sec->line = line_no;
            sec->n_kv = 0;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) return perr(p, line_no, "expected '[section]' or 'key = value', got '%s'", s);
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        if (*key == '\0') return perr(p, line_no, "missing key before '=' (value '%s')", val);
        if (p->n_sec == 0)
            return perr(p, line_no, "key '%s' comes before any section; a model file starts "
                        "with [net]", key);
        section *sec = &p->sec[p->n_sec - 1];
        for (int i = 0; i < sec->n_kv; i++)
            if (strcmp(sec->kv[i].key, key) == 0)
                return perr(p, line_no, "duplicate key '%s' in [%s] (first given at line %d)",
                            key, sec->name, sec->kv[i].line);
        if (sec->n_kv == MAX_KEYS)
            return perr(p, line_no, "too many keys in [%s] (at most %d)", sec->name, MAX_KEYS);
        sec->kv[sec->n_kv++] = (kv){.key = key, .val = val, .line = line_no, .used = 0};
    }
    if (p->n_sec == 0) return perr(p, line_no > 0 ? line_no : 1, "no sections; a model file "
                                   "starts with [net]");
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Typed values. `what` names the section or layer in messages, e.g. "layer 1 conv conv1".    */

static kv *opt(section *s, const char *key) {
    for (int i = 0; i < s->n_kv; i++)
        if (strcmp(s->kv[i].key, key) == 0) {
            s->kv[i].used = 1;
            return &s->kv[i];
        }
    return NULL;
}

static int bad_value(parser *p, const char *what, const kv *o, const char *rule) {
    const char *hint = (strchr(o->val, '#') || strchr(o->val, ';'))
                           ? " (comments must be on their own line)"
                           : "";
    if (o->val[0] == '\0') return perr(p, o->line, "%s: '%s' has no value; it %s", what, o->key, rule);
    return perr(p, o->line, "%s: '%s' %s, got '%s'%s", what, o->key, rule, o->val, hint);
}

/* An integer in [lo, hi]; the whole value must be the number. */
static int int_value(parser *p, const char *what, const kv *o, long lo, long hi, int *out) {
    char rule[96];
    if (hi >= INT_MAX) snprintf(rule, sizeof rule, "must be an integer >= %ld", lo);
    else snprintf(rule, sizeof rule, "must be an integer from %ld to %ld", lo, hi);
    if (hi > INT_MAX) hi = INT_MAX;
    const char *s = o->val;
    if (*s == '\0' || !(*s == '-' || *s == '+' || (*s >= '0' && *s <= '9')))
        return bad_value(p, what, o, rule);
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end != '\0') return bad_value(p, what, o, rule);
    if (errno == ERANGE || v > INT_MAX || v < INT_MIN)
        return perr(p, o->line, "%s: '%s' = '%s' is out of range; it %s", what, o->key, o->val,
                    rule);
    if (v < lo || v > hi) return bad_value(p, what, o, rule);
    *out = (int)v;
    return 0;
}

/* `key` as an integer in [lo, hi], or def when absent. */
static int get_int(parser *p, section *s, const char *what, const char *key, int def, long lo,
                   long hi, int *out) {
    kv *o = opt(s, key);
    if (!o) {
        *out = def;
        return 0;
    }
    return int_value(p, what, o, lo, hi, out);
}

static int need_int(parser *p, section *s, const char *what, const char *key, long lo, int *out) {
    kv *o = opt(s, key);
    if (!o) return perr(p, s->line, "%s: missing required key '%s'", what, key);
    return int_value(p, what, o, lo, INT_MAX, out);
}

/* A finite float in an interval; *_open makes that end exclusive. */
static int parse_float(const char *s, float *out) {
    if (*s == '\0') return -1;
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static int float_value(parser *p, const char *what, const kv *o, double lo, int lo_open,
                       double hi, int hi_open, float *out) {
    char rule[96];
    if (isinf(lo) && isinf(hi)) snprintf(rule, sizeof rule, "must be a finite number");
    else if (isinf(hi)) snprintf(rule, sizeof rule, "must be a number %s %g", lo_open ? ">" : ">=", lo);
    else
        snprintf(rule, sizeof rule, "must be a number in %c%g, %g%c", lo_open ? '(' : '[', lo, hi,
                 hi_open ? ')' : ']');
    float v;
    if (parse_float(o->val, &v) != 0) return bad_value(p, what, o, rule);
    if (lo_open ? !(v > lo) : !(v >= lo)) return bad_value(p, what, o, rule);
    if (hi_open ? !(v < hi) : !(v <= hi)) return bad_value(p, what, o, rule);
    *out = v;
    return 0;
}

static int get_float(parser *p, section *s, const char *what, const char *key, float def,
                     double lo, int lo_open, double hi, int hi_open, float *out) {
    kv *o = opt(s, key);
    if (!o) {
        *out = def;
        return 0;
    }
    return float_value(p, what, o, lo, lo_open, hi, hi_open, out);
}

/* A string of printable characters that fits in `cap` bytes (NUL included); name-like strings
 * (layer and model names end up as parameter names and file names) allow only [A-Za-z0-9_.-]. */
static int copy_string(parser *p, const char *what, const kv *o, char *dst, size_t cap,
                       int name_like) {
    size_t n = strlen(o->val);
    if (n == 0) return perr(p, o->line, "%s: '%s' has no value", what, o->key);
    if (n >= cap)
        return perr(p, o->line, "%s: '%s' is too long (%zu characters, at most %zu)", what,
                    o->key, n, cap - 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)o->val[i];
        int ok = name_like ? ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')
                           : (c >= 0x20 && c != 0x7f);
        if (!ok)
            return perr(p, o->line, "%s: '%s' = '%s' has a character that is not allowed "
                        "(%s)", what, o->key, o->val,
                        name_like ? "use letters, digits, '_', '.' and '-'" : "control character");
    }
    memcpy(dst, o->val, n + 1);
    return 0;
}

/* A window option given either as one key (`size`) or as a pair (`size_h` + `size_w`). */
static int get_pair(parser *p, section *s, const char *what, const char *key, int required,
                    int def_h, int def_w, long lo, int *h, int *w) {
    char kh[32], kw[32];
    snprintf(kh, sizeof kh, "%s_h", key);
    snprintf(kw, sizeof kw, "%s_w", key);
    kv *o = opt(s, key), *oh = opt(s, kh), *ow = opt(s, kw);
    if (o && (oh || ow)) {
        const kv *later = (oh && oh->line > o->line) ? oh : (ow && ow->line > o->line) ? ow : o;
        return perr(p, later->line, "%s: give either '%s' or '%s' and '%s', not both", what, key,
                    kh, kw);
    }
    if (o) {
        if (int_value(p, what, o, lo, INT_MAX, h) != 0) return -1;
        *w = *h;
        return 0;
    }
    if (oh || ow) {
        if (!oh || !ow)
            return perr(p, (oh ? oh : ow)->line, "%s: '%s' needs '%s' as well", what,
                        oh ? kh : kw, oh ? kw : kh);
        if (int_value(p, what, oh, lo, INT_MAX, h) != 0) return -1;
        return int_value(p, what, ow, lo, INT_MAX, w);
    }
    if (required) return perr(p, s->line, "%s: missing required key '%s'", what, key);
    *h = def_h;
    *w = def_w;
    return 0;
}

static void warn_unused(parser *p, section *s) {
    for (int i = 0; i < s->n_kv; i++)
        if (!s->kv[i].used)
            pwarn(p, s->kv[i].line, "unused key '%s' in [%s]", s->kv[i].key, s->name);
}

/* ------------------------------------------------------------------------------------------ */
/* [net]                                                                                       */

static int parse_net(parser *p, section *s, cnb_model *m) {
    const char *what = "[net]";
    kv *o;
    if ((o = opt(s, "name")) && copy_string(p, what, o, m->name, sizeof m->name, 1) != 0) return -1;
    if (get_int(p, s, what, "channels", 1, 1, INT_MAX, &m->in_c) != 0) return -1;
    if (get_int(p, s, what, "height", 28, 1, INT_MAX, &m->in_h) != 0) return -1;
    if (get_int(p, s, what, "width", 28, 1, INT_MAX, &m->in_w) != 0) return -1;
    if (get_int(p, s, what, "classes", 10, 2, INT_MAX, &m->classes) != 0) return -1;
    if (need_int(p, s, what, "batch", 1, &m->batch) != 0) return -1;
    if (need_int(p, s, what, "epochs", 1, &m->epochs) != 0) return -1;

    if (!(o = opt(s, "optimizer")))
        return perr(p, s->line, "%s: missing required key 'optimizer' (sgd or adam)", what);
    if (strcmp(o->val, "sgd") != 0 && strcmp(o->val, "adam") != 0)
        return bad_value(p, what, o, "must be 'sgd' or 'adam'");
    strcpy(m->optimizer, o->val);
    int adam = strcmp(m->optimizer, "adam") == 0;

    if (!(o = opt(s, "lr"))) return perr(p, s->line, "%s: missing required key 'lr'", what);
    if (float_value(p, what, o, 0.0, 1, INFINITY, 0, &m->lr) != 0) return -1;
    if (get_float(p, s, what, "weight_decay", 0.0f, 0.0, 0, INFINITY, 0, &m->weight_decay) != 0)
        return -1;
    if (get_float(p, s, what, "momentum", 0.0f, 0.0, 0, 1.0, 1, &m->momentum) != 0) return -1;
    if (get_float(p, s, what, "beta1", 0.9f, 0.0, 0, 1.0, 1, &m->beta1) != 0) return -1;
    if (get_float(p, s, what, "beta2", 0.999f, 0.0, 0, 1.0, 1, &m->beta2) != 0) return -1;
    if (get_float(p, s, what, "eps", 1e-8f, 0.0, 1, INFINITY, 0, &m->eps) != 0) return -1;
    /* Settings of the other optimizer would be silently ignored: say so, like an unused key. */
    static const char *const other[] = {"beta1", "beta2", "eps", "momentum"};
    for (int i = adam ? 3 : 0; i < (adam ? 4 : 3); i++)
        if ((o = opt(s, other[i])))
            pwarn(p, o->line, "key '%s' in [net] has no effect with optimizer=%s", o->key,
                  m->optimizer);

    m->normalize = 0;
    if ((o = opt(s, "normalize")) && strcmp(o->val, "none") != 0) {
        const char *rule = "must be 'none' or 'MEAN,STD' with STD > 0 (e.g. 0.5,0.5)";
        const char *comma = strchr(o->val, ',');
        if (!comma) return bad_value(p, what, o, rule);
        char a[64], b[64];
        size_t la = (size_t)(comma - o->val), lb = strlen(comma + 1);
        if (la >= sizeof a || lb >= sizeof b) return bad_value(p, what, o, rule);
        memcpy(a, o->val, la);
        a[la] = '\0';
        memcpy(b, comma + 1, lb + 1);
        if (parse_float(trim(a), &m->norm_mean) != 0 || parse_float(trim(b), &m->norm_std) != 0 ||
            !(m->norm_std > 0.0f))
            return bad_value(p, what, o, rule);
        m->normalize = 1;
    }
    if ((o = opt(s, "dataset")) && copy_string(p, what, o, m->dataset, sizeof m->dataset, 1) != 0)
        return -1;
    if ((o = opt(s, "source")) && copy_string(p, what, o, m->source, sizeof m->source, 0) != 0)
        return -1;
    warn_unused(p, s);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Layer sections                                                                              */

static const struct {
    const char *section;
    cnb_layer_type type;
} layer_sections[] = {
    {"conv", CNB_LAYER_CONV},     {"linear", CNB_LAYER_LINEAR}, {"maxpool", CNB_LAYER_MAXPOOL},
    {"avgpool", CNB_LAYER_AVGPOOL}, {"relu", CNB_LAYER_RELU},   {"tanh", CNB_LAYER_TANH},
    {"sigmoid", CNB_LAYER_SIGMOID}, {"prelu", CNB_LAYER_PRELU}, {"flatten", CNB_LAYER_FLATTEN},
};
#define N_LAYER_SECTIONS (int)(sizeof layer_sections / sizeof layer_sections[0])

const char *cnb_layer_type_name(cnb_layer_type t) {
    for (int i = 0; i < N_LAYER_SECTIONS; i++)
        if (layer_sections[i].type == t) return layer_sections[i].section;
    return "unknown";
}

/* "layer 3 conv conv2" or "layer 9 avgpool": how messages name a layer (1-based; the table's
 * row 0 is the input). */
static void layer_label(char *buf, size_t len, int index, const cnb_layer *l) {
    snprintf(buf, len, "layer %d %s%s%s", index, cnb_layer_type_name(l->type),
             l->name[0] ? " " : "", l->name);
}

static int parse_layer(parser *p, section *s, cnb_layer *l, int index, int ordinal) {
    char what[96];
    l->line = s->line;
    l->has_bias = 1;
    l->stride_h = l->stride_w = 1;

    /* The name comes first so that every later message can carry it. PyTorch-style defaults
     * (conv1, fc1, prelu1: the n-th layer of that type) match the notebooks' state_dict keys. */
    const char *prefix = l->type == CNB_LAYER_CONV     ? "conv"
                         : l->type == CNB_LAYER_LINEAR ? "fc"
                         : l->type == CNB_LAYER_PRELU  ? "prelu"
                                                       : NULL;
    if (prefix) snprintf(l->name, sizeof l->name, "%s%d", prefix, ordinal);
    kv *o = opt(s, "name");
    layer_label(what, sizeof what, index, l);
    if (o && copy_string(p, what, o, l->name, sizeof l->name, 1) != 0) return -1;
    layer_label(what, sizeof what, index, l);

    switch (l->type) {
    case CNB_LAYER_CONV:
        if (need_int(p, s, what, "filters", 1, &l->filters) != 0) return -1;
        if (get_pair(p, s, what, "size", 1, 0, 0, 1, &l->size_h, &l->size_w) != 0) return -1;
        if (get_pair(p, s, what, "stride", 0, 1, 1, 1, &l->stride_h, &l->stride_w) != 0) return -1;
        if (get_pair(p, s, what, "pad", 0, 0, 0, 0, &l->pad_h, &l->pad_w) != 0) return -1;
        if (get_int(p, s, what, "bias", 1, 0, 1, &l->has_bias) != 0) return -1;
        break;
    case CNB_LAYER_LINEAR:
        if (need_int(p, s, what, "outputs", 1, &l->outputs) != 0) return -1;
        if (get_int(p, s, what, "bias", 1, 0, 1, &l->has_bias) != 0) return -1;
        break;
    case CNB_LAYER_MAXPOOL:
    case CNB_LAYER_AVGPOOL:
        l->has_bias = 0;
        if (get_pair(p, s, what, "size", 1, 0, 0, 1, &l->size_h, &l->size_w) != 0) return -1;
        if (get_pair(p, s, what, "stride", 0, l->size_h, l->size_w, 1, &l->stride_h,
                     &l->stride_w) != 0)
            return -1;
        if (get_pair(p, s, what, "pad", 0, 0, 0, 0, &l->pad_h, &l->pad_w) != 0) return -1;
        break;
    case CNB_LAYER_PRELU:
        l->has_bias = 0;
        if (get_float(p, s, what, "init", 0.25f, -INFINITY, 0, INFINITY, 0, &l->prelu_init) != 0)
            return -1;
        break;
    default:
        l->has_bias = 0;
        break;
    }
    warn_unused(p, s);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Shape inference                                                                             */

static long long floor_div(long long a, long long b) {
    long long q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

/* Output size of a window of `k` with `stride` and `pad`, floor mode as in PyTorch. */
static long long window_out(long long in, int k, int stride, int pad) {
    return floor_div(in + 2LL * pad - k, stride) + 1;
}

/* c*h*w > INT_MAX, without overflowing on the way (each factor may be up to ~3 * INT_MAX). */
static int too_many_values(long long c, long long h, long long w) {
    if (c < 1 || h < 1 || w < 1) return 0;
    return h > INT_MAX / w || c > INT_MAX / (h * w);
}

static int infer_shapes(parser *p, cnb_model *m) {
    long long c = m->in_c, h = m->in_h, w = m->in_w;
    if (too_many_values(c, h, w))
        return perr(p, p->sec[0].line, "[net]: input %lldx%lldx%lld has more than %d values per "
                    "image", c, h, w, INT_MAX);
    int flat = 0;                   /* after [flatten] or [linear]: (features, 1, 1) */
    size_t offset = 0;
    char what[96];
    for (int i = 0; i < m->n_layers; i++) {
        cnb_layer *l = &m->layers[i];
        layer_label(what, sizeof what, i + 1, l);
        l->in_c = (int)c, l->in_h = (int)h, l->in_w = (int)w;
        l->weight_count = l->bias_count = 0;
        switch (l->type) {
        case CNB_LAYER_CONV:
        case CNB_LAYER_MAXPOOL:
        case CNB_LAYER_AVGPOOL: {
            const int conv = l->type == CNB_LAYER_CONV;
            const char *win = conv ? "kernel" : "window";
            if (flat)
                return perr(p, l->line, "%s: %s needs an image input, but its input is flat "
                            "(%lld values)", what, cnb_layer_type_name(l->type), c);
            /* A conv pad as large as the kernel makes border outputs see padding only; a pool
             * pad over half the window is refused by PyTorch ("pad should be at most half of
             * effective kernel size"). Both are mistakes, so say so here. */
            if (conv && (l->pad_h >= l->size_h || l->pad_w >= l->size_w))
                return perr(p, l->line, "%s: pad %dx%d must be smaller than the %dx%d kernel "
                            "(border outputs would see only padding)", what, l->pad_h, l->pad_w,
                            l->size_h, l->size_w);
            if (!conv && (2 * (long long)l->pad_h > l->size_h || 2 * (long long)l->pad_w > l->size_w))
                return perr(p, l->line, "%s: pad %dx%d must be at most half of the %dx%d window",
                            what, l->pad_h, l->pad_w, l->size_h, l->size_w);
            long long oc = conv ? l->filters : c;
            long long oh = window_out(h, l->size_h, l->stride_h, l->pad_h);
            long long ow = window_out(w, l->size_w, l->stride_w, l->pad_w);
            if (oh < 1 || ow < 1) {
                if (l->pad_h || l->pad_w)
                    return perr(p, l->line, "%s: input %lldx%lldx%lld (padded to %lldx%lldx%lld) "
                                "is smaller than the %dx%d %s (output would be %lldx%lldx%lld)",
                                what, c, h, w, c, h + 2LL * l->pad_h, w + 2LL * l->pad_w,
                                l->size_h, l->size_w, win, oc, oh < 0 ? 0 : oh, ow < 0 ? 0 : ow);
                return perr(p, l->line, "%s: input %lldx%lldx%lld is smaller than the %dx%d %s "
                            "(output would be %lldx%lldx%lld)", what, c, h, w, l->size_h,
                            l->size_w, win, oc, oh < 0 ? 0 : oh, ow < 0 ? 0 : ow);
            }
            if (conv) {
                size_t t;
                if (cnb_mul_size((size_t)l->filters, (size_t)c, &t) != 0 ||
                    cnb_mul_size(t, (size_t)l->size_h, &t) != 0 ||
                    cnb_mul_size(t, (size_t)l->size_w, &t) != 0 || t > INT_MAX)
                    return perr(p, l->line, "%s: too many weights (%d x %lld x %d x %d > %d)",
                                what, l->filters, c, l->size_h, l->size_w, INT_MAX);
                l->weight_count = t;
                l->bias_count = l->has_bias ? (size_t)l->filters : 0;
            }
            c = oc, h = oh, w = ow;
            break;
        }
        case CNB_LAYER_LINEAR:
            if (!flat)
                return perr(p, l->line, "%s: linear needs a flat input; add [flatten] before it "
                            "— input is %lldx%lldx%lld", what, c, h, w);
            if ((long long)l->outputs * c > INT_MAX)
                return perr(p, l->line, "%s: too many weights (%d x %lld > %d)", what,
                            l->outputs, c, INT_MAX);
            l->weight_count = (size_t)l->outputs * (size_t)c;
            l->bias_count = l->has_bias ? (size_t)l->outputs : 0;
            c = l->outputs, h = 1, w = 1;
            break;
        case CNB_LAYER_FLATTEN:
            c = c * h * w, h = 1, w = 1;
            flat = 1;
            break;
        case CNB_LAYER_PRELU:
            l->weight_count = 1;
            break;
        default: /* relu, tanh, sigmoid keep the shape */
            break;
        }
        if (l->type == CNB_LAYER_LINEAR) flat = 1;
        if (too_many_values(c, h, w))
            return perr(p, l->line, "%s: output %lldx%lldx%lld has more than %d values per image",
                        what, c, h, w, INT_MAX);
        l->out_c = (int)c, l->out_h = (int)h, l->out_w = (int)w;
        l->param_offset = offset;
        size_t n = l->weight_count + l->bias_count;
        if (offset > SIZE_MAX - n) return perr(p, l->line, "%s: too many parameters", what);
        offset += n;
    }
    const cnb_layer *last = &m->layers[m->n_layers - 1];
    layer_label(what, sizeof what, m->n_layers, last);
    if (!flat)
        return perr(p, last->line, "%s: the network ends with an image %dx%dx%d; it must end with "
                    "classes=%d flat values (add [flatten] and a [linear] layer)", what,
                    last->out_c, last->out_h, last->out_w, m->classes);
    if (last->out_c != m->classes)
        return perr(p, last->line, "%s: the network ends with %d values but [net] classes=%d",
                    what, last->out_c, m->classes);
    m->n_params = offset;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Entry points                                                                                */

static void stem_of(const char *path, char *out, size_t len) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 4 && strcmp(base + n - 4, ".cfg") == 0) n -= 4;
    if (n >= len) n = len - 1;
    memcpy(out, base, n);
    out[n] = '\0';
}

int cnb_model_parse(const char *text, const char *name, cnb_model *m, FILE *warn, char *err,
                    size_t err_len) {
    if (!name) name = "<model>";
    memset(m, 0, sizeof *m);
    size_t len = strlen(text);
    char *copy = malloc(len + 1);
    section *secs = calloc(MAX_SECTIONS, sizeof *secs);
    parser p = {.file = name, .warn = warn, .err = err, .err_len = err_len, .sec = secs};
    int rc = -1;
    if (!copy || !secs) {
        cnb_errf(err, err_len, "%s: out of memory", name);
        goto out;
    }
    memcpy(copy, text, len + 1);
    if (split_sections(&p, copy) != 0) goto out;

    if (strcmp(secs[0].name, "net") != 0) {
        perr(&p, secs[0].line, "the first section must be [net], found [%s]", secs[0].name);
        goto out;
    }
    stem_of(name, m->name, sizeof m->name);
    if (parse_net(&p, &secs[0], m) != 0) goto out;
    if (p.n_sec == 1) {
        perr(&p, secs[0].line, "[net] is followed by no layers");
        goto out;
    }
    int ordinal[N_LAYER_SECTIONS] = {0};
    for (int i = 1; i < p.n_sec; i++) {
        section *s = &secs[i];
        int k = 0;
        while (k < N_LAYER_SECTIONS && strcmp(layer_sections[k].section, s->name) != 0) k++;
        if (k == N_LAYER_SECTIONS) {
            if (strcmp(s->name, "net") == 0)
                perr(&p, s->line, "a second [net] section (the first is at line %d)", secs[0].line);
            else
                perr(&p, s->line, "unknown section [%s] (layer %d); known: conv, linear, maxpool, "
                     "avgpool, relu, tanh, sigmoid, prelu, flatten", s->name, i);
            goto out;
        }
        cnb_layer *l = &m->layers[m->n_layers];
        l->type = layer_sections[k].type;
        if (parse_layer(&p, s, l, i, ++ordinal[k]) != 0) goto out;
        /* Names become parameter names, so two layers may not share one. */
        for (int j = 0; j < m->n_layers; j++)
            if (l->name[0] && strcmp(m->layers[j].name, l->name) == 0) {
                char what[96];
                layer_label(what, sizeof what, i, l);
                perr(&p, l->line, "%s: name '%s' is already used by layer %d (line %d)", what,
                     l->name, j + 1, m->layers[j].line);
                goto out;
            }
        m->n_layers++;
    }
    if (infer_shapes(&p, m) != 0) goto out;
    rc = 0;
out:
    free(copy);
    free(secs);
    if (rc != 0) {
        /* Leave no half-filled model behind for a caller that ignores the status. */
        memset(m, 0, sizeof *m);
    }
    return rc;
}

int cnb_model_load(const char *path, cnb_model *m, FILE *warn, char *err, size_t err_len) {
    memset(m, 0, sizeof *m);
    if (strlen(path) >= sizeof m->path)
        return cnb_errf(err, err_len, "model file path is too long: %.64s...", path);
    FILE *f = fopen(path, "rb");
    if (!f) return cnb_errf(err, err_len, "%s: cannot open model file: %s", path, strerror(errno));
    char *buf = malloc(MAX_FILE_BYTES + 1);
    if (!buf) {
        fclose(f);
        return cnb_errf(err, err_len, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, MAX_FILE_BYTES + 1, f);
    int read_err = ferror(f);
    fclose(f);
    if (read_err) {
        free(buf);
        return cnb_errf(err, err_len, "%s: read error", path);
    }
    if (n > MAX_FILE_BYTES) {
        free(buf);
        return cnb_errf(err, err_len, "%s: larger than %d bytes; is this a model file?", path,
                        MAX_FILE_BYTES);
    }
    buf[n] = '\0';
    if (memchr(buf, '\0', n)) {
        int line = 1;
        for (const char *c = buf; *c; c++) line += *c == '\n';
        free(buf);
        return cnb_errf(err, err_len, "%s:%d: NUL byte in the file; is this a model file?", path,
                        line);
    }
    int rc = cnb_model_parse(buf, path, m, warn, err, err_len);
    free(buf);
    if (rc == 0) snprintf(m->path, sizeof m->path, "%s", path);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Finding model files                                                                         */

const char *cnb_models_dir(void) {
    static char dir[4096];
    const char *env = getenv("CNNBENCH_MODELS_DIR");
    if (env && *env) {
        snprintf(dir, sizeof dir, "%s", env);
        return dir;
    }
    return cnb_default_dir(CNB_DIR_MODELS, dir, sizeof dir);
}

/* <dir>/<file> in the first of $CNNBENCH_MODEL_PATH's directories that has it; 0 when found. */
static int find_in_model_path(const char *file, char *cand, size_t len) {
    char *dirs[CNB_MAX_SEARCH_DIRS];
    int n = cnb_search_dirs("CNNBENCH_MODEL_PATH", cnb_models_dir(), dirs, CNB_MAX_SEARCH_DIRS);
    int found = -1;
    for (int i = 0; i < n && found != 0; i++)
        if (snprintf(cand, len, "%s/%s", dirs[i], file) < (int)len && access(cand, R_OK) == 0)
            found = 0;
    cnb_free_search_dirs(dirs, n);
    return found;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "cnn, lenet5, network" — the *.cfg names in dir, sorted; "(none)" when there are none. */
static void list_models(const char *dir, char *out, size_t len) {
    char *names[256];
    int n = 0;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) && n < 256) {
            size_t l = strlen(e->d_name);
            if (l > 4 && strcmp(e->d_name + l - 4, ".cfg") == 0 && e->d_name[0] != '.') {
                names[n] = malloc(l - 3);
                if (!names[n]) break;
                memcpy(names[n], e->d_name, l - 4);
                names[n][l - 4] = '\0';
                n++;
            }
        }
        closedir(d);
    }
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (used < len) {
            int w = snprintf(out + used, len - used, "%s%s", i ? ", " : "", names[i]);
            if (w > 0) used += (size_t)w;
        }
        free(names[i]);
    }
    if (n == 0) snprintf(out, len, "(none)");
}

int cnb_model_resolve(const char *name_or_path, char *path, size_t path_len, char *err,
                      size_t err_len) {
    if (!name_or_path || !*name_or_path) return cnb_errf(err, err_len, "empty model name");
    const char *dir = cnb_models_dir();
    size_t n = strlen(name_or_path);
    int ends_cfg = n > 4 && strcmp(name_or_path + n - 4, ".cfg") == 0;
    char cand[4096];
    if (strchr(name_or_path, '/') || ends_cfg) {
        if (access(name_or_path, R_OK) == 0) {
            if (n >= path_len) return cnb_errf(err, err_len, "model path too long: %s", name_or_path);
            memcpy(path, name_or_path, n + 1);
            return 0;
        }
        int e = errno;
        /* "simplecnn.cfg" alone may also mean the file of that name in the models directory. */
        if (!strchr(name_or_path, '/') && find_in_model_path(name_or_path, cand, sizeof cand) == 0)
            goto found;
        return cnb_errf(err, err_len, "model file '%s': %s", name_or_path, strerror(e));
    }
    char file[512];
    if (snprintf(file, sizeof file, "%s.cfg", name_or_path) >= (int)sizeof file)
        return cnb_errf(err, err_len, "model name too long: %.64s...", name_or_path);
    if (find_in_model_path(file, cand, sizeof cand) == 0) goto found;
    char avail[1024];
    list_models(dir, avail, sizeof avail);
    return cnb_errf(err, err_len, "unknown model '%s': no %s/%s.cfg; available models: %s (or "
                    "give the path of a .cfg file)", name_or_path, dir, name_or_path, avail);
found:
    if (strlen(cand) >= path_len) return cnb_errf(err, err_len, "model path too long: %s", cand);
    snprintf(path, path_len, "%s", cand);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The layer table                                                                             */

static void layer_options(const cnb_layer *l, char *buf, size_t len) {
    char k[32], st[32], pad[32] = "";
    snprintf(k, sizeof k, "%dx%d", l->size_h, l->size_w);
    if (l->stride_h == l->stride_w) snprintf(st, sizeof st, "/%d", l->stride_h);
    else snprintf(st, sizeof st, "/%dx%d", l->stride_h, l->stride_w);
    if (l->pad_h == l->pad_w) snprintf(pad, sizeof pad, "pad %d", l->pad_h);
    else snprintf(pad, sizeof pad, "pad %dx%d", l->pad_h, l->pad_w);
    switch (l->type) {
    case CNB_LAYER_CONV:
        snprintf(buf, len, "%d %s %s %s%s", l->filters, k, st, pad, l->has_bias ? "" : " nobias");
        break;
    case CNB_LAYER_LINEAR:
        snprintf(buf, len, "%d -> %d%s", l->in_c, l->outputs, l->has_bias ? "" : " nobias");
        break;
    case CNB_LAYER_MAXPOOL:
    case CNB_LAYER_AVGPOOL:
        snprintf(buf, len, "%s %s%s%s", k, st, (l->pad_h || l->pad_w) ? " " : "",
                 (l->pad_h || l->pad_w) ? pad : "");
        break;
    case CNB_LAYER_PRELU:
        snprintf(buf, len, "init %g", (double)l->prelu_init);
        break;
    default:
        buf[0] = '\0';
        break;
    }
}

static void shape_str(char *buf, size_t len, int batch, int flat, int c, int h, int w) {
    if (flat) snprintf(buf, len, "[%d, %d]", batch, c);
    else snprintf(buf, len, "[%d, %d, %d, %d]", batch, c, h, w);
}

void cnb_model_print(const cnb_model *m, int batch, FILE *out) {
    enum { COLS = 5, CELL = 128 };
    char cell[CNB_MAX_LAYERS + 1][COLS][CELL]; /* name, type, options, output, params */
    const char *head[COLS] = {"name", "type", "options", "output", "params"};
    int rows = m->n_layers + 1;
    size_t width[COLS];
    for (int c = 0; c < COLS; c++) width[c] = strlen(head[c]);

    snprintf(cell[0][0], CELL, "input");
    cell[0][1][0] = cell[0][2][0] = cell[0][4][0] = '\0';
    shape_str(cell[0][3], CELL, batch, 0, m->in_c, m->in_h, m->in_w);
    int flat = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const cnb_layer *l = &m->layers[i];
        char(*row)[CELL] = cell[i + 1];
        snprintf(row[0], CELL, "%s", l->name);
        snprintf(row[1], CELL, "%s", cnb_layer_type_name(l->type));
        layer_options(l, row[2], CELL);
        if (l->type == CNB_LAYER_FLATTEN || l->type == CNB_LAYER_LINEAR) flat = 1;
        shape_str(row[3], CELL, batch, flat, l->out_c, l->out_h, l->out_w);
        size_t np = l->weight_count + l->bias_count;
        if (np) snprintf(row[4], CELL, "%zu", np);
        else row[4][0] = '\0';
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < COLS; c++)
            if (strlen(cell[r][c]) > width[c]) width[c] = strlen(cell[r][c]);

    const int iw = 2; /* CNB_MAX_LAYERS + 1 rows fit in two digits */
    fprintf(out, " %*s  %-*s  %-*s  %-*s  %-*s  %*s\n", iw, "#", (int)width[0], head[0],
            (int)width[1], head[1], (int)width[2], head[2], (int)width[3], head[3],
            (int)width[4], head[4]);
    for (int r = 0; r < rows; r++) {
        fprintf(out, " %*d  %-*s  %-*s  %-*s  ", iw, r, (int)width[0], cell[r][0], (int)width[1],
                cell[r][1], (int)width[2], cell[r][2]);
        /* No trailing blanks after the last filled column: rows stay easy to grep. */
        if (cell[r][4][0])
            fprintf(out, "%-*s  %*s\n", (int)width[3], cell[r][3], (int)width[4], cell[r][4]);
        else
            fprintf(out, "%s\n", cell[r][3]);
    }
    fprintf(out, " total parameters: %zu\n", m->n_params);
}

void cnb_model_print_settings(const cnb_model *m, FILE *out) {
    fprintf(out, "%s: input %dx%dx%d, %d classes, data %s, batch %d, %d epochs, %s lr %g", m->name,
            m->in_c, m->in_h, m->in_w, m->classes, m->dataset[0] ? m->dataset : "(default)",
            m->batch, m->epochs, m->optimizer, (double)m->lr);
    if (strcmp(m->optimizer, "adam") == 0)
        fprintf(out, " betas (%g, %g) eps %g", (double)m->beta1, (double)m->beta2, (double)m->eps);
    else
        fprintf(out, " momentum %g", (double)m->momentum);
    if (m->weight_decay > 0.0f) fprintf(out, " weight_decay %g", (double)m->weight_decay);
    if (m->normalize) fprintf(out, ", normalize (%g, %g)", (double)m->norm_mean, (double)m->norm_std);
    else fprintf(out, ", no normalization");
    fputc('\n', out);
}

int cnb_layer_activation(cnb_layer_type t) {
    switch (t) {
    case CNB_LAYER_RELU: return CNB_ACT_RELU;
    case CNB_LAYER_TANH: return CNB_ACT_TANH;
    case CNB_LAYER_SIGMOID: return CNB_ACT_SIGMOID;
    case CNB_LAYER_PRELU: return CNB_ACT_PRELU;
    default: return -1;
    }
}

int cnb_model_find_layer(const cnb_model *m, const char *name) {
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].name[0] && strcmp(m->layers[i].name, name) == 0) return i;
    return -1;
}
