//! Elementwise functions, reductions and searching: the standard's function forms (`add`,
//! `exp`, `sum`, `where`, ...) and the operators of `Tensor` (`+`, `+=`, `<`, `-x`, ...), with
//! Python scalars on either side.

use crate::convert::{asarray, check_fits, python_scalar};
use crate::errors::IntoPyResult;
use crate::tensor::{opt_dtype, PyTensor};
use crate::types::default_device;
use numpy::PyUntypedArray;
use pocaflow::ops::reduce::{self as red, Axes};
use pocaflow::ops::{self, Value};
use pocaflow::{BinaryOp, DType, Device, Kind, ReduceOp, Scalar, ScanOp, Tensor, UnaryOp};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

/// An operand as Python passed it.
pub enum Arg {
    /// An array (a Tensor, or converted from NumPy or a sequence).
    Tensor(Tensor),
    /// A Python `bool`, `int` or `float`.
    Scalar(Scalar),
}

impl Arg {
    fn value(&self) -> Value<'_> {
        match self {
            Arg::Tensor(t) => Value::Tensor(t),
            Arg::Scalar(s) => Value::Scalar(*s),
        }
    }

    fn device(&self) -> Option<Device> {
        match self {
            Arg::Tensor(t) => Some(t.device()),
            Arg::Scalar(_) => None,
        }
    }
}

/// `obj` as an operand without conversion: a Tensor or a Python scalar (`None` otherwise).
fn direct(obj: &Bound<'_, PyAny>) -> PyResult<Option<Arg>> {
    if let Ok(t) = obj.cast::<PyTensor>() {
        return Ok(Some(Arg::Tensor(t.get().inner.clone())));
    }
    Ok(python_scalar(obj)?.map(Arg::Scalar))
}

/// Whether `obj` is an array-like that an operator converts (NumPy arrays, lists, tuples).
fn convertible(obj: &Bound<'_, PyAny>) -> bool {
    obj.cast::<PyUntypedArray>().is_ok()
        || obj.cast::<PyList>().is_ok()
        || obj.cast::<PyTuple>().is_ok()
}

/// Both operands of a binary function: tensors and scalars as they are, array-likes converted
/// onto the device of the tensor operand (the default device if there is none). `None` when
/// an operand is of a type arithmetic does not take (operators then return `NotImplemented`).
fn operands(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<Option<(Arg, Arg)>> {
    let (da, db) = (direct(a)?, direct(b)?);
    let device = da
        .as_ref()
        .and_then(Arg::device)
        .or_else(|| db.as_ref().and_then(Arg::device));
    let convert = |obj: &Bound<'_, PyAny>, d: Option<Arg>| -> PyResult<Option<Arg>> {
        match d {
            Some(arg) => Ok(Some(arg)),
            None if convertible(obj) => {
                let dev = match device {
                    Some(d) => d,
                    None => default_device(),
                };
                Ok(Some(Arg::Tensor(asarray(obj, None, dev, None)?)))
            }
            None => Ok(None),
        }
    };
    let (Some(x), Some(y)) = (convert(a, da)?, convert(b, db)?) else {
        return Ok(None);
    };
    Ok(Some((x, y)))
}

/// Fails with `OverflowError` (as NumPy 2) when a Python int does not fit the integer dtype of
/// the array operand it meets.
fn check_scalar(x: &Arg, y: &Arg) -> PyResult<()> {
    if let (Arg::Tensor(t), Arg::Scalar(s)) | (Arg::Scalar(s), Arg::Tensor(t)) = (x, y) {
        if matches!(t.dtype().kind(), Kind::Signed | Kind::Unsigned) {
            check_fits(*s, t.dtype())?;
        }
    }
    Ok(())
}

/// Runs `f` with the GIL released when the work is on the CPU (a GPU op only enqueues work,
/// cheaper than releasing the GIL).
pub(crate) fn run<T: Send>(
    py: Python<'_>,
    device: Device,
    f: impl FnOnce() -> pocaflow::Result<T> + Send,
) -> PyResult<T> {
    if device == Device::Cpu {
        py.detach(f).py()
    } else {
        f().py()
    }
}

fn binary_args(
    py: Python<'_>,
    op: BinaryOp,
    x: &Arg,
    y: &Arg,
    out: Option<&Tensor>,
) -> PyResult<Tensor> {
    check_scalar(x, y)?;
    let device = x.device().or(y.device()).unwrap_or(Device::Cpu);
    run(py, device, || ops::binary(op, x.value(), y.value(), out))
}

/// A binary function form: `op(x1, x2, out=)`.
fn binary_call(
    py: Python<'_>,
    op: BinaryOp,
    x1: &Bound<'_, PyAny>,
    x2: &Bound<'_, PyAny>,
    out: Option<&Bound<'_, PyTensor>>,
) -> PyResult<Py<PyAny>> {
    let Some((x, y)) = operands(x1, x2)? else {
        return Err(PyTypeError::new_err(format!(
            "{}: unsupported operand types {} and {}",
            op.name(),
            x1.get_type().name()?,
            x2.get_type().name()?
        )));
    };
    if let (Arg::Scalar(_), Arg::Scalar(_)) = (&x, &y) {
        return Err(PyTypeError::new_err(format!(
            "{}: at least one operand must be an array",
            op.name()
        )));
    }
    let t = binary_args(py, op, &x, &y, out.map(|o| &o.get().inner))?;
    result(py, t, out)
}

/// What a function with `out=` returns: `out` itself when given (as NumPy), else the new
/// array.
fn result(py: Python<'_>, t: Tensor, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
    match out {
        Some(o) => Ok(o.clone().into_any().unbind()),
        None => Ok(Bound::new(py, PyTensor::wrap(t))?.into_any().unbind()),
    }
}

/// An operator: `self op other` (or `other op self` when `reflected`), `NotImplemented` for
/// operands arithmetic does not take.
pub fn operator(
    slf: &Bound<'_, PyTensor>,
    other: &Bound<'_, PyAny>,
    op: BinaryOp,
    reflected: bool,
) -> PyResult<Py<PyAny>> {
    let py = slf.py();
    let me = slf.as_any();
    let pair = if reflected {
        operands(other, me)?
    } else {
        operands(me, other)?
    };
    let Some((x, y)) = pair else {
        return Ok(py.NotImplemented());
    };
    let t = binary_args(py, op, &x, &y, None)?;
    Ok(Bound::new(py, PyTensor::wrap(t))?.into_any().unbind())
}

/// An in-place operator: `self op= other`, computed into `self` (the result converts to
/// `self`'s dtype within its kind, and must have `self`'s shape).
pub fn in_place(slf: &PyTensor, other: &Bound<'_, PyAny>, op: BinaryOp) -> PyResult<()> {
    let py = other.py();
    let me = Arg::Tensor(slf.inner.clone());
    let y = match direct(other)? {
        Some(a) => a,
        None if convertible(other) => Arg::Tensor(asarray(other, None, slf.inner.device(), None)?),
        None => {
            return Err(PyTypeError::new_err(format!(
                "unsupported operand type for in-place {}: {}",
                op.name(),
                other.get_type().name()?
            )))
        }
    };
    binary_args(py, op, &me, &y, Some(&slf.inner)).map(|_| ())
}

/// A unary function form: `op(x, out=)`.
fn unary_call(
    py: Python<'_>,
    op: UnaryOp,
    x: &Bound<'_, PyAny>,
    out: Option<&Bound<'_, PyTensor>>,
) -> PyResult<Py<PyAny>> {
    let t = tensor_arg(x)?;
    let inner = out.map(|o| &o.get().inner);
    let r = run(py, t.device(), || ops::unary(op, &t, inner))?;
    result(py, r, out)
}

/// A unary operator on a tensor.
pub fn unary_op(t: &Tensor, op: UnaryOp) -> PyResult<PyTensor> {
    Python::attach(|py| run(py, t.device(), || ops::unary(op, t, None)).map(PyTensor::wrap))
}

/// `x` as a tensor: a Tensor as it is, an array-like converted onto the default device.
pub(crate) fn tensor_arg(x: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    match x.cast::<PyTensor>() {
        Ok(t) => Ok(t.get().inner.clone()),
        Err(_) => asarray(x, None, default_device(), None),
    }
}

macro_rules! unary_functions {
    ($($name:ident => $op:ident),* $(,)?) => {
        $(
            #[doc = concat!("The standard's `", stringify!($name), "`, elementwise (`out=` optional).")]
            #[pyfunction]
            #[pyo3(signature = (x, /, *, out = None))]
            pub fn $name(py: Python<'_>, x: &Bound<'_, PyAny>, out: Option<Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
                unary_call(py, UnaryOp::$op, x, out.as_ref())
            }
        )*

        /// Adds the unary function forms to the module.
        fn register_unary(m: &Bound<'_, PyModule>) -> PyResult<()> {
            $(m.add_function(wrap_pyfunction!($name, m)?)?;)*
            Ok(())
        }
    };
}

unary_functions! {
    abs => Abs, negative => Negative, bitwise_invert => BitwiseInvert, logical_not => LogicalNot,
    exp => Exp, expm1 => Expm1, log => Log, log1p => Log1p, log2 => Log2, log10 => Log10,
    sqrt => Sqrt, square => Square, reciprocal => Reciprocal, sin => Sin, cos => Cos, tan => Tan,
    asin => Asin, acos => Acos, atan => Atan, sinh => Sinh, cosh => Cosh, tanh => Tanh,
    asinh => Asinh, acosh => Acosh, atanh => Atanh, ceil => Ceil, floor => Floor, round => Round,
    trunc => Trunc, sign => Sign, signbit => Signbit, isnan => IsNan, isinf => IsInf,
    isfinite => IsFinite,
}

macro_rules! binary_functions {
    ($($name:ident => $op:ident),* $(,)?) => {
        $(
            #[doc = concat!("The standard's `", stringify!($name), "`, elementwise with broadcasting (`out=` optional).")]
            #[pyfunction]
            #[pyo3(signature = (x1, x2, /, *, out = None))]
            pub fn $name(
                py: Python<'_>,
                x1: &Bound<'_, PyAny>,
                x2: &Bound<'_, PyAny>,
                out: Option<Bound<'_, PyTensor>>,
            ) -> PyResult<Py<PyAny>> {
                binary_call(py, BinaryOp::$op, x1, x2, out.as_ref())
            }
        )*

        /// Adds the binary function forms to the module.
        fn register_binary(m: &Bound<'_, PyModule>) -> PyResult<()> {
            $(m.add_function(wrap_pyfunction!($name, m)?)?;)*
            Ok(())
        }
    };
}

binary_functions! {
    add => Add, subtract => Subtract, multiply => Multiply, divide => Divide,
    floor_divide => FloorDivide, remainder => Remainder, pow => Pow, maximum => Maximum,
    minimum => Minimum, atan2 => Atan2, hypot => Hypot, copysign => Copysign,
    logaddexp => Logaddexp, nextafter => Nextafter, bitwise_and => BitwiseAnd,
    bitwise_or => BitwiseOr, bitwise_xor => BitwiseXor, bitwise_left_shift => BitwiseLeftShift,
    bitwise_right_shift => BitwiseRightShift, logical_and => LogicalAnd, logical_or => LogicalOr,
    logical_xor => LogicalXor, equal => Equal, not_equal => NotEqual, less => Less,
    less_equal => LessEqual, greater => Greater, greater_equal => GreaterEqual,
}

/// An optional bound of `clip`: `None`, a Python scalar or an array.
fn bound_arg(obj: Option<&Bound<'_, PyAny>>, device: Device) -> PyResult<Option<Arg>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    Ok(Some(match direct(obj)? {
        Some(a) => a,
        None => Arg::Tensor(asarray(obj, None, device, None)?),
    }))
}

/// The standard's `clip`: `x` limited to `[min, max]` (either bound optional; bounds are
/// converted to `x`'s dtype).
#[pyfunction]
#[pyo3(signature = (x, /, min = None, max = None, *, out = None))]
pub fn clip(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    min: Option<&Bound<'_, PyAny>>,
    max: Option<&Bound<'_, PyAny>>,
    out: Option<Bound<'_, PyTensor>>,
) -> PyResult<Py<PyAny>> {
    let t = tensor_arg(x)?;
    let (lo, hi) = (bound_arg(min, t.device())?, bound_arg(max, t.device())?);
    let inner = out.as_ref().map(|o| &o.get().inner);
    let r = run(py, t.device(), || {
        ops::clip(
            &t,
            lo.as_ref().map(Arg::value),
            hi.as_ref().map(Arg::value),
            inner,
        )
    })?;
    result(py, r, out.as_ref())
}

/// The standard's `where`: `x1` where `condition`, else `x2` (either may be a Python scalar).
#[pyfunction(name = "where")]
#[pyo3(signature = (condition, x1, x2, /))]
pub fn where_(
    py: Python<'_>,
    condition: &Bound<'_, PyAny>,
    x1: &Bound<'_, PyAny>,
    x2: &Bound<'_, PyAny>,
) -> PyResult<PyTensor> {
    let c = tensor_arg(condition)?;
    let device = c.device();
    let arg = |o: &Bound<'_, PyAny>| -> PyResult<Arg> {
        Ok(match direct(o)? {
            Some(a) => a,
            None => Arg::Tensor(asarray(o, None, device, None)?),
        })
    };
    let (a, b) = (arg(x1)?, arg(x2)?);
    check_scalar(&a, &b)?;
    run(py, device, || red::where_(&c, a.value(), b.value())).map(PyTensor::wrap)
}

/// An `axis=` argument: `None`, an int or a tuple of ints.
fn parse_axes(axis: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<isize>>> {
    match axis.filter(|a| !a.is_none()) {
        None => Ok(None),
        Some(a) => match a.extract::<isize>() {
            Ok(i) => Ok(Some(vec![i])),
            Err(_) => a
                .extract::<Vec<isize>>()
                .map(Some)
                .map_err(|_| PyTypeError::new_err("axis must be None, an int or a tuple of ints")),
        },
    }
}

/// Runs a reduction of `x` over `axis` (see [`parse_axes`]).
fn reduce_with(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    axis: Option<&Bound<'_, PyAny>>,
    f: impl FnOnce(&Tensor, Axes<'_>) -> pocaflow::Result<Tensor> + Send,
) -> PyResult<PyTensor> {
    let t = tensor_arg(x)?;
    let axes = parse_axes(axis)?;
    run(py, t.device(), || f(&t, axes.as_deref())).map(PyTensor::wrap)
}

/// The standard's `sum` (integers: the default integer, `uint64` for unsigned; `dtype=`
/// converts first).
#[pyfunction]
#[pyo3(signature = (x, /, *, axis = None, dtype = None, keepdims = false))]
pub fn sum(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    axis: Option<&Bound<'_, PyAny>>,
    dtype: Option<&Bound<'_, PyAny>>,
    keepdims: bool,
) -> PyResult<PyTensor> {
    let d = opt_dtype(dtype)?;
    reduce_with(py, x, axis, |t, a| {
        red::sum_prod(ReduceOp::Sum, t, a, keepdims, d)
    })
}

/// The standard's `prod`.
#[pyfunction]
#[pyo3(signature = (x, /, *, axis = None, dtype = None, keepdims = false))]
pub fn prod(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    axis: Option<&Bound<'_, PyAny>>,
    dtype: Option<&Bound<'_, PyAny>>,
    keepdims: bool,
) -> PyResult<PyTensor> {
    let d = opt_dtype(dtype)?;
    reduce_with(py, x, axis, |t, a| {
        red::sum_prod(ReduceOp::Prod, t, a, keepdims, d)
    })
}

/// The standard's `max` (NaN propagates; an empty reduction raises `ValueError`).
#[pyfunction]
#[pyo3(signature = (x, /, *, axis = None, keepdims = false))]
pub fn max(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    axis: Option<&Bound<'_, PyAny>>,
    keepdims: bool,
) -> PyResult<PyTensor> {
    reduce_with(py, x, axis, |t, a| {
        red::max_min(ReduceOp::Max, t, a, keepdims)
    })
}

/// The standard's `min`.
#[pyfunction]
#[pyo3(signature = (x, /, *, axis = None, keepdims = false))]
pub fn min(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    axis: Option<&Bound<'_, PyAny>>,
    keepdims: bool,
) -> PyResult<PyTensor> {
    reduce_with(py, x, axis, |t, a| {
        red::max_min(ReduceOp::Min, t, a, keepdims)
    })
}

/// The standard's `mean` (floating-point arrays).
#[pyfunction]
#[pyo3(signature = (x, /, *, axis = None, keepdims = false))]
pub fn mean(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    axis: Option<&Bound<'_, PyAny>>,
    keepdims: bool,
) -> PyResult<PyTensor> {
    reduce_with(py, x, axis, |t, a| red::mean(t, a, keepdims))
}

/// The standard's `var` (`correction` degrees of freedom removed).
#[pyfunction]
#[pyo3(signature = (x, /, *, axis = None, correction = 0.0, keepdims = false))]
pub fn var(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    axis: Option<&Bound<'_, PyAny>>,
    correction: f64,
    keepdims: bool,
) -> PyResult<PyTensor> {
    reduce_with(py, x, axis, |t, a| red::var(t, a, keepdims, correction))
}

/// The standard's `std`.
#[pyfunction(name = "std")]
#[pyo3(signature = (x, /, *, axis = None, correction = 0.0, keepdims = false))]
pub fn std_(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    axis: Option<&Bound<'_, PyAny>>,
    correction: f64,
    keepdims: bool,
) -> PyResult<PyTensor> {
    reduce_with(py, x, axis, |t, a| red::std(t, a, keepdims, correction))
}

/// The standard's `all`.
#[pyfunction]
#[pyo3(signature = (x, /, *, axis = None, keepdims = false))]
pub fn all(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    axis: Option<&Bound<'_, PyAny>>,
    keepdims: bool,
) -> PyResult<PyTensor> {
    reduce_with(py, x, axis, |t, a| {
        red::all_any(ReduceOp::All, t, a, keepdims)
    })
}

/// The standard's `any`.
#[pyfunction]
#[pyo3(signature = (x, /, *, axis = None, keepdims = false))]
pub fn any(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    axis: Option<&Bound<'_, PyAny>>,
    keepdims: bool,
) -> PyResult<PyTensor> {
    reduce_with(py, x, axis, |t, a| {
        red::all_any(ReduceOp::Any, t, a, keepdims)
    })
}

/// The standard's `count_nonzero` (`int64`).
#[pyfunction]
#[pyo3(signature = (x, /, *, axis = None, keepdims = false))]
pub fn count_nonzero(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    axis: Option<&Bound<'_, PyAny>>,
    keepdims: bool,
) -> PyResult<PyTensor> {
    reduce_with(py, x, axis, |t, a| red::count_nonzero(t, a, keepdims))
}

/// `argmax` / `argmin` of `x` along `axis` (`None`: the flattened array).
fn arg_extreme(
    py: Python<'_>,
    op: ReduceOp,
    x: &Bound<'_, PyAny>,
    axis: Option<isize>,
    keepdims: bool,
) -> PyResult<PyTensor> {
    let t = tensor_arg(x)?;
    run(py, t.device(), || red::arg_extreme(op, &t, axis, keepdims)).map(PyTensor::wrap)
}

/// The standard's `argmax` (the first maximum; the first NaN if any).
#[pyfunction]
#[pyo3(signature = (x, /, *, axis = None, keepdims = false))]
pub fn argmax(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    axis: Option<isize>,
    keepdims: bool,
) -> PyResult<PyTensor> {
    arg_extreme(py, ReduceOp::Argmax, x, axis, keepdims)
}

/// The standard's `argmin`.
#[pyfunction]
#[pyo3(signature = (x, /, *, axis = None, keepdims = false))]
pub fn argmin(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    axis: Option<isize>,
    keepdims: bool,
) -> PyResult<PyTensor> {
    arg_extreme(py, ReduceOp::Argmin, x, axis, keepdims)
}

/// `cumulative_sum` / `cumulative_prod`.
fn cumulative(
    py: Python<'_>,
    op: ScanOp,
    x: &Bound<'_, PyAny>,
    axis: Option<isize>,
    dtype: Option<&Bound<'_, PyAny>>,
    include_initial: bool,
) -> PyResult<PyTensor> {
    let t = tensor_arg(x)?;
    let d: Option<DType> = opt_dtype(dtype)?;
    run(py, t.device(), || {
        red::cumulative(op, &t, axis, d, include_initial)
    })
    .map(PyTensor::wrap)
}

/// The standard's `cumulative_sum`.
#[pyfunction]
#[pyo3(signature = (x, /, *, axis = None, dtype = None, include_initial = false))]
pub fn cumulative_sum(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    axis: Option<isize>,
    dtype: Option<&Bound<'_, PyAny>>,
    include_initial: bool,
) -> PyResult<PyTensor> {
    cumulative(py, ScanOp::Sum, x, axis, dtype, include_initial)
}

/// The standard's `cumulative_prod`.
#[pyfunction]
#[pyo3(signature = (x, /, *, axis = None, dtype = None, include_initial = false))]
pub fn cumulative_prod(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    axis: Option<isize>,
    dtype: Option<&Bound<'_, PyAny>>,
    include_initial: bool,
) -> PyResult<PyTensor> {
    cumulative(py, ScanOp::Prod, x, axis, dtype, include_initial)
}

/// Adds every function of this module to the Python module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    register_unary(m)?;
    register_binary(m)?;
    m.add_function(wrap_pyfunction!(clip, m)?)?;
    m.add_function(wrap_pyfunction!(where_, m)?)?;
    m.add_function(wrap_pyfunction!(sum, m)?)?;
    m.add_function(wrap_pyfunction!(prod, m)?)?;
    m.add_function(wrap_pyfunction!(max, m)?)?;
    m.add_function(wrap_pyfunction!(min, m)?)?;
    m.add_function(wrap_pyfunction!(mean, m)?)?;
    m.add_function(wrap_pyfunction!(var, m)?)?;
    m.add_function(wrap_pyfunction!(std_, m)?)?;
    m.add_function(wrap_pyfunction!(all, m)?)?;
    m.add_function(wrap_pyfunction!(any, m)?)?;
    m.add_function(wrap_pyfunction!(count_nonzero, m)?)?;
    m.add_function(wrap_pyfunction!(argmax, m)?)?;
    m.add_function(wrap_pyfunction!(argmin, m)?)?;
    m.add_function(wrap_pyfunction!(cumulative_sum, m)?)?;
    m.add_function(wrap_pyfunction!(cumulative_prod, m)?)?;
    Ok(())
}
