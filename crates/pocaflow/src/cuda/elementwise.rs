//! Elementwise functions, reductions and scans on CUDA buffers (to be written).

use super::storage::CudaStorage;
use crate::backend::Operand;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::plan::{BinaryOp, ReduceOp, ReducePlan, ScanOp, UnaryOp};

fn todo(op: &str) -> Error {
    Error::Device(format!("{op} is not implemented on CUDA yet"))
}

pub(crate) fn unary(
    _: &CudaStorage,
    _: &Layout,
    op: UnaryOp,
    _: &CudaStorage,
    _: &Layout,
) -> Result<()> {
    Err(todo(op.name()))
}

pub(crate) fn binary(
    _: &CudaStorage,
    _: &Layout,
    op: BinaryOp,
    _: Operand<'_, CudaStorage>,
    _: Operand<'_, CudaStorage>,
) -> Result<()> {
    Err(todo(op.name()))
}

pub(crate) fn reduce(
    _: &CudaStorage,
    _: &Layout,
    op: ReduceOp,
    _: &CudaStorage,
    _: &ReducePlan,
) -> Result<()> {
    Err(todo(op.name()))
}

pub(crate) fn scan(
    _: &CudaStorage,
    _: &Layout,
    op: ScanOp,
    _: &CudaStorage,
    _: &Layout,
) -> Result<()> {
    Err(todo(op.name()))
}
