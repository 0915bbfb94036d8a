/*
 * The TLS certificate reload on SIGHUP, with its audit entry. The transport
 * (src/http/tls.c) swaps the pair; this file, in the layer that may write to
 * the store, records the event: a certificate change is a security event an
 * operator wants to see beside the admins' actions. The main thread calls it
 * from its sigwait loop (src/server.c), so reloads never overlap.
 */
#include "parley/api.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "parley/app.h"
#include "parley/audit.h"
#include "parley/http_server.h"
#include "parley/log.h"

void api_tls_reload(struct parley_app *app, void *tls)
{
    char serial[HTTP_TLS_SERIAL_LEN], err[600];
    int rc = http_tls_reload(tls, serial, err, sizeof(err));
    if (rc > 0)
        return; /* plain HTTP: nothing reloaded, nothing to record */
    store_audit_t a;
    memset(&a, 0, sizeof(a));
    snprintf(a.action, sizeof(a.action), rc == 0 ? "tls.reload" : "tls.reload_refused");
    snprintf(a.target, sizeof(a.target), "%s", serial);
    json_t *details = rc == 0 ? json_pack("{s:s}", "serial", serial)
                              : json_pack("{s:s, s:s}", "kept_serial", serial, "error", err);
    a.details = json_dumps(details, JSON_COMPACT);
    json_decref(details);
    uint64_t lsn;
    if (store_audit_append(app->store, &a, &lsn) != 0 || store_wait(app->store, lsn) != 0)
        log_warning("TLS reload: its audit entry was not written");
    store_audit_clear(&a);
}
