//! Indexing: basic indices (integers, slices, new axes, an ellipsis) give views; integer and
//! boolean arrays gather into new arrays and scatter into existing ones; `take`,
//! `take_along_axis` and `nonzero`.
//!
//! Mixed keys follow NumPy: integers among index arrays index like 0-d arrays; when the
//! advanced indices (arrays and those integers) stand next to each other in the key, the
//! broadcast index dimensions replace them in place, otherwise they come first.

use super::view::normalize_axis;
use crate::dtype::{DType, Scalar};
use crate::error::{Error, Result};
use crate::layout::{fmt_shape, Layout};
use crate::plan::IndexPlan;
use crate::tensor::Tensor;

/// One entry of an index key.
#[derive(Debug, Clone)]
pub enum IndexItem {
    /// An integer (negative counts from the end).
    Int(i64),
    /// A slice `start:stop:step` with Python's defaults for `None`.
    Slice(Option<i64>, Option<i64>, Option<i64>),
    /// `None` / `newaxis`: a new axis of extent 1.
    NewAxis,
    /// `...`: as many full slices as the other entries leave.
    Ellipsis,
    /// An integer array (any integer dtype) or a boolean mask.
    Array(Tensor),
}

/// Python's `slice.indices` for an axis of extent `n`: `(start, len, step)`. Computed in 128
/// bits, so no step or bound overflows; a step of magnitude `n` or more selects at most one
/// element and is clamped to `n` (the same view).
fn slice_indices(
    n: usize,
    start: Option<i64>,
    stop: Option<i64>,
    step: Option<i64>,
) -> Result<(usize, usize, isize)> {
    let step = i128::from(step.unwrap_or(1));
    if step == 0 {
        return Err(Error::Shape("slice step cannot be zero".into()));
    }
    let n = n as i128;
    let clamp = |v: Option<i64>, default: i128| -> i128 {
        match v.map(i128::from) {
            None => default,
            Some(v) if v < 0 => {
                let v = v + n;
                if v < 0 {
                    if step < 0 {
                        -1
                    } else {
                        0
                    }
                } else {
                    v
                }
            }
            Some(v) if v >= n => {
                if step < 0 {
                    n - 1
                } else {
                    n
                }
            }
            Some(v) => v,
        }
    };
    let (start, stop) = if step > 0 {
        (clamp(start, 0), clamp(stop, n))
    } else {
        (clamp(start, n - 1), clamp(stop, -1))
    };
    let len = if step > 0 {
        if stop > start {
            (stop - start + step - 1) / step
        } else {
            0
        }
    } else if start > stop {
        (start - stop - step - 1) / (-step)
    } else {
        0
    };
    let step = step.clamp(-n.max(1), n.max(1));
    Ok((start.max(0) as usize, len as usize, step as isize))
}

/// `i` as an index into an axis of extent `n`.
fn wrap_index(i: i64, n: usize, axis: usize) -> Result<usize> {
    let m = n as i64;
    if i < -m || i >= m {
        return Err(Error::Index(format!(
            "index {i} is out of bounds for axis {axis} with size {n}"
        )));
    }
    Ok(if i < 0 { i + m } else { i } as usize)
}

/// An advanced index entry: an int64 index array, or a boolean mask (turned into index arrays
/// by [`expand`] only when an op needs them: counting its elements waits for the device).
#[derive(Clone)]
enum Adv {
    Ints(Tensor),
    Mask(Tensor),
}

/// The int64 index arrays of advanced entries (a mask of `d` dimensions gives `d`).
fn expand(advs: &[Adv]) -> Result<Vec<Tensor>> {
    let mut out = Vec::new();
    for a in advs {
        match a {
            Adv::Ints(t) => out.push(t.clone()),
            Adv::Mask(m) => out.extend(m.nonzero()?),
        }
    }
    Ok(out)
}

/// A key resolved against an array: the view that basic entries give, and the advanced
/// entries indexing consecutive axes of it from the given one, if any.
struct Resolved {
    view: Tensor,
    advanced: Option<(usize, Vec<Adv>)>,
    /// Whether the advanced part is a single boolean mask (no integers with it), and the
    /// mask's first axis in the view and the mask itself.
    mask: Option<(usize, Tensor)>,
}

fn resolve(t: &Tensor, items: &[IndexItem]) -> Result<Resolved> {
    let ndim = t.ndim();
    let consumed: usize = items
        .iter()
        .map(|it| match it {
            IndexItem::Int(_) | IndexItem::Slice(..) => 1,
            IndexItem::Array(a) if a.dtype() == DType::Bool => a.ndim(),
            IndexItem::Array(_) => 1,
            IndexItem::NewAxis | IndexItem::Ellipsis => 0,
        })
        .sum();
    let ellipses = items
        .iter()
        .filter(|i| matches!(i, IndexItem::Ellipsis))
        .count();
    if ellipses > 1 {
        return Err(Error::Index(
            "an index can only have a single ellipsis ('...')".into(),
        ));
    }
    if consumed > ndim {
        return Err(Error::Index(format!(
            "too many indices for array: array is {ndim}-dimensional, but {consumed} were indexed"
        )));
    }
    let arrays_in_key = items
        .iter()
        .filter(|i| matches!(i, IndexItem::Array(_)))
        .count();
    let has_arrays = arrays_in_key > 0;
    // Whether the advanced entries stand next to each other in the key.
    let adv_pos: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, i)| has_arrays && matches!(i, IndexItem::Int(_) | IndexItem::Array(_)))
        .map(|(p, _)| p)
        .collect();
    let adjacent = adv_pos.windows(2).all(|w| w[1] == w[0] + 1);
    let has_ints = items.iter().any(|i| matches!(i, IndexItem::Int(_)));

    let mut layout = t.layout().clone();
    let mut axis = 0; // the next axis of `t` to index
    let mut vaxis = 0; // the same axis in the view being built
    let mut adv_axes: Vec<usize> = Vec::new();
    let mut arrays: Vec<Adv> = Vec::new();
    let mut masks: Vec<(usize, Tensor)> = Vec::new();
    let device = t.device();
    for item in items {
        match item {
            IndexItem::Ellipsis => {
                let skip = ndim - consumed;
                axis += skip;
                vaxis += skip;
            }
            IndexItem::NewAxis => {
                layout = layout.insert_axis(vaxis);
                vaxis += 1;
            }
            IndexItem::Int(i) => {
                let j = wrap_index(*i, t.shape()[axis], axis)?;
                layout = layout.select(vaxis, j);
                axis += 1;
            }
            IndexItem::Slice(a, b, s) => {
                let (start, len, step) = slice_indices(layout.shape()[vaxis], *a, *b, *s)?;
                layout = layout.slice(vaxis, start, len, step);
                axis += 1;
                vaxis += 1;
            }
            IndexItem::Array(a) if a.dtype() == DType::Bool && a.ndim() == 0 => {
                // NumPy: a 0-d mask adds an axis of extent 1 (True) or 0 (False). Among other
                // index arrays it is one of them: the index [0] (or none) into that new axis,
                // broadcast with the rest.
                let keep = a.to_device(&crate::Device::Cpu)?.scalar_value()? != Scalar::Bool(false);
                layout = layout.insert_axis(vaxis);
                if arrays_in_key > 1 {
                    let idx =
                        super::full(&[usize::from(keep)], Scalar::Int(0), DType::I64, &device)?;
                    adv_axes.push(vaxis);
                    arrays.push(Adv::Ints(idx));
                } else if !keep {
                    layout = layout.slice(vaxis, 0, 0, 1);
                }
                vaxis += 1;
            }
            IndexItem::Array(a) if a.dtype() == DType::Bool => {
                let dims = &t.shape()[axis..axis + a.ndim()];
                if dims != a.shape() {
                    return Err(Error::Index(format!(
                        "boolean index of shape {} does not match the indexed array's \
                         dimensions {} starting at axis {axis}",
                        fmt_shape(a.shape()),
                        fmt_shape(dims)
                    )));
                }
                let a = a.to_device(&device)?;
                masks.push((vaxis, a.clone()));
                for _ in 0..a.ndim() {
                    adv_axes.push(vaxis);
                    vaxis += 1;
                }
                axis += a.ndim();
                arrays.push(Adv::Mask(a));
            }
            IndexItem::Array(a) => {
                if !a.dtype().is_integer() {
                    return Err(Error::Index(format!(
                        "arrays used as indices must be of integer or boolean type, got {}",
                        a.dtype()
                    )));
                }
                adv_axes.push(vaxis);
                arrays.push(Adv::Ints(a.to_device(&device)?.to_dtype(DType::I64)?));
                axis += 1;
                vaxis += 1;
            }
        }
    }
    let view = Tensor::from_parts(t.storage.clone(), layout);
    if arrays.is_empty() && masks.is_empty() {
        return Ok(Resolved {
            view,
            advanced: None,
            mask: None,
        });
    }
    let mask = (masks.len() == 1 && arrays.len() == 1 && !has_ints).then(|| masks[0].clone());
    if adjacent {
        let first = adv_axes[0];
        return Ok(Resolved {
            view,
            advanced: Some((first, arrays)),
            mask,
        });
    }
    // Separated advanced indices: their axes go first.
    let n = view.ndim();
    let mut order = adv_axes.clone();
    order.extend((0..n).filter(|a| !adv_axes.contains(a)));
    let view = Tensor::from_parts(view.storage.clone(), view.layout().permute(&order)?);
    Ok(Resolved {
        view,
        advanced: Some((0, arrays)),
        mask: None,
    })
}

impl Tensor {
    /// `self[key]`: a view for basic keys, a new array for keys with index arrays (a
    /// boolean mask waits for the device to count its elements).
    ///
    /// # Errors
    /// [`Error::Index`] for indices out of bounds, too many indices, or masks whose shape
    /// does not match, and for index arrays that do not broadcast together.
    pub fn index(&self, items: &[IndexItem]) -> Result<Tensor> {
        let r = resolve(self, items)?;
        let Some((axis, advs)) = r.advanced else {
            return Ok(r.view);
        };
        if let Some((maxis, mask)) = &r.mask {
            if r.view.numel() > 0 {
                return select_by_mask(&r.view, *maxis, mask);
            }
        }
        gather(&r.view, axis, &expand(&advs)?)
    }

    /// `self[key] = value`: `value` is converted to this dtype and broadcast to the shape of
    /// `self[key]`. A single boolean mask with a value that does not vary along the selected
    /// elements is applied elementwise (no wait for the device); other index arrays scatter,
    /// and with repeated indices one of the values lands.
    ///
    /// # Errors
    /// As [`Tensor::index`]; [`Error::Shape`] if `value` does not broadcast.
    pub fn index_put(&self, items: &[IndexItem], value: &Tensor) -> Result<()> {
        let value = value.to_device(&self.device())?;
        let r = resolve(self, items)?;
        let Some((axis, advs)) = r.advanced else {
            return r.view.copy_(&value);
        };
        if r.view.layout().may_overlap() {
            return Err(Error::Shape(format!(
                "cannot assign through a view with overlapping elements (shape {}, strides {:?})",
                fmt_shape(r.view.shape()),
                r.view.strides()
            )));
        }
        let value = value.to_dtype(self.dtype())?;
        let value = if value.shares_storage_with(self) {
            value.copy_data()?
        } else {
            value
        };
        if let Some((maxis, mask)) = &r.mask {
            if let Some(done) = masked_assign(&r.view, *maxis, mask, &value)? {
                return done;
            }
            // One value per selected element of a mask over the whole view: a compaction in
            // reverse, without index arrays.
            if *maxis == 0 && mask.ndim() == r.view.ndim() && value.ndim() == 1 {
                let mask = if mask.shares_storage_with(self) {
                    mask.copy_data()?
                } else {
                    mask.clone()
                };
                return r.view.storage.masked_scatter(
                    r.view.layout(),
                    &mask.storage,
                    mask.layout(),
                    &value.storage,
                    value.layout(),
                );
            }
        }
        let arrays = expand(&advs)?;
        let plan = index_plan(&r.view, axis, &arrays)?;
        let out_shape = plan.out_shape();
        let vl = value.layout().broadcast_to(&out_shape).map_err(|_| {
            Error::Shape(format!(
                "could not broadcast a value of shape {} to the indexed shape {}",
                fmt_shape(value.shape()),
                fmt_shape(&out_shape)
            ))
        })?;
        if out_shape.contains(&0) {
            return Ok(());
        }
        // Index arrays that view this array's memory are read while it is written: copy them.
        let arrays = arrays
            .into_iter()
            .map(|a| {
                if a.shares_storage_with(self) {
                    a.copy_data()
                } else {
                    Ok(a)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let storages: Vec<_> = arrays.iter().map(|a| &*a.storage).collect();
        self.storage.scatter(&plan, &storages, &value.storage, &vl)
    }

    /// The value of a one-element array as a [`Scalar`] (waits for the device).
    ///
    /// # Errors
    /// [`Error::Shape`] unless the array has exactly one element.
    pub fn scalar_value(&self) -> Result<Scalar> {
        if self.numel() != 1 {
            return Err(Error::Shape(format!(
                "only arrays of one element can be converted to a scalar, got shape {}",
                fmt_shape(self.shape())
            )));
        }
        let host = self.to_device(&crate::Device::Cpu)?;
        let buf = host.storage.read_cpu().expect("host storage");
        let i = host.layout().offset();
        Ok(crate::with_dtype!(self.dtype(), T, {
            let v: T = buf.as_slice::<T>().expect("dtype matches")[i];
            match self.dtype().kind() {
                crate::Kind::Bool => Scalar::Bool(crate::Element::is_nonzero(v)),
                crate::Kind::Signed => Scalar::Int(crate::Element::to_i64(v)),
                crate::Kind::Unsigned => {
                    let u = crate::Element::to_u64(v);
                    i64::try_from(u).map_or(Scalar::UInt(u), Scalar::Int)
                }
                crate::Kind::Float => Scalar::Float(crate::Element::to_f64(v)),
            }
        }))
    }

    /// The coordinates of the nonzero elements, one int64 array per axis (waits for the
    /// device to count them).
    ///
    /// # Errors
    /// [`Error::Shape`] for a 0-d array.
    pub fn nonzero(&self) -> Result<Vec<Tensor>> {
        if self.ndim() == 0 {
            return Err(Error::Shape(
                "nonzero of a 0-d array is not defined; use atleast_1d".into(),
            ));
        }
        let (storage, count) = self.storage.nonzero(self.layout())?;
        let nd = self.ndim();
        (0..nd)
            .map(|j| {
                let l = Layout::new(&[count], &[nd as isize], j)?;
                Ok(Tensor::from_parts(storage.clone(), l))
            })
            .collect()
    }

    /// The elements at `indices` (integers, negative from the end) along `axis`: the
    /// result replaces that axis by the index array's shape.
    ///
    /// # Errors
    /// [`Error::Index`] for indices out of bounds or a non-integer index array;
    /// [`Error::Axis`] for a bad axis.
    pub fn take(&self, indices: &Tensor, axis: isize) -> Result<Tensor> {
        let axis = normalize_axis(axis, self.ndim())?;
        let idx = int_indices(indices, self)?;
        gather(self, axis, &[idx])
    }

    /// `out[..., j, ...] = self[..., indices[..., j, ...], ...]` along `axis`: `indices` has
    /// this array's number of dimensions, and the other axes broadcast.
    ///
    /// # Errors
    /// [`Error::Shape`] for index arrays of another number of dimensions or shapes that do
    /// not broadcast; [`Error::Index`] for indices out of bounds.
    pub fn take_along_axis(&self, indices: &Tensor, axis: isize) -> Result<Tensor> {
        let nd = self.ndim();
        let axis = normalize_axis(axis, nd)?;
        if indices.ndim() != nd {
            return Err(Error::Shape(format!(
                "take_along_axis: indices of shape {} must have the {nd} dimensions of the \
                 array (shape {})",
                fmt_shape(indices.shape()),
                fmt_shape(self.shape())
            )));
        }
        let idx = int_indices(indices, self)?;
        // Every other axis is indexed by its own position: a range broadcast along the rest.
        let arrays = (0..nd)
            .map(|d| {
                if d == axis {
                    return Ok(idx.clone());
                }
                let n = self.shape()[d];
                let r = super::arange(
                    Scalar::Int(0),
                    Scalar::Int(n as i64),
                    Scalar::Int(1),
                    DType::I64,
                    &self.device(),
                )?;
                let mut shape = vec![1; nd];
                shape[d] = n;
                let mut strides = vec![0; nd];
                strides[d] = 1;
                Ok(Tensor::from_parts(
                    r.storage.clone(),
                    Layout::new(&shape, &strides, 0)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        gather(self, 0, &arrays)
    }
}

/// `indices` as an int64 array on `like`'s device.
fn int_indices(indices: &Tensor, like: &Tensor) -> Result<Tensor> {
    if !indices.dtype().is_integer() {
        return Err(Error::Index(format!(
            "index arrays must have an integer dtype, got {}",
            indices.dtype()
        )));
    }
    indices.to_device(&like.device())?.to_dtype(DType::I64)
}

fn index_plan(base: &Tensor, axis: usize, arrays: &[Tensor]) -> Result<IndexPlan> {
    let layouts: Vec<Layout> = arrays.iter().map(|a| a.layout().clone()).collect();
    IndexPlan::new(base.layout().clone(), axis, &layouts)
}

/// A new C-order array of `base` gathered by `arrays` from `axis`.
fn gather(base: &Tensor, axis: usize, arrays: &[Tensor]) -> Result<Tensor> {
    let plan = index_plan(base, axis, arrays)?;
    let out = Tensor::uninit(
        Layout::c_contiguous(&plan.out_shape()),
        base.dtype(),
        base.device(),
    )?;
    if out.numel() > 0 {
        let storages: Vec<_> = arrays.iter().map(|a| &*a.storage).collect();
        out.storage
            .gather(out.layout(), &base.storage, &plan, &storages)?;
    }
    Ok(out)
}

/// The layout of `mask` (covering axes `maxis..` of a view of `shape`) over the whole view:
/// stride 0 along the other axes.
fn mask_over(shape: &[usize], maxis: usize, mask: &Tensor) -> Result<Layout> {
    let mut strides = vec![0isize; shape.len()];
    strides[maxis..maxis + mask.ndim()].copy_from_slice(mask.strides());
    Layout::new(shape, &strides, mask.layout().offset())
}

/// `view[mask]` for one mask over axes `maxis..` of a non-empty view: the view's elements
/// where the mask (broadcast over the other axes) is true, compacted in C order, which is the
/// order of the result `shape[..maxis] + (count,) + shape[maxis + d..]`.
fn select_by_mask(view: &Tensor, maxis: usize, mask: &Tensor) -> Result<Tensor> {
    let shape = view.shape();
    let d = mask.ndim();
    let ml = mask_over(shape, maxis, mask)?;
    let (storage, total) = view.storage.compress(view.layout(), &mask.storage, &ml)?;
    let others: usize = shape[..maxis].iter().chain(&shape[maxis + d..]).product();
    let mut out_shape = shape[..maxis].to_vec();
    out_shape.push(total / others);
    out_shape.extend_from_slice(&shape[maxis + d..]);
    Ok(Tensor::from_parts(
        storage,
        Layout::c_contiguous(&out_shape),
    ))
}

/// `view[mask] = value` elementwise when `value` does not vary along the selected elements
/// (it broadcasts to the view's shape with the mask's axes of extent 1): `Some` with the
/// outcome, or `None` when the value needs a scatter.
fn masked_assign(
    view: &Tensor,
    maxis: usize,
    mask: &Tensor,
    value: &Tensor,
) -> Result<Option<Result<()>>> {
    let shape = view.shape();
    let d = mask.ndim();
    let mut reduced: Vec<usize> = shape[..maxis].to_vec();
    reduced.push(1);
    reduced.extend_from_slice(&shape[maxis + d..]);
    let Ok(vl) = value.layout().broadcast_to(&reduced) else {
        return Ok(None);
    };
    // The value's layout over the full view: stride 0 along the mask's axes.
    let mut vshape = shape[..maxis].to_vec();
    let mut vstrides = vl.strides()[..maxis].to_vec();
    vshape.extend_from_slice(mask.shape());
    vstrides.extend(std::iter::repeat_n(0, d));
    vshape.extend_from_slice(&shape[maxis + d..]);
    vstrides.extend_from_slice(&vl.strides()[maxis + 1..]);
    let vl = Layout::new(&vshape, &vstrides, vl.offset())?;
    if view.numel() == 0 {
        return Ok(Some(Ok(())));
    }
    let mask = if mask.shares_storage_with(view) {
        mask.copy_data()?
    } else {
        mask.clone()
    };
    let ml = mask_over(shape, maxis, &mask)?;
    Ok(Some(view.storage.masked_copy(
        view.layout(),
        &mask.storage,
        &ml,
        &value.storage,
        &vl,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_follow_python() {
        let s = |n, a, b, c| slice_indices(n, a, b, c).unwrap();
        assert_eq!(s(10, None, None, None), (0, 10, 1));
        assert_eq!(s(10, Some(2), Some(-2), Some(3)), (2, 2, 3));
        assert_eq!(s(10, None, None, Some(-1)), (9, 10, -1));
        assert_eq!(s(10, Some(-100), Some(100), None), (0, 10, 1));
        assert_eq!(s(10, Some(5), Some(2), None).1, 0);
        assert_eq!(s(10, Some(8), Some(2), Some(-3)), (8, 2, -3));
        assert_eq!(s(0, None, None, Some(-1)).1, 0);
        assert!(slice_indices(3, None, None, Some(0)).is_err());
        // Huge steps: one element, and a step that stays representable.
        assert_eq!(s(2, None, None, Some(i64::MAX)), (0, 1, 2));
        assert_eq!(s(2, None, None, Some(i64::MIN)), (1, 1, -2));
        assert_eq!(s(2, Some(i64::MIN), Some(i64::MAX), Some(-(i64::MAX))).1, 0);
    }
}
