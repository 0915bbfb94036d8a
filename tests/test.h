/*
 * A tiny unit-test harness. A test is `TEST(name) { ... }`; checks are
 * ASSERT_* macros that print both sides and fail the test. tests/test_main.c
 * runs every registered test in its own forked child with a time limit (so a
 * crash or hang fails one test, not the run) and ends with the line
 * "N passed, N failed".
 */
#ifndef PARLEY_TEST_H
#define PARLEY_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void test_register(const char *name, void (*fn)(void));

#define TEST(name)                                                       \
    static void name(void);                                             \
    __attribute__((constructor)) static void register_##name(void)      \
    {                                                                   \
        test_register(#name, name);                                     \
    }                                                                   \
    static void name(void)

#define TEST_FAIL_(...)                                                 \
    do {                                                                \
        fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);               \
        fprintf(stderr, __VA_ARGS__);                                   \
        fputc('\n', stderr);                                            \
        exit(1);                                                        \
    } while (0)

#define ASSERT_TRUE(c)                                                  \
    do {                                                                \
        if (!(c))                                                       \
            TEST_FAIL_("expected true: %s", #c);                        \
    } while (0)

#define ASSERT_EQ(a, b)                                                 \
    do {                                                                \
        long long a_ = (long long)(a), b_ = (long long)(b);             \
        if (a_ != b_)                                                   \
            TEST_FAIL_("%s == %s: %lld != %lld", #a, #b, a_, b_);       \
    } while (0)

#define ASSERT_STREQ(a, b)                                              \
    do {                                                                \
        const char *a_ = (a), *b_ = (b);                                \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)            \
            TEST_FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b,            \
                       a_ ? a_ : "(null)", b_ ? b_ : "(null)");         \
    } while (0)

#define ASSERT_CONTAINS(hay, needle)                                    \
    do {                                                                \
        const char *h_ = (hay), *n_ = (needle);                         \
        if (h_ == NULL || strstr(h_, n_) == NULL)                       \
            TEST_FAIL_("\"%s\" does not contain \"%s\"",                \
                       h_ ? h_ : "(null)", n_);                         \
    } while (0)

#endif
