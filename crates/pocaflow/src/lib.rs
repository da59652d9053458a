//! pocaflow: a lean, fast linear-algebra library.
//!
//! - [`matmul`] / [`try_matmul`] multiply `ndarray` matrices on the CPU with pocaflow's own
//!   packed, SIMD, multi-threaded GEMM;
//! - [`Tensor`] holds data on a [`Device`] (the CPU or a CUDA GPU) and multiplies with NumPy
//!   semantics through [`ops::matmul`].
//!
//! ```
//! let a = ndarray::Array2::<f64>::ones((64, 32));
//! let b = ndarray::Array2::<f64>::ones((32, 16));
//! let c = pocaflow::matmul(a.view(), b.view());
//! assert!(c.iter().all(|&x| x == 32.0));
//! ```

mod backend;
pub mod cpu;
mod csr;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod device;
#[cfg(feature = "cuda")]
pub mod distributed;
pub mod dtype;
pub mod error;
mod external;
pub mod host;
mod host_cache;
pub mod layout;
mod ndarray_api;
pub mod ops;
pub mod plan;
pub mod random;
mod storage;
pub mod tensor;

pub use device::Device;
pub use dtype::{DType, Element, Kind, Scalar};
pub use error::{Error, Result};
pub use host::CpuBuffer;
pub use layout::Layout;
pub use ndarray_api::{matmul, matmul_with, try_matmul};
pub use ops::{nn, sparse};
pub use plan::{BinaryOp, ReduceOp, ScanOp, UnaryOp};
pub use tensor::Tensor;
