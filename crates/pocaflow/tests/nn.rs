//! `pocaflow::nn` on every usable device against plain float64 loops: softmax, log-softmax,
//! layer and RMS norm (forward and backward), activations and cross-entropy, for row lengths
//! around the vector widths and a long row, float32 and float64, and the errors.

mod common;

use common::{devices, on, values, Rng};
use ndarray::{ArrayD, IxDyn};
use pocaflow::nn::{self, GeluApproximate, Reduction};
use pocaflow::{DType, Device, Error, Tensor};

/// Row lengths: 1, odd, the 16-lane width and around it, a long odd row.
const LENGTHS: [usize; 6] = [1, 3, 15, 16, 33, 4097];

fn random(rng: &mut Rng, shape: &[usize], scale: f64) -> ArrayD<f64> {
    rng.array(shape).mapv(|u| (u - 0.5) * 2.0 * scale)
}

/// `|got - want| <= tol * max(|want|, scale)` everywhere.
fn close(got: &Tensor, want: &ArrayD<f64>, tol: f64, scale: f64, what: &str) {
    let g = values(got);
    assert_eq!(g.shape(), want.shape(), "{what}: shape");
    for ((i, &a), &b) in g.indexed_iter().zip(want.iter()) {
        let bound = tol * b.abs().max(scale);
        assert!(
            (a - b).abs() <= bound,
            "{what}: at {i:?} got {a}, want {b} (bound {bound})"
        );
    }
}

fn tol(d: DType) -> f64 {
    if d == DType::F32 {
        64.0 * f32::EPSILON as f64
    } else {
        64.0 * f64::EPSILON
    }
}

/// The rows of a `(rows, n)` array as vectors.
fn rows(a: &ArrayD<f64>) -> Vec<Vec<f64>> {
    a.outer_iter()
        .map(|r| r.iter().copied().collect())
        .collect()
}

fn from_rows(r: &[Vec<f64>]) -> ArrayD<f64> {
    let n = r.first().map_or(0, Vec::len);
    ArrayD::from_shape_vec(IxDyn(&[r.len(), n]), r.concat()).unwrap()
}

fn softmax_row(x: &[f64]) -> Vec<f64> {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

fn norm_row(x: &[f64], centered: bool, eps: f64) -> (Vec<f64>, f64, f64) {
    let n = x.len() as f64;
    let mean = if centered {
        x.iter().sum::<f64>() / n
    } else {
        0.0
    };
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let rstd = 1.0 / (var + eps).sqrt();
    (x.iter().map(|v| (v - mean) * rstd).collect(), mean, rstd)
}

#[test]
fn softmax_and_log_softmax_match_the_loop() {
    let mut rng = Rng::new(1);
    for dev in devices() {
        for dtype in [DType::F32, DType::F64] {
            for n in LENGTHS {
                let x = random(&mut rng, &[4, n], 8.0);
                let t = on(dev, &x, dtype);
                let sm: Vec<Vec<f64>> = rows(&x).iter().map(|r| softmax_row(r)).collect();
                let what = format!("softmax {dev} {dtype} n={n}");
                close(
                    &nn::softmax(&t, -1).unwrap(),
                    &from_rows(&sm),
                    tol(dtype),
                    1e-30,
                    &what,
                );
                let ls: Vec<Vec<f64>> = sm
                    .iter()
                    .map(|r| r.iter().map(|v| v.ln()).collect())
                    .collect();
                let scale = 20.0 + (n as f64).ln();
                let got = nn::log_softmax(&t, 1).unwrap();
                close(&got, &from_rows(&ls), tol(dtype), scale, &what);
                // Backward: dx = y (dy - Σ dy y) and dx = dy - e^y Σ dy.
                let dy = random(&mut rng, &[4, n], 1.0);
                let y = values(&nn::softmax(&t, -1).unwrap());
                let want: Vec<Vec<f64>> = rows(&y)
                    .iter()
                    .zip(rows(&dy))
                    .map(|(y, d)| {
                        let dot: f64 = y.iter().zip(&d).map(|(a, b)| a * b).sum();
                        y.iter().zip(&d).map(|(y, d)| y * (d - dot)).collect()
                    })
                    .collect();
                let got = nn::softmax_backward(&on(dev, &dy, dtype), &on(dev, &y, dtype), -1);
                close(&got.unwrap(), &from_rows(&want), tol(dtype), 1.0, &what);
            }
        }
    }
}

#[test]
fn softmax_of_large_values_is_finite_and_other_axes_work() {
    for dev in devices() {
        let x = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1000.0, 999.0, 998.0, -5.0, 0.0, 5.0])
            .unwrap();
        let got = values(&nn::softmax(&on(dev, &x, DType::F32), -1).unwrap());
        assert!(got.iter().all(|v| v.is_finite()), "{dev}: {got:?}");
        let axis0 = values(&nn::softmax(&on(dev, &x, DType::F64), 0).unwrap());
        for j in 0..3 {
            let col = softmax_row(&[x[[0, j]], x[[1, j]]]);
            assert!(
                (axis0[[0, j]] - col[0]).abs() < 1e-15 && (axis0[[1, j]] - col[1]).abs() < 1e-15
            );
        }
        // A transposed (non-contiguous) input.
        let t = on(dev, &x, DType::F64).t();
        let got = values(&nn::softmax(&t, -1).unwrap());
        assert!((got[[0, 0]] - axis0[[0, 0]]).abs() < 1e-15);
    }
}

#[test]
fn norms_forward_and_backward_match_the_loop() {
    let mut rng = Rng::new(2);
    for dev in devices() {
        for dtype in [DType::F32, DType::F64] {
            for n in LENGTHS {
                let x = random(&mut rng, &[3, n], 2.0).mapv(|v| v + 1.0);
                let w = random(&mut rng, &[n], 1.0);
                let b = random(&mut rng, &[n], 1.0);
                let dy = random(&mut rng, &[3, n], 1.0);
                let (xt, wt, bt, dyt) = (
                    on(dev, &x, dtype),
                    on(dev, &w, dtype),
                    on(dev, &b, dtype),
                    on(dev, &dy, dtype),
                );
                for centered in [true, false] {
                    let eps = if centered { 1e-5 } else { 1e-6 };
                    let what = format!(
                        "{} {dev} {dtype} n={n}",
                        if centered { "layer_norm" } else { "rms_norm" }
                    );
                    let mut y = Vec::new();
                    let mut dx = Vec::new();
                    let mut dw = vec![0.0; n];
                    // dx cancels (to 0 exactly for n = 1): its error scales with its terms.
                    let mut terms = 0.0f64;
                    for (r, d) in rows(&x).iter().zip(rows(&dy)) {
                        let (xhat, _, rstd) = norm_row(r, centered, eps);
                        y.push(
                            (0..n)
                                .map(|i| xhat[i] * w[i] + if centered { b[i] } else { 0.0 })
                                .collect::<Vec<_>>(),
                        );
                        let g: Vec<f64> = (0..n).map(|i| d[i] * w[i]).collect();
                        terms = g.iter().fold(terms, |a, v| a.max((rstd * v).abs()));
                        let mg = if centered {
                            g.iter().sum::<f64>() / n as f64
                        } else {
                            0.0
                        };
                        let mgx = (0..n).map(|i| g[i] * xhat[i]).sum::<f64>() / n as f64;
                        dx.push(
                            (0..n)
                                .map(|i| rstd * (g[i] - mg - xhat[i] * mgx))
                                .collect::<Vec<_>>(),
                        );
                        for i in 0..n {
                            dw[i] += d[i] * xhat[i];
                        }
                    }
                    let (got, (gdx, gdw)) = if centered {
                        let got = nn::layer_norm(&xt, &[n], Some(&wt), Some(&bt), eps).unwrap();
                        let (gdx, gdw, gdb) =
                            nn::layer_norm_backward(&dyt, &xt, &[n], Some(&wt), Some(&bt), eps)
                                .unwrap();
                        let db: Vec<f64> =
                            (0..n).map(|i| (0..3).map(|r| dy[[r, i]]).sum()).collect();
                        let db = ArrayD::from_shape_vec(IxDyn(&[n]), db).unwrap();
                        close(&gdb.unwrap(), &db, tol(dtype), 4.0, &what);
                        (got, (gdx, gdw))
                    } else {
                        let got = nn::rms_norm(&xt, &[n], Some(&wt), eps).unwrap();
                        (
                            got,
                            nn::rms_norm_backward(&dyt, &xt, &[n], Some(&wt), eps).unwrap(),
                        )
                    };
                    close(&got, &from_rows(&y), tol(dtype), 8.0, &what);
                    let gscale = 16.0 * terms;
                    close(&gdx, &from_rows(&dx), tol(dtype), gscale, &what);
                    let dw = ArrayD::from_shape_vec(IxDyn(&[n]), dw).unwrap();
                    close(&gdw.unwrap(), &dw, tol(dtype), 8.0, &what);
                }
            }
        }
    }
}

#[test]
fn activations_and_their_gradients() {
    let mut rng = Rng::new(3);
    for dev in devices() {
        let x = random(&mut rng, &[7, 9], 6.0);
        let dy = random(&mut rng, &[7, 9], 1.0);
        let (xt, dyt) = (on(dev, &x, DType::F64), on(dev, &dy, DType::F64));
        // libm's erfc (correctly rounded to about 1 ulp) as the reference distribution function.
        let phi = |v: f64| 0.5 * libm::erfc(-v / 2f64.sqrt());
        let want = x.mapv(|v| v * phi(v));
        close(
            &nn::gelu(&xt, GeluApproximate::None).unwrap(),
            &want,
            1e-14,
            1.0,
            "gelu",
        );
        let want = x.mapv(|v| v.max(0.0));
        close(&nn::relu(&xt).unwrap(), &want, 0.0, 1.0, "relu");
        let want = x.mapv(|v| 1.0 / (1.0 + (-v).exp()));
        close(&nn::sigmoid(&xt).unwrap(), &want, 1e-15, 1.0, "sigmoid");
        let h = 1e-6;
        for (name, approx) in [
            ("gelu", GeluApproximate::None),
            ("gelu_tanh", GeluApproximate::Tanh),
        ] {
            let up = values(&nn::gelu(&on(dev, &x.mapv(|v| v + h), DType::F64), approx).unwrap());
            let down = values(&nn::gelu(&on(dev, &x.mapv(|v| v - h), DType::F64), approx).unwrap());
            let fd = (&up - &down).mapv(|v| v / (2.0 * h)) * &dy;
            let got = nn::gelu_backward(&dyt, &xt, approx).unwrap();
            close(&got, &fd, 1e-7, 1.0, name);
        }
        let got = values(
            &nn::relu_backward(&dyt, &on(dev, &ArrayD::zeros(IxDyn(&[7, 9])), DType::F64)).unwrap(),
        );
        assert!(got.iter().all(|&v| v == 0.0), "relu'(0) = 0");
    }
}

#[test]
fn cross_entropy_matches_the_loop_and_checks_targets() {
    let mut rng = Rng::new(4);
    for dev in devices() {
        for dtype in [DType::F32, DType::F64] {
            let logits = random(&mut rng, &[6, 5], 4.0);
            let target: Vec<i64> = (0..6).map(|_| rng.below(5) as i64).collect();
            let lt = on(dev, &logits, dtype);
            let tt = Tensor::from_vec(target.clone(), &[6])
                .unwrap()
                .to_device(&dev)
                .unwrap();
            let mut losses = Vec::new();
            let mut grad = Vec::new();
            for (r, &t) in rows(&logits).iter().zip(&target) {
                let p = softmax_row(r);
                losses.push(-p[t as usize].ln());
                grad.push(
                    (0..5)
                        .map(|j| (p[j] - if j as i64 == t { 1.0 } else { 0.0 }) / 6.0)
                        .collect::<Vec<_>>(),
                );
            }
            let mean = losses.iter().sum::<f64>() / 6.0;
            let got = nn::cross_entropy(&lt, &tt, Reduction::Mean).unwrap();
            assert_eq!(got.shape(), &[] as &[usize]);
            close(
                &got,
                &ArrayD::from_elem(IxDyn(&[]), mean),
                tol(dtype),
                1.0,
                "cross_entropy",
            );
            let none = nn::cross_entropy(&lt, &tt, Reduction::None).unwrap();
            close(
                &none,
                &ArrayD::from_shape_vec(IxDyn(&[6]), losses).unwrap(),
                tol(dtype),
                1.0,
                "none",
            );
            let g = nn::cross_entropy_backward(&lt, &tt, Reduction::Mean).unwrap();
            close(
                &g,
                &from_rows(&grad),
                tol(dtype),
                1.0,
                "cross_entropy_backward",
            );
            for bad in [5i64, -1] {
                let mut t = target.clone();
                t[2] = bad;
                let tt = Tensor::from_vec(t, &[6]).unwrap().to_device(&dev).unwrap();
                for r in [
                    nn::cross_entropy(&lt, &tt, Reduction::Sum),
                    nn::cross_entropy_backward(&lt, &tt, Reduction::Sum),
                ] {
                    assert!(
                        matches!(r, Err(Error::Index(ref m)) if m.contains("[0, 5)")),
                        "{dev} target {bad}: {r:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn bad_input_names_the_problem() {
    let dev = Device::Cpu;
    let x = Tensor::zeros(&[4, 5], DType::F32, &dev).unwrap();
    let w = Tensor::zeros(&[4], DType::F32, &dev).unwrap();
    let e = nn::layer_norm(&x, &[5], Some(&w), None, 1e-5).unwrap_err();
    assert!(
        matches!(&e, Error::Shape(m) if m.contains("(4,)") && m.contains("(5,)")),
        "{e}"
    );
    let e = nn::layer_norm(&x, &[4], None, None, 1e-5).unwrap_err();
    assert!(matches!(&e, Error::Shape(m) if m.contains("(4, 5)")), "{e}");
    let i = Tensor::zeros(&[4, 5], DType::I32, &dev).unwrap();
    assert!(matches!(nn::softmax(&i, -1), Err(Error::DType(_))));
    let dy = Tensor::zeros(&[5, 4], DType::F32, &dev).unwrap();
    let e = nn::relu_backward(&dy, &x).unwrap_err();
    assert!(
        matches!(&e, Error::Shape(m) if m.contains("(5, 4)") && m.contains("(4, 5)")),
        "{e}"
    );
    let t = Tensor::zeros(&[3], DType::I64, &dev).unwrap();
    let e = nn::cross_entropy(&x, &t, Reduction::Mean).unwrap_err();
    assert!(
        matches!(&e, Error::Shape(m) if m.contains("(4,)") && m.contains("(3,)")),
        "{e}"
    );
}
