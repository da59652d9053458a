//! Sparse-matrix kernels on host slices: validation of CSR and COO arrays ([`check`]),
//! conversions between COO, CSR, its transpose and dense ([`convert`]), products of a CSR
//! matrix with dense matrices ([`spmm`]) and of two CSR matrices ([`spgemm`]).
//!
//! Everything here is a pure function of borrowed slices; the arrays are validated by
//! [`check_csr`]/[`check_coo`] before a kernel sees them (the kernels index safely, so a bad
//! array panics rather than reading out of bounds). Threads come from rayon's global pool;
//! work is split by nonzeros (or by flops for [`spgemm`]), not by rows.

use crate::dtype::DType;

pub(crate) mod check;
pub(crate) mod convert;
mod dense;
pub(crate) mod spgemm;
pub(crate) mod spmm;
#[cfg(test)]
mod tests;

pub(crate) use check::{check_coo, check_csr};
pub(crate) use convert::{canonicalize, coo_to_csr, to_dense, transpose};
pub(crate) use spgemm::{spgemm, spgemm_flops};
pub(crate) use spmm::{dense_spmm, spmm};

/// Sealing of [`SparseIndex`] and [`SparseValue`].
mod sealed {
    /// Implemented only by this module's index and value types.
    pub trait Sealed {}
    impl Sealed for i32 {}
    impl Sealed for i64 {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// Index type of CSR/COO arrays: `i32` or `i64` (sealed).
pub(crate) trait SparseIndex:
    Copy + Send + Sync + Ord + std::fmt::Display + 'static + sealed::Sealed
{
    /// The largest value of the type, as a `usize`.
    const MAX: usize;
    /// The index as a `usize` (a validated, non-negative index).
    fn to_usize(self) -> usize;
    /// The index as an `i64` (for validation: may be negative).
    fn to_i64(self) -> i64;
    /// `v` as an index; `v` must not exceed [`SparseIndex::MAX`].
    fn from_usize(v: usize) -> Self;
}

impl SparseIndex for i32 {
    const MAX: usize = i32::MAX as usize;
    #[inline(always)]
    fn to_usize(self) -> usize {
        self as usize
    }
    #[inline(always)]
    fn to_i64(self) -> i64 {
        self as i64
    }
    #[inline(always)]
    fn from_usize(v: usize) -> Self {
        debug_assert!(v <= <Self as SparseIndex>::MAX);
        v as i32
    }
}

impl SparseIndex for i64 {
    const MAX: usize = i64::MAX as usize;
    #[inline(always)]
    fn to_usize(self) -> usize {
        self as usize
    }
    #[inline(always)]
    fn to_i64(self) -> i64 {
        self
    }
    #[inline(always)]
    fn from_usize(v: usize) -> Self {
        debug_assert!(v <= <Self as SparseIndex>::MAX);
        v as i64
    }
}

/// Values of sparse matrices: `f32` and `f64` (sealed).
pub(crate) trait SparseValue:
    Copy + Send + Sync + PartialEq + std::fmt::Debug + 'static + sealed::Sealed
{
    /// Zero.
    fn zero() -> Self;
    /// `self + b`.
    fn add(self, b: Self) -> Self;
    /// `self * b`.
    fn mul(self, b: Self) -> Self;
    /// `self * b + c`, fused (one rounding).
    fn mul_add(self, b: Self, c: Self) -> Self;
    /// The value as `f64`.
    #[cfg(test)]
    fn to_f64(self) -> f64;
    /// `v` rounded to the type.
    #[cfg(test)]
    fn from_f64(v: f64) -> Self;
}

impl SparseValue for f32 {
    #[inline(always)]
    fn zero() -> Self {
        0.0
    }
    #[inline(always)]
    fn add(self, b: Self) -> Self {
        self + b
    }
    #[inline(always)]
    fn mul(self, b: Self) -> Self {
        self * b
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        f32::mul_add(self, b, c)
    }
    #[cfg(test)]
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[cfg(test)]
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl SparseValue for f64 {
    #[inline(always)]
    fn zero() -> Self {
        0.0
    }
    #[inline(always)]
    fn add(self, b: Self) -> Self {
        self + b
    }
    #[inline(always)]
    fn mul(self, b: Self) -> Self {
        self * b
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        f64::mul_add(self, b, c)
    }
    #[cfg(test)]
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[cfg(test)]
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// `a * b + c`: fused when `FMA` (the kernels compiled for a CPU with FMA), else a multiply
/// and an add (a fused multiply-add without the instruction is a slow library call).
#[inline(always)]
fn fma<T: SparseValue, const FMA: bool>(a: T, b: T, c: T) -> T {
    if FMA {
        a.mul_add(b, c)
    } else {
        a.mul(b).add(c)
    }
}

/// A borrowed CSR matrix (`rows` x `cols`). Invariants checked by [`check_csr`] before any
/// kernel runs: `indptr` has `rows + 1` non-decreasing entries from 0 to `indices.len()`
/// `== data.len()`, every index in `[0, cols)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CsrRef<'a, T, I> {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Row pointers: row `r` holds entries `indptr[r]..indptr[r + 1]`.
    pub indptr: &'a [I],
    /// Column index of each entry.
    pub indices: &'a [I],
    /// Value of each entry.
    pub data: &'a [T],
}

impl<T, I: SparseIndex> CsrRef<'_, T, I> {
    /// Stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// The entry range of row `r`.
    #[inline(always)]
    fn range(&self, r: usize) -> std::ops::Range<usize> {
        self.indptr[r].to_usize()..self.indptr[r + 1].to_usize()
    }
}

/// An owned CSR matrix (the invariants of [`CsrRef`]).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Csr<T, I> {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Row pointers (`rows + 1` entries).
    pub indptr: Vec<I>,
    /// Column index of each entry.
    pub indices: Vec<I>,
    /// Value of each entry.
    pub data: Vec<T>,
}

#[cfg(test)]
impl<T, I> Csr<T, I> {
    /// The matrix borrowed.
    pub fn view(&self) -> CsrRef<'_, T, I> {
        CsrRef {
            rows: self.rows,
            cols: self.cols,
            indptr: &self.indptr,
            indices: &self.indices,
            data: &self.data,
        }
    }
}

impl<T, I: SparseIndex> Csr<T, I> {
    /// The matrix with indices of type `O` (which must hold them).
    pub fn with_index<O: SparseIndex>(self) -> Csr<T, O> {
        let to = |v: Vec<I>| v.into_iter().map(|i| O::from_usize(i.to_usize())).collect();
        Csr {
            rows: self.rows,
            cols: self.cols,
            indptr: to(self.indptr),
            indices: to(self.indices),
            data: self.data,
        }
    }
}

/// A strided dense matrix view: element `(r, c)` at `data[offset + r*rs + c*cs]`, strides in
/// elements (may be negative or zero); `rows` x `cols`. Every element must lie in `data`
/// (the kernels index safely and panic otherwise).
#[derive(Clone, Copy, Debug)]
pub(crate) struct DenseRef<'a, T> {
    /// The buffer.
    pub data: &'a [T],
    /// Position of element `(0, 0)`.
    pub offset: usize,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Row stride in elements.
    pub rs: isize,
    /// Column stride in elements.
    pub cs: isize,
}

impl<'a, T> DenseRef<'a, T> {
    /// The transposed view (strides swapped).
    pub fn t(self) -> DenseRef<'a, T> {
        DenseRef {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
}

/// A mutable strided dense matrix: the layout of [`DenseRef`], with distinct elements
/// (typically C- or F-contiguous).
#[derive(Debug)]
pub(crate) struct DenseMut<'a, T> {
    /// The buffer.
    pub data: &'a mut [T],
    /// Position of element `(0, 0)`.
    pub offset: usize,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Row stride in elements.
    pub rs: isize,
    /// Column stride in elements.
    pub cs: isize,
}

impl<'a, T> DenseMut<'a, T> {
    /// The transposed view (strides swapped).
    pub fn t(self) -> DenseMut<'a, T> {
        DenseMut {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
}

/// Rows `0..=rows` split into at most `parts` ranges of about equal weight, where the weight
/// of rows `a..b` is `prefix[b] - prefix[a]` (`prefix` non-decreasing, `rows + 1` entries).
/// Returns the boundaries (first 0, last `rows`), without empty ranges.
fn split_by_weight(prefix: impl Fn(usize) -> usize, rows: usize, parts: usize) -> Vec<usize> {
    let total = prefix(rows) - prefix(0);
    let mut b = vec![0];
    for p in 1..parts.max(1) {
        let target = prefix(0) + (total as u128 * p as u128 / parts as u128) as usize;
        // First row boundary whose prefix reaches the target.
        let (mut lo, mut hi) = (*b.last().unwrap(), rows);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if prefix(mid) < target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo > *b.last().unwrap() && lo < rows {
            b.push(lo);
        }
    }
    if rows > 0 {
        b.push(rows);
    }
    b
}

/// Row boundaries of `a` split for `parts` threads by nonzeros (plus one per row, for the row
/// overhead).
fn split_rows_by_nnz<T, I: SparseIndex>(a: &CsrRef<'_, T, I>, parts: usize) -> Vec<usize> {
    split_by_weight(|r| a.indptr[r].to_usize() + r, a.rows, parts)
}

/// Runs `$body` with `$t` the value type of `$value` (`float32` / `float64`) and `$i` the index
/// type of `$index` (`int32` / `int64`), or returns an [`Error::DType`](crate::Error::DType)
/// for other dtypes.
macro_rules! with_sparse_types {
    ($value:expr, $index:expr, $t:ident, $i:ident, $body:expr) => {
        match ($value, $index) {
            ($crate::DType::F32, $crate::DType::I32) => {
                type $t = f32;
                type $i = i32;
                $body
            }
            ($crate::DType::F32, $crate::DType::I64) => {
                type $t = f32;
                type $i = i64;
                $body
            }
            ($crate::DType::F64, $crate::DType::I32) => {
                type $t = f64;
                type $i = i32;
                $body
            }
            ($crate::DType::F64, $crate::DType::I64) => {
                type $t = f64;
                type $i = i64;
                $body
            }
            (v, i) => Err($crate::Error::DType(format!(
                "sparse arrays hold float32 or float64 values and int32 or int64 indices, got \
                 {v} values and {i} indices"
            ))),
        }
    };
}
pub(crate) use with_sparse_types;

/// The index dtype of a matrix of `shape` with `nnz` stored values: `int32` when every index
/// and row pointer fits, else `int64`.
pub fn index_dtype(shape: (usize, usize), nnz: usize) -> DType {
    let fits = |v: usize| v <= i32::MAX as usize;
    if fits(shape.0) && fits(shape.1) && fits(nnz) {
        DType::I32
    } else {
        DType::I64
    }
}
