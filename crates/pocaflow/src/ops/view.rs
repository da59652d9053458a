//! Views: new layouts over the same storage (`reshape` copies only when strides cannot express
//! the result), and the axis arguments they take.

use crate::error::{Error, Result};
use crate::layout::{fmt_shape, Layout};
use crate::tensor::Tensor;

/// `axis` (negative counts from the end) as an index below `ndim`.
///
/// # Errors
/// [`Error::Axis`] naming the axis and the number of dimensions.
pub fn normalize_axis(axis: isize, ndim: usize) -> Result<usize> {
    let n = ndim as isize;
    if axis < -n || axis >= n {
        return Err(Error::Axis(format!(
            "axis {axis} is out of bounds for an array of dimension {ndim}"
        )));
    }
    Ok(if axis < 0 { axis + n } else { axis } as usize)
}

/// Distinct normalized axes.
///
/// # Errors
/// [`Error::Axis`] for an axis out of range; [`Error::Shape`] for a repeated one.
pub fn normalize_axes(axes: &[isize], ndim: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let a = normalize_axis(a, ndim)?;
        if out.contains(&a) {
            return Err(Error::Shape(format!("repeated axis {a} in {axes:?}")));
        }
        out.push(a);
    }
    Ok(out)
}

/// `shape` with one `-1` entry replaced by the extent that keeps `numel` elements.
fn infer_shape(shape: &[isize], numel: usize, from: &[usize]) -> Result<Vec<usize>> {
    let bad = || {
        Error::Shape(format!(
            "cannot reshape an array of shape {} ({numel} elements) into shape {shape:?}",
            fmt_shape(from)
        ))
    };
    let unknown: Vec<usize> = (0..shape.len()).filter(|&i| shape[i] == -1).collect();
    if unknown.len() > 1 || shape.iter().any(|&n| n < -1) {
        return Err(bad());
    }
    let known: usize = shape
        .iter()
        .filter(|&&n| n >= 0)
        .map(|&n| n as usize)
        .product();
    let mut out: Vec<usize> = shape.iter().map(|&n| n.max(0) as usize).collect();
    if let Some(&u) = unknown.first() {
        if known == 0 || !numel.is_multiple_of(known) {
            return Err(bad());
        }
        out[u] = numel / known;
    } else if known != numel {
        return Err(bad());
    }
    Ok(out)
}

impl Tensor {
    fn with_layout(&self, layout: Layout) -> Tensor {
        Tensor::from_parts(self.storage.clone(), layout)
    }

    /// The elements in C order with a new shape (one entry may be `-1`): a view when strides
    /// can express it, else a C-order copy. `copy = Some(true)` always copies; `Some(false)`
    /// fails instead of copying.
    ///
    /// # Errors
    /// [`Error::Shape`] if the element counts differ, or a copy is needed but forbidden.
    pub fn reshape(&self, shape: &[isize], copy: Option<bool>) -> Result<Tensor> {
        let shape = infer_shape(shape, self.numel(), self.shape())?;
        if copy != Some(true) {
            if let Some(l) = self.layout.reshaped(&shape) {
                return Ok(self.with_layout(l));
            }
        }
        if copy == Some(false) {
            return Err(Error::Shape(format!(
                "reshape of an array of shape {} and strides {:?} into {} needs a copy, and \
                 copy=False forbids it",
                fmt_shape(self.shape()),
                self.strides(),
                fmt_shape(&shape)
            )));
        }
        let c = self.copy_into_new(self.dtype(), Layout::c_contiguous(self.shape()))?;
        Ok(c.with_layout(Layout::c_contiguous(&shape)))
    }

    /// The view with axes reordered (negative axes count from the end).
    ///
    /// # Errors
    /// [`Error::Axis`] / [`Error::Shape`] unless `axes` is a permutation of the axes.
    pub fn permute_dims(&self, axes: &[isize]) -> Result<Tensor> {
        let axes = normalize_axes(axes, self.ndim())?;
        Ok(self.with_layout(self.layout.permute(&axes)?))
    }

    /// The view with the last two axes swapped (the standard's `matrix_transpose`, `.mT`).
    ///
    /// # Errors
    /// [`Error::Shape`] for arrays of fewer than two dimensions.
    pub fn matrix_transpose(&self) -> Result<Tensor> {
        let n = self.ndim();
        if n < 2 {
            return Err(Error::Shape(format!(
                "matrix_transpose needs at least 2 dimensions, got shape {}",
                fmt_shape(self.shape())
            )));
        }
        let mut axes: Vec<usize> = (0..n).collect();
        axes.swap(n - 2, n - 1);
        Ok(self.with_layout(self.layout.permute(&axes)?))
    }

    /// The view with axes `source` moved to positions `destination`, the others keeping their
    /// order.
    ///
    /// # Errors
    /// [`Error::Axis`] for axes out of range, [`Error::Shape`] for repeated axes or lists of
    /// different lengths.
    pub fn moveaxis(&self, source: &[isize], destination: &[isize]) -> Result<Tensor> {
        let n = self.ndim();
        let (src, dst) = (normalize_axes(source, n)?, normalize_axes(destination, n)?);
        if src.len() != dst.len() {
            return Err(Error::Shape(format!(
                "moveaxis: {} source axes but {} destination axes",
                src.len(),
                dst.len()
            )));
        }
        let mut rest = (0..n).filter(|a| !src.contains(a));
        let mut order = vec![usize::MAX; n];
        for (&s, &d) in src.iter().zip(&dst) {
            order[d] = s;
        }
        for o in order.iter_mut().filter(|o| **o == usize::MAX) {
            *o = rest.next().expect("counts match");
        }
        Ok(self.with_layout(self.layout.permute(&order)?))
    }

    /// The view with a new axis of extent 1 at `axis` (from `-ndim - 1` to `ndim`).
    ///
    /// # Errors
    /// [`Error::Axis`] for an axis out of range.
    pub fn expand_dims(&self, axis: isize) -> Result<Tensor> {
        let a = normalize_axis(axis, self.ndim() + 1)?;
        Ok(self.with_layout(self.layout.insert_axis(a)))
    }

    /// The view without the extent-1 axes `axes`.
    ///
    /// # Errors
    /// [`Error::Axis`] for an axis out of range; [`Error::Shape`] for an axis whose extent is
    /// not 1.
    pub fn squeeze(&self, axes: &[isize]) -> Result<Tensor> {
        let mut axes = normalize_axes(axes, self.ndim())?;
        if let Some(&a) = axes.iter().find(|&&a| self.shape()[a] != 1) {
            return Err(Error::Shape(format!(
                "squeeze: axis {a} of shape {} has extent {}, not 1",
                fmt_shape(self.shape()),
                self.shape()[a]
            )));
        }
        axes.sort_unstable();
        let mut l = self.layout.clone();
        for &a in axes.iter().rev() {
            l = l.remove_axis(a);
        }
        Ok(self.with_layout(l))
    }

    /// The view with `axes` (all when `None`) reversed.
    ///
    /// # Errors
    /// [`Error::Axis`] for an axis out of range.
    pub fn flip(&self, axes: Option<&[isize]>) -> Result<Tensor> {
        let axes = match axes {
            Some(a) => normalize_axes(a, self.ndim())?,
            None => (0..self.ndim()).collect(),
        };
        let mut l = self.layout.clone();
        for a in axes {
            l = l.flip(a);
        }
        Ok(self.with_layout(l))
    }

    /// The view broadcast to `shape` (stride 0 along repeated axes).
    ///
    /// # Errors
    /// [`Error::Shape`] naming both shapes if they do not broadcast.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        let l = self.layout.broadcast_to(shape).map_err(|_| {
            Error::Shape(format!(
                "an array of shape {} cannot be broadcast to shape {}",
                fmt_shape(self.shape()),
                fmt_shape(shape)
            ))
        })?;
        Ok(self.with_layout(l))
    }
}

/// The common broadcast shape of `shapes`.
///
/// # Errors
/// [`Error::Shape`] naming the first two shapes that do not broadcast.
pub fn broadcast_shapes(shapes: &[&[usize]]) -> Result<Vec<usize>> {
    let mut out: Vec<usize> = Vec::new();
    for s in shapes {
        out = crate::layout::broadcast_shapes(&out, s).ok_or_else(|| {
            Error::Shape(format!(
                "shapes {} and {} cannot be broadcast together",
                fmt_shape(&out),
                fmt_shape(s)
            ))
        })?;
    }
    Ok(out)
}
