//! The row-wise ops of `pf.nn` on CUDA buffers: the choice of kernel (the kernels are in
//! `kernels/rowwise.cu`).
//!
//! Rows of up to 32768 elements (16384 for the backward ops, 8192 for float64) are held in
//! registers, read once and written once: a group of 4 to 32 lanes of a warp per row for rows up to 1024 elements, a
//! block of 128 to 1024 threads per row above; longer rows take a block per row that reads the
//! row once per pass. Every operand moves in 16-byte packs when all pointers are 16-byte
//! aligned and the row length is a multiple of the pack, else element by element. One launch,
//! nothing allocated, nothing waited for.

use super::kernels::RowPtrs;
use super::storage::{context, CudaStorage};
use crate::backend::{BackendStorage, RowArgs};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::plan::RowPlan;

/// Checks that `s` has dtype `want` and lives on device `ordinal`.
fn check(plan: &RowPlan, what: &str, s: &CudaStorage, want: DType, ordinal: usize) -> Result<()> {
    if s.dtype() != want {
        return Err(Error::DType(format!(
            "{} on CUDA: {what} has dtype {}, expected {want}",
            plan.op.name(),
            s.dtype()
        )));
    }
    if s.ordinal() != ordinal {
        return Err(Error::Device(format!(
            "{} on CUDA: {what} is on cuda:{}, the result on cuda:{ordinal}",
            plan.op.name(),
            s.ordinal()
        )));
    }
    Ok(())
}

/// See `BackendStorage::rowwise`.
pub(crate) fn rowwise(
    dst: &CudaStorage,
    dl: &Layout,
    plan: &RowPlan,
    args: &RowArgs<'_, CudaStorage>,
) -> Result<()> {
    let dtype = dst.dtype();
    if !dtype.is_float() {
        return Err(Error::DType(format!(
            "{}: expected a floating-point dtype, got {dtype}",
            plan.op.name()
        )));
    }
    if plan.op.is_backward() != args.dy.is_some() || plan.op.writes_stats() != args.stats.is_some()
    {
        return Err(Error::Shape(format!(
            "{}: dy is given exactly to the backward ops, stats to the backward normalizations",
            plan.op.name()
        )));
    }
    if plan.rows == 0 {
        return Ok(());
    }
    let ordinal = dst.ordinal();
    let stats_dtype = if dtype == DType::F64 {
        DType::F64
    } else {
        DType::F32
    };
    let rows_operands = [
        ("x", Some(args.x)),
        ("dy", args.dy),
        ("weight", args.weight),
        ("bias", args.bias),
    ];
    for (what, o) in rows_operands {
        if let Some((s, _)) = o {
            check(plan, what, s, dtype, ordinal)?;
        }
    }
    if let Some((s, _)) = args.stats {
        check(plan, "stats", s, stats_dtype, ordinal)?;
    }
    let at = |o: Option<(&CudaStorage, &Layout)>| o.map_or(0, |(s, l)| s.at(l.offset()));
    let p = RowPtrs {
        out: dst.at(dl.offset()),
        x: at(Some(args.x)),
        dy: at(args.dy),
        weight: at(args.weight),
        bias: at(args.bias),
        stats: at(args.stats),
    };
    let (d, stream) = context(ordinal)?;
    let k = d.kernels();
    let m = k.row_module(plan.op, dtype)?;
    k.rowwise(&stream, m, plan, p, p.packed(plan.n, dtype.size_in_bytes()))?;
    for (_, o) in rows_operands {
        if let Some((s, _)) = o {
            s.record_use(&stream);
        }
    }
    if let Some((s, _)) = args.stats {
        s.record_use(&stream);
    }
    dst.record_use(&stream);
    Ok(())
}
