/*
 * The allocation wrappers of include/parley/xalloc.h: internal allocations
 * abort on out-of-memory instead of each call site checking for NULL and
 * calling abort() itself, so the policy (STYLE.md section 3) and its one
 * diagnostic line live in one place.
 *
 * The message is formatted into a stack buffer and written with write(2),
 * since stdio may itself want memory when there is none.
 */
#include "parley/xalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static _Noreturn void oom(const char *what, size_t n, size_t size)
{
    char line[160];
    int len;
    if (n == 1)
        len = snprintf(line, sizeof(line), "parley: out of memory: %s of %zu bytes failed\n",
                       what, size);
    else
        len = snprintf(line, sizeof(line),
                       "parley: out of memory: %s of %zu x %zu bytes failed\n", what, n, size);
    if (len > 0) {
        ssize_t ignored = write(STDERR_FILENO, line, (size_t)len < sizeof(line) ? (size_t)len
                                                                                : sizeof(line) - 1);
        (void)ignored;
    }
    abort();
}

/* malloc that names the caller (`what`) in the message. */
static void *alloc_for(const char *what, size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        oom(what, 1, size);
    return p;
}

void *xmalloc(size_t size)
{
    return alloc_for("malloc", size);
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n && size ? n : 1, n && size ? size : 1);
    if (p == NULL)
        oom("calloc", n, size);
    return p;
}

void *xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (q == NULL)
        oom("realloc", 1, size);
    return q;
}

void *xreallocarray(void *p, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        oom("reallocarray", n, size);
    return xrealloc(p, n * size);
}

char *xstrdup(const char *s)
{
    size_t len = strlen(s);
    char *d = alloc_for("strdup", len + 1);
    memcpy(d, s, len + 1);
    return d;
}

char *xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = alloc_for("strndup", len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

void *xmemdup(const void *p, size_t n)
{
    void *d = alloc_for("memdup", n);
    if (n)
        memcpy(d, p, n);
    return d;
}
