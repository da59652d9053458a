//! Neural-network primitives (`pf.nn`): activations and their derivatives (elementwise ops),
//! softmax, log-softmax and the normalizations (one row-wise backend op each, forward and
//! backward), and cross-entropy (built from those).

pub use super::linear::{linear, linear_backward, Activation};

use super::elementwise::{binary, unary, Value};
use super::view::normalize_axis;
use crate::backend::RowArgs;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::layout::{fmt_shape, Layout};
use crate::plan::{BinaryOp, RowOp, RowPlan, UnaryOp};
use crate::tensor::Tensor;

/// Which GELU: the exact one or the tanh approximation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GeluApproximate {
    /// `x Φ(x)` with the normal distribution function (torch's `approximate="none"`).
    #[default]
    None,
    /// `x (1 + tanh(√(2/π) (x + 0.044715 x³))) / 2` (torch's `approximate="tanh"`).
    Tanh,
}

/// How a loss reduces its per-element values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    /// The mean (a 0-d array).
    #[default]
    Mean,
    /// The sum (a 0-d array).
    Sum,
    /// No reduction: one loss per target.
    None,
}

fn float_input(name: &str, x: &Tensor) -> Result<()> {
    if x.dtype().is_float() {
        return Ok(());
    }
    Err(Error::DType(format!(
        "{name}: expected a floating-point dtype, got {}",
        x.dtype()
    )))
}

fn same_shape(name: &str, (an, a): (&str, &Tensor), (bn, b): (&str, &Tensor)) -> Result<()> {
    if a.shape() == b.shape() {
        return Ok(());
    }
    Err(Error::Shape(format!(
        "{name}: {an} has shape {} but {bn} has shape {}",
        fmt_shape(a.shape()),
        fmt_shape(b.shape())
    )))
}

/// `max(x, 0)` elementwise.
///
/// # Errors
/// [`Error::DType`] for a non-float `x`.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    unary(UnaryOp::Relu, x, None)
}

/// GELU elementwise, exact or tanh-approximated.
///
/// # Errors
/// [`Error::DType`] for a non-float `x`.
pub fn gelu(x: &Tensor, approximate: GeluApproximate) -> Result<Tensor> {
    let op = match approximate {
        GeluApproximate::None => UnaryOp::Gelu,
        GeluApproximate::Tanh => UnaryOp::GeluTanh,
    };
    unary(op, x, None)
}

/// `x * sigmoid(x)` elementwise.
///
/// # Errors
/// [`Error::DType`] for a non-float `x`.
pub fn silu(x: &Tensor) -> Result<Tensor> {
    unary(UnaryOp::Silu, x, None)
}

/// `1 / (1 + e^-x)` elementwise.
///
/// # Errors
/// [`Error::DType`] for a non-float `x`.
pub fn sigmoid(x: &Tensor) -> Result<Tensor> {
    unary(UnaryOp::Sigmoid, x, None)
}

/// An activation's backward: `op(dy, x)` on operands of one shape.
fn activation_backward(op: BinaryOp, dy: &Tensor, x: &Tensor, xname: &str) -> Result<Tensor> {
    same_shape(op.name(), ("dy", dy), (xname, x))?;
    float_input(op.name(), dy)?;
    binary(op, Value::Tensor(dy), Value::Tensor(x), None)
}

/// The gradient of [`relu`]: `dy` where `x > 0`, else 0 (0 at exactly 0, as torch).
///
/// # Errors
/// [`Error::Shape`] if `dy` and `x` differ in shape; [`Error::DType`] for non-float operands.
pub fn relu_backward(dy: &Tensor, x: &Tensor) -> Result<Tensor> {
    activation_backward(BinaryOp::ReluBackward, dy, x, "x")
}

/// The gradient of [`gelu`] at `x` times `dy`.
///
/// # Errors
/// As [`relu_backward`].
pub fn gelu_backward(dy: &Tensor, x: &Tensor, approximate: GeluApproximate) -> Result<Tensor> {
    let op = match approximate {
        GeluApproximate::None => BinaryOp::GeluBackward,
        GeluApproximate::Tanh => BinaryOp::GeluTanhBackward,
    };
    activation_backward(op, dy, x, "x")
}

/// The gradient of [`silu`] at `x` times `dy`.
///
/// # Errors
/// As [`relu_backward`].
pub fn silu_backward(dy: &Tensor, x: &Tensor) -> Result<Tensor> {
    activation_backward(BinaryOp::SiluBackward, dy, x, "x")
}

/// The gradient of [`sigmoid`] times `dy`, from the sigmoid's output `y`: `dy y (1 - y)`.
///
/// # Errors
/// As [`relu_backward`].
pub fn sigmoid_backward(dy: &Tensor, y: &Tensor) -> Result<Tensor> {
    activation_backward(BinaryOp::SigmoidBackward, dy, y, "y")
}

/// The dtype of a row op's operands: the promotion of the float arrays given.
fn row_dtype(name: &str, arrays: &[Option<&Tensor>]) -> Result<DType> {
    let mut dtype: Option<DType> = None;
    for t in arrays.iter().flatten() {
        float_input(name, t)?;
        dtype = Some(dtype.map_or(t.dtype(), |d| DType::promote(d, t.dtype())));
    }
    Ok(dtype.expect("an operand"))
}

/// `t` as a C-contiguous array of `dtype` viewed as `shape` (a copy only when needed).
fn dense(t: &Tensor, dtype: DType, shape: &[usize]) -> Result<Tensor> {
    let t = if t.dtype() == dtype {
        t.contiguous()?
    } else {
        t.to_dtype(dtype)?
    };
    let shape: Vec<isize> = shape.iter().map(|&d| d as isize).collect();
    t.reshape(&shape, None)
}

/// The operands of one row op, as arrays.
struct RowInputs<'a> {
    x: &'a Tensor,
    dy: Option<&'a Tensor>,
    weight: Option<&'a Tensor>,
    bias: Option<&'a Tensor>,
}

/// Runs the row op on `(rows, n)` dense operands of `dtype` (converted and made dense here),
/// into a new `(rows, n)` array and, for the backward norms, a new `(rows, 2)` statistics
/// array.
fn run_rows(
    op: RowOp,
    (rows, n): (usize, usize),
    eps: f64,
    inputs: RowInputs<'_>,
    dtype: DType,
) -> Result<(Tensor, Option<Tensor>)> {
    let device = super::same_device(
        op.name(),
        &[Some(inputs.x), inputs.dy, inputs.weight, inputs.bias]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>(),
    )?;
    let out = Tensor::uninit(Layout::c_contiguous(&[rows, n]), dtype, device)?;
    let stats_dtype = if dtype == DType::F64 {
        DType::F64
    } else {
        DType::F32
    };
    let stats = op
        .writes_stats()
        .then(|| Tensor::uninit(Layout::c_contiguous(&[rows, 2]), stats_dtype, device))
        .transpose()?;
    if rows == 0 {
        return Ok((out, stats));
    }
    let x = dense(inputs.x, dtype, &[rows, n])?;
    let dy = inputs.dy.map(|t| dense(t, dtype, &[rows, n])).transpose()?;
    let weight = inputs.weight.map(|t| dense(t, dtype, &[n])).transpose()?;
    let bias = inputs.bias.map(|t| dense(t, dtype, &[n])).transpose()?;
    fn part(t: &Tensor) -> (&crate::storage::Storage, &Layout) {
        (&t.storage, &t.layout)
    }
    let args = RowArgs {
        x: part(&x),
        dy: dy.as_ref().map(part),
        weight: weight.as_ref().map(part),
        bias: bias.as_ref().map(part),
        stats: stats.as_ref().map(part),
    };
    let plan = RowPlan { op, rows, n, eps };
    out.storage.rowwise(&out.layout, &plan, &args)?;
    Ok((out, stats))
}

/// A row op along `axis` of `x` (and `dy`, of `x`'s shape): the axis moved last, the rows
/// computed, the result moved back (and made C-contiguous).
fn along_axis(op: RowOp, x: &Tensor, dy: Option<&Tensor>, axis: isize) -> Result<Tensor> {
    let name = op.name();
    if let Some(dy) = dy {
        same_shape(name, ("dy", dy), ("y", x))?;
    }
    let dtype = row_dtype(name, &[Some(x), dy])?;
    let shape = x.shape();
    if shape.is_empty() {
        // A 0-d array is one row of one element.
        let x1 = x.reshape(&[1], None)?;
        let dy1 = dy.map(|d| d.reshape(&[1], None)).transpose()?;
        return along_axis(op, &x1, dy1.as_ref(), 0)?.reshape(&[], None);
    }
    let ax = normalize_axis(axis, shape.len())?;
    let last = shape.len() - 1;
    let moved = |t: &Tensor| t.moveaxis(&[ax as isize], &[last as isize]);
    let (xm, dym) = if ax == last {
        (x.clone(), dy.cloned())
    } else {
        (moved(x)?, dy.map(moved).transpose()?)
    };
    let n = shape[ax];
    let msh = xm.shape().to_vec();
    if n == 0 {
        return Tensor::empty(shape, dtype, &x.device());
    }
    let rows = xm.numel() / n;
    let inputs = RowInputs {
        x: &xm,
        dy: dym.as_ref(),
        weight: None,
        bias: None,
    };
    let (out, _) = run_rows(op, (rows, n), 0.0, inputs, dtype)?;
    let sh: Vec<isize> = msh.iter().map(|&d| d as isize).collect();
    let out = out.reshape(&sh, None)?;
    if ax == last {
        Ok(out)
    } else {
        out.moveaxis(&[last as isize], &[ax as isize])?.contiguous()
    }
}

/// `e^x / Σ e^x` along `axis` (computed as `e^(x - max)`, so large values stay finite).
///
/// # Errors
/// [`Error::DType`] for a non-float `x`; [`Error::Axis`] for an axis out of range.
pub fn softmax(x: &Tensor, axis: isize) -> Result<Tensor> {
    along_axis(RowOp::Softmax, x, None, axis)
}

/// `x - ln Σ e^x` along `axis` (stable for large values).
///
/// # Errors
/// As [`softmax`].
pub fn log_softmax(x: &Tensor, axis: isize) -> Result<Tensor> {
    along_axis(RowOp::LogSoftmax, x, None, axis)
}

/// The gradient of [`softmax`] from its output `y`: `y (dy - Σ dy y)` along `axis`.
///
/// # Errors
/// As [`softmax`]; [`Error::Shape`] if `dy` and `y` differ in shape.
pub fn softmax_backward(dy: &Tensor, y: &Tensor, axis: isize) -> Result<Tensor> {
    along_axis(RowOp::SoftmaxBackward, y, Some(dy), axis)
}

/// The gradient of [`log_softmax`] from its output `y`: `dy - e^y Σ dy` along `axis`.
///
/// # Errors
/// As [`softmax_backward`].
pub fn log_softmax_backward(dy: &Tensor, y: &Tensor, axis: isize) -> Result<Tensor> {
    along_axis(RowOp::LogSoftmaxBackward, y, Some(dy), axis)
}

/// The rows of a normalization over the trailing `normalized_shape` of `x`, after checking
/// the shapes of `x`, `weight` and `bias`.
fn norm_rows(
    name: &str,
    x: &Tensor,
    normalized_shape: &[usize],
    params: &[(&str, Option<&Tensor>)],
) -> Result<(usize, usize)> {
    let shape = x.shape();
    let k = normalized_shape.len();
    if k == 0 || k > shape.len() || shape[shape.len() - k..] != *normalized_shape {
        return Err(Error::Shape(format!(
            "{name}: normalized_shape {} must be the trailing dimensions of x, which has shape \
             {}",
            fmt_shape(normalized_shape),
            fmt_shape(shape)
        )));
    }
    for (pname, p) in params {
        if let Some(p) = p {
            if p.shape() != normalized_shape {
                return Err(Error::Shape(format!(
                    "{name}: {pname} has shape {} but normalized_shape is {}",
                    fmt_shape(p.shape()),
                    fmt_shape(normalized_shape)
                )));
            }
        }
    }
    let n: usize = normalized_shape.iter().product();
    Ok((x.numel().checked_div(n).unwrap_or(0), n))
}

fn check_eps(name: &str, eps: f64) -> Result<()> {
    if eps >= 0.0 && eps.is_finite() {
        return Ok(());
    }
    Err(Error::Shape(format!(
        "{name}: eps must be finite and non-negative, got {eps}"
    )))
}

/// Layer normalization over the trailing `normalized_shape` of `x`: `(x - mean) / sqrt(var +
/// eps) * weight + bias` with the biased variance (statistics in `float32` for half types).
///
/// # Errors
/// [`Error::Shape`] naming the shapes if `normalized_shape` is not `x`'s trailing dimensions
/// or `weight`/`bias` are not of that shape, or for a negative `eps`; [`Error::DType`] for
/// non-float operands; [`Error::Device`] for operands on different devices.
pub fn layer_norm(
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Result<Tensor> {
    let name = RowOp::LayerNorm.name();
    check_eps(name, eps)?;
    let (rows, n) = norm_rows(
        name,
        x,
        normalized_shape,
        &[("weight", weight), ("bias", bias)],
    )?;
    let dtype = row_dtype(name, &[Some(x), weight, bias])?;
    let inputs = RowInputs {
        x,
        dy: None,
        weight,
        bias,
    };
    let (out, _) = run_rows(RowOp::LayerNorm, (rows, n), eps, inputs, dtype)?;
    reshape_like(&out, x.shape())
}

/// RMS normalization over the trailing `normalized_shape` of `x`: `x / sqrt(mean(x²) + eps) *
/// weight`.
///
/// # Errors
/// As [`layer_norm`].
pub fn rms_norm(
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    eps: f64,
) -> Result<Tensor> {
    let name = RowOp::RmsNorm.name();
    check_eps(name, eps)?;
    let (rows, n) = norm_rows(name, x, normalized_shape, &[("weight", weight)])?;
    let dtype = row_dtype(name, &[Some(x), weight])?;
    let inputs = RowInputs {
        x,
        dy: None,
        weight,
        bias: None,
    };
    let (out, _) = run_rows(RowOp::RmsNorm, (rows, n), eps, inputs, dtype)?;
    reshape_like(&out, x.shape())
}

fn reshape_like(t: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let sh: Vec<isize> = shape.iter().map(|&d| d as isize).collect();
    t.reshape(&sh, None)
}

/// `Σ_rows e` of a `(rows, n)` array, as the dtype `dtype` (`normalized_shape`-shaped).
fn column_sum(e: &Tensor, dtype: DType, normalized_shape: &[usize]) -> Result<Tensor> {
    let s = super::reduce::sum_prod(
        crate::plan::ReduceOp::Sum,
        e,
        Some(&[0]),
        false,
        Some(dtype),
    )?;
    reshape_like(&s, normalized_shape)
}

/// The gradients of [`layer_norm`]: `(dx, dweight, dbias)`, `dweight` when `weight` is given,
/// `dbias` when `bias` is given (only its presence matters).
///
/// # Errors
/// As [`layer_norm`]; [`Error::Shape`] if `dy` and `x` differ in shape.
pub fn layer_norm_backward(
    dy: &Tensor,
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Result<(Tensor, Option<Tensor>, Option<Tensor>)> {
    let op = RowOp::LayerNormBackward;
    let (dx, stats, rows, dtype) = norm_backward(op, dy, x, normalized_shape, (weight, bias), eps)?;
    let n: usize = normalized_shape.iter().product();
    let dy2 = if weight.is_some() || bias.is_some() {
        Some(dense(dy, dtype, &[rows, n])?)
    } else {
        None
    };
    let dweight = weight
        .map(|_| {
            let x2 = dense(x, dtype, &[rows, n])?;
            let st = stats.to_dtype(dtype)?;
            let mean = st.index(&[slice_all(), super::IndexItem::Slice(Some(0), Some(1), None)])?;
            let rstd = st.index(&[slice_all(), super::IndexItem::Slice(Some(1), Some(2), None)])?;
            let xhat = x2
                .zip(BinaryOp::Subtract, &mean)?
                .zip(BinaryOp::Multiply, &rstd)?;
            column_sum(
                &xhat.zip(BinaryOp::Multiply, dy2.as_ref().expect("dense dy"))?,
                dtype,
                normalized_shape,
            )
        })
        .transpose()?;
    let dbias = bias
        .map(|_| column_sum(dy2.as_ref().expect("dense dy"), dtype, normalized_shape))
        .transpose()?;
    Ok((dx, dweight, dbias))
}

fn slice_all() -> super::IndexItem {
    super::IndexItem::Slice(None, None, None)
}

/// The gradients of [`rms_norm`]: `(dx, dweight)`, `dweight` when `weight` is given.
///
/// # Errors
/// As [`layer_norm_backward`].
pub fn rms_norm_backward(
    dy: &Tensor,
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    eps: f64,
) -> Result<(Tensor, Option<Tensor>)> {
    let op = RowOp::RmsNormBackward;
    let (dx, stats, rows, dtype) = norm_backward(op, dy, x, normalized_shape, (weight, None), eps)?;
    let n: usize = normalized_shape.iter().product();
    let dweight = weight
        .map(|_| {
            let x2 = dense(x, dtype, &[rows, n])?;
            let dy2 = dense(dy, dtype, &[rows, n])?;
            let rstd = stats
                .to_dtype(dtype)?
                .index(&[slice_all(), super::IndexItem::Slice(Some(1), Some(2), None)])?;
            let g = x2
                .zip(BinaryOp::Multiply, &rstd)?
                .zip(BinaryOp::Multiply, &dy2)?;
            column_sum(&g, dtype, normalized_shape)
        })
        .transpose()?;
    Ok((dx, dweight))
}

/// The shared part of the backward normalizations: checks, then `dx` (in `x`'s shape), the
/// `(rows, 2)` statistics, the row count and the dtype.
fn norm_backward(
    op: RowOp,
    dy: &Tensor,
    x: &Tensor,
    normalized_shape: &[usize],
    (weight, bias): (Option<&Tensor>, Option<&Tensor>),
    eps: f64,
) -> Result<(Tensor, Tensor, usize, DType)> {
    let name = op.name();
    check_eps(name, eps)?;
    same_shape(name, ("dy", dy), ("x", x))?;
    let (rows, n) = norm_rows(
        name,
        x,
        normalized_shape,
        &[("weight", weight), ("bias", bias)],
    )?;
    let dtype = row_dtype(name, &[Some(dy), Some(x), weight, bias])?;
    let inputs = RowInputs {
        x,
        dy: Some(dy),
        weight,
        bias: None,
    };
    let (dx, stats) = run_rows(op, (rows, n), eps, inputs, dtype)?;
    Ok((
        reshape_like(&dx, x.shape())?,
        stats.expect("backward norms write statistics"),
        rows,
        dtype,
    ))
}

/// `logits` with the class axis last and `target` as int64 of the matching shape: logits
/// `(C,)` with a 0-d target, or `(N, C, d1, ...)` with a target `(N, d1, ...)` (the class axis
/// is 1, as torch).
fn loss_operands(name: &str, logits: &Tensor, target: &Tensor) -> Result<(Tensor, Tensor)> {
    float_input(name, logits)?;
    if !matches!(
        target.dtype().kind(),
        crate::dtype::Kind::Signed | crate::dtype::Kind::Unsigned
    ) {
        return Err(Error::DType(format!(
            "{name}: target must be of an integer dtype (class indices), got {}",
            target.dtype()
        )));
    }
    let ls = logits.shape();
    let expected: Vec<usize> = match ls.len() {
        0 => Vec::new(),
        1 => Vec::new(),
        _ => [&ls[..1], &ls[2..]].concat(),
    };
    if ls.is_empty() || target.shape() != expected.as_slice() {
        return Err(Error::Shape(format!(
            "{name}: logits of shape {} need a target of shape {} (logits (C,) or (N, C, ...) \
             with the classes on axis 1), got a target of shape {}",
            fmt_shape(ls),
            if ls.is_empty() {
                "(at least 1-D logits)".to_string()
            } else {
                fmt_shape(&expected)
            },
            fmt_shape(target.shape())
        )));
    }
    let logits = if ls.len() > 2 {
        logits.moveaxis(&[1], &[-1])?
    } else {
        logits.clone()
    };
    let target = target.to_dtype(DType::I64)?;
    Ok((logits, target))
}

/// The fused cross-entropy rows of `logits` (class axis last) against `target`: per-element
/// losses in `target`'s shape (`grad` `None`), or the gradient times the scale in `logits`'
/// shape.
fn cross_entropy_rows(
    name: &str,
    logits: &Tensor,
    target: &Tensor,
    grad: Option<f64>,
) -> Result<Tensor> {
    super::same_device(name, &[logits, target])?;
    let c = *logits.shape().last().expect("class axis");
    let rows = target.numel();
    let lg = dense(logits, logits.dtype(), &[rows, c])?;
    let tg = dense(target, DType::I64, &[rows])?;
    let out_shape: Vec<usize> = if grad.is_some() {
        vec![rows, c]
    } else {
        vec![rows]
    };
    let out = Tensor::uninit(
        Layout::c_contiguous(&out_shape),
        logits.dtype(),
        logits.device(),
    )?;
    if rows > 0 {
        out.storage
            .cross_entropy(
                &out.layout,
                (&lg.storage, &lg.layout),
                (&tg.storage, &tg.layout),
                grad,
            )
            .map_err(|e| match e {
                Error::Index(_) => Error::Index(format!(
                    "{name}: a target is outside [0, {c}) (the number of classes)"
                )),
                e => e,
            })?;
    }
    let shape = if grad.is_some() {
        logits.shape()
    } else {
        target.shape()
    };
    reshape_like(&out, shape)
}

/// The cross-entropy of `logits` (unnormalized log-probabilities) against integer class
/// `target`s: `-log_softmax(logits)[target]`, reduced as `reduction` says.
///
/// # Errors
/// [`Error::Shape`] naming both shapes if `target` does not match `logits`; [`Error::DType`]
/// for non-float logits or non-integer targets; [`Error::Index`] for a target outside
/// `[0, C)`.
pub fn cross_entropy(logits: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    let name = "cross_entropy";
    let (logits, target) = loss_operands(name, logits, target)?;
    let loss = cross_entropy_rows(name, &logits, &target, None)?;
    match reduction {
        Reduction::None => Ok(loss),
        Reduction::Sum => {
            super::reduce::sum_prod(crate::plan::ReduceOp::Sum, &loss, None, false, None)
        }
        Reduction::Mean => super::reduce::mean(&loss, None, false),
    }
}

/// The gradient of [`cross_entropy`] with respect to `logits` (for an upstream gradient of 1):
/// `(softmax(logits) - onehot(target))`, divided by the number of targets for `Mean`.
///
/// # Errors
/// As [`cross_entropy`].
pub fn cross_entropy_backward(
    logits: &Tensor,
    target: &Tensor,
    reduction: Reduction,
) -> Result<Tensor> {
    let name = "cross_entropy_backward";
    let shape = logits.shape().to_vec();
    let (moved, target) = loss_operands(name, logits, target)?;
    let scale = match reduction {
        Reduction::Mean => 1.0 / target.numel().max(1) as f64,
        Reduction::Sum | Reduction::None => 1.0,
    };
    let grad = cross_entropy_rows(name, &moved, &target, Some(scale))?;
    if shape.len() > 2 {
        grad.moveaxis(&[-1], &[1])?.contiguous()
    } else {
        Ok(grad)
    }
}
