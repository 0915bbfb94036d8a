/* Shared by the backup writer (backup.c) and reader (archive.c). */
#ifndef FILES_BACKUP_INTERNAL_H
#define FILES_BACKUP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

/* `s` is exactly n lowercase hex digits. */
bool backup__hex_name(const char *s, size_t n);

/* A top-level file of the data directory that belongs in an archive:
 * [A-Za-z0-9._-]{1,64}, no leading '.', not LOCK, not *.tmp, not the
 * archive's own manifest.json / settings.json. */
bool backup__top_name_ok(const char *n);

#endif
