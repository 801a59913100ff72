/* runctx.h — what the check / bench / compare / report verbs share: the context every results
 * file carries (machine, environment, threads and pinning, build, command line), comma lists,
 * the model names in the models directory, and reading a JSON file. */
#ifndef CNB_RUNCTX_H
#define CNB_RUNCTX_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "machine.h"
#include "results.h"

#define CNB_MAX_LIST 64

/* Split "a,b,c" into at most max items (pointers into buf, which is modified). Returns the
 * count, or -1 when there are more than max or an item is empty. */
int cnb_split_list(char *buf, char **items, int max);

/* Model names (file names without .cfg) in cnb_models_dir(), sorted; returns the count. Each
 * name is malloc'd; free with cnb_free_names. */
int cnb_list_model_names(char **names, int max);
void cnb_free_names(char **names, int n);

/* The process's CPU binding as hwloc sees it: "0-1" style lists of the bound and the allowed
 * processing units, and whether the binding is narrower than what is allowed. */
typedef struct cnb_pinning {
    char bound[128], allowed[128];
    int pinned;
} cnb_pinning;
void cnb_pinning_probe(cnb_pinning *p);

/* "Release (optimized, NDEBUG)" etc.: the build type when compiled in, else what the compiler
 * flags say. */
const char *cnb_build_description(void);

/* The context object of a results file: schema_version, kind ("check" / "bench"), tool,
 * created, command_line, seed, build, threads, pinning, machine, environment. */
cJSON *cnb_context_json(const char *kind, int argc, char **argv, uint64_t seed, int threads,
                        const cnb_machine *mc);
/* The machine block of the context (CPU model, cores, caches via hwloc, host, OS). */
cJSON *cnb_machine_json(const cnb_machine *mc);
/* Backend info() facts as a JSON object. */
cJSON *cnb_info_json(const cnb_info_list *info);
/* One backend's entry in a results file: name, status (loaded / skipped), device (when not
 * NULL), then why it was skipped or its library's path and info, and the test fault it ran
 * under (when fault_env is not empty). */
cJSON *cnb_backend_json(const char *name, int usable, const char *device, const char *why,
                        const char *path, const cnb_info_list *info, const char *fault_env);

/* What a results file is: its "kind" ("train", "comparison", "check", "bench", "compare", ...);
 * a schema-1 training file has none but has "epochs"; "unknown" otherwise. */
const char *cnb_results_kind(const cJSON *root);

/* Read and parse a JSON file; NULL with err set (naming the file) on failure. */
cJSON *cnb_read_json(const char *path, char *err, size_t err_len);
/* Serialize root and write it atomically to path. 0 or -1. */
int cnb_write_json(const char *path, const cJSON *root, char *err, size_t err_len);

/* cJSON helpers that tolerate missing members. */
double cnb_json_num(const cJSON *o, const char *key, double dflt);
/* An integer field: dflt when missing, not a number, or outside int's range (results files come
 * from anywhere, and casting an out-of-range double to int is undefined behaviour). */
int cnb_json_int(const cJSON *o, const char *key, int dflt);
const char *cnb_json_str(const cJSON *o, const char *key, const char *dflt);

#endif
