//! Operations: each validates its operands, computes the output layout and dispatches to a
//! backend. Backends never re-validate user input.

pub mod creation;
pub mod elementwise;
pub mod index;
pub mod linear;
pub mod matmul;
pub mod nn;
pub mod random;
pub mod reduce;
pub mod sparse;
pub mod view;

pub use creation::{arange, eye, full, linspace};
pub use elementwise::{binary, clip, unary, Value};
pub use index::IndexItem;
pub use matmul::{matmul, matmul_as};

use crate::device::Device;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// The common device of an operation's tensors, or an error naming the devices that differ.
pub(crate) fn same_device(op: &str, tensors: &[&Tensor]) -> Result<Device> {
    let first = tensors[0].device();
    match tensors.iter().find(|t| t.device() != first) {
        None => Ok(first),
        Some(t) => Err(Error::Device(format!(
            "{op}: expected all arrays on one device, got {first} and {}",
            t.device()
        ))),
    }
}
