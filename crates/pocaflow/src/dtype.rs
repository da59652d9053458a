//! Element types: the [`DType`] tag and the [`Element`] trait that ties a Rust type to it.

use half::{bf16, f16};
use std::fmt;

/// The element type of a tensor.
///
/// `F16` and `BF16` are storage types for the CUDA backend (matmul accumulates in f32); the CPU
/// kernels compute in `F32` and `F64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// IEEE 754 half precision.
    F16,
    /// bfloat16: the exponent range of f32 with an 8-bit significand.
    BF16,
    /// IEEE 754 single precision.
    F32,
    /// IEEE 754 double precision.
    F64,
}

impl DType {
    /// Size of one element in bytes.
    pub const fn size_in_bytes(self) -> usize {
        match self {
            DType::F16 | DType::BF16 => 2,
            DType::F32 => 4,
            DType::F64 => 8,
        }
    }

    /// The NumPy-style name: `float16`, `bfloat16`, `float32`, `float64`.
    pub const fn name(self) -> &'static str {
        match self {
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    /// Parses a NumPy-style name (`"float32"`, `"f4"`, `"bfloat16"`, ...).
    pub fn from_name(name: &str) -> Option<DType> {
        Some(match name {
            "float16" | "f2" | "half" => DType::F16,
            "bfloat16" | "bf16" => DType::BF16,
            "float32" | "f4" | "float" => DType::F32,
            "float64" | "f8" | "double" => DType::F64,
            _ => return None,
        })
    }

    /// The dtype two operands of a binary operation are computed in, as NumPy promotes floats:
    /// the wider one wins, and float16 with bfloat16 meet in float32.
    pub fn promote(a: DType, b: DType) -> DType {
        match (a, b) {
            _ if a == b => a,
            (DType::F16, DType::BF16) | (DType::BF16, DType::F16) => DType::F32,
            _ => a.max(b),
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
}

/// A Rust type that can be the element of a [`Tensor`](crate::Tensor). Sealed: implemented for
/// `f32`, `f64`, [`half::f16`] and [`half::bf16`].
pub trait Element:
    sealed::Sealed + Copy + Send + Sync + Default + PartialEq + fmt::Debug + 'static
{
    /// The tag of this type.
    const DTYPE: DType;
    /// Converts to f64 (exactly: every element type is a subset of f64).
    fn to_f64(self) -> f64;
    /// Converts from f64 with round-to-nearest.
    fn from_f64(v: f64) -> Self;
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Element for f64 {
    const DTYPE: DType = DType::F64;
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// `v` as an f32 rounded to odd: truncated toward zero, with the last bit set when that lost
/// anything. Rounding this to nearest in a format with at least two fewer significand bits
/// and no wider exponent range (f16, bf16) gives the correctly rounded result of `v` itself,
/// which rounding `v` to nearest f32 first does not always (a second rounding can meet a tie
/// the first one made).
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

impl Element for f16 {
    const DTYPE: DType = DType::F16;
    fn to_f64(self) -> f64 {
        f16::to_f64(self)
    }
    fn from_f64(v: f64) -> Self {
        f16::from_f32(f32_round_to_odd(v))
    }
}

impl Element for bf16 {
    const DTYPE: DType = DType::BF16;
    fn to_f64(self) -> f64 {
        bf16::to_f64(self)
    }
    fn from_f64(v: f64) -> Self {
        bf16::from_f32(f32_round_to_odd(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promotion_follows_numpy() {
        assert_eq!(DType::promote(DType::F32, DType::F64), DType::F64);
        assert_eq!(DType::promote(DType::F64, DType::F32), DType::F64);
        assert_eq!(DType::promote(DType::F16, DType::F32), DType::F32);
        assert_eq!(DType::promote(DType::BF16, DType::F16), DType::F32);
        assert_eq!(DType::promote(DType::BF16, DType::BF16), DType::BF16);
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
        for d in [DType::F16, DType::BF16, DType::F32, DType::F64] {
            assert_eq!(DType::from_name(d.name()), Some(d));
        }
        assert_eq!(DType::from_name("int32"), None);
    }
}
