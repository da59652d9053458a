//! `nn::linear` and `nn::linear_backward` on every usable device against a naive float64
//! reference (the triple loop plus the activation in f64), and a finite-difference check of
//! the gradients.

mod common;

use common::{devices, eps, naive, on, values, Rng};
use ndarray::{Array1, Array2, ArrayD, Axis, IxDyn};
use pocaflow::nn::{linear, linear_backward, Activation};
use pocaflow::{DType, Device, Error, Tensor};

const ACTS: [Option<Activation>; 4] = [
    None,
    Some(Activation::Relu),
    Some(Activation::Gelu),
    Some(Activation::GeluTanh),
];

fn act_f64(act: Option<Activation>, z: f64) -> f64 {
    match act {
        None => z,
        Some(Activation::Relu) => z.max(0.0),
        Some(Activation::Gelu) => 0.5 * z * libm::erfc(-z / std::f64::consts::SQRT_2),
        Some(Activation::GeluTanh) => {
            let u = (2.0 / std::f64::consts::PI).sqrt() * (z + 0.044715 * z * z * z);
            0.5 * z * (1.0 + u.tanh())
        }
    }
}

fn act_grad_f64(act: Option<Activation>, z: f64) -> f64 {
    match act {
        None => 1.0,
        Some(Activation::Relu) => f64::from(u8::from(z > 0.0)),
        Some(Activation::Gelu) => {
            let cdf = 0.5 * libm::erfc(-z / std::f64::consts::SQRT_2);
            let pdf = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
            cdf + z * pdf
        }
        Some(Activation::GeluTanh) => {
            let c = (2.0 / std::f64::consts::PI).sqrt();
            let t = (c * (z + 0.044715 * z * z * z)).tanh();
            0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * z * z)
        }
    }
}

/// The pre-activation `z = x W^T + b` as a `(rows, out)` matrix.
fn pre_activation(x: &ArrayD<f64>, w: &Array2<f64>, b: Option<&Array1<f64>>) -> Array2<f64> {
    let rows = x.shape()[..x.ndim() - 1].iter().product::<usize>();
    let x2 =
        Array2::from_shape_vec((rows, w.ncols()), x.iter().copied().collect::<Vec<f64>>()).unwrap();
    let mut z = naive(x2.view(), w.t());
    if let Some(b) = b {
        z += &b.view().insert_axis(Axis(0));
    }
    z
}

fn reference(
    x: &ArrayD<f64>,
    w: &Array2<f64>,
    b: Option<&Array1<f64>>,
    act: Option<Activation>,
) -> ArrayD<f64> {
    let z = pre_activation(x, w, b);
    let mut shape = x.shape()[..x.ndim() - 1].to_vec();
    shape.push(w.nrows());
    z.mapv(|v| act_f64(act, v))
        .into_shape_with_order(IxDyn(&shape))
        .unwrap()
}

/// `(dx, dw, db)` in f64, the activation's derivative taken at `z_at` when given (the device's
/// own pre-activation: a half-precision z that rounds across 0 flips relu's mask, which no
/// tolerance of the products covers), else at the exact z.
fn reference_backward(
    dy: &ArrayD<f64>,
    x: &ArrayD<f64>,
    w: &Array2<f64>,
    b: Option<&Array1<f64>>,
    act: Option<Activation>,
    z_at: Option<Array2<f64>>,
) -> (ArrayD<f64>, Array2<f64>, Array1<f64>) {
    let z = z_at.unwrap_or_else(|| pre_activation(x, w, b));
    let dy2 = Array2::from_shape_vec(z.dim(), dy.iter().copied().collect()).unwrap();
    let dz = &dy2 * &z.mapv(|v| act_grad_f64(act, v));
    let rows = z.nrows();
    let x2 = Array2::from_shape_vec((rows, w.ncols()), x.iter().copied().collect()).unwrap();
    let dx = naive(dz.view(), w.view())
        .into_shape_with_order(IxDyn(x.shape()))
        .unwrap();
    let dw = naive(dz.t(), x2.view());
    let db = dz.sum_axis(Axis(0));
    (dx, dw, db)
}

/// `|got - want| <= tol(want)` elementwise.
fn check(got: &ArrayD<f64>, want: &ArrayD<f64>, tol: impl Fn(f64) -> f64, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for ((idx, &g), &w) in got.indexed_iter().zip(want.iter()) {
        assert!(
            (g - w).abs() <= tol(w),
            "{what}: at {idx:?} got {g}, want {w} (tolerance {})",
            tol(w)
        );
    }
}

/// The tolerance of a result of `dtype` that sums `k` products of magnitude at most 1. The
/// half types round their inputs (the reference is computed from the rounded inputs), compute
/// in f32 and round their results (and, in the backward pass, `z` and `dz`) to 8 or 11 bits.
fn tolerance(dtype: DType, k: usize) -> impl Fn(f64) -> f64 {
    let (unit, round) = match dtype {
        DType::BF16 => (f32::EPSILON as f64, 2f64.powi(-7)),
        DType::F16 => (f32::EPSILON as f64, 2f64.powi(-9)),
        d => (eps(d), 0.0),
    };
    let accumulate = 4.0 * (k as f64 + 1.0) * unit;
    let spread = (k as f64 + 1.0).sqrt();
    move |w: f64| accumulate * (1.0 + w.abs()) + round * (w.abs() + spread)
}

fn dtypes(device: Device) -> Vec<DType> {
    match device {
        Device::Cpu => vec![DType::F32, DType::F64],
        Device::Cuda(_) => vec![DType::F32, DType::F64, DType::F16, DType::BF16],
    }
}

#[test]
fn forward_matches_the_reference() {
    let mut rng = Rng::new(7);
    for device in devices() {
        for dtype in dtypes(device) {
            for (lead, inf, out) in [
                (vec![], 17, 3),
                (vec![5], 3, 17),
                (vec![1], 65, 1),
                (vec![3, 17], 65, 65),
                (vec![2, 1, 3], 1, 17),
                (vec![0], 17, 3),
                (vec![4, 0], 3, 5),
                (vec![130], 96, 70),
                (vec![3], 0, 4),
            ] {
                let mut xs = lead.clone();
                xs.push(inf);
                let x = on(device, &rng.array(&xs), dtype);
                let w = on(device, &rng.array(&[out, inf]), dtype);
                let b = on(device, &rng.array(&[out]), dtype);
                // The reference from the inputs as the dtype holds them.
                let (xv, wv, bv) = (values(&x), values(&w), values(&b));
                let wv = wv.into_dimensionality().unwrap();
                let bv = bv.into_dimensionality().unwrap();
                for act in ACTS {
                    for with_bias in [false, true] {
                        let bias = with_bias.then_some(&b);
                        let got = values(&linear(&x, &w, bias, act).unwrap());
                        let want = reference(&xv, &wv, with_bias.then_some(&bv), act);
                        let what =
                            format!("{device} {dtype} x {xs:?} out {out} bias {with_bias} {act:?}");
                        check(&got, &want, tolerance(dtype, inf), &what);
                    }
                }
            }
        }
    }
}

#[test]
fn large_products_apply_the_epilogue_once() {
    // k above the CPU's KC block (two k-panels), several threads, edge tiles in both
    // directions: the blocked path's epilogue must see each tile once, after its last panel.
    let mut rng = Rng::new(5);
    let (rows, inf, out) = (301, 600, 257);
    for device in devices() {
        for dtype in [DType::F32, DType::F64] {
            let x = on(device, &rng.array(&[rows, inf]), dtype);
            let w = on(device, &rng.array(&[out, inf]), dtype);
            let b = on(device, &rng.array(&[out]), dtype);
            let xv = values(&x);
            let wv: Array2<f64> = values(&w).into_dimensionality().unwrap();
            let bv: Array1<f64> = values(&b).into_dimensionality().unwrap();
            let z = pre_activation(&xv, &wv, Some(&bv)).into_dyn();
            for act in ACTS {
                let got = values(&linear(&x, &w, Some(&b), act).unwrap());
                let want = z.mapv(|v| act_f64(act, v));
                let what = format!("{device} {dtype} {rows}x{inf}x{out} {act:?}");
                check(&got, &want, tolerance(dtype, inf), &what);
            }
        }
    }
}

#[test]
fn non_contiguous_operands() {
    let mut rng = Rng::new(11);
    for device in devices() {
        for dtype in [DType::F32, DType::F64] {
            let (rows, inf, out) = (9, 17, 5);
            // x as the transpose of an (in, rows) array; weight as the transpose of (in, out);
            // a stepped bias and a stepped, offset weight.
            let xt = on(device, &rng.array(&[inf, rows]), dtype);
            let x = xt.t();
            let wt = on(device, &rng.array(&[inf, out]), dtype);
            let w = wt.t();
            let wide = on(device, &rng.array(&[out, 2 * inf + 1]), dtype);
            let w_stepped = wide
                .as_strided(&[out, inf], &[2 * inf as isize + 1, 2], 1)
                .unwrap();
            let bwide = on(device, &rng.array(&[2 * out]), dtype);
            let b = bwide.as_strided(&[out], &[2], 1).unwrap();
            let x3 = on(device, &rng.array(&[3, rows, 2 * inf]), dtype);
            let x3 = x3
                .as_strided(
                    &[3, rows, inf],
                    &[(rows * 2 * inf) as isize, 2 * inf as isize, 1],
                    inf,
                )
                .unwrap();
            for (xx, ww) in [(&x, &w), (&x, &w_stepped), (&x3, &w), (&x3, &w_stepped)] {
                let (xv, wv, bv) = (values(xx), values(ww), values(&b));
                let wv: Array2<f64> = wv.into_dimensionality().unwrap();
                let bv: Array1<f64> = bv.into_dimensionality().unwrap();
                for act in ACTS {
                    let got = values(&linear(xx, ww, Some(&b), act).unwrap());
                    let want = reference(&xv, &wv, Some(&bv), act);
                    let what = format!("{device} {dtype} strided x {:?} {act:?}", xx.shape());
                    check(&got, &want, tolerance(dtype, inf), &what);
                    let dy = on(device, &rng.array(got.shape()), dtype);
                    let (dx, dw, db) = linear_backward(&dy, xx, ww, Some(&b), act).unwrap();
                    let (rdx, rdw, rdb) =
                        reference_backward(&values(&dy), &xv, &wv, Some(&bv), act, None);
                    let m = xv.len() / inf;
                    check(
                        &values(&dx),
                        &rdx,
                        tolerance(dtype, out),
                        &format!("{what} dx"),
                    );
                    check(
                        &values(&dw),
                        &rdw.into_dyn(),
                        tolerance(dtype, m),
                        &format!("{what} dw"),
                    );
                    check(
                        &values(&db.unwrap()),
                        &rdb.into_dyn(),
                        tolerance(dtype, m),
                        &format!("{what} db"),
                    );
                }
            }
        }
    }
}

#[test]
fn backward_matches_the_reference() {
    let mut rng = Rng::new(13);
    for device in devices() {
        for dtype in dtypes(device) {
            for (lead, inf, out) in [
                (vec![], 17, 3),
                (vec![5], 3, 17),
                (vec![3, 17], 65, 65),
                (vec![2, 1, 3], 1, 17),
                (vec![0], 17, 3),
                (vec![2, 0], 3, 5),
                (vec![130], 96, 70),
            ] {
                let mut xs = lead.clone();
                xs.push(inf);
                let mut ys = lead.clone();
                ys.push(out);
                let x = on(device, &rng.array(&xs), dtype);
                let w = on(device, &rng.array(&[out, inf]), dtype);
                let b = on(device, &rng.array(&[out]), dtype);
                let dy = on(device, &rng.array(&ys), dtype);
                let (xv, dyv) = (values(&x), values(&dy));
                let wv: Array2<f64> = values(&w).into_dimensionality().unwrap();
                let bv: Array1<f64> = values(&b).into_dimensionality().unwrap();
                let m = xv.len() / inf;
                for act in ACTS {
                    for with_bias in [false, true] {
                        let bias = with_bias.then_some(&b);
                        let (dx, dw, db) = linear_backward(&dy, &x, &w, bias, act).unwrap();
                        let half = matches!(dtype, DType::F16 | DType::BF16);
                        let z_at = (half && act == Some(Activation::Relu)).then(|| {
                            let z = values(&linear(&x, &w, bias, None).unwrap());
                            let rows = z.len() / out;
                            Array2::from_shape_vec((rows, out), z.iter().copied().collect())
                                .unwrap()
                        });
                        let (rdx, rdw, rdb) =
                            reference_backward(&dyv, &xv, &wv, with_bias.then_some(&bv), act, z_at);
                        let what =
                            format!("{device} {dtype} x {xs:?} out {out} bias {with_bias} {act:?}");
                        assert_eq!(dx.dtype(), dtype);
                        // With an activation, dz carries the rounding of z (k = in).
                        let kz = if act.is_some() { inf } else { 0 };
                        check(
                            &values(&dx),
                            &rdx,
                            tolerance(dtype, out * (kz + 1)),
                            &format!("{what} dx"),
                        );
                        check(
                            &values(&dw),
                            &rdw.into_dyn(),
                            tolerance(dtype, m * (kz + 1)),
                            &format!("{what} dw"),
                        );
                        match (db, with_bias) {
                            (Some(db), true) => check(
                                &values(&db),
                                &rdb.into_dyn(),
                                tolerance(dtype, m * (kz + 1)),
                                &format!("{what} db"),
                            ),
                            (None, false) => {}
                            (db, _) => panic!("{what}: dbias {db:?}"),
                        }
                    }
                }
            }
        }
    }
}

/// `Σ linear(x, w, b) * g` in f64 on the CPU.
fn loss(
    x: &ArrayD<f64>,
    w: &ArrayD<f64>,
    b: &ArrayD<f64>,
    g: &ArrayD<f64>,
    act: Option<Activation>,
) -> f64 {
    let t = |a: &ArrayD<f64>| Tensor::from_ndarray(a, &Device::Cpu).unwrap();
    let y = values(&linear(&t(x), &t(w), Some(&t(b)), act).unwrap());
    (&y * g).sum()
}

#[test]
fn gradients_match_finite_differences() {
    let mut rng = Rng::new(17);
    let (x, w, b) = (rng.array(&[2, 3, 4]), rng.array(&[5, 4]), rng.array(&[5]));
    let g = rng.array(&[2, 3, 5]);
    let t = |a: &ArrayD<f64>| Tensor::from_ndarray(a, &Device::Cpu).unwrap();
    for act in ACTS {
        let (dx, dw, db) = linear_backward(&t(&g), &t(&x), &t(&w), Some(&t(&b)), act).unwrap();
        let grads = [values(&dx), values(&dw), values(&db.unwrap())];
        let h = 1e-6;
        for (which, grad) in grads.iter().enumerate() {
            let base = [&x, &w, &b][which];
            for (idx, &analytic) in grad.indexed_iter() {
                let at = |delta: f64| {
                    let mut p = [x.clone(), w.clone(), b.clone()];
                    p[which][&idx] += delta;
                    loss(&p[0], &p[1], &p[2], &g, act)
                };
                let fd = (at(h) - at(-h)) / (2.0 * h);
                assert!(
                    (fd - analytic).abs() <= 1e-6 * (1.0 + analytic.abs()),
                    "{act:?} operand {which} at {idx:?}: finite difference {fd}, analytic \
                     {analytic} (value {})",
                    base[&idx]
                );
            }
        }
    }
}

fn shape_error(r: pocaflow::Result<Tensor>) -> String {
    match r {
        Err(Error::Shape(m)) => m,
        other => panic!("expected a shape error, got {other:?}"),
    }
}

#[test]
fn bad_inputs_name_the_problem() {
    let d = Device::Cpu;
    let z = |s: &[usize], dt: DType| Tensor::zeros(s, dt, &d).unwrap();
    let x = z(&[4, 5], DType::F32);
    let m = shape_error(linear(&x, &z(&[3, 6], DType::F32), None, None));
    assert!(
        m.contains("(4, 5)") && m.contains("(3, 6)") && m.contains("(out, 5)"),
        "{m}"
    );
    let m = shape_error(linear(
        &x,
        &z(&[3, 5], DType::F32),
        Some(&z(&[4], DType::F32)),
        None,
    ));
    assert!(
        m.contains("bias") && m.contains("(4,)") && m.contains("(3,)"),
        "{m}"
    );
    let m = shape_error(linear(
        &x,
        &z(&[3, 5], DType::F32),
        Some(&z(&[1, 3], DType::F32)),
        None,
    ));
    assert!(m.contains("bias"), "{m}");
    let m = shape_error(linear(&x, &z(&[15], DType::F32), None, None));
    assert!(m.contains("2-D"), "{m}");
    let m = shape_error(linear(
        &z(&[], DType::F32),
        &z(&[3, 5], DType::F32),
        None,
        None,
    ));
    assert!(m.contains("x has shape ()"), "{m}");
    let r = linear_backward(
        &z(&[4, 4], DType::F32),
        &x,
        &z(&[3, 5], DType::F32),
        None,
        None,
    );
    assert!(
        matches!(r, Err(Error::Shape(ref m)) if m.contains("dy")),
        "{r:?}"
    );
    for (xd, wd) in [
        (DType::I32, DType::I32),
        (DType::F32, DType::F64),
        (DType::F16, DType::BF16),
    ] {
        let r = linear(&z(&[4, 5], xd), &z(&[3, 5], wd), None, None);
        assert!(matches!(r, Err(Error::DType(_))), "{xd} {wd}: {r:?}");
    }
    // The half types run on every device (float32 arithmetic, rounded once).
    for dt in [DType::F16, DType::BF16] {
        let r = linear(&z(&[4, 5], dt), &z(&[3, 5], dt), Some(&z(&[3], dt)), None);
        assert!(
            matches!(r, Ok(ref t) if t.dtype() == dt && t.shape() == [4, 3]),
            "{r:?}"
        );
    }
    let r = linear(
        &x,
        &z(&[3, 5], DType::F32),
        Some(&z(&[3], DType::I64)),
        None,
    );
    assert!(matches!(r, Err(Error::DType(_))), "{r:?}");
    let on_gpu = devices().into_iter().find(|d| *d != Device::Cpu);
    if let Some(gpu) = on_gpu {
        let w = Tensor::zeros(&[3, 5], DType::F32, &gpu).unwrap();
        let r = linear(&x, &w, None, None);
        assert!(matches!(r, Err(Error::Device(_))), "{r:?}");
        let b = Tensor::zeros(&[3], DType::F32, &gpu).unwrap();
        let r = linear(&x, &z(&[3, 5], DType::F32), Some(&b), None);
        assert!(matches!(r, Err(Error::Device(_))), "{r:?}");
    }
}

#[test]
fn activation_names_round_trip() {
    for &a in Activation::ALL {
        assert_eq!(Activation::from_name(a.name()), Some(a));
    }
    assert_eq!(
        Activation::from_name("gelu_tanh"),
        Some(Activation::GeluTanh)
    );
    assert_eq!(Activation::from_name("tanh"), None);
}
