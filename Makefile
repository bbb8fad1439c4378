# gort: a plain Makefile. Sources are found by wildcard; every object gets a
# -MMD dependency file, so a header change rebuilds what includes it.
#
#   make                 build/libgort.a, build/libgort.so, build/gortprof
#   make test            the layer check, the CUnit suites, the install check, san-soak
#   make layers          scripts/layers: no layer uses one above it (nm of the objects)
#   make san-soak        the soak for SAN_SOAK_SECONDS under ASan, then UBSan
#   make soak            the soak for SOAK_SECONDS (GORT_MAXPROCS=N, HOG=1: a CPU hog beside)
#   make maxprocs-check  the suites and the soak at GORT_MAXPROCS=64 and 128 beside a CPU hog
#   make bench           build/gort-bench (the Go peer's workloads)
#   make demo            the parallel demo, its profile and a goroutine dump
#   make install         headers, both libraries, gort.pc, the CMake package, man pages,
#                        the gdb auto-load script, gortprof (PREFIX, LIBDIR, DESTDIR)
#   make abi-check       libgort.so against abi/libgort.abi (abidiff); abi-baseline rewrites it
#   make man-check       mandoc -T lint of man/, and every public function has a page
#   make cxx-check       every public header as C++17 -pedantic, examples/*.cc built and run
#   make deb             the Debian packages (dpkg-buildpackage), lintian, an install check
#   make SANITIZER=address|thread|undefined test   (or make asan / tsan / ubsan)
#   make DEBUG=1         assertions, lock-rank witness, randomized scheduling
#   make debug-hostile   10,000 hostile requests to the debug endpoint under ASan
#   make fuzz            libFuzzer on the pprof decoder and trace reader for FUZZ_SECONDS (clang);
#                        FUZZ_TARGET=http: on the debug endpoint's request parser
#   make faults          the fault-injection harness in full (tests/faults/run)
#   make preempt-rtsig   the preempt suite with GORT_PREEMPT_SIGNAL=SIGRTMIN+3

PREFIX  ?= /usr/local
DESTDIR ?=
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
BINDIR  ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR  ?= $(DATADIR)/man
CC      ?= cc
ARCH    := $(shell uname -m | sed -e 's/x86_64/amd64/' -e 's/aarch64/arm64/')

SANITIZER ?=
DEBUG     ?= 0
ifeq ($(SANITIZER),)
  BUILD ?= build
else
  BUILD ?= build-$(SANITIZER)
endif

# The version is written once, in include/gort.h.
version_part = $(shell sed -n 's/^\#define GORT_VERSION_$(1) \([0-9][0-9]*\)$$/\1/p' include/gort.h)
VERSION_MAJOR := $(call version_part,MAJOR)
VERSION := $(VERSION_MAJOR).$(call version_part,MINOR).$(call version_part,PATCH)
SONAME := libgort.so.$(VERSION_MAJOR)
# Where make install puts the gdb extension: the auto-load name of the
# installed libgort.so (gdb looks for $datadir/auto-load/<realpath>-gdb.py);
# the library also names it in .debug_gdb_scripts for static programs.
GDB_SCRIPT := $(DATADIR)/gdb/auto-load$(LIBDIR)/libgort.so.$(VERSION)-gdb.py

WARN    := -Wall -Wextra -Werror -Wno-unused-parameter
OPT     ?= -O2
CFLAGS_ALL := -std=gnu11 $(OPT) -g -fPIC -fvisibility=hidden -fno-omit-frame-pointer \
              -pthread $(WARN) -MMD -MP \
              -D_GNU_SOURCE -DGORT_BUILDING $(CFLAGS)
ASFLAGS_ALL := -g -fPIC -MMD -MP $(ASFLAGS)

# The layers (runtime/hooks.h, docs/runtime.md): each directory sees the
# headers of the layers below it and no others, so an upward call does not
# compile.  scripts/layers checks the objects themselves (make layers).
# Tests and benchmarks may see everything; examples only the public API.
INC := -Iinclude
$(BUILD)/obj/runtime/%.o: INC := -Iinclude -Iruntime
$(BUILD)/obj/sysmon/%.o: INC := -Iinclude -Iruntime -Isysmon
$(BUILD)/obj/prof/%.o: INC := -Iinclude -Iruntime -Isysmon -Iprof
$(BUILD)/obj/prof/tool/%.o: INC := -Iinclude
$(BUILD)/obj/tests/%.o: INC := -Iinclude -Iruntime -Isysmon -Iprof -Itests
$(BUILD)/obj/runtime/proc.o $(BUILD)/obj/tests/gdb_test.o: INC += -I$(BUILD)/gen
# Clients of the public API that live in the library's folders.
$(BUILD)/obj/runtime/context.o $(BUILD)/obj/runtime/errgroup.o $(BUILD)/obj/prof/leak.o: INC := -Iinclude

ifeq ($(DEBUG),1)
  CFLAGS_ALL += -DGORT_DEBUG_BUILD=1
endif
ifneq ($(SANITIZER),)
  CFLAGS_ALL += -fsanitize=$(SANITIZER) -fno-sanitize-recover=all
  LDSAN := -fsanitize=$(SANITIZER)
  ifeq ($(SANITIZER),address)
    CFLAGS_ALL += -DGORT_ASAN=1
  endif
  ifeq ($(SANITIZER),thread)
    CFLAGS_ALL += -DGORT_TSAN=1
  endif
endif

DEPLIBS := -lunwind -ldw -lelf -lz -pthread -lm
LDFLAGS_ALL := $(LDSAN) $(LDFLAGS)

# Library sources: generic C, plus the files named for this architecture.
LIB_C   := $(wildcard runtime/*.c sysmon/*.c prof/*.c)
LIB_S   := $(wildcard runtime/*_$(ARCH).S sysmon/*_$(ARCH).S)
LIB_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_C)) $(patsubst %.S,$(BUILD)/obj/%.o,$(LIB_S))

# gortprof links the pprof codec and the HTTP syntax (pure files) and
# nothing else of the library.
CODEC_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard prof/pprof_*.c)) $(BUILD)/obj/prof/httpreq.o \
             $(BUILD)/obj/prof/wholefile.o
TOOL_C   := $(wildcard prof/tool/*.c)
TOOL_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(TOOL_C))

TEST_C   := $(wildcard tests/*.c tests/stress/*.c)
TEST_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(TEST_C))

STRESS_C   := $(wildcard tests/soak/*.c)
FAULTSHIM  := $(BUILD)/tests/faultshim.so
FAULTSPROG := $(BUILD)/tests/gort-faults-prog
EXITSTRESS_OBJ := $(BUILD)/obj/tests/stress/exit/exit_stress.o
STRESS_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(STRESS_C))

BENCH_C   := $(wildcard tests/bench/*.c)
BENCH_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(BENCH_C))

EXAMPLE_C   := $(wildcard examples/*.c)
EXAMPLE_BIN := $(patsubst examples/%.c,$(BUILD)/examples/%,$(EXAMPLE_C))

LOCKS_PROGS := $(BUILD)/tests/locks-static $(BUILD)/tests/locks-shared $(BUILD)/tests/locks-cxx \
               $(BUILD)/tests/cxx-static $(BUILD)/tests/cxx-shared

LIBA  := $(BUILD)/libgort.a
LIBSO := $(BUILD)/libgort.so
TOOL  := $(BUILD)/gortprof
TESTB := $(BUILD)/gort-test
STRESSB := $(BUILD)/gort-stress
EXITSTRESSB := $(BUILD)/gort-exit-stress
BENCHB := $(BUILD)/gort-bench

.PHONY: all lib tool test layers bench examples install uninstall clean asan tsan ubsan san-soak \
        valgrind soak maxprocs-check stress demo fuzz exit-stress man-check cxx-check abi-check abi-baseline deb faults faults-short faults-medium preempt-rtsig debug-hostile

all: lib tool

lib: $(LIBA) $(LIBSO)
tool: $(TOOL)

V ?= 0
ifeq ($(V),0)
  Q := @
  SAY = @printf '  %-6s %s\n' $(1) $(2);
else
  Q :=
  SAY =
endif

# The runtime's own code goes into one section, gort_text, so that the
# preemption safe-point check and the dump can tell runtime frames from user
# frames by address (__start_gort_text/__stop_gort_text), whether libgort is
# linked statically or as a shared object.  See sysmon/preempt.c.
GORT_TEXT := --rename-section .text=gort_text --rename-section .text.unlikely=gort_text \
             --rename-section .text.startup=gort_text --rename-section .text.hot=gort_text
LIB_DIRS := runtime/% sysmon/% prof/%

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call SAY,CC,$<)$(CC) $(CFLAGS_ALL) $(INC) -c $< -o $@
	$(Q)$(if $(filter $(LIB_DIRS),$<),$(if $(filter prof/tool/%,$<),,objcopy $(GORT_TEXT) $@))

$(BUILD)/obj/%.o: %.S
	@mkdir -p $(dir $@)
	$(call SAY,AS,$<)$(CC) $(ASFLAGS_ALL) $(INC) -c $< -o $@
	$(Q)objcopy $(GORT_TEXT) $@

# Tests and benchmarks are built with the same flags as the library, except
# that they may define their own flags per file (see tests/bench).
$(BUILD)/obj/tests/bench/%.o: CFLAGS_ALL += -O3
$(BUILD)/obj/tests/preempt_kernels.o: CFLAGS_ALL += -O3 -march=native

# Paths the build bakes in, rewritten only when they change (a new PREFIX
# or LIBDIR), so that only what includes the file is rebuilt.
GEN_PATHS := $(BUILD)/gen/gort_paths.h
$(GEN_PATHS): FORCE
	@mkdir -p $(dir $@)
	@printf '#define GORT__GDB_SCRIPT "%s"\n' '$(GDB_SCRIPT)' >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
$(BUILD)/obj/runtime/proc.o $(BUILD)/obj/tests/gdb_test.o: $(GEN_PATHS)
FORCE:

$(LIBA): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

# libgort.so gets its own build of locks_interpose.c, without the undefined
# globals that pull libc.a's lock members into a static link (see there).
LOCKS_SO_OBJ := $(BUILD)/obj/runtime/locks_interpose_so.o
SO_OBJ := $(filter-out $(BUILD)/obj/runtime/locks_interpose.o,$(LIB_OBJ)) $(LOCKS_SO_OBJ)
$(LOCKS_SO_OBJ): runtime/locks_interpose.c
	@mkdir -p $(dir $@)
	$(call SAY,CC,$< [so])$(CC) $(CFLAGS_ALL) $(INC) -DGORT_SHARED_LIB -c $< -o $@
	$(Q)objcopy $(GORT_TEXT) $@

$(LIBSO): $(SO_OBJ)
	$(CC) -shared -Wl,-soname,$(SONAME) $(LDFLAGS_ALL) -o $@ $^ $(DEPLIBS)

$(TOOL): $(TOOL_OBJ) $(CODEC_OBJ)
	$(CC) $(LDFLAGS_ALL) -o $@ $(TOOL_OBJ) $(CODEC_OBJ) $(DEPLIBS)

$(TESTB): $(TEST_OBJ) $(LIBA) | $(LOCKS_PROGS) $(FAULTSHIM)
	$(CC) $(LDFLAGS_ALL) -rdynamic -o $@ $(TEST_OBJ) $(LIBA) -lcunit $(DEPLIBS)

# The C-locks programs (tests/locks/, run by tests/locks_test.c), built the
# way a user builds: only include/, no runtime flags.  The same C program
# against libgort.a and against libgort.so (interposition differs), and a
# C++ one against libgort.a.
PROG_CFLAGS := $(OPT) -g -pthread $(WARN) -Iinclude -D_GNU_SOURCE $(if $(SANITIZER),-fsanitize=$(SANITIZER))
CXX ?= g++
$(BUILD)/tests/locks-static: tests/locks/locks_prog.c include/gort.h $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(PROG_CFLAGS) -o $@ $< $(LIBA) $(DEPLIBS)
$(BUILD)/tests/locks-shared: tests/locks/locks_prog.c include/gort.h $(LIBSO)
	@mkdir -p $(dir $@)
	ln -sf libgort.so $(BUILD)/$(SONAME)
	$(CC) -std=gnu11 $(PROG_CFLAGS) -o $@ $< $(LIBSO) -Wl,-rpath,$(abspath $(BUILD)) -pthread
$(BUILD)/tests/locks-cxx: tests/locks/locks_cxx.cc include/gort.h $(LIBA)
	@mkdir -p $(dir $@)
	$(CXX) -std=gnu++17 $(PROG_CFLAGS) -o $@ $< $(LIBA) $(DEPLIBS)
# C++ exceptions in goroutines (tests/cxx_test.c), static and shared.
$(BUILD)/tests/cxx-static: tests/cxx/cxx_prog.cc include/gort.h $(LIBA)
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 $(PROG_CFLAGS) -o $@ $< $(LIBA) $(DEPLIBS)
$(BUILD)/tests/cxx-shared: tests/cxx/cxx_prog.cc include/gort.h $(LIBSO)
	@mkdir -p $(dir $@)
	ln -sf libgort.so $(BUILD)/$(SONAME)
	$(CXX) -std=c++17 $(PROG_CFLAGS) -o $@ $< $(LIBSO) -Wl,-rpath,$(abspath $(BUILD)) -pthread

# The fault-injection shim (preloaded; tests/faults/shim.c) and the
# program that walks every call it can fail.
$(FAULTSHIM): tests/faults/shim.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -g -fPIC -shared $(WARN) -o $@ $< -ldl
$(FAULTSPROG): tests/faults/faults_prog.c include/gort.h include/gort_spawn.h include/gort_net.h $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(PROG_CFLAGS) -o $@ $< $(LIBA) $(DEPLIBS)

$(STRESSB): $(STRESS_OBJ) $(LIBA)
	$(CC) $(LDFLAGS_ALL) -o $@ $(STRESS_OBJ) $(LIBA) $(DEPLIBS)

$(EXITSTRESSB): $(EXITSTRESS_OBJ) $(LIBA)
	$(CC) $(LDFLAGS_ALL) -o $@ $(EXITSTRESS_OBJ) $(LIBA) $(DEPLIBS)

$(BENCHB): $(BENCH_OBJ) $(LIBA)
	$(CC) $(LDFLAGS_ALL) -o $@ $(BENCH_OBJ) $(LIBA) $(DEPLIBS)

$(BUILD)/examples/%: examples/%.c $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(INC) -o $@ $< $(LIBA) $(DEPLIBS)

# C++ examples, built as a user builds them: only include/, -pedantic.
CXX_EXAMPLE_BIN := $(patsubst examples/%.cc,$(BUILD)/examples/%,$(wildcard examples/*.cc))
examples: $(EXAMPLE_BIN) $(CXX_EXAMPLE_BIN)

$(BUILD)/examples/%: examples/%.cc include/gort.h $(LIBA)
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 $(PROG_CFLAGS) -pedantic -o $@ $< $(LIBA) $(DEPLIBS)

# make cxx-check: every public header on its own compiles as C++17 and as
# C99 with -Wall -Wextra -Werror -pedantic (the inline fast paths
# included), and the C++ examples build and run.
cxx-check: $(CXX_EXAMPLE_BIN)
	@for h in $(notdir $(wildcard include/*.h)); do \
	  printf '#include <%s>\n' $$h | $(CXX) -std=c++17 -Wall -Wextra -Werror -pedantic -Iinclude -x c++ -fsyntax-only - \
	    || { echo "cxx-check: $$h as C++17"; exit 1; }; \
	  printf '#include <%s>\n' $$h | $(CC) -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude -x c -fsyntax-only - \
	    || { echo "cxx-check: $$h as C99"; exit 1; }; \
	done
	@for e in $(CXX_EXAMPLE_BIN); do $$e >/dev/null || { echo "cxx-check: $$e failed"; exit 1; }; done
	@echo "cxx-check: ok ($(words $(wildcard include/*.h)) headers as C++17 and C99 -pedantic, $(words $(CXX_EXAMPLE_BIN)) C++ example run)"

# make man-check: mandoc -T lint over man/ and the link pages, and every
# exported function named in a page (scripts/mancheck).
man-check:
	@mkdir -p $(BUILD)
	scripts/mancheck $(BUILD)

# make abi-check: libgort.so against the committed baseline abi/ (abidiff
# and the user-allocated types' layout; scripts/abicheck says what fails).
# make abi-baseline records the current ABI there: run it when the SONAME
# moves, and after merging branches that add API, then commit abi/.
abi-check: $(LIBSO)
	CC=$(CC) scripts/abicheck $(LIBSO) $(BUILD)
abi-baseline: $(LIBSO)
	@mkdir -p abi $(BUILD)/abi
	abidw --headers-dir include --no-corpus-path --out-file abi/libgort.abi $(LIBSO)
	$(CC) -std=c11 -Wall -Wextra -Werror -Iinclude -o $(BUILD)/abi/layout tests/abi/layout.c
	$(BUILD)/abi/layout >abi/layout.txt
	@echo "abi-baseline: wrote abi/libgort.abi and abi/layout.txt; commit them"

# make deb: the Debian packages from this tree (dpkg-buildpackage -b -us
# -uc in a clean copy, so the tree itself stays untouched), lintian, and
# tests/deb_check.sh: install them in a scratch root, build a program
# with pkg-config against them, run it, remove them.  Not part of make
# test (a minute or more); the .debs land in $(BUILD)/deb.
deb:
	tests/deb_check.sh $(BUILD)/deb

# README's first command ends here: the parallel Mandelbrot, its speed-up,
# its CPU profile through gortprof top, and a goroutine dump.
demo: $(BUILD)/examples/demo tool
	$(BUILD)/examples/demo $(abspath $(BUILD))/demo.prof $(abspath $(TOOL))

# GORT_TEST_SCALE scales the stress suites (1 = CI size).
# Under a sanitizer (make asan/tsan/ubsan) only the suites run; the plain
# `make test` (CI's command) also checks make install and runs the soak
# briefly under ASan and UBSan (san-soak).
# make layers: scripts/layers reads `nm` of every library and tool object
# and fails if a layer uses a symbol only a higher layer defines, if the
# tool uses more than the pprof codec, or if a gort symbol is weak;
# scripts/headers then compiles each runtime/*.h on its own.
layers: $(LIB_OBJ) $(TOOL_OBJ)
	scripts/layers $(BUILD)/obj
	scripts/headers $(CC)

test: layers $(TESTB) $(TOOL)
	GORT_TEST_BIN=$(abspath $(TESTB)) GORTPROF=$(abspath $(TOOL)) $(TESTB)
ifeq ($(SANITIZER),)
	$(MAKE) --no-print-directory preempt-rtsig
	$(MAKE) --no-print-directory faults-short
	$(MAKE) --no-print-directory exit-stress RUNS=$(CI_EXIT_RUNS)
	$(MAKE) --no-print-directory man-check cxx-check abi-check
	tests/install_check.sh
	$(MAKE) --no-print-directory san-soak
endif
	@echo "make test: ok"

bench: $(BENCHB) $(BUILD)/lockpair-plain $(BUILD)/lockpair-gort $(BUILD)/net-load $(BUILD)/epoll-echo

# The echo benchmark's load client and its plain epoll server (no gort).
$(BUILD)/net-load: tests/bench/net/loadclient.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(PROG_CFLAGS) -o $@ $<
$(BUILD)/epoll-echo: tests/bench/net/epoll_echo.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(PROG_CFLAGS) -o $@ $<

# A lock/unlock pair with and without libgort's interposition (lockpair.c).
$(BUILD)/lockpair-plain: tests/locks/lockpair.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(PROG_CFLAGS) -o $@ $<
$(BUILD)/lockpair-gort: tests/locks/lockpair.c include/gort.h $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(PROG_CFLAGS) -DWITH_GORT -o $@ $< $(LIBA) $(DEPLIBS)

stress: $(STRESSB)

# make soak SOAK_SECONDS=600 GORT_MAXPROCS=128 HOG=1: the soak test
# (tests/soak/soak.c) for that many seconds (DURATION is the older name) at
# that many Ps (default: the CPUs), a progress line every REPORT seconds;
# HOG=1 runs a CPU hog beside it.
SOAK_SECONDS ?= 60
DURATION ?= $(SOAK_SECONDS)
REPORT ?= 10
HOG ?= 0
soak: $(STRESSB)
	@$(if $(filter 1,$(HOG)),sh -c 'while :; do :; done' & hog=$$!; trap 'kill $$hog 2>/dev/null' EXIT INT TERM;) \
	$(STRESSB) $(DURATION) --report-every $(REPORT)

# make maxprocs-check: far more Ps than CPUs (issue 20): the CUnit suites
# at each of MAXPROCS_CHECK Ps beside a CPU hog, then the soak at each for
# MAXPROCS_SOAK_SECONDS (0: none), also beside a hog.  Long (about an hour
# with the defaults on 2 cores); not part of make test.
MAXPROCS_CHECK ?= 64 128
MAXPROCS_SOAK_SECONDS ?= 600
maxprocs-check: $(TESTB) $(TOOL) $(STRESSB)
	@sh -c 'while :; do :; done' & hog=$$!; trap 'kill $$hog 2>/dev/null' EXIT INT TERM; bad=""; \
	for p in $(MAXPROCS_CHECK); do \
	  echo "maxprocs-check: the suites at GORT_MAXPROCS=$$p beside a CPU hog"; \
	  GORT_MAXPROCS=$$p GORT_TEST_BIN=$(abspath $(TESTB)) GORTPROF=$(abspath $(TOOL)) $(TESTB) || bad="$$bad suites@$$p"; \
	done; \
	if [ $(MAXPROCS_SOAK_SECONDS) -gt 0 ]; then for p in $(MAXPROCS_CHECK); do \
	  echo "maxprocs-check: the soak for $(MAXPROCS_SOAK_SECONDS) s at GORT_MAXPROCS=$$p beside a CPU hog"; \
	  GORT_MAXPROCS=$$p $(STRESSB) $(MAXPROCS_SOAK_SECONDS) --report-every 60 || bad="$$bad soak@$$p"; \
	done; fi; \
	if [ -n "$$bad" ]; then echo "maxprocs-check: FAILED:$$bad"; exit 1; fi; \
	echo "maxprocs-check: ok ($(MAXPROCS_CHECK) Ps, soak $(MAXPROCS_SOAK_SECONDS) s each)"

# make exit-stress RUNS=2000: that many runs of build/gort-exit-stress
# (tests/stress/exit/exit_stress.c, ROUNDS gort_main rounds each, seeded by
# the run's number) beside a CPU hog, each under a timeout: the main
# goroutine's exit must never hang (runtime/exit.c).  `make test` runs
# CI_EXIT_RUNS of them.
RUNS ?= 100
ROUNDS ?= 10
EXIT_TIMEOUT ?= 60
CI_EXIT_RUNS ?= 100
exit-stress: $(EXITSTRESSB)
	@sh -c 'while :; do :; done' & hog=$$!; trap 'kill $$hog 2>/dev/null' EXIT INT TERM; fail=0; hang=0; \
	for i in $$(seq 1 $(RUNS)); do \
	  timeout -k 5 $(EXIT_TIMEOUT) $(EXITSTRESSB) $(ROUNDS) $$i; rc=$$?; \
	  if [ $$rc -eq 124 ] || [ $$rc -eq 137 ]; then hang=$$((hang+1)); echo "exit-stress: run $$i hung"; \
	  elif [ $$rc -ne 0 ]; then fail=$$((fail+1)); echo "exit-stress: run $$i failed ($$rc)"; fi; \
	done; \
	echo "exit-stress: $(RUNS) runs of $(ROUNDS) rounds beside a CPU hog: $$hang hung, $$fail failed"; \
	[ $$hang -eq 0 ] && [ $$fail -eq 0 ]

# The fault-injection harness (tests/faults/run): every call the shim can
# fail, at many N, through the faults program, the soak and the examples;
# each run must end in success, a documented fatal error or a documented
# -errno (tests/faults/documented), never a crash, a hang or a corrupt
# profile.  `make faults` is the full form (the table in
# docs/reliability.md); make test runs the short one.
FAULT_PROGS := $(FAULTSPROG) $(STRESSB) $(EXAMPLE_BIN) $(TOOL)
faults: $(FAULTSHIM) $(FAULT_PROGS)
	tests/faults/run full $(BUILD)
faults-short: $(FAULTSHIM) $(FAULT_PROGS)
	tests/faults/run short $(BUILD)
faults-medium: $(FAULTSHIM) $(FAULT_PROGS)
	tests/faults/run medium $(BUILD)

# The preemption suite again with preemption on a real-time signal (the
# program owns SIGURG): GORT_PREEMPT_SIGNAL, sysmon/preempt.c.
preempt-rtsig: $(TESTB)
	GORT_PREEMPT_SIGNAL=SIGRTMIN+3 GORT_TEST_BIN=$(abspath $(TESTB)) $(TESTB) preempt

# The soak, short, built with ASan and then with UBSan (CI runs it through
# make test): every mechanism at once under both sanitizers.
SAN_SOAK_SECONDS ?= 15
san-soak:
	$(MAKE) --no-print-directory SANITIZER=address soak DURATION=$(SAN_SOAK_SECONDS) REPORT=5
	$(MAKE) --no-print-directory SANITIZER=undefined soak DURATION=$(SAN_SOAK_SECONDS) REPORT=5

# The suites valgrind runs (it is ~50x slower; children are traced too;
# the stack suite's million goroutines would need ~20 GiB under it).
# GORT_TEST_SCALE=0 runs each stress loop once (tests/test.h, gt_scale_n).
# Goroutine stacks are registered with VALGRIND_STACK_REGISTER
# (runtime/fiber_san.c); tests/valgrind.supp lists justified suppressions.
VALGRIND_SUITES ?= runq sched chan sync
valgrind: $(TESTB)
	for s in $(VALGRIND_SUITES); do \
	  GORT_TEST_SCALE=0 valgrind -q --error-exitcode=99 --trace-children=yes \
	    --suppressions=tests/valgrind.supp --fair-sched=yes $(TESTB) $$s || exit 1; done

# The fuzz targets: clang only, built apart from the library.
#   FUZZ_TARGET=pprof (the default): the profile decoder and the trace
#     reader (prof/pprof_*.c, prof/tool/tracefile.c and zlib).  Crashers to
#     keep go in tests/testdata/fuzz-regressions/ (profiles: the pprof
#     suite replays them) or tests/testdata/trace-regressions/ (traces:
#     the trace suite).
#   FUZZ_TARGET=http: the debug endpoint's request parser (prof/httpreq.c).
# New inputs go to build/fuzz/corpus-TARGET, crashers to build/fuzz/crash-*.
FUZZ_SECONDS ?= 20
FUZZ_CC      ?= clang
FUZZ_TARGET  ?= pprof
FUZZ_BIN     := $(BUILD)/fuzz/$(FUZZ_TARGET)_fuzz
FUZZ_SRC_pprof := tests/fuzz/pprof_fuzz.c $(wildcard prof/pprof_*.c) prof/tool/tracefile.c
FUZZ_SRC_http  := tests/fuzz/http_fuzz.c prof/httpreq.c
FUZZ_SEEDS_pprof := tests/fuzz/corpus tests/testdata/fuzz-regressions tests/testdata/trace-regressions
FUZZ_SEEDS_http  := tests/fuzz/http-corpus
FUZZ_LEN_pprof := 65536
FUZZ_LEN_http  := 140000

$(FUZZ_BIN): $(FUZZ_SRC_$(FUZZ_TARGET)) $(wildcard prof/pprof*.h) prof/tool/tracefile.h prof/httpreq.h
	@mkdir -p $(dir $@) $(BUILD)/fuzz/corpus-$(FUZZ_TARGET)
	$(FUZZ_CC) -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	  -D_GNU_SOURCE -Iprof -Iprof/tool -o $@ $(FUZZ_SRC_$(FUZZ_TARGET)) -lz

fuzz: $(FUZZ_BIN)
	$(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_LEN_$(FUZZ_TARGET)) -timeout=10 -rss_limit_mb=2048 \
	  -artifact_prefix=$(BUILD)/fuzz/ $(BUILD)/fuzz/corpus-$(FUZZ_TARGET) $(FUZZ_SEEDS_$(FUZZ_TARGET))

# The debug endpoint's hostile clients at full size (issue 23): 10,000
# requests (garbage, oversized headers, half-sent and silent clients,
# ordinary ones) against a child built with ASan, whose leak check runs
# when it exits.
debug-hostile:
	$(MAKE) --no-print-directory SANITIZER=address build-address/gort-test build-address/gortprof
	GORT_TEST_SCALE=50 GORTPROF=$(abspath build-address/gortprof) build-address/gort-test debugserve hostile_many

asan:
	$(MAKE) SANITIZER=address test
tsan:
	TSAN_OPTIONS="suppressions=$(abspath tests/tsan.supp) $$TSAN_OPTIONS" $(MAKE) SANITIZER=thread test
ubsan:
	$(MAKE) SANITIZER=undefined test

gort.pc: Makefile
	@printf '%s\n' \
	  'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' 'includedir=$(INCDIR)' '' \
	  'Name: gort' 'Description: Go-style M:N runtime for C' 'Version: $(VERSION)' \
	  'Requires.private: libunwind libdw zlib' \
	  'Cflags: -I$${includedir} -pthread' \
	  'Libs: -L$${libdir} -lgort -pthread' \
	  'Libs.private: -lelf -lm' > $(BUILD)/gort.pc

# The CMake package files, with this install's paths filled in.
CMAKE_SUBST := -e 's|@INCDIR@|$(INCDIR)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
               -e 's|@SONAME@|$(SONAME)|g' -e 's|@VERSION_MAJOR@|$(VERSION_MAJOR)|g' \
               -e 's|@VERSION_MINOR@|$(call version_part,MINOR)|g'
MAN_PAGES := $(wildcard man/man*/*.[0-9])

install: all
	@mkdir -p $(BUILD)/cmake
	$(MAKE) --no-print-directory gort.pc
	sed $(CMAKE_SUBST) cmake/gortConfig.cmake.in >$(BUILD)/cmake/gortConfig.cmake
	sed $(CMAKE_SUBST) cmake/gortConfigVersion.cmake.in >$(BUILD)/cmake/gortConfigVersion.cmake
	rm -rf $(BUILD)/manlinks && scripts/manlinks $(BUILD)/manlinks $(MAN_PAGES) >/dev/null
	install -d $(DESTDIR)$(INCDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/cmake/gort \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(dir $(GDB_SCRIPT))
	install -m 644 include/*.h $(DESTDIR)$(INCDIR)/
	install -m 644 $(LIBA) $(DESTDIR)$(LIBDIR)/libgort.a
	install -m 755 $(LIBSO) $(DESTDIR)$(LIBDIR)/libgort.so.$(VERSION)
	ln -sf libgort.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libgort.so
	install -m 644 $(BUILD)/gort.pc $(DESTDIR)$(LIBDIR)/pkgconfig/gort.pc
	install -m 644 $(BUILD)/cmake/gortConfig.cmake $(BUILD)/cmake/gortConfigVersion.cmake $(DESTDIR)$(LIBDIR)/cmake/gort/
	install -m 755 $(TOOL) $(DESTDIR)$(BINDIR)/gortprof
	install -m 644 scripts/gdb/gort-gdb.py $(DESTDIR)$(GDB_SCRIPT)
	for p in $(MAN_PAGES) $$(find $(BUILD)/manlinks -type f); do \
	  s=$${p##*.}; install -m 644 $$p $(DESTDIR)$(MANDIR)/man$$s/; done

uninstall:
	rm -f $(addprefix $(DESTDIR)$(INCDIR)/,$(notdir $(wildcard include/*.h)))
	rm -f $(DESTDIR)$(LIBDIR)/libgort.a $(DESTDIR)$(LIBDIR)/libgort.so*
	rm -f $(DESTDIR)$(LIBDIR)/pkgconfig/gort.pc $(DESTDIR)$(BINDIR)/gortprof
	rm -f $(DESTDIR)$(LIBDIR)/cmake/gort/gortConfig.cmake $(DESTDIR)$(LIBDIR)/cmake/gort/gortConfigVersion.cmake
	-rmdir $(DESTDIR)$(LIBDIR)/cmake/gort 2>/dev/null
	rm -f $(DESTDIR)$(GDB_SCRIPT)
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/,$(patsubst man/%,%,$(MAN_PAGES)))
	for p in $(MAN_PAGES); do for n in $$(scripts/mannames $$p); do \
	  s=$${p##*.}; rm -f $(DESTDIR)$(MANDIR)/man$$s/$$n.$$s; done; done

clean:
	rm -rf build build-address build-thread build-undefined build-deb

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
