//! `pf.nn.linear` and `pf.nn.linear_backward`: the native halves (`nn_linear`,
//! `nn_linear_backward`) of `python/pocaflow/nn/_linear.py`.

use crate::math::run;
use crate::tensor::PyTensor;
use pocaflow::nn::Activation;
use pocaflow::Tensor;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The activation named `name` (`None` for none).
fn activation(name: Option<&str>) -> PyResult<Option<Activation>> {
    let Some(name) = name else {
        return Ok(None);
    };
    Activation::from_name(name).map(Some).ok_or_else(|| {
        let known: Vec<String> = Activation::ALL
            .iter()
            .map(|a| format!("'{}'", a.name()))
            .collect();
        PyValueError::new_err(format!(
            "linear: unknown activation '{name}'; expected None or one of {}",
            known.join(", ")
        ))
    })
}

/// `act(x @ weight.T + bias)` as one matmul with a fused epilogue; see `pf.nn.linear`.
#[pyfunction]
#[pyo3(signature = (x, weight, bias = None, activation = None))]
pub fn nn_linear(
    py: Python<'_>,
    x: PyRef<'_, PyTensor>,
    weight: PyRef<'_, PyTensor>,
    bias: Option<PyRef<'_, PyTensor>>,
    activation: Option<&str>,
) -> PyResult<PyTensor> {
    let act = self::activation(activation)?;
    let (x, w): (Tensor, Tensor) = (x.inner.clone(), weight.inner.clone());
    let b = bias.map(|b| b.inner.clone());
    let y = run(py, x.device(), || {
        pocaflow::nn::linear(&x, &w, b.as_ref(), act)
    })?;
    Ok(PyTensor::wrap(y))
}

/// `(dx, dweight, dbias)` of `pf.nn.linear` for the output gradient `dy`; see
/// `pf.nn.linear_backward`.
#[pyfunction]
#[pyo3(signature = (dy, x, weight, bias = None, activation = None))]
pub fn nn_linear_backward(
    py: Python<'_>,
    dy: PyRef<'_, PyTensor>,
    x: PyRef<'_, PyTensor>,
    weight: PyRef<'_, PyTensor>,
    bias: Option<PyRef<'_, PyTensor>>,
    activation: Option<&str>,
) -> PyResult<(PyTensor, PyTensor, Option<PyTensor>)> {
    let act = self::activation(activation)?;
    let (dy, x, w) = (dy.inner.clone(), x.inner.clone(), weight.inner.clone());
    let b = bias.map(|b| b.inner.clone());
    let (dx, dw, db) = run(py, x.device(), || {
        pocaflow::nn::linear_backward(&dy, &x, &w, b.as_ref(), act)
    })?;
    Ok((
        PyTensor::wrap(dx),
        PyTensor::wrap(dw),
        db.map(PyTensor::wrap),
    ))
}

/// Adds the functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(nn_linear, m)?)?;
    m.add_function(wrap_pyfunction!(nn_linear_backward, m)?)?;
    Ok(())
}
