/*
 * Reading one log segment or snapshot from memory: the single place that
 * decides whether bytes are a good frame, a torn tail or corruption, used by
 * recovery, the offline tools and the fuzz harness alike.
 *
 * Order of checks for each frame (SQLite's "if( !isValid ) break;" made
 * explicit): the header must fit, be non-zero, have zeros where zeros belong
 * and a stored length that fits the file; the CRC over header and payload
 * must match; only then is the payload decompressed (it must give exactly
 * raw_len bytes) and parsed into exactly `count` records. A frame that fails
 * any check ends the good prefix. Whether that is a torn tail or corruption
 * is decided by looking for any valid frame later in the file: a write that
 * was torn by a crash leaves nothing valid after it, so a valid frame after a
 * bad one means acknowledged data would be lost, and that is never silent.
 * A frame whose CRC matches but whose LSN, payload or records are wrong is
 * corruption outright (no crash produces it).
 *
 * Sealed files (seal.c): the file must be sealed exactly when a key is given,
 * and with that key (else WALF_SCAN_KEY, before any frame is read); a
 * frame's tag is checked after its CRC, and one whose CRC holds but whose
 * tag does not is corruption too.
 */
#include <stdlib.h>
#include <string.h>

#include "wal_internal.h"

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void parse_frame_header(const uint8_t *h, walf_frame_t *f)
{
    f->stored_len = wal__get32(h + 4);
    f->first_lsn = wal__get64(h + 8);
    f->count = wal__get32(h + 16);
    f->raw_len = wal__get32(h + 20);
    f->kind = h[24];
    f->flags = h[25];
}

/* Structure of a frame header alone (before the CRC). In a sealed file
 * every frame is sealed and its stored payload carries a 16-byte tag. */
static bool header_plausible(const uint8_t *h, size_t room, bool snapshot, bool sealed,
                             walf_frame_t *f)
{
    parse_frame_header(h, f);
    uint8_t seal_flag = sealed ? WALF_FLAG_SEALED : 0;
    uint32_t tag = sealed ? WALF_TAG_BYTES : 0;
    if (!all_zero(h + 26, 6) || (f->flags & ~(WALF_FLAG_ZSTD | WALF_FLAG_SEALED)) != 0 ||
        (f->flags & WALF_FLAG_SEALED) != seal_flag || f->stored_len < tag)
        return false;
    if (f->stored_len > room || f->stored_len > WALF_FRAME_STORED_MAX ||
        f->raw_len > WALF_FRAME_RAW_MAX)
        return false;
    if (f->kind == WALF_KIND_RECORDS) {
        if (f->count == 0 || f->raw_len < (uint64_t)f->count * WALF_RECORD_HEADER)
            return false;
        if (snapshot ? f->first_lsn != 0 : f->first_lsn == 0)
            return false;
    } else if (f->kind == WALF_KIND_SNAPSHOT_END) {
        if (!snapshot || f->count != 0 || f->raw_len != WALF_END_PAYLOAD ||
            f->stored_len != WALF_END_PAYLOAD + tag || f->flags != seal_flag ||
            f->first_lsn != 0)
            return false;
    } else {
        return false;
    }
    if (!(f->flags & WALF_FLAG_ZSTD) && f->stored_len != f->raw_len + tag)
        return false;
    return true;
}

static bool crc_ok(const uint8_t *h, const walf_frame_t *f)
{
    uint32_t want = wal__get32(h);
    return wal__mask(wal__crc32c(0, h + 4, WALF_FRAME_HEADER - 4 + f->stored_len)) == want;
}

/* True when some offset after `from` holds a frame whose checksum holds. */
static bool valid_frame_after(const uint8_t *img, size_t len, size_t from, bool snapshot,
                              bool sealed)
{
    for (size_t off = from; off + WALF_FRAME_HEADER <= len; off++) {
        walf_frame_t f;
        if (header_plausible(img + off, len - off - WALF_FRAME_HEADER, snapshot, sealed, &f) &&
            crc_ok(img + off, &f))
            return true;
    }
    return false;
}

/* Decompresses (or copies) a frame's payload into raw[f->raw_len]. */
static bool decode_payload(const uint8_t *payload, const walf_frame_t *f, ZSTD_DCtx *dctx,
                           uint8_t *raw)
{
    if (!(f->flags & WALF_FLAG_ZSTD)) {
        memcpy(raw, payload, f->raw_len);
        return true;
    }
    ZSTD_inBuffer in = {payload, f->stored_len, 0};
    ZSTD_outBuffer out = {raw, f->raw_len, 0};
    for (;;) {
        size_t before_in = in.pos, before_out = out.pos;
        size_t rc = ZSTD_decompressStream(dctx, &out, &in);
        if (ZSTD_isError(rc))
            return false;
        if (in.pos == before_in && out.pos == before_out)
            break; /* no progress: all given, or the output is full */
    }
    if (in.pos != in.size || out.pos != out.size)
        return false;
    /* Nothing may remain buffered inside the decoder for this frame. */
    uint8_t extra;
    ZSTD_outBuffer probe = {&extra, 1, 0};
    ZSTD_inBuffer none = {NULL, 0, 0};
    size_t rc = ZSTD_decompressStream(dctx, &probe, &none);
    return !ZSTD_isError(rc) && probe.pos == 0;
}

/*
 * Walks the records of a decoded payload; *ok false when they do not add up.
 * All of them are checked before the first is handed to the sink: a frame is
 * good or bad as a whole, and no record of a bad one may reach recovery's
 * callbacks (after a repair cut there, its LSNs are handed out again).
 */
static int parse_records(const uint8_t *raw, const walf_frame_t *f, uint64_t frame_offset,
                         const walf_sink_t *sink, bool *ok)
{
    size_t pos = 0;
    *ok = false;
    for (uint32_t i = 0; i < f->count; i++) {
        if (f->raw_len - pos < WALF_RECORD_HEADER)
            return 0;
        uint32_t len = wal__get32(raw + pos);
        uint8_t type = raw[pos + 4];
        if (type == 0 || !all_zero(raw + pos + 5, 3) || len > WAL_RECORD_MAX ||
            len > f->raw_len - pos - WALF_RECORD_HEADER)
            return 0;
        pos += WALF_RECORD_HEADER + len;
    }
    if (pos != f->raw_len)
        return 0;
    *ok = true;
    if (sink == NULL || sink->record == NULL)
        return 0;
    pos = 0;
    for (uint32_t i = 0; i < f->count; i++) {
        uint32_t len = wal__get32(raw + pos);
        uint64_t lsn = f->first_lsn ? f->first_lsn + i : 0;
        if (sink->record(sink->ctx, frame_offset, f, lsn, raw[pos + 4],
                         raw + pos + WALF_RECORD_HEADER, len) != 0)
            return WAL_E_CALLBACK;
        pos += WALF_RECORD_HEADER + len;
    }
    return 0;
}

/*
 * Classifies a bad frame. In a segment written under the fsync policies
 * batch or none (WALF_FILE_UNSYNCED), frames were written without a sync
 * between them, and a crash may have kept a later frame while losing an
 * earlier one; there a valid frame after a bad one is still a torn tail.
 */
static void bad(walf_scan_result_t *res, const uint8_t *img, size_t len, size_t off,
                bool snapshot, const char *why, bool certain)
{
    res->bad_offset = off;
    res->why = why;
    bool later_valid =
        !res->unsynced && valid_frame_after(img, len, off + 1, snapshot, res->sealed);
    res->status = certain || later_valid ? WALF_SCAN_CORRUPT : WALF_SCAN_TORN;
}

int wal__scan(const uint8_t *img, size_t len, bool snapshot, const walf_sink_t *sink,
              ZSTD_DCtx *dctx, walf_scan_result_t *res)
{
    memset(res, 0, sizeof(*res));
    const char *magic = snapshot ? WALF_MAGIC_SNAPSHOT : WALF_MAGIC_SEGMENT;
    if (len < WALF_FILE_HEADER || memcmp(img, magic, 8) != 0 ||
        wal__mask(wal__crc32c(0, img, 28)) != wal__get32(img + 28)) {
        res->bad_offset = 0;
        res->why = len < WALF_FILE_HEADER ? "file shorter than its header" : "bad file header";
        /* A header torn by a crash right after creation leaves nothing else. */
        res->status =
            len <= WALF_FILE_HEADER || (!valid_frame_after(img, len, 1, snapshot, false) &&
                                        !valid_frame_after(img, len, 1, snapshot, true))
                ? WALF_SCAN_TORN
                : WALF_SCAN_CORRUPT;
        return 0;
    }
    res->version = wal__get32(img + 8);
    if (res->version == 0) {
        res->bad_offset = 8;
        res->why = "format version 0";
        res->status = WALF_SCAN_CORRUPT;
        return 0;
    }
    if (res->version > WAL_FORMAT_VERSION) {
        res->status = WALF_SCAN_VERSION;
        res->why = "written by a newer format version";
        return 0;
    }
    uint32_t flags = wal__get32(img + 12);
    if ((flags & ~(WALF_FILE_UNSYNCED | WALF_FILE_SEALED)) != 0 ||
        (snapshot && (flags & WALF_FILE_UNSYNCED))) {
        res->bad_offset = 12;
        res->why = "unknown file flags";
        res->status = WALF_SCAN_CORRUPT;
        return 0;
    }
    res->unsynced = flags & WALF_FILE_UNSYNCED;
    res->sealed = flags & WALF_FILE_SEALED;
    res->header_len = res->sealed ? WALF_SEALED_HEADER : WALF_FILE_HEADER;
    if (res->sealed && (len < WALF_SEALED_HEADER || !wal__seal_block_ok(img))) {
        res->bad_offset = WALF_FILE_HEADER;
        res->why = "bad seal block";
        res->status = len <= WALF_SEALED_HEADER ? WALF_SCAN_TORN : WALF_SCAN_CORRUPT;
        return 0;
    }
    const uint8_t *key = sink ? sink->key : NULL;
    bool keyless_walk = sink && sink->frames_only && !sink->decode && key == NULL &&
                        sink->opened == NULL && !snapshot;
    if (!keyless_walk &&
        (res->sealed != (key != NULL) || (key && !wal__seal_key_matches(img, key)))) {
        res->status = WALF_SCAN_KEY;
        res->bad_offset = res->sealed ? WALF_FILE_HEADER : 12;
        res->why = !res->sealed ? "the file is not sealed, but a key was given"
                   : key == NULL ? "the file is sealed and no key was given"
                                 : "the file is sealed with another key";
        return 0;
    }
    walf_seal_t seal = {0};
    if (key && wal__seal_open(&seal, key, img, snapshot) != 0) {
        res->status = WALF_SCAN_KEY;
        res->why = "cannot set up the cipher";
        return 0;
    }
    res->header_ok = true;
    res->base_lsn = wal__get64(img + 16);
    res->next_lsn = res->base_lsn;
    res->good_end = res->header_len;
    res->status = WALF_SCAN_CLEAN;
    bool decode = sink && sink->decode;
    if (decode)
        ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);

    uint8_t *raw = NULL, *opened = NULL;
    size_t raw_cap = 0, opened_cap = 0;
    int rc = 0;
    size_t off = res->header_len;
    while (off < len) {
        size_t room = len - off;
        if (room < WALF_FRAME_HEADER || all_zero(img + off, WALF_FRAME_HEADER)) {
            if (all_zero(img + off, room)) {
                res->zero_tail = room;
                break;
            }
            bad(res, img, len, off, snapshot, "truncated or zeroed frame header", false);
            break;
        }
        if (snapshot && res->has_end) {
            bad(res, img, len, off, snapshot, "data after the snapshot's end", true);
            break;
        }
        walf_frame_t f;
        if (!header_plausible(img + off, room - WALF_FRAME_HEADER, snapshot, res->sealed, &f)) {
            bad(res, img, len, off, snapshot, "malformed frame header", false);
            if (sink && sink->frame)
                sink->frame(sink->ctx, off, &f, false);
            break;
        }
        if (!crc_ok(img + off, &f)) {
            bad(res, img, len, off, snapshot, "checksum mismatch", false);
            if (sink && sink->frame)
                sink->frame(sink->ctx, off, &f, false);
            break;
        }
        if (!snapshot && f.first_lsn != res->next_lsn) {
            bad(res, img, len, off, snapshot, "LSN out of sequence", true);
            break;
        }
        const uint8_t *payload = img + off + WALF_FRAME_HEADER;
        walf_frame_t pf = f; /* the frame as the payload is once opened */
        if (seal.h && (decode || f.kind == WALF_KIND_SNAPSHOT_END || sink->opened)) {
            pf.stored_len -= WALF_TAG_BYTES;
            if (opened_cap < f.stored_len) {
                free(opened);
                opened_cap = f.stored_len;
                opened = malloc(opened_cap);
                if (opened == NULL)
                    abort();
            }
            if (!wal__seal_decrypt(&seal, off, img + off, payload, f.stored_len, opened)) {
                bad(res, img, len, off, snapshot,
                    "sealed frame does not authenticate (altered, or another key)", true);
                break;
            }
            payload = opened;
        }
        if (sink && sink->opened && (rc = sink->opened(sink->ctx, off, &pf, payload,
                                                      pf.stored_len)) != 0)
            break;
        if (f.kind == WALF_KIND_SNAPSHOT_END) {
            if (wal__get64(payload) != res->records || wal__get64(payload + 8) != res->base_lsn) {
                bad(res, img, len, off, snapshot, "snapshot end does not match its records", true);
                break;
            }
            res->has_end = true;
        } else if (decode) {
            if (raw_cap < f.raw_len) {
                free(raw);
                raw_cap = f.raw_len;
                raw = malloc(raw_cap ? raw_cap : 1);
                if (raw == NULL)
                    abort();
            }
            if (!decode_payload(payload, &pf, dctx, raw)) {
                bad(res, img, len, off, snapshot, "payload does not decompress to raw_len", true);
                break;
            }
            bool ok;
            rc = parse_records(raw, &f, off, sink, &ok);
            if (rc != 0)
                break;
            if (!ok) {
                bad(res, img, len, off, snapshot, "records do not fill the payload", true);
                break;
            }
        }
        if (sink && sink->frame)
            sink->frame(sink->ctx, off, &f, true);
        res->frames++;
        res->records += f.count;
        if (!snapshot)
            res->next_lsn += f.count;
        off += WALF_FRAME_HEADER + f.stored_len;
        res->good_end = off;
    }
    free(raw);
    free(opened);
    wal__seal_close(&seal);
    if (rc == 0 && snapshot && res->status == WALF_SCAN_CLEAN && !res->has_end) {
        res->status = WALF_SCAN_TORN;
        res->bad_offset = res->good_end;
        res->why = "snapshot has no end record";
    }
    return rc;
}

int wal_scan_image(const void *data, size_t len, bool is_snapshot)
{
    return wal_scan_image_key(data, len, is_snapshot, NULL);
}

int wal_scan_image_key(const void *data, size_t len, bool is_snapshot, const uint8_t *key)
{
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (dctx == NULL)
        abort();
    ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, 27);
    walf_sink_t sink = {.decode = true, .key = key};
    walf_scan_result_t res;
    wal__scan(data, len, is_snapshot, &sink, dctx, &res);
    ZSTD_freeDCtx(dctx);
    switch (res.status) {
    case WALF_SCAN_CLEAN:
        return 0;
    case WALF_SCAN_VERSION:
        return WAL_E_VERSION;
    case WALF_SCAN_KEY:
        return WAL_E_KEY;
    default:
        return WAL_E_CORRUPT;
    }
}
