/*
 * preempt_kernels.c: compute kernels for preempt_test.c, built with -O3
 * -march=native (Makefile) so that they keep long-lived state in SSE, AVX
 * and AVX-512 registers.  A preemption that lost or corrupted any of it,
 * or the MXCSR rounding mode, would change their results.
 */
#include <stdint.h>
#include <string.h>

#include "preempt_kernels.h"

#define VN 2048

uint64_t gt_vec_kernel(uint64_t seed, int rounds)
{
    /* On the goroutine's stack: a goroutine may change threads at any
     * preemption, so thread-local arrays would be shared with whoever
     * runs on the thread it lands on. */
    uint64_t a[VN], b[VN];
    uint64_t x = seed;
    for (int i = 0; i < VN; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        a[i] = x;
        b[i] = x * 0x9e3779b97f4a7c15ULL;
    }
    uint64_t acc = 0;
    for (int r = 0; r < rounds; r++) {
        /* Vectorized: independent lanes, and a reduction whose partial
         * sums live in vector registers for the whole loop. */
        for (int i = 0; i < VN; i++) {
            a[i] = a[i] * 0x5851f42d4c957f2dULL + (b[i] >> 11);
            acc += a[i] ^ (a[i] >> 29);
        }
    }
    return acc;
}

double gt_fp_kernel(double seed, int rounds)
{
    double v[16];
    for (int i = 0; i < 16; i++)
        v[i] = seed + i * 0.1;
    double x = seed;
    for (int r = 0; r < rounds; r++) {
        /* A scalar chain whose rounding depends on MXCSR ... */
        x = x * 1.0000001192092896 + 1.0 / (x + r);
        /* ... and sixteen lanes in vector registers. */
        for (int i = 0; i < 16; i++)
            v[i] = v[i] * 0.9999999 + x * 1e-9;
    }
    double s = x;
    for (int i = 0; i < 16; i++)
        s += v[i];
    return s;
}

/* A leaf that keeps sixteen values in the 128-byte red zone below RSP and
 * checks them on every iteration; the ABI lets it.  Returns the number of
 * mismatches seen. */
__attribute__((naked, noinline)) int gt_redzone_spin(long iters)
{
    __asm__ volatile(
        "movabsq $0x0123456789abcdef, %rax\n\t"
#define FILL(k) "movq %rax, %rdx\n\txorq $" #k ", %rdx\n\tmovq %rdx, -" #k "*8(%rsp)\n\t"
        FILL(1) FILL(2) FILL(3) FILL(4) FILL(5) FILL(6) FILL(7) FILL(8)
        FILL(9) FILL(10) FILL(11) FILL(12) FILL(13) FILL(14) FILL(15) FILL(16)
        "xorl %ecx, %ecx\n\t"
        "1:\n\t"
#define CHECK(k) "movq %rax, %rdx\n\txorq $" #k ", %rdx\n\tcmpq -" #k "*8(%rsp), %rdx\n\tje 2" #k "f\n\tincl %ecx\n\t2" #k ":\n\t"
        CHECK(1) CHECK(2) CHECK(3) CHECK(4) CHECK(5) CHECK(6) CHECK(7) CHECK(8)
        CHECK(9) CHECK(10) CHECK(11) CHECK(12) CHECK(13) CHECK(14) CHECK(15) CHECK(16)
        "decq %rdi\n\t"
        "jnz 1b\n\t"
        "movl %ecx, %eax\n\t"
        "ret\n\t");
}
