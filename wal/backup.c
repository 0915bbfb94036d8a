/*
 * Holds for backups: a consistent cut of the log that the snapshot cleaner
 * leaves alone while a copy of it is made.
 *
 * A backup copies files as they are on disk (whatever their frames hold:
 * compressed, sealed), so the cut must fall between frames. wal_hold_begin
 * syncs the log and takes the durable LSN: the writer publishes it only
 * after a whole batch of frames is synced, so it is always the last record
 * of a frame. It notes, under the log's mutex, the newest snapshot and the
 * segments holding the records after it up to that LSN, and registers the
 * snapshot's LSN as held; wal__trim (snapshot.c) keeps every snapshot and
 * segment a hold needs. New appends go on meanwhile and are simply not in
 * the cut. wal_segment_cut finds, by the frame headers alone (checksums
 * checked, payloads not decoded), where a segment's frames up to the LSN end;
 * a sealed segment needs no key for it (its frame headers are not encrypted).
 */
#include <stdlib.h>
#include <string.h>

#include "wal_internal.h"

int wal_hold_begin(wal_t *w, wal_hold_t *out)
{
    if (w == NULL || out == NULL)
        return WAL_E_ARG;
    int rc = wal_sync(w);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&w->mu);
    if (w->n_holds >= WALF_HOLDS_MAX) {
        pthread_mutex_unlock(&w->mu);
        return WAL_E_ARG;
    }
    uint64_t snap = w->snap_lsn, lsn = w->durable_lsn;
    uint64_t *segs = malloc((w->n_segments + 1) * sizeof(*segs));
    if (segs == NULL)
        abort();
    size_t n = 0;
    for (size_t i = 0; i < w->n_segments; i++) {
        uint64_t first = w->segments[i].first_lsn;
        bool after_snap = i + 1 == w->n_segments || w->segments[i + 1].first_lsn > snap + 1;
        if (first <= lsn && after_snap)
            segs[n++] = first;
    }
    w->hold_snap[w->n_holds++] = snap;
    pthread_mutex_unlock(&w->mu);
    *out = (wal_hold_t){.w = w, .snapshot_lsn = snap, .lsn = lsn, .segments = segs,
                        .n_segments = n};
    return 0;
}

void wal_hold_end(wal_hold_t *h)
{
    if (h == NULL || h->w == NULL)
        return;
    wal_t *w = h->w;
    pthread_mutex_lock(&w->mu);
    for (unsigned i = 0; i < w->n_holds; i++) {
        if (w->hold_snap[i] == h->snapshot_lsn) {
            w->hold_snap[i] = w->hold_snap[--w->n_holds];
            break;
        }
    }
    pthread_mutex_unlock(&w->mu);
    free(h->segments);
    memset(h, 0, sizeof(*h));
}

uint64_t wal__hold_floor(wal_t *w, uint64_t keep_from)
{
    for (unsigned i = 0; i < w->n_holds; i++)
        if (w->hold_snap[i] < keep_from)
            keep_from = w->hold_snap[i];
    return keep_from;
}

typedef struct cut_ctx {
    uint64_t lsn;
    uint64_t end;
    bool found;
    bool straddles; /* a frame holds both lsn and lsn + 1 */
} cut_ctx_t;

static void cut_frame(void *ctx, uint64_t offset, const walf_frame_t *f, bool ok)
{
    cut_ctx_t *c = ctx;
    if (!ok || c->found || f->kind != WALF_KIND_RECORDS || f->count == 0)
        return;
    uint64_t last = f->first_lsn + f->count - 1;
    if (last <= c->lsn)
        c->end = offset + WALF_FRAME_HEADER + f->stored_len;
    if (last > c->lsn && f->first_lsn <= c->lsn)
        c->straddles = true;
    if (last >= c->lsn)
        c->found = true;
}

int wal_segment_cut(const char *path, uint64_t lsn, uint64_t *end)
{
    if (path == NULL || end == NULL)
        return WAL_E_ARG;
    walf_map_t m;
    int rc = wal__map_file(path, &m);
    if (rc != 0)
        return rc;
    cut_ctx_t c = {.lsn = lsn, .end = WALF_FILE_HEADER};
    walf_sink_t sink = {.decode = false, .frame = cut_frame, .ctx = &c, .frames_only = true};
    walf_scan_result_t res;
    rc = wal__scan(m.data, m.len, false, &sink, NULL, &res);
    if (rc == 0 && !res.header_ok)
        rc = res.status == WALF_SCAN_VERSION ? WAL_E_VERSION : WAL_E_CORRUPT;
    /* The cut must end a frame: a frame that straddles lsn cannot be cut
     * without decoding it. */
    if (rc == 0 && c.straddles)
        rc = WAL_E_ARG;
    if (rc == 0 && !c.found && res.next_lsn <= lsn && res.status != WALF_SCAN_CLEAN)
        rc = WAL_E_CORRUPT; /* records up to lsn should be here and are not */
    wal__unmap(&m);
    if (rc == 0 && c.end < res.header_len)
        c.end = res.header_len; /* no frame up to lsn: the header (and seal block) alone */
    if (rc == 0)
        *end = c.end;
    return rc;
}
