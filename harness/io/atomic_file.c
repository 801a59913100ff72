/* atomic_file.c — writes a file whole or not at all: a temporary file beside it, flushed and
 * fsync'd, then renamed over it (results, reports, checkpoints). */
#define _GNU_SOURCE
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* Write all of buf to fd; 0 or errno. */
static int write_all(int fd, const void *buf, size_t len) {
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, (const char *)buf + done, len - done);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        done += (size_t)w;
    }
    return 0;
}

int cnb_write_bytes_atomic(const char *path, const void *data, size_t len, char *err,
                           size_t err_len) {
    /* A target that exists but is not a regular file (/dev/stdout, /dev/full, a FIFO) is written
     * in place: renaming a temporary file over it would replace a device node (as root). */
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        int fd = open(path, O_WRONLY | O_TRUNC);
        if (fd < 0)
            return cnb_errf(err, err_len, "%s: cannot open for writing: %s", path,
                            strerror(errno));
        int e = write_all(fd, data, len);
        if (close(fd) != 0 && !e) e = errno;
        if (e) return cnb_errf(err, err_len, "%s: write failed: %s", path, strerror(e));
        return 0;
    }
    char dir_buf[PATH_MAX], tmp[PATH_MAX + 32];
    snprintf(dir_buf, sizeof dir_buf, "%s", path);
    snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", dirname(dir_buf), strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return cnb_errf(err, err_len, "%s: cannot create a temporary file beside it: %s", path,
                        strerror(errno));
    mode_t mask = umask(0); /* mkstemp makes 0600; give the file the usual umask-based mode */
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    int e = write_all(fd, data, len);
    if (e) {
        close(fd);
        unlink(tmp);
        return cnb_errf(err, err_len, "%s: write failed: %s (nothing was replaced)", path,
                        strerror(e));
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        e = errno;
        unlink(tmp);
        return cnb_errf(err, err_len, "%s: flushing to disk failed: %s (nothing was replaced)",
                        path, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        return cnb_errf(err, err_len, "%s: cannot rename the temporary file into place: %s", path,
                        strerror(e));
    }
    return 0;
}

int cnb_write_file_atomic(const char *path, const char *text, char *err, size_t err_len) {
    return cnb_write_bytes_atomic(path, text, strlen(text), err, err_len);
}

