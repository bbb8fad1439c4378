/*
 * nopreempt.c: where each loaded module keeps its GORT_NOPREEMPT code.
 *
 * GORT_NOPREEMPT (gort.h) puts a function in section gort_nopreempt.  The
 * linker merges every object's copy into one output section per module
 * (executable or shared library), so each module has at most one such
 * range.  The preemption classifier (preempt.c) asks for it when it maps
 * the module's code and classes the range like libc's: a frame there makes
 * the goroutine unpreemptible.
 *
 * The range is read from the module's section headers (libelf), which are
 * not loaded into memory: the executable through /proc/self/exe, a shared
 * object through the path the loader reports.  A module that cannot be
 * read (the vDSO, a deleted file) has no range.  Results are cached by
 * load address, so a refresh after dlopen reads only the new modules.
 *
 * Rejected: __start_gort_nopreempt/__stop_gort_nopreempt.  They exist in
 * each module that uses the section, but only that module can name them:
 * the runtime could learn them only if gort.h planted a registration
 * constructor in every translation unit that includes it.
 *
 * Called by sysmon and runtime init only (under preempt.c's table rebuild,
 * which never runs concurrently with itself); not async-signal-safe.
 */
#include "pcclass.h"
#include "sysmon.h"

#include <fcntl.h>
#include <gelf.h>
#include <link.h>
#include <libelf.h>
#include <string.h>
#include <unistd.h>

typedef struct npcache {
    uintptr_t base;        /* dlpi_addr; with name, the key */
    char name[200];
    uintptr_t lo, hi;      /* hi == 0: no range */
} npcache_t;

#define NPCACHE 128
static npcache_t cache[NPCACHE]; /* sysmon or init only: see above */
static int ncache;

static bool section_range(const char *path, uintptr_t base, uintptr_t *lo, uintptr_t *hi)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool found = false;
    elf_version(EV_CURRENT);
    Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    size_t shstrndx;
    if (e && elf_kind(e) == ELF_K_ELF && elf_getshdrstrndx(e, &shstrndx) == 0) {
        for (Elf_Scn *s = elf_nextscn(e, NULL); s && !found; s = elf_nextscn(e, s)) {
            GElf_Shdr sh;
            if (!gelf_getshdr(s, &sh) || !(sh.sh_flags & SHF_EXECINSTR) || sh.sh_size == 0)
                continue;
            const char *n = elf_strptr(e, shstrndx, sh.sh_name);
            if (n && strcmp(n, "gort_nopreempt") == 0) {
                *lo = base + (uintptr_t)sh.sh_addr;
                *hi = *lo + (uintptr_t)sh.sh_size;
                found = true;
            }
        }
    }
    if (e)
        elf_end(e);
    close(fd);
    return found;
}

bool gort__nopreempt_range(const struct dl_phdr_info *info, uintptr_t *lo, uintptr_t *hi)
{
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    for (int i = 0; i < ncache; i++) {
        if (cache[i].base == info->dlpi_addr && strcmp(cache[i].name, name) == 0) {
            *lo = cache[i].lo;
            *hi = cache[i].hi;
            return cache[i].hi != 0;
        }
    }
    uintptr_t l = 0, h = 0;
    /* The executable is the module the loader names ""; the vDSO has a
     * name without a path and no file. */
    if (!name[0] || name[0] == '/')
        (void)section_range(name[0] ? name : "/proc/self/exe", info->dlpi_addr, &l, &h);
    if (ncache < NPCACHE && strlen(name) < sizeof cache[0].name) {
        npcache_t *c = &cache[ncache++];
        c->base = info->dlpi_addr;
        strcpy(c->name, name);
        c->lo = l;
        c->hi = h;
    }
    *lo = l;
    *hi = h;
    return h != 0;
}
