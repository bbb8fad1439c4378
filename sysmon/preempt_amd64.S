/*
 * preempt_amd64.S: the code an asynchronously preempted goroutine runs.
 *
 * The SIGURG handler (preempt.c) decided the goroutine is at a safe point
 * and rewrote the interrupted context: RSP = S = old RSP - 136, with the
 * interrupted RIP stored at [S], and RIP = gort__async_preempt.  Nothing
 * was written in the 128 bytes below the old RSP: that is the x86-64 red
 * zone, where a leaf function may keep live data (other projects shipped
 * exactly that bug).  Every other register still holds the interrupted
 * value when we start.
 *
 * We save everything the interrupted code may have live: flags, the fifteen
 * general registers, and the whole extended state with XSAVE (x87, MXCSR,
 * SSE, AVX, AVX-512 and whatever else XCR0 enables; the area's size comes
 * from CPUID leaf 0xD at start-up, gort__xsave_size).  Without XSAVE we fall
 * back to FXSAVE (x87 and SSE only).  Then we call into the scheduler as an
 * ordinary C call; when the goroutine is resumed, possibly on another
 * thread, we restore everything and `ret $128` pops the interrupted RIP and
 * moves RSP back over the 128-byte gap: the interrupted code continues
 * exactly where it was, with every register as it was.
 *
 * The save area lives on the goroutine's own stack (the handler checked
 * there is room): a preempted goroutine carries its state with it, and
 * nothing needs allocating in a signal handler.
 */

    .text

    .globl gort__async_preempt
    .hidden gort__async_preempt
    .type gort__async_preempt, @function
    .p2align 4
gort__async_preempt:
    .cfi_startproc
    .cfi_signal_frame           /* the "return address" is an exact PC */
    /* At entry the CFA is S + 8 + 128 = the interrupted RSP, and the
     * return address (the interrupted RIP) is at S, i.e. CFA - 136. */
    .cfi_def_cfa %rsp, 136
    .cfi_offset %rip, -136
    pushfq
    .cfi_adjust_cfa_offset 8
    pushq %rax
    .cfi_adjust_cfa_offset 8
    pushq %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    pushq %rcx
    .cfi_adjust_cfa_offset 8
    pushq %rdx
    .cfi_adjust_cfa_offset 8
    pushq %rsi
    .cfi_adjust_cfa_offset 8
    pushq %rdi
    .cfi_adjust_cfa_offset 8
    pushq %rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbp, 0
    pushq %r8
    .cfi_adjust_cfa_offset 8
    pushq %r9
    .cfi_adjust_cfa_offset 8
    pushq %r10
    .cfi_adjust_cfa_offset 8
    pushq %r11
    .cfi_adjust_cfa_offset 8
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
    /* rbp = base of the register save area; callee-saved across the C
     * call, so it finds the area again on the way out. */
    movq %rsp, %rbp
    .cfi_def_cfa_register %rbp
    movq gort__xsave_size(%rip), %rax
    subq %rax, %rsp
    andq $-64, %rsp
    cmpl $0, gort__have_xsave(%rip)
    je 1f
    /* XRSTOR of the standard form requires a zeroed XSAVE header. */
    xorl %eax, %eax
    movq %rax, 512(%rsp)
    movq %rax, 520(%rsp)
    movq %rax, 528(%rsp)
    movq %rax, 536(%rsp)
    movq %rax, 544(%rsp)
    movq %rax, 552(%rsp)
    movq %rax, 560(%rsp)
    movq %rax, 568(%rsp)
    movl $-1, %eax
    movl $-1, %edx
    xsave64 (%rsp)
    jmp 2f
1:
    fxsave64 (%rsp)
2:
    cld                         /* the C ABI wants DF clear */
    call gort__async_preempt2
    cmpl $0, gort__have_xsave(%rip)
    je 3f
    movl $-1, %eax
    movl $-1, %edx
    xrstor64 (%rsp)
    jmp 4f
3:
    fxrstor64 (%rsp)
4:
    movq %rbp, %rsp
    .cfi_def_cfa_register %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    popfq
    ret $128
    .cfi_endproc
    .size gort__async_preempt, .-gort__async_preempt

    .section .note.GNU-stack,"",@progbits
