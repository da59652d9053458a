//! `pf.nn`: the native submodule `_pocaflow.nn` (activations, softmax, normalizations, losses,
//! forward and backward), re-exported by `python/pocaflow/nn`.

use crate::math::{run, tensor_arg};
use crate::tensor::PyTensor;
use pocaflow::nn::{self, GeluApproximate, Reduction};
use pocaflow::Tensor;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

fn wrap(t: Tensor) -> PyTensor {
    PyTensor::wrap(t)
}

fn opt_tensor(x: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Tensor>> {
    x.filter(|o| !o.is_none()).map(tensor_arg).transpose()
}

fn approximate(name: &str, s: &str) -> PyResult<GeluApproximate> {
    match s {
        "none" => Ok(GeluApproximate::None),
        "tanh" => Ok(GeluApproximate::Tanh),
        _ => Err(PyValueError::new_err(format!(
            "{name}: approximate must be 'none' or 'tanh', got {s:?}"
        ))),
    }
}

fn reduction(name: &str, s: &str) -> PyResult<Reduction> {
    match s {
        "mean" => Ok(Reduction::Mean),
        "sum" => Ok(Reduction::Sum),
        "none" => Ok(Reduction::None),
        _ => Err(PyValueError::new_err(format!(
            "{name}: reduction must be 'mean', 'sum' or 'none', got {s:?}"
        ))),
    }
}

/// `normalized_shape` as an int or a sequence of ints.
fn normalized(obj: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
    if let Ok(n) = obj.extract::<usize>() {
        return Ok(vec![n]);
    }
    obj.extract::<Vec<usize>>().map_err(|_| {
        PyValueError::new_err("normalized_shape must be a non-negative int or a sequence of them")
    })
}

/// `max(x, 0)` elementwise.
#[pyfunction]
#[pyo3(signature = (x, /))]
fn relu(py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
    let x = tensor_arg(x)?;
    run(py, x.device(), || nn::relu(&x)).map(wrap)
}

/// GELU elementwise: `x * Φ(x)` (`approximate="none"`) or its tanh approximation
/// (`approximate="tanh"`).
#[pyfunction]
#[pyo3(signature = (x, /, approximate = "none"))]
fn gelu(py: Python<'_>, x: &Bound<'_, PyAny>, approximate: &str) -> PyResult<PyTensor> {
    let a = self::approximate("gelu", approximate)?;
    let x = tensor_arg(x)?;
    run(py, x.device(), || nn::gelu(&x, a)).map(wrap)
}

/// `x * sigmoid(x)` elementwise.
#[pyfunction]
#[pyo3(signature = (x, /))]
fn silu(py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
    let x = tensor_arg(x)?;
    run(py, x.device(), || nn::silu(&x)).map(wrap)
}

/// `1 / (1 + exp(-x))` elementwise.
#[pyfunction]
#[pyo3(signature = (x, /))]
fn sigmoid(py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
    let x = tensor_arg(x)?;
    run(py, x.device(), || nn::sigmoid(&x)).map(wrap)
}

/// Runs an activation backward `f(dy, x)`.
fn backward2(
    py: Python<'_>,
    dy: &Bound<'_, PyAny>,
    x: &Bound<'_, PyAny>,
    f: impl FnOnce(&Tensor, &Tensor) -> pocaflow::Result<Tensor> + Send,
) -> PyResult<PyTensor> {
    let (dy, x) = (tensor_arg(dy)?, tensor_arg(x)?);
    run(py, x.device(), || f(&dy, &x)).map(wrap)
}

/// The gradient of `relu` at `x` times `dy` (0 where `x <= 0`).
#[pyfunction]
#[pyo3(signature = (dy, x, /))]
fn relu_backward(
    py: Python<'_>,
    dy: &Bound<'_, PyAny>,
    x: &Bound<'_, PyAny>,
) -> PyResult<PyTensor> {
    backward2(py, dy, x, nn::relu_backward)
}

/// The gradient of `gelu` at `x` times `dy`.
#[pyfunction]
#[pyo3(signature = (dy, x, /, approximate = "none"))]
fn gelu_backward(
    py: Python<'_>,
    dy: &Bound<'_, PyAny>,
    x: &Bound<'_, PyAny>,
    approximate: &str,
) -> PyResult<PyTensor> {
    let a = self::approximate("gelu_backward", approximate)?;
    backward2(py, dy, x, |dy, x| nn::gelu_backward(dy, x, a))
}

/// The gradient of `silu` at `x` times `dy`.
#[pyfunction]
#[pyo3(signature = (dy, x, /))]
fn silu_backward(
    py: Python<'_>,
    dy: &Bound<'_, PyAny>,
    x: &Bound<'_, PyAny>,
) -> PyResult<PyTensor> {
    backward2(py, dy, x, nn::silu_backward)
}

/// The gradient of `sigmoid` times `dy`, from the sigmoid's output `y`: `dy * y * (1 - y)`.
#[pyfunction]
#[pyo3(signature = (dy, y, /))]
fn sigmoid_backward(
    py: Python<'_>,
    dy: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
) -> PyResult<PyTensor> {
    backward2(py, dy, y, nn::sigmoid_backward)
}

/// `exp(x) / sum(exp(x))` along `axis` (stable for large values).
#[pyfunction]
#[pyo3(signature = (x, /, axis = -1))]
fn softmax(py: Python<'_>, x: &Bound<'_, PyAny>, axis: isize) -> PyResult<PyTensor> {
    let x = tensor_arg(x)?;
    run(py, x.device(), || nn::softmax(&x, axis)).map(wrap)
}

/// `x - log(sum(exp(x)))` along `axis` (stable for large values).
#[pyfunction]
#[pyo3(signature = (x, /, axis = -1))]
fn log_softmax(py: Python<'_>, x: &Bound<'_, PyAny>, axis: isize) -> PyResult<PyTensor> {
    let x = tensor_arg(x)?;
    run(py, x.device(), || nn::log_softmax(&x, axis)).map(wrap)
}

/// The gradient of `softmax` from its output `y`: `y * (dy - sum(dy * y))` along `axis`.
#[pyfunction]
#[pyo3(signature = (dy, y, /, axis = -1))]
fn softmax_backward(
    py: Python<'_>,
    dy: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    axis: isize,
) -> PyResult<PyTensor> {
    backward2(py, dy, y, |dy, y| nn::softmax_backward(dy, y, axis))
}

/// The gradient of `log_softmax` from its output `y`: `dy - exp(y) * sum(dy)` along `axis`.
#[pyfunction]
#[pyo3(signature = (dy, y, /, axis = -1))]
fn log_softmax_backward(
    py: Python<'_>,
    dy: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    axis: isize,
) -> PyResult<PyTensor> {
    backward2(py, dy, y, |dy, y| nn::log_softmax_backward(dy, y, axis))
}

/// Layer normalization over the trailing `normalized_shape` of `x` (biased variance,
/// statistics in float32 for half types).
#[pyfunction]
#[pyo3(signature = (x, normalized_shape, weight = None, bias = None, eps = 1e-5))]
fn layer_norm(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    normalized_shape: &Bound<'_, PyAny>,
    weight: Option<&Bound<'_, PyAny>>,
    bias: Option<&Bound<'_, PyAny>>,
    eps: f64,
) -> PyResult<PyTensor> {
    let shape = normalized(normalized_shape)?;
    let (x, w, b) = (tensor_arg(x)?, opt_tensor(weight)?, opt_tensor(bias)?);
    run(py, x.device(), || {
        nn::layer_norm(&x, &shape, w.as_ref(), b.as_ref(), eps)
    })
    .map(wrap)
}

/// RMS normalization over the trailing `normalized_shape` of `x`.
#[pyfunction]
#[pyo3(signature = (x, normalized_shape, weight = None, eps = 1e-6))]
fn rms_norm(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    normalized_shape: &Bound<'_, PyAny>,
    weight: Option<&Bound<'_, PyAny>>,
    eps: f64,
) -> PyResult<PyTensor> {
    let shape = normalized(normalized_shape)?;
    let (x, w) = (tensor_arg(x)?, opt_tensor(weight)?);
    run(py, x.device(), || nn::rms_norm(&x, &shape, w.as_ref(), eps)).map(wrap)
}

/// The gradients of `layer_norm`: `(dx, dweight, dbias)` (`None` for a parameter not given).
#[pyfunction]
#[pyo3(signature = (dy, x, normalized_shape, weight = None, bias = None, eps = 1e-5))]
fn layer_norm_backward(
    py: Python<'_>,
    dy: &Bound<'_, PyAny>,
    x: &Bound<'_, PyAny>,
    normalized_shape: &Bound<'_, PyAny>,
    weight: Option<&Bound<'_, PyAny>>,
    bias: Option<&Bound<'_, PyAny>>,
    eps: f64,
) -> PyResult<(PyTensor, Option<PyTensor>, Option<PyTensor>)> {
    let shape = normalized(normalized_shape)?;
    let (dy, x) = (tensor_arg(dy)?, tensor_arg(x)?);
    let (w, b) = (opt_tensor(weight)?, opt_tensor(bias)?);
    let (dx, dw, db) = run(py, x.device(), || {
        nn::layer_norm_backward(&dy, &x, &shape, w.as_ref(), b.as_ref(), eps)
    })?;
    Ok((wrap(dx), dw.map(wrap), db.map(wrap)))
}

/// The gradients of `rms_norm`: `(dx, dweight)` (`None` without a weight).
#[pyfunction]
#[pyo3(signature = (dy, x, normalized_shape, weight = None, eps = 1e-6))]
fn rms_norm_backward(
    py: Python<'_>,
    dy: &Bound<'_, PyAny>,
    x: &Bound<'_, PyAny>,
    normalized_shape: &Bound<'_, PyAny>,
    weight: Option<&Bound<'_, PyAny>>,
    eps: f64,
) -> PyResult<(PyTensor, Option<PyTensor>)> {
    let shape = normalized(normalized_shape)?;
    let (dy, x, w) = (tensor_arg(dy)?, tensor_arg(x)?, opt_tensor(weight)?);
    let (dx, dw) = run(py, x.device(), || {
        nn::rms_norm_backward(&dy, &x, &shape, w.as_ref(), eps)
    })?;
    Ok((wrap(dx), dw.map(wrap)))
}

/// The cross-entropy of `logits` against integer class `target`s (classes on axis 1 of
/// `(N, C, ...)` logits, or on the only axis of `(C,)` logits).
#[pyfunction]
#[pyo3(signature = (logits, target, reduction = "mean"))]
fn cross_entropy(
    py: Python<'_>,
    logits: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    reduction: &str,
) -> PyResult<PyTensor> {
    let r = self::reduction("cross_entropy", reduction)?;
    let (l, t) = (tensor_arg(logits)?, tensor_arg(target)?);
    run(py, l.device(), || nn::cross_entropy(&l, &t, r)).map(wrap)
}

/// The gradient of `cross_entropy` with respect to `logits`: `softmax(logits) -
/// onehot(target)`, divided by the number of targets for `reduction="mean"`.
#[pyfunction]
#[pyo3(signature = (logits, target, reduction = "mean"))]
fn cross_entropy_backward(
    py: Python<'_>,
    logits: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    reduction: &str,
) -> PyResult<PyTensor> {
    let r = self::reduction("cross_entropy_backward", reduction)?;
    let (l, t) = (tensor_arg(logits)?, tensor_arg(target)?);
    run(py, l.device(), || nn::cross_entropy_backward(&l, &t, r)).map(wrap)
}

/// Adds the submodule `nn` to the native module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let sub = PyModule::new(m.py(), "nn")?;
    sub.add_function(wrap_pyfunction!(relu, &sub)?)?;
    sub.add_function(wrap_pyfunction!(gelu, &sub)?)?;
    sub.add_function(wrap_pyfunction!(silu, &sub)?)?;
    sub.add_function(wrap_pyfunction!(sigmoid, &sub)?)?;
    sub.add_function(wrap_pyfunction!(relu_backward, &sub)?)?;
    sub.add_function(wrap_pyfunction!(gelu_backward, &sub)?)?;
    sub.add_function(wrap_pyfunction!(silu_backward, &sub)?)?;
    sub.add_function(wrap_pyfunction!(sigmoid_backward, &sub)?)?;
    sub.add_function(wrap_pyfunction!(softmax, &sub)?)?;
    sub.add_function(wrap_pyfunction!(log_softmax, &sub)?)?;
    sub.add_function(wrap_pyfunction!(softmax_backward, &sub)?)?;
    sub.add_function(wrap_pyfunction!(log_softmax_backward, &sub)?)?;
    sub.add_function(wrap_pyfunction!(layer_norm, &sub)?)?;
    sub.add_function(wrap_pyfunction!(rms_norm, &sub)?)?;
    sub.add_function(wrap_pyfunction!(layer_norm_backward, &sub)?)?;
    sub.add_function(wrap_pyfunction!(rms_norm_backward, &sub)?)?;
    sub.add_function(wrap_pyfunction!(cross_entropy, &sub)?)?;
    sub.add_function(wrap_pyfunction!(cross_entropy_backward, &sub)?)?;
    m.add_submodule(&sub)?;
    Ok(())
}
