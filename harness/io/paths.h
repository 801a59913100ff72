/* paths.h — where cnnbench finds its backends and models: relative to the program itself, so an
 * installed tree (or a .deb, or a copy of either) works wherever it lies, with nothing of the
 * source or build tree compiled in.
 *
 *   installed:  <prefix>/bin/cnnbench, <prefix>/lib/cnnbench/, <prefix>/share/cnnbench/models/
 *   build tree: a marker file "cnnbench-build-tree" in the executable's directory or its parent
 *               (CMake writes it at the top of the build directory) names the build's backend
 *               directory and the source tree's models directory.
 *
 * $CNNBENCH_BACKEND_PATH and $CNNBENCH_MODEL_PATH (colon-separated) add directories searched
 * before the default one; $CNNBENCH_BACKEND_DIR and $CNNBENCH_MODELS_DIR replace the default. */
#ifndef CNB_PATHS_H
#define CNB_PATHS_H

#include <stddef.h>

#define CNB_BUILD_TREE_MARKER "cnnbench-build-tree"
#define CNB_MAX_SEARCH_DIRS 16

typedef enum { CNB_DIR_BACKENDS, CNB_DIR_MODELS } cnb_dir_kind;

/* The default directory of that kind (see above), into buf. Returns buf. */
const char *cnb_default_dir(cnb_dir_kind kind, char *buf, size_t len);

/* The directories to search, in order: those of the colon-separated variable `path_var`, then
 * `primary`. Each is malloc'd into dirs; returns the count. Free with cnb_free_search_dirs. */
int cnb_search_dirs(const char *path_var, const char *primary, char **dirs, int max);
void cnb_free_search_dirs(char **dirs, int n);

#endif
