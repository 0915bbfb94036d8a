/* Hex digits, for the URL decoder, the secret-file reader, the TOTP secret,
 * the tokens' MACs and the blobs' SHA-256 names alike: one encoder and one
 * decoder instead of a copy in each. */
#include "parley/hex.h"

int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int hex_decode(const char *in, size_t n, unsigned char *out)
{
    for (size_t i = 0; i < 2 * n; i++)
        if (hex_digit(in[i]) < 0)
            return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)(hex_digit(in[2 * i]) << 4 | hex_digit(in[2 * i + 1]));
    return 0;
}
