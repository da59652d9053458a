//! The optional system-BLAS backend: with the `blas` feature the CPU matmul calls the system
//! OpenBLAS, with `accelerate` Apple's Accelerate framework, both through the same two cblas
//! functions (`cblas_sgemm`, `cblas_dgemm`). Only the link line differs.
//!
//! Each operand is described to BLAS as an order and a leading dimension
//! ([`BlasMatrix::classify`]); operands it cannot describe (stepped, reversed or broadcast
//! views) are copied into a contiguous buffer first, and so is a C that BLAS cannot write
//! directly. The buffers are reused across the matrices of a batch.

use super::gemm::{MatPtr, MatPtrMut};
use crate::layout::{BlasMatrix, MatOrder};
use std::ffi::c_int;
use std::sync::atomic::{AtomicUsize, Ordering};

#[cfg(all(feature = "blas", feature = "accelerate"))]
compile_error!("the `blas` and `accelerate` features each choose the system BLAS: enable one");
#[cfg(all(feature = "accelerate", not(target_os = "macos")))]
compile_error!("the `accelerate` feature links Apple's Accelerate framework: it needs macOS");

/// The library the CPU matmul calls.
#[cfg(feature = "blas")]
pub const NAME: &str = "openblas";
/// The library the CPU matmul calls.
#[cfg(feature = "accelerate")]
pub const NAME: &str = "accelerate";

// CBLAS enumerations (cblas.h).
const ROW_MAJOR: c_int = 101;
const COL_MAJOR: c_int = 102;
const NO_TRANS: c_int = 111;
const TRANS: c_int = 112;

#[cfg_attr(feature = "blas", link(name = "openblas"))]
#[cfg_attr(feature = "accelerate", link(name = "Accelerate", kind = "framework"))]
extern "C" {
    fn cblas_sgemm(
        order: c_int,
        trans_a: c_int,
        trans_b: c_int,
        m: c_int,
        n: c_int,
        k: c_int,
        alpha: f32,
        a: *const f32,
        lda: c_int,
        b: *const f32,
        ldb: c_int,
        beta: f32,
        c: *mut f32,
        ldc: c_int,
    );
    fn cblas_dgemm(
        order: c_int,
        trans_a: c_int,
        trans_b: c_int,
        m: c_int,
        n: c_int,
        k: c_int,
        alpha: f64,
        a: *const f64,
        lda: c_int,
        b: *const f64,
        ldb: c_int,
        beta: f64,
        c: *mut f64,
        ldc: c_int,
    );
}

/// Products handed to the system BLAS so far (by this process).
static CALLS: AtomicUsize = AtomicUsize::new(0);

/// How many matrix products this process has handed to the system BLAS: for tests and
/// diagnostics that need to know which backend ran.
pub fn calls() -> usize {
    CALLS.load(Ordering::Relaxed)
}

/// Element types with a cblas GEMM.
pub trait BlasScalar: Copy + Default {
    /// `C = op(A) op(B)` by `cblas_?gemm` with `alpha = 1`, `beta = 0`.
    ///
    /// # Safety
    /// The arguments must describe matrices valid for BLAS to read (A, B) and write (C).
    #[allow(clippy::too_many_arguments)]
    unsafe fn cblas_gemm(
        order: c_int,
        trans_a: c_int,
        trans_b: c_int,
        dims: [c_int; 3],
        a: *const Self,
        lda: c_int,
        b: *const Self,
        ldb: c_int,
        c: *mut Self,
        ldc: c_int,
    );
}

macro_rules! blas_scalar {
    ($t:ty, $f:ident) => {
        impl BlasScalar for $t {
            unsafe fn cblas_gemm(
                order: c_int,
                trans_a: c_int,
                trans_b: c_int,
                [m, n, k]: [c_int; 3],
                a: *const $t,
                lda: c_int,
                b: *const $t,
                ldb: c_int,
                c: *mut $t,
                ldc: c_int,
            ) {
                // SAFETY: forwarded from the caller.
                unsafe {
                    $f(
                        order, trans_a, trans_b, m, n, k, 1.0, a, lda, b, ldb, 0.0, c, ldc,
                    )
                }
            }
        }
    };
}

blas_scalar!(f32, cblas_sgemm);
blas_scalar!(f64, cblas_dgemm);

/// Contiguous copies of the operands BLAS cannot describe, kept across the matrices of a batch.
#[derive(Debug, Default)]
pub struct Buffers<T> {
    a: Vec<T>,
    b: Vec<T>,
    c: Vec<T>,
}

/// A matrix as BLAS takes it: a pointer, an order and a leading dimension.
struct Described<T> {
    ptr: *const T,
    order: MatOrder,
    ld: usize,
}

/// Describes the `rows x cols` matrix `x` to BLAS, copying it into `buf` (row-major) when its
/// strides are not a BLAS layout.
///
/// # Safety
/// `x` readable for `rows x cols`.
unsafe fn describe<T: Copy + Default>(
    x: MatPtr<T>,
    rows: usize,
    cols: usize,
    buf: &mut Vec<T>,
) -> Described<T> {
    if let Some(BlasMatrix { order, ld }) = BlasMatrix::classify(rows, cols, x.rs, x.cs) {
        return Described {
            ptr: x.ptr,
            order,
            ld,
        };
    }
    buf.clear();
    buf.extend((0..rows).flat_map(|i| {
        // SAFETY: (i, j) is inside x.
        (0..cols).map(move |j| unsafe { *x.ptr.offset(i as isize * x.rs + j as isize * x.cs) })
    }));
    Described {
        ptr: buf.as_ptr(),
        order: MatOrder::RowMajor,
        ld: cols.max(1),
    }
}

/// `c = a * b` (`m x k` times `k x n`) through cblas, or `None` (nothing written) when a
/// dimension does not fit the 32-bit integers of the cblas interface.
///
/// # Safety
/// `a` readable for `m x k`, `b` for `k x n`, `c` writable for `m x n` distinct elements that
/// overlap neither.
pub(crate) unsafe fn gemm<T: BlasScalar>(
    m: usize,
    n: usize,
    k: usize,
    a: MatPtr<T>,
    b: MatPtr<T>,
    c: MatPtrMut<T>,
    bufs: &mut Buffers<T>,
) -> Option<()> {
    let int = |x: usize| c_int::try_from(x).ok();
    let dims = [int(m)?, int(n)?, int(k)?];
    if m == 0 || n == 0 {
        return Some(());
    }
    if k == 0 {
        for i in 0..m {
            for j in 0..n {
                // SAFETY: (i, j) is inside C.
                unsafe { *c.ptr.offset(i as isize * c.rs + j as isize * c.cs) = T::default() };
            }
        }
        return Some(());
    }
    // SAFETY: the caller guarantees the extents of A and B.
    let (da, db) = unsafe {
        (
            describe(a, m, k, &mut bufs.a),
            describe(b, k, n, &mut bufs.b),
        )
    };
    let direct_c = BlasMatrix::classify(m, n, c.rs, c.cs);
    let (cptr, c_order, ldc) = match direct_c {
        Some(BlasMatrix { order, ld }) => (c.ptr, order, ld),
        None => {
            bufs.c.resize(m * n, T::default());
            (bufs.c.as_mut_ptr(), MatOrder::RowMajor, n)
        }
    };
    let (lda, ldb, ldc) = (int(da.ld)?, int(db.ld)?, int(ldc)?);
    // C's order is the call's; an operand stored the other way is its own transpose.
    let order = match c_order {
        MatOrder::RowMajor => ROW_MAJOR,
        MatOrder::ColMajor => COL_MAJOR,
    };
    let trans = |o: MatOrder| if o == c_order { NO_TRANS } else { TRANS };
    CALLS.fetch_add(1, Ordering::Relaxed);
    // SAFETY: every matrix is described by its true order and a leading dimension at least
    // its inner extent (classify, or the row-major copies); C is writable and distinct.
    unsafe {
        T::cblas_gemm(
            order,
            trans(da.order),
            trans(db.order),
            dims,
            da.ptr,
            lda,
            db.ptr,
            ldb,
            cptr,
            ldc,
        )
    };
    if direct_c.is_none() {
        for (i, row) in bufs.c.chunks_exact(n).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                // SAFETY: (i, j) is inside C.
                unsafe { *c.ptr.offset(i as isize * c.rs + j as isize * c.cs) = v };
            }
        }
    }
    Some(())
}
