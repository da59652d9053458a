//! The row-wise ops of `pf.nn` on CUDA buffers.

use super::storage::CudaStorage;
use crate::backend::RowArgs;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::plan::RowPlan;

/// See `BackendStorage::rowwise`.
pub(crate) fn rowwise(
    _dst: &CudaStorage,
    _dl: &Layout,
    plan: &RowPlan,
    _args: &RowArgs<'_, CudaStorage>,
) -> Result<()> {
    Err(Error::Device(format!(
        "{}: not yet implemented on CUDA",
        plan.op.name()
    )))
}
