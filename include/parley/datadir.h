/* The data directory and its lock. */
#ifndef PARLEY_DATADIR_H
#define PARLEY_DATADIR_H

#include <stddef.h>

/*
 * Creates `dir` (and its parents, mode 0700) when missing, and takes an
 * exclusive flock on `dir`/LOCK, writing this process's pid into it. The lock
 * lives as long as the returned descriptor (and dies with the process, so a
 * crash never leaves a stale lock).
 *
 * Returns the descriptor, or -1 with a one-line reason in err: another
 * process holds the lock (its pid is named), or the directory cannot be
 * created or opened.
 */
int datadir_lock(const char *dir, char *err, size_t err_size);

/* Releases the lock taken by datadir_lock(). */
void datadir_unlock(int fd);

#endif
