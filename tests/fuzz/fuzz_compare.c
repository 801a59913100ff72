/* fuzz_compare.c — libFuzzer target: the results JSON that `cnnbench compare` reads, through
 * cnb_cmd_compare itself (the verb exposes no separate parser). The input is split at its first
 * NUL byte into the baseline and the new file (no NUL: the same text for both). */
#include "fuzz_common.h" /* first: it defines _GNU_SOURCE */
#include <string.h>
#include <unistd.h>

#include "commands.h"

extern int optind;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t base_len = nul ? (size_t)(nul - data) : size;
    const char *base = fuzz_file(0, data, base_len);
    const char *now = nul ? fuzz_file(1, nul + 1, size - base_len - 1) : fuzz_file(1, data, size);
    char a0[] = "compare", a1[64], a2[64];
    snprintf(a1, sizeof a1, "%s", base);
    snprintf(a2, sizeof a2, "%s", now);
    char *argv[] = {a0, a1, a2, NULL};
    optind = 0; /* glibc: re-initialize getopt for every call */
    cnb_cmd_compare(3, argv);
    return 0;
}
