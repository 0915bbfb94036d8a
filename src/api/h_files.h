/* What other handlers need from the files handlers (h_files.c). */
#ifndef PARLEY_HTTP_H_FILES_H
#define PARLEY_HTTP_H_FILES_H

#include "parley/app.h"
#include "parley/files.h"

/* Deletes a live file: a durable deletion record, then its blob when no
 * live file names it any more. Returns 0 or a STORE_E_* code. */
int file_remove(parley_app_t *app, store_file_t *f);

/* Deletes every live file of a channel (the channel is being deleted).
 * Returns 0 or the first STORE_E_* code met. */
int file_remove_channel_files(parley_app_t *app, const char *channel_id);

/* Deletes the avatar file a replaced avatar_url named, when it is that
 * user's avatar upload (an avatar_url set by PUT /users/me may name any
 * file, or none: then nothing happens). */
void file_drop_avatar(parley_app_t *app, const char *user_id, const char *url);

#endif
