/* gemm.c — row-major C = alpha*op(A)*op(B) + beta*C on oneDNN's matmul primitive. Transposes
 * and leading dimensions become strided memory descriptors (no copies); alpha is an output scale
 * and beta a sum post-op, each only when it is not the identity, so the common linear-layer call
 * (alpha 1, beta 0) is a bare matmul that never reads C. */
#include <string.h>

#include "onednn.h"

typedef struct gemm_key {
    int trans_a, trans_b, m, n, k, lda, ldb, ldc;
    float alpha, beta; /* compared bitwise: a training run uses one or two (alpha, beta) pairs */
} gemm_key;

static cnb_status gemm_op(cnb_context *ctx, const gemm_key *key, odn_op **out) {
    odn_op *op = odn_cache_find(ctx, ODN_GEMM, key, sizeof *key);
    if (op) return *out = op, CNB_OK;
    cnb_status st = odn_cache_new(ctx, ODN_GEMM, key, sizeof *key, &op);
    if (st != CNB_OK) return st;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t post = NULL;
    dnnl_status_t s;
    const char *what = "";
    dnnl_memory_desc_t a_md, b_md, c_md;
    dnnl_matmul_desc_t md;
    /* op(A) is (m, k): stored (m, k) with row stride lda, or stored (k, m) read as its
     * transpose, which is the same matrix with the strides swapped. Likewise B and C. */
    dnnl_dims_t a_dims = {key->m, key->k}, b_dims = {key->k, key->n}, c_dims = {key->m, key->n};
    dnnl_dims_t a_str = {key->trans_a ? 1 : key->lda, key->trans_a ? key->lda : 1};
    dnnl_dims_t b_str = {key->trans_b ? 1 : key->ldb, key->trans_b ? key->ldb : 1};
    dnnl_dims_t c_str = {key->ldc, 1};
#define GEMM_TRY(call)                  \
    do {                                \
        what = #call;                   \
        if ((s = (call)) != dnnl_success) goto dnnl_fail; \
    } while (0)
    GEMM_TRY(dnnl_memory_desc_init_by_strides(&a_md, 2, a_dims, dnnl_f32, a_str));
    GEMM_TRY(dnnl_memory_desc_init_by_strides(&b_md, 2, b_dims, dnnl_f32, b_str));
    GEMM_TRY(dnnl_memory_desc_init_by_strides(&c_md, 2, c_dims, dnnl_f32, c_str));
    GEMM_TRY(dnnl_matmul_desc_init(&md, &a_md, &b_md, NULL, &c_md));
    GEMM_TRY(dnnl_primitive_attr_clone(&attr, ctx->attr));
    if (key->alpha != 1.0f) GEMM_TRY(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &key->alpha));
    if (key->beta != 0.0f) {
        /* dst = alpha*A*B + beta*dst_before: the sum post-op reads C before the result lands. */
        GEMM_TRY(dnnl_post_ops_create(&post));
        GEMM_TRY(dnnl_post_ops_append_sum(post, key->beta));
        GEMM_TRY(dnnl_primitive_attr_set_post_ops(attr, post));
    }
#undef GEMM_TRY
    int ids[3] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
    st = odn_prim_init_attr(ctx, &op->prim[0], &md, attr, NULL, ids, 3);
    if (post) dnnl_post_ops_destroy(post);
    dnnl_primitive_attr_destroy(attr);
    if (st != CNB_OK) goto fail;
    *out = op;
    return CNB_OK;
dnnl_fail:
    st = odn_fail_dnnl(ctx, s, what);
    if (post) dnnl_post_ops_destroy(post);
    if (attr) dnnl_primitive_attr_destroy(attr);
fail:
    odn_cache_drop(ctx, op);
    return st;
}

cnb_status odn_gemm(cnb_context *ctx, int trans_a, int trans_b, int m, int n, int k, float alpha,
                    const float *a, int lda, const float *b, int ldb, float beta, float *c,
                    int ldc) {
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    cnb_status st = cnb_check_gemm("gemm", trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc,
                                   ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    odn_enter(ctx);
    gemm_key key;
    memset(&key, 0, sizeof key);
    key.trans_a = trans_a, key.trans_b = trans_b, key.m = m, key.n = n, key.k = k;
    key.lda = lda, key.ldb = ldb, key.ldc = ldc, key.alpha = alpha, key.beta = beta;
    odn_op *op;
    if ((st = gemm_op(ctx, &key, &op)) != CNB_OK) return st;
    void *ptrs[3] = {(void *)a, (void *)b, c};
    return odn_exec(ctx, &op->prim[0], ptrs);
}
