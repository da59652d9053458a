//! Sparse times sparse (`C = A B`) by Gustavson's algorithm: a symbolic pass counts the
//! distinct columns of every output row, a numeric pass fills the rows in place. Both run in
//! parallel over row ranges of equal flops (`sum over k in row i of A of len(row k of B)`),
//! each thread with a dense accumulator and a marker array of `b.cols` entries. Output rows
//! are sorted: a row's column list is sorted, or, for a row filling more than a sixteenth of
//! the columns, read off the marker array in order. Explicit zeros from cancellation stay.

use super::{fma, split_by_weight, Csr, CsrRef, SparseIndex, SparseValue};
use rayon::prelude::*;

/// Flops from which the product spreads over threads.
const PARALLEL: usize = 1 << 15;

/// The result of [`spgemm_symbolic`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SpgemmSymbolic {
    /// Row pointers of the product (`a.rows + 1` prefix sums).
    pub indptr: Vec<usize>,
    /// Prefix sums of the flops of each row (`a.rows + 1`), for balancing the numeric pass.
    flops: Vec<usize>,
}

impl SpgemmSymbolic {
    /// Stored entries of the product.
    pub fn nnz(&self) -> usize {
        *self.indptr.last().unwrap()
    }
}

/// Marker entries: `u32` while row numbers fit (half the cache of `usize`), else `usize`.
trait Mark: Copy + Eq + Send + 'static {
    /// No row.
    const NONE: Self;
    /// Row `r`'s mark.
    fn of(r: usize) -> Self;
}

impl Mark for u32 {
    const NONE: Self = u32::MAX;
    #[inline(always)]
    fn of(r: usize) -> Self {
        r as u32
    }
}

impl Mark for usize {
    const NONE: Self = usize::MAX;
    #[inline(always)]
    fn of(r: usize) -> Self {
        r
    }
}

/// Row ranges of equal flops.
fn bounds(flops: &[usize], rows: usize) -> Vec<usize> {
    let total = flops[rows];
    let parts = if total < PARALLEL {
        1
    } else {
        (rayon::current_num_threads() * 8).min(total / PARALLEL + 1)
    };
    split_by_weight(|r| flops[r] + r, rows, parts)
}

/// The row pointers of `A B` (`a.cols == b.rows`).
pub(crate) fn spgemm_symbolic<T: SparseValue, I: SparseIndex>(
    a: CsrRef<'_, T, I>,
    b: CsrRef<'_, T, I>,
) -> SpgemmSymbolic {
    assert_eq!(a.cols, b.rows, "spgemm: inner dimensions differ");
    let row_flops = |r: usize| -> usize {
        a.indices[a.range(r)]
            .iter()
            .map(|&k| b.range(k.to_usize()).len())
            .sum()
    };
    let per_row: Vec<usize> = if a.nnz() >= PARALLEL {
        (0..a.rows).into_par_iter().map(row_flops).collect()
    } else {
        (0..a.rows).map(row_flops).collect()
    };
    let mut flops = Vec::with_capacity(a.rows + 1);
    flops.push(0);
    let mut t = 0usize;
    for f in per_row {
        t += f;
        flops.push(t);
    }
    let bd = bounds(&flops, a.rows);
    let counts = if a.rows < u32::MAX as usize {
        count_rows::<T, I, u32>(a, b, &bd)
    } else {
        count_rows::<T, I, usize>(a, b, &bd)
    };
    let mut indptr = Vec::with_capacity(a.rows + 1);
    indptr.push(0);
    let mut t = 0usize;
    for n in counts.into_iter().flatten() {
        t += n;
        indptr.push(t);
    }
    SpgemmSymbolic { indptr, flops }
}

/// The distinct columns of each row of `A B`, per row range between the bounds `bd`.
fn count_rows<T: SparseValue, I: SparseIndex, M: Mark>(
    a: CsrRef<'_, T, I>,
    b: CsrRef<'_, T, I>,
    bd: &[usize],
) -> Vec<Vec<usize>> {
    let count = |marker: &mut Vec<M>, w: &[usize]| -> Vec<usize> {
        (w[0]..w[1])
            .map(|r| {
                let mut n = 0;
                let mr = M::of(r);
                for &k in &a.indices[a.range(r)] {
                    for &j in &b.indices[b.range(k.to_usize())] {
                        let m = &mut marker[j.to_usize()];
                        if *m != mr {
                            *m = mr;
                            n += 1;
                        }
                    }
                }
                n
            })
            .collect()
    };
    if bd.len() > 2 {
        bd.par_windows(2)
            .map_init(|| vec![M::NONE; b.cols], count)
            .collect()
    } else {
        let mut marker = vec![M::NONE; b.cols];
        bd.windows(2).map(|w| count(&mut marker, w)).collect()
    }
}

/// `A B` with the row pointers from [`spgemm_symbolic`] of the same `a` and `b`; every
/// output row sorted by column. `O` is the output index type (it must hold the product's
/// nnz and columns).
pub(crate) fn spgemm_numeric<T: SparseValue, I: SparseIndex, O: SparseIndex>(
    a: CsrRef<'_, T, I>,
    b: CsrRef<'_, T, I>,
    sym: &SpgemmSymbolic,
) -> Csr<T, O> {
    assert_eq!(a.cols, b.rows, "spgemm: inner dimensions differ");
    assert_eq!(
        sym.indptr.len(),
        a.rows + 1,
        "spgemm: symbolic pass of another matrix"
    );
    let nnz = sym.nnz();
    assert!(
        nnz <= O::MAX && b.cols <= O::MAX,
        "spgemm: the output index type cannot hold {nnz} entries"
    );
    let ip = &sym.indptr;
    let mut indices = vec![O::from_usize(0); nnz];
    let mut data = vec![T::zero(); nnz];
    let bd = bounds(&sym.flops, a.rows);
    let mut parts = Vec::with_capacity(bd.len());
    let (mut ri, mut rd): (&mut [O], &mut [T]) = (&mut indices, &mut data);
    for w in bd.windows(2) {
        let len = ip[w[1]] - ip[w[0]];
        let (ci, ti) = std::mem::take(&mut ri).split_at_mut(len);
        let (cd, td) = std::mem::take(&mut rd).split_at_mut(len);
        ri = ti;
        rd = td;
        parts.push((w[0], w[1], ci, cd));
    }
    if a.rows < u32::MAX as usize {
        fill_rows::<T, I, O, u32>(a, b, ip, parts);
    } else {
        fill_rows::<T, I, O, usize>(a, b, ip, parts);
    }
    Csr {
        rows: a.rows,
        cols: b.cols,
        indptr: ip.iter().map(|&p| O::from_usize(p)).collect(),
        indices,
        data,
    }
}

/// Fills the output parts `(r0, r1, indices, values)` of `A B`, in parallel, with marker
/// entries of type `M`.
fn fill_rows<T: SparseValue, I: SparseIndex, O: SparseIndex, M: Mark>(
    a: CsrRef<'_, T, I>,
    b: CsrRef<'_, T, I>,
    ip: &[usize],
    parts: Vec<(usize, usize, &mut [O], &mut [T])>,
) {
    let fma_ok = has_fma();
    let fill = |(acc, marker): &mut (Vec<T>, Vec<M>),
                (r0, r1, ci, cd): (usize, usize, &mut [O], &mut [T])| {
        if fma_ok {
            rows_numeric::<T, I, O, M, true>(a, b, ip, r0, r1, ci, cd, acc, marker)
        } else {
            rows_numeric::<T, I, O, M, false>(a, b, ip, r0, r1, ci, cd, acc, marker)
        }
    };
    let init = || (vec![T::zero(); b.cols], vec![M::NONE; b.cols]);
    if parts.len() > 1 {
        parts.into_par_iter().for_each_init(init, fill);
    } else {
        let mut st = init();
        parts.into_iter().for_each(|p| fill(&mut st, p));
    }
}

/// Whether the CPU has FMA.
fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        cfg!(target_feature = "fma")
    }
}

/// Rows `r0..r1` of `A B` into `ci`/`cd` (the output entries from `ip[r0]`), with the
/// dense accumulator `acc` and the marker array `marker` (`b.cols` entries each; a marker
/// equal to the row number marks a column already in the row).
#[allow(clippy::too_many_arguments)]
fn rows_numeric<T: SparseValue, I: SparseIndex, O: SparseIndex, M: Mark, const FMA: bool>(
    a: CsrRef<'_, T, I>,
    b: CsrRef<'_, T, I>,
    ip: &[usize],
    r0: usize,
    r1: usize,
    ci: &mut [O],
    cd: &mut [T],
    acc: &mut [T],
    marker: &mut [M],
) {
    let base = ip[r0];
    let dense_from = b.cols / 16;
    for r in r0..r1 {
        let (s, e) = (ip[r] - base, ip[r + 1] - base);
        let oi = &mut ci[s..e];
        let od = &mut cd[s..e];
        let mut w = 0;
        let mr = M::of(r);
        let rg = a.range(r);
        for (&k, &av) in a.indices[rg.clone()].iter().zip(&a.data[rg]) {
            let bg = b.range(k.to_usize());
            for (&j, &bv) in b.indices[bg.clone()].iter().zip(&b.data[bg]) {
                let j = j.to_usize();
                if marker[j] != mr {
                    marker[j] = mr;
                    acc[j] = av.mul(bv);
                    oi[w] = O::from_usize(j);
                    w += 1;
                } else {
                    acc[j] = fma::<T, FMA>(av, bv, acc[j]);
                }
            }
        }
        debug_assert_eq!(w, oi.len());
        if oi.len() > dense_from {
            // Read the columns off the marker array in order.
            let mut t = 0;
            for (j, &m) in marker.iter().enumerate() {
                if m == mr {
                    oi[t] = O::from_usize(j);
                    od[t] = acc[j];
                    t += 1;
                }
            }
        } else {
            oi.sort_unstable();
            for (o, &j) in od.iter_mut().zip(oi.iter()) {
                *o = acc[j.to_usize()];
            }
        }
    }
}
