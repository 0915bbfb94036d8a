/*
 * Streaming uploads. ulfius hands every chunk of a multipart part that has a
 * filename to upload_chunk() (its upload-file callback) while the body
 * arrives, so a file is written to a temporary blob as it comes and is never
 * whole in memory (ulfius's own copy of the raw body is capped at
 * max_body_bytes). The state of the upload hangs on the gate's request
 * (http_request_attach), which frees it — removing the temporary file — however the
 * request ends; the endpoint then finds it with http_upload_current().
 *
 * Only routes flagged HTTP_ROUTE_UPLOAD accept a file, only from a caller
 * with valid credentials (checked at the first byte, so strangers cannot
 * fill the disk), and only in the part named "file" (one in a part of
 * another name is not read, and the router refuses the request naming it);
 * a file over max_upload_bytes stops the body (the gate discards the rest
 * and answers 413).
 */
#include <stdlib.h>
#include <string.h>

#include "authenticate.h"
#include "gate.h"
#include "parley/app.h"
#include "parley/blobs.h"
#include "parley/http_server.h"
#include "parley/xalloc.h"

/* The request's upload: what the endpoint sees, and what only the
 * callback needs. */
typedef struct upload_state {
    upload_t pub;        /* first: http_upload_current() hands out its address */
    uint64_t part_bytes; /* bytes of the current "file" part so far */
} upload_state_t;

static void upload_free(void *state)
{
    upload_state_t *us = state;
    if (us == NULL)
        return;
    blob_writer_abort(us->pub.writer);
    free(us);
}

upload_t *http_upload_current(void)
{
    return gate_attached();
}

bool http_upload_body_complete(void)
{
    return gate_multipart_closed();
}

int upload_chunk(const struct _u_request *req, const char *key, const char *filename,
                 const char *content_type, const char *transfer_encoding, const char *data,
                 uint64_t off, size_t size, void *cls)
{
    (void)content_type;
    (void)transfer_encoding;
    upload_ctx_t *uc = cls;
    parley_app_t *app = uc->app;
    unsigned flags = router_route_flags(uc->router, req->http_verb, req->url_path);
    if (!(flags & HTTP_ROUTE_UPLOAD))
        return U_ERROR; /* not an upload route: the router refuses the body */
    upload_state_t *us = gate_attached();
    if (us == NULL) {
        /* Nobody writes to this disk without credentials (nor a muted
         * account on a content route): the router will answer 401 or 403
         * as usual, the bytes are not kept. */
        if (!http_credentials_valid(app, req, flags))
            return U_ERROR;
        us = xcalloc(1, sizeof(*us));
        http_request_attach(us, upload_free);
    }
    upload_t *u = &us->pub;
    if (key == NULL || strcmp(key, "file") != 0) {
        /* A file in another field is not read; the router refuses the
         * request naming it (the route's declared fields). */
        if (!u->other_file)
            snprintf(u->other_name, sizeof(u->other_name), "%s", key ? key : "");
        u->other_file = true;
        return U_OK;
    }
    if (filename == NULL)
        filename = "";
    /* libmicrohttpd may hand a part over at offset 0 twice: first with no
     * bytes (when a read of the body ended within the part's first bytes),
     * then with them. Only a part that had bytes, or another name, is a new
     * part. */
    bool continued = u->got_file && !u->in_extra && us->part_bytes == 0 &&
                     strncmp(u->filename, filename, sizeof(u->filename) - 1) == 0;
    if (off == 0 && !continued) {
        if (u->got_file) {
            u->extra_files = true;
            u->in_extra = true;
            return U_OK;
        }
        u->in_extra = false;
        u->got_file = true;
        snprintf(u->filename, sizeof(u->filename), "%s", filename);
        u->filename_truncated = strlen(filename) >= sizeof(u->filename);
        if (blob_writer_new(app->blobs, gate_upload_limit(), &u->writer) != 0) {
            u->failed = true;
            return U_ERROR;
        }
    }
    if (u->in_extra || u->failed || u->too_large)
        return U_OK;
    int rc = blob_writer_write(u->writer, data, size);
    if (rc == BLOB_E_TOO_LARGE) {
        u->too_large = true;
        blob_writer_abort(u->writer);
        u->writer = NULL;
        gate_refuse_body();
        return U_ERROR;
    }
    if (rc != 0) {
        u->failed = true;
        return U_ERROR;
    }
    us->part_bytes += size;
    return U_OK;
}
