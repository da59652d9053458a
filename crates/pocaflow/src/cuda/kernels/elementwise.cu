// The elementwise kernels of one op and one compute type, compiled (after common.cuh,
// convert.cuh and math.cuh) with -DOP=<U_ or B_ name> -DELEM=<storage type> -DOUT=<T or Bool>
// -DARITY=<1 or 2> --fmad=false. Three paths:
// - dense: the destination and every array operand dense in one order, 16-byte aligned: each
//   thread loads UNROLL 16-byte packs of each operand before it stores any (n % P elements
//   done one by one at the end);
// - rows (binary only): a C-order (R, C) destination, each array operand either of that layout
//   (row stride C) or one row broadcast (row stride 0), C a multiple of the pack: threads run
//   along a row in 16-byte packs, a broadcast row's pack is loaded once into registers and
//   reused for the ROWS rows each thread writes;
// - strided: any views (merged on the host; see binary_strided).
// Scalar operands arrive as the bits of one T (converted on the host) and never touch memory;
// kernel suffix i = a_is_scalar + 2 * b_is_scalar.

typedef ELEM E;

#define ROWS 4
#define P (16 / (int)sizeof(E))
// Packs in flight per thread: 16 elements (at least one pack, at most four).
#define UNROLL (P >= 16 ? 1 : (P >= 8 ? 2 : 4))
#define OUT_P_BYTES (P * (int)sizeof(OUT))

// An unsigned word of 2, 4, 8 or 16 bytes.
template <int BYTES> struct Vec;
template <> struct Vec<2> { typedef u16 W; };
template <> struct Vec<4> { typedef u32 W; };
template <> struct Vec<8> { typedef uint2 W; };
template <> struct Vec<16> { typedef uint4 W; };

// P outputs to an address aligned to their size.
__device__ __forceinline__ void store_pack(OUT* p, const OUT (&v)[P]) {
    typedef typename Vec<OUT_P_BYTES>::W W;
    W w;
    memcpy(&w, v, sizeof(W));
    *reinterpret_cast<W*>(p) = w;
}

__device__ __forceinline__ E from_bits(u64 bits) {
    E x;
    memcpy(&x, &bits, sizeof(E));
    return x;
}

#if ARITY == 1

__device__ __forceinline__ OUT apply(E x) { return unary_op<OP, E, OUT>(x); }

// dst[i] = op(src[i]) for n dense elements, both 16-byte aligned.
extern "C" __global__ void __launch_bounds__(256) unary_dense(OUT* dst, const E* src, i64 n) {
    const i64 npk = n / P;
    const i64 step = (i64)gridDim.x * blockDim.x * UNROLL;
    for (i64 base = (i64)blockIdx.x * blockDim.x * UNROLL + threadIdx.x; base < npk; base += step) {
        E v[UNROLL][P];
        #pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
            const i64 i = base + (i64)u * blockDim.x;
            if (i < npk) load16(src + i * P, v[u]);
        }
        #pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
            const i64 i = base + (i64)u * blockDim.x;
            if (i < npk) {
                OUT r[P];
                #pragma unroll
                for (int k = 0; k < P; ++k) r[k] = apply(v[u][k]);
                store_pack(dst + i * P, r);
            }
        }
    }
    const i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (t < n - npk * P) dst[npk * P + t] = apply(src[npk * P + t]);
}

// dst[view 0] = op(src[view 1]), as binary_strided.
extern "C" __global__ void __launch_bounds__(256) unary_strided(OUT* dst, const E* src, i64 n, View<2> v) {
    if (v.nd <= 1) {
        const i64 sd = v.strides[0][0], ss = v.strides[1][0];
        const i64 step = (i64)gridDim.x * blockDim.x * 4;
        for (i64 base = (i64)blockIdx.x * blockDim.x * 4 + threadIdx.x; base < n; base += step) {
            E x[4];
            #pragma unroll
            for (int j = 0; j < 4; ++j) {
                const i64 i = base + (i64)j * blockDim.x;
                if (i < n) x[j] = src[i * ss];
            }
            #pragma unroll
            for (int j = 0; j < 4; ++j) {
                const i64 i = base + (i64)j * blockDim.x;
                if (i < n) dst[i * sd] = apply(x[j]);
            }
        }
        return;
    }
    #pragma unroll 1
    FOR_EACH(i, n) {
        i64 o[2];
        offsets(v, i, o);
        dst[o[0]] = apply(src[o[1]]);
    }
}

#else

__device__ __forceinline__ OUT apply(E a, E b) { return binary_op<OP, E, OUT>(a, b); }

// dst[i] = op(a[i], b[i]) for n dense elements, array pointers 16-byte aligned. A scalar
// operand (sa or sb set) is its bits, its pointer unused: its packs are filled once.
extern "C" __global__ void __launch_bounds__(256) binary_dense(OUT* dst, const E* a, const E* b, int sa, int sb, u64 abits, u64 bbits, i64 n) {
    const E ca = from_bits(abits), cb = from_bits(bbits);
    E va[UNROLL][P], vb[UNROLL][P];
    #pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
        #pragma unroll
        for (int k = 0; k < P; ++k) {
            va[u][k] = ca;
            vb[u][k] = cb;
        }
    }
    const i64 npk = n / P;
    const i64 step = (i64)gridDim.x * blockDim.x * UNROLL;
    for (i64 base = (i64)blockIdx.x * blockDim.x * UNROLL + threadIdx.x; base < npk; base += step) {
        #pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
            const i64 i = base + (i64)u * blockDim.x;
            if (i < npk) {
                if (!sa) load16(a + i * P, va[u]);
                if (!sb) load16(b + i * P, vb[u]);
            }
        }
        #pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
            const i64 i = base + (i64)u * blockDim.x;
            if (i < npk) {
                OUT r[P];
                #pragma unroll
                for (int k = 0; k < P; ++k) r[k] = apply(va[u][k], vb[u][k]);
                store_pack(dst + i * P, r);
            }
        }
    }
    const i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (t < n - npk * P) {
        const i64 i = npk * P + t;
        dst[i] = apply(sa ? ca : a[i], sb ? cb : b[i]);
    }
}

// The C-order (R, cp * P) destination from operands with row strides ars and brs (cp * P, 0
// for a broadcast row, or a scalar's flag set), all 16-byte aligned. Block (bx, by): x over the
// packs of a row, y over groups of ROWS rows.
extern "C" __global__ void __launch_bounds__(256) binary_rows(OUT* dst, const E* a, const E* b, int sa, int sb, u64 abits, u64 bbits, i64 ars, i64 brs, i64 R, i64 cp) {
    const i64 c = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cp) return;
    const i64 width = cp * P;
    const E ca = from_bits(abits), cb = from_bits(bbits);
    // Scalars and broadcast rows: loaded once, kept in registers for every row.
    E va[ROWS][P], vb[ROWS][P];
    E ra[P], rb[P];
    #pragma unroll
    for (int k = 0; k < P; ++k) {
        ra[k] = ca;
        rb[k] = cb;
    }
    if (!sa && ars == 0) load16(a + c * P, ra);
    if (!sb && brs == 0) load16(b + c * P, rb);
    const bool fa = !sa && ars != 0, fb = !sb && brs != 0;
    #pragma unroll
    for (int u = 0; u < ROWS; ++u) {
        memcpy(va[u], ra, sizeof(ra));
        memcpy(vb[u], rb, sizeof(rb));
    }
    const i64 rstep = (i64)gridDim.y * blockDim.y * ROWS;
    for (i64 r0 = ((i64)blockIdx.y * blockDim.y + threadIdx.y) * ROWS; r0 < R; r0 += rstep) {
        #pragma unroll
        for (int u = 0; u < ROWS; ++u) {
            const i64 r = r0 + u;
            if (r < R) {
                if (fa) load16(a + r * ars + c * P, va[u]);
                if (fb) load16(b + r * brs + c * P, vb[u]);
            }
        }
        #pragma unroll
        for (int u = 0; u < ROWS; ++u) {
            const i64 r = r0 + u;
            if (r < R) {
                OUT o[P];
                #pragma unroll
                for (int k = 0; k < P; ++k) o[k] = apply(va[u][k], vb[u][k]);
                store_pack(dst + r * width + c * P, o);
            }
        }
    }
}

// dst[view 0] = op(a[view 1], b[view 2]) (a scalar's view strides are ignored). One merged
// dimension: four elements per thread, a block's width apart, loaded before any is stored;
// more: one element at a time (the loop over dimensions is instantiated once).
extern "C" __global__ void __launch_bounds__(256) binary_strided(OUT* dst, const E* a, const E* b, int sa, int sb, u64 abits, u64 bbits, i64 n, View<3> v) {
    const E ca = from_bits(abits), cb = from_bits(bbits);
    if (v.nd <= 1) {
        const i64 sd = v.strides[0][0], s1 = v.strides[1][0], s2 = v.strides[2][0];
        const i64 step = (i64)gridDim.x * blockDim.x * 4;
        for (i64 base = (i64)blockIdx.x * blockDim.x * 4 + threadIdx.x; base < n; base += step) {
            E xa[4], xb[4];
            #pragma unroll
            for (int j = 0; j < 4; ++j) {
                const i64 i = base + (i64)j * blockDim.x;
                xa[j] = ca;
                xb[j] = cb;
                if (i < n) {
                    if (!sa) xa[j] = a[i * s1];
                    if (!sb) xb[j] = b[i * s2];
                }
            }
            #pragma unroll
            for (int j = 0; j < 4; ++j) {
                const i64 i = base + (i64)j * blockDim.x;
                if (i < n) dst[i * sd] = apply(xa[j], xb[j]);
            }
        }
        return;
    }
    #pragma unroll 1
    FOR_EACH(i, n) {
        i64 o[3];
        offsets(v, i, o);
        dst[o[0]] = apply(sa ? ca : a[o[1]], sb ? cb : b[o[2]]);
    }
}

#endif
