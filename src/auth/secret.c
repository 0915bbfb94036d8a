/*
 * The server's secret, the keys derived from it, random hex, and API keys.
 *
 * DESIGN: one secret, two keys. PARLEY_JWT_SECRET (>= 32 bytes) or the 32
 * random bytes of <data>/secret.key go through HKDF-SHA256 (RFC 5869: extract
 * with a fixed application salt, expand with distinct info strings) into a
 * JWT signing key and a refresh-token MAC key. The two keys are independent,
 * so a token of one kind can never pass as the other. Both sources get the
 * same derivation (of the variable's bytes as given, of the file's 32 decoded
 * bytes); moving from one source to the other changes the keys and so ends
 * every login, which is the expected price of changing the secret.
 *
 * secret.key holds 64 lowercase hex characters and a newline. It is created
 * on first start the way every durable file here is: write a temp file (mode
 * 0600 whatever the umask), fsync, rename over the final name, fsync the
 * directory, so a crash leaves either no file or a whole one. The data
 * directory's lock (datadir_lock) keeps two servers from racing here. A file
 * that is not a regular file, has the wrong size or content, or grants
 * anything to group/others is refused with a message naming it: a leaked or
 * truncated secret must stop the server, not be silently replaced (that would
 * log everyone out, and hide the cause).
 *
 * API keys are "plx_" + 32 random bytes in lowercase hex. They are stored as
 * plain SHA-256: a key has 256 bits of entropy, so nothing can be guessed
 * from the hash and a slow hash would only slow every API request down.
 */
#include "parley/hex.h"
#include "parley/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_LEN 32
#define SECRET_FILE "secret.key"
#define SECRET_TMP "secret.key.tmp"

static const char HKDF_SALT[] = "parley-hkdf-salt-v1";
static const char INFO_JWT[] = "parley access-token HS256 key v1";
static const char INFO_REFRESH[] = "parley refresh-token HMAC key v1";

int auth_random_hex(size_t nbytes, char *out)
{
    unsigned char buf[1024];
    if (!out || nbytes > sizeof(buf))
        return AUTH_EINVALID;
    if (gnutls_rnd(GNUTLS_RND_KEY, buf, nbytes) != 0)
        return AUTH_ECRYPTO;
    hex_encode(buf, nbytes, out);
    explicit_bzero(buf, nbytes);
    return AUTH_OK;
}

int auth_keys_derive(const void *secret, size_t len, auth_keys_t *out)
{
    if (!secret || !out || len < SECRET_LEN || len > UINT_MAX)
        return AUTH_EINVALID;
    unsigned char prk[32];
    auth_keys_t k;
    gnutls_datum_t ikm = {(unsigned char *)secret, (unsigned)len};
    gnutls_datum_t salt = {(unsigned char *)HKDF_SALT, sizeof(HKDF_SALT) - 1};
    gnutls_datum_t prk_d = {prk, sizeof(prk)};
    gnutls_datum_t info_jwt = {(unsigned char *)INFO_JWT, sizeof(INFO_JWT) - 1};
    gnutls_datum_t info_ref = {(unsigned char *)INFO_REFRESH, sizeof(INFO_REFRESH) - 1};
    int rc = AUTH_ECRYPTO;
    if (gnutls_hkdf_extract(GNUTLS_MAC_SHA256, &ikm, &salt, prk) != 0 ||
        gnutls_hkdf_expand(GNUTLS_MAC_SHA256, &prk_d, &info_jwt, k._jwt, sizeof(k._jwt)) != 0 ||
        gnutls_hkdf_expand(GNUTLS_MAC_SHA256, &prk_d, &info_ref, k._refresh,
                           sizeof(k._refresh)) != 0)
        goto out;
    k._loaded = true;
    *out = k;
    rc = AUTH_OK;
out:
    explicit_bzero(prk, sizeof(prk));
    explicit_bzero(&k, sizeof(k));
    return rc;
}

void auth_keys_wipe(auth_keys_t *k)
{
    if (k)
        explicit_bzero(k, sizeof(*k));
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Creates <dir>/secret.key holding `secret` in hex. Returns 0 or -errno with
 * `err` filled. */
static int create_secret_file(const char *dir, const char *path,
                              const unsigned char secret[SECRET_LEN], char *err, size_t err_size)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s/%s", dir, SECRET_TMP) >= (int)sizeof(tmp)) {
        snprintf(err, err_size, "data directory path is too long");
        return -ENAMETOOLONG;
    }
    char text[2 * SECRET_LEN + 2];
    hex_encode(secret, SECRET_LEN, text);
    text[2 * SECRET_LEN] = '\n';
    text[2 * SECRET_LEN + 1] = '\0';

    int rc = 0, fd = -1, dfd = -1;
    const char *what = "create";
    if (unlink(tmp) != 0 && errno != ENOENT)
        goto fail;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        goto fail;
    what = "write";
    if (fchmod(fd, 0600) != 0 || write_all(fd, text, 2 * SECRET_LEN + 1) != 0)
        goto fail;
    what = "fsync";
    if (fsync(fd) != 0)
        goto fail;
    what = "close";
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    what = "rename";
    if (rename(tmp, path) != 0)
        goto fail;
    what = "fsync the directory of";
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0)
        goto fail;
    close(dfd);
    explicit_bzero(text, sizeof(text));
    return 0;

fail:
    rc = -errno;
    snprintf(err, err_size, "cannot %s secret file '%s': %s", what, path, strerror(errno));
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    unlink(tmp);
    explicit_bzero(text, sizeof(text));
    return rc;
}

/* Reads and checks an existing secret file. Returns 0, -ENOENT (absent),
 * another -errno or AUTH_ESECRET with `err` filled. */
static int read_secret_file(const char *path, unsigned char secret[SECRET_LEN], char *err,
                            size_t err_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        if (e != ENOENT)
            snprintf(err, err_size, "cannot open secret file '%s': %s", path, strerror(e));
        return -e;
    }
    int rc = AUTH_ESECRET;
    char text[2 * SECRET_LEN + 2];
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        snprintf(err, err_size, "cannot stat secret file '%s': %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, err_size, "secret file '%s' is not a regular file", path);
        goto out;
    }
    if (st.st_mode & 077) {
        snprintf(err, err_size,
                 "secret file '%s' has mode %04o: it must not be readable or writable by "
                 "group or others (chmod 600 it, and replace the secret if it may have leaked)",
                 path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    /* 64 hex characters, optionally one newline; read one byte more than
     * that to see a longer file. */
    size_t got = 0;
    while (got < sizeof(text)) {
        ssize_t n = read(fd, text + got, sizeof(text) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            snprintf(err, err_size, "cannot read secret file '%s': %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    bool size_ok = got == 2 * SECRET_LEN || (got == 2 * SECRET_LEN + 1 && text[2 * SECRET_LEN] == '\n');
    if (!size_ok || hex_decode(text, SECRET_LEN, secret) != 0) {
        snprintf(err, err_size,
                 "secret file '%s' is corrupt: expected 64 hex characters and a newline "
                 "(restore it from a backup; deleting it makes a new secret and logs everyone out)",
                 path);
        goto out;
    }
    rc = 0;
out:
    explicit_bzero(text, sizeof(text));
    close(fd);
    return rc;
}

int auth_keys_load(const char *data_dir, const char *env_secret, auth_keys_t *out, char *err,
                   size_t err_size)
{
    if (!out || (!env_secret && !data_dir)) {
        snprintf(err, err_size, "no data directory and no PARLEY_JWT_SECRET");
        return AUTH_EINVALID;
    }
    if (env_secret) {
        size_t len = strlen(env_secret);
        if (len < SECRET_LEN) {
            snprintf(err, err_size,
                     "PARLEY_JWT_SECRET is %zu bytes long: it must be at least %d "
                     "(e.g. openssl rand -hex 32)",
                     len, SECRET_LEN);
            return AUTH_ESECRET;
        }
        int rc = auth_keys_derive(env_secret, len, out);
        if (rc != AUTH_OK)
            snprintf(err, err_size, "cannot derive keys from PARLEY_JWT_SECRET");
        return rc;
    }

    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", data_dir, SECRET_FILE) >= (int)sizeof(path)) {
        snprintf(err, err_size, "data directory path is too long");
        return -ENAMETOOLONG;
    }
    unsigned char secret[SECRET_LEN];
    int rc = read_secret_file(path, secret, err, err_size);
    if (rc == -ENOENT) {
        if (gnutls_rnd(GNUTLS_RND_KEY, secret, sizeof(secret)) != 0) {
            snprintf(err, err_size, "the random number generator failed");
            rc = AUTH_ECRYPTO;
            goto out;
        }
        rc = create_secret_file(data_dir, path, secret, err, err_size);
    }
    if (rc != 0)
        goto out;
    rc = auth_keys_derive(secret, sizeof(secret), out);
    if (rc != AUTH_OK)
        snprintf(err, err_size, "cannot derive keys from '%s'", path);
out:
    explicit_bzero(secret, sizeof(secret));
    return rc;
}

/* ---- API keys ------------------------------------------------------------ */

#define API_KEY_PREFIX "plx_"
#define API_KEY_PREFIX_LEN 4
#define API_KEY_BYTES 32
#define API_KEY_LEN (API_KEY_PREFIX_LEN + 2 * API_KEY_BYTES)

static int sha256_hex(const char *s, size_t len, char hash_out[AUTH_SHA256_HEX])
{
    unsigned char d[32];
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, s, len, d) != 0)
        return AUTH_ECRYPTO;
    hex_encode(d, sizeof(d), hash_out);
    return AUTH_OK;
}

int auth_api_key_new(char key_out[AUTH_API_KEY_MAX], char id_out[AUTH_API_KEY_ID_MAX],
                     char hash_out[AUTH_SHA256_HEX])
{
    char key[AUTH_API_KEY_MAX], id[AUTH_API_KEY_ID_MAX], hash[AUTH_SHA256_HEX];
    memcpy(key, API_KEY_PREFIX, API_KEY_PREFIX_LEN);
    int rc = auth_random_hex(API_KEY_BYTES, key + API_KEY_PREFIX_LEN);
    if (rc == AUTH_OK)
        rc = auth_random_hex((AUTH_API_KEY_ID_MAX - 1) / 2, id);
    if (rc == AUTH_OK)
        rc = sha256_hex(key, API_KEY_LEN, hash);
    if (rc == AUTH_OK) {
        memcpy(key_out, key, API_KEY_LEN + 1);
        memcpy(id_out, id, sizeof(id));
        memcpy(hash_out, hash, sizeof(hash));
    }
    explicit_bzero(key, sizeof(key));
    return rc;
}

int auth_api_key_hash(const char *key, char hash_out[AUTH_SHA256_HEX])
{
    if (!key || strnlen(key, API_KEY_LEN + 1) != API_KEY_LEN ||
        memcmp(key, API_KEY_PREFIX, API_KEY_PREFIX_LEN) != 0)
        return AUTH_EINVALID;
    for (size_t i = API_KEY_PREFIX_LEN; i < API_KEY_LEN; i++) {
        char c = key[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return AUTH_EINVALID;
    }
    return sha256_hex(key, API_KEY_LEN, hash_out);
}
