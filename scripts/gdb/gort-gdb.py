# gort-gdb.py: goroutines in gdb, for a live process or a core file.
#
#   (gdb) source scripts/gdb/gort-gdb.py
#   (gdb) info goroutines            id, state/wait reason, current function
#   (gdb) goroutine 7 bt             that goroutine's frames, parked or running
#   (gdb) goroutine 7 info locals    any command, in its innermost frame
#   (gdb) goroutine all bt
#
# Build the program with -g: everything is read through DWARF types from
# gort__allgs/gort__nallgs and the G fields (status, waitreason, ctx.sp,
# stack, m, syscall registers), so the script follows the struct layout of
# the binary it debugs.  The only layout it hard-codes is the frame
# gort__mcall saves (runtime/arch_amd64.h): at ctx.sp, x87/MXCSR control
# words, then r15 r14 r13 r12 rbx rbp and the return address.
#
# How a parked goroutine is shown: gdb cannot be told to start unwinding
# from arbitrary registers, and a core file's registers cannot be written
# (Go's runtime-gdb.py sets $pc/$sp, which only works on a live process).
# Instead a Python frame unwinder claims the innermost frame of the selected
# thread while a goroutine command runs and reports the goroutine's saved
# registers as its caller's, so frame #1 is the goroutine's top frame and
# gdb's own DWARF unwinder takes it from there.  The unwinder is inert the
# rest of the time.  A running goroutine is shown from the thread running
# it (its M's tid).  A goroutine in a system call starts from the pc, sp
# and frame pointer its syscall entry recorded.

import struct

import gdb
import gdb.unwinder

G_IDLE, G_RUNNABLE, G_RUNNING, G_SYSCALL, G_WAITING, G_DEAD, G_PREEMPTED = range(7)
STATE_NAMES = {
    G_IDLE: "idle", G_RUNNABLE: "runnable", G_RUNNING: "running",
    G_SYSCALL: "syscall", G_WAITING: "waiting", G_DEAD: "dead",
    G_PREEMPTED: "preempted",
}
# Used only when the binary's own table (gstatus.c: wr_names) cannot be
# read; keyed by enumerator name so that reordering the enum is harmless.
WAIT_REASONS = {
    "WR_CHAN_RECEIVE": "chan receive", "WR_CHAN_SEND": "chan send",
    "WR_CHAN_RECEIVE_NIL": "chan receive (nil chan)",
    "WR_CHAN_SEND_NIL": "chan send (nil chan)", "WR_SELECT": "select",
    "WR_SELECT_NO_CASES": "select (no cases)", "WR_SLEEP": "sleep",
    "WR_SYNC_MUTEX_LOCK": "sync.Mutex.Lock",
    "WR_SYNC_RWMUTEX_RLOCK": "sync.RWMutex.RLock",
    "WR_SYNC_RWMUTEX_LOCK": "sync.RWMutex.Lock",
    "WR_SYNC_WAITGROUP_WAIT": "sync.WaitGroup.Wait",
    "WR_SYNC_COND_WAIT": "sync.Cond.Wait", "WR_SEMACQUIRE": "semacquire",
    "WR_IO_WAIT": "IO wait", "WR_PREEMPTED": "preempted",
    "WR_STOP_THE_WORLD": "stop the world", "WR_PANICWAIT": "panicwait",
    "WR_ERRGROUP_WAIT": "errgroup.Wait", "WR_CONTEXT_DONE": "context done",
}
CTX_REGS = ("r15", "r14", "r13", "r12", "rbx", "rbp", "rip")  # from sp+8 on
CTX_FRAME_SIZE = 64
LIBGORT_DIRS = ("runtime/", "prof/", "sysmon/")


def _u64(v):
    return int(v) & 0xFFFFFFFFFFFFFFFF


def all_goroutines():
    try:
        n = int(gdb.parse_and_eval("gort__nallgs"))
        allgs = gdb.parse_and_eval("gort__allgs")
    except gdb.error as e:
        # A stripped libgort.so: its DWARF is in the debug package.
        raise gdb.GdbError("gort: the runtime's debug info is missing (%s); for a program using "
                           "libgort.so install libgort0-dbgsym, or build against a libgort with -g" % e)
    for i in range(n):
        p = allgs[i]
        if _u64(p) == 0:
            continue
        g = p.dereference()
        if int(g["status"]) in (G_DEAD, G_IDLE):
            continue
        yield g


def find_goroutine(goid):
    for g in all_goroutines():
        if int(g["goid"]) == goid:
            return g
    return None


def _wait_reason(wr):
    try:
        sym = gdb.lookup_static_symbol("wr_names")
        if sym is not None:
            s = sym.value()[wr]
            if _u64(s) != 0:
                return s.string()
    except (gdb.error, gdb.MemoryError):
        pass
    try:
        for f in gdb.lookup_type("enum gort_waitreason").fields():
            if f.enumval == wr:
                return WAIT_REASONS.get(f.name, "waiting")
    except gdb.error:
        pass
    return "waiting"


def state_string(g):
    st = int(g["status"])
    if st == G_WAITING and int(g["waitreason"]) != 0:
        return _wait_reason(int(g["waitreason"]))
    return STATE_NAMES.get(st, "???")


def saved_registers(g):
    """The registers a goroutine resumes with, or None if it runs or never ran."""
    st = int(g["status"])
    inf = gdb.selected_inferior()
    if st == G_SYSCALL:
        return {"rip": _u64(g["syscallpc"]), "rsp": _u64(g["syscallsp"]), "rbp": _u64(g["syscallfp"])}
    if st in (G_WAITING, G_RUNNABLE, G_PREEMPTED) and _u64(g["stack"]["lo"]) != 0:
        sp = _u64(g["ctx"]["sp"])
        words = struct.unpack("<8Q", bytes(inf.read_memory(sp, CTX_FRAME_SIZE)))
        regs = dict(zip(CTX_REGS, words[1:]))
        regs["rsp"] = sp + CTX_FRAME_SIZE
        return regs
    return None


def thread_of(g):
    m = g["m"]
    if _u64(m) == 0:
        return None
    tid = int(m.dereference()["tid"])
    for th in gdb.selected_inferior().threads():
        if th.ptid[1] == tid:
            return th
    return None


class _FrameId(object):
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


class GoroutineUnwinder(gdb.unwinder.Unwinder):
    """Claims frame #0 while .regs is set and makes .regs its caller."""

    def __init__(self):
        super(GoroutineUnwinder, self).__init__("gort-goroutine")
        self.regs = None

    def __call__(self, pending_frame):
        if self.regs is None or pending_frame.level() != 0:
            return None
        # gdb stops a walk whose frame lies below (is "inner to") the
        # frame before it; the thread's own frame #0 may be on a stack
        # mapped anywhere relative to the goroutine's (a signal stack, say),
        # so the claimed frame gets the lowest possible stack address.
        pc = pending_frame.read_register("rip")
        low = gdb.Value(8).cast(pending_frame.read_register("rsp").type)
        info = pending_frame.create_unwind_info(_FrameId(low, pc))
        for name, val in self.regs.items():
            t = pending_frame.read_register(name).type
            info.add_saved_register(name, gdb.Value(val).cast(t))
        return info


_unwinder = GoroutineUnwinder()
gdb.unwinder.register_unwinder(None, _unwinder, replace=True)


class goroutine_frames(object):
    """Context manager: the frames of goroutine g, innermost first."""

    def __init__(self, g):
        self.g = g
        self.thread = None
        self.frames = []

    def __enter__(self):
        self.prev_thread = gdb.selected_thread()
        regs = None
        if int(self.g["status"]) == G_RUNNING:
            self.thread = thread_of(self.g)
            if self.thread is None:
                return self
            self.thread.switch()
        else:
            regs = saved_registers(self.g)
            if regs is None:
                return self
        _unwinder.regs = regs
        gdb.invalidate_cached_frames()
        f = gdb.newest_frame()
        if regs is not None:
            f = f.older()  # frame #0 is the thread's, claimed above
        n = 0
        while f is not None and n < 200:
            if f.name() == "gort__gstart":
                break
            self.frames.append(f)
            try:
                f = f.older()
            except gdb.error:
                break
            n += 1
        return self

    def __exit__(self, *exc):
        _unwinder.regs = None
        gdb.invalidate_cached_frames()
        if self.prev_thread is not None and self.prev_thread.is_valid():
            self.prev_thread.switch()
        return False


def _is_libgort(frame):
    sal = frame.find_sal()
    fn = sal.symtab.filename if sal.symtab else ""
    return any(fn.startswith(d) or ("/" + d) in fn for d in LIBGORT_DIRS)


def _is_public_api(frame):
    name = frame.name() or ""
    return name.startswith("gort_") and not name.startswith("gort__")


def current_function(frames):
    """What the goroutine is doing, as a dump shows it: the innermost frame
    of user code, below any signal handler it is running (a crash)."""
    for i, f in enumerate(frames):
        if f.type() == gdb.SIGTRAMP_FRAME:
            frames = frames[i + 1:]
            break
    for want in (lambda f: not _is_libgort(f), _is_public_api, lambda f: True):
        for f in frames:
            if want(f):
                return f.name() or ("0x%x" % f.pc())
    return "?"


def _describe(frame):
    name = frame.name() or "??"
    sal = frame.find_sal()
    where = ""
    if sal.symtab:
        where = " at %s:%d" % (sal.symtab.filename, sal.line)
    return name, where


def _entry_name(g):
    try:
        fn = _u64(g["fn"])
        b = gdb.block_for_pc(fn)
        if b is not None and b.function is not None:
            return b.function.name
    except RuntimeError:
        pass
    return "0x%x" % _u64(g["fn"])


class InfoGoroutines(gdb.Command):
    """List goroutines: id, state or wait reason, current function.
A '*' marks the goroutine running on the selected thread."""

    def __init__(self):
        super(InfoGoroutines, self).__init__("info goroutines", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        cur = gdb.selected_thread()
        cur_tid = cur.ptid[1] if cur is not None else -1
        print("  %-6s %-24s %s" % ("Id", "State", "Function"))
        for g in list(all_goroutines()):
            goid = int(g["goid"])
            mark = " "
            th = thread_of(g) if int(g["status"]) == G_RUNNING else None
            if th is not None and th.ptid[1] == cur_tid:
                mark = "*"
            func = "?"
            if int(g["status"]) != G_RUNNING and _u64(g["stack"]["lo"]) == 0:
                func = _entry_name(g) + " (not started)"
            else:
                try:
                    with goroutine_frames(g) as gf:
                        if gf.frames:
                            func = current_function(gf.frames)
                        elif int(g["status"]) == G_RUNNING:
                            func = "(running, thread not found)"
                except (gdb.error, gdb.MemoryError) as e:
                    func = "(unreadable: %s)" % e
            print("%s %-6d %-24s %s" % (mark, goid, state_string(g), func))


class GoroutineCmd(gdb.Command):
    """goroutine ID|all CMD: run CMD for goroutine ID (or each goroutine).
'goroutine 7 bt' prints its frames; any other command runs with the
goroutine's innermost frame selected, e.g. 'goroutine 7 info locals'."""

    def __init__(self):
        super(GoroutineCmd, self).__init__("goroutine", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        parts = arg.split(None, 1)
        if len(parts) < 2:
            raise gdb.GdbError("usage: goroutine ID|all CMD")
        if parts[0] == "all":
            gs = list(all_goroutines())
        else:
            g = find_goroutine(int(parts[0], 0))
            if g is None:
                raise gdb.GdbError("no goroutine %s" % parts[0])
            gs = [g]
        cmd = parts[1].strip()
        for g in gs:
            self.run(g, cmd, len(gs) > 1)

    def run(self, g, cmd, header):
        goid = int(g["goid"])
        if header:
            print("\ngoroutine %d [%s]:" % (goid, state_string(g)))
        if int(g["status"]) != G_RUNNING and _u64(g["stack"]["lo"]) == 0:
            print("goroutine %d has not started: entry %s" % (goid, _entry_name(g)))
            return
        with goroutine_frames(g) as gf:
            if not gf.frames:
                print("goroutine %d: no frames (its thread is not in this process image)" % goid)
                return
            if cmd in ("bt", "backtrace", "where"):
                for i, f in enumerate(gf.frames):
                    if f.type() == gdb.SIGTRAMP_FRAME:
                        print("#%-3d <signal handler called>" % i)
                        continue
                    name, where = _describe(f)
                    print("#%-3d 0x%016x in %s ()%s" % (i, f.pc(), name, where))
                return
            gf.frames[0].select()
            gdb.execute(cmd)


InfoGoroutines()
GoroutineCmd()
