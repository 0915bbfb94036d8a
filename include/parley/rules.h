/* Rules for names that the server and the offline tools both enforce. */
#ifndef PARLEY_RULES_H
#define PARLEY_RULES_H

#include <stdbool.h>

/* A username: 3-32 of [A-Za-z0-9_.-]. */
bool rules_username_ok(const char *s);

/* A plausible email address: one '@', a non-empty local part, a dotted
 * domain, 3-254 bytes, no spaces, control characters or , ; < >. */
bool rules_email_ok(const char *s);

/* A password's length in code points must be 8-128 (the caller checks UTF-8). */
bool rules_password_ok(const char *s);

#endif
