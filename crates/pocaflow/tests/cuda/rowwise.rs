//! The row-wise ops of `pf.nn` on CUDA (softmax, log-softmax, layer and RMS norm, forward and
//! backward) against naive float64 references computed here from the operands' rounded values:
//! every float dtype, row lengths through each kernel variant (lane groups of a warp, blocks,
//! the largest register-resident rows and the long-row kernel just past them), rows whose start
//! is not 16-byte aligned (views at an offset of one element), with and without weight and bias,
//! values near 1000 for softmax, and a NaN in a row.

use super::{gpu, Rng};
use pocaflow::nn;
use pocaflow::{DType, Device, Tensor};

const FLOATS: [DType; 4] = [DType::F16, DType::BF16, DType::F32, DType::F64];

/// Row lengths around every variant's capacity: the lane groups (32 to 1024), the blocks
/// (2048 to 32768), the largest register-resident rows (32768 forward, 16384 backward, 8192 for
/// float64) and one past each, and a row for the long-row kernel.
const LENGTHS: [usize; 19] = [
    1, 3, 4, 31, 32, 33, 64, 200, 256, 1000, 1024, 4096, 4097, 8193, 16384, 16385, 32768, 32769,
    70000,
];

/// `(relative, absolute)` tolerance of a dtype: the absolute part is scaled by the largest
/// magnitude of the row's reference values (outputs round once from float32 for half types).
fn tolerance(dtype: DType) -> (f64, f64) {
    match dtype {
        DType::F16 => (2e-3, 2e-3),
        DType::BF16 => (1.6e-2, 1.6e-2),
        DType::F32 => (3e-5, 3e-5),
        _ => (1e-11, 1e-11),
    }
}

/// Rows per length: enough to fill partial groups of rows in a block, fewer for long rows.
fn rows_for(n: usize) -> usize {
    if n <= 1024 {
        37
    } else if n <= 8193 {
        5
    } else {
        2
    }
}

/// A `(rows, n)` CUDA array of `dtype` from `v` (`rows * n` values), dense at offset 0 or, when
/// `shifted`, a view at an offset of one element into a bigger array.
fn rows_on(dev: Device, v: &[f64], shape: &[usize], dtype: DType, shifted: bool) -> Tensor {
    let numel: usize = shape.iter().product();
    let off = usize::from(shifted);
    let mut all = vec![0.5; numel + off];
    all[off..].copy_from_slice(v);
    let base = Tensor::from_vec(all, &[numel + off])
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
        .to_device(&dev)
        .unwrap();
    let strides: Vec<isize> = match shape.len() {
        1 => vec![1],
        _ => vec![shape[1] as isize, 1],
    };
    base.as_strided(shape, &strides, off).unwrap()
}

/// A tensor's values in C order, as f64.
fn flat(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .to_ndarray::<f64>()
        .unwrap()
        .iter()
        .copied()
        .collect()
}

/// A reference value and the magnitude of the terms it comes from (the scale of the rounding
/// errors of computing it: differences of large terms cancel).
type Want = [f64; 2];

/// The smallest step of `dtype` near 0 (float16's subnormals round results to 2^-24).
fn tiny(dtype: DType) -> f64 {
    if dtype == DType::F16 {
        2f64.powi(-24)
    } else {
        0.0
    }
}

/// Asserts `got` matches `want` within `dtype`'s tolerance (relative to the value, absolute
/// in units of the terms' magnitude), NaN where and only where the reference is NaN.
fn check(got: &[f64], want: &[Want], n: usize, dtype: DType, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let (rtol, atol) = tolerance(dtype);
    for (k, (&g, &[w, mag])) in got.iter().zip(want).enumerate() {
        let ok = if w.is_nan() {
            g.is_nan()
        } else {
            (g - w).abs() <= rtol * w.abs() + atol * mag + tiny(dtype)
        };
        assert!(
            ok,
            "{what}: row {} element {}: got {g}, want {w}",
            k / n,
            k % n
        );
    }
}

/// The largest of a row, NaN skipped (it reaches the results through the sums).
fn row_max(x: &[f64]) -> f64 {
    x.iter()
        .fold(f64::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

fn softmax_ref(x: &[f64], log: bool) -> Vec<Want> {
    let m = row_max(x);
    let s: f64 = x.iter().map(|v| (v - m).exp()).sum();
    x.iter()
        .map(|v| {
            if log {
                [v - m - s.ln(), (v - m).abs() + s.ln().abs()]
            } else {
                let y = (v - m).exp() / s;
                [y, y.abs()]
            }
        })
        .collect()
}

fn softmax_backward_ref(dy: &[f64], y: &[f64], log: bool) -> Vec<Want> {
    if log {
        let s: f64 = dy.iter().sum();
        let sa: f64 = dy.iter().map(|d| d.abs()).sum();
        dy.iter()
            .zip(y)
            .map(|(d, y)| [d - y.exp() * s, d.abs() + y.exp() * sa])
            .collect()
    } else {
        let dot: f64 = dy.iter().zip(y).map(|(d, y)| d * y).sum();
        let da: f64 = dy.iter().zip(y).map(|(d, y)| (d * y).abs()).sum();
        dy.iter()
            .zip(y)
            .map(|(d, y)| [y * (d - dot), y.abs() * (d.abs() + da)])
            .collect()
    }
}

/// `(mean, rstd)` of a row: the mean is 0 for RMS norm.
fn norm_stats(x: &[f64], centered: bool, eps: f64) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = if centered {
        x.iter().sum::<f64>() / n
    } else {
        0.0
    };
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

fn norm_ref(
    x: &[f64],
    w: Option<&[f64]>,
    b: Option<&[f64]>,
    centered: bool,
    eps: f64,
) -> Vec<Want> {
    let (mean, rstd) = norm_stats(x, centered, eps);
    (0..x.len())
        .map(|i| {
            let (wi, bi) = (w.map_or(1.0, |w| w[i]), b.map_or(0.0, |b| b[i]));
            let xa = (x[i].abs() + mean.abs()) * rstd * wi.abs();
            [(x[i] - mean) * rstd * wi + bi, xa + bi.abs()]
        })
        .collect()
}

fn norm_backward_ref(
    dy: &[f64],
    x: &[f64],
    w: Option<&[f64]>,
    centered: bool,
    eps: f64,
) -> Vec<Want> {
    let n = x.len() as f64;
    let (mean, rstd) = norm_stats(x, centered, eps);
    let xhat: Vec<f64> = x.iter().map(|v| (v - mean) * rstd).collect();
    let g: Vec<f64> = (0..x.len())
        .map(|i| dy[i] * w.map_or(1.0, |w| w[i]))
        .collect();
    let mean_of = |f: &dyn Fn(usize) -> f64| (0..x.len()).map(f).sum::<f64>() / n;
    let (mean_g, mean_ga) = if centered {
        (mean_of(&|i| g[i]), mean_of(&|i| g[i].abs()))
    } else {
        (0.0, 0.0)
    };
    let mean_gx = mean_of(&|i| g[i] * xhat[i]);
    let mean_gxa = mean_of(&|i| (g[i] * xhat[i]).abs());
    (0..x.len())
        .map(|i| {
            [
                rstd * (g[i] - mean_g - xhat[i] * mean_gx),
                rstd * (g[i].abs() + mean_ga + (x[i].abs() + mean.abs()) * rstd * mean_gxa),
            ]
        })
        .collect()
}

/// `rows * n` values uniform in `center ± spread`, a NaN at element `nan` if given.
fn draw(rng: &mut Rng, count: usize, center: f64, spread: f64, nan: Option<usize>) -> Vec<f64> {
    let mut v: Vec<f64> = (0..count)
        .map(|_| center + spread * rng.uniform())
        .collect();
    if let Some(i) = nan {
        v[i] = f64::NAN;
    }
    v
}

/// Maps `f` over the rows of `v` (rows of `n`), concatenated.
fn per_row<T>(v: &[f64], n: usize, f: impl Fn(usize, &[f64]) -> Vec<T>) -> Vec<T> {
    v.chunks(n).enumerate().flat_map(|(r, x)| f(r, x)).collect()
}

/// The row cases of one dtype: `(n, shifted, center, nan)`; every length dense and shifted,
/// plus rows near 1000 and a row with a NaN at a few lengths.
fn cases() -> Vec<(usize, bool, f64, Option<usize>)> {
    let mut out = Vec::new();
    for n in LENGTHS {
        out.push((n, false, 0.0, None));
        out.push((n, true, 0.0, None));
    }
    for n in [3, 33, 1000, 4096, 70000] {
        out.push((n, false, 1000.0, None));
        out.push((n, n % 2 == 1, 0.0, Some(n / 2)));
    }
    out
}

#[test]
fn softmax_and_log_softmax_forward_and_backward_against_float64() {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(41);
    for dtype in FLOATS {
        for (n, shifted, center, nan) in cases() {
            let rows = rows_for(n);
            let shape = [rows, n];
            let what = |op: &str| {
                format!("{op} {dtype} ({rows}, {n}) shifted {shifted} center {center} nan {nan:?}")
            };
            let x = rows_on(
                dev,
                &draw(&mut rng, rows * n, center, 4.0, nan),
                &shape,
                dtype,
                shifted,
            );
            let xv = flat(&x);
            for log in [false, true] {
                let name = if log { "log_softmax" } else { "softmax" };
                let y = if log {
                    nn::log_softmax(&x, -1)
                } else {
                    nn::softmax(&x, -1)
                }
                .unwrap();
                let want = per_row(&xv, n, |_, r| softmax_ref(r, log));
                check(&flat(&y), &want, n, dtype, &what(name));
                if center != 0.0 {
                    assert!(
                        flat(&y).iter().all(|v| v.is_finite()),
                        "{}: not finite",
                        what(name)
                    );
                }
                // The backward op from the forward output of finite rows, dy with the NaN.
                let yv = per_row(&draw(&mut rng, rows * n, 0.0, 4.0, None), n, |_, r| {
                    softmax_ref(r, log).into_iter().map(|[v, _]| v).collect()
                });
                let y = rows_on(dev, &yv, &shape, dtype, shifted);
                let dy = rows_on(
                    dev,
                    &draw(&mut rng, rows * n, 0.0, 1.0, nan),
                    &shape,
                    dtype,
                    shifted,
                );
                let (yv, dyv) = (flat(&y), flat(&dy));
                let dx = if log {
                    nn::log_softmax_backward(&dy, &y, -1)
                } else {
                    nn::softmax_backward(&dy, &y, -1)
                }
                .unwrap();
                let want = per_row(&dyv, n, |r, d| {
                    softmax_backward_ref(d, &yv[r * n..(r + 1) * n], log)
                });
                check(
                    &flat(&dx),
                    &want,
                    n,
                    dtype,
                    &what(&format!("{name}_backward")),
                );
            }
        }
    }
}

/// The weight and bias of a norm case: none, weight only, bias only, both (by `k`).
fn params(
    dev: Device,
    rng: &mut Rng,
    n: usize,
    dtype: DType,
    shifted: bool,
    k: usize,
) -> [Option<Tensor>; 2] {
    let mut one =
        |on: bool| on.then(|| rows_on(dev, &draw(rng, n, 1.0, 0.5, None), &[n], dtype, shifted));
    [one(k & 1 == 1), one(k & 2 == 2)]
}

#[test]
fn layer_and_rms_norm_forward_and_backward_against_float64() {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(42);
    let eps = 1e-5;
    for dtype in FLOATS {
        for (k, (n, shifted, center, nan)) in cases().into_iter().enumerate() {
            let rows = rows_for(n);
            let shape = [rows, n];
            let what = |op: &str| {
                format!(
                    "{op} {dtype} ({rows}, {n}) shifted {shifted} nan {nan:?} params {}",
                    k % 4
                )
            };
            let x = rows_on(
                dev,
                &draw(&mut rng, rows * n, center / 4.0, 3.0, nan),
                &shape,
                dtype,
                shifted,
            );
            let dy = rows_on(
                dev,
                &draw(&mut rng, rows * n, 0.0, 1.0, None),
                &shape,
                dtype,
                shifted,
            );
            let [w, b] = params(dev, &mut rng, n, dtype, shifted, k % 4);
            let (xv, dyv) = (flat(&x), flat(&dy));
            let (wv, bv) = (w.as_ref().map(flat), b.as_ref().map(flat));
            let (wr, br) = (wv.as_deref(), bv.as_deref());
            for centered in [true, false] {
                let name = if centered { "layer_norm" } else { "rms_norm" };
                let y = if centered {
                    nn::layer_norm(&x, &[n], w.as_ref(), b.as_ref(), eps)
                } else {
                    nn::rms_norm(&x, &[n], w.as_ref(), eps)
                }
                .unwrap();
                let bias = if centered { br } else { None };
                let want = per_row(&xv, n, |_, r| norm_ref(r, wr, bias, centered, eps));
                check(&flat(&y), &want, n, dtype, &what(name));
                let (dx, dw) = if centered {
                    let (dx, dw, _) =
                        nn::layer_norm_backward(&dy, &x, &[n], w.as_ref(), b.as_ref(), eps)
                            .unwrap();
                    (dx, dw)
                } else {
                    nn::rms_norm_backward(&dy, &x, &[n], w.as_ref(), eps).unwrap()
                };
                let want = per_row(&dyv, n, |r, d| {
                    norm_backward_ref(d, &xv[r * n..(r + 1) * n], wr, centered, eps)
                });
                check(
                    &flat(&dx),
                    &want,
                    n,
                    dtype,
                    &what(&format!("{name}_backward")),
                );
                // dweight = Σ_rows dy xhat, from the statistics the kernel wrote (computed by
                // elementwise ops in the dtype: four times the tolerance, relative to Σ |terms|).
                if let Some(dw) = dw {
                    let (mut want, mut mag) = (vec![0.0; n], vec![0.0; n]);
                    for (d, r) in dyv.chunks(n).zip(xv.chunks(n)) {
                        let (mean, rstd) = norm_stats(r, centered, eps);
                        for i in 0..n {
                            let t = d[i] * (r[i] - mean) * rstd;
                            want[i] += t;
                            mag[i] += t.abs();
                        }
                    }
                    let (rtol, atol) = tolerance(dtype);
                    for (i, g) in flat(&dw).into_iter().enumerate() {
                        let (w, m) = (want[i], mag[i]);
                        let ok = if w.is_nan() {
                            g.is_nan()
                        } else {
                            (g - w).abs() <= 4.0 * (rtol * w.abs() + atol * m)
                        };
                        assert!(
                            ok,
                            "{} element {i}: got {g}, want {w}",
                            what(&format!("{name}_backward dweight"))
                        );
                    }
                }
            }
        }
    }
}
