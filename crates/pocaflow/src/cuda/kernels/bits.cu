// Kernels that move elements without looking at their values, one instance per element size
// (u8, u16, u32, u64): strided copies, transposes, fills, triangles, gathers, scatters, masked copies; and
// the scan of nonzero's block counts.

// dst[view 0] = src[view 1].
template <typename U>
__device__ void copy_k(const U* src, U* dst, i64 n, const View<2>& v) {
    FOR_EACH(i, n) {
        i64 o[2];
        offsets(v, i, o);
        dst[o[0]] = src[o[1]];
    }
}

// dst[view] = x.
template <typename U>
__device__ void fill_k(U* dst, i64 n, const View<1>& v, U x) {
    FOR_EACH(i, n) {
        i64 o[1];
        offsets(v, i, o);
        dst[o[0]] = x;
    }
}

// n dense elements = x, with 16-byte stores between the first and the last 16-byte boundary.
template <typename U>
__device__ void fill_dense_k(U* dst, i64 n, U x) {
    const int per = 16 / sizeof(U);
    const u64 addr = (u64)dst;
    i64 head = (i64)(((16 - (addr & 15)) & 15) / sizeof(U));
    if (head > n) head = n;
    const i64 nvec = (n - head) / per;
    union { U e[16 / sizeof(U)]; uint4 w; } pack;
    #pragma unroll
    for (int j = 0; j < per; ++j) pack.e[j] = x;
    uint4* vec = (uint4*)(dst + head);
    FOR_EACH(i, nvec) vec[i] = pack.w;
    const i64 rest = n - nvec * per;  // the head and the tail
    FOR_EACH(i, rest) {
        const i64 e = i < head ? i : head + nvec * per + (i - head);
        dst[e] = x;
    }
}

// Zeros the elements (.., r, c) of the view with c - r < k (upper) or c - r > k (lower).
template <typename U>
__device__ void tri_zero_k(U* dst, i64 n, const View<1>& v, i64 k, int upper) {
    FOR_EACH(i, n) {
        i64 r = i, off = 0, row = 0, col = 0;
        #pragma unroll
        for (int d = MAXD - 1; d >= 0; --d) {
            if (d < v.nd) {  // constant positions only (see `offsets`)
                const i64 c = d > 0 ? r % v.shape[d] : r;
                if (d > 0) r /= v.shape[d];
                off += c * v.strides[0][d];
                if (d == v.nd - 1) col = c;
                if (d == v.nd - 2) row = c;
            }
        }
        const i64 diag = col - row;
        if ((upper && diag < k) || (!upper && diag > k)) dst[off] = (U)0;
    }
}

// dst[view 0] = mask[view 1] ? src[view 2] : dst[view 0]. Every element is written (with its
// own value where the mask is false), so that memory sees whole sectors, not scattered
// partial writes; each thread loads four elements (a block's width apart, so every load is
// coalesced) before it stores any, to keep enough bytes in flight.
template <typename U>
__device__ void masked_k(U* dst, const u8* mask, const U* src, i64 n, const View<3>& v) {
    const i64 step = (i64)gridDim.x * blockDim.x * 4;
    for (i64 base = (i64)blockIdx.x * blockDim.x * 4 + threadIdx.x; base < n; base += step) {
        i64 o[4][3];
        u8 m[4];
        U d[4], s[4];
        #pragma unroll
        for (int j = 0; j < 4; ++j) {
            const i64 i = base + (i64)j * blockDim.x;
            if (i < n) {
                offsets(v, i, o[j]);
                m[j] = mask[o[j][1]];
                d[j] = dst[o[j][0]];
                s[j] = src[o[j][2]];
            }
        }
        #pragma unroll
        for (int j = 0; j < 4; ++j) {
            if (base + (i64)j * blockDim.x < n) dst[o[j][0]] = m[j] ? s[j] : d[j];
        }
    }
}

// masked_k for dense, 16-byte aligned destination and source (or a broadcast scalar source,
// src_step 0) and a dense mask aligned to 16 / sizeof(U): one 16-byte load and store of the
// destination (and of the source) per thread and step; `nvec` vectors of 16 / sizeof(U).
template <typename U>
__device__ void masked_dense_k(U* dst, const u8* mask, const U* src, i64 nvec, int src_step) {
    constexpr int K = 16 / sizeof(U);
    union Vec { uint4 w; U e[K]; };
    FOR_EACH(i, nvec) {
        Vec d, x;
        d.w = reinterpret_cast<const uint4*>(dst)[i];
        if (src_step) {
            x.w = reinterpret_cast<const uint4*>(src)[i];
        } else {
            const U one = src[0];
            #pragma unroll
            for (int k = 0; k < K; ++k) x.e[k] = one;
        }
        u8 m[K];
        memcpy(m, mask + i * K, K);
        #pragma unroll
        for (int k = 0; k < K; ++k) {
            if (m[k]) d.e[k] = x.e[k];
        }
        reinterpret_cast<uint4*>(dst)[i] = d.w;
    }
}

// Compactions run over the C-order elements of the mask's view (view 0) in blocks of 1024
// elements, four per thread: part j of block b holds elements b * 1024 + j * 256 + thread.
// `block_mask` loads a thread's four mask bytes (and their offsets in every view) and ranks its
// true ones among the block's (all of parts < j, then warps, then lanes before it).
#define COMPACT_BLOCK 1024
template <int N>
__device__ __forceinline__ u32 block_mask(const u8* mask, i64 n, const View<N>& v, i64 (&o)[4][N], bool (&m)[4], u32 (&local)[4]) {
    __shared__ u32 wc[4][8];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    #pragma unroll
    for (int j = 0; j < 4; ++j) {
        const i64 i = (i64)blockIdx.x * COMPACT_BLOCK + j * 256 + threadIdx.x;
        m[j] = false;
        if (i < n) {
            offsets(v, i, o[j]);
            m[j] = mask[o[j][0]] != 0;
        }
    }
    u32 ballot[4];
    #pragma unroll
    for (int j = 0; j < 4; ++j) {
        ballot[j] = __ballot_sync(0xffffffffu, m[j]);
        if (lane == 0) wc[j][warp] = __popc(ballot[j]);
    }
    __syncthreads();
    u32 before = 0;
    #pragma unroll
    for (int j = 0; j < 4; ++j) {
        u32 part = 0, warps_before = 0;
        #pragma unroll
        for (int w = 0; w < 8; ++w) {
            const u32 c = wc[j][w];
            part += c;
            if (w < warp) warps_before += c;
        }
        local[j] = before + warps_before + __popc(ballot[j] & ((1u << lane) - 1u));
        before += part;
    }
    return before;
}

// The first pass of a compaction: the number of true mask elements of each block (a sum: no
// ranks are needed yet).
extern "C" __global__ void __launch_bounds__(256) mask_count(const u8* mask, i64 n, View<1> v, u32* counts) {
    __shared__ u32 wc[8];
    u32 c = 0;
    #pragma unroll
    for (int j = 0; j < 4; ++j) {
        const i64 i = (i64)blockIdx.x * COMPACT_BLOCK + j * 256 + threadIdx.x;
        if (i < n) {
            i64 o[1];
            offsets(v, i, o);
            c += mask[o[0]] != 0;
        }
    }
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) c += __shfl_xor_sync(0xffffffffu, c, o);
    if ((threadIdx.x & 31) == 0) wc[threadIdx.x >> 5] = c;
    __syncthreads();
    if (threadIdx.x == 0) {
        u32 total = 0;
        #pragma unroll
        for (int w = 0; w < 8; ++w) total += wc[w];
        counts[blockIdx.x] = total;
    }
}

// The second pass, after the scan of the counts into `offs`: a select writes
// packed[rank] = data[view 1] for each true mask element, an expand (a masked scatter) writes
// data[view 1] = packed[rank * pstride].
template <typename U, bool EXPAND>
__device__ void compact_k(const u8* mask, U* data, U* packed, i64 n, const View<2>& v, const u64* offs, i64 pstride) {
    i64 o[4][2];
    bool m[4];
    u32 local[4];
    block_mask(mask, n, v, o, m, local);
    const u64 first = offs[blockIdx.x];
    if (EXPAND) {
        #pragma unroll
        for (int j = 0; j < 4; ++j) {
            if (m[j]) data[o[j][1]] = packed[(i64)(first + local[j]) * pstride];
        }
    } else {
        // Load all four selected elements before storing any (independent loads in flight).
        U val[4];
        #pragma unroll
        for (int j = 0; j < 4; ++j) {
            if (m[j]) val[j] = data[o[j][1]];
        }
        #pragma unroll
        for (int j = 0; j < 4; ++j) {
            if (m[j]) packed[first + local[j]] = val[j];
        }
    }
}

// A gather or scatter over the indexed shape (see `IndexArgs` in kernels.rs): per dimension,
// the stride of the plain side (the gather's destination, the scatter's values), the base's
// stride (0 on index dimensions) and each index array's stride (0 off them).
struct Index {
    i64 shape[MAXD];
    i64 out_strides[MAXD];
    i64 base_strides[MAXD];
    i64 idx_strides[MAXK][MAXD];
    const i64* idx[MAXK];
    i64 axis_stride[MAXK];
    i64 axis_len[MAXK];
    i64 axis_num[MAXK];
    int nd;
    int k;
};

// Records the first out-of-bounds index seen: err = {flag, value, axis, size}.
__device__ __forceinline__ void report(u64* err, i64 v, i64 axis, i64 len) {
    if (atomicCAS(err, 0ull, 1ull) == 0ull) {
        err[1] = (u64)v;
        err[2] = (u64)axis;
        err[3] = (u64)len;
    }
}

template <typename U, bool SCATTER>
__device__ void index_k(U* base, U* plain, i64 n, const Index& a, u64* err) {
    // One dense index array over one dimension into a dense plain side (`x[idx]`,
    // `x[idx] = v` for 1-D x): four elements a thread, their indices loaded before any of the
    // four random accesses, so that each thread has four of them in flight.
    if (a.nd == 1 && a.k == 1 && a.out_strides[0] == 1 && a.base_strides[0] == 0 && a.idx_strides[0][0] == 1) {
        const i64* ix = a.idx[0];
        const i64 len = a.axis_len[0], step = a.axis_stride[0];
        const i64 stride = (i64)gridDim.x * blockDim.x;
        for (i64 i0 = (i64)blockIdx.x * blockDim.x + threadIdx.x; i0 < n; i0 += 4 * stride) {
            i64 x[4];
            #pragma unroll
            for (int u = 0; u < 4; ++u) x[u] = i0 + u * stride < n ? ix[i0 + u * stride] : 0;
            #pragma unroll
            for (int u = 0; u < 4; ++u) {
                const i64 i = i0 + u * stride;
                i64 v = x[u];
                if (i >= n) continue;
                if (v < -len || v >= len) {
                    report(err, v, a.axis_num[0], len);
                    continue;
                }
                if (v < 0) v += len;
                if (SCATTER) base[v * step] = plain[i];
                else plain[i] = base[v * step];
            }
        }
        return;
    }
    FOR_EACH(i, n) {
        // Loops to the constant MAXD and MAXK (guarded), so that the parameter struct is only
        // read at constant positions (see `offsets`).
        i64 r = i, po = 0, bo = 0;
        i64 io[MAXK];
        #pragma unroll
        for (int j = 0; j < MAXK; ++j) io[j] = 0;
        #pragma unroll
        for (int d = MAXD - 1; d >= 0; --d) {
            if (d < a.nd) {
                const i64 c = d > 0 ? r % a.shape[d] : r;
                if (d > 0) r /= a.shape[d];
                po += c * a.out_strides[d];
                bo += c * a.base_strides[d];
                #pragma unroll
                for (int j = 0; j < MAXK; ++j) {
                    if (j < a.k) io[j] += c * a.idx_strides[j][d];
                }
            }
        }
        bool ok = true;
        #pragma unroll
        for (int j = 0; j < MAXK; ++j) {
            if (j < a.k && ok) {
                i64 x = a.idx[j][io[j]];
                const i64 len = a.axis_len[j];
                if (x < -len || x >= len) {
                    report(err, x, a.axis_num[j], len);
                    ok = false;
                } else {
                    if (x < 0) x += len;
                    bo += x * a.axis_stride[j];
                }
            }
        }
        if (ok) {
            if (SCATTER) base[bo] = plain[po];
            else plain[po] = base[bo];
        }
    }
}

// dst[c * ldd + r] = src[r * lds + c] for r < rows, c < cols: a transposing copy through
// 32 x 32 shared-memory tiles, so that both the reads and the writes are coalesced (the
// strided copy above coalesces only one side of a transpose). Blocks of 32 x 8 threads walk
// the tiles grid-stride in both directions.
template <typename U>
__device__ void transpose_k(const U* src, U* dst, i64 rows, i64 cols, i64 lds, i64 ldd) {
    __shared__ U tile[32][33];
    const i64 tiles_r = (rows + 31) / 32, tiles_c = (cols + 31) / 32;
    for (i64 tr = blockIdx.y; tr < tiles_r; tr += gridDim.y) {
        for (i64 tc = blockIdx.x; tc < tiles_c; tc += gridDim.x) {
            const i64 r0 = tr * 32, c0 = tc * 32;
            for (int k = threadIdx.y; k < 32; k += 8) {
                const i64 r = r0 + k, c = c0 + threadIdx.x;
                if (r < rows && c < cols) tile[k][threadIdx.x] = src[r * lds + c];
            }
            __syncthreads();
            for (int k = threadIdx.y; k < 32; k += 8) {
                const i64 c = c0 + k, r = r0 + threadIdx.x;
                if (r < rows && c < cols) dst[c * ldd + r] = tile[threadIdx.x][k];
            }
            __syncthreads();
        }
    }
}

#define BITS(N, U) \
extern "C" __global__ void __launch_bounds__(256) transpose_##N(const U* src, U* dst, i64 rows, i64 cols, i64 lds, i64 ldd) { transpose_k(src, dst, rows, cols, lds, ldd); } \
extern "C" __global__ void copy_##N(const U* src, U* dst, i64 n, View<2> v) { copy_k(src, dst, n, v); } \
extern "C" __global__ void fill_##N(U* dst, i64 n, View<1> v, U x) { fill_k(dst, n, v, x); } \
extern "C" __global__ void fill_dense_##N(U* dst, i64 n, U x) { fill_dense_k(dst, n, x); } \
extern "C" __global__ void tri_zero_##N(U* dst, i64 n, View<1> v, i64 k, int upper) { tri_zero_k(dst, n, v, k, upper); } \
extern "C" __global__ void masked_##N(U* dst, const u8* mask, const U* src, i64 n, View<3> v) { masked_k(dst, mask, src, n, v); } \
extern "C" __global__ void masked_dense_##N(U* dst, const u8* mask, const U* src, i64 nvec, int src_step) { masked_dense_k(dst, mask, src, nvec, src_step); } \
extern "C" __global__ void gather_##N(const U* src, U* dst, i64 n, Index a, u64* err) { index_k<U, false>((U*)src, dst, n, a, err); } \
extern "C" __global__ void scatter_##N(U* dst, const U* values, i64 n, Index a, u64* err) { index_k<U, true>(dst, (U*)values, n, a, err); } \
extern "C" __global__ void __launch_bounds__(256) compress_##N(const u8* mask, const U* src, U* out, i64 n, View<2> v, const u64* offs, i64 ps) { compact_k<U, false>(mask, (U*)src, out, n, v, offs, ps); } \
extern "C" __global__ void __launch_bounds__(256) expand_##N(const u8* mask, U* dst, const U* values, i64 n, View<2> v, const u64* offs, i64 ps) { compact_k<U, true>(mask, dst, (U*)values, n, v, offs, ps); }

BITS(1, u8)
BITS(2, u16)
BITS(4, u32)
BITS(8, u64)

// Exclusive prefix sums of per-block counts in one block of 1024 threads:
// offsets[i] = counts[0] + ... + counts[i - 1], offsets[nb] = the total. Each warp owns a
// contiguous segment and walks it 32 counts at a time (coalesced loads and stores, a warp scan
// by shuffles per step): a first walk sums the segment, the block scans the 32 segment sums,
// and a second walk writes the prefixes from the segment's start.
extern "C" __global__ void __launch_bounds__(1024) scan_counts(const u32* counts, u64* offsets, i64 nb) {
    __shared__ u64 seg_sums[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const i64 seg = ((nb + 31) / 32 + 31) / 32 * 32;
    const i64 lo = (i64)warp * seg, hi = lo + seg < nb ? lo + seg : nb;
    u64 sum = 0;
    for (i64 i = lo + lane; i < hi; i += 32) sum += counts[i];
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    if (lane == 0) seg_sums[warp] = sum;
    __syncthreads();
    if (warp == 0) {
        const u64 v = seg_sums[lane];
        u64 x = v;
        #pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            const u64 y = __shfl_up_sync(0xffffffffu, x, o);
            if (lane >= o) x += y;
        }
        seg_sums[lane] = x - v;  // exclusive
        if (lane == 31) offsets[nb] = x;
    }
    __syncthreads();
    u64 carry = seg_sums[warp];
    for (i64 start = lo; start < hi; start += 32) {
        const i64 i = start + lane;
        const u64 v = i < hi ? counts[i] : 0;
        u64 x = v;
        #pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            const u64 y = __shfl_up_sync(0xffffffffu, x, o);
            if (lane >= o) x += y;
        }
        if (i < hi) offsets[i] = carry + x - v;
        carry += __shfl_sync(0xffffffffu, x, 31);
    }
}
