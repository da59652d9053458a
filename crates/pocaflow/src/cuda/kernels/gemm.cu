// Small matrix products (see `Kernels::small_matmul`). Each 16x16 block computes a 32x32 tile
// of C, two by two per thread, through 32x32 tiles of A and B in shared memory; every element
// is a sequential fused multiply-add over k in the operands' own precision. Any strides; batch
// index blockIdx.z.
struct Gemm { i64 m, n, k; i64 a_rs, a_cs, b_rs, b_cs, c_rs, c_cs; i64 a_bs, b_bs, c_bs; };

template <typename T>
__device__ void small_gemm(const T* a, const T* b, T* c, Gemm g) {
    __shared__ T as[32][33];
    __shared__ T bs[32][33];
    const int tx = threadIdx.x, ty = threadIdx.y, t = ty * 16 + tx;
    const i64 row0 = (i64)blockIdx.y * 32, col0 = (i64)blockIdx.x * 32;
    a += blockIdx.z * g.a_bs;
    b += blockIdx.z * g.b_bs;
    c += blockIdx.z * g.c_bs;
    T acc00 = 0, acc01 = 0, acc10 = 0, acc11 = 0;
    for (i64 p0 = 0; p0 < g.k; p0 += 32) {
        for (int e = t; e < 32 * 32; e += 256) {
            const int r = e / 32, q = e % 32;
            const i64 i = row0 + r, p = p0 + q;
            as[r][q] = (i < g.m && p < g.k) ? a[i * g.a_rs + p * g.a_cs] : (T)0;
            const i64 pb = p0 + r, j = col0 + q;
            bs[r][q] = (pb < g.k && j < g.n) ? b[pb * g.b_rs + j * g.b_cs] : (T)0;
        }
        __syncthreads();
        #pragma unroll 8
        for (int q = 0; q < 32; ++q) {
            const T a0 = as[ty][q], a1 = as[ty + 16][q], b0 = bs[q][tx], b1 = bs[q][tx + 16];
            acc00 = fma(a0, b0, acc00);
            acc01 = fma(a0, b1, acc01);
            acc10 = fma(a1, b0, acc10);
            acc11 = fma(a1, b1, acc11);
        }
        __syncthreads();
    }
    const i64 i0 = row0 + ty, i1 = i0 + 16, j0 = col0 + tx, j1 = j0 + 16;
    if (i0 < g.m && j0 < g.n) c[i0 * g.c_rs + j0 * g.c_cs] = acc00;
    if (i0 < g.m && j1 < g.n) c[i0 * g.c_rs + j1 * g.c_cs] = acc01;
    if (i1 < g.m && j0 < g.n) c[i1 * g.c_rs + j0 * g.c_cs] = acc10;
    if (i1 < g.m && j1 < g.n) c[i1 * g.c_rs + j1 * g.c_cs] = acc11;
}

extern "C" __global__ void __launch_bounds__(256) small_gemm_f32(const float* a, const float* b, float* c, Gemm g) { small_gemm(a, b, c, g); }
extern "C" __global__ void __launch_bounds__(256) small_gemm_f64(const double* a, const double* b, double* c, Gemm g) { small_gemm(a, b, c, g); }

// float32 rounded to the nearest TF32 value (10 stored mantissa bits, ties to even), for the
// tf32x3 products (`cuda/matmul.rs`). Infinities and NaN stay as they are; a finite value that
// would round past the largest TF32 value is truncated instead, so its high part stays finite.
__device__ __forceinline__ float tf32_round(float x) {
    const u32 u = __float_as_uint(x);
    if ((u & 0x7f800000u) == 0x7f800000u) return x;
    const u32 r = (u + 0xfffu + ((u >> 13) & 1u)) & 0xffffe000u;
    return (r & 0x7f800000u) == 0x7f800000u ? __uint_as_float(u & 0xffffe000u) : __uint_as_float(r);
}

// The three k-sections of a tf32x3 operand. Each warp splits runs of `len` elements (the
// source's unit-stride axis, `s_in` / `d_in` apart in source and destination): run r is row
// r % rows of matrix r / rows, whose offsets `batch` gives (rows `s_row` / `d_row` apart).
// x becomes hi = tf32(x) and lo = tf32(x - hi) (x - hi is exact), written at the destination
// and `section` and `2 section` past it: (hi, lo, hi) for A (`a_side`), (lo, hi, hi) for B,
// so that the product over 3k adds hi_A lo_B + lo_A hi_B before hi_A hi_B. Non-finite x:
// lo = 0. One division per run, none per element.
extern "C" __global__ void tf32_split(const float* src, float* dst, View<2> batch, i64 runs, i64 rows, i64 len,
                                      i64 s_row, i64 d_row, i64 s_in, i64 d_in, i64 section, int a_side) {
    const int lane = threadIdx.x & 31;
    const i64 warps = (i64)gridDim.x * (blockDim.x / 32);
    for (i64 r = (i64)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; r < runs; r += warps) {
        const i64 m = r / rows, i = r - m * rows;
        i64 o[2];
        offsets(batch, m, o);
        const float* s = src + o[0] + i * s_row;
        float* d = dst + o[1] + i * d_row;
        for (i64 j = lane; j < len; j += 32) {
            const float x = s[j * s_in];
            const float hi = tf32_round(x);
            const float lo = isfinite(x) ? tf32_round(x - hi) : 0.0f;
            float* p = d + j * d_in;
            p[0] = a_side ? hi : lo;
            p[section] = a_side ? lo : hi;
            p[2 * section] = hi;
        }
    }
}
