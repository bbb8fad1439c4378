/*
 * symtab.c: the loaded modules, what class of code a PC is, and PC to
 * function/file:line with inlined frames.
 *
 * Modules.  dl_iterate_phdr lists the executable and every shared object;
 * each gets a slot in modtab[], which only grows, so a gort_module_t
 * pointer stays valid for the life of the process.  Lookups by address go
 * through an immutable sorted index (ranges_t) published with a release
 * store; a refresh builds a new index and leaks the old one, because a
 * signal handler may still be reading it.  Nothing on the query side
 * locks or allocates, so gort__module_of is async-signal-safe.
 *
 * Classes.  What kind of code a PC is in (libgort, libc, the loader, ...)
 * is sysmon/pcclass.c's question, for the dump as for preemption: one
 * module list, one rule for unknown PCs.  Each module here carries the
 * class pcclass.c gives its path.
 *
 * Symbols.  At init each module's ELF function symbols are copied into a
 * sorted array (name pointers into libelf's mapped string tables): a
 * binary search that never enters libdw, for crash paths and for the
 * malloc check below.
 *
 * DWARF.  One Dwfl for the process, every module reported with
 * dwfl_report_elf and its DWARF opened at init, so a crash does not have
 * to open files.  libdw is not thread-safe and allocates, so lookups run
 * under symlock (a runtime lock, leaf rank).  Results are cached by PC in
 * an open-addressing table of pointers to immutable records: readers probe
 * without a lock (acquire loads pair with the release store that publishes
 * a record or a grown table); only the lock holder inserts.  A table that
 * grows leaves the old one in place for readers still probing it.  Records
 * and tables come from an mmap'd bump arena, never freed.  Separate debug
 * files are found by build id under /usr/lib/debug; debuginfod is never
 * used (no network from a runtime, least of all while crashing).
 *
 * Crash paths (GORT_SYM_TRYLOCK) try the lock a bounded number of times;
 * after one failure DWARF stays off for the rest of the process (it is
 * dying).  GORT_SYM_NODWARF (the thread was interrupted in malloc, say)
 * uses only the cache and the symbol arrays.
 */
#include "symtab.h"

#include <dwarf.h>
#include <elf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime.h"
#include "symtab_int.h"

#define MAX_MODULES 1024

typedef struct sym {
    uintptr_t addr;
    uintptr_t size;
    const char *name;
    int rank; /* binding: 0 global, 1 weak, 2 local (aliases sort by it) */
} sym_t;

typedef struct modpriv {
    Dwfl_Module *dm;    /* NULL: no ELF file we could open (vDSO) */
    const sym_t *syms;  /* sorted by addr; immutable once published */
    int nsyms;
} modpriv_t;

/* A sorted, non-overlapping set of address ranges, each tagged with a
 * module index (or -1) and a class. */
typedef struct range {
    uintptr_t lo, hi;
    int32_t mod;
    int32_t cls;
} range_t;
typedef struct ranges {
    int n;
    struct ranges *retired; /* the index this one replaced (see scan_modules) */
    range_t r[];
} ranges_t;

static gort_module_t modtab[MAX_MODULES]; /* appended under initlock */
static modpriv_t modpriv[MAX_MODULES];
static _Atomic int nmods;                 /* release: publishes modtab[i < n] */
static _Atomic(ranges_t *) mod_index;     /* every loaded segment */

static pthread_mutex_t initlock = PTHREAD_MUTEX_INITIALIZER; /* module table writers */
static _Atomic bool inited;
static Dwfl *dwfl;                        /* under symlock once inited */
static char exe_path[4096];

/* DWARF lock: protects dwfl and the arena; inserts into the cache. */
static gort_lock_t symlock = GORT_LOCK_INIT(LR_LEAF);
static _Atomic pid_t symlock_owner;
static _Atomic bool dwarf_off; /* after a failed crash try-lock or a fault */

static _Atomic uint64_t st_lookups, st_hits, st_dwarf, st_fallbacks;

static pid_t my_tid(void) { return (pid_t)syscall(SYS_gettid); }

/* ---------------------------------------------------------------- */
/* Arena                                                             */
/* ---------------------------------------------------------------- */

#define ARENA_CHUNK (1u << 20)
static char *arena_cur, *arena_end; /* under symlock, or initlock at init */

static void *arena_alloc(size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if ((size_t)(arena_end - arena_cur) < n) {
        size_t sz = n > ARENA_CHUNK ? (n + GORT_PAGE_SIZE - 1) & ~(size_t)(GORT_PAGE_SIZE - 1) : ARENA_CHUNK;
        void *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        arena_cur = p;
        arena_end = arena_cur + sz;
    }
    void *r = arena_cur;
    arena_cur += n;
    return r;
}

/* ---------------------------------------------------------------- */
/* Module lookup                                                     */
/* ---------------------------------------------------------------- */

static bool has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* Async-signal-safe. */
static const range_t *range_find(const ranges_t *rs, uintptr_t pc)
{
    if (!rs)
        return NULL;
    int lo = 0, hi = rs->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (rs->r[mid].hi <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < rs->n && rs->r[lo].lo <= pc && pc < rs->r[lo].hi)
        return &rs->r[lo];
    return NULL;
}

int gort__modules(const gort_module_t **mods)
{
    *mods = modtab;
    return atomic_load_explicit(&nmods, memory_order_acquire);
}

const gort_module_t *gort__module_of(uintptr_t pc)
{
    const range_t *r = range_find(atomic_load_explicit(&mod_index, memory_order_acquire), pc);
    return r ? &modtab[r->mod] : NULL;
}

/* ---------------------------------------------------------------- */
/* Symbol arrays                                                     */
/* ---------------------------------------------------------------- */

static int sym_cmp(const void *a, const void *b)
{
    const sym_t *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    /* Among aliases prefer the one with a size, then global over weak over
     * local (glibc's __GI_ names are local), then fewer leading '_'. */
    if ((x->size == 0) != (y->size == 0))
        return x->size == 0 ? 1 : -1;
    if (x->rank != y->rank)
        return x->rank - y->rank;
    size_t ux = strspn(x->name, "_"), uy = strspn(y->name, "_");
    if (ux != uy)
        return ux < uy ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* initlock held. */
static void load_symbols(int i)
{
    Dwfl_Module *dm = modpriv[i].dm;
    if (!dm)
        return;
    int n = dwfl_module_getsymtab(dm);
    if (n <= 0)
        return;
    sym_t *s = malloc((size_t)n * sizeof *s);
    if (!s)
        return;
    int k = 0;
    for (int j = 1; j < n; j++) {
        GElf_Sym sym;
        GElf_Addr addr;
        GElf_Word shndx;
        const char *name = dwfl_module_getsym_info(dm, j, &sym, &addr, &shndx, NULL, NULL);
        if (!name || !*name || shndx == SHN_UNDEF || addr == 0)
            continue;
        int t = GELF_ST_TYPE(sym.st_info);
        if (t != STT_FUNC && t != STT_GNU_IFUNC)
            continue;
        int b = GELF_ST_BIND(sym.st_info);
        s[k++] = (sym_t){(uintptr_t)addr, (uintptr_t)sym.st_size, name, b == STB_GLOBAL ? 0 : b == STB_WEAK ? 1 : 2};
    }
    qsort(s, (size_t)k, sizeof *s, sym_cmp);
    int w = 0;
    for (int j = 0; j < k; j++) /* aliases stay, the preferred one first */
        if (w == 0 || s[w - 1].addr != s[j].addr || strcmp(s[w - 1].name, s[j].name) != 0)
            s[w++] = s[j];
    modpriv[i].nsyms = w;
    /* Pairs with the acquire in sym_find: the array and its length are
     * visible before the pointer. */
    __atomic_store_n(&modpriv[i].syms, s, __ATOMIC_RELEASE);
}

/* Async-signal-safe.  The preferred symbol holding pc (the first of its
 * aliases); *nalias gets how many names that address has. */
static const sym_t *sym_find_aliases(int mod, uintptr_t pc, int *nalias)
{
    const sym_t *s = __atomic_load_n(&modpriv[mod].syms, __ATOMIC_ACQUIRE);
    int n = modpriv[mod].nsyms;
    if (!s || n == 0)
        return NULL;
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (s[mid].addr <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    int last = lo - 1, first = last;
    while (first > 0 && s[first - 1].addr == s[last].addr)
        first--;
    const sym_t *c = &s[first];
    bool inside = false;
    for (int i = first; i <= last && !inside; i++)
        inside = s[i].size ? pc < s[i].addr + s[i].size : (lo < n && pc < s[lo].addr);
    if (!inside)
        return NULL;
    if (nalias)
        *nalias = last - first + 1;
    return c;
}

static const sym_t *sym_find(int mod, uintptr_t pc) { return sym_find_aliases(mod, pc, NULL); }

/* libc's allocator entry points (exported names, plus the internal ones a
 * libc with a full symbol table shows).  Every path that takes an arena
 * lock runs below one of them. */
static const char *const malloc_names[] = {
    "malloc", "free", "calloc", "realloc", "reallocarray", "memalign", "posix_memalign",
    "aligned_alloc", "valloc", "pvalloc", "cfree", "malloc_trim", "malloc_usable_size",
    "mallinfo", "mallinfo2", "malloc_stats", "malloc_info", "mallopt",
    "__libc_malloc", "__libc_free", "__libc_calloc", "__libc_realloc", "__libc_memalign",
    "__libc_valloc", "__libc_pvalloc", "__libc_mallinfo", "__malloc_trim",
    "_int_malloc", "_int_free", "_int_realloc", "_int_memalign", "malloc_consolidate",
    "sysmalloc", "tcache_init", "arena_get2", "fork", "__libc_fork", "_Fork",
};

bool gort__pc_in_malloc(uintptr_t pc)
{
    const range_t *r = range_find(atomic_load_explicit(&mod_index, memory_order_acquire), pc);
    if (!r || r->cls != GORT_PC_LIBC)
        return false;
    int na = 0;
    const sym_t *s = sym_find_aliases(r->mod, pc, &na);
    for (int a = 0; s && a < na; a++) {
        const char *name = s[a].name;
        if (!strncmp(name, "__GI_", 5))
            name += 5;
        for (size_t i = 0; i < sizeof malloc_names / sizeof malloc_names[0]; i++)
            if (!strcmp(name, malloc_names[i]))
                return true;
    }
    return false;
}

/* ---------------------------------------------------------------- */
/* The module table                                                  */
/* ---------------------------------------------------------------- */

typedef struct seen {
    int n, cap;
    range_t *segs; /* every loaded segment, tagged with its module */
    int *live;     /* module indices seen in this pass */
    int nlive;
} seen_t;

static void hexify(char *out, size_t outlen, const unsigned char *p, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    size_t k = 0;
    for (size_t i = 0; i < n && k + 2 < outlen; i++) {
        out[k++] = hx[p[i] >> 4];
        out[k++] = hx[p[i] & 15];
    }
    out[k] = 0;
}

static void read_build_id(struct dl_phdr_info *info, char *out, size_t outlen)
{
    out[0] = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
        const char *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
            const char *name = p + sizeof *nh;
            const char *desc = name + ((nh->n_namesz + 3) & ~3u);
            const char *next = desc + ((nh->n_descsz + 3) & ~3u);
            if (next > end)
                break;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(name, "GNU", 4)) {
                hexify(out, outlen, (const unsigned char *)desc, nh->n_descsz);
                return;
            }
            p = next;
        }
    }
}

static const Dwfl_Callbacks dwfl_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_build_id_find_debuginfo,
};

/* dl_iterate_phdr callback, initlock held: adds modules not seen before,
 * records every loaded segment. */
static int phdr_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    seen_t *s = arg;
    const char *name = info->dlpi_name;
    bool is_exe = !name || !*name;
    bool is_vdso = !is_exe && name[0] != '/' && has_prefix(name, "linux-");
    const char *path = is_exe ? exe_path : is_vdso ? "[vdso]" : name;
    if (is_exe && !exe_path[0])
        return 0;
    uintptr_t bias = info->dlpi_addr;
    uintptr_t xstart = 0, xend = 0, xoff = 0, lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = bias + ph->p_vaddr, b = a + ph->p_memsz;
        if (a < lo)
            lo = a;
        if (b > hi)
            hi = b;
        if ((ph->p_flags & PF_X) && !xend) {
            xstart = a;
            xend = b;
            xoff = ph->p_offset & ~(uintptr_t)(GORT_PAGE_SIZE - 1);
            xstart -= (ph->p_offset - xoff); /* the mapping starts page-aligned */
        }
    }
    if (hi == 0)
        return 0;
    int n = atomic_load_explicit(&nmods, memory_order_relaxed);
    int idx = -1;
    for (int i = 0; i < n; i++) {
        if (modtab[i].bias == bias && modtab[i].lo == lo && !strcmp(modtab[i].path, path)) {
            idx = i;
            break;
        }
    }
    if (idx < 0) {
        if (n >= MAX_MODULES)
            return 0;
        idx = n;
        gort_module_t *m = &modtab[idx];
        m->path = strdup(path);
        if (!m->path)
            return 0;
        m->start = xstart;
        m->end = xend;
        m->offset = xoff;
        m->bias = bias;
        m->lo = lo;
        m->hi = hi;
        m->cls = (uint8_t)gort__pc_class_of_path(path);
        m->id = idx;
        read_build_id(info, m->build_id, sizeof m->build_id);
        modpriv[idx].dm = NULL;
        if (!is_vdso && dwfl) {
            modpriv[idx].dm = dwfl_report_elf(dwfl, path, path, -1, bias, true);
        }
        atomic_store_explicit(&nmods, n + 1, memory_order_release);
    }
    if (s->nlive < MAX_MODULES)
        s->live[s->nlive++] = idx;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || ph->p_memsz == 0)
            continue;
        if (s->n == s->cap) {
            int cap = s->cap ? s->cap * 2 : 256;
            range_t *nr = realloc(s->segs, (size_t)cap * sizeof *nr);
            if (!nr)
                return 1;
            s->segs = nr;
            s->cap = cap;
        }
        uintptr_t a = bias + ph->p_vaddr;
        s->segs[s->n++] = (range_t){a, a + ph->p_memsz, idx, modtab[idx].cls};
    }
    return 0;
}

static int range_cmp(const void *a, const void *b)
{
    const range_t *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static ranges_t *ranges_publishable(range_t *r, int n)
{
    qsort(r, (size_t)n, sizeof *r, range_cmp);
    ranges_t *out = calloc(1, sizeof *out + (size_t)n * sizeof(range_t));
    if (!out)
        return NULL;
    int w = 0;
    for (int i = 0; i < n; i++) {
        if (w > 0 && r[i].lo < out->r[w - 1].hi) {
            /* Overlap (a segment of a module that replaced an unloaded
             * one): the later-listed wins from where it starts. */
            out->r[w - 1].hi = r[i].lo;
            if (out->r[w - 1].hi <= out->r[w - 1].lo)
                w--;
        }
        if (w > 0 && out->r[w - 1].hi == r[i].lo && out->r[w - 1].mod == r[i].mod &&
            out->r[w - 1].cls == r[i].cls) {
            out->r[w - 1].hi = r[i].hi;
            continue;
        }
        out->r[w++] = r[i];
    }
    out->n = w;
    return out;
}

/* initlock held.  Returns true if new modules appeared. */
static bool scan_modules(void)
{
    int before = atomic_load_explicit(&nmods, memory_order_relaxed);
    seen_t s = {0, 0, NULL, NULL, 0};
    s.live = malloc(MAX_MODULES * sizeof(int));
    if (!s.live)
        return false;
    if (dwfl) {
        gort__lock(&symlock);
        dwfl_report_begin_add(dwfl);
    }
    dl_iterate_phdr(phdr_cb, &s);
    if (dwfl) {
        dwfl_report_end(dwfl, NULL, NULL);
        gort__unlock(&symlock);
    }
    int after = atomic_load_explicit(&nmods, memory_order_relaxed);
    for (int i = before; i < after; i++) {
        if (modpriv[i].dm) {
            gort__lock(&symlock);
            /* The executable's and libgort's DWARF now, not in a crash.
             * Other libraries' open on first use: a libc with separate
             * debug info holds tens of MB of compressed DWARF, and
             * inflating it made every program start 80 ms later. */
            if (!modtab[i].path || modtab[i].path == exe_path || !strcmp(modtab[i].path, exe_path) ||
                modtab[i].cls == GORT_PC_GORT) {
                Dwarf_Addr bias;
                (void)dwfl_module_getdwarf(modpriv[i].dm, &bias);
            }
            load_symbols(i);
            gort__unlock(&symlock);
        }
    }
    ranges_t *idx = s.segs ? ranges_publishable(s.segs, s.n) : NULL;
    if (idx) {
        /* Readers take the index without a lock, so a replaced one is
         * never freed: it is chained to its successor (reachable, and
         * counted).  An unchanged scan, the common case, publishes
         * nothing (each profile once leaked a copy). */
        ranges_t *old = atomic_load_explicit(&mod_index, memory_order_acquire);
        if (old && old->n == idx->n && !memcmp(old->r, idx->r, (size_t)idx->n * sizeof idx->r[0])) {
            free(idx);
        } else {
            idx->retired = old;
            atomic_store_explicit(&mod_index, idx, memory_order_release);
        }
    }
    free(s.segs);
    free(s.live);
    return after > before;
}

void gort__symtab_init(void)
{
    if (atomic_load_explicit(&inited, memory_order_acquire))
        return;
    pthread_mutex_lock(&initlock);
    if (!atomic_load_explicit(&inited, memory_order_relaxed)) {
        ssize_t n = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
        exe_path[n > 0 ? n : 0] = 0;
        dwfl = dwfl_begin(&dwfl_callbacks);
        gort__lock(&symlock);
        (void)arena_alloc(16); /* the first chunk, before any crash */
        gort__unlock(&symlock);
        gort__pc_classes_init();
        scan_modules();
        atomic_store_explicit(&inited, true, memory_order_release);
    }
    pthread_mutex_unlock(&initlock);
}

bool gort__symtab_refresh(void)
{
    gort__symtab_init();
    pthread_mutex_lock(&initlock);
    bool r = scan_modules();
    pthread_mutex_unlock(&initlock);
    return r;
}

/* ---------------------------------------------------------------- */
/* The PC cache                                                      */
/* ---------------------------------------------------------------- */

typedef struct symrec {
    uintptr_t pc;
    int32_t n;
    gort_frame_t f[];
} symrec_t;

typedef struct symcache {
    size_t mask;
    _Atomic(symrec_t *) slot[];
} symcache_t;

static _Atomic(symcache_t *) cache; /* release-published by the lock holder */
static size_t ncached;              /* under symlock */

static size_t pc_hash(uintptr_t pc) { return (size_t)((pc * 0x9E3779B97F4A7C15ULL) >> 20); }

/* Lock-free; async-signal-safe. */
static const symrec_t *cache_find(uintptr_t pc)
{
    symcache_t *c = atomic_load_explicit(&cache, memory_order_acquire);
    if (!c)
        return NULL;
    for (size_t i = pc_hash(pc) & c->mask;; i = (i + 1) & c->mask) {
        symrec_t *r = atomic_load_explicit(&c->slot[i], memory_order_acquire);
        if (!r)
            return NULL;
        if (r->pc == pc)
            return r;
    }
}

static void slot_put(symcache_t *c, symrec_t *r)
{
    for (size_t i = pc_hash(r->pc) & c->mask;; i = (i + 1) & c->mask) {
        if (!atomic_load_explicit(&c->slot[i], memory_order_relaxed)) {
            atomic_store_explicit(&c->slot[i], r, memory_order_release);
            return;
        }
    }
}

/* symlock held. */
static void cache_insert(symrec_t *r)
{
    symcache_t *c = atomic_load_explicit(&cache, memory_order_relaxed);
    if (!c || (ncached + 1) * 2 > c->mask + 1) {
        size_t size = c ? (c->mask + 1) * 2 : 4096;
        symcache_t *nc = arena_alloc(sizeof *nc + size * sizeof(nc->slot[0]));
        if (!nc)
            return; /* not cached; the caller still has its record */
        memset(nc, 0, sizeof *nc + size * sizeof(nc->slot[0]));
        nc->mask = size - 1;
        if (c)
            for (size_t i = 0; i <= c->mask; i++) {
                symrec_t *o = atomic_load_explicit(&c->slot[i], memory_order_relaxed);
                if (o)
                    slot_put(nc, o);
            }
        atomic_store_explicit(&cache, nc, memory_order_release);
        c = nc;
    }
    slot_put(c, r);
    ncached++;
}

/* ---------------------------------------------------------------- */
/* Symbolization                                                     */
/* ---------------------------------------------------------------- */

static bool is_public_api(const char *name)
{
    return name && strncmp(name, "gort_", 5) == 0 && name[5] != '_';
}

static void mark_runtime(gort_frame_t *f, int n, uintptr_t pc)
{
    bool in_gort = gort__pc_class_is_gort(gort__pc_class(pc));
    for (int i = 0; i < n; i++)
        f[i].runtime = in_gort && !is_public_api(f[i].func);
}

/* Symbol table and module only.  Async-signal-safe. */
static int symbolize_fallback(uintptr_t pc, gort_frame_t *out)
{
    memset(out, 0, sizeof *out);
    out->func = "?";
    const range_t *r = range_find(atomic_load_explicit(&mod_index, memory_order_acquire), pc);
    if (!r) {
        out->quality = GORT_SYM_NONE;
        return 1;
    }
    out->module = &modtab[r->mod];
    out->quality = GORT_SYM_MODULE;
    const sym_t *s = sym_find(r->mod, pc);
    if (s) {
        out->func = s->name;
        out->entry = s->addr;
        out->quality = GORT_SYM_SYMTAB;
    }
    mark_runtime(out, 1, pc);
    return 1;
}

static const char *abs_path(const char *file, Dwarf_Die *cu);

static const char *die_funcname(Dwarf_Die *die)
{
    Dwarf_Attribute a;
    const char *n = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &a));
    if (!n)
        n = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &a));
    return n;
}

/* A function with neither parameters nor "..." prints as f(). */
static bool die_noargs(Dwarf_Die *fn)
{
    Dwarf_Die d = *fn, child;
    Dwarf_Attribute a;
    Dwarf_Die origin;
    /* An out-of-line instance of an inlined function lists its
     * parameters on the abstract instance. */
    if (dwarf_attr(&d, DW_AT_abstract_origin, &a) && dwarf_formref_die(&a, &origin))
        d = origin;
    if (dwarf_child(&d, &child) != 0)
        return true;
    do {
        int t = dwarf_tag(&child);
        if (t == DW_TAG_formal_parameter || t == DW_TAG_unspecified_parameters)
            return false;
    } while (dwarf_siblingof(&child, &child) == 0);
    return true;
}

/* symlock held.  Fills up to max frames from DWARF; 0 if there is none. */
static int symbolize_dwarf(uintptr_t pc, int mod, gort_frame_t *out, int max)
{
    Dwfl_Module *dm = modpriv[mod].dm;
    if (!dm || max <= 0)
        return 0;
    Dwarf_Addr bias;
    Dwarf_Die *cu = dwfl_module_addrdie(dm, pc, &bias);
    if (!cu)
        return 0;
    Dwarf_Addr rel = pc - bias;
    const char *file = NULL;
    int line = 0, col = 0;
    Dwarf_Line *ln = dwarf_getsrc_die(cu, rel);
    if (ln) {
        file = abs_path(dwarf_linesrc(ln, NULL, NULL), cu);
        dwarf_lineno(ln, &line);
        dwarf_linecol(ln, &col);
    }
    Dwarf_Files *files = NULL;
    size_t nfiles = 0;
    Dwarf_Die *scopes = NULL;
    int ns = dwarf_getscopes(cu, rel, &scopes);
    int n = 0;
    Dwarf_Die outer_die;
    Dwarf_Die *outer = NULL;
    for (int i = 0; i < ns && n < max; i++) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag != DW_TAG_subprogram && tag != DW_TAG_inlined_subroutine)
            continue;
        gort_frame_t *f = &out[n++];
        memset(f, 0, sizeof *f);
        f->func = die_funcname(&scopes[i]);
        if (!f->func)
            f->func = "?";
        f->file = file;
        f->line = line;
        f->column = col;
        f->quality = GORT_SYM_DWARF;
        if (tag == DW_TAG_subprogram) {
            outer_die = scopes[i];
            outer = &outer_die;
            break;
        }
        f->inlined = 1;
        /* The caller's position is the call site of this inlined call. */
        Dwarf_Attribute a;
        Dwarf_Word w;
        if (!files && dwarf_getsrcfiles(cu, &files, &nfiles) != 0)
            files = NULL;
        file = NULL;
        line = col = 0;
        if (files && dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_file, &a), &w) == 0 && w < nfiles)
            file = abs_path(dwarf_filesrc(files, w, NULL, NULL), cu);
        if (dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_line, &a), &w) == 0)
            line = (int)w;
        if (dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_column, &a), &w) == 0)
            col = (int)w;
        /* dwarf_getscopes goes on with the scopes of the inlined
         * function's abstract definition; the caller is found among the
         * concrete scopes that contain this inlined instance. */
        Dwarf_Die *parents = NULL;
        int np = dwarf_getscopes_die(&scopes[i], &parents);
        free(scopes);
        scopes = parents;
        ns = np;
        i = 0; /* parents[0] is the inlined instance itself */
    }
    uintptr_t entry = 0;
    bool noargs = false;
    if (outer) {
        Dwarf_Addr e;
        if (dwarf_entrypc(outer, &e) == 0)
            entry = (uintptr_t)(e + bias);
        noargs = die_noargs(outer);
    }
    free(scopes);
    if (n == 0)
        return 0;
    /* The ELF symbol is the truer entry for split functions (foo.cold). */
    const sym_t *s = sym_find(mod, pc);
    if (s)
        entry = s->addr;
    for (int i = 0; i < n; i++) {
        out[i].module = &modtab[mod];
        out[i].entry = entry;
    }
    out[n - 1].noargs = noargs;
    if (!outer && s && n < max) {
        /* Scopes ended in inlined code without an enclosing subprogram
         * (odd DWARF): name the out-of-line function from the symbol. */
        out[n - 1].inlined = 1;
        gort_frame_t *f = &out[n++];
        memset(f, 0, sizeof *f);
        f->func = s->name;
        f->file = file;
        f->line = line;
        f->column = col;
        f->module = &modtab[mod];
        f->entry = entry;
        f->quality = GORT_SYM_DWARF;
    }
    return n;
}

/* Absolute source paths.  libdw leaves a file relative when the line
 * table's directory is relative (GCC records "runtime" for a source named
 * runtime/sched.c); Go prints absolute paths, so join the unit's comp_dir.
 * The joined strings are interned by the pointers libdw returned, which
 * are stable for the life of the Dwarf.  symlock held. */
typedef struct pathent {
    const char *file, *dir, *joined;
} pathent_t;
static pathent_t *paths;
static size_t npaths, pathcap;

static const char *abs_path(const char *file, Dwarf_Die *cu)
{
    if (!file || file[0] == '/')
        return file;
    Dwarf_Attribute a;
    const char *dir = dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &a));
    if (!dir)
        return file;
    size_t h = ((uintptr_t)file * 31 + (uintptr_t)dir) * 0x9E3779B97F4A7C15ULL >> 16;
    if (npaths * 2 >= pathcap) {
        size_t cap = pathcap ? pathcap * 2 : 256;
        pathent_t *np = arena_alloc(cap * sizeof *np);
        if (!np)
            return file;
        memset(np, 0, cap * sizeof *np);
        for (size_t i = 0; i < pathcap; i++) {
            if (!paths[i].file)
                continue;
            size_t k = (((uintptr_t)paths[i].file * 31 + (uintptr_t)paths[i].dir) * 0x9E3779B97F4A7C15ULL >> 16) & (cap - 1);
            while (np[k].file)
                k = (k + 1) & (cap - 1);
            np[k] = paths[i];
        }
        paths = np;
        pathcap = cap;
    }
    size_t k = h & (pathcap - 1);
    for (; paths[k].file; k = (k + 1) & (pathcap - 1))
        if (paths[k].file == file && paths[k].dir == dir)
            return paths[k].joined;
    size_t dl = strlen(dir), fl = strlen(file);
    const char *f = file;
    while (f[0] == '.' && f[1] == '/') /* "./x.c" */
        f += 2, fl -= 2;
    char *j = arena_alloc(dl + fl + 2);
    if (!j)
        return file;
    memcpy(j, dir, dl);
    j[dl] = '/';
    memcpy(j + dl + 1, f, fl + 1);
    paths[k] = (pathent_t){file, dir, j};
    npaths++;
    return j;
}

static bool lock_for(int flags)
{
    if (!(flags & GORT_SYM_TRYLOCK)) {
        gort__lock(&symlock);
        return true;
    }
    if (atomic_load_explicit(&symlock_owner, memory_order_relaxed) == my_tid())
        return false;
    for (int i = 0; i < 200; i++) {
        if (gort__trylock(&symlock))
            return true;
        if (i >= 10)
            gort__usleep(100);
    }
    /* Held for 20 ms by a thread that may never let go: give up on DWARF
     * for good (the process is crashing). */
    atomic_store_explicit(&dwarf_off, true, memory_order_relaxed);
    return false;
}

#define MAX_INLINE 16

int gort__symbolize(uintptr_t pc, gort_frame_t *out, int max, int flags)
{
    if (max <= 0)
        return 0;
    atomic_fetch_add_explicit(&st_lookups, 1, memory_order_relaxed);
    const symrec_t *r = cache_find(pc);
    if (r) {
        atomic_fetch_add_explicit(&st_hits, 1, memory_order_relaxed);
        int n = r->n < max ? r->n : max;
        memcpy(out, r->f, (size_t)n * sizeof *out);
        if (n < r->n)
            out[n - 1].inlined = 0;
        return n;
    }
    bool ready = atomic_load_explicit(&inited, memory_order_acquire);
    if (!ready && !(flags & (GORT_SYM_NODWARF | GORT_SYM_TRYLOCK))) {
        gort__symtab_init();
        ready = true;
    }
    if (!ready || (flags & GORT_SYM_NODWARF) || atomic_load_explicit(&dwarf_off, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&st_fallbacks, 1, memory_order_relaxed);
        return symbolize_fallback(pc, out);
    }
    const range_t *mr = range_find(atomic_load_explicit(&mod_index, memory_order_acquire), pc);
    if (!mr && !(flags & GORT_SYM_TRYLOCK) && gort__symtab_refresh())
        mr = range_find(atomic_load_explicit(&mod_index, memory_order_acquire), pc);
    if (!mr) {
        atomic_fetch_add_explicit(&st_fallbacks, 1, memory_order_relaxed);
        return symbolize_fallback(pc, out);
    }
    if (!lock_for(flags)) {
        atomic_fetch_add_explicit(&st_fallbacks, 1, memory_order_relaxed);
        return symbolize_fallback(pc, out);
    }
    atomic_store_explicit(&symlock_owner, my_tid(), memory_order_relaxed);
    r = cache_find(pc); /* someone may have beaten us to it */
    if (!r) {
        gort_frame_t tmp[MAX_INLINE];
        atomic_fetch_add_explicit(&st_dwarf, 1, memory_order_relaxed);
        int n = atomic_load_explicit(&dwarf_off, memory_order_relaxed) ? 0
                                                                      : symbolize_dwarf(pc, mr->mod, tmp, MAX_INLINE);
        if (n == 0)
            n = symbolize_fallback(pc, tmp);
        mark_runtime(tmp, n, pc);
        symrec_t *nr = arena_alloc(sizeof *nr + (size_t)n * sizeof(gort_frame_t));
        if (nr) {
            nr->pc = pc;
            nr->n = n;
            memcpy(nr->f, tmp, (size_t)n * sizeof *tmp);
            cache_insert(nr);
            r = nr;
        } else {
            atomic_store_explicit(&symlock_owner, 0, memory_order_relaxed);
            gort__unlock(&symlock);
            int k = n < max ? n : max;
            memcpy(out, tmp, (size_t)k * sizeof *out);
            return k;
        }
    }
    atomic_store_explicit(&symlock_owner, 0, memory_order_relaxed);
    gort__unlock(&symlock);
    int n = r->n < max ? r->n : max;
    memcpy(out, r->f, (size_t)n * sizeof *out);
    if (n < r->n)
        out[n - 1].inlined = 0;
    return n;
}

/* ---- for prof/cfi.c ---- */

/* One try, for sysmon's thread, which must not wait behind a dump. */
bool gort__symlock_try(void)
{
    if (!gort__symtab_ready() || !gort__trylock(&symlock))
        return false;
    atomic_store_explicit(&symlock_owner, my_tid(), memory_order_relaxed);
    return true;
}

bool gort__symlock_acquire(bool trylock)
{
    if (!lock_for(trylock ? GORT_SYM_TRYLOCK : 0))
        return false;
    atomic_store_explicit(&symlock_owner, my_tid(), memory_order_relaxed);
    return true;
}

void gort__symlock_release(void)
{
    atomic_store_explicit(&symlock_owner, 0, memory_order_relaxed);
    gort__unlock(&symlock);
}

Dwfl_Module *gort__symtab_dwfl_module(uintptr_t pc)
{
    const range_t *r = range_find(atomic_load_explicit(&mod_index, memory_order_acquire), pc);
    return r ? modpriv[r->mod].dm : NULL;
}

void *gort__symtab_alloc(size_t n) { return arena_alloc(n); }

bool gort__symtab_ready(void) { return atomic_load_explicit(&inited, memory_order_acquire); }

bool gort__symtab_fault_recover(void)
{
    if (atomic_load_explicit(&symlock_owner, memory_order_relaxed) != my_tid())
        return false;
    atomic_store_explicit(&dwarf_off, true, memory_order_relaxed);
    atomic_store_explicit(&symlock_owner, 0, memory_order_relaxed);
    gort__unlock(&symlock);
    return true;
}

void gort__symtab_stats(gort_symtab_stats_t *out)
{
    out->lookups = atomic_load_explicit(&st_lookups, memory_order_relaxed);
    out->hits = atomic_load_explicit(&st_hits, memory_order_relaxed);
    out->dwarf_lookups = atomic_load_explicit(&st_dwarf, memory_order_relaxed);
    out->fallbacks = atomic_load_explicit(&st_fallbacks, memory_order_relaxed);
    out->cached = ncached;
}
