/* softmax_ce.c — the parts of softmax-CE that are the same in every CPU backend, whatever
 * computes the probabilities: the label check and each row's prediction. */
#include <math.h>

#include "cpu_common.h"

int cpu_find_bad_label(int n, int classes, const int32_t *labels) {
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= classes) return i;
    return -1;
}

cnb_status cpu_check_labels(cnb_context *ctx, const char *fn, int n, int classes,
                            const int32_t *labels) {
    int i = cpu_find_bad_label(n, classes, labels);
    if (i < 0) return CNB_OK;
    return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT, "%s: labels[%d]=%d is outside [0, %d)", fn, i,
                    (int)labels[i], classes);
}

int cpu_row_argmax(const float *z, int classes) {
    int argmax = 0;
    for (int j = 1; j < classes && !isnan(z[argmax]); j++) /* the first NaN wins */
        if (z[j] > z[argmax] || isnan(z[j])) argmax = j; /* strict '>': first maximum */
    return argmax;
}
