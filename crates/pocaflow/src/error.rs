//! The one error type of the crate.
//!
//! Every fallible operation returns [`Result`]. Each variant maps to one Python exception in the
//! bindings: [`Error::Shape`] to `ValueError`, [`Error::DType`] to `TypeError`, [`Error::Index`] to
//! `IndexError`, [`Error::Axis`] to `pocaflow.AxisError` (a `ValueError` and an `IndexError`),
//! [`Error::Device`] and
//! [`Error::Cuda`] to `RuntimeError`, [`Error::OutOfMemory`] to `MemoryError`.

use std::fmt;

/// What went wrong. The message always names the operation and the offending shapes, dtypes or
/// devices, so that it can be shown to a user as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Shapes, strides or arguments that the operation cannot accept.
    Shape(String),
    /// A dtype the operation does not support, or dtypes that do not match.
    DType(String),
    /// An index out of bounds, or an index the array cannot take.
    Index(String),
    /// An axis argument out of range for the array (NumPy's `AxisError`, both a `ValueError`
    /// and an `IndexError`).
    Axis(String),
    /// A device that is not available, or operands on different devices.
    Device(String),
    /// A CUDA driver or library call failed; the message carries the CUDA error name.
    Cuda(String),
    /// Memory could not be allocated (after the caching allocator emptied its cache and retried).
    OutOfMemory(String),
}

/// `std::result::Result` with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, msg) = match self {
            Error::Shape(m) => ("shape error", m),
            Error::DType(m) => ("dtype error", m),
            Error::Index(m) => ("index error", m),
            Error::Axis(m) => ("axis error", m),
            Error::Device(m) => ("device error", m),
            Error::Cuda(m) => ("CUDA error", m),
            Error::OutOfMemory(m) => ("out of memory", m),
        };
        write!(f, "{kind}: {msg}")
    }
}

impl std::error::Error for Error {}

impl Error {
    /// The message without the kind prefix (what the Python exception carries).
    pub fn message(&self) -> &str {
        match self {
            Error::Shape(m)
            | Error::DType(m)
            | Error::Index(m)
            | Error::Axis(m)
            | Error::Device(m)
            | Error::Cuda(m)
            | Error::OutOfMemory(m) => m,
        }
    }
}
