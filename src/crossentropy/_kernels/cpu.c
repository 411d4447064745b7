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
/* Sparse categorical cross-entropy from logits, rows of length v (C-contiguous).                         \
   loss_i = (1-eps) w_y (lse - x_y) + eps/C (lse sum(w) - sum(w x)) + z lse^2; 0 where ignored.            \
   With grad != NULL also writes row_scale_i * ((A + 2 z lse) softmax - a) (in place if grad == x).        \
   Returns the number of invalid rows (those are left untouched). */                                         \
int64_t ce_sparse_##S(const T* x, int64_t n, int64_t v, const int64_t* labels, int has_ignore,             \
                      int64_t ignore, const T* cw, double cw_sum, double eps, double z, double* loss,        \
                      T* grad, const double* row_scale, int nthreads) {                                      \
    int64_t bad_rows = 0;                                                                                    \
    int64_t chunk = v >= 4096 ? 4 : 16384 / v;                                                               \
    _Pragma("omp parallel for num_threads(nthreads) reduction(+:bad_rows) schedule(dynamic, chunk)")        \
    for (int64_t i = 0; i < n; i++) {                                                                        \
        const T* r = x + i * v;                                                                              \
        int64_t y = labels[i];                                                                               \
        int ignored = has_ignore && y == ignore;                                                             \
        if (!ignored && (y < 0 || y >= v)) { bad_rows++; continue; }                                         \
        double mx, shift, sx = 0.0, swx = 0.0;                                                               \
        int need_sums = eps != 0.0;                                                                          \
        if (row_lse_##S(r, v, &mx, &shift, need_sums && !cw ? &sx : 0, cw, need_sums && cw ? &swx : 0)) {    \
            bad_rows++;                                                                                      \
            continue;                                                                                        \
        }                                                                                                    \
        if (ignored) {                                                                                       \
            loss[i] = 0.0;                                                                                   \
            if (grad) memset(grad + i * v, 0, (size_t)v * sizeof(T));                                        \
            continue;                                                                                        \
        }                                                                                                    \
        double lse = mx + shift;                                                                             \
        double wy = cw ? (double)cw[y] : 1.0;                                                                \
        double smooth = need_sums ? (cw ? lse * cw_sum - swx : lse * (double)v - sx) : 0.0;                  \
        double xy = (double)r[y];                                                                            \
        double nll = (mx - xy) + shift;                                                                      \
        loss[i] = (1.0 - eps) * wy * nll + (need_sums ? eps / (double)v * smooth : 0.0) + z * lse * lse;     \
        if (grad) {                                                                                          \
            double scale = row_scale ? row_scale[i] : 1.0;                                                   \
            double total = (1.0 - eps) * wy + eps / (double)v * (cw ? cw_sum : (double)v);                   \
            double coef = scale * (total + 2.0 * z * lse);                                                   \
            double off = scale * eps / (double)v;                                                            \
            T* g = grad + i * v;                                                                             \
            T m_t = (T)mx, shift_t = (T)shift;                                                               \
            if (cw) {                                                                                        \
                _Pragma("omp simd")                                                                          \
                for (int64_t j = 0; j < v; j++) {                                                            \
                    T p = EXP((r[j] - m_t) - shift_t);                                                       \
                    g[j] = (T)(coef * (double)p - off * (double)cw[j]);                                      \
                }                                                                                            \
            } else {                                                                                         \
                _Pragma("omp simd")                                                                          \
                for (int64_t j = 0; j < v; j++) {                                                            \
                    T p = EXP((r[j] - m_t) - shift_t);                                                       \
                    g[j] = (T)(coef * (double)p - off);                                                      \
                }                                                                                            \
            }                                                                                                \
            double p_y = exp((xy - mx) - shift);                                                             \
            g[y] = (T)(coef * p_y - off * (cw ? (double)cw[y] : 1.0) - scale * (1.0 - eps) * wy);           \
        }                                                                                                    \
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

/* Binary cross-entropy, elementwise: -(pw y log p + (1-y) log(1-p)) with 0 log 0 = 0, the targets
   smoothed as y (1 - eps) + eps / 2 (rounded to T, as the reference path does); from logits
   log p = -softplus(-x), log(1-p) = -softplus(x). Computed in double with scalar libm (< 1 ulp) and
   only the log terms a hard label needs. Returns the number of invalid elements (targets or
   probabilities outside [0, 1], NaN logits). */
#define BINARY(T, S)                                                                                         \
int64_t ce_binary_##S(const T* y, const T* p, int64_t n, int from_logits, double pw, double eps, T* out,    \
                      int nthreads) {                                                                        \
    int64_t bad = 0;                                                                                         \
    _Pragma("omp parallel for num_threads(nthreads) reduction(+:bad) schedule(static)")                     \
    for (int64_t j = 0; j < n; j++) {                                                                        \
        T yj = y[j], xj0 = p[j];                                                                             \
        T yst = yj * (T)(1.0 - eps) + (T)(eps / 2.0);                                                        \
        double xj = (double)xj0, ys = (double)yst, pos = (double)(yst * (T)pw), rest = (double)((T)1 - yst); \
        double lp = 0.0, lq = 0.0;                                                                           \
        if (from_logits) {                                                                                   \
            bad += !(yj >= (T)0 && yj <= (T)1) || (xj != xj);                                                \
            double sp = log1p(exp(xj < 0.0 ? xj : -xj));                                                     \
            if (pos != 0.0) lp = -((xj < 0.0 ? -xj : 0.0) + sp);                                             \
            if (ys != 1.0) lq = -((xj > 0.0 ? xj : 0.0) + sp);                                               \
        } else {                                                                                             \
            bad += !(yj >= (T)0 && yj <= (T)1) || !(xj >= 0.0 && xj <= 1.0);                                 \
            if (pos != 0.0) lp = log(xj);                                                                    \
            if (ys != 1.0) lq = log1p(-xj);                                                                  \
        }                                                                                                    \
        out[j] = (T)-((pos == 0.0 ? 0.0 : pos * lp) + (ys == 1.0 ? 0.0 : rest * lq));                       \
    }                                                                                                        \
    return bad;                                                                                              \
}

BINARY(float, f32)
BINARY(double, f64)
