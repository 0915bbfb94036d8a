/*
 * Image dimensions from an upload's first bytes (include/parley/blobs.h,
 * image_size): PNG (IHDR), GIF (the logical screen), JPEG (the first SOF
 * marker) and WebP (VP8, VP8L, VP8X). Only the head the blob writer keeps
 * (BLOB_HEAD_BYTES) is read, so the work is bounded by that and done once,
 * when the upload is sealed; a JPEG whose frame header lies beyond it (a
 * huge EXIF block) has no known size. Every read is checked against the
 * length first: the input is a client's bytes (fuzz/fuzz_image_size.c).
 */
#include <string.h>

#include "parley/blobs.h"

static uint32_t be16(const unsigned char *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t le16(const unsigned char *p) { return (uint32_t)p[1] << 8 | p[0]; }
static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint32_t le24(const unsigned char *p)
{
    return (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static bool png_size(const unsigned char *p, size_t n, uint32_t *w, uint32_t *h)
{
    if (n < 24 || memcmp(p, "\x89PNG\r\n\x1a\n", 8) != 0 || memcmp(p + 12, "IHDR", 4) != 0)
        return false;
    *w = be32(p + 16);
    *h = be32(p + 20);
    return *w <= 0x7fffffffu && *h <= 0x7fffffffu; /* the PNG limit */
}

static bool gif_size(const unsigned char *p, size_t n, uint32_t *w, uint32_t *h)
{
    if (n < 10 || (memcmp(p, "GIF87a", 6) != 0 && memcmp(p, "GIF89a", 6) != 0))
        return false;
    *w = le16(p + 6);
    *h = le16(p + 8);
    return true;
}

/* Whether a JPEG marker starts a frame (SOF0-SOF15 but DHT C4, JPG C8, DAC CC). */
static bool sof_marker(unsigned char m)
{
    return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

static bool jpeg_size(const unsigned char *p, size_t n, uint32_t *w, uint32_t *h)
{
    if (n < 4 || p[0] != 0xFF || p[1] != 0xD8)
        return false;
    size_t i = 2;
    while (i + 1 < n) {
        if (p[i] != 0xFF)
            return false; /* not at a marker: corrupt */
        unsigned char m = p[i + 1];
        if (m == 0xFF) { /* fill byte */
            i++;
            continue;
        }
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) { /* no length */
            i += 2;
            continue;
        }
        if (m == 0xD9 || m == 0xDA || i + 4 > n)
            return false; /* the image ends or its data starts before a frame */
        size_t len = be16(p + i + 2);
        if (len < 2)
            return false;
        if (sof_marker(m)) {
            if (len < 7 || i + 9 > n)
                return false;
            *h = be16(p + i + 5);
            *w = be16(p + i + 7);
            return true;
        }
        i += 2 + len;
    }
    return false;
}

static bool webp_size(const unsigned char *p, size_t n, uint32_t *w, uint32_t *h)
{
    if (n < 30 || memcmp(p, "RIFF", 4) != 0 || memcmp(p + 8, "WEBP", 4) != 0)
        return false;
    const unsigned char *c = p + 12, *d = p + 20;
    if (memcmp(c, "VP8 ", 4) == 0) { /* lossy: a key frame's start code, then 14-bit sizes */
        if (memcmp(d + 3, "\x9d\x01\x2a", 3) != 0)
            return false;
        *w = le16(d + 6) & 0x3fff;
        *h = le16(d + 8) & 0x3fff;
        return true;
    }
    if (memcmp(c, "VP8L", 4) == 0) { /* lossless: 0x2f, then 14-bit sizes minus one */
        if (d[0] != 0x2f)
            return false;
        *w = 1 + ((uint32_t)d[1] | ((uint32_t)d[2] & 0x3f) << 8);
        *h = 1 + ((uint32_t)d[2] >> 6 | (uint32_t)d[3] << 2 | ((uint32_t)d[4] & 0x0f) << 10);
        return true;
    }
    if (memcmp(c, "VP8X", 4) == 0) { /* extended: flags, then 24-bit sizes minus one */
        *w = 1 + le24(d + 4);
        *h = 1 + le24(d + 7);
        return true;
    }
    return false;
}

bool image_size(const void *head, size_t len, uint32_t *width, uint32_t *height)
{
    const unsigned char *p = head;
    uint32_t w = 0, h = 0;
    bool ok = p != NULL && (png_size(p, len, &w, &h) || gif_size(p, len, &w, &h) ||
                            jpeg_size(p, len, &w, &h) || webp_size(p, len, &w, &h));
    ok = ok && w > 0 && h > 0;
    *width = ok ? w : 0;
    *height = ok ? h : 0;
    return ok;
}
