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

/*
 * Integer comparisons: ASSERT_EQ, _NE, _LT, _LE, _GT, _GE. Each side is
 * evaluated once and kept with its sign (an unsigned type stays unsigned,
 * so a uint64_t or size_t above LLONG_MAX compares and prints as itself,
 * and -1 is below every unsigned value); a failure prints both expressions
 * and both values. A pointer or a floating value does not compile here: use
 * ASSERT_NULL / ASSERT_NOT_NULL, or ASSERT_TRUE on the comparison.
 */
typedef struct test_int_ {
    int neg;              /* a signed value below zero */
    unsigned long long u; /* the value (two's complement when neg) */
} test_int_t;

static inline test_int_t test_int_s_(long long v)
{
    return (test_int_t){v < 0, (unsigned long long)v};
}

static inline test_int_t test_int_u_(unsigned long long v)
{
    return (test_int_t){0, v};
}

/* -1, 0 or 1 as a is below, equal to or above b. */
static inline int test_int_cmp_(test_int_t a, test_int_t b)
{
    if (a.neg != b.neg)
        return a.neg ? -1 : 1;
    return a.u < b.u ? -1 : a.u > b.u;
}

static inline const char *test_int_str_(test_int_t v, char buf[24])
{
    if (v.neg)
        snprintf(buf, 24, "%lld", (long long)v.u);
    else
        snprintf(buf, 24, "%llu", v.u);
    return buf;
}

/* `+ 0` promotes bool, char, short and enums, as arithmetic would. */
#define TEST_INT_(x)                                                    \
    _Generic((x) + 0,                                                   \
             int: test_int_s_,                                          \
             long: test_int_s_,                                         \
             long long: test_int_s_,                                    \
             unsigned int: test_int_u_,                                 \
             unsigned long: test_int_u_,                                \
             unsigned long long: test_int_u_)(x)

#define TEST_CMP_(a, op, b)                                             \
    do {                                                                \
        test_int_t a_ = TEST_INT_(a), b_ = TEST_INT_(b);                \
        if (!(test_int_cmp_(a_, b_) op 0)) {                            \
            char as_[24], bs_[24];                                      \
            TEST_FAIL_("%s %s %s: %s vs %s", #a, #op, #b,               \
                       test_int_str_(a_, as_), test_int_str_(b_, bs_)); \
        }                                                               \
    } while (0)

#define ASSERT_EQ(a, b) TEST_CMP_(a, ==, b)
#define ASSERT_NE(a, b) TEST_CMP_(a, !=, b)
#define ASSERT_LT(a, b) TEST_CMP_(a, <, b)
#define ASSERT_LE(a, b) TEST_CMP_(a, <=, b)
#define ASSERT_GT(a, b) TEST_CMP_(a, >, b)
#define ASSERT_GE(a, b) TEST_CMP_(a, >=, b)

/* Pointers, printed with %p. */
#define ASSERT_NULL(p)                                                  \
    do {                                                                \
        const void *p_ = (p);                                           \
        if (p_ != NULL)                                                 \
            TEST_FAIL_("expected NULL: %s is %p", #p, p_);              \
    } while (0)

#define ASSERT_NOT_NULL(p)                                              \
    do {                                                                \
        if ((p) == NULL)                                                \
            TEST_FAIL_("expected not NULL: %s", #p);                    \
    } while (0)

/* Strings by strcmp: ASSERT_STREQ, _STRNE, _STRLT. NULL fails any of them. */
#define TEST_STR_(a, op, b)                                             \
    do {                                                                \
        const char *a_ = (a), *b_ = (b);                                \
        if (a_ == NULL || b_ == NULL || !(strcmp(a_, b_) op 0))         \
            TEST_FAIL_("%s %s %s: \"%s\" vs \"%s\"", #a, #op, #b,       \
                       a_ ? a_ : "(null)", b_ ? b_ : "(null)");         \
    } while (0)

#define ASSERT_STREQ(a, b) TEST_STR_(a, ==, b)
#define ASSERT_STRNE(a, b) TEST_STR_(a, !=, b)
#define ASSERT_STRLT(a, b) TEST_STR_(a, <, b)

#define ASSERT_CONTAINS(hay, needle)                                    \
    do {                                                                \
        const char *h_ = (hay), *n_ = (needle);                         \
        if (h_ == NULL || strstr(h_, n_) == NULL)                       \
            TEST_FAIL_("\"%s\" does not contain \"%s\"",                \
                       h_ ? h_ : "(null)", n_);                         \
    } while (0)

#endif
