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

impl Element for f16 {
    const DTYPE: DType = DType::F16;
    fn to_f64(self) -> f64 {
        f16::to_f64(self)
    }
    fn from_f64(v: f64) -> Self {
        f16::from_f64(v)
    }
}

impl Element for bf16 {
    const DTYPE: DType = DType::BF16;
    fn to_f64(self) -> f64 {
        bf16::to_f64(self)
    }
    fn from_f64(v: f64) -> Self {
        bf16::from_f64(v)
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

    #[test]
    fn names_round_trip() {
        for d in [DType::F16, DType::BF16, DType::F32, DType::F64] {
            assert_eq!(DType::from_name(d.name()), Some(d));
        }
        assert_eq!(DType::from_name("int32"), None);
    }
}
