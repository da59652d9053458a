//! Random arrays: counter-based fills (see [`crate::random`]).

use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::plan::{Distribution, RandomSpec};
use crate::tensor::Tensor;

/// A C-order array of `shape` filled as `spec` says, and the number of Philox blocks it used
/// (what a generator advances its counter by).
///
/// # Errors
/// [`Error::DType`] for a float distribution with a non-float dtype or integers with a
/// non-integer one; [`Error::Shape`] for bad parameters; device and allocation errors.
pub fn random(
    shape: &[usize],
    dtype: DType,
    device: &Device,
    spec: &RandomSpec,
) -> Result<(Tensor, u64)> {
    let ints = matches!(spec.dist, Distribution::Integers { .. });
    if ints && !dtype.is_integer() || !ints && !dtype.is_float() {
        return Err(Error::DType(format!(
            "random: {} values cannot be drawn as {dtype}",
            if ints { "integer" } else { "floating-point" }
        )));
    }
    match spec.dist {
        Distribution::Uniform { low, high }
            if !(low.is_finite() && high.is_finite() && low <= high) =>
        {
            return Err(Error::Shape(format!(
                "uniform: need finite low <= high, got {low} and {high}"
            )));
        }
        Distribution::Normal { std, .. } if std.is_nan() || std < 0.0 => {
            return Err(Error::Shape(format!(
                "normal: the standard deviation must be >= 0, got {std}"
            )));
        }
        _ => {}
    }
    let t = Tensor::empty(shape, dtype, device)?;
    if t.numel() > 0 {
        t.storage.random(t.layout(), spec)?;
    }
    let blocks = crate::random::blocks_used(dtype, &spec.dist, t.numel());
    Ok((t, blocks))
}
