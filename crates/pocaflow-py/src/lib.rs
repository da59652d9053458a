//! Python bindings for pocaflow: the private module `pocaflow._pocaflow`, wrapped by the pure
//! Python package `pocaflow`. Conversions, argument checks and exception mapping live here;
//! everything else is in the core crate.

mod buffer;
mod convert;
mod cuda;
mod distributed;
mod dlpack;
mod errors;
mod linear;
mod math;
mod nn;
mod sparse;
mod tensor;
mod types;

use pocaflow::cpu::gemm::{blocking::CacheSizes, default_threads, Isa};
use pocaflow::DType;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// What pocaflow was built with and will use here, printed and returned as a dict (in the
/// spirit of ``numpy.show_config()``).
#[pyfunction]
fn show_config(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let caches = CacheSizes::detect();
    let info = PyDict::new(py);
    info.set_item("version", env!("CARGO_PKG_VERSION"))?;
    // "pocaflow" (its own packed, cache-blocked SIMD GEMM), or the system BLAS the build links
    // ("openblas" with the `blas` feature, "accelerate" with `accelerate`).
    info.set_item("cpu_backend", pocaflow::cpu::backend_name())?;
    info.set_item("cpu_kernel", Isa::best().to_string())?;
    info.set_item(
        "cpu_kernels_supported",
        Isa::supported()
            .iter()
            .map(Isa::to_string)
            .collect::<Vec<_>>(),
    )?;
    info.set_item("threads", default_threads())?;
    info.set_item("l1d_bytes", caches.l1d)?;
    info.set_item("l2_bytes", caches.l2)?;
    let cuda = match pocaflow::cuda::device_count() {
        Ok(n) if n > 0 => format!("{n} device(s), cuBLASLt matmul"),
        Ok(_) => "no device visible".to_owned(),
        Err(e) => format!("unavailable ({})", e.message()),
    };
    info.set_item("cuda", cuda)?;
    let print = py.import("builtins")?.getattr("print")?;
    for (key, value) in info.iter() {
        print.call1((format!("{key:>22}: {value}"),))?;
    }
    Ok(info)
}

#[pymodule]
fn _pocaflow(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<tensor::PyTensor>()?;
    m.add_class::<types::PyDType>()?;
    m.add_class::<types::PyDevice>()?;
    for d in DType::ALL {
        m.add(d.name(), types::PyDType(d))?;
    }
    m.add("AxisError", errors::axis_error_type(m.py())?)?;
    m.add_function(wrap_pyfunction!(tensor::tensor, m)?)?;
    m.add_function(wrap_pyfunction!(tensor::py_asarray, m)?)?;
    m.add_function(wrap_pyfunction!(tensor::matmul, m)?)?;
    m.add_function(wrap_pyfunction!(tensor::zeros, m)?)?;
    m.add_function(wrap_pyfunction!(tensor::empty, m)?)?;
    m.add_function(wrap_pyfunction!(tensor::full, m)?)?;
    m.add_function(wrap_pyfunction!(tensor::arange, m)?)?;
    m.add_function(wrap_pyfunction!(tensor::linspace, m)?)?;
    m.add_function(wrap_pyfunction!(tensor::eye, m)?)?;
    m.add_function(wrap_pyfunction!(tensor::result_type2, m)?)?;
    m.add_function(wrap_pyfunction!(tensor::can_cast, m)?)?;
    m.add_function(wrap_pyfunction!(tensor::random_fill, m)?)?;
    m.add_function(wrap_pyfunction!(dlpack::from_dlpack_capsule, m)?)?;
    m.add_function(wrap_pyfunction!(types::set_default_device, m)?)?;
    m.add_function(wrap_pyfunction!(types::get_default_device, m)?)?;
    m.add_function(wrap_pyfunction!(show_config, m)?)?;
    math::register(m)?;
    nn::register(m)?;
    linear::register(m)?;
    sparse::register(m)?;
    m.add_class::<cuda::PyStream>()?;
    m.add_class::<distributed::PyCommunicator>()?;
    m.add_function(wrap_pyfunction!(distributed::nccl_unique_id, m)?)?;
    m.add_function(wrap_pyfunction!(distributed::nccl_version, m)?)?;
    m.add_function(wrap_pyfunction!(distributed::nccl_communicator, m)?)?;
    m.add_function(wrap_pyfunction!(distributed::nccl_communicators, m)?)?;
    m.add_function(wrap_pyfunction!(distributed::nccl_group_start, m)?)?;
    m.add_function(wrap_pyfunction!(distributed::nccl_group_end, m)?)?;
    m.add_class::<cuda::PyEvent>()?;
    m.add_function(wrap_pyfunction!(cuda::set_matmul_precision, m)?)?;
    m.add_function(wrap_pyfunction!(cuda::get_matmul_precision, m)?)?;
    m.add_function(wrap_pyfunction!(cuda::cuda_device_count, m)?)?;
    m.add_function(wrap_pyfunction!(cuda::cuda_unavailable_reason, m)?)?;
    m.add_function(wrap_pyfunction!(cuda::cuda_synchronize, m)?)?;
    m.add_function(wrap_pyfunction!(cuda::cuda_current_stream, m)?)?;
    m.add_function(wrap_pyfunction!(cuda::cuda_memory_stats, m)?)?;
    m.add_function(wrap_pyfunction!(cuda::cuda_empty_cache, m)?)?;
    m.add_function(wrap_pyfunction!(cuda::cuda_set_small_matmul_threshold, m)?)?;
    m.add_function(wrap_pyfunction!(cuda::cuda_small_matmul_threshold, m)?)?;
    Ok(())
}
