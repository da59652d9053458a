//! Elementwise functions on CUDA buffers: the choice of kernel path for `unary` and `binary`
//! (the kernels are in `kernels/elementwise.cu`).
//!
//! - dense: the destination and every array operand dense in one order (C or Fortran), all
//!   16-byte aligned: 16-byte loads and stores, no index arithmetic;
//! - rows (binary): after merging, a C-order `(R, C)` destination and array operands that are
//!   either of that layout or one row broadcast over `R` (stride `(0, 1)`), `C` a multiple of the
//!   16-byte pack, all aligned: the `(8192, 8192) + (8192,)` case;
//! - strided: everything else (unaligned dense views through the one-dimensional case).
//!
//! Scalar operands become kernel parameters (converted to the compute dtype on the host). The
//! dense check and the launch allocate nothing.

use super::kernels::{Arg, View};
use super::storage::{context, scalar_bits, CudaStorage};
use crate::backend::{BackendStorage, Operand};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::plan::{BinaryOp, UnaryOp};

/// Whether `a` and `b` address their elements in one dense order from their offsets.
fn same_dense(a: &Layout, b: &Layout) -> bool {
    (a.is_c_contiguous() && b.is_c_contiguous()) || (a.is_f_contiguous() && b.is_f_contiguous())
}

fn aligned(ptr: u64) -> bool {
    ptr.is_multiple_of(16)
}

fn dtype_error(what: &str, op: &str, got: DType, want: DType) -> Error {
    Error::DType(format!(
        "{op} on CUDA: {what} has dtype {got}, expected {want}"
    ))
}

/// `dst[dst_layout] = op(src[src_layout])`.
pub(crate) fn unary(
    dst: &CudaStorage,
    dl: &Layout,
    op: UnaryOp,
    src: &CudaStorage,
    sl: &Layout,
) -> Result<()> {
    let n = dl.numel();
    if n == 0 {
        return Ok(());
    }
    let compute = src.dtype();
    let want = if op.returns_bool() {
        DType::Bool
    } else {
        compute
    };
    if dst.dtype() != want {
        return Err(dtype_error("the destination", op.name(), dst.dtype(), want));
    }
    let (d, stream) = context(dst.ordinal())?;
    let k = d.kernels();
    let m = k.unary_module(op, compute)?;
    let ptrs = (dst.at(dl.offset()), src.at(sl.offset()));
    if same_dense(dl, sl) && aligned(ptrs.0) && aligned(ptrs.1) {
        k.unary_dense(&stream, m, compute.size_in_bytes(), ptrs, n)?;
    } else {
        let view = if same_dense(dl, sl) {
            View::exact(&[n], [&[1], &[1]])?
        } else {
            View::merged(dl.shape(), [dl.strides(), sl.strides()])?
        };
        k.unary_strided(&stream, m, ptrs, n, view)?;
    }
    src.record_use(&stream);
    dst.record_use(&stream);
    Ok(())
}

/// One binary operand resolved: its launch argument and, for an array, its storage and layout.
type Resolved<'a> = (Arg, Option<(&'a CudaStorage, &'a Layout)>);

/// An operand's launch argument (its address, or a scalar converted to `compute`), after
/// checking an array's dtype.
fn resolve<'a>(op: BinaryOp, compute: DType, o: Operand<'a, CudaStorage>) -> Result<Resolved<'a>> {
    Ok(match o {
        Operand::Array(s, l) => {
            if s.dtype() != compute {
                return Err(dtype_error("an operand", op.name(), s.dtype(), compute));
            }
            (Arg::Ptr(s.at(l.offset())), Some((s, l)))
        }
        Operand::Scalar(v) => (Arg::Bits(scalar_bits(compute, v)), None),
    })
}

/// `dst[dl] = op(a, b)`.
pub(crate) fn binary(
    dst: &CudaStorage,
    dl: &Layout,
    op: BinaryOp,
    a: Operand<'_, CudaStorage>,
    b: Operand<'_, CudaStorage>,
) -> Result<()> {
    let n = dl.numel();
    if n == 0 {
        return Ok(());
    }
    let compute = match (&a, &b) {
        (Operand::Array(s, _), _) | (_, Operand::Array(s, _)) => s.dtype(),
        (Operand::Scalar(_), Operand::Scalar(_)) => {
            return Err(Error::DType(format!(
                "{}: both operands are scalars",
                op.name()
            )))
        }
    };
    let want = if op.returns_bool() {
        DType::Bool
    } else {
        compute
    };
    if dst.dtype() != want {
        return Err(dtype_error("the destination", op.name(), dst.dtype(), want));
    }
    let ((pa, ra), (pb, rb)) = (resolve(op, compute, a)?, resolve(op, compute, b)?);
    let (d, stream) = context(dst.ordinal())?;
    let k = d.kernels();
    let m = k.binary_module(op, compute)?;
    let pd = dst.at(dl.offset());
    let esize = compute.size_in_bytes();
    let arrays = [ra, rb];
    let ptr_ok = |p: Arg| match p {
        Arg::Ptr(p) => aligned(p),
        Arg::Bits(_) => true,
    };
    let dense = arrays.iter().flatten().all(|(_, l)| same_dense(dl, l)) && {
        dl.is_c_contiguous() || dl.is_f_contiguous()
    };
    if dense && aligned(pd) && ptr_ok(pa) && ptr_ok(pb) {
        k.binary_dense(&stream, m, esize, (pd, pa, pb), n)?;
    } else if dense {
        let view = View::exact(&[n], [&[1], &[1], &[1]])?;
        k.binary_strided(&stream, m, (pd, pa, pb), n, view)?;
    } else {
        // A scalar takes the destination's strides: they never stop a merge.
        let (sa, sb) = (
            ra.map_or(dl.strides(), |(_, l)| l.strides()),
            rb.map_or(dl.strides(), |(_, l)| l.strides()),
        );
        let view = View::merged(dl.shape(), [dl.strides(), sa, sb])?;
        match rows_strides(&view, esize) {
            Some((ars, brs)) if aligned(pd) && ptr_ok(pa) && ptr_ok(pb) => {
                let (rows, cols) = (view.extent(0) as usize, view.extent(1) as usize);
                let row_stride = |r: &Option<_>, s: i64| if r.is_some() { s } else { 0 };
                k.binary_rows(
                    &stream,
                    m,
                    esize,
                    (pd, pa, pb),
                    (row_stride(&ra, ars), row_stride(&rb, brs)),
                    (rows, cols),
                )?;
            }
            _ => k.binary_strided(&stream, m, (pd, pa, pb), n, view)?,
        }
    }
    for (s, _) in arrays.iter().flatten() {
        s.record_use(&stream);
    }
    dst.record_use(&stream);
    Ok(())
}

/// The operands' row strides if the merged views are a C-order `(R, C)` destination with
/// operands of stride `(C, 1)` or `(0, 1)` (at least one broadcast row), `C` a multiple of
/// the 16-byte pack of `esize`-byte elements.
fn rows_strides(v: &View<3>, esize: usize) -> Option<(i64, i64)> {
    if v.ndim() != 2 {
        return None;
    }
    let c = v.extent(1);
    let row = |k: usize| {
        let rs = v.stride(k, 0);
        (v.stride(k, 1) == 1 && (rs == c || rs == 0)).then_some(rs)
    };
    let (d, a, b) = (row(0)?, row(1)?, row(2)?);
    let packed = c % (16 / esize) as i64 == 0;
    (d == c && (a == 0 || b == 0) && packed).then_some((a, b))
}
