// The element types by value and the conversions of `Element` (dtype.rs), bit for bit: floats
// to integers truncate and saturate (NaN to 0), integers wrap, anything to bool is != 0,
// f64 to f16/bf16 rounds once (round to odd through f32), NaN payloads move as on x86-64 and
// in the `half` crate (quieted, high bits kept).
struct Bool { u8 v; };
struct F16 { u16 v; };
struct BF16 { u16 v; };

enum { KIND_BOOL = 0, KIND_SIGNED = 1, KIND_UNSIGNED = 2, KIND_FLOAT = 3 };

__device__ __forceinline__ u64 dbits(double x) { return (u64)__double_as_longlong(x); }
__device__ __forceinline__ double bits_d(u64 b) { return __longlong_as_double((long long)b); }

// Rust's `f as i64` and `f as u64`: truncate, saturate, NaN to 0.
__device__ __forceinline__ i64 f2i64(double v) {
    if (v != v) return 0;
    if (v >= 9223372036854775808.0) return 0x7fffffffffffffffll;
    if (v <= -9223372036854775808.0) return (i64)0x8000000000000000ull;
    return (i64)v;
}
__device__ __forceinline__ u64 f2u64(double v) {
    if (v != v || v <= 0.0) return 0;
    if (v >= 18446744073709551616.0) return 0xffffffffffffffffull;
    return (u64)v;
}

// f32 <-> f64 as x86-64 converts (cvtss2sd, cvtsd2ss): NaNs quieted, payload shifted.
__device__ __forceinline__ double f2d(float f) {
    if (f != f) {
        const u64 b = __float_as_uint(f);
        return bits_d(((b & 0x80000000ull) << 32) | 0x7ff8000000000000ull | ((b & 0x7fffffull) << 29));
    }
    return (double)f;
}
__device__ __forceinline__ float d2f(double v) {
    if (v != v) {
        const u64 b = dbits(v);
        return __uint_as_float((u32)((b >> 32) & 0x80000000u) | 0x7fc00000u | (u32)((b >> 29) & 0x7fffffu));
    }
    return __double2float_rn(v);
}

// `v` as an f32 rounded to odd (dtype.rs: f32_round_to_odd).
__device__ __forceinline__ float round_to_odd(double v) {
    const float nearest = d2f(v);
    if ((double)nearest == v || v != v) return nearest;
    u32 b = __float_as_uint(nearest);
    if (fabs((double)nearest) > fabs(v)) b -= 1;
    return __uint_as_float(b | 1u);
}

// f32 -> f16 and bf16, round to nearest even (the `half` crate, NaNs included).
__device__ __forceinline__ u16 f2h(float f) {
    const u32 x = __float_as_uint(f);
    if ((x & 0x7f800000u) == 0x7f800000u) {
        const u32 man = x & 0x7fffffu;
        return (u16)(((x & 0x80000000u) >> 16) | 0x7c00u | (man ? 0x200u : 0u) | (man >> 13));
    }
    u16 h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}
__device__ __forceinline__ u16 f2b(float f) {
    const u32 x = __float_as_uint(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (u16)((x >> 16) | 0x40u);
    const u32 round = 0x8000u;
    return (u16)((x >> 16) + (((x & round) != 0 && (x & (3 * round - 1)) != 0) ? 1 : 0));
}

// f16 and bf16 -> f64, exactly (NaNs quieted as the `half` crate does).
__device__ __forceinline__ double h2d(u16 h) {
    if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu)) {
        return bits_d(((u64)(h & 0x8000u) << 48) | 0x7ff8000000000000ull | ((u64)(h & 0x3ffu) << 42));
    }
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return (double)f;
}
__device__ __forceinline__ double b2d(u16 b) {
    if ((b & 0x7fffu) > 0x7f80u) {
        return bits_d(((u64)(b & 0x8000u) << 48) | 0x7ff8000000000000ull | ((u64)(b & 0x7fu) << 45));
    }
    return (double)__uint_as_float((u32)b << 16);
}

template <typename T> struct Tr;

template <> struct Tr<Bool> {
    static const int kind = KIND_BOOL;
    static __device__ __forceinline__ double to_f64(Bool x) { return x.v ? 1.0 : 0.0; }
    static __device__ __forceinline__ i64 to_i64(Bool x) { return x.v ? 1 : 0; }
    static __device__ __forceinline__ u64 to_u64(Bool x) { return x.v ? 1 : 0; }
    static __device__ __forceinline__ Bool from_f64(double v) { Bool b; b.v = v != 0.0; return b; }
    static __device__ __forceinline__ Bool from_i64(i64 v) { Bool b; b.v = v != 0; return b; }
    static __device__ __forceinline__ Bool from_u64(u64 v) { Bool b; b.v = v != 0; return b; }
    static __device__ __forceinline__ bool nonzero(Bool x) { return x.v != 0; }
};

#define INT_TR(T, K) \
template <> struct Tr<T> { \
    static const int kind = K; \
    static __device__ __forceinline__ double to_f64(T x) { return (double)x; } \
    static __device__ __forceinline__ i64 to_i64(T x) { return (i64)x; } \
    static __device__ __forceinline__ u64 to_u64(T x) { return (u64)x; } \
    static __device__ __forceinline__ T from_f64(double v) { \
        return v >= 9.223372036854775807e18 ? (T)f2u64(v) : (T)f2i64(v); \
    } \
    static __device__ __forceinline__ T from_i64(i64 v) { return (T)v; } \
    static __device__ __forceinline__ T from_u64(u64 v) { return (T)v; } \
    static __device__ __forceinline__ bool nonzero(T x) { return x != 0; } \
};
INT_TR(i8, KIND_SIGNED)
INT_TR(i16, KIND_SIGNED)
INT_TR(i32, KIND_SIGNED)
INT_TR(i64, KIND_SIGNED)
INT_TR(u8, KIND_UNSIGNED)
INT_TR(u16, KIND_UNSIGNED)
INT_TR(u32, KIND_UNSIGNED)
INT_TR(u64, KIND_UNSIGNED)

#define FLOAT_TR(T, WIDE, NARROW) \
template <> struct Tr<T> { \
    static const int kind = KIND_FLOAT; \
    static __device__ __forceinline__ double to_f64(T x) { return WIDE; } \
    static __device__ __forceinline__ i64 to_i64(T x) { return f2i64(to_f64(x)); } \
    static __device__ __forceinline__ u64 to_u64(T x) { return f2u64(to_f64(x)); } \
    static __device__ __forceinline__ T from_f64(double v) { return NARROW; } \
    static __device__ __forceinline__ T from_i64(i64 v) { return from_f64((double)v); } \
    static __device__ __forceinline__ T from_u64(u64 v) { return from_f64((double)v); } \
    static __device__ __forceinline__ bool nonzero(T x) { return to_f64(x) != 0.0; } \
};
__device__ __forceinline__ F16 mk_f16(u16 v) { F16 h; h.v = v; return h; }
__device__ __forceinline__ BF16 mk_bf16(u16 v) { BF16 h; h.v = v; return h; }
FLOAT_TR(float, f2d(x), d2f(v))
FLOAT_TR(double, x, v)
FLOAT_TR(F16, h2d(x.v), mk_f16(f2h(round_to_odd(v))))
FLOAT_TR(BF16, b2d(x.v), mk_bf16(f2b(round_to_odd(v))))

// `Element::cast`.
template <typename S, typename D>
__device__ __forceinline__ D cast(S s) {
    if (Tr<D>::kind == KIND_BOOL) return Tr<D>::from_u64(Tr<S>::nonzero(s) ? 1 : 0);
    if (Tr<D>::kind == KIND_FLOAT) {
        if (Tr<S>::kind == KIND_FLOAT || Tr<S>::kind == KIND_BOOL) return Tr<D>::from_f64(Tr<S>::to_f64(s));
        if (Tr<S>::kind == KIND_UNSIGNED) return Tr<D>::from_f64((double)Tr<S>::to_u64(s));
        return Tr<D>::from_f64((double)Tr<S>::to_i64(s));
    }
    if (Tr<D>::kind == KIND_SIGNED) return Tr<D>::from_i64(Tr<S>::to_i64(s));
    if (Tr<S>::kind == KIND_FLOAT) {
        // Negative floats go through i64 (-1.0 wraps to all ones).
        return Tr<S>::to_f64(s) < 0.0 ? Tr<D>::from_i64(Tr<S>::to_i64(s)) : Tr<D>::from_u64(Tr<S>::to_u64(s));
    }
    return Tr<D>::from_u64(Tr<S>::to_u64(s));
}
