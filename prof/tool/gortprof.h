/*
 * gortprof.h: what the files of the gortprof tool share.
 *
 * Every report works on a view (view.c): a decoded profile, the sample
 * value chosen by -sample_index, the samples that pass -focus / -ignore /
 * -tagfocus, and the profile's functions folded into nodes, one per
 * distinct (function name, file name), as pprof's default "functions"
 * granularity does.  A sample's stack is a list of frames (node, line), leaf
 * first, with inlined frames expanded; view.c flattens every location's
 * frames once so reports walk plain arrays.
 *
 * Names here are gp_*: the tool is its own program, not part of libgort.
 * Every report returns 0 or prints a one-line error and returns 1 (the exit
 * status); nothing here calls exit() except main.
 */
#ifndef GORTPROF_H
#define GORTPROF_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../httpreq.h" /* HTTP/1.1 syntax, shared with the debug endpoint */
#include "../pprof.h"   /* the codec: with httpreq.h and wholefile.h, all of prof/ the tool may use */
#include "../wholefile.h" /* output files written whole (flame -o) */

typedef struct gp_opts {
    int nodecount;        /* -n: rows to show, 0 = all */
    bool cum;             /* -cum: sort by cumulative */
    double nodefraction;  /* hide nodes with cum <= this share of total */
    const char *focus, *ignore, *tagfocus, *sample_index;
    const char *output;   /* -o */
    const char *bin;      /* -bin */
    const char *http;     /* -http */
    const char *source_path;
    bool no_browser;
} gp_opts_t;

typedef struct gp_node {
    const char *name, *file;
    int64_t start_line;
    bool inlined;         /* seen as an inlined frame */
} gp_node_t;

typedef struct gp_frame {
    uint32_t node;
    int64_t line;
} gp_frame_t;

typedef struct gp_view {
    gort__pprof_t *p;
    int vi;               /* index of the value shown */
    int count_vi;         /* index of a "count" value, or -1 */
    gp_node_t *node;
    uint32_t nnode;
    uint32_t *loc_off;    /* frames of location i: frame[loc_off[i] .. loc_off[i+1]) */
    gp_frame_t *frame;
    bool *keep;           /* sample passes the filters */
    int64_t total;        /* sum of |value| over all samples, before filters */
    int64_t unit_min;     /* picks the display unit (gp_choose_unit) */
    char *addrnames;      /* names of address-only nodes */
    char filters[512];    /* "focus=...; ignore=..." for headers, "" if none */
} gp_view_t;

/* Loads path and prepares a view; on error prints it and returns 1. */
int gp_view_open(gp_view_t *v, const char *path, const gp_opts_t *o);
void gp_view_close(gp_view_t *v);
const char *gp_str(const gort__pprof_t *p, int64_t i);
const char *gp_type_name(const gp_view_t *v);
const char *gp_unit(const gp_view_t *v);
/* Formats value in the view's unit ("1.52s", "829kB", "12"). */
char *gp_fmt_value(const gp_view_t *v, int64_t value, char *buf, size_t n);
/* Picks the display unit for a report whose smallest shown value is min. */
void gp_choose_unit(gp_view_t *v, int64_t min);
/* pprof's percentage column: "87.50%", "  100%", " 0.12%". */
char *gp_fmt_pct(int64_t value, int64_t total, char *buf, size_t n);
/* The header lines pprof prints before a report (File, Type, Time, ...). */
void gp_print_header(FILE *out, const gp_view_t *v);
/* Compiles an extended regex; prints the error and returns false. */
bool gp_regcomp(regex_t *re, const char *pat, const char *what);

/* Frames (inline-expanded locations) over the kept samples, plus one, and
 * the smallest power of two >= twice that: the size of an open-addressing
 * table keyed by frame.  Reports that index per-frame tables use both. */
size_t gp_kept_frames(const gp_view_t *v, size_t *table_cap);

/* Flat and cumulative value per node, over the kept samples. */
typedef struct gp_sums {
    int64_t *flat, *cum;
} gp_sums_t;
int gp_sums(const gp_view_t *v, gp_sums_t *s);
void gp_sums_free(gp_sums_t *s);
/* Node indexes sorted by flat (or cum) descending, then name. */
uint32_t *gp_sorted_nodes(const gp_view_t *v, const gp_sums_t *s, bool by_cum);

/* The reports (prof/tool/<name>.c). */
int gp_cmd_top(const gp_opts_t *o, const char *path, FILE *out);
int gp_cmd_list(const gp_opts_t *o, const char *re, const char *path, FILE *out);
int gp_cmd_peek(const gp_opts_t *o, const char *re, const char *path, FILE *out);
int gp_cmd_flame(const gp_opts_t *o, const char *path);
int gp_cmd_diff(const gp_opts_t *o, const char *base, const char *next, FILE *out);
int gp_cmd_goroutines(const gp_opts_t *o, const char *path, FILE *out);
int gp_cmd_http(const gp_opts_t *o, const char *path);
int gp_cmd_trace(const gp_opts_t *o, const char *path, FILE *out);

/* Writes the flame graph of v as an SVG (html false) or a page with the SVG
 * and its script (html true). */
int gp_flame_write(const gp_view_t *v, FILE *out, bool html, const char *title);
/* The top table as HTML rows, for the web UI. */
void gp_top_html(const gp_view_t *v, FILE *out);
/* The list report as text, for a view already open. */
int gp_list_view(const gp_view_t *v, const gp_opts_t *o, const char *re, FILE *out);
/* Escapes s for HTML/XML text and attributes. */
void gp_xml_escape(FILE *out, const char *s);

/* DWARF lookups through libdwfl (dwarf.c). */
typedef struct gp_dwarf gp_dwarf_t;
gp_dwarf_t *gp_dwarf_open(const char *path, char *err, size_t errlen);
void gp_dwarf_close(gp_dwarf_t *d);
/* File and first/last line of the function named name; false if unknown.
 * *file stays valid until gp_dwarf_close. */
bool gp_dwarf_func_lines(gp_dwarf_t *d, const char *name, const char **file, int *lo, int *hi);

/* URLs (fetch.c): whether s is one, and gp_fetch, which GETs it into a
 * temporary file removed at exit and sets *path to it.  0, or 1 after
 * printing the error. */
bool gp_is_url(const char *s);
int gp_fetch(const char *url, const char **path);

/* Errors: one line to stderr, "gortprof: ...". Returns 1. */
int gp_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
