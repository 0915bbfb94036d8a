/* placeholder */
#include <stdio.h>

#include "parley/tools.h"

int rekey_command(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 1;
}

int encrypt_command(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 1;
}
