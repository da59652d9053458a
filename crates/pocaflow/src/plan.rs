//! The plans that ops hand to backends: shapes and layouts worked out and validated once, so
//! that a backend only walks them.

use crate::error::{Error, Result};
use crate::layout::Layout;

/// Everything a backend needs for a matrix product: the sizes, the batch shape, and the
/// layouts of A, B and C, each with `batch.len() + 2` dimensions (broadcast batch dimensions
/// have stride 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatmulPlan {
    /// Rows of A and C.
    pub m: usize,
    /// Columns of A, rows of B.
    pub k: usize,
    /// Columns of B and C.
    pub n: usize,
    /// The broadcast batch shape.
    pub batch: Vec<usize>,
    /// A: `batch + [m, k]`.
    pub a: Layout,
    /// B: `batch + [k, n]`.
    pub b: Layout,
    /// C: `batch + [m, n]`.
    pub c: Layout,
}

/// An integer-array index into `k` consecutive axes of a strided view (gather and scatter).
///
/// The view `base` has shape `S`; index arrays `0..k` (int64, each broadcast to
/// `index_shape` through its layout) select along axes `axis..axis + k`. The indexed result has
/// shape `S[..axis] + index_shape + S[axis + k..]`: element `(p, b, q)` is
/// `base[p, idx_0[b], ..., idx_{k-1}[b], q]`, a negative index counting from the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPlan {
    /// The view indexed into (the source of a gather, the destination of a scatter).
    pub base: Layout,
    /// The first indexed axis of `base`.
    pub axis: usize,
    /// The broadcast shape of the index arrays.
    pub index_shape: Vec<usize>,
    /// The layout of each index array, broadcast to `index_shape`.
    pub index_layouts: Vec<Layout>,
}

impl IndexPlan {
    /// A plan for index arrays of `index_shapes` (broadcast together) into `base` from `axis`.
    ///
    /// # Errors
    /// [`Error::Index`] if the index arrays do not broadcast together or index more axes than
    /// `base` has after `axis`.
    pub fn new(base: Layout, axis: usize, indices: &[Layout]) -> Result<IndexPlan> {
        let k = indices.len();
        if axis + k > base.ndim() {
            return Err(Error::Index(format!(
                "too many indices: {} integer arrays from axis {axis} of an array of {} \
                 dimensions",
                k,
                base.ndim()
            )));
        }
        let mut index_shape: Vec<usize> = Vec::new();
        for l in indices {
            index_shape =
                crate::layout::broadcast_shapes(&index_shape, l.shape()).ok_or_else(|| {
                    Error::Index(format!(
                        "shape mismatch: index arrays of shapes {} and {} cannot be broadcast \
                         together",
                        crate::layout::fmt_shape(&index_shape),
                        crate::layout::fmt_shape(l.shape())
                    ))
                })?;
        }
        let index_layouts = indices
            .iter()
            .map(|l| l.broadcast_to(&index_shape))
            .collect::<Result<Vec<_>>>()?;
        Ok(IndexPlan {
            base,
            axis,
            index_shape,
            index_layouts,
        })
    }

    /// The shape of the indexed result.
    pub fn out_shape(&self) -> Vec<usize> {
        let s = self.base.shape();
        let k = self.index_layouts.len();
        let mut out = s[..self.axis].to_vec();
        out.extend_from_slice(&self.index_shape);
        out.extend_from_slice(&s[self.axis + k..]);
        out
    }
}

/// The distribution of [`RandomSpec`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distribution {
    /// Uniform on `[low, high)`.
    Uniform {
        /// Inclusive lower bound.
        low: f64,
        /// Exclusive upper bound.
        high: f64,
    },
    /// Normal with this mean and standard deviation.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// Integers `low + r` with `r` uniform on `0..span`.
    Integers {
        /// Smallest value.
        low: i64,
        /// Number of distinct values (at least 1).
        span: u64,
    },
}

/// A fill with counter-based random numbers (Philox4x32-10; see [`crate::random`]): element
/// `i` of a dense output is a function of `(seed, counter, i)` alone, so every backend gives the
/// same numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomSpec {
    /// The Philox key.
    pub seed: u64,
    /// The first Philox counter block this fill uses.
    pub counter: u64,
    /// What to draw.
    pub dist: Distribution,
}
