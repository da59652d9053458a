// The reductions of one op over one operand type, compiled (after common.cuh, convert.cuh and
// math.cuh) with -DROP=<R_ name> -DELEM=<storage type> --fmad=false; the Sum and Prod modules
// also hold the scans. Accumulators: float for float16/bfloat16/float32, double for float64,
// wrapping 64-bit integers for sums and products of integers and bools (the u64 bits are those
// of an int64 or uint64 result alike); max/min NaN-propagating; argmax/argmin keep (value,
// index), the first NaN winning, ties going to the lower index. The reduced elements of each
// output are numbered in C order of the reduced dimensions.
//
// Kernels (partials, when the reduced length is split over `gridDim.y` chunks, are
// accumulators in a pool buffer, reduced by a second kernel):
// - inner_warp / inner_block: the reduced elements of an output are contiguous (a row): a warp
//   or a block per row and chunk, 16-byte loads between the aligned ends, partial k*S + s;
// - outer_vec / outer_one: the outputs are contiguous (stride 1) and the reduced dimensions
//   merge into one outer dimension: block (32, 8), x over columns (P columns per thread with 16-byte loads in outer_vec),
//   y over the rows of the chunk, then a shared-memory reduction over y; partial s*K + k;
// - general: any views, a block per output and chunk, offsets per element;
// - finish_rows (warp per output) and finish_cols (thread per output): the partials to `dst`.

typedef ELEM E;
typedef Num<E> N;
typedef N::C C;

// The op identifiers (-DROP=R_<name>, the names of plan.rs in capitals), macros so that the
// preprocessor picks the accumulator.
#define R_SUM 0
#define R_PROD 1
#define R_MAX 2
#define R_MIN 3
#define R_ALL 4
#define R_ANY 5
#define R_ARGMAX 6
#define R_ARGMIN 7

#define P (16 / (int)sizeof(E))
// Packs (or rows) in flight per thread.
#define RU (P >= 16 ? 1 : (P >= 8 ? 2 : 4))

#if ROP == R_SUM || ROP == R_PROD
typedef Sel<N::FLOAT, C, u64>::T Acc;
typedef Sel<N::FLOAT, E, u64>::T D;
#elif ROP == R_ARGMAX || ROP == R_ARGMIN
struct Acc { C v; i64 i; };
typedef i64 D;
#elif ROP == R_ALL || ROP == R_ANY
typedef bool Acc;
typedef Bool D;
#else
typedef C Acc;
typedef E D;
#endif

template <typename X> __device__ __forceinline__ X lowest() {
    if constexpr (N::FLOAT) return -(X)__int_as_float(0x7f800000);
    else if constexpr (N::BOOL) return false;
    else if constexpr (N::SIGNED) return (X)((u64)1 << (8 * sizeof(X) - 1));
    else return (X)0;
}
template <typename X> __device__ __forceinline__ X highest() {
    if constexpr (N::FLOAT) return (X)__int_as_float(0x7f800000);
    else if constexpr (N::BOOL) return true;
    else if constexpr (N::SIGNED) return (X)~((u64)1 << (8 * sizeof(X) - 1));
    else return (X)~(X)0;
}

__device__ __forceinline__ Acc identity() {
#if ROP == R_SUM
    return (Acc)0;
#elif ROP == R_PROD
    return (Acc)1;
#elif ROP == R_MAX
    return lowest<Acc>();
#elif ROP == R_MIN
    return highest<Acc>();
#elif ROP == R_ALL
    return true;
#elif ROP == R_ANY
    return false;
#else
    Acc a;
    a.v = (C)0;
    a.i = -1;  // no element yet
    return a;
#endif
}

// The accumulator of element `x` at reduced position `i`.
template <typename X> __device__ __forceinline__ Acc load(X x, i64 i) {
#if ROP == R_SUM || ROP == R_PROD
    if constexpr (N::FLOAT) return N::up(x);
    else if constexpr (N::BOOL) return (u64)(x.v != 0);
    else if constexpr (N::SIGNED) return (u64)(i64)x;
    else return (u64)x;
#elif ROP == R_ARGMAX || ROP == R_ARGMIN
    Acc a;
    a.v = N::up(x);
    a.i = i;
    return a;
#elif ROP == R_ALL || ROP == R_ANY
    return x.v != 0;
#else
    return N::up(x);
#endif
}

// The larger (smaller) of two compute values, NaN if either is NaN.
template <typename X> __device__ __forceinline__ X nan_max(X a, X b) {
    if constexpr (N::FLOAT) {
#if __CUDA_ARCH__ >= 800
        if constexpr (sizeof(X) == 4) {
            float r;
            asm("max.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
            return r;
        }
#endif
        return a != a ? a : (b != b ? b : (a >= b ? a : b));
    } else {
        return a >= b ? a : b;
    }
}
template <typename X> __device__ __forceinline__ X nan_min(X a, X b) {
    if constexpr (N::FLOAT) {
#if __CUDA_ARCH__ >= 800
        if constexpr (sizeof(X) == 4) {
            float r;
            asm("min.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
            return r;
        }
#endif
        return a != a ? a : (b != b ? b : (a <= b ? a : b));
    } else {
        return a <= b ? a : b;
    }
}

template <typename X> __device__ __forceinline__ bool is_nan(X v) {
    if constexpr (N::FLOAT) return v != v;
    else return false;
}

__device__ __forceinline__ Acc combine(Acc a, Acc b) {
#if ROP == R_SUM
    return a + b;
#elif ROP == R_PROD
    return a * b;
#elif ROP == R_MAX
    return nan_max(a, b);
#elif ROP == R_MIN
    return nan_min(a, b);
#elif ROP == R_ALL
    return a && b;
#elif ROP == R_ANY
    return a || b;
#else
    if (b.i < 0) return a;
    if (a.i < 0) return b;
    const Acc first = a.i < b.i ? a : b;
    const bool an = is_nan(a.v), bn = is_nan(b.v);
    if (an || bn) return (an && bn) ? first : (an ? a : b);
    if (a.v == b.v) return first;
#if ROP == R_ARGMAX
    return a.v > b.v ? a : b;
#else
    return a.v < b.v ? a : b;
#endif
#endif
}

template <typename A, typename Y = E> __device__ __forceinline__ D finish(A a) {
#if ROP == R_SUM || ROP == R_PROD
    if constexpr (Num<Y>::FLOAT) return Num<Y>::down(a);
    else return a;
#elif ROP == R_ARGMAX || ROP == R_ARGMIN
    return a.i;
#elif ROP == R_ALL || ROP == R_ANY
    return Num<Bool>::down(a);
#else
    return N::down(a);
#endif
}

// Warp shuffles of any accumulator (through 32- or 64-bit words).
template <typename X> __device__ __forceinline__ X shfl_word(X v, int lane_or_mask, int mode) {
    typedef typename Sel<(sizeof(X) > 4), u64, u32>::T W;
    W w = 0;
    memcpy(&w, &v, sizeof(X));
    if (mode == 0) w = __shfl_xor_sync(0xffffffffu, w, lane_or_mask);
    else if (mode == 1) w = __shfl_up_sync(0xffffffffu, w, lane_or_mask);
    else w = __shfl_sync(0xffffffffu, w, lane_or_mask);
    X r;
    memcpy(&r, &w, sizeof(X));
    return r;
}
__device__ __forceinline__ Acc shfl(Acc v, int x, int mode) {
#if ROP == R_ARGMAX || ROP == R_ARGMIN
    Acc r;
    r.v = shfl_word(v.v, x, mode);
    r.i = shfl_word(v.i, x, mode);
    return r;
#else
    return shfl_word(v, x, mode);
#endif
}

__device__ __forceinline__ Acc warp_reduce(Acc x) {
    #pragma unroll
    for (int m = 16; m > 0; m >>= 1) x = combine(x, shfl(x, m, 0));
    return x;
}

// The reduction over the block (a multiple of 32 threads), valid in thread 0.
__device__ __forceinline__ Acc block_reduce(Acc x) {
    __shared__ Acc warps[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    x = warp_reduce(x);
    if (blockDim.x == 32) return x;
    if (lane == 0) warps[warp] = x;
    __syncthreads();
    if (warp == 0) {
        x = lane < (int)(blockDim.x >> 5) ? warps[lane] : identity();
        x = warp_reduce(x);
    }
    return x;
}

// Writes the accumulator of output k, chunk s (partials laid out k * ks + s * ss).
__device__ __forceinline__ void emit(D* dst, Acc* part, Acc acc, i64 k, i64 s, i64 ks, i64 ss) {
    if (gridDim.y == 1) dst[k] = finish(acc);
    else part[k * ks + s * ss] = acc;
}

// Groups of G threads (a warp or the block), each reducing chunk blockIdx.y of one contiguous
// row; the row of output k starts at offsets(kv, k).
template <int G>
__device__ __forceinline__ void inner_k(const E* src, D* dst, Acc* part, i64 K, i64 L, i64 chunk, const View<1>& kv) {
    const int groups = blockDim.x / G;
    const int lane = threadIdx.x % G;
    const i64 k = (i64)blockIdx.x * groups + threadIdx.x / G;
    const i64 s = blockIdx.y;
    Acc acc = identity();
    if (k < K) {
        i64 o[1];
        offsets(kv, k, o);
        const E* row = src + o[0];
        const i64 lo = s * chunk, hi = lo + chunk < L ? lo + chunk : L;
        i64 head = (i64)(((16 - ((u64)(row + lo) & 15)) & 15) / sizeof(E));
        if (head > hi - lo) head = hi - lo;
        const i64 start = lo + head;
        const i64 npk = (hi - start) / P;
        for (i64 j = lo + lane; j < start; j += G) acc = combine(acc, load(row[j], j));
        for (i64 base = lane; base < npk; base += (i64)G * RU) {
            E v[RU][P];
            #pragma unroll
            for (int u = 0; u < RU; ++u) {
                const i64 i = base + (i64)u * G;
                if (i < npk) load16(row + start + i * P, v[u]);
            }
            #pragma unroll
            for (int u = 0; u < RU; ++u) {
                const i64 i = base + (i64)u * G;
                if (i < npk) {
                    #pragma unroll
                    for (int e = 0; e < P; ++e) acc = combine(acc, load(v[u][e], start + i * P + e));
                }
            }
        }
        for (i64 j = start + npk * P + lane; j < hi; j += G) acc = combine(acc, load(row[j], j));
    }
    if constexpr (G == 32) acc = warp_reduce(acc);
    else acc = block_reduce(acc);
    if (lane == 0 && k < K) emit(dst, part, acc, k, s, gridDim.y, 1);
}

extern "C" __global__ void __launch_bounds__(256) inner_warp(const E* src, D* dst, Acc* part, i64 K, i64 L, i64 chunk, View<1> kv) {
    inner_k<32>(src, dst, part, K, L, chunk, kv);
}
extern "C" __global__ void __launch_bounds__(256) inner_block(const E* src, D* dst, Acc* part, i64 K, i64 L, i64 chunk, View<1> kv) {
    inner_k<256>(src, dst, part, K, L, chunk, kv);
}

// Outputs 0..K contiguous in src (column c at src + c), reduced position r at r * rs: block
// (32, 8), V columns per thread (V = P: 16-byte loads, every row start 16-byte aligned).
template <int V>
__device__ __forceinline__ void outer_k(const E* src, D* dst, Acc* part, i64 K, i64 L, i64 chunk, i64 rs) {
    __shared__ Acc sm[8][32];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const i64 c = ((i64)blockIdx.x * 32 + tx) * V;
    const i64 s = blockIdx.y, lo = s * chunk, hi = lo + chunk < L ? lo + chunk : L;
    Acc acc[V];
    #pragma unroll
    for (int j = 0; j < V; ++j) acc[j] = identity();
    if (c < K) {
        for (i64 r = lo + ty; r < hi; r += 8 * RU) {
            E v[RU][V];
            #pragma unroll
            for (int u = 0; u < RU; ++u) {
                const i64 rr = r + 8 * u;
                if (rr < hi) {
                    if constexpr (V == P) load16(src + rr * rs + c, v[u]);
                    else v[u][0] = src[rr * rs + c];
                }
            }
            #pragma unroll
            for (int u = 0; u < RU; ++u) {
                const i64 rr = r + 8 * u;
                if (rr < hi) {
                    #pragma unroll
                    for (int j = 0; j < V; ++j) acc[j] = combine(acc[j], load(v[u][j], rr));
                }
            }
        }
    }
    #pragma unroll
    for (int j = 0; j < V; ++j) {
        sm[ty][tx] = acc[j];
        __syncthreads();
        if (ty == 0) {
            #pragma unroll
            for (int y = 1; y < 8; ++y) acc[j] = combine(acc[j], sm[y][tx]);
        }
        __syncthreads();
    }
    if (ty == 0 && c < K) {
        #pragma unroll
        for (int j = 0; j < V; ++j) emit(dst, part, acc[j], c + j, s, 1, K);
    }
}

extern "C" __global__ void __launch_bounds__(256) outer_vec(const E* src, D* dst, Acc* part, i64 K, i64 L, i64 chunk, i64 rs) {
    outer_k<P>(src, dst, part, K, L, chunk, rs);
}
extern "C" __global__ void __launch_bounds__(256) outer_one(const E* src, D* dst, Acc* part, i64 K, i64 L, i64 chunk, i64 rs) {
    outer_k<1>(src, dst, part, K, L, chunk, rs);
}

// Output k (kept position offsets(kv, k)) over chunk blockIdx.y of the reduced view rv, a
// block (32 or 256 threads) per output and chunk.
extern "C" __global__ void __launch_bounds__(256) general(const E* src, D* dst, Acc* part, i64 K, i64 L, i64 chunk, View<1> kv, View<1> rv) {
    const i64 k = blockIdx.x, s = blockIdx.y;
    const i64 lo = s * chunk, hi = lo + chunk < L ? lo + chunk : L;
    i64 ko[1];
    offsets(kv, k, ko);
    Acc acc = identity();
    #pragma unroll 1
    for (i64 r = lo + threadIdx.x; r < hi; r += blockDim.x) {
        i64 o[1];
        offsets(rv, r, o);
        acc = combine(acc, load(src[ko[0] + o[0]], r));
    }
    acc = block_reduce(acc);
    if (threadIdx.x == 0) emit(dst, part, acc, k, s, gridDim.y, 1);
}

// dst[k] from the S partials k * S + s: a warp per output.
extern "C" __global__ void __launch_bounds__(256) finish_rows(const Acc* part, D* dst, i64 K, i64 S) {
    const int lane = threadIdx.x & 31;
    const i64 k = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (k >= K) return;
    Acc acc = identity();
    for (i64 s = lane; s < S; s += 32) acc = combine(acc, part[k * S + s]);
    acc = warp_reduce(acc);
    if (lane == 0) dst[k] = finish(acc);
}

// dst[k] from the S partials s * K + k: a thread per output (coalesced over k).
extern "C" __global__ void __launch_bounds__(256) finish_cols(const Acc* part, D* dst, i64 K, i64 S) {
    FOR_EACH(k, K) {
        Acc acc = identity();
        for (i64 s = 0; s < S; ++s) acc = combine(acc, part[s * K + k]);
        dst[k] = finish(acc);
    }
}

#if ROP == R_SUM || ROP == R_PROD
// Running sums or products along the last dimension: a warp per row (row offsets from the
// leading view: 0 dst, 1 src; last-dimension strides dls, sls), 32 elements per step scanned
// by shuffles and carried on.
extern "C" __global__ void __launch_bounds__(256) scan(const E* src, D* dst, i64 rows, i64 L, View<2> lead, i64 dls, i64 sls) {
    const int lane = threadIdx.x & 31;
    const i64 row = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return;
    i64 o[2];
    offsets(lead, row, o);
    Acc carry = identity();
    for (i64 c0 = 0; c0 < L; c0 += 32) {
        const i64 j = c0 + lane;
        Acc x = j < L ? load(src[o[1] + j * sls], j) : identity();
        #pragma unroll
        for (int d = 1; d < 32; d <<= 1) {
            const Acc y = shfl(x, d, 1);
            if (lane >= d) x = combine(y, x);
        }
        x = combine(carry, x);
        if (j < L) dst[o[0] + j * dls] = finish(x);
        carry = shfl(x, 31, 2);
    }
}
#endif
