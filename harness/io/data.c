/* data.c — readers for IDX files (raw or gzip'd, both through zlib), Kaggle-layout CSV files and
 * the named data sets (Fashion-MNIST, MNIST, CSV), plus pixel -> float conversion and shuffling.
 * Every reader validates what it reads and fails with "<path>: <what is wrong>". */
#define _POSIX_C_SOURCE 200809L
#include "data.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "util.h"

/* gzread takes an unsigned and returns an int: read in chunks well below INT_MAX. Big chunks
 * let zlib inflate (or read(2), for raw files) straight into the caller's buffer. */
#define READ_CHUNK ((size_t)1 << 26)
/* zlib's own input/output buffers; the default 8 KiB costs many small read(2) calls. */
#define GZ_BUFFER (1u << 18)

/* ---------------------------------------------------------------------------------------------
 * Opening and reading through zlib */

/* Opens path for reading through zlib (gzip'd or raw alike). *size is the on-disk size, which
 * for a raw file is the data size and lets the IDX readers check it without reading it all. */
static gzFile open_gz(const char *path, long long *size, char *err, size_t err_len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cnb_errf(err, err_len, "%s: cannot open: %s", path, strerror(errno)), NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return cnb_errf(err, err_len, "%s: cannot read: %s", path, strerror(e)), NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return cnb_errf(err, err_len, "%s: cannot read: %s", path,
                        S_ISDIR(st.st_mode) ? "it is a directory, not a file"
                                            : "not a regular file"),
               NULL;
    }
    *size = (long long)st.st_size;
    gzFile f = gzdopen(fd, "rb");
    if (!f) {
        close(fd);
        return cnb_errf(err, err_len, "%s: cannot open through zlib (out of memory?)", path), NULL;
    }
    gzbuffer(f, GZ_BUFFER);
    return f;
}

/* zlib's messages already start with "<path>: "; we pass the path ourselves, so drop it. */
static const char *gz_message(gzFile f, int *errnum) {
    const char *msg = gzerror(f, errnum);
    const char *sep = msg ? strstr(msg, ": ") : NULL;
    /* gzdopen names the file "<fd:N>", which is what zlib puts in front of its messages. */
    if (sep && strncmp(msg, "<fd:", 4) == 0) return sep + 2;
    return msg ? msg : "unknown zlib error";
}

/* Reads up to n bytes into buf. Returns the number read (short only at the end of the data), or
 * -1 with err set when zlib reports an error (corrupt or cut-off gzip stream, I/O error).
 * pos is where buf starts in the (decompressed) data, for the message. */
static long long read_bytes(gzFile f, const char *path, long long pos, void *buf, size_t n,
                            char *err, size_t err_len) {
    size_t done = 0;
    while (done < n) {
        size_t want = n - done < READ_CHUNK ? n - done : READ_CHUNK;
        int got = gzread(f, (unsigned char *)buf + done, (unsigned)want);
        if (got > 0) done += (size_t)got;
        if (got < 0 || (size_t)got < want) {
            int errnum = Z_OK;
            const char *msg = gz_message(f, &errnum);
            if (got < 0 || (errnum != Z_OK && errnum != Z_STREAM_END)) {
                if (errnum == Z_ERRNO)
                    return cnb_errf(err, err_len, "%s: read error: %s", path, msg);
                long long at = pos + (long long)done;
                if (errnum == Z_BUF_ERROR)
                    return cnb_errf(err, err_len,
                                    "%s: corrupt gzip stream: %s (the compressed file is cut "
                                    "off after %lld bytes of decompressed data)",
                                    path, msg, at);
                /* No position here: zlib inflates ahead of what we asked for, so the damage
                 * may lie well past the bytes delivered so far. */
                return cnb_errf(err, err_len, "%s: corrupt gzip stream: %s", path, msg);
            }
            break; /* clean end of data */
        }
    }
    return (long long)done;
}

/* Counts the bytes left after the data, which ends at pos (reads them all; zlib checks the gzip
 * CRC on the way, so this is also where a damaged .gz file shows). -1 on a zlib error. */
static long long count_rest(gzFile f, const char *path, long long pos, char *err,
                            size_t err_len) {
    unsigned char buf[65536];
    long long total = 0;
    for (;;) {
        long long got = read_bytes(f, path, pos + total, buf, sizeof buf, err, err_len);
        if (got < 0) return -1;
        total += got;
        if ((size_t)got < sizeof buf) return total;
    }
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* ---------------------------------------------------------------------------------------------
 * IDX: a 4-byte magic 00 00 <type> <ndims>, ndims big-endian uint32 sizes, then the data. */

static const char *idx_type_name(unsigned t) {
    switch (t) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    default: return "unknown";
    }
}

/* Opens an IDX file and reads and checks its header: unsigned-byte data with `ndims` dimensions
 * (3 for images, 1 for labels). dims receives the sizes; *file_size the on-disk size. */
static gzFile idx_open(const char *path, unsigned ndims, uint32_t dims[3], long long *file_size,
                       char *err, size_t err_len) {
    const char *what = ndims == 3 ? "idx3 images" : "idx1 labels";
    unsigned expect_magic = 0x0800u | ndims;
    size_t header_len = 4 + 4 * (size_t)ndims;
    gzFile f = open_gz(path, file_size, err, err_len);
    if (!f) return NULL;

    unsigned char h[16];
    long long got = read_bytes(f, path, 0, h, header_len, err, err_len);
    if (got < 0) goto fail;
    if (got < 4) {
        cnb_errf(err, err_len,
                 "%s: truncated header: an %s file starts with a %zu-byte header but the file "
                 "has only %lld bytes",
                 path, what, header_len, got);
        goto fail;
    }
    uint32_t magic = be32(h);
    if (h[0] != 0 || h[1] != 0) {
        cnb_errf(err, err_len,
                 "%s: not an IDX file: bad magic number 0x%08X (expected 0x%08X for %s)", path,
                 magic, expect_magic, what);
        goto fail;
    }
    if (h[2] != 0x08) {
        cnb_errf(err, err_len,
                 "%s: bad magic number 0x%08X: data type 0x%02X (%s), expected 0x08 (unsigned "
                 "byte) for %s",
                 path, magic, h[2], idx_type_name(h[2]), what);
        goto fail;
    }
    if (h[3] != ndims) {
        const char *hint = h[3] == 1 ? " (is this a labels file?)"
                           : h[3] == 3 ? " (is this an images file?)" : "";
        cnb_errf(err, err_len,
                 "%s: bad magic number 0x%08X: %u dimension%s, expected %u for %s%s", path,
                 magic, h[3], h[3] == 1 ? "" : "s", ndims, what, hint);
        goto fail;
    }
    if ((size_t)got < header_len) {
        cnb_errf(err, err_len,
                 "%s: truncated header: an %s header is %zu bytes but the file has only %lld bytes",
                 path, what, header_len, got);
        goto fail;
    }
    for (unsigned i = 0; i < ndims; i++) dims[i] = be32(h + 4 + 4 * i);
    return f;
fail:
    gzclose(f);
    return NULL;
}

/* Checks a raw (uncompressed) IDX file's size against what its header promises, without reading
 * the data: catches truncation and trailing bytes even when `limit` reads only a few items.
 * For a .gz file the sizes are checked while reading instead. */
static int idx_check_raw_size(gzFile f, const char *path, long long file_size, size_t expect,
                              const char *promise, char *err, size_t err_len) {
    if (!gzdirect(f)) return 0;
    if ((unsigned long long)file_size < expect)
        return cnb_errf(err, err_len,
                        "%s: truncated: header promises %s (%zu bytes with the header) but the "
                        "file ends after %lld bytes",
                        path, promise, expect, file_size);
    if ((unsigned long long)file_size > expect)
        return cnb_errf(err, err_len,
                        "%s: trailing garbage: %lld bytes after the %s the header promises (file "
                        "is %lld bytes, expected %zu)",
                        path, file_size - (long long)expect, promise, file_size, expect);
    return 0;
}

/* After the data of a .gz file: anything more is an error (we refuse rather than warn, since a
 * file longer than its header says is as likely damaged as a short one). */
static int idx_check_no_trailing(gzFile f, const char *path, size_t expect, const char *promise,
                                 char *err, size_t err_len) {
    long long rest = count_rest(f, path, (long long)expect, err, err_len);
    if (rest < 0) return -1;
    if (rest > 0)
        return cnb_errf(err, err_len,
                        "%s: trailing garbage: %lld bytes after the %s the header promises "
                        "(decompressed size %lld, expected %zu)",
                        path, rest, promise, (long long)expect + rest, expect);
    return 0;
}

static int check_limit(const char *path, int limit, char *err, size_t err_len) {
    if (limit < 0) return cnb_errf(err, err_len, "%s: limit must be >= 0, got %d", path, limit);
    return 0;
}

/* Reads the first `limit` (0: all) of the `promised` records of rec_bytes each, found after a
 * header of hdr bytes, into a new buffer, and closes f; *count gets how many. A raw file of the
 * wrong size or a short file is refused, and when all records were asked for, anything after
 * them is garbage. unit names what a byte of the buffer is for the out-of-memory message. */
static uint8_t *idx_read_records(gzFile f, const char *path, long long file_size, size_t hdr,
                                 int limit, uint32_t promised, size_t rec_bytes,
                                 const char *promise, const char *unit, int *count, char *err,
                                 size_t err_len) {
    int n = (limit > 0 && (uint32_t)limit < promised) ? limit : (int)promised;
    size_t want = (size_t)n * rec_bytes, total = (size_t)promised * rec_bytes;
    uint8_t *buf = NULL;
    if (idx_check_raw_size(f, path, file_size, hdr + total, promise, err, err_len)) goto fail;
    buf = malloc(want);
    if (!buf) {
        cnb_errf(err, err_len, "%s: out of memory for %zu %s", path, want, unit);
        goto fail;
    }
    long long got = read_bytes(f, path, (long long)hdr, buf, want, err, err_len);
    if (got < 0) goto fail;
    if ((size_t)got < want) {
        if ((uint32_t)n == promised)
            cnb_errf(err, err_len,
                     "%s: truncated: header promises %s (%zu bytes with the %zu-byte header) but "
                     "the file ends after %lld bytes",
                     path, promise, hdr + total, hdr, (long long)hdr + got);
        else
            cnb_errf(err, err_len,
                     "%s: truncated: header promises %s; the first %d of them need %zu bytes "
                     "with the %zu-byte header but the file ends after %lld bytes",
                     path, promise, n, hdr + want, hdr, (long long)hdr + got);
        goto fail;
    }
    if ((uint32_t)n == promised && !gzdirect(f) &&
        idx_check_no_trailing(f, path, hdr + total, promise, err, err_len))
        goto fail;
    gzclose(f);
    *count = n;
    return buf;
fail:
    gzclose(f);
    free(buf);
    return NULL;
}

/* cnb_idx_read_images, also returning the image count the header promises (before `limit`). */
static int read_images(const char *path, int limit, uint8_t **pixels, int *count, int *rows,
                       int *cols, uint32_t *header_count, char *err, size_t err_len) {
    *pixels = NULL;
    if (check_limit(path, limit, err, err_len)) return -1;
    uint32_t d[3];
    long long file_size = 0;
    gzFile f = idx_open(path, 3, d, &file_size, err, err_len);
    if (!f) return -1;
    char promise[128];
    snprintf(promise, sizeof promise, "%u images of %ux%u", d[0], d[1], d[2]);

    if (d[0] == 0 || d[1] == 0 || d[2] == 0) {
        cnb_errf(err, err_len, "%s: bad dimensions: header says %s (zero)", path, promise);
        goto fail;
    }
    /* Products in 64 bits cannot overflow past 2^96, but two factors of 2^32 can: check each. */
    size_t image_bytes = 0, total = 0;
    if (cnb_mul_size(d[1], d[2], &image_bytes) || cnb_mul_size(image_bytes, d[0], &total)) {
        cnb_errf(err, err_len, "%s: dimensions too large: header says %s, which overflows size_t",
                 path, promise);
        goto fail;
    }
    if (total > CNB_DATA_MAX_BYTES) {
        cnb_errf(err, err_len,
                 "%s: dimensions too large: header says %s = %zu bytes, over the %u MiB limit",
                 path, promise, total, (unsigned)(CNB_DATA_MAX_BYTES >> 20));
        goto fail;
    }
    int n = 0;
    *pixels = idx_read_records(f, path, file_size, 16, limit, d[0], image_bytes, promise,
                               "bytes of pixels", &n, err, err_len);
    if (!*pixels) return -1;
    *count = n;
    *rows = (int)d[1];
    *cols = (int)d[2];
    if (header_count) *header_count = d[0];
    return 0;
fail:
    gzclose(f);
    return -1;
}

static int check_classes(const char *path, int classes, char *err, size_t err_len) {
    if (classes < 1 || classes > 256)
        return cnb_errf(err, err_len, "%s: number of classes must be in 1..256 for byte labels, got %d",
                        path, classes);
    return 0;
}

/* Reports the first label out of [0, classes) and whether there are more. */
static int check_labels(const char *path, const uint8_t *labels, int n, int classes, char *err,
                        size_t err_len) {
    int bad = 0, first = -1;
    for (int i = 0; i < n; i++)
        if (labels[i] >= classes) {
            if (first < 0) first = i;
            bad++;
        }
    if (!bad) return 0;
    return cnb_errf(err, err_len, "%s: label %u at index %d is out of range [0, %d)%s", path,
                    labels[first], first, classes,
                    bad > 1 ? " (and more labels after it)" : "");
}

static int read_labels(const char *path, int limit, uint8_t **labels, int *count, int classes,
                       uint32_t *header_count, char *err, size_t err_len) {
    *labels = NULL;
    if (check_limit(path, limit, err, err_len) || check_classes(path, classes, err, err_len))
        return -1;
    uint32_t d[3];
    long long file_size = 0;
    gzFile f = idx_open(path, 1, d, &file_size, err, err_len);
    if (!f) return -1;
    char promise[64];
    snprintf(promise, sizeof promise, "%u labels", d[0]);
    if (d[0] == 0) {
        cnb_errf(err, err_len, "%s: bad dimensions: header says 0 labels", path);
        goto fail;
    }
    if (d[0] > CNB_DATA_MAX_BYTES) {
        cnb_errf(err, err_len, "%s: dimensions too large: header says %s, over the %u MiB limit",
                 path, promise, (unsigned)(CNB_DATA_MAX_BYTES >> 20));
        goto fail;
    }
    int n = 0;
    uint8_t *buf = idx_read_records(f, path, file_size, 8, limit, d[0], 1, promise, "labels", &n,
                                    err, err_len);
    if (!buf) return -1;
    if (check_labels(path, buf, n, classes, err, err_len)) {
        free(buf);
        return -1;
    }
    *labels = buf;
    *count = n;
    if (header_count) *header_count = d[0];
    return 0;
fail:
    gzclose(f);
    return -1;
}

int cnb_idx_read_images(const char *path, int limit, uint8_t **pixels, int *count, int *rows,
                        int *cols, char *err, size_t err_len) {
    return read_images(path, limit, pixels, count, rows, cols, NULL, err, err_len);
}

int cnb_idx_read_labels(const char *path, int limit, uint8_t **labels, int *count, int classes,
                        char *err, size_t err_len) {
    return read_labels(path, limit, labels, count, classes, NULL, err, err_len);
}

static void set_path(char *dst, size_t len, const char *src) {
    snprintf(dst, len, "%s", src);
}

int cnb_dataset_load_idx(const char *images_path, const char *labels_path, int limit, int classes,
                         cnb_dataset *out, char *err, size_t err_len) {
    memset(out, 0, sizeof *out);
    uint32_t n_images = 0, n_labels = 0;
    int ni = 0, nl = 0;
    if (read_images(images_path, limit, &out->pixels, &ni, &out->rows, &out->cols, &n_images, err,
                    err_len))
        return -1;
    if (read_labels(labels_path, limit, &out->labels, &nl, classes, &n_labels, err, err_len)) {
        cnb_dataset_free(out);
        return -1;
    }
    /* Compare the headers, not what was read: with a limit both would read `limit` items. */
    if (n_images != n_labels) {
        cnb_errf(err, err_len,
                 "%s: image count and label count disagree: %u images here but %u labels in %s",
                 images_path, n_images, n_labels, labels_path);
        cnb_dataset_free(out);
        return -1;
    }
    out->count = ni;
    out->classes = classes;
    set_path(out->images_path, sizeof out->images_path, images_path);
    set_path(out->labels_path, sizeof out->labels_path, labels_path);
    return 0;
}

void cnb_dataset_free(cnb_dataset *d) {
    if (!d) return;
    free(d->pixels);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

/* ---------------------------------------------------------------------------------------------
 * CSV (Kaggle layout): "label,pixel1,...,pixelN" then "label,p1,...,pN" rows of integers. */

/* One line at a time through zlib (so a .csv.gz works too), without its end-of-line characters.
 * Returns 1 with a line, 0 at the end, -1 on a zlib error. */
typedef struct line_reader {
    gzFile f;
    const char *path;
    char *buf;
    size_t cap, len;
    unsigned long number; /* 1-based number of the line in buf */
} line_reader;

static int next_line(line_reader *r, char *err, size_t err_len) {
    r->len = 0;
    for (;;) {
        if (r->cap - r->len < 2) {
            size_t cap = r->cap ? 2 * r->cap : 8192;
            char *p = realloc(r->buf, cap);
            if (!p) return cnb_errf(err, err_len, "%s: out of memory reading line %lu", r->path,
                                    r->number + 1);
            r->buf = p;
            r->cap = cap;
        }
        size_t room = r->cap - r->len;
        if (room > INT_MAX) room = INT_MAX;
        char *s = gzgets(r->f, r->buf + r->len, (int)room);
        int errnum = Z_OK;
        const char *msg = gz_message(r->f, &errnum);
        if (errnum != Z_OK && errnum != Z_STREAM_END) {
            if (errnum == Z_ERRNO)
                return cnb_errf(err, err_len, "%s: read error: %s", r->path, msg);
            return cnb_errf(err, err_len, "%s: corrupt gzip stream: %s", r->path, msg);
        }
        if (!s) {
            if (r->len == 0) return 0; /* end of file */
            break;                     /* last line without a newline */
        }
        r->len += strlen(r->buf + r->len);
        if (r->len && r->buf[r->len - 1] == '\n') break;
        if (gzeof(r->f)) break; /* last line without a newline */
    }
    r->number++;
    while (r->len && (r->buf[r->len - 1] == '\n' || r->buf[r->len - 1] == '\r')) r->len--;
    r->buf[r->len] = '\0';
    return 1;
}

static int is_blank(const char *s) {
    while (*s == ' ' || *s == '\t') s++;
    return *s == '\0';
}

static int is_blank_span(const char *s, const char *e) {
    for (; s < e; s++)
        if (*s != ' ' && *s != '\t') return 0;
    return 1;
}

/* Trims spaces and one pair of double quotes in place (header names only). */
static char *trim_field(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = '\0';
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s[n - 1] = '\0';
        s++;
    }
    return s;
}

/* Splits line in place at commas into at most max fields; returns the number of fields
 * (which may exceed max: the extra ones are counted, not stored). */
static int split_commas(char *line, char **fields, int max) {
    int n = 0;
    for (char *p = line;;) {
        char *comma = strchr(p, ',');
        if (n < max) fields[n] = p;
        n++;
        if (!comma) return n;
        *comma = '\0';
        p = comma + 1;
    }
}

/* Header: "label" then pixel column names, which we accept in the layouts Kaggle's MNIST-style
 * sets use: pixel1..pixelN (Fashion-MNIST), pixel0..pixelN-1 (Digit Recognizer) or 1x1..RxC
 * (MNIST in CSV). Sets *pixels to N and *side to sqrt(N). */
static int parse_header(const char *path, char *line, int *pixels, int *side, char *err,
                        size_t err_len) {
    if ((unsigned char)line[0] == 0xEF && (unsigned char)line[1] == 0xBB &&
        (unsigned char)line[2] == 0xBF)
        line += 3; /* UTF-8 byte-order mark, as spreadsheet programs write */
    int fields = 1;
    for (const char *p = line; *p; p++) fields += *p == ',';
    if (fields > (1 << 24))
        return cnb_errf(err, err_len, "%s: bad header on line 1: %d columns is too many", path,
                        fields);
    char **name = malloc((size_t)fields * sizeof *name);
    if (!name) return cnb_errf(err, err_len, "%s: out of memory reading the header", path);
    split_commas(line, name, fields);
    int rc = 0, n = fields - 1, s = (int)lround(sqrt((double)n));
    char *first = trim_field(name[0]);
    if (strcasecmp(first, "label") != 0) {
        rc = cnb_errf(err, err_len,
                      "%s: bad header on line 1: first column is '%.40s', expected 'label' (the "
                      "Kaggle layout 'label,pixel1,...,pixel784'; is the header row missing?)",
                      path, first);
    } else if (n < 1) {
        rc = cnb_errf(err, err_len, "%s: bad header on line 1: no pixel columns after 'label'",
                      path);
    } else if (s * s != n) {
        rc = cnb_errf(err, err_len,
                      "%s: bad header on line 1: %d pixel columns is not a square image "
                      "(side*side, e.g. 784 = 28x28)",
                      path, n);
    } else {
        int base = strcasecmp(trim_field(name[1]), "pixel0") == 0 ? 0 : 1;
        for (int i = 0; i < n && !rc; i++) {
            char *t = trim_field(name[i + 1]);
            char expect[32], alt[32];
            snprintf(expect, sizeof expect, "pixel%d", i + base);
            snprintf(alt, sizeof alt, "%dx%d", i / s + 1, i % s + 1);
            if (strcasecmp(t, expect) != 0 && strcmp(t, alt) != 0)
                rc = cnb_errf(err, err_len,
                              "%s: bad header on line 1: column %d is '%.40s', expected '%s'",
                              path, i + 2, t, expect);
        }
    }
    free(name);
    if (rc) return rc;
    *pixels = n;
    *side = s;
    return 0;
}

/* Parses one field [s, e) as a decimal integer, allowing spaces around it; 0 or -1. Values far
 * out of range saturate (they are refused by the caller anyway). */
static int parse_int(const char *s, const char *e, long *value) {
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    int neg = 0;
    if (s < e && (*s == '-' || *s == '+')) neg = *s++ == '-';
    if (s == e) return -1;
    long v = 0;
    for (; s < e; s++) {
        if (*s < '0' || *s > '9') return -1;
        if (v < 1000000) v = v * 10 + (*s - '0');
    }
    *value = neg ? -v : v;
    return 0;
}

/* Parses one data row: exactly 1 + n fields, a label in [0, classes), pixels in 0..255. */
static int parse_row(const char *path, unsigned long line_no, const char *line, int n, int classes,
                     uint8_t *label, uint8_t *pixels, char *err, size_t err_len) {
    int fields = 1;
    for (const char *p = line; (p = strchr(p, ',')) != NULL; p++) fields++;
    if (fields != n + 1)
        return cnb_errf(err, err_len, "%s: line %lu has %d columns, expected %d (as in the header)",
                        path, line_no, fields, n + 1);
    const char *p = line;
    for (int col = 0; col <= n; col++) {
        const char *e = p;
        while (*e && *e != ',') e++;
        long v = 0;
        if (parse_int(p, e, &v) != 0) {
            int len = (int)(e - p) > 40 ? 40 : (int)(e - p);
            if (is_blank_span(p, e))
                return cnb_errf(err, err_len, "%s: line %lu, column %d: empty value", path,
                                line_no, col + 1);
            return cnb_errf(err, err_len, "%s: line %lu, column %d: '%.*s' is not an integer",
                            path, line_no, col + 1, len, p);
        }
        int len = (int)(e - p) > 40 ? 40 : (int)(e - p);
        if (col == 0) {
            if (v < 0 || v >= classes)
                return cnb_errf(err, err_len, "%s: line %lu: label '%.*s' is out of range [0, %d)",
                                path, line_no, len, p, classes);
            *label = (uint8_t)v;
        } else {
            if (v < 0 || v > 255)
                return cnb_errf(err, err_len,
                                "%s: line %lu, column %d: pixel value '%.*s' is out of range "
                                "0..255",
                                path, line_no, col + 1, len, p);
            pixels[col - 1] = (uint8_t)v;
        }
        p = *e ? e + 1 : e;
    }
    return 0;
}

int cnb_csv_read(const char *path, int limit, int classes, cnb_dataset *out, char *err,
                 size_t err_len) {
    memset(out, 0, sizeof *out);
    if (check_limit(path, limit, err, err_len) || check_classes(path, classes, err, err_len))
        return -1;
    long long file_size = 0;
    line_reader r = {.path = path};
    r.f = open_gz(path, &file_size, err, err_len);
    if (!r.f) return -1;
    uint8_t *pixels = NULL, *labels = NULL;
    size_t cap = 0;
    int n = 0, npix = 0, side = 0;
    unsigned long blank_line = 0;

    int st = next_line(&r, err, err_len);
    if (st < 0) goto fail;
    if (st == 0) {
        cnb_errf(err, err_len,
                 "%s: empty file: expected a header row 'label,pixel1,...,pixel784' and data rows",
                 path);
        goto fail;
    }
    if (parse_header(path, r.buf, &npix, &side, err, err_len)) goto fail;

    while ((st = next_line(&r, err, err_len)) == 1) {
        if (is_blank(r.buf)) {
            if (!blank_line) blank_line = r.number;
            continue;
        }
        if (blank_line) {
            cnb_errf(err, err_len, "%s: line %lu is empty (data rows follow it on line %lu)", path,
                     blank_line, r.number);
            goto fail;
        }
        if ((size_t)n == cap) {
            size_t max_rows = CNB_DATA_MAX_BYTES / (size_t)npix;
            if (max_rows > INT_MAX) max_rows = INT_MAX;
            if ((size_t)n >= max_rows) {
                cnb_errf(err, err_len, "%s: too large: over %u MiB of pixels at line %lu", path,
                         (unsigned)(CNB_DATA_MAX_BYTES >> 20), r.number);
                goto fail;
            }
            size_t ncap = cap ? 2 * cap : (limit > 0 && limit < 4096 ? (size_t)limit : 4096);
            if (ncap > max_rows) ncap = max_rows;
            size_t bytes = ncap * (size_t)npix;
            uint8_t *np = realloc(pixels, bytes), *nl = np ? realloc(labels, ncap) : NULL;
            if (np) pixels = np;
            if (nl) labels = nl;
            if (!np || !nl) {
                cnb_errf(err, err_len, "%s: out of memory at line %lu", path, r.number);
                goto fail;
            }
            cap = ncap;
        }
        if (parse_row(path, r.number, r.buf, npix, classes, &labels[n],
                      pixels + (size_t)n * npix, err, err_len))
            goto fail;
        n++;
        if (limit > 0 && n == limit) break;
    }
    if (st < 0) goto fail;
    if (n == 0) {
        cnb_errf(err, err_len, "%s: no data rows after the header", path);
        goto fail;
    }
    gzclose(r.f);
    free(r.buf);
    out->count = n;
    out->rows = out->cols = side;
    out->classes = classes;
    out->pixels = pixels;
    out->labels = labels;
    set_path(out->images_path, sizeof out->images_path, path);
    set_path(out->labels_path, sizeof out->labels_path, path);
    return 0;
fail:
    gzclose(r.f);
    free(r.buf);
    free(pixels);
    free(labels);
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Named data sets */

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A bounded string builder for "tried: a, b, c" lists. */
static void append(char *dst, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *dst, size_t len, const char *fmt, ...) {
    size_t used = strlen(dst);
    if (used + 1 >= len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst + used, len - used, fmt, ap);
    va_end(ap);
}

/* Finds one of the four IDX files: in dir, then in dir/<subdir> (torchvision's layout); the
 * uncompressed file first (it reads faster), then the .gz. */
static int find_idx(const char *kind, const char *dir, const char *subdir, const char *name,
                    char *found, size_t found_len, char *err, size_t err_len) {
    char tried[2048] = "";
    const char *places[2] = {"", subdir};
    for (int i = 0; i < 2; i++) {
        for (int gz = 0; gz < 2; gz++) {
            char path[4096];
            snprintf(path, sizeof path, "%s%s%s/%s%s", dir, *places[i] ? "/" : "", places[i],
                     name, gz ? ".gz" : "");
            if (is_file(path)) {
                snprintf(found, found_len, "%s", path);
                return 0;
            }
            append(tried, sizeof tried, "%s%s", *tried ? ", " : "", path);
        }
    }
    return cnb_errf(err, err_len, "%s: cannot find %s[.gz]; tried: %s", kind, name, tried);
}

static int open_idx_set(const char *kind, const char *dir, const char *subdir, int train_limit,
                        int test_limit, cnb_dataset *train, cnb_dataset *test, char *err,
                        size_t err_len) {
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        int missing = errno == ENOENT || errno == ENOTDIR;
        return cnb_errf(err, err_len, "%s: data directory %s %s%s", kind, dir,
                        missing ? "does not exist" : "is not a directory",
                        strcmp(dir, CNB_DEFAULT_FASHION_DIR) == 0
                            ? " (install Debian's dataset-fashion-mnist package, or name a "
                              "directory with --data)"
                            : "");
    }
    static const char *names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                   "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    char paths[4][4096];
    for (int i = 0; i < 4; i++)
        if (find_idx(kind, dir, subdir, names[i], paths[i], sizeof paths[i], err, err_len))
            return -1;
    if (cnb_dataset_load_idx(paths[0], paths[1], train_limit, 10, train, err, err_len)) return -1;
    if (cnb_dataset_load_idx(paths[2], paths[3], test_limit, 10, test, err, err_len)) return -1;
    return 0;
}

/* "a.csv,b.csv" or a directory holding train.csv and test.csv (or Kaggle's own file names). */
static int open_csv_set(const char *dir, int train_limit, int test_limit, cnb_dataset *train,
                        cnb_dataset *test, char *err, size_t err_len) {
    char paths[2][4096];
    const char *comma = strchr(dir, ',');
    if (comma) {
        if (strchr(comma + 1, ','))
            return cnb_errf(err, err_len,
                            "csv: '%s' names more than two files; expected 'train.csv,test.csv'",
                            dir);
        snprintf(paths[0], sizeof paths[0], "%.*s", (int)(comma - dir), dir);
        snprintf(paths[1], sizeof paths[1], "%s", comma + 1);
        for (int i = 0; i < 2; i++)
            if (!*paths[i])
                return cnb_errf(err, err_len, "csv: '%s' has an empty %s file name", dir,
                                i ? "test" : "train");
    } else {
        struct stat st;
        if (stat(dir, &st) != 0)
            return cnb_errf(err, err_len, "csv: %s does not exist (expected a directory with "
                            "train.csv and test.csv, or 'train.csv,test.csv')", dir);
        if (!S_ISDIR(st.st_mode))
            return cnb_errf(err, err_len, "csv: %s is a file; name two files as "
                            "'train.csv,test.csv', or a directory holding both", dir);
        static const char *names[2][4] = {
            {"train.csv", "train.csv.gz", "fashion-mnist_train.csv", "mnist_train.csv"},
            {"test.csv", "test.csv.gz", "fashion-mnist_test.csv", "mnist_test.csv"}};
        for (int s = 0; s < 2; s++) {
            char tried[2048] = "";
            int found = 0;
            for (int i = 0; i < 4 && !found; i++) {
                snprintf(paths[s], sizeof paths[s], "%s/%s", dir, names[s][i]);
                found = is_file(paths[s]);
                append(tried, sizeof tried, "%s%s", *tried ? ", " : "", paths[s]);
            }
            if (!found)
                return cnb_errf(err, err_len, "csv: cannot find the %s file; tried: %s",
                                s ? "test" : "train", tried);
        }
    }
    if (cnb_csv_read(paths[0], train_limit, 10, train, err, err_len)) return -1;
    if (cnb_csv_read(paths[1], test_limit, 10, test, err, err_len)) return -1;
    return 0;
}

int cnb_dataset_open(const char *kind, const char *dir, int train_limit, int test_limit,
                     cnb_dataset *train, cnb_dataset *test, char *err, size_t err_len) {
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (!kind) kind = "fashion-mnist";
    if (dir && !*dir) dir = NULL;
    int rc;
    if (strcmp(kind, "fashion-mnist") == 0) {
        rc = open_idx_set(kind, dir ? dir : CNB_DEFAULT_FASHION_DIR, "FashionMNIST/raw",
                          train_limit, test_limit, train, test, err, err_len);
    } else if (strcmp(kind, "mnist") == 0) {
        if (!dir)
            return cnb_errf(err, err_len,
                            "mnist: no data directory given; MNIST is not installed here, so "
                            "name the directory holding its four IDX files with --data DIR");
        rc = open_idx_set(kind, dir, "MNIST/raw", train_limit, test_limit, train, test, err,
                          err_len);
    } else if (strcmp(kind, "csv") == 0) {
        if (!dir)
            return cnb_errf(err, err_len,
                            "csv: no data given; name a directory holding train.csv and test.csv "
                            "or two files as --data train.csv,test.csv");
        rc = open_csv_set(dir, train_limit, test_limit, train, test, err, err_len);
    } else {
        return cnb_errf(err, err_len,
                        "unknown data set kind '%s': valid kinds are fashion-mnist (the default), "
                        "mnist, csv",
                        kind);
    }
    if (rc == 0 && (train->rows != test->rows || train->cols != test->cols)) {
        rc = cnb_errf(err, err_len,
                      "%s: train images (%s) are %dx%d but test images (%s) are %dx%d", kind,
                      train->images_path, train->rows, train->cols, test->images_path, test->rows,
                      test->cols);
    }
    if (rc) {
        cnb_dataset_free(train);
        cnb_dataset_free(test);
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Conversion and shuffling */

void cnb_dataset_to_float(const cnb_dataset *d, float mean, float std, float *out) {
    /* The same float32 steps as torchvision's ToTensor() then Normalize(): x = p / 255,
     * (x - mean) / std; a 256-entry table makes it one lookup per pixel. */
    float table[256];
    for (int p = 0; p < 256; p++) table[p] = ((float)p / 255.0f - mean) / std;
    size_t n = (size_t)d->count * (size_t)d->rows * (size_t)d->cols;
    for (size_t i = 0; i < n; i++) out[i] = table[d->pixels[i]];
}

void cnb_shuffle(struct cnb_rng *rng, int32_t *index, int count) {
    /* Fisher-Yates from the end: position i takes a uniform pick among positions 0..i. */
    for (int i = count - 1; i > 0; i--) {
        int j = (int)cnb_rng_below(rng, (uint32_t)i + 1);
        int32_t t = index[i];
        index[i] = index[j];
        index[j] = t;
    }
}
