/* preempt_kernels.h: the kernels of preempt_kernels.c (built -O3
 * -march=native, see the Makefile) that preempt_test.c runs. */
#ifndef GT_PREEMPT_KERNELS_H
#define GT_PREEMPT_KERNELS_H

#include <stdint.h>

uint64_t gt_vec_kernel(uint64_t seed, int rounds);
double gt_fp_kernel(double seed, int rounds);
int gt_redzone_spin(long iters);

#endif
