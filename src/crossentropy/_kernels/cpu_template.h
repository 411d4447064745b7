/* The kernels, written once for T = float (S = f32) and T = double (S = f64); included twice by cpu.c,
 * which defines T, S, EXPT (the exponential of the gradients, in T lanes) and EXPSUM (the one summed
 * by row_stats: the same for float; libm's scalar exp for double, whose < 0.51 ulp keeps float64
 * losses within 2 ulp where a 1-ulp vector exp would not). Exported names end in
 * _<S>_<CE_ISA>, e.g. ce_sparse_f32_avx512.
 *
 * Every kernel returns the number of invalid rows or elements it met (NaN or +inf logits,
 * probabilities outside [0, 1], rows not summing to 1, labels out of range) and leaves their outputs
 * untouched; the Python side then takes the reference path, which names the first bad position.
 * Rows are independent, so the results do not depend on the thread count. */

#define X_(name, s) CE_PASTE(name, s)
#define L(name) CE_PASTE(X_(name, S), CE_ISA) /* static helpers: name_f32_avx512 */
#define EXPORT(name) L(name)              /* exported kernels: ce_name_f32_avx512 */

/* --- row statistics ------------------------------------------------------------------------------ */

/* Two-sum (*hi, *lo) += a. */
static inline void L(add2)(double* hi, double* lo, double a) {
    double u = *hi + a, bb = u - *hi;
    *lo += (*hi - (u - bb)) + (a - bb);
    *hi = u;
}

/* Statistics of one row r[0, v): m = max r; sum_j exp(r_j - m) = 1 + rest, rest being the sum of the
   non-maximal terms plus (ties - 1) so that log1p(rest) keeps its accuracy when one class dominates
   (rest = -1 for a row of -inf only); with need_dsum also dsum = sum_j w_j (m - r_j) >= 0, terms with
   w_j = 0 counting 0 (w_j = 1 without class weights). The maximum, the exponentials and dsum are
   computed block by block while the block is in L1, with the running maximum; when it grows, the sums
   so far are rescaled. Returns 1 if the row holds NaN or +inf. */
static int L(row_stats)(const T* r, int64_t v, const T* cw, int need_dsum, double* mx, double* rest_out,
                        double* dsum_out) {
    double tbuf[BLOCK];
    T m = -INFINITY;
    double rest = 0.0, rest_lo = 0.0, ties = 0.0, dsum = 0.0, dsum_lo = 0.0, wseen = 0.0;
    for (int64_t b = 0; b < v; b += BLOCK) {
        int64_t e = v - b > BLOCK ? b + BLOCK : v;
        const T* rb = r + b;
        int64_t len = e - b;
        T bm = -INFINITY;
        int bad = 0;
        if (sizeof(T) == sizeof(float)) { /* NaN: the exponential sum turns NaN, or the scan below */
            bm = (T)ce_max_f32((const float*)rb, len);
            bad = bm == (T)INFINITY;
        } else {
            _Pragma("omp simd reduction(max:bm) reduction(+:bad)") for (int64_t j = 0; j < len; j++) {
                T xj = rb[j];
                bad += (xj != xj) | (xj == (T)INFINITY);
                bm = xj > bm ? xj : bm;
            }
            /* Clang starts each lane's maximum at the lowest finite value (GCC at -inf), which no element
               of a block of -inf only exceeds: that block's maximum is -inf, rescanned */
            if ((double)bm == -DBL_MAX) {
                bm = -INFINITY;
                for (int64_t j = 0; j < len; j++) bm = rb[j] > bm ? rb[j] : bm;
            }
        }
        if (bad) return 1;
        if (bm > m) {
            if (m != -INFINITY) {
                double scale = exp((double)m - (double)bm);
                rest = ((rest + rest_lo) + ties) * scale;
                rest_lo = 0.0;
                if (need_dsum && wseen > 0.0) L(add2)(&dsum, &dsum_lo, wseen * ((double)bm - (double)m));
            }
            ties = 0.0;
            m = bm;
        }
        if (need_dsum) {
            double md = (double)m, wb = 0.0;
            _Pragma("omp simd reduction(+:wb)") for (int64_t j = 0; j < len; j++) {
                double w = cw ? (double)cw[j + b] : 1.0, xj = (double)rb[j];
                tbuf[j] = w == 0.0 ? 0.0 : (xj == -INFINITY ? INFINITY : w * (md - xj));
                wb += w;
            }
            ce_sum2(tbuf, len, &dsum, &dsum_lo);
            wseen += wb;
        }
        if (m == -INFINITY) {
            for (int64_t j = 0; sizeof(T) == sizeof(float) && j < len; j++)
                if (rb[j] != rb[j]) return 1;
            continue;
        }
        int64_t bties = 0;
        if (sizeof(T) == sizeof(float)) {
            L(add2)(&rest, &rest_lo, ce_expsum_f32((const float*)rb, len, (float)m, (const float*)(rb + BLOCK), &bties));
        } else {
            _Pragma("omp simd reduction(+:bties)") for (int64_t j = 0; j < len; j++) {
                T z = rb[j] - m;
                T ez = EXPSUM(z);
                tbuf[j] = z == (T)0 ? 0.0 : (double)ez;
                bties += z == (T)0;
            }
            ce_sum2(tbuf, len, &rest, &rest_lo);
        }
        ties += (double)bties;
    }
    if (rest != rest) return 1; /* a NaN in a float32 row */
    *mx = (double)m;
    *rest_out = m == -INFINITY ? -1.0 : (rest + rest_lo) + (ties - 1.0);
    if (need_dsum) *dsum_out = ce_sum2_value(dsum, dsum_lo);
    return 0;
}

/* Copy rows [i0, i0 + cnt) of x (rows of v <= SHORT) into xt, transposed: xt[j * GROUP + k] = x[i0 + k, j];
   lanes k >= cnt are filled with zeros (valid values whose results are discarded). */
static void L(transpose_in)(const T* x, int64_t i0, int64_t cnt, int64_t v, T* xt) {
    for (int64_t k = 0; k < cnt; k++) {
        const T* row = x + (i0 + k) * v;
        for (int64_t j = 0; j < v; j++) xt[j * GROUP + k] = row[j];
    }
    for (int64_t k = cnt; k < GROUP; k++)
        for (int64_t j = 0; j < v; j++) xt[j * GROUP + k] = (T)0;
}

/* Group gi transposed (transpose_in) into one half of buf, the next group of [gi, end) into the other half
   first: a group is read one group after its scalar stores, so its vector loads never wait for them. */
static T* L(group_ahead)(const T* x, int64_t n, int64_t v, int64_t gi, int64_t begin, int64_t end, T* buf) {
    T* cur = buf + ((gi - begin) & 1) * (SHORT * GROUP);
    if (gi == begin) L(transpose_in)(x, gi * GROUP, n - gi * GROUP < GROUP ? n - gi * GROUP : GROUP, v, cur);
    if (gi + 1 < end) {
        int64_t i1 = (gi + 1) * GROUP;
        L(transpose_in)(x, i1, n - i1 < GROUP ? n - i1 : GROUP, v, buf + ((gi + 1 - begin) & 1) * (SHORT * GROUP));
    }
    return cur;
}

/* row_stats of the GROUP short rows held transposed in xt, one row per SIMD lane. */
static void L(group_stats)(const T* xt, int64_t v, const T* cw, int need_dsum, double* mx, double* rest_out,
                           double* dsum_out, int* bad) {
    if (sizeof(T) == sizeof(float) && !need_dsum) {
        ce_group_stats_f32((const float*)xt, v, mx, rest_out, bad);
        for (int64_t k = 0; k < GROUP; k++) dsum_out[k] = 0.0;
        return;
    }
    T m[GROUP];
    int64_t badk[GROUP], ties[GROUP];
    double acc[GROUP], lo[GROUP], ds[GROUP], dlo[GROUP];
    for (int64_t k = 0; k < GROUP; k++) {
        m[k] = -INFINITY;
        badk[k] = 0;
        ties[k] = 0;
        acc[k] = lo[k] = ds[k] = dlo[k] = 0.0;
    }
    for (int64_t j = 0; j < v; j++) {
        const T* col = xt + j * GROUP;
        _Pragma("omp simd") for (int64_t k = 0; k < GROUP; k++) {
            T xv = col[k];
            badk[k] += (xv != xv) | (xv == (T)INFINITY);
            m[k] = xv > m[k] ? xv : m[k];
        }
    }
    for (int64_t j = 0; j < v; j++) {
        const T* col = xt + j * GROUP;
        _Pragma("omp simd") for (int64_t k = 0; k < GROUP; k++) {
            T z = col[k] - m[k];
            T ez = EXPSUM(z);
            double t = z == (T)0 ? 0.0 : (double)ez;
            ties[k] += z == (T)0;
            if (sizeof(T) == sizeof(float)) {
                acc[k] += t;
            } else {
                double u = acc[k] + t, bb = u - acc[k];
                lo[k] += (acc[k] - (u - bb)) + (t - bb);
                acc[k] = u;
            }
        }
    }
    if (need_dsum) {
        for (int64_t j = 0; j < v; j++) {
            const T* col = xt + j * GROUP;
            double w = cw ? (double)cw[j] : 1.0;
            _Pragma("omp simd") for (int64_t k = 0; k < GROUP; k++) {
                double xj = (double)col[k];
                double t = w == 0.0 ? 0.0 : (xj == -INFINITY ? INFINITY : w * ((double)m[k] - xj));
                double u = ds[k] + t, bb = u - ds[k];
                dlo[k] += (ds[k] - (u - bb)) + (t - bb);
                ds[k] = u;
            }
        }
    }
    for (int64_t k = 0; k < GROUP; k++) {
        bad[k] = badk[k];
        mx[k] = (double)m[k];
        rest_out[k] = m[k] == -INFINITY ? -1.0 : (acc[k] + lo[k]) + (double)(ties[k] - 1);
        dsum_out[k] = need_dsum ? ce_sum2_value(ds[k], dlo[k]) : 0.0;
    }
}

/* --- softmax gradient ------------------------------------------------------------------------------ */

/* g[j] = coef exp((r_j - mx) - shift) - off w_j, then g[t] -= tcoef when 0 <= t < v (that entry
   computed in double from x_t, read before g overwrites it: g may be r). A row with coef, off and
   tcoef all 0 is written as zeros without evaluating exp; mx = -inf (a row of -inf only) has
   probabilities 0. The exponential is the same float32-lane (float32) or double one as row_stats'. */
static void L(grad_row)(const T* r, int64_t v, double mx, double shift, double coef, double off, const T* cw,
                        int64_t t, double tcoef, T* g) {
    if (coef == 0.0 && off == 0.0 && tcoef == 0.0) {
        memset(g, 0, (size_t)v * sizeof(T));
        return;
    }
    int has_t = t >= 0 && t < v;
    double xt = has_t ? (double)r[t] : 0.0;
    int live = coef != 0.0 && mx != -INFINITY;
    T m_t = (T)mx, s_t = (T)shift, c_t = live ? (T)coef : (T)0, o_t = (T)off;
    if (!live) {
        _Pragma("omp simd") for (int64_t j = 0; j < v; j++) g[j] = -(o_t * (cw ? cw[j] : (T)1));
    } else if (sizeof(T) == sizeof(float)) {
        ce_grad_f32((const float*)r, v, (float)m_t, (float)s_t, (float)c_t, (float)o_t, (const float*)cw, (float*)g);
    } else if (cw) {
        _Pragma("omp simd") for (int64_t j = 0; j < v; j++) g[j] = c_t * EXPT((r[j] - m_t) - s_t) - o_t * cw[j];
    } else {
        _Pragma("omp simd") for (int64_t j = 0; j < v; j++) g[j] = c_t * EXPT((r[j] - m_t) - s_t) - o_t;
    }
    if (has_t) {
        double p = live ? coef * ce_exp((xt - mx) - shift) : 0.0;
        g[t] = (T)(p - off * (cw ? (double)cw[t] : 1.0) - tcoef);
    }
}

/* grad_row for the GROUP short rows held transposed in xt; writes rows k < cnt with write[k] set. */
static void L(group_grad)(const T* xt, int64_t v, int64_t cnt, const double* mx, const double* shift,
                          const double* coef, const double* off, const T* cw, const int64_t* t, const double* tcoef,
                          const int* write, T* g0) {
    T gt[SHORT * GROUP];
    T m_t[GROUP], s_t[GROUP], c_t[GROUP], o_t[GROUP];
    int64_t zero[GROUP];
    for (int64_t k = 0; k < GROUP; k++) {
        int live = coef[k] != 0.0 && mx[k] != -INFINITY;
        zero[k] = coef[k] == 0.0 && off[k] == 0.0 && tcoef[k] == 0.0;
        m_t[k] = live ? (T)mx[k] : (T)0;
        s_t[k] = live ? (T)shift[k] : (T)0;
        c_t[k] = live ? (T)coef[k] : (T)0;
        o_t[k] = (T)off[k];
    }
    double pt[GROUP]; /* the target columns' probabilities, in float64 */
    if (sizeof(T) == sizeof(float)) { /* the same operations on explicit vectors, VW rows at a time */
        for (int64_t kb = 0; kb < GROUP; kb += VW) {
            vf m = ce_vload((const float*)m_t + kb), sh = ce_vload((const float*)s_t + kb);
            vf cf = ce_vload((const float*)c_t + kb), of = ce_vload((const float*)o_t + kb);
            vi dead = cf == 0.0f, none;
            for (int64_t k = 0; k < VW; k++) none[k] = zero[kb + k] ? -1 : 0;
            for (int64_t j = 0; j < v; j++) {
                vf e = ce_vexpf((ce_vload((const float*)xt + j * GROUP + kb) - m) - sh);
                vf value = (vf)((vi)(cf * e) & ~dead) - of * (cw ? (float)cw[j] : 1.0f);
                ce_vstore((float*)gt + j * GROUP + kb, (vf)((vi)value & ~none));
            }
        }
        for (int64_t k0 = 0; k0 < GROUP; k0 += VD) {
            vd xv, mv, sv, cv;
            vl live;
            for (int64_t k = 0; k < VD; k++) {
                int64_t row = k0 + k, tk = t[row];
                int in = tk >= 0 && tk < v;
                xv[k] = in ? (double)xt[tk * GROUP + row] : 0.0;
                mv[k] = in ? mx[row] : 0.0;
                sv[k] = in ? shift[row] : 0.0;
                cv[k] = coef[row];
                live[k] = coef[row] != 0.0 && mx[row] != -INFINITY ? -1 : 0;
            }
            vd p = ce_vsel(live, cv * ce_vexp((xv - mv) - sv), DSPLAT(0.0));
            memcpy(pt + k0, &p, sizeof p);
        }
    } else {
        for (int64_t j = 0; j < v; j++) {
            const T* col = xt + j * GROUP;
            T* gc = gt + j * GROUP;
            T w = cw ? cw[j] : (T)1;
            _Pragma("omp simd") for (int64_t k = 0; k < GROUP; k++) {
                T e = EXPT((col[k] - m_t[k]) - s_t[k]);
                T value = (c_t[k] == (T)0 ? (T)0 : c_t[k] * e) - o_t[k] * w;
                gc[k] = zero[k] ? (T)0 : value;
            }
        }
        for (int64_t k = 0; k < GROUP; k++) {
            int live = coef[k] != 0.0 && mx[k] != -INFINITY, in = t[k] >= 0 && t[k] < v;
            pt[k] = live && in ? coef[k] * ce_exp(((double)xt[t[k] * GROUP + k] - mx[k]) - shift[k]) : 0.0;
        }
    }
    for (int64_t k = 0; k < cnt; k++) {
        if (!write[k]) continue;
        T* g = g0 + k * v;
        for (int64_t j = 0; j < v; j++) g[j] = gt[j * GROUP + k];
        if (!zero[k] && t[k] >= 0 && t[k] < v) g[t[k]] = (T)(pt[k] - off[k] * (cw ? (double)cw[t[k]] : 1.0) - tcoef[k]);
    }
}

/* --- row_stats and softmax_grad entries ------------------------------------------------------------ */

typedef struct {
    const T* x;
    int64_t n, v;
    const T* cw;
    int need_dsum;
    double *mx, *rest, *dsum;
} L(stats_ctx);

static void L(stats_task)(void* p, int64_t begin, int64_t end, int64_t* bad) {
    const L(stats_ctx)* c = (const L(stats_ctx)*)p;
    if (c->v <= SHORT) {
        T buf[2 * SHORT * GROUP];
        double mx[GROUP], rest[GROUP], dsum[GROUP];
        int badk[GROUP];
        for (int64_t gi = begin; gi < end; gi++) {
            int64_t i0 = gi * GROUP, cnt = c->n - i0 < GROUP ? c->n - i0 : GROUP;
            const T* xt = L(group_ahead)(c->x, c->n, c->v, gi, begin, end, buf);
            L(group_stats)(xt, c->v, c->cw, c->need_dsum, mx, rest, dsum, badk);
            for (int64_t k = 0; k < cnt; k++) {
                if (badk[k]) {
                    ++*bad;
                    continue;
                }
                c->mx[i0 + k] = mx[k];
                c->rest[i0 + k] = rest[k];
                if (c->need_dsum) c->dsum[i0 + k] = dsum[k];
            }
        }
        return;
    }
    for (int64_t i = begin; i < end; i++) {
        double d = 0.0;
        if (L(row_stats)(c->x + i * c->v, c->v, c->cw, c->need_dsum, c->mx + i, c->rest + i, &d)) {
            ++*bad;
            continue;
        }
        if (c->need_dsum) c->dsum[i] = d;
    }
}

/* Rows are handed out in chunks of about 16384 elements (whole groups of short rows). */
static int64_t L(row_items)(int64_t n, int64_t v, int64_t* grain) {
    if (v <= SHORT) {
        int64_t per_group = GROUP * (v > 0 ? v : 1);
        *grain = 16384 / per_group > 0 ? 16384 / per_group : 1;
        return (n + GROUP - 1) / GROUP;
    }
    *grain = 16384 / v > 0 ? 16384 / v : 1;
    return n;
}

/* Per-row max, rest and (need_dsum) dsum of x (n, v); returns the number of rows with NaN or +inf. */
int64_t EXPORT(ce_row_stats)(const T* x, int64_t n, int64_t v, const T* cw, int need_dsum, double* mx, double* rest,
                             double* dsum, int nthreads) {
    L(stats_ctx) c = {x, n, v, cw, need_dsum, mx, rest, dsum};
    int64_t grain, items = L(row_items)(n, v, &grain);
    return ce_parallel(nthreads, items, grain, L(stats_task), &c);
}

typedef struct {
    const T* x;
    int64_t n, v;
    const double *mx, *shift, *coef, *off;
    const T* cw;
    const int64_t* tcol;
    const double* tcoef;
    T* grad;
} L(grad_ctx);

static void L(grad_task)(void* p, int64_t begin, int64_t end, int64_t* bad) {
    const L(grad_ctx)* c = (const L(grad_ctx)*)p;
    (void)bad;
    if (c->v <= SHORT) {
        T buf[2 * SHORT * GROUP];
        double mx[GROUP], shift[GROUP], coef[GROUP], off[GROUP], tcoef[GROUP];
        int64_t t[GROUP];
        int write[GROUP];
        for (int64_t gi = begin; gi < end; gi++) {
            int64_t i0 = gi * GROUP, cnt = c->n - i0 < GROUP ? c->n - i0 : GROUP;
            const T* xt = L(group_ahead)(c->x, c->n, c->v, gi, begin, end, buf);
            for (int64_t k = 0; k < GROUP; k++) {
                int in = k < cnt;
                mx[k] = in ? c->mx[i0 + k] : 0.0;
                shift[k] = in ? c->shift[i0 + k] : 0.0;
                coef[k] = in ? c->coef[i0 + k] : 0.0;
                off[k] = in && c->off ? c->off[i0 + k] : 0.0;
                tcoef[k] = in ? c->tcoef[i0 + k] : 0.0;
                t[k] = in ? c->tcol[i0 + k] : -1;
                write[k] = in;
            }
            L(group_grad)(xt, c->v, cnt, mx, shift, coef, off, c->cw, t, tcoef, write, c->grad + i0 * c->v);
        }
        return;
    }
    for (int64_t i = begin; i < end; i++)
        L(grad_row)(c->x + i * c->v, c->v, c->mx[i], c->shift[i], c->coef[i], c->off ? c->off[i] : 0.0, c->cw,
                    c->tcol[i], c->tcoef[i], c->grad + i * c->v);
}

/* grad[i, j] = coef_i exp((x_ij - mx_i) - shift_i) - off_i w_j, minus tcoef_i at column tcol_i. */
void EXPORT(ce_softmax_grad)(const T* x, int64_t n, int64_t v, const double* mx, const double* shift,
                             const double* coef, const double* off, const T* cw, const int64_t* tcol,
                             const double* tcoef, T* grad, int nthreads) {
    L(grad_ctx) c = {x, n, v, mx, shift, coef, off, cw, tcol, tcoef, grad};
    int64_t grain, items = L(row_items)(n, v, &grain);
    ce_parallel(nthreads, items, grain, L(grad_task), &c);
}

/* --- fused sparse cross-entropy ---------------------------------------------------------------------- */

typedef struct {
    const T* x;
    int64_t n, v;
    const int64_t* labels;
    int has_ignore;
    int64_t ignore;
    const T* cw;
    double wsum, eps, z;
    double* loss;
    T* grad;
    const double* row_scale;
} L(sparse_ctx);

/* The loss of row i from its statistics, and its gradient's coefficients:
   loss = (1-eps) w_y ((mx - x_y) + shift) + eps/V (W shift + dsum) + z lse^2, lse = mx + shift, where
   W shift + dsum = sum_j w_j (lse - x_j) has no cancellation (every term >= 0). Returns 1 for a
   label out of range (and not ignored). */
static int L(sparse_finish)(const L(sparse_ctx)* c, int64_t i, double mx, double shift, double dsum, double xy,
                            double* coef, double* off, double* tcoef) {
    int64_t y = c->labels[i];
    int ignored = c->has_ignore && y == c->ignore;
    if (!ignored && (y < 0 || y >= c->v)) return 1;
    if (ignored) {
        c->loss[i] = 0.0;
        *coef = *off = *tcoef = 0.0;
        return 0;
    }
    double eps = c->eps, lse = mx + shift, inv_v = 1.0 / (double)c->v;
    double wy = c->cw ? (double)c->cw[y] : 1.0;
    double nll = (mx - xy) + shift;
    double smooth = eps != 0.0 ? eps * inv_v * (c->wsum * shift + dsum) : 0.0;
    c->loss[i] = (1.0 - eps) * wy * nll + smooth + c->z * lse * lse;
    double scale = c->row_scale ? c->row_scale[i] : 1.0;
    *coef = scale * ((1.0 - eps) * wy + eps * inv_v * c->wsum + 2.0 * c->z * lse);
    *off = scale * eps * inv_v;
    *tcoef = scale * (1.0 - eps) * wy;
    return 0;
}

/* sparse_finish for the GROUP float32 rows of a whole group, VD rows a vector of float64 lanes (the same
   operations in the same order, so the same bits). Returns 1, having written nothing, when a row is invalid:
   the caller then finishes the group row by row. */
static int L(group_finish)(const L(sparse_ctx)* c, int64_t i0, const T* xt, const double* mx, const double* shift,
                           const double* dsum, const int* badk, double* coef, double* off, double* tcoef, int64_t* t) {
    int64_t v = c->v;
    double eps = c->eps, inv_v = 1.0 / (double)v;
    vd xy[GROUP / VD], wy[GROUP / VD], keep[GROUP / VD];
    for (int64_t k = 0; k < GROUP; k++) {
        int64_t y = c->labels[i0 + k];
        int ignored = c->has_ignore && y == c->ignore;
        if (badk[k] || mx[k] == -INFINITY || (!ignored && (y < 0 || y >= v))) return 1;
        xy[k / VD][k % VD] = ignored ? 0.0 : (double)xt[y * GROUP + k];
        wy[k / VD][k % VD] = c->cw && !ignored ? (double)c->cw[y] : 1.0;
        keep[k / VD][k % VD] = ignored ? 0.0 : 1.0;
        t[k] = y;
    }
    for (int64_t h = 0; h < GROUP / VD; h++) {
        int64_t k0 = h * VD;
        vd m, sh, ds = {0}, scale = DSPLAT(1.0);
        memcpy(&m, mx + k0, sizeof m);
        memcpy(&sh, shift + k0, sizeof sh);
        if (eps != 0.0) memcpy(&ds, dsum + k0, sizeof ds);
        if (c->row_scale) memcpy(&scale, c->row_scale + i0 + k0, sizeof scale);
        vd lse = m + sh, nll = (m - xy[h]) + sh;
        vd smooth = eps != 0.0 ? eps * inv_v * (c->wsum * sh + ds) : DSPLAT(0.0);
        vd loss = (1.0 - eps) * wy[h] * nll + smooth + c->z * lse * lse;
        vl live = keep[h] != 0.0;
        loss = ce_vsel(live, loss, DSPLAT(0.0));
        memcpy(c->loss + i0 + k0, &loss, sizeof loss);
        vd cf = scale * ((1.0 - eps) * wy[h] + eps * inv_v * c->wsum + 2.0 * c->z * lse);
        vd of = scale * eps * inv_v + DSPLAT(0.0), tc = scale * (1.0 - eps) * wy[h];
        cf = ce_vsel(live, cf, DSPLAT(0.0));
        of = ce_vsel(live, of, DSPLAT(0.0));
        tc = ce_vsel(live, tc, DSPLAT(0.0));
        memcpy(coef + k0, &cf, sizeof cf);
        memcpy(off + k0, &of, sizeof of);
        memcpy(tcoef + k0, &tc, sizeof tc);
    }
    return 0;
}

static void L(sparse_task)(void* p, int64_t begin, int64_t end, int64_t* bad) {
    const L(sparse_ctx)* c = (const L(sparse_ctx)*)p;
    int64_t v = c->v;
    int need_dsum = c->eps != 0.0;
    if (v <= SHORT) {
        T buf[2 * SHORT * GROUP];
        double mx[GROUP], rest[GROUP], dsum[GROUP], shift[GROUP], coef[GROUP], off[GROUP], tcoef[GROUP];
        int64_t t[GROUP];
        int badk[GROUP], write[GROUP];
        for (int64_t gi = begin; gi < end; gi++) {
            int64_t i0 = gi * GROUP, cnt = c->n - i0 < GROUP ? c->n - i0 : GROUP;
            const T* xt = L(group_ahead)(c->x, c->n, v, gi, begin, end, buf);
            L(group_stats)(xt, v, c->cw, need_dsum, mx, rest, dsum, badk);
            if (sizeof(T) == sizeof(double)) { /* float64: libm's log1p (< 1 ulp) keeps the 2-ulp bound */
                for (int64_t k = 0; k < GROUP; k++) shift[k] = log1p(rest[k]);
            } else { /* float32: ce_vlog1p (2^-28, 1/30 of a float32 ulp) without ce_log1p's two divisions */
                for (int64_t k0 = 0; k0 < GROUP; k0 += VD) {
                    vd r;
                    memcpy(&r, rest + k0, sizeof r);
                    r = ce_vlog1p(r);
                    memcpy(shift + k0, &r, sizeof r);
                }
            }
            if (sizeof(T) == sizeof(float) && cnt == GROUP &&
                !L(group_finish)(c, i0, xt, mx, shift, dsum, badk, coef, off, tcoef, t)) {
                for (int64_t k = 0; k < GROUP; k++) write[k] = 1;
                if (c->grad) L(group_grad)(xt, v, cnt, mx, shift, coef, off, c->cw, t, tcoef, write, c->grad + i0 * v);
                continue;
            }
            for (int64_t k = 0; k < GROUP; k++) {
                coef[k] = off[k] = tcoef[k] = 0.0;
                t[k] = -1;
                write[k] = 0;
                if (k >= cnt) continue;
                int64_t y = c->labels[i0 + k];
                double xy = y >= 0 && y < v ? (double)xt[y * GROUP + k] : 0.0;
                if (badk[k] || mx[k] == -INFINITY ||
                    L(sparse_finish)(c, i0 + k, mx[k], shift[k], dsum[k], xy, coef + k, off + k, tcoef + k)) {
                    coef[k] = off[k] = tcoef[k] = 0.0;
                    ++*bad;
                    continue;
                }
                t[k] = y;
                write[k] = 1;
            }
            if (c->grad) L(group_grad)(xt, v, cnt, mx, shift, coef, off, c->cw, t, tcoef, write, c->grad + i0 * v);
        }
        return;
    }
    for (int64_t i = begin; i < end; i++) {
        const T* r = c->x + i * v;
        double mx, rest, dsum = 0.0, coef, off, tcoef;
        if (L(row_stats)(r, v, c->cw, need_dsum, &mx, &rest, &dsum) || mx == -INFINITY) {
            ++*bad;
            continue;
        }
        double shift = log1p(rest);
        int64_t y = c->labels[i];
        double xy = y >= 0 && y < v ? (double)r[y] : 0.0;
        if (L(sparse_finish)(c, i, mx, shift, dsum, xy, &coef, &off, &tcoef)) {
            ++*bad;
            continue;
        }
        if (c->grad) L(grad_row)(r, v, mx, shift, coef, off, c->cw, y, tcoef, c->grad + i * v);
    }
}

/* Sparse categorical cross-entropy from logits x (n, v), C-contiguous; with grad != NULL also its
   gradient times row_scale (grad may be x: in place). Each row is row_stats + grad_row while it is in
   cache. Returns the number of invalid rows (left untouched). */
int64_t EXPORT(ce_sparse)(const T* x, int64_t n, int64_t v, const int64_t* labels, int has_ignore, int64_t ignore,
                          const T* cw, double wsum, double eps, double z, double* loss, T* grad,
                          const double* row_scale, int nthreads) {
    L(sparse_ctx) c = {x, n, v, labels, has_ignore, ignore, cw, cw ? wsum : (double)v, eps, z, loss, grad, row_scale};
    int64_t grain, items = L(row_items)(n, v, &grain);
    return ce_parallel(nthreads, items, grain, L(sparse_task), &c);
}

/* --- soft targets ------------------------------------------------------------------------------------- */

typedef struct {
    const T *x, *y;
    int64_t n, v;
    const T* cw;
    double eps;
    int check_sums;
    double tol;
    double *loss, *class_of;
} L(soft_ctx);

static void L(soft_task)(void* p, int64_t begin, int64_t end, int64_t* bad) {
    const L(soft_ctx)* c = (const L(soft_ctx)*)p;
    double tbuf[BLOCK];
    int64_t v = c->v;
    double eps = c->eps, uniform = c->eps / (double)v;
    for (int64_t i = begin; i < end; i++) {
        const T* r = c->x + i * v;
        const T* yt = c->y + i * v;
        double mx, rest, unused;
        if (L(row_stats)(r, v, 0, 0, &mx, &rest, &unused) || mx == -INFINITY) {
            ++*bad;
            continue;
        }
        double shift = log1p(rest);
        double acc = 0.0, lo = 0.0, total = 0.0, ysum = 0.0, cls = 0.0;
        int64_t badt = 0;
        for (int64_t b = 0; b < v; b += BLOCK) {
            int64_t len = v - b > BLOCK ? BLOCK : v - b;
            _Pragma("omp simd reduction(+:total, ysum, cls, badt)") for (int64_t j = 0; j < len; j++) {
                double yj = (double)yt[b + j], xj = (double)r[b + j];
                double w = c->cw ? (double)c->cw[b + j] : 1.0;
                double a = w * ((1.0 - eps) * yj + uniform);
                badt += !(yj >= 0.0 && yj <= 1.0);
                tbuf[j] = a == 0.0 ? 0.0 : a * (mx - xj);
                total += a;
                ysum += yj;
                cls += w * yj;
            }
            ce_sum2(tbuf, len, &acc, &lo);
        }
        if (badt || (c->check_sums && !(fabs(ysum - 1.0) <= c->tol))) {
            ++*bad;
            continue;
        }
        c->loss[i] = ce_sum2_value(acc, lo) + total * shift;
        c->class_of[i] = cls;
    }
}

/* Categorical cross-entropy from logits with soft targets y (same shape):
   loss_i = sum_c a_c (lse - x_c), a = w ((1-eps) y + eps/C), a sum of terms >= 0 (a_c = 0 skipped);
   class_of_i = sum_c w_c y_c. */
int64_t EXPORT(ce_soft)(const T* x, const T* y, int64_t n, int64_t v, const T* cw, double eps, int check_sums,
                        double tol, double* loss, double* class_of, int nthreads) {
    L(soft_ctx) c = {x, y, n, v, cw, eps, check_sums, tol, loss, class_of};
    int64_t grain = 16384 / v > 0 ? 16384 / v : 1;
    return ce_parallel(nthreads, n, grain, L(soft_task), &c);
}

/* --- information measures ------------------------------------------------------------------------------- */

typedef struct {
    const T *p, *q;
    int64_t n, v;
    int kind, check_sums;
    double tol;
    double* out;
} L(info_ctx);

static void L(info_task)(void* ptr, int64_t begin, int64_t end, int64_t* bad) {
    const L(info_ctx)* c = (const L(info_ctx)*)ptr;
    double tbuf[BLOCK];
    int64_t v = c->v;
    int kind = c->kind;
    for (int64_t i = begin; i < end; i++) {
        const T* a = c->p + i * v;
        const T* b = c->q ? c->q + i * v : a;
        double acc = 0.0, lo = 0.0, sa = 0.0, sb = 0.0;
        int64_t badr = 0;
        if (sizeof(T) == sizeof(float)) {
            int badf = 0;
            acc = ce_vinfo_f32((const float*)a, (const float*)b, v, kind, &sa, &sb, &badf);
            badr = badf;
        }
        for (int64_t o = 0; sizeof(T) == sizeof(double) && o < v; o += BLOCK) {
            int64_t len = v - o > BLOCK ? BLOCK : v - o;
            int64_t abnormal = 0;
            _Pragma("omp simd reduction(+:sa, sb, badr, abnormal)") for (int64_t j = 0; j < len; j++) {
                double pj = (double)a[o + j], qj = (double)b[o + j];
                badr += !(pj >= 0.0 && pj <= 1.0) | !(qj >= 0.0 && qj <= 1.0);
                sa += pj;
                sb += qj;
                double term;
                if (kind == 2) {
                    /* log(p / q) of the rounded ratio; a ratio that underflows or overflows (q > 0) is redone below */
                    double ratio = pj / qj;
                    abnormal += (pj != 0.0) & ((ratio < 2.2250738585072014e-308) | ((ratio == INFINITY) & (qj != 0.0)));
                    term = pj * ce_log(ratio);
                } else {
                    term = -pj * ce_log(qj);
                }
                tbuf[j] = pj == 0.0 ? 0.0 : term;
            }
            if (abnormal) {
                for (int64_t j = 0; j < len; j++) {
                    double pj = (double)a[o + j], qj = (double)b[o + j], ratio = pj / qj;
                    if (pj != 0.0 && (ratio < 2.2250738585072014e-308 || (ratio == INFINITY && qj != 0.0)))
                        tbuf[j] = pj * (log(pj) - log(qj));
                }
            }
            ce_sum2(tbuf, len, &acc, &lo);
        }
        if (badr || (c->check_sums && (!(fabs(sa - 1.0) <= c->tol) || !(fabs(sb - 1.0) <= c->tol)))) {
            ++*bad;
            continue;
        }
        c->out[i] = ce_sum2_value(acc, lo);
    }
}

/* Row-wise information measures of probabilities: kind 0 entropy of p, 1 cross-entropy H(p, q),
   2 KL(p || q); terms with p = 0 count 0. Invalid rows: values outside [0, 1] or NaN; with
   check_sums, rows not summing to 1 within tol. */
int64_t EXPORT(ce_info)(const T* p, const T* q, int64_t n, int64_t v, int kind, int check_sums, double tol,
                        double* out, int nthreads) {
    L(info_ctx) c = {p, q, n, v, kind, check_sums, tol, out};
    int64_t grain = 16384 / v > 0 ? 16384 / v : 1;
    return ce_parallel(nthreads, n, grain, L(info_task), &c);
}

/* --- binary cross-entropy ---------------------------------------------------------------------------------- */

typedef struct {
    const T *y, *p;
    int64_t n;
    int from_logits;
    double pw, eps;
    T* out;
} L(binary_ctx);

static void L(binary_task)(void* ptr, int64_t begin, int64_t end, int64_t* bad) {
    const L(binary_ctx)* c = (const L(binary_ctx)*)ptr;
    const T one_eps = (T)(1.0 - c->eps), half_eps = (T)(c->eps / 2.0), pw = (T)c->pw;
    int64_t b = begin * 8192, e = end * 8192 < c->n ? end * 8192 : c->n;
    int64_t bb = 0;
    if (sizeof(T) == sizeof(float)) {
        *bad += ce_vbinary_f32((const float*)c->y + b, (const float*)c->p + b, e - b, c->from_logits, (float)one_eps,
                              (float)half_eps, (float)pw, (float*)c->out + b);
        return;
    }
    if (c->from_logits) {
        _Pragma("omp simd reduction(+:bb)") for (int64_t j = b; j < e; j++) {
            T yj = c->y[j];
            T yst = yj * one_eps + half_eps;
            double xj = (double)c->p[j], ys = (double)yst, pos = (double)(yst * pw), rest = (double)((T)1 - yst);
            bb += !(yj >= (T)0 && yj <= (T)1) | (xj != xj);
            double sp = ce_log1p(ce_exp(-fabs(xj)));
            double lp = -((xj < 0.0 ? -xj : 0.0) + sp), lq = -((xj > 0.0 ? xj : 0.0) + sp);
            c->out[j] = (T)(0.0 - ((pos == 0.0 ? 0.0 : pos * lp) + (ys == 1.0 ? 0.0 : rest * lq)));
        }
    } else {
        _Pragma("omp simd reduction(+:bb)") for (int64_t j = b; j < e; j++) {
            T yj = c->y[j];
            T yst = yj * one_eps + half_eps;
            double xj = (double)c->p[j], ys = (double)yst, pos = (double)(yst * pw), rest = (double)((T)1 - yst);
            bb += !(yj >= (T)0 && yj <= (T)1) | !(xj >= 0.0 && xj <= 1.0);
            double lp = ce_log(xj), lq = ce_log1m(xj);
            c->out[j] = (T)(0.0 - ((pos == 0.0 ? 0.0 : pos * lp) + (ys == 1.0 ? 0.0 : rest * lq)));
        }
    }
    *bad += bb;
}

/* Binary cross-entropy, elementwise: -(pw y log p + (1-y) log(1-p)) with 0 log 0 = 0, the targets
   smoothed as y (1 - eps) + eps / 2 (rounded to T, as the reference path does); from logits
   log p = -softplus(-x), log(1-p) = -softplus(x). Computed in float64 lanes. Returns the number of
   invalid elements (targets or probabilities outside [0, 1], NaN logits). */
int64_t EXPORT(ce_binary)(const T* y, const T* p, int64_t n, int from_logits, double pw, double eps, T* out,
                          int nthreads) {
    L(binary_ctx) c = {y, p, n, from_logits, pw, eps, out};
    return ce_parallel(nthreads, (n + 8191) / 8192, 2, L(binary_task), &c);
}

/* --- token statistics ----------------------------------------------------------------------------------------- */

typedef struct {
    const T* x;
    int64_t n, v;
    const int64_t* labels;
    int has_ignore;
    int64_t ignore;
    double temperature, inv_t;
    double *logprob, *entropy, *top1, *lse;
    int64_t* rank;
} L(tstats_ctx);

/* One pass over row r[0, v) for the statistics of its target column y: m = max r; with z_j = (r_j - m) inv_t,
   sum_j exp(z_j) = 1 + *rest_out (the max's own term kept apart, as in row_stats, for log1p) and *ez_out =
   sum_j exp(z_j) z_j <= 0; *ahead = the logits ranked ahead of r[y] (see ce_max_rank_f32). Block by block
   while the block is in L1, with the running maximum; when it grows by d (d inv_t = delta), the sums so far
   become exp(-delta) sum and exp(-delta) (ez - delta sum). Returns 1 if the row holds a NaN. */
static int L(tstats_row)(const T* r, int64_t v, int64_t y, double inv_t, double* mx, double* rest_out, double* ez_out,
                         int64_t* ahead) {
    double tbuf[BLOCK], ubuf[BLOCK];
    T m = -INFINITY, t = r[y], it = (T)inv_t;
    double rest = 0.0, rest_lo = 0.0, ties = 0.0, ez = 0.0, ez_lo = 0.0;
    int64_t cnt = 0;
    int has_nan = 0;
    for (int64_t b = 0; b < v; b += BLOCK) {
        int64_t len = v - b > BLOCK ? BLOCK : v - b;
        int64_t split = y - b < 0 ? 0 : (y - b > len ? len : y - b);
        const T* rb = r + b;
        T bm = -INFINITY;
        if (sizeof(T) == sizeof(float)) {
            bm = (T)ce_max_rank_f32((const float*)rb, len, split, (float)t, &cnt);
        } else {
            int64_t c = 0;
            _Pragma("omp simd reduction(max:bm) reduction(+:c)") for (int64_t j = 0; j < split; j++) {
                bm = rb[j] > bm ? rb[j] : bm;
                c += !(rb[j] < t);
            }
            _Pragma("omp simd reduction(max:bm) reduction(+:c)") for (int64_t j = split; j < len; j++) {
                bm = rb[j] > bm ? rb[j] : bm;
                c += !(rb[j] <= t);
            }
            cnt += c;
        }
        if (bm > m) {
            if (m != -INFINITY) {
                double delta = ((double)bm - (double)m) * inv_t, scale = exp(-delta);
                double before = (rest + rest_lo) + ties;
                ez = ((ez + ez_lo) - delta * before) * scale;
                rest = before * scale;
                rest_lo = ez_lo = 0.0;
            }
            ties = 0.0;
            m = bm;
        }
        if (m == -INFINITY) { /* nothing above -inf so far: the sums cannot see a NaN here */
            for (int64_t j = 0; j < len; j++) has_nan |= rb[j] != rb[j];
            continue;
        }
        int64_t bties = 0;
        if (sizeof(T) == sizeof(float)) {
            double bs, bez;
            const float* fb = (const float*)rb;
            const float* ahead_block = fb + BLOCK;
            float fm = (float)m, fit = (float)it;
            int tied = bm == m; /* the blocks below the running maximum hold no x_j == m */
            if (it == (T)1 && tied) ce_tstats_sums_f32(fb, len, fm, fit, 0, 1, ahead_block, &bs, &bez, &bties);
            else if (it == (T)1) ce_tstats_sums_f32(fb, len, fm, fit, 0, 0, ahead_block, &bs, &bez, &bties);
            else if (tied) ce_tstats_sums_f32(fb, len, fm, fit, 1, 1, ahead_block, &bs, &bez, &bties);
            else ce_tstats_sums_f32(fb, len, fm, fit, 1, 0, ahead_block, &bs, &bez, &bties);
            L(add2)(&rest, &rest_lo, bs);
            L(add2)(&ez, &ez_lo, bez);
        } else {
            _Pragma("omp simd reduction(+:bties)") for (int64_t j = 0; j < len; j++) {
                T z = (rb[j] - m) * it;
                T zc = z < (T)-746 ? (T)-746 : z; /* -inf: exp 0, term 0; NaN kept */
                T e = EXPSUM(zc);
                tbuf[j] = z == (T)0 ? 0.0 : (double)e;
                ubuf[j] = z == (T)0 ? 0.0 : (double)(e * zc);
                bties += z == (T)0;
            }
            ce_sum2(tbuf, len, &rest, &rest_lo);
            ce_sum2(ubuf, len, &ez, &ez_lo);
        }
        ties += (double)bties;
    }
    *mx = (double)m;
    *rest_out = (rest + rest_lo) + (ties - 1.0);
    *ez_out = ez + ez_lo;
    *ahead = cnt;
    return has_nan || *rest_out != *rest_out || *ez_out != *ez_out;
}

static void L(tstats_task)(void* p, int64_t begin, int64_t end, int64_t* bad) {
    const L(tstats_ctx)* c = (const L(tstats_ctx)*)p;
    int64_t v = c->v;
    for (int64_t i = begin; i < end; i++) {
        int64_t y = c->labels[i];
        if (c->has_ignore && y == c->ignore) {
            c->logprob[i] = c->entropy[i] = c->top1[i] = c->lse[i] = 0.0;
            c->rank[i] = 0;
            continue;
        }
        if (y < 0 || y >= v) {
            ++*bad;
            continue;
        }
        const T* r = c->x + i * v;
        double mx, rest, ez;
        int64_t ahead;
        int has_nan = L(tstats_row)(r, v, y, c->inv_t, &mx, &rest, &ez, &ahead);
        T t = r[y];
        if (t != t) { /* a NaN target: behind the NaN before it only */
            ahead = 0;
            for (int64_t j = 0; j < y; j++) ahead += r[j] != r[j];
        }
        c->rank[i] = 1 + ahead;
        if (has_nan || mx == INFINITY || mx == -INFINITY) { /* NaN or +inf logits, or all -inf: no distribution */
            c->logprob[i] = c->entropy[i] = c->top1[i] = c->lse[i] = NAN;
            continue;
        }
        double s = 1.0 + rest, log_s = log1p(rest);
        c->lse[i] = mx / c->temperature + log_s;
        c->logprob[i] = ((double)t - mx) / c->temperature - log_s;
        c->entropy[i] = log_s - ez / s;
        c->top1[i] = 1.0 / s;
    }
}

/* Per-row statistics of logits x (n, v) at temperature T (inv_t = 1 / T, clamped to T's finite range), with
   labels (ignored where has_ignore and equal to ignore: all 0, rank 0): log-probability of the label, entropy,
   rank of the label (1 = first in torch's descending stable order, NaN first), top-1 probability and
   log-sum-exp of x / T. A row holding NaN or +inf, or only -inf, has NaN statistics (its rank is still
   counted). Returns the number of labels out of [0, v) (their rows left untouched). */
int64_t EXPORT(ce_token_stats)(const T* x, int64_t n, int64_t v, const int64_t* labels, int has_ignore, int64_t ignore,
                               double temperature, double inv_t, double* logprob, double* entropy, int64_t* rank,
                               double* top1, double* lse, int nthreads) {
    L(tstats_ctx) c = {x, n, v, labels, has_ignore, ignore, temperature, inv_t, logprob, entropy, top1, lse, rank};
    /* chunks of consecutive rows (about 262144 logits, four chunks a thread at least): the prefetch of the
       block after a row's last one then reads the next row of the same thread */
    int64_t grain = 262144 / (v > 0 ? v : 1);
    if (nthreads > 0 && grain > n / (4 * (int64_t)nthreads)) grain = n / (4 * (int64_t)nthreads);
    return ce_parallel(nthreads, n, grain < 1 ? 1 : grain, L(tstats_task), &c);
}

/* --- distillation: divergences between two rows ----------------------------------------------------- */

/* A row pair: the student's logits s and the teacher's logits t (or, with t_probs, the teacher's
   probabilities), both multiplied by k = 1/T, the inverse temperature (probabilities are not). With
   lp_j = (x_j - m) k - log sum_i exp((x_i - m) k) the log-probabilities of each side (m its maximum)
   and p_j = exp(lp_j):
     kind 0, forward KL(P_t || P_s) = sum p_t (lp_t - lp_s); aux = H(P_t) = -sum p_t lp_t;
     kind 1, reverse KL(P_s || P_t) = sum p_s (lp_s - lp_t); aux = the same value;
     kind 2, JSD = beta KL(P_t || M) + (1 - beta) KL(P_s || M), M = beta P_t + (1 - beta) P_s;
             aux = KL(P_s || M); beta = 0 or 1 gives 0 exactly (and a zero gradient).
   Terms whose probability is 0 count 0 (also where the other side's logit is -inf). The gradient with
   respect to s of g times the row's value is g k (p_s - p_t) (forward), g k p_s (lp_s - lp_t - aux)
   (reverse; NaN where the value is +inf) and g k (1 - beta) p_s (lp_s - log M - aux) (JSD). float64 rows are computed in float64 with
   compensated sums; float32 rows by ce_kl_terms_f32 and ce_kl_grad_f32 (cpu.c). The row
   statistics (m_s, log-sum_s, m_t, log-sum_t) are written to stats, so that the gradient can be
   recomputed from them (ce_distill_grad) exactly as the fused pass computes it. */

#define DSUB 256 /* elements of a float64 row whose intermediate values are held in buffers */

typedef struct {
    const T *s, *t;
    int64_t n, v;
    int kind, t_probs, check_sums;
    double beta, k, tol;
    const uint8_t* keep;
    const double* coef;
    double *loss, *aux, *stats;
    T* grad;
} L(distill_ctx);

/* m = max r and ls = log sum_j exp((r_j - m) k) of a row of logits; returns 1 for NaN, +inf, or a row of -inf
   only (no distribution). */
static int L(scaled_lse)(const T* r, int64_t v, double k, double* m_out, double* ls_out) {
    if (k == 1.0) {
        double mx, rest, unused = 0.0;
        if (L(row_stats)(r, v, 0, 0, &mx, &rest, &unused) || mx == -INFINITY) return 1;
        *m_out = mx;
        *ls_out = log1p(rest);
        return 0;
    }
    T m = -INFINITY;
    int64_t bad = 0;
    if (sizeof(T) == sizeof(float)) {
        m = (T)ce_max_f32((const float*)r, v);
        bad = m == (T)INFINITY;
    } else {
        _Pragma("omp simd reduction(max:m) reduction(+:bad)") for (int64_t j = 0; j < v; j++) {
            T xj = r[j];
            bad += (xj != xj) | (xj == (T)INFINITY);
            m = xj > m ? xj : m;
        }
    }
    if (bad || m == -INFINITY) return 1;
    double total, md = (double)m;
    if (sizeof(T) == sizeof(float)) {
        total = ce_expsum_k_f32((const float*)r, v, (float)m, (float)k);
    } else {
        double tbuf[BLOCK], lo = 0.0;
        total = 0.0;
        for (int64_t b = 0; b < v; b += BLOCK) {
            int64_t len = v - b > BLOCK ? BLOCK : v - b;
            _Pragma("omp simd") for (int64_t j = 0; j < len; j++) tbuf[j] = ce_exp(((double)r[b + j] - md) * k);
            ce_sum2(tbuf, len, &total, &lo);
        }
        total += lo;
    }
    if (total != total) return 1; /* a NaN in the row */
    *m_out = md;
    *ls_out = log(total);
    return 0;
}

/* Teacher probabilities: every value in [0, 1] and, with check_sums, a sum within tol of 1. */
static int L(probs_ok)(const T* p, int64_t v, int check_sums, double tol) {
    int64_t bad = 0;
    double total = 0.0;
    _Pragma("omp simd reduction(+:bad, total)") for (int64_t j = 0; j < v; j++) {
        double pj = (double)p[j];
        bad += !(pj >= 0.0 && pj <= 1.0);
        total += pj;
    }
    return bad != 0 || (check_sums && !(fabs(total - 1.0) <= tol));
}

/* Log-probabilities and probabilities of len (<= DSUB) entries of one side of a float64 row pair. */
static void L(side)(const T* x, int64_t len, int probs, double m, double k, double ls, double* lp, double* p) {
    if (probs) {
        _Pragma("omp simd") for (int64_t j = 0; j < len; j++) {
            p[j] = (double)x[j];
            lp[j] = ce_log(p[j]);
        }
    } else {
        _Pragma("omp simd") for (int64_t j = 0; j < len; j++) {
            lp[j] = ((double)x[j] - m) * k - ls;
            p[j] = ce_exp(lp[j]);
        }
    }
}

/* ce_vjsd's log-ratios against the JSD's mixture for one pair of float64 log-probabilities (see cpu.c). */
static inline void L(jsd_ratios)(double d, double beta, double* t_ratio, double* s_ratio) {
    int neg = d <= 0.0;
    double r = -ce_log1p((neg ? 1.0 - beta : beta) * (ce_exp(neg ? d : -d) - 1.0));
    *t_ratio = neg ? r : r - d;
    *s_ratio = neg ? r + d : r;
}

/* The gradient of row (s, t) times g, from its statistics st and aux value a, into gr (which may be s). */
static void L(distill_grad_row)(const L(distill_ctx)* c, const T* s, const T* t, const double* st, double a, double g,
                                T* gr) {
    int64_t v = c->v;
    int kind = c->kind, probs = c->t_probs;
    double k = c->k, beta = c->beta, wb = 1.0 - beta;
    if (g == 0.0 || (kind == 2 && (beta == 0.0 || beta == 1.0))) {
        memset(gr, 0, (size_t)v * sizeof(T));
        return;
    }
    if (kind == 1 && a == INFINITY) { /* P_s puts mass where P_t has none: an infinite value, no gradient */
        for (int64_t j = 0; j < v; j++) gr[j] = (T)NAN;
        return;
    }
    if (sizeof(T) == sizeof(float)) {
        ce_kl_grad_f32((const float*)s, (const float*)t, v, kind, probs, (float)st[0], (float)st[2], k, st[1],
                            st[3], beta, a, g * k, (float*)gr);
        return;
    }
    double lps[DSUB], ps[DSUB], lpt[DSUB], pt[DSUB], gk = g * k, gw = g * k * wb;
    for (int64_t b = 0; b < v; b += DSUB) {
        int64_t len = v - b > DSUB ? DSUB : v - b;
        L(side)(s + b, len, 0, st[0], k, st[1], lps, ps);
        L(side)(t + b, len, probs, st[2], k, st[3], lpt, pt);
        T* gb = gr + b;
        if (kind == 0) {
            _Pragma("omp simd") for (int64_t j = 0; j < len; j++) gb[j] = (T)(gk * (ps[j] - pt[j]));
        } else if (kind == 1) {
            _Pragma("omp simd") for (int64_t j = 0; j < len; j++) {
                gb[j] = (T)(ps[j] == 0.0 ? 0.0 : gk * (ps[j] * ((lps[j] - lpt[j]) - a)));
            }
        } else {
            _Pragma("omp simd") for (int64_t j = 0; j < len; j++) {
                double tr, sr;
                L(jsd_ratios)(lps[j] - lpt[j], beta, &tr, &sr);
                gb[j] = (T)(ps[j] == 0.0 ? 0.0 : gw * (ps[j] * (sr - a)));
            }
        }
    }
}

/* The value and aux value of a float64 row pair from its statistics st; with gr (forward KL only) the gradient
   g k (p_s - p_t) too, in the same pass. */
static double L(distill_terms)(const L(distill_ctx)* c, const T* s, const T* t, const double* st, double g, T* gr,
                               double* aux) {
    int64_t v = c->v;
    int kind = c->kind, probs = c->t_probs;
    double k = c->k, beta = c->beta, wb = 1.0 - beta, gk = g * k;
    if (sizeof(T) == sizeof(float))
        return ce_kl_terms_f32((const float*)s, (const float*)t, v, kind, probs, (float)st[0], (float)st[2], k,
                                    st[1], st[3], beta, gk, (float*)gr, aux);
    double lps[DSUB], ps[DSUB], lpt[DSUB], pt[DSUB], tb[DSUB], ab[DSUB];
    double hi = 0.0, lo = 0.0, ahi = 0.0, alo = 0.0;
    for (int64_t b = 0; b < v; b += DSUB) {
        int64_t len = v - b > DSUB ? DSUB : v - b;
        L(side)(s + b, len, 0, st[0], k, st[1], lps, ps);
        L(side)(t + b, len, probs, st[2], k, st[3], lpt, pt);
        if (kind == 0) {
            _Pragma("omp simd") for (int64_t j = 0; j < len; j++) {
                tb[j] = pt[j] == 0.0 ? 0.0 : pt[j] * (lpt[j] - lps[j]);
                ab[j] = pt[j] == 0.0 ? 0.0 : -(pt[j] * lpt[j]);
            }
            if (gr) {
                T* gb = gr + b;
                _Pragma("omp simd") for (int64_t j = 0; j < len; j++) gb[j] = (T)(gk * (ps[j] - pt[j]));
            }
        } else if (kind == 1) {
            _Pragma("omp simd") for (int64_t j = 0; j < len; j++) tb[j] = ps[j] == 0.0 ? 0.0 : ps[j] * (lps[j] - lpt[j]);
        } else {
            _Pragma("omp simd") for (int64_t j = 0; j < len; j++) {
                double tr, sr;
                L(jsd_ratios)(lps[j] - lpt[j], beta, &tr, &sr);
                double from_t = pt[j] == 0.0 ? 0.0 : pt[j] * tr;
                ab[j] = ps[j] == 0.0 ? 0.0 : ps[j] * sr;
                tb[j] = beta * from_t + wb * ab[j];
            }
        }
        ce_sum2(tb, len, &hi, &lo);
        if (kind != 1) ce_sum2(ab, len, &ahi, &alo);
    }
    double value = ce_sum2_value(hi, lo);
    *aux = kind == 1 ? value : ce_sum2_value(ahi, alo);
    return value;
}

/* Row i: statistics, value, aux and (with a gradient) the gradient. Returns 1 for an invalid row. */
static int L(distill_row)(const L(distill_ctx)* c, int64_t i) {
    int64_t v = c->v;
    const T* s = c->s + i * v;
    const T* t = c->t + i * v;
    double* st = c->stats + 4 * i;
    T* gr = c->grad ? c->grad + i * v : NULL;
    if (c->keep && !c->keep[i]) {
        st[0] = st[1] = st[2] = st[3] = 0.0;
        c->loss[i] = c->aux[i] = 0.0;
        if (gr) memset(gr, 0, (size_t)v * sizeof(T));
        return 0;
    }
    st[2] = st[3] = 0.0;
    if (sizeof(T) == sizeof(float) && !c->t_probs && c->kind != 2 && !gr) /* the value alone: one pass */
        return ce_kl_online_f32((const float*)s, (const float*)t, v, c->kind, c->k, st, c->loss + i, c->aux + i);
    if (L(scaled_lse)(s, v, c->k, st, st + 1)) return 1;
    if (c->t_probs ? L(probs_ok)(t, v, c->check_sums, c->tol) : L(scaled_lse)(t, v, c->k, st + 2, st + 3)) return 1;
    double g = gr ? c->coef[i] : 0.0, a = 0.0;
    if (c->kind == 2 && (c->beta == 0.0 || c->beta == 1.0)) {
        c->loss[i] = c->aux[i] = 0.0;
        if (gr) memset(gr, 0, (size_t)v * sizeof(T));
        return 0;
    }
    int fused = c->kind == 0 && gr != NULL && g != 0.0; /* the forward KL's gradient needs no row total */
    c->loss[i] = L(distill_terms)(c, s, t, st, g, fused ? gr : NULL, &a);
    c->aux[i] = a;
    if (gr && !fused) L(distill_grad_row)(c, s, t, st, a, g, gr);
    return 0;
}

static void L(distill_task)(void* p, int64_t begin, int64_t end, int64_t* bad) {
    const L(distill_ctx)* c = (const L(distill_ctx)*)p;
    for (int64_t i = begin; i < end; i++) *bad += L(distill_row)(c, i);
}

/* Row-wise divergences of n row pairs (s, t) of length v (C-contiguous); see above. keep (NULL: every row)
   selects the rows computed, the others get zeros; with coef and grad also the gradient of coef_i times each
   row's value with respect to s (grad may be s: in place). Returns the number of invalid rows (NaN or +inf
   logits, a row of -inf only; teacher probabilities outside [0, 1] or, with check_sums, not summing to 1
   within tol), whose outputs are left untouched. */
int64_t EXPORT(ce_distill)(const T* s, const T* t, int64_t n, int64_t v, int kind, int t_probs, double beta,
                           double k, int check_sums, double tol, const uint8_t* keep, const double* coef,
                           double* loss, double* aux, double* stats, T* grad, int nthreads) {
    L(distill_ctx) c = {s, t, n, v, kind, t_probs, check_sums, beta, k, tol, keep, coef, loss, aux, stats,
                        coef ? grad : NULL};
    int64_t grain = 16384 / v > 0 ? 16384 / v : 1;
    return ce_parallel(nthreads, n, grain, L(distill_task), &c);
}

static void L(distill_grad_task)(void* p, int64_t begin, int64_t end, int64_t* bad) {
    const L(distill_ctx)* c = (const L(distill_ctx)*)p;
    (void)bad;
    for (int64_t i = begin; i < end; i++) {
        T* gr = c->grad + i * c->v;
        if (c->keep && !c->keep[i])
            memset(gr, 0, (size_t)c->v * sizeof(T));
        else
            L(distill_grad_row)(c, c->s + i * c->v, c->t + i * c->v, c->stats + 4 * i, c->aux[i], c->coef[i], gr);
    }
}

/* The gradient of ce_distill recomputed from the statistics and aux values it wrote: grad (n, v) of coef_i
   times each row's value with respect to s (rows not kept get zeros). */
void EXPORT(ce_distill_grad)(const T* s, const T* t, int64_t n, int64_t v, int kind, int t_probs, double beta,
                             double k, const uint8_t* keep, const double* stats, const double* aux,
                             const double* coef, T* grad, int nthreads) {
    L(distill_ctx) c = {s, t, n, v, kind, t_probs, 0, beta, k, 0.0, keep, coef, NULL, (double*)aux,
                        (double*)stats, grad};
    int64_t grain = 16384 / v > 0 ? 16384 / v : 1;
    ce_parallel(nthreads, n, grain, L(distill_grad_task), &c);
}

#undef DSUB

#undef X_
#undef L
#undef EXPORT
