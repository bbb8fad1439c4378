/*
 * switch_amd64.S: goroutine context switch for x86-64 (System V ABI).
 *
 * A switch saves only what the ABI makes callee-saved: rbx, rbp, r12-r15,
 * the MXCSR control bits and the x87 control word, pushed on the stack being
 * left; the stack pointer is stored last.  The stack pointer itself moves
 * from one valid stack to another in a single instruction, so a signal that
 * arrives anywhere in here runs on a real stack (other libraries have parked
 * RSP on heap memory for a few instructions; not us).
 *
 * Scheduling never runs on a goroutine's stack: gort__mcall saves the
 * goroutine and calls the scheduler on the M's own stack (g0), as Go's mcall
 * does.  Once the goroutine's context is saved it may be resumed on another
 * thread at once, so nothing here touches the goroutine's stack after the
 * switch.  Rejected: libc's user-context calls (each switch makes a sigprocmask
 * system call) and a direct G-to-G switch (the goroutine being left could be
 * readied and resumed elsewhere while we still stand on its stack).
 */

    .text

/* void gort__mcall(gort_regsave_t *save, void *g0sp, void (*fn)(void *), void *arg) */
    .globl gort__mcall
    .hidden gort__mcall
    .type gort__mcall, @function
    .p2align 4
gort__mcall:
    .cfi_startproc
    pushq %rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbp, 0
    pushq %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    pushq %r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r12, 0
    pushq %r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r13, 0
    pushq %r14
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r14, 0
    pushq %r15
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r15, 0
    subq $8, %rsp
    .cfi_adjust_cfa_offset 8
    fnstcw (%rsp)
    stmxcsr 4(%rsp)
    movq %rsp, (%rdi)
    /* From here the goroutine may be resumed elsewhere: leave its stack. */
    movq %rsi, %rsp
    .cfi_undefined %rip
    movq %rcx, %rdi
    xorl %ebp, %ebp
    callq *%rdx
    ud2
    .cfi_endproc
    .size gort__mcall, .-gort__mcall

/* void gort__gogo(const gort_regsave_t *ctx) */
    .globl gort__gogo
    .hidden gort__gogo
    .type gort__gogo, @function
    .p2align 4
gort__gogo:
    .cfi_startproc
    movq (%rdi), %rsp
    /* Reload the x87 control word and MXCSR only when they differ from
     * the live ones: fldcw and ldmxcsr cost ~3-4 ns each and hold up the
     * loads after them, the stores cost ~1-2 ns, and goroutines almost
     * never change them.  MXCSR's exception flags (bits 0-5) are not
     * compared: the ABI leaves them to the caller.  The scratch slots are
     * in the red zone below the saved frame, which signals skip. */
    fnstcw -8(%rsp)
    stmxcsr -4(%rsp)
    movzwl -8(%rsp), %eax
    cmpw (%rsp), %ax
    jne 1f
2:  movl -4(%rsp), %eax
    xorl 4(%rsp), %eax
    testl $0xffffffc0, %eax
    jnz 3f
4:  addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    /* Not ret: the return stack buffer holds g0's calls, so a ret here
     * is always mispredicted; an indirect jump is predicted from its
     * history (a goroutine pair resumes at the same few places). */
    popq %rcx
    jmp *%rcx
1:  fldcw (%rsp)
    jmp 2b
3:  ldmxcsr 4(%rsp)
    jmp 4b
    .cfi_endproc
    .size gort__gogo, .-gort__gogo

/* void gort__call_on_stack(void *sp, void (*fn)(void *), void *arg)
 * Runs fn(arg) with RSP = sp (16-byte aligned) and returns on the original
 * stack.  rbp chains the frames so unwinders can walk back across. */
    .globl gort__call_on_stack
    .hidden gort__call_on_stack
    .type gort__call_on_stack, @function
    .p2align 4
gort__call_on_stack:
    .cfi_startproc
    pushq %rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbp, 0
    movq %rsp, %rbp
    .cfi_def_cfa_register %rbp
    movq %rdi, %rsp
    movq %rdx, %rdi
    callq *%rsi
    movq %rbp, %rsp
    popq %rbp
    .cfi_def_cfa %rsp, 8
    ret
    .cfi_endproc
    .size gort__call_on_stack, .-gort__call_on_stack

/* First code of every goroutine; entered by `ret` from gort__gogo with
 * r12 = the G.  The undefined return address ends every unwind here.  The
 * personality routine reports a C++ exception no frame above caught
 * (cxx.c); pc-relative, so neither library needs a relocation for it. */
    .globl gort__gstart
    .hidden gort__gstart
    .type gort__gstart, @function
    .p2align 4
gort__gstart:
    .cfi_startproc
    .cfi_personality 0x1b, gort__cxx_escape_personality
    .cfi_undefined %rip
    xorl %ebp, %ebp
    movq %r12, %rdi
    callq gort__goentry
    ud2
    .cfi_endproc
    .size gort__gstart, .-gort__gstart

    .section .note.GNU-stack,"",@progbits
