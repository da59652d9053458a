//! Operations: each validates its operands, computes the output layout and dispatches to a
//! backend. Backends never re-validate user input.

pub mod matmul;

pub use matmul::matmul;

use crate::device::Device;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// The common device of an operation's tensors, or an error naming the devices that differ.
pub(crate) fn same_device(op: &str, tensors: &[&Tensor]) -> Result<Device> {
    let first = tensors[0].device();
    match tensors.iter().find(|t| t.device() != first) {
        None => Ok(first),
        Some(t) => Err(Error::Device(format!(
            "{op}: expected all tensors on one device, got {first} and {}",
            t.device()
        ))),
    }
}

/// A shape written as a Python tuple: `(2, 3)`, `(3,)`, `()`.
pub(crate) fn fmt_shape(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
