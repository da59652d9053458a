//! Matrix-vector products, `y = A x`: the GEMM shapes with `n = 1` (and, transposed, `m = 1`).
//! They read every element of A once, so they run at memory speed, and packing would only add
//! a second pass. Two loops, chosen by A's unit stride:
//! - rows contiguous: four dot products at a time, sharing the loads of `x`;
//! - columns contiguous: `y += A[:, p..p+4] x[p..p+4]`, streaming four columns at a time.
//!
//! Both are plain Rust over fixed-size lane arrays, compiled once per instruction set (the
//! optimizer vectorizes them with that set's widest vectors) and chosen at run time like the
//! microkernels. Threads split the rows of `y`.

use super::scratch::{with_scratch, Slot};
use super::{GemmScalar, Isa, MatPtr};

/// Products with fewer multiply-adds than this run on one thread (a second thread pays off
/// once A no longer fits in L2).
const PARALLEL_MIN_WORK: usize = 1 << 18;

/// Lanes per accumulator array: two or four 512-bit vectors.
const L: usize = 32;

/// Rows per parallel item are a multiple of this (a cache line of f32 or two of f64).
const ROW_QUANTUM: usize = 16;

/// A strided vector by raw pointer.
#[derive(Debug, Clone, Copy)]
pub(super) struct VecPtr<T> {
    pub(super) ptr: *const T,
    pub(super) inc: isize,
}

/// `y = A x` for an `m x k` A.
///
/// # Safety
/// `a` readable for `m x k`, `x` for `k` elements, `y` writable at `y + i * incy` for `i < m`
/// and distinct from `a` and `x`; `isa` supported by this CPU.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemv<T: GemmScalar>(
    m: usize,
    k: usize,
    a: MatPtr<T>,
    x: VecPtr<T>,
    y: *mut T,
    incy: isize,
    isa: Isa,
    threads: usize,
) {
    if x.inc != 1 && k > 1 {
        // Gather x first: every row reads all of it.
        return with_scratch::<T, _>(Slot::B, k, |xs| {
            for (p, v) in xs.iter_mut().enumerate() {
                // SAFETY: p < k is inside x.
                *v = unsafe { *x.ptr.offset(p as isize * x.inc) };
            }
            let x = VecPtr {
                ptr: xs.as_ptr(),
                inc: 1,
            };
            // SAFETY: forwarded; x is now contiguous.
            unsafe { gemv(m, k, a, x, y, incy, isa, threads) }
        });
    }
    if incy != 1 && m > 1 {
        // Compute into a contiguous y, then scatter.
        return with_scratch::<T, _>(Slot::A, m, |ys| {
            // SAFETY: forwarded; ys holds m elements.
            unsafe { gemv(m, k, a, x, ys.as_mut_ptr(), 1, isa, threads) };
            for (i, &v) in ys.iter().enumerate() {
                // SAFETY: i < m is inside y.
                unsafe { *y.offset(i as isize * incy) = v };
            }
        });
    }
    // SAFETY: x is contiguous (or a single element) and y is contiguous (or a single element).
    let (x, y) = unsafe {
        (
            std::slice::from_raw_parts(x.ptr, k),
            std::slice::from_raw_parts_mut(y, m),
        )
    };
    let threads = if m * k < PARALLEL_MIN_WORK || m < 2 * ROW_QUANTUM {
        1
    } else {
        threads.max(1)
    };
    let per = m.div_ceil(threads).div_ceil(ROW_QUANTUM) * ROW_QUANTUM;
    let rows = |i0: usize, y: &mut [T]| {
        // SAFETY: rows i0 .. i0 + y.len() of A are inside it.
        let a = unsafe {
            MatPtr {
                ptr: a.at(i0, 0),
                ..a
            }
        };
        // SAFETY: a holds y.len() x k elements, x holds k.
        unsafe { gemv_rows(a, x, y, isa) }
    };
    if threads == 1 {
        rows(0, y);
    } else {
        super::par::for_each(threads, y.chunks_mut(per).enumerate(), |(t, chunk)| {
            rows(t * per, chunk)
        });
    }
}

/// Calls `$f::<T>` compiled for `$isa`: the AVX-512 and AVX2 copies are the same Rust code
/// built with those target features enabled. NEON is part of the aarch64 baseline, so there
/// the plain function already is the NEON copy (its lane loops compile to `fmul`/`fadd` on
/// 128-bit vectors).
macro_rules! by_isa {
    ($isa:expr, $f:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f")]
            unsafe fn avx512<T: GemmScalar>(a: *const T, ld: isize, x: &[T], y: &mut [T]) {
                // SAFETY: forwarded.
                unsafe { $f(a, ld, x, y) }
            }
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2<T: GemmScalar>(a: *const T, ld: isize, x: &[T], y: &mut [T]) {
                // SAFETY: forwarded.
                unsafe { $f(a, ld, x, y) }
            }
            match $isa {
                Isa::Avx512 => avx512($($arg),*),
                Isa::Avx2 => avx2($($arg),*),
                Isa::Neon | Isa::Portable => $f($($arg),*),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = $isa;
            $f($($arg),*)
        }
    }};
}

/// `y = A x` for the `y.len() x x.len()` A, with the loop for A's layout and `isa`.
///
/// # Safety
/// `a` readable for `y.len() x x.len()`; `isa` supported by this CPU.
unsafe fn gemv_rows<T: GemmScalar>(a: MatPtr<T>, x: &[T], y: &mut [T], isa: Isa) {
    let (m, k) = (y.len(), x.len());
    if a.cs == 1 || k == 1 {
        // SAFETY: row i of A is k contiguous elements at a + i * rs.
        unsafe { by_isa!(isa, dot_rows(a.ptr, a.rs, x, y)) }
    } else if a.rs == 1 || m == 1 {
        // SAFETY: column p of A is m contiguous elements at a + p * cs.
        unsafe { by_isa!(isa, axpy_cols(a.ptr, a.cs, x, y)) }
    } else {
        for (i, yi) in y.iter_mut().enumerate() {
            // SAFETY: (i, p) is inside A.
            *yi = x
                .iter()
                .enumerate()
                .fold(T::default(), |s, (p, &xp)| s + unsafe { *a.at(i, p) } * xp);
        }
    }
}

/// `y[i] = A[i, :] . x`, four rows at a time; row `i` is `x.len()` contiguous elements at
/// `a + i * lda`.
///
/// # Safety
/// Every row of A readable.
#[inline(always)]
unsafe fn dot_rows<T: GemmScalar>(a: *const T, lda: isize, x: &[T], y: &mut [T]) {
    let k = x.len();
    let split = k / L * L;
    for (r, y4) in y.chunks_mut(4).enumerate() {
        let rows: [&[T]; 4] = std::array::from_fn(|i| {
            // A short last group repeats its last row (computed, not stored).
            let i = (4 * r + i.min(y4.len() - 1)) as isize;
            // SAFETY: row i is inside A and holds k elements.
            unsafe { std::slice::from_raw_parts(a.offset(i * lda), k) }
        });
        let mut acc = [[T::default(); L]; 4];
        for (c, xs) in x[..split].chunks_exact(L).enumerate() {
            let xs: &[T; L] = xs.try_into().unwrap();
            for (acc, row) in acc.iter_mut().zip(&rows) {
                prefetch_ahead(&row[c * L..]);
                fma_lanes(acc, row[c * L..][..L].try_into().unwrap(), xs);
            }
        }
        for (yi, (acc, row)) in y4.iter_mut().zip(acc.iter().zip(&rows)) {
            let tail = x[split..]
                .iter()
                .zip(&row[split..])
                .fold(T::default(), |s, (&xi, &ai)| s + ai * xi);
            *yi = sum_lanes(acc) + tail;
        }
    }
}

/// Bytes ahead of the current position that the loops prefetch: each stream is short (a row
/// or column of A) and several run at once, which the hardware prefetcher alone follows late.
const PREFETCH_BYTES: usize = 2048;

/// Prefetches the cache lines `PREFETCH_BYTES` past the first `L` elements of `run` (a hint:
/// past the end of A it is harmless).
#[inline(always)]
fn prefetch_ahead<T>(run: &[T]) {
    let ahead = run.as_ptr().cast::<u8>().wrapping_add(PREFETCH_BYTES);
    for line in (0..L * std::mem::size_of::<T>()).step_by(64) {
        super::prefetch(ahead.wrapping_add(line));
    }
}

/// `acc[l] += a[l] * x[l]` for every lane: one loop the optimizer turns into vector code.
#[inline(always)]
fn fma_lanes<T: GemmScalar>(acc: &mut [T; L], a: &[T; L], x: &[T; L]) {
    for l in 0..L {
        acc[l] = acc[l] + a[l] * x[l];
    }
}

/// The sum of `L` lanes, pairwise (as the vector code would reduce them).
#[inline(always)]
fn sum_lanes<T: GemmScalar>(v: &[T; L]) -> T {
    let mut v = *v;
    let mut n = L;
    while n > 1 {
        n /= 2;
        for i in 0..n {
            v[i] = v[i] + v[i + n];
        }
    }
    v[0]
}

/// `y = A x` as `y += A[:, p] x[p]`, four columns at a time; column `p` is `y.len()`
/// contiguous elements at `a + p * lda`.
///
/// # Safety
/// Every column of A readable.
#[inline(always)]
unsafe fn axpy_cols<T: GemmScalar>(a: *const T, lda: isize, x: &[T], y: &mut [T]) {
    let m = y.len();
    // SAFETY: column p is inside A and holds m elements.
    let col = |p: usize| unsafe { std::slice::from_raw_parts(a.offset(p as isize * lda), m) };
    y.fill(T::default());
    let quads = x.len() / 4 * 4;
    for (p, x4) in x[..quads].chunks_exact(4).enumerate() {
        let (c0, c1, c2, c3) = (col(4 * p), col(4 * p + 1), col(4 * p + 2), col(4 * p + 3));
        for ((((yi, &a0), &a1), &a2), &a3) in y.iter_mut().zip(c0).zip(c1).zip(c2).zip(c3) {
            *yi = *yi + a0 * x4[0] + a1 * x4[1] + a2 * x4[2] + a3 * x4[3];
        }
    }
    for (p, &xp) in x.iter().enumerate().skip(quads) {
        for (yi, &ai) in y.iter_mut().zip(col(p)) {
            *yi = *yi + ai * xp;
        }
    }
}
