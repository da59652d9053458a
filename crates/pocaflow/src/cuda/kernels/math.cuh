// The arithmetic of one element, mirroring cpu/math.rs (the reference semantics): the compute
// type of each storage type (float16 and bfloat16 compute in float and round once), NumPy's
// divmod for floats, NaN-propagating maximum and minimum, wrapping integers, integer // and %
// by zero giving 0, shifts past the width giving 0 or -1, integer powers by squaring, nextafter
// in the storage type's own precision. Needs common.cuh and convert.cuh first.

template <bool B, typename X, typename Y> struct Sel { typedef X T; };
template <typename X, typename Y> struct Sel<false, X, Y> { typedef Y T; };

// A storage type's compute type C, the conversions up (exact) and down (round to nearest
// even), and its kind. Integers compute in themselves.
template <typename T> struct Num {
    typedef T C;
    static constexpr bool FLOAT = false, BOOL = false, SIGNED = (T)-1 < (T)0;
    static __device__ __forceinline__ C up(T x) { return x; }
    static __device__ __forceinline__ T down(C c) { return c; }
};
template <> struct Num<Bool> {
    typedef bool C;
    static constexpr bool FLOAT = false, BOOL = true, SIGNED = false;
    static __device__ __forceinline__ bool up(Bool x) { return x.v != 0; }
    static __device__ __forceinline__ Bool down(bool c) { Bool b; b.v = c; return b; }
};
template <> struct Num<float> {
    typedef float C;
    typedef u32 Bits;
    static constexpr bool FLOAT = true, BOOL = false, SIGNED = true;
    static __device__ __forceinline__ float up(float x) { return x; }
    static __device__ __forceinline__ float down(float c) { return c; }
    static __device__ __forceinline__ Bits bits(float x) { return __float_as_uint(x); }
    static __device__ __forceinline__ float from_bits(Bits b) { return __uint_as_float(b); }
};
template <> struct Num<double> {
    typedef double C;
    typedef u64 Bits;
    static constexpr bool FLOAT = true, BOOL = false, SIGNED = true;
    static __device__ __forceinline__ double up(double x) { return x; }
    static __device__ __forceinline__ double down(double c) { return c; }
    static __device__ __forceinline__ Bits bits(double x) { return dbits(x); }
    static __device__ __forceinline__ double from_bits(Bits b) { return bits_d(b); }
};
template <> struct Num<F16> {
    typedef float C;
    typedef u16 Bits;
    static constexpr bool FLOAT = true, BOOL = false, SIGNED = true;
    static __device__ __forceinline__ float up(F16 x) {
        float f;
        asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(x.v));
        return f;
    }
    static __device__ __forceinline__ F16 down(float c) { return mk_f16(f2h(c)); }
    static __device__ __forceinline__ Bits bits(F16 x) { return x.v; }
    static __device__ __forceinline__ F16 from_bits(Bits b) { return mk_f16(b); }
};
template <> struct Num<BF16> {
    typedef float C;
    typedef u16 Bits;
    static constexpr bool FLOAT = true, BOOL = false, SIGNED = true;
    static __device__ __forceinline__ float up(BF16 x) { return __uint_as_float((u32)x.v << 16); }
    static __device__ __forceinline__ BF16 down(float c) {
#if __CUDA_ARCH__ >= 800
        u16 b;
        asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(b) : "f"(c));
        return mk_bf16(b);
#else
        return mk_bf16(f2b(c));
#endif
    }
    static __device__ __forceinline__ Bits bits(BF16 x) { return x.v; }
    static __device__ __forceinline__ BF16 from_bits(Bits b) { return mk_bf16(b); }
};

// K elements (16 bytes) from a 16-byte aligned address.
template <typename X, int K> __device__ __forceinline__ void load16(const X* p, X (&v)[K]) {
    static_assert(K * sizeof(X) == 16, "a pack is 16 bytes");
    const uint4 w = *reinterpret_cast<const uint4*>(p);
    memcpy(v, &w, 16);
}

// The library functions in float and double (CUDA's libdevice, IEEE-rounded basic operations).
#define MATH1(name, f, d) \
    __device__ __forceinline__ float name(float x) { return f(x); } \
    __device__ __forceinline__ double name(double x) { return d(x); }
#define MATH2(name, f, d) \
    __device__ __forceinline__ float name(float x, float y) { return f(x, y); } \
    __device__ __forceinline__ double name(double x, double y) { return d(x, y); }
MATH1(m_fabs, fabsf, fabs)
MATH1(m_exp, expf, exp)
MATH1(m_expm1, expm1f, expm1)
MATH1(m_log, logf, log)
MATH1(m_log1p, log1pf, log1p)
MATH1(m_log2, log2f, log2)
MATH1(m_log10, log10f, log10)
MATH1(m_sqrt, sqrtf, sqrt)
MATH1(m_sin, sinf, sin)
MATH1(m_cos, cosf, cos)
MATH1(m_tan, tanf, tan)
MATH1(m_asin, asinf, asin)
MATH1(m_acos, acosf, acos)
MATH1(m_atan, atanf, atan)
MATH1(m_sinh, sinhf, sinh)
MATH1(m_cosh, coshf, cosh)
MATH1(m_tanh, tanhf, tanh)
MATH1(m_asinh, asinhf, asinh)
MATH1(m_acosh, acoshf, acosh)
MATH1(m_atanh, atanhf, atanh)
MATH1(m_ceil, ceilf, ceil)
MATH1(m_floor, floorf, floor)
MATH1(m_rint, rintf, rint)
MATH1(m_trunc, truncf, trunc)
MATH2(m_fmod, fmodf, fmod)
MATH2(m_pow, powf, pow)
MATH2(m_atan2, atan2f, atan2)
MATH2(m_hypot, hypotf, hypot)
MATH2(m_copysign, copysignf, copysign)

// The integer helpers: arithmetic wraps (done in an unsigned word of at least 32 bits, then
// truncated), a sign test that is false for unsigned types.
template <typename C> struct Word { typedef typename Sel<sizeof(C) == 8, u64, u32>::T T; };
template <typename C> __device__ __forceinline__ bool is_neg(C x) {
    if constexpr (Num<C>::SIGNED) return x < (C)0;
    else return false;
}
template <typename C> __device__ __forceinline__ C wadd(C a, C b) {
    typedef typename Word<C>::T W;
    return (C)((W)a + (W)b);
}
template <typename C> __device__ __forceinline__ C wsub(C a, C b) {
    typedef typename Word<C>::T W;
    return (C)((W)a - (W)b);
}
template <typename C> __device__ __forceinline__ C wmul(C a, C b) {
    typedef typename Word<C>::T W;
    return (C)((W)a * (W)b);
}
template <typename C> __device__ __forceinline__ C wneg(C a) { return wsub((C)0, a); }

// Python's // and % (0 for a zero divisor; by -1 the quotient wraps, the remainder is 0).
template <typename C> __device__ __forceinline__ C int_floor_div(C a, C b) {
    if (b == (C)0) return (C)0;
    if constexpr (Num<C>::SIGNED) {
        if (b == (C)-1) return wneg(a);
    }
    const C q = (C)(a / b);
    return ((C)(a % b) != (C)0 && is_neg(a) != is_neg(b)) ? (C)(q - (C)1) : q;
}
template <typename C> __device__ __forceinline__ C int_rem(C a, C b) {
    if (b == (C)0) return (C)0;
    if constexpr (Num<C>::SIGNED) {
        if (b == (C)-1) return (C)0;
    }
    const C r = (C)(a % b);
    return (r != (C)0 && is_neg(r) != is_neg(b)) ? wadd(r, b) : r;
}
template <typename C> __device__ __forceinline__ C int_shl(C a, C b) {
    typedef typename Word<C>::T W;
    if (is_neg(b) || (u64)b >= 8 * sizeof(C)) return (C)0;
    return (C)((W)a << (u32)b);
}
template <typename C> __device__ __forceinline__ C int_shr(C a, C b) {
    if (is_neg(b) || (u64)b >= 8 * sizeof(C)) return is_neg(a) ? (C)-1 : (C)0;
    return (C)(a >> (u32)b);
}
template <typename C> __device__ __forceinline__ C int_pow(C a, C b) {
    typedef typename Word<C>::T W;
    if (is_neg(b)) {
        if (a == (C)1) return (C)1;
        if constexpr (Num<C>::SIGNED) {
            if (a == (C)-1) return ((u64)b & 1) ? a : (C)1;
        }
        return (C)0;
    }
    W base = (W)a, acc = 1;
    for (u64 e = (u64)b; e > 0; e >>= 1) {
        if (e & 1) acc *= base;
        base *= base;
    }
    return (C)acc;
}

// NumPy's divmod for floats: the floor quotient and the remainder with the divisor's sign.
template <typename C> __device__ __forceinline__ void float_divmod(C a, C b, C& q, C& m) {
    m = m_fmod(a, b);
    if (b == (C)0) {
        q = a / b;
        return;
    }
    C div = (a - m) / b;
    if (m != (C)0) {
        if ((b < (C)0) != (m < (C)0)) {
            m = m + b;
            div = div - (C)1;
        }
    } else {
        m = m_copysign((C)0, b);
    }
    if (div != (C)0) {
        const C f = m_floor(div);
        q = div - f > (C)0.5 ? f + (C)1 : f;
    } else {
        q = m_copysign((C)0, a / b);
    }
}

// ln(e^a + e^b), NumPy's formulation.
template <typename C> __device__ __forceinline__ C logaddexp(C a, C b) {
    const C ln2 = (C)0.693147180559945309417232121458176568;
    if (a == b) return a + ln2;
    const C d = a - b;
    if (d > (C)0) return a + m_log1p(m_exp(-d));
    if (d <= (C)0) return b + m_log1p(m_exp(d));
    return d;
}

// The next value after a toward b in T's own precision, on its bits.
template <typename T> __device__ __forceinline__ T next_after(T a, T b) {
    typedef Num<T> N;
    typedef typename N::Bits U;
    const typename N::C x = N::up(a), y = N::up(b);
    if (x != x || y != y) return N::down(x + y);
    if (x == y) return b;
    const U sign = (U)((U)1 << (8 * sizeof(U) - 1));
    const U bits = N::bits(a);
    U next;
    if (x == (typename N::C)0) next = (U)((N::bits(b) & sign) | 1);
    else if ((x < y) == ((bits & sign) == 0)) next = (U)(bits + 1);
    else next = (U)(bits - 1);
    return N::from_bits(next);
}

// The activations of pf.nn and their derivatives (cpu/activation.rs has the same formulas).
template <typename C> __device__ __forceinline__ C act_relu(C x) { return (x > (C)0 || x != x) ? x : (C)0; }
template <typename C> __device__ __forceinline__ C act_relu_backward(C dy, C x) { return x > (C)0 ? dy : (C)0; }
// x * s, or -0 where s has underflowed to 0 (the limit at x = -inf, not -inf * 0 = NaN).
template <typename C> __device__ __forceinline__ C times0(C x, C s) { return s == (C)0 ? -(C)0 : x * s; }
// x * s for a term that vanishes where s has underflowed to 0.
template <typename C> __device__ __forceinline__ C term0(C x, C s) { return s == (C)0 ? (C)0 : x * s; }
// erfc(z) for z >= 0 in float with a fractional error below 1.2e-7 everywhere (Numerical
// Recipes' erfcc: t = 1 / (1 + z/2), erfc = t exp(-z^2 + P(t))), with the fast exp when FAST (for
// results rounded to float16/bfloat16); a third of libdevice's erfcf.
template <bool FAST> __device__ __forceinline__ float erfc_pos(float z) {
    const float t = __fdividef(1.0f, fmaf(0.5f, z, 1.0f));
    float p = 0.17087277f;
    p = fmaf(p, t, -0.82215223f);
    p = fmaf(p, t, 1.48851587f);
    p = fmaf(p, t, -1.13520398f);
    p = fmaf(p, t, 0.27886807f);
    p = fmaf(p, t, -0.18628806f);
    p = fmaf(p, t, 0.09678418f);
    p = fmaf(p, t, 0.37409196f);
    p = fmaf(p, t, 1.00002368f);
    p = fmaf(p, t, -1.26551223f);
    const float e = fmaf(-z, z, p);
    return t * (FAST ? __expf(e) : expf(e));
}
// The normal distribution function Phi(x) = erfc(-x / sqrt 2) / 2, accurate in both tails:
// libdevice's erfc in double, erfc_pos in float (1 - erfc(|x| / sqrt 2) / 2 on the right, where
// the subtraction loses nothing).
template <bool FAST = false> __device__ __forceinline__ double normal_cdf(double x) {
    return 0.5 * erfc(-x * 0.70710678118654752440);
}
template <bool FAST = false> __device__ __forceinline__ float normal_cdf(float x) {
    const float y = 0.5f * erfc_pos<FAST>(fabsf(x) * 0.70710678f);
    return x >= 0.0f ? 1.0f - y : y;
}
template <typename C> __device__ __forceinline__ C act_gelu(C x) { return times0(x, normal_cdf(x)); }
template <typename C> __device__ __forceinline__ C act_gelu_backward(C dy, C x) {
    const C pdf = (C)0.39894228040143267794 * m_exp((C)-0.5 * x * x);
    return dy * (normal_cdf(x) + term0(x, pdf));
}
template <typename C> __device__ __forceinline__ C gelu_tanh_inner(C x) {
    return m_tanh((C)0.79788456080286535588 * (x + (C)0.044715 * x * x * x));
}
template <typename C> __device__ __forceinline__ C act_gelu_tanh(C x) { return times0((C)0.5 * x, (C)1 + gelu_tanh_inner(x)); }
template <typename C> __device__ __forceinline__ C act_gelu_tanh_backward(C dy, C x) {
    const C t = gelu_tanh_inner(x);
    const C du = (C)0.79788456080286535588 * ((C)1 + (C)(3.0 * 0.044715) * x * x);
    return dy * ((C)0.5 * ((C)1 + t) + term0((C)0.5 * x * du, (C)1 - t * t));
}
template <typename C> __device__ __forceinline__ C act_sigmoid(C x) { return (C)1 / ((C)1 + m_exp(-x)); }
template <typename C> __device__ __forceinline__ C act_sigmoid_backward(C dy, C y) { return dy * y * ((C)1 - y); }
template <typename C> __device__ __forceinline__ C act_silu(C x) { return times0(x, act_sigmoid(x)); }
template <typename C> __device__ __forceinline__ C act_silu_backward(C dy, C x) {
    const C s = act_sigmoid(x);
    return dy * term0((C)1 + term0(x, (C)1 - s), s);
}

// The op identifiers (-DOP=U_<name> or B_<name>, the names of plan.rs in capitals).
enum {
    U_ABS, U_NEGATIVE, U_BITWISE_INVERT, U_LOGICAL_NOT, U_EXP, U_EXPM1, U_LOG, U_LOG1P, U_LOG2,
    U_LOG10, U_SQRT, U_SQUARE, U_RECIPROCAL, U_SIN, U_COS, U_TAN, U_ASIN, U_ACOS, U_ATAN, U_SINH,
    U_COSH, U_TANH, U_ASINH, U_ACOSH, U_ATANH, U_CEIL, U_FLOOR, U_ROUND, U_TRUNC, U_SIGN,
    U_SIGNBIT, U_ISNAN, U_ISINF, U_ISFINITE, U_RELU, U_GELU, U_GELU_TANH, U_SILU, U_SIGMOID
};
enum {
    B_ADD = 100, B_SUBTRACT, B_MULTIPLY, B_DIVIDE, B_FLOOR_DIVIDE, B_REMAINDER, B_POW, B_MAXIMUM,
    B_MINIMUM, B_ATAN2, B_HYPOT, B_COPYSIGN, B_LOGADDEXP, B_NEXTAFTER, B_BITWISE_AND, B_BITWISE_OR,
    B_BITWISE_XOR, B_BITWISE_LEFT_SHIFT, B_BITWISE_RIGHT_SHIFT, B_RELU_BACKWARD, B_GELU_BACKWARD,
    B_GELU_TANH_BACKWARD, B_SILU_BACKWARD, B_SIGMOID_BACKWARD, B_LOGICAL_AND, B_LOGICAL_OR,
    B_LOGICAL_XOR, B_EQUAL, B_NOT_EQUAL, B_LESS, B_LESS_EQUAL, B_GREATER, B_GREATER_EQUAL
};

// Whether op returns bool whatever the operand type (UnaryOp/BinaryOp::returns_bool).
__host__ __device__ constexpr bool op_is_predicate(int op) {
    return op == U_SIGNBIT || op == U_ISNAN || op == U_ISINF || op == U_ISFINITE || op >= B_LOGICAL_AND;
}

// Unary ops on the compute value (combinations outside the op's domain, which the ops layer
// never sends, compile to the identity).
template <int OPC, typename C, bool FLOAT, bool BOOL>
__device__ __forceinline__ auto unary_c(C x) {
    if constexpr (OPC == U_SIGNBIT) { if constexpr (FLOAT) return (bool)signbit(x); else return is_neg(x); }
    else if constexpr (OPC == U_ISNAN) { if constexpr (FLOAT) return x != x; else return false; }
    else if constexpr (OPC == U_ISINF) { if constexpr (FLOAT) return (bool)isinf(x); else return false; }
    else if constexpr (OPC == U_ISFINITE) { if constexpr (FLOAT) return (bool)isfinite(x); else return true; }
    else if constexpr (BOOL) {
        if constexpr (OPC == U_BITWISE_INVERT || OPC == U_LOGICAL_NOT) return (C)!x;
        else return x;
    } else if constexpr (!FLOAT) {
        if constexpr (OPC == U_ABS) return is_neg(x) ? wneg(x) : x;
        else if constexpr (OPC == U_NEGATIVE) return wneg(x);
        else if constexpr (OPC == U_BITWISE_INVERT) return (C)~x;
        else if constexpr (OPC == U_SQUARE) return wmul(x, x);
        else if constexpr (OPC == U_SIGN) return x > (C)0 ? (C)1 : (is_neg(x) ? (C)-1 : (C)0);
        else return x;  // ceil, floor, round, trunc: integers are whole
    } else {
        if constexpr (OPC == U_ABS) return m_fabs(x);
        else if constexpr (OPC == U_NEGATIVE) return -x;
        else if constexpr (OPC == U_EXP) return m_exp(x);
        else if constexpr (OPC == U_EXPM1) return m_expm1(x);
        else if constexpr (OPC == U_LOG) return m_log(x);
        else if constexpr (OPC == U_LOG1P) return m_log1p(x);
        else if constexpr (OPC == U_LOG2) return m_log2(x);
        else if constexpr (OPC == U_LOG10) return m_log10(x);
        else if constexpr (OPC == U_SQRT) return m_sqrt(x);
        else if constexpr (OPC == U_SQUARE) return x * x;
        else if constexpr (OPC == U_RECIPROCAL) return (C)1 / x;
        else if constexpr (OPC == U_SIN) return m_sin(x);
        else if constexpr (OPC == U_COS) return m_cos(x);
        else if constexpr (OPC == U_TAN) return m_tan(x);
        else if constexpr (OPC == U_ASIN) return m_asin(x);
        else if constexpr (OPC == U_ACOS) return m_acos(x);
        else if constexpr (OPC == U_ATAN) return m_atan(x);
        else if constexpr (OPC == U_SINH) return m_sinh(x);
        else if constexpr (OPC == U_COSH) return m_cosh(x);
        else if constexpr (OPC == U_TANH) return m_tanh(x);
        else if constexpr (OPC == U_ASINH) return m_asinh(x);
        else if constexpr (OPC == U_ACOSH) return m_acosh(x);
        else if constexpr (OPC == U_ATANH) return m_atanh(x);
        else if constexpr (OPC == U_CEIL) return m_ceil(x);
        else if constexpr (OPC == U_FLOOR) return m_floor(x);
        else if constexpr (OPC == U_ROUND) return m_rint(x);
        else if constexpr (OPC == U_TRUNC) return m_trunc(x);
        else if constexpr (OPC == U_SIGN) return x > (C)0 ? (C)1 : (x < (C)0 ? (C)-1 : x);
        else if constexpr (OPC == U_RELU) return act_relu(x);
        else if constexpr (OPC == U_GELU) return act_gelu(x);
        else if constexpr (OPC == U_GELU_TANH) return act_gelu_tanh(x);
        else if constexpr (OPC == U_SILU) return act_silu(x);
        else if constexpr (OPC == U_SIGMOID) return act_sigmoid(x);
        else return x;
    }
}

// Binary ops on compute values.
template <int OPC, typename C, bool FLOAT, bool BOOL>
__device__ __forceinline__ auto binary_c(C a, C b) {
    if constexpr (OPC == B_EQUAL) return a == b;
    else if constexpr (OPC == B_NOT_EQUAL) return a != b;
    else if constexpr (OPC == B_LESS) return a < b;
    else if constexpr (OPC == B_LESS_EQUAL) return a <= b;
    else if constexpr (OPC == B_GREATER) return a > b;
    else if constexpr (OPC == B_GREATER_EQUAL) return a >= b;
    else if constexpr (OPC == B_LOGICAL_AND) return (bool)a && (bool)b;
    else if constexpr (OPC == B_LOGICAL_OR) return (bool)a || (bool)b;
    else if constexpr (OPC == B_LOGICAL_XOR) return (bool)a != (bool)b;
    else if constexpr (BOOL) {
        if constexpr (OPC == B_ADD || OPC == B_MAXIMUM || OPC == B_BITWISE_OR) return (C)(a || b);
        else if constexpr (OPC == B_MULTIPLY || OPC == B_MINIMUM || OPC == B_BITWISE_AND) return (C)(a && b);
        else if constexpr (OPC == B_BITWISE_XOR) return (C)(a != b);
        else return a;
    } else if constexpr (!FLOAT) {
        if constexpr (OPC == B_ADD) return wadd(a, b);
        else if constexpr (OPC == B_SUBTRACT) return wsub(a, b);
        else if constexpr (OPC == B_MULTIPLY) return wmul(a, b);
        else if constexpr (OPC == B_FLOOR_DIVIDE || OPC == B_DIVIDE) return int_floor_div(a, b);
        else if constexpr (OPC == B_REMAINDER) return int_rem(a, b);
        else if constexpr (OPC == B_POW) return int_pow(a, b);
        else if constexpr (OPC == B_MAXIMUM) return a >= b ? a : b;
        else if constexpr (OPC == B_MINIMUM) return a <= b ? a : b;
        else if constexpr (OPC == B_BITWISE_AND) return (C)(a & b);
        else if constexpr (OPC == B_BITWISE_OR) return (C)(a | b);
        else if constexpr (OPC == B_BITWISE_XOR) return (C)(a ^ b);
        else if constexpr (OPC == B_BITWISE_LEFT_SHIFT) return int_shl(a, b);
        else if constexpr (OPC == B_BITWISE_RIGHT_SHIFT) return int_shr(a, b);
        else return a;
    } else {
        if constexpr (OPC == B_ADD) return a + b;
        else if constexpr (OPC == B_SUBTRACT) return a - b;
        else if constexpr (OPC == B_MULTIPLY) return a * b;
        else if constexpr (OPC == B_DIVIDE) return a / b;
        else if constexpr (OPC == B_FLOOR_DIVIDE) { C q, m; float_divmod(a, b, q, m); return q; }
        else if constexpr (OPC == B_REMAINDER) { C q, m; float_divmod(a, b, q, m); return m; }
        else if constexpr (OPC == B_POW) return m_pow(a, b);
        else if constexpr (OPC == B_MAXIMUM) return (a >= b || a != a) ? a : b;
        else if constexpr (OPC == B_MINIMUM) return (a <= b || a != a) ? a : b;
        else if constexpr (OPC == B_ATAN2) return m_atan2(a, b);
        else if constexpr (OPC == B_HYPOT) return m_hypot(a, b);
        else if constexpr (OPC == B_COPYSIGN) return m_copysign(a, b);
        else if constexpr (OPC == B_LOGADDEXP) return logaddexp(a, b);
        else if constexpr (OPC == B_RELU_BACKWARD) return act_relu_backward(a, b);
        else if constexpr (OPC == B_GELU_BACKWARD) return act_gelu_backward(a, b);
        else if constexpr (OPC == B_GELU_TANH_BACKWARD) return act_gelu_tanh_backward(a, b);
        else if constexpr (OPC == B_SILU_BACKWARD) return act_silu_backward(a, b);
        else if constexpr (OPC == B_SIGMOID_BACKWARD) return act_sigmoid_backward(a, b);
        else return a;
    }
}

// op(x) from the storage type T to the output type O (T, or Bool for predicates).
template <int OPC, typename T, typename O>
__device__ __forceinline__ O unary_op(T x) {
    typedef Num<T> N;
    if constexpr (OPC == U_GELU && N::FLOAT && sizeof(T) == 2) {
        const float v = N::up(x);
        return N::down(times0(v, normal_cdf<true>(v)));
    } else {
        const auto r = unary_c<OPC, typename N::C, N::FLOAT, N::BOOL>(N::up(x));
        if constexpr (op_is_predicate(OPC)) return Num<Bool>::down(r);
        else return N::down(r);
    }
}

// op(a, b) from the storage type T to the output type O.
template <int OPC, typename T, typename O>
__device__ __forceinline__ O binary_op(T a, T b) {
    typedef Num<T> N;
    if constexpr (OPC == B_NEXTAFTER && N::FLOAT) {
        return next_after(a, b);
    } else {
        const auto r = binary_c<OPC, typename N::C, N::FLOAT, N::BOOL>(N::up(a), N::up(b));
        if constexpr (op_is_predicate(OPC)) return Num<Bool>::down(r);
        else return N::down(r);
    }
}
