/* dist_device.c — joining a backend's device communicator (see dist_device.h). */
#define _POSIX_C_SOURCE 200809L
#include "dist_device.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

/* What rank 0 sends the others: its verdict, the id and the library's name. */
typedef struct device_id {
    int status;              /* cnb_status of collective_id on rank 0 */
    size_t bytes;
    unsigned char id[CNB_COLLECTIVE_ID_MAX];
    char library[128];
    char why[512];
} device_id;

int cnb_dist_device_join(cnb_dist *d, const cnb_backend *api, cnb_context *ctx, char *library,
                         size_t library_len, char *why, size_t why_len) {
    library[0] = '\0';
    if (!d) {
        cnb_errf(why, why_len, "not launched by mpirun");
        return 0;
    }
    if (!cnb_backend_has_collectives(api)) {
        cnb_errf(why, why_len, "backend %s has no device collectives", api->name);
        return 0;
    }
    device_id msg;
    memset(&msg, 0, sizeof msg);
    if (cnb_dist_rank(d) == 0) {
        msg.bytes = sizeof msg.id;
        msg.status = api->collective_id(ctx, msg.id, &msg.bytes, msg.library, sizeof msg.library);
        if (msg.status == CNB_OK && (msg.bytes == 0 || msg.bytes > sizeof msg.id))
            msg.status = CNB_ERR_INTERNAL;
        if (msg.status != CNB_OK)
            snprintf(msg.why, sizeof msg.why, "%s: collective_id: %s", api->name,
                     api->last_error(ctx));
    }
    if (cnb_dist_broadcast(d, &msg, sizeof msg) != 0)
        return cnb_errf(why, why_len, "MPI: cannot broadcast the device communicator id");
    if (msg.status != CNB_OK) return cnb_errf(why, why_len, "%s", msg.why);
    cnb_status st = api->collective_init(ctx, msg.id, msg.bytes, cnb_dist_size(d),
                                         cnb_dist_rank(d));
    if (!cnb_dist_any(d, st != CNB_OK)) {
        snprintf(library, library_len, "%s", msg.library);
        return 1;
    }
    /* Every rank leaves together; "cannot take this many ranks" falls back to the host. */
    int hard = cnb_dist_any(d, st != CNB_OK && st != CNB_ERR_UNSUPPORTED);
    const char *words = st == CNB_OK ? "failed on another rank" : api->last_error(ctx);
    if (st == CNB_OK) api->collective_destroy(ctx);
    if (hard) return cnb_errf(why, why_len, "%s: collective_init: %s", api->name, words);
    cnb_errf(why, why_len, "%s cannot join %d ranks on the device (%s)", api->name,
             cnb_dist_size(d), words);
    return 0;
}

void cnb_dist_device_leave(const cnb_backend *api, cnb_context *ctx) {
    if (cnb_backend_has_collectives(api)) api->collective_destroy(ctx);
}
