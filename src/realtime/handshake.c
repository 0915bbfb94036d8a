/*
 * What the WebSocket and event-stream handshakes share (websocket.c, sse.c):
 * the credentials a real-time request carries, and a JSON error answered
 * straight from libmicrohttpd.
 *
 * A browser's session cookie authenticates a WebSocket or an event stream
 * only when no other credential is given and the Origin is the server's own
 * or a listed one: a WebSocket is not bound by CORS, so without this check
 * any page the user visits could open one with the user's cookie and read
 * the user's events. A WebSocket without Origin is refused (every browser
 * sends one; a client that is no browser uses a token). An event stream
 * from the page's own origin comes without Origin (the Fetch standard sends
 * none on a same-origin GET): it passes unless Sec-Fetch-Site says another
 * site made it. Apart from realtime.c, which only dispatches
 * to the two, so that no file of src/realtime/ calls back into its caller.
 */
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "parley/access.h"

static void add_header(void *ctx, const char *name, const char *value)
{
    MHD_add_response_header(ctx, name, value);
}

enum MHD_Result realtime__reply_error(struct MHD_Connection *conn, const char *request_id,
                               enum http_error err, const char *message, int *status)
{
    struct MHD_Response *r = http_error_response(err, message, request_id);
    if (r == NULL)
        return MHD_NO;
    if (err == HTTP_ERR_BAD_REQUEST)
        MHD_add_response_header(r, "Sec-WebSocket-Version", "13");
    http_cors_headers_each(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin"),
                           add_header, r);
    *status = http_error_status(err);
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)*status, r);
    MHD_destroy_response(r);
    return ok;
}

const char *realtime__request_credentials(struct MHD_Connection *conn)
{
    const char *authz = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    const char *api_key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-API-Key");
    const char *token = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token");
    return authz ? authz : api_key ? api_key : token;
}

/* Whether a browser made the request from another origin by its
 * Sec-Fetch-Site ("cross-site", "same-site"; absent: not a browser that
 * says, "same-origin" or "none": the user's own). */
static bool fetched_from_elsewhere(struct MHD_Connection *conn)
{
    const char *site = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-Fetch-Site");
    return site != NULL && strcasecmp(site, "same-origin") != 0 && strcasecmp(site, "none") != 0;
}

int realtime__cookie_authenticate(parley_app_t *app, struct MHD_Connection *conn,
                                  bool origin_required, rt_client_t *c, const char **message)
{
    const char *cookie = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, HTTP_SESSION_COOKIE);
    if (cookie == NULL)
        return RT_NO_COOKIE;
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
    bool allowed = origin != NULL ? http_origin_trusted(origin, host, http_request_https(NULL))
                                  : !origin_required && !fetched_from_elsewhere(conn);
    if (!allowed) {
        *message = origin == NULL ? "a session cookie needs the Origin header here (or use a token)"
                                  : "the Origin is not this server's nor a listed one";
        return HTTP_ERR_INSUFFICIENT_PERMISSIONS;
    }
    principal_t p;
    int rc = principal_from_session_cookie(app, cookie, NULL, &p);
    if (rc != 0) {
        *message = rc == ACCESS_E_BANNED ? "this account is banned"
                                         : "the session cookie is not valid: log in again";
        return http_error_of_access(rc);
    }
    realtime__client_adopt(c, &p, 0);
    return -1;
}
