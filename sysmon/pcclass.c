/*
 * pcclass.c: the PC classifier: which module a PC is in, and whether a
 * thread stopped there may be holding something we need.
 *
 * Three users ask the same question and so share this one table and this
 * one rule: preemption (may the SIGURG handler switch a goroutine whose
 * stack has a frame here?), the unwinder (may a signal handler run
 * libunwind on a thread stopped here? libunwind calls dl_iterate_phdr,
 * which takes the loader lock) and the crash dump (may it enter libdw or
 * malloc?).  Two classifiers that disagreed once let the profiler unwind a
 * thread that preemption would have left alone.
 *
 * Modules are classified by the basename of their path, by prefix, from
 * the single table `modules` below (plus GORT_PREEMPT_UNSAFE, a comma- or
 * colon-separated list of more prefixes).  To mark another library
 * unsafe, add a line there.  libgort's own code is found by address, not
 * by name: the Makefile puts every library object in section gort_text,
 * whose bounds the linker gives us (__start_gort_text), whether libgort is
 * linked statically or is libgort.so; runtime/panic.c puts the few frames
 * that sit under user code in gort_user_text (GORT_PC_GORT_CALL), so that
 * a stack through them is preemptible.  Both are checked before the
 * module ranges, so libgort.so's name decides only for its other code.
 *
 * Unknown PCs (no module we know: JIT code, a library dlopen'ed since the
 * last look, garbage) are unsafe.  They are "not ours to judge": a module
 * we have not seen may be a libc-like library, and refusing a preemption
 * or an unwind costs a retry while allowing one may deadlock.  A miss sets
 * `stale`, and sysmon re-reads the module list on its next round.
 *
 * The table is an array of executable ranges under a seqlock: sysmon (or
 * init) rewrites it, signal handlers read it without a lock.  prof/symtab.c
 * keeps its own richer module table (paths, build ids, DWARF) for symbols
 * and tags each module with gort__pc_class_of_path; classes come from here.
 */
#include "pcclass.h"

#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Basename prefixes, most specific first where it matters. */
static const struct {
    const char *prefix;
    uint8_t cls;
} modules[] = {
    {"libgort", GORT_PC_GORT},
    {"linux-vdso", GORT_PC_VDSO},
    {"linux-gate", GORT_PC_VDSO},
    {"libc.so", GORT_PC_LIBC},
    {"libc-", GORT_PC_LIBC},
    {"libpthread", GORT_PC_LIBC},
    {"libdl.so", GORT_PC_LIBC},
    {"librt.so", GORT_PC_LIBC},
    {"ld-linux", GORT_PC_LOADER},
    {"ld64.so", GORT_PC_LOADER},
    {"ld.so", GORT_PC_LOADER},
    {"ld-2.", GORT_PC_LOADER},
    {"libunwind", GORT_PC_UNWIND},
    {"libdw.so", GORT_PC_DW},
    {"libdw-", GORT_PC_DW},
    {"libelf", GORT_PC_DW},
    {"libz.so", GORT_PC_DW},
    {"liblzma", GORT_PC_DW},
    {"libbz2", GORT_PC_DW},
    {"libzstd", GORT_PC_DW},
    {"libdebuginfod", GORT_PC_DW},
    {"libgcc_s", GORT_PC_LANGRT},
    {"libstdc++", GORT_PC_LANGRT},
    {"libc++", GORT_PC_LANGRT},
    /* Allocators with per-thread caches: their fast paths take no lock but
     * hold a thread cache's address across a call. */
    {"libjemalloc", GORT_PC_ALLOC},
    {"libtcmalloc", GORT_PC_ALLOC},
    {"libmimalloc", GORT_PC_ALLOC},
    /* Sanitizer runtimes: their allocators keep per-thread caches, so a
     * goroutine moved out of one leaves it mid-update for the next
     * goroutine on the thread (ASan's CHECK on kAllocBegMagic). */
    {"libasan", GORT_PC_SANITIZER},
    {"libtsan", GORT_PC_SANITIZER},
    {"libubsan", GORT_PC_SANITIZER},
    {"liblsan", GORT_PC_SANITIZER},
    {"libhwasan", GORT_PC_SANITIZER},
};

extern char __start_gort_text[] __attribute__((visibility("hidden")));
extern char __stop_gort_text[] __attribute__((visibility("hidden")));
extern char __start_gort_user_text[] __attribute__((visibility("hidden")));
extern char __stop_gort_user_text[] __attribute__((visibility("hidden")));

typedef struct modrange {
    uintptr_t lo, hi;
    uint8_t cls;
} modrange_t;

#define MAXRANGES 512
static modrange_t ranges[MAXRANGES]; /* under the seqlock */
static int nranges;                  /* under the seqlock */
static _Atomic uint32_t ranges_seq;  /* odd while a writer rewrites */
static pthread_mutex_t writer = PTHREAD_MUTEX_INITIALIZER; /* one writer at a time */
static _Atomic int stale;            /* a lookup missed: refresh */
static bool libc_separate = true;    /* under writer */
static char listed[256];             /* GORT_PREEMPT_UNSAFE; set once at init */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static bool has_prefix(const char *s, const char *p) { return p[0] && strncmp(s, p, strlen(p)) == 0; }

int gort__pc_class_of_path(const char *path)
{
    if (!strcmp(path, "[vdso]"))
        return GORT_PC_VDSO;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (size_t i = 0; i < sizeof modules / sizeof modules[0]; i++)
        if (has_prefix(base, modules[i].prefix))
            return modules[i].cls;
    char buf[sizeof listed];
    memcpy(buf, listed, sizeof buf);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",:", &save); t; t = strtok_r(NULL, ",:", &save))
        if (has_prefix(base, t))
            return GORT_PC_LISTED;
    return GORT_PC_USER;
}

typedef struct {
    modrange_t *out;
    int n;
    bool libc_seen;
} collect_t;

static int collect(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    collect_t *c = arg;
    const char *name = info->dlpi_name;
    int cls = GORT_PC_USER; /* the executable */
    if (name && name[0]) {
        cls = gort__pc_class_of_path(name);
        if (cls == GORT_PC_LIBC)
            c->libc_seen = true;
    }
    /* Before the module's own ranges: gort__pc_class takes the first match. */
    uintptr_t nlo, nhi;
    if (cls == GORT_PC_USER && c->n < MAXRANGES && gort__nopreempt_range(info, &nlo, &nhi))
        c->out[c->n++] = (modrange_t){nlo, nhi, GORT_PC_NOPREEMPT};
    for (int i = 0; i < info->dlpi_phnum && c->n < MAXRANGES; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        c->out[c->n++] = (modrange_t){lo, lo + ph->p_memsz, (uint8_t)cls};
    }
    return 0;
}

void gort__pc_classes_refresh(void)
{
    static modrange_t tmp[MAXRANGES]; /* under writer */
    pthread_mutex_lock(&writer);
    collect_t c = {tmp, 0, false};
    dl_iterate_phdr(collect, &c);
    libc_separate = c.libc_seen;
    /* Pairs with the acquire loads in gort__pc_class. */
    atomic_fetch_add_explicit(&ranges_seq, 1, memory_order_acq_rel);
    memcpy(ranges, tmp, (size_t)c.n * sizeof *tmp);
    nranges = c.n;
    atomic_fetch_add_explicit(&ranges_seq, 1, memory_order_acq_rel);
    atomic_store_explicit(&stale, 0, memory_order_relaxed);
    pthread_mutex_unlock(&writer);
}

static void init_once_fn(void)
{
    const char *e = getenv("GORT_PREEMPT_UNSAFE");
    if (e)
        snprintf(listed, sizeof listed, "%s", e);
    gort__pc_classes_refresh();
}

void gort__pc_classes_init(void) { pthread_once(&init_once, init_once_fn); }

bool gort__pc_classes_stale(void) { return atomic_load_explicit(&stale, memory_order_relaxed); }

bool gort__pc_classes_libc_separate(void)
{
    pthread_mutex_lock(&writer);
    bool r = libc_separate;
    pthread_mutex_unlock(&writer);
    return r;
}

/* Async-signal-safe.  The runtime's own section comes first: in a static
 * link it sits inside the executable's range. */
int gort__pc_class(uintptr_t pc)
{
    if ((uintptr_t)__start_gort_text <= pc && pc < (uintptr_t)__stop_gort_text)
        return GORT_PC_GORT;
    if ((uintptr_t)__start_gort_user_text <= pc && pc < (uintptr_t)__stop_gort_user_text)
        return GORT_PC_GORT_CALL;
    for (int tries = 0; tries < 3; tries++) {
        uint32_t seq = atomic_load_explicit(&ranges_seq, memory_order_acquire);
        if (seq & 1)
            continue;
        int cls = -1;
        for (int i = 0; i < nranges; i++) {
            if (ranges[i].lo <= pc && pc < ranges[i].hi) {
                cls = ranges[i].cls;
                break;
            }
        }
        if (atomic_load_explicit(&ranges_seq, memory_order_acquire) != seq)
            continue;
        if (cls < 0) {
            atomic_store_explicit(&stale, 1, memory_order_relaxed);
            return GORT_PC_UNKNOWN;
        }
        return cls;
    }
    return GORT_PC_UNKNOWN; /* a writer kept rewriting: judge it unknown */
}
