/* arch.h: selects the architecture header; generic code includes this. */
#ifndef GORT_ARCH_H
#define GORT_ARCH_H
#if defined(__x86_64__)
#include "arch_amd64.h"
#else
#error "gort: unsupported architecture (x86-64 only for now)"
#endif
#endif
