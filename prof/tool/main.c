/*
 * main.c: gortprof's command line: flags, commands, --help.
 *
 * Flags are pprof's, spelled as pprof spells them (-focus=RE or -focus RE,
 * one or two dashes) and accepted anywhere on the line, so a command copied
 * from `go tool pprof` habits works.  Exit status: 0 success, 1 any error
 * (a bad profile included: one line on stderr), 2 a usage error.
 *
 * Rejected: getopt_long (no "-flag=value" with one dash, which pprof users
 * type), subcommand-specific flag sets (every report takes the filters).
 */
#include "gortprof.h"

#include <stdlib.h>
#include <string.h>

#include <gort.h> /* GORT_VERSION_STRING only: the tool links no runtime */

static const char usage[] =
    "usage: gortprof COMMAND [FLAGS] ARGS...\n"
    "       gortprof -http=[HOST]:PORT [FLAGS] PROFILE\n"
    "\n"
    "Reads CPU, goroutine, block, mutex and heap profiles in pprof format\n"
    "(profile.proto, gzipped or not), written by gort or by Go.  A PROFILE may be\n"
    "a URL (http://HOST:PORT/debug/pprof/profile?seconds=5): it is fetched first.\n"
    "\n"
    "Commands:\n"
    "  top [-n N] [-cum] PROFILE   flat and cumulative table, as go tool pprof -top:\n"
    "                              flat, flat%, sum%, cum, cum%, name\n"
    "  list REGEX PROFILE          source of the functions matching REGEX, each line\n"
    "                              annotated with flat and cum; source is found by the\n"
    "                              profile's file names (and -source_path), and, with\n"
    "                              -bin BINARY or the profile's main mapping, the\n"
    "                              binary's DWARF gives files and line ranges\n"
    "  peek REGEX PROFILE          callers and callees of the functions matching REGEX\n"
    "  tree PROFILE                callers and callees of every function\n"
    "  flame PROFILE -o OUT        flame graph: OUT.svg is an SVG (counts in tooltips);\n"
    "                              OUT.html adds click-to-zoom, search and reset\n"
    "  diff BASE NEW               change of flat and cum per function, biggest first\n"
    "  goroutines PROFILE          goroutines grouped by identical stack, from a goroutine\n"
    "                              profile or a text dump (gort's or Go's debug=2 format)\n"
    "  trace TRACEFILE             execution trace (GORT_TRACE, gort_trace_start, Go's\n"
    "                              runtime/trace): goroutines by start function with\n"
    "                              execution, scheduler-wait, blocked (by reason) and\n"
    "                              syscall time; scheduler latency p50/p90/p99/max\n"
    "  help                        this text\n"
    "  version, --version          gortprof's version (gort's)\n"
    "  -http=HOST:PORT PROFILE     web UI (top table, flame graph, source); HOST defaults\n"
    "                              to 127.0.0.1, so -http=:8080 stays on loopback\n"
    "\n"
    "Flags (top, list, peek, tree, flame, diff, -http):\n"
    "  -n N, -nodecount=N          show at most N rows (default: all)\n"
    "  -cum                        sort top by cumulative value\n"
    "  -nodefraction=F             hide functions with cum <= F of total (default 0.005)\n"
    "  -focus=REGEX                keep samples with a function (or file) matching REGEX\n"
    "  -ignore=REGEX               drop samples with a function (or file) matching REGEX\n"
    "  -tagfocus=KEY=VALUE[,...]   keep samples whose label KEY matches a VALUE (regex for\n"
    "                              string labels; N or LO:HI for numeric ones)\n"
    "  -sample_index=NAME|N        sample value to report (e.g. alloc_space, 0); default:\n"
    "                              the profile's default, else the last\n"
    "  -o FILE, -output=FILE       output file (flame; others print to stdout)\n"
    "  -bin=BINARY                 binary for list (DWARF files and line ranges)\n"
    "  -source_path=DIR            also look for source files under DIR\n"
    "  -no_browser                 -http: do not print the browser hint\n"
    "\n"
    "Limits on hostile input: a gzipped profile may inflate to at most 1 GiB and\n"
    "at most max(64 MiB, 64x its size); a decoded profile may use at most 64x its\n"
    "size (+1 MiB) of memory.  Errors are one line on stderr, exit status 1.\n"
    "See docs/gortprof.md.\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "gortprof: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nRun 'gortprof --help' for usage.\n");
    return 2;
}

/* Flags that take a value, and where it goes. */
typedef struct flagdef {
    const char *name;
    const char **str;
    int *num;
    double *dbl;
    bool *flag;
} flagdef_t;

/* Long because it is a flat table: the flag list, then one short branch
 * per command, each only parsing its arguments and calling gp_cmd_*.
 * Splitting it would scatter the one place that lists every command. */
int main(int argc, char **argv)
{
    gp_opts_t o = {.nodefraction = 0.005};
    int n = 0;
    const char *pos[8];
    int npos = 0;
    flagdef_t defs[] = {
        {"n", NULL, &o.nodecount, NULL, NULL},
        {"nodecount", NULL, &o.nodecount, NULL, NULL},
        {"cum", NULL, NULL, NULL, &o.cum},
        {"nodefraction", NULL, NULL, &o.nodefraction, NULL},
        {"focus", &o.focus, NULL, NULL, NULL},
        {"ignore", &o.ignore, NULL, NULL, NULL},
        {"tagfocus", &o.tagfocus, NULL, NULL, NULL},
        {"sample_index", &o.sample_index, NULL, NULL, NULL},
        {"o", &o.output, NULL, NULL, NULL},
        {"output", &o.output, NULL, NULL, NULL},
        {"bin", &o.bin, NULL, NULL, NULL},
        {"http", &o.http, NULL, NULL, NULL},
        {"source_path", &o.source_path, NULL, NULL, NULL},
        {"no_browser", NULL, NULL, NULL, &o.no_browser},
        {NULL, NULL, NULL, NULL, NULL},
    };
    (void)n;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "-help") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        }
        if (!strcmp(a, "--version") || !strcmp(a, "-version")) {
            puts("gortprof " GORT_VERSION_STRING);
            return 0;
        }
        if (a[0] != '-' || a[1] == 0) {
            if (npos == 8)
                return usage_error("too many arguments (%s)", a);
            pos[npos++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            while (++i < argc && npos < 8)
                pos[npos++] = argv[i];
            break;
        }
        const char *name = a + (a[1] == '-' ? 2 : 1);
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        flagdef_t *d = defs;
        for (; d->name; d++)
            if (strlen(d->name) == nlen && !strncmp(d->name, name, nlen))
                break;
        if (!d->name)
            return usage_error("unknown flag %s", a);
        if (d->flag) {
            *d->flag = !eq || strcmp(eq + 1, "false") != 0;
            continue;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val) {
            if (i + 1 >= argc)
                return usage_error("flag %s needs a value", a);
            val = argv[++i];
        }
        if (d->str) {
            *d->str = val;
        } else if (d->num) {
            char *end;
            long x = strtol(val, &end, 10);
            if (*end || end == val || x < 0 || x > 1000000000)
                return usage_error("bad number for -%s", d->name);
            *d->num = (int)x;
        } else {
            char *end;
            double x = strtod(val, &end);
            if (*end || end == val || x < 0 || x > 1)
                return usage_error("bad fraction for -%s (want 0..1)", d->name);
            *d->dbl = x;
        }
    }
    /* A profile given as a URL is fetched first; every report then reads
     * the file.  The first word is a command, and list's and peek's
     * REGEX never starts with "http://" in practice. */
    for (int i = o.http ? 0 : 1; i < npos; i++)
        if (gp_is_url(pos[i]) && gp_fetch(pos[i], &pos[i]) != 0)
            return 1;
    if (o.http) {
        if (npos != 1)
            return usage_error("%s", "-http needs exactly one PROFILE");
        return gp_cmd_http(&o, pos[0]);
    }
    if (npos == 0) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = pos[0];
    int nargs = npos - 1;
    const char **args = pos + 1;
#define NEED(k, what)                                                                                            \
    do {                                                                                                         \
        if (nargs != (k))                                                                                        \
            return usage_error("usage: gortprof %s", what);                                                      \
    } while (0)
    if (!strcmp(cmd, "help")) {
        fputs(usage, stdout);
        return 0;
    } else if (!strcmp(cmd, "version")) {
        puts("gortprof " GORT_VERSION_STRING);
        return 0;
    } else if (!strcmp(cmd, "top")) {
        NEED(1, "top [-n N] [-cum] PROFILE");
        return gp_cmd_top(&o, args[0], stdout);
    } else if (!strcmp(cmd, "list")) {
        NEED(2, "list REGEX PROFILE");
        return gp_cmd_list(&o, args[0], args[1], stdout);
    } else if (!strcmp(cmd, "peek")) {
        NEED(2, "peek REGEX PROFILE");
        return gp_cmd_peek(&o, args[0], args[1], stdout);
    } else if (!strcmp(cmd, "tree")) {
        NEED(1, "tree PROFILE");
        return gp_cmd_peek(&o, NULL, args[0], stdout);
    } else if (!strcmp(cmd, "flame")) {
        NEED(1, "flame PROFILE -o OUT.svg|OUT.html");
        return gp_cmd_flame(&o, args[0]);
    } else if (!strcmp(cmd, "diff")) {
        NEED(2, "diff BASE NEW");
        return gp_cmd_diff(&o, args[0], args[1], stdout);
    } else if (!strcmp(cmd, "goroutines")) {
        NEED(1, "goroutines PROFILE");
        return gp_cmd_goroutines(&o, args[0], stdout);
    } else if (!strcmp(cmd, "trace")) {
        NEED(1, "trace TRACEFILE");
        return gp_cmd_trace(&o, args[0], stdout);
    }
    return usage_error("unknown command \"%s\"", cmd);
}
