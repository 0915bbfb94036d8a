/* The figures by route (src/http/route_metrics.c): patterns shown with
 * {param}, codes outside the fixed list counted as "other", latencies in
 * their fixed buckets (a bound belongs to its bucket), the histogram's
 * buckets cumulative with +Inf equal to the count, and routes that counted
 * nothing left out. */
#include "../test.h"
#include "http/route_metrics.h"
#include "parley/http.h"

typedef struct seen {
    int n;
    http_route_metrics_t last[4];
} seen_t;

static void collect(void *ctx, const http_route_metrics_t *m)
{
    seen_t *s = ctx;
    if (s->n < 4)
        s->last[s->n] = *m;
    s->n++;
}

TEST(route_metrics_count_by_pattern_code_and_bucket)
{
    route_metrics_t *t = route_metrics__new(3);
    route_metrics__name(t, 0, "GET", "/api/v1/channels/:id/messages/:message_id");
    route_metrics__name(t, 1, "POST", "/api/v1/auth/login");
    route_metrics__name(t, 2, "GET", "/api/health");
    route_slot_t *a = route_metrics__slot(t, 0), *b = route_metrics__slot(t, 1);
    ASSERT_STREQ(route_metrics__route(a), "/api/v1/channels/{id}/messages/{message_id}");
    ASSERT_STREQ(route_metrics__method(a), "GET");
    ASSERT_STREQ(route_metrics__route(NULL), "unmatched");

    route_metrics__count(a, 200, 1000000, 0, 500);  /* exactly 1 ms: le 0.001 */
    route_metrics__count(a, 200, 1000001, 0, 500);  /* just over: le 0.0025 */
    route_metrics__count(a, 404, 20000000000, 0, 50); /* 20 s: only +Inf */
    route_metrics__count(b, 299, 5, 30, 0);         /* not in the list: other */
    route_metrics__count(b, 0, -5, 0, 0);           /* no status; a negative time is 0 */

    seen_t s = {0};
    http_route_metrics_each(collect, &s);
    ASSERT_EQ(s.n, 2); /* /api/health counted nothing; unmatched neither */
    const http_route_metrics_t *m = &s.last[0];
    ASSERT_STREQ(m->route, "/api/v1/channels/{id}/messages/{message_id}");
    ASSERT_EQ(m->count, 3);
    ASSERT_EQ(m->le[0], 1);
    ASSERT_EQ(m->le[1], 2);
    ASSERT_EQ(m->le[HTTP_LATENCY_BUCKETS - 1], 2);
    ASSERT_EQ(m->le[HTTP_LATENCY_BUCKETS], 3);
    ASSERT_EQ(m->n_codes, 2);
    ASSERT_EQ(m->codes[0].code, 200);
    ASSERT_EQ(m->codes[0].n, 2);
    ASSERT_EQ(m->codes[1].code, 404);
    ASSERT_EQ(m->bytes_out, 1050);
    ASSERT_TRUE(m->sum_seconds > 20.0 && m->sum_seconds < 20.01);
    m = &s.last[1];
    ASSERT_EQ(m->n_codes, 2);
    ASSERT_EQ(m->codes[0].code, 0);  /* none */
    ASSERT_EQ(m->codes[1].code, -1); /* other, last */
    ASSERT_EQ(m->bytes_in, 30);
    ASSERT_EQ(m->le[0], 2);

    route_metrics__count(NULL, 404, 1, 0, 10);
    s.n = 0;
    http_route_metrics_each(collect, &s);
    ASSERT_EQ(s.n, 3);
    ASSERT_STREQ(s.last[2].route, "unmatched");
    ASSERT_STREQ(s.last[2].method, "any");
    route_metrics__free(t);
    /* the table gone, only the unmatched slot is read */
    s.n = 0;
    http_route_metrics_each(collect, &s);
    ASSERT_EQ(s.n, 1);
}
