/* Clock formatting, the data-directory lock, strict UTF-8. */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../test.h"
#include "testutil.h"
#include "parley/clock.h"
#include "parley/datadir.h"
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
