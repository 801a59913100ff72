/* optimizer.c — the argument checks the CPU backends' sgd_step and adam_step share. */
#include "cnb_abi_check.h"
#include "cpu_optimizer.h"

cnb_status cpu_check_sgd_step(cnb_context *ctx, const cnb_sgd_desc *d, size_t count,
                              const float *param, const float *velocity, const float *grad) {
    CNB_CHECK_CTX(ctx);
    if (!d) return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT, "sgd_step: d is NULL");
    if (count == 0) return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT, "sgd_step: count is 0");
    const cnb_check_ptr_ p[] = {{"param", param}, {"velocity", velocity}, {"grad", grad}};
    return cnb_check_ptrs_("sgd_step", p, sizeof p / sizeof p[0], cpu_err(ctx), CPU_ERR_LEN);
}

cnb_status cpu_check_adam_step(cnb_context *ctx, const cnb_adam_desc *d, size_t count,
                               const float *param, const float *m, const float *v,
                               const float *grad) {
    CNB_CHECK_CTX(ctx);
    if (!d) return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT, "adam_step: d is NULL");
    if (count == 0) return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT, "adam_step: count is 0");
    if (d->step < 1)
        return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT, "adam_step: step=%d must be >= 1",
                        d->step);
    const cnb_check_ptr_ p[] = {{"param", param}, {"m", m}, {"v", v}, {"grad", grad}};
    return cnb_check_ptrs_("adam_step", p, sizeof p / sizeof p[0], cpu_err(ctx), CPU_ERR_LEN);
}
