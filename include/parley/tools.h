/* Offline commands of the parley binary (run on a data directory). */
#ifndef PARLEY_TOOLS_H
#define PARLEY_TOOLS_H

/* `parley wal inspect|check|repair <data-dir>`; argv starts after "wal".
 * Returns the exit code. */
int wal_command(int argc, char **argv);

/* `parley user create|promote ...`; argv starts after "user". */
int user_command(int argc, char **argv);

/* `parley files check <data-dir>`; argv starts after "files". */
int files_command(int argc, char **argv);

/* `parley backup ...` and `parley restore ...` (src/tools/backup_cmd.c);
 * argv starts after the command's name. Returns the exit status. */
int backup_command(int argc, char **argv);
int restore_command(int argc, char **argv);

#endif
