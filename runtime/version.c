/*
 * version.c: gort_version, the library's own version string.
 *
 * The version lives in include/gort.h alone (GORT_VERSION_*); a program
 * compares GORT_VERSION_STRING, what it was compiled against, with this,
 * what it runs with.  The SONAME carries the major version, which moves
 * with every incompatible ABI change (make abi-check), so within one
 * SONAME only MINOR and PATCH differ.
 */
#include "runtime.h"

const char *gort_version(void)
{
    gort__fork_check();
    return GORT_VERSION_STRING;
}
