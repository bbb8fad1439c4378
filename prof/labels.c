/*
 * labels.c: profiler labels on goroutines (Go's pprof.Do,
 * pprof.SetGoroutineLabels, pprof.Label).
 *
 * A goroutine's labels are an immutable, reference-counted set of
 * key=value pairs (prof/profiles.h), sorted by key.  Changing them builds a
 * new set and swaps the pointer in g->labels; the old set lives on as long
 * as a CPU sample or a profile record holds it.  A goroutine created by
 * gort_go takes a reference to its creator's set (inheritance costs one
 * atomic add, no copy), as Go copies the label map pointer.
 *
 * Only the goroutine itself changes g->labels (the functions below act on
 * the calling goroutine; inheritance writes a child that is not yet
 * runnable).  The SIGPROF handler reads g->labels on the goroutine's own
 * thread; the pointer is stored with __atomic_store_n so that store is one
 * instruction and is ordered before the old set's release.
 *
 * Rejected: copying labels into each CPU sample (a signal handler copying
 * strings of any length into a fixed record either truncates or drops);
 * a mutable map per goroutine (the handler could read it mid-update).
 */
#include <stdlib.h>
#include <string.h>

#include "gort_prof.h"
#include "profiles.h"

_Atomic int64_t gort__labels_live; /* sets allocated and not freed (tests) */

void gort__labels_unref(gort_labels_t *l)
{
    if (l && atomic_fetch_sub_explicit(&l->ref, 1, memory_order_acq_rel) == 1) {
        atomic_fetch_sub_explicit(&gort__labels_live, 1, memory_order_relaxed);
        free(l);
    }
}

static gort_labels_t *load(gort_g_t *gp) { return __atomic_load_n(&gp->labels, __ATOMIC_RELAXED); }

/* The new set must be complete before the handler can see it; the release
 * store and the handler's load on the same thread make that so. */
static void store(gort_g_t *gp, gort_labels_t *l) { __atomic_store_n(&gp->labels, l, __ATOMIC_RELEASE); }

typedef struct kv {
    const char *key, *value;
} kv_t;

static int kv_cmp(const void *a, const void *b) { return strcmp(((const kv_t *)a)->key, ((const kv_t *)b)->key); }

/* base's pairs overridden by kv[0..n) (a NULL value removes the key).
 * Returns NULL for an empty set; throws when out of memory. */
static gort_labels_t *merge(const gort_labels_t *base, const char *const *kv, int n)
{
    int nb = base ? base->n : 0;
    kv_t *all = malloc(sizeof(kv_t) * (size_t)(nb + n + 1));
    if (!all)
        gort__throw("out of memory for profiler labels");
    int k = 0;
    for (int i = 0; i < nb; i++)
        all[k++] = (kv_t){base->kv[i].key, base->kv[i].value};
    for (int i = 0; i < n; i++) {
        const char *key = kv[2 * i], *value = kv[2 * i + 1];
        if (!key)
            continue;
        int j = 0;
        while (j < k && strcmp(all[j].key, key) != 0)
            j++;
        if (j == k)
            all[k++] = (kv_t){key, value};
        else
            all[j].value = value;
    }
    int m = 0;
    size_t bytes = 0;
    for (int i = 0; i < k; i++)
        if (all[i].value) {
            all[m++] = all[i];
            bytes += strlen(all[i].key) + strlen(all[i].value) + 2;
        }
    if (m == 0) {
        free(all);
        return NULL;
    }
    qsort(all, (size_t)m, sizeof(kv_t), kv_cmp);
    size_t head = sizeof(gort_labels_t) + sizeof(((gort_labels_t *)0)->kv[0]) * (size_t)m;
    gort_labels_t *l = malloc(head + bytes);
    if (!l)
        gort__throw("out of memory for profiler labels");
    atomic_fetch_add_explicit(&gort__labels_live, 1, memory_order_relaxed);
    char *s = (char *)l + head;
    atomic_init(&l->ref, 1);
    l->n = m;
    for (int i = 0; i < m; i++) {
        size_t kl = strlen(all[i].key) + 1, vl = strlen(all[i].value) + 1;
        memcpy(s, all[i].key, kl);
        l->kv[i].key = s;
        s += kl;
        memcpy(s, all[i].value, vl);
        l->kv[i].value = s;
        s += vl;
    }
    free(all);
    return l;
}

void gort_label_set(const char *key, const char *value)
{
    gort__fork_check();
    gort_g_t *gp = gort__getg();
    if (!gp || !key)
        return;
    const char *kv[2] = {key, value};
    gort_labels_t *old = load(gp);
    store(gp, merge(old, kv, 1));
    gort__labels_unref(old);
}

const char *gort_label_get(const char *key)
{
    gort__fork_check();
    gort_g_t *gp = gort__getg();
    const gort_labels_t *l = gp ? load(gp) : NULL;
    if (!l || !key)
        return NULL;
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->kv[i].key, key) == 0)
            return l->kv[i].value;
    return NULL;
}

void gort_label_do(const char *const *kv, int n, void (*fn)(void *), void *arg)
{
    gort__fork_check();
    gort_g_t *gp = gort__getg();
    if (!gp) {
        fn(arg);
        return;
    }
    /* The goroutine's reference to old stays counted while fn runs with
     * the merged set, and goes back to the goroutine after: no ref here
     * (one leaked a label set per call). */
    gort_labels_t *old = load(gp);
    store(gp, merge(old, kv, n > 0 ? n : 0));
    fn(arg);
    gp = gort__getg(); /* the same goroutine, perhaps on another M */
    gort_labels_t *cur = load(gp);
    store(gp, old);
    gort__labels_unref(cur);
}

void gort__labels_inherit(gort_g_t *child, gort_g_t *parent)
{
    gort_labels_t *l = load(parent);
    gort__labels_ref(l);
    store(child, l);
}

void gort__labels_release(gort_g_t *gp)
{
    gort_labels_t *l = load(gp);
    store(gp, NULL);
    gort__labels_unref(l);
}
