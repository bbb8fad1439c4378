/*
 * cxx.c: a C++ exception that escapes a goroutine.  (cxx.h carries the
 * C++ runtime's per-thread exception state with the goroutine.)
 *
 * A goroutine's stack ends at gort__gstart (switch_amd64.S), whose return
 * address is undefined.  An exception nobody catches would make the
 * unwinder's search phase run off that end, and __cxa_throw would call
 * std::terminate: "terminate called after throwing ..." and an abort, with
 * no word of which goroutine threw.  Instead gort__gstart's unwind entry
 * names this function as its personality routine.  The unwinder asks the
 * personality of every frame, innermost first, whether it handles the
 * exception; a frame with a matching catch answers before us, so an
 * exception thrown and caught inside the goroutine never gets here.  We
 * are asked only when no frame of the goroutine catches it, still in the
 * search phase: nothing has been unwound, and the fatal error's dump shows
 * the stack of the throw.
 *
 * The exception's type comes from the Itanium C++ ABI's exception header,
 * which libstdc++ and libc++abi lay out alike in front of the unwinder's
 * _Unwind_Exception.  Its mangled name is demangled here for the common
 * shapes (std::x, a::b::C); anything else prints mangled.
 *
 * Rejected: catching in a C++ translation unit (the library is C, and
 * linking libstdc++ into every C program for this is too much);
 * std::set_terminate (a C++ API, and the terminate handler runs without
 * the exception's type at hand); unwinding first and reporting at the
 * goroutine's entry (the dump would no longer show where it was thrown).
 */
#include "runtime.h"

#include <stdio.h>
#include <string.h>
#include <unwind.h>

/* The Itanium C++ ABI's __cxa_exception: ten pointer-sized words (two ints
 * share one) before the _Unwind_Exception; the type_info pointer first. */
#define CXA_HEADER_WORDS 10
#define GNU_CXX_CLASS 0x474e5543432b2b00ULL   /* "GNUCC++\0" */
#define GNU_CXX_DEPENDENT 0x474e5543432b2b01ULL /* "GNUCC++\1": rethrow_exception */
#define CLANG_CXX_CLASS 0x434c4e47432b2b00ULL /* "CLNGC++\0" */

/* type_info: a vtable pointer, then the mangled name. */
static const char *type_name(const struct _Unwind_Exception *ue)
{
    void *const *hdr = (void *const *)ue - CXA_HEADER_WORDS;
    uint64_t cls = (uint64_t)ue->exception_class;
    if (cls == GNU_CXX_DEPENDENT) {
        /* The header's first word is the primary exception's object, which
         * follows the primary's own _Unwind_Exception. */
        const char *obj = hdr[0];
        hdr = (void *const *)(obj - sizeof(struct _Unwind_Exception)) - CXA_HEADER_WORDS;
    } else if (cls != GNU_CXX_CLASS && cls != CLANG_CXX_CLASS) {
        return NULL;
    }
    const char *const *ti = hdr[0];
    if (!ti || !ti[1])
        return NULL;
    const char *name = ti[1];
    return name[0] == '*' ? name + 1 : name; /* libstdc++ marks local types */
}

/* <len><id>, appended to out; the rest of s. */
static const char *source_name(const char *s, char *out, size_t n)
{
    size_t len = 0;
    while (*s >= '0' && *s <= '9')
        len = len * 10 + (size_t)(*s++ - '0');
    if (len == 0 || strnlen(s, len) < len)
        return NULL;
    size_t have = strlen(out);
    snprintf(out + have, n - have, "%s%.*s", have ? "::" : "", (int)len, s);
    return s + len;
}

/* "St13runtime_error" -> "std::runtime_error", "N2ns3ErrE" -> "ns::Err". */
static void demangle(const char *m, char *out, size_t n)
{
    const char *s = m;
    bool nested = *s == 'N';
    s += nested;
    out[0] = 0;
    if (s[0] == 'S' && s[1] == 't') {
        snprintf(out, n, "std");
        s += 2;
    }
    while (s && *s >= '0' && *s <= '9')
        s = source_name(s, out, n);
    if (!s || *s != (nested ? 'E' : 0) || (nested && s[1]) || !out[0])
        snprintf(out, n, "%s", m);
}

_Unwind_Reason_Code gort__cxx_escape_personality(int version, _Unwind_Action actions,
                                                 _Unwind_Exception_Class cls, struct _Unwind_Exception *ue,
                                                 struct _Unwind_Context *ctx);
_Unwind_Reason_Code gort__cxx_escape_personality(int version, _Unwind_Action actions,
                                                 _Unwind_Exception_Class cls, struct _Unwind_Exception *ue,
                                                 struct _Unwind_Context *ctx)
{
    (void)version;
    (void)cls;
    (void)ctx;
    /* A forced unwind (thread cancellation) is not ours to stop; the
     * cleanup phase never reaches here, as no search said "handled". */
    if (!(actions & _UA_SEARCH_PHASE) || (actions & _UA_FORCE_UNWIND))
        return _URC_CONTINUE_UNWIND;
    const char *mangled = type_name(ue);
    char name[256];
    if (mangled)
        demangle(mangled, name, sizeof name);
    else
        snprintf(name, sizeof name, "of a foreign language (class %#llx)", (unsigned long long)ue->exception_class);
    gort__fatal("uncaught C++ exception %s in goroutine %llu", name, (unsigned long long)gort_self());
}
