/* cache.c — the oneDNN backend's primitive cache and the helpers every family uses to build and
 * run primitives. Primitive descriptors, primitives, memory objects and reorder buffers are made
 * once per distinct descriptor (the first call of a shape) and reused for the whole run, so a
 * training step creates nothing and allocates nothing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl_debug.h>
#include <omp.h>

#include "onednn.h"

cnb_status odn_fail_dnnl(cnb_context *ctx, dnnl_status_t s, const char *what) {
    cnb_status st = s == dnnl_out_of_memory  ? CNB_ERR_OUT_OF_MEMORY
                    : s == dnnl_unimplemented ? CNB_ERR_UNSUPPORTED
                                              : CNB_ERR_LIBRARY;
    return cpu_fail(ctx, st, "oneDNN: %s failed: %s", what, dnnl_status2str(s));
}

void odn_enter(cnb_context *ctx) {
    if (omp_get_max_threads() != ctx->threads) omp_set_num_threads(ctx->threads);
}

/* A block of at least count elements of elem bytes: buf itself when its *have elements suffice,
 * else a new one (buf freed, *have updated; the old contents are not kept), or NULL when out of
 * memory (buf kept, the message set). Grown on the first call of a shape. */
static void *reserve(cnb_context *ctx, void *buf, size_t *have, size_t count, size_t elem,
                     const char *what) {
    if (count <= *have) return buf;
    void *p = count > SIZE_MAX / elem ? NULL : cpu_host_alloc(count * elem);
    if (!p) {
        cpu_fail(ctx, CNB_ERR_OUT_OF_MEMORY, "%zu %s", count, what);
        return NULL;
    }
    free(buf);
    *have = count;
    return p;
}

cnb_status odn_acc_reserve(cnb_context *ctx, size_t count) {
    double *p = reserve(ctx, ctx->acc, &ctx->acc_count, count, sizeof(double), "accumulators");
    if (!p) return CNB_ERR_OUT_OF_MEMORY;
    ctx->acc = p;
    return CNB_OK;
}

cnb_status odn_spare_reserve(cnb_context *ctx, size_t count) {
    float *p = reserve(ctx, ctx->spare, &ctx->spare_count, count, sizeof(float),
                       "floats of scratch");
    if (!p) return CNB_ERR_OUT_OF_MEMORY;
    ctx->spare = p;
    return CNB_OK;
}

/* ---- cache ---------------------------------------------------------------------------------- */

static void prim_destroy(odn_prim *p) {
    for (int i = 0; i < p->nargs + p->has_scratchpad; i++)
        if (p->args[i].memory) dnnl_memory_destroy(p->args[i].memory);
    if (p->prim) dnnl_primitive_destroy(p->prim);
    if (p->pd) dnnl_primitive_desc_destroy(p->pd);
    memset(p, 0, sizeof *p);
}

static void op_destroy(odn_op *op) {
    for (int i = 0; i < ODN_OP_PRIMS; i++) prim_destroy(&op->prim[i]);
    for (int i = 0; i < ODN_OP_BUFS; i++) free(op->buf[i]);
    free(op);
}

odn_op *odn_cache_find(cnb_context *ctx, int kind, const void *key, size_t key_len) {
    for (int i = 0; i < ctx->cache_count; i++) {
        odn_op *op = ctx->cache[i];
        if (op->kind == kind && op->key_len == key_len && memcmp(op->key, key, key_len) == 0) {
            op->last_use = ++ctx->clock;
            return op;
        }
    }
    return NULL;
}

cnb_status odn_cache_new(cnb_context *ctx, int kind, const void *key, size_t key_len,
                         odn_op **out) {
    *out = NULL;
    if (key_len > ODN_KEY_MAX)
        return cpu_fail(ctx, CNB_ERR_INTERNAL, "cache key of %zu bytes exceeds %d", key_len,
                        ODN_KEY_MAX);
    if (ctx->cache_count == ODN_CACHE_MAX) {
        /* A training run uses a few dozen shapes; only a sweep over many shapes gets here. */
        int lru = 0;
        for (int i = 1; i < ctx->cache_count; i++)
            if (ctx->cache[i]->last_use < ctx->cache[lru]->last_use) lru = i;
        op_destroy(ctx->cache[lru]);
        ctx->cache[lru] = ctx->cache[--ctx->cache_count];
    }
    odn_op *op = calloc(1, sizeof *op);
    if (!op) return cpu_fail(ctx, CNB_ERR_OUT_OF_MEMORY, "cache entry: out of host memory");
    op->kind = kind;
    op->key_len = key_len;
    memcpy(op->key, key, key_len);
    op->last_use = ++ctx->clock;
    ctx->cache[ctx->cache_count++] = op;
    *out = op;
    return CNB_OK;
}

void odn_cache_drop(cnb_context *ctx, odn_op *op) {
    for (int i = 0; i < ctx->cache_count; i++) {
        if (ctx->cache[i] == op) {
            ctx->cache[i] = ctx->cache[--ctx->cache_count];
            break;
        }
    }
    op_destroy(op);
}

void odn_cache_clear(cnb_context *ctx) {
    for (int i = 0; i < ctx->cache_count; i++) op_destroy(ctx->cache[i]);
    ctx->cache_count = 0;
}

/* ---- primitives ----------------------------------------------------------------------------- */

/* Grow the shared scratchpad to at least bytes. Only primitive creation calls this, so it happens
 * during the first step of a shape, never in a warmed-up step. */
static cnb_status scratch_reserve(cnb_context *ctx, size_t bytes) {
    if (bytes <= ctx->scratch_bytes) return CNB_OK;
    void *p = cpu_host_alloc(bytes);
    if (!p) return cpu_fail(ctx, CNB_ERR_OUT_OF_MEMORY, "scratchpad of %zu bytes", bytes);
    memset(p, 0, bytes); /* fault the pages in now rather than inside a timed step */
    free(ctx->scratch);
    ctx->scratch = p;
    ctx->scratch_bytes = bytes;
    return CNB_OK;
}

const dnnl_memory_desc_t *odn_arg_md(const odn_prim *p, int arg) {
    return dnnl_primitive_desc_query_md(p->pd, dnnl_query_exec_arg_md, arg);
}

/* Memory objects for the arguments, then the scratchpad if the primitive wants one. */
static cnb_status prim_finish(cnb_context *ctx, odn_prim *p, const int *arg_ids, int nargs) {
    if (nargs + 1 > ODN_MAX_ARGS)
        return cpu_fail(ctx, CNB_ERR_INTERNAL, "primitive with %d arguments", nargs);
    ODN_TRY(ctx, dnnl_primitive_create(&p->prim, p->pd));
    for (int i = 0; i < nargs; i++) {
        const dnnl_memory_desc_t *md = odn_arg_md(p, arg_ids[i]);
        if (!md) return cpu_fail(ctx, CNB_ERR_INTERNAL, "primitive has no argument %d", arg_ids[i]);
        p->args[i].arg = arg_ids[i];
        ODN_TRY(ctx, dnnl_memory_create(&p->args[i].memory, md, ctx->engine, DNNL_MEMORY_NONE));
        p->nargs = i + 1;
    }
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(p->pd, dnnl_query_scratchpad_md, 0);
    size_t sbytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (sbytes > 0) {
        cnb_status st = scratch_reserve(ctx, sbytes);
        if (st != CNB_OK) return st;
        p->args[nargs].arg = DNNL_ARG_SCRATCHPAD;
        ODN_TRY(ctx, dnnl_memory_create(&p->args[nargs].memory, smd, ctx->engine, DNNL_MEMORY_NONE));
        p->has_scratchpad = 1;
    }
    return CNB_OK;
}

cnb_status odn_prim_init_attr(cnb_context *ctx, odn_prim *p, const_dnnl_op_desc_t op_desc,
                              const_dnnl_primitive_attr_t attr, const_dnnl_primitive_desc_t hint,
                              const int *arg_ids, int nargs) {
    ODN_TRY(ctx, dnnl_primitive_desc_create(&p->pd, op_desc, attr, ctx->engine, hint));
    return prim_finish(ctx, p, arg_ids, nargs);
}

cnb_status odn_prim_init(cnb_context *ctx, odn_prim *p, const_dnnl_op_desc_t op_desc,
                         const_dnnl_primitive_desc_t hint, const int *arg_ids, int nargs) {
    return odn_prim_init_attr(ctx, p, op_desc, ctx->attr, hint, arg_ids, nargs);
}

cnb_status odn_reorder_init(cnb_context *ctx, odn_prim *p, const dnnl_memory_desc_t *src_md,
                            const dnnl_memory_desc_t *dst_md) {
    static const int ids[2] = {DNNL_ARG_FROM, DNNL_ARG_TO};
    ODN_TRY(ctx, dnnl_reorder_primitive_desc_create(&p->pd, src_md, ctx->engine, dst_md,
                                                   ctx->engine, ctx->attr));
    return prim_finish(ctx, p, ids, 2);
}

cnb_status odn_exec(cnb_context *ctx, odn_prim *p, void *const *ptrs) {
    for (int i = 0; i < p->nargs; i++)
        ODN_TRY(ctx, dnnl_memory_set_data_handle(p->args[i].memory, ptrs[i]));
    if (p->has_scratchpad)
        ODN_TRY(ctx, dnnl_memory_set_data_handle(p->args[p->nargs].memory, ctx->scratch));
    ODN_TRY(ctx, dnnl_primitive_execute(p->prim, ctx->stream, p->nargs + p->has_scratchpad,
                                        p->args));
    /* CPU streams run in order and the work is done when execute returns with the OpenMP
     * runtime; the wait keeps that true for any runtime and costs nothing here. */
    ODN_TRY(ctx, dnnl_stream_wait(ctx->stream));
    return CNB_OK;
}

cnb_status odn_op_buffer(cnb_context *ctx, odn_op *op, int slot, size_t bytes) {
    if (slot < 0 || slot >= ODN_OP_BUFS)
        return cpu_fail(ctx, CNB_ERR_INTERNAL, "op buffer slot %d", slot);
    if (op->buf_bytes[slot] >= bytes && op->buf[slot]) return CNB_OK;
    void *p = cpu_host_alloc(bytes);
    if (!p) return cpu_fail(ctx, CNB_ERR_OUT_OF_MEMORY, "reorder buffer of %zu bytes", bytes);
    memset(p, 0, bytes); /* blocked layouts need their padding zero; also faults pages in now */
    free(op->buf[slot]);
    op->buf[slot] = p;
    op->buf_bytes[slot] = bytes;
    return CNB_OK;
}
