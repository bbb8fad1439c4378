/*
 * dwarf.c: function file names and line ranges from a binary's DWARF, via
 * elfutils libdwfl "offline" reporting (the binary is read as a file, no
 * process involved).  `gortprof list` uses it when a profile names a
 * function but not its file (a profile written without file names, or one
 * whose paths are from another machine), and to widen the shown range to
 * the whole function.
 *
 * The lookup walks every CU's functions (dwarf_getfuncs) for the name, then
 * the CU's line table for the lines whose addresses fall inside the
 * function's [lowpc, highpc) and come from its file.  One lookup per listed
 * function, so no index is built.
 *
 * Rejected: symbolizing addresses of unsymbolized profiles here: gort's and
 * Go's profiles carry names and lines already, and a binary that is not the
 * profiled one would give confident wrong answers.
 */
#include "gortprof.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdlib.h>
#include <string.h>

struct gp_dwarf {
    Dwfl *dwfl;
    Dwfl_Module *mod;
    char *file; /* last answer, owned */
};

static const Dwfl_Callbacks callbacks = {
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
};

gp_dwarf_t *gp_dwarf_open(const char *path, char *err, size_t errlen)
{
    gp_dwarf_t *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->dwfl = dwfl_begin(&callbacks);
    if (d->dwfl) {
        d->mod = dwfl_report_offline(d->dwfl, "", path, -1);
        dwfl_report_end(d->dwfl, NULL, NULL);
    }
    if (!d->dwfl || !d->mod) {
        snprintf(err, errlen, "%s: %s", path, dwfl_errmsg(-1));
        gp_dwarf_close(d);
        return NULL;
    }
    return d;
}

void gp_dwarf_close(gp_dwarf_t *d)
{
    if (!d)
        return;
    if (d->dwfl)
        dwfl_end(d->dwfl);
    free(d->file);
    free(d);
}

typedef struct want {
    const char *name;
    Dwarf_Die found;
    bool ok;
} want_t;

static int on_func(Dwarf_Die *f, void *arg)
{
    want_t *w = arg;
    const char *n = dwarf_diename(f);
    if (n && !strcmp(n, w->name) && dwarf_hasattr(f, DW_AT_low_pc)) {
        w->found = *f;
        w->ok = true;
        return DWARF_CB_ABORT;
    }
    return DWARF_CB_OK;
}

/* Address ranges of the code inlined into a function: their line-table rows
 * name the callee's lines (often in the same file), which must not widen
 * the caller's range. */
typedef struct ranges {
    Dwarf_Addr (*r)[2];
    size_t n, cap;
} ranges_t;

static void inlined_ranges(Dwarf_Die *die, ranges_t *rs, int depth)
{
    Dwarf_Die child;
    if (depth > 64 || dwarf_child(die, &child) != 0)
        return;
    do {
        if (dwarf_tag(&child) == DW_TAG_inlined_subroutine) {
            Dwarf_Addr base, lo, hi;
            ptrdiff_t off = 0;
            while ((off = dwarf_ranges(&child, off, &base, &lo, &hi)) > 0) {
                if (rs->n == rs->cap) {
                    size_t nc = rs->cap ? rs->cap * 2 : 16;
                    void *nr = realloc(rs->r, nc * sizeof *rs->r);
                    if (!nr)
                        return;
                    rs->r = nr;
                    rs->cap = nc;
                }
                rs->r[rs->n][0] = lo;
                rs->r[rs->n][1] = hi;
                rs->n++;
            }
        } else {
            inlined_ranges(&child, rs, depth + 1);
        }
    } while (dwarf_siblingof(&child, &child) == 0);
}

static bool in_ranges(const ranges_t *rs, Dwarf_Addr a)
{
    for (size_t i = 0; i < rs->n; i++)
        if (a >= rs->r[i][0] && a < rs->r[i][1])
            return true;
    return false;
}

bool gp_dwarf_func_lines(gp_dwarf_t *d, const char *name, const char **file, int *lo, int *hi)
{
    Dwarf_Die *cu = NULL;
    Dwarf_Addr bias;
    while ((cu = dwfl_module_nextcu(d->mod, cu, &bias)) != NULL) {
        want_t w = {.name = name};
        dwarf_getfuncs(cu, on_func, &w, 0);
        if (!w.ok)
            continue;
        const char *df = dwarf_decl_file(&w.found);
        int dl = 0;
        dwarf_decl_line(&w.found, &dl);
        if (!df)
            return false;
        free(d->file);
        d->file = strdup(df);
        if (!d->file)
            return false;
        *file = d->file;
        *lo = *hi = dl;
        Dwarf_Addr low, high;
        Dwarf_Lines *lines;
        size_t nlines;
        if (dwarf_lowpc(&w.found, &low) == 0 && dwarf_highpc(&w.found, &high) == 0 &&
            dwarf_getsrclines(cu, &lines, &nlines) == 0) {
            ranges_t rs = {0};
            inlined_ranges(&w.found, &rs, 0);
            for (size_t i = 0; i < nlines; i++) {
                Dwarf_Line *l = dwarf_onesrcline(lines, i);
                Dwarf_Addr a;
                int ln;
                const char *src = dwarf_linesrc(l, NULL, NULL);
                if (!l || dwarf_lineaddr(l, &a) != 0 || a < low || a >= high || dwarf_lineno(l, &ln) != 0 || !src ||
                    strcmp(src, df) != 0 || ln <= 0 || (dl > 0 && ln < dl) || in_ranges(&rs, a))
                    continue;
                if (!*lo || ln < *lo)
                    *lo = ln;
                if (ln > *hi)
                    *hi = ln;
            }
            free(rs.r);
        }
        return *lo > 0;
    }
    return false;
}
