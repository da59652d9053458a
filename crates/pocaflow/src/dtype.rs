//! Element types: the [`DType`] tag, the [`Element`] trait that ties a Rust type to it, the
//! promotion table of the Python Array API standard, and [`Scalar`] values.

use half::{bf16, f16};
use std::fmt;

/// The element type of a tensor: the dtypes of the Python Array API standard (complex aside)
/// plus `bfloat16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// Booleans, one byte each (0 or 1).
    Bool,
    /// 8-bit signed integers.
    I8,
    /// 16-bit signed integers.
    I16,
    /// 32-bit signed integers.
    I32,
    /// 64-bit signed integers.
    I64,
    /// 8-bit unsigned integers.
    U8,
    /// 16-bit unsigned integers.
    U16,
    /// 32-bit unsigned integers.
    U32,
    /// 64-bit unsigned integers.
    U64,
    /// IEEE 754 half precision.
    F16,
    /// bfloat16: the exponent range of f32 with an 8-bit significand.
    BF16,
    /// IEEE 754 single precision.
    F32,
    /// IEEE 754 double precision.
    F64,
}

/// The kind of a dtype, as the standard groups them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `bool`.
    Bool,
    /// Signed integers.
    Signed,
    /// Unsigned integers.
    Unsigned,
    /// Real floating point.
    Float,
}

impl DType {
    /// Every dtype, in the order of the enum.
    pub const ALL: [DType; 13] = [
        DType::Bool,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::F16,
        DType::BF16,
        DType::F32,
        DType::F64,
    ];

    /// Size of one element in bytes.
    pub const fn size_in_bytes(self) -> usize {
        match self {
            DType::Bool | DType::I8 | DType::U8 => 1,
            DType::I16 | DType::U16 | DType::F16 | DType::BF16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 => 8,
        }
    }

    /// The kind of this dtype.
    pub const fn kind(self) -> Kind {
        match self {
            DType::Bool => Kind::Bool,
            DType::I8 | DType::I16 | DType::I32 | DType::I64 => Kind::Signed,
            DType::U8 | DType::U16 | DType::U32 | DType::U64 => Kind::Unsigned,
            DType::F16 | DType::BF16 | DType::F32 | DType::F64 => Kind::Float,
        }
    }

    /// Whether this is a floating-point dtype.
    pub const fn is_float(self) -> bool {
        matches!(self.kind(), Kind::Float)
    }

    /// Whether this is a signed or unsigned integer dtype.
    pub const fn is_integer(self) -> bool {
        matches!(self.kind(), Kind::Signed | Kind::Unsigned)
    }

    /// The NumPy-style name: `bool`, `int8` ... `uint64`, `float16`, `bfloat16`, `float32`,
    /// `float64`.
    pub const fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    /// A short name (`b1`, `i8`, `u16`, `f32`, `bf16`, ...), used to name kernels.
    pub const fn short_name(self) -> &'static str {
        match self {
            DType::Bool => "b1",
            DType::I8 => "i8",
            DType::I16 => "i16",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::U8 => "u8",
            DType::U16 => "u16",
            DType::U32 => "u32",
            DType::U64 => "u64",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F32 => "f32",
            DType::F64 => "f64",
        }
    }

    /// Parses a NumPy-style name (`"float32"`, `"f4"`, `"int64"`, `"i8"` meaning int64 as in
    /// NumPy, `"bfloat16"`, ...).
    pub fn from_name(name: &str) -> Option<DType> {
        Some(match name {
            "bool" | "b1" | "?" => DType::Bool,
            "int8" | "i1" => DType::I8,
            "int16" | "i2" => DType::I16,
            "int32" | "i4" => DType::I32,
            "int64" | "i8" => DType::I64,
            "uint8" | "u1" => DType::U8,
            "uint16" | "u2" => DType::U16,
            "uint32" | "u4" => DType::U32,
            "uint64" | "u8" => DType::U64,
            "float16" | "f2" | "half" => DType::F16,
            "bfloat16" | "bf16" => DType::BF16,
            "float32" | "f4" | "float" => DType::F32,
            "float64" | "f8" | "double" => DType::F64,
            _ => return None,
        })
    }

    /// The dtype two operands of a binary operation are computed in.
    ///
    /// The Python Array API standard's table within each kind (the wider type wins; a signed
    /// and an unsigned integer meet in the smallest signed type that holds both), and NumPy's
    /// rules where the standard leaves it open: `uint64` with a signed integer gives `float64`;
    /// an integer with a float gives the smallest float at least as wide as the float that
    /// holds the integer exactly (`int8` and `float16` give `float16`, `int32` and `float32`
    /// give `float64`); `float16` with `bfloat16` gives `float32`, and `bfloat16` takes
    /// integers as `float16` does.
    pub fn promote(a: DType, b: DType) -> DType {
        use DType::*;
        if a == b {
            return a;
        }
        let bits = |d: DType| d.size_in_bytes() * 8;
        let signed_of_bits = |n: usize| match n {
            8 => I8,
            16 => I16,
            32 => I32,
            _ => I64,
        };
        match (a.kind(), b.kind()) {
            (Kind::Bool, _) => b,
            (_, Kind::Bool) => a,
            (Kind::Signed, Kind::Signed) | (Kind::Unsigned, Kind::Unsigned) => {
                if bits(a) >= bits(b) {
                    a
                } else {
                    b
                }
            }
            (Kind::Signed, Kind::Unsigned) | (Kind::Unsigned, Kind::Signed) => {
                let (s, u) = if a.kind() == Kind::Signed {
                    (a, b)
                } else {
                    (b, a)
                };
                if bits(s) > bits(u) {
                    s
                } else if u == U64 {
                    F64
                } else {
                    signed_of_bits(bits(u) * 2)
                }
            }
            (Kind::Float, Kind::Float) => match (a, b) {
                (F16, BF16) | (BF16, F16) => F32,
                _ if bits(a) >= bits(b) => a,
                _ => b,
            },
            (Kind::Float, _) | (_, Kind::Float) => {
                let (f, i) = if a.is_float() { (a, b) } else { (b, a) };
                // The smallest float that holds every value of `i` exactly.
                let exact = match bits(i) {
                    8 => F16,
                    16 => F32,
                    _ => F64,
                };
                match (f, exact) {
                    (BF16, F16) => BF16,
                    _ if bits(f) >= bits(exact) => f,
                    _ => exact,
                }
            }
        }
    }

    /// Whether NumPy's `can_cast(from, to, "safe")` holds: every value of `from` is a value of
    /// `to` (the standard's `can_cast`, which follows its promotion table).
    pub fn can_cast(from: DType, to: DType) -> bool {
        from == to || DType::promote(from, to) == to
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A single value of any kind, as Python passes one (`True`, `3`, `2.5`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar {
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer above `i64::MAX`.
    UInt(u64),
    /// A float.
    Float(f64),
}

impl Scalar {
    /// The value converted to `T` as [`Element::cast`] converts elements.
    pub fn to<T: Element>(self) -> T {
        match self {
            Scalar::Bool(v) => v.cast(),
            Scalar::Int(v) => v.cast(),
            Scalar::UInt(v) => v.cast(),
            Scalar::Float(v) => v.cast(),
        }
    }

    /// The dtype NumPy gives this Python value: `bool`, `int64` (`uint64` above its range) or
    /// `float64`.
    pub fn default_dtype(self) -> DType {
        match self {
            Scalar::Bool(_) => DType::Bool,
            Scalar::Int(_) => DType::I64,
            Scalar::UInt(_) => DType::U64,
            Scalar::Float(_) => DType::F64,
        }
    }

    /// The value as an `f64` (integers rounded to nearest).
    pub fn as_f64(self) -> f64 {
        self.to::<f64>()
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A Rust type that can be the element of a [`Tensor`](crate::Tensor). Sealed: implemented for
/// `bool`, the integer types from `i8` to `u64`, [`half::f16`], [`half::bf16`], `f32` and
/// `f64`.
pub trait Element:
    sealed::Sealed + Copy + Send + Sync + Default + PartialEq + fmt::Debug + 'static
{
    /// The tag of this type.
    const DTYPE: DType;
    /// The value as `f64` (integers above 2^53 rounded to nearest).
    fn to_f64(self) -> f64;
    /// The value as `i64` (C conversion: floats truncate toward zero and saturate, NaN gives
    /// 0; `u64` wraps).
    fn to_i64(self) -> i64;
    /// The value as `u64` (C conversion: signed values wrap, floats truncate and saturate).
    fn to_u64(self) -> u64;
    /// Converts from `f64` with round-to-nearest-even (for integers, as [`Element::to_i64`]).
    fn from_f64(v: f64) -> Self;
    /// Converts from `i64` (integers wrap to the width, as C and NumPy do).
    fn from_i64(v: i64) -> Self;
    /// Converts from `u64` (integers wrap to the width).
    fn from_u64(v: u64) -> Self;
    /// Whether the value is nonzero (the conversion to `bool`).
    fn is_nonzero(self) -> bool;

    /// Converts to another element type as NumPy's `astype` does: floats to integers truncate
    /// toward zero (saturating, NaN to 0), integers wrap to a narrower width, anything to
    /// `bool` is `!= 0`, and floats round to nearest even (once) to a narrower float.
    #[inline(always)]
    fn cast<U: Element>(self) -> U {
        match U::DTYPE.kind() {
            Kind::Bool => U::from_u64(u64::from(self.is_nonzero())),
            Kind::Float => {
                if Self::DTYPE.kind() == Kind::Float || Self::DTYPE == DType::Bool {
                    U::from_f64(self.to_f64())
                } else if Self::DTYPE.kind() == Kind::Unsigned {
                    U::from_f64(self.to_u64() as f64)
                } else {
                    U::from_f64(self.to_i64() as f64)
                }
            }
            Kind::Signed => U::from_i64(self.to_i64()),
            Kind::Unsigned => {
                if Self::DTYPE.kind() == Kind::Float {
                    // Negative floats go through i64 (so -1.0 wraps to all ones, as C on x86).
                    let f = self.to_f64();
                    if f < 0.0 {
                        U::from_i64(self.to_i64())
                    } else {
                        U::from_u64(self.to_u64())
                    }
                } else {
                    U::from_u64(self.to_u64())
                }
            }
        }
    }
}

macro_rules! int_element {
    ($t:ty, $d:expr) => {
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DType = $d;
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn to_i64(self) -> i64 {
                self as i64
            }
            #[inline(always)]
            fn to_u64(self) -> u64 {
                self as u64
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                // Through i64 (or u64 for large positive values) so that narrow types wrap as
                // a C conversion via a wide integer does.
                if v >= 9.223_372_036_854_776e18 {
                    v as u64 as $t
                } else {
                    v as i64 as $t
                }
            }
            #[inline(always)]
            fn from_i64(v: i64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_u64(v: u64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn is_nonzero(self) -> bool {
                self != 0
            }
        }
    };
}

int_element!(i8, DType::I8);
int_element!(i16, DType::I16);
int_element!(i32, DType::I32);
int_element!(i64, DType::I64);
int_element!(u8, DType::U8);
int_element!(u16, DType::U16);
int_element!(u32, DType::U32);
int_element!(u64, DType::U64);

impl sealed::Sealed for bool {}
impl Element for bool {
    const DTYPE: DType = DType::Bool;
    fn to_f64(self) -> f64 {
        f64::from(u8::from(self))
    }
    fn to_i64(self) -> i64 {
        i64::from(self)
    }
    fn to_u64(self) -> u64 {
        u64::from(self)
    }
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
    fn from_i64(v: i64) -> Self {
        v != 0
    }
    fn from_u64(v: u64) -> Self {
        v != 0
    }
    fn is_nonzero(self) -> bool {
        self
    }
}

macro_rules! float_element {
    ($t:ty, $d:expr, $wide:ident, $narrow:ident) => {
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DType = $d;
            #[inline(always)]
            fn to_f64(self) -> f64 {
                $wide(self)
            }
            #[inline(always)]
            fn to_i64(self) -> i64 {
                $wide(self) as i64
            }
            #[inline(always)]
            fn to_u64(self) -> u64 {
                $wide(self) as u64
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                $narrow(v)
            }
            #[inline(always)]
            fn from_i64(v: i64) -> Self {
                $narrow(v as f64)
            }
            #[inline(always)]
            fn from_u64(v: u64) -> Self {
                $narrow(v as f64)
            }
            #[inline(always)]
            fn is_nonzero(self) -> bool {
                $wide(self) != 0.0
            }
        }
    };
}

#[inline(always)]
fn f32_wide(v: f32) -> f64 {
    f64::from(v)
}
#[inline(always)]
fn f32_narrow(v: f64) -> f32 {
    v as f32
}
#[inline(always)]
fn f64_wide(v: f64) -> f64 {
    v
}
#[inline(always)]
fn f64_narrow(v: f64) -> f64 {
    v
}
#[inline(always)]
fn f16_wide(v: f16) -> f64 {
    v.to_f64()
}
#[inline(always)]
fn f16_narrow(v: f64) -> f16 {
    f16::from_f32(f32_round_to_odd(v))
}
#[inline(always)]
fn bf16_wide(v: bf16) -> f64 {
    v.to_f64()
}
#[inline(always)]
fn bf16_narrow(v: f64) -> bf16 {
    bf16::from_f32(f32_round_to_odd(v))
}

float_element!(f32, DType::F32, f32_wide, f32_narrow);
float_element!(f64, DType::F64, f64_wide, f64_narrow);
float_element!(f16, DType::F16, f16_wide, f16_narrow);
float_element!(bf16, DType::BF16, bf16_wide, bf16_narrow);

/// `v` as an f32 rounded to odd: truncated toward zero, with the last bit set when that lost
/// anything. Rounding this to nearest in a format with at least two fewer significand bits
/// and no wider exponent range (f16, bf16) gives the correctly rounded result of `v` itself,
/// which rounding `v` to nearest f32 first does not always (a second rounding can meet a tie
/// the first one made).
#[inline(always)]
fn f32_round_to_odd(v: f64) -> f32 {
    let nearest = v as f32;
    if f64::from(nearest) == v || v.is_nan() {
        return nearest;
    }
    // Inexact: step back toward zero if rounding went away from it (same sign, larger
    // magnitude; an overflow to infinity steps back to the largest finite f32).
    let mut bits = nearest.to_bits();
    if f64::from(nearest).abs() > v.abs() {
        bits -= 1;
    }
    f32::from_bits(bits | 1)
}

/// Runs `$body` with the type alias `$t` bound to the Rust element type of `$dtype`.
#[macro_export]
#[doc(hidden)]
macro_rules! with_dtype {
    ($dtype:expr, $t:ident, $body:expr) => {
        match $dtype {
            $crate::DType::Bool => {
                type $t = bool;
                $body
            }
            $crate::DType::I8 => {
                type $t = i8;
                $body
            }
            $crate::DType::I16 => {
                type $t = i16;
                $body
            }
            $crate::DType::I32 => {
                type $t = i32;
                $body
            }
            $crate::DType::I64 => {
                type $t = i64;
                $body
            }
            $crate::DType::U8 => {
                type $t = u8;
                $body
            }
            $crate::DType::U16 => {
                type $t = u16;
                $body
            }
            $crate::DType::U32 => {
                type $t = u32;
                $body
            }
            $crate::DType::U64 => {
                type $t = u64;
                $body
            }
            $crate::DType::F16 => {
                type $t = half::f16;
                $body
            }
            $crate::DType::BF16 => {
                type $t = half::bf16;
                $body
            }
            $crate::DType::F32 => {
                type $t = f32;
                $body
            }
            $crate::DType::F64 => {
                type $t = f64;
                $body
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use DType::*;

    #[test]
    fn promotion_follows_the_standard_and_numpy() {
        let p = DType::promote;
        assert_eq!(p(F32, F64), F64);
        assert_eq!(p(F64, F32), F64);
        assert_eq!(p(F16, F32), F32);
        assert_eq!(p(BF16, F16), F32);
        assert_eq!(p(BF16, BF16), BF16);
        assert_eq!(p(Bool, I8), I8);
        assert_eq!(p(U8, I8), I16);
        assert_eq!(p(U16, I8), I32);
        assert_eq!(p(U32, I64), I64);
        assert_eq!(p(U64, I64), F64);
        assert_eq!(p(I8, F16), F16);
        assert_eq!(p(I16, F16), F32);
        assert_eq!(p(I32, F32), F64);
        assert_eq!(p(U8, BF16), BF16);
        assert_eq!(p(I64, F32), F64);
        for a in DType::ALL {
            for b in DType::ALL {
                assert_eq!(p(a, b), p(b, a), "{a} {b}");
            }
        }
        assert!(DType::can_cast(I8, I16) && !DType::can_cast(I16, I8));
        assert!(DType::can_cast(U8, I16) && !DType::can_cast(I8, U64));
        assert!(DType::can_cast(Bool, F16) && !DType::can_cast(F32, I64));
    }

    #[test]
    fn casts_follow_numpy() {
        assert_eq!((-1i64).cast::<u8>(), 255);
        assert_eq!(300i32.cast::<u8>(), 44);
        assert_eq!((-2.7f64).cast::<i32>(), -2);
        assert_eq!(2.7f32.cast::<u16>(), 2);
        assert!(0.5f32.cast::<bool>());
        assert!(!0i8.cast::<bool>());
        assert_eq!(true.cast::<f32>(), 1.0);
        assert_eq!(u64::MAX.cast::<f64>(), 1.8446744073709552e19);
        assert_eq!(u64::MAX.cast::<i64>(), -1);
        assert_eq!(f64::NAN.cast::<i32>(), 0);
        assert_eq!(Scalar::Float(3.5).to::<i64>(), 3);
        assert_eq!(Scalar::UInt(u64::MAX).to::<u64>(), u64::MAX);
    }

    /// Round to nearest even on the bits of an f32, the reference for bf16.
    fn bf16_rne(x: f32) -> u16 {
        let u = x.to_bits();
        ((u + 0x7fff + ((u >> 16) & 1)) >> 16) as u16
    }

    #[test]
    fn half_types_round_f64_to_nearest_even_once() {
        // f32 values just above, at and below bf16 ties (the cases a double rounding gets
        // wrong), across exponents and signs.
        for hi in [0x3fca_u32, 0x0080, 0x7f7f, 0x4000, 0x3380] {
            for lo in [0x7fff_u32, 0x8000, 0x8001, 0xffff, 0x0001, 0] {
                for sign in [0, 0x8000_0000] {
                    let x = f32::from_bits(sign | hi << 16 | lo);
                    let got = <bf16 as Element>::from_f64(f64::from(x)).to_bits();
                    assert_eq!(got, bf16_rne(x), "bf16 of {x:e} ({:#x})", x.to_bits());
                }
            }
        }
        // f64 values between two f32s: a tie of bf16 plus a little must round up, minus a
        // little down, although both round to the tie in f32.
        let tie = f64::from(f32::from_bits(0x3fca_8000));
        let ulp64 = tie * f64::EPSILON;
        assert_eq!(<bf16 as Element>::from_f64(tie + ulp64).to_bits(), 0x3fcb);
        assert_eq!(<bf16 as Element>::from_f64(tie - ulp64).to_bits(), 0x3fca);
        assert_eq!(<bf16 as Element>::from_f64(tie).to_bits(), 0x3fca); // even
        let tie16 = 1.0 + 2f64.powi(-11); // halfway between 1 and the next f16
        assert_eq!(
            <f16 as Element>::from_f64(tie16 + 2f64.powi(-40)).to_bits(),
            0x3c01
        );
        assert_eq!(<f16 as Element>::from_f64(tie16).to_bits(), 0x3c00);
        assert_eq!(<f16 as Element>::from_f64(70000.0), f16::INFINITY);
        assert_eq!(<bf16 as Element>::from_f64(1e300), bf16::INFINITY);
        assert_eq!(<bf16 as Element>::from_f64(-1e300), bf16::NEG_INFINITY);
        assert!(<bf16 as Element>::from_f64(f64::NAN).is_nan());
        assert_eq!(<f16 as Element>::from_f64(1e-30).to_bits(), 0);
    }

    #[test]
    fn names_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::from_name(d.name()), Some(d));
        }
        assert_eq!(DType::from_name("complex64"), None);
    }
}
