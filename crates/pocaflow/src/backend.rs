//! The backend interface: what every backend's storage can do. An op validates its operands and
//! builds a plan, then calls one of these methods through [`crate::storage::Storage`], the one
//! place that matches on the device. Backends implement the trait for their own buffer types
//! and never see a `Tensor` or re-validate user input: layouts and plans arrive checked against
//! the buffers (every element they address lies inside), and destinations never have two
//! indices addressing one element.
//!
//! Adding an op is one method here plus one implementation per backend (`cpu::storage`,
//! `cuda::storage`), called from the op's file in `ops/`.

use crate::dtype::{DType, Scalar};
use crate::error::Result;
use crate::layout::Layout;
use crate::plan::{
    BinaryOp, IndexPlan, MatmulPlan, RandomSpec, ReduceOp, ReducePlan, RowPlan, ScanOp,
    SparseDensePlan, UnaryOp,
};

/// One operand of an elementwise op: a view of a backend buffer (its layout broadcast to the
/// result's shape) or a single value (converted to the compute dtype by the backend).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Operand<'a, S> {
    /// A strided view.
    Array(&'a S, &'a Layout),
    /// A value for every element.
    Scalar(Scalar),
}

/// The operands of a row-wise op (see [`RowPlan`] for their shapes): each a buffer and a
/// C-contiguous layout of the row dtype, except `stats` (the statistics dtype).
#[derive(Debug)]
pub(crate) struct RowArgs<'a, S> {
    /// `x`, or the forward output `y` for `SoftmaxBackward` and `LogSoftmaxBackward`.
    pub x: (&'a S, &'a Layout),
    /// The gradient of the output (backward ops).
    pub dy: Option<(&'a S, &'a Layout)>,
    /// The normalizations' per-column scale.
    pub weight: Option<(&'a S, &'a Layout)>,
    /// `LayerNorm`'s per-column shift.
    pub bias: Option<(&'a S, &'a Layout)>,
    /// Where the backward normalizations write `[mean, rstd]` per row.
    pub stats: Option<(&'a S, &'a Layout)>,
}

impl<'a, S> RowArgs<'a, S> {
    /// The same operands as another backend's storages, or `None` if one is not of it.
    pub(crate) fn map<T>(&self, f: impl Fn(&'a S) -> Option<&'a T>) -> Option<RowArgs<'a, T>> {
        let one = |o: Option<(&'a S, &'a Layout)>| match o {
            None => Some(None),
            Some((s, l)) => f(s).map(|t| Some((t, l))),
        };
        Some(RowArgs {
            x: (f(self.x.0)?, self.x.1),
            dy: one(self.dy)?,
            weight: one(self.weight)?,
            bias: one(self.bias)?,
            stats: one(self.stats)?,
        })
    }
}

/// A CSR matrix on one backend: each array a whole dense 1-D buffer, `indptr` (`rows + 1`)
/// and `indices` (`nnz`) of one index dtype (`int32` or `int64`), `data` (`nnz`) of
/// `float32` or `float64`. Except for [`BackendStorage::csr_check`], which checks them, the
/// arrays satisfy the CSR invariants (see `crate::sparse`).
#[derive(Debug)]
pub(crate) struct CsrArgs<'a, S> {
    /// Rows of the matrix.
    pub rows: usize,
    /// Columns of the matrix.
    pub cols: usize,
    /// Row pointers.
    pub indptr: &'a S,
    /// Column index of each stored value.
    pub indices: &'a S,
    /// Stored values.
    pub data: &'a S,
    /// Whether the column indices are sorted and unique within each row.
    pub canonical: bool,
}

impl<S> Clone for CsrArgs<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for CsrArgs<'_, S> {}

impl<'a, S> CsrArgs<'a, S> {
    /// The same matrix as another backend's storages, or `None` if one is not of it.
    pub(crate) fn map<T>(&self, f: impl Fn(&'a S) -> Option<&'a T>) -> Option<CsrArgs<'a, T>> {
        Some(CsrArgs {
            rows: self.rows,
            cols: self.cols,
            indptr: f(self.indptr)?,
            indices: f(self.indices)?,
            data: f(self.data)?,
            canonical: self.canonical,
        })
    }
}

/// The three new buffers of a CSR matrix a backend made (see [`CsrArgs`]).
#[derive(Debug)]
pub(crate) struct CsrParts<S> {
    /// Row pointers.
    pub indptr: S,
    /// Column indices.
    pub indices: S,
    /// Values.
    pub data: S,
}

impl<S> CsrParts<S> {
    /// The parts wrapped by `f`.
    pub(crate) fn map<T>(self, f: impl Fn(S) -> T) -> CsrParts<T> {
        CsrParts {
            indptr: f(self.indptr),
            indices: f(self.indices),
            data: f(self.data),
        }
    }
}

/// The primitives of one backend's storage. `&self` is the destination of writing methods;
/// each method enqueues or runs its work on the backend's current stream (the CPU runs it
/// before returning).
pub(crate) trait BackendStorage: Sized {
    /// The element type.
    fn dtype(&self) -> DType;

    /// Number of elements.
    fn len(&self) -> usize;

    /// `self[dst] = src[src_layout]`, converting `src`'s dtype to `self`'s (as
    /// [`crate::Element::cast`]). The layouts have one shape; `src` may be `self`, with views
    /// that overlap.
    fn copy_from(&self, dst: &Layout, src: &Self, src_layout: &Layout) -> Result<()>;

    /// `self[dst] = value` (converted to the dtype).
    fn fill(&self, dst: &Layout, value: Scalar) -> Result<()>;

    /// `self[dst]` in C order, element `i` = `start + i * step`, computed in `f64` for float
    /// dtypes and in wrapping 64-bit integers for integer dtypes, then converted.
    fn arange(&self, dst: &Layout, start: Scalar, step: Scalar) -> Result<()>;

    /// Zeros the elements `(.., i, j)` of the view `dst` (at least 2-D) below diagonal `k`
    /// (`j - i < k`) when `upper`, above it (`j - i > k`) otherwise: `triu` and `tril` in place.
    fn tri_zero(&self, dst: &Layout, k: i64, upper: bool) -> Result<()>;

    /// `self[dst] = src[plan]` (a gather): `dst` has the plan's output shape; `indices` are the
    /// int64 index buffers the plan's index layouts view.
    ///
    /// # Errors
    /// [`crate::Error::Index`] if an index is out of bounds (the destination is then partly
    /// written).
    fn gather(&self, dst: &Layout, src: &Self, plan: &IndexPlan, indices: &[&Self]) -> Result<()>;

    /// `self[plan] = values[values_layout]` (a scatter): `values_layout` has the plan's output
    /// shape (broadcast); with repeated indices one of the values lands.
    ///
    /// # Errors
    /// [`crate::Error::Index`] if an index is out of bounds (nothing is written then on the
    /// CPU; on CUDA the in-bounds elements may be).
    fn scatter(
        &self,
        plan: &IndexPlan,
        indices: &[&Self],
        values: &Self,
        values_layout: &Layout,
    ) -> Result<()>;

    /// The C-order coordinates of the nonzero elements of `self[layout]`: a new dense int64
    /// buffer of `count * ndim` elements (row `r` holds the coordinates of the `r`-th nonzero
    /// element), and `count`. The count decides the result's size, so a GPU backend waits for
    /// it.
    fn nonzero(&self, layout: &Layout) -> Result<(Self, usize)>;

    /// The elements of `self[layout]` where `mask[mask_layout]` (bool, the same shape) is
    /// true, in C order: a new dense buffer and its length. The count decides the result's
    /// size, so a GPU backend waits for it.
    fn compress(&self, layout: &Layout, mask: &Self, mask_layout: &Layout)
        -> Result<(Self, usize)>;

    /// `self[dst]` at the elements where `mask[mask_layout]` (bool, the same shape) is true
    /// takes, in C order, the elements of the 1-D view `values[values_layout]` (of `self`'s
    /// dtype; no operand overlaps `self`). A GPU backend waits for the count.
    ///
    /// # Errors
    /// [`crate::Error::Shape`] naming both counts if `values` does not have one element per
    /// true mask element (nothing is written then).
    fn masked_scatter(
        &self,
        dst: &Layout,
        mask: &Self,
        mask_layout: &Layout,
        values: &Self,
        values_layout: &Layout,
    ) -> Result<()>;

    /// `self[dst] = mask[mask_layout] ? src[src_layout] : self[dst]` elementwise (one shape;
    /// `mask` is bool; `src` is of `self`'s dtype and does not overlap `dst`).
    fn masked_copy(
        &self,
        dst: &Layout,
        mask: &Self,
        mask_layout: &Layout,
        src: &Self,
        src_layout: &Layout,
    ) -> Result<()>;

    /// Fills the dense, offset-0 view `dst` with random numbers as `spec` says (float dtypes
    /// for uniform and normal, integer dtypes for integers).
    fn random(&self, dst: &Layout, spec: &RandomSpec) -> Result<()>;

    /// `C = A * B` into `self` for every batch index of `plan` (float dtypes; `self` shares
    /// memory with neither operand; on backends that need BLAS operands every matrix of the
    /// plan is BLAS-describable), then `plan.epilogue`. `bias` is present exactly when the
    /// epilogue has a [`crate::plan::BiasMode`] other than `None`: a 1-D view of `self`'s
    /// dtype, read for `Add` (length `n`), written for `RowSumsOfA` (length `m`, dense, sharing
    /// memory with no operand).
    fn matmul(
        &self,
        plan: &MatmulPlan,
        a: &Self,
        b: &Self,
        bias: Option<(&Self, &Layout)>,
    ) -> Result<()>;

    /// `self[dst] = op(src[src_layout])` elementwise: `src` has the compute dtype, `self` that
    /// dtype or `bool` (see [`UnaryOp::returns_bool`]). `src` is `self` only with `src_layout`
    /// equal to `dst` (in place), never a partly overlapping view.
    fn unary(&self, dst: &Layout, op: UnaryOp, src: &Self, src_layout: &Layout) -> Result<()>;

    /// `self[dst] = op(a, b)` elementwise: array operands have the compute dtype and layouts of
    /// `dst`'s shape (broadcast); `self` has that dtype or `bool` (see
    /// [`BinaryOp::returns_bool`]); at most one operand is a scalar. An array operand is `self`
    /// only with its layout equal to `dst` (in place).
    fn binary(
        &self,
        dst: &Layout,
        op: BinaryOp,
        a: Operand<'_, Self>,
        b: Operand<'_, Self>,
    ) -> Result<()>;

    /// Reduces `src[plan.src]` into the dense C-order `self[dst]` (the plan's output shape):
    /// `Sum`/`Prod` into `self`'s dtype (floats: `src`'s dtype; integers: 64-bit, `src` of any
    /// integer dtype or `bool`), `Max`/`Min` into `src`'s dtype, `All`/`Any` from and into
    /// `bool`, `Argmax`/`Argmin` into `int64`. The reduced length is at least 1 for
    /// `Max`/`Min`/`Argmax`/`Argmin`; an empty sum is 0, an empty product 1.
    fn reduce(&self, dst: &Layout, op: ReduceOp, src: &Self, plan: &ReducePlan) -> Result<()>;

    /// Running sums or products along the last dimension: `self[dst]` (one shape with
    /// `src_layout`, dtype as [`Self::reduce`]'s `Sum`/`Prod`) from `src[src_layout]`.
    fn scan(&self, dst: &Layout, op: ScanOp, src: &Self, src_layout: &Layout) -> Result<()>;

    /// The row-wise op `plan.op` into the C-contiguous `(rows, n)` view `self[dst]` (the row
    /// dtype, a float), from `args` (which do not overlap `dst`). An op without a `weight`
    /// scales by 1, without a `bias` shifts by 0.
    fn rowwise(&self, dst: &Layout, plan: &RowPlan, args: &RowArgs<'_, Self>) -> Result<()>;

    /// The cross-entropy of the C-contiguous float rows `logits` `(rows, c)` against the
    /// C-contiguous int64 class indices `target` `(rows,)`: with `grad` `None`, `self[dst]`
    /// (dense `(rows,)`, the logits' dtype) is each row's `logsumexp(row) - row[target]`; with
    /// `Some(scale)`, `self[dst]` (dense `(rows, c)`) is `(softmax(row) - onehot(target)) *
    /// scale`. Statistics in `float32` for half rows.
    ///
    /// # Errors
    /// [`crate::Error::Index`] if a target is outside `[0, c)` (the other rows are written; a
    /// GPU backend waits for this check).
    fn cross_entropy(
        &self,
        dst: &Layout,
        logits: (&Self, &Layout),
        target: (&Self, &Layout),
        grad: Option<f64>,
    ) -> Result<()>;

    /// Checks the CSR invariants of `a` before any kernel reads it (`a.canonical` is
    /// ignored): `indptr` starts at 0, never decreases and ends at `nnz`, every column index
    /// lies in `[0, cols)`. Returns whether the matrix is canonical (column indices strictly
    /// increasing within each row).
    ///
    /// # Errors
    /// [`crate::Error::Shape`] naming the first entry that breaks an invariant.
    fn csr_check(a: &CsrArgs<'_, Self>) -> Result<bool>
    where
        Self: Sized;

    /// The canonical CSR form (`index` indices) of the `(rows, cols)` COO matrix with
    /// coordinates `row`, `col` (dense 1-D, one integer dtype, in range) and values `data`:
    /// rows in order, columns sorted within each row, duplicates summed.
    fn coo_to_csr(
        rows: usize,
        cols: usize,
        row: &Self,
        col: &Self,
        data: &Self,
        index: DType,
    ) -> Result<CsrParts<Self>>
    where
        Self: Sized;

    /// `a` with its column indices sorted and duplicates summed within each row.
    fn csr_canonical(a: &CsrArgs<'_, Self>) -> Result<CsrParts<Self>>
    where
        Self: Sized;

    /// The CSR form of the transpose of the canonical `a` (canonical), in `a`'s dtypes.
    fn csr_transpose(a: &CsrArgs<'_, Self>) -> Result<CsrParts<Self>>
    where
        Self: Sized;

    /// Writes `a` as a dense matrix into the C-contiguous `(rows, cols)` view `self[dst]` (of
    /// `a`'s dtype), duplicates summed.
    fn csr_to_dense(&self, dst: &Layout, a: &CsrArgs<'_, Self>) -> Result<()>;

    /// The product of the sparse `a` and the dense 2-D view `x[x_layout]` (any strides, `a`'s
    /// dtype) into the C-contiguous view `self[dst]`, written whole: `op(a) x` or, with
    /// `plan.dense_first`, `x op(a)`, where `op` transposes when `plan.transpose`.
    fn csr_dense(
        &self,
        dst: &Layout,
        plan: &SparseDensePlan,
        a: &CsrArgs<'_, Self>,
        x: &Self,
        x_layout: &Layout,
    ) -> Result<()>;

    /// The sparse product `a b` (`a.cols == b.rows`; one value dtype, one index dtype) as a
    /// canonical CSR matrix. Explicit zeros from cancellation are kept.
    fn spgemm(a: &CsrArgs<'_, Self>, b: &CsrArgs<'_, Self>) -> Result<CsrParts<Self>>
    where
        Self: Sized;
}
