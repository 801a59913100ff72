/* backend.c — the oneDNN backend's lifecycle (one CPU engine, one stream, OpenMP threads),
 * info(), and the function table the harness loads through cnb_backend_entry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "onednn.h"

static const char *isa_words(dnnl_cpu_isa_t isa) {
    switch (isa) {
    case dnnl_cpu_isa_all: return "all (no restriction)";
    case dnnl_cpu_isa_sse41: return "SSE4.1";
    case dnnl_cpu_isa_avx: return "AVX";
    case dnnl_cpu_isa_avx2: return "AVX2";
    case dnnl_cpu_isa_avx2_vnni: return "AVX2 with VNNI";
    case dnnl_cpu_isa_avx512_mic: return "AVX-512 (Xeon Phi)";
    case dnnl_cpu_isa_avx512_mic_4ops: return "AVX-512 (Xeon Phi, 4ops)";
    case dnnl_cpu_isa_avx512_core: return "AVX-512 core";
    case dnnl_cpu_isa_avx512_core_vnni: return "AVX-512 core with VNNI";
    case dnnl_cpu_isa_avx512_core_bf16: return "AVX-512 core with BF16";
    case dnnl_cpu_isa_avx512_core_amx: return "AVX-512 core with AMX";
    default: return "unknown";
    }
}

static const char *runtime_words(unsigned rt) {
    switch (rt) {
    case DNNL_RUNTIME_NONE: return "none";
    case DNNL_RUNTIME_SEQ: return "sequential";
    case DNNL_RUNTIME_OMP: return "OpenMP";
    case DNNL_RUNTIME_TBB: return "TBB";
    case DNNL_RUNTIME_THREADPOOL: return "threadpool";
    case DNNL_RUNTIME_OCL: return "OpenCL";
    case DNNL_RUNTIME_SYCL: return "SYCL";
    default: return "unknown";
    }
}

static const char *layout_words(int layout) {
    switch (layout) {
    case ODN_LAYOUT_PLAIN: return "plain (nchw/oihw, no reorders)";
    case ODN_LAYOUT_BLOCKED: return "blocked (format_tag_any, reorders at the ABI boundary)";
    default: return "auto (blocked with boundary reorders; plain for C=1 backward-data and for "
                    "C=1 forward with >= 32 output channels, as measured; see conv.c)";
    }
}

static void odn_destroy(cnb_context *ctx) {
    if (!ctx) return;
    odn_cache_clear(ctx);
    if (ctx->attr) dnnl_primitive_attr_destroy(ctx->attr);
    if (ctx->stream) dnnl_stream_destroy(ctx->stream);
    if (ctx->engine) dnnl_engine_destroy(ctx->engine);
    free(ctx->scratch);
    free(ctx->acc);
    free(ctx->spare);
    free(ctx->choices);
    free(ctx->bias_choices);
    free(ctx);
}

static cnb_status odn_create(const cnb_config *cfg, cnb_context **out, char *err, size_t err_len) {
    const char *step = "";
    dnnl_status_t s = dnnl_success;
    /* A config too old to carry `threads` counts as "backend's choice". */
    int threads;
    cnb_status st = cpu_create_begin("onednn", cfg, out, &threads, err, err_len);
    if (st != CNB_OK) return st;
    if (threads < 0) {
        if (err && err_len) snprintf(err, err_len, "onednn: threads=%d must be >= 0", threads);
        return CNB_ERR_INVALID_ARGUMENT;
    }
    cnb_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        if (err && err_len) snprintf(err, err_len, "onednn: out of host memory");
        return CNB_ERR_OUT_OF_MEMORY;
    }
    /* oneDNN here runs on OpenMP (libgomp): the team size of the calling thread is what its
     * primitives use, and the loops in this backend share that one pool — no second pool. Set it
     * before the first primitive is made, since some implementations size their work split at
     * creation. 0 keeps OpenMP's default (OMP_NUM_THREADS or the core count). */
    if (threads > 0) omp_set_num_threads(threads);
    ctx->threads = omp_get_max_threads();

    ctx->direct_conv = cnb_config_direct_conv(cfg);
    ctx->deterministic = cfg && cfg->size >= offsetof(cnb_config, deterministic) +
                                                 sizeof cfg->deterministic &&
                         cfg->deterministic;
    /* CNB_ONEDNN_CONV_ALGO=direct|winograd overrides the timed choice (for measuring and
     * testing each algorithm alone); direct_conv from the config always wins. */
    const char *algo = getenv("CNB_ONEDNN_CONV_ALGO");
    if (algo && strcmp(algo, "direct") == 0) ctx->direct_conv = 1;
    if (algo && strcmp(algo, "winograd") == 0 && !ctx->direct_conv) ctx->force_winograd = 1;
    ctx->conv_layout = ODN_LAYOUT_AUTO;
    const char *lay = getenv("CNB_ONEDNN_CONV_LAYOUT");
    if (lay && strcmp(lay, "plain") == 0) ctx->conv_layout = ODN_LAYOUT_PLAIN;
    if (lay && strcmp(lay, "blocked") == 0) ctx->conv_layout = ODN_LAYOUT_BLOCKED;

    step = "dnnl_engine_create(cpu)";
    if ((s = dnnl_engine_create(&ctx->engine, dnnl_cpu, 0)) != dnnl_success) goto fail;
    step = "dnnl_stream_create";
    if ((s = dnnl_stream_create(&ctx->stream, ctx->engine, dnnl_stream_default_flags)) !=
        dnnl_success)
        goto fail;
    /* User scratchpad: every primitive borrows the context's one buffer instead of oneDNN
     * allocating its own, so memory is allocated once and stays faulted in. */
    step = "dnnl_primitive_attr_create";
    if ((s = dnnl_primitive_attr_create(&ctx->attr)) != dnnl_success) goto fail;
    step = "dnnl_primitive_attr_set_scratchpad_mode";
    if ((s = dnnl_primitive_attr_set_scratchpad_mode(ctx->attr, dnnl_scratchpad_mode_user)) !=
        dnnl_success)
        goto fail;
    *out = ctx;
    return CNB_OK;
fail:
    if (err && err_len)
        snprintf(err, err_len, "onednn: %s failed (status %d)", step, (int)s);
    odn_destroy(ctx);
    return CNB_ERR_LIBRARY;
}

static cnb_status odn_info(cnb_context *ctx, cnb_info_fn fn, void *user) {
    if (!ctx || !fn) return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT, "info: ctx or fn is NULL");
    char buf[160];
    const dnnl_version_t *v = dnnl_version();
    fn(user, "backend", "onednn");
    snprintf(buf, sizeof buf, "%d.%d.%d", DNNL_VERSION_MAJOR, DNNL_VERSION_MINOR,
             DNNL_VERSION_PATCH);
    fn(user, "onednn.compiled", buf);
    snprintf(buf, sizeof buf, "%d.%d.%d%s%s", v->major, v->minor, v->patch,
             v->hash && strcmp(v->hash, "N/A") != 0 ? " " : "",
             v->hash && strcmp(v->hash, "N/A") != 0 ? v->hash : "");
    fn(user, "onednn.loaded", buf);
    if (v->major != DNNL_VERSION_MAJOR || v->minor != DNNL_VERSION_MINOR ||
        v->patch != DNNL_VERSION_PATCH) {
        snprintf(buf, sizeof buf,
                 "compiled against %d.%d.%d but loaded %d.%d.%d: rebuild against the installed "
                 "libdnnl-dev, or point LD_LIBRARY_PATH at the matching libdnnl.so",
                 DNNL_VERSION_MAJOR, DNNL_VERSION_MINOR, DNNL_VERSION_PATCH, v->major, v->minor,
                 v->patch);
        fn(user, "onednn.version_mismatch", buf);
    }
    fn(user, "onednn.isa", isa_words(dnnl_get_effective_cpu_isa()));
    fn(user, "onednn.cpu_runtime", runtime_words(v->cpu_runtime));
    if (v->cpu_runtime != DNNL_CPU_RUNTIME) {
        snprintf(buf, sizeof buf, "compiled for %s, loaded library uses %s",
                 runtime_words(DNNL_CPU_RUNTIME), runtime_words(v->cpu_runtime));
        fn(user, "onednn.cpu_runtime_mismatch", buf);
    }
    snprintf(buf, sizeof buf, "%d", ctx->threads);
    fn(user, "threads", buf);
    fn(user, "onednn.threads_via", "omp_set_num_threads (libgomp, one pool shared with the "
                                   "backend's own loops)");
    const char *wp = getenv("OMP_WAIT_POLICY");
    fn(user, "omp.wait_policy", wp ? wp : "(unset: libgomp spins a while, then sleeps)");
    fn(user, "onednn.conv_layout", layout_words(ctx->conv_layout));
    fn(user, "onednn.conv_algorithm",
       ctx->direct_conv      ? "direct only (direct_conv or CNB_ONEDNN_CONV_ALGO=direct)"
       : ctx->force_winograd ? "Winograd wherever oneDNN has it (CNB_ONEDNN_CONV_ALGO=winograd)"
       : ctx->deterministic
           ? "3x3 stride-1 shapes: oneDNN's convolution_auto (deterministic); others direct"
           : "3x3 stride-1 shapes with >= 8 channels: Winograd where timed >= 10% faster on "
             "the first call, else direct; others direct");
    odn_conv_info(ctx, fn, user);
    if (!ctx->direct_conv) fn(user, "warm_up", "yes"); /* the first call of a shape times */
    fn(user, "onednn.gemm", "matmul primitive (strided memory descriptors for transposes)");
    fn(user, "onednn.prelu", "OpenMP loops (2.6 has only a reference kernel for a scalar "
                             "slope); backward with a double slope sum");
    fn(user, "onednn.pooling", "OpenMP loops (max: argmax workspace; the fused block's "
                               "backward reads y at each argmax, so a need not be kept)");
    fn(user, "onednn.optimizer", "SGD / Adam: the shared CPU update loops on the OpenMP team");
    fn(user, "onednn.softmax_ce", "softmax_v2 primitive for probs; loss as log-sum-exp in "
                                  "double (2.6's log-softmax is ~1.4e-6 off absolute)");
    fn(user, "onednn.scratchpad", "user mode, one buffer shared by all primitives");
    /* oneDNN's CPU primitives and the loops here split work statically and reduce in a fixed
     * order, so `deterministic` needs no different choice; it holds for one thread count. */
    fn(user, "onednn.deterministic", "yes (fixed work split and reduction order for a given "
                                     "thread count; no atomics)");
    return CNB_OK;
}

CPU_BACKEND_DEFINE(odn, "onednn",
                   "oneDNN primitives (convolution, pooling, matmul, eltwise, prelu, softmax)",
                   cpu_alloc, odn_synchronize, odn_conv_backward,
                   odn_conv_act_pool_forward, odn_pool_act_conv_backward)
