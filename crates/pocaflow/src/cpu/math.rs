//! The arithmetic of one element: what every elementwise op computes, per kind of dtype.
//! These are the reference semantics (the CUDA kernels mirror them): NumPy's where the
//! standard leaves a case open (integer division by zero gives 0, shifts past the width give 0
//! or -1, floor division and remainder follow Python's signs).

use half::{bf16, f16};

/// The floating-point math of `f32` and `f64`.
pub(crate) trait Float:
    Copy
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + Send
    + Sync
{
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// `ln 2`.
    const LN_2: Self;
    /// The nearest value to `v`.
    fn of(v: f64) -> Self;
    /// The complementary error function (`libm`'s, correctly handled tails).
    fn erfc(self) -> Self;
    /// NaN test.
    fn is_nan(self) -> bool;
    /// Infinity test.
    fn is_inf(self) -> bool;
    /// Sign bit.
    fn signbit(self) -> bool;
    /// `|x|`.
    fn abs(self) -> Self;
    /// The C library's `fmod`.
    fn fmod(self, b: Self) -> Self;
    /// `floor`.
    fn floor(self) -> Self;
    /// `|self|` with the sign of `b`.
    fn copysign(self, b: Self) -> Self;
    /// Every unary library function, by name.
    fn exp(self) -> Self;
    /// `e^x` as pocaflow computes it: [`exp_f32`] for `f32` (vectorizable), the library's for
    /// `f64`.
    fn fast_exp(self) -> Self;
    /// `e^x - 1`.
    fn exp_m1(self) -> Self;
    /// `ln x`.
    fn ln(self) -> Self;
    /// `ln(1 + x)`.
    fn ln_1p(self) -> Self;
    /// `log2 x`.
    fn log2(self) -> Self;
    /// `log10 x`.
    fn log10(self) -> Self;
    /// `sqrt x`.
    fn sqrt(self) -> Self;
    /// `sin x`.
    fn sin(self) -> Self;
    /// `cos x`.
    fn cos(self) -> Self;
    /// `tan x`.
    fn tan(self) -> Self;
    /// `asin x`.
    fn asin(self) -> Self;
    /// `acos x`.
    fn acos(self) -> Self;
    /// `atan x`.
    fn atan(self) -> Self;
    /// `sinh x`.
    fn sinh(self) -> Self;
    /// `cosh x`.
    fn cosh(self) -> Self;
    /// `tanh x`.
    fn tanh(self) -> Self;
    /// `asinh x`.
    fn asinh(self) -> Self;
    /// `acosh x`.
    fn acosh(self) -> Self;
    /// `atanh x`.
    fn atanh(self) -> Self;
    /// `ceil x`.
    fn ceil(self) -> Self;
    /// Round half to even.
    fn round_even(self) -> Self;
    /// Toward zero.
    fn trunc(self) -> Self;
    /// `self ** b` (the C library's `pow`).
    fn pow(self, b: Self) -> Self;
    /// `atan2(self, b)`.
    fn atan2(self, b: Self) -> Self;
    /// `hypot(self, b)`.
    fn hypot(self, b: Self) -> Self;

    /// NumPy's `divmod` for floats: `(floor_divide, remainder)`.
    #[inline(always)]
    fn divmod(self, b: Self) -> (Self, Self) {
        let a = self;
        let m = a.fmod(b);
        if b == Self::ZERO {
            return (a / b, m);
        }
        let mut div = (a - m) / b;
        let mut m = m;
        if m != Self::ZERO {
            if (b < Self::ZERO) != (m < Self::ZERO) {
                m = m + b;
                div = div - Self::ONE;
            }
        } else {
            m = Self::ZERO.copysign(b);
        }
        let q = if div != Self::ZERO {
            let f = div.floor();
            if div - f > Self::ONE / (Self::ONE + Self::ONE) {
                f + Self::ONE
            } else {
                f
            }
        } else {
            Self::ZERO.copysign(a / b)
        };
        (q, m)
    }

    /// The larger, NaN if either is.
    #[inline(always)]
    fn maximum(self, b: Self) -> Self {
        if self >= b || self.is_nan() {
            self
        } else {
            b
        }
    }

    /// The smaller, NaN if either is.
    #[inline(always)]
    fn minimum(self, b: Self) -> Self {
        if self <= b || self.is_nan() {
            self
        } else {
            b
        }
    }

    /// `ln(e^a + e^b)` without overflow (NumPy's formulation).
    #[inline(always)]
    fn logaddexp(self, b: Self) -> Self {
        if self == b {
            return self + Self::LN_2;
        }
        let d = self - b;
        if d > Self::ZERO {
            self + (-d).exp().ln_1p()
        } else if d <= Self::ZERO {
            b + d.exp().ln_1p()
        } else {
            d
        }
    }

    /// `-1`, `0` or `1`; NaN for NaN; zeros keep their sign.
    #[inline(always)]
    fn sign(self) -> Self {
        if self > Self::ZERO {
            Self::ONE
        } else if self < Self::ZERO {
            -Self::ONE
        } else {
            self
        }
    }
}

macro_rules! float_impl {
    ($t:ident, $fast:expr, $erfc:expr) => {
        impl Float for $t {
            const ZERO: $t = 0.0;
            const ONE: $t = 1.0;
            const LN_2: $t = std::$t::consts::LN_2;
            #[inline(always)]
            fn of(v: f64) -> $t {
                v as $t
            }
            #[inline(always)]
            fn erfc(self) -> $t {
                $erfc(self)
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                self.is_nan()
            }
            #[inline(always)]
            fn is_inf(self) -> bool {
                self.is_infinite()
            }
            #[inline(always)]
            fn signbit(self) -> bool {
                self.is_sign_negative()
            }
            #[inline(always)]
            fn abs(self) -> $t {
                $t::abs(self)
            }
            #[inline(always)]
            fn fmod(self, b: $t) -> $t {
                self % b
            }
            #[inline(always)]
            fn floor(self) -> $t {
                $t::floor(self)
            }
            #[inline(always)]
            fn copysign(self, b: $t) -> $t {
                $t::copysign(self, b)
            }
            #[inline(always)]
            fn exp(self) -> $t {
                $t::exp(self)
            }
            #[inline(always)]
            fn fast_exp(self) -> $t {
                $fast(self)
            }
            #[inline(always)]
            fn exp_m1(self) -> $t {
                $t::exp_m1(self)
            }
            #[inline(always)]
            fn ln(self) -> $t {
                $t::ln(self)
            }
            #[inline(always)]
            fn ln_1p(self) -> $t {
                $t::ln_1p(self)
            }
            #[inline(always)]
            fn log2(self) -> $t {
                $t::log2(self)
            }
            #[inline(always)]
            fn log10(self) -> $t {
                $t::log10(self)
            }
            #[inline(always)]
            fn sqrt(self) -> $t {
                $t::sqrt(self)
            }
            #[inline(always)]
            fn sin(self) -> $t {
                $t::sin(self)
            }
            #[inline(always)]
            fn cos(self) -> $t {
                $t::cos(self)
            }
            #[inline(always)]
            fn tan(self) -> $t {
                $t::tan(self)
            }
            #[inline(always)]
            fn asin(self) -> $t {
                $t::asin(self)
            }
            #[inline(always)]
            fn acos(self) -> $t {
                $t::acos(self)
            }
            #[inline(always)]
            fn atan(self) -> $t {
                $t::atan(self)
            }
            #[inline(always)]
            fn sinh(self) -> $t {
                $t::sinh(self)
            }
            #[inline(always)]
            fn cosh(self) -> $t {
                $t::cosh(self)
            }
            #[inline(always)]
            fn tanh(self) -> $t {
                $t::tanh(self)
            }
            #[inline(always)]
            fn asinh(self) -> $t {
                $t::asinh(self)
            }
            #[inline(always)]
            fn acosh(self) -> $t {
                // ln(x + sqrt(x^2 - 1)) rounds x + ... before the log and loses accuracy near
                // 1: with t = x - 1 it is log1p(t + sqrt(2t + t^2)); above 1/sqrt(eps) it is
                // ln(x) + ln 2 to working precision (and x^2 would overflow).
                let t = self - 1.0;
                if self < 1.0 {
                    $t::NAN
                } else if self < 1.0 / $t::EPSILON.sqrt() {
                    (t + (2.0 * t + t * t).sqrt()).ln_1p()
                } else {
                    self.ln() + std::$t::consts::LN_2
                }
            }
            #[inline(always)]
            fn atanh(self) -> $t {
                // The library's formula loses accuracy for negative arguments near -1; atanh
                // is odd, so compute it on |x|.
                $t::atanh(self.abs()).copysign(self)
            }
            #[inline(always)]
            fn ceil(self) -> $t {
                $t::ceil(self)
            }
            #[inline(always)]
            fn round_even(self) -> $t {
                $t::round_ties_even(self)
            }
            #[inline(always)]
            fn trunc(self) -> $t {
                $t::trunc(self)
            }
            #[inline(always)]
            fn pow(self, b: $t) -> $t {
                $t::powf(self, b)
            }
            #[inline(always)]
            fn atan2(self, b: $t) -> $t {
                $t::atan2(self, b)
            }
            #[inline(always)]
            fn hypot(self, b: $t) -> $t {
                $t::hypot(self, b)
            }
        }
    };
}

float_impl!(f32, exp_f32, libm::erfcf);
float_impl!(f64, f64::exp, libm::erfc);

/// A float element type and the type it computes in: `f32` and `f64` compute in themselves,
/// `float16` and `bfloat16` in `f32` (rounded once at the end).
pub(crate) trait FloatElem: crate::Element + PartialOrd {
    /// The compute type.
    type C: Float;
    /// Widening (exact).
    fn up(self) -> Self::C;
    /// Rounding to nearest even.
    fn down(c: Self::C) -> Self;
    /// The next value after `self` toward `b`, in this type's own precision.
    fn nextafter(self, b: Self) -> Self;

    /// The sum of a short run in the compute type: 16 independent accumulators (which the
    /// compiler keeps in vector registers), added up at the end.
    #[inline(always)]
    fn sum_leaf(x: &[Self]) -> Self::C {
        let zero = <Self::C as Float>::ZERO;
        let mut acc = [zero; 16];
        let chunks = x.chunks_exact(16);
        let tail = chunks.remainder();
        for c in chunks {
            let c: &[Self; 16] = c.try_into().expect("chunks of 16");
            for l in 0..16 {
                acc[l] = acc[l] + c[l].up();
            }
        }
        for (l, &v) in tail.iter().enumerate() {
            acc[l] = acc[l] + v.up();
        }
        // Lanes in order, not as a tree: a tree here makes the vectorizer pair the lanes
        // across registers and load the run in 8-byte pieces.
        acc.iter().fold(zero, |a, &b| a + b)
    }
}

/// `nextafter` on the bits of an IEEE type: `bits` of `a` and `b`, their `is_nan`, the sign
/// bit and whether each is zero.
macro_rules! nextafter_bits {
    ($a:expr, $b:expr, $to:ident, $from:expr, $sign:expr) => {{
        let (a, b) = ($a, $b);
        if a.is_nan() || b.is_nan() {
            return a + b;
        }
        if a == b {
            return b;
        }
        let bits = a.$to();
        let next = if a == Self::default() || bits == $sign {
            // From a zero: the smallest subnormal with b's sign.
            (b.$to() & $sign) | 1
        } else if (a < b) == (bits & $sign == 0) {
            bits + 1
        } else {
            bits - 1
        };
        $from(next)
    }};
}

impl FloatElem for f32 {
    type C = f32;
    #[inline(always)]
    fn up(self) -> f32 {
        self
    }
    #[inline(always)]
    fn down(c: f32) -> f32 {
        c
    }
    fn nextafter(self, b: f32) -> f32 {
        nextafter_bits!(self, b, to_bits, f32::from_bits, 0x8000_0000u32)
    }
}

impl FloatElem for f64 {
    type C = f64;
    #[inline(always)]
    fn up(self) -> f64 {
        self
    }
    #[inline(always)]
    fn down(c: f64) -> f64 {
        c
    }
    fn nextafter(self, b: f64) -> f64 {
        nextafter_bits!(self, b, to_bits, f64::from_bits, 0x8000_0000_0000_0000u64)
    }
}

impl FloatElem for f16 {
    type C = f32;
    #[inline(always)]
    fn up(self) -> f32 {
        self.to_f32()
    }
    #[inline(always)]
    fn down(c: f32) -> f16 {
        f16::from_f32(c)
    }
    fn nextafter(self, b: f16) -> f16 {
        nextafter_bits!(self, b, to_bits, f16::from_bits, 0x8000u16)
    }
}

impl FloatElem for bf16 {
    type C = f32;
    #[inline(always)]
    fn up(self) -> f32 {
        self.to_f32()
    }
    #[inline(always)]
    fn down(c: f32) -> bf16 {
        bf16::from_f32(c)
    }
    fn nextafter(self, b: bf16) -> bf16 {
        nextafter_bits!(self, b, to_bits, bf16::from_bits, 0x8000u16)
    }
}

/// The integer math of the eight integer types: wrapping arithmetic, and NumPy's answers for
/// division by zero and shifts past the width.
pub(crate) trait Int: crate::Element + Ord {
    /// Wrapping `+`.
    fn add(self, b: Self) -> Self;
    /// Wrapping `-`.
    fn sub(self, b: Self) -> Self;
    /// Wrapping `*`.
    fn mul(self, b: Self) -> Self;
    /// Wrapping negation.
    fn neg(self) -> Self;
    /// Wrapping `|x|`.
    fn abs(self) -> Self;
    /// `-1`, `0` or `1`.
    fn sign(self) -> Self;
    /// Bitwise and.
    fn and(self, b: Self) -> Self;
    /// Bitwise or.
    fn or(self, b: Self) -> Self;
    /// Bitwise xor.
    fn xor(self, b: Self) -> Self;
    /// Bitwise not.
    fn not(self) -> Self;
    /// Python's `//` (0 for a zero divisor; the most negative value divided by -1 wraps).
    fn floor_div(self, b: Self) -> Self;
    /// Python's `%` (0 for a zero divisor).
    fn rem(self, b: Self) -> Self;
    /// `self << b`, 0 when `b` is negative or at least the width.
    fn shl(self, b: Self) -> Self;
    /// `self >> b` (arithmetic when signed); past the width 0, or -1 for a negative value.
    fn shr(self, b: Self) -> Self;
    /// `self ** b` by squaring, wrapping; a negative exponent gives 0 unless `|self|` is 1.
    fn pow(self, b: Self) -> Self;
}

macro_rules! int_impl {
    ($t:ident, $signed:expr) => {
        impl Int for $t {
            #[inline(always)]
            fn add(self, b: $t) -> $t {
                self.wrapping_add(b)
            }
            #[inline(always)]
            fn sub(self, b: $t) -> $t {
                self.wrapping_sub(b)
            }
            #[inline(always)]
            fn mul(self, b: $t) -> $t {
                self.wrapping_mul(b)
            }
            #[inline(always)]
            fn neg(self) -> $t {
                self.wrapping_neg()
            }
            #[inline(always)]
            #[allow(unused_comparisons)]
            fn abs(self) -> $t {
                if self < 0 {
                    self.wrapping_neg()
                } else {
                    self
                }
            }
            #[inline(always)]
            #[allow(unused_comparisons)]
            fn sign(self) -> $t {
                if self > 0 {
                    1
                } else if self < 0 {
                    (0 as $t).wrapping_sub(1)
                } else {
                    0
                }
            }
            #[inline(always)]
            fn and(self, b: $t) -> $t {
                self & b
            }
            #[inline(always)]
            fn or(self, b: $t) -> $t {
                self | b
            }
            #[inline(always)]
            fn xor(self, b: $t) -> $t {
                self ^ b
            }
            #[inline(always)]
            fn not(self) -> $t {
                !self
            }
            #[inline(always)]
            #[allow(unused_comparisons)]
            fn floor_div(self, b: $t) -> $t {
                if b == 0 {
                    return 0;
                }
                let q = self.wrapping_div(b);
                if self.wrapping_rem(b) != 0 && ((self < 0) != (b < 0)) {
                    q.wrapping_sub(1)
                } else {
                    q
                }
            }
            #[inline(always)]
            #[allow(unused_comparisons)]
            fn rem(self, b: $t) -> $t {
                if b == 0 {
                    return 0;
                }
                let r = self.wrapping_rem(b);
                if r != 0 && ((r < 0) != (b < 0)) {
                    r.wrapping_add(b)
                } else {
                    r
                }
            }
            #[inline(always)]
            #[allow(unused_comparisons)]
            fn shl(self, b: $t) -> $t {
                if b < 0 || (b as u64) >= u64::from($t::BITS) {
                    0
                } else {
                    self << (b as u32)
                }
            }
            #[inline(always)]
            #[allow(unused_comparisons)]
            fn shr(self, b: $t) -> $t {
                if b < 0 || (b as u64) >= u64::from($t::BITS) {
                    if self < 0 {
                        (0 as $t).wrapping_sub(1)
                    } else {
                        0
                    }
                } else {
                    self >> (b as u32)
                }
            }
            #[inline(always)]
            #[allow(unused_comparisons)]
            fn pow(self, b: $t) -> $t {
                if b < 0 {
                    return if self == 1 {
                        1
                    } else if $signed && self == (0 as $t).wrapping_sub(1) {
                        if b & 1 == 1 {
                            self
                        } else {
                            1
                        }
                    } else {
                        0
                    };
                }
                let (mut base, mut e, mut acc) = (self, b as u64, 1 as $t);
                while e > 0 {
                    if e & 1 == 1 {
                        acc = acc.wrapping_mul(base);
                    }
                    base = base.wrapping_mul(base);
                    e >>= 1;
                }
                acc
            }
        }
    };
}

int_impl!(i8, true);
int_impl!(i16, true);
int_impl!(i32, true);
int_impl!(i64, true);
int_impl!(u8, false);
int_impl!(u16, false);
int_impl!(u32, false);
int_impl!(u64, false);

/// `e^x` for `f32` in a form the compiler vectorizes (no calls, no branches): Cephes' range
/// reduction `x = k ln 2 + r` (`ln 2` split in two so `k ln 2` is exact), a degree-6
/// polynomial for `e^r` (about 1 ulp), and `2^k` applied in two halves so that results in the
/// subnormal range stay right. NaN stays NaN; overflow gives infinity, underflow 0.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    exp_f32_with::<false>(x)
}

/// [`exp_f32`] with the polynomial in fused multiply-adds when `FMA` (only for code compiled
/// with the `fma` target feature, where `mul_add` is one instruction; it may differ from
/// [`exp_f32`] in the last bit).
#[inline(always)]
pub(crate) fn exp_f32_with<const FMA: bool>(x: f32) -> f32 {
    const HI: f32 = 88.722_84;
    const LO: f32 = -103.972_08;
    let madd = |a: f32, b: f32, c: f32| if FMA { a.mul_add(b, c) } else { a * b + c };
    let c = x.clamp(LO, HI);
    // k = round(c / ln 2) by the 1.5 * 2^23 trick (round to nearest even), read as an integer.
    const MAGIC: f32 = 12_582_912.0;
    let t = madd(c, std::f32::consts::LOG2_E, MAGIC);
    let k = t.to_bits() as i32 - MAGIC.to_bits() as i32;
    let kf = t - MAGIC;
    let r = madd(kf, 2.121_944_4e-4, madd(kf, -0.693_359_4, c));
    let mut p = 1.987_569_1e-4f32;
    p = madd(p, r, 1.398_199_9e-3);
    p = madd(p, r, 8.333_452e-3);
    p = madd(p, r, 4.166_579_6e-2);
    p = madd(p, r, 1.666_666_5e-1);
    p = madd(p, r, 0.5);
    let e = madd(p, r * r, r) + 1.0;
    let k1 = k >> 1;
    let k2 = k - k1;
    let s1 = f32::from_bits(((k1 + 127) as u32) << 23);
    let s2 = f32::from_bits(((k2 + 127) as u32) << 23);
    let y = e * s1 * s2;
    if x.is_nan() {
        x
    } else if x > HI {
        f32::INFINITY
    } else if x < LO {
        0.0
    } else {
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_f32_is_within_two_ulps_everywhere() {
        check_exp(exp_f32);
        check_exp(exp_f32_with::<true>);
    }

    fn check_exp(exp_f32: fn(f32) -> f32) {
        let mut worst = 0.0f64;
        let mut x = -104.0f32;
        while x < 89.0 {
            let got = f64::from(exp_f32(x));
            let want = f64::from(x).exp();
            let ulp = f64::from(f32::EPSILON) * want.max(f64::from(f32::MIN_POSITIVE));
            let err = (got - want).abs() / ulp;
            if want < f64::from(f32::MAX) {
                worst = worst.max(err);
            }
            x += 0.001_37;
        }
        assert!(worst < 2.0, "worst error {worst} ulps");
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(100.0), f32::INFINITY);
        assert_eq!(exp_f32(0.0), 1.0);
    }

    #[test]
    fn integer_semantics_follow_numpy() {
        assert_eq!(Int::floor_div(-7i32, 2), -4);
        assert_eq!(Int::rem(-7i32, 2), 1);
        assert_eq!(Int::rem(7i32, -2), -1);
        assert_eq!(Int::floor_div(7i32, 0), 0);
        assert_eq!(Int::floor_div(i32::MIN, -1), i32::MIN);
        assert_eq!(Int::shl(1u8, 8), 0);
        assert_eq!(Int::shr(-8i16, 20), -1);
        assert_eq!(Int::pow(3i64, 4), 81);
        assert_eq!(Int::pow(-1i8, -3), -1);
        assert_eq!(Int::pow(2i8, -1), 0);
        assert_eq!(Int::pow(2u8, 9), 0);
    }

    #[test]
    fn float_divmod_follows_python() {
        assert_eq!(Float::divmod(-7.0f64, 2.0), (-4.0, 1.0));
        assert_eq!(Float::divmod(7.0f64, -2.0), (-4.0, -1.0));
        let (q, r) = Float::divmod(1.0f64, 0.0);
        assert!(q.is_infinite() && r.is_nan());
        assert_eq!(f32::nextafter(1.0, 2.0), 1.0 + f32::EPSILON);
        assert_eq!(f32::nextafter(0.0, -1.0).to_bits(), 0x8000_0001);
        assert_eq!(f16::nextafter(f16::ONE, f16::ZERO), f16::from_bits(0x3bff));
    }
}
