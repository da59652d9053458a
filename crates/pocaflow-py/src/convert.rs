//! NumPy arrays to tensors and back. Arrays are read through zero-copy views of any order and
//! strides; the copy into tensor storage and back runs with the GIL released.

use crate::errors::IntoPyResult;
use crate::types::unsupported_dtype;
use ndarray::{ArrayD, ShapeBuilder};
use numpy::{
    PyArray, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods,
};
use pocaflow::{DType, Device, Tensor};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// A tensor on `device` holding the values of `obj` (a NumPy array of float16, float32 or
/// float64, or anything `numpy.asarray` turns into one), converted to `dtype` if given.
pub fn tensor_from_array(
    obj: &Bound<'_, PyAny>,
    device: Device,
    dtype: Option<DType>,
) -> PyResult<Tensor> {
    let py = obj.py();
    device.ensure_available().py()?;
    let arr = match obj.cast::<PyUntypedArray>() {
        Ok(a) => a.clone(),
        Err(_) => py
            .import("numpy")?
            .getattr("asarray")?
            .call1((obj,))?
            .cast_into::<PyUntypedArray>()?,
    };
    let descr = arr.dtype();
    let t = if descr.is_equiv_to(&numpy::dtype::<f32>(py)) {
        array_tensor::<f32>(&arr, device)?
    } else if descr.is_equiv_to(&numpy::dtype::<f64>(py)) {
        array_tensor::<f64>(&arr, device)?
    } else if descr.is_equiv_to(&numpy::dtype::<half::f16>(py)) {
        array_tensor::<half::f16>(&arr, device)?
    } else {
        return Err(unsupported_dtype(&descr.to_string()));
    };
    match dtype {
        Some(d) => py.detach(|| t.to_dtype(d)).py(),
        None => Ok(t),
    }
}

/// The array copied to `device` straight from its memory: a dense array is not copied on the
/// host first.
fn array_tensor<T: numpy::Element + pocaflow::Element>(
    arr: &Bound<'_, PyUntypedArray>,
    device: Device,
) -> PyResult<Tensor> {
    let typed = arr.cast::<PyArrayDyn<T>>()?;
    let readonly = typed.try_readonly()?;
    let view = readonly.as_array();
    arr.py()
        .detach(|| Tensor::from_ndarray(&view, &device))
        .py()
}

/// The memory order a `.numpy(order=...)` call asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// The tensor's own order (C, or F for Fortran-contiguous tensors).
    Keep,
    /// C order.
    C,
    /// Fortran order.
    F,
}

impl Order {
    /// Parses None, "K", "A", "C" or "F".
    pub fn parse(order: Option<&str>) -> PyResult<Order> {
        match order {
            None | Some("K") | Some("A") => Ok(Order::Keep),
            Some("C") => Ok(Order::C),
            Some("F") => Ok(Order::F),
            Some(o) => Err(PyValueError::new_err(format!(
                "order must be 'C', 'F', 'A', 'K' or None, got {o:?}"
            ))),
        }
    }
}

/// The tensor as a new NumPy array (bfloat16 comes back as float32, which holds it exactly).
/// For a CUDA tensor this waits for the work queued on it.
pub fn tensor_to_numpy<'py>(
    py: Python<'py>,
    t: &Tensor,
    order: Order,
) -> PyResult<Bound<'py, PyAny>> {
    match t.dtype() {
        DType::F32 => typed_to_numpy::<f32>(py, t, order),
        DType::F64 => typed_to_numpy::<f64>(py, t, order),
        DType::F16 => typed_to_numpy::<half::f16>(py, t, order),
        DType::BF16 => {
            let wide = py.detach(|| t.to_dtype(DType::F32)).py()?;
            typed_to_numpy::<f32>(py, &wide, order)
        }
    }
}

fn typed_to_numpy<'py, T>(py: Python<'py>, t: &Tensor, order: Order) -> PyResult<Bound<'py, PyAny>>
where
    T: numpy::Element + pocaflow::Element,
{
    let arr: ArrayD<T> = py
        .detach(|| {
            let a = t.to_ndarray::<T>()?;
            Ok(match order {
                Order::C if !a.is_standard_layout() => a.as_standard_layout().into_owned(),
                Order::F if !a.t().is_standard_layout() => {
                    let mut f = ArrayD::<T>::default(a.raw_dim().f());
                    f.assign(&a);
                    f
                }
                _ => a,
            })
        })
        .py()?;
    Ok(PyArray::from_owned_array(py, arr).into_any())
}
