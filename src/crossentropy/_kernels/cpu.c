/* Fused CPU kernels for crossentropy: one pass over each row, OpenMP threads.
 *
 * Built at install time by hatch_build.py into _cpu.so and called through ctypes
 * (crossentropy/_kernels/__init__.py). Every kernel is written twice, for float
 * and double, by the KERNELS(T, S) macro at the bottom.
 *
 * Accuracy: sums are accumulated in double for both input types (float inputs
 * get float64 accumulation at no measurable cost, see benchmarks/README.md).
 * The log-sum-exp is m + log1p(rest), rest being the sum of exp(x - m) over the
 * non-maximal entries (plus ties - 1), so the log-probability of a dominant class
 * keeps its relative accuracy, as in the reference path (_special.py).
 *
 * Vector math: when CE_LIBMVEC is defined, expf/logf/log1pf are declared
 * "omp declare simd" so GCC vectorises the float loops with glibc's libmvec; float64
 * kernels call the scalar (< 1 ulp) functions.
 *
 * Each kernel returns the number of invalid rows or elements it met (NaN, +inf
 * logits, probabilities outside [0, 1], rows not summing to 1, labels out of
 * range); the Python side then falls back to the reference path, which names
 * the first bad position.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef CE_LIBMVEC
/* float only: the vector variants of the double functions are up to 4 ulp, the scalar ones < 1 ulp,
   and float64 results must stay within 2 ulp of the reference path */
#pragma omp declare simd notinbranch
extern float expf(float);
#pragma omp declare simd notinbranch
extern float logf(float);
#pragma omp declare simd notinbranch
extern float log1pf(float);
#endif

#define BLOCK 2048

int ce_version(void) { return 3; }

int ce_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* A pure read of n values with threads: the memory-read floor of the benchmarks. */
double ce_read_floor_f32(const float* x, int64_t n, int nthreads) {
    double total = 0.0;
    #pragma omp parallel for num_threads(nthreads) reduction(+:total) schedule(static)
    for (int64_t b = 0; b < n; b += 65536) {
        int64_t e = b + 65536 < n ? b + 65536 : n;
        float s = 0.0f;
        #pragma omp simd reduction(+:s)
        for (int64_t j = b; j < e; j++) s += x[j];
        total += s;
    }
    return total;
}

#define KERNELS(T, S, EXP, LOG, LOG1P)                                                                      \
                                                                                                             \
/* Row log-sum-exp: returns 0 if the row is valid (finite or -inf logits, not all -inf), else 1.          \
   On success *mx = m (the row maximum) and *shift = log1p(rest), so lse = m + shift; callers form          \
   differences such as (m - x_y) + shift without rounding m + shift first. */                               \
static int row_lse_##S(const T* r, int64_t v, double* mx, double* shift, double* sum_x, const T* cw,        \
                       double* sum_wx) {                                                                     \
    T m = -INFINITY;                                                                                         \
    double rest = 0.0, ties = 0.0, sx = 0.0, swx = 0.0;                                                      \
    int bad = 0;                                                                                             \
    for (int64_t b = 0; b < v; b += BLOCK) {                                                                 \
        int64_t e = b + BLOCK < v ? b + BLOCK : v;                                                           \
        T bm = -INFINITY;                                                                                    \
        int bbad = 0;                                                                                        \
        _Pragma("omp simd reduction(max:bm) reduction(|:bbad)")                                              \
        for (int64_t j = b; j < e; j++) {                                                                    \
            T xj = r[j];                                                                                     \
            bbad |= (xj != xj) | (xj == INFINITY);                                                           \
            bm = xj > bm ? xj : bm;                                                                          \
        }                                                                                                    \
        bad |= bbad;                                                                                         \
        if (bad) return 1;                                                                                   \
        if (bm > m) {                                                                                        \
            if (m != -INFINITY) {                                                                            \
                double scale = exp((double)m - (double)bm);                                                  \
                rest = rest * scale + ties * scale;                                                          \
            }                                                                                                \
            ties = 0.0;                                                                                      \
            m = bm;                                                                                          \
        }                                                                                                    \
        if (m == -INFINITY) continue;                                                                        \
        double brest = 0.0, bties = 0.0;                                                                     \
        if (sizeof(T) == sizeof(double)) {                                                                   \
            /* float64: a compensated sum, to stay within 2 ulp of the reference's pairwise sum */           \
            double carry = 0.0;                                                                              \
            for (int64_t j = b; j < e; j++) {                                                                \
                T z = r[j] - m;                                                                              \
                int at_max = z == (T)0;                                                                      \
                double term = at_max ? 0.0 : (double)EXP(z);                                                 \
                double sum = brest + term;                                                                   \
                carry += fabs(brest) >= fabs(term) ? (brest - sum) + term : (term - sum) + brest;            \
                brest = sum;                                                                                 \
                bties += at_max ? 1.0 : 0.0;                                                                 \
            }                                                                                                \
            brest += carry;                                                                                  \
        } else {                                                                                             \
            _Pragma("omp simd reduction(+:brest, bties)")                                                    \
            for (int64_t j = b; j < e; j++) {                                                                \
                T z = r[j] - m;                                                                              \
                T ez = EXP(z);                                                                               \
                int at_max = z == (T)0;                                                                      \
                brest += at_max ? 0.0 : (double)ez;                                                          \
                bties += at_max ? 1.0 : 0.0;                                                                 \
            }                                                                                                \
        }                                                                                                    \
        rest += brest;                                                                                       \
        ties += bties;                                                                                       \
        if (sum_x) {                                                                                         \
            double bsx = 0.0;                                                                                \
            _Pragma("omp simd reduction(+:bsx)")                                                             \
            for (int64_t j = b; j < e; j++) bsx += (double)r[j];                                             \
            sx += bsx;                                                                                       \
        }                                                                                                    \
        if (sum_wx) {                                                                                        \
            double bswx = 0.0;                                                                               \
            _Pragma("omp simd reduction(+:bswx)")                                                            \
            for (int64_t j = b; j < e; j++) bswx += (double)cw[j] * (double)r[j];                            \
            swx += bswx;                                                                                     \
        }                                                                                                    \
    }                                                                                                        \
    if (m == -INFINITY) return 1;                                                                            \
    *mx = (double)m;                                                                                         \
    *shift = log1p(rest + (ties - 1.0));                                                                     \
    if (sum_x) *sum_x = sx;                                                                                  \
    if (sum_wx) *sum_wx = swx;                                                                               \
    return 0;                                                                                                \
}                                                                                                            \
                                                                                                             \
/* Row statistics of up to 16 short rows at once (v <= 64), vectorised across the rows: the same        \
   (m, log1p(rest), sum x, sum w x) as row_lse, with compensated sums. bad[k] is set for a row with NaN   \
   or +inf logits or only -inf ones. */                                                                      \
static void small_rows_##S(const T* x, int64_t cnt, int64_t v, const T* cw, int need_sums, double* mx,      \
                           double* shift, double* sx, double* swx, int* bad) {                              \
    T m[16];                                                                                                 \
    double rest[16], carry[16], ties[16], sums[16], wsums[16];                                               \
    int badk[16];                                                                                            \
    for (int64_t k = 0; k < 16; k++) {                                                                       \
        m[k] = -INFINITY; rest[k] = 0.0; carry[k] = 0.0; ties[k] = 0.0; sums[k] = 0.0; wsums[k] = 0.0;       \
        badk[k] = 0;                                                                                         \
    }                                                                                                        \
    for (int64_t j = 0; j < v; j++) {                                                                        \
        _Pragma("omp simd")                                                                                  \
        for (int64_t k = 0; k < cnt; k++) {                                                                  \
            T xv = x[k * v + j];                                                                             \
            badk[k] |= (xv != xv) | (xv == INFINITY);                                                        \
            m[k] = xv > m[k] ? xv : m[k];                                                                    \
        }                                                                                                    \
    }                                                                                                        \
    for (int64_t j = 0; j < v; j++) {                                                                        \
        double wj = cw ? (double)cw[j] : 1.0;                                                                \
        _Pragma("omp simd")                                                                                  \
        for (int64_t k = 0; k < cnt; k++) {                                                                  \
            T xv = x[k * v + j];                                                                             \
            T zz = xv - m[k];                                                                                \
            int at_max = zz == (T)0;                                                                         \
            double term = at_max ? 0.0 : (double)EXP(zz);                                                    \
            double sum = rest[k] + term;                                                                     \
            carry[k] += rest[k] >= term ? (rest[k] - sum) + term : (term - sum) + rest[k];                   \
            rest[k] = sum;                                                                                   \
            ties[k] += at_max ? 1.0 : 0.0;                                                                   \
            sums[k] += (double)xv;                                                                           \
            wsums[k] += wj * (double)xv;                                                                     \
        }                                                                                                    \
    }                                                                                                        \
    for (int64_t k = 0; k < cnt; k++) {                                                                      \
        bad[k] = badk[k] || m[k] == -INFINITY;                                                               \
        mx[k] = (double)m[k];                                                                                \
        shift[k] = log1p((rest[k] + carry[k]) + (ties[k] - 1.0));                                            \
        sx[k] = need_sums ? sums[k] : 0.0;                                                                   \
        swx[k] = need_sums ? wsums[k] : 0.0;                                                                 \
    }                                                                                                        \
}                                                                                                            \
                                                                                                             \
/* The loss (and gradient) of row i from its statistics; returns 1 for an invalid row (left untouched). */   \
static int finish_row_##S(const T* r, int64_t i, int64_t v, int64_t y, int has_ignore, int64_t ignore,      \
                          const T* cw, double cw_sum, double eps, double z, double mx, double shift,         \
                          double sx, double swx, double* loss, T* grad, const double* row_scale) {           \
    int ignored = has_ignore && y == ignore;                                                                 \
    if (!ignored && (y < 0 || y >= v)) return 1;                                                             \
    if (ignored) {                                                                                           \
        loss[i] = 0.0;                                                                                       \
        if (grad) memset(grad + i * v, 0, (size_t)v * sizeof(T));                                            \
        return 0;                                                                                            \
    }                                                                                                        \
    int need_sums = eps != 0.0;                                                                              \
    double lse = mx + shift;                                                                                 \
    double wy = cw ? (double)cw[y] : 1.0;                                                                    \
    double smooth = need_sums ? (cw ? lse * cw_sum - swx : lse * (double)v - sx) : 0.0;                      \
    double xy = (double)r[y];                                                                                \
    double nll = (mx - xy) + shift;                                                                          \
    loss[i] = (1.0 - eps) * wy * nll + (need_sums ? eps / (double)v * smooth : 0.0) + z * lse * lse;         \
    if (grad) {                                                                                              \
        double scale = row_scale ? row_scale[i] : 1.0;                                                       \
        double total = (1.0 - eps) * wy + eps / (double)v * (cw ? cw_sum : (double)v);                       \
        double coef = scale * (total + 2.0 * z * lse);                                                       \
        double off = scale * eps / (double)v;                                                                \
        T* g = grad + i * v;                                                                                 \
        T m_t = (T)mx, shift_t = (T)shift;                                                                   \
        if (cw) {                                                                                            \
            _Pragma("omp simd")                                                                              \
            for (int64_t j = 0; j < v; j++) {                                                                \
                T p = EXP((r[j] - m_t) - shift_t);                                                           \
                g[j] = (T)(coef * (double)p - off * (double)cw[j]);                                          \
            }                                                                                                \
        } else {                                                                                             \
            _Pragma("omp simd")                                                                              \
            for (int64_t j = 0; j < v; j++) {                                                                \
                T p = EXP((r[j] - m_t) - shift_t);                                                           \
                g[j] = (T)(coef * (double)p - off);                                                          \
            }                                                                                                \
        }                                                                                                    \
        double p_y = exp((xy - mx) - shift);                                                                 \
        g[y] = (T)(coef * p_y - off * (cw ? (double)cw[y] : 1.0) - scale * (1.0 - eps) * wy);               \
    }                                                                                                        \
    return 0;                                                                                                \
}                                                                                                            \
                                                                                                             \
/* Sparse categorical cross-entropy from logits, rows of length v (C-contiguous).                         \
   loss_i = (1-eps) w_y (lse - x_y) + eps/C (lse sum(w) - sum(w x)) + z lse^2; 0 where ignored.            \
   With grad != NULL also writes row_scale_i * ((A + 2 z lse) softmax - a) (in place if grad == x).        \
   Short rows (v <= 64) are processed 16 at a time, vectorised across rows. Returns the number of          \
   invalid rows (those are left untouched). */                                                               \
int64_t ce_sparse_##S(const T* x, int64_t n, int64_t v, const int64_t* labels, int has_ignore,             \
                      int64_t ignore, const T* cw, double cw_sum, double eps, double z, double* loss,        \
                      T* grad, const double* row_scale, int nthreads) {                                      \
    int64_t bad_rows = 0;                                                                                    \
    int need_sums = eps != 0.0;                                                                              \
    if (v <= 64) {                                                                                           \
        _Pragma("omp parallel for num_threads(nthreads) reduction(+:bad_rows) schedule(static)")            \
        for (int64_t i0 = 0; i0 < n; i0 += 16) {                                                             \
            int64_t cnt = n - i0 < 16 ? n - i0 : 16;                                                         \
            double mx[16], shift[16], sx[16], swx[16];                                                       \
            int bad[16];                                                                                     \
            small_rows_##S(x + i0 * v, cnt, v, cw, need_sums, mx, shift, sx, swx, bad);                      \
            for (int64_t k = 0; k < cnt; k++) {                                                              \
                int64_t i = i0 + k;                                                                          \
                bad_rows += bad[k] || finish_row_##S(x + i * v, i, v, labels[i], has_ignore, ignore, cw,     \
                                                     cw_sum, eps, z, mx[k], shift[k], sx[k], swx[k], loss,   \
                                                     grad, row_scale);                                       \
            }                                                                                                \
        }                                                                                                    \
        return bad_rows;                                                                                     \
    }                                                                                                        \
    int64_t chunk = v >= 4096 ? 4 : 16384 / v;                                                               \
    _Pragma("omp parallel for num_threads(nthreads) reduction(+:bad_rows) schedule(dynamic, chunk)")        \
    for (int64_t i = 0; i < n; i++) {                                                                        \
        const T* r = x + i * v;                                                                              \
        double mx, shift, sx = 0.0, swx = 0.0;                                                               \
        if (row_lse_##S(r, v, &mx, &shift, need_sums && !cw ? &sx : 0, cw, need_sums && cw ? &swx : 0)) {    \
            bad_rows++;                                                                                      \
            continue;                                                                                        \
        }                                                                                                    \
        bad_rows += finish_row_##S(r, i, v, labels[i], has_ignore, ignore, cw, cw_sum, eps, z, mx, shift,    \
                                   sx, swx, loss, grad, row_scale);                                          \
    }                                                                                                        \
    return bad_rows;                                                                                         \
}                                                                                                            \
                                                                                                             \
/* Categorical cross-entropy from logits with soft targets y (same shape):                                  \
   loss_i = sum_c a_c (lse - x_c), a = w * ((1-eps) y + eps/C), terms with a_c = 0 skipped;                  \
   class_of_i = sum_c w_c y_c. Returns the number of invalid rows (bad logits, targets outside [0, 1]       \
   or, when check_sums, target rows not summing to 1 within tol). */                                         \
int64_t ce_soft_##S(const T* x, const T* yt, int64_t n, int64_t v, const T* cw, double eps, int check_sums,  \
                    double tol, double* loss, double* class_of, int nthreads) {                              \
    int64_t bad_rows = 0;                                                                                    \
    int64_t chunk = v >= 4096 ? 4 : 16384 / v;                                                               \
    _Pragma("omp parallel for num_threads(nthreads) reduction(+:bad_rows) schedule(dynamic, chunk)")        \
    for (int64_t i = 0; i < n; i++) {                                                                        \
        const T* r = x + i * v;                                                                              \
        const T* t = yt + i * v;                                                                             \
        double mx, shift;                                                                                    \
        if (row_lse_##S(r, v, &mx, &shift, 0, 0, 0)) { bad_rows++; continue; }                               \
        double acc = 0.0, carry = 0.0, total = 0.0, ysum = 0.0, cls = 0.0;                                   \
        int badt = 0;                                                                                        \
        for (int64_t j = 0; j < v; j++) {                                                                    \
            double yj = (double)t[j];                                                                        \
            badt |= !(yj >= 0.0 && yj <= 1.0);                                                               \
            double w = cw ? (double)cw[j] : 1.0;                                                             \
            double a = w * ((1.0 - eps) * yj + eps / (double)v);                                             \
            double term = a == 0.0 ? 0.0 : a * (mx - (double)r[j]);                                          \
            double sum = acc + term;                                                                         \
            carry += fabs(acc) >= fabs(term) ? (acc - sum) + term : (term - sum) + acc;                      \
            acc = sum;                                                                                       \
            total += a;                                                                                      \
            ysum += yj;                                                                                      \
            cls += w * yj;                                                                                   \
        }                                                                                                    \
        acc = (isinf(acc) ? acc : acc + carry) + total * shift; /* an infinite term makes the carry NaN */ \
        if (badt || (check_sums && !(fabs(ysum - 1.0) <= tol))) { bad_rows++; continue; }                    \
        loss[i] = acc;                                                                                       \
        class_of[i] = cls;                                                                                   \
    }                                                                                                        \
    return bad_rows;                                                                                         \
}                                                                                                            \
                                                                                                             \
/* Row-wise information measures of probabilities: kind 0 entropy of p, 1 cross-entropy H(p, q),            \
   2 KL(p || q). Returns the number of invalid rows (values outside [0, 1] or NaN; with check_sums,        \
   rows not summing to 1 within tol). */                                                                     \
int64_t ce_info_##S(const T* p, const T* q, int64_t n, int64_t v, int kind, int check_sums, double tol,     \
                    double* out, int nthreads) {                                                             \
    int64_t bad_rows = 0;                                                                                    \
    _Pragma("omp parallel for num_threads(nthreads) reduction(+:bad_rows) schedule(dynamic, v >= 4096 ? 4 : 16384 / v)")           \
    for (int64_t i = 0; i < n; i++) {                                                                        \
        const T* a = p + i * v;                                                                              \
        const T* b = q ? q + i * v : a;                                                                      \
        double acc = 0.0, carry = 0.0, sa = 0.0, sb = 0.0;                                                   \
        int64_t bad = 0;                                                                                     \
        for (int64_t j = 0; j < v; j++) {                                                                    \
            double pj = (double)a[j], qj = (double)b[j];                                                     \
            bad += !(pj >= 0.0 && pj <= 1.0) || !(qj >= 0.0 && qj <= 1.0);                                   \
            sa += pj;                                                                                        \
            sb += qj;                                                                                        \
            double term;                                                                                     \
            if (kind == 2) {                                                                                 \
                double ratio = pj / qj;                                                                      \
                int normal = ratio >= 2.2250738585072014e-308 && ratio < INFINITY;                           \
                term = normal ? pj * log(normal ? ratio : 1.0) : pj * (log(pj) - log(qj));                    \
            } else {                                                                                         \
                term = -pj * log(qj);                                                                        \
            }                                                                                                \
            term = pj == 0.0 ? 0.0 : term;                                                                   \
            double sum = acc + term;                                                                         \
            carry += fabs(acc) >= fabs(term) ? (acc - sum) + term : (term - sum) + acc;                      \
            acc = sum;                                                                                       \
        }                                                                                                    \
        acc = isinf(acc) ? acc : acc + carry; /* an infinite term makes the carry NaN */                    \
        if (bad || (check_sums && (!(fabs(sa - 1.0) <= tol) || !(fabs(sb - 1.0) <= tol)))) {                 \
            bad_rows++;                                                                                      \
            continue;                                                                                        \
        }                                                                                                    \
        out[i] = acc;                                                                                        \
    }                                                                                                        \
    return bad_rows;                                                                                         \
}

KERNELS(float, f32, expf, logf, log1pf)
KERNELS(double, f64, exp, log, log1p)

/* A vectorisable natural logarithm for double, after fdlibm's e_log.c (< 1 ulp): x = 2^k m with
   m in [sqrt(2)/2, sqrt(2)), log m = f - hfsq + s (hfsq + R(s^2)), s = f / (2 + f). Branch-free, so
   GCC vectorises loops that call it; 0 -> -inf, +inf -> +inf, negative or NaN -> NaN. */
#pragma omp declare simd notinbranch
static inline double ce_log(double x) {
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    const double Lg1 = 6.666666666666735130e-01, Lg2 = 3.999999999940941908e-01,
                 Lg3 = 2.857142874366239149e-01, Lg4 = 2.222219843214978396e-01,
                 Lg5 = 1.818357216161805012e-01, Lg6 = 1.531383769920937332e-01,
                 Lg7 = 1.479819860511658591e-01;
    int sub = x < 2.2250738585072014e-308;
    double xs = sub ? x * 0x1p54 : x;
    uint64_t ix;
    memcpy(&ix, &xs, sizeof ix);
    int64_t k = (int64_t)((ix >> 52) & 0x7ff) - 1023 - (sub ? 54 : 0);
    uint64_t hx = ix & 0x000fffffffffffffULL;
    uint64_t i = (hx + 0x00095f6400000000ULL) & 0x0010000000000000ULL;
    uint64_t mbits = hx | (i ^ 0x3ff0000000000000ULL);
    k += (int64_t)(i >> 52);
    double m;
    memcpy(&m, &mbits, sizeof m);
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

/* log(1 - p) = log1p(-p) from ce_log: u = 1 - p rounded, plus the rounding's first-order correction
   ((1 - p) - u) / u, which is 0 when the subtraction is exact (p >= 1/2). */
#pragma omp declare simd notinbranch
static inline double ce_log1m(double p) {
    double u = 1.0 - p;
    double r = ce_log(u) + ((1.0 - u) - p) / u;
    return u == 0.0 ? -INFINITY : r;
}

/* Binary cross-entropy, elementwise: -(pw y log p + (1-y) log(1-p)) with 0 log 0 = 0, the targets
   smoothed as y (1 - eps) + eps / 2 (rounded to T, as the reference path does); from logits
   log p = -softplus(-x), log(1-p) = -softplus(x). Computed in double: probabilities with the
   vectorised ce_log (< 1 ulp), logits with scalar libm. Returns the number of invalid elements
   (targets or probabilities outside [0, 1], NaN logits). */
#define BINARY(T, S)                                                                                         \
int64_t ce_binary_##S(const T* y, const T* p, int64_t n, int from_logits, double pw, double eps, T* out,    \
                      int nthreads) {                                                                        \
    int64_t bad = 0;                                                                                         \
    _Pragma("omp parallel for num_threads(nthreads) reduction(+:bad) schedule(static)")                     \
    for (int64_t b = 0; b < n; b += 8192) {                                                                  \
        int64_t e = b + 8192 < n ? b + 8192 : n;                                                             \
        int64_t bb = 0;                                                                                      \
        if (from_logits) {                                                                                   \
            for (int64_t j = b; j < e; j++) {                                                                \
                T yj = y[j];                                                                                 \
                T yst = yj * (T)(1.0 - eps) + (T)(eps / 2.0);                                                \
                double xj = (double)p[j], ys = (double)yst, pos = (double)(yst * (T)pw);                     \
                double rest = (double)((T)1 - yst), lp = 0.0, lq = 0.0;                                      \
                bb += !(yj >= (T)0 && yj <= (T)1) || (xj != xj);                                             \
                double sp = log1p(exp(xj < 0.0 ? xj : -xj));                                                 \
                if (pos != 0.0) lp = -((xj < 0.0 ? -xj : 0.0) + sp);                                         \
                if (ys != 1.0) lq = -((xj > 0.0 ? xj : 0.0) + sp);                                           \
                out[j] = (T)-((pos == 0.0 ? 0.0 : pos * lp) + (ys == 1.0 ? 0.0 : rest * lq));               \
            }                                                                                                \
        } else {                                                                                             \
            _Pragma("omp simd reduction(+:bb)")                                                              \
            for (int64_t j = b; j < e; j++) {                                                                \
                T yj = y[j];                                                                                 \
                T yst = yj * (T)(1.0 - eps) + (T)(eps / 2.0);                                                \
                double xj = (double)p[j], ys = (double)yst, pos = (double)(yst * (T)pw);                     \
                double rest = (double)((T)1 - yst);                                                          \
                bb += !(yj >= (T)0 && yj <= (T)1) || !(xj >= 0.0 && xj <= 1.0);                              \
                double lp = ce_log(xj), lq = ce_log1m(xj);                                                   \
                out[j] = (T)-((pos == 0.0 ? 0.0 : pos * lp) + (ys == 1.0 ? 0.0 : rest * lq));               \
            }                                                                                                \
        }                                                                                                    \
        bad += bb;                                                                                           \
    }                                                                                                        \
    return bad;                                                                                              \
}

BINARY(float, f32)
BINARY(double, f64)
