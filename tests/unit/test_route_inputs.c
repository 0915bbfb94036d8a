/*
 * The declared inputs of every route (http_route_t.query and .body, which
 * the router holds requests to: an unknown query parameter or body field is
 * refused with 422). Every row of every route table is walked: each must
 * declare both lists, with well-formed names, and docs/openapi.json must say
 * the same: the operation's query parameters are exactly the declared query
 * list, and its request body's schema lists exactly the declared body fields
 * as its properties, with additionalProperties false (a schema made of
 * allOf parts counts the properties of all of them). So neither the
 * document nor the table can change alone.
 */
#include <stdio.h>
#include <string.h>

#include "../test.h"
#include "parley/api.h"
#include "parley/http.h"
#include "testutil.h"

/* Follows local "$ref"s ("#/components/schemas/X") to the object named. */
static json_t *deref(json_t *doc, json_t *v)
{
    for (int hops = 0; hops < 8 && json_is_object(v); hops++) {
        const char *ref = json_string_value(json_object_get(v, "$ref"));
        if (ref == NULL)
            return v;
        if (strncmp(ref, "#/", 2) != 0)
            return NULL;
        json_t *at = doc;
        char part[128];
        for (const char *p = ref + 2; *p && at != NULL;) {
            size_t k = strcspn(p, "/");
            if (k >= sizeof(part))
                return NULL;
            memcpy(part, p, k);
            part[k] = '\0';
            at = json_object_get(at, part);
            p += k;
            if (*p == '/')
                p++;
        }
        v = at;
    }
    return json_is_object(v) ? v : NULL;
}

/* Adds "name," for each name of `list` (comma-separated) to a set kept as
 * a JSON object. False on an empty or malformed name or a repeated one. */
static bool list_to_set(const char *list, json_t *set)
{
    for (const char *p = list; *p;) {
        size_t k = strcspn(p, ",");
        if (k == 0 || k > 63)
            return false;
        char name[64];
        memcpy(name, p, k);
        name[k] = '\0';
        for (size_t i = 0; i < k; i++)
            if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
                  name[i] == '_'))
                return false;
        if (json_object_get(set, name) != NULL)
            return false;
        json_object_set_new(set, name, json_true());
        p += k;
        if (*p == ',' && *++p == '\0')
            return false;
    }
    return true;
}

/* The names of a set, sorted and comma-separated, into out. */
static void set_text(json_t *set, char *out, size_t size)
{
    const char *names[128];
    size_t n = 0;
    const char *key;
    json_t *value;
    json_object_foreach(set, key, value) {
        if (n < 128)
            names[n++] = key;
    }
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%s", i ? "," : "", names[i]);
    }
}

/* Whether two sets hold the same names. */
static bool same_set(json_t *a, json_t *b)
{
    if (json_object_size(a) != json_object_size(b))
        return false;
    const char *key;
    json_t *value;
    json_object_foreach(a, key, value) {
        if (json_object_get(b, key) == NULL)
            return false;
    }
    return true;
}

/* Fails the test unless the two sets (both consumed) hold the same names. */
static void expect_same(const http_route_t *r, const char *what, json_t *declared,
                        json_t *documented)
{
    if (!same_set(declared, documented)) {
        char want[1024], got[1024];
        set_text(declared, want, sizeof(want));
        set_text(documented, got, sizeof(got));
        TEST_FAIL_("%s %s: the route reads %s \"%s\", docs/openapi.json lists \"%s\"",
                   r->method, r->pattern, what, want, got);
    }
    json_decref(declared);
    json_decref(documented);
}

/* The operation's query parameters (its own and its path's). */
static json_t *openapi_query(json_t *doc, json_t *path_item, json_t *op)
{
    json_t *set = json_object();
    json_t *lists[2] = {json_object_get(path_item, "parameters"), json_object_get(op, "parameters")};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *p;
        json_array_foreach(lists[l], i, p) {
            json_t *param = deref(doc, p);
            if (param && strcmp(json_string_value(json_object_get(param, "in")) ?: "", "query") == 0)
                json_object_set_new(set, json_string_value(json_object_get(param, "name")),
                                    json_true());
        }
    }
    return set;
}

/* Adds the properties of schema (and of its allOf parts) to set; *closed
 * is set when the schema says additionalProperties: false. */
static void schema_properties(json_t *doc, json_t *schema, json_t *set, bool *closed)
{
    schema = deref(doc, schema);
    if (schema == NULL)
        return;
    if (json_is_false(json_object_get(schema, "additionalProperties")))
        *closed = true;
    const char *key;
    json_t *value;
    json_object_foreach(json_object_get(schema, "properties"), key, value) {
        json_object_set_new(set, key, json_true());
    }
    size_t i;
    json_t *part;
    bool ignored;
    json_array_foreach(json_object_get(schema, "allOf"), i, part) {
        schema_properties(doc, part, set, &ignored);
    }
}

TEST(every_route_declares_its_query_parameters_and_body_fields)
{
    int n = 0;
    for (size_t t = 0; api_route_tables[t]; t++) {
        for (const http_route_t *r = api_route_tables[t]; r->method; r++, n++) {
            if (r->query == NULL || r->body == NULL)
                TEST_FAIL_("%s %s declares no %s list (http_route_t; \"\" for none)", r->method,
                           r->pattern, r->query == NULL ? "query" : "body");
            json_t *q = json_object(), *b = json_object();
            if (!list_to_set(r->query, q))
                TEST_FAIL_("%s %s: malformed query list \"%s\"", r->method, r->pattern, r->query);
            if (strcmp(r->body, HTTP_FIELDS_OWN) != 0 && !list_to_set(r->body, b))
                TEST_FAIL_("%s %s: malformed body list \"%s\"", r->method, r->pattern, r->body);
            if (strcmp(r->method, "GET") == 0 && r->body[0] != '\0')
                TEST_FAIL_("%s %s: a GET takes no body fields", r->method, r->pattern);
            json_decref(q);
            json_decref(b);
        }
    }
    ASSERT_GT(n, 80);
}

TEST(openapi_lists_what_each_route_declares)
{
    json_t *doc = ut_openapi_doc();
    int checked = 0;
    for (size_t t = 0; api_route_tables[t]; t++) {
        for (const http_route_t *r = api_route_tables[t]; r->method; r++) {
            json_t *path_item;
            json_t *op = ut_openapi_operation(doc, r, &path_item);
            if (op == NULL || r->query == NULL || r->body == NULL)
                continue; /* the test above and openapi_describes_every_route say so */
            json_t *declared = json_object();
            list_to_set(r->query, declared);
            expect_same(r, "query", declared, openapi_query(doc, path_item, op));

            json_t *content = json_object_get(json_object_get(op, "requestBody"), "content");
            json_t *schema = json_object_get(
                json_object_get(content, (r->flags & HTTP_ROUTE_UPLOAD) ? "multipart/form-data"
                                                                        : "application/json"),
                "schema");
            bool own = strcmp(r->body, HTTP_FIELDS_OWN) == 0;
            if (r->body[0] == '\0') {
                if (content != NULL)
                    TEST_FAIL_("%s %s takes no body fields, docs/openapi.json has a requestBody",
                               r->method, r->pattern);
                continue;
            }
            if (schema == NULL)
                TEST_FAIL_("%s %s reads body fields, docs/openapi.json has no request schema",
                           r->method, r->pattern);
            declared = json_object();
            json_t *documented = json_object();
            bool closed = false;
            if (!own)
                list_to_set(r->body, declared);
            schema_properties(doc, schema, documented, &closed);
            if (!closed)
                TEST_FAIL_("%s %s: its request schema in docs/openapi.json lacks "
                           "additionalProperties: false",
                           r->method, r->pattern);
            if (own) {
                json_decref(declared);
                json_decref(documented);
            } else {
                expect_same(r, "body", declared, documented);
            }
            checked++;
        }
    }
    ASSERT_GT(checked, 30);
    json_decref(doc);
}
