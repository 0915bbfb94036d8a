/*
 * libFuzzer harness: the store's record codec and apply path, the code that
 * replays every log record at start-up. The first input byte picks the record
 * type (users, sessions, API keys, channels, memberships, messages, files,
 * reports, settings, invites, blocked addresses, or an unknown one), the rest is the
 * payload. A record must either be refused (STORE_E_CORRUPT) or applied; any
 * crash, leak or undefined behaviour is a finding, and an applied user must be
 * findable by its username afterwards.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "parley/chat.h"
#include "parley/files.h"
#include "parley/ip_blocks.h"
#include "parley/reports.h"
#include "parley/settings.h"
#include "parley/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static store_t *store;
static char dir[64];

static void cleanup(void)
{
    store_close(store);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (store == NULL) {
        snprintf(dir, sizeof(dir), "/dev/shm/parley-fuzz-store-XXXXXX");
        if (mkdtemp(dir) == NULL)
            abort();
        char err[256];
        store_options_t o = {.fsync = WAL_FSYNC_NONE};
        if (store_open(&store, dir, &o, err, sizeof(err)) != 0)
            abort();
        atexit(cleanup);
    }
    if (size < 1)
        return 0;
    static const uint8_t types[] = {STORE_REC_USER,    STORE_REC_SESSION,    STORE_REC_API_KEY,
                                    STORE_REC_CHANNEL, STORE_REC_MEMBERSHIP, STORE_REC_MESSAGE,
                                    STORE_REC_FILE,    STORE_REC_REPORT,     99};
    /* Bytes 0xfe, 0xff and 31 pick the settings, invite and blocked-address
     * records (added later: the other bytes keep the types the corpus was
     * made with). */
    uint8_t type = data[0] == 0xfe                 ? STORE_REC_SETTINGS
                   : data[0] == 0xff               ? STORE_REC_INVITE
                   : data[0] == STORE_REC_IP_BLOCK ? STORE_REC_IP_BLOCK
                                                   : types[data[0] % (sizeof(types) / sizeof(types[0]))];
    int rc = store_apply(store, type, data + 1, size - 1);
    if (rc != 0 && rc != STORE_E_CORRUPT)
        abort();
    if (rc == 0 && type == STORE_REC_USER) {
        /* An applied user is found by its id at once, and by its username
         * unless the account is deleted (which frees the name). */
        json_t *rec = json_loadb((const char *)data + 1, size - 1, 0, NULL);
        const char *id = json_string_value(json_object_get(rec, "id"));
        const char *name = json_string_value(json_object_get(rec, "username"));
        store_user_t u;
        if (id == NULL || name == NULL || !store_user_get(store, id, &u))
            abort();
        bool deleted = u.deleted_at != 0;
        store_user_clear(&u);
        if (name[0] && !deleted && !store_user_find(store, name, &u))
            abort();
        if (name[0] && !deleted)
            store_user_clear(&u);
        json_decref(rec);
    }
    return 0;
}
