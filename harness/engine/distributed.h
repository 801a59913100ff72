/* distributed.h — data-parallel training across processes, through MPI (DESIGN.md §9): which
 * rank this process is, which slice of a global batch it takes, and the collectives the training
 * loop needs (the gradient all-reduce between backward and update, the sums of losses and
 * counts). A plain run (no mpirun) and a build without MPI get a NULL communicator, on which
 * every call behaves as a single rank, so the training loop has one code path. */
#ifndef CNB_DISTRIBUTED_H
#define CNB_DISTRIBUTED_H

#include <stddef.h>
#include <stdint.h>

typedef struct cnb_dist cnb_dist;

/* 1 when this build has MPI. */
int cnb_dist_built(void);
/* The launcher's variable that says this process was started by mpirun / srun (NULL when none
 * is set): OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK. */
const char *cnb_dist_launch_variable(void);

/* Start MPI when this process was launched by an MPI launcher; *out = NULL for a plain run, which
 * never touches MPI. Fails (err says why) when launched by mpirun but built without MPI. */
int cnb_dist_init(int *argc, char ***argv, cnb_dist **out, char *err, size_t err_len);
/* The communicator cnb_dist_init started (NULL in a plain run): for the verbs. */
cnb_dist *cnb_dist_world(void);
/* MPI_Finalize (NULL: nothing). */
void cnb_dist_finalize(cnb_dist *d);
/* Stop every rank (MPI_Abort): for a failure on one rank that the others would wait on forever. */
void cnb_dist_abort(cnb_dist *d, int code);

int cnb_dist_rank(const cnb_dist *d);       /* 0 for NULL */
int cnb_dist_size(const cnb_dist *d);       /* 1 for NULL */
int cnb_dist_local_size(const cnb_dist *d); /* ranks on this node; 1 for NULL */
int cnb_dist_local_rank(const cnb_dist *d); /* this rank's index on its node (its GPU); 0 for NULL */

/* This rank's contiguous slice [*first, *first + *count) of n items: the first n % size ranks
 * take one item more, so the slices cover n exactly once, in rank order (a rank may get 0). */
void cnb_dist_slice(const cnb_dist *d, int n, int *first, int *count);

/* In-place sums over all ranks (MPI_SUM); seconds (may be NULL) gets the time the call took.
 * NULL d: nothing to do. 0 or -1. */
int cnb_dist_sum_floats(cnb_dist *d, float *buf, size_t count, double *seconds, char *err,
                        size_t err_len);
int cnb_dist_sum_doubles(cnb_dist *d, double *buf, int count, char *err, size_t err_len);
/* The largest value over all ranks (NULL d: v itself). */
double cnb_dist_max(cnb_dist *d, double v);
/* 1 when flag is non-zero on any rank: a decision every rank must take together (stop, failed
 * checkpoint). */
int cnb_dist_any(cnb_dist *d, int flag);
/* Each rank's v, gathered on every rank into all (size values). */
void cnb_dist_gather(cnb_dist *d, double v, double *all);
/* Broadcast count bytes from rank 0. */
int cnb_dist_broadcast(cnb_dist *d, void *buf, size_t count);
void cnb_dist_barrier(cnb_dist *d);
/* 1 when buf holds the same bytes on every rank (compares a 64-bit hash). */
int cnb_dist_same_bytes(cnb_dist *d, const void *buf, size_t bytes);

/* A communicator of the first k ranks (1 <= k <= size), for scaling runs: *member says whether
 * this rank is one of them (then *out is its communicator; NULL stands for one rank alone in a
 * single process). Collective over d. Free with cnb_dist_free_sub. */
int cnb_dist_split_first(cnb_dist *d, int k, cnb_dist **out, int *member, char *err,
                         size_t err_len);
void cnb_dist_free_sub(cnb_dist *sub);

/* The MPI library's own words (MPI_Get_library_version's first line) and the standard version
 * ("3.1"); "" without MPI. */
const char *cnb_dist_library(const cnb_dist *d);
const char *cnb_dist_standard(const cnb_dist *d);

#endif
