//! NumPy arrays and Python values to tensors and back. CPU tensors can share a NumPy array's
//! memory (`asarray`); copies into tensor storage and back run with the GIL released.

use crate::errors::IntoPyResult;
use crate::types::unsupported_dtype;
use ndarray::{ArrayD, ShapeBuilder};
use numpy::{
    PyArray, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods,
};
use pocaflow::{DType, Device, Scalar, Tensor};
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt};

/// NumPy's flag bits for writeable and aligned arrays.
const NPY_ARRAY_ALIGNED: i32 = 0x0100;
const NPY_ARRAY_WRITEABLE: i32 = 0x0400;

/// The pocaflow dtype of a NumPy array.
fn array_dtype(arr: &Bound<'_, PyUntypedArray>) -> PyResult<DType> {
    let py = arr.py();
    let descr = arr.dtype();
    macro_rules! try_types {
        ($($t:ty => $d:expr),*) => {
            $(if descr.is_equiv_to(&numpy::dtype::<$t>(py)) { return Ok($d); })*
        };
    }
    try_types!(
        bool => DType::Bool, i8 => DType::I8, i16 => DType::I16, i32 => DType::I32,
        i64 => DType::I64, u8 => DType::U8, u16 => DType::U16, u32 => DType::U32,
        u64 => DType::U64, half::f16 => DType::F16, f32 => DType::F32, f64 => DType::F64
    );
    Err(unsupported_dtype(&descr.to_string()))
}

/// A CPU tensor sharing the memory of `arr` (its strides become the tensor's), or `None` when
/// the memory cannot be shared: read-only, misaligned, strides that are not whole elements, or
/// booleans (copied so that every byte is 0 or 1).
fn share_numpy(arr: &Bound<'_, PyUntypedArray>, dtype: DType) -> PyResult<Option<Tensor>> {
    // SAFETY: `arr` is a live NumPy array; its object header is read, not written.
    let (flags, data) = unsafe {
        let raw = arr.as_array_ptr();
        ((*raw).fields.flags, (*raw).fields.data as *mut u8)
    };
    let item = dtype.size_in_bytes() as isize;
    if dtype == DType::Bool
        || flags & NPY_ARRAY_WRITEABLE == 0
        || flags & NPY_ARRAY_ALIGNED == 0
        || arr.strides().iter().any(|s| s % item != 0)
    {
        return Ok(None);
    }
    let strides: Vec<isize> = arr.strides().iter().map(|s| s / item).collect();
    let owner: Box<dyn std::any::Any + Send + Sync> = Box::new(arr.clone().unbind());
    // SAFETY: the elements the strides reach from `data` are the array's memory, aligned
    // (NumPy's flag) and writeable; `owner` keeps the array (and so its memory) alive as long
    // as the tensor; the values are valid for the dtype (not bool).
    unsafe {
        Tensor::from_foreign(
            Device::Cpu,
            dtype,
            data as usize as u64,
            arr.shape(),
            &strides,
            owner,
        )
    }
    .py()
    .map(Some)
}

/// A CPU tensor with a copy of `arr`'s values.
fn copy_numpy(arr: &Bound<'_, PyUntypedArray>, dtype: DType) -> PyResult<Tensor> {
    macro_rules! copy_as {
        ($t:ty) => {{
            let typed = arr.cast::<PyArrayDyn<$t>>()?;
            let readonly = typed.try_readonly()?;
            let view = readonly.as_array();
            arr.py()
                .detach(|| Tensor::from_ndarray(&view, &Device::Cpu))
                .py()
        }};
    }
    match dtype {
        DType::Bool => copy_as!(bool),
        DType::I8 => copy_as!(i8),
        DType::I16 => copy_as!(i16),
        DType::I32 => copy_as!(i32),
        DType::I64 => copy_as!(i64),
        DType::U8 => copy_as!(u8),
        DType::U16 => copy_as!(u16),
        DType::U32 => copy_as!(u32),
        DType::U64 => copy_as!(u64),
        DType::F16 => copy_as!(half::f16),
        DType::F32 => copy_as!(f32),
        DType::F64 => copy_as!(f64),
        DType::BF16 => unreachable!("NumPy has no bfloat16"),
    }
}

/// A Python `bool`, `int` or `float` as a scalar (None for anything else).
pub fn python_scalar(obj: &Bound<'_, PyAny>) -> PyResult<Option<Scalar>> {
    if obj.cast::<PyBool>().is_ok() {
        return Ok(Some(Scalar::Bool(obj.extract()?)));
    }
    if obj.cast::<PyInt>().is_ok() {
        if let Ok(v) = obj.extract::<i64>() {
            return Ok(Some(Scalar::Int(v)));
        }
        return match obj.extract::<u64>() {
            Ok(v) => Ok(Some(Scalar::UInt(v))),
            Err(_) => Err(PyOverflowError::new_err(format!(
                "Python int {obj} is too large for any integer dtype"
            ))),
        };
    }
    if obj.cast::<PyFloat>().is_ok() {
        return Ok(Some(Scalar::Float(obj.extract()?)));
    }
    Ok(None)
}

/// Fails with `OverflowError` (as NumPy 2) when a Python integer lies outside the range of an
/// integer `dtype` it is stored in.
pub fn check_fits(s: Scalar, dtype: DType) -> PyResult<()> {
    let bits = dtype.size_in_bytes() as u32 * 8;
    let (lo, hi): (i128, i128) = match dtype.kind() {
        pocaflow::Kind::Signed => (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1),
        pocaflow::Kind::Unsigned => (0, (1i128 << bits) - 1),
        _ => return Ok(()),
    };
    let v = match s {
        Scalar::Int(i) => i128::from(i),
        Scalar::UInt(u) => i128::from(u),
        _ => return Ok(()),
    };
    if v < lo || v > hi {
        return Err(PyOverflowError::new_err(format!(
            "Python integer {v} out of bounds for {dtype}"
        )));
    }
    Ok(())
}

/// The NumPy array for a non-tensor object: NumPy arrays as they are, buffer-protocol objects
/// through `memoryview`, anything else through `numpy.asarray`.
fn numpy_array<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyUntypedArray>> {
    if let Ok(a) = obj.cast::<PyUntypedArray>() {
        return Ok(a.clone());
    }
    let py = obj.py();
    let np = py.import("numpy")?;
    let builtins = py.import("builtins")?;
    let is_buffer = ["bytes", "bytearray", "memoryview"].iter().any(|t| {
        builtins
            .getattr(*t)
            .is_ok_and(|ty| obj.is_instance(&ty).unwrap_or(false))
    });
    let source = if is_buffer {
        builtins.getattr("memoryview")?.call1((obj,))?
    } else {
        obj.clone()
    };
    let arr = np.getattr("asarray")?.call1((source,))?;
    if let Ok(kind) = arr.getattr("dtype")?.getattr("kind")?.extract::<String>() {
        if kind == "c" {
            return Err(PyTypeError::new_err(
                "complex dtypes are not supported yet: pass real values",
            ));
        }
        if kind == "O" || kind == "U" || kind == "S" {
            return Err(PyTypeError::new_err(format!(
                "cannot make an array from {}: expected numbers, booleans or nested sequences \
                 of them",
                obj.get_type().name()?
            )));
        }
    }
    Ok(arr.cast_into::<PyUntypedArray>()?)
}

/// Whether `obj` is another library's array that speaks DLPack (not a NumPy array: those are
/// read directly).
pub fn dlpack_producer(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(obj.cast::<PyUntypedArray>().is_err()
        && obj.cast::<crate::tensor::PyTensor>().is_err()
        && obj.hasattr("__dlpack__")?
        && obj.hasattr("__dlpack_device__")?)
}

/// `pocaflow.from_dlpack(obj)`: the producer's memory shared (`copy=False` passed on, so that
/// it fails rather than copies; a copy that `copy=True` asks for is made by the caller).
pub fn from_dlpack<'py>(
    obj: &Bound<'py, PyAny>,
    copy: Option<bool>,
) -> PyResult<Bound<'py, crate::tensor::PyTensor>> {
    let py = obj.py();
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("copy", (copy == Some(false)).then_some(false))?;
    let shared = py
        .import("pocaflow._dlpack")?
        .getattr("from_dlpack")?
        .call((obj,), Some(&kwargs))?;
    Ok(shared.cast_into::<crate::tensor::PyTensor>()?)
}

/// `asarray(obj, dtype, device, copy)` as the Array API standard defines it: `copy = Some(true)`
/// always copies, `Some(false)` never does (and fails when it would have to), `None` copies
/// only when needed. CPU arrays made from NumPy arrays share their memory when the dtype allows.
pub fn asarray(
    obj: &Bound<'_, PyAny>,
    dtype: Option<DType>,
    device: Device,
    copy: Option<bool>,
) -> PyResult<Tensor> {
    let py = obj.py();
    let no_copy = |what: &str| {
        PyValueError::new_err(format!(
            "asarray(copy=False): {what} cannot be used without a copy"
        ))
    };
    if let Ok(t) = obj.cast::<crate::tensor::PyTensor>() {
        let t = t.get().inner.clone();
        let changes = dtype.is_some_and(|d| d != t.dtype()) || device != t.device();
        if copy == Some(false) && changes {
            return Err(no_copy("an array of another dtype or device"));
        }
        return py
            .detach(|| {
                let d = t.to_dtype(dtype.unwrap_or(t.dtype()))?.to_device(&device)?;
                if copy == Some(true) && d.shares_storage_with(&t) {
                    d.copy_data()
                } else {
                    Ok(d)
                }
            })
            .py();
    }
    device.ensure_available().py()?;
    if let Some(s) = python_scalar(obj)? {
        if copy == Some(false) {
            return Err(no_copy("a Python scalar"));
        }
        let d = dtype.unwrap_or(s.default_dtype());
        check_fits(s, d)?;
        return pocaflow::ops::full(&[], s, d, &device).py();
    }
    let mut is_numpy = obj.cast::<PyUntypedArray>().is_ok();
    if !is_numpy && dlpack_producer(obj)? {
        // Another library's array (PyTorch, CuPy, ...): shared, then moved or converted as asked.
        return asarray(from_dlpack(obj, copy)?.as_any(), dtype, device, copy);
    }
    let mut arr = numpy_array(obj)?;
    // Byte-swapped arrays (a big-endian dtype here) are converted to native order: a copy.
    let order: String = arr.getattr("dtype")?.getattr("byteorder")?.extract()?;
    let swapped = if cfg!(target_endian = "little") {
        ">"
    } else {
        "<"
    };
    if order == swapped {
        let native = arr.getattr("dtype")?.call_method1("newbyteorder", ("=",))?;
        arr = arr
            .call_method1("astype", (native,))?
            .cast_into::<PyUntypedArray>()?;
        is_numpy = false;
    }
    let from = array_dtype(&arr)?;
    let target = dtype.unwrap_or(from);
    // A transfer to a device is itself the copy: the upload reads the NumPy memory in place.
    let shared = if copy == Some(true) && device == Device::Cpu {
        None
    } else {
        share_numpy(&arr, from)?
    };
    let needs_copy = !is_numpy || target != from || device != Device::Cpu || shared.is_none();
    if copy == Some(false) && needs_copy {
        return Err(no_copy(if !is_numpy {
            "a Python sequence or a byte-swapped array"
        } else if shared.is_none() {
            "this NumPy array (read-only, misaligned or boolean)"
        } else {
            "a NumPy array of another dtype or device"
        }));
    }
    let t = match shared {
        Some(t) => t,
        None => copy_numpy(&arr, from)?,
    };
    py.detach(|| {
        let moved = t.to_device(&device)?;
        moved.to_dtype(target)
    })
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
        DType::Bool => typed_to_numpy::<bool>(py, t, order),
        DType::I8 => typed_to_numpy::<i8>(py, t, order),
        DType::I16 => typed_to_numpy::<i16>(py, t, order),
        DType::I32 => typed_to_numpy::<i32>(py, t, order),
        DType::I64 => typed_to_numpy::<i64>(py, t, order),
        DType::U8 => typed_to_numpy::<u8>(py, t, order),
        DType::U16 => typed_to_numpy::<u16>(py, t, order),
        DType::U32 => typed_to_numpy::<u32>(py, t, order),
        DType::U64 => typed_to_numpy::<u64>(py, t, order),
        DType::F16 => typed_to_numpy::<half::f16>(py, t, order),
        DType::F32 => typed_to_numpy::<f32>(py, t, order),
        DType::F64 => typed_to_numpy::<f64>(py, t, order),
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
