/* fuzz_common.h — helpers for the libFuzzer targets: the readers take paths, so each input is
 * written to an in-memory file (memfd) and passed as /proc/self/fd/N; no disk I/O per run. */
#ifndef CNB_FUZZ_COMMON_H
#define CNB_FUZZ_COMMON_H
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

/* Replace the memfd's contents with data; returns its path (static buffer per slot). */
static const char *fuzz_file(int slot, const uint8_t *data, size_t size) {
    static int fd[4] = {-1, -1, -1, -1};
    static char path[4][64];
    if (fd[slot] < 0) {
        fd[slot] = memfd_create("cnb-fuzz", 0);
        if (fd[slot] < 0) {
            perror("memfd_create");
            _exit(1);
        }
        snprintf(path[slot], sizeof path[slot], "/proc/self/fd/%d", fd[slot]);
    }
    if (ftruncate(fd[slot], 0) != 0 || (size && pwrite(fd[slot], data, size, 0) != (ssize_t)size)) {
        perror("memfd write");
        _exit(1);
    }
    return path[slot];
}
#endif
