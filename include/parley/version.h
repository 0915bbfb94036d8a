/* The version Parley reports in `parley version` and GET /api/health. */
#ifndef PARLEY_VERSION_H
#define PARLEY_VERSION_H

#define PARLEY_VERSION "0.1.0"

#endif
