/*
 * The shared HTTP layer: error table and bodies, body checks, field readers,
 * and the router driven with real ulfius request and response objects.
 */
#include "../test.h"
#include "parley/api.h"
#include "parley/http_server.h"
#include "parley/http.h"
#include "testutil.h"

/* ---- error table and body ---------------------------------------------- */

TEST(http_errors_map_to_the_api_statuses)
{
    ASSERT_EQ(http_error_status(HTTP_ERR_BAD_REQUEST), 400);
    ASSERT_STREQ(http_error_code(HTTP_ERR_NOT_FOUND), "RESOURCE_NOT_FOUND");
    ASSERT_EQ(http_error_status(HTTP_ERR_VALIDATION), 422);
    ASSERT_STREQ(http_error_code(HTTP_ERR_VALIDATION), "VALIDATION_ERROR");
    ASSERT_EQ(http_error_status(HTTP_ERR_RATE_LIMITED), 429);
    ASSERT_STREQ(http_error_code(HTTP_ERR_RATE_LIMITED), "RATE_LIMIT_EXCEEDED");
    ASSERT_EQ(http_error_status(HTTP_ERR_PAYLOAD_TOO_LARGE), 413);
    ASSERT_EQ(http_error_status(HTTP_ERR_UNAVAILABLE), 503);
    for (int e = 0; e < HTTP_ERR_COUNT_; e++) {
        ASSERT_GE(http_error_status((enum http_error)e), 400);
        ASSERT_NE(http_error_code((enum http_error)e)[0], '\0');
    }
}

TEST(http_error_body_has_the_contract_shape)
{
    char *text = http_error_body(HTTP_ERR_VALIDATION, "username must be 3-32 characters",
                                 json_pack("{s:s}", "field", "username"), "req_1");
    json_t *j = json_loads(text, 0, NULL);
    ASSERT_NOT_NULL(j);
    json_t *e = json_object_get(j, "error");
    ASSERT_STREQ(json_string_value(json_object_get(e, "code")), "VALIDATION_ERROR");
    ASSERT_STREQ(json_string_value(json_object_get(e, "message")),
                 "username must be 3-32 characters");
    ASSERT_STREQ(json_string_value(json_object_get(json_object_get(e, "details"), "field")),
                 "username");
    ASSERT_STREQ(json_string_value(json_object_get(e, "request_id")), "req_1");
    const char *ts = json_string_value(json_object_get(e, "timestamp"));
    ASSERT_EQ(strlen(ts), 24);
    ASSERT_EQ(ts[23], 'Z');
    json_decref(j);
    free(text);

    /* A message that is not UTF-8 still yields a valid body. */
    text = http_error_body(HTTP_ERR_BAD_REQUEST, "bad \xff byte", NULL, "req_2");
    j = json_loads(text, 0, NULL);
    ASSERT_NOT_NULL(j);
    ASSERT_TRUE(json_is_object(json_object_get(json_object_get(j, "error"), "details")));
    json_decref(j);
    free(text);
}

/* ---- body checks --------------------------------------------------------- */

static int parse(const char *ct, const char *body, bool upload, enum http_error *err)
{
    json_t *out = NULL;
    char msg[256];
    int rc = http_parse_json_body(ct, body, strlen(body), upload, &out, err, msg, sizeof(msg));
    if (rc == 0 && !upload)
        ASSERT_TRUE(json_is_object(out));
    json_decref(out);
    return rc;
}

TEST(http_body_accepts_json_objects)
{
    enum http_error err;
    ASSERT_EQ(parse("application/json", "{\"a\":1}", false, &err), 0);
    ASSERT_EQ(parse("application/json; charset=utf-8", "{}", false, &err), 0);
    ASSERT_EQ(parse("Application/JSON;charset=\"UTF-8\"", "{\"x\":[1,{\"y\":2}]}", false, &err), 0);
    ASSERT_EQ(parse("multipart/form-data; boundary=x", "--x--", true, &err), 0);
}

TEST(http_body_refuses_wrong_types_and_bad_json)
{
    struct {
        const char *ct, *body;
        enum http_error expect;
    } cases[] = {
        {NULL, "{}", HTTP_ERR_BAD_REQUEST},
        {"text/plain", "{}", HTTP_ERR_BAD_REQUEST},
        {"application/jsonx", "{}", HTTP_ERR_BAD_REQUEST},
        {"application/x-www-form-urlencoded", "a=1", HTTP_ERR_BAD_REQUEST},
        {"multipart/form-data; boundary=x", "--x--", HTTP_ERR_BAD_REQUEST},
        {"application/json; charset=latin1", "{}", HTTP_ERR_BAD_REQUEST},
        {"application/json", "{bad", HTTP_ERR_BAD_REQUEST},
        {"application/json", "{\"a\":1,\"a\":2}", HTTP_ERR_BAD_REQUEST},
        {"application/json", "{\"a\":\"\xff\"}", HTTP_ERR_BAD_REQUEST},
        {"application/json", "{\"a\":\"\\u0000\"}", HTTP_ERR_BAD_REQUEST},
        {"application/json", "{} {}", HTTP_ERR_BAD_REQUEST},
        {"application/json", "[1,2]", HTTP_ERR_VALIDATION},
        {"application/json", "\"text\"", HTTP_ERR_VALIDATION},
        {"application/json", "null", HTTP_ERR_VALIDATION},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum http_error err = HTTP_ERR_COUNT_;
        if (parse(cases[i].ct, cases[i].body, false, &err) == 0)
            TEST_FAIL_("case %zu (%s) was accepted", i, cases[i].body);
        if (err != cases[i].expect)
            TEST_FAIL_("case %zu (%s): error %d, expected %d", i, cases[i].body, err,
                       cases[i].expect);
    }
}

TEST(http_body_depth_limit)
{
    char deep[256] = "", shallow[256] = "";
    for (int i = 0; i < HTTP_JSON_MAX_DEPTH; i++)
        strcat(shallow, i ? "[" : "{\"a\":");
    for (int i = 1; i < HTTP_JSON_MAX_DEPTH; i++)
        strcat(shallow, "]");
    strcat(shallow, "}");
    for (int i = 0; i <= HTTP_JSON_MAX_DEPTH; i++)
        strcat(deep, i ? "[" : "{\"a\":");
    for (int i = 1; i <= HTTP_JSON_MAX_DEPTH; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    enum http_error err;
    ASSERT_EQ(parse("application/json", shallow, false, &err), 0);
    ASSERT_EQ(parse("application/json", deep, false, &err), -1);
    ASSERT_EQ(err, HTTP_ERR_BAD_REQUEST);
}

TEST(http_request_id_rules)
{
    ASSERT_TRUE(http_request_id_acceptable("abc-123_X.y:z"));
    ASSERT_TRUE(!http_request_id_acceptable(""));
    ASSERT_TRUE(!http_request_id_acceptable("has space"));
    ASSERT_TRUE(!http_request_id_acceptable("line\nbreak"));
    ASSERT_TRUE(!http_request_id_acceptable("quote\""));
    char long_id[70];
    memset(long_id, 'a', 65);
    long_id[65] = '\0';
    ASSERT_TRUE(!http_request_id_acceptable(long_id));
    long_id[64] = '\0';
    ASSERT_TRUE(http_request_id_acceptable(long_id));
}

/* ---- the router, with real ulfius objects -------------------------------- */

static char seen[256];

static void h_echo_params(http_ctx_t *ctx)
{
    snprintf(seen, sizeof(seen), "%zu:%s|%s", ctx->n_params, ctx->n_params > 0 ? ctx->params[0] : "",
             ctx->n_params > 1 ? ctx->params[1] : "");
    http_reply_json(ctx, 200, json_pack("{s:s}", "seen", seen));
}

static void h_fields(http_ctx_t *ctx)
{
    const char *name = NULL;
    bool flag = false;
    long long n = 7;
    if (http_field_string(ctx, "name", true, 3, 5, false, &name) != 0 ||
        http_field_bool(ctx, "flag", false, &flag) != 0 ||
        http_field_int(ctx, "n", false, 1, 10, &n) != 0)
        return;
    http_reply_json(ctx, 201, json_pack("{s:s, s:b, s:I}", "name", name, "flag", flag, "n",
                                        (json_int_t)n));
}

static void h_silent(http_ctx_t *ctx)
{
    (void)ctx;
}

static void h_twice(http_ctx_t *ctx)
{
    http_reply_empty(ctx, 204);
    http_reply_json(ctx, 200, json_object());
}

static const http_route_t test_routes[] = {
    {"GET", "/api/v1/things/:id", h_echo_params, HTTP_ROUTE_PUBLIC, NULL, NULL},
    {"DELETE", "/api/v1/things/:id", h_echo_params, HTTP_ROUTE_PUBLIC, NULL, NULL},
    {"GET", "/api/v1/things/:id/parts/:part", h_echo_params, HTTP_ROUTE_PUBLIC, NULL, NULL},
    {"POST", "/api/v1/fields", h_fields, HTTP_ROUTE_PUBLIC, NULL, NULL},
    {"POST", "/api/v1/upload", h_echo_params, HTTP_ROUTE_PUBLIC | HTTP_ROUTE_UPLOAD, NULL, NULL},
    {"GET", "/api/v1/silent", h_silent, HTTP_ROUTE_PUBLIC, NULL, NULL},
    {"GET", "/api/v1/twice", h_twice, HTTP_ROUTE_PUBLIC, NULL, NULL},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
static const http_route_t *const test_tables[] = {test_routes, NULL};

typedef struct answer {
    long status;
    json_t *json;
    char allow[64];
    char request_id[72];
} answer_t;

static answer_t call(const char *method, const char *path, const char *ct, const char *body)
{
    router_t *r = router_new(test_tables, NULL);
    struct _u_request req;
    struct _u_response resp;
    ulfius_init_request(&req);
    ulfius_init_response(&resp);
    req.http_verb = o_strdup(method);
    req.url_path = o_strdup(path);
    if (ct)
        u_map_put(req.map_header, "Content-Type", ct);
    if (body) {
        req.binary_body = o_strdup(body);
        req.binary_body_length = strlen(body);
    }
    ASSERT_EQ(router_dispatch(&req, &resp, r), U_CALLBACK_COMPLETE);
    answer_t a = {.status = resp.status};
    if (resp.binary_body_length)
        a.json = json_loadb(resp.binary_body, resp.binary_body_length, 0, NULL);
    const char *allow = u_map_get(resp.map_header, "Allow");
    snprintf(a.allow, sizeof(a.allow), "%s", allow ? allow : "");
    const char *rid = u_map_get(resp.map_header, "X-Request-Id");
    snprintf(a.request_id, sizeof(a.request_id), "%s", rid ? rid : "");
    ulfius_clean_request(&req);
    ulfius_clean_response(&resp);
    router_free(r);
    return a;
}

static const char *error_code(const answer_t *a)
{
    return json_string_value(json_object_get(json_object_get(a->json, "error"), "code"));
}

TEST(router_matches_and_decodes_params)
{
    answer_t a = call("GET", "/api/v1/things/abc", NULL, NULL);
    ASSERT_EQ(a.status, 200);
    ASSERT_STREQ(json_string_value(json_object_get(a.json, "seen")), "1:abc|");
    ASSERT_NE(a.request_id[0], '\0');
    json_decref(a.json);

    a = call("GET", "/api/v1/things/caf%C3%A9/parts/%F0%9F%98%80/", NULL, NULL);
    ASSERT_EQ(a.status, 200);
    ASSERT_STREQ(json_string_value(json_object_get(a.json, "seen")), "2:caf\xc3\xa9|\xf0\x9f\x98\x80");
    json_decref(a.json);

    a = call("HEAD", "/api/v1/things/x", NULL, NULL);
    ASSERT_EQ(a.status, 200);
    json_decref(a.json);
}

TEST(router_refuses_malformed_params)
{
    const char *paths[] = {"/api/v1/things/%zz", "/api/v1/things/%4", "/api/v1/things/a%00b",
                           "/api/v1/things/%0a", "/api/v1/things/%ff", "/api/v1/things/%ED%A0%80",
                           "/api/v1/things/%C0%AF"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        answer_t a = call("GET", paths[i], NULL, NULL);
        if (a.status != 400)
            TEST_FAIL_("%s answered %ld", paths[i], a.status);
        ASSERT_STREQ(error_code(&a), "BAD_REQUEST");
        json_decref(a.json);
    }
}

TEST(router_404_and_405)
{
    answer_t a = call("GET", "/api/v1/nothing", NULL, NULL);
    ASSERT_EQ(a.status, 404);
    ASSERT_STREQ(error_code(&a), "RESOURCE_NOT_FOUND");
    json_decref(a.json);

    a = call("GET", "/api/v1/things", NULL, NULL);
    ASSERT_EQ(a.status, 404);
    json_decref(a.json);

    a = call("PUT", "/api/v1/things/1", NULL, NULL);
    ASSERT_EQ(a.status, 405);
    ASSERT_STREQ(error_code(&a), "METHOD_NOT_ALLOWED");
    ASSERT_STREQ(a.allow, "GET, HEAD, DELETE");
    json_decref(a.json);

    char longpath[512] = "";
    for (int i = 0; i < 40; i++)
        strcat(longpath, "/a");
    a = call("GET", longpath, NULL, NULL);
    ASSERT_EQ(a.status, 404);
    json_decref(a.json);
}

TEST(router_checks_bodies_before_routes)
{
    answer_t a = call("POST", "/api/v1/fields", "application/json", "{oops");
    ASSERT_EQ(a.status, 400);
    json_decref(a.json);
    a = call("POST", "/api/v1/nowhere", "application/json", "{oops");
    ASSERT_EQ(a.status, 400);
    json_decref(a.json);
    a = call("POST", "/api/v1/fields", "text/plain", "{}");
    ASSERT_EQ(a.status, 400);
    json_decref(a.json);
    a = call("POST", "/api/v1/fields", "multipart/form-data; boundary=b", "--b--");
    ASSERT_EQ(a.status, 400);
    json_decref(a.json);
    a = call("POST", "/api/v1/upload", "multipart/form-data; boundary=b", "--b--");
    ASSERT_EQ(a.status, 200);
    json_decref(a.json);
    /* GET bodies are ignored. */
    a = call("GET", "/api/v1/things/1", "text/plain", "whatever");
    ASSERT_EQ(a.status, 200);
    json_decref(a.json);
}

TEST(router_field_readers)
{
    answer_t a = call("POST", "/api/v1/fields", "application/json", "{\"name\":\"abc\"}");
    ASSERT_EQ(a.status, 201);
    ASSERT_EQ(json_integer_value(json_object_get(a.json, "n")), 7);
    json_decref(a.json);

    a = call("POST", "/api/v1/fields", "application/json",
             "{\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\",\"flag\":true,\"n\":10}");
    ASSERT_EQ(a.status, 201); /* five code points, ten bytes */
    json_decref(a.json);

    struct {
        const char *body, *field;
    } bad[] = {
        {"{}", "name"},
        {"{\"name\":null}", "name"},
        {"{\"name\":5}", "name"},
        {"{\"name\":\"ab\"}", "name"},
        {"{\"name\":\"abcdef\"}", "name"},
        {"{\"name\":\"a\\nbc\"}", "name"},
        {"{\"name\":\"abc\",\"flag\":\"yes\"}", "flag"},
        {"{\"name\":\"abc\",\"n\":11}", "n"},
        {"{\"name\":\"abc\",\"n\":2.5}", "n"},
        {"{\"name\":\"abc\",\"n\":\"3\"}", "n"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        a = call("POST", "/api/v1/fields", "application/json", bad[i].body);
        if (a.status != 422)
            TEST_FAIL_("%s answered %ld", bad[i].body, a.status);
        ASSERT_STREQ(error_code(&a), "VALIDATION_ERROR");
        ASSERT_STREQ(json_string_value(json_object_get(
                         json_object_get(json_object_get(a.json, "error"), "details"), "field")),
                     bad[i].field);
        json_decref(a.json);
    }
}

TEST(router_answers_500_for_a_silent_handler_and_keeps_the_first_answer)
{
    answer_t a = call("GET", "/api/v1/silent", NULL, NULL);
    ASSERT_EQ(a.status, 500);
    ASSERT_STREQ(error_code(&a), "INTERNAL_SERVER_ERROR");
    json_decref(a.json);
    a = call("GET", "/api/v1/twice", NULL, NULL);
    ASSERT_EQ(a.status, 204);
    ASSERT_NULL(a.json);
}

/* ---- the OpenAPI document describes every route ----------------------- */

TEST(openapi_describes_every_route)
{
    json_t *doc = ut_openapi_doc();
    ASSERT_TRUE(json_is_object(json_object_get(doc, "paths")));
    int n = 0;
    for (size_t t = 0; api_route_tables[t]; t++) {
        for (const http_route_t *r = api_route_tables[t]; r->method; r++, n++) {
            if (ut_openapi_operation(doc, r, NULL) == NULL)
                TEST_FAIL_("docs/openapi.json lacks %s %s", r->method, r->pattern);
        }
    }
    ASSERT_GE(n, 2);
    json_decref(doc);
}
