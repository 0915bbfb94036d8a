/*
 * The client's address behind reverse proxies: the trusted proxies, and the
 * walk of X-Forwarded-For and Forwarded (RFC 7239) that believes those
 * headers only as far as trusted proxies wrote them.
 *
 * A proxy appends the address it got the request from, so the right-most
 * entries are the ones written by the proxies nearest to the server, and
 * anything to the left may have come from the client. Walking from the
 * right, every hop that is a trusted proxy vouches for the one before it;
 * the first hop that is not a trusted proxy is the client. A hop that is not
 * an address ("unknown", an obfuscated "_id", garbage, a header cut short)
 * breaks that chain, and then nothing in the headers is believed: the
 * client is the connecting peer, as it is when the peer is no trusted proxy
 * at all. The headers are scanned once, left to right, keeping only the
 * last FORWARDED_HOPS_MAX + 1 hops in a ring on the stack, so a huge header
 * (libmicrohttpd caps headers at its connection buffer) costs its length
 * and no allocation.
 *
 * The trusted proxies are an ipnet_set_t (its own read-mostly lock), set
 * from --trusted-proxies at start and replaceable at run time
 * (http_trusted_proxies_set), at once for every later request.
 */
#include "forwarded.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parley/http.h"

#define RING (FORWARDED_HOPS_MAX + 1)

static ipnet_set_t *trusted_set;
static pthread_once_t trusted_once = PTHREAD_ONCE_INIT;

static void trusted_init(void)
{
    trusted_set = ipnet_set_new();
}

ipnet_set_t *forwarded_trusted(void)
{
    pthread_once(&trusted_once, trusted_init);
    return trusted_set;
}

int http_trusted_proxies_check(const char *const *cidrs, size_t n, size_t *bad)
{
    for (size_t i = 0; i < n; i++) {
        ipnet_t net;
        int rc = cidrs[i] ? ipnet_parse(cidrs[i], true, &net) : IPNET_E_SYNTAX;
        if (rc != 0) {
            if (bad)
                *bad = i;
            return rc;
        }
    }
    return 0;
}

int http_trusted_proxies_set(const char *const *cidrs, size_t n)
{
    int rc = http_trusted_proxies_check(cidrs, n, NULL);
    if (rc != 0)
        return rc;
    ipnet_t *nets = n ? calloc(n, sizeof(*nets)) : NULL;
    if (n && nets == NULL)
        return -12; /* -ENOMEM: a list the caller chose; nothing changed */
    for (size_t i = 0; i < n; i++)
        ipnet_parse(cidrs[i], true, &nets[i]);
    ipnet_set_replace(forwarded_trusted(), nets, n);
    free(nets);
    return 0;
}

/* ---- the walk ---------------------------------------------------------------- */

typedef struct hop {
    char text[IPNET_TEXT_MAX]; /* as written, unquoted */
    bool ok;                   /* fits, and was found at all */
} hop_t;

typedef struct hops {
    hop_t ring[RING];
    size_t total;
    bool malformed;
} hops_t;

static void hop_add(hops_t *h, const char *s, size_t len, bool ok)
{
    hop_t *e = &h->ring[h->total++ % RING];
    e->ok = ok && len > 0 && len < sizeof(e->text);
    if (e->ok) {
        memcpy(e->text, s, len);
        e->text[len] = '\0';
    }
}

static bool ows(char c)
{
    return c == ' ' || c == '\t';
}

/* X-Forwarded-For: a comma-separated list; empty elements are skipped. */
static void split_xff(hops_t *h, const char *v)
{
    while (*v) {
        size_t n = strcspn(v, ",");
        const char *a = v, *b = v + n;
        while (a < b && ows(*a))
            a++;
        while (b > a && ows(b[-1]))
            b--;
        if (b - a >= 2 && *a == '"' && b[-1] == '"') {
            a++;
            b--;
        }
        if (b > a)
            hop_add(h, a, (size_t)(b - a), true);
        v += n;
        if (*v == ',')
            v++;
    }
}

static bool tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/*
 * Forwarded: elements separated by ',', pairs by ';', each pair
 * token=value with value a token or a quoted string. Each element is a hop
 * named by its for= (a hop without one, or with two, is not an address).
 * A syntax error marks the whole header malformed.
 */
static void split_forwarded(hops_t *h, const char *p)
{
    for (;;) {
        char value[IPNET_TEXT_MAX] = "";
        size_t vlen = 0;
        bool has_for = false, hop_ok = true, any = false;
        for (;;) {
            while (ows(*p))
                p++;
            if (*p == ',' || *p == '\0')
                break;
            if (*p == ';') {
                p++;
                continue;
            }
            const char *name = p;
            while (tchar(*p))
                p++;
            size_t name_len = (size_t)(p - name);
            if (name_len == 0 || *p != '=') {
                h->malformed = true;
                return;
            }
            p++;
            bool is_for = name_len == 3 && strncasecmp(name, "for", 3) == 0;
            char buf[IPNET_TEXT_MAX];
            size_t len = 0;
            bool fits = true;
            if (*p == '"') {
                p++;
                while (*p != '"') {
                    if (*p == '\\' && p[1] != '\0')
                        p++;
                    if (*p == '\0') {
                        h->malformed = true; /* unterminated */
                        return;
                    }
                    if (len + 1 < sizeof(buf))
                        buf[len++] = *p;
                    else
                        fits = false;
                    p++;
                }
                p++;
            } else {
                const char *v = p;
                while (*p && *p != ';' && *p != ',' && !ows(*p))
                    p++;
                len = (size_t)(p - v);
                if (len < sizeof(buf))
                    memcpy(buf, v, len);
                else
                    fits = false;
            }
            any = true;
            if (is_for) {
                if (has_for || !fits)
                    hop_ok = false;
                has_for = true;
                if (fits) {
                    memcpy(value, buf, len);
                    vlen = len;
                }
            }
            while (ows(*p))
                p++;
            if (*p == ';') {
                p++;
            } else if (*p != ',' && *p != '\0') {
                h->malformed = true;
                return;
            }
        }
        if (any)
            hop_add(h, value, vlen, has_for && hop_ok);
        if (*p != ',')
            return;
        p++;
    }
}

/* A port: 1-5 digits, at most 65535, and nothing after. */
static bool port_ok(const char *s)
{
    size_t n = strspn(s, "0123456789");
    return n > 0 && n <= 5 && s[n] == '\0' && atoi(s) <= 65535;
}

/* A hop's node: "1.2.3.4", "1.2.3.4:80", "2001:db8::1", "[2001:db8::1]",
 * "[2001:db8::1]:443". */
static bool parse_node(const char *t, ipnet_t *out)
{
    const char *addr = t;
    size_t len;
    if (t[0] == '[') {
        const char *close = strchr(t, ']');
        if (close == NULL)
            return false;
        addr = t + 1;
        len = (size_t)(close - addr);
        if (close[1] != '\0' && !(close[1] == ':' && port_ok(close + 2)))
            return false;
    } else {
        const char *colon = strchr(t, ':');
        if (colon && strchr(colon + 1, ':') == NULL) {
            if (!port_ok(colon + 1))
                return false;
            len = (size_t)(colon - t);
        } else {
            len = strlen(t);
        }
    }
    return ipnet_parse_addr(addr, len, out) == 0;
}

bool forwarded_client(const ipnet_t *peer, const char *const *fwd, size_t n_fwd,
                      const char *const *xff, size_t n_xff, ipnet_set_t *trusted, ipnet_t *out)
{
    *out = *peer;
    if (ipnet_set_count(trusted) == 0 || !ipnet_set_match(trusted, peer, 0, NULL, NULL))
        return false;
    hops_t h;
    h.total = 0;
    h.malformed = false;
    if (n_fwd > 0) {
        for (size_t i = 0; i < n_fwd && !h.malformed; i++)
            split_forwarded(&h, fwd[i]);
    } else {
        for (size_t i = 0; i < n_xff; i++)
            split_xff(&h, xff[i]);
    }
    if (h.malformed || h.total == 0)
        return false;
    ipnet_t last = *peer;
    for (size_t k = 0; k < h.total; k++) {
        if (k >= FORWARDED_HOPS_MAX)
            return false;
        const hop_t *e = &h.ring[(h.total - 1 - k) % RING];
        ipnet_t a;
        if (!e->ok || !parse_node(e->text, &a))
            return false;
        if (!ipnet_set_match(trusted, &a, 0, NULL, NULL)) {
            *out = a;
            return true;
        }
        last = a;
    }
    *out = last; /* every hop a trusted proxy: the left-most */
    return true;
}
