//! Reductions and scans on CUDA buffers: the choice of kernel path (the kernels are in
//! `kernels/reduce.cu`).
//!
//! The plan's kept and reduced dimensions are merged separately; then
//! - inner: the reduced elements of each output are contiguous: a warp per row (rows up to
//!   1024 elements) or a block per row, with the rows split into chunks over more blocks when
//!   there are few (the whole-array reduction is one row);
//! - outer: the outputs are contiguous and the reduced dimensions merge into one (axis 0 of a
//!   C-order matrix): threads over columns, the reduced length split over blocks;
//! - general: anything else, a block per output (and chunk).
//!
//! Split reductions write partial accumulators to a pool buffer (released stream-ordered when
//! this returns) and a second kernel reduces them. Nothing waits for the device.

use super::kernels::{ReduceShape, View, MAX_SPLITS, PARTIAL_BYTES};
use super::storage::{context, CudaStorage};
use crate::backend::BackendStorage;
use crate::dtype::{DType, Scalar};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::plan::{ReduceOp, ReducePlan, ScanOp};

/// Blocks a split reduction aims for (a few waves of the largest GPUs).
const TARGET_BLOCKS: usize = 2048;
/// Rows up to this length take a warp each.
const WARP_ROW: usize = 1024;
/// The fewest 16-byte packs one block of a split row reduces (eight per thread).
const MIN_CHUNK_PACKS: usize = 256 * 8;
/// Most grid blocks along x.
const MAX_GRID_X: usize = i32::MAX as usize;

/// Whether `dst` (dtype `got`) may receive `op` of an operand of `src`.
fn check_dtypes(op: &str, sum_like: bool, src: DType, got: DType, want: DType) -> Result<()> {
    let ok = if sum_like && !src.is_float() {
        matches!(got, DType::I64 | DType::U64)
    } else {
        got == want
    };
    if ok {
        Ok(())
    } else {
        Err(Error::DType(format!(
            "{op} on CUDA: cannot reduce {src} into {got}"
        )))
    }
}

/// Chunks of at least `min_chunk` elements (a multiple of `align`) that split `l` into about
/// `want` pieces: `(chunk, splits)`.
fn split(l: usize, want: usize, min_chunk: usize, align: usize) -> (usize, usize) {
    let splits = want.clamp(1, l.div_ceil(min_chunk).max(1)).min(MAX_SPLITS);
    let chunk = l.div_ceil(splits).div_ceil(align) * align;
    (chunk, l.div_ceil(chunk))
}

/// Reduces `src[plan.src]` into the dense C-order `dst[dl]` (see `BackendStorage::reduce`).
pub(crate) fn reduce(
    dst: &CudaStorage,
    dl: &Layout,
    op: ReduceOp,
    src: &CudaStorage,
    plan: &ReducePlan,
) -> Result<()> {
    let sd = src.dtype();
    let want = match op {
        ReduceOp::Sum | ReduceOp::Prod | ReduceOp::Max | ReduceOp::Min => sd,
        ReduceOp::All | ReduceOp::Any => DType::Bool,
        ReduceOp::Argmax | ReduceOp::Argmin => DType::I64,
    };
    let sum_like = matches!(op, ReduceOp::Sum | ReduceOp::Prod);
    check_dtypes(op.name(), sum_like, sd, dst.dtype(), want)?;
    if matches!(op, ReduceOp::All | ReduceOp::Any) && sd != DType::Bool {
        return Err(Error::DType(format!(
            "{} on CUDA: expected a bool operand, got {sd}",
            op.name()
        )));
    }
    let k: usize = plan.out_shape().iter().product();
    if k == 0 {
        return Ok(());
    }
    if !dl.is_c_contiguous() {
        return Err(Error::Shape(format!(
            "{}: the destination of a reduction must be dense in C order",
            op.name()
        )));
    }
    let l = plan.reduced_len();
    if l == 0 {
        let identity = match op {
            ReduceOp::Sum => Scalar::Int(0),
            ReduceOp::Prod => Scalar::Int(1),
            ReduceOp::All => Scalar::Bool(true),
            ReduceOp::Any => Scalar::Bool(false),
            _ => {
                return Err(Error::Shape(format!(
                    "{}: zero-size reduction, which has no identity",
                    op.name()
                )))
            }
        };
        return dst.fill(dl, identity);
    }
    let (d, stream) = context(dst.ordinal())?;
    let kern = d.kernels();
    let m = kern.reduce_module(op, sd)?;
    let (shape, strides, kept) = (plan.src.shape(), plan.src.strides(), plan.kept);
    let kv = View::merged(&shape[..kept], [&strides[..kept]])?;
    let rv = View::merged(&shape[kept..], [&strides[kept..]])?;
    let esize = sd.size_in_bytes();
    let pack = 16 / esize;
    let (ps, pd) = (src.at(plan.src.offset()), dst.at(dl.offset()));
    let inner = rv.ndim() == 0 || (rv.ndim() == 1 && rv.stride(0, 0) == 1);
    let outer = !inner && kv.ndim() == 1 && kv.stride(0, 0) == 1 && rv.ndim() == 1;
    if !outer && k > MAX_GRID_X {
        return Err(Error::Shape(format!(
            "{}: {k} outputs exceed the CUDA grid",
            op.name()
        )));
    }
    let partials = |splits: usize| -> Result<Option<CudaStorage>> {
        if splits == 1 {
            return Ok(None);
        }
        CudaStorage::alloc(dst.ordinal(), DType::U8, k * splits * PARTIAL_BYTES).map(Some)
    };
    let at = |p: &Option<CudaStorage>| p.as_ref().map_or(0, |p| p.at(0));
    let (shape, part, cols) = if inner && l <= WARP_ROW {
        let s = ReduceShape {
            k,
            l,
            chunk: l,
            splits: 1,
        };
        kern.reduce_inner(&stream, m, true, (ps, pd, 0), s, kv)?;
        (s, None, false)
    } else if inner {
        let (chunk, splits) = split(l, TARGET_BLOCKS.div_ceil(k), MIN_CHUNK_PACKS * pack, pack);
        let s = ReduceShape {
            k,
            l,
            chunk,
            splits,
        };
        let part = partials(splits)?;
        kern.reduce_inner(&stream, m, false, (ps, pd, at(&part)), s, kv)?;
        (s, part, false)
    } else if outer {
        let rs = rv.stride(0, 0);
        let vec = k.is_multiple_of(pack) && ps.is_multiple_of(16) && (rs * esize as i64) % 16 == 0;
        let columns = super::kernels::Kernels::outer_columns(k, if vec { pack } else { 1 });
        let (chunk, splits) = split(l, TARGET_BLOCKS.div_ceil(columns), 64, 1);
        let s = ReduceShape {
            k,
            l,
            chunk,
            splits,
        };
        let part = partials(splits)?;
        kern.reduce_outer(&stream, m, (vec, esize), (ps, pd, at(&part)), s, rs)?;
        (s, part, true)
    } else {
        let threads = if l <= 256 { 32 } else { 256 };
        let (chunk, splits) = split(l, TARGET_BLOCKS.div_ceil(k), threads as usize * 8, 1);
        let s = ReduceShape {
            k,
            l,
            chunk,
            splits,
        };
        let part = partials(splits)?;
        kern.reduce_general(&stream, m, threads, (ps, pd, at(&part)), s, (kv, rv))?;
        (s, part, false)
    };
    if let Some(p) = &part {
        kern.reduce_finish(&stream, m, cols, (p.at(0), pd), shape)?;
        p.record_use(&stream);
    }
    src.record_use(&stream);
    dst.record_use(&stream);
    Ok(())
}

/// Running sums or products along the last dimension (see `BackendStorage::scan`).
pub(crate) fn scan(
    dst: &CudaStorage,
    dl: &Layout,
    op: ScanOp,
    src: &CudaStorage,
    sl: &Layout,
) -> Result<()> {
    let sd = src.dtype();
    check_dtypes(op.name(), true, sd, dst.dtype(), sd)?;
    let n = dl.numel();
    if n == 0 {
        return Ok(());
    }
    let nd = dl.ndim();
    let (l, dls, sls) = match nd {
        0 => (1, 0, 0),
        _ => (
            dl.shape()[nd - 1],
            dl.strides()[nd - 1] as i64,
            sl.strides()[nd - 1] as i64,
        ),
    };
    let lead_dims = nd.saturating_sub(1);
    let lead = View::merged(
        &dl.shape()[..lead_dims],
        [&dl.strides()[..lead_dims], &sl.strides()[..lead_dims]],
    )?;
    let (d, stream) = context(dst.ordinal())?;
    let kern = d.kernels();
    let rop = match op {
        ScanOp::Sum => ReduceOp::Sum,
        ScanOp::Prod => ReduceOp::Prod,
    };
    let m = kern.reduce_module(rop, sd)?;
    kern.scan(
        &stream,
        m,
        (src.at(sl.offset()), dst.at(dl.offset())),
        (n / l, l),
        lead,
        (dls, sls),
    )?;
    src.record_use(&stream);
    dst.record_use(&stream);
    Ok(())
}
