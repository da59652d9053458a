//! `linear` and `linear_backward` (`pf.nn`): `y = act(x W^T + b)` as one matmul whose
//! epilogue adds the bias and applies the activation (cuBLASLt's epilogues on CUDA, each
//! result tile while it is in cache on the CPU), and its gradients.

use super::elementwise::{binary, Value};
use super::matmul::{blas_describable, MatmulShapes};
use super::same_device;
use crate::error::{Error, Result};
use crate::layout::{fmt_shape, Layout};
pub use crate::plan::Activation;
use crate::plan::{BiasMode, Epilogue};
use crate::tensor::Tensor;

/// Checks the operands of `name` and returns `(in, out)`: one float dtype, one device, `x` of shape `(..., in)`, `weight` `(out, in)`, `bias` `(out,)`.
fn check(name: &str, x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<(usize, usize)> {
    let mut all = vec![x, weight];
    all.extend(bias);
    let dtype = x.dtype();
    if let Some(t) = all
        .iter()
        .find(|t| !t.dtype().is_float() || t.dtype() != dtype)
    {
        let names: Vec<String> = all.iter().map(|t| t.dtype().to_string()).collect();
        let what = if t.dtype().is_float() {
            "one floating-point dtype"
        } else {
            "floating-point arrays"
        };
        return Err(Error::DType(format!(
            "{name}: expected {what} for x, weight{}, got {}",
            if bias.is_some() { " and bias" } else { "" },
            names.join(", ")
        )));
    }
    same_device(name, &all)?;
    let (ws, xs) = (weight.shape(), x.shape());
    if ws.len() != 2 {
        return Err(Error::Shape(format!(
            "{name}: weight has shape {} but must be 2-D, (out, in)",
            fmt_shape(ws)
        )));
    }
    let (out, inf) = (ws[0], ws[1]);
    match xs.last() {
        None => {
            return Err(Error::Shape(format!(
                "{name}: x has shape () but must have at least one dimension, (..., in)"
            )))
        }
        Some(&last) if last != inf => {
            return Err(Error::Shape(format!(
                "{name}: x has shape {} but weight has shape {}: expected weight of shape \
                 (out, {last})",
                fmt_shape(xs),
                fmt_shape(ws)
            )))
        }
        Some(_) => {}
    }
    if let Some(b) = bias {
        if b.shape() != [out] {
            return Err(Error::Shape(format!(
                "{name}: bias has shape {} but weight has shape {}: expected bias of shape \
                 ({out},)",
                fmt_shape(b.shape()),
                fmt_shape(ws)
            )));
        }
    }
    Ok((inf, out))
}

/// `x` as a matrix `(rows, cols)`: a view when its strides allow one, else a C-order copy.
fn as_matrix(x: &Tensor, cols: usize) -> Result<Tensor> {
    let rows = x.shape()[..x.ndim() - 1].iter().product::<usize>();
    x.reshape(&[rows as isize, cols as isize], None)
}

/// `epilogue(a @ b)` of two matrices into a new C-order matrix, `bias` the epilogue's bias
/// operand (read, or written for [`BiasMode::RowSumsOfA`]).
fn product(a: &Tensor, b: &Tensor, bias: Option<&Tensor>, epilogue: Epilogue) -> Result<Tensor> {
    let blas = a.storage.needs_blas_operands();
    // Operands a BLAS cannot describe (steps, negative strides) are copied once into C order.
    let prepare = |t: &Tensor| {
        if blas && !blas_describable(t.layout()) {
            t.contiguous()
        } else {
            Ok(t.clone())
        }
    };
    let (a, b) = (prepare(a)?, prepare(b)?);
    let shapes = MatmulShapes::new(a.shape(), b.shape())?;
    // Every element is written (k = 0 included), so nothing is filled first.
    let c = Tensor::uninit(Layout::c_contiguous(&shapes.out), a.dtype(), a.device())?;
    let mut plan = shapes.plan(a.layout(), b.layout(), c.layout())?;
    plan.epilogue = epilogue;
    c.storage.matmul(
        &plan,
        &a.storage,
        &b.storage,
        bias.map(|t| (&*t.storage, t.layout())),
    )?;
    Ok(c)
}

/// The bias as the product's epilogue reads it: on a device, dense from the start of its own
/// buffer (cuBLASLt wants a packed, aligned vector), else as it is.
fn bias_operand(bias: &Tensor) -> Result<Tensor> {
    let l = bias.layout();
    if bias.storage.needs_blas_operands() && !(l.is_c_contiguous() && l.offset() == 0) {
        return bias.copy_data();
    }
    Ok(bias.clone())
}

/// `z = x W^T + b` (no activation) or `act(z)` as one matmul with its epilogue, on `x` as a
/// matrix.
fn forward_matrix(
    x2: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    activation: Option<Activation>,
) -> Result<Tensor> {
    let bias = bias.map(bias_operand).transpose()?;
    let epilogue = Epilogue {
        bias: if bias.is_some() {
            BiasMode::Add
        } else {
            BiasMode::None
        },
        activation,
    };
    product(x2, &weight.t(), bias.as_ref(), epilogue)
}

/// A linear layer, `act(x W^T + b)`, with `weight` of shape `(out, in)` as in torch and `x` of
/// any shape `(..., in)` (1-D included), giving `(..., out)`.
///
/// One matrix product over all the leading dimensions of `x` at once, whose epilogue adds the
/// bias and applies the activation: on CUDA cuBLASLt's epilogues (`BIAS`, `RELU_BIAS`,
/// `GELU_BIAS` for `gelu_tanh`; the exact [`Activation::Gelu`] is not cuBLASLt's GELU, so it is
/// the `BIAS` epilogue then one in-place elementwise pass), on the CPU each result tile of
/// pocaflow's GEMM right after its last k-panel (with the `blas` feature, a pass over each
/// block of rows after the BLAS call). The result is a new C-order array.
///
/// `x`, `weight` and `bias` share one dtype: float32 or float64, and on CUDA also float16 and
/// bfloat16 (computed in float32 and rounded once, after the epilogue).
///
/// # Errors
/// - [`Error::Shape`]: `weight` not 2-D, `x` 0-d or whose last dimension is not `in`, a bias
///   not of shape `(out,)` (messages name both shapes);
/// - [`Error::DType`]: non-float operands, operands of different dtypes, float16/bfloat16 on
///   the CPU;
/// - [`Error::Device`]: operands on different devices.
pub fn linear(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    activation: Option<Activation>,
) -> Result<Tensor> {
    let (inf, out) = check("linear", x, weight, bias)?;
    let y = forward_matrix(&as_matrix(x, inf)?, weight, bias, activation)?;
    let mut shape: Vec<isize> = x.shape()[..x.ndim() - 1]
        .iter()
        .map(|&d| d as isize)
        .collect();
    shape.push(out as isize);
    y.reshape(&shape, Some(false))
}

/// The gradients of [`linear`] with respect to `x`, `weight` and `bias` (`None` when `bias`
/// is), given `dy` of the output's shape `(..., out)`:
///
/// - `dz = act'(z) * dy` with the pre-activation `z = x W^T + b` recomputed (one matmul with
///   the bias epilogue, then one fused elementwise pass, written over `z`); `dz = dy` without
///   an activation;
/// - `dx = dz W` (the shape of `x`);
/// - `dweight = dz^T x`, summed over all the leading dimensions of `x`;
/// - `dbias = Σ dz` over the leading dimensions, computed with `dweight` (on CUDA cuBLASLt's
///   `BGRADB` epilogue of that product; on the CPU a pairwise sum of `dz`'s columns).
///
/// # Errors
/// As [`linear`], and [`Error::Shape`] when `dy` does not have the output's shape (naming
/// both), [`Error::DType`] / [`Error::Device`] when `dy` differs from `x` in dtype or device.
pub fn linear_backward(
    dy: &Tensor,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    activation: Option<Activation>,
) -> Result<(Tensor, Tensor, Option<Tensor>)> {
    let name = "linear_backward";
    let (inf, out) = check(name, x, weight, bias)?;
    let mut y_shape = x.shape()[..x.ndim() - 1].to_vec();
    y_shape.push(out);
    if dy.shape() != y_shape.as_slice() {
        return Err(Error::Shape(format!(
            "{name}: dy has shape {} but the output for x of shape {} and weight of shape {} \
             has shape {}",
            fmt_shape(dy.shape()),
            fmt_shape(x.shape()),
            fmt_shape(weight.shape()),
            fmt_shape(&y_shape)
        )));
    }
    if dy.dtype() != x.dtype() {
        return Err(Error::DType(format!(
            "{name}: dy has dtype {} but x has dtype {}",
            dy.dtype(),
            x.dtype()
        )));
    }
    let device = same_device(name, &[dy, x, weight])?;
    let x2 = as_matrix(x, inf)?;
    let dy2 = as_matrix(dy, out)?;
    let dz = match activation {
        None => dy2,
        Some(act) => {
            let z = forward_matrix(&x2, weight, bias, None)?;
            binary(
                act.backward_op(),
                Value::Tensor(&dy2),
                Value::Tensor(&z),
                Some(&z),
            )?
        }
    };
    let dx = product(&dz, weight, None, Epilogue::default())?;
    let dbias = match bias {
        Some(_) => Some(Tensor::uninit(
            Layout::c_contiguous(&[out]),
            x.dtype(),
            device,
        )?),
        None => None,
    };
    let epilogue = Epilogue {
        bias: if dbias.is_some() {
            BiasMode::RowSumsOfA
        } else {
            BiasMode::None
        },
        activation: None,
    };
    let dweight = product(&dz.t(), &x2, dbias.as_ref(), epilogue)?;
    let x_shape: Vec<isize> = x.shape().iter().map(|&d| d as isize).collect();
    Ok((dx.reshape(&x_shape, Some(false))?, dweight, dbias))
}
