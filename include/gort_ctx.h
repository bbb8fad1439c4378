/*
 * gort_ctx.h: Go's context (cancellation trees) and errgroup.
 *
 * A context is cancelled once, by its own cancel, by its deadline, or by
 * the cancellation of its parent; cancelling it cancels every context
 * derived from it.  Its done channel is closed at that moment, so any
 * number of goroutines can wait for it with gort_chan_recv or in a
 * gort_select case { gort_ctx_done(c), GORT_RECV }.
 *
 * Ownership.  Every context but the background is reference counted.
 *   - The creator owns one reference.  gort_ctx_free(c) cancels c (as Go's
 *     `defer cancel()`) and drops that reference.  Call it exactly once.
 *   - A child holds a reference to its parent: a parent freed before its
 *     children is cancelled at once but stays allocated until its last
 *     child is freed.  Freeing a child first unlinks it from the parent, so
 *     a long-lived parent does not accumulate dead children.
 *   - Hand a context to a goroutine that may outlive the creator's free
 *     with gort_ctx_ref(c); that goroutine drops it with gort_ctx_unref(c),
 *     which never cancels.  A goroutine blocked on gort_ctx_done(c) must
 *     hold a reference (freeing the last one frees the channel).
 *   - A pending deadline holds no reference: freeing c stops it.  While
 *     any deadline is pending, one goroutine (deadline_service, in
 *     gort_goroutines and leak reports) waits for them all; it returns
 *     when none is left.
 * The background context is static: ref, unref and free do nothing.
 *
 * Errors are negative errno values: GORT_CTX_CANCELED (-ECANCELED) and
 * GORT_CTX_DEADLINE (-ETIMEDOUT, Go's DeadlineExceeded).  The cause is any
 * non-zero int given to gort_ctx_cancel_cause (errgroup gives its first
 * error), or the error itself.
 *
 * Deadlines use gort_nanotime()'s clock.
 */
#ifndef GORT_CTX_H
#define GORT_CTX_H

#include <errno.h>

#include "gort.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gort_context gort_ctx;

#define GORT_CTX_CANCELED (-ECANCELED)
#define GORT_CTX_DEADLINE (-ETIMEDOUT)

/* context.Background(): never cancelled, no deadline, no values. */
GORT_API gort_ctx *gort_ctx_background(void);
GORT_API gort_ctx *gort_ctx_with_cancel(gort_ctx *parent);
/* Cancelled with GORT_CTX_DEADLINE at gort_nanotime() == deadline_ns (or
 * at once if that has passed); a parent's earlier deadline wins. */
GORT_API gort_ctx *gort_ctx_with_deadline(gort_ctx *parent, int64_t deadline_ns);
GORT_API gort_ctx *gort_ctx_with_timeout(gort_ctx *parent, int64_t timeout_ns);
/* A context that carries key -> val (keys compare as pointers) and is
 * cancelled with its parent; it has no cancel of its own. */
GORT_API gort_ctx *gort_ctx_with_value(gort_ctx *parent, const void *key, void *val);

/* Cancels c and its descendants with GORT_CTX_CANCELED (cause: the given
 * one, or GORT_CTX_CANCELED).  Only the first cancellation counts.  No
 * effect on the background or on a value context. */
GORT_API void gort_ctx_cancel(gort_ctx *c);
GORT_API void gort_ctx_cancel_cause(gort_ctx *c, int cause);

/* Closed when c is cancelled; NULL (never ready, as a nil channel) for the
 * background.  Owned by c: do not close or free it. */
GORT_API gort_chan *gort_ctx_done(gort_ctx *c);
/* 0 until cancelled, then GORT_CTX_CANCELED or GORT_CTX_DEADLINE. */
GORT_API int gort_ctx_err(gort_ctx *c);
/* 0 until cancelled, then the cause (context.Cause). */
GORT_API int gort_ctx_cause(gort_ctx *c);
/* false when c has no deadline. */
GORT_API bool gort_ctx_deadline(gort_ctx *c, int64_t *deadline_ns);
/* The value of the nearest context up the chain that carries key; NULL. */
GORT_API void *gort_ctx_value(gort_ctx *c, const void *key);
/* Sleeps ns or until c is cancelled: 0, or gort_ctx_err(c). */
GORT_API int gort_ctx_sleep(gort_ctx *c, int64_t ns);

GORT_API gort_ctx *gort_ctx_ref(gort_ctx *c);
GORT_API void gort_ctx_unref(gort_ctx *c);
GORT_API void gort_ctx_free(gort_ctx *c);

/* ------------------------------------------------------------------ */
/* errgroup (golang.org/x/sync/errgroup)                                */
/* ------------------------------------------------------------------ */

/* Each function runs as a goroutine and gets the group's context; a
 * non-zero return is an error.  The first error cancels the context (cause:
 * that error) and is what gort_errgroup_wait returns. */
typedef int (*gort_errgroup_fn)(gort_ctx *ctx, void *arg);
typedef struct gort_errgroup gort_errgroup;

/* errgroup.WithContext: the group's context is a child of parent (NULL:
 * background).  The group owns it; gort_errgroup_ctx returns it. */
GORT_API gort_errgroup *gort_errgroup_new(gort_ctx *parent);
GORT_API gort_ctx *gort_errgroup_ctx(gort_errgroup *g);
/* SetLimit: at most n functions run at once (n <= 0: no limit).  Only
 * while none is running. */
GORT_API void gort_errgroup_set_limit(gort_errgroup *g, int n);
/* Go: blocks while the limit is reached (backpressure). */
GORT_API void gort_errgroup_go(gort_errgroup *g, gort_errgroup_fn fn, void *arg);
/* TryGo: false, without starting fn, when the limit is reached. */
GORT_API bool gort_errgroup_trygo(gort_errgroup *g, gort_errgroup_fn fn, void *arg);
/* Waits for every function, cancels the context, returns the first error
 * (0: none). */
GORT_API int gort_errgroup_wait(gort_errgroup *g);
/* After wait: frees the group and its context. */
GORT_API void gort_errgroup_free(gort_errgroup *g);

#ifdef __cplusplus
}
#endif
#endif /* GORT_CTX_H */
