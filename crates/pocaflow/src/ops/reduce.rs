//! Reductions (`sum prod max min all any argmax argmin`, and `mean var std count_nonzero`
//! built on them), cumulative sums and products, and `where`: axes, `keepdims`, the standard's
//! result dtypes, then backend calls.

use super::elementwise::{binary, operand_dtype, Value};
use super::view::normalize_axes;
use crate::dtype::{DType, Kind, Scalar};
use crate::error::{Error, Result};
use crate::layout::{broadcast_shapes, fmt_shape, Layout};
use crate::plan::{BinaryOp, ReduceOp, ReducePlan, ScanOp};
use crate::tensor::Tensor;

/// The axes a reduction runs over: every axis (`None`), or the given ones (negative count from
/// the end; `Some(&[])` reduces nothing).
pub type Axes<'a> = Option<&'a [isize]>;

/// The 64-bit integer dtype sums and products of integers accumulate in: `uint64` for unsigned
/// operands, `int64` for signed ones and `bool`.
fn wide_integer(dtype: DType) -> DType {
    if dtype.kind() == Kind::Unsigned {
        DType::U64
    } else {
        DType::I64
    }
}

/// The result dtype of `sum`/`prod`/`cumulative_*` without a `dtype=` argument (the standard:
/// the default integer for signed integers and `bool`, `uint64` for unsigned ones, floats
/// keep theirs).
fn accumulation_dtype(dtype: DType) -> DType {
    if dtype.is_float() {
        dtype
    } else {
        wide_integer(dtype)
    }
}

/// The reduced axes of an array of `ndim` dimensions, sorted, and the kept ones.
fn split_axes(axes: Axes<'_>, ndim: usize) -> Result<(Vec<usize>, Vec<usize>)> {
    let reduced = match axes {
        None => (0..ndim).collect(),
        Some(a) => {
            let mut r = normalize_axes(a, ndim)?;
            r.sort_unstable();
            r
        }
    };
    let kept = (0..ndim).filter(|d| !reduced.contains(d)).collect();
    Ok((reduced, kept))
}

/// The shape of a reduction's result, with the reduced axes as extent 1 when `keepdims`.
fn result_shape(shape: &[usize], reduced: &[usize], keepdims: bool) -> Vec<usize> {
    (0..shape.len())
        .filter_map(|d| match (reduced.contains(&d), keepdims) {
            (false, _) => Some(shape[d]),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

/// Runs the backend reduction `op` of `x` (already of the operand dtype the backend expects)
/// into a new array of `out_dtype`.
fn run_reduce(
    op: ReduceOp,
    x: &Tensor,
    axes: Axes<'_>,
    keepdims: bool,
    out_dtype: DType,
) -> Result<Tensor> {
    let (reduced, kept) = split_axes(axes, x.ndim())?;
    let order: Vec<usize> = kept.iter().chain(&reduced).copied().collect();
    let plan = ReducePlan {
        src: x.layout.permute(&order)?,
        kept: kept.len(),
    };
    let needs_element = matches!(
        op,
        ReduceOp::Max | ReduceOp::Min | ReduceOp::Argmax | ReduceOp::Argmin
    );
    if needs_element && plan.reduced_len() == 0 {
        return Err(Error::Shape(format!(
            "{}: zero-size reduction of an array of shape {} over axes {reduced:?}, which has \
             no identity",
            op.name(),
            fmt_shape(x.shape())
        )));
    }
    let dst = Tensor::uninit(
        Layout::c_contiguous(plan.out_shape()),
        out_dtype,
        x.device(),
    )?;
    dst.storage.reduce(&dst.layout, op, &x.storage, &plan)?;
    let shape = result_shape(x.shape(), &reduced, keepdims);
    let layout = dst.layout.reshaped(&shape).expect("dense");
    Ok(Tensor::from_parts(dst.storage, layout))
}

/// `sum` (`Sum`) or `prod` (`Prod`) over `axes`, with the standard's dtypes: `dtype` when
/// given (the operand is converted to it first), else the default integer for signed integers
/// and `bool`, `uint64` for unsigned integers, the operand's own dtype for floats. Float32
/// sums are pairwise on the CPU (error `O(log n)` ulps) and trees on CUDA; `float16` and
/// `bfloat16` accumulate in `float32`.
///
/// # Errors
/// [`Error::Axis`] for an axis out of range; [`Error::Shape`] for a repeated axis.
pub fn sum_prod(
    op: ReduceOp,
    x: &Tensor,
    axes: Axes<'_>,
    keepdims: bool,
    dtype: Option<DType>,
) -> Result<Tensor> {
    let x = match dtype {
        Some(d) => x.to_dtype(d)?,
        None => x.clone(),
    };
    let want = dtype.unwrap_or_else(|| accumulation_dtype(x.dtype()));
    let acc = accumulation_dtype(want);
    let r = run_reduce(op, &x, axes, keepdims, acc)?;
    r.to_dtype(want)
}

/// `max` (`Max`) or `min` (`Min`) over `axes` (NaN if any element is NaN).
///
/// # Errors
/// [`Error::Shape`] when a reduced axis has extent 0 (no identity); axis errors.
pub fn max_min(op: ReduceOp, x: &Tensor, axes: Axes<'_>, keepdims: bool) -> Result<Tensor> {
    run_reduce(op, x, axes, keepdims, x.dtype())
}

/// `all` (`All`) or `any` (`Any`) over `axes`: whether every / any element is nonzero (NaN
/// counts as nonzero).
///
/// # Errors
/// Axis errors.
pub fn all_any(op: ReduceOp, x: &Tensor, axes: Axes<'_>, keepdims: bool) -> Result<Tensor> {
    let b = x.to_dtype(DType::Bool)?;
    run_reduce(op, &b, axes, keepdims, DType::Bool)
}

/// `argmax` (`Argmax`) or `argmin` (`Argmin`) along `axis` (`None`: over the flattened array):
/// the index of the first extreme element (the first NaN if there is one), `int64`.
///
/// # Errors
/// [`Error::Shape`] for an empty reduction; axis errors.
pub fn arg_extreme(
    op: ReduceOp,
    x: &Tensor,
    axis: Option<isize>,
    keepdims: bool,
) -> Result<Tensor> {
    match axis {
        Some(a) => run_reduce(op, x, Some(&[a]), keepdims, DType::I64),
        None => {
            let r = run_reduce(op, x, None, false, DType::I64)?;
            if keepdims {
                let ones = vec![1isize; x.ndim()];
                r.reshape(&ones, None)
            } else {
                Ok(r)
            }
        }
    }
}

/// The number of nonzero elements over `axes` (`int64`).
///
/// # Errors
/// Axis errors.
pub fn count_nonzero(x: &Tensor, axes: Axes<'_>, keepdims: bool) -> Result<Tensor> {
    let b = x.to_dtype(DType::Bool)?;
    run_reduce(ReduceOp::Sum, &b, axes, keepdims, DType::I64)
}

fn require_float(name: &str, x: &Tensor) -> Result<()> {
    if x.dtype().is_float() {
        Ok(())
    } else {
        Err(Error::DType(format!(
            "{name}: expected a floating-point dtype, got {}",
            x.dtype()
        )))
    }
}

/// The dtype `mean`, `var` and `std` compute in: `float32` for the half types, the operand's
/// own otherwise.
fn statistics_dtype(dtype: DType) -> DType {
    match dtype {
        DType::F16 | DType::BF16 => DType::F32,
        d => d,
    }
}

/// The number of elements each result element of a reduction over `axes` combines.
fn reduced_count(x: &Tensor, axes: Axes<'_>) -> Result<usize> {
    let (reduced, _) = split_axes(axes, x.ndim())?;
    Ok(reduced.iter().map(|&d| x.shape()[d]).product())
}

/// The arithmetic mean over `axes` (floats only; NaN for an empty reduction).
///
/// # Errors
/// [`Error::DType`] for a non-float array; axis errors.
pub fn mean(x: &Tensor, axes: Axes<'_>, keepdims: bool) -> Result<Tensor> {
    require_float("mean", x)?;
    let xc = x.to_dtype(statistics_dtype(x.dtype()))?;
    let n = reduced_count(x, axes)?;
    let s = run_reduce(ReduceOp::Sum, &xc, axes, keepdims, xc.dtype())?;
    let m = binary(
        BinaryOp::Divide,
        Value::Tensor(&s),
        Value::Scalar(Scalar::Float(n as f64)),
        None,
    )?;
    m.to_dtype(x.dtype())
}

/// The variance over `axes` with `correction` degrees of freedom removed (`correction = 1`:
/// the unbiased estimate): the mean of squared deviations from the mean, `sum / (n -
/// correction)`, NaN when `n - correction <= 0`. Two passes (the mean, then the deviations),
/// not the one-pass formula that cancels.
///
/// # Errors
/// [`Error::DType`] for a non-float array; [`Error::Shape`] for a negative correction; axis
/// errors.
pub fn var(x: &Tensor, axes: Axes<'_>, keepdims: bool, correction: f64) -> Result<Tensor> {
    require_float("var", x)?;
    if correction.is_nan() || correction < 0.0 {
        return Err(Error::Shape(format!(
            "var/std: correction must be a non-negative number, got {correction}"
        )));
    }
    let xc = x.to_dtype(statistics_dtype(x.dtype()))?;
    let n = reduced_count(x, axes)?;
    let m = mean(&xc, axes, true)?;
    let d = binary(
        BinaryOp::Subtract,
        Value::Tensor(&xc),
        Value::Tensor(&m),
        None,
    )?;
    let d2 = binary(
        BinaryOp::Multiply,
        Value::Tensor(&d),
        Value::Tensor(&d),
        Some(&d),
    )?;
    let s = run_reduce(ReduceOp::Sum, &d2, axes, keepdims, xc.dtype())?;
    let dof = n as f64 - correction;
    let (op, by) = if dof > 0.0 {
        (BinaryOp::Divide, dof)
    } else {
        (BinaryOp::Multiply, f64::NAN)
    };
    let v = binary(
        op,
        Value::Tensor(&s),
        Value::Scalar(Scalar::Float(by)),
        Some(&s),
    )?;
    v.to_dtype(x.dtype())
}

/// The standard deviation: the square root of [`var`].
///
/// # Errors
/// As [`var`].
pub fn std(x: &Tensor, axes: Axes<'_>, keepdims: bool, correction: f64) -> Result<Tensor> {
    let xc = x.to_dtype(statistics_dtype(x.dtype()))?;
    require_float("std", x)?;
    let v = var(&xc, axes, keepdims, correction)?;
    let s = super::elementwise::unary(crate::plan::UnaryOp::Sqrt, &v, Some(&v))?;
    s.to_dtype(x.dtype())
}

/// Running sums (`Sum`) or products (`Prod`) along `axis` (`None` for a 1-D array), with
/// [`sum_prod`]'s dtypes; `include_initial` puts the empty sum (0) or product (1) first, so
/// the axis grows by one.
///
/// # Errors
/// [`Error::Axis`] for a bad axis, or `None` with an array that is not 1-D.
pub fn cumulative(
    op: ScanOp,
    x: &Tensor,
    axis: Option<isize>,
    dtype: Option<DType>,
    include_initial: bool,
) -> Result<Tensor> {
    let axis = match axis {
        Some(a) => super::view::normalize_axis(a, x.ndim())?,
        None if x.ndim() == 1 => 0,
        None => {
            return Err(Error::Axis(format!(
                "{}: axis must be given for an array of {} dimensions",
                op.name(),
                x.ndim()
            )))
        }
    };
    let x = match dtype {
        Some(d) => x.to_dtype(d)?,
        None => x.clone(),
    };
    let want = dtype.unwrap_or_else(|| accumulation_dtype(x.dtype()));
    let acc = accumulation_dtype(want);
    let mut shape = x.shape().to_vec();
    let n = shape[axis];
    if include_initial {
        shape[axis] += 1;
    }
    let out = Tensor::uninit(Layout::c_contiguous(&shape), acc, x.device())?;
    let body = if include_initial {
        let first = out.layout.slice(axis, 0, 1, 1);
        let identity = match op {
            ScanOp::Sum => Scalar::Int(0),
            ScanOp::Prod => Scalar::Int(1),
        };
        out.storage.fill(&first, identity)?;
        out.layout.slice(axis, 1, n, 1)
    } else {
        out.layout.clone()
    };
    let mut order: Vec<usize> = (0..x.ndim()).filter(|&d| d != axis).collect();
    order.push(axis);
    let dst = body.permute(&order)?;
    let src = x.layout.permute(&order)?;
    out.storage.scan(&dst, op, &x.storage, &src)?;
    out.to_dtype(want)
}

/// `where(condition, x1, x2)`: `x1` where `condition` is true, else `x2`, broadcast together;
/// the dtype is `x1`'s and `x2`'s promoted (a Python scalar takes the array's, as in
/// arithmetic).
///
/// # Errors
/// [`Error::Shape`] naming the shapes that do not broadcast; [`Error::Device`] for mixed
/// devices; [`Error::DType`] if both values are scalars of different kinds and no array fixes
/// the dtype.
pub fn where_(condition: &Tensor, x1: Value<'_>, x2: Value<'_>) -> Result<Tensor> {
    let mut tensors = vec![condition];
    let mut shape = condition.shape().to_vec();
    for v in [x1, x2] {
        if let Value::Tensor(t) = v {
            tensors.push(t);
            shape = broadcast_shapes(&shape, t.shape()).ok_or_else(|| {
                Error::Shape(format!(
                    "where: shapes {} and {} cannot be broadcast together",
                    fmt_shape(&shape),
                    fmt_shape(t.shape())
                ))
            })?;
        }
    }
    let device = super::same_device("where", &tensors)?;
    let dtype = operand_dtype(x1, x2);
    let as_tensor = |v: Value<'_>| -> Result<Tensor> {
        match v {
            Value::Tensor(t) => t.to_dtype(dtype),
            Value::Scalar(s) => super::creation::full(&[], s, dtype, &device),
        }
    };
    let (a, b) = (as_tensor(x1)?, as_tensor(x2)?);
    let out = Tensor::uninit(Layout::c_contiguous(&shape), dtype, device)?;
    out.storage
        .copy_from(&out.layout, &b.storage, &b.layout.broadcast_to(&shape)?)?;
    let mask = condition.to_dtype(DType::Bool)?;
    out.storage.masked_copy(
        &out.layout,
        &mask.storage,
        &mask.layout.broadcast_to(&shape)?,
        &a.storage,
        &a.layout.broadcast_to(&shape)?,
    )?;
    Ok(out)
}

impl Tensor {
    /// The sum over `axes` (see [`sum_prod`]).
    ///
    /// # Errors
    /// As [`sum_prod`].
    pub fn sum(&self, axes: Axes<'_>, keepdims: bool) -> Result<Tensor> {
        sum_prod(ReduceOp::Sum, self, axes, keepdims, None)
    }

    /// The largest element over `axes` (see [`max_min`]).
    ///
    /// # Errors
    /// As [`max_min`].
    pub fn max(&self, axes: Axes<'_>, keepdims: bool) -> Result<Tensor> {
        max_min(ReduceOp::Max, self, axes, keepdims)
    }

    /// The mean over `axes` (see [`mean`]).
    ///
    /// # Errors
    /// As [`mean`].
    pub fn mean(&self, axes: Axes<'_>, keepdims: bool) -> Result<Tensor> {
        mean(self, axes, keepdims)
    }
}
