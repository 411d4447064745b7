/* Runtime of the CPU kernels: a small fork-safe thread pool, the thread limit that threadpoolctl
 * sets, the CPU features that choose a kernel variant, and the build identity.
 *
 * Compiled once, for the baseline instruction set, into the same library as the kernel variants
 * (cpu.c compiled per instruction set); hatch_build.py passes CE_BUILD_ID, a hash of the C sources,
 * which the Python loader compares with the sources beside it.
 *
 * The pool replaces OpenMP so that the library is safe across fork() (GNU libgomp hangs in a child
 * whose parent had started its threads) and needs no OpenMP runtime in a manylinux wheel: a child
 * process starts with no workers and creates them on its first parallel call, as OpenBLAS does. */
#include <pthread.h>
#include <stdint.h>

#include "cpu.h"

#ifndef CE_BUILD_ID
#define CE_BUILD_ID "unknown"
#endif

#define CE_MAX_THREADS 1024

const char* ce_build_id(void) { return CE_BUILD_ID; }

/* --- thread limit (threadpoolctl's controller sets it; 0 = no limit) --------------------------- */

static int ce_limit = 0;

void ce_set_thread_limit(int limit) { __atomic_store_n(&ce_limit, limit < 0 ? 0 : limit, __ATOMIC_RELAXED); }

int ce_get_thread_limit(void) { return __atomic_load_n(&ce_limit, __ATOMIC_RELAXED); }

/* --- CPU features ------------------------------------------------------------------------------ */

/* Bit 0: the baseline variant can run (always); bit 1: AVX2 + FMA + BMI2 (x86-64-v3); bit 2: AVX-512
   F/BW/CD/DQ/VL (x86-64-v4). Read from CPUID, with the operating system's support of the wider
   registers from XGETBV, as NumPy does: not from __builtin_cpu_supports, whose runtime support is
   missing from some toolchains (Zig's compiler-rt, which builds the release wheels, reports no
   feature at all). */
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t ce_xgetbv(void) {
    uint32_t lo, hi;
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

int ce_cpu_features(void) {
    int features = 1;
#if defined(__x86_64__) || defined(__i386__)
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return features;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx) return features;
    const uint64_t xcr0 = ce_xgetbv();
    if ((xcr0 & 0x6) != 0x6) return features; /* the OS saves the XMM and YMM registers */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return features;
    const int avx2 = (b >> 5) & 1, bmi2 = (b >> 8) & 1;
    if (avx2 && fma && bmi2) features |= 2;
    const unsigned int avx512 = (1u << 16) | (1u << 17) | (1u << 28) | (1u << 30) | (1u << 31); /* F DQ CD BW VL */
    if ((features & 2) && (b & avx512) == avx512 && (xcr0 & 0xe0) == 0xe0) /* opmask and ZMM state */
        features |= 4;
#endif
    return features;
}

/* --- thread pool --------------------------------------------------------------------------------- */

static pthread_mutex_t ce_owner = PTHREAD_MUTEX_INITIALIZER; /* one parallel call at a time */
static pthread_mutex_t ce_mu = PTHREAD_MUTEX_INITIALIZER;    /* guards the fields below */
static pthread_cond_t ce_wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t ce_done = PTHREAD_COND_INITIALIZER;
static pthread_once_t ce_once = PTHREAD_ONCE_INIT;
static int ce_workers = 0;          /* worker threads alive (indices 1..ce_workers) */
static uint64_t ce_generation = 0;  /* incremented for each job */

static struct {
    ce_task fn;
    void* ctx;
    int64_t n, grain;
    int64_t next;     /* first item not yet taken (atomic) */
    int64_t bad;      /* invalid items met (atomic) */
    int wanted;       /* threads taking part, the caller included */
    int finished;     /* workers done with this job */
} ce_job;

static void ce_run_chunks(void) {
    int64_t bad = 0;
    for (;;) {
        int64_t b = __atomic_fetch_add(&ce_job.next, ce_job.grain, __ATOMIC_RELAXED);
        if (b >= ce_job.n) break;
        int64_t e = ce_job.n - b > ce_job.grain ? b + ce_job.grain : ce_job.n;
        ce_job.fn(ce_job.ctx, b, e, &bad);
    }
    __atomic_fetch_add(&ce_job.bad, bad, __ATOMIC_RELAXED);
}

typedef struct {
    int index;
    uint64_t seen;
} ce_worker_arg;

static ce_worker_arg ce_args[CE_MAX_THREADS];

static void* ce_worker(void* arg) {
    ce_worker_arg* me = (ce_worker_arg*)arg;
    pthread_mutex_lock(&ce_mu);
    for (;;) {
        while (ce_generation == me->seen) pthread_cond_wait(&ce_wake, &ce_mu);
        me->seen = ce_generation;
        if (me->index >= ce_job.wanted) continue;
        pthread_mutex_unlock(&ce_mu);
        ce_run_chunks();
        pthread_mutex_lock(&ce_mu);
        if (++ce_job.finished == ce_job.wanted - 1) pthread_cond_signal(&ce_done);
    }
    return 0;
}

/* fork(): the prepare handler waits for a running parallel call and holds the pool's locks, so the
   child inherits a consistent state; the child forgets the workers, which do not exist there. */
static void ce_before_fork(void) {
    pthread_mutex_lock(&ce_owner);
    pthread_mutex_lock(&ce_mu);
}

static void ce_after_fork_parent(void) {
    pthread_mutex_unlock(&ce_mu);
    pthread_mutex_unlock(&ce_owner);
}

static void ce_after_fork_child(void) {
    ce_workers = 0;
    pthread_cond_init(&ce_wake, 0);
    pthread_cond_init(&ce_done, 0);
    pthread_mutex_unlock(&ce_mu);
    pthread_mutex_unlock(&ce_owner);
}

static void ce_init_pool(void) { pthread_atfork(ce_before_fork, ce_after_fork_parent, ce_after_fork_child); }

/* Worker threads alive in this process (0 in a freshly forked child): for the tests. */
int ce_pool_workers(void) {
    pthread_mutex_lock(&ce_mu);
    int n = ce_workers;
    pthread_mutex_unlock(&ce_mu);
    return n;
}

int64_t ce_parallel(int nthreads, int64_t n, int64_t grain, ce_task fn, void* ctx) {
    if (n <= 0) return 0;
    if (grain < 1) grain = 1;
    int64_t chunks = (n - 1) / grain + 1;
    int limit = ce_get_thread_limit();
    if (limit > 0 && nthreads > limit) nthreads = limit;
    if (nthreads > CE_MAX_THREADS) nthreads = CE_MAX_THREADS;
    if ((int64_t)nthreads > chunks) nthreads = (int)chunks;
    if (nthreads <= 1 || pthread_mutex_trylock(&ce_owner) != 0) {
        int64_t bad = 0;
        fn(ctx, 0, n, &bad);
        return bad;
    }
    pthread_once(&ce_once, ce_init_pool);
    pthread_mutex_lock(&ce_mu);
    while (ce_workers < nthreads - 1) {
        ce_worker_arg* arg = &ce_args[ce_workers + 1];
        arg->index = ce_workers + 1;
        arg->seen = ce_generation;
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attr, ce_worker, arg);
        pthread_attr_destroy(&attr);
        if (failed) break;
        ce_workers++;
    }
    if (nthreads > ce_workers + 1) nthreads = ce_workers + 1;
    ce_job.fn = fn;
    ce_job.ctx = ctx;
    ce_job.n = n;
    ce_job.grain = grain;
    ce_job.next = 0;
    ce_job.bad = 0;
    ce_job.wanted = nthreads;
    ce_job.finished = 0;
    ce_generation++;
    pthread_cond_broadcast(&ce_wake);
    pthread_mutex_unlock(&ce_mu);
    ce_run_chunks();
    pthread_mutex_lock(&ce_mu);
    while (ce_job.finished < ce_job.wanted - 1) pthread_cond_wait(&ce_done, &ce_mu);
    int64_t bad = ce_job.bad;
    pthread_mutex_unlock(&ce_mu);
    pthread_mutex_unlock(&ce_owner);
    return bad;
}
