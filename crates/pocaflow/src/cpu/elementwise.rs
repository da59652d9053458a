//! Elementwise functions on host buffers (being written).

use super::storage::CpuStorage;
use crate::backend::Operand;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::plan::{BinaryOp, UnaryOp};

pub(crate) fn unary(
    _: &CpuStorage,
    _: &Layout,
    op: UnaryOp,
    _: &CpuStorage,
    _: &Layout,
) -> Result<()> {
    Err(Error::Device(op.name().into()))
}

pub(crate) fn binary(
    _: &CpuStorage,
    _: &Layout,
    op: BinaryOp,
    _: Operand<'_, CpuStorage>,
    _: Operand<'_, CpuStorage>,
) -> Result<()> {
    Err(Error::Device(op.name().into()))
}
