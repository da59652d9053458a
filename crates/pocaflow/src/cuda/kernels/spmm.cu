// Y = A X for a CSR matrix A (rows x k) and a row-major dense X (k x ncols, leading dimension
// ldx) into a row-major Y (rows x ncols, leading dimension ldy): pocaflow's own SpMM, compiled
// after common.cuh. One instance per (value type, index type, vector width V).
//
// Balance by nonzeros, not by rows: the nonzeros are cut into chunks of `chunk` entries and
// each warp takes one chunk and one tile of 32 * V columns (lane l holds columns l * V ..
// l * V + V - 1 of the tile as one vector). A row belongs to the chunk holding its first
// entry (an empty row to the chunk at its position); the owner sums the row's entries up to
// the chunk's end and stores the sum. A row that runs past its chunk is continued by the
// following chunks, each storing its partial sum in `part[chunk]` and the row in
// `cont[chunk]` (-1 where the chunk continues no row); `spmm_fix_*` then adds each row's
// partials, in chunk order, into Y: no atomics, so the result does not depend on scheduling.
//
// For each group of 32 entries the lanes load one index and one value each; the warp then
// walks the group, broadcasting them by shuffle, with 8 gathers of X in flight per lane. X is
// read through the read-only path and kept in L2 (it is read about nnz / k times); A's arrays
// and Y are touched once and streamed past the cache (ld/st .cs).

template <typename T, int V> struct Vec;
template <> struct Vec<float, 1> { typedef float t; };
template <> struct Vec<float, 2> { typedef float2 t; };
template <> struct Vec<float, 4> { typedef float4 t; };
template <> struct Vec<double, 1> { typedef double t; };
template <> struct Vec<double, 2> { typedef double2 t; };

// acc += a * x for V lanes of a vector.
template <typename T, int V>
__device__ __forceinline__ void fma_vec(T (&acc)[V], T a, const T* x) {
    typedef typename Vec<T, V>::t W;
    union { W w; T e[V]; } u;
    u.w = __ldg((const W*)x);
    #pragma unroll
    for (int i = 0; i < V; ++i) acc[i] += a * u.e[i];  // contracted to an FMA (--fmad)
}

template <typename T, int V>
__device__ __forceinline__ void store_vec(T* y, const T (&acc)[V]) {
    typedef typename Vec<T, V>::t W;
    union { W w; T e[V]; } u;
    #pragma unroll
    for (int i = 0; i < V; ++i) u.e[i] = acc[i];
    __stcs((W*)y, u.w);
}

// The first i in [0, n) with p[i] >= target (n if none), found by the whole warp: each round
// probes 32 evenly spaced entries and keeps the interval between two of them.
template <typename I>
__device__ __forceinline__ i64 warp_lower_bound(const I* p, i64 n, i64 target, int lane) {
    i64 lo = 0, hi = n;  // answer in [lo, hi]
    while (hi - lo > 0) {
        const i64 step = (hi - lo + 31) / 32;
        const i64 at = lo + (i64)lane * step;
        const bool below = at < hi && (i64)p[at] < target;
        const u32 mask = __ballot_sync(0xffffffffu, below);
        const int count = __popc(mask);  // probes below target: lanes 0 .. count - 1
        if (count == 0) return lo;
        const i64 last_below = lo + (i64)(count - 1) * step;
        lo = last_below + 1;
        const i64 next = lo - 1 + step;
        hi = next < hi ? next : hi;
        if (step == 1) return lo;
    }
    return lo;
}

// acc = the sum over entries [p, q) of data[e] * X[indices[e], columns of this lane].
template <typename T, typename I, int V>
__device__ __forceinline__ void row_sum(const I* indices, const T* data, const T* x, i64 ldx,
                                        i64 p, i64 q, int lane, bool active, T (&acc)[V]) {
    #pragma unroll
    for (int i = 0; i < V; ++i) acc[i] = (T)0;
    for (i64 base = p; base < q; base += 32) {
        const i64 e = base + lane;
        const bool in = e < q;
        const I j = in ? __ldcs(indices + e) : (I)0;
        const T v = in ? __ldcs(data + e) : (T)0;
        const int cnt = q - base < 32 ? (int)(q - base) : 32;
        for (int t = 0; t < cnt; t += 8) {
            #pragma unroll
            for (int u = 0; u < 8; ++u) {
                const I jj = __shfl_sync(0xffffffffu, j, t + u);
                const T vv = __shfl_sync(0xffffffffu, v, t + u);
                if (t + u < cnt && active) fma_vec<T, V>(acc, vv, x + (i64)jj * ldx);
            }
        }
    }
}

// This warp's chunk `c` and this lane's first column `col` (warps run over the chunks, and
// within a chunk over the tiles of 32 * V columns); false for a warp past the last chunk.
template <int V>
__device__ __forceinline__ bool warp_tile(i64 ncols, i64 chunks, int lane, i64& c, i64& col) {
    const i64 tiles = (ncols + 32 * V - 1) / (32 * V);
    const i64 w = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    c = w / tiles;
    col = (w % tiles) * 32 * V + (i64)lane * V;
    return w < chunks * tiles;
}

template <typename T, typename I, int V>
__device__ void spmm_k(const I* indptr, const I* indices, const T* data, const T* x, i64 ldx,
                       T* y, i64 ldy, i64 rows, i64 ncols, i64 nnz, i64 chunk, i64 chunks,
                       i64* cont, T* part) {
    const int lane = threadIdx.x & 31;
    i64 c, col;
    if (!warp_tile<V>(ncols, chunks, lane, c, col)) return;
    const bool active = col < ncols;
    const bool last = c == chunks - 1;
    const i64 lo = c * chunk, hi = last ? nnz : lo + chunk;
    const T* xc = x + col;
    T acc[V];
    // The first row starting at or after lo; the row before it continues into this chunk when
    // it has entries at or past lo.
    i64 r = warp_lower_bound(indptr, rows + 1, lo, lane);
    if (r > 0 && (i64)indptr[r] > lo) {
        const i64 q = (i64)indptr[r] < hi ? (i64)indptr[r] : hi;
        row_sum<T, I, V>(indices, data, xc, ldx, lo, q, lane, active, acc);
        if (active) store_vec<T, V>(part + c * ncols + col, acc);
        if (lane == 0 && col == 0) cont[c] = r - 1;
    } else if (lane == 0 && col == 0) {
        cont[c] = -1;
    }
    // The rows this chunk owns, their row pointers read 32 at a time.
    i64 window = -64;
    I ptr = 0;
    for (; r < rows; ++r) {
        if (r + 1 >= window + 32) {
            window = r;
            const i64 at = window + lane;
            ptr = at <= rows ? indptr[at] : (I)nnz;
        }
        const i64 p = (i64)__shfl_sync(0xffffffffu, ptr, (int)(r - window));
        if (!last && p >= hi) break;
        const i64 end = (i64)__shfl_sync(0xffffffffu, ptr, (int)(r + 1 - window));
        const i64 q = end < hi ? end : hi;
        row_sum<T, I, V>(indices, data, xc, ldx, p, q, lane, active, acc);
        if (active) store_vec<T, V>(y + r * ldy + col, acc);
    }
}

// Adds the continuing chunks' partial sums into Y: the first chunk of each run of chunks
// continuing one row sums the run, in order.
template <typename T, int V>
__device__ void spmm_fix_k(const i64* cont, const T* part, T* y, i64 ldy, i64 ncols,
                           i64 chunks) {
    const int lane = threadIdx.x & 31;
    i64 c, col;
    if (!warp_tile<V>(ncols, chunks, lane, c, col)) return;
    const i64 r = cont[c];
    if (r < 0 || (c > 0 && cont[c - 1] == r) || col >= ncols) return;
    T acc[V];
    #pragma unroll
    for (int i = 0; i < V; ++i) acc[i] = y[r * ldy + col + i];
    for (i64 k = c; k < chunks && cont[k] == r; ++k) {
        #pragma unroll
        for (int i = 0; i < V; ++i) acc[i] += part[k * ncols + col + i];
    }
    #pragma unroll
    for (int i = 0; i < V; ++i) y[r * ldy + col + i] = acc[i];
}

#define SPMM(NAME, T, I, V) \
extern "C" __global__ void __launch_bounds__(256) spmm_##NAME(const I* indptr, const I* indices, const T* data, const T* x, i64 ldx, T* y, i64 ldy, i64 rows, i64 ncols, i64 nnz, i64 chunk, i64 chunks, i64* cont, T* part) { spmm_k<T, I, V>(indptr, indices, data, x, ldx, y, ldy, rows, ncols, nnz, chunk, chunks, cont, part); }
#define SPMM_FIX(NAME, T, V) \
extern "C" __global__ void __launch_bounds__(256) spmm_fix_##NAME(const i64* cont, const T* part, T* y, i64 ldy, i64 ncols, i64 chunks) { spmm_fix_k<T, V>(cont, part, y, ldy, ncols, chunks); }

SPMM(f32_i32_1, float, i32, 1)
SPMM(f32_i32_2, float, i32, 2)
SPMM(f32_i32_4, float, i32, 4)
SPMM(f32_i64_1, float, i64, 1)
SPMM(f32_i64_2, float, i64, 2)
SPMM(f32_i64_4, float, i64, 4)
SPMM(f64_i32_1, double, i32, 1)
SPMM(f64_i32_2, double, i32, 2)
SPMM(f64_i64_1, double, i64, 1)
SPMM(f64_i64_2, double, i64, 2)
SPMM_FIX(f32_1, float, 1)
SPMM_FIX(f32_2, float, 2)
SPMM_FIX(f32_4, float, 4)
SPMM_FIX(f64_1, double, 1)
SPMM_FIX(f64_2, double, 2)
