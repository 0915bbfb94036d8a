/*
 * libFuzzer harness: the router's body check (content type + JSON parse +
 * depth limit + shape). The first input byte picks the Content-Type and
 * whether the route takes uploads; the rest is the body. Any crash, leak or
 * undefined behaviour is a finding; so is an accepted body that is not an
 * object.
 */
#include <stdint.h>
#include <stdlib.h>

#include "parley/http.h"

static const char *const content_types[] = {
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "multipart/form-data; boundary=b",
    NULL,
    "application/json; charset=\"latin1\"",
    "  APPLICATION/JSON ;",
    "application/json;charset=",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *ct = content_types[data[0] % (sizeof(content_types) / sizeof(content_types[0]))];
    bool upload = (data[0] & 0x80) != 0;
    json_t *out = NULL;
    enum http_error err;
    char msg[256];
    int rc = http_parse_json_body(ct, data + 1, size - 1, upload, &out, &err, msg, sizeof(msg));
    if (rc == 0 && out != NULL && !json_is_object(out))
        abort();
    json_decref(out);
    return 0;
}
