/*
 * base.h: what every runtime header needs: the system and layer headers, the
 * attribute macros, the runtime's limits and the forward declarations of its
 * structs (each defined in the header of its concept).
 */
#ifndef GORT_RUNTIME_BASE_H
#define GORT_RUNTIME_BASE_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#if defined(GORT_TSAN)
#include <sanitizer/tsan_interface.h>
/* TSan's dynamic annotations (libtsan exports them; no header declares
 * them).  Reads between Begin and End on this thread are not recorded;
 * writes and synchronization still are. */
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
#define GORT_TSAN_IGNORE_READS_BEGIN() AnnotateIgnoreReadsBegin(__FILE__, __LINE__)
#define GORT_TSAN_IGNORE_READS_END() AnnotateIgnoreReadsEnd(__FILE__, __LINE__)
#else
#define GORT_TSAN_IGNORE_READS_BEGIN() ((void)0)
#define GORT_TSAN_IGNORE_READS_END() ((void)0)
#endif

#include "arch.h"
#include "gort.h"
#include "hooks.h"
#include "lockrank.h"

#define GORT_HIDDEN __attribute__((visibility("hidden")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define GORT_MAX_PROCS 1024
#define GORT_RUNQ_SIZE 256
#define GORT_MAX_MS 10000

typedef struct gort_g gort_g_t;
typedef struct gort_m gort_m_t;
typedef struct gort_p gort_p_t;
typedef struct gort_sudog gort_sudog_t;
typedef struct gort__timer gort__timer_t;

#endif /* GORT_RUNTIME_BASE_H */
