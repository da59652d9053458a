//! Products of a CSR matrix with dense matrices: `y = op(A) x` ([`spmm`], with its own SpMV
//! path for one column) and `y = x op(A)` ([`dense_spmm`], through `(x A)^T = A^T x^T`).
//!
//! `op(A) = A` runs over row ranges of equal nonzeros, one output row at a time: SpMV sums
//! each row in one scalar loop (rows longer than a thread's share are summed in parallel on their
//! own); SpMM keeps a block of up to 64 output columns in a local array (vector registers)
//! while it walks the row, reading contiguous rows of `x` (a copy of `x` in C order when its
//! rows are not contiguous). `op(A) = A^T` scatters each row of `x` into per-thread partial
//! outputs, summed at the end. The kernels are compiled for AVX-512 or AVX2+FMA where the CPU
//! has them (chosen at run time).

use super::dense::{rows_of, write_rows, Rows};
use super::{fma, split_by_weight, CsrRef, DenseMut, DenseRef, SparseIndex, SparseValue};
use rayon::prelude::*;

/// Multiply-adds from which a product spreads over threads.
const PARALLEL: usize = 1 << 15;

/// Elements of per-thread partial outputs `A^T x` may allocate before it uses fewer threads.
const PARTIAL_LIMIT: usize = 1 << 28;

/// The ranges per thread a product of `work` multiply-adds splits into.
fn parts_for(work: usize) -> usize {
    if work < PARALLEL {
        1
    } else {
        (rayon::current_num_threads() * 4).min(work / PARALLEL + 1)
    }
}

/// `y = op(A) x` with `op(A) = A` or `A^T` (`transpose`): `x` is `cols` x `n` for `A` and
/// `rows` x `n` for `A^T`, `y` is `rows` x `n` (`cols` x `n`). All of `y` is written (its
/// old contents are never read); `x` is never changed.
pub(crate) fn spmm<T: SparseValue, I: SparseIndex>(
    a: CsrRef<'_, T, I>,
    transpose: bool,
    x: DenseRef<'_, T>,
    mut y: DenseMut<'_, T>,
) {
    let (m, k) = if transpose {
        (a.cols, a.rows)
    } else {
        (a.rows, a.cols)
    };
    assert_eq!(x.rows, k, "spmm: x has {} rows, expected {k}", x.rows);
    assert_eq!(y.rows, m, "spmm: y has {} rows, expected {m}", y.rows);
    assert_eq!(y.cols, x.cols, "spmm: y and x differ in columns");
    if m == 0 || x.cols == 0 {
        return;
    }
    if transpose {
        spmm_t(a, x, &mut y);
    } else if x.cols == 1 {
        spmv(a, x, &mut y);
    } else {
        spmm_n(a, x, &mut y);
    }
}

/// `y = x op(A)` with `op(A) = A` or `A^T` (`transpose`): `x` is `p` x `rows` for `A` and
/// `p` x `cols` for `A^T`. Runs as `y^T = op(A)^T x^T` (transposed views, no copies of their
/// own), so a C-order `x` takes the scatter path of [`spmm`] over its copy in C order.
pub(crate) fn dense_spmm<T: SparseValue, I: SparseIndex>(
    x: DenseRef<'_, T>,
    a: CsrRef<'_, T, I>,
    transpose: bool,
    y: DenseMut<'_, T>,
) {
    spmm(a, !transpose, x.t(), y.t());
}

/// `y = A x` for one column.
fn spmv<T: SparseValue, I: SparseIndex>(
    a: CsrRef<'_, T, I>,
    x: DenseRef<'_, T>,
    y: &mut DenseMut<'_, T>,
) {
    // x as a contiguous vector.
    let xv: std::borrow::Cow<'_, [T]> = if x.rs == 1 || x.rows <= 1 {
        std::borrow::Cow::Borrowed(&x.data[x.offset..x.offset + x.rows])
    } else {
        rows_of(x.t()).data
    };
    let xv = &xv[..];
    let nnz = a.nnz();
    let parts = parts_for(nnz);
    // Rows longer than a share are summed apart, over all threads.
    let huge_len = if parts > 1 {
        (nnz / parts).max(1 << 14)
    } else {
        usize::MAX
    };
    let huge: Vec<usize> = if parts > 1 {
        (0..a.rows)
            .filter(|&r| a.range(r).len() > huge_len)
            .collect()
    } else {
        Vec::new()
    };
    let mut huge_cum = vec![0usize];
    for &r in &huge {
        huge_cum.push(huge_cum.last().unwrap() + a.range(r).len());
    }
    let huge_val: Vec<T> = huge
        .iter()
        .map(|&r| {
            let rg = a.range(r);
            let (idx, val) = (&a.indices[rg.clone()], &a.data[rg]);
            idx.par_chunks(1 << 13)
                .zip(val.par_chunks(1 << 13))
                .map(|(i, v)| dot(i, v, xv))
                .reduce(T::zero, T::add)
        })
        .collect();
    let weight = |r: usize| {
        let h = huge.partition_point(|&h| h < r);
        a.indptr[r].to_usize() + r - huge_cum[h]
    };
    let bounds = split_by_weight(weight, a.rows, parts);
    write_rows(y, &bounds, |r0, r1, out, ld| {
        let h = huge.partition_point(|&h| h < r0);
        spmv_rows(a, r0, r1, xv, out, ld, &huge[h..], &huge_val[h..]);
    });
}

/// The dot product of a row (indices, values) with `x`: one scalar running sum, as plain
/// loads (measured on the power-law matrix: a loop the compiler vectorizes into gathers, or
/// four partial sums, ran 1.5x slower on one thread than this, which streams at memory speed).
#[inline(always)]
fn dot<T: SparseValue, I: SparseIndex>(idx: &[I], val: &[T], x: &[T]) -> T {
    let mut acc = T::zero();
    for (&i, &v) in idx.iter().zip(val) {
        acc = acc.add(v.mul(x[i.to_usize()]));
    }
    acc
}

/// Rows `r0..r1` of `y = A x` into `out` (row `r` at `out[(r - r0) * ld]`); the rows in
/// `huge` (sorted) take their value from `huge_val`.
#[allow(clippy::too_many_arguments)]
fn spmv_rows<T: SparseValue, I: SparseIndex>(
    a: CsrRef<'_, T, I>,
    r0: usize,
    r1: usize,
    x: &[T],
    out: &mut [T],
    ld: usize,
    huge: &[usize],
    huge_val: &[T],
) {
    let mut h = 0;
    let ptr = &a.indptr[r0..=r1];
    for (i, w) in ptr.windows(2).enumerate() {
        let (s, e) = (w[0].to_usize(), w[1].to_usize());
        let v = if h < huge.len() && huge[h] == r0 + i {
            h += 1;
            huge_val[h - 1]
        } else {
            dot(&a.indices[s..e], &a.data[s..e], x)
        };
        out[i * ld] = v;
    }
}

/// `y = A x` for more than one column.
fn spmm_n<T: SparseValue, I: SparseIndex>(
    a: CsrRef<'_, T, I>,
    x: DenseRef<'_, T>,
    y: &mut DenseMut<'_, T>,
) {
    let n = x.cols;
    let xr = rows_of(x);
    let parts = parts_for(a.nnz().saturating_mul(n));
    let bounds = split_by_weight(|r| a.indptr[r].to_usize() + r, a.rows, parts);
    write_rows(y, &bounds, |r0, r1, out, ld| {
        spmm_rows_best(a, r0, r1, &xr, n, out, ld)
    });
}

/// Columns `c0..c0 + W` of one row of `A x` into `out` (`W` accumulators).
#[inline(always)]
fn block<T: SparseValue, I: SparseIndex, const W: usize, const FMA: bool>(
    idx: &[I],
    val: &[T],
    x: &Rows<'_, T>,
    c0: usize,
    out: &mut [T],
) {
    let mut acc = [T::zero(); W];
    let base = x.off + c0;
    for (&j, &v) in idx.iter().zip(val) {
        let xr: &[T; W] = x.data[base + j.to_usize() * x.ld..][..W]
            .try_into()
            .unwrap();
        for w in 0..W {
            acc[w] = fma::<T, FMA>(v, xr[w], acc[w]);
        }
    }
    out[..W].copy_from_slice(&acc);
}

/// Columns `c0..c0 + t` (`t < 8`) of one row of `A x` into `out`.
#[inline(always)]
fn block_tail<T: SparseValue, I: SparseIndex, const FMA: bool>(
    idx: &[I],
    val: &[T],
    x: &Rows<'_, T>,
    c0: usize,
    t: usize,
    out: &mut [T],
) {
    let mut acc = [T::zero(); 8];
    let base = x.off + c0;
    for (&j, &v) in idx.iter().zip(val) {
        let xr = &x.data[base + j.to_usize() * x.ld..][..t];
        for (a, &xv) in acc.iter_mut().zip(xr) {
            *a = fma::<T, FMA>(v, xv, *a);
        }
    }
    out[..t].copy_from_slice(&acc[..t]);
}

/// Rows `r0..r1` of `y = A x` (`n` columns) into `out` (row `r` at `out[(r - r0) * ld..]`):
/// blocks of 64 (32 for 8-byte values), 32, 16 and 8 columns, then the rest.
#[inline(always)]
fn spmm_rows<T: SparseValue, I: SparseIndex, const FMA: bool>(
    a: CsrRef<'_, T, I>,
    r0: usize,
    r1: usize,
    x: &Rows<'_, T>,
    n: usize,
    out: &mut [T],
    ld: usize,
) {
    let wide = std::mem::size_of::<T>() <= 4;
    for r in r0..r1 {
        let rg = a.range(r);
        let (idx, val) = (&a.indices[rg.clone()], &a.data[rg]);
        let o = &mut out[(r - r0) * ld..][..n];
        let mut c = 0;
        while wide && n - c >= 64 {
            block::<T, I, 64, FMA>(idx, val, x, c, &mut o[c..]);
            c += 64;
        }
        while n - c >= 32 {
            block::<T, I, 32, FMA>(idx, val, x, c, &mut o[c..]);
            c += 32;
        }
        if n - c >= 16 {
            block::<T, I, 16, FMA>(idx, val, x, c, &mut o[c..]);
            c += 16;
        }
        if n - c >= 8 {
            block::<T, I, 8, FMA>(idx, val, x, c, &mut o[c..]);
            c += 8;
        }
        if n > c {
            block_tail::<T, I, FMA>(idx, val, x, c, n - c, &mut o[c..]);
        }
    }
}

/// [`spmm_rows`] for the best vector ISA the CPU has.
fn spmm_rows_best<T: SparseValue, I: SparseIndex>(
    a: CsrRef<'_, T, I>,
    r0: usize,
    r1: usize,
    x: &Rows<'_, T>,
    n: usize,
    out: &mut [T],
    ld: usize,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { spmm_rows_avx512(a, r0, r1, x, n, out, ld) };
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { spmm_rows_avx2(a, r0, r1, x, n, out, ld) };
        }
    }
    spmm_rows::<T, I, false>(a, r0, r1, x, n, out, ld)
}

/// [`spmm_rows`] compiled for AVX-512.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn spmm_rows_avx512<T: SparseValue, I: SparseIndex>(
    a: CsrRef<'_, T, I>,
    r0: usize,
    r1: usize,
    x: &Rows<'_, T>,
    n: usize,
    out: &mut [T],
    ld: usize,
) {
    spmm_rows::<T, I, true>(a, r0, r1, x, n, out, ld)
}

/// [`spmm_rows`] compiled for AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn spmm_rows_avx2<T: SparseValue, I: SparseIndex>(
    a: CsrRef<'_, T, I>,
    r0: usize,
    r1: usize,
    x: &Rows<'_, T>,
    n: usize,
    out: &mut [T],
    ld: usize,
) {
    spmm_rows::<T, I, true>(a, r0, r1, x, n, out, ld)
}

/// `y = A^T x`: each part scatters its rows of `x` into its own partial output (`cols` x `n`,
/// C order); the partial outputs are summed into `y` in parallel.
fn spmm_t<T: SparseValue, I: SparseIndex>(
    a: CsrRef<'_, T, I>,
    x: DenseRef<'_, T>,
    y: &mut DenseMut<'_, T>,
) {
    let n = x.cols;
    let m = a.cols;
    let xr = rows_of(x);
    let mut parts = parts_for(a.nnz().saturating_mul(n)).min(rayon::current_num_threads());
    while parts > 1 && parts * m * n > PARTIAL_LIMIT {
        parts -= 1;
    }
    let bounds = split_by_weight(|r| a.indptr[r].to_usize() + r, a.rows, parts);
    let partial: Vec<Vec<T>> = bounds
        .par_windows(2)
        .map(|w| {
            let mut buf = vec![T::zero(); m * n];
            scatter_best(a, w[0], w[1], &xr, n, &mut buf);
            buf
        })
        .collect();
    let out_parts = parts_for(m * n * partial.len().max(1));
    let ob = split_by_weight(|c| c, m, out_parts);
    write_rows(y, &ob, |c0, c1, out, ld| {
        for c in c0..c1 {
            let o = &mut out[(c - c0) * ld..][..n];
            match partial.split_first() {
                None => o.fill(T::zero()),
                Some((first, rest)) => {
                    o.copy_from_slice(&first[c * n..][..n]);
                    for p in rest {
                        for (v, &s) in o.iter_mut().zip(&p[c * n..][..n]) {
                            *v = v.add(s);
                        }
                    }
                }
            }
        }
    });
}

/// Adds rows `r0..r1` of `A^T x` into `buf` (`cols` x `n`, C order).
#[inline(always)]
fn scatter<T: SparseValue, I: SparseIndex, const FMA: bool>(
    a: CsrRef<'_, T, I>,
    r0: usize,
    r1: usize,
    x: &Rows<'_, T>,
    n: usize,
    buf: &mut [T],
) {
    for r in r0..r1 {
        let rg = a.range(r);
        let xrow = &x.data[x.off + r * x.ld..][..n];
        if n == 1 {
            let xv = xrow[0];
            for (&j, &v) in a.indices[rg.clone()].iter().zip(&a.data[rg]) {
                let j = j.to_usize();
                buf[j] = fma::<T, FMA>(v, xv, buf[j]);
            }
            continue;
        }
        for (&j, &v) in a.indices[rg.clone()].iter().zip(&a.data[rg]) {
            let dst = &mut buf[j.to_usize() * n..][..n];
            for (d, &xv) in dst.iter_mut().zip(xrow) {
                *d = fma::<T, FMA>(v, xv, *d);
            }
        }
    }
}

/// [`scatter`] for the best vector ISA the CPU has.
fn scatter_best<T: SparseValue, I: SparseIndex>(
    a: CsrRef<'_, T, I>,
    r0: usize,
    r1: usize,
    x: &Rows<'_, T>,
    n: usize,
    buf: &mut [T],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { scatter_avx512(a, r0, r1, x, n, buf) };
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { scatter_avx2(a, r0, r1, x, n, buf) };
        }
    }
    scatter::<T, I, false>(a, r0, r1, x, n, buf)
}

/// [`scatter`] compiled for AVX-512.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn scatter_avx512<T: SparseValue, I: SparseIndex>(
    a: CsrRef<'_, T, I>,
    r0: usize,
    r1: usize,
    x: &Rows<'_, T>,
    n: usize,
    buf: &mut [T],
) {
    scatter::<T, I, true>(a, r0, r1, x, n, buf)
}

/// [`scatter`] compiled for AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn scatter_avx2<T: SparseValue, I: SparseIndex>(
    a: CsrRef<'_, T, I>,
    r0: usize,
    r1: usize,
    x: &Rows<'_, T>,
    n: usize,
    buf: &mut [T],
) {
    scatter::<T, I, true>(a, r0, r1, x, n, buf)
}
