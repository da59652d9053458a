//! Elementwise functions of one and two operands: dtype rules (the standard's promotion, its
//! weak Python scalars, NumPy's choices where the standard leaves them open), broadcasting,
//! `out=` and in-place aliasing, then one backend call.

use crate::backend::Operand;
use crate::dtype::{DType, Kind, Scalar};
use crate::error::{Error, Result};
use crate::layout::{broadcast_shapes, fmt_shape, Layout};
use crate::plan::{BinaryOp, UnaryOp};
use crate::storage::Storage;
use crate::tensor::Tensor;

/// An operand of an elementwise function: an array, or a Python scalar that takes the array
/// operand's dtype (the standard's weak scalars).
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// An array.
    Tensor(&'a Tensor),
    /// A scalar.
    Scalar(Scalar),
}

impl<'a> From<&'a Tensor> for Value<'a> {
    fn from(t: &'a Tensor) -> Value<'a> {
        Value::Tensor(t)
    }
}

impl From<Scalar> for Value<'_> {
    fn from(s: Scalar) -> Self {
        Value::Scalar(s)
    }
}

/// Which dtypes an op takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Domain {
    /// Floating point only.
    Float,
    /// Integers and floats (not `bool`).
    Numeric,
    /// Integers and `bool`.
    IntegerOrBool,
    /// Integers only.
    Integer,
    /// Every dtype (`bool` results or logical ops, which convert to `bool` first).
    Any,
}

fn unary_domain(op: UnaryOp) -> Domain {
    use UnaryOp::*;
    match op {
        Abs | Negative | Square | Sign | Ceil | Floor | Round | Trunc => Domain::Numeric,
        BitwiseInvert => Domain::IntegerOrBool,
        LogicalNot | IsNan | IsInf | IsFinite => Domain::Any,
        _ => Domain::Float,
    }
}

fn binary_domain(op: BinaryOp) -> Domain {
    use BinaryOp::*;
    match op {
        Subtract | FloorDivide | Remainder | Pow => Domain::Numeric,
        Atan2 | Hypot | Copysign | Logaddexp | Nextafter | ReluBackward | GeluBackward
        | GeluTanhBackward | SiluBackward | SigmoidBackward => Domain::Float,
        BitwiseAnd | BitwiseOr | BitwiseXor => Domain::IntegerOrBool,
        BitwiseLeftShift | BitwiseRightShift => Domain::Integer,
        _ => Domain::Any,
    }
}

fn check_domain(name: &str, domain: Domain, dtype: DType) -> Result<()> {
    let ok = match domain {
        Domain::Float => dtype.is_float(),
        Domain::Numeric => dtype != DType::Bool,
        Domain::IntegerOrBool => !dtype.is_float(),
        Domain::Integer => matches!(dtype.kind(), Kind::Signed | Kind::Unsigned),
        Domain::Any => true,
    };
    if ok {
        return Ok(());
    }
    let want = match domain {
        Domain::Float => "a floating-point",
        Domain::Numeric => "a numeric (integer or floating-point)",
        Domain::IntegerOrBool => "an integer or boolean",
        _ => "an integer",
    };
    Err(Error::DType(format!(
        "{name}: expected {want} dtype, got {dtype}"
    )))
}

/// The dtype a Python scalar takes next to an array of `dtype`: the array's, except that a
/// float scalar with an integer or `bool` array gives the default float (`float64`) and an
/// integer scalar with a `bool` array the default integer (`int64`), as NumPy 2.
pub fn scalar_result_dtype(dtype: DType, s: Scalar) -> DType {
    match (s, dtype.kind()) {
        (Scalar::Float(_), Kind::Bool | Kind::Signed | Kind::Unsigned) => DType::F64,
        (Scalar::Int(_) | Scalar::UInt(_), Kind::Bool) => s.default_dtype(),
        _ => dtype,
    }
}

/// The dtype two operands meet in (the standard's promotion, weak scalars), before an op's own
/// rules.
pub(crate) fn operand_dtype(a: Value<'_>, b: Value<'_>) -> DType {
    match (a, b) {
        (Value::Tensor(x), Value::Tensor(y)) => DType::promote(x.dtype(), y.dtype()),
        (Value::Tensor(x), Value::Scalar(s)) | (Value::Scalar(s), Value::Tensor(x)) => {
            scalar_result_dtype(x.dtype(), s)
        }
        (Value::Scalar(s), Value::Scalar(t)) => {
            DType::promote(s.default_dtype(), t.default_dtype())
        }
    }
}

/// The dtype `op` computes in for operands promoted to `dtype`, after checking its domain.
fn binary_compute_dtype(op: BinaryOp, dtype: DType) -> Result<DType> {
    use BinaryOp::*;
    check_domain(op.name(), binary_domain(op), dtype)?;
    Ok(match op {
        LogicalAnd | LogicalOr | LogicalXor => DType::Bool,
        // True division of integers gives float64, as NumPy.
        Divide if !dtype.is_float() => DType::F64,
        _ => dtype,
    })
}

/// Checks `out` for a result of `shape` and `dtype`: a shape the result broadcasts to (as
/// NumPy, the operands broadcast to `out`'s shape), a dtype the result casts to within its
/// kind (NumPy's `same_kind`), no overlapping elements.
fn check_out(name: &str, out: &Tensor, shape: &[usize], dtype: DType) -> Result<()> {
    if broadcast_shapes(shape, out.shape()).as_deref() != Some(out.shape()) {
        return Err(Error::Shape(format!(
            "{name}: out has shape {} but the result has shape {}, which does not broadcast to it",
            fmt_shape(out.shape()),
            fmt_shape(shape)
        )));
    }
    let rank = |k: Kind| match k {
        Kind::Bool => 0,
        Kind::Unsigned | Kind::Signed => 1,
        Kind::Float => 2,
    };
    if rank(dtype.kind()) > rank(out.dtype().kind()) {
        return Err(Error::DType(format!(
            "{name}: cannot store a result of dtype {dtype} in out of dtype {}",
            out.dtype()
        )));
    }
    if out.layout().may_overlap() {
        return Err(Error::Shape(format!(
            "{name}: out (shape {}, strides {:?}) has overlapping elements",
            fmt_shape(out.shape()),
            out.strides()
        )));
    }
    Ok(())
}

/// The destination of a result of `shape` and `dtype`: `out` when it has the dtype, else a new
/// C-order tensor (copied into `out` afterwards by [`finish`]).
fn destination(
    out: Option<&Tensor>,
    shape: &[usize],
    dtype: DType,
    device: crate::Device,
) -> Result<Tensor> {
    match out {
        Some(o) if o.dtype() == dtype => Ok(o.clone()),
        _ => Tensor::uninit(Layout::c_contiguous(shape), dtype, device),
    }
}

/// Copies the result into `out` if it was computed elsewhere; returns what the caller gets.
fn finish(result: Tensor, out: Option<&Tensor>) -> Result<Tensor> {
    match out {
        Some(o) if !same_view(&result, o) => {
            o.copy_(&result)?;
            Ok(o.clone())
        }
        _ => Ok(result),
    }
}

/// Whether two tensors are the same view of the same storage.
fn same_view(a: &Tensor, b: &Tensor) -> bool {
    std::sync::Arc::ptr_eq(&a.storage, &b.storage) && a.layout == b.layout
}

/// `t` (converted to `dtype`, viewed with `layout`) as an operand of a write to `dst`: a copy
/// when it may overlap `dst` anywhere but at the same elements, or has another dtype.
fn prepare(t: &Tensor, dtype: DType, shape: &[usize], dst: &Tensor) -> Result<Tensor> {
    let t = if t.dtype() != dtype {
        t.to_dtype(dtype)?
    } else {
        t.clone()
    };
    let layout = t.layout.broadcast_to(shape)?;
    let view = Tensor::from_parts(t.storage.clone(), layout);
    if !same_view(&view, dst) && view.storage.overlaps(&dst.storage) {
        let copy = view.copy_into_new(dtype, Layout::c_contiguous(shape))?;
        return Ok(copy);
    }
    Ok(view)
}

/// `op(x)` elementwise, into `out` when given (same shape; the result converts to its dtype
/// within the kind).
///
/// # Errors
/// [`Error::DType`] for a dtype outside the op's domain (an integer array for `exp`, a float
/// array for `bitwise_invert`); [`Error::Shape`] for a bad `out`; [`Error::Device`] if `out`
/// is on another device.
pub fn unary(op: UnaryOp, x: &Tensor, out: Option<&Tensor>) -> Result<Tensor> {
    check_domain(op.name(), unary_domain(op), x.dtype())?;
    let compute = if op == UnaryOp::LogicalNot {
        DType::Bool
    } else {
        x.dtype()
    };
    let result_dtype = if op.returns_bool() {
        DType::Bool
    } else {
        compute
    };
    let mut shape = x.shape();
    if let Some(o) = out {
        super::same_device(op.name(), &[x, o])?;
        check_out(op.name(), o, shape, result_dtype)?;
        shape = o.shape();
    }
    let dst = destination(out, shape, result_dtype, x.device())?;
    let src = prepare(x, compute, shape, &dst)?;
    dst.storage
        .unary(&dst.layout, op, &src.storage, &src.layout)?;
    finish(dst, out)
}

/// The shape and compute dtype of `op(a, b)`, with the result's dtype.
fn binary_types(op: BinaryOp, a: Value<'_>, b: Value<'_>) -> Result<(Vec<usize>, DType, DType)> {
    let shape_of = |v: Value<'_>| match v {
        Value::Tensor(t) => t.shape().to_vec(),
        Value::Scalar(_) => Vec::new(),
    };
    let (sa, sb) = (shape_of(a), shape_of(b));
    let shape = broadcast_shapes(&sa, &sb).ok_or_else(|| {
        Error::Shape(format!(
            "{}: operands could not be broadcast together with shapes {} and {}",
            op.name(),
            fmt_shape(&sa),
            fmt_shape(&sb)
        ))
    })?;
    let compute = binary_compute_dtype(op, operand_dtype(a, b))?;
    let result = if op.returns_bool() {
        DType::Bool
    } else {
        compute
    };
    Ok((shape, compute, result))
}

/// `op(a, b)` elementwise with broadcasting, into `out` when given (the broadcast shape; the
/// result converts to its dtype within the kind). `out` may be one of the operands (`a += b`);
/// an operand that overlaps `out` partly (`a += a[::-1]`) is copied first, so the result is
/// NumPy's.
///
/// # Errors
/// [`Error::Shape`] naming both shapes when they do not broadcast; [`Error::DType`] for dtypes
/// outside the op's domain; [`Error::Device`] naming both devices when the arrays are on
/// different ones.
pub fn binary(op: BinaryOp, a: Value<'_>, b: Value<'_>, out: Option<&Tensor>) -> Result<Tensor> {
    let (mut shape, compute, result_dtype) = binary_types(op, a, b)?;
    let mut tensors: Vec<&Tensor> = Vec::with_capacity(3);
    for v in [a, b] {
        if let Value::Tensor(t) = v {
            tensors.push(t);
        }
    }
    if let Some(o) = out {
        tensors.push(o);
    }
    let device = if tensors.is_empty() {
        crate::Device::Cpu
    } else {
        super::same_device(op.name(), &tensors)?
    };
    if let Some(o) = out {
        check_out(op.name(), o, &shape, result_dtype)?;
        shape = o.shape().to_vec();
    }
    let dst = destination(out, &shape, result_dtype, device)?;
    // Two scalars: the first becomes a 0-d array (backends take at most one scalar).
    let a_array;
    let a = match (a, b) {
        (Value::Scalar(s), Value::Scalar(_)) => {
            a_array = super::creation::full(&[], s, compute, &device)?;
            Value::Tensor(&a_array)
        }
        _ => a,
    };
    let pa = operand(a, compute, &shape, &dst)?;
    // `x ** 2` is `x * x`, exactly rounded (as NumPy's fast path; a library `pow` may be an
    // ulp off).
    if let (BinaryOp::Pow, Prepared::Tensor(x), Value::Scalar(s)) = (op, &pa, b) {
        if s.as_f64() == 2.0 {
            dst.storage
                .unary(&dst.layout, UnaryOp::Square, &x.storage, &x.layout)?;
            return finish(dst, out);
        }
    }
    let pb = operand(b, compute, &shape, &dst)?;
    dst.storage
        .binary(&dst.layout, op, as_operand(&pa), as_operand(&pb))?;
    finish(dst, out)
}

/// A prepared operand: a view ready for the backend, or a scalar.
enum Prepared {
    Tensor(Tensor),
    Scalar(Scalar),
}

impl Prepared {
    fn value(&self) -> Value<'_> {
        match self {
            Prepared::Tensor(t) => Value::Tensor(t),
            Prepared::Scalar(s) => Value::Scalar(*s),
        }
    }
}

fn operand(v: Value<'_>, dtype: DType, shape: &[usize], dst: &Tensor) -> Result<Prepared> {
    Ok(match v {
        Value::Tensor(t) => Prepared::Tensor(prepare(t, dtype, shape, dst)?),
        Value::Scalar(s) => Prepared::Scalar(s),
    })
}

fn as_operand(p: &Prepared) -> Operand<'_, Storage> {
    match p {
        Prepared::Tensor(t) => Operand::Array(&t.storage, &t.layout),
        Prepared::Scalar(s) => Operand::Scalar(*s),
    }
}

/// `clip(x, min, max)`: `minimum(maximum(x, min), max)` with either bound optional, in `x`'s
/// dtype (bounds convert to it, as the standard asks).
///
/// # Errors
/// As [`binary`]; [`Error::DType`] for a `bool` array.
pub fn clip(
    x: &Tensor,
    min: Option<Value<'_>>,
    max: Option<Value<'_>>,
    out: Option<&Tensor>,
) -> Result<Tensor> {
    check_domain("clip", Domain::Numeric, x.dtype())?;
    let bound = |v: Value<'_>| -> Result<Prepared> {
        Ok(match v {
            Value::Tensor(t) => {
                super::same_device("clip", &[x, t])?;
                Prepared::Tensor(t.to_dtype(x.dtype())?)
            }
            Value::Scalar(s) => Prepared::Scalar(s),
        })
    };
    let (lo, hi) = (min.map(bound).transpose()?, max.map(bound).transpose()?);
    let mut shape = x.shape().to_vec();
    for p in [&lo, &hi].into_iter().flatten() {
        if let Prepared::Tensor(t) = p {
            shape = broadcast_shapes(&shape, t.shape()).ok_or_else(|| {
                Error::Shape(format!(
                    "clip: shapes {} and {} cannot be broadcast together",
                    fmt_shape(&shape),
                    fmt_shape(t.shape())
                ))
            })?;
        }
    }
    let dst = match out {
        Some(o) => {
            super::same_device("clip", &[x, o])?;
            check_out("clip", o, &shape, x.dtype())?;
            o.clone()
        }
        None => Tensor::uninit(Layout::c_contiguous(&shape), x.dtype(), x.device())?,
    };
    let base = prepare(x, x.dtype(), &shape, &dst)?;
    dst.copy_(&base)?;
    if let Some(lo) = &lo {
        clamp_into(BinaryOp::Maximum, &dst, lo.value())?;
    }
    if let Some(hi) = &hi {
        clamp_into(BinaryOp::Minimum, &dst, hi.value())?;
    }
    Ok(dst)
}

/// `dst = op(dst, bound)` in `dst`'s dtype (a bound scalar converts to it).
fn clamp_into(op: BinaryOp, dst: &Tensor, bound: Value<'_>) -> Result<()> {
    let shape = dst.shape().to_vec();
    let b = operand(bound, dst.dtype(), &shape, dst)?;
    dst.storage.binary(
        &dst.layout,
        op,
        Operand::Array(&dst.storage, &dst.layout),
        as_operand(&b),
    )
}

impl Tensor {
    /// `op(self)` elementwise (see [`unary`]).
    ///
    /// # Errors
    /// As [`unary`].
    pub fn map(&self, op: UnaryOp) -> Result<Tensor> {
        unary(op, self, None)
    }

    /// `op(self, other)` elementwise with broadcasting (see [`binary`]).
    ///
    /// # Errors
    /// As [`binary`].
    pub fn zip<'a>(&self, op: BinaryOp, other: impl Into<Value<'a>>) -> Result<Tensor> {
        binary(op, Value::Tensor(self), other.into(), None)
    }
}
