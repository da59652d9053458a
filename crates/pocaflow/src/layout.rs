//! Shape, strides (in elements) and offset of a tensor view; contiguity; NumPy broadcasting; and
//! the classification of a matrix operand into the (order, leading dimension) form that BLAS-like
//! kernels take.

use crate::error::{Error, Result};

/// How a tensor's elements sit in its storage: element `idx` is at
/// `offset + sum(idx[d] * strides[d])`. Strides are in elements and may be zero (broadcast) or
/// negative (reversed views).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Layout {
    shape: Vec<usize>,
    strides: Vec<isize>,
    offset: usize,
}

/// C-order (row-major) strides of `shape`, in elements.
pub fn c_strides(shape: &[usize]) -> Vec<isize> {
    let mut strides = vec![0isize; shape.len()];
    let mut step = 1isize;
    for (s, &n) in strides.iter_mut().zip(shape).rev() {
        *s = step;
        step *= n.max(1) as isize;
    }
    strides
}

/// Fortran-order (column-major) strides of `shape`, in elements.
pub fn f_strides(shape: &[usize]) -> Vec<isize> {
    let mut strides = vec![0isize; shape.len()];
    let mut step = 1isize;
    for (s, &n) in strides.iter_mut().zip(shape) {
        *s = step;
        step *= n.max(1) as isize;
    }
    strides
}

impl Layout {
    /// A C-order layout of `shape` starting at element 0.
    pub fn c_contiguous(shape: &[usize]) -> Layout {
        Layout {
            shape: shape.to_vec(),
            strides: c_strides(shape),
            offset: 0,
        }
    }

    /// A Fortran-order layout of `shape` starting at element 0.
    pub fn f_contiguous(shape: &[usize]) -> Layout {
        Layout {
            shape: shape.to_vec(),
            strides: f_strides(shape),
            offset: 0,
        }
    }

    /// A layout with explicit strides and offset.
    ///
    /// # Errors
    /// [`Error::Shape`] if `shape` and `strides` differ in length or some element would fall
    /// before the start of storage.
    pub fn new(shape: &[usize], strides: &[isize], offset: usize) -> Result<Layout> {
        if shape.len() != strides.len() {
            return Err(Error::Shape(format!(
                "shape {shape:?} and strides {strides:?} have different lengths"
            )));
        }
        let layout = Layout {
            shape: shape.to_vec(),
            strides: strides.to_vec(),
            offset,
        };
        if layout.numel() > 0 && (offset as isize) + layout.min_rel() < 0 {
            return Err(Error::Shape(format!(
                "strides {strides:?} with offset {offset} reach before the start of storage"
            )));
        }
        Ok(layout.normalized())
    }

    /// The extent of each dimension.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The step between neighbours along each dimension, in elements.
    pub fn strides(&self) -> &[isize] {
        &self.strides
    }

    /// The storage index of the first element.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    fn min_rel(&self) -> isize {
        self.shape
            .iter()
            .zip(&self.strides)
            .map(|(&n, &s)| if s < 0 { (n as isize - 1) * s } else { 0 })
            .sum()
    }

    /// One past the largest storage index this view touches (0 for an empty view): the storage
    /// must hold at least this many elements.
    pub fn storage_end(&self) -> usize {
        if self.numel() == 0 {
            return 0;
        }
        let max_rel: isize = self
            .shape
            .iter()
            .zip(&self.strides)
            .map(|(&n, &s)| if s > 0 { (n as isize - 1) * s } else { 0 })
            .sum();
        (self.offset as isize + max_rel) as usize + 1
    }

    /// Whether two different indices may address the same element. Conservative: dimensions
    /// sorted by stride must nest (each stride beyond the span of the smaller ones), so a
    /// broadcast (stride 0) or interleaved view counts as overlapping, as does an exotic one
    /// that is not.
    pub fn may_overlap(&self) -> bool {
        let mut dims: Vec<(usize, usize)> = self
            .shape
            .iter()
            .zip(&self.strides)
            .filter(|(&n, _)| n > 1)
            .map(|(&n, &s)| (s.unsigned_abs(), n))
            .collect();
        if self.numel() == 0 {
            return false;
        }
        dims.sort_unstable();
        let mut span = 0;
        for (stride, n) in dims {
            if stride <= span {
                return true;
            }
            span += stride * (n - 1);
        }
        false
    }

    /// Whether elements are laid out in C order with no gaps (NumPy's rule: strides of
    /// dimensions of extent 1 do not matter, and empty views are contiguous).
    pub fn is_c_contiguous(&self) -> bool {
        self.dense_in(self.shape.iter().zip(&self.strides).rev())
    }

    /// Whether elements are laid out in Fortran order with no gaps.
    pub fn is_f_contiguous(&self) -> bool {
        self.dense_in(self.shape.iter().zip(&self.strides))
    }

    fn dense_in<'a>(&self, dims: impl Iterator<Item = (&'a usize, &'a isize)>) -> bool {
        if self.numel() == 0 {
            return true;
        }
        let mut expected = 1isize;
        for (&n, &s) in dims {
            if n != 1 && s != expected {
                return false;
            }
            expected *= n as isize;
        }
        true
    }

    /// The view with all axes reversed (NumPy's `.T`).
    pub fn t(&self) -> Layout {
        Layout {
            shape: self.shape.iter().rev().copied().collect(),
            strides: self.strides.iter().rev().copied().collect(),
            offset: self.offset,
        }
    }

    /// The view with axes reordered: axis `d` of the result is axis `axes[d]` of `self`.
    ///
    /// # Errors
    /// [`Error::Shape`] unless `axes` is a permutation of `0..ndim`.
    pub fn permute(&self, axes: &[usize]) -> Result<Layout> {
        let mut seen = vec![false; self.ndim()];
        let ok = axes.len() == self.ndim()
            && axes
                .iter()
                .all(|&a| a < seen.len() && !std::mem::replace(&mut seen[a], true));
        if !ok {
            return Err(Error::Shape(format!(
                "axes {axes:?} are not a permutation of the {} axes of shape {:?}",
                self.ndim(),
                self.shape
            )));
        }
        Ok(Layout {
            shape: axes.iter().map(|&a| self.shape[a]).collect(),
            strides: axes.iter().map(|&a| self.strides[a]).collect(),
            offset: self.offset,
        })
    }

    /// The view of `self` broadcast to `shape` (NumPy rules: dimensions are aligned at the end;
    /// an extent-1 or missing dimension repeats with stride 0).
    ///
    /// # Errors
    /// [`Error::Shape`] if `self` cannot be broadcast to `shape`.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Layout> {
        let err = || {
            Error::Shape(format!(
                "shape {} cannot be broadcast to {}",
                fmt_shape(&self.shape),
                fmt_shape(shape)
            ))
        };
        if shape.len() < self.ndim() {
            return Err(err());
        }
        let lead = shape.len() - self.ndim();
        let mut strides = vec![0isize; shape.len()];
        for (d, (&n, &s)) in self.shape.iter().zip(&self.strides).enumerate() {
            strides[lead + d] = match n {
                _ if n == shape[lead + d] => s,
                1 => 0,
                _ => return Err(err()),
            };
        }
        Ok(Layout {
            shape: shape.to_vec(),
            strides,
            offset: self.offset,
        })
    }

    /// `self`, with offset 0 if it has no elements (an empty view addresses nothing, and its
    /// offset may otherwise point past its storage).
    fn normalized(mut self) -> Layout {
        if self.numel() == 0 {
            self.offset = 0;
        }
        self
    }

    /// The view of elements `start, start + step, ...` (`len` of them) along `axis`; `step`
    /// may be negative. The caller has clamped `start` and `len` to the axis.
    pub fn slice(&self, axis: usize, start: usize, len: usize, step: isize) -> Layout {
        let mut l = self.clone();
        if len > 0 {
            l.offset = (self.offset as isize + start as isize * self.strides[axis]) as usize;
        }
        l.shape[axis] = len;
        l.strides[axis] = self.strides[axis] * step;
        l.normalized()
    }

    /// The view at index `i` (in bounds) of `axis`, with that axis removed.
    pub fn select(&self, axis: usize, i: usize) -> Layout {
        let mut l = self.clone();
        l.offset = (self.offset as isize + i as isize * self.strides[axis]) as usize;
        l.shape.remove(axis);
        l.strides.remove(axis);
        l.normalized()
    }

    /// The view with a new axis of extent 1 at position `axis` (at most `ndim`).
    pub fn insert_axis(&self, axis: usize) -> Layout {
        let mut l = self.clone();
        l.shape.insert(axis, 1);
        l.strides.insert(axis, 0);
        l
    }

    /// The view with the extent-1 axis `axis` removed.
    pub fn remove_axis(&self, axis: usize) -> Layout {
        debug_assert_eq!(self.shape[axis], 1);
        let mut l = self.clone();
        l.shape.remove(axis);
        l.strides.remove(axis);
        l
    }

    /// The view with `axis` reversed.
    pub fn flip(&self, axis: usize) -> Layout {
        let mut l = self.clone();
        let n = self.shape[axis];
        if n > 0 {
            l.offset = (self.offset as isize + (n as isize - 1) * self.strides[axis]) as usize;
        }
        l.strides[axis] = -self.strides[axis];
        l.normalized()
    }

    /// The same elements in C order as a view of `shape` (same element count), if strides
    /// can express it without a copy (NumPy's rule: each run of old dimensions that merges
    /// into new ones must be contiguous within itself).
    pub fn reshaped(&self, shape: &[usize]) -> Option<Layout> {
        if self.numel() == 0 || self.is_c_contiguous() {
            let mut l = Layout::c_contiguous(shape);
            l.offset = self.offset;
            return Some(l);
        }
        // Old dimensions of extent 1 carry no stride information.
        let old: Vec<(usize, isize)> = self
            .shape
            .iter()
            .zip(&self.strides)
            .filter(|(&n, _)| n != 1)
            .map(|(&n, &s)| (n, s))
            .collect();
        let mut strides = vec![0isize; shape.len()];
        let (mut oi, mut ni) = (0, 0);
        while ni < shape.len() {
            if shape[ni] == 1 {
                strides[ni] = 0;
                ni += 1;
                continue;
            }
            // Take old dims [oi, oj) and new dims [ni, nj) with equal products.
            let (mut oj, mut nj) = (oi + 1, ni + 1);
            let (mut op, mut np) = (old.get(oi)?.0, shape[ni]);
            while op != np {
                if op < np {
                    op *= old.get(oj)?.0;
                    oj += 1;
                } else {
                    np *= shape[nj];
                    nj += 1;
                }
            }
            // The old run must be contiguous in C order within itself.
            for k in oi..oj - 1 {
                if old[k].1 != old[k + 1].1 * old[k + 1].0 as isize {
                    return None;
                }
            }
            // New strides: the innermost steps as the innermost old dimension.
            let mut step = old[oj - 1].1;
            for k in (ni..nj).rev() {
                strides[k] = step;
                step *= shape[k] as isize;
            }
            oi = oj;
            ni = nj;
        }
        Some(Layout {
            shape: shape.to_vec(),
            strides,
            offset: self.offset,
        })
    }

    /// Storage indices of all elements in C order (row-major walk over the shape).
    pub fn indices(&self) -> StridedIndices<'_> {
        StridedIndices::new(&self.shape, &self.strides, self.offset)
    }
}

/// A shape written as a Python tuple: `(2, 3)`, `(3,)`, `()`.
pub fn fmt_shape(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// NumPy broadcasting of two shapes: aligned at the end, each pair of extents equal or one of
/// them 1. `None` if they do not broadcast.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let at = |s: &[usize], i: usize| {
        if i < n - s.len() {
            1
        } else {
            s[i - (n - s.len())]
        }
    };
    (0..n)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// Walks a strided shape in C order, yielding the storage index of each element.
#[derive(Debug, Clone)]
pub struct StridedIndices<'a> {
    shape: &'a [usize],
    strides: &'a [isize],
    index: Vec<usize>,
    next: Option<isize>,
}

impl<'a> StridedIndices<'a> {
    /// Indices of `shape` walked with `strides`, starting at `offset`.
    pub fn new(shape: &'a [usize], strides: &'a [isize], offset: usize) -> Self {
        let empty = shape.contains(&0);
        StridedIndices {
            shape,
            strides,
            index: vec![0; shape.len()],
            next: (!empty).then_some(offset as isize),
        }
    }
}

impl Iterator for StridedIndices<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let cur = self.next?;
        let mut pos = cur;
        let mut d = self.shape.len();
        self.next = loop {
            if d == 0 {
                break None;
            }
            d -= 1;
            self.index[d] += 1;
            pos += self.strides[d];
            if self.index[d] < self.shape[d] {
                break Some(pos);
            }
            pos -= self.strides[d] * self.shape[d] as isize;
            self.index[d] = 0;
        };
        Some(cur as usize)
    }
}

/// Memory order of a matrix operand as BLAS sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatOrder {
    /// Rows are contiguous: element `(i, j)` at `i * ld + j` (a C-order matrix).
    RowMajor,
    /// Columns are contiguous: element `(i, j)` at `i + j * ld` (a Fortran-order matrix, or the
    /// transpose of a C-order one).
    ColMajor,
}

/// A matrix operand in the form BLAS and cuBLASLt take: an order (equivalently a transpose flag)
/// and a leading dimension, both valid for the BLAS argument checks (`ld >= max(1, inner)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlasMatrix {
    /// Which index is contiguous.
    pub order: MatOrder,
    /// Elements between the starts of consecutive rows (row-major) or columns (column-major).
    pub ld: usize,
}

impl BlasMatrix {
    /// Classifies a `rows x cols` matrix whose element `(i, j)` is at `i * rs + j * cs`.
    /// Returns `None` for layouts BLAS cannot describe (steps, zero or negative strides,
    /// overlapping rows): such operands must be packed first.
    pub fn classify(rows: usize, cols: usize, rs: isize, cs: isize) -> Option<BlasMatrix> {
        let unit = |n: usize, s: isize| n <= 1 || s == 1;
        let lead = |n: usize, inner: usize, s: isize| {
            if n <= 1 {
                Some(inner.max(1))
            } else {
                usize::try_from(s).ok().filter(|&ld| ld >= inner.max(1))
            }
        };
        // An empty matrix has no elements to address: any valid description will do.
        if rows == 0 || cols == 0 {
            return Some(BlasMatrix {
                order: MatOrder::RowMajor,
                ld: cols.max(1),
            });
        }
        // Prefer row-major when both fit (a vector, or a 1x1 matrix): either is correct.
        if unit(cols, cs) {
            if let Some(ld) = lead(rows, cols, rs) {
                return Some(BlasMatrix {
                    order: MatOrder::RowMajor,
                    ld,
                });
            }
        }
        if unit(rows, rs) {
            if let Some(ld) = lead(cols, rows, cs) {
                return Some(BlasMatrix {
                    order: MatOrder::ColMajor,
                    ld,
                });
            }
        }
        None
    }

    /// Row and column strides of this operand.
    pub fn strides(self) -> (isize, isize) {
        match self.order {
            MatOrder::RowMajor => (self.ld as isize, 1),
            MatOrder::ColMajor => (1, self.ld as isize),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguity_follows_numpy_rules() {
        let c = Layout::c_contiguous(&[3, 4]);
        assert!(c.is_c_contiguous() && !c.is_f_contiguous());
        assert_eq!(c.strides(), &[4, 1]);
        let f = Layout::f_contiguous(&[3, 4]);
        assert!(f.is_f_contiguous() && !f.is_c_contiguous());
        assert_eq!(f.strides(), &[1, 3]);
        assert_eq!(c.t(), Layout::new(&[4, 3], &[1, 4], 0).unwrap());
        assert!(c.t().is_f_contiguous());
        // Extent-1 dimensions ignore their stride; vectors are both.
        let v = Layout::new(&[1, 5], &[99, 1], 0).unwrap();
        assert!(v.is_c_contiguous() && v.is_f_contiguous());
        assert!(!Layout::new(&[2, 5], &[99, 1], 0).unwrap().is_c_contiguous());
        let col = Layout::new(&[5, 1], &[1, 7], 0).unwrap();
        assert!(col.is_c_contiguous() && col.is_f_contiguous());
        assert!(Layout::new(&[0, 3], &[0, 0], 0).unwrap().is_c_contiguous());
        assert!(!Layout::new(&[3, 4], &[8, 2], 0).unwrap().is_c_contiguous());
    }

    #[test]
    fn storage_end_and_negative_strides() {
        let rev = Layout::new(&[3, 2], &[-2, 1], 4).unwrap();
        assert_eq!(rev.storage_end(), 6);
        assert_eq!(rev.indices().collect::<Vec<_>>(), vec![4, 5, 2, 3, 0, 1]);
        assert!(Layout::new(&[3], &[-1], 1).is_err());
        assert_eq!(Layout::c_contiguous(&[2, 0]).storage_end(), 0);
    }

    #[test]
    fn broadcasting() {
        assert_eq!(broadcast_shapes(&[3, 1, 5], &[4, 5]), Some(vec![3, 4, 5]));
        assert_eq!(broadcast_shapes(&[], &[2]), Some(vec![2]));
        assert_eq!(broadcast_shapes(&[0], &[1]), Some(vec![0]));
        assert_eq!(broadcast_shapes(&[2, 3], &[3, 2]), None);
        let b = Layout::c_contiguous(&[1, 3])
            .broadcast_to(&[2, 2, 3])
            .unwrap();
        assert_eq!(b.strides(), &[0, 0, 1]);
        assert_eq!(
            b.indices().collect::<Vec<_>>(),
            vec![0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]
        );
        assert!(Layout::c_contiguous(&[2, 3]).broadcast_to(&[3, 3]).is_err());
    }

    #[test]
    fn overlap_is_found_and_not_imagined() {
        let l = |shape: &[usize], strides: &[isize], offset| {
            Layout::new(shape, strides, offset).unwrap().may_overlap()
        };
        assert!(!l(&[3, 4], &[4, 1], 0));
        assert!(!l(&[3, 4], &[1, 3], 0)); // F order
        assert!(!l(&[3, 4], &[-8, 2], 16)); // reversed and stepped
        assert!(!l(&[2, 1, 3], &[3, 0, 1], 0)); // extent-1 dimension with stride 0
        assert!(!l(&[0, 4], &[0, 0], 0));
        assert!(l(&[2, 4], &[0, 1], 0)); // broadcast
        assert!(l(&[2, 4], &[1, 1], 0)); // sliding rows
        assert!(l(&[3, 3], &[2, 1], 0)); // rows overlap by one element
    }

    #[test]
    fn views_and_reshapes() {
        let l = Layout::c_contiguous(&[4, 6]);
        let s = l.slice(1, 5, 3, -2);
        assert_eq!(s.indices().take(3).collect::<Vec<_>>(), vec![5, 3, 1]);
        assert_eq!(l.select(0, 2).indices().next(), Some(12));
        assert_eq!(l.flip(0).indices().next(), Some(18));
        assert_eq!(l.insert_axis(1).shape(), &[4, 1, 6]);
        // A transposed matrix cannot be flattened without a copy; its rows can be split.
        let t = l.t();
        assert!(t.reshaped(&[24]).is_none());
        let r = t.reshaped(&[2, 3, 4]).unwrap();
        assert_eq!(
            r.indices().collect::<Vec<_>>(),
            t.indices().collect::<Vec<_>>()
        );
        let stepped = Layout::c_contiguous(&[4, 6]).slice(1, 0, 3, 2);
        let r = stepped.reshaped(&[2, 2, 3, 1]).unwrap();
        assert_eq!(
            r.indices().collect::<Vec<_>>(),
            stepped.indices().collect::<Vec<_>>()
        );
        // Every second column of 6 is every second element: one stride expresses it.
        assert_eq!(stepped.reshaped(&[12]).unwrap().strides(), &[2]);
        let gappy = Layout::c_contiguous(&[4, 6]).slice(1, 0, 2, 2);
        assert!(gappy.reshaped(&[8]).is_none());
    }

    #[test]
    fn permute_validates_axes() {
        let l = Layout::c_contiguous(&[2, 3, 4]);
        assert_eq!(l.permute(&[2, 0, 1]).unwrap().shape(), &[4, 2, 3]);
        assert!(l.permute(&[0, 0, 1]).is_err());
        assert!(l.permute(&[0, 1]).is_err());
        assert!(l.permute(&[0, 1, 3]).is_err());
    }

    #[test]
    fn classify_blas_operands() {
        use MatOrder::*;
        let m = |order, ld| Some(BlasMatrix { order, ld });
        assert_eq!(BlasMatrix::classify(3, 4, 4, 1), m(RowMajor, 4));
        assert_eq!(BlasMatrix::classify(3, 4, 10, 1), m(RowMajor, 10));
        assert_eq!(BlasMatrix::classify(3, 4, 1, 3), m(ColMajor, 3));
        assert_eq!(BlasMatrix::classify(3, 4, 1, 8), m(ColMajor, 8));
        // Vectors and degenerate matrices get a valid ld whatever their strides.
        assert_eq!(BlasMatrix::classify(1, 4, 0, 1), m(RowMajor, 4));
        assert_eq!(BlasMatrix::classify(4, 1, 1, 0), m(RowMajor, 1));
        assert_eq!(BlasMatrix::classify(4, 2, 1, 0), None);
        assert_eq!(BlasMatrix::classify(0, 4, 0, 0), m(RowMajor, 4));
        // Steps, negative and zero strides, overlapping rows are not BLAS operands.
        assert_eq!(BlasMatrix::classify(3, 4, 8, 2), None);
        assert_eq!(BlasMatrix::classify(3, 4, -4, 1), None);
        assert_eq!(BlasMatrix::classify(3, 4, 0, 1), None);
        assert_eq!(BlasMatrix::classify(3, 4, 2, 1), None);
    }
}
