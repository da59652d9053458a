//! Validation of CSR and COO arrays: one pass over the index arrays (spread over threads in
//! chunks for large arrays), with an error naming the first entry that is wrong.

use super::SparseIndex;
use rayon::prelude::*;

/// Entries from which a check spreads over threads.
const PARALLEL: usize = 1 << 16;

/// What [`check_csr`] learned about valid arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CsrCheck {
    /// Column indices strictly increase within every row (sorted, no duplicates: canonical).
    pub sorted: bool,
}

/// Validates CSR arrays of a `rows` x `cols` matrix with `nnz_data` values: `indptr` has
/// `rows + 1` entries, starts at 0, never decreases and ends at `indices.len() == nnz_data`;
/// every index lies in `[0, cols)`. Reports whether the rows are canonical. The error names
/// the first thing wrong (lowest position); no read is out of bounds on any input.
pub(crate) fn check_csr<I: SparseIndex>(
    rows: usize,
    cols: usize,
    indptr: &[I],
    indices: &[I],
    nnz_data: usize,
) -> Result<CsrCheck, String> {
    if indptr.len() != rows.wrapping_add(1) || rows == usize::MAX {
        return Err(format!(
            "indptr has {} entries, expected rows + 1 = {}",
            indptr.len(),
            rows as u128 + 1
        ));
    }
    if indptr[0].to_i64() != 0 {
        return Err(format!("indptr[0] = {}, expected 0", indptr[0]));
    }
    if let Some(k) = first_decrease(indptr) {
        return Err(format!(
            "indptr[{}] = {} is less than indptr[{}] = {}",
            k,
            indptr[k],
            k - 1,
            indptr[k - 1]
        ));
    }
    let last = indptr[rows];
    if last.to_i64() as u64 != indices.len() as u64 {
        return Err(format!(
            "indptr[{rows}] = {last} (the last entry) differs from the {} column indices",
            indices.len()
        ));
    }
    if indices.len() != nnz_data {
        return Err(format!(
            "indices has {} entries but data has {nnz_data}",
            indices.len()
        ));
    }
    // Rows in chunks of about PARALLEL entries; each chunk reports its first bad index.
    let bounds = super::split_by_weight(
        |r| indptr[r].to_usize() + r,
        rows,
        (indices.len() + rows) / PARALLEL + 1,
    );
    let check_rows = |w: &[usize]| -> Result<bool, usize> {
        let mut sorted = true;
        for r in w[0]..w[1] {
            let (s, e) = (indptr[r].to_usize(), indptr[r + 1].to_usize());
            let row = &indices[s..e];
            let mut prev = -1i64;
            for (k, &j) in row.iter().enumerate() {
                let j = j.to_i64();
                if j < 0 || j as u64 >= cols as u64 {
                    return Err(s + k);
                }
                sorted &= j > prev;
                prev = j;
            }
        }
        Ok(sorted)
    };
    let windows: Vec<&[usize]> = bounds.windows(2).collect();
    let results: Vec<Result<bool, usize>> = if windows.len() > 1 {
        windows.par_iter().map(|w| check_rows(w)).collect()
    } else {
        windows.iter().map(|w| check_rows(w)).collect()
    };
    let mut sorted = true;
    for r in results {
        match r {
            Ok(s) => sorted &= s,
            Err(k) => {
                return Err(format!(
                    "indices[{k}] = {} is out of range for {cols} columns",
                    indices[k]
                ))
            }
        }
    }
    Ok(CsrCheck { sorted })
}

/// The first `k` with `v[k] < v[k - 1]`.
fn first_decrease<I: SparseIndex>(v: &[I]) -> Option<usize> {
    let find = |start: usize, w: &[I]| {
        w.windows(2)
            .position(|p| p[1] < p[0])
            .map(|k| start + k + 1)
    };
    if v.len() < PARALLEL {
        return find(0, v);
    }
    // Overlapping chunks (each holds the first entry of the next) so every pair is seen.
    let chunk = PARALLEL;
    let starts: Vec<usize> = (0..v.len() - 1).step_by(chunk).collect();
    starts
        .par_iter()
        .filter_map(|&s| find(s, &v[s..(s + chunk + 1).min(v.len())]))
        .min()
}

/// Validates COO arrays of a `rows` x `cols` matrix with `nnz` entries: `row` and `col` hold
/// `nnz` entries each, `row` in `[0, rows)`, `col` in `[0, cols)`. The error names the first
/// entry wrong (`row` before `col`).
pub(crate) fn check_coo<I: SparseIndex>(
    rows: usize,
    cols: usize,
    row: &[I],
    col: &[I],
    nnz: usize,
) -> Result<(), String> {
    if row.len() != nnz {
        return Err(format!(
            "row has {} entries, expected nnz = {nnz}",
            row.len()
        ));
    }
    if col.len() != nnz {
        return Err(format!(
            "col has {} entries, expected nnz = {nnz}",
            col.len()
        ));
    }
    for (name, v, n, what) in [("row", row, rows, "rows"), ("col", col, cols, "columns")] {
        if let Some(k) = first_out_of_range(v, n) {
            return Err(format!(
                "{name}[{k}] = {} is out of range for {n} {what}",
                v[k]
            ));
        }
    }
    Ok(())
}

/// The first `k` with `v[k]` outside `[0, n)`.
fn first_out_of_range<I: SparseIndex>(v: &[I], n: usize) -> Option<usize> {
    let bad = |x: I| {
        let x = x.to_i64();
        x < 0 || x as u64 >= n as u64
    };
    if v.len() < PARALLEL {
        return v.iter().position(|&x| bad(x));
    }
    v.par_chunks(PARALLEL)
        .enumerate()
        .filter_map(|(c, w)| w.iter().position(|&x| bad(x)).map(|k| c * PARALLEL + k))
        .min()
}
