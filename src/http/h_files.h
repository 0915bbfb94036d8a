/* What other handlers need from the files handlers (h_files.c). */
#ifndef PARLEY_HTTP_H_FILES_H
#define PARLEY_HTTP_H_FILES_H

#include "parley/app.h"
#include "parley/files.h"

/* Deletes a live file: a durable deletion record, then its blob when no
 * live file names it any more. Returns 0 or a STORE_E_* code. */
int file_remove(parley_app_t *app, store_file_t *f);

#endif
