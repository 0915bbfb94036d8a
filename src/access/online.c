/*
 * Who is online: the number of live real-time connections (WebSockets and
 * event streams) each user holds. It lives below both the HTTP resources and
 * the real-time service because both read it: the user object's "status"
 * says "online" while the count is above zero, and the real-time service
 * counts connections in and out (and announces the first and the last).
 *
 * One process-wide table under one mutex: it changes only when a connection
 * opens or closes, and a lookup is a binary search over the sorted ids.
 * Kept in memory only: after a restart everyone is offline until they
 * reconnect.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/access.h"
#include "parley/xalloc.h"

typedef struct online_entry {
    char user_id[STORE_ID_MAX];
    unsigned connections;
} online_entry_t;

static pthread_mutex_t online_mu = PTHREAD_MUTEX_INITIALIZER; /* guards the three below */
static online_entry_t *entries;                               /* sorted by user_id */
static size_t n_entries, cap_entries;

/* The slot of user_id, or where it would go. REQUIRES: online_mu held. */
static size_t find_slot(const char *user_id, bool *found)
{
    size_t lo = 0, hi = n_entries;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(entries[mid].user_id, user_id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static bool online_connected(const char *user_id)
{
    pthread_mutex_lock(&online_mu);
    bool found;
    find_slot(user_id, &found); /* an entry exists only while connections > 0 */
    pthread_mutex_unlock(&online_mu);
    return found;
}

const char *online_status(const char *user_id)
{
    return online_connected(user_id) ? "online" : "offline";
}

bool online_join(const char *user_id)
{
    pthread_mutex_lock(&online_mu);
    bool found;
    size_t i = find_slot(user_id, &found);
    if (found) {
        entries[i].connections++;
        pthread_mutex_unlock(&online_mu);
        return false;
    }
    if (n_entries == cap_entries) {
        cap_entries = cap_entries ? cap_entries * 2 : 64;
        entries = xreallocarray(entries, cap_entries, sizeof(*entries));
    }
    memmove(&entries[i + 1], &entries[i], (n_entries - i) * sizeof(*entries));
    snprintf(entries[i].user_id, STORE_ID_MAX, "%s", user_id);
    entries[i].connections = 1;
    n_entries++;
    pthread_mutex_unlock(&online_mu);
    return true;
}

bool online_leave(const char *user_id)
{
    pthread_mutex_lock(&online_mu);
    bool found;
    size_t i = find_slot(user_id, &found);
    bool last = false;
    if (found && --entries[i].connections == 0) {
        memmove(&entries[i], &entries[i + 1], (n_entries - i - 1) * sizeof(*entries));
        n_entries--;
        last = true;
    }
    pthread_mutex_unlock(&online_mu);
    return last;
}
