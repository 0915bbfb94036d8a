/*
 * What the WebSocket and event-stream handshakes share (websocket.c, sse.c):
 * the credentials a real-time request carries, and a JSON error answered
 * straight from libmicrohttpd. Apart from realtime.c, which only dispatches
 * to the two, so that no file of src/realtime/ calls back into its caller.
 */
#include "internal.h"

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
