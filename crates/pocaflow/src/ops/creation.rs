//! Creation: filled arrays, ranges, identity-like matrices and triangles.

use crate::device::Device;
use crate::dtype::{DType, Scalar};
use crate::error::{Error, Result};
use crate::layout::{fmt_shape, Layout};
use crate::tensor::Tensor;

/// A C-order array of `shape` with every element `value` (converted to `dtype`).
///
/// # Errors
/// [`Error::Device`] if the device is not available; [`Error::OutOfMemory`].
pub fn full(shape: &[usize], value: Scalar, dtype: DType, device: &Device) -> Result<Tensor> {
    if value == Scalar::Int(0) {
        // Zeroed memory: on the CPU, pages that come zeroed and stay untouched until used.
        return Tensor::zeros(shape, dtype, device);
    }
    let t = Tensor::empty(shape, dtype, device)?;
    if t.numel() > 0 {
        t.storage.fill(&t.layout, value)?;
    }
    Ok(t)
}

/// Number of elements of `arange(start, stop, step)`.
fn range_len(start: Scalar, stop: Scalar, step: Scalar, dtype: DType) -> Result<usize> {
    if step.as_f64() == 0.0 {
        return Err(Error::Shape("arange: step must not be zero".into()));
    }
    let n = if dtype.is_float() {
        ((stop.as_f64() - start.as_f64()) / step.as_f64()).ceil()
    } else {
        let (a, b, s) = (
            i128::from(start.to::<i64>()),
            i128::from(stop.to::<i64>()),
            i128::from(step.to::<i64>()),
        );
        let span = b - a;
        // Ceiling division for either sign of the step.
        (if s > 0 {
            (span + s - 1).div_euclid(s)
        } else {
            (span + s + 1).div_euclid(s)
        }) as f64
    };
    if !n.is_finite() && n > 0.0 {
        return Err(Error::Shape(
            "arange: the range has infinitely many elements".into(),
        ));
    }
    Ok(if n > 0.0 { n as usize } else { 0 })
}

/// `start, start + step, ...` up to (not including) `stop`, of `dtype`.
///
/// # Errors
/// [`Error::Shape`] for a zero step; device and allocation errors.
pub fn arange(
    start: Scalar,
    stop: Scalar,
    step: Scalar,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let floats = [start, stop, step]
        .iter()
        .any(|s| matches!(s, Scalar::Float(_)));
    if floats && !dtype.is_float() {
        // NumPy: the values are computed in float64, then converted.
        return arange(start, stop, step, DType::F64, device)?.to_dtype(dtype);
    }
    let n = range_len(start, stop, step, dtype)?;
    let t = Tensor::empty(&[n], dtype, device)?;
    if n > 0 {
        t.storage.arange(&t.layout, start, step)?;
    }
    Ok(t)
}

/// `num` evenly spaced values from `start` to `stop` (included when `endpoint`), of a float
/// `dtype`: element `i` is `start + i * step`, and the last one is `stop` exactly.
///
/// # Errors
/// [`Error::DType`] for a non-float dtype; device and allocation errors.
pub fn linspace(
    start: f64,
    stop: f64,
    num: usize,
    endpoint: bool,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    if !dtype.is_float() {
        return Err(Error::DType(format!(
            "linspace: expected a floating-point dtype, got {dtype}"
        )));
    }
    let div = if endpoint { num.saturating_sub(1) } else { num };
    let step = if div > 0 {
        (stop - start) / div as f64
    } else {
        0.0
    };
    let t = Tensor::empty(&[num], dtype, device)?;
    if num > 0 {
        t.storage
            .arange(&t.layout, Scalar::Float(start), Scalar::Float(step))?;
        if endpoint && num > 1 {
            t.storage
                .fill(&t.layout.select(0, num - 1), Scalar::Float(stop))?;
        }
    }
    Ok(t)
}

/// An `n_rows x n_cols` array with ones on diagonal `k` (above the main one for `k > 0`) and
/// zeros elsewhere.
///
/// # Errors
/// Device and allocation errors.
pub fn eye(n_rows: usize, n_cols: usize, k: i64, dtype: DType, device: &Device) -> Result<Tensor> {
    let t = full(&[n_rows, n_cols], Scalar::Int(0), dtype, device)?;
    let (row0, col0) = if k >= 0 {
        (0, k as usize)
    } else {
        ((-k) as usize, 0)
    };
    if row0 < n_rows && col0 < n_cols {
        let len = (n_rows - row0).min(n_cols - col0);
        let diag = Layout::new(&[len], &[n_cols as isize + 1], row0 * n_cols + col0)?;
        t.storage.fill(&diag, Scalar::Int(1))?;
    }
    Ok(t)
}

impl Tensor {
    /// A C-order copy with the elements above diagonal `k` zeroed (`upper = false`, NumPy's
    /// `tril`) or those below it (`upper = true`, `triu`), over the last two axes.
    ///
    /// # Errors
    /// [`Error::Shape`] for arrays of fewer than two dimensions.
    pub fn triangle(&self, k: i64, upper: bool) -> Result<Tensor> {
        if self.ndim() < 2 {
            return Err(Error::Shape(format!(
                "{}: expected an array of at least 2 dimensions, got shape {}",
                if upper { "triu" } else { "tril" },
                fmt_shape(self.shape())
            )));
        }
        let out = self.copy_into_new(self.dtype(), Layout::c_contiguous(self.shape()))?;
        if out.numel() > 0 {
            out.storage.tri_zero(&out.layout, k, upper)?;
        }
        Ok(out)
    }

    /// Sets every element of this view to `value` (converted to the dtype); a view whose
    /// indices overlap (a broadcast) is fine, every write stores the same value.
    ///
    /// # Errors
    /// Device errors.
    pub fn fill_(&self, value: Scalar) -> Result<()> {
        if self.numel() == 0 {
            return Ok(());
        }
        self.storage.fill(&self.layout, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_lengths_follow_numpy() {
        let i = |v| Scalar::Int(v);
        assert_eq!(range_len(i(0), i(10), i(3), DType::I64).unwrap(), 4);
        assert_eq!(range_len(i(10), i(0), i(-3), DType::I64).unwrap(), 4);
        assert_eq!(range_len(i(0), i(-1), i(1), DType::I64).unwrap(), 0);
        let f = |v| Scalar::Float(v);
        assert_eq!(range_len(f(0.0), f(1.0), f(0.1), DType::F64).unwrap(), 10);
        assert!(range_len(i(0), i(1), i(0), DType::I64).is_err());
        let t = arange(i(0), i(3), f(0.5), DType::I32, &Device::Cpu).unwrap();
        assert_eq!(
            t.to_ndarray::<i32>().unwrap().into_raw_vec_and_offset().0,
            vec![0, 0, 1, 1, 2, 2]
        );
    }
}
