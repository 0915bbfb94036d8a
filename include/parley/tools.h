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

/* ---- encryption at rest (keys.c, rekey.c) ---- */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRYPT_KEY_BYTES 32

/* `parley keygen [--out FILE]`: a new key as 64 hex digits (mode 0600, never
 * over an existing file). */
int keygen_command(int argc, char **argv);

/* Reads a key file: 32 raw bytes or 64 hex digits (+ newline); a regular
 * file that group and others cannot read. 0, or -1 with one line in err. */
int crypt_key_load(const char *path, uint8_t key[CRYPT_KEY_BYTES], char *err, size_t err_size);

/* Whether `dir` may be opened with `key` (NULL: none), changing nothing:
 * the wrong key, no key for an encrypted directory, a key for a plain one
 * with data, or an unfinished rekey/encrypt: -1 with one line in err
 * (naming key_file when given). */
int crypt_dir_check(const char *dir, const uint8_t *key, const char *key_file, char *err,
                    size_t err_size);

/* Marks `dir` encrypted with `key` when it is not yet (key NULL: nothing).
 * Call under the directory's lock after crypt_dir_check. */
int crypt_dir_init(const char *dir, const uint8_t *key, char *err, size_t err_size);

/* <dir>/ENCRYPTION<suffix>: 1 with the key id, 0 absent, -1 malformed. */
int crypt_mark_read(const char *dir, const char *suffix, char id_hex[33]);
/* Writes it for `key` (temp, fsync, rename, fsync dir). 0 or -errno. */
int crypt_mark_write(const char *dir, const char *suffix, const uint8_t *key);
int crypt_sync_dir(const char *dir);
/* The directory has a log, snapshots or blobs. */
bool crypt_dir_has_data(const char *dir);

/* Removes `flag FILE` from argv (updating *argc) and loads the key into key
 * (*have true). Returns 0, or 2 after printing why. */
int crypt_key_option(int *argc, char **argv, uint8_t key[CRYPT_KEY_BYTES], bool *have,
                     const char *flag);

/* blobs_set_key with the key's id (NULL: plain). */
struct blobs;
void crypt_blobs_key(struct blobs *b, const uint8_t *key);

/* `parley rekey --data-dir D --old-key F --new-key G` and
 * `parley encrypt --data-dir D --key F` (rekey.c). */
int rekey_command(int argc, char **argv);
int encrypt_command(int argc, char **argv);

#endif
