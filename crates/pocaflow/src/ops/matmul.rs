//! `matmul`: the single dispatch point for matrix products, with NumPy semantics.

use super::same_device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::layout::{broadcast_shapes, fmt_shape, Layout};
use crate::plan::{Epilogue, MatmulPlan};
use crate::tensor::Tensor;

/// The shapes of a matmul: `batch + [m, k]` times `batch + [k, n]`, after NumPy's promotion of
/// 1-D operands (a vector `a` becomes `[1, k]`, a vector `b` becomes `[k, 1]`, and the added axis
/// is removed from the result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MatmulShapes {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    /// The broadcast batch shape.
    pub batch: Vec<usize>,
    /// The shape of the result as the user sees it.
    pub out: Vec<usize>,
    a_vec: bool,
    b_vec: bool,
}

impl MatmulShapes {
    pub(crate) fn new(a: &[usize], b: &[usize]) -> Result<MatmulShapes> {
        for (i, s) in [a, b].iter().enumerate() {
            if s.is_empty() {
                return Err(Error::Shape(format!(
                    "matmul: operand {i} is a scalar (shape ()); matmul needs at least one \
                     dimension (use multiplication for scalars)"
                )));
            }
        }
        let (a_vec, b_vec) = (a.len() == 1, b.len() == 1);
        let (m, k) = if a_vec {
            (1, a[0])
        } else {
            (a[a.len() - 2], a[a.len() - 1])
        };
        let (k2, n) = if b_vec {
            (b[0], 1)
        } else {
            (b[b.len() - 2], b[b.len() - 1])
        };
        if k != k2 {
            return Err(Error::Shape(format!(
                "matmul: shapes {} and {} are not aligned: the last dimension of the first \
                 ({k}) differs from the {} dimension of the second ({k2})",
                fmt_shape(a),
                fmt_shape(b),
                if b_vec { "only" } else { "second-to-last" },
            )));
        }
        let batch_of = |s: &[usize]| s[..s.len().saturating_sub(2)].to_vec();
        let batch = broadcast_shapes(&batch_of(a), &batch_of(b)).ok_or_else(|| {
            Error::Shape(format!(
                "matmul: the batch dimensions of shapes {} and {} cannot be broadcast together",
                fmt_shape(a),
                fmt_shape(b)
            ))
        })?;
        let mut out = batch.clone();
        if !a_vec {
            out.push(m);
        }
        if !b_vec {
            out.push(n);
        }
        Ok(MatmulShapes {
            m,
            k,
            n,
            batch,
            out,
            a_vec,
            b_vec,
        })
    }
}

impl MatmulShapes {
    /// The plan of this product over operand layouts `a` and `b` into `c` (the output shape).
    pub(crate) fn plan(&self, a: &Layout, b: &Layout, c: &Layout) -> Result<MatmulPlan> {
        let sh = self;
        let mut a_shape = sh.batch.clone();
        a_shape.extend([sh.m, sh.k]);
        let mut b_shape = sh.batch.clone();
        b_shape.extend([sh.k, sh.n]);
        let a = if sh.a_vec {
            Layout::new(&[1, sh.k], &[0, a.strides()[0]], a.offset())?
        } else {
            a.clone()
        };
        let b = if sh.b_vec {
            Layout::new(&[sh.k, 1], &[b.strides()[0], 0], b.offset())?
        } else {
            b.clone()
        };
        // C: re-insert the axes that 1-D operands removed (extent 1, so any stride will do).
        let nb = sh.batch.len();
        let cs = c.strides();
        let m_stride = if sh.a_vec { 0 } else { cs[nb] };
        let n_stride = if sh.b_vec {
            0
        } else {
            cs[nb + usize::from(!sh.a_vec)]
        };
        let mut c_strides = cs[..nb].to_vec();
        c_strides.extend([m_stride, n_stride]);
        let mut c_shape = sh.batch.clone();
        c_shape.extend([sh.m, sh.n]);
        Ok(MatmulPlan {
            m: sh.m,
            k: sh.k,
            n: sh.n,
            batch: sh.batch.clone(),
            a: a.broadcast_to(&a_shape)?,
            b: b.broadcast_to(&b_shape)?,
            c: Layout::new(&c_shape, &c_strides, c.offset())?,
            epilogue: Epilogue::default(),
        })
    }
}

/// Matrix product with NumPy `matmul` semantics.
///
/// - 2-D operands multiply as matrices; a 1-D first operand is a row vector and a 1-D second
///   operand a column vector, and the added axis is removed from the result.
/// - N-D operands are stacks of matrices in the last two axes; the batch axes broadcast.
/// - Mixed float dtypes promote as in NumPy (float32 with float64 gives float64).
/// - C-order, Fortran-order and transposed operands go to the kernel as they are; other strides
///   are packed by the kernel (CPU) or copied once (CUDA).
/// - The result is in C order, except that the product of two 2-D Fortran-order operands is in
///   Fortran order. With `out`, the result is written there (any layout without overlapping
///   elements) and `out` is returned.
/// - float16 and bfloat16 products are computed in float32 and rounded once; a float32 `out`
///   takes the float32 result instead (see [`matmul_as`]).
///
/// # Errors
/// - [`Error::Shape`]: a scalar operand, inner dimensions that differ, batch dimensions that do
///   not broadcast, or an `out` of the wrong shape or with overlapping elements;
/// - [`Error::DType`]: an `out` of another dtype than the result (float32 for a float16 or
///   bfloat16 product aside), or dtypes the device cannot multiply;
/// - [`Error::Device`]: operands on different devices.
pub fn matmul(a: &Tensor, b: &Tensor, out: Option<&Tensor>) -> Result<Tensor> {
    if !a.dtype().is_float() || !b.dtype().is_float() {
        return Err(Error::DType(format!(
            "matmul: expected floating-point arrays, got {} and {}",
            a.dtype(),
            b.dtype()
        )));
    }
    let device = match out {
        Some(o) => same_device("matmul", &[a, b, o])?,
        None => same_device("matmul", &[a, b])?,
    };
    let shapes = MatmulShapes::new(a.shape(), b.shape())?;
    let dtype = DType::promote(a.dtype(), b.dtype());
    if let Some(o) = out {
        if o.shape() != shapes.out.as_slice() {
            return Err(Error::Shape(format!(
                "matmul: out has shape {} but the product of {} and {} has shape {}",
                fmt_shape(o.shape()),
                fmt_shape(a.shape()),
                fmt_shape(b.shape()),
                fmt_shape(&shapes.out)
            )));
        }
        let half = matches!(dtype, DType::F16 | DType::BF16);
        if o.dtype() != dtype && !(half && o.dtype() == DType::F32) {
            return Err(Error::DType(format!(
                "matmul: out has dtype {} but the product of {} and {} is {dtype}{}",
                o.dtype(),
                a.dtype(),
                b.dtype(),
                if half {
                    " (or float32, on request)"
                } else {
                    ""
                }
            )));
        }
        if o.layout().may_overlap() {
            return Err(Error::Shape(format!(
                "matmul: out (shape {}, strides {:?}) has overlapping elements",
                fmt_shape(o.shape()),
                o.strides()
            )));
        }
    }
    let blas = a.storage.needs_blas_operands();
    // Operands a BLAS cannot describe (steps, negative strides) are copied once into C order.
    let prepare = |t: &Tensor| -> Result<Tensor> {
        let t = t.to_dtype(dtype)?;
        if blas && !blas_describable(t.layout()) {
            return t.contiguous();
        }
        Ok(t)
    };
    let a = prepare(a)?;
    let b = prepare(b)?;
    let fortran = a.ndim() == 2
        && b.ndim() == 2
        && a.layout().is_f_contiguous()
        && b.layout().is_f_contiguous()
        && !(a.layout().is_c_contiguous() && b.layout().is_c_contiguous());
    let fresh = |shape: &[usize]| {
        let layout = if fortran {
            Layout::f_contiguous(shape)
        } else {
            Layout::c_contiguous(shape)
        };
        // Every element of the product is written (k = 0 included), so nothing is filled first.
        Tensor::uninit(layout, out.map_or(dtype, Tensor::dtype), device)
    };
    let target = match out {
        Some(o)
            if !o.shares_storage_with(&a)
                && !o.shares_storage_with(&b)
                && (!blas || blas_describable(o.layout())) =>
        {
            o.clone()
        }
        _ => fresh(&shapes.out)?,
    };
    let plan = shapes.plan(a.layout(), b.layout(), target.layout())?;
    target.storage.matmul(&plan, &a.storage, &b.storage, None)?;
    match out {
        // `out` overlaps an operand (or is not BLAS-describable): the product went to a fresh
        // tensor first.
        Some(o) if !o.shares_storage_with(&target) => {
            o.copy_(&target)?;
            Ok(o.clone())
        }
        _ => Ok(target),
    }
}

/// [`matmul`] into a new C-order array of `dtype`: the product's own dtype, or float32 for
/// float16 and bfloat16 operands (their float32 products and sums, not rounded).
///
/// # Errors
/// As [`matmul`] with an `out` of `dtype`.
pub fn matmul_as(a: &Tensor, b: &Tensor, dtype: DType) -> Result<Tensor> {
    let device = same_device("matmul", &[a, b])?;
    let shapes = MatmulShapes::new(a.shape(), b.shape())?;
    let out = Tensor::uninit(Layout::c_contiguous(&shapes.out), dtype, device)?;
    matmul(a, b, Some(&out))
}

impl Tensor {
    /// `a @ b` with NumPy `matmul` semantics; see [`matmul`].
    ///
    /// # Errors
    /// As [`matmul`].
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        matmul(self, other, None)
    }
}

/// Whether every matrix (last two axes) of `l` has a BLAS order and leading dimension. A 1-D
/// operand is described as a one-row matrix: any positive stride will do, a zero or negative
/// one will not.
pub(crate) fn blas_describable(l: &Layout) -> bool {
    use crate::layout::BlasMatrix;
    match (l.shape(), l.strides()) {
        ([.., r, c], [.., rs, cs]) => BlasMatrix::classify(*r, *c, *rs, *cs).is_some(),
        ([n], [s]) => BlasMatrix::classify(1, *n, 0, *s).is_some(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_need_a_positive_stride_to_be_described() {
        let v = |stride: isize, offset: usize| Layout::new(&[5], &[stride], offset).unwrap();
        assert!(blas_describable(&v(1, 0)));
        assert!(blas_describable(&v(3, 0)));
        assert!(!blas_describable(&v(-1, 4)));
        assert!(!blas_describable(&v(0, 0)));
        assert!(blas_describable(&Layout::new(&[1], &[0], 0).unwrap()));
    }

    #[test]
    fn shapes_follow_numpy() {
        let s = |a: &[usize], b: &[usize]| MatmulShapes::new(a, b).map(|s| s.out);
        assert_eq!(s(&[2, 3], &[3, 4]).unwrap(), vec![2, 4]);
        assert_eq!(s(&[3], &[3, 4]).unwrap(), vec![4]);
        assert_eq!(s(&[2, 3], &[3]).unwrap(), vec![2]);
        assert_eq!(s(&[3], &[3]).unwrap(), Vec::<usize>::new());
        assert_eq!(s(&[5, 1, 2, 3], &[4, 3, 6]).unwrap(), vec![5, 4, 2, 6]);
        assert_eq!(s(&[3], &[7, 3, 2]).unwrap(), vec![7, 2]);
        assert_eq!(s(&[0, 3], &[3, 0]).unwrap(), vec![0, 0]);
        let e = s(&[2, 3], &[4, 5]).unwrap_err();
        assert!(
            e.message().contains("(2, 3)") && e.message().contains("(4, 5)"),
            "{e}"
        );
        let e = s(&[2, 2, 3], &[3, 3, 4]).unwrap_err();
        assert!(e.message().contains("broadcast"), "{e}");
        assert!(s(&[], &[3]).unwrap_err().message().contains("scalar"));
    }
}
