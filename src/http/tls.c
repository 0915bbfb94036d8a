/*
 * TLS on the API's own port (--tls-cert, --tls-key): libmicrohttpd's GnuTLS
 * support in the same thread-pool mode as plain HTTP, so HTTPS and WSS share
 * the port, the gate and the workers.
 *
 * The certificate chain and key are not handed to libmicrohttpd as memory
 * (MHD_OPTION_HTTPS_MEM_CERT/_KEY fix them for the daemon's life): they are
 * given by a certificate callback (MHD_OPTION_HTTPS_CERT_CALLBACK, GnuTLS's
 * gnutls_certificate_retrieve_function2), which hands each new handshake
 * the pair that is current at that moment. SIGHUP (server.c) calls
 * http_tls_reload: a new pair that passes every start-up check becomes
 * current, and handshakes from then on get it; connections already made
 * keep their session and are not touched. A pair once current is kept until
 * the server stops (a session may still refer to it; a few KiB a reload),
 * so no handshake ever sees a freed key. A new pair that fails a check is
 * refused with one line in the log and the old one stays.
 *
 * Checks (start-up and reload alike): both files given, readable, at most
 * 1 MiB; the key file not readable or writable by group or others; the cert
 * file a PEM chain of 1-16 certificates whose first is the server's, valid
 * now (not expired, not before its start); the key a PEM private key
 * matching the first certificate's public key. Each failure is one sentence
 * naming the file and the problem.
 *
 * Priorities: TLS 1.3 and 1.2 only, AEAD ciphers only (AES-GCM,
 * ChaCha20-Poly1305), forward-secret key exchange only (ECDHE, DHE; no RSA
 * key exchange, no CBC, no SHA-1 signatures). libmicrohttpd 0.9.75 offers
 * ALPN "http/1.1" itself (MHD_OPTION_TLS_NO_ALPN turns it off; it is left on).
 *
 * Strict-Transport-Security: when TLS is on and the max age is above 0,
 * every answer of the router carries it (http_tls_hsts_annotate); the max age
 * is a live value (http_tls_set_hsts_max_age, from the configuration).
 */
#include "parley/http_server.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "parley/log.h"
#include "parley/xalloc.h"

#define TLS_FILE_MAX (1u << 20)
#define TLS_CHAIN_MAX 16

const char *const http_tls_priorities =
    "NONE:+VERS-TLS1.3:+VERS-TLS1.2:"
    "+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:+AEAD:"
    "+ECDHE-ECDSA:+ECDHE-RSA:+DHE-RSA:"
    "+SIGN-ALL:-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1:-SIGN-DSA-SHA1:-SIGN-RSA-SHA224:"
    "-SIGN-ECDSA-SHA224:-SIGN-DSA-SHA224:"
    "+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-SECP521R1:+GROUP-FFDHE2048:"
    "+GROUP-FFDHE3072:+GROUP-FFDHE4096:+COMP-NULL:+CTYPE-X509:%SAFE_RENEGOTIATION:"
    "%SERVER_PRECEDENCE";

/* One certificate chain and its key, as GnuTLS hands them to a handshake. */
typedef struct tls_pair {
    gnutls_pcert_st chain[TLS_CHAIN_MAX];
    unsigned n_chain;
    gnutls_privkey_t key;
    char serial[HTTP_TLS_SERIAL_LEN]; /* of the first certificate, hex */
    time_t not_after;
    struct tls_pair *older; /* pairs once current, kept until close */
} tls_pair_t;

struct http_tls {
    char cert_path[4096];
    char key_path[4096];
    pthread_mutex_t mu;
    tls_pair_t *current; /* guarded by mu; never NULL once open */
};

/* The daemon's callback has no closure: the one TLS context of the process. */
static http_tls_t *the_tls;
static atomic_uint hsts_max_age;
static atomic_bool tls_on;

static void pair_free(tls_pair_t *p)
{
    while (p != NULL) {
        tls_pair_t *older = p->older;
        for (unsigned i = 0; i < p->n_chain; i++)
            gnutls_pcert_deinit(&p->chain[i]);
        if (p->key != NULL)
            gnutls_privkey_deinit(p->key);
        free(p);
        p = older;
    }
}

/* Reads a whole file of at most TLS_FILE_MAX bytes into *out (gnutls_free
 * it). `what` names the flag in messages. Checks the key file's mode. */
static int read_file(const char *what, const char *path, bool secret, gnutls_datum_t *out,
                     char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read %s '%s': %s", what, path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s '%s' is not a regular file", what, path);
        close(fd);
        return -1;
    }
    if (secret && (st.st_mode & 077) != 0) {
        snprintf(err, errlen,
                 "%s '%s' is readable or writable by group or others (mode %04o): the private "
                 "key must be readable by the server only (chmod 600)",
                 what, path, (unsigned)(st.st_mode & 07777));
        close(fd);
        return -1;
    }
    if (st.st_size <= 0 || st.st_size > TLS_FILE_MAX) {
        snprintf(err, errlen, "%s '%s' is empty or larger than 1 MiB", what, path);
        close(fd);
        return -1;
    }
    out->data = gnutls_malloc((size_t)st.st_size + 1);
    if (out->data == NULL) {
        snprintf(err, errlen, "cannot read %s '%s': out of memory", what, path);
        close(fd);
        return -1;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, out->data + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(err, errlen, "cannot read %s '%s': %s", what, path,
                     r < 0 ? strerror(errno) : "it became shorter while read");
            gnutls_free(out->data);
            out->data = NULL;
            close(fd);
            return -1;
        }
        got += (size_t)r;
    }
    close(fd);
    out->data[got] = '\0';
    out->size = (unsigned)got;
    return 0;
}

static void format_time(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

#define TLS_EXPIRY_WARN_DAYS 14

/* A warning when the pair in use runs out within two weeks. */
static void warn_if_expiring(const tls_pair_t *p)
{
    time_t now = time(NULL);
    if (p->not_after == (time_t)-1 || p->not_after - now > TLS_EXPIRY_WARN_DAYS * 86400)
        return;
    char when[32];
    format_time(p->not_after, when);
    log_warning("TLS: certificate serial %s expires at %s (in %lld hours): renew it and send "
                "SIGHUP", p->serial, when, (long long)((p->not_after - now) / 3600));
}

/* The chain of `cert` checked (count, validity now) and imported into p. */
static int load_chain(tls_pair_t *p, const char *path, const gnutls_datum_t *pem, char *err,
                      size_t errlen)
{
    gnutls_x509_crt_t crts[TLS_CHAIN_MAX];
    unsigned n = TLS_CHAIN_MAX;
    int r = gnutls_x509_crt_list_import(crts, &n, pem, GNUTLS_X509_FMT_PEM,
                                        GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
    if (r == GNUTLS_E_SHORT_MEMORY_BUFFER) {
        snprintf(err, errlen, "--tls-cert '%s' holds more than %d certificates", path,
                 TLS_CHAIN_MAX);
        return -1;
    }
    if (r < 0 || n == 0) {
        snprintf(err, errlen, "--tls-cert '%s' is not a PEM certificate chain (%s)", path,
                 r < 0 ? gnutls_strerror(r) : "no certificate in it");
        return -1;
    }
    int rc = 0;
    time_t now = time(NULL);
    time_t not_before = gnutls_x509_crt_get_activation_time(crts[0]);
    time_t not_after = gnutls_x509_crt_get_expiration_time(crts[0]);
    char when[32];
    if (not_after != (time_t)-1 && not_after < now) {
        format_time(not_after, when);
        snprintf(err, errlen, "--tls-cert '%s' has expired (not valid after %s)", path, when);
        rc = -1;
    } else if (not_before != (time_t)-1 && not_before > now) {
        format_time(not_before, when);
        snprintf(err, errlen, "--tls-cert '%s' is not valid yet (not before %s)", path, when);
        rc = -1;
    }
    unsigned char serial[64];
    size_t serial_len = sizeof(serial);
    if (rc == 0 && gnutls_x509_crt_get_serial(crts[0], serial, &serial_len) == 0) {
        size_t shown = serial_len > 20 ? 20 : serial_len;
        for (size_t i = 0; i < shown; i++)
            snprintf(p->serial + 2 * i, 3, "%02x", serial[i]);
    }
    p->not_after = not_after;
    if (rc == 0) {
        unsigned imported = n;
        r = gnutls_pcert_import_x509_list(p->chain, crts, &imported, 0);
        if (r < 0) {
            snprintf(err, errlen, "--tls-cert '%s': %s", path, gnutls_strerror(r));
            rc = -1;
        } else {
            p->n_chain = imported;
        }
    }
    for (unsigned i = 0; i < n; i++)
        gnutls_x509_crt_deinit(crts[i]);
    return rc;
}

/* Whether the key's public half is the first certificate's. */
static bool key_matches(const tls_pair_t *p)
{
    gnutls_pubkey_t pub;
    if (gnutls_pubkey_init(&pub) < 0)
        return false;
    unsigned char a[64], b[64];
    size_t alen = sizeof(a), blen = sizeof(b);
    bool same = gnutls_pubkey_import_privkey(pub, p->key, 0, 0) == 0 &&
                gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, a, &alen) == 0 &&
                gnutls_pubkey_get_key_id(p->chain[0].pubkey, GNUTLS_KEYID_USE_SHA256, b,
                                         &blen) == 0 &&
                alen == blen && memcmp(a, b, alen) == 0;
    gnutls_pubkey_deinit(pub);
    return same;
}

/* A checked pair from the two files, or NULL with the reason in err. */
static tls_pair_t *pair_load(const char *cert_path, const char *key_path, char *err,
                             size_t errlen)
{
    gnutls_datum_t cert = {NULL, 0}, key = {NULL, 0};
    tls_pair_t *p = xcalloc(1, sizeof(*p));
    bool ok = read_file("--tls-cert", cert_path, false, &cert, err, errlen) == 0 &&
              read_file("--tls-key", key_path, true, &key, err, errlen) == 0 &&
              load_chain(p, cert_path, &cert, err, errlen) == 0;
    if (ok) {
        int r = gnutls_privkey_init(&p->key);
        if (r == 0)
            r = gnutls_privkey_import_x509_raw(p->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
        if (r < 0) {
            snprintf(err, errlen, "--tls-key '%s' is not a PEM private key without a password "
                     "(%s)", key_path, gnutls_strerror(r));
            ok = false;
        } else if (!key_matches(p)) {
            snprintf(err, errlen, "--tls-key '%s' does not match the certificate of --tls-cert "
                     "'%s'", key_path, cert_path);
            ok = false;
        }
    }
    if (key.data != NULL) {
        gnutls_memset(key.data, 0, key.size);
        gnutls_free(key.data);
    }
    gnutls_free(cert.data);
    if (!ok) {
        pair_free(p);
        return NULL;
    }
    return p;
}

/* gnutls_certificate_retrieve_function2: the current pair for a handshake. */
static int retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                    gnutls_pcert_st **pcert, unsigned int *pcert_length,
                    gnutls_privkey_t *privkey)
{
    (void)session, (void)req_ca_rdn, (void)nreqs, (void)pk_algos, (void)pk_algos_length;
    http_tls_t *t = the_tls;
    if (t == NULL)
        return -1;
    pthread_mutex_lock(&t->mu);
    tls_pair_t *p = t->current;
    pthread_mutex_unlock(&t->mu);
    *pcert = p->chain;
    *pcert_length = p->n_chain;
    *privkey = p->key;
    return 0;
}

int http_tls_check_config(const char *cert_path, const char *key_path, char *err,
                          size_t errlen)
{
    bool have_cert = cert_path != NULL && cert_path[0] != '\0';
    bool have_key = key_path != NULL && key_path[0] != '\0';
    if (have_cert != have_key) {
        snprintf(err, errlen, "%s is given without %s: TLS needs both the certificate and its "
                 "key", have_cert ? "--tls-cert" : "--tls-key",
                 have_cert ? "--tls-key" : "--tls-cert");
        return -1;
    }
    return 0;
}

http_tls_t *http_tls_open(const char *cert_path, const char *key_path, char *err,
                          size_t errlen)
{
    if (http_tls_check_config(cert_path, key_path, err, errlen) != 0)
        return NULL;
    if (strlen(cert_path) >= sizeof(((http_tls_t *)0)->cert_path) ||
        strlen(key_path) >= sizeof(((http_tls_t *)0)->key_path)) {
        snprintf(err, errlen, "--tls-cert or --tls-key: the path is too long");
        return NULL;
    }
    tls_pair_t *p = pair_load(cert_path, key_path, err, errlen);
    if (p == NULL)
        return NULL;
    http_tls_t *t = xcalloc(1, sizeof(*t));
    strcpy(t->cert_path, cert_path);
    strcpy(t->key_path, key_path);
    pthread_mutex_init(&t->mu, NULL);
    t->current = p;
    the_tls = t;
    atomic_store(&tls_on, true);
    log_info("TLS: certificate serial %s from %s", p->serial, cert_path);
    warn_if_expiring(p);
    return t;
}

unsigned http_tls_mhd_options(http_tls_t *tls, struct MHD_OptionItem *items, size_t max)
{
    if (tls == NULL)
        return 0;
    size_t n = 0;
    while (n < max && items[n].option != MHD_OPTION_END)
        n++;
    if (n + 3 > max) {
        log_error("TLS: no room for the daemon's TLS options");
        abort(); /* a programming error: server.c's array is too small */
    }
    items[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)retrieve};
    items[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                         (void *)http_tls_priorities};
    items[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    return MHD_USE_TLS;
}

int http_tls_reload(http_tls_t *tls, char serial[HTTP_TLS_SERIAL_LEN], char *err,
                    size_t errlen)
{
    serial[0] = '\0';
    err[0] = '\0';
    if (tls == NULL) {
        log_info("SIGHUP: no TLS certificate to reload (the server speaks plain HTTP)");
        return 1;
    }
    tls_pair_t *p = pair_load(tls->cert_path, tls->key_path, err, errlen);
    if (p == NULL) {
        pthread_mutex_lock(&tls->mu);
        memcpy(serial, tls->current->serial, HTTP_TLS_SERIAL_LEN);
        pthread_mutex_unlock(&tls->mu);
        log_error("TLS reload refused, the old certificate stays in use: %s", err);
        return -1;
    }
    memcpy(serial, p->serial, HTTP_TLS_SERIAL_LEN);
    pthread_mutex_lock(&tls->mu);
    p->older = tls->current;
    tls->current = p;
    pthread_mutex_unlock(&tls->mu);
    log_info("TLS reload: new handshakes get certificate serial %s (was %s)", p->serial,
             p->older->serial);
    warn_if_expiring(p);
    return 0;
}

void http_tls_close(http_tls_t *tls)
{
    if (tls == NULL)
        return;
    atomic_store(&tls_on, false);
    if (the_tls == tls)
        the_tls = NULL;
    pair_free(tls->current);
    pthread_mutex_destroy(&tls->mu);
    free(tls);
}

bool http_tls_enabled(void)
{
    return atomic_load(&tls_on);
}

void http_tls_set_hsts_max_age(unsigned seconds)
{
    atomic_store(&hsts_max_age, seconds);
}

void http_tls_hsts_each(void (*fn)(void *ctx, const char *name, const char *value), void *ctx)
{
    unsigned age = atomic_load(&hsts_max_age);
    if (!atomic_load(&tls_on) || age == 0)
        return;
    char value[48];
    snprintf(value, sizeof(value), "max-age=%u", age);
    fn(ctx, "Strict-Transport-Security", value);
}
