/*
 * libFuzzer harness: the JSON config file reader. The input is written to an
 * in-memory file and loaded with --config; any crash, leak or undefined
 * behaviour is a finding, and an accepted file must leave every setting in
 * its documented range.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "parley/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("config", 0);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char arg[64];
    snprintf(arg, sizeof(arg), "--config=/proc/self/fd/%d", fd);
    char *argv[] = {arg, NULL};
    parley_config_t cfg;
    char err[CONFIG_ERR_MAX];
    if (config_load(&cfg, 1, argv, NULL, err) == 0) {
        if (cfg.port == 0 || cfg.threads == 0 || cfg.threads > 1024 || cfg.max_body_bytes < 1024 ||
            cfg.data_dir[0] == '\0')
            abort();
    }
    close(fd);
    return 0;
}
