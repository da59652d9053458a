//! Reductions and scans on host buffers (being written).

use super::storage::CpuStorage;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::plan::{ReduceOp, ReducePlan, ScanOp};

pub(crate) fn reduce(
    _: &CpuStorage,
    _: &Layout,
    op: ReduceOp,
    _: &CpuStorage,
    _: &ReducePlan,
) -> Result<()> {
    Err(Error::Device(op.name().into()))
}

pub(crate) fn scan(
    _: &CpuStorage,
    _: &Layout,
    op: ScanOp,
    _: &CpuStorage,
    _: &Layout,
) -> Result<()> {
    Err(Error::Device(op.name().into()))
}
