/* loader.h — finds a backend shared object, dlopens it and checks its function table. */
#ifndef CNB_LOADER_H
#define CNB_LOADER_H

#include "cnb_abi.h"

typedef struct cnb_loaded_backend {
    void *handle;             /* from dlopen */
    const cnb_backend *api;   /* the checked table */
    char path[4096];          /* the file it came from */
    int device_kind;          /* cnb_device_kind of its table; kept when create() fails */
} cnb_loaded_backend;

/* Backends known by name (the ones CMake can build), in display order. */
extern const char *const cnb_known_backends[];
extern const int cnb_known_backend_count;

/* The directory searched for libcnb_<name>.so: $CNNBENCH_BACKEND_DIR if set, else the one beside
 * the program (paths.h: <exe>/../lib/cnnbench, or the build tree's). $CNNBENCH_BACKEND_PATH adds
 * directories searched before it. */
const char *cnb_backend_dir(void);

/* Load a backend by name ("naive" → <backend dir>/libcnb_naive.so) or by path (anything with a
 * '/'). Refuses, with a message naming the file: a missing file, a file that is not a shared
 * object, a missing entry symbol, an ABI version outside [CNB_ABI_MIN_VERSION, CNB_ABI_VERSION],
 * a table smaller than that version needs, an empty required slot, or an optional group filled
 * only in part (the timer slots). Returns 0 or -1. */
int cnb_load_backend(const char *name_or_path, cnb_loaded_backend *out, char *err, size_t err_len);
void cnb_unload_backend(cnb_loaded_backend *b);

/* The safety checks cnb_load_backend applies before dlopen (a regular file that only its owner,
 * root or this user, can write, in a directory others cannot write unless it is sticky).
 * 0 or -1 with the reason. */
int cnb_check_backend_file(const char *path, char *err, size_t err_len);

/* Load + create a context with cfg (NULL: defaults) in one step; on failure unloads again. */
int cnb_open_backend(const char *name_or_path, const cnb_config *cfg, cnb_loaded_backend *out,
                     cnb_context **ctx, char *err, size_t err_len);
void cnb_close_backend(cnb_loaded_backend *b, cnb_context *ctx);

/* The backend's info() facts, followed, for a backend that runs on OpenBLAS (it reports
 * "openblas.corename"), by how that core was chosen (openblas_core.h). */
cnb_status cnb_backend_info(const cnb_backend *api, cnb_context *ctx, cnb_info_fn fn, void *user);

#endif
