/*
 * `parley user create` and `parley user promote`: account administration on
 * a stopped server's data directory (the first admin of a closed server, a
 * lost admin role). They take the data-directory lock, so they refuse while a
 * server runs, recover the store exactly as the server does, make their
 * change through the same mutation path (a durable log record), and close
 * the store, which writes a snapshot. The password is read from the first
 * line of standard input, never from the command line (where `ps` shows it).
 * An encrypted directory needs --encryption-key-file, checked as `serve`
 * checks it.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "parley/auth.h"
#include "parley/clock.h"
#include "parley/datadir.h"
#include "parley/rules.h"
#include "parley/store.h"
#include "parley/tools.h"

static void usage(void)
{
    fprintf(stderr,
            "usage: parley user create --data-dir DIR --username NAME --email EMAIL [--admin]\n"
            "                          [--display-name NAME]   (password on standard input)\n"
            "       parley user promote --data-dir DIR USERNAME\n"
            "       (both take --encryption-key-file FILE for an encrypted DIR)\n");
}

/* The data key from --encryption-key-file (NULL: none given). */
static const uint8_t *tool_key;

/* Locks the directory and opens the store; 0, 1 or 2 (a key problem; reason
 * printed). */
static int open_dir(const char *dir, int *lock, store_t **store)
{
    char err[512];
    if (crypt_dir_check(dir, tool_key, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "parley: %s\n", err);
        return 2;
    }
    *lock = datadir_lock(dir, err, sizeof(err));
    if (*lock < 0 || crypt_dir_init(dir, tool_key, err, sizeof(err)) != 0) {
        fprintf(stderr, "parley: %s\n", err);
        datadir_unlock(*lock);
        return 1;
    }
    store_options_t so = {.fsync = WAL_FSYNC_ALWAYS, .encryption_key = tool_key};
    if (store_open(store, dir, &so, err, sizeof(err)) != 0) {
        fprintf(stderr, "parley: %s\n", err);
        datadir_unlock(*lock);
        return 1;
    }
    return 0;
}

static int close_dir(int lock, store_t *store, int rc)
{
    if (store_close(store) != 0) {
        fprintf(stderr, "parley: closing the store failed\n");
        rc = 1;
    }
    datadir_unlock(lock);
    return rc;
}

static int read_password(char *out, size_t size)
{
    if (fgets(out, (int)size, stdin) == NULL)
        return -1;
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

static int cmd_create(const char *dir, const char *username, const char *email, bool admin,
                      const char *display_name)
{
    if (!rules_username_ok(username)) {
        fprintf(stderr, "parley: username must be 3-32 characters of letters, digits, _ . -\n");
        return 2;
    }
    if (!rules_email_ok(email)) {
        fprintf(stderr, "parley: email is not a valid address\n");
        return 2;
    }
    char password[AUTH_PASSWORD_MAX_BYTES + 2];
    if (isatty(STDIN_FILENO))
        fprintf(stderr, "password: ");
    if (read_password(password, sizeof(password)) != 0 || !rules_password_ok(password)) {
        fprintf(stderr, "parley: give a password of 8-128 characters on standard input\n");
        return 2;
    }
    store_user_t u;
    memset(&u, 0, sizeof(u));
    store_new_id("usr", u.id);
    snprintf(u.username, sizeof(u.username), "%s", username);
    snprintf(u.email, sizeof(u.email), "%s", email);
    if (auth_password_hash(password, u.password_hash, sizeof(u.password_hash)) != AUTH_OK) {
        fprintf(stderr, "parley: could not hash the password\n");
        return 1;
    }
    explicit_bzero(password, sizeof(password));
    u.display_name = display_name ? strdup(display_name) : NULL;
    u.is_admin = admin;
    u.is_active = true;
    u.created_at = u.updated_at = clock_wall_ms();

    int lock;
    store_t *store;
    int opened = open_dir(dir, &lock, &store);
    if (opened != 0) {
        store_user_clear(&u);
        return opened;
    }
    uint64_t lsn;
    int rc = store_user_create(store, &u, true, &lsn);
    if (rc == 0)
        rc = store_wait(store, lsn);
    if (rc == STORE_E_CONFLICT_USERNAME || rc == STORE_E_CONFLICT_EMAIL)
        fprintf(stderr, "parley: that %s is taken\n",
                rc == STORE_E_CONFLICT_USERNAME ? "username" : "email");
    else if (rc != 0)
        fprintf(stderr, "parley: the change could not be saved\n");
    else
        printf("created user %s (%s)%s\n", u.username, u.id, u.is_admin ? " as admin" : "");
    store_user_clear(&u);
    return close_dir(lock, store, rc == 0 ? 0 : 1);
}

static int make_admin(void *ctx, store_user_t *u)
{
    (void)ctx;
    u->is_admin = true;
    u->updated_at = clock_wall_ms();
    return 0;
}

static int cmd_promote(const char *dir, const char *username)
{
    int lock;
    store_t *store;
    int opened = open_dir(dir, &lock, &store);
    if (opened != 0)
        return opened;
    store_user_t u;
    int rc = 0;
    if (!store_user_find(store, username, &u) || strcasecmp(u.username, username) != 0) {
        fprintf(stderr, "parley: no user named %s\n", username);
        return close_dir(lock, store, 1);
    }
    if (u.is_admin) {
        printf("%s is already an admin\n", u.username);
    } else {
        uint64_t lsn;
        rc = store_user_modify(store, u.id, make_admin, NULL, NULL, &lsn);
        if (rc == 0)
            rc = store_wait(store, lsn);
        if (rc == 0)
            printf("%s is now an admin\n", u.username);
        else
            fprintf(stderr, "parley: the change could not be saved\n");
    }
    store_user_clear(&u);
    return close_dir(lock, store, rc == 0 ? 0 : 1);
}

int user_command(int argc, char **argv)
{
    static uint8_t key[CRYPT_KEY_BYTES];
    bool have_key;
    if (crypt_key_option(&argc, argv, key, &have_key, "--encryption-key-file") != 0)
        return 2;
    tool_key = have_key ? key : NULL;
    if (argc < 1) {
        usage();
        return 2;
    }
    const char *dir = NULL, *username = NULL, *email = NULL, *display = NULL, *positional = NULL;
    bool admin = false;
    for (int i = 1; i < argc; i++) {
        const char **slot = NULL;
        if (strcmp(argv[i], "--data-dir") == 0)
            slot = &dir;
        else if (strcmp(argv[i], "--username") == 0)
            slot = &username;
        else if (strcmp(argv[i], "--email") == 0)
            slot = &email;
        else if (strcmp(argv[i], "--display-name") == 0)
            slot = &display;
        else if (strcmp(argv[i], "--admin") == 0)
            admin = true;
        else if (argv[i][0] != '-' && positional == NULL)
            positional = argv[i];
        else {
            usage();
            return 2;
        }
        if (slot) {
            if (i + 1 >= argc) {
                usage();
                return 2;
            }
            *slot = argv[++i];
        }
    }
    if (dir == NULL)
        dir = "./data";
    if (strcmp(argv[0], "create") == 0 && username && email && !positional)
        return cmd_create(dir, username, email, admin, display);
    if (strcmp(argv[0], "promote") == 0 && positional && !username && !email)
        return cmd_promote(dir, positional);
    usage();
    return 2;
}
