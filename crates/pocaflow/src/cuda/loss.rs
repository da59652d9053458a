//! The cross-entropy of rows of logits on CUDA buffers (the kernels are in
//! `kernels/loss.cu`); the one wait is for the targets' bounds check.

use super::storage::{context, CudaStorage};
use crate::backend::BackendStorage;
use crate::dtype::DType;
use crate::error::Result;
use crate::layout::Layout;

/// See `BackendStorage::cross_entropy`.
pub(crate) fn cross_entropy(
    dst: &CudaStorage,
    dl: &Layout,
    (logits, ll): (&CudaStorage, &Layout),
    (target, tl): (&CudaStorage, &Layout),
    grad: Option<f64>,
) -> Result<()> {
    let c = *ll.shape().last().expect("2-D logits");
    let rows = tl.numel();
    if rows == 0 {
        return Ok(());
    }
    let (d, stream) = context(dst.ordinal())?;
    let dtype = logits.dtype();
    let m = d.kernels().loss_module(dtype)?;
    let err = CudaStorage::alloc(dst.ordinal(), DType::U64, 4)?;
    err.zero_flag(&stream)?;
    for s in [dst, logits, target, &err] {
        s.record_use(&stream);
    }
    d.kernels().cross_entropy(
        &stream,
        m,
        (
            dst.at(dl.offset()),
            logits.at(ll.offset()),
            target.at(tl.offset()),
        ),
        (rows, c),
        grad,
        dtype == DType::F64,
        err.at(0),
    )?;
    CudaStorage::check_index_error(&err, &stream)
}
