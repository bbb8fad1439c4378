/*
 * pprof.h: the profile.proto model, its builder, encoder and decoder.
 *
 * One in-memory model (gort__pprof_t) serves the three users: the CPU,
 * goroutine, block and mutex profilers build one and write it; gortprof
 * decodes one (ours or Go's) and reads it; the fuzz target decodes hostile
 * bytes into one.
 *
 * The model mirrors profile.proto (github.com/google/pprof/proto), with one
 * change: references are resolved.  A sample names its locations, a location
 * its mapping, a line its function by index into the profile's arrays, not
 * by id, so every reference in a model is valid by construction and readers
 * never look ids up.  The ids themselves are kept (loc[i].id) and written
 * back as they were; the builder numbers them 1, 2, 3, ... as pprof wants.
 *
 * Invariants of every model, built or decoded:
 *   - str[0] is "" and every string field (int64) is an index < nstr;
 *   - every sample has exactly nsample_type values;
 *   - sample locations are leaf first; a location's lines are innermost
 *     first (lines[0] is the inlined callee, the last is the real caller);
 *   - ids are nonzero and unique per kind.
 *
 * Builder: gort__pprof_new(), then gort__pprof_add_* calls, which intern
 * strings and dedupe functions, locations and mappings, and merge samples
 * with the same stack and labels by adding their values (the profiler can
 * feed raw samples straight in).  Then gort__pprof_write().  The builder
 * calls work only on a profile from gort__pprof_new (a decoded profile has
 * no intern tables).  Not thread-safe: one profile, one writer.
 *
 * Decoder limits (pprof_decode.c): gzip input inflates to at most
 * GORT__PPROF_MAX_INFLATE (1 GiB) and at most max(64 MiB, 64x the input
 * size); the model may take at most 64x the decoded bytes plus 1 MiB of
 * memory.  A profile past either limit is rejected with an error, never
 * allocated.
 *
 * Rejected: a generic protobuf library (a dependency for ~400 lines, and a
 * reflection layer the hot encode path does not want); keeping raw ids in
 * the model (every reader would need id maps and would have to handle
 * dangling ids itself).
 */
#ifndef GORT_PPROF_H
#define GORT_PPROF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GORT__PPROF_NONE UINT32_MAX          /* "no mapping" / "no function" */
#define GORT__PPROF_MAX_INFLATE (1ull << 30) /* absolute cap on gunzipped size */

typedef struct gort__pprof_vtype {
    int64_t type, unit; /* string indexes, e.g. "cpu", "nanoseconds" */
} gort__pprof_vtype_t;

typedef struct gort__pprof_label {
    int64_t key;      /* string index */
    int64_t str;      /* string index; 0 for a numeric label */
    int64_t num;      /* numeric value when str == 0 */
    int64_t num_unit; /* string index, 0 if none */
} gort__pprof_label_t;

typedef struct gort__pprof_sample {
    uint32_t *loc;              /* nloc indexes into p->loc, leaf first */
    int64_t *value;             /* p->nsample_type values */
    gort__pprof_label_t *label; /* nlabel labels */
    uint32_t nloc, nlabel;
} gort__pprof_sample_t;

typedef struct gort__pprof_mapping {
    uint64_t id, start, limit, offset;
    int64_t file, build_id; /* string indexes */
    bool has_functions, has_filenames, has_line_numbers, has_inline_frames;
} gort__pprof_mapping_t;

typedef struct gort__pprof_line {
    uint32_t func; /* index into p->func, or GORT__PPROF_NONE */
    int64_t line, column;
} gort__pprof_line_t;

typedef struct gort__pprof_location {
    uint64_t id, address;
    uint32_t mapping; /* index into p->mapping, or GORT__PPROF_NONE */
    uint32_t nline;
    gort__pprof_line_t *line; /* innermost (inlined) first */
    bool folded;
} gort__pprof_location_t;

typedef struct gort__pprof_function {
    uint64_t id;
    int64_t name, system_name, file, start_line; /* first three: string indexes */
} gort__pprof_function_t;

typedef struct gort__pprof_priv gort__pprof_priv_t;

typedef struct gort__pprof {
    gort__pprof_vtype_t *sample_type;
    gort__pprof_sample_t *sample;
    gort__pprof_mapping_t *mapping;
    gort__pprof_location_t *loc;
    gort__pprof_function_t *func;
    const char **str;  /* NUL-terminated; str_len[i] bytes (may hold NULs) */
    uint32_t *str_len;
    int64_t *comment;  /* string indexes */
    size_t nsample;
    uint32_t nsample_type, nmapping, nloc, nfunc, nstr, ncomment;
    int64_t drop_frames, keep_frames; /* string indexes */
    int64_t time_nanos, duration_nanos;
    gort__pprof_vtype_t period_type;
    int64_t period;
    int64_t default_sample_type; /* string index */
    gort__pprof_priv_t *priv;    /* memory and intern tables */
} gort__pprof_t;

/* ---- building ---------------------------------------------------------- */

/* An empty profile with str[0] == ""; NULL when out of memory. */
gort__pprof_t *gort__pprof_new(void);
void gort__pprof_free(gort__pprof_t *p);

/* Interns s (NULL means ""); returns its string index or -ENOMEM. */
int64_t gort__pprof_str(gort__pprof_t *p, const char *s);
/* Appends a sample type ("cpu", "nanoseconds"); only before the first
 * sample.  0 or -ENOMEM / -EINVAL. */
int gort__pprof_add_sample_type(gort__pprof_t *p, const char *type, const char *unit);
/* Sets period_type and period.  0 or -ENOMEM. */
int gort__pprof_set_period(gort__pprof_t *p, const char *type, const char *unit, int64_t period);
/* Returns the index of the mapping that starts at start, adding it if it is
 * new; or -ENOMEM. */
int64_t gort__pprof_add_mapping(gort__pprof_t *p, uint64_t start, uint64_t limit, uint64_t offset,
                                const char *file, const char *build_id);
/* Returns the index of the function with these fields, adding it if new;
 * or -ENOMEM. */
int64_t gort__pprof_add_function(gort__pprof_t *p, const char *name, const char *system_name,
                                 const char *file, int64_t start_line);
/* Returns the index of the location with this mapping (index or
 * GORT__PPROF_NONE), address and lines (innermost first, nline may be 0),
 * adding it if new; or -ENOMEM / -EINVAL for a bad index. */
int64_t gort__pprof_add_location(gort__pprof_t *p, uint32_t mapping, uint64_t address,
                                 const gort__pprof_line_t *line, uint32_t nline);
/* Adds nsample_type values for the stack loc[0..nloc) (leaf first) with
 * the given labels (string indexes from gort__pprof_str), or adds them to
 * the sample with the same stack and labels.  0 or -ENOMEM / -EINVAL. */
int gort__pprof_add_sample(gort__pprof_t *p, const uint32_t *loc, uint32_t nloc, const int64_t *value,
                           const gort__pprof_label_t *label, uint32_t nlabel);

/* Appends a comment line.  0 or -ENOMEM. */
int gort__pprof_add_comment(gort__pprof_t *p, const char *text);

/* ---- encoding ---------------------------------------------------------- */

/* Encodes p as profile.proto, gzipped if gzip.  *out is malloc'd.  0 or
 * -ENOMEM / -EOVERFLOW. */
int gort__pprof_encode(const gort__pprof_t *p, bool gzip, uint8_t **out, size_t *outlen);
/* Encodes and writes p to fd (retrying short writes and EINTR).  0 or a
 * negative errno. */
int gort__pprof_write(const gort__pprof_t *p, int fd, bool gzip);

/* ---- decoding ---------------------------------------------------------- */

/* Decodes profile.proto, gzipped (by magic 1f 8b) or not.  On error returns
 * NULL and writes a one-line message (no newline) to err. */
gort__pprof_t *gort__pprof_decode(const void *buf, size_t len, char *err, size_t errlen);
/* Reads path (at most GORT__PPROF_MAX_INFLATE bytes) and decodes it. */
gort__pprof_t *gort__pprof_read_file(const char *path, char *err, size_t errlen);
/* Reads all of path into a malloc'd buffer, at most max bytes.  0 or a
 * negative errno (-EFBIG past max). */
int gort__pprof_slurp(const char *path, size_t max, uint8_t **out, size_t *outlen);

#endif /* GORT_PPROF_H */
