// The kernels that look at the values of one dtype, compiled with -DELEM=<type> --fmad=false (so
// f64 arithmetic rounds as on the CPU): arange, nonzero's count and write passes, random.

// dst[view] in C order: element i = start + i * step (f64 for floats, wrapping i64 otherwise).
extern "C" __global__ void arange(ELEM* dst, i64 n, View<1> v, double fstart, double fstep, i64 istart, i64 istep) {
    FOR_EACH(i, n) {
        i64 o[1];
        offsets(v, i, o);
        if (Tr<ELEM>::kind == KIND_FLOAT) dst[o[0]] = Tr<ELEM>::from_f64(fstart + (double)i * fstep);
        else dst[o[0]] = Tr<ELEM>::from_i64((i64)((u64)istart + (u64)i * (u64)istep));
    }
}

// nonzero: blocks of 256 threads, one element each in C order of the view (its own shape,
// unmerged). Pass 0 writes each block's count; pass 1 writes the coordinates of each nonzero
// element at its rank, offsets[block] being the scanned counts.
extern "C" __global__ void __launch_bounds__(256) nonzero(const ELEM* src, i64 n, View<1> v, u32* counts, const u64* offs, i64* out, int pass) {
    __shared__ u32 warp_counts[8];
    const i64 i = (i64)blockIdx.x * 256 + threadIdx.x;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    i64 coord[MAXD];
    bool nz = false;
    if (i < n) {
        i64 r = i, off = 0;
        #pragma unroll
        for (int d = MAXD - 1; d >= 0; --d) {
            if (d < v.nd) {  // constant positions only (see `offsets`)
                const i64 c = d > 0 ? r % v.shape[d] : r;
                if (d > 0) r /= v.shape[d];
                coord[d] = c;
                off += c * v.strides[0][d];
            }
        }
        nz = Tr<ELEM>::nonzero(src[off]);
    }
    const u32 ballot = __ballot_sync(0xffffffffu, nz);
    if (lane == 0) warp_counts[warp] = __popc(ballot);
    __syncthreads();
    if (pass == 0) {
        if (threadIdx.x == 0) {
            u32 total = 0;
            for (int w = 0; w < 8; ++w) total += warp_counts[w];
            counts[blockIdx.x] = total;
        }
        return;
    }
    if (nz) {
        u64 rank = offs[blockIdx.x] + __popc(ballot & ((1u << lane) - 1u));
        for (int w = 0; w < warp; ++w) rank += warp_counts[w];
        #pragma unroll
        for (int d = 0; d < MAXD; ++d) {
            if (d < v.nd) out[rank * v.nd + d] = coord[d];
        }
    }
}

// Philox4x32-10 (random.rs).
__device__ __forceinline__ void philox(u64 seed, u64 block, u32 (&c)[4]) {
    c[0] = (u32)block; c[1] = (u32)(block >> 32); c[2] = 0; c[3] = 0;
    u32 k0 = (u32)seed, k1 = (u32)(seed >> 32);
    #pragma unroll
    for (int round = 0; round < 10; ++round) {
        if (round > 0) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
        const u32 lo0 = 0xD2511F53u * c[0], hi0 = __umulhi(0xD2511F53u, c[0]);
        const u32 lo1 = 0xCD9E8D57u * c[2], hi1 = __umulhi(0xCD9E8D57u, c[2]);
        const u32 n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
        c[0] = n0; c[1] = lo1; c[2] = n2; c[3] = lo0;
    }
}

__device__ __forceinline__ u64 bits53(u32 hi, u32 lo) { return (((u64)hi << 32) | lo) >> 11; }

#define P53 (1.0 / 9007199254740992.0)
#define P24 (1.0 / 16777216.0)
#define TWO_PI 6.283185307179586

// The float32 Box-Muller of random.rs (`ln_f32`, `cos_sin_2pi_f32`, `normal_pair_f32`), the same
// operations in the same order, each rounded once: this module is compiled with --fmad=false,
// so only the explicit fmaf are fused (as `mul_add` on the CPU); division and square root are
// IEEE. So the bits equal the CPU's.
__device__ __forceinline__ float ln_f32(float x) {
    const float lg1 = __uint_as_float(0x3f2aaaaau), lg2 = __uint_as_float(0x3eccce13u);
    const float lg3 = __uint_as_float(0x3e91e9eeu), lg4 = __uint_as_float(0x3e789e26u);
    const float ln2_hi = __uint_as_float(0x3f317180u), ln2_lo = __uint_as_float(0x3717f7d1u);
    const u32 ix = __float_as_uint(x) + (0x3f800000u - 0x3f3504f3u);
    const int k = (int)(ix >> 23) - 127;
    const float m = __uint_as_float((ix & 0x007fffffu) + 0x3f3504f3u);
    const float f = m - 1.0f;
    const float s = f / (2.0f + f);
    const float z = s * s;
    const float w = z * z;
    const float t1 = w * fmaf(w, lg4, lg2);
    const float r = fmaf(z, fmaf(w, lg3, lg1), t1);
    const float hfsq = 0.5f * f * f;
    const float dk = (float)k;
    return fmaf(dk, ln2_hi, fmaf(s, hfsq + r, fmaf(dk, ln2_lo, -hfsq)) + f);
}

__device__ __forceinline__ void cos_sin_2pi_f32(float u, float& c, float& s) {
    const float q = floorf(u * 4.0f + 0.5f);
    const float t = u - q * 0.25f;
    const float x = t * 6.2831855f;
    const float x2 = x * x;
    const float ps = fmaf(x2, fmaf(x2, fmaf(x2, 1.0f / 362880.0f, -1.0f / 5040.0f), 1.0f / 120.0f), -1.0f / 6.0f);
    const float sn = fmaf(x * x2, ps, x);
    const float pc = fmaf(x2, fmaf(x2, fmaf(x2, fmaf(x2, -1.0f / 3628800.0f, 1.0f / 40320.0f), -1.0f / 720.0f), 1.0f / 24.0f), -0.5f);
    const float cs = fmaf(x2, pc, 1.0f);
    switch ((int)q & 3) {
        case 0: c = cs; s = sn; break;
        case 1: c = -sn; s = cs; break;
        case 2: c = -cs; s = -sn; break;
        default: c = sn; s = -cs; break;
    }
}

__device__ __forceinline__ void normal_pair_f32(u32 w1, u32 w2, float& z0, float& z1) {
    const float u1 = ((float)(w1 >> 9) + 0.5f) * (1.0f / 8388608.0f);
    const float u2 = (float)(w2 >> 8) * (1.0f / 16777216.0f);
    const float r = sqrtf(-2.0f * ln_f32(u1));
    float c, s;
    cos_sin_2pi_f32(u2, c, s);
    z0 = r * c;
    z1 = r * s;
}

__device__ __forceinline__ ELEM affine(double low, double high, double u) {
    const ELEM v = Tr<ELEM>::from_f64(low + (high - low) * u);
    return (Tr<ELEM>::to_f64(v) >= high && high > low) ? Tr<ELEM>::from_f64(low) : v;
}

// One thread per Philox block: dist 0 uniform(a, b), 1 normal(mean a, std b), 2 integers
// low + r, r uniform below span (0: all 64 bits). `wide`: two words per element. The loops run
// over constant bounds (guarded), so the four words stay in registers; a whole block of four
// 4-byte elements is written with one 16-byte store (the output starts 16-byte aligned).
extern "C" __global__ void random(ELEM* dst, i64 n, u64 seed, u64 counter, int dist, int wide, double a, double b, i64 low, u64 span) {
    const int per = wide ? 2 : 4;
    const i64 blocks = (n + per - 1) / per;
    FOR_EACH(blk, blocks) {
        u32 x[4];
        philox(seed, counter + (u64)blk, x);
        const i64 first = blk * per;
        ELEM out[4];
        if (dist == 0) {
            #pragma unroll
            for (int j = 0; j < 4; ++j) {
                const double u = wide ? (double)bits53(x[(2 * j) & 3], x[(2 * j + 1) & 3]) * P53
                                      : (double)(x[j] >> 8) * P24;
                out[j] = affine(a, b, u);
            }
        } else if (dist == 1) {
            // mean 0 and std 1 (the common case): a + b * z is z itself, exactly, so the
            // float64 arithmetic is skipped without changing a bit (a float32 z converts to
            // float32 exactly, and to float16/bfloat16 with the one rounding either way).
            const bool standard = a == 0.0 && b == 1.0;
            if (wide) {
                const double u1 = ((double)bits53(x[0], x[1]) + 0.5) * P53;
                const double u2 = (double)bits53(x[2], x[3]) * P53;
                const double r = sqrt(-2.0 * log(u1));
                const double theta = TWO_PI * u2;
                const double z0 = r * cos(theta), z1 = r * sin(theta);
                out[0] = Tr<ELEM>::from_f64(standard ? z0 : a + b * z0);
                out[1] = Tr<ELEM>::from_f64(standard ? z1 : a + b * z1);
                out[2] = out[0];
                out[3] = out[1];
            } else {
                float z[4];
                normal_pair_f32(x[0], x[1], z[0], z[1]);
                normal_pair_f32(x[2], x[3], z[2], z[3]);
                if (standard && Tr<ELEM>::kind == KIND_FLOAT && sizeof(ELEM) == 4) {
                    memcpy(out, z, 16);
                } else if (standard) {
                    #pragma unroll
                    for (int j = 0; j < 4; ++j) out[j] = Tr<ELEM>::from_f64((double)z[j]);
                } else {
                    #pragma unroll
                    for (int j = 0; j < 4; ++j) out[j] = Tr<ELEM>::from_f64(a + b * (double)z[j]);
                }
            }
        } else {
            #pragma unroll
            for (int j = 0; j < 4; ++j) {
                const u64 w = ((u64)x[(2 * j + 1) & 3] << 32) | x[(2 * j) & 3];
                const u64 r = span == 0 ? w : __umul64hi(w, span);
                out[j] = Tr<ELEM>::from_i64((i64)((u64)low + r));
            }
        }
        if constexpr (sizeof(ELEM) == 4) {
            if (per == 4 && first + 4 <= n) {
                uint4 v;
                memcpy(&v.x, &out[0], 4);
                memcpy(&v.y, &out[1], 4);
                memcpy(&v.z, &out[2], 4);
                memcpy(&v.w, &out[3], 4);
                *reinterpret_cast<uint4*>(dst + first) = v;
                continue;
            }
        }
        #pragma unroll
        for (int j = 0; j < 4; ++j) {
            if (j < per && first + j < n) dst[first + j] = out[j];
        }
    }
}

// The normals of the 32-bit kinds alone (dist 1 of `random` with one word per element): the
// same values, without the other distributions' code, which cost the general kernel about 6%
// of its throughput in instructions and registers.
extern "C" __global__ void random_normal(ELEM* dst, i64 n, u64 seed, u64 counter, double a, double b) {
    const i64 blocks = (n + 3) / 4;
    const bool standard = a == 0.0 && b == 1.0;
    FOR_EACH(blk, blocks) {
        u32 x[4];
        philox(seed, counter + (u64)blk, x);
        float z[4];
        normal_pair_f32(x[0], x[1], z[0], z[1]);
        normal_pair_f32(x[2], x[3], z[2], z[3]);
        ELEM out[4];
        if (standard && Tr<ELEM>::kind == KIND_FLOAT && sizeof(ELEM) == 4) {
            memcpy(out, z, 16);
        } else {
            #pragma unroll
            for (int j = 0; j < 4; ++j) out[j] = Tr<ELEM>::from_f64(standard ? (double)z[j] : a + b * (double)z[j]);
        }
        const i64 first = blk * 4;
        if constexpr (sizeof(ELEM) == 4) {
            if (first + 4 <= n) {
                uint4 v;
                memcpy(&v, out, 16);
                *reinterpret_cast<uint4*>(dst + first) = v;
                continue;
            }
        }
        #pragma unroll
        for (int j = 0; j < 4; ++j) {
            if (first + j < n) dst[first + j] = out[j];
        }
    }
}
