/* Fused CPU kernels for crossentropy, compiled once per instruction set.
 *
 * hatch_build.py compiles this file several times with -DCE_ISA=<variant> and the matching -march
 * (baseline = x86-64-v2 or armv8-a, avx2 = x86-64-v3, avx512 = x86-64-v4), links the objects with
 * runtime.c into one library, and the Python loader (_library.py) calls the variant that the CPU
 * supports (ce_cpu_features). Every exported name carries the variant's suffix, e.g.
 * ce_sparse_f32_avx512, so `objdump` can tell the variants apart. The kernels themselves are
 * written once, for float and double, in cpu_template.h.
 *
 * Vector math. The loops are written for the compiler's auto-vectoriser (`#pragma omp simd`, compiled
 * with -fopenmp-simd: no OpenMP runtime) and call the branch-free, inlined functions below, so exp
 * and log run at the full SIMD width of each variant with no dependence on a vector math library:
 *   ce_expf  float exp, SLEEF's u10 algorithm: round(x / ln 2) range reduction (two-constant
 *            Cody-Waite), a degree-6 polynomial, scaling by 2^q in two steps (subnormal results
 *            stay correct); < 1 ulp.
 *   ce_exp   double exp, the same scheme with a degree-11 polynomial; < 1 ulp.
 *   ce_log   double log after fdlibm's e_log.c (< 1 ulp); ce_log1p and ce_log1m build on it.
 * Polynomials use fused multiply-adds where the variant has them (MLA); every other product and sum
 * is rounded separately (-ffp-contract=off), as in the reference path.
 *
 * The float32 hot loops (row maxima and exponential sums, the softmax gradient, the information
 * measures, binary cross-entropy, the distillation divergences) are written with explicit vectors instead
 * (see "explicit vectors" below): the auto-vectoriser left the float32 information and binary loops scalar and paid a blend for
 * each clamp and an eight-instruction 2^q scaling that AVX-512 does in one (scalef). Rows of at most 64
 * classes are transposed one group of 16 ahead of their use, so that the vector loads of a group do not
 * wait for the scalar stores of its transposition (AVX2/AVX-512 gathers were measured slower here).
 *
 * Accuracy: the exponentials of float32 rows are computed in float32 lanes, added two by two in float32
 * and summed in float64 lanes; float64 rows sum libm's exp (< 0.51 ulp; ce_exp's 1 ulp would break the bound) with
 * compensated per-lane sums (two-sum), so float64 results stay within 2 ulp of an mpmath oracle. Logarithms (information measures, binary and soft-target losses)
 * are computed in float64 lanes for both input types.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cpu.h"

#ifndef CE_ISA
#define CE_ISA baseline
#endif

#define CE_PASTE_(a, b) a##_##b
#define CE_PASTE(a, b) CE_PASTE_(a, b)

/* Every function of this file carries the variant's name, the static ones too, so that the
   disassembly tells which instructions each variant uses (tests/test_kernels_build.py). */
#define ce_bits_f CE_PASTE(ce_bits_f, CE_ISA)
#define ce_bits_d CE_PASTE(ce_bits_d, CE_ISA)
#define ce_expf CE_PASTE(ce_expf, CE_ISA)
#define ce_exp CE_PASTE(ce_exp, CE_ISA)
#define ce_log CE_PASTE(ce_log, CE_ISA)
#define ce_log1p CE_PASTE(ce_log1p, CE_ISA)
#define ce_log1m CE_PASTE(ce_log1m, CE_ISA)
#define ce_sum2 CE_PASTE(ce_sum2, CE_ISA)
#define ce_sum2_value CE_PASTE(ce_sum2_value, CE_ISA)
#define ce_floor_ctx CE_PASTE(ce_floor_ctx, CE_ISA)
#define ce_floor_task CE_PASTE(ce_floor_task, CE_ISA)
#define ce_copy_ctx CE_PASTE(ce_copy_ctx, CE_ISA)
#define ce_copy_task CE_PASTE(ce_copy_task, CE_ISA)

#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
#define MLAF(a, b, c) __builtin_fmaf((a), (b), (c))
#define MLA(a, b, c) __builtin_fma((a), (b), (c))
#else
#define MLAF(a, b, c) ((a) * (b) + (c))
#define MLA(a, b, c) ((a) * (b) + (c))
#endif

#define BLOCK 2048 /* elements of a row processed while they are in L1 */
#define GROUP 16   /* short rows processed together, one per SIMD lane */
#define SHORT 64   /* rows up to this length take the short-row path */
#define LANES 8    /* independent compensated partial sums */

static inline float ce_bits_f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline double ce_bits_d(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* exp(x) for float, < 1 ulp, for x <= 88.7 (the kernels call it with x <= 0: x - max, log-probabilities);
   exp(-inf) = 0. The argument is clamped below at -104, where the result rounds to 0; only this one
   clamp is paid in the hot loops. NaN is not propagated (the callers have rejected it). */
static inline float ce_expf(float x) {
    float d = x > -104.0f ? x : -104.0f;
    float q = MLAF(d, 1.442695040888963407f, 12582912.0f) - 12582912.0f; /* round to nearest */
    float s = MLAF(q, -0.693145751953125f, d);
    s = MLAF(q, -1.428606765330187045e-06f, s);
    float u = 0.000198527617612853646278381f;
    u = MLAF(u, s, 0.00139304355252534151077271f);
    u = MLAF(u, s, 0.00833336077630519866943359f);
    u = MLAF(u, s, 0.0416664853692054748535156f);
    u = MLAF(u, s, 0.166666671633720397949219f);
    u = MLAF(u, s, 0.5f);
    u = 1.0f + MLAF(s * s, u, s);
    int32_t qi = (int32_t)q;
    int32_t h = qi >> 1; /* arithmetic shift (GCC, Clang): the two halves keep 2^h normal */
    u = u * ce_bits_f((uint32_t)(h + 127) << 23) * ce_bits_f((uint32_t)(qi - h + 127) << 23);
    return u; /* for x <= -104, q = -150 and u 2^-150 rounds to 0 */
}

/* exp(x) for double, < 1 ulp, for x <= 709, the same way (clamped below at -746). */
static inline double ce_exp(double x) {
    double d = x > -746.0 ? x : -746.0;
    double q = (d * 1.442695040888963407359924681001892137 + 6755399441055744.0) - 6755399441055744.0;
    double s = MLA(q, -.69314718055966295651160180568695068359375, d);
    s = MLA(q, -.28235290563031577122588448175013436025525412068e-12, s);
    double u = +0.2081276378237164457e-8;
    u = MLA(u, s, +0.2511210703042288022e-7);
    u = MLA(u, s, +0.2755762628169491192e-6);
    u = MLA(u, s, +0.2755723402025388239e-5);
    u = MLA(u, s, +0.2480158687479686264e-4);
    u = MLA(u, s, +0.0001984126989855865850);
    u = MLA(u, s, +0.001388888888914497797);
    u = MLA(u, s, +0.008333333333316527367);
    u = MLA(u, s, +0.04166666666666609863);
    u = MLA(u, s, +0.1666666666666669072);
    u = MLA(u, s, +0.5);
    u = 1.0 + MLA(s * s, u, s);
    int32_t qi = (int32_t)q;
    int32_t h = qi >> 1;
    u = u * ce_bits_d((uint64_t)(int64_t)(h + 1023) << 52) * ce_bits_d((uint64_t)(int64_t)(qi - h + 1023) << 52);
    return u;
}

/* log(x) for double after fdlibm's e_log.c (< 1 ulp): x = 2^k m, m in [sqrt(2)/2, sqrt(2)),
   log m = f - hfsq + s (hfsq + R(s^2)), s = f / (2 + f). 0 -> -inf, +inf -> +inf, x < 0 or NaN -> NaN. */
static inline double ce_log(double x) {
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    const double Lg1 = 6.666666666666735130e-01, Lg2 = 3.999999999940941908e-01, Lg3 = 2.857142874366239149e-01,
                 Lg4 = 2.222219843214978396e-01, Lg5 = 1.818357216161805012e-01, Lg6 = 1.531383769920937332e-01,
                 Lg7 = 1.479819860511658591e-01;
    int64_t sub = x < 2.2250738585072014e-308;
    double xs = sub ? x * 0x1p54 : x;
    uint64_t ix;
    memcpy(&ix, &xs, sizeof ix);
    int64_t k = (int64_t)((ix >> 52) & 0x7ff) - 1023 - (sub ? 54 : 0);
    uint64_t hx = ix & 0x000fffffffffffffULL;
    uint64_t i = (hx + 0x00095f6400000000ULL) & 0x0010000000000000ULL;
    k += (int64_t)(i >> 52);
    double m = ce_bits_d(hx | (i ^ 0x3ff0000000000000ULL));
    double f = m - 1.0;
    double s = f / (2.0 + f), z = s * s, w = z * z;
    double t1 = w * (Lg2 + w * (Lg4 + w * Lg6));
    double t2 = z * (Lg1 + w * (Lg3 + w * (Lg5 + w * Lg7)));
    double R = t2 + t1, hfsq = 0.5 * f * f, dk = (double)k;
    double r = dk * ln2_hi - ((hfsq - (s * (hfsq + R) + dk * ln2_lo)) - f);
    r = x == 0.0 ? -INFINITY : r;
    r = x == INFINITY ? INFINITY : r;
    return (x < 0.0 || x != x) ? NAN : r;
}

/* log(1 + a) for a >= -1: u = 1 + a rounded, plus the rounding's first-order correction. */
static inline double ce_log1p(double a) {
    double u = 1.0 + a;
    double r = ce_log(u) + (a - (u - 1.0)) / u;
    return u == INFINITY ? INFINITY : r;
}

/* log(1 - p) = log1p(-p) from ce_log; the correction is 0 when 1 - p is exact (p >= 1/2). */
static inline double ce_log1m(double p) {
    double u = 1.0 - p;
    double r = ce_log(u) + ((1.0 - u) - p) / u;
    return u == 0.0 ? -INFINITY : r;
}

/* Add the n values of t to the compensated sum (*hi, *lo), in LANES independent two-sums. */
static inline void ce_sum2(const double* t, int64_t n, double* hi, double* lo) {
    double s[LANES] = {0}, c[LANES] = {0};
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES) {
        for (int64_t k = 0; k < LANES; k++) {
            double a = s[k], b = t[j + k], u = a + b, bb = u - a;
            c[k] += (a - (u - bb)) + (b - bb);
            s[k] = u;
        }
    }
    double S = *hi, C = *lo;
    for (int64_t k = 0; k < LANES; k++) {
        double u = S + s[k], bb = u - S;
        C += ((S - (u - bb)) + (s[k] - bb)) + c[k];
        S = u;
    }
    for (; j < n; j++) {
        double u = S + t[j], bb = u - S;
        C += (S - (u - bb)) + (t[j] - bb);
        S = u;
    }
    *hi = S;
    *lo = C;
}

/* The value of a compensated sum; an infinite term makes the correction NaN, so it is dropped then. */
static inline double ce_sum2_value(double hi, double lo) { return isinf(hi) ? hi : hi + lo; }

/* --- explicit vectors for float32 rows -------------------------------------------------------------------
 *
 * The float32 hot loops (row maxima and exponential sums, the softmax gradient) are written with GCC/Clang
 * vector extensions, VW floats a vector (16 in the avx512 variant, 8 in avx2, 4 in the baseline), so that
 * each variant gets its full width without depending on the auto-vectoriser; four operations per
 * instruction set use the instruction that does them in one step (max, round to nearest, fused
 * multiply-add, and AVX-512's scalef for the 2^q scaling). ce_vexpf gives the same bits as ce_expf. */
#if defined(__AVX512F__)
#include <immintrin.h>
#define VW 16
#elif defined(__AVX__)
#include <immintrin.h>
#define VW 8
#elif defined(__SSE4_1__)
#include <immintrin.h>
#define VW 4
#else
#define VW 4
#endif

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi" /* vectors wider than the variant's registers: static functions only */
#endif

typedef float vf __attribute__((vector_size(VW * 4)));
typedef int32_t vi __attribute__((vector_size(VW * 4)));
typedef float vf_unaligned __attribute__((vector_size(VW * 4), aligned(4)));
#define VD (VW / 2) /* float64 lanes of one register */
typedef double vd __attribute__((vector_size(VD * 8)));
typedef int64_t vl __attribute__((vector_size(VD * 8)));
typedef float vfh __attribute__((vector_size(VD * 4)));
typedef float vfh_unaligned __attribute__((vector_size(VD * 4), aligned(4)));
#if VW == 16
#define CE_LO 0, 1, 2, 3, 4, 5, 6, 7
#define CE_HI 8, 9, 10, 11, 12, 13, 14, 15
#elif VW == 8
#define CE_LO 0, 1, 2, 3
#define CE_HI 4, 5, 6, 7
#else
#define CE_LO 0, 1
#define CE_HI 2, 3
#endif
/* float32 lanes to float64 lanes: the lower and the upper half (one conversion each on AVX-512, where GCC
   turns the generic shuffle into several). */
#if defined(__AVX512F__)
#define ce_vlo(v) ((vd)_mm512_cvtps_pd(_mm512_castps512_ps256((__m512)(v))))
#define ce_vhi(v) ((vd)_mm512_cvtps_pd(_mm512_extractf32x8_ps((__m512)(v), 1)))
#else
#define ce_vlo(v) __builtin_convertvector(__builtin_shufflevector((v), (v), CE_LO), vd)
#define ce_vhi(v) __builtin_convertvector(__builtin_shufflevector((v), (v), CE_HI), vd)
#endif

#define ce_vload CE_PASTE(ce_vload, CE_ISA)
#define ce_vstore CE_PASTE(ce_vstore, CE_ISA)
#define ce_vmax CE_PASTE(ce_vmax, CE_ISA)
#define ce_vrint CE_PASTE(ce_vrint, CE_ISA)
#define ce_vmla CE_PASTE(ce_vmla, CE_ISA)
#define ce_vscale CE_PASTE(ce_vscale, CE_ISA)
#define ce_vexpf CE_PASTE(ce_vexpf, CE_ISA)
#define ce_vexpf_u CE_PASTE(ce_vexpf_u, CE_ISA)
#define ce_vexpf_p CE_PASTE(ce_vexpf_p, CE_ISA)
#define ce_vexpf_nz CE_PASTE(ce_vexpf_nz, CE_ISA)
#define ce_vpartial CE_PASTE(ce_vpartial, CE_ISA)
#define ce_max_f32 CE_PASTE(ce_max_f32, CE_ISA)
#define ce_expsum_f32 CE_PASTE(ce_expsum_f32, CE_ISA)
#define ce_grad_f32 CE_PASTE(ce_grad_f32, CE_ISA)
#define ce_group_stats_f32 CE_PASTE(ce_group_stats_f32, CE_ISA)

#define VSPLAT(c) ((vf){0} + (float)(c))

static inline vf ce_vload(const float* p) { return *(const vf_unaligned*)p; }

static inline void ce_vstore(float* p, vf v) { *(vf_unaligned*)p = v; }

/* The first n < VW values of p, the other lanes set to fill. */
static inline vf ce_vpartial(const float* p, int64_t n, float fill) {
    float buf[VW];
    for (int64_t k = 0; k < VW; k++) buf[k] = k < n ? p[k] : fill;
    return ce_vload(buf);
}

/* a > b ? a : b lane by lane (b where either is NaN), as x86's maxps. */
static inline vf ce_vmax(vf a, vf b) {
#if defined(__AVX512F__)
    return _mm512_max_ps(a, b);
#elif defined(__AVX__)
    return _mm256_max_ps(a, b);
#elif defined(__SSE4_1__)
    return _mm_max_ps(a, b);
#else
    vi m = a > b;
    return (vf)(((vi)a & m) | ((vi)b & ~m));
#endif
}

/* Round to the nearest integer, ties to even (|x| < 2^22). */
static inline vf ce_vrint(vf x) {
#if defined(__AVX512F__)
    return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#elif defined(__AVX__)
    return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#elif defined(__SSE4_1__)
    return _mm_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#else
    return (x + 12582912.0f) - 12582912.0f;
#endif
}

/* a b + c, fused where the variant has FMA (as MLAF). */
static inline vf ce_vmla(vf a, vf b, vf c) {
#if defined(__AVX512F__)
    return _mm512_fmadd_ps(a, b, c);
#elif defined(__FMA__)
    return _mm256_fmadd_ps(a, b, c);
#else
    return a * b + c;
#endif
}

/* u 2^q for integral q in [-150, 128], rounded once (subnormal results included). */
static inline vf ce_vscale(vf u, vf q) {
#if defined(__AVX512F__)
    return _mm512_scalef_ps(u, q);
#else
    vi qi = __builtin_convertvector(q, vi);
    vi h = qi >> 1;
    return u * (vf)((h + 127) << 23) * (vf)((qi - h + 127) << 23);
#endif
}

/* ce_expf on VW lanes before its last two steps: returns p and sets *q, exp(x) = (1 + p) 2^q, where
   p = expm1(x - q ln 2) (its polynomial; ce_vexpm1f uses p itself). */
static inline vf ce_vexpf_p(vf x, vf* q) {
    vf d = ce_vmax(VSPLAT(-104.0f), x);
    vf r = ce_vmla(d, VSPLAT(1.442695040888963407f), VSPLAT(12582912.0f)) - 12582912.0f;
    vf s = ce_vmla(r, VSPLAT(-0.693145751953125f), d);
    s = ce_vmla(r, VSPLAT(-1.428606765330187045e-06f), s);
    vf u = VSPLAT(0.000198527617612853646278381f);
    u = ce_vmla(u, s, VSPLAT(0.00139304355252534151077271f));
    u = ce_vmla(u, s, VSPLAT(0.00833336077630519866943359f));
    u = ce_vmla(u, s, VSPLAT(0.0416664853692054748535156f));
    u = ce_vmla(u, s, VSPLAT(0.166666671633720397949219f));
    u = ce_vmla(u, s, VSPLAT(0.5f));
    *q = r;
    return ce_vmla(s * s, u, s);
}

/* ce_expf on VW lanes before its last step: returns u and sets *q, exp(x) = u 2^q. */
static inline vf ce_vexpf_u(vf x, vf* q) { return 1.0f + ce_vexpf_p(x, q); }

/* ce_expf on VW lanes, bit for bit; NaN stays NaN. */
static inline vf ce_vexpf(vf x) {
    vf q;
    vf u = ce_vexpf_u(x, &q);
    return ce_vscale(u, q);
}

/* exp(z) where z != 0 (NaN included) and 0 where z == 0, counting the zeros in *tie (lane by lane)
   or in *ties: AVX-512 zeroes them in its scalef and counts its mask's bits off the vector ports. */
static inline vf ce_vexpf_nz(vf z, vi* tie, int64_t* ties) {
    vf q;
    vf u = ce_vexpf_u(z, &q);
#if defined(__AVX512F__)
    __mmask16 k = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_NEQ_UQ);
    (void)tie;
    *ties += 16 - __builtin_popcount((unsigned)k);
    return _mm512_maskz_scalef_ps(k, u, q);
#else
    vi k = z == 0.0f;
    (void)ties;
    *tie -= k;
    return (vf)((vi)ce_vscale(u, q) & ~k);
#endif
}

/* max of x[0, n) (-inf for none); NaN is skipped (the exponential sums catch it). */
static float ce_max_f32(const float* x, int64_t n) {
    vf m0 = VSPLAT(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    int64_t j = 0;
    for (; j + 4 * VW <= n; j += 4 * VW) {
        m0 = ce_vmax(ce_vload(x + j), m0);
        m1 = ce_vmax(ce_vload(x + j + VW), m1);
        m2 = ce_vmax(ce_vload(x + j + 2 * VW), m2);
        m3 = ce_vmax(ce_vload(x + j + 3 * VW), m3);
    }
    for (; j + VW <= n; j += VW) m0 = ce_vmax(ce_vload(x + j), m0);
    if (j < n) m1 = ce_vmax(ce_vpartial(x + j, n - j, -INFINITY), m1);
    m0 = ce_vmax(ce_vmax(m0, m1), ce_vmax(m2, m3));
    float m = -INFINITY;
    for (int64_t k = 0; k < VW; k++) m = m0[k] > m ? m0[k] : m;
    return m;
}

/* Sum (in float64) of exp(x_j - m) over the x_j != m of x[0, n), and in *ties the number of x_j == m.
   Four terms are added in float32 before each float64 addition (two roundings of 2^-24 at most, no more
   than the exponential's own error). A NaN makes the sum NaN. `ahead` (the next block) is prefetched. */
static double ce_expsum_f32(const float* x, int64_t n, float m, const float* ahead, int64_t* ties) {
    vd acc0 = {0}, acc1 = {0};
    vi tie = {0};
    int64_t j = 0, t = 0;
    for (; j + 4 * VW <= n; j += 4 * VW) {
        for (int64_t o = 0; o < 4 * VW; o += 16) __builtin_prefetch(ahead + j + o, 0, 3);
        vf e0 = ce_vexpf_nz(ce_vload(x + j) - m, &tie, &t), e1 = ce_vexpf_nz(ce_vload(x + j + VW) - m, &tie, &t);
        vf e2 = ce_vexpf_nz(ce_vload(x + j + 2 * VW) - m, &tie, &t);
        vf e3 = ce_vexpf_nz(ce_vload(x + j + 3 * VW) - m, &tie, &t);
        vf e = (e0 + e1) + (e2 + e3);
        acc0 += ce_vlo(e);
        acc1 += ce_vhi(e);
    }
    for (; j < n; j += VW) {
        vf e = ce_vexpf_nz((j + VW <= n ? ce_vload(x + j) : ce_vpartial(x + j, n - j, -INFINITY)) - m, &tie, &t);
        acc0 += ce_vlo(e);
        acc1 += ce_vhi(e);
    }
    acc0 += acc1;
    double total = 0.0;
    for (int64_t k = 0; k < VD; k++) total += acc0[k];
    for (int64_t k = 0; k < VW; k++) t += tie[k];
    *ties = t;
    return total;
}

/* g_j = c exp((x_j - m) - s) - o w_j (w_j = 1 without cw), rounded as the scalar expression; g may be x. */
static void ce_grad_f32(const float* x, int64_t n, float m, float s, float c, float o, const float* cw, float* g) {
    int64_t j = 0;
    if (cw) {
        for (; j + VW <= n; j += VW) ce_vstore(g + j, c * ce_vexpf((ce_vload(x + j) - m) - s) - o * ce_vload(cw + j));
    } else {
        for (; j + VW <= n; j += VW) ce_vstore(g + j, c * ce_vexpf((ce_vload(x + j) - m) - s) - o);
    }
    if (j < n) {
        vf w = cw ? ce_vpartial(cw + j, n - j, 1.0f) : VSPLAT(1.0f);
        vf r = c * ce_vexpf((ce_vpartial(x + j, n - j, 0.0f) - m) - s) - o * w;
        for (int64_t k = 0; j + k < n; k++) g[j + k] = r[k];
    }
}

/* --- float64 lanes of float32 inputs: the information measures and binary cross-entropy --------------------
 * ce_vexp and ce_vlog are ce_exp and ce_log on VD = VW / 2 float64 lanes (one register), operation for
 * operation (the same bits); ce_vlogf, ce_vlog1p and ce_vlog1m are shorter logarithms for float32 data (see them). */

#define ce_vsel CE_PASTE(ce_vsel, CE_ISA)
#define ce_vtod CE_PASTE(ce_vtod, CE_ISA)
#define ce_vmlad CE_PASTE(ce_vmlad, CE_ISA)
#define ce_vhalf CE_PASTE(ce_vhalf, CE_ISA)
#define ce_vexp CE_PASTE(ce_vexp, CE_ISA)
#define ce_vrecip CE_PASTE(ce_vrecip, CE_ISA)
#define ce_vlog CE_PASTE(ce_vlog, CE_ISA)
#define ce_vlogf CE_PASTE(ce_vlogf, CE_ISA)
#define ce_vlog1p CE_PASTE(ce_vlog1p, CE_ISA)
#define ce_vlog1m CE_PASTE(ce_vlog1m, CE_ISA)
#define ce_vinfo_f32 CE_PASTE(ce_vinfo_f32, CE_ISA)
#define ce_vbinary_f32 CE_PASTE(ce_vbinary_f32, CE_ISA)
#define DSPLAT(c) ((vd){0} + (double)(c))

/* The first n values of p (all VD when n >= VD), the other lanes set to fill. */
static inline vfh ce_vhalf(const float* p, int64_t n, float fill) {
    if (n >= VD) return *(const vfh_unaligned*)p;
    float buf[VD];
    for (int64_t k = 0; k < VD; k++) buf[k] = k < n ? p[k] : fill;
    return *(const vfh_unaligned*)buf;
}

/* m ? a : b for a lane mask m (all ones or zeros). */
static inline vd ce_vsel(vl m, vd a, vd b) { return (vd)(((vl)a & m) | ((vl)b & ~m)); }

/* Small integers (|k| < 2^51) to double, exactly. */
static inline vd ce_vtod(vl k) { return (vd)(k + 0x4338000000000000LL) - 6755399441055744.0; }

/* a b + c on float64 lanes, fused where the variant has FMA (as MLA). */
static inline vd ce_vmlad(vd a, vd b, vd c) {
#if defined(__AVX512F__)
    return _mm512_fmadd_pd(a, b, c);
#elif defined(__FMA__)
    return _mm256_fmadd_pd(a, b, c);
#else
    return a * b + c;
#endif
}

/* 1 / d to 2^-27: AVX-512's 14-bit estimate refined by one Newton step (a division of eight lanes would
   hold its unit for 16 cycles), elsewhere the division itself. */
static inline vd ce_vrecip(vd d) {
#if defined(__AVX512F__)
    vd r = _mm512_rcp14_pd(d);
    return ce_vmlad(r, _mm512_fnmadd_pd(d, r, DSPLAT(1.0)), r);
#else
    return 1.0 / d;
#endif
}

static inline vd ce_vexp(vd x) {
    vd d = ce_vsel(x > -746.0, x, DSPLAT(-746.0));
    vd q = (d * 1.442695040888963407359924681001892137 + 6755399441055744.0) - 6755399441055744.0;
    vd s = ce_vmlad(q, DSPLAT(-.69314718055966295651160180568695068359375), d);
    s = ce_vmlad(q, DSPLAT(-.28235290563031577122588448175013436025525412068e-12), s);
    vd u = DSPLAT(+0.2081276378237164457e-8);
    u = ce_vmlad(u, s, DSPLAT(+0.2511210703042288022e-7));
    u = ce_vmlad(u, s, DSPLAT(+0.2755762628169491192e-6));
    u = ce_vmlad(u, s, DSPLAT(+0.2755723402025388239e-5));
    u = ce_vmlad(u, s, DSPLAT(+0.2480158687479686264e-4));
    u = ce_vmlad(u, s, DSPLAT(+0.0001984126989855865850));
    u = ce_vmlad(u, s, DSPLAT(+0.001388888888914497797));
    u = ce_vmlad(u, s, DSPLAT(+0.008333333333316527367));
    u = ce_vmlad(u, s, DSPLAT(+0.04166666666666609863));
    u = ce_vmlad(u, s, DSPLAT(+0.1666666666666669072));
    u = ce_vmlad(u, s, DSPLAT(+0.5));
    u = 1.0 + ce_vmlad(s * s, u, s);
    vl qi = (vl)(q + 6755399441055744.0) - 0x4338000000000000LL;
    vl h = qi >> 1;
    return u * (vd)((h + 1023) << 52) * (vd)((qi - h + 1023) << 52);
}

static inline vd ce_vlog(vd x) {
    const double Lg1 = 6.666666666666735130e-01, Lg2 = 3.999999999940941908e-01, Lg3 = 2.857142874366239149e-01,
                 Lg4 = 2.222219843214978396e-01, Lg5 = 1.818357216161805012e-01, Lg6 = 1.531383769920937332e-01,
                 Lg7 = 1.479819860511658591e-01;
    vl sub = x < 2.2250738585072014e-308;
    vd xs = ce_vsel(sub, x * 0x1p54, x);
    vl ix = (vl)xs;
    vl k = ((ix >> 52) & 0x7ff) - 1023 - (sub & 54);
    vl hx = ix & 0x000fffffffffffffLL;
    vl i = (hx + 0x00095f6400000000LL) & 0x0010000000000000LL;
    k += i >> 52;
    vd m = (vd)(hx | (i ^ 0x3ff0000000000000LL));
    vd f = m - 1.0;
    vd s = f / (2.0 + f), z = s * s, w = z * z;
    vd t1 = w * (Lg2 + w * (Lg4 + w * Lg6));
    vd t2 = z * (Lg1 + w * (Lg3 + w * (Lg5 + w * Lg7)));
    vd R = t2 + t1, hfsq = 0.5 * f * f, dk = ce_vtod(k);
    vd r = dk * 6.93147180369123816490e-01 - ((hfsq - (s * (hfsq + R) + dk * 1.90821492927058770002e-10)) - f);
    r = ce_vsel(x == 0.0, DSPLAT(-INFINITY), r);
    r = ce_vsel(x == INFINITY, DSPLAT(INFINITY), r);
    return ce_vsel((x < 0.0) | (x != x), DSPLAT(NAN), r);
}

/* log(x) to 2^-28 (relative) for the float64 values of float32 arithmetic: x = 0 (-inf), x = +inf, or
   x >= 2^-149 (no subnormal float64). ce_vlog's reduction with the first four of its seven polynomial
   terms and s = f / (2 + f) from ce_vrecip: 2^-28.9 at most against mpmath, 1/30 of a float32 ulp, for
   half of ce_vlog's operations. For float32 results of terms of one sign (entropy, cross-entropy, binary
   cross-entropy); the KL divergence, whose terms cancel, keeps ce_vlog. */
static inline vd ce_vlogf(vd x) {
    const double Lg1 = 6.666666666666735130e-01, Lg2 = 3.999999999940941908e-01, Lg3 = 2.857142874366239149e-01,
                 Lg4 = 2.222219843214978396e-01;
    vl ix = (vl)x;
    vl hx = ix & 0x000fffffffffffffLL;
    vl i = (hx + 0x00095f6400000000LL) & 0x0010000000000000LL;
    vl k = ((ix >> 52) - 1023) + (i >> 52);
    vd f = (vd)(hx | (i ^ 0x3ff0000000000000LL)) - 1.0;
    vd s = f * ce_vrecip(2.0 + f), z = s * s, w = z * z;
    vd R = z * (Lg1 + w * Lg3) + w * (Lg2 + w * Lg4), hfsq = 0.5 * f * f, dk = ce_vtod(k);
    vd r = dk * 6.93147180369123816490e-01 - ((hfsq - (s * (hfsq + R) + dk * 1.90821492927058770002e-10)) - f);
    r = ce_vsel(x == 0.0, DSPLAT(-INFINITY), r);
    return ce_vsel(x == INFINITY, DSPLAT(INFINITY), r);
}

/* log(1 + a) for a >= 0 (binary cross-entropy from logits, the shift log1p(rest) of float32 rows): ce_vlogf
   of the rounded 1 + a plus the rounding's first-order correction. */
static inline vd ce_vlog1p(vd a) {
    vd u = 1.0 + a;
    return ce_vsel(u == INFINITY, DSPLAT(INFINITY), ce_vlogf(u) + (a - (u - 1.0)) * ce_vrecip(u));
}

/* log(1 - p) for the float64 value of a float32 p in [0, 1] (binary cross-entropy, label 0): ce_vlogf of the
   rounded u = 1 - p plus the rounding's first-order correction ((1 - u) - p) / u, as ce_log1m. 1 - p is exact
   for p >= 2^-30 (the correction is 0); below, it rounds (1 - 1e-20 is 1.0, whose logarithm is 0, not -1e-20)
   and u is within 2^-30 of 1, so the division is left out: 2^-30 of the result, not a float32 ulp. p = 1 gives
   -inf + 0. */
static inline vd ce_vlog1m(vd p) {
    vd u = 1.0 - p;
    return ce_vlogf(u) + ((1.0 - u) - p);
}

/* One row of ce_info for float32 inputs (q = p for the entropy): the terms in float64 lanes, summed in
   float64 lanes (float32 results need no compensation); *bad set for values outside [0, 1]. */
static double ce_vinfo_f32(const float* p, const float* q, int64_t v, int kind, double* sp, double* sq, int* bad) {
    vd acc = {0}, sa = {0}, sb = {0};
    vl badv = {0};
    for (int64_t j = 0; j < v; j += VD) {
        vd pj = __builtin_convertvector(ce_vhalf(p + j, v - j, 0.0f), vd);
        vd qj = __builtin_convertvector(ce_vhalf(q + j, v - j, 0.0f), vd);
        badv |= ~((pj >= 0.0) & (pj <= 1.0) & (qj >= 0.0) & (qj <= 1.0));
        sa += pj;
        sb += qj;
        vd term = kind == 2 ? pj * ce_vlog(pj / qj) : -pj * ce_vlogf(qj);
        acc += ce_vsel(pj == 0.0, DSPLAT(0.0), term);
    }
    double total = 0.0, ta = 0.0, tb = 0.0;
    int64_t anybad = 0;
    for (int k = 0; k < VD; k++) {
        total += acc[k];
        ta += sa[k];
        tb += sb[k];
        anybad |= badv[k];
    }
    *sp = ta;
    *sq = tb;
    *bad = anybad != 0;
    return total;
}

/* ce_binary's loop for float32 inputs, in float64 lanes; returns the number of invalid elements. */
static int64_t ce_vbinary_f32(const float* y, const float* p, int64_t n, int from_logits, float one_eps,
                              float half_eps, float pw, float* out) {
    vl bad = {0};
    for (int64_t j = 0; j < n; j += VD) {
        vfh yf = ce_vhalf(y + j, n - j, 0.0f), xf = ce_vhalf(p + j, n - j, 0.5f);
        vfh ystf = yf * one_eps + half_eps;
        vd ys = __builtin_convertvector(ystf, vd), pos = __builtin_convertvector(ystf * pw, vd);
        vd rest = __builtin_convertvector(1.0f - ystf, vd), x = __builtin_convertvector(xf, vd);
        vl ok = __builtin_convertvector((yf >= 0.0f) & (yf <= 1.0f), vl);
        vd lp, lq;
        if (from_logits) {
            ok &= x == x;
            vd sp = ce_vlog1p(ce_vexp(-(vd)((vl)x & 0x7fffffffffffffffLL)));
            lp = -(ce_vsel(x < 0.0, -x, DSPLAT(0.0)) + sp);
            lq = -(ce_vsel(x > 0.0, x, DSPLAT(0.0)) + sp);
        } else {
            ok &= (x >= 0.0) & (x <= 1.0);
            lp = ce_vlogf(x);
            lq = ce_vlog1m(x);
        }
        /* 0 - (...), not -(...): a zero loss is +0, as on the reference path */
        vd loss = 0.0 - (ce_vsel(pos == 0.0, DSPLAT(0.0), pos * lp) + ce_vsel(ys == 1.0, DSPLAT(0.0), rest * lq));
        vfh r = __builtin_convertvector(loss, vfh);
        if (j + VD <= n) {
            *(vfh_unaligned*)(out + j) = r;
        } else {
            for (int64_t k = 0; j + k < n; k++) out[j + k] = r[k];
        }
        bad += ~ok & 1;
    }
    int64_t total = 0;
    for (int k = 0; k < VD; k++) total += bad[k];
    return total;
}

/* The row statistics (max, rest) of the GROUP short rows held transposed in xt, VW rows a vector;
   bad[k] set for a row holding NaN or +inf. */
static void ce_group_stats_f32(const float* xt, int64_t v, double* mx, double* rest, int* bad) {
    for (int64_t kb = 0; kb < GROUP; kb += VW) {
        vf m = VSPLAT(-INFINITY);
        for (int64_t j = 0; j < v; j++) m = ce_vmax(ce_vload(xt + j * GROUP + kb), m);
        vf mz = (vf)((vi)m & ~(m == -INFINITY)); /* rows of -inf: z = -inf, no NaN */
        vd lo = {0}, hi = {0};
        vi tie = {0}, counted = {0}; /* the lanes' ties are counted here; ce_vexpf_nz's counts are unused */
        int64_t unused = 0;
        for (int64_t j = 0; j < v; j++) {
            vf z = ce_vload(xt + j * GROUP + kb) - mz;
            vi k = z == 0.0f;
            tie -= k;
            vf e = ce_vexpf_nz(z, &counted, &unused);
            lo += ce_vlo(e);
            hi += ce_vhi(e);
        }
        vf tie1 = __builtin_convertvector(tie, vf) - 1.0f; /* exact: at most SHORT ties */
        vd mlo = ce_vlo(m), mhi = ce_vhi(m), rlo = lo + ce_vlo(tie1), rhi = hi + ce_vhi(tie1);
        rlo = ce_vsel(mlo == -INFINITY, DSPLAT(-1.0), rlo);
        rhi = ce_vsel(mhi == -INFINITY, DSPLAT(-1.0), rhi);
        memcpy(mx + kb, &mlo, sizeof mlo);
        memcpy(mx + kb + VD, &mhi, sizeof mhi);
        memcpy(rest + kb, &rlo, sizeof rlo);
        memcpy(rest + kb + VD, &rhi, sizeof rhi);
        vi odd = (m == INFINITY) | (m == -INFINITY); /* +inf: invalid; -inf: a NaN is not in the sums */
        vl nan = (lo != lo) | (hi != hi);
        int64_t any = 0;
        for (int64_t k = 0; k < VW; k++) any |= odd[k];
        for (int64_t k = 0; k < VD; k++) any |= nan[k];
        for (int64_t k = 0; k < VW; k++) bad[kb + k] = 0;
        for (int64_t k = 0; any && k < VW; k++) {
            int64_t row = kb + k;
            double total = k < VD ? lo[k] : hi[k - VD];
            bad[row] = m[k] == INFINITY || total != total;
            if (m[k] == -INFINITY)
                for (int64_t j = 0; j < v; j++) bad[row] |= xt[j * GROUP + row] != xt[j * GROUP + row];
        }
    }
}

/* --- distillation on float32 rows (ce_distill in cpu_template.h) --------------------------------------------
 * Everything per element runs on float32 lanes: the probabilities p = exp(lp), the difference of the two
 * log-probabilities d = lp_s - lp_t, formed as k ((x_s - m_s) - (x_t - m_t)) - (ls_s - ls_t) from the exact
 * float32 differences x - max, and the JSD's log-ratios against the mixture from d alone (ce_vjsdf), so the
 * terms of a divergence keep float32's relative accuracy also where the two distributions nearly agree (the
 * difference of two float32 log-softmaxes, or log M from float32 probabilities, would keep none). The terms
 * are added two by two in float32 and summed in float64 lanes. */

#define ce_dstore CE_PASTE(ce_dstore, CE_ISA)
#define ce_vrcpf CE_PASTE(ce_vrcpf, CE_ISA)
#define ce_vlogf32 CE_PASTE(ce_vlogf32, CE_ISA)
#define ce_vexpm1f CE_PASTE(ce_vexpm1f, CE_ISA)
#define ce_vjsdf CE_PASTE(ce_vjsdf, CE_ISA)
#define ce_vmin CE_PASTE(ce_vmin, CE_ISA)
#define ce_vlogf_tail CE_PASTE(ce_vlogf_tail, CE_ISA)
#define ce_vlog1pf CE_PASTE(ce_vlog1pf, CE_ISA)
#define ce_vlogwc CE_PASTE(ce_vlogwc, CE_ISA)
#define ce_vsum2 CE_PASTE(ce_vsum2, CE_ISA)
#define ce_expsum_k_f32 CE_PASTE(ce_expsum_k_f32, CE_ISA)
#define ce_kl_terms_f32 CE_PASTE(ce_kl_terms_f32, CE_ISA)
#define ce_kl_grad_f32 CE_PASTE(ce_kl_grad_f32, CE_ISA)
#define ce_jsd_terms_f32 CE_PASTE(ce_jsd_terms_f32, CE_ISA)
#define ce_jsd_grad_f32 CE_PASTE(ce_jsd_grad_f32, CE_ISA)
#define VSEL(m, a, b) ((vf)(((vi)(a) & (m)) | ((vi)(b) & ~(m))))

/* Store the first n (all VW when n >= VW) lanes of x at p. */
static inline void ce_dstore(float* p, int64_t n, vf x) {
    if (n >= VW) {
        ce_vstore(p, x);
    } else {
        for (int64_t q = 0; q < n; q++) p[q] = x[q];
    }
}

/* 1 / x (x > 0, finite) to float32 accuracy: the hardware estimate refined by Newton steps, else a division. */
static inline vf ce_vrcpf(vf x) {
#if defined(__AVX512F__)
    vf r = _mm512_rcp14_ps(x);
    return r * (2.0f - x * r);
#elif defined(__AVX__) || defined(__SSE4_1__)
#if defined(__AVX__)
    vf r = _mm256_rcp_ps(x);
#else
    vf r = _mm_rcp_ps(x);
#endif
    r = r * (2.0f - x * r);
    return r * (2.0f - x * r);
#else
    return 1.0f / x;
#endif
}

/* a < b ? a : b lane by lane (b where either is NaN), as x86's minps. */
static inline vf ce_vmin(vf a, vf b) {
#if defined(__AVX512F__)
    return _mm512_min_ps(a, b);
#elif defined(__AVX__)
    return _mm256_min_ps(a, b);
#elif defined(__SSE4_1__)
    return _mm_min_ps(a, b);
#else
    vi m = a < b;
    return (vf)(((vi)a & m) | ((vi)b & ~m));
#endif
}

/* log(1 + f) + e ln 2 for f in [-0.3, 0.5] and an integral e: 2 atanh(s), s = f / (2 + f), by its series to s^9
   (|s| <= 0.2: 1e-8 relative), ln 2 in two parts; about 1 ulp. */
static inline vf ce_vlogf_tail(vf f, vf ef) {
    vf sv = f * ce_vrcpf(2.0f + f), z = sv * sv;
    vf p = ce_vmla(ce_vmla(ce_vmla(z, VSPLAT(2.0f / 9.0f), VSPLAT(2.0f / 7.0f)), z, VSPLAT(2.0f / 5.0f)), z,
                   VSPLAT(2.0f / 3.0f));
    vf small = ce_vmla(sv * z, p, ef * 1.428606765330187045e-06f) + 2.0f * sv;
    return ce_vmla(ef, VSPLAT(0.693145751953125f), small);
}

/* log(x) on float32 lanes for normal x > 0: x = 2^e m, m in [sqrt(1/2), sqrt(2)), then ce_vlogf_tail. */
static inline vf ce_vlogf32(vf x) {
    vi ix = (vi)x;
    vi e = ((ix >> 23) & 0xff) - 127;
    vf m = (vf)((ix & 0x007fffff) | 0x3f800000);
    vi big = m > 1.41421356237f;
    m = VSEL(big, m * 0.5f, m);
    e -= big; /* big is -1 where true */
    return ce_vlogf_tail(m - 1.0f, __builtin_convertvector(e, vf));
}

/* log(w + c) on float32 lanes for w >= FLT_MIN (normal) and |c| <= ulp(w) / 2 (w's rounding error): with w = 2^e m
   (m in [0.75, 1.5) from AVX-512's getmant and getexp, else in [sqrt(1/2), sqrt(2))), the argument of ce_vlogf_tail
   is f = (w + c) 2^-e - 1 = (m - 1) + c 2^-e, c put back in one rounding; about 1 ulp. */
static inline vf ce_vlogwc(vf w, vf c) {
#if defined(__AVX512F__)
    vf m = _mm512_getmant_ps(w, _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_src);
    vf ef = _mm512_getexp_ps(w * (1.0f / 0.75f)); /* m >= 1.5 exactly where w (4/3) rounds to >= 2 */
    return ce_vlogf_tail((m - 1.0f) + _mm512_scalef_ps(c, -ef), ef);
#else
    vi ix = (vi)w;
    vi e = (ix >> 23) - 127;
    vf m = (vf)((ix & 0x007fffff) | 0x3f800000);
    vi big = m > 1.41421356237f;
    m = VSEL(big, m * 0.5f, m);
    e -= big;
    return ce_vlogf_tail(ce_vmla(c, (vf)((127 - e) << 23), m - 1.0f), __builtin_convertvector(e, vf));
#endif
}

/* log(1 + u) for u in [-1, 0] on float32 lanes (-1 gives log FLT_MIN, not -inf): ce_vlogwc of w = 1 + u rounded
   and its rounding error u - (w - 1), exact (w - 1 is exact for w >= 1/2, and below 1 + u itself is). Where w
   rounds to 1 (|u| < 2^-25) the result is u, so small arguments keep their relative accuracy; about 1 ulp. */
static inline vf ce_vlog1pf(vf u) {
    vf w = ce_vmax(1.0f + u, VSPLAT(FLT_MIN));
    return ce_vlogwc(w, u - (w - 1.0f));
}

/* exp(x) - 1 for x <= 0 on float32 lanes (not NaN; -inf gives -1), and exp(x) in *e (ce_vexpf's bits), from one
   range reduction: with exp(x) = (1 + p) 2^q (ce_vexpf_p), expm1(x) = p 2^q + (2^q - 1), one rounding; 2^q - 1
   is exact for q >= -24, and below -30 the result rounds to -1 whatever q is (q is capped there). About 1 ulp. */
static inline vf ce_vexpm1f(vf x, vf* e) {
    vf q;
    vf p = ce_vexpf_p(x, &q);
    vf two = (vf)((__builtin_convertvector(ce_vmax(q, VSPLAT(-30.0f)), vi) + 127) << 23);
    *e = ce_vscale(1.0f + p, q);
    return ce_vmla(p, two, two - 1.0f);
}

/* The JSD's log-ratios against the mixture, t_ratio = lp_t - log M and s_ratio = lp_s - log M, from d = lp_s - lp_t
   (see L(jsd_ratios), its float64 form): r = -log1p(c expm1(-|d|)) with c = 1 - beta (cn) where d <= 0 and beta (cp)
   above. Also *e = exp(-|d|), the smaller probability over the larger, and *neg = (d <= 0). d is first clamped to
   [-FLT_MAX, FLT_MAX], NaN (where both probabilities are 0) to -FLT_MAX: the ratios are finite, and the term of a
   probability 0 is 0 * finite. */
static inline void ce_vjsdf(vf d, vf cn, vf cp, vf* t_ratio, vf* s_ratio, vf* e, vi* neg) {
    vf dc = ce_vmin(ce_vmax(d, VSPLAT(-FLT_MAX)), VSPLAT(FLT_MAX));
    vi n = dc <= 0.0f;
    vf em = ce_vexpm1f((vf)((vi)dc | INT32_MIN), e); /* exp(-|d|) - 1 */
    /* log M - lp_max = log(1 + c em), as log1p while 1 + c em >= 1/2; below, c em's rounding would be amplified
       (up to 1 / (1 - c)), and (1 - c) + c e, with 1 - c the other weight (rounded from 1 - beta or beta itself),
       is computed to float32's accuracy */
    vf c = VSEL(n, cn, cp), u = c * em, w = 1.0f + u, w2 = ce_vmla(c, *e, VSEL(n, cp, cn));
    vi low = w2 < 0.5f;
    vf r = -ce_vlogwc(ce_vmax(VSEL(low, w2, w), VSPLAT(FLT_MIN)), VSEL(low, VSPLAT(0.0f), u - (w - 1.0f)));
    *t_ratio = VSEL(n, r, r - dc);
    *s_ratio = VSEL(n, r + dc, r);
    *neg = n;
}

/* The JSD kernels' float32 vector primitives on n values, for the accuracy tests (against mpmath): which 0 gives
   ce_vexpm1f(x) in out and its exp(x) in out2 (x <= 0), 1 ce_vlog1pf(x) in out (x in [-1, 0]), 2 ce_vjsdf's
   t_ratio in out and s_ratio in out2 for d = x and beta. */
void CE_PASTE(ce_vmath_f32, CE_ISA)(int which, const float* x, int64_t n, double beta, float* out, float* out2) {
    vf bv = VSPLAT((float)beta), wv = VSPLAT((float)(1.0 - beta));
    for (int64_t j = 0; j < n; j += VW) {
        int64_t left = n - j;
        vf xv = left >= VW ? ce_vload(x + j) : ce_vpartial(x + j, left, 0.0f), a, b = xv;
        if (which == 0) {
            a = ce_vexpm1f(xv, &b);
        } else if (which == 1) {
            a = ce_vlog1pf(xv);
        } else {
            vf e;
            vi neg;
            ce_vjsdf(xv, wv, bv, &a, &b, &e, &neg);
        }
        ce_dstore(out + j, left, a);
        ce_dstore(out2 + j, left, b);
    }
}

/* Add the float32 vectors a and b (once in float32) to the float64 lanes acc. */
static inline vd ce_vsum2(vd acc, vf a, vf b) {
    vf ab = a + b;
    return acc + ce_vlo(ab) + ce_vhi(ab);
}

/* sum_j exp((x_j - m) k), summed in float64 lanes; a NaN makes it NaN. */
static double ce_expsum_k_f32(const float* x, int64_t n, float m, float k) {
    vd acc0 = {0}, acc1 = {0};
    for (int64_t j = 0; j < n; j += VW) {
        vf e = ce_vexpf(((j + VW <= n ? ce_vload(x + j) : ce_vpartial(x + j, n - j, -INFINITY)) - m) * k);
        acc0 += ce_vlo(e);
        acc1 += ce_vhi(e);
    }
    acc0 += acc1;
    double total = 0.0;
    for (int64_t q = 0; q < VD; q++) total += acc0[q];
    return total;
}

/* One row pair's probabilities (es, et; each only where need_s, need_t), d = lp_s - lp_t and lp_t (zt), VW lanes
   at column j. Columns past the row's end have probability 0. */
#define CE_KL_LANES(s, t, j, left, need_s, need_t)                                                         \
    vf sv = (left) >= VW ? ce_vload((s) + (j)) : ce_vpartial((s) + (j), (left), -INFINITY);                \
    vf tv = (left) >= VW ? ce_vload((t) + (j)) : ce_vpartial((t) + (j), (left), probs ? 0.0f : -INFINITY); \
    vf as = sv - ms, es = zero, et = zero, zt, d;                                                          \
    if (need_s) es = ce_vexpf(as * kf - lssf);                                                             \
    if (probs) {                                                                                           \
        et = tv;                                                                                           \
        zt = ce_vlogf32(tv);                                                                               \
        d = (as * kf - lssf) - zt;                                                                         \
    } else {                                                                                               \
        vf at = tv - mt;                                                                                   \
        zt = at * kf - lstf;                                                                               \
        if (need_t) et = ce_vexpf(zt);                                                                     \
        d = (as - at) * kf - dlf;                                                                          \
    }

/* The JSD of one float32 row pair from its statistics (see ce_distill), and in *aux KL(P_s || M). With teacher
   logits the larger of the two probabilities is exp(lp_max) and the smaller that times exp(-|d|), which ce_vjsdf
   computes with expm1(-|d|): one exponential fewer. Teacher probabilities (probs) are read as they are. */
static double ce_jsd_terms_f32(const float* s, const float* t, int64_t v, int probs, float ms, float mt, double k,
                               double lss, double lst, double beta, double* aux) {
    float kf = (float)k, lssf = (float)lss, lstf = (float)lst, dlf = (float)(lss - lst);
    vf bv = VSPLAT((float)beta), wv = VSPLAT((float)(1.0 - beta));
    vd val = {0}, ax = {0};
    for (int64_t j = 0; j < v; j += 2 * VW) {
        vf term[2], from_s[2];
        for (int h = 0; h < 2; h++) {
            int64_t at_j = j + h * VW, left = v - at_j;
            vf sv = left >= VW ? ce_vload(s + at_j) : ce_vpartial(s + at_j, left, -INFINITY);
            vf tv = left >= VW ? ce_vload(t + at_j) : ce_vpartial(t + at_j, left, probs ? 0.0f : -INFINITY);
            vf as = sv - ms, zs = as * kf - lssf, tr, sr, e, ps, pt;
            vi neg;
            if (probs) {
                ce_vjsdf(zs - ce_vlogf32(tv), wv, bv, &tr, &sr, &e, &neg);
                ps = ce_vexpf(zs);
                pt = tv;
            } else {
                vf at = tv - mt;
                ce_vjsdf((as - at) * kf - dlf, wv, bv, &tr, &sr, &e, &neg);
                vf pmax = ce_vexpf(VSEL(neg, at * kf - lstf, zs)), pmin = pmax * e;
                ps = VSEL(neg, pmin, pmax);
                pt = VSEL(neg, pmax, pmin);
            }
            from_s[h] = ps * sr;
            term[h] = bv * (pt * tr) + wv * from_s[h];
        }
        val = ce_vsum2(val, term[0], term[1]);
        ax = ce_vsum2(ax, from_s[0], from_s[1]);
    }
    double total = 0.0, atotal = 0.0;
    for (int64_t q = 0; q < VD; q++) {
        total += val[q];
        atotal += ax[q];
    }
    *aux = atotal;
    return total;
}

/* The gradient of g times the JSD of one float32 row pair with respect to s (g k (1 - beta) p_s (s_ratio - a)); gr
   may be s. */
static void ce_jsd_grad_f32(const float* s, const float* t, int64_t v, int probs, float ms, float mt, double k,
                            double lss, double lst, double beta, double a, double g, float* gr) {
    float kf = (float)k, lssf = (float)lss, dlf = (float)(lss - lst), af = (float)a;
    vf bv = VSPLAT((float)beta), wv = VSPLAT((float)(1.0 - beta)), gw = VSPLAT((float)(g * (1.0 - beta)));
    for (int64_t j = 0; j < v; j += VW) {
        int64_t left = v - j;
        vf sv = left >= VW ? ce_vload(s + j) : ce_vpartial(s + j, left, -INFINITY);
        vf tv = left >= VW ? ce_vload(t + j) : ce_vpartial(t + j, left, probs ? 0.0f : -INFINITY);
        vf as = sv - ms, zs = as * kf - lssf, d = probs ? zs - ce_vlogf32(tv) : (as - (tv - mt)) * kf - dlf;
        vf tr, sr, e;
        vi neg;
        ce_vjsdf(d, wv, bv, &tr, &sr, &e, &neg);
        ce_dstore(gr + j, left, gw * (ce_vexpf(zs) * (sr - af)));
    }
}

/* The divergence of one float32 row pair from its statistics (see ce_distill); *aux gets its auxiliary value.
   With gr (the forward KL only), also writes g (p_s - p_t) there (gr may be s). */
static double ce_kl_terms_f32(const float* s, const float* t, int64_t v, int kind, int probs, float ms, float mt,
                              double k, double lss, double lst, double beta, double g, float* gr, double* aux) {
    float kf = (float)k, lssf = (float)lss, lstf = (float)lst, dlf = (float)(lss - lst), gf = (float)g;
    if (kind == 2) return ce_jsd_terms_f32(s, t, v, probs, ms, mt, k, lss, lst, beta, aux);
    vf zero = VSPLAT(0.0f);
    vd val = {0}, ax = {0};
    for (int64_t j = 0; j < v; j += VW) {
        int64_t left = v - j;
        CE_KL_LANES(s, t, j, left, kind != 0 || gr, kind != 1)
        vi tz = et == 0.0f, sz = es == 0.0f;
        if (kind == 0) {
            val = ce_vsum2(val, VSEL(tz, zero, -(et * d)), zero);
            ax = ce_vsum2(ax, VSEL(tz, zero, -(et * zt)), zero);
            if (gr) ce_dstore(gr + j, left, gf * (es - et));
        } else {
            val = ce_vsum2(val, VSEL(sz, zero, es * d), zero);
        }
    }
    double total = 0.0, atotal = 0.0;
    for (int64_t q = 0; q < VD; q++) {
        total += val[q];
        atotal += ax[q];
    }
    *aux = kind == 1 ? total : atotal;
    return total;
}

/* The gradient of g times the divergence of one float32 row pair with respect to s, from its statistics and
   its aux value a (see ce_distill); gr may be s. */
static void ce_kl_grad_f32(const float* s, const float* t, int64_t v, int kind, int probs, float ms, float mt,
                           double k, double lss, double lst, double beta, double a, double g, float* gr) {
    if (kind == 2) {
        ce_jsd_grad_f32(s, t, v, probs, ms, mt, k, lss, lst, beta, a, g, gr);
        return;
    }
    float kf = (float)k, lssf = (float)lss, lstf = (float)lst, dlf = (float)(lss - lst), gf = (float)g;
    float af = (float)a;
    vf zero = VSPLAT(0.0f);
    for (int64_t j = 0; j < v; j += VW) {
        int64_t left = v - j;
        CE_KL_LANES(s, t, j, left, 1, kind == 0)
        (void)zt;
        if (kind == 0) {
            ce_dstore(gr + j, left, gf * (es - et));
            continue;
        }
        ce_dstore(gr + j, left, VSEL(es == 0.0f, zero, gf * (es * (d - af))));
    }
}

#undef CE_KL_LANES

#define ce_kl_online_f32 CE_PASTE(ce_kl_online_f32, CE_ISA)
#define ce_vrow CE_PASTE(ce_vrow, CE_ISA)

/* VW values of a row from column j (fill past its n columns). */
static inline vf ce_vrow(const float* x, int64_t j, int64_t n, float fill) {
    return j + VW <= n ? ce_vload(x + j) : ce_vpartial(x + j, n - j, fill);
}

/* The forward (kind 0) or reverse (kind 1) KL of one float32 row pair of logits in a single pass: block by
   block, the maxima first (in L1), then with the running maxima m the sums of exponentials S = sum exp((x - m) k)
   of both rows, A = sum e (x_w - x_o) over the row the divergence weights by (w: the teacher t for the forward
   KL, the student s for the reverse; o the other) and, for the forward KL, B = sum e_t (t - m_t); the sums are
   rescaled when a maximum grows. Then KL = k A / S_w - (k (m_w - m_o) + log S_w - log S_o), and the teacher's
   entropy log S_t - k B / S_t. Each product e (x_w - x_o) keeps float32's relative accuracy (x_w - x_o is one
   correctly rounded subtraction); terms with e = 0 count 0. Writes the statistics of ce_distill to st. Returns
   1 for NaN, +inf or a row of -inf only. */
static int ce_kl_online_f32(const float* s, const float* t, int64_t v, int kind, double k, double* st, double* value,
                            double* aux) {
    float ms = -INFINITY, mt = -INFINITY, kf = (float)k;
    double ss = 0.0, stt = 0.0, a = 0.0, b = 0.0;
    vf zero = VSPLAT(0.0f);
    for (int64_t o = 0; o < v; o += BLOCK) {
        int64_t len = v - o > BLOCK ? BLOCK : v - o;
        const float *sb = s + o, *tb = t + o;
        float bs = ce_max_f32(sb, len), bt = ce_max_f32(tb, len); /* NaN is skipped: the sums catch it */
        if (bs == INFINITY || bt == INFINITY) return 1;
        if (bs > ms) {
            if (ms != -INFINITY) {
                double r = exp(((double)ms - (double)bs) * k);
                ss *= r;
                if (kind == 1) a *= r;
            }
            ms = bs;
        }
        if (bt > mt) {
            if (mt != -INFINITY) {
                double delta = (double)bt - (double)mt, r = exp(-delta * k);
                b = (b - delta * stt) * r;
                stt *= r;
                if (kind == 0) a *= r;
            }
            mt = bt;
        }
        float msz = ms == -INFINITY ? 0.0f : ms, mtz = mt == -INFINITY ? 0.0f : mt; /* rows of -inf so far: e = 0 */
        vd vs = {0}, vt = {0}, va = {0}, vb = {0};
        for (int64_t j = 0; j < len; j += 2 * VW) {
            vf s0 = ce_vrow(sb, j, len, -INFINITY), s1 = ce_vrow(sb, j + VW, len, -INFINITY);
            vf t0 = ce_vrow(tb, j, len, -INFINITY), t1 = ce_vrow(tb, j + VW, len, -INFINITY);
            vf es0 = ce_vexpf((s0 - msz) * kf), es1 = ce_vexpf((s1 - msz) * kf);
            vf et0 = ce_vexpf((t0 - mtz) * kf), et1 = ce_vexpf((t1 - mtz) * kf);
            vs = ce_vsum2(vs, es0, es1);
            vt = ce_vsum2(vt, et0, et1);
            if (kind == 0) {
                va = ce_vsum2(va, VSEL(et0 == 0.0f, zero, et0 * (t0 - s0)), VSEL(et1 == 0.0f, zero, et1 * (t1 - s1)));
                vb = ce_vsum2(vb, VSEL(et0 == 0.0f, zero, et0 * (t0 - mtz)), VSEL(et1 == 0.0f, zero, et1 * (t1 - mtz)));
            } else {
                va = ce_vsum2(va, VSEL(es0 == 0.0f, zero, es0 * (s0 - t0)), VSEL(es1 == 0.0f, zero, es1 * (s1 - t1)));
            }
        }
        for (int64_t q = 0; q < VD; q++) {
            ss += vs[q];
            stt += vt[q];
            a += va[q];
            b += vb[q];
        }
    }
    if (ms == -INFINITY || mt == -INFINITY || ss != ss || stt != stt) return 1;
    double ls = log(ss), lt = log(stt);
    st[0] = ms;
    st[1] = ls;
    st[2] = mt;
    st[3] = lt;
    if (kind == 0) {
        *value = k * a / stt - (k * ((double)mt - (double)ms) + (lt - ls));
        *aux = lt - k * b / stt;
    } else {
        *value = k * a / ss - (k * ((double)ms - (double)mt) + (ls - lt));
        *aux = *value;
    }
    return 0;
}

/* A pure read of n float32 values with the pool's threads: the memory-read floor of the benchmarks. */
typedef struct {
    const float* x;
    double* partial;
} ce_floor_ctx;

static void ce_floor_task(void* p, int64_t begin, int64_t end, int64_t* bad) {
    ce_floor_ctx* c = (ce_floor_ctx*)p;
    (void)bad;
    for (int64_t b = begin; b < end; b++) {
        float s = 0.0f;
        const float* x = c->x + b * 65536;
        _Pragma("omp simd reduction(+:s)") for (int64_t j = 0; j < 65536; j++) s += x[j];
        c->partial[b] = s;
    }
}

double CE_PASTE(ce_read_floor_f32, CE_ISA)(const float* x, int64_t n, double* partial, int nthreads) {
    ce_floor_ctx c = {x, partial};
    int64_t blocks = n / 65536;
    ce_parallel(nthreads, blocks, 4, ce_floor_task, &c);
    double total = 0.0;
    for (int64_t b = 0; b < blocks; b++) total += partial[b];
    for (int64_t j = blocks * 65536; j < n; j++) total += x[j];
    return total;
}

/* Read n float32 values and write them to out with the pool's threads: the read + write floor of the
   benchmarks (what a gradient kernel must at least move). */
typedef struct {
    const float* x;
    float* out;
    int64_t n;
} ce_copy_ctx;

static void ce_copy_task(void* p, int64_t begin, int64_t end, int64_t* bad) {
    ce_copy_ctx* c = (ce_copy_ctx*)p;
    (void)bad;
    int64_t b = begin * 65536, e = end * 65536 < c->n ? end * 65536 : c->n;
    memcpy(c->out + b, c->x + b, (size_t)(e - b) * sizeof(float));
}

void CE_PASTE(ce_copy_floor_f32, CE_ISA)(const float* x, int64_t n, float* out, int nthreads) {
    ce_copy_ctx c = {x, out, n};
    ce_parallel(nthreads, (n + 65535) / 65536, 4, ce_copy_task, &c);
}

/* --- token statistics of float32 rows (explicit vectors) -------------------------------------------------
 * Each block of a row is read twice while it is in L1: ce_max_rank_f32 takes its maximum and counts the
 * logits ranked ahead of the target's, ce_tstats_sums_f32 sums exp(z) and exp(z) z, z = (x - m) / T. */

#define ce_max_rank_f32 CE_PASTE(ce_max_rank_f32, CE_ISA)
#define ce_tstats_sums_f32 CE_PASTE(ce_tstats_sums_f32, CE_ISA)
#define ce_vexpf_sum_u CE_PASTE(ce_vexpf_sum_u, CE_ISA)

/* max of x[0, n) (NaN skipped, -inf for none), adding to *ahead the number of x_j ranked ahead of the target's
   logit t (not NaN) in torch's descending stable order, where NaN comes first: for j < split, x_j >= t or NaN,
   for j >= split, x_j > t or NaN (split in [0, n]; the target's own column is split, not counted). Counted as
   the elements minus those below t (x_j < t before split, x_j <= t after), so one comparison an element. */
static float ce_max_rank_f32(const float* x, int64_t n, int64_t split, float t, int64_t* ahead) {
    vf m0 = VSPLAT(-INFINITY), m1 = m0, tv = VSPLAT(t);
    vi below0 = {0}, below1 = {0}; /* -1 a lane for each element below t */
    int64_t j = 0, counted = 0, k;
    for (; j + 2 * VW <= split; j += 2 * VW) {
        vf a = ce_vload(x + j), b = ce_vload(x + j + VW);
        m0 = ce_vmax(a, m0);
        m1 = ce_vmax(b, m1);
        below0 += a < tv;
        below1 += b < tv;
    }
    float tail_max = -INFINITY;
    for (; j < split; j++) { /* at most 2 VW - 1 elements */
        tail_max = x[j] > tail_max ? x[j] : tail_max;
        counted += !(x[j] < t);
    }
    for (; j + 2 * VW <= n; j += 2 * VW) { /* unaligned from split on */
        vf a = ce_vload(x + j), b = ce_vload(x + j + VW);
        m0 = ce_vmax(a, m0);
        m1 = ce_vmax(b, m1);
        below0 += a <= tv;
        below1 += b <= tv;
    }
    for (; j < n; j++) {
        tail_max = x[j] > tail_max ? x[j] : tail_max;
        counted += !(x[j] <= t);
    }
    int64_t vectors = 0;
    for (k = 0; k < VW; k++) vectors -= (int64_t)below0[k] + (int64_t)below1[k];
    /* the vector loops covered 2 VW-element steps: every element they read counts unless it was below t */
    int64_t head = split - split % (2 * VW), tail = (n - split) - (n - split) % (2 * VW);
    *ahead += counted + (head + tail) - vectors;
    m0 = ce_vmax(m0, m1);
    float m = tail_max;
    for (k = 0; k < VW; k++) m = m0[k] > m ? m0[k] : m;
    return m;
}

/* exp(z) for z in [-104, 0] (the caller clamps; NaN stays NaN) before its last step: returns u, exp(z) = u 2^q.
   For sums of terms that need no better than a few ulp each: a one-constant range reduction and a degree-5
   near-minimax polynomial (7.5e-8 relative on [-ln 2 / 2, ln 2 / 2]), three operations fewer than ce_vexpf_u's
   two constants and degree 7 (1 ulp, which the gradients keep). Relative error against exp on 2.2e7 float32
   values of z: 2.1e-7 for z > -10, 2.7e-7 for z > -30, 4.3e-7 down to -87 (the one constant's error grows
   with |q|), where the terms are below 2^-125 of the largest. */
static inline vf ce_vexpf_sum_u(vf z, vf* q) {
    vf r = ce_vmla(z, VSPLAT(1.442695040888963407f), VSPLAT(12582912.0f)) - 12582912.0f;
    vf s = ce_vmla(r, VSPLAT(-0.693147180559945309f), z);
    vf u = ce_vmla(VSPLAT(0.00829765573143959f), s, VSPLAT(0.04191538318991661f));
    u = ce_vmla(u, s, VSPLAT(0.16667574644088745f));
    u = ce_vmla(u, s, VSPLAT(0.49998894333839417f));
    u = ce_vmla(u, s, VSPLAT(0.9999997019767761f));
    *q = r;
    return ce_vmla(u, s, VSPLAT(1.0000001192092896f));
}

/* Over x[0, n) with z_j = (x_j - m) it (SCALED = 0 when it is 1): adds to *sum the exp(z_j) of z_j != 0, to
   *ez the exp(z_j) z_j (terms <= 0; -inf logits count 0) and, with TIES, the count of z_j == 0 to *ties
   (without TIES no x_j equals m: the block's maximum is below the row's). Eight terms are added in float32
   (a tree of three roundings of 2^-24 at most) before each float64 addition: half the conversions of
   ce_expsum_f32's four, which this loop's two sums would feel. A NaN makes both sums NaN. SCALED and TIES are
   constants at every call, so the compiler makes four loops of it. */
static inline __attribute__((always_inline)) void ce_tstats_sums_f32(const float* x, int64_t n, float m, float it,
                                                                     const int SCALED, const int TIES,
                                                                     const float* ahead, double* sum, double* ez,
                                                                     int64_t* ties) {
    vd s0 = {0}, s1 = {0}, u0 = {0}, u1 = {0};
#if !defined(__AVX512F__)
    vi tie = {0};
#endif
    vf mv = VSPLAT(m), iv = VSPLAT(it), low = VSPLAT(-104.0f);
    int64_t j = 0;
    int nonzero = 0, lanes = 0;
#define CE_TS_Z(v) ce_vmax(low, SCALED ? ((v) - mv) * iv : (v) - mv) /* -inf -> -104 (exp 0), NaN kept */
#if defined(__AVX512F__)
#define CE_TS_E(z, e)                                                       \
    do {                                                                    \
        vf q_, u_ = ce_vexpf_sum_u(z, &q_);                                 \
        if (TIES) {                                                         \
            __mmask16 k_ = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_NEQ_UQ); \
            nonzero += __builtin_popcount((unsigned)k_);                    \
            e = _mm512_maskz_scalef_ps(k_, u_, q_);                         \
        } else {                                                            \
            e = ce_vscale(u_, q_);                                          \
        }                                                                   \
    } while (0)
#else
#define CE_TS_E(z, e)                                    \
    do {                                                 \
        vf q_, u_ = ce_vexpf_sum_u(z, &q_);              \
        e = ce_vscale(u_, q_);                           \
        if (TIES) {                                      \
            vi k_ = (z) == 0.0f;                         \
            tie -= k_;                                   \
            e = (vf)((vi)e & ~k_);                       \
        }                                                \
    } while (0)
#endif
    for (; j + 8 * VW <= n; j += 8 * VW) {
        vf e = VSPLAT(0.0f), w = VSPLAT(0.0f);
        for (int64_t h = j; h < j + 8 * VW; h += 4 * VW) {
            for (int64_t o = 0; o < 4 * VW; o += 16) __builtin_prefetch(ahead + h + o, 0, 3);
            vf z0 = CE_TS_Z(ce_vload(x + h)), z1 = CE_TS_Z(ce_vload(x + h + VW));
            vf z2 = CE_TS_Z(ce_vload(x + h + 2 * VW)), z3 = CE_TS_Z(ce_vload(x + h + 3 * VW));
            vf e0, e1, e2, e3;
            CE_TS_E(z0, e0);
            CE_TS_E(z1, e1);
            CE_TS_E(z2, e2);
            CE_TS_E(z3, e3);
            e += (e0 + e1) + (e2 + e3);
            w += ce_vmla(e1, z1, e0 * z0) + ce_vmla(e3, z3, e2 * z2);
        }
        s0 += ce_vlo(e);
        s1 += ce_vhi(e);
        u0 += ce_vlo(w);
        u1 += ce_vhi(w);
        lanes += 8 * VW;
    }
    for (; j < n; j += VW) {
        vf z = CE_TS_Z(j + VW <= n ? ce_vload(x + j) : ce_vpartial(x + j, n - j, -INFINITY)), e;
        CE_TS_E(z, e);
        vf w = e * z;
        s0 += ce_vlo(e);
        s1 += ce_vhi(e);
        u0 += ce_vlo(w);
        u1 += ce_vhi(w);
        lanes += VW;
    }
#undef CE_TS_Z
#undef CE_TS_E
    s0 += s1;
    u0 += u1;
    double total = 0.0, weighted = 0.0;
    for (int64_t k = 0; k < VD; k++) {
        total += s0[k];
        weighted += u0[k];
    }
    int64_t t = 0;
#if defined(__AVX512F__)
    t = TIES ? lanes - nonzero : 0;
#else
    for (int64_t k = 0; k < VW; k++) t += tie[k];
#endif
    (void)lanes;
    (void)nonzero;
    *sum = total;
    *ez = weighted;
    *ties = t;
}

#define T float
#define S f32
#define EXPT ce_expf
#define EXPSUM ce_expf
#include "cpu_template.h"
#undef T
#undef S
#undef EXPT
#undef EXPSUM

#define T double
#define S f64
#define EXPT ce_exp
#define EXPSUM exp
#include "cpu_template.h"
#undef T
#undef S
#undef EXPT
#undef EXPSUM
