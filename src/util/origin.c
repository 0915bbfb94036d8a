/*
 * Web origins (include/parley/origin.h): a small hand check of the one form
 * an `Origin` header takes (scheme "://" host [":" port]), strict so that a
 * listed origin is always one a browser can send, with no URL parser: a
 * path, a wildcard or userinfo is an operator's mistake to refuse, not to
 * normalise.
 */
#include "parley/origin.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.';
}

bool origin_valid(const char *s)
{
    if (s == NULL || strlen(s) > ORIGIN_LEN_MAX)
        return false;
    const char *p;
    bool https;
    if (strncasecmp(s, "https://", 8) == 0) {
        p = s + 8;
        https = true;
    } else if (strncasecmp(s, "http://", 7) == 0) {
        p = s + 7;
        https = false;
    } else {
        return false;
    }
    const char *host = p;
    if (*p == '[') {
        p++;
        while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F') ||
               *p == ':' || *p == '.')
            p++;
        if (*p != ']' || p == host + 1)
            return false;
        p++;
    } else {
        while (host_char(*p))
            p++;
        if (p == host || host[0] == '.' || host[0] == '-' || p[-1] == '-' ||
            strstr(host, "..") != NULL)
            return false;
    }
    if (*p == '\0')
        return true;
    if (*p != ':' || p[1] == '\0' || p[1] == '0')
        return false;
    char *end;
    long port = strtol(p + 1, &end, 10);
    for (const char *d = p + 1; d < end; d++)
        if (*d < '0' || *d > '9')
            return false;
    if (*end != '\0' || port < 1 || port > 65535)
        return false;
    return port != (https ? 443 : 80);
}

bool origin_equal(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

int origin_split_list(const char *text, char items[][ORIGIN_LEN_MAX + 1], int max)
{
    int n = 0;
    const char *p = text;
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *a = p, *b = p + len;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (b > a) {
            if (n == max || (size_t)(b - a) > ORIGIN_LEN_MAX)
                return -1;
            memcpy(items[n], a, (size_t)(b - a));
            items[n][b - a] = '\0';
            n++;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return n;
}
