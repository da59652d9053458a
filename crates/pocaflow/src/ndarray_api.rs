//! The `ndarray` entry points: matrix products of 2-D views on the CPU, without copying the
//! operands whatever their strides.

use crate::cpu::gemm::{self, Epilogue, GemmConfig, GemmScalar, MatPtr, MatPtrMut};
use crate::cpu::Multiplier;
use crate::error::{Error, Result};
use crate::layout::fmt_shape;
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
/// Runs on the CPU backend in use ([`crate::cpu::backend_name`]): pocaflow's own GEMM with
/// the default [`GemmConfig`], or the system BLAS when the `blas` or `accelerate` feature is on.
///
/// # Errors
/// [`Error::Shape`] if `a.ncols() != b.nrows()`.
pub fn try_matmul<T: GemmScalar>(a: ArrayView2<'_, T>, b: ArrayView2<'_, T>) -> Result<Array2<T>> {
    product(a, b, |m, n, k, pa, pb, pc| {
        // SAFETY: forwarded from `product`.
        unsafe {
            Multiplier::new(GemmConfig::default()).product(m, n, k, pa, pb, pc, Epilogue::NONE)
        }
    })
}

/// `a * b` with pocaflow's own GEMM, an explicit microkernel instruction set and thread count
/// (whatever the backend in use).
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
    if !cfg.isa.is_supported() {
        return Err(Error::Device(format!(
            "matmul: this CPU does not support the {} kernel",
            cfg.isa
        )));
    }
    product(a, b, |m, n, k, pa, pb, pc| {
        // SAFETY: forwarded from `product`; the ISA is supported.
        unsafe { gemm::gemm_ptr(m, n, k, pa, pb, pc, cfg, Epilogue::NONE) }
    })
}

/// Checks the shapes, allocates the result (C order, or F order when both operands are) and
/// has `run(m, n, k, a, b, c)` fill it; `run` may rely on `a` being readable for `m x k`, `b`
/// for `k x n`, and `c` writable for `m x n` distinct elements that overlap neither.
fn product<T: GemmScalar>(
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    run: impl FnOnce(usize, usize, usize, MatPtr<T>, MatPtr<T>, MatPtrMut<T>),
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
    // The views guarantee their m x k and k x n elements are readable and not mutated while
    // borrowed; `c` is a fresh m x n array, distinct from both.
    run(m, n, k, view(&a), view(&b), pc);
    Ok(c)
}
