//! Layout helpers for the dense operands: a dense matrix read as rows (borrowed when its rows
//! are contiguous, else copied once into a C-order scratch) and an output written by row
//! ranges in parallel (directly when its rows are contiguous and apart, else through a C-order
//! scratch copied out afterwards).

use super::{DenseMut, DenseRef, SparseValue};
use rayon::prelude::*;
use std::borrow::Cow;

/// Elements from which a copy spreads over threads.
const PARALLEL: usize = 1 << 15;

/// Rows per tile of a copy into C order.
const TILE: usize = 64;

/// A dense matrix as rows: element `(r, c)` at `data[off + r * ld + c]`.
pub(super) struct Rows<'a, T: Clone> {
    /// The buffer.
    pub data: Cow<'a, [T]>,
    /// Position of element `(0, 0)`.
    pub off: usize,
    /// Row stride.
    pub ld: usize,
}

/// Position of element `(r, c)` of a strided view (asserted to be in the buffer's range).
#[inline(always)]
fn at(offset: usize, rs: isize, cs: isize, r: usize, c: usize) -> usize {
    let p = offset as isize + r as isize * rs + c as isize * cs;
    assert!(p >= 0, "a dense view reaches before its buffer");
    p as usize
}

/// `x` as rows: borrowed when its columns are unit-strided (or it has one column) and its
/// row stride is not negative, else copied into a C-order scratch (in parallel).
pub(super) fn rows_of<'a, T: SparseValue>(x: DenseRef<'a, T>) -> Rows<'a, T> {
    if (x.cs == 1 || x.cols <= 1) && x.rs >= 0 {
        return Rows {
            data: Cow::Borrowed(x.data),
            off: x.offset,
            ld: x.rs as usize,
        };
    }
    let (rows, cols) = (x.rows, x.cols);
    let mut out = vec![T::zero(); rows * cols];
    if cols > 0 {
        // Tiles of TILE rows: with a row stride smaller than the column stride (F order) the
        // tile is read column by column (contiguous runs), written into the C-order tile.
        let col_major = x.rs.unsigned_abs() < x.cs.unsigned_abs();
        let fill = |(b, chunk): (usize, &mut [T])| {
            let r0 = b * TILE;
            let tr = chunk.len() / cols;
            if col_major {
                for c in 0..cols {
                    for i in 0..tr {
                        chunk[i * cols + c] = x.data[at(x.offset, x.rs, x.cs, r0 + i, c)];
                    }
                }
            } else {
                for (i, row) in chunk.chunks_mut(cols).enumerate() {
                    for (c, o) in row.iter_mut().enumerate() {
                        *o = x.data[at(x.offset, x.rs, x.cs, r0 + i, c)];
                    }
                }
            }
        };
        let chunk = TILE * cols;
        if rows * cols >= 2 * PARALLEL {
            out.par_chunks_mut(chunk).enumerate().for_each(fill);
        } else {
            out.chunks_mut(chunk).enumerate().for_each(fill);
        }
    }
    Rows {
        data: Cow::Owned(out),
        off: 0,
        ld: cols,
    }
}

/// Whether `y`'s rows are each contiguous and do not overlap (row `r` at
/// `offset + r * rs ..+ cols`).
fn row_contiguous<T>(y: &DenseMut<'_, T>) -> bool {
    (y.cs == 1 || y.cols <= 1) && (y.rs >= y.cols as isize || y.rows <= 1)
}

/// Writes all of `y` by row ranges: `f(r0, r1, out, ld)` must write every element of rows
/// `r0..r1`, row `r` at `out[(r - r0) * ld..][..cols]`, for consecutive ranges between the
/// `bounds` (first 0, last `y.rows`), spread over threads. Output with contiguous rows is
/// written in place; other layouts go through a C-order scratch copied out afterwards.
pub(super) fn write_rows<T: SparseValue>(
    y: &mut DenseMut<'_, T>,
    bounds: &[usize],
    f: impl Fn(usize, usize, &mut [T], usize) + Sync,
) {
    if y.rows == 0 || y.cols == 0 {
        return;
    }
    if row_contiguous(y) {
        write_direct(y, bounds, f);
        return;
    }
    // Through a C-order scratch.
    let (rows, cols) = (y.rows, y.cols);
    let mut scratch = vec![T::zero(); rows * cols];
    let mut s = DenseMut {
        data: &mut scratch,
        offset: 0,
        rows,
        cols,
        rs: cols as isize,
        cs: 1,
    };
    write_direct(&mut s, bounds, f);
    let scratch = &scratch;
    if y.rs == 1 {
        // Columns contiguous: the transpose has contiguous rows, written in parallel.
        let mut yt = DenseMut {
            data: &mut *y.data,
            offset: y.offset,
            rows: cols,
            cols: rows,
            rs: y.cs,
            cs: 1,
        };
        if row_contiguous(&yt) {
            let parts = if rows * cols >= 2 * PARALLEL {
                rayon::current_num_threads() * 2
            } else {
                1
            };
            let b = super::split_by_weight(|c| c, cols, parts);
            write_direct(&mut yt, &b, |c0, c1, out, ld| {
                for c in c0..c1 {
                    let o = &mut out[(c - c0) * ld..][..rows];
                    for (r, v) in o.iter_mut().enumerate() {
                        *v = scratch[r * cols + c];
                    }
                }
            });
            return;
        }
    }
    for r in 0..rows {
        for c in 0..cols {
            y.data[at(y.offset, y.rs, y.cs, r, c)] = scratch[r * cols + c];
        }
    }
}

/// [`write_rows`] for output with contiguous rows ([`row_contiguous`]), in place.
fn write_direct<T: SparseValue>(
    y: &mut DenseMut<'_, T>,
    bounds: &[usize],
    f: impl Fn(usize, usize, &mut [T], usize) + Sync,
) {
    let ld = if y.rows <= 1 { y.cols } else { y.rs as usize };
    let cols = y.cols;
    let mut rest: &mut [T] = &mut y.data[y.offset..];
    let mut parts = Vec::with_capacity(bounds.len());
    let mut pos = 0; // element index of `rest[0]` relative to row 0
    for w in bounds.windows(2) {
        let (r0, r1) = (w[0], w[1]);
        let start = r0 * ld;
        let end = (r1 - 1) * ld + cols;
        let tail = std::mem::take(&mut rest);
        let (_, tail) = tail.split_at_mut(start - pos);
        let (chunk, tail) = tail.split_at_mut(end - start);
        rest = tail;
        pos = end;
        parts.push((r0, r1, chunk));
    }
    if parts.len() > 1 {
        parts
            .into_par_iter()
            .for_each(|(r0, r1, chunk)| f(r0, r1, chunk, ld));
    } else {
        for (r0, r1, chunk) in parts {
            f(r0, r1, chunk, ld);
        }
    }
}
