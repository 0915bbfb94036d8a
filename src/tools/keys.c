/*
 * Encryption at rest, the data directory's side: key files (`parley
 * keygen`, --encryption-key-file), and the file that says whether a data
 * directory is encrypted and with which key.
 *
 * A key file holds the 32-byte master key, either as 32 raw bytes or as the
 * 64 hex digits (and a newline) that keygen writes, so an operator can copy
 * it on paper. It must be a regular file that neither group nor others may
 * read: a key that every local account can read protects nothing.
 *
 * <data>/ENCRYPTION marks an encrypted directory: two text lines,
 * "parley-encryption 1" and "key-id <32 hex digits>" (wal_key_id: an HKDF
 * output, which names the key without revealing it). Start-up compares it
 * with the given key before anything else touches the directory, so the
 * wrong key, no key for an encrypted directory and a key for a plain one
 * each stop the start with one line, exit 2, and nothing written (not even
 * the lock file's pid). A directory with no log yet, started with a key,
 * becomes encrypted: the file is written (fsynced, renamed into place)
 * under the lock before the log is opened. <data>/ENCRYPTION.next is the
 * mark of a rekey or conversion under way (rekey.c); while it exists the
 * server refuses to start.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parley/blobs.h"
#include "parley/hex.h"
#include "parley/tools.h"
#include "wal.h"

#define MARK_HEAD "parley-encryption 1\nkey-id "

int crypt_key_load(const char *path, uint8_t key[CRYPT_KEY_BYTES], char *err, size_t err_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(err, err_size, "cannot open encryption key file '%s': %s", path,
                 strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_size, "encryption key file '%s' is not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_mode & 077) {
        snprintf(err, err_size,
                 "encryption key file '%s' may be read by group or others (mode %03o); "
                 "chmod 600 it",
                 path, (unsigned)(st.st_mode & 0777));
        close(fd);
        return -1;
    }
    char buf[80];
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    int rc = -1;
    if (n == CRYPT_KEY_BYTES) {
        memcpy(key, buf, CRYPT_KEY_BYTES);
        rc = 0;
    } else if ((n == 64 || (n == 65 && buf[64] == '\n')) &&
               hex_decode(buf, CRYPT_KEY_BYTES, key) == 0) {
        rc = 0;
    }
    gnutls_memset(buf, 0, sizeof(buf));
    if (rc != 0)
        snprintf(err, err_size,
                 "encryption key file '%s' must hold exactly 32 bytes, or the 64 hex digits "
                 "that `parley keygen` writes",
                 path);
    return rc;
}

int keygen_command(int argc, char **argv)
{
    const char *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else {
            fprintf(stderr, "usage: parley keygen [--out FILE]\n");
            return 2;
        }
    }
    uint8_t key[CRYPT_KEY_BYTES];
    if (gnutls_rnd(GNUTLS_RND_KEY, key, sizeof(key)) != 0) {
        fprintf(stderr, "parley: no random bytes for a key\n");
        return 1;
    }
    char text[2 * CRYPT_KEY_BYTES + 2];
    hex_encode(key, sizeof(key), text);
    gnutls_memset(key, 0, sizeof(key));
    text[2 * CRYPT_KEY_BYTES] = '\n';
    text[2 * CRYPT_KEY_BYTES + 1] = '\0';
    int rc = 0;
    if (out == NULL) {
        fputs(text, stdout);
    } else {
        int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
            fprintf(stderr, "parley: cannot create '%s': %s%s\n", out, strerror(errno),
                    errno == EEXIST ? " (keygen never overwrites a key)" : "");
            rc = errno == EEXIST ? 2 : 1;
        } else {
            size_t len = strlen(text);
            if (fchmod(fd, 0600) != 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
                fprintf(stderr, "parley: cannot write '%s': %s\n", out, strerror(errno));
                rc = 1;
            }
            close(fd);
            if (rc != 0)
                unlink(out);
        }
    }
    gnutls_memset(text, 0, sizeof(text));
    return rc;
}

static void key_id_hex(const uint8_t *key, char out[2 * WAL_KEY_ID_BYTES + 1])
{
    uint8_t id[WAL_KEY_ID_BYTES];
    wal_key_id(key, id);
    hex_encode(id, sizeof(id), out);
}

static void mark_path(char *out, size_t size, const char *dir, const char *suffix)
{
    snprintf(out, size, "%s/ENCRYPTION%s", dir, suffix);
}

int crypt_mark_read(const char *dir, const char *suffix, char id_hex[2 * WAL_KEY_ID_BYTES + 1])
{
    char path[4200];
    mark_path(path, sizeof(path), dir, suffix);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return errno == ENOENT ? 0 : -1;
    char buf[128];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    size_t head = strlen(MARK_HEAD);
    if (n != head + 2 * WAL_KEY_ID_BYTES + 1 || memcmp(buf, MARK_HEAD, head) != 0 ||
        buf[n - 1] != '\n')
        return -1;
    memcpy(id_hex, buf + head, 2 * WAL_KEY_ID_BYTES);
    id_hex[2 * WAL_KEY_ID_BYTES] = '\0';
    return 1;
}

int crypt_mark_write(const char *dir, const char *suffix, const uint8_t *key)
{
    char path[4200], tmp[4300];
    mark_path(path, sizeof(path), dir, suffix);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    char id[2 * WAL_KEY_ID_BYTES + 1];
    key_id_hex(key, id);
    char text[128];
    int len = snprintf(text, sizeof(text), "%s%s\n", MARK_HEAD, id);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = write(fd, text, (size_t)len) == len && fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc == 0)
        rc = crypt_sync_dir(dir);
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int crypt_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* True when <dir>/<sub> holds any entry but "." and ".." (and, in files/,
 * the tmp/ directory blobs_open makes). */
static bool has_entries(const char *dir, const char *sub)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    DIR *d = opendir(path);
    if (d == NULL)
        return false;
    bool any = false;
    struct dirent *e;
    while (!any && (e = readdir(d)) != NULL)
        any = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
              !(strcmp(sub, "files") == 0 && strcmp(e->d_name, "tmp") == 0);
    closedir(d);
    return any;
}

bool crypt_dir_has_data(const char *dir)
{
    return has_entries(dir, "wal") || has_entries(dir, "snapshots") || has_entries(dir, "files");
}

int crypt_dir_check(const char *dir, const uint8_t *key, const char *key_file, char *err,
                    size_t err_size)
{
    char have[2 * WAL_KEY_ID_BYTES + 1], next[2 * WAL_KEY_ID_BYTES + 1];
    int nx = crypt_mark_read(dir, ".next", next);
    if (nx != 0) {
        snprintf(err, err_size,
                 "data directory '%s' is half way through `parley rekey` or `parley encrypt` "
                 "(ENCRYPTION.next exists): run the same command again to finish it",
                 dir);
        return -1;
    }
    int m = crypt_mark_read(dir, "", have);
    if (m < 0) {
        snprintf(err, err_size, "data directory '%s': ENCRYPTION is unreadable or malformed",
                 dir);
        return -1;
    }
    if (m == 0) {
        if (key && crypt_dir_has_data(dir)) {
            snprintf(err, err_size,
                     "data directory '%s' is not encrypted, but --encryption-key-file was given: "
                     "convert it with `parley encrypt --data-dir %s --key %s`, or start without "
                     "the key",
                     dir, dir, key_file ? key_file : "FILE");
            return -1;
        }
        return 0;
    }
    if (key == NULL) {
        snprintf(err, err_size,
                 "data directory '%s' is encrypted (key id %s): give its key with "
                 "--encryption-key-file",
                 dir, have);
        return -1;
    }
    char id[2 * WAL_KEY_ID_BYTES + 1];
    key_id_hex(key, id);
    if (strcmp(id, have) != 0) {
        snprintf(err, err_size,
                 "wrong encryption key: '%s' has key id %s, data directory '%s' was encrypted "
                 "with key id %s",
                 key_file ? key_file : "the key", id, dir, have);
        return -1;
    }
    return 0;
}

int crypt_dir_init(const char *dir, const uint8_t *key, char *err, size_t err_size)
{
    char have[2 * WAL_KEY_ID_BYTES + 1];
    if (key == NULL || crypt_mark_read(dir, "", have) == 1)
        return 0;
    int rc = crypt_mark_write(dir, "", key);
    if (rc != 0) {
        snprintf(err, err_size, "cannot write %s/ENCRYPTION: %s", dir, strerror(-rc));
        return -1;
    }
    return 0;
}

int crypt_key_option(int *argc, char **argv, uint8_t key[CRYPT_KEY_BYTES], bool *have,
                     const char *flag)
{
    *have = false;
    int out = 0;
    int rc = 0;
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], flag) == 0) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "parley: %s needs a file\n", flag);
                return 2;
            }
            char err[512];
            if (crypt_key_load(argv[++i], key, err, sizeof(err)) != 0) {
                fprintf(stderr, "parley: %s\n", err);
                rc = 2;
            }
            *have = true;
            continue;
        }
        argv[out++] = argv[i];
    }
    *argc = out;
    return rc;
}

void crypt_blobs_key(blobs_t *b, const uint8_t *key)
{
    uint8_t id[WAL_KEY_ID_BYTES];
    if (key)
        wal_key_id(key, id);
    blobs_set_key(b, key, key ? id : NULL);
}
