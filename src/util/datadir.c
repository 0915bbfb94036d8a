/*
 * The data directory lock. Two servers writing one log would interleave
 * records and corrupt it, so `serve` (and, later, every offline tool that
 * writes) takes an exclusive flock(2) on <data>/LOCK first, as LevelDB does.
 * flock locks belong to the open file and vanish when the process dies, so a
 * crash or SIGKILL never leaves a lock behind to clear by hand. The pid
 * written into the file is only for the message a second process prints.
 */
#include "parley/datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir -p with mode 0700 for the directories it creates. */
static int make_dirs(const char *dir)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

int datadir_lock(const char *dir, char *err, size_t err_size)
{
    if (make_dirs(dir) != 0) {
        snprintf(err, err_size, "cannot create data directory '%s': %s", dir, strerror(errno));
        return -1;
    }
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/LOCK", dir) >= (int)sizeof(path)) {
        snprintf(err, err_size, "data directory path is too long");
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, err_size, "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            snprintf(err, err_size,
                     "data directory '%s' is in use by another parley process%s%s%s", dir,
                     pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
        else
            snprintf(err, err_size, "cannot lock '%s': %s", path, strerror(e));
        return -1;
    }
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        /* The pid is only informative; the lock itself is held. */
    }
    return fd;
}

void datadir_unlock(int fd)
{
    if (fd < 0)
        return;
    flock(fd, LOCK_UN);
    close(fd);
}
