//! Tests of the sparse kernels against dense references computed in `f64`.

use super::check::CsrCheck;
use super::*;

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    /// The next 64 random bits.
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in `[-1, 1)`.
    fn val(&mut self) -> f64 {
        2.0 * self.unit() - 1.0
    }
}

/// The shapes of the random matrices.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Uniform row lengths, some rows empty, canonical.
    Uniform,
    /// Like `Uniform` with one full row.
    DenseRow,
    /// No entries.
    Empty,
    /// Unsorted rows with duplicates.
    Dups,
    /// Power-law row lengths.
    PowerLaw,
}

/// A random CSR matrix in `usize`/`f64` arrays.
struct Mat {
    rows: usize,
    cols: usize,
    indptr: Vec<usize>,
    indices: Vec<usize>,
    data: Vec<f64>,
}

fn random(rng: &mut Rng, rows: usize, cols: usize, kind: Kind) -> Mat {
    let mut indptr = vec![0];
    let (mut indices, mut data) = (Vec::new(), Vec::new());
    for r in 0..rows {
        let mut row: Vec<usize> = if cols == 0 || matches!(kind, Kind::Empty) {
            vec![]
        } else {
            match kind {
                Kind::DenseRow if r == rows / 2 => (0..cols).collect(),
                Kind::PowerLaw => {
                    let len = (cols as f64 * rng.unit().powi(6)) as usize;
                    sample(rng, cols, len)
                }
                Kind::Dups => {
                    let len = rng.below(9);
                    (0..len).map(|_| rng.below(cols.min(4))).collect()
                }
                _ => {
                    let len = if rng.below(4) == 0 {
                        0
                    } else {
                        rng.below(cols.min(12) + 1)
                    };
                    sample(rng, cols, len)
                }
            }
        };
        if !matches!(kind, Kind::Dups) {
            row.sort_unstable();
        }
        for j in row {
            indices.push(j);
            data.push(rng.val());
        }
        indptr.push(indices.len());
    }
    Mat {
        rows,
        cols,
        indptr,
        indices,
        data,
    }
}

/// `len` distinct values in `0..n`.
fn sample(rng: &mut Rng, n: usize, len: usize) -> Vec<usize> {
    let len = len.min(n);
    let mut seen = std::collections::HashSet::new();
    while seen.len() < len {
        seen.insert(rng.below(n));
    }
    seen.into_iter().collect()
}

/// `m` in the kernels' types.
struct Typed<T, I> {
    indptr: Vec<I>,
    indices: Vec<I>,
    data: Vec<T>,
    rows: usize,
    cols: usize,
}

impl<T: SparseValue, I: SparseIndex> Typed<T, I> {
    fn of(m: &Mat) -> Self {
        Typed {
            indptr: m.indptr.iter().map(|&p| I::from_usize(p)).collect(),
            indices: m.indices.iter().map(|&p| I::from_usize(p)).collect(),
            data: m.data.iter().map(|&v| T::from_f64(v)).collect(),
            rows: m.rows,
            cols: m.cols,
        }
    }
    fn view(&self) -> CsrRef<'_, T, I> {
        CsrRef {
            rows: self.rows,
            cols: self.cols,
            indptr: &self.indptr,
            indices: &self.indices,
            data: &self.data,
        }
    }
}

/// The dense matrix (row-major, `f64`) of CSR arrays in any types, duplicates summed; also
/// the matrix of absolute values.
fn dense_of<T: SparseValue, I: SparseIndex>(a: CsrRef<'_, T, I>) -> (Vec<f64>, Vec<f64>) {
    let mut d = vec![0.0; a.rows * a.cols];
    let mut ab = vec![0.0; a.rows * a.cols];
    for r in 0..a.rows {
        for k in a.indptr[r].to_usize()..a.indptr[r + 1].to_usize() {
            let j = a.indices[k].to_usize();
            d[r * a.cols + j] += a.data[k].to_f64();
            ab[r * a.cols + j] += a.data[k].to_f64().abs();
        }
    }
    (d, ab)
}

/// Dense layouts of test operands.
#[derive(Clone, Copy, Debug)]
enum Lay {
    C,
    F,
    /// C order with rows reversed (negative row stride) and padded rows.
    Neg,
}

/// A buffer and the view parameters `(offset, rs, cs)` for `rows` x `cols` in `lay`, every
/// element `fill`.
fn buffer<T: SparseValue>(
    rows: usize,
    cols: usize,
    lay: Lay,
    fill: T,
) -> (Vec<T>, usize, isize, isize) {
    match lay {
        Lay::C => (vec![fill; rows * cols], 0, cols as isize, 1),
        Lay::F => (vec![fill; rows * cols], 0, 1, rows as isize),
        Lay::Neg => {
            let ld = cols + 3;
            let off = rows.saturating_sub(1) * ld + 1;
            (vec![fill; rows * ld + 1], off, -(ld as isize), 1)
        }
    }
}

fn pos(off: usize, rs: isize, cs: isize, r: usize, c: usize) -> usize {
    (off as isize + r as isize * rs + c as isize * cs) as usize
}

/// A random dense matrix: the typed buffer with its view, and the row-major `f64` values.
fn dense_x<T: SparseValue>(
    rng: &mut Rng,
    rows: usize,
    cols: usize,
    lay: Lay,
) -> ((Vec<T>, usize, isize, isize), Vec<f64>) {
    let (mut b, off, rs, cs) = buffer(rows, cols, lay, T::zero());
    let mut v = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            let x = T::from_f64(rng.val());
            b[pos(off, rs, cs, r, c)] = x;
            v[r * cols + c] = x.to_f64();
        }
    }
    ((b, off, rs, cs), v)
}

fn tol<T>(k: usize) -> f64 {
    if std::mem::size_of::<T>() == 4 {
        2e-6 * (k.max(1) as f64).sqrt() + 1e-6
    } else {
        1e-12
    }
}

/// Asserts `y` (a view) equals `want` (row-major) within `tol * scale + tiny`.
#[allow(clippy::too_many_arguments)]
fn assert_close<T: SparseValue>(
    what: &str,
    y: &[T],
    (off, rs, cs): (usize, isize, isize),
    rows: usize,
    cols: usize,
    want: &[f64],
    scale: &[f64],
    tol: f64,
) {
    for r in 0..rows {
        for c in 0..cols {
            let got = y[pos(off, rs, cs, r, c)].to_f64();
            let w = want[r * cols + c];
            let bound = tol * scale[r * cols + c] + 1e-300;
            assert!(
                (got - w).abs() <= bound || (got == w),
                "{what}: ({r}, {c}) = {got}, expected {w} (bound {bound})"
            );
        }
    }
}

/// Row-major `a * b` (`m` x `k` times `k` x `n`) of values and of absolute values.
fn matmul(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for p in 0..k {
            let av = a[i * k + p];
            if av != 0.0 {
                for j in 0..n {
                    c[i * n + j] += av * b[p * n + j];
                }
            }
        }
    }
    c
}

fn transpose_dense(a: &[f64], m: usize, n: usize) -> Vec<f64> {
    let mut t = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            t[j * m + i] = a[i * n + j];
        }
    }
    t
}

const SHAPES: [(usize, usize); 7] = [
    (37, 23),
    (1, 50),
    (50, 1),
    (0, 5),
    (5, 0),
    (120, 300),
    (2, 2),
];
const KINDS: [Kind; 5] = [
    Kind::Uniform,
    Kind::DenseRow,
    Kind::Empty,
    Kind::Dups,
    Kind::PowerLaw,
];
const LAYS: [Lay; 3] = [Lay::C, Lay::F, Lay::Neg];

fn products<T: SparseValue, I: SparseIndex>(
    seed: u64,
    shapes: &[(usize, usize)],
    kinds: &[Kind],
    ns: &[usize],
) {
    let mut rng = Rng(seed);
    for &(rows, cols) in shapes {
        for &kind in kinds {
            let m = random(&mut rng, rows, cols, kind);
            let t = Typed::<T, I>::of(&m);
            let a = t.view();
            let (ad, aab) = dense_of(a);
            for &n in ns {
                for &transpose in &[false, true] {
                    let (xr, yr) = if transpose {
                        (rows, cols)
                    } else {
                        (cols, rows)
                    };
                    let (op, opab) = if transpose {
                        (
                            transpose_dense(&ad, rows, cols),
                            transpose_dense(&aab, rows, cols),
                        )
                    } else {
                        (ad.clone(), aab.clone())
                    };
                    for &xl in &LAYS {
                        let ((xb, xo, xrs, xcs), xv) = dense_x::<T>(&mut rng, xr, n, xl);
                        let xabs: Vec<f64> = xv.iter().map(|v| v.abs()).collect();
                        let want = matmul(&op, &xv, yr, xr, n);
                        let scale = matmul(&opab, &xabs, yr, xr, n);
                        for &yl in &[Lay::C, Lay::F, Lay::Neg] {
                            let what = format!(
                                "spmm {rows}x{cols} {kind:?} n={n} t={transpose} x {xl:?} y {yl:?}"
                            );
                            let (mut yb, yo, yrs, ycs) = buffer(yr, n, yl, T::from_f64(f64::NAN));
                            let x = DenseRef {
                                data: &xb,
                                offset: xo,
                                rows: xr,
                                cols: n,
                                rs: xrs,
                                cs: xcs,
                            };
                            let y = DenseMut {
                                data: &mut yb,
                                offset: yo,
                                rows: yr,
                                cols: n,
                                rs: yrs,
                                cs: ycs,
                            };
                            spmm(a, transpose, x, y);
                            assert_close(
                                &what,
                                &yb,
                                (yo, yrs, ycs),
                                yr,
                                n,
                                &want,
                                &scale,
                                tol::<T>(xr),
                            );
                            // y = x^T op(A)^T through dense_spmm: (n x xr) times op(A)^T.
                            let what = format!("dense_spmm {what}");
                            let (mut yb, yo, yrs, ycs) = buffer(n, yr, yl, T::from_f64(f64::NAN));
                            let y = DenseMut {
                                data: &mut yb,
                                offset: yo,
                                rows: n,
                                cols: yr,
                                rs: yrs,
                                cs: ycs,
                            };
                            dense_spmm(x.t(), a, !transpose, y);
                            let wt = transpose_dense(&want, yr, n);
                            let st = transpose_dense(&scale, yr, n);
                            assert_close(&what, &yb, (yo, yrs, ycs), n, yr, &wt, &st, tol::<T>(xr));
                        }
                    }
                }
            }
        }
    }
}

fn conversions<T: SparseValue, I: SparseIndex>(seed: u64) {
    let mut rng = Rng(seed);
    for &(rows, cols) in &SHAPES {
        for &kind in &KINDS {
            let m = random(&mut rng, rows, cols, kind);
            let t = Typed::<T, I>::of(&m);
            let a = t.view();
            let chk = check_csr(rows, cols, a.indptr, a.indices, a.data.len()).unwrap();
            let has_dup_or_unsorted = (0..rows).any(|r| {
                m.indices[m.indptr[r]..m.indptr[r + 1]]
                    .windows(2)
                    .any(|w| w[1] <= w[0])
            });
            assert_eq!(chk.sorted, !has_dup_or_unsorted, "{rows}x{cols} {kind:?}");
            let (ad, aab) = dense_of(a);
            let exact = vec![0.0; ad.len()];
            let t4 = tol::<T>(8);
            // canonicalize
            let c = canonicalize(a);
            assert!(
                check_csr(rows, cols, &c.indptr, &c.indices, c.data.len())
                    .unwrap()
                    .sorted
            );
            assert_close(
                "canonicalize",
                &dense_of(c.view()).0,
                (0, cols as isize, 1),
                rows,
                cols,
                &ad,
                &aab,
                t4,
            );
            // transpose (of the canonical form: sorted output)
            let tr = transpose(c.view());
            assert!(
                check_csr(cols, rows, &tr.indptr, &tr.indices, tr.data.len())
                    .unwrap()
                    .sorted
            );
            let adt = transpose_dense(&ad, rows, cols);
            let cdt = transpose_dense(&dense_of(c.view()).0, rows, cols);
            assert_close(
                "transpose",
                &dense_of(tr.view()).0,
                (0, rows as isize, 1),
                cols,
                rows,
                &cdt,
                &exact,
                0.0,
            );
            // transpose of the raw form matches too
            let tr2 = transpose(a);
            assert_close(
                "transpose raw",
                &dense_of(tr2.view()).0,
                (0, rows as isize, 1),
                cols,
                rows,
                &adt,
                &transpose_dense(&aab, rows, cols),
                t4,
            );
            // coo_to_csr from the entries shuffled, into both index types
            let mut coo: Vec<(usize, usize, T)> = (0..rows)
                .flat_map(|r| (m.indptr[r]..m.indptr[r + 1]).map(move |k| (r, k)))
                .map(|(r, k)| (r, m.indices[k], T::from_f64(m.data[k])))
                .collect();
            for i in (1..coo.len()).rev() {
                coo.swap(i, rng.below(i + 1));
            }
            let row: Vec<I> = coo.iter().map(|e| I::from_usize(e.0)).collect();
            let col: Vec<I> = coo.iter().map(|e| I::from_usize(e.1)).collect();
            let val: Vec<T> = coo.iter().map(|e| e.2).collect();
            check_coo(rows, cols, &row, &col, val.len()).unwrap();
            let c32: Csr<T, i32> = coo_to_csr(rows, cols, &row, &col, &val);
            let c64: Csr<T, i64> = coo_to_csr(rows, cols, &row, &col, &val);
            assert!(
                check_csr(rows, cols, &c32.indptr, &c32.indices, c32.data.len())
                    .unwrap()
                    .sorted
            );
            assert_eq!(
                c32.indptr.iter().map(|&p| p as i64).collect::<Vec<_>>(),
                c64.indptr
            );
            assert_close(
                "coo_to_csr",
                &dense_of(c32.view()).0,
                (0, cols as isize, 1),
                rows,
                cols,
                &ad,
                &aab,
                t4,
            );
            assert_close(
                "coo_to_csr i64",
                &dense_of(c64.view()).0,
                (0, cols as isize, 1),
                rows,
                cols,
                &ad,
                &aab,
                t4,
            );
            // to_dense in every layout, over poison
            for &yl in &LAYS {
                let (mut yb, yo, yrs, ycs) = buffer(rows, cols, yl, T::from_f64(f64::NAN));
                to_dense(
                    a,
                    DenseMut {
                        data: &mut yb,
                        offset: yo,
                        rows,
                        cols,
                        rs: yrs,
                        cs: ycs,
                    },
                );
                assert_close("to_dense", &yb, (yo, yrs, ycs), rows, cols, &ad, &aab, t4);
            }
        }
    }
}

fn products_sparse<T: SparseValue, I: SparseIndex>(seed: u64) {
    let mut rng = Rng(seed);
    for &(m, k, n) in &[
        (37, 23, 29),
        (1, 40, 1),
        (0, 3, 4),
        (3, 0, 4),
        (60, 500, 80),
        (300, 200, 300),
    ] {
        for &kind in &KINDS {
            let ma = random(&mut rng, m, k, kind);
            let mb = random(
                &mut rng,
                k,
                n,
                if matches!(kind, Kind::Dups) {
                    Kind::Uniform
                } else {
                    kind
                },
            );
            let (ta, tb) = (Typed::<T, I>::of(&ma), Typed::<T, I>::of(&mb));
            let (a, b) = (ta.view(), tb.view());
            let (ad, aab) = dense_of(a);
            let (bd, bab) = dense_of(b);
            let want = matmul(&ad, &bd, m, k, n);
            let scale = matmul(&aab, &bab, m, k, n);
            let c: Csr<T, I> = product(a, b);
            let chk = check_csr(m, n, &c.indptr, &c.indices, c.data.len()).unwrap();
            assert!(chk.sorted, "spgemm rows sorted {m}x{k}x{n} {kind:?}");
            assert_close(
                "spgemm",
                &dense_of(c.view()).0,
                (0, n as isize, 1),
                m,
                n,
                &want,
                &scale,
                tol::<T>(k),
            );
            // A A^T
            let at = transpose(a);
            let c: Csr<T, i64> = product(a, at.view());
            let want = matmul(&ad, &transpose_dense(&ad, m, k), m, k, m);
            let scale = matmul(&aab, &transpose_dense(&aab, m, k), m, k, m);
            assert_close(
                "spgemm A A^T",
                &dense_of(c.view()).0,
                (0, m as isize, 1),
                m,
                m,
                &want,
                &scale,
                tol::<T>(k),
            );
        }
    }
    // Cancellation keeps an explicit zero.
    let a = Typed::<T, I>::of(&Mat {
        rows: 1,
        cols: 2,
        indptr: vec![0, 2],
        indices: vec![0, 1],
        data: vec![1.0, 1.0],
    });
    let b = Typed::<T, I>::of(&Mat {
        rows: 2,
        cols: 1,
        indptr: vec![0, 1, 2],
        indices: vec![0, 0],
        data: vec![2.0, -2.0],
    });
    let c: Csr<T, I> = product(a.view(), b.view());
    assert_eq!(c.indptr.len(), 2);
    assert_eq!(c.indices.len(), 1);
    assert_eq!(c.data[0].to_f64(), 0.0);
}

#[test]
fn conversions_all_types() {
    conversions::<f32, i32>(1);
    conversions::<f64, i64>(2);
    conversions::<f32, i64>(3);
    conversions::<f64, i32>(4);
}

#[test]
fn spmm_small_all_types() {
    let ns = [1, 3, 17, 64];
    products::<f32, i32>(5, &SHAPES, &KINDS, &ns);
    products::<f64, i64>(6, &SHAPES, &KINDS, &ns);
    products::<f32, i64>(7, &SHAPES[..3], &KINDS, &ns[..2]);
    products::<f64, i32>(8, &SHAPES[..3], &KINDS, &ns[..2]);
}

#[test]
fn spmm_parallel_paths() {
    // Large enough to split over threads; the dense row of 20000 exceeds a thread's share in
    // SpMV (summed apart).
    products::<f32, i32>(9, &[(3000, 20000)], &[Kind::DenseRow], &[1, 3]);
    products::<f64, i64>(
        10,
        &[(2500, 900)],
        &[Kind::PowerLaw, Kind::Uniform],
        &[1, 17],
    );
}

#[test]
fn spgemm_all_types() {
    products_sparse::<f32, i32>(11);
    products_sparse::<f64, i64>(12);
    products_sparse::<f64, i32>(13);
}

#[test]
fn spgemm_result_narrowed_to_int32() {
    let mut rng = Rng(15);
    let m = random(&mut rng, 300, 200, Kind::Uniform);
    let m2 = random(&mut rng, 200, 250, Kind::Uniform);
    let (t, t2) = (Typed::<f64, i64>::of(&m), Typed::<f64, i64>::of(&m2));
    let wide = product::<f64, i64, i64>(t.view(), t2.view());
    assert!(!wide.data.is_empty());
    let narrow = wide.clone().with_index::<i32>();
    assert_eq!(narrow.rows, wide.rows);
    assert_eq!(narrow.cols, wide.cols);
    assert_eq!(narrow.data, wide.data);
    let back = |v: &[i32]| v.iter().map(|&i| i as i64).collect::<Vec<_>>();
    assert_eq!(back(&narrow.indptr), wide.indptr);
    assert_eq!(back(&narrow.indices), wide.indices);
}

#[test]
fn conversions_parallel() {
    let mut rng = Rng(14);
    let m = random(&mut rng, 20000, 3000, Kind::Dups);
    let t = Typed::<f64, i64>::of(&m);
    let c = canonicalize(t.view());
    assert!(
        check_csr(c.rows, c.cols, &c.indptr, &c.indices, c.data.len())
            .unwrap()
            .sorted
    );
    let (d, _) = dense_of(t.view());
    assert_eq!(
        dense_of(c.view())
            .0
            .iter()
            .zip(&d)
            .filter(|(a, b)| (*a - *b).abs() > 1e-12)
            .count(),
        0
    );
    let u = random(&mut rng, 20000, 3000, Kind::Uniform);
    let tu = Typed::<f32, i32>::of(&u);
    let chk = check_csr(u.rows, u.cols, &tu.indptr, &tu.indices, tu.data.len()).unwrap();
    assert!(chk.sorted);
    let mut bad = tu.indices.clone();
    let k = bad.len() - 5;
    bad[k] = 3000;
    assert_eq!(
        check_csr(u.rows, u.cols, &tu.indptr, &bad, bad.len()).unwrap_err(),
        format!("indices[{k}] = 3000 is out of range for 3000 columns")
    );
    let mut p = tu.indptr.clone();
    p[15000] = p[14999] - 1;
    let e = check_csr(u.rows, u.cols, &p, &tu.indices, tu.data.len()).unwrap_err();
    assert!(
        e.starts_with("indptr[15000] = ") && e.contains(" is less than indptr[14999] = "),
        "{e}"
    );
    let mut rows: Vec<i32> = (0..100000).map(|i| i % 7).collect();
    rows[70001] = -3;
    let cols = vec![0i32; 100000];
    assert_eq!(
        check_coo(7, 1, &rows, &cols, 100000).unwrap_err(),
        "row[70001] = -3 is out of range for 7 rows"
    );
}

#[test]
fn check_messages() {
    let ip = [0i32, 2, 3];
    let ix = [0i32, 2, 1];
    assert_eq!(check_csr(2, 3, &ip, &ix, 3), Ok(CsrCheck { sorted: true }));
    assert_eq!(
        check_csr(2, 3, &[0i32, 2, 3], &[2i32, 0, 1], 3),
        Ok(CsrCheck { sorted: false })
    );
    assert_eq!(
        check_csr(2, 3, &[0i32, 2, 3], &[1i32, 1, 1], 3),
        Ok(CsrCheck { sorted: false })
    );
    assert_eq!(
        check_csr(0, 3, &[0i64], &[], 0),
        Ok(CsrCheck { sorted: true })
    );
    assert_eq!(
        check_csr(3, 3, &ip, &ix, 3).unwrap_err(),
        "indptr has 3 entries, expected rows + 1 = 4"
    );
    assert_eq!(
        check_csr(0, 3, &[] as &[i32], &[], 0).unwrap_err(),
        "indptr has 0 entries, expected rows + 1 = 1"
    );
    assert_eq!(
        check_csr(2, 3, &[1i32, 2, 3], &ix, 3).unwrap_err(),
        "indptr[0] = 1, expected 0"
    );
    assert_eq!(
        check_csr(3, 3, &[0i64, 2, 1, 3], &[0i64, 1, 2], 3).unwrap_err(),
        "indptr[2] = 1 is less than indptr[1] = 2"
    );
    assert_eq!(
        check_csr(2, 3, &[0i32, 2, 4], &ix, 3).unwrap_err(),
        "indptr[2] = 4 (the last entry) differs from the 3 column indices"
    );
    assert_eq!(
        check_csr(2, 3, &ip, &ix, 2).unwrap_err(),
        "indices has 3 entries but data has 2"
    );
    assert_eq!(
        check_csr(2, 3, &ip, &[0i32, 3, 1], 3).unwrap_err(),
        "indices[1] = 3 is out of range for 3 columns"
    );
    assert_eq!(
        check_csr(2, 3, &ip, &[0i32, 1, -1], 3).unwrap_err(),
        "indices[2] = -1 is out of range for 3 columns"
    );
    assert_eq!(check_coo(2, 3, &[0i32, 1], &[0i32, 2], 2), Ok(()));
    assert_eq!(
        check_coo(2, 3, &[0i32], &[0i32, 2], 2).unwrap_err(),
        "row has 1 entries, expected nnz = 2"
    );
    assert_eq!(
        check_coo(2, 3, &[0i32, 1], &[0i32], 2).unwrap_err(),
        "col has 1 entries, expected nnz = 2"
    );
    assert_eq!(
        check_coo(2, 3, &[0i64, 2], &[0i64, 0], 2).unwrap_err(),
        "row[1] = 2 is out of range for 2 rows"
    );
    assert_eq!(
        check_coo(2, 3, &[0i64, 1], &[-1i64, 9], 2).unwrap_err(),
        "col[0] = -1 is out of range for 3 columns"
    );
}

/// `A B` with its flops counted first.
fn product<T: SparseValue, I: SparseIndex, O: SparseIndex>(
    a: CsrRef<'_, T, I>,
    b: CsrRef<'_, T, I>,
) -> Csr<T, O> {
    spgemm(a, b, &spgemm_flops(a, b))
}
