//! The `ndarray` entry points: matrix products of 2-D views on the CPU, without copying the
//! operands whatever their strides.

use crate::cpu::gemm::{self, GemmConfig, GemmScalar, MatPtr, MatPtrMut};
use crate::error::{Error, Result};
use crate::ops::fmt_shape;
use ndarray::{Array2, ArrayView2, ShapeBuilder};

/// `a * b` for `f32` or `f64` matrices of any memory order on the CPU.
///
/// ```
/// let a = ndarray::array![[1.0, 2.0], [3.0, 4.0]];
/// let c = pocaflow::matmul(a.view(), a.t());
/// assert_eq!(c, ndarray::array![[5.0, 11.0], [11.0, 25.0]]);
/// ```
///
/// # Panics
/// If `a.ncols() != b.nrows()`, with a message naming both shapes. [`try_matmul`] returns the
/// error instead.
#[track_caller]
pub fn matmul<T: GemmScalar>(a: ArrayView2<'_, T>, b: ArrayView2<'_, T>) -> Array2<T> {
    match try_matmul(a, b) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

/// `a * b` like [`matmul`], returning an error instead of panicking.
///
/// # Errors
/// [`Error::Shape`] if `a.ncols() != b.nrows()`.
pub fn try_matmul<T: GemmScalar>(a: ArrayView2<'_, T>, b: ArrayView2<'_, T>) -> Result<Array2<T>> {
    matmul_with(a, b, GemmConfig::default())
}

/// `a * b` with an explicit microkernel instruction set and thread count.
///
/// The result is in C order, or in Fortran order when both operands are.
///
/// # Errors
/// [`Error::Shape`] if `a.ncols() != b.nrows()`; [`Error::Device`] if this CPU lacks `cfg.isa`.
pub fn matmul_with<T: GemmScalar>(
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    cfg: GemmConfig,
) -> Result<Array2<T>> {
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    if k != k2 {
        return Err(Error::Shape(format!(
            "matmul: shapes {} and {} are not aligned: the last dimension of the first ({k}) \
             differs from the second-to-last dimension of the second ({k2})",
            fmt_shape(a.shape()),
            fmt_shape(b.shape())
        )));
    }
    if !cfg.isa.is_supported() {
        return Err(Error::Device(format!(
            "matmul: this CPU does not support the {} kernel",
            cfg.isa
        )));
    }
    let fortran = a.t().is_standard_layout()
        && b.t().is_standard_layout()
        && !(a.is_standard_layout() && b.is_standard_layout());
    let mut c = Array2::<T>::default((m, n).set_f(fortran));
    let view = |v: &ArrayView2<'_, T>| MatPtr {
        ptr: v.as_ptr(),
        rs: v.strides()[0],
        cs: v.strides()[1],
    };
    let (cs0, cs1) = (c.strides()[0], c.strides()[1]);
    let pc = MatPtrMut {
        ptr: c.as_mut_ptr(),
        rs: cs0,
        cs: cs1,
    };
    // SAFETY: the views guarantee their m x k and k x n elements are readable and not mutated
    // while borrowed; `c` is a fresh m x n array, distinct from both.
    unsafe { gemm::gemm_ptr(m, n, k, view(&a), view(&b), pc, cfg) };
    Ok(c)
}
