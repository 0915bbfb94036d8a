/*
 * /api/v1/admin/backup and /api/v1/admin/backups (docs/admin.md "Backups"):
 * a consistent archive of the data directory, streamed or written into
 * <data>/backups/, and the stored archives listed, downloaded and deleted.
 *
 * The archive itself is src/files/backup.c: its LSN is fixed and the log
 * and blobs it needs are held before the answer starts, writers go on
 * meanwhile. A streamed backup runs on a thread of its own that writes the
 * archive into one end of a socket pair; libmicrohttpd's stream callback
 * reads the other end, so memory stays at the socket's buffer and zstd's
 * state, and a client that goes away closes the pair, which stops the
 * writer (send with MSG_NOSIGNAL fails). One backup runs at a time in the
 * process: another answers 409 CONFLICT.
 *
 * Stored names are only ever those the server makes (backup_name_valid:
 * parley-<time>-<lsn>.tar.zst, no '/', no "..", no leading '.'), so a
 * hostile {name} answers 404 before any path is built from it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parley/access.h"
#include "parley/app.h"
#include "parley/backup.h"
#include "parley/http.h"
#include "parley/log.h"
#include "parley/store.h"
#include "parley/xalloc.h"
#include "resource.h"

#define STREAM_BLOCK (64 * 1024)
#define LIST_MAX 1000

static void backups_dir(const parley_app_t *app, char *out, size_t size)
{
    snprintf(out, size, "%s/backups", app->config->data_dir);
}

/* The backup's failure to begin, answered. */
static void reply_begin_error(http_ctx_t *ctx, int rc)
{
    if (rc == BACKUP_E_BUSY)
        http_reply_error(ctx, HTTP_ERR_CONFLICT, NULL, "a backup is already running");
    else
        reply_store_error(ctx, rc);
}

/* ?include_files=true|false (default true); false after answering 422. */
static bool include_files_query(http_ctx_t *ctx, bool *out)
{
    const char *v = http_query(ctx, "include_files");
    *out = true;
    if (v == NULL || strcmp(v, "true") == 0)
        return true;
    if (strcmp(v, "false") == 0) {
        *out = false;
        return true;
    }
    http_reply_invalid(ctx, "include_files", "include_files must be true or false");
    return false;
}

/* ---- GET /admin/backup: streamed ---- */

typedef struct stream {
    backup_t *bk;
    int rd, wr; /* the socket pair: the callback reads rd, the writer writes wr */
    pthread_t thread;
    bool started;
    atomic_int rc;
} stream_t;

static int send_all(void *ctx, const void *data, size_t len)
{
    stream_t *st = ctx;
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(st->wr, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void *stream_writer(void *arg)
{
    stream_t *st = arg;
    char err[512];
    int rc = backup_run(st->bk, send_all, st, NULL, err, sizeof(err));
    if (rc != 0 && rc != BACKUP_E_SINK)
        log_error("backup: the streamed backup failed: %s", err);
    atomic_store(&st->rc, rc);
    shutdown(st->wr, SHUT_WR);
    return NULL;
}

static ssize_t stream_read(void *cls, uint64_t off, char *buf, size_t max)
{
    (void)off;
    stream_t *st = cls;
    for (;;) {
        ssize_t n = read(st->rd, buf, max);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0)
            return n;
        /* The writer's end closed: a whole archive, or a failure, which
         * must not look like one (the client sees the stream cut). */
        if (n == 0 && atomic_load(&st->rc) == 0)
            return U_STREAM_END;
        return U_STREAM_ERROR;
    }
}

static void stream_free(void *cls)
{
    stream_t *st = cls;
    close(st->rd); /* a writer still running fails its next send */
    if (st->started)
        pthread_join(st->thread, NULL);
    close(st->wr);
    backup_end(st->bk);
    free(st);
}

static void get_backup(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    bool include_files;
    if (!include_files_query(ctx, &include_files))
        return;
    if (strcmp(ctx->req->http_verb, "HEAD") == 0) {
        /* A HEAD says what a GET would answer without taking (and
         * auditing) a backup: the archive's size is not known before. */
        http_set_header(ctx, "Content-Type", "application/zstd");
        http_reply_empty(ctx, 200);
        return;
    }
    backup_t *bk;
    int rc = backup_begin(app->store, app->blobs, app->config->data_dir, include_files, &bk);
    if (rc != 0) {
        reply_begin_error(ctx, rc);
        return;
    }
    char name[128];
    backup_file_name(bk, name, sizeof(name));
    uint64_t lsn = backup_lsn(bk);
    rc = store_wait(app->store,
                    audit_write(ctx, 0, "backup.create", name,
                                json_pack("{s:I, s:b, s:b}", "lsn", (json_int_t)lsn,
                                          "include_files", include_files, "stored", 0)));
    int sv[2];
    if (rc != 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        backup_end(bk);
        if (rc != 0)
            reply_store_error(ctx, rc);
        else
            http_reply_error(ctx, HTTP_ERR_INTERNAL, NULL, "could not start the backup");
        return;
    }
    stream_t *st = xcalloc(1, sizeof(*st));
    st->bk = bk;
    st->rd = sv[0];
    st->wr = sv[1];
    st->started = pthread_create(&st->thread, NULL, stream_writer, st) == 0;
    if (!st->started)
        atomic_store(&st->rc, -EAGAIN);
    char v[256];
    snprintf(v, sizeof(v), "attachment; filename=\"%s\"", name);
    http_set_header(ctx, "Content-Type", "application/zstd");
    http_set_header(ctx, "Content-Disposition", v);
    snprintf(v, sizeof(v), "%llu", (unsigned long long)lsn);
    http_set_header(ctx, "X-Backup-Lsn", v);
    if (!st->started ||
        ulfius_set_stream_response(ctx->resp, 200, stream_read, stream_free,
                                   U_STREAM_SIZE_UNKNOWN, STREAM_BLOCK, st) != U_OK) {
        stream_free(st);
        http_reply_error(ctx, HTTP_ERR_INTERNAL, NULL, "could not stream the backup");
        return;
    }
    ctx->status = 200;
}

/* ---- POST /admin/backup: stored ---- */

/* Removes the temporary files of stored backups cut short by a crash
 * (.parley-....tar.zst.tmp). REQUIRES: this process's backup running (one
 * at a time, and the data-directory lock keeps other processes out), so
 * none of them is being written. */
static void remove_leftovers(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 20 && strncmp(e->d_name, ".parley-", 8) == 0 &&
            strcmp(e->d_name + n - 12, ".tar.zst.tmp") == 0 && unlinkat(dirfd(d), e->d_name, 0) == 0)
            log_info("backup: removed %s/%s, left by a backup cut short", dir, e->d_name);
    }
    if (d != NULL)
        closedir(d);
}

/* PlexiChat's backup options (docs/api.md, "Differences from the seed
 * documents"), taken when they ask for what a backup is and refused (422
 * naming the field) when they ask for another: the state is always in it
 * (include_database), it is a zstd tar (compression), and it is encrypted
 * exactly when the data directory is (encryption; the bytes are copied as
 * they are). True to go on, false once answered. */
static bool seed_options_valid(http_ctx_t *ctx)
{
    const parley_app_t *app = ctx->app;
    bool database = true, encrypted = app->config->encryption_key_file[0] != '\0';
    bool encryption = encrypted;
    const char *compression = NULL;
    if (http_field_bool(ctx, "include_database", false, &database) != 0 ||
        http_field_string(ctx, "compression", false, 1, 16, false, &compression) != 0 ||
        http_field_bool(ctx, "encryption", false, &encryption) != 0)
        return false;
    if (!database)
        http_reply_invalid(ctx, "include_database", "a backup always holds the whole state");
    else if (compression != NULL && strcmp(compression, "zstd") != 0)
        http_reply_invalid(ctx, "compression", "backups are zstd-compressed tar archives: "
                                               "compression must be \"zstd\"");
    else if (encryption != encrypted)
        http_reply_invalid(ctx, "encryption",
                           encrypted ? "the data directory is encrypted, so is every backup"
                                     : "the data directory is not encrypted, nor are its "
                                       "backups: see docs/operations.md, \"Encryption at rest\"");
    else
        return true;
    return false;
}

static void post_backup(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    bool include_files = true;
    if (ctx->body && (http_field_bool(ctx, "include_files", false, &include_files) != 0 ||
                      !seed_options_valid(ctx)))
        return;
    char dir[4200], name[128], err[512];
    backups_dir(app, dir, sizeof(dir));
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        log_error("backup: %s: %s", dir, strerror(errno));
        http_reply_error(ctx, HTTP_ERR_INTERNAL, NULL, "the backups directory cannot be made");
        return;
    }
    backup_t *bk;
    int rc = backup_begin(app->store, app->blobs, app->config->data_dir, include_files, &bk);
    if (rc != 0) {
        reply_begin_error(ctx, rc);
        return;
    }
    remove_leftovers(dir);
    backup_file_name(bk, name, sizeof(name));
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    backup_summary_t sum;
    rc = backup_to_path(bk, path, &sum, err, sizeof(err));
    backup_end(bk);
    if (rc != 0) {
        log_error("backup: %s", err);
        http_reply_error(ctx, rc == -ENOSPC ? HTTP_ERR_UNAVAILABLE : HTTP_ERR_INTERNAL, NULL,
                         "the backup could not be written%s",
                         rc == -ENOSPC ? ": the disk is full" : "");
        return;
    }
    struct stat sb;
    uint64_t size = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : sum.bytes;
    rc = store_wait(app->store,
                    audit_write(ctx, 0, "backup.create", name,
                                json_pack("{s:I, s:b, s:b, s:I}", "lsn", (json_int_t)sum.lsn,
                                          "include_files", include_files, "stored", 1, "size",
                                          (json_int_t)size)));
    if (rc != 0) {
        reply_store_error(ctx, rc);
        return;
    }
    http_reply_json(ctx, 201,
                    json_pack("{s:s, s:I, s:I, s:o, s:b, s:I, s:I}", "name", name, "size",
                              (json_int_t)size, "lsn", (json_int_t)sum.lsn, "created_at",
                              time_json(sum.created_ms), "include_files", include_files,
                              "members", (json_int_t)sum.members, "blobs",
                              (json_int_t)sum.blobs));
}

/* ---- the stored archives ---- */

/* The LSN in a name the server made (parley-<time>-<lsn>.tar.zst). */
static uint64_t name_lsn(const char *name)
{
    const char *end = name + strlen(name) - 8;
    const char *p = end;
    while (p > name && p[-1] >= '0' && p[-1] <= '9')
        p--;
    return p < end ? strtoull(p, NULL, 10) : 0;
}

static json_t *backup_entry(const char *name, const struct stat *sb)
{
    return json_pack("{s:s, s:I, s:I, s:o}", "name", name, "size", (json_int_t)sb->st_size,
                     "lsn", (json_int_t)name_lsn(name), "created_at",
                     time_json((int64_t)sb->st_mtim.tv_sec * 1000 +
                               sb->st_mtim.tv_nsec / 1000000));
}

static int by_name_desc(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "name"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "name"));
    return strcmp(y, x);
}

static void list_backups(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    char dir[4200];
    backups_dir(app, dir, sizeof(dir));
    json_t *items[LIST_MAX];
    size_t n = 0;
    bool truncated = false;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (!backup_name_valid(e->d_name))
            continue;
        struct stat sb;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (n == LIST_MAX) {
            truncated = true;
            continue;
        }
        items[n++] = backup_entry(e->d_name, &sb);
    }
    if (d != NULL)
        closedir(d);
    qsort(items, n, sizeof(items[0]), by_name_desc);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, items[i]);
    http_reply_json(ctx, 200, json_pack("{s:o, s:b}", "backups", arr, "truncated", truncated));
}

/* Opens a stored archive by its {name}; false after answering 404. */
static bool open_stored(http_ctx_t *ctx, int *fd, struct stat *sb, char *path, size_t size)
{
    parley_app_t *app = ctx->app;
    const char *name = ctx->params[0];
    *fd = -1;
    if (backup_name_valid(name)) {
        char dir[4200];
        backups_dir(app, dir, sizeof(dir));
        snprintf(path, size, "%s/%s", dir, name);
        *fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (*fd >= 0 && (fstat(*fd, sb) != 0 || !S_ISREG(sb->st_mode))) {
            close(*fd);
            *fd = -1;
        }
    }
    if (*fd < 0) {
        http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "no such backup");
        return false;
    }
    return true;
}

typedef struct file_stream {
    int fd;
    uint64_t pos, end;
} file_stream_t;

static ssize_t file_read(void *cls, uint64_t off, char *buf, size_t max)
{
    (void)off;
    file_stream_t *fs = cls;
    if (fs->pos >= fs->end)
        return U_STREAM_END;
    size_t want = max < fs->end - fs->pos ? max : (size_t)(fs->end - fs->pos);
    ssize_t n = pread(fs->fd, buf, want, (off_t)fs->pos);
    if (n <= 0)
        return U_STREAM_ERROR;
    fs->pos += (uint64_t)n;
    return n;
}

static void file_free(void *cls)
{
    file_stream_t *fs = cls;
    close(fs->fd);
    free(fs);
}

static void get_stored(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    int fd;
    struct stat sb;
    char path[4400];
    if (!open_stored(ctx, &fd, &sb, path, sizeof(path)))
        return;
    const char *name = ctx->params[0];
    int rc = store_wait(app->store, audit_write(ctx, 0, "backup.download", name,
                                                json_pack("{s:I}", "size",
                                                          (json_int_t)sb.st_size)));
    if (rc != 0) {
        close(fd);
        reply_store_error(ctx, rc);
        return;
    }
    file_stream_t *fs = xmalloc(sizeof(*fs));
    *fs = (file_stream_t){.fd = fd, .pos = 0, .end = (uint64_t)sb.st_size};
    char v[256];
    snprintf(v, sizeof(v), "attachment; filename=\"%s\"", name);
    http_set_header(ctx, "Content-Type", "application/zstd");
    http_set_header(ctx, "Content-Disposition", v);
    if (ulfius_set_stream_response(ctx->resp, 200, file_read, file_free, fs->end, STREAM_BLOCK,
                                   fs) != U_OK) {
        file_free(fs);
        http_reply_error(ctx, HTTP_ERR_INTERNAL, NULL, "could not send the backup");
        return;
    }
    ctx->status = 200;
}

static void delete_stored(http_ctx_t *ctx)
{
    parley_app_t *app = ctx->app;
    int fd;
    struct stat sb;
    char path[4400];
    if (!open_stored(ctx, &fd, &sb, path, sizeof(path)))
        return;
    close(fd);
    if (unlink(path) != 0) {
        if (errno == ENOENT)
            http_reply_error(ctx, HTTP_ERR_NOT_FOUND, NULL, "no such backup");
        else
            http_reply_error(ctx, HTTP_ERR_INTERNAL, NULL, "could not delete the backup");
        return;
    }
    char dir[4200];
    backups_dir(app, dir, sizeof(dir));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    int rc = store_wait(app->store, audit_write(ctx, 0, "backup.delete", ctx->params[0],
                                                json_pack("{s:I}", "size",
                                                          (json_int_t)sb.st_size)));
    if (rc != 0) {
        reply_store_error(ctx, rc);
        return;
    }
    http_reply_empty(ctx, 204);
}

const http_route_t admin_backup_routes[] = {
    {"GET", "/api/v1/admin/backup", get_backup, HTTP_ADMIN_READ | HTTP_ROUTE_STREAM,
     "include_files", ""},
    {"POST", "/api/v1/admin/backup", post_backup, HTTP_ADMIN_WRITE, "",
     "include_files,include_database,compression,encryption"},
    {"GET", "/api/v1/admin/backups", list_backups, HTTP_ADMIN_READ, "", ""},
    {"GET", "/api/v1/admin/backups/:name", get_stored, HTTP_ADMIN_READ | HTTP_ROUTE_STREAM, "",
     ""},
    {"DELETE", "/api/v1/admin/backups/:name", delete_stored, HTTP_ADMIN_WRITE, "", ""},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
