// The cross-entropy of rows of logits against int64 class indices, compiled (after common.cuh,
// convert.cuh and math.cuh) with -DELEM=<float storage type>. One warp per row, its lanes
// striding over the row: the row's maximum (NaN-propagating), the sum of exp(x - max), then
// the loss `log(sum) + max - x[target]` (cross_entropy_loss) or the row of
// `(softmax - onehot(target)) * scale` (cross_entropy_grad). A target outside [0, c) sets the
// error flag `err` = {1, target, 1, c} (the layout of the index kernels' flag) and its row is
// skipped.

typedef ELEM E;
typedef Num<E> N;
typedef N::C C;

__device__ __forceinline__ C warp_max(C v) {
    for (int o = 16; o > 0; o >>= 1) {
        const C w = __shfl_xor_sync(0xffffffffu, v, o);
        v = (w > v || w != w) ? w : v;
    }
    return v;
}

__device__ __forceinline__ C warp_sum(C v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// The row's maximum and sum of exp(x - max), in every lane.
__device__ __forceinline__ void row_stats(const E* x, i64 c, int lane, C& m, C& s) {
    m = -(C)__int_as_float(0x7f800000);
    for (i64 i = lane; i < c; i += 32) {
        const C v = N::up(x[i]);
        m = (v > m || v != v) ? v : m;
    }
    m = warp_max(m);
    s = (C)0;
    for (i64 i = lane; i < c; i += 32) s += m_exp(N::up(x[i]) - m);
    s = warp_sum(s);
}

// Whether row `r`'s target is a class; flags the first bad one.
__device__ __forceinline__ bool valid_target(i64 t, i64 c, int lane, u64* err) {
    if (t >= 0 && t < c) return true;
    if (lane == 0 && atomicCAS((unsigned long long*)err, 0ull, 1ull) == 0ull) {
        err[1] = (u64)t;
        err[2] = 1;
        err[3] = (u64)c;
    }
    return false;
}

extern "C" __global__ void cross_entropy_loss(E* dst, const E* logits, const i64* target, i64 rows,
                                              i64 c, u64* err) {
    const int lane = threadIdx.x & 31;
    const i64 warps = (i64)gridDim.x * (blockDim.x / 32);
    for (i64 r = ((i64)blockIdx.x * blockDim.x + threadIdx.x) / 32; r < rows; r += warps) {
        const i64 t = target[r];
        if (!valid_target(t, c, lane, err)) continue;
        const E* x = logits + r * c;
        C m, s;
        row_stats(x, c, lane, m, s);
        if (lane == 0) dst[r] = N::down(m_log(s) + m - N::up(x[t]));
    }
}

extern "C" __global__ void cross_entropy_grad(E* dst, const E* logits, const i64* target, i64 rows,
                                              i64 c, C scale, u64* err) {
    const int lane = threadIdx.x & 31;
    const i64 warps = (i64)gridDim.x * (blockDim.x / 32);
    for (i64 r = ((i64)blockIdx.x * blockDim.x + threadIdx.x) / 32; r < rows; r += warps) {
        const i64 t = target[r];
        if (!valid_target(t, c, lane, err)) continue;
        const E* x = logits + r * c;
        C m, s;
        row_stats(x, c, lane, m, s);
        const C inv = (C)1 / s;
        for (i64 i = lane; i < c; i += 32) {
            C p = m_exp(N::up(x[i]) - m) * inv;
            if (i == t) p -= (C)1;
            dst[r * c + i] = N::down(p * scale);
        }
    }
}
