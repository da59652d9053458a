// The row-wise ops of pf.nn (cpu/rowwise.rs has the reference semantics) for one op and one
// row type, compiled (after common.cuh, convert.cuh and math.cuh) with -DRO=<ROW_ name>
// -DELEM=<storage type> -DVARIANTS=<register variants in the module>. Statistics and arithmetic
// in float for float16/bfloat16/float32, double for float64; each output rounded once; e^x is
// ex2.approx on x log2(e) in float, the library's exp in double.
//
// Kernels (rows are C-contiguous (rows, n), weight and bias (n,), stats (rows, 2); each comes in
// a `_v` form, every pointer 16-byte aligned and n a multiple of the pack P, moving 16-byte
// packs, and an `_s` form moving single elements):
// - rows_<W>_<EPT>: W threads per row (a group of lanes of a warp for W <= 32, several rows per
//   256-thread block; the whole block for W > 32), each holding EPT elements of the row in
//   registers, so the row is read once and written once (rows up to W * EPT elements); sums
//   and maxima by warp shuffles, then through shared memory across the warps of a block;
// - rows_long: a block of LONG_THREADS per row for longer rows, reading the row from global
//   memory once per pass (softmax: an online maximum and sum, then the write pass).
// Rows past the grid are taken by a grid-stride loop (uniform per block).

typedef ELEM E;
typedef Num<E> N;
typedef N::C C;

#define P (16 / (int)sizeof(E))
#define LONG_THREADS 512

// The op identifiers (-DRO=ROW_<name>, the names of plan.rs in capitals), macros so that the
// preprocessor picks the op's code.
#define ROW_SOFTMAX 0
#define ROW_LOG_SOFTMAX 1
#define ROW_SOFTMAX_BACKWARD 2
#define ROW_LOG_SOFTMAX_BACKWARD 3
#define ROW_LAYER_NORM 4
#define ROW_RMS_NORM 5
#define ROW_LAYER_NORM_BACKWARD 6
#define ROW_RMS_NORM_BACKWARD 7

// Whether the op reads dy, and whether it writes the statistics.
#define READS_DY (RO == ROW_SOFTMAX_BACKWARD || RO == ROW_LOG_SOFTMAX_BACKWARD || RO == ROW_LAYER_NORM_BACKWARD || RO == ROW_RMS_NORM_BACKWARD)
#define NORM_BACKWARD (RO == ROW_LAYER_NORM_BACKWARD || RO == ROW_RMS_NORM_BACKWARD)
// Whether a normalization subtracts the mean (layer norm) or not (RMS norm).
#define CENTERED (RO == ROW_LAYER_NORM || RO == ROW_LAYER_NORM_BACKWARD)

// e^x.
__device__ __forceinline__ float fast_exp(float x) {
    float r;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x * 1.4426950408889634f));
    return r;
}
__device__ __forceinline__ double fast_exp(double x) { return exp(x); }

// The larger of two values, a NaN skipped (as the CPU's maximum; NaN reaches the result
// through the sums).
__device__ __forceinline__ float max_skip(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ double max_skip(double a, double b) { return fmax(a, b); }

__device__ __forceinline__ C neg_inf() { return -(C)__int_as_float(0x7f800000); }

// Q elements (Q == P: one 16-byte pack; Q == 1: one element) from p, as compute values.
template <int Q> __device__ __forceinline__ void ld(const E* __restrict__ p, C (&v)[Q]) {
    if constexpr (Q == 1) {
        v[0] = N::up(*p);
    } else {
        E t[P];
        load16(p, t);
        #pragma unroll
        for (int e = 0; e < P; ++e) v[e] = N::up(t[e]);
    }
}

// Q weights from p, or ones without a weight.
template <int Q> __device__ __forceinline__ void ld_or(const E* __restrict__ p, C (&v)[Q], C absent) {
    if (p != nullptr) {
        ld<Q>(p, v);
    } else {
        #pragma unroll
        for (int e = 0; e < Q; ++e) v[e] = absent;
    }
}

// Q compute values rounded to p.
template <int Q> __device__ __forceinline__ void st(E* __restrict__ p, const C (&v)[Q]) {
    if constexpr (Q == 1) {
        *p = N::down(v[0]);
    } else {
        E t[P];
        #pragma unroll
        for (int e = 0; e < P; ++e) t[e] = N::down(v[e]);
        uint4 w;
        memcpy(&w, t, 16);
        *reinterpret_cast<uint4*>(p) = w;
    }
}

// Sums (MAX false) or NaN-skipping maxima of M values over the W threads of a row, the result
// in every one of them; sm is this reduction's own M x 32 shared slots (W > 32). The order of
// the additions is the same in every thread, so they all hold the same values.
template <int W, bool MAX, int M>
__device__ __forceinline__ void group_reduce(C (&v)[M], C* sm) {
    #pragma unroll
    for (int m = (W < 32 ? W : 32) / 2; m > 0; m >>= 1) {
        #pragma unroll
        for (int k = 0; k < M; ++k) {
            const C o = __shfl_xor_sync(0xffffffffu, v[k], m);
            v[k] = MAX ? max_skip(v[k], o) : v[k] + o;
        }
    }
    if constexpr (W > 32) {
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
        if (lane == 0) {
            #pragma unroll
            for (int k = 0; k < M; ++k) sm[k * 32 + warp] = v[k];
        }
        __syncthreads();
        #pragma unroll
        for (int k = 0; k < M; ++k) {
            C a = sm[k * 32];
            #pragma unroll
            for (int i = 1; i < W / 32; ++i) a = MAX ? max_skip(a, sm[k * 32 + i]) : a + sm[k * 32 + i];
            v[k] = a;
        }
    }
}

template <int W> __device__ __forceinline__ C group_sum(C v, C* sm) {
    C a[1] = {v};
    group_reduce<W, false, 1>(a, sm);
    return a[0];
}

// The reciprocal square root of a variance or mean square plus eps, rounded as the CPU's.
__device__ __forceinline__ C inv_sqrt(C v) { return (C)1 / sqrt(v); }

// W threads per row, EPT elements of it in each thread's registers (see the header); Q elements
// per load and store (P or 1).
template <int W, int EPT, int Q>
__device__ __forceinline__ void rows_regs(E* __restrict__ out, const E* __restrict__ x, const E* __restrict__ dy,
                                          const E* __restrict__ w, const E* __restrict__ b, C* __restrict__ stats,
                                          i64 rows, i64 n, double eps_d) {
    constexpr int U = EPT / Q;
    constexpr int RPB = (W > 32 ? W : 256) / W;
    __shared__ C sm[4 * 32];
    const int t = threadIdx.x % W;
    for (i64 base = (i64)blockIdx.x * RPB; base < rows; base += (i64)gridDim.x * RPB) {
        const i64 r = base + threadIdx.x / W;
        const bool live = r < rows;
        // Element e of pack u is element j(u) + e of the row.
        auto j = [&](int u) { return ((i64)u * W + t) * Q; };
        auto ok = [&](int u) { return live && j(u) < n; };
        const E* xr = x + r * n;
        E* orow = out + r * n;
        C xv[U][Q];
        C dv[READS_DY ? U : 1][Q];
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            if (ok(u)) {
                ld<Q>(xr + j(u), xv[u]);
                if constexpr (READS_DY) ld<Q>(dy + r * n + j(u), dv[u]);
            }
        }
#if RO == ROW_SOFTMAX || RO == ROW_LOG_SOFTMAX
        C mx[1] = {neg_inf()};
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            if (ok(u)) {
                #pragma unroll
                for (int e = 0; e < Q; ++e) mx[0] = max_skip(mx[0], xv[u][e]);
            }
        }
        group_reduce<W, true, 1>(mx, sm);
        C s = 0;
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            if (ok(u)) {
                #pragma unroll
                for (int e = 0; e < Q; ++e) {
                    const C d = xv[u][e] - mx[0];
#if RO == ROW_SOFTMAX
                    xv[u][e] = fast_exp(d);
                    s += xv[u][e];
#else
                    xv[u][e] = d;
                    s += fast_exp(d);
#endif
                }
            }
        }
        s = group_sum<W>(s, sm + 32);
#if RO == ROW_SOFTMAX
        const C inv = (C)1 / s;
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            #pragma unroll
            for (int e = 0; e < Q; ++e) xv[u][e] = xv[u][e] * inv;
        }
#else
        const C ln = log(s);
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            #pragma unroll
            for (int e = 0; e < Q; ++e) xv[u][e] = xv[u][e] - ln;
        }
#endif
#elif RO == ROW_SOFTMAX_BACKWARD || RO == ROW_LOG_SOFTMAX_BACKWARD
        C s = 0;
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            if (ok(u)) {
                #pragma unroll
                for (int e = 0; e < Q; ++e) {
#if RO == ROW_SOFTMAX_BACKWARD
                    s += dv[u][e] * xv[u][e];
#else
                    s += dv[u][e];
#endif
                }
            }
        }
        s = group_sum<W>(s, sm);
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            #pragma unroll
            for (int e = 0; e < Q; ++e) {
#if RO == ROW_SOFTMAX_BACKWARD
                xv[u][e] = xv[u][e] * (dv[u][e] - s);
#else
                xv[u][e] = dv[u][e] - fast_exp(xv[u][e]) * s;
#endif
            }
        }
#else
        // The normalizations: the mean (layer norm), then the variance or mean square.
        const C eps = (C)eps_d, nf = (C)n;
        C mean = 0;
#if CENTERED
        C sx = 0;
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            if (ok(u)) {
                #pragma unroll
                for (int e = 0; e < Q; ++e) sx += xv[u][e];
            }
        }
        mean = group_sum<W>(sx, sm) / nf;
#endif
        C sq = 0;
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            if (ok(u)) {
                #pragma unroll
                for (int e = 0; e < Q; ++e) {
                    xv[u][e] = xv[u][e] - mean;
                    sq += xv[u][e] * xv[u][e];
                }
            }
        }
        const C rstd = inv_sqrt(group_sum<W>(sq, sm + 32) / nf + eps);
#if NORM_BACKWARD
        // xhat into xv, g = dy * weight into dv; then mean(g) (layer norm) and mean(g xhat).
        C sg[2] = {0, 0};
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            if (ok(u)) {
                C wv[Q];
                ld_or<Q>(w == nullptr ? nullptr : w + j(u), wv, (C)1);
                #pragma unroll
                for (int e = 0; e < Q; ++e) {
                    xv[u][e] = xv[u][e] * rstd;
                    dv[u][e] = dv[u][e] * wv[e];
                    sg[0] += dv[u][e];
                    sg[1] += dv[u][e] * xv[u][e];
                }
            }
        }
        group_reduce<W, false, 2>(sg, sm + 64);
        const C mean_g = CENTERED ? sg[0] / nf : (C)0, mean_gx = sg[1] / nf;
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            #pragma unroll
            for (int e = 0; e < Q; ++e) xv[u][e] = rstd * (dv[u][e] - mean_g - xv[u][e] * mean_gx);
        }
        if (live && t == 0) {
            stats[2 * r] = mean;
            stats[2 * r + 1] = rstd;
        }
#else
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            if (ok(u)) {
                C wv[Q], bv[Q];
                ld_or<Q>(w == nullptr ? nullptr : w + j(u), wv, (C)1);
                ld_or<Q>(b == nullptr ? nullptr : b + j(u), bv, (C)0);
                #pragma unroll
                for (int e = 0; e < Q; ++e) xv[u][e] = xv[u][e] * rstd * wv[e] + bv[e];
            }
        }
#endif
#endif
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            if (ok(u)) st<Q>(orow + j(u), xv[u]);
        }
        if constexpr (W > 32) __syncthreads();
    }
}

// The shift of an online softmax sum for the running maximum m (0 while no finite maximum).
__device__ __forceinline__ C shift(C m) { return m == neg_inf() ? (C)0 : m; }

// Merges the running (maximum, Σ e^(x - shift(maximum))) pair (m2, s2) into (m, s).
__device__ __forceinline__ void online_merge(C& m, C& s, C m2, C s2) {
    const C mn = max_skip(m, m2);
    s = s * fast_exp(shift(m) - shift(mn)) + s2 * fast_exp(shift(m2) - shift(mn));
    m = mn;
}

// A block of LONG_THREADS per row, each pass reading the row from global memory; Q elements per
// load and store (P or 1).
template <int Q>
__device__ __forceinline__ void rows_long(E* __restrict__ out, const E* __restrict__ x, const E* __restrict__ dy,
                                          const E* __restrict__ w, const E* __restrict__ b, C* __restrict__ stats,
                                          i64 rows, i64 n, double eps_d) {
    constexpr int T = LONG_THREADS;
    __shared__ C sm[4 * 32];
    const i64 packs = n / Q;
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const E* xr = x + r * n;
#if READS_DY
        const E* dr = dy + r * n;
#endif
        E* orow = out + r * n;
#define EACH_PACK(q) for (i64 q = threadIdx.x; q < packs; q += T)
#if RO == ROW_SOFTMAX || RO == ROW_LOG_SOFTMAX
        C m = neg_inf(), s = 0;
        EACH_PACK(q) {
            C v[Q];
            ld<Q>(xr + q * Q, v);
            C pm = m;
            #pragma unroll
            for (int e = 0; e < Q; ++e) pm = max_skip(pm, v[e]);
            s = s * fast_exp(shift(m) - shift(pm));
            #pragma unroll
            for (int e = 0; e < Q; ++e) s += fast_exp(v[e] - shift(pm));
            m = pm;
        }
        #pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            const C m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
            online_merge(m, s, m2, s2);
        }
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
        if (lane == 0) {
            sm[warp] = m;
            sm[32 + warp] = s;
        }
        __syncthreads();
        m = sm[0];
        s = sm[32];
        #pragma unroll
        for (int i = 1; i < T / 32; ++i) online_merge(m, s, sm[i], sm[32 + i]);
        const C sh = shift(m);
#if RO == ROW_SOFTMAX
        const C inv = (C)1 / s;
#else
        const C ln = log(s);
#endif
        EACH_PACK(q) {
            C v[Q];
            ld<Q>(xr + q * Q, v);
            #pragma unroll
            for (int e = 0; e < Q; ++e) {
#if RO == ROW_SOFTMAX
                v[e] = fast_exp(v[e] - sh) * inv;
#else
                v[e] = (v[e] - sh) - ln;
#endif
            }
            st<Q>(orow + q * Q, v);
        }
#elif RO == ROW_SOFTMAX_BACKWARD || RO == ROW_LOG_SOFTMAX_BACKWARD
        C s = 0;
        EACH_PACK(q) {
            C d[Q];
            ld<Q>(dr + q * Q, d);
#if RO == ROW_SOFTMAX_BACKWARD
            C v[Q];
            ld<Q>(xr + q * Q, v);
#endif
            #pragma unroll
            for (int e = 0; e < Q; ++e) {
#if RO == ROW_SOFTMAX_BACKWARD
                s += d[e] * v[e];
#else
                s += d[e];
#endif
            }
        }
        s = group_sum<T>(s, sm);
        EACH_PACK(q) {
            C v[Q], d[Q];
            ld<Q>(xr + q * Q, v);
            ld<Q>(dr + q * Q, d);
            #pragma unroll
            for (int e = 0; e < Q; ++e) {
#if RO == ROW_SOFTMAX_BACKWARD
                v[e] = v[e] * (d[e] - s);
#else
                v[e] = d[e] - fast_exp(v[e]) * s;
#endif
            }
            st<Q>(orow + q * Q, v);
        }
#else
        const C eps = (C)eps_d, nf = (C)n;
        C mean = 0;
#if CENTERED
        C sx = 0;
        EACH_PACK(q) {
            C v[Q];
            ld<Q>(xr + q * Q, v);
            #pragma unroll
            for (int e = 0; e < Q; ++e) sx += v[e];
        }
        mean = group_sum<T>(sx, sm) / nf;
#endif
        C sq = 0;
        EACH_PACK(q) {
            C v[Q];
            ld<Q>(xr + q * Q, v);
            #pragma unroll
            for (int e = 0; e < Q; ++e) {
                const C c = v[e] - mean;
                sq += c * c;
            }
        }
        const C rstd = inv_sqrt(group_sum<T>(sq, sm + 32) / nf + eps);
#if NORM_BACKWARD
        C sg[2] = {0, 0};
        EACH_PACK(q) {
            C v[Q], d[Q], wv[Q];
            ld<Q>(xr + q * Q, v);
            ld<Q>(dr + q * Q, d);
            ld_or<Q>(w == nullptr ? nullptr : w + q * Q, wv, (C)1);
            #pragma unroll
            for (int e = 0; e < Q; ++e) {
                const C g = d[e] * wv[e];
                sg[0] += g;
                sg[1] += g * ((v[e] - mean) * rstd);
            }
        }
        group_reduce<T, false, 2>(sg, sm + 64);
        const C mean_g = CENTERED ? sg[0] / nf : (C)0, mean_gx = sg[1] / nf;
        EACH_PACK(q) {
            C v[Q], d[Q], wv[Q];
            ld<Q>(xr + q * Q, v);
            ld<Q>(dr + q * Q, d);
            ld_or<Q>(w == nullptr ? nullptr : w + q * Q, wv, (C)1);
            #pragma unroll
            for (int e = 0; e < Q; ++e) v[e] = rstd * (d[e] * wv[e] - mean_g - ((v[e] - mean) * rstd) * mean_gx);
            st<Q>(orow + q * Q, v);
        }
        if (threadIdx.x == 0) {
            stats[2 * r] = mean;
            stats[2 * r + 1] = rstd;
        }
#else
        EACH_PACK(q) {
            C v[Q], wv[Q], bv[Q];
            ld<Q>(xr + q * Q, v);
            ld_or<Q>(w == nullptr ? nullptr : w + q * Q, wv, (C)1);
            ld_or<Q>(b == nullptr ? nullptr : b + q * Q, bv, (C)0);
            #pragma unroll
            for (int e = 0; e < Q; ++e) v[e] = (v[e] - mean) * rstd * wv[e] + bv[e];
            st<Q>(orow + q * Q, v);
        }
#endif
#endif
#undef EACH_PACK
        __syncthreads();
    }
}

#define ROW_ARGS E* __restrict__ out, const E* __restrict__ x, const E* __restrict__ dy, const E* __restrict__ w, \
    const E* __restrict__ b, C* __restrict__ stats, i64 rows, i64 n, double eps
#define ROW_PASS out, x, dy, w, b, stats, rows, n, eps

// rows_<W>_<EPT>_v (16-byte packs) and _s (single elements).
#define ROWS_KERNELS(W, EPT) \
    extern "C" __global__ void __launch_bounds__(W > 32 ? W : 256) rows_##W##_##EPT##_v(ROW_ARGS) { \
        rows_regs<W, EPT, P>(ROW_PASS); \
    } \
    extern "C" __global__ void __launch_bounds__(W > 32 ? W : 256) rows_##W##_##EPT##_s(ROW_ARGS) { \
        rows_regs<W, EPT, 1>(ROW_PASS); \
    }

// The register variants, smallest first (Rust's VARIANTS has the same list); a module holds
// the first VARIANTS of them (the largest hold too many registers for some ops and types).
ROWS_KERNELS(4, 8)
ROWS_KERNELS(8, 8)
ROWS_KERNELS(16, 8)
ROWS_KERNELS(32, 8)
ROWS_KERNELS(32, 16)
ROWS_KERNELS(32, 32)
ROWS_KERNELS(128, 16)
ROWS_KERNELS(256, 16)
ROWS_KERNELS(512, 16)
#if VARIANTS > 9
ROWS_KERNELS(1024, 16)
#endif
#if VARIANTS > 10
ROWS_KERNELS(1024, 32)
#endif

extern "C" __global__ void __launch_bounds__(LONG_THREADS) rows_long_v(ROW_ARGS) { rows_long<P>(ROW_PASS); }
extern "C" __global__ void __launch_bounds__(LONG_THREADS) rows_long_s(ROW_ARGS) { rows_long<1>(ROW_PASS); }
