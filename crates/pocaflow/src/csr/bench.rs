//! Timing of the kernels on a power-law matrix (run with `--ignored --nocapture`).

use super::*;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

#[test]
#[ignore]
fn bench() {
    let mut s = 12345u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let n = 200_000usize;
    let mut heavy = vec![false; n];
    let mut h = 0;
    while h < 200 {
        let r = (next() % n as u64) as usize;
        if !heavy[r] {
            heavy[r] = true;
            h += 1;
        }
    }
    let mut indptr = vec![0i32];
    let mut indices = Vec::new();
    for r in 0..n {
        let len = if heavy[r] {
            6000
        } else {
            (next() % 29) as usize
        };
        let mut row: Vec<i32> = (0..len).map(|_| (next() % n as u64) as i32).collect();
        row.sort_unstable();
        row.dedup();
        indices.extend_from_slice(&row);
        indptr.push(indices.len() as i32);
    }
    let data: Vec<f32> = (0..indices.len())
        .map(|_| (next() % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let a = CsrRef {
        rows: n,
        cols: n,
        indptr: &indptr,
        indices: &indices,
        data: &data,
    };
    let nnz = a.nnz();
    println!("nnz = {nnz}, threads = {}", rayon::current_num_threads());
    let t = time(9, || {
        check_csr(n, n, &indptr, &indices, nnz).unwrap();
    });
    println!("check_csr: {:.2} ms", t * 1e3);
    let x: Vec<f32> = (0..n * 64)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let mut y = vec![0f32; n * 64];
    let t = time(21, || {
        spmm(
            a,
            false,
            DenseRef {
                data: &x[..n],
                offset: 0,
                rows: n,
                cols: 1,
                rs: 1,
                cs: 1,
            },
            DenseMut {
                data: &mut y[..n],
                offset: 0,
                rows: n,
                cols: 1,
                rs: 1,
                cs: 1,
            },
        )
    });
    println!(
        "spmv: {:.3} ms, {:.2} GFLOP/s",
        t * 1e3,
        2.0 * nnz as f64 / t / 1e9
    );
    let t = time(11, || {
        spmm(
            a,
            true,
            DenseRef {
                data: &x[..n],
                offset: 0,
                rows: n,
                cols: 1,
                rs: 1,
                cs: 1,
            },
            DenseMut {
                data: &mut y[..n],
                offset: 0,
                rows: n,
                cols: 1,
                rs: 1,
                cs: 1,
            },
        )
    });
    println!(
        "spmv A^T: {:.3} ms, {:.2} GFLOP/s",
        t * 1e3,
        2.0 * nnz as f64 / t / 1e9
    );
    for (name, rs, cs) in [("C", 64isize, 1isize), ("F", 1, n as isize)] {
        let t = time(7, || {
            spmm(
                a,
                false,
                DenseRef {
                    data: &x,
                    offset: 0,
                    rows: n,
                    cols: 64,
                    rs,
                    cs,
                },
                DenseMut {
                    data: &mut y,
                    offset: 0,
                    rows: n,
                    cols: 64,
                    rs: 64,
                    cs: 1,
                },
            )
        });
        println!(
            "spmm n=64 x {name}: {:.2} ms, {:.2} GFLOP/s",
            t * 1e3,
            2.0 * 64.0 * nnz as f64 / t / 1e9
        );
    }
    let t = time(5, || {
        spmm(
            a,
            true,
            DenseRef {
                data: &x,
                offset: 0,
                rows: n,
                cols: 64,
                rs: 64,
                cs: 1,
            },
            DenseMut {
                data: &mut y,
                offset: 0,
                rows: n,
                cols: 64,
                rs: 64,
                cs: 1,
            },
        )
    });
    println!(
        "spmm A^T n=64 x C: {:.2} ms, {:.2} GFLOP/s",
        t * 1e3,
        2.0 * 64.0 * nnz as f64 / t / 1e9
    );
    let mut at = None;
    let t = time(5, || at = Some(transpose(a)));
    println!("transpose: {:.2} ms", t * 1e3);
    let at = at.unwrap();
    let mut sym = None;
    let t = time(3, || sym = Some(spgemm_symbolic(a, at.view())));
    let sym = sym.unwrap();
    println!("spgemm symbolic: {:.1} ms, nnz(C) = {}", t * 1e3, sym.nnz());
    let t2 = time(3, || {
        let c: Csr<f32, i32> = spgemm_numeric(a, at.view(), &sym);
        std::hint::black_box(c);
    });
    println!(
        "spgemm numeric: {:.1} ms, total {:.1} ms",
        t2 * 1e3,
        (t + t2) * 1e3
    );
}
