//! Sparse matrices in CSR form ([`CsrMatrix`]) on any device, with SciPy's conventions:
//! construction checks every invariant before a kernel reads the arrays, products with dense
//! operands on either side (optionally through the transpose, which is never materialized for
//! them), sparse products, conversions from COO and to dense.
//!
//! The three arrays are whole dense 1-D tensors of one device: `indptr` (`rows + 1`) and
//! `indices` (`nnz`) of one index dtype, `int32` whenever the shape and `nnz` fit in it (as
//! SciPy chooses) and `int64` otherwise, and `data` (`nnz`) of `float32` or `float64`.

use super::elementwise::{binary, Value};
use super::index::IndexItem;
use super::reduce::{count_nonzero, cumulative};
use crate::backend::CsrArgs;
pub use crate::csr::index_dtype;
use crate::device::Device;
use crate::dtype::{DType, Kind, Scalar};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::plan::{BinaryOp, ScanOp, SparseDensePlan};
use crate::random::philox;
use crate::storage::Storage;
use crate::tensor::Tensor;
use std::collections::HashSet;

/// A sparse `(rows, cols)` matrix in compressed sparse row form.
///
/// ```
/// use pocaflow::{sparse::CsrMatrix, Device, Tensor};
/// // [[1, 0, 2], [0, 0, 3]]
/// let a = CsrMatrix::new(
///     (2, 3),
///     Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3])?,
///     Tensor::from_vec(vec![0i64, 2, 2], &[3])?,
///     Tensor::from_vec(vec![0i64, 2, 3], &[3])?,
/// )?;
/// let x = Tensor::from_vec(vec![1.0f64, 1.0, 1.0], &[3])?;
/// let y = a.matmul_dense(&x, false)?;
/// assert_eq!(y.to_ndarray::<f64>()?.into_raw_vec_and_offset().0, vec![3.0, 3.0]);
/// # Ok::<(), pocaflow::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CsrMatrix {
    shape: (usize, usize),
    indptr: Tensor,
    indices: Tensor,
    data: Tensor,
    canonical: bool,
}

/// `t` as a whole dense 1-D buffer of `dtype` (itself when it already is one).
fn whole(t: &Tensor, dtype: DType) -> Result<Tensor> {
    let l = t.layout();
    if t.dtype() == dtype && l.is_c_contiguous() && l.offset() == 0 && t.storage.len() == t.numel()
    {
        return Ok(t.clone());
    }
    t.copy_into_new(dtype, Layout::c_contiguous(t.shape()))
}

/// Checks that `t` (named `what`) is 1-D with integer elements.
fn check_index_array(t: &Tensor, what: &str) -> Result<()> {
    if t.ndim() != 1 {
        return Err(Error::Shape(format!(
            "{what} must be 1-D, got shape {}",
            shape_str(t.shape())
        )));
    }
    if !matches!(t.dtype().kind(), Kind::Signed | Kind::Unsigned) {
        return Err(Error::DType(format!(
            "{what} must hold integers, got {}",
            t.dtype()
        )));
    }
    Ok(())
}

/// Checks that `t` is a 1-D array of sparse values (`float32` or `float64`).
fn check_data(t: &Tensor) -> Result<()> {
    if t.ndim() != 1 {
        return Err(Error::Shape(format!(
            "data must be 1-D, got shape {}",
            shape_str(t.shape())
        )));
    }
    check_value_dtype(t.dtype())
}

/// Sparse values are `float32` or `float64`.
fn check_value_dtype(dtype: DType) -> Result<()> {
    match dtype {
        DType::F32 | DType::F64 => Ok(()),
        other => Err(Error::DType(format!(
            "sparse matrices hold float32 or float64 values, got {other}"
        ))),
    }
}

/// A shape as Python writes a tuple: `(3,)`, `(2, 4)`.
fn shape_str(shape: &[usize]) -> String {
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

/// The device every tensor of `ts` is on, or an error naming two that differ.
fn one_device(op: &str, ts: &[&Tensor]) -> Result<Device> {
    let first = ts[0].device();
    match ts.iter().map(|t| t.device()).find(|&d| d != first) {
        None => Ok(first),
        Some(other) => Err(Error::Device(format!(
            "{op}: expected all arrays on one device, got {first} and {other}"
        ))),
    }
}

impl CsrMatrix {
    /// The `(rows, cols)` matrix whose row `i` holds `data[indptr[i]..indptr[i + 1]]` at the
    /// columns `indices[indptr[i]..indptr[i + 1]]` (SciPy's `csr_array((data, indices,
    /// indptr))`). The arrays must be on one device; they are used in place when they already
    /// have the chosen dtypes and are dense, else copied. Duplicates and unsorted columns are
    /// allowed (products sum duplicates).
    ///
    /// # Errors
    /// [`Error::Shape`] naming the first broken invariant (array lengths, `indptr` not
    /// starting at 0, decreasing or not ending at `nnz`, a column index out of range);
    /// [`Error::DType`] for non-integer index arrays or values other than `float32` /
    /// `float64`; [`Error::Device`] for arrays on different devices.
    pub fn new(
        shape: (usize, usize),
        data: Tensor,
        indices: Tensor,
        indptr: Tensor,
    ) -> Result<Self> {
        check_index_array(&indices, "indices")?;
        check_index_array(&indptr, "indptr")?;
        check_data(&data)?;
        one_device("csr_array", &[&data, &indices, &indptr])?;
        let nnz = indices.numel();
        if data.numel() != nnz {
            return Err(Error::Shape(format!(
                "data ({} values) and indices ({nnz} entries) must have the same length",
                data.numel()
            )));
        }
        // Checked in 64 bits (any integer input converts without wrapping into range), then
        // narrowed when the shape allows.
        let wide = |t: &Tensor| {
            if t.dtype() == DType::I32 {
                whole(t, DType::I32)
            } else {
                whole(t, DType::I64)
            }
        };
        let (mut indptr, mut indices) = (wide(&indptr)?, wide(&indices)?);
        if indptr.dtype() != indices.dtype() {
            indptr = whole(&indptr, DType::I64)?;
            indices = whole(&indices, DType::I64)?;
        }
        let data = whole(&data, data.dtype())?;
        let canonical = Storage::csr_check(&CsrArgs {
            rows: shape.0,
            cols: shape.1,
            indptr: &indptr.storage,
            indices: &indices.storage,
            data: &data.storage,
            canonical: false,
        })?;
        let index = index_dtype(shape, nnz);
        Ok(CsrMatrix {
            shape,
            indptr: whole(&indptr, index)?,
            indices: whole(&indices, index)?,
            data,
            canonical,
        })
    }

    /// The canonical CSR form of the COO matrix with values `data` at `(row[i], col[i])`:
    /// duplicates summed, columns sorted within rows (SciPy's `coo_array.tocsr()`).
    ///
    /// # Errors
    /// [`Error::Shape`] for arrays of different lengths or a coordinate out of range;
    /// [`Error::DType`] and [`Error::Device`] as [`CsrMatrix::new`].
    pub fn from_coo(
        shape: (usize, usize),
        row: &Tensor,
        col: &Tensor,
        data: &Tensor,
    ) -> Result<Self> {
        check_index_array(row, "row")?;
        check_index_array(col, "col")?;
        check_data(data)?;
        one_device("coo_array", &[data, row, col])?;
        let nnz = data.numel();
        if row.numel() != nnz || col.numel() != nnz {
            return Err(Error::Shape(format!(
                "row ({}), col ({}) and data ({nnz}) must have the same length",
                row.numel(),
                col.numel()
            )));
        }
        let (row, col) = (whole(row, DType::I64)?, whole(col, DType::I64)?);
        let data = whole(data, data.dtype())?;
        let parts = Storage::coo_to_csr(
            shape,
            &row.storage,
            &col.storage,
            &data.storage,
            index_dtype(shape, nnz),
        )?;
        Ok(CsrMatrix::from_parts(shape, parts, true))
    }

    /// A random `(rows, cols)` matrix with `round(density * rows * cols)` values uniform in
    /// `[0, 1)` at distinct positions chosen uniformly (SciPy's `sparse.random`), canonical;
    /// reproducible for one `seed`.
    ///
    /// # Errors
    /// [`Error::Shape`] for a density outside `[0, 1]`; [`Error::DType`] for a value dtype
    /// other than `float32` / `float64`; device errors.
    pub fn random(
        shape: (usize, usize),
        density: f64,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        check_value_dtype(dtype)?;
        if !(0.0..=1.0).contains(&density) {
            return Err(Error::Shape(format!(
                "density must be in [0, 1], got {density}"
            )));
        }
        let total = shape.0 as u128 * shape.1 as u128;
        let k = (density * total as f64).round() as u128;
        let k = usize::try_from(k.min(total))
            .map_err(|_| Error::OutOfMemory(format!("{k} nonzeros do not fit in memory")))?;
        let positions = sample_distinct(total as u64, k, seed);
        let (rows, cols): (Vec<i64>, Vec<i64>) = positions
            .iter()
            .map(|&p| ((p / shape.1 as u64) as i64, (p % shape.1 as u64) as i64))
            .unzip();
        let values: Vec<f64> = (0..k as u64)
            .map(|i| {
                let w = philox(seed ^ 0x5eed_da7a, i);
                (u64::from(w[0]) << 21 ^ u64::from(w[1]) >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect();
        let t = |v: Vec<i64>| Tensor::from_vec(v, &[k]);
        let data = Tensor::from_vec(values, &[k])?.to_dtype(dtype)?;
        CsrMatrix::from_coo(shape, &t(rows)?, &t(cols)?, &data)?.to_device(device)
    }

    /// A matrix from parts a backend made.
    fn from_parts(
        shape: (usize, usize),
        parts: crate::backend::CsrParts<std::sync::Arc<Storage>>,
        canonical: bool,
    ) -> CsrMatrix {
        let vector = |s: std::sync::Arc<Storage>| {
            let n = s.len();
            Tensor::from_parts(s, Layout::c_contiguous(&[n]))
        };
        CsrMatrix {
            shape,
            indptr: vector(parts.indptr),
            indices: vector(parts.indices),
            data: vector(parts.data),
            canonical,
        }
    }

    /// The backend's view of the matrix.
    fn args(&self) -> CsrArgs<'_, Storage> {
        CsrArgs {
            rows: self.shape.0,
            cols: self.shape.1,
            indptr: &self.indptr.storage,
            indices: &self.indices.storage,
            data: &self.data.storage,
            canonical: self.canonical,
        }
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        self.shape
    }

    /// The number of stored values (duplicates and explicit zeros included).
    pub fn nnz(&self) -> usize {
        self.indices.numel()
    }

    /// The dtype of the values.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// The dtype of `indptr` and `indices`.
    pub fn index_dtype(&self) -> DType {
        self.indices.dtype()
    }

    /// The device of the arrays.
    pub fn device(&self) -> Device {
        self.data.device()
    }

    /// Row pointers (`rows + 1`).
    pub fn indptr(&self) -> &Tensor {
        &self.indptr
    }

    /// Column indices (`nnz`).
    pub fn indices(&self) -> &Tensor {
        &self.indices
    }

    /// Values (`nnz`).
    pub fn data(&self) -> &Tensor {
        &self.data
    }

    /// Whether the column indices are sorted and unique within each row (SciPy's
    /// `has_canonical_format`).
    pub fn is_canonical(&self) -> bool {
        self.canonical
    }

    /// The matrix on `device` (itself when it is there).
    ///
    /// # Errors
    /// Device errors.
    pub fn to_device(&self, device: &Device) -> Result<CsrMatrix> {
        Ok(CsrMatrix {
            shape: self.shape,
            indptr: self.indptr.to_device(device)?,
            indices: self.indices.to_device(device)?,
            data: self.data.to_device(device)?,
            canonical: self.canonical,
        })
    }

    /// The matrix with values converted to `dtype` (the index arrays shared).
    ///
    /// # Errors
    /// [`Error::DType`] unless `dtype` is `float32` or `float64`.
    pub fn astype(&self, dtype: DType) -> Result<CsrMatrix> {
        check_value_dtype(dtype)?;
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        Ok(CsrMatrix {
            data: self.data.to_dtype(dtype)?,
            ..self.clone()
        })
    }

    /// The canonical form: columns sorted within rows, duplicates summed (itself when
    /// canonical).
    ///
    /// # Errors
    /// Device errors.
    pub fn canonicalize(&self) -> Result<CsrMatrix> {
        if self.canonical {
            return Ok(self.clone());
        }
        let parts = Storage::csr_canonical(&self.args())?;
        Ok(CsrMatrix::from_parts(self.shape, parts, true))
    }

    /// The CSR form of the transpose (a new, canonical matrix, duplicates summed; SciPy's
    /// `A.T.tocsr()`).
    ///
    /// # Errors
    /// Device errors.
    pub fn transpose(&self) -> Result<CsrMatrix> {
        // The transpose of a canonical matrix is canonical (its rows come out in order).
        let a = self.canonicalize()?;
        let parts = Storage::csr_transpose(&a.args())?;
        Ok(CsrMatrix::from_parts(
            (self.shape.1, self.shape.0),
            parts,
            true,
        ))
    }

    /// The matrix as a dense C-order array (duplicates summed).
    ///
    /// # Errors
    /// Device and allocation errors.
    pub fn to_dense(&self) -> Result<Tensor> {
        let out = Tensor::uninit(
            Layout::c_contiguous(&[self.shape.0, self.shape.1]),
            self.dtype(),
            self.device(),
        )?;
        out.storage.csr_to_dense(&out.layout, &self.args())?;
        Ok(out)
    }

    /// `op(A) x` with `x` dense, 1-D (SpMV, a 1-D result) or 2-D (SpMM) in any layout, where
    /// `op` transposes when `transpose` (without materializing the transpose). The result is
    /// C-ordered, of the promoted float dtype of `A` and `x`.
    ///
    /// # Errors
    /// [`Error::Shape`] if the shapes do not align; [`Error::Device`] for operands on
    /// different devices; [`Error::DType`] for a `bool` `x`.
    pub fn matmul_dense(&self, x: &Tensor, transpose: bool) -> Result<Tensor> {
        self.product(x, transpose, false)
    }

    /// `x op(A)` with `x` dense, 1-D or 2-D; see [`CsrMatrix::matmul_dense`].
    ///
    /// # Errors
    /// As [`CsrMatrix::matmul_dense`].
    pub fn dense_matmul(x: &Tensor, a: &CsrMatrix, transpose: bool) -> Result<Tensor> {
        a.product(x, transpose, true)
    }

    /// The dense product in either order.
    fn product(&self, x: &Tensor, transpose: bool, dense_first: bool) -> Result<Tensor> {
        let (m, k) = if transpose {
            (self.shape.1, self.shape.0)
        } else {
            self.shape
        };
        let op = if dense_first { "x @ A" } else { "A @ x" };
        let mismatch = || {
            Error::Shape(format!(
                "matmul: {op} with the sparse operand of shape ({m}, {k}) and the dense one of \
                 shape {}: the inner dimensions differ",
                shape_str(x.shape())
            ))
        };
        // The length of the dense operand's dimension that meets the sparse one.
        let inner = match (x.ndim(), dense_first) {
            (1, _) => x.shape()[0],
            (2, false) => x.shape()[0],
            (2, true) => x.shape()[1],
            (d, _) => {
                return Err(Error::Shape(format!(
                    "matmul: {op} needs a 1-D or 2-D dense operand, got {d}-D (shape {})",
                    shape_str(x.shape())
                )))
            }
        };
        if inner != if dense_first { m } else { k } {
            return Err(mismatch());
        }
        if x.dtype() == DType::Bool {
            return Err(Error::DType(
                "matmul: the dense operand must be numeric, got bool".into(),
            ));
        }
        one_device("sparse matmul", &[&self.data, x])?;
        let dtype = match DType::promote(self.dtype(), x.dtype()) {
            DType::F64 => DType::F64,
            _ => DType::F32,
        };
        let a = self.astype(dtype)?;
        let x = x.to_dtype(dtype)?;
        // The dense operand as a 2-D view; the result's shape.
        let (x2, out_shape) = match (x.ndim(), dense_first) {
            (1, false) => (x.layout().insert_axis(1), vec![m]),
            (1, true) => (x.layout().insert_axis(0), vec![k]),
            (_, false) => (x.layout().clone(), vec![m, x.shape()[1]]),
            (_, true) => (x.layout().clone(), vec![x.shape()[0], k]),
        };
        let (rows, cols) = if dense_first {
            (x2.shape()[0], k)
        } else {
            (m, x2.shape()[1])
        };
        let out = Tensor::uninit(Layout::c_contiguous(&[rows, cols]), dtype, a.device())?;
        let plan = SparseDensePlan {
            transpose,
            dense_first,
        };
        out.storage
            .csr_dense(&out.layout, &plan, &a.args(), (&x.storage, &x2))?;
        Ok(Tensor::from_parts(
            out.storage,
            Layout::c_contiguous(&out_shape),
        ))
    }

    /// The sparse product `A B` (SpGEMM by Gustavson's algorithm on the CPU, cuSPARSE on CUDA),
    /// canonical, in the promoted value dtype and the wider index dtype; the zeros that
    /// cancellation leaves are dropped, as SciPy drops them (cuSPARSE and torch keep them).
    ///
    /// # Errors
    /// [`Error::Shape`] if `A`'s columns differ from `B`'s rows; [`Error::Device`] for
    /// matrices on different devices.
    pub fn matmul(&self, b: &CsrMatrix) -> Result<CsrMatrix> {
        if self.shape.1 != b.shape.0 {
            return Err(Error::Shape(format!(
                "matmul: sparse operands of shapes {:?} and {:?}: the inner dimensions differ",
                self.shape, b.shape
            )));
        }
        one_device("sparse matmul", &[&self.data, &b.data])?;
        let dtype = DType::promote(self.dtype(), b.dtype());
        let index = if self.index_dtype() == b.index_dtype() {
            self.index_dtype()
        } else {
            DType::I64
        };
        let a = self.with_dtypes(dtype, index)?;
        let b = b.with_dtypes(dtype, index)?;
        let parts = Storage::spgemm(&a.args(), &b.args())?;
        CsrMatrix::from_parts((a.shape.0, b.shape.1), parts, true).without_zeros()
    }

    /// The matrix without its stored zeros: itself when it has none (a count, read back).
    fn without_zeros(self) -> Result<CsrMatrix> {
        let kept = count_nonzero(&self.data, None, false)?.scalar_value()?;
        if kept.as_f64() as usize == self.nnz() {
            return Ok(self);
        }
        let keep = binary(
            BinaryOp::NotEqual,
            Value::Tensor(&self.data),
            Value::Scalar(Scalar::Int(0)),
            None,
        )?;
        // Entries kept before each position; the new row pointers are its values at the old.
        let before = cumulative(ScanOp::Sum, &keep, None, Some(self.indptr.dtype()), true)?;
        let mask = [IndexItem::Array(keep)];
        Ok(CsrMatrix {
            shape: self.shape,
            indptr: before.take(&self.indptr, 0)?,
            indices: self.indices.index(&mask)?,
            data: self.data.index(&mask)?,
            canonical: self.canonical,
        })
    }

    /// The matrix with values of `dtype` and indices of `index`.
    fn with_dtypes(&self, dtype: DType, index: DType) -> Result<CsrMatrix> {
        Ok(CsrMatrix {
            shape: self.shape,
            indptr: whole(&self.indptr, index)?,
            indices: whole(&self.indices, index)?,
            data: whole(&self.data, dtype)?,
            canonical: self.canonical,
        })
    }
}

/// `k` distinct integers of `[0, total)` in increasing order, chosen uniformly (Floyd's
/// algorithm when `k` is at most half of `total`, else the complement of such a sample).
fn sample_distinct(total: u64, k: usize, seed: u64) -> Vec<u64> {
    let draw = |i: u64, bound: u64| {
        let w = philox(seed, i);
        let bits = u64::from(w[0]) << 32 | u64::from(w[1]);
        ((u128::from(bits) * u128::from(bound)) >> 64) as u64
    };
    let floyd = |k: u64| {
        let mut chosen = HashSet::with_capacity(k as usize);
        for (i, j) in (total - k..total).enumerate() {
            let t = draw(i as u64, j + 1);
            if !chosen.insert(t) {
                chosen.insert(j);
            }
        }
        chosen
    };
    let mut out: Vec<u64> = if (k as u64) <= total / 2 {
        floyd(k as u64).into_iter().collect()
    } else {
        let skip = floyd(total - k as u64);
        (0..total).filter(|p| !skip.contains(p)).collect()
    };
    out.sort_unstable();
    out
}
