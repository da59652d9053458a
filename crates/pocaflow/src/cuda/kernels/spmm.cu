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

template <typename T, typename I, int V>
__device__ void spmm_k(const I* indptr, const I* indices, const T* data, const T* x, i64 ldx,
                       T* y, i64 ldy, i64 rows, i64 ncols, i64 nnz, i64 chunk, i64 chunks,
                       i64* cont, T* part) {
    const int lane = threadIdx.x & 31;
    const i64 tiles = (ncols + 32 * V - 1) / (32 * V);
    const i64 w = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (w >= chunks * tiles) return;
    const i64 c = w / tiles;
    const i64 col = (w % tiles) * 32 * V + (i64)lane * V;
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

// y = A x for one column (SpMV), balanced by nonzeros as above: a warp takes a chunk and walks
// it 32 entries at a time, one entry per lane. Each lane finds its entry's row by binary
// search over the chunk's rows, multiplies, and a segmented scan over the lanes (the rows are
// sorted, so equal rows are neighbours) leaves each row's sum over the group in its last lane;
// a row that runs on past the group is carried to the next one. A row's total then goes to
// y when the chunk owns the row (its first entry is in the chunk), else to `part[chunk]` (the
// row the chunk continues, at most one); `spmm_fix_*` with one column finishes those rows.
// Empty rows owned by the chunk get 0.
template <typename T, typename I>
__device__ void spmv_k(const I* indptr, const I* indices, const T* data, const T* x, T* y,
                       i64 rows, i64 nnz, i64 chunk, i64 chunks, i64* cont, T* part) {
    const int lane = threadIdx.x & 31;
    const i64 c = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (c >= chunks) return;
    const bool last = c == chunks - 1;
    const i64 lo = c * chunk, hi = last ? nnz : lo + chunk;
    // Owned rows [begin, end); the row before `begin` is continued when it reaches past lo.
    const i64 begin = warp_lower_bound(indptr, rows + 1, lo, lane);
    const i64 end = last ? rows : warp_lower_bound(indptr, rows + 1, hi, lane);
    const bool continues = begin > 0 && (i64)indptr[begin] > lo;
    const i64 first = continues ? begin - 1 : begin;
    if (lane == 0) cont[c] = continues ? begin - 1 : -1;
    for (i64 r = begin + lane; r < end; r += 32) {
        if (indptr[r] == indptr[r + 1]) y[r] = (T)0;
    }
    i64 carry_row = -1;
    T carry = (T)0;
    for (i64 base = lo; base < hi; base += 32) {
        const i64 e = base + lane;
        const bool in = e < hi;
        T v = (T)0;
        i64 row = -1 - lane;  // distinct from every row and every other lane
        if (in) {
            v = __ldcs(data + e) * __ldg(x + (i64)__ldcs(indices + e));
            // The last row in [first, end) starting at or before e.
            i64 a = first, b = end;  // indptr[a] <= e < indptr[b]
            while (b - a > 1) {
                const i64 mid = (a + b) >> 1;
                if ((i64)__ldg(indptr + mid) <= e) a = mid; else b = mid;
            }
            row = a;
        }
        #pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            const T up = __shfl_up_sync(0xffffffffu, v, o);
            const i64 up_row = __shfl_up_sync(0xffffffffu, row, o);
            if (lane >= o && up_row == row) v += up;
        }
        const i64 next_row = __shfl_down_sync(0xffffffffu, row, 1);
        if (row == carry_row) v += carry;
        const bool tail = in && (lane == 31 || next_row != row);
        // The group's last lane: its row goes on into the next group unless it ends here.
        const bool open = tail && lane == 31 && e + 1 < hi && (i64)__ldg(indptr + row + 1) > e + 1;
        if (tail && !open) {
            if (row < begin) part[c] = v; else y[row] = v;
        }
        const int src = (int)min((i64)31, hi - 1 - base);
        const T sv = __shfl_sync(0xffffffffu, v, src);
        const i64 srow = __shfl_sync(0xffffffffu, row, src);
        const bool sopen = __shfl_sync(0xffffffffu, (int)open, src) != 0;
        carry_row = sopen ? srow : -1;
        carry = sopen ? sv : (T)0;
    }
}

// Adds the continuing chunks' partial sums into Y: the first chunk of each run of chunks
// continuing one row sums the run, in order.
template <typename T, int V>
__device__ void spmm_fix_k(const i64* cont, const T* part, T* y, i64 ldy, i64 ncols,
                           i64 chunks) {
    const int lane = threadIdx.x & 31;
    const i64 tiles = (ncols + 32 * V - 1) / (32 * V);
    const i64 w = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (w >= chunks * tiles) return;
    const i64 c = w / tiles;
    const i64 col = (w % tiles) * 32 * V + (i64)lane * V;
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
#define SPMV(NAME, T, I) \
extern "C" __global__ void __launch_bounds__(256) spmv_##NAME(const I* indptr, const I* indices, const T* data, const T* x, T* y, i64 rows, i64 nnz, i64 chunk, i64 chunks, i64* cont, T* part) { spmv_k<T, I>(indptr, indices, data, x, y, rows, nnz, chunk, chunks, cont, part); }

SPMV(f32_i32, float, i32)
SPMV(f32_i64, float, i64)
SPMV(f64_i32, double, i32)
SPMV(f64_i64, double, i64)
SPMM_FIX(f32_1, float, 1)
SPMM_FIX(f32_2, float, 2)
SPMM_FIX(f32_4, float, 4)
SPMM_FIX(f64_1, double, 1)
SPMM_FIX(f64_2, double, 2)
