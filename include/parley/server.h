/* `parley serve`: runs the HTTP server until SIGTERM or SIGINT. */
#ifndef PARLEY_SERVER_H
#define PARLEY_SERVER_H

#include "parley/config.h"

/* Returns the process exit code: 0 after a clean shutdown, 1 when the server
 * could not start (the reason is logged), 2 when the TLS certificate or key
 * is wrong (logged; nothing was written to the data directory). */
int server_run(const parley_config_t *cfg);

#endif
