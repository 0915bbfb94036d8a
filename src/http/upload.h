/* Streaming uploads (upload.c): the ulfius upload callback and the state it
 * leaves for the endpoint. */
#ifndef PARLEY_HTTP_UPLOAD_H
#define PARLEY_HTTP_UPLOAD_H

#include <stdbool.h>
#include <ulfius.h>

#include "parley/blobs.h"

typedef struct upload {
    blob_writer_t *writer;   /* the file's bytes so far; NULL when none or gone */
    char filename[1024];     /* as the client sent it (made safe later) */
    bool filename_truncated;
    bool got_file;           /* a part named "file" arrived */
    bool extra_files;        /* more than one */
    bool in_extra;           /* the current part is an extra one (ignored) */
    bool too_large;          /* over max_upload_bytes: the body was refused */
    bool failed;             /* the disk refused it */
} upload_t;

/* What the callback needs: the app and the router (to know upload routes). */
typedef struct upload_ctx {
    struct parley_app *app;
    void *router;
} upload_ctx_t;

/* ulfius's upload-file callback; cls is an upload_ctx_t. */
int upload_chunk(const struct _u_request *req, const char *key, const char *filename,
                 const char *content_type, const char *transfer_encoding, const char *data,
                 uint64_t off, size_t size, void *cls);

/* The upload of the request being served on this thread, or NULL. The
 * endpoint may take the writer (set it NULL) to finish it. */
upload_t *upload_current(void);

#endif
