/* distributed.c — the MPI side of data-parallel training. Built with MPI when CMake finds it
 * (CNB_HAVE_MPI); without it every call is the single-rank case and a run launched by mpirun is
 * refused rather than run N times side by side. */
#define _POSIX_C_SOURCE 200809L
#include "distributed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#ifdef CNB_HAVE_MPI
#include <mpi.h>
#endif

const char *cnb_dist_launch_variable(void) {
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return vars[i];
    return NULL;
}

void cnb_dist_slice(const cnb_dist *d, int n, int *first, int *count) {
    int size = cnb_dist_size(d), rank = cnb_dist_rank(d);
    int base = n / size, extra = n % size;
    *count = base + (rank < extra);
    *first = rank * base + (rank < extra ? rank : extra);
}

static cnb_dist *world; /* set by cnb_dist_init */

cnb_dist *cnb_dist_world(void) { return world; }

/* FNV-1a: a cheap fingerprint to tell whether the ranks hold the same parameters. */
static uint64_t fnv1a(const void *buf, size_t bytes) {
    const unsigned char *p = buf;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < bytes; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

#ifdef CNB_HAVE_MPI

struct cnb_dist {
    MPI_Comm comm;
    int rank, size, local_size, local_rank;
    int owns_comm;           /* a sub-communicator this struct frees */
    char library[256], standard[16];
};

int cnb_dist_built(void) { return 1; }

static int mpi_errf(int code, const char *what, char *err, size_t err_len) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "code %d", code);
    return cnb_errf(err, err_len, "MPI: %s failed: %s", what, msg);
}

static void describe(cnb_dist *d) {
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0, major = 0, minor = 0;
    MPI_Get_library_version(lib, &len);
    lib[strcspn(lib, "\n,")] = '\0'; /* Open MPI appends its repository and date */
    snprintf(d->library, sizeof d->library, "%s", lib);
    MPI_Get_version(&major, &minor);
    snprintf(d->standard, sizeof d->standard, "%d.%d", major, minor);
}

static int fill(cnb_dist *d, MPI_Comm comm, char *err, size_t err_len) {
    d->comm = comm;
    MPI_Comm_rank(comm, &d->rank);
    MPI_Comm_size(comm, &d->size);
    MPI_Comm node;
    int rc = MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node);
    if (rc != MPI_SUCCESS) return mpi_errf(rc, "MPI_Comm_split_type", err, err_len);
    MPI_Comm_size(node, &d->local_size);
    MPI_Comm_rank(node, &d->local_rank);
    MPI_Comm_free(&node);
    describe(d);
    return 0;
}

int cnb_dist_init(int *argc, char ***argv, cnb_dist **out, char *err, size_t err_len) {
    *out = NULL;
    if (!cnb_dist_launch_variable()) return 0;
    int rc = MPI_Init(argc, argv);
    if (rc != MPI_SUCCESS) return cnb_errf(err, err_len, "MPI_Init failed (code %d)", rc);
    /* Errors come back as codes, so a failure is reported in words before the job stops. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    cnb_dist *d = calloc(1, sizeof *d);
    if (!d) return cnb_errf(err, err_len, "out of host memory");
    if (fill(d, MPI_COMM_WORLD, err, err_len) != 0) {
        free(d);
        return -1;
    }
    *out = world = d;
    return 0;
}

void cnb_dist_finalize(cnb_dist *d) {
    if (!d) return;
    if (d == world) world = NULL;
    free(d);
    MPI_Finalize();
}

void cnb_dist_abort(cnb_dist *d, int code) {
    if (d && d->size > 1) MPI_Abort(d->comm, code);
}

int cnb_dist_rank(const cnb_dist *d) { return d ? d->rank : 0; }
int cnb_dist_size(const cnb_dist *d) { return d ? d->size : 1; }
int cnb_dist_local_size(const cnb_dist *d) { return d ? d->local_size : 1; }
int cnb_dist_local_rank(const cnb_dist *d) { return d ? d->local_rank : 0; }
const char *cnb_dist_library(const cnb_dist *d) { return d ? d->library : ""; }
const char *cnb_dist_standard(const cnb_dist *d) { return d ? d->standard : ""; }

int cnb_dist_sum_floats(cnb_dist *d, float *buf, size_t count, double *seconds, char *err,
                        size_t err_len) {
    double start = cnb_now();
    if (d && d->size > 1) {
        /* MPI counts are int: large blocks go in pieces. */
        for (size_t done = 0; done < count;) {
            int n = count - done > (size_t)(1 << 30) ? 1 << 30 : (int)(count - done);
            int rc = MPI_Allreduce(MPI_IN_PLACE, buf + done, n, MPI_FLOAT, MPI_SUM, d->comm);
            if (rc != MPI_SUCCESS) return mpi_errf(rc, "MPI_Allreduce (gradients)", err, err_len);
            done += (size_t)n;
        }
    }
    if (seconds) *seconds = cnb_now() - start;
    return 0;
}

int cnb_dist_sum_doubles(cnb_dist *d, double *buf, int count, char *err, size_t err_len) {
    if (!d || d->size == 1) return 0;
    int rc = MPI_Allreduce(MPI_IN_PLACE, buf, count, MPI_DOUBLE, MPI_SUM, d->comm);
    return rc == MPI_SUCCESS ? 0 : mpi_errf(rc, "MPI_Allreduce (sums)", err, err_len);
}

double cnb_dist_max(cnb_dist *d, double v) {
    if (d && d->size > 1) MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_MAX, d->comm);
    return v;
}

int cnb_dist_any(cnb_dist *d, int flag) {
    flag = flag != 0;
    if (d && d->size > 1) MPI_Allreduce(MPI_IN_PLACE, &flag, 1, MPI_INT, MPI_LOR, d->comm);
    return flag;
}

void cnb_dist_gather(cnb_dist *d, double v, double *all) {
    if (!d || d->size == 1) {
        all[0] = v;
        return;
    }
    MPI_Allgather(&v, 1, MPI_DOUBLE, all, 1, MPI_DOUBLE, d->comm);
}

int cnb_dist_broadcast(cnb_dist *d, void *buf, size_t count) {
    if (!d || d->size == 1) return 0;
    if (count > (size_t)1 << 30) return -1;
    return MPI_Bcast(buf, (int)count, MPI_BYTE, 0, d->comm) == MPI_SUCCESS ? 0 : -1;
}

void cnb_dist_barrier(cnb_dist *d) {
    if (d && d->size > 1) MPI_Barrier(d->comm);
}

int cnb_dist_same_bytes(cnb_dist *d, const void *buf, size_t bytes) {
    if (!d || d->size == 1) return 1;
    uint64_t h = fnv1a(buf, bytes), lo = h, hi = h;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, d->comm);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, d->comm);
    return lo == hi;
}

int cnb_dist_split_first(cnb_dist *d, int k, cnb_dist **out, int *member, char *err,
                         size_t err_len) {
    *out = NULL;
    *member = 0;
    if (!d) {
        *member = k == 1;
        return k == 1 ? 0 : cnb_errf(err, err_len, "%d ranks asked of a single process", k);
    }
    if (k < 1 || k > d->size)
        return cnb_errf(err, err_len, "%d ranks asked of %d", k, d->size);
    MPI_Comm sub;
    int rc = MPI_Comm_split(d->comm, d->rank < k ? 0 : MPI_UNDEFINED, d->rank, &sub);
    if (rc != MPI_SUCCESS) return mpi_errf(rc, "MPI_Comm_split", err, err_len);
    if (sub == MPI_COMM_NULL) return 0;
    cnb_dist *s = calloc(1, sizeof *s);
    if (!s || fill(s, sub, err, err_len) != 0) {
        free(s);
        MPI_Comm_free(&sub);
        return s ? -1 : cnb_errf(err, err_len, "out of host memory");
    }
    s->owns_comm = 1;
    *out = s;
    *member = 1;
    return 0;
}

void cnb_dist_free_sub(cnb_dist *sub) {
    if (!sub) return;
    if (sub->owns_comm) MPI_Comm_free(&sub->comm);
    free(sub);
}

#else /* no MPI in this build: one rank, always */

int cnb_dist_built(void) { return 0; }

int cnb_dist_init(int *argc, char ***argv, cnb_dist **out, char *err, size_t err_len) {
    (void)argc;
    (void)argv;
    *out = NULL;
    const char *var = cnb_dist_launch_variable();
    if (var)
        return cnb_errf(err, err_len,
                        "launched by an MPI launcher (%s is set) but this cnnbench was built "
                        "without MPI; install libopenmpi-dev and rebuild",
                        var);
    return 0;
}

void cnb_dist_finalize(cnb_dist *d) { (void)d; }
void cnb_dist_abort(cnb_dist *d, int code) { (void)d; (void)code; }
int cnb_dist_rank(const cnb_dist *d) { (void)d; return 0; }
int cnb_dist_size(const cnb_dist *d) { (void)d; return 1; }
int cnb_dist_local_size(const cnb_dist *d) { (void)d; return 1; }
int cnb_dist_local_rank(const cnb_dist *d) { (void)d; return 0; }
const char *cnb_dist_library(const cnb_dist *d) { (void)d; return ""; }
const char *cnb_dist_standard(const cnb_dist *d) { (void)d; return ""; }

int cnb_dist_sum_floats(cnb_dist *d, float *buf, size_t count, double *seconds, char *err,
                        size_t err_len) {
    (void)d, (void)buf, (void)count, (void)err, (void)err_len;
    if (seconds) *seconds = 0.0;
    return 0;
}
int cnb_dist_sum_doubles(cnb_dist *d, double *buf, int count, char *err, size_t err_len) {
    (void)d, (void)buf, (void)count, (void)err, (void)err_len;
    return 0;
}
double cnb_dist_max(cnb_dist *d, double v) { (void)d; return v; }
int cnb_dist_any(cnb_dist *d, int flag) { (void)d; return flag != 0; }
void cnb_dist_gather(cnb_dist *d, double v, double *all) { (void)d; all[0] = v; }
int cnb_dist_broadcast(cnb_dist *d, void *buf, size_t count) { (void)d, (void)buf, (void)count; return 0; }
void cnb_dist_barrier(cnb_dist *d) { (void)d; }
int cnb_dist_same_bytes(cnb_dist *d, const void *buf, size_t bytes) {
    (void)d;
    (void)fnv1a(buf, 0);
    (void)bytes;
    return 1;
}
int cnb_dist_split_first(cnb_dist *d, int k, cnb_dist **out, int *member, char *err,
                         size_t err_len) {
    (void)d;
    *out = NULL;
    *member = k == 1;
    return k == 1 ? 0 : cnb_errf(err, err_len, "%d ranks asked of a build without MPI", k);
}
void cnb_dist_free_sub(cnb_dist *sub) { (void)sub; }

#endif
