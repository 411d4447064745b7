/* Shared declarations of the CPU kernels (cpu.c, compiled once per instruction set) and of
 * their runtime (runtime.c, compiled once, for the baseline instruction set). */
#ifndef CROSSENTROPY_CPU_H
#define CROSSENTROPY_CPU_H

#include <stdint.h>

/* One parallel task: process items [begin, end) and add the number of invalid items met to *bad. */
typedef void (*ce_task)(void* ctx, int64_t begin, int64_t end, int64_t* bad);

/* Run fn over the items [0, n) in chunks of `grain` items on up to `nthreads` threads (the calling
   thread included) and return the total of the invalid counts. Runs on the calling thread alone when
   nthreads <= 1, when there is a single chunk, or when another call holds the pool. */
int64_t ce_parallel(int nthreads, int64_t n, int64_t grain, ce_task fn, void* ctx);

#endif
