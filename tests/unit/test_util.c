/* Clock formatting, the data-directory lock, strict UTF-8, the allocation
 * wrappers, the text buffer, the hex codec and web origins. */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../test.h"
#include "testutil.h"
#include "parley/clock.h"
#include "parley/datadir.h"
#include "parley/origin.h"
#include "parley/utf8.h"

TEST(clock_formats_rfc3339_with_millis)
{
    char buf[CLOCK_RFC3339_LEN];
    clock_format_rfc3339(0, buf);
    ASSERT_STREQ(buf, "1970-01-01T00:00:00.000Z");
    clock_format_rfc3339(1767960000123LL, buf);
    ASSERT_STREQ(buf, "2026-01-09T12:00:00.123Z");
    clock_format_rfc3339(-1, buf);
    ASSERT_STREQ(buf, "1969-12-31T23:59:59.999Z");
    clock_format_rfc3339(951782400000LL, buf); /* a leap day of a century year */
    ASSERT_STREQ(buf, "2000-02-29T00:00:00.000Z");
}

/* The hand-made formatter agrees with gmtime_r + strftime over 1900-2400,
 * every 7 hours 13 minutes 17.5 seconds (all months, leap years, the
 * centuries that are and are not leap years). */
TEST(clock_rfc3339_agrees_with_gmtime)
{
    char buf[CLOCK_RFC3339_LEN], want[64];
    const int64_t step = ((7 * 60 + 13) * 60 + 17) * 1000LL + 500;
    for (int64_t ms = -2208988800000LL; ms < 13569465600000LL; ms += step) {
        time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        size_t n = strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(want + n, sizeof(want) - n, ".%03dZ", (int)(((ms % 1000) + 1000) % 1000));
        clock_format_rfc3339(ms, buf);
        ASSERT_STREQ(buf, want);
    }
}

TEST(clock_monotonic_moves_forward)
{
    int64_t a = clock_mono_ns();
    usleep(2000);
    ASSERT_GE(clock_mono_ns() - a, 2000000);
}

TEST(datadir_lock_is_exclusive_and_released)
{
    char top[64], dir[128];
    ut_tmpdir(top, sizeof(top), "lock");
    snprintf(dir, sizeof(dir), "%s/nested/data", top);
    char err[256];
    int fd = datadir_lock(dir, err, sizeof(err));
    ASSERT_GE(fd, 0);
    struct stat st;
    ASSERT_EQ(stat(dir, &st), 0);
    ASSERT_EQ(st.st_mode & 0777, 0700);

    /* flock is per open file: a second open in another process conflicts. */
    pid_t child = fork();
    if (child == 0) {
        char e2[256];
        int fd2 = datadir_lock(dir, e2, sizeof(e2));
        if (fd2 >= 0 || strstr(e2, "in use by another parley process") == NULL)
            _exit(1);
        char pid[32];
        snprintf(pid, sizeof(pid), "(pid %d)", (int)getppid());
        _exit(strstr(e2, pid) ? 0 : 2);
    }
    int status;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);

    datadir_unlock(fd);
    fd = datadir_lock(dir, err, sizeof(err));
    ASSERT_GE(fd, 0);
    datadir_unlock(fd);
    ut_rmrf(top);
}

TEST(datadir_refuses_a_file_in_the_way)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/parley-lock-file-%d", (int)getpid());
    int f = open(path, O_CREAT | O_WRONLY, 0600);
    close(f);
    char err[256];
    ASSERT_EQ(datadir_lock(path, err, sizeof(err)), -1);
    ASSERT_CONTAINS(err, "cannot create data directory");
    unlink(path);
}

#include "parley/rules.h"

TEST(rules_usernames_emails_passwords)
{
    ASSERT_TRUE(rules_username_ok("abc"));
    ASSERT_TRUE(rules_username_ok("A.b_c-9"));
    ASSERT_TRUE(rules_username_ok("abcdefghijabcdefghijabcdefghij12"));
    ASSERT_TRUE(!rules_username_ok("ab"));
    ASSERT_TRUE(!rules_username_ok("abcdefghijabcdefghijabcdefghij123"));
    ASSERT_TRUE(!rules_username_ok("a b c"));
    ASSERT_TRUE(!rules_username_ok("caf\xc3\xa9"));
    ASSERT_TRUE(!rules_username_ok("a/b"));
    ASSERT_TRUE(rules_email_ok("a@b.co"));
    ASSERT_TRUE(!rules_email_ok("a@b"));
    ASSERT_TRUE(!rules_email_ok("@b.co"));
    ASSERT_TRUE(!rules_email_ok("a@@b.co"));
    ASSERT_TRUE(!rules_email_ok("a b@c.de"));
    ASSERT_TRUE(!rules_email_ok("a@b.co\n"));
    ASSERT_TRUE(!rules_email_ok("a@.co"));
    ASSERT_TRUE(!rules_email_ok("a@b."));
    ASSERT_TRUE(rules_password_ok("12345678"));
    ASSERT_TRUE(!rules_password_ok("1234567"));
    ASSERT_TRUE(rules_password_ok("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"));
    char long_pw[200];
    memset(long_pw, 'x', 129);
    long_pw[129] = '\0';
    ASSERT_TRUE(!rules_password_ok(long_pw));
    long_pw[128] = '\0';
    ASSERT_TRUE(rules_password_ok(long_pw));
}

TEST(utf8_accepts_what_jansson_accepts_and_nothing_else)
{
    ASSERT_TRUE(utf8_valid("plain", 5));
    ASSERT_TRUE(utf8_valid("", 0));
    ASSERT_TRUE(utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9)); /* é € 😀 */
    ASSERT_TRUE(utf8_valid("\xf4\x8f\xbf\xbf", 4));                     /* U+10FFFF */
    ASSERT_TRUE(!utf8_valid("\xf4\x90\x80\x80", 4));                    /* above it */
    ASSERT_TRUE(!utf8_valid("\xc0\xaf", 2));                            /* overlong '/' */
    ASSERT_TRUE(!utf8_valid("\xe0\x80\xaf", 3));                        /* overlong */
    ASSERT_TRUE(!utf8_valid("\xed\xa0\x80", 3));                        /* surrogate */
    ASSERT_TRUE(!utf8_valid("\x80", 1));                                /* lone continuation */
    ASSERT_TRUE(!utf8_valid("\xff", 1));
    ASSERT_TRUE(!utf8_valid("\xe2\x82", 2));                            /* cut short */
    ASSERT_TRUE(!utf8_valid("ok\xc3", 3));
    /* The length bounds the look: a valid sequence past it does not count. */
    ASSERT_EQ(utf8_sequence((const unsigned char *)"\xc3\xa9", 1), 0);
    ASSERT_EQ(utf8_sequence((const unsigned char *)"\xc3\xa9", 2), 2);
    ASSERT_EQ(utf8_sequence((const unsigned char *)"a", 0), 0);
}

#include <signal.h>
#include <stdint.h>

#include "parley/hex.h"
#include "parley/text_buf.h"
#include "parley/xalloc.h"

TEST(xalloc_returns_usable_memory_also_for_size_zero)
{
    char *p = xmalloc(0);
    ASSERT_TRUE(p != NULL);
    p = xrealloc(p, 0); /* not a free: still a block */
    ASSERT_TRUE(p != NULL);
    p = xrealloc(p, 6);
    memcpy(p, "hello", 6);
    p = xrealloc(p, 1 << 20);
    ASSERT_STREQ(p, "hello");
    free(p);

    unsigned char *z = xcalloc(1000, 4);
    for (int i = 0; i < 4000; i++)
        ASSERT_EQ(z[i], 0);
    free(z);
    void *none = xcalloc(0, 8);
    ASSERT_TRUE(none != NULL);
    free(none);

    uint32_t *a = xreallocarray(NULL, 3, sizeof(uint32_t));
    a[0] = 1, a[1] = 2, a[2] = 3;
    a = xreallocarray(a, 1000, sizeof(uint32_t));
    ASSERT_EQ(a[2], 3);
    free(a);
}

TEST(xalloc_copies_strings_and_bytes)
{
    char *s = xstrdup("parley");
    ASSERT_STREQ(s, "parley");
    free(s);
    s = xstrndup("parley", 3);
    ASSERT_STREQ(s, "par");
    free(s);
    s = xstrndup("ab", 10); /* n beyond the string: the whole string */
    ASSERT_STREQ(s, "ab");
    free(s);
    const unsigned char bytes[4] = {0, 1, 0, 2};
    unsigned char *d = xmemdup(bytes, sizeof(bytes));
    ASSERT_EQ(memcmp(d, bytes, sizeof(bytes)), 0);
    free(d);
}

/* Runs fn in a child with stderr in a pipe: true when it died of SIGABRT,
 * with what it wrote in out. */
static bool aborts_saying(void (*fn)(void), char *out, size_t out_size)
{
    int fds[2];
    if (pipe(fds) != 0)
        return false;
    pid_t child = fork();
    if (child == 0) {
        dup2(fds[1], STDERR_FILENO);
        fn();
        _exit(0);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t n;
    while (got + 1 < out_size && (n = read(fds[0], out + got, out_size - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(fds[0]);
    int status;
    waitpid(child, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void overflowing_array(void)
{
    free(xreallocarray(NULL, SIZE_MAX / 2, 4));
}

static void impossible_malloc(void)
{
    free(xmalloc((size_t)PTRDIFF_MAX + 1));
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif

TEST(xalloc_out_of_memory_aborts_with_one_line)
{
    char text[512];
    ASSERT_TRUE(aborts_saying(overflowing_array, text, sizeof(text)));
    char want[128];
    snprintf(want, sizeof(want), "parley: out of memory: reallocarray of %zu x 4 bytes failed\n",
             SIZE_MAX / 2);
    ASSERT_STREQ(text, want);
#ifndef SANITIZED
    /* The sanitizers' allocators report an impossible size themselves. */
    ASSERT_TRUE(aborts_saying(impossible_malloc, text, sizeof(text)));
    snprintf(want, sizeof(want), "parley: out of memory: malloc of %zu bytes failed\n",
             (size_t)PTRDIFF_MAX + 1);
    ASSERT_STREQ(text, want);
#else
    (void)impossible_malloc;
#endif
}

TEST(text_buf_grows_and_stays_terminated)
{
    text_buf_t b = {0};
    for (int i = 0; i < 5000; i++)
        ASSERT_TRUE(text_buf_append(&b, "abc", 3));
    ASSERT_EQ(b.len, 15000);
    ASSERT_EQ(b.data[b.len], '\0');
    ASSERT_TRUE(text_buf_puts(&b, "!"));
    ASSERT_EQ(strlen(b.data), 15001);
    ASSERT_TRUE(!b.failed);
    free(b.data);
}

TEST(text_buf_reserve_makes_room_and_a_failure_sticks)
{
    text_buf_t b = {0};
    ASSERT_TRUE(text_buf_reserve(&b, 10000));
    ASSERT_TRUE(b.cap >= 10001);
    ASSERT_EQ(b.len, 0);
    char *before = b.data;
    size_t cap = b.cap;
    ASSERT_TRUE(text_buf_append(&b, "", 0));
    ASSERT_STREQ(b.data, "");
    ASSERT_TRUE(text_buf_puts(&b, "{\"a\":1}"));
    ASSERT_TRUE(b.data == before && b.cap == cap); /* no regrowth within the room */
    ASSERT_STREQ(b.data, "{\"a\":1}");

    b.failed = true; /* as after a failed realloc */
    ASSERT_TRUE(!text_buf_puts(&b, "more"));
    ASSERT_TRUE(!text_buf_reserve(&b, 1));
    ASSERT_EQ(b.len, 7);
    ASSERT_STREQ(b.data, "{\"a\":1}");
    free(b.data);
}

TEST(hex_encodes_lowercase_and_decodes_either_case)
{
    const unsigned char bin[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    char hex[2 * sizeof(bin) + 1];
    hex_encode(bin, sizeof(bin), hex);
    ASSERT_STREQ(hex, "00017f80abff");
    hex_encode(bin, 0, hex);
    ASSERT_STREQ(hex, "");

    unsigned char back[sizeof(bin)];
    ASSERT_EQ(hex_decode("00017f80abff", sizeof(back), back), 0);
    ASSERT_EQ(memcmp(back, bin, sizeof(bin)), 0);
    ASSERT_EQ(hex_decode("00017F80ABFF", sizeof(back), back), 0);
    ASSERT_EQ(memcmp(back, bin, sizeof(bin)), 0);

    unsigned char kept[3] = {9, 9, 9};
    ASSERT_EQ(hex_decode("0102g3", 3, kept), -1); /* out untouched */
    ASSERT_EQ(kept[0], 9);
    ASSERT_EQ(hex_decode("01 203", 3, kept), -1);
    ASSERT_EQ(hex_decode("0102", 2, kept), 0);
    ASSERT_EQ(kept[1], 2);
    ASSERT_EQ(kept[2], 9);

    ASSERT_EQ(hex_digit('0'), 0);
    ASSERT_EQ(hex_digit('f'), 15);
    ASSERT_EQ(hex_digit('F'), 15);
    ASSERT_EQ(hex_digit('g'), -1);
    ASSERT_EQ(hex_digit('\0'), -1);
}

TEST(origins_are_exactly_what_a_browser_sends)
{
    static const char *const good[] = {
        "https://chat.example.com", "http://localhost:5173", "HTTPS://Chat.Example.COM",
        "http://127.0.0.1:8080", "https://[::1]:8443", "https://[2001:db8::1]",
        "http://a", "https://x.example:65535", "http://x:443", "https://x:80",
    };
    static const char *const bad[] = {
        "", "*", "null", "chat.example.com", "ftp://x.example", "https://", "https://x/",
        "https://x/app", "https://x?q", "https://x#f", "https://u@x", "https://*.x",
        "https://x:", "https://x:0", "https://x:08", "https://x:65536", "https://x:443",
        "http://x:80", "https://x:+1", "https://x :1", "https://.x", "https://x..y",
        "https://-x", "https://x-", "https://[]", "https://[::1", "https://[::1]x",
        " https://x", "https://x ",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!origin_valid(good[i]))
            TEST_FAIL_("'%s' refused", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (origin_valid(bad[i]))
            TEST_FAIL_("'%s' taken", bad[i]);
    char longest[ORIGIN_LEN_MAX + 2] = "https://";
    memset(longest + 8, 'a', ORIGIN_LEN_MAX - 8);
    longest[ORIGIN_LEN_MAX] = '\0';
    ASSERT_TRUE(origin_valid(longest));
    longest[ORIGIN_LEN_MAX] = 'a';
    longest[ORIGIN_LEN_MAX + 1] = '\0';
    ASSERT_TRUE(!origin_valid(longest));
    ASSERT_TRUE(origin_equal("https://Chat.example.com", "HTTPS://chat.EXAMPLE.com"));
    ASSERT_TRUE(!origin_equal("https://chat.example.com", "https://chat.example.com:8443"));

    char items[3][ORIGIN_LEN_MAX + 1];
    ASSERT_EQ(origin_split_list(" https://a , ,http://b:1,", items, 3), 2);
    ASSERT_STREQ(items[0], "https://a");
    ASSERT_STREQ(items[1], "http://b:1");
    ASSERT_EQ(origin_split_list("", items, 3), 0);
    ASSERT_EQ(origin_split_list("a,b,c,d", items, 3), -1);
}
