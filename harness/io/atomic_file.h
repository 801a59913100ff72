/* atomic_file.h — a file is replaced whole or not at all (temporary file, fsync, rename). */
#ifndef CNB_ATOMIC_FILE_H
#define CNB_ATOMIC_FILE_H

#include <stddef.h>

/* Write text to path atomically (the primitive behind cnb_results_write). */
int cnb_write_file_atomic(const char *path, const char *text, char *err, size_t err_len);
/* The same for len bytes of binary data (checkpoints). A path that exists but is not a regular
 * file (a device such as /dev/full, a FIFO) is written in place instead of renamed over. */
int cnb_write_bytes_atomic(const char *path, const void *data, size_t len, char *err,
                           size_t err_len);

#endif
