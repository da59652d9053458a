//! Sparse times sparse (`C = A B`) by Gustavson's algorithm. A symbolic pass counts the
//! flops of each row (`sum over k in row i of A of len(row k of B)`, an upper bound of its
//! entries); the rows are split into ranges of equal flops, each thread fills its ranges' rows
//! into buffers of those bounds with a dense accumulator and a marker array of `b.cols`
//! entries, and the buffers are then copied into place. (A symbolic pass that counts each
//! row's entries exactly, so that rows are written in place, cost more than the copy: for the
//! issue's power-law matrix times its transpose, 65M entries, on two cores, it took 0.8-1.1 s
//! of 3.5-4.2 s; this way takes 3.1-3.2 s.) Output rows are sorted: a row's column list is
//! sorted, or, for a row filling more than a sixteenth of the columns, read off the marker
//! array in order. Zeros from cancellation stay (the op above drops them).

use super::{fma, split_by_weight, Csr, CsrRef, SparseIndex, SparseValue};
use rayon::prelude::*;

/// Flops from which the product spreads over threads.
const PARALLEL: usize = 1 << 15;

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

/// Prefix sums of the flops of each row of `A B` (`a.rows + 1`; the last is the total, an
/// upper bound of the product's entries).
pub(crate) fn spgemm_flops<T: SparseValue, I: SparseIndex>(
    a: CsrRef<'_, T, I>,
    b: CsrRef<'_, T, I>,
) -> Vec<usize> {
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
    flops
}

/// `A B` with every output row sorted by column; `flops` from [`spgemm_flops`] of the same
/// `a` and `b`. `O` is the output index type: it must hold `b.cols` and the flops' total.
pub(crate) fn spgemm<T: SparseValue, I: SparseIndex, O: SparseIndex>(
    a: CsrRef<'_, T, I>,
    b: CsrRef<'_, T, I>,
    flops: &[usize],
) -> Csr<T, O> {
    assert_eq!(a.cols, b.rows, "spgemm: inner dimensions differ");
    assert_eq!(flops.len(), a.rows + 1, "spgemm: flops of another matrix");
    let bound = flops[a.rows];
    assert!(
        bound <= O::MAX && b.cols <= O::MAX,
        "spgemm: the output index type cannot hold {bound} entries"
    );
    let bd = bounds(flops, a.rows);
    let pieces = if a.rows < u32::MAX as usize {
        fill_ranges::<T, I, O, u32>(a, b, flops, &bd)
    } else {
        fill_ranges::<T, I, O, usize>(a, b, flops, &bd)
    };
    let mut indptr = Vec::with_capacity(a.rows + 1);
    indptr.push(O::from_usize(0));
    let mut t = 0usize;
    for p in &pieces {
        for &n in &p.lengths {
            t += n;
            indptr.push(O::from_usize(t));
        }
    }
    let mut indices = vec![O::from_usize(0); t];
    let mut data = vec![T::zero(); t];
    let mut slots = Vec::with_capacity(pieces.len());
    let (mut ri, mut rd): (&mut [O], &mut [T]) = (&mut indices, &mut data);
    for p in &pieces {
        let (ci, ti) = std::mem::take(&mut ri).split_at_mut(p.indices.len());
        let (cd, td) = std::mem::take(&mut rd).split_at_mut(p.indices.len());
        ri = ti;
        rd = td;
        slots.push((p, ci, cd));
    }
    slots.into_par_iter().for_each(|(p, ci, cd)| {
        ci.copy_from_slice(&p.indices);
        cd.copy_from_slice(&p.data);
    });
    Csr {
        rows: a.rows,
        cols: b.cols,
        indptr,
        indices,
        data,
    }
}

/// The rows of one range of `A B`: their entries, one row after another, and their lengths.
struct Piece<T, O> {
    indices: Vec<O>,
    data: Vec<T>,
    lengths: Vec<usize>,
}

/// The rows of each range between the bounds `bd`, in parallel, with marker entries of
/// type `M`.
fn fill_ranges<T: SparseValue, I: SparseIndex, O: SparseIndex, M: Mark>(
    a: CsrRef<'_, T, I>,
    b: CsrRef<'_, T, I>,
    flops: &[usize],
    bd: &[usize],
) -> Vec<Piece<T, O>> {
    let fma_ok = has_fma();
    let fill = |(acc, marker): &mut (Vec<T>, Vec<M>), w: &[usize]| -> Piece<T, O> {
        let cap = flops[w[1]] - flops[w[0]];
        let mut p = Piece {
            indices: Vec::with_capacity(cap),
            data: Vec::with_capacity(cap),
            lengths: Vec::with_capacity(w[1] - w[0]),
        };
        for r in w[0]..w[1] {
            if fma_ok {
                row_numeric::<T, I, O, M, true>(a, b, r, &mut p, acc, marker);
            } else {
                row_numeric::<T, I, O, M, false>(a, b, r, &mut p, acc, marker);
            }
        }
        p
    };
    let init = || (vec![T::zero(); b.cols], vec![M::NONE; b.cols]);
    if bd.len() > 2 {
        bd.par_windows(2).map_init(init, fill).collect()
    } else {
        let mut st = init();
        bd.windows(2).map(|w| fill(&mut st, w)).collect()
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

/// Row `r` of `A B` appended to `p`, with the dense accumulator `acc` and the marker array
/// `marker` (`b.cols` entries each; a marker equal to the row number marks a column already
/// in the row).
fn row_numeric<T: SparseValue, I: SparseIndex, O: SparseIndex, M: Mark, const FMA: bool>(
    a: CsrRef<'_, T, I>,
    b: CsrRef<'_, T, I>,
    r: usize,
    p: &mut Piece<T, O>,
    acc: &mut [T],
    marker: &mut [M],
) {
    let start = p.indices.len();
    let mr = M::of(r);
    let rg = a.range(r);
    for (&k, &av) in a.indices[rg.clone()].iter().zip(&a.data[rg]) {
        let bg = b.range(k.to_usize());
        for (&j, &bv) in b.indices[bg.clone()].iter().zip(&b.data[bg]) {
            let j = j.to_usize();
            if marker[j] != mr {
                marker[j] = mr;
                acc[j] = av.mul(bv);
                p.indices.push(O::from_usize(j));
            } else {
                acc[j] = fma::<T, FMA>(av, bv, acc[j]);
            }
        }
    }
    let row = &mut p.indices[start..];
    if row.len() > b.cols / 16 {
        // Read the columns off the marker array in order.
        let mut t = 0;
        for (j, &m) in marker.iter().enumerate() {
            if m == mr {
                row[t] = O::from_usize(j);
                t += 1;
            }
        }
    } else {
        row.sort_unstable();
    }
    p.data
        .extend(p.indices[start..].iter().map(|&j| acc[j.to_usize()]));
    p.lengths.push(p.indices.len() - start);
}
