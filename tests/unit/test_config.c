/* Configuration: precedence (flag > env > file > default), every bad value
 * refused with a message naming the setting. */
#include <unistd.h>

#include "../test.h"
#include "testutil.h"
#include "parley/config.h"

static int load(parley_config_t *cfg, char **argv, char **envp, char *err)
{
    int argc = 0;
    while (argv && argv[argc])
        argc++;
    return config_load(cfg, argc, argv, envp, err);
}

static const char *write_file(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/parley-config-test-%d.json", (int)getpid());
    tu_write(path, text, strlen(text));
    return path;
}

TEST(config_defaults_when_nothing_given)
{
    parley_config_t cfg;
    char err[CONFIG_ERR_MAX];
    ASSERT_EQ(load(&cfg, NULL, NULL, err), 0);
    ASSERT_STREQ(cfg.bind, "0.0.0.0");
    ASSERT_EQ(cfg.port, 7575);
    ASSERT_STREQ(cfg.data_dir, "./data");
    ASSERT_EQ(cfg.log_level, LOG_LEVEL_INFO);
    ASSERT_GT(cfg.threads, 2);
}

TEST(config_flag_beats_env_beats_file)
{
    const char *path = write_file("{\"port\": 1111, \"threads\": 3, \"bind\": \"127.0.0.1\"}");
    char cfgarg[128];
    snprintf(cfgarg, sizeof(cfgarg), "--config=%s", path);
    char *argv[] = {cfgarg, "--port", "3333", NULL};
    char *envp[] = {"PARLEY_PORT=2222", "PARLEY_THREADS=5", "OTHER=1", NULL};
    parley_config_t cfg;
    char err[CONFIG_ERR_MAX];
    ASSERT_EQ(load(&cfg, argv, envp, err), 0);
    ASSERT_EQ(cfg.port, 3333);          /* flag */
    ASSERT_EQ(cfg.threads, 5);          /* env over file */
    ASSERT_STREQ(cfg.bind, "127.0.0.1"); /* file over default */
    unlink(path);
}

TEST(config_file_named_by_environment)
{
    const char *path = write_file("{\"log_level\": \"debug\", \"data_dir\": \"/tmp/x\"}");
    char env[128];
    snprintf(env, sizeof(env), "PARLEY_CONFIG=%s", path);
    char *envp[] = {env, NULL};
    parley_config_t cfg;
    char err[CONFIG_ERR_MAX];
    ASSERT_EQ(load(&cfg, NULL, envp, err), 0);
    ASSERT_EQ(cfg.log_level, LOG_LEVEL_DEBUG);
    ASSERT_STREQ(cfg.data_dir, "/tmp/x");
    unlink(path);
}

TEST(config_bad_values_name_the_setting)
{
    struct {
        char *arg;
        const char *expect;
    } cases[] = {
        {"--port=0", "port"},
        {"--port=65536", "port"},
        {"--port=12ab", "port"},
        {"--port=-1", "port"},
        {"--port=", "port"},
        {"--threads=0", "threads"},
        {"--threads=99999", "threads"},
        {"--bind=localhost", "bind"},
        {"--bind=1.2.3.4.5", "bind"},
        {"--log-level=loud", "log_level"},
        {"--max-body-bytes=10", "max_body_bytes"},
        {"--data-dir=", "data_dir"},
        {"--idle-timeout=0", "idle_timeout"},
        {"--nonsense=1", "unknown argument"},
        {"--fsync=sometimes", "fsync"},
        {"--access-token-ttl=0", "access_token_ttl"},
        {"--refresh-token-ttl=5", "refresh_token_ttl"},
        {"--rate-limit=-1", "rate_limit"},
        {"--port", "needs a value"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *argv[] = {cases[i].arg, NULL};
        parley_config_t cfg;
        char err[CONFIG_ERR_MAX];
        if (load(&cfg, argv, NULL, err) == 0)
            TEST_FAIL_("%s was accepted", cases[i].arg);
        ASSERT_CONTAINS(err, cases[i].expect);
        ASSERT_NULL(strchr(err, '\n'));
    }
}

TEST(config_connection_limit_must_cover_the_threads)
{
    char *argv[] = {"--threads=64", "--max-connections=32", NULL};
    parley_config_t cfg;
    char err[CONFIG_ERR_MAX];
    ASSERT_EQ(load(&cfg, argv, NULL, err), -1);
    ASSERT_CONTAINS(err, "max_connections");
    char *ok[] = {"--threads=16", "--max-connections=16", NULL};
    ASSERT_EQ(load(&cfg, ok, NULL, err), 0);
}

TEST(config_bad_env_names_variable)
{
    char *envp[] = {"PARLEY_PORT=http", NULL};
    parley_config_t cfg;
    char err[CONFIG_ERR_MAX];
    ASSERT_EQ(load(&cfg, NULL, envp, err), -1);
    ASSERT_CONTAINS(err, "PARLEY_PORT");
}

TEST(config_bad_files_refused)
{
    const char *bodies[][2] = {
        {"{\"port\": \"x\"}", "port"},
        {"{\"port\": true}", "port"},
        {"{\"port\": 1.5}", "port"},
        {"{\"colour\": 1}", "unknown setting 'colour'"},
        {"[1,2]", "JSON object"},
        {"{\"port\": 1", "config file"},
        {"{\"port\": 1, \"port\": 2}", "config file"},
        {"{\"bind\": 5}", "bind"},
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        const char *path = write_file(bodies[i][0]);
        char arg[128];
        snprintf(arg, sizeof(arg), "--config=%s", path);
        char *argv[] = {arg, NULL};
        parley_config_t cfg;
        char err[CONFIG_ERR_MAX];
        if (load(&cfg, argv, NULL, err) == 0)
            TEST_FAIL_("config file %s was accepted", bodies[i][0]);
        ASSERT_CONTAINS(err, bodies[i][1]);
        unlink(path);
    }
    char *argv[] = {"--config=/nonexistent/parley.json", NULL};
    parley_config_t cfg;
    char err[CONFIG_ERR_MAX];
    ASSERT_EQ(load(&cfg, argv, NULL, err), -1);
    ASSERT_CONTAINS(err, "/nonexistent/parley.json");
}

TEST(config_store_and_token_settings)
{
    char *argv[] = {"--fsync=batch", "--access-token-ttl=2", "--snapshot-every-records=0",
                    "--rate-limit=0", NULL};
    parley_config_t cfg;
    char err[CONFIG_ERR_MAX];
    ASSERT_EQ(load(&cfg, argv, NULL, err), 0);
    ASSERT_EQ(cfg.fsync, FSYNC_BATCH);
    ASSERT_EQ(cfg.access_token_ttl, 2);
    ASSERT_EQ(cfg.snapshot_every_records, 0);
    ASSERT_EQ(cfg.rate_limit, 0);
    config_defaults(&cfg);
    ASSERT_EQ(cfg.fsync, FSYNC_ALWAYS);
    ASSERT_EQ(cfg.access_token_ttl, 900);
}

TEST(config_rate_limits_by_category)
{
    parley_config_t cfg;
    char err[CONFIG_ERR_MAX];
    /* The defaults of every category. */
    ASSERT_EQ(load(&cfg, NULL, NULL, err), 0);
    ASSERT_EQ(cfg.rate_limit, 600);
    ASSERT_EQ(cfg.rate_limit_auth, 10);
    ASSERT_EQ(cfg.rate_limit_messages, 100);
    ASSERT_EQ(cfg.rate_limit_uploads, 20);
    ASSERT_EQ(cfg.rate_limit_search, 50);
    ASSERT_EQ(cfg.rate_limit_admin, 200);
    ASSERT_TRUE(!config_given(&cfg, "rate_limit"));

    /* Each from a flag, the environment or the file. */
    const char *path = write_file("{\"rate_limit_uploads\": 7, \"rate_limit_admin\": 9}");
    char cfgarg[128];
    snprintf(cfgarg, sizeof(cfgarg), "--config=%s", path);
    char *argv[] = {cfgarg, "--rate-limit-search", "3", "--rate-limit-auth=0", NULL};
    char *envp[] = {"PARLEY_RATE_LIMIT_MESSAGES=5", "PARLEY_RATE_LIMIT_ADMIN=11", NULL};
    ASSERT_EQ(load(&cfg, argv, envp, err), 0);
    ASSERT_EQ(cfg.rate_limit, 600);
    ASSERT_EQ(cfg.rate_limit_auth, 0);
    ASSERT_EQ(cfg.rate_limit_messages, 5);
    ASSERT_EQ(cfg.rate_limit_uploads, 7);
    ASSERT_EQ(cfg.rate_limit_search, 3);
    ASSERT_EQ(cfg.rate_limit_admin, 11); /* env over file */
    ASSERT_TRUE(config_given(&cfg, "rate_limit_search"));
    ASSERT_TRUE(!config_given(&cfg, "rate_limit"));
    ASSERT_TRUE(!config_given(&cfg, "no_such_setting"));
    unlink(path);

    /* `--rate-limit 0` alone: everything off, as it always meant... */
    char *off[] = {"--rate-limit", "0", NULL};
    ASSERT_EQ(load(&cfg, off, NULL, err), 0);
    ASSERT_EQ(cfg.rate_limit, 0);
    ASSERT_EQ(cfg.rate_limit_auth, 0);
    ASSERT_EQ(cfg.rate_limit_messages, 0);
    ASSERT_EQ(cfg.rate_limit_uploads, 0);
    ASSERT_EQ(cfg.rate_limit_search, 0);
    ASSERT_EQ(cfg.rate_limit_admin, 0);
    /* ...but a category given its own value keeps it, even its default. */
    char *some[] = {"--rate-limit", "0", "--rate-limit-search=3", "--rate-limit-auth=10", NULL};
    ASSERT_EQ(load(&cfg, some, NULL, err), 0);
    ASSERT_EQ(cfg.rate_limit, 0);
    ASSERT_EQ(cfg.rate_limit_search, 3);
    ASSERT_EQ(cfg.rate_limit_auth, 10);
    ASSERT_EQ(cfg.rate_limit_messages, 0);
    /* A later --rate-limit wins over an earlier 0: the defaults are back. */
    char *later[] = {"--rate-limit", "0", "--rate-limit", "30", NULL};
    ASSERT_EQ(load(&cfg, later, NULL, err), 0);
    ASSERT_EQ(cfg.rate_limit, 30);
    ASSERT_EQ(cfg.rate_limit_auth, 10);

    char *bad[] = {"--rate-limit-messages=-1", NULL};
    ASSERT_EQ(load(&cfg, bad, NULL, err), -1);
    ASSERT_CONTAINS(err, "rate_limit_messages");
    char *big[] = {"--rate-limit-admin=1000001", NULL};
    ASSERT_EQ(load(&cfg, big, NULL, err), -1);
    ASSERT_CONTAINS(err, "rate_limit_admin");
}

TEST(config_ipv6_bind_accepted)
{
    char *argv[] = {"--bind", "::1", NULL};
    parley_config_t cfg;
    char err[CONFIG_ERR_MAX];
    ASSERT_EQ(load(&cfg, argv, NULL, err), 0);
    ASSERT_STREQ(cfg.bind, "::1");
}

TEST(config_help_lists_every_flag_and_variable)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_print_help(f);
    fclose(f);
    const char *names[] = {"--bind", "PARLEY_BIND", "--port", "PARLEY_PORT", "--data-dir",
                           "PARLEY_DATA_DIR", "--threads", "PARLEY_THREADS", "--log-level",
                           "PARLEY_LOG_LEVEL", "--max-body-bytes", "--config", "PARLEY_CONFIG"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        ASSERT_CONTAINS(buf, names[i]);
    free(buf);
}

TEST(config_trusted_proxies_from_flag_env_and_file)
{
    parley_config_t cfg;
    char err[CONFIG_ERR_MAX];
    ASSERT_EQ(load(&cfg, NULL, NULL, err), 0);
    ASSERT_STREQ(cfg.trusted_proxies, "");
    char *env[] = {"PARLEY_TRUSTED_PROXIES=10.0.0.0/8, ::1", NULL};
    ASSERT_EQ(load(&cfg, NULL, env, err), 0);
    ASSERT_STREQ(cfg.trusted_proxies, "10.0.0.0/8, ::1");
    char *argv[] = {"--trusted-proxies", "127.0.0.1/32", NULL};
    ASSERT_EQ(load(&cfg, argv, env, err), 0);
    ASSERT_STREQ(cfg.trusted_proxies, "127.0.0.1/32");
    const char *path = write_file("{\"trusted_proxies\": \"192.0.2.0/24\"}");
    char cfgarg[128];
    snprintf(cfgarg, sizeof(cfgarg), "--config=%s", path);
    char *argv2[] = {cfgarg, NULL};
    ASSERT_EQ(load(&cfg, argv2, NULL, err), 0);
    ASSERT_STREQ(cfg.trusted_proxies, "192.0.2.0/24");
    write_file("{\"trusted_proxies\": [\"192.0.2.0/24\", \"::1\"]}");
    ASSERT_EQ(load(&cfg, argv2, NULL, err), 0);
    ASSERT_STREQ(cfg.trusted_proxies, "192.0.2.0/24,::1");
    write_file("{\"trusted_proxies\": [\"192.0.2.0/24\", 7]}");
    ASSERT_EQ(load(&cfg, argv2, NULL, err), -1);
    ASSERT_CONTAINS(err, "list of strings");
    unlink(path);
    static const char *const bad[] = {"--trusted-proxies=10.1.0.0/8", "--trusted-proxies=garbage",
                                      "--trusted-proxies=10.0.0.0/8,,::1",
                                      "--trusted-proxies=1.2.3.4/33"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *a[] = {(char *)bad[i], NULL};
        ASSERT_EQ(load(&cfg, a, NULL, err), -1);
        ASSERT_CONTAINS(err, "trusted_proxies");
    }
}

TEST(config_tls_needs_both_files_and_the_redirect_needs_tls)
{
    parley_config_t cfg;
    char err[CONFIG_ERR_MAX];
    char *none[] = {NULL};
    ASSERT_EQ(load(&cfg, none, NULL, err), 0);
    ASSERT_STREQ(cfg.tls_cert, "");
    ASSERT_EQ(cfg.tls_redirect_port, 0);
    ASSERT_EQ(cfg.hsts_max_age_seconds, 15552000);
    char *cert_only[] = {"--tls-cert", "/x.pem", NULL};
    ASSERT_EQ(load(&cfg, cert_only, NULL, err), -1);
    ASSERT_CONTAINS(err, "tls_cert without tls_key");
    char *key_env[] = {"PARLEY_TLS_KEY=/x.key", NULL};
    ASSERT_EQ(load(&cfg, none, key_env, err), -1);
    ASSERT_CONTAINS(err, "tls_key without tls_cert");
    char *redirect_only[] = {"--tls-redirect-port", "8080", NULL};
    ASSERT_EQ(load(&cfg, redirect_only, NULL, err), -1);
    ASSERT_CONTAINS(err, "tls_redirect_port");
    char *same_port[] = {"--port", "8443", "--tls-cert", "/x.pem", "--tls-key", "/x.key",
                         "--tls-redirect-port", "8443", NULL};
    ASSERT_EQ(load(&cfg, same_port, NULL, err), -1);
    ASSERT_CONTAINS(err, "HTTPS port itself");
    char *hsts[] = {"--hsts-max-age-seconds", "63072001", NULL};
    ASSERT_EQ(load(&cfg, hsts, NULL, err), -1);
    ASSERT_CONTAINS(err, "hsts_max_age_seconds");
    char *ok[] = {"--tls-cert", "/x.pem", "--tls-key", "/x.key", "--tls-redirect-port", "80",
                  "--hsts-max-age-seconds", "0", NULL};
    ASSERT_EQ(load(&cfg, ok, NULL, err), 0);
    ASSERT_STREQ(cfg.tls_cert, "/x.pem");
    ASSERT_STREQ(cfg.tls_key, "/x.key");
    ASSERT_EQ(cfg.tls_redirect_port, 80);
    ASSERT_EQ(cfg.hsts_max_age_seconds, 0);
}

TEST(config_cookie_secure_takes_its_three_values)
{
    parley_config_t cfg;
    char err[CONFIG_ERR_MAX];
    ASSERT_EQ(load(&cfg, NULL, NULL, err), 0);
    ASSERT_EQ(cfg.cookie_secure, CONFIG_COOKIE_SECURE_AUTO);
    char *always[] = {"--cookie-secure", "always", NULL};
    ASSERT_EQ(load(&cfg, always, NULL, err), 0);
    ASSERT_EQ(cfg.cookie_secure, CONFIG_COOKIE_SECURE_ALWAYS);
    char *env[] = {"PARLEY_COOKIE_SECURE=never", NULL};
    ASSERT_EQ(load(&cfg, NULL, env, err), 0);
    ASSERT_EQ(cfg.cookie_secure, CONFIG_COOKIE_SECURE_NEVER);
    const char *path = write_file("{\"cookie_secure\": \"ALWAYS\"}");
    char cfgarg[128];
    snprintf(cfgarg, sizeof(cfgarg), "--config=%s", path);
    char *file[] = {cfgarg, NULL};
    ASSERT_EQ(load(&cfg, file, NULL, err), 0);
    ASSERT_EQ(cfg.cookie_secure, CONFIG_COOKIE_SECURE_ALWAYS);
    write_file("{\"cookie_secure\": true}");
    ASSERT_EQ(load(&cfg, file, NULL, err), -1);
    ASSERT_CONTAINS(err, "cookie_secure");
    unlink(path);
    static const char *const bad[] = {"--cookie-secure=sometimes", "--cookie-secure=",
                                      "--cookie-secure=1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *a[] = {(char *)bad[i], NULL};
        ASSERT_EQ(load(&cfg, a, NULL, err), -1);
        ASSERT_CONTAINS(err, "cookie_secure");
        ASSERT_CONTAINS(err, "auto, always, never");
    }
}

TEST(config_metrics_bind_and_log_format)
{
    parley_config_t cfg;
    char err[CONFIG_ERR_MAX];
    ASSERT_EQ(load(&cfg, NULL, NULL, err), 0);
    ASSERT_STREQ(cfg.metrics_bind, "");
    ASSERT_EQ(cfg.log_format, LOG_FORMAT_TEXT);
    char *argv[] = {"--metrics-bind", "[::1]:9100", "--log-format", "JSON", NULL};
    ASSERT_EQ(load(&cfg, argv, NULL, err), 0);
    ASSERT_STREQ(cfg.metrics_bind, "[::1]:9100");
    ASSERT_EQ(cfg.log_format, LOG_FORMAT_JSON);
    char *env[] = {"PARLEY_METRICS_BIND=10.0.0.1:9100", "PARLEY_LOG_FORMAT=text", NULL};
    ASSERT_EQ(load(&cfg, NULL, env, err), 0);
    ASSERT_STREQ(cfg.metrics_bind, "10.0.0.1:9100");
    ASSERT_EQ(cfg.log_format, LOG_FORMAT_TEXT);

    char addr[64] = "untouched";
    uint16_t port = 7;
    bool v6 = true;
    ASSERT_EQ(config_parse_host_port("127.0.0.1:9100", addr, &port, &v6), 0);
    ASSERT_STREQ(addr, "127.0.0.1");
    ASSERT_EQ(port, 9100);
    ASSERT_TRUE(!v6);
    ASSERT_EQ(config_parse_host_port("[fe80::1]:1", addr, &port, &v6), 0);
    ASSERT_STREQ(addr, "fe80::1");
    ASSERT_EQ(port, 1);
    ASSERT_TRUE(v6);
    static const char *const bad[] = {
        "", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:-1",
        "127.0.0.1:80x", "::1:80", "[::1]", "[::1]80", "[]:80", "[127.0.0.1]:80",
        "localhost:80", ":80", "1.2.3.4:80:80", "[::1]:99999999999999999999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        strcpy(addr, "untouched");
        port = 7;
        if (config_parse_host_port(bad[i], addr, &port, &v6) == 0)
            TEST_FAIL_("'%s' was accepted", bad[i]);
        ASSERT_STREQ(addr, "untouched");
        ASSERT_EQ(port, 7);
    }
    char *bad_argv[] = {"--metrics-bind=localhost:9100", NULL};
    ASSERT_NE(load(&cfg, bad_argv, NULL, err), 0);
    ASSERT_CONTAINS(err, "metrics_bind");
    char *bad_fmt[] = {"--log-format=xml", NULL};
    ASSERT_NE(load(&cfg, bad_fmt, NULL, err), 0);
    ASSERT_CONTAINS(err, "log_format");
    ASSERT_NULL(strchr(err, '\n'));
}
