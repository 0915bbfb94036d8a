/*
 * libFuzzer harness: what a download or an upload reads from a client's
 * headers in src/api/h_files.c: the Range header (parse_range), the
 * If-None-Match list (etag_listed), the uploaded filename (safe_filename)
 * and the Content-Disposition written from it (disposition). They are
 * static, so the file is compiled into the harness (its other functions
 * are not called; the archive's copy is then not linked).
 *
 * Input: 8 bytes of file size (little-endian, reduced to < 2^40 so small
 * sizes are common), then the Range value, the If-None-Match value and the
 * filename, NUL-separated. Beyond "no crash, no leak": a satisfiable range
 * lies inside the file (from <= to < size); "*" and the file's own tag
 * always match; a filename that is accepted is 1-255 bytes of valid UTF-8
 * with no '/', '\' or control byte and not "." or ".."; the disposition
 * from it is one header line of printable ASCII, its quoted name without
 * '"' or '\'.
 */
#include "api/h_files.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *next_part(const char **p, const char *end)
{
    const char *s = *p;
    if (s >= end)
        return "";
    *p = s + strlen(s) + 1;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8 || size > 8192)
        return 0;
    uint64_t fsize = 0;
    for (int i = 7; i >= 0; i--)
        fsize = fsize << 8 | data[i];
    fsize %= (uint64_t)1 << (fsize & 1 ? 40 : 12);
    char *text = malloc(size - 8 + 1);
    memcpy(text, data + 8, size - 8);
    text[size - 8] = '\0';
    const char *p = text, *end = text + (size - 8);
    const char *range = next_part(&p, end);
    const char *inm = next_part(&p, end);
    const char *name = next_part(&p, end);

    uint64_t from = 7, to = 7;
    int r = parse_range(range, fsize, &from, &to);
    if (r > 0 && !(from <= to && to < fsize))
        abort();
    if (r < -1 || r > 1)
        abort();

    static const char etag[] = "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"";
    etag_listed(inm, etag);
    if (!etag_listed("*", etag) || !etag_listed(etag, etag) ||
        !etag_listed("W/\"x\", W/" "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"", etag))
        abort();

    char safe[FILE_NAME_MAX];
    if (safe_filename(name, safe, sizeof(safe))) {
        size_t n = strlen(safe);
        if (n == 0 || n >= FILE_NAME_MAX || !utf8_valid(safe, n) || strchr(safe, '/') ||
            strchr(safe, '\\') || strcmp(safe, ".") == 0 || strcmp(safe, "..") == 0)
            abort();
        for (const unsigned char *q = (const unsigned char *)safe; *q; q++)
            if (*q < 0x20 || *q == 0x7f)
                abort();
        store_file_t f;
        memset(&f, 0, sizeof(f));
        memcpy(f.filename, safe, n + 1);
        snprintf(f.content_type, sizeof(f.content_type), "%s",
                 (data[0] & 1) ? "image/png" : "application/octet-stream");
        char v[FILE_NAME_MAX * 4 + 64];
        disposition(&f, v, sizeof(v));
        if (strlen(v) >= sizeof(v) - 1)
            abort(); /* possibly cut */
        for (const unsigned char *q = (const unsigned char *)v; *q; q++)
            if (*q < 0x20 || *q >= 0x7f)
                abort();
        const char *open = strstr(v, "filename=\"") + 10;
        const char *close = strstr(open, "\"; filename*=");
        if (close == NULL)
            abort();
        for (const char *q = open; q < close; q++)
            if (*q == '"' || *q == '\\')
                abort();
    }
    free(text);
    return 0;
}
