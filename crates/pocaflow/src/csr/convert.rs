//! Conversions: COO to canonical CSR ([`coo_to_csr`]), CSR to canonical CSR
//! ([`canonicalize`]), the CSR of the transpose ([`transpose`]) and CSR to dense
//! ([`to_dense`]).

use super::dense::write_rows;
use super::{split_by_weight, split_rows_by_nnz, Csr, CsrRef, DenseMut, SparseIndex, SparseValue};
use rayon::prelude::*;

/// Entries from which a conversion spreads over threads.
const PARALLEL: usize = 1 << 15;

/// Ranges per thread for `work` entries.
fn parts_for(work: usize) -> usize {
    if work < PARALLEL {
        1
    } else {
        (rayon::current_num_threads() * 4).min(work / PARALLEL + 1)
    }
}

/// The canonical CSR matrix (`rows` x `cols`) of COO entries (validated by
/// [`check_coo`](super::check_coo)): a counting sort by row, then each row sorted by column
/// (stably) with duplicates summed in the order they were given. `O` is the output index
/// type (the caller picks one that holds `nnz`, `rows` and `cols`).
pub(crate) fn coo_to_csr<T: SparseValue, I: SparseIndex, O: SparseIndex>(
    rows: usize,
    cols: usize,
    row: &[I],
    col: &[I],
    data: &[T],
) -> Csr<T, O> {
    let nnz = row.len();
    assert!(
        col.len() == nnz && data.len() == nnz,
        "coo_to_csr: lengths differ"
    );
    let mut ptr = vec![0usize; rows + 1];
    for &r in row {
        ptr[r.to_usize() + 1] += 1;
    }
    for r in 0..rows {
        ptr[r + 1] += ptr[r];
    }
    let mut next = ptr[..rows].to_vec();
    let mut pairs = vec![(O::from_usize(0), T::zero()); nnz];
    for ((&r, &c), &v) in row.iter().zip(col).zip(data) {
        let slot = &mut next[r.to_usize()];
        pairs[*slot] = (O::from_usize(c.to_usize()), v);
        *slot += 1;
    }
    sort_rows(rows, cols, &ptr, pairs)
}

/// The canonical form of `a`: each row sorted by column (stably), duplicates summed.
pub(crate) fn canonicalize<T: SparseValue, I: SparseIndex>(a: CsrRef<'_, T, I>) -> Csr<T, I> {
    let ptr: Vec<usize> = a.indptr.iter().map(|p| p.to_usize()).collect();
    let pairs: Vec<(I, T)> = if a.nnz() >= PARALLEL {
        a.indices
            .par_iter()
            .zip(a.data.par_iter())
            .map(|(&i, &v)| (i, v))
            .collect()
    } else {
        a.indices
            .iter()
            .zip(a.data)
            .map(|(&i, &v)| (i, v))
            .collect()
    };
    sort_rows(a.rows, a.cols, &ptr, pairs)
}

/// CSR from (column, value) pairs grouped by row (`ptr`, `rows + 1` offsets): every row
/// sorted by column and its duplicates summed, in parallel over row ranges.
fn sort_rows<T: SparseValue, O: SparseIndex>(
    rows: usize,
    cols: usize,
    ptr: &[usize],
    mut pairs: Vec<(O, T)>,
) -> Csr<T, O> {
    let nnz = pairs.len();
    let bounds = split_by_weight(|r| ptr[r] + r, rows, parts_for(nnz + rows));
    // Each range sorts and merges its rows in place, returning the merged length of each row.
    let mut chunks = Vec::with_capacity(bounds.len());
    let mut rest: &mut [(O, T)] = &mut pairs;
    for w in bounds.windows(2) {
        let (c, t) = std::mem::take(&mut rest).split_at_mut(ptr[w[1]] - ptr[w[0]]);
        rest = t;
        chunks.push((w[0], w[1], c));
    }
    let merge = |(r0, r1, chunk): (usize, usize, &mut [(O, T)])| -> Vec<usize> {
        let base = ptr[r0];
        (r0..r1)
            .map(|r| {
                let row = &mut chunk[ptr[r] - base..ptr[r + 1] - base];
                if row.windows(2).any(|p| p[1].0 <= p[0].0) {
                    row.sort_by_key(|p| p.0);
                    let mut w = 0;
                    for k in 0..row.len() {
                        if w > 0 && row[w - 1].0 == row[k].0 {
                            row[w - 1].1 = row[w - 1].1.add(row[k].1);
                        } else {
                            row[w] = row[k];
                            w += 1;
                        }
                    }
                    w
                } else {
                    row.len()
                }
            })
            .collect()
    };
    let lens: Vec<usize> = if chunks.len() > 1 {
        chunks.into_par_iter().flat_map_iter(merge).collect()
    } else {
        chunks.into_iter().flat_map(merge).collect()
    };
    let mut indptr = Vec::with_capacity(rows + 1);
    let mut out_ptr = Vec::with_capacity(rows + 1);
    let mut total = 0usize;
    indptr.push(O::from_usize(0));
    out_ptr.push(0);
    for &l in &lens {
        total += l;
        indptr.push(O::from_usize(total));
        out_ptr.push(total);
    }
    let mut indices = vec![O::from_usize(0); total];
    let mut data = vec![T::zero(); total];
    // Compaction: each range copies its merged rows into its part of the output.
    let mut parts = Vec::with_capacity(bounds.len());
    let (mut ri, mut rd): (&mut [O], &mut [T]) = (&mut indices, &mut data);
    for w in bounds.windows(2) {
        let len = out_ptr[w[1]] - out_ptr[w[0]];
        let (ci, ti) = std::mem::take(&mut ri).split_at_mut(len);
        let (cd, td) = std::mem::take(&mut rd).split_at_mut(len);
        ri = ti;
        rd = td;
        parts.push((w[0], w[1], ci, cd));
    }
    let pairs = &pairs;
    let out_ptr = &out_ptr;
    let copy = |(r0, r1, ci, cd): (usize, usize, &mut [O], &mut [T])| {
        let base = out_ptr[r0];
        for r in r0..r1 {
            let (o, l) = (out_ptr[r] - base, out_ptr[r + 1] - out_ptr[r]);
            for (k, p) in pairs[ptr[r]..ptr[r] + l].iter().enumerate() {
                ci[o + k] = p.0;
                cd[o + k] = p.1;
            }
        }
    };
    if parts.len() > 1 {
        parts.into_par_iter().for_each(copy);
    } else {
        parts.into_iter().for_each(copy);
    }
    Csr {
        rows,
        cols,
        indptr,
        indices,
        data,
    }
}

/// The CSR matrix of `A^T` (the CSC arrays of `A`), by a counting sort over columns. Rows of
/// the output list their entries by increasing row of `A`, so a canonical `A` gives a
/// canonical transpose (duplicates of `A` stay, adjacent).
pub(crate) fn transpose<T: SparseValue, I: SparseIndex>(a: CsrRef<'_, T, I>) -> Csr<T, I> {
    let nnz = a.nnz();
    let mut ptr = vec![0usize; a.cols + 1];
    for &j in a.indices {
        ptr[j.to_usize() + 1] += 1;
    }
    for c in 0..a.cols {
        ptr[c + 1] += ptr[c];
    }
    let mut next = ptr[..a.cols].to_vec();
    let mut indices = vec![I::from_usize(0); nnz];
    let mut data = vec![T::zero(); nnz];
    for r in 0..a.rows {
        let ri = I::from_usize(r);
        let rg = a.range(r);
        for (&j, &v) in a.indices[rg.clone()].iter().zip(&a.data[rg]) {
            let slot = &mut next[j.to_usize()];
            indices[*slot] = ri;
            data[*slot] = v;
            *slot += 1;
        }
    }
    Csr {
        rows: a.cols,
        cols: a.rows,
        indptr: ptr.into_iter().map(I::from_usize).collect(),
        indices,
        data,
    }
}

/// Writes `A` into the dense `y` (`rows` x `cols`): zeros, and each position's sum of the
/// entries stored for it.
pub(crate) fn to_dense<T: SparseValue, I: SparseIndex>(
    a: CsrRef<'_, T, I>,
    mut y: DenseMut<'_, T>,
) {
    assert!(
        y.rows == a.rows && y.cols == a.cols,
        "to_dense: y's shape differs from A's"
    );
    let bounds = split_rows_by_nnz(&a, parts_for(a.nnz() + a.rows * a.cols / 8));
    write_rows(&mut y, &bounds, |r0, r1, out, ld| {
        for r in r0..r1 {
            let o = &mut out[(r - r0) * ld..][..a.cols];
            o.fill(T::zero());
            let rg = a.range(r);
            for (&j, &v) in a.indices[rg.clone()].iter().zip(&a.data[rg]) {
                let j = j.to_usize();
                o[j] = o[j].add(v);
            }
        }
    });
}
