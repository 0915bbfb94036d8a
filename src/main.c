/*
 * parley: the command line. `serve` runs the server; `wal` inspects, checks
 * or repairs a data directory's log; `version` and `help` answer and exit. Each command owns its arguments; exit codes are 0 (done),
 * 1 (could not do it) and 2 (the command line or configuration is wrong).
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parley/config.h"
#include "parley/log.h"
#include "parley/server.h"
#include "parley/tools.h"
#include "parley/version.h"

extern char **environ;

static void usage(FILE *out)
{
    fprintf(out,
            "Parley %s: a self-hosted chat server.\n"
            "\n"
            "Usage:\n"
            "  parley serve [settings]   run the server\n"
            "  parley wal inspect DIR    one line per record of DIR's log and snapshots\n"
            "  parley wal check DIR      verify DIR's log and snapshots (exit 1 when damaged)\n"
            "  parley wal repair DIR     cut DIR's log at its last good record (server stopped)\n"
            "  parley user create --data-dir DIR --username NAME --email EMAIL [--admin]\n"
            "                            create an account (password on standard input)\n"
            "  parley files check DIR    verify DIR's uploaded files (server stopped)\n"
            "  parley backup --data-dir DIR --out FILE [--no-files]\n"
            "                            archive DIR (server stopped; else GET /api/v1/admin/backup)\n"
            "  parley backup --url URL [--api-key KEY] --out FILE [--no-files]\n"
            "                            archive a running server through its API (an admin key)\n"
            "  parley backup verify FILE check an archive against its manifest\n"
            "  parley restore FILE --data-dir NEW   verify, then restore into a new directory\n"
            "  (wal, files and user take --encryption-key-file FILE for an encrypted DIR)\n"
            "  parley keygen [--out FILE]\n"
            "                            a new data key (64 hex digits; FILE mode 0600)\n"
            "  parley rekey --data-dir DIR --old-key FILE --new-key FILE\n"
            "                            re-encrypt DIR under a new key (server stopped)\n"
            "  parley encrypt --data-dir DIR --key FILE\n"
            "                            encrypt a plain DIR (server stopped)\n"
            "  parley user promote --data-dir DIR NAME\n"
            "                            make an account an admin (server stopped)\n"
            "  parley version            print the version\n"
            "  parley help               print this help\n"
            "\n",
            PARLEY_VERSION);
    config_print_help(out);
}

static int cmd_serve(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
    }
    static parley_config_t cfg;
    char err[CONFIG_ERR_MAX];
    if (config_load(&cfg, argc, argv, environ, err) != 0) {
        fprintf(stderr, "parley: %s\n", err);
        return 2;
    }
    log_set_format(cfg.log_format);
    log_init(cfg.log_level);
    int rc = server_run(&cfg);
    log_close();
    return rc;
}

int main(int argc, char **argv)
{
    /* glibc gives each thread that allocates its own arena (up to 8 per
     * core), and memory freed in one is not reused by the others: under
     * event-stream churn (scripts/soak.py, SOAK_LOAD=sse, 60 s, ~7,500
     * streams) RSS rose 96 -> 118 MB and kept rising with the default, and
     * stayed flat at 52.8 MB with 2 arenas. The environment's
     * MALLOC_ARENA_MAX, when set, still wins. */
    if (getenv("MALLOC_ARENA_MAX") == NULL)
        mallopt(M_ARENA_MAX, 2);
    /* A request allocates and frees a few hundred small blocks (jansson's
     * values, ulfius's maps), and glibc keeps only 7 freed blocks of a size
     * per thread before it goes to the arena under the arena's lock, shared
     * here by a whole pool of threads. 256 (glibc.malloc.tcache_count) cut
     * a durable post's instructions ~6% and the arena lock's waits
     * (docs/benchmarks.md, "Where the time goes"). glibc reads its tunables
     * from the environment at start only, so `serve` starts itself once
     * more with the variable set; an operator's own GLIBC_TUNABLES wins, and
     * if the exec fails the server runs as it is. */
    if (argc >= 2 && strcmp(argv[1], "serve") == 0 && getenv("GLIBC_TUNABLES") == NULL &&
        setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=256", 1) == 0)
        execv("/proc/self/exe", argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "wal") == 0)
        return wal_command(argc - 2, argv + 2);
    if (strcmp(cmd, "user") == 0)
        return user_command(argc - 2, argv + 2);
    if (strcmp(cmd, "files") == 0)
        return files_command(argc - 2, argv + 2);
    if (strcmp(cmd, "backup") == 0)
        return backup_command(argc - 2, argv + 2);
    if (strcmp(cmd, "restore") == 0)
        return restore_command(argc - 2, argv + 2);
    if (strcmp(cmd, "keygen") == 0)
        return keygen_command(argc - 2, argv + 2);
    if (strcmp(cmd, "rekey") == 0)
        return rekey_command(argc - 2, argv + 2);
    if (strcmp(cmd, "encrypt") == 0)
        return encrypt_command(argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("parley %s\n", PARLEY_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "parley: unknown command '%s' (see parley --help)\n", cmd);
    return 2;
}
