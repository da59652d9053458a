//! Elementwise functions and reductions on every compiled device, against references computed
//! independently with `ndarray` (broadcasting arithmetic, folds along axes) or plain loops.

mod common;

use common::{devices, Rng};
use ndarray::{ArrayD, Axis, IxDyn};
use pocaflow::ops::reduce::{all_any, arg_extreme, cumulative, max_min, mean, sum_prod, var};
use pocaflow::ops::{binary, unary, IndexItem, Value};
use pocaflow::{BinaryOp, DType, Device, Error, ReduceOp, Scalar, ScanOp, Tensor, UnaryOp};

fn on(a: &ArrayD<f64>, dtype: DType, device: Device) -> Tensor {
    Tensor::from_ndarray(a, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
        .to_device(&device)
        .unwrap()
}

fn back(t: &Tensor) -> ArrayD<f64> {
    t.to_dtype(DType::F64).unwrap().to_ndarray::<f64>().unwrap()
}

/// `a` rounded to f32 and back.
fn f32_round(a: &ArrayD<f64>) -> ArrayD<f64> {
    a.mapv(|v| f64::from(v as f32))
}

#[test]
fn float32_arithmetic_broadcasts_and_rounds_once() {
    let mut rng = Rng::new(1);
    let shapes: [(&[usize], &[usize]); 5] = [
        (&[3, 1, 5], &[4, 1]),
        (&[7], &[]),
        (&[2, 0, 3], &[1, 3]),
        (&[1], &[6, 1]),
        (&[33, 17], &[17]),
    ];
    for device in devices() {
        for (sa, sb) in shapes {
            let a = f32_round(&rng.array(sa));
            let b = f32_round(&rng.array(sb).mapv(|v| v + 2.0));
            let (ta, tb) = (on(&a, DType::F32, device), on(&b, DType::F32, device));
            type F = fn(f32, f32) -> f32;
            let cases: [(BinaryOp, F); 4] = [
                (BinaryOp::Add, |x, y| x + y),
                (BinaryOp::Subtract, |x, y| x - y),
                (BinaryOp::Multiply, |x, y| x * y),
                (BinaryOp::Divide, |x, y| x / y),
            ];
            for (op, f) in cases {
                let got = back(&binary(op, (&ta).into(), (&tb).into(), None).unwrap());
                // Both operands broadcast to the result's shape, then f in f32 per element.
                let shape = got.shape().to_vec();
                let (ab, bb) = (
                    a.broadcast(IxDyn(&shape)).unwrap(),
                    b.broadcast(IxDyn(&shape)).unwrap(),
                );
                let mut want = ArrayD::<f64>::zeros(IxDyn(&shape));
                ndarray::Zip::from(&mut want)
                    .and(&ab)
                    .and(&bb)
                    .for_each(|w, &x, &y| *w = f64::from(f(x as f32, y as f32)));
                assert_eq!(got, want, "{op:?} {sa:?} {sb:?} on {device}");
            }
        }
    }
}

#[test]
fn strided_operands_and_scalars_on_both_sides() {
    let mut rng = Rng::new(2);
    for device in devices() {
        let a = rng.array(&[6, 5]);
        let ta = on(&a, DType::F64, device);
        // A transposed, negatively strided view: x.T[::-1, ::2].
        let v = ta
            .t()
            .index(&[
                IndexItem::Slice(None, None, Some(-1)),
                IndexItem::Slice(None, None, Some(2)),
            ])
            .unwrap();
        let av = a.t().slice(ndarray::s![..;-1, ..;2]).to_owned().into_dyn();
        let three = Value::Scalar(Scalar::Float(3.0));
        let got = back(&binary(BinaryOp::Subtract, three, (&v).into(), None).unwrap());
        assert_eq!(got, av.mapv(|x| 3.0 - x));
        let got = back(&binary(BinaryOp::Pow, (&v).into(), Scalar::Int(2).into(), None).unwrap());
        assert_eq!(got, av.mapv(|x| x.powf(2.0)));
        let got = back(&unary(UnaryOp::Exp, &v, None).unwrap());
        let want = av.mapv(f64::exp);
        assert!(got
            .iter()
            .zip(&want)
            .all(|(g, w)| (g - w).abs() <= 1e-15 * w.abs()));
    }
}

#[test]
fn integer_semantics_match_numpy() {
    for device in devices() {
        let a = Tensor::from_vec(vec![-7i32, 7, -8, 5, i32::MIN, 3], &[6])
            .unwrap()
            .to_device(&device)
            .unwrap();
        let b = Tensor::from_vec(vec![2i32, -2, 0, 3, -1, 40], &[6])
            .unwrap()
            .to_device(&device)
            .unwrap();
        let run = |op| {
            binary(op, (&a).into(), (&b).into(), None)
                .unwrap()
                .to_ndarray::<i32>()
                .unwrap()
                .into_raw_vec_and_offset()
                .0
        };
        assert_eq!(run(BinaryOp::FloorDivide), [-4, -4, 0, 1, i32::MIN, 0]);
        assert_eq!(run(BinaryOp::Remainder), [1, -1, 0, 2, 0, 3]);
        assert_eq!(run(BinaryOp::BitwiseLeftShift), [-28, 0, -8, 40, 0, 0]);
        assert_eq!(run(BinaryOp::BitwiseRightShift), [-2, 0, -8, 0, -1, 0]);
        assert_eq!(run(BinaryOp::Add), [-5, 5, -8, 8, i32::MAX, 43]);
        let p = binary(BinaryOp::Pow, (&a).into(), Scalar::Int(3).into(), None).unwrap();
        assert_eq!(
            p.to_ndarray::<i32>().unwrap().into_raw_vec_and_offset().0,
            [-343, 343, -512, 125, 0, 27]
        );
        // Integer true division gives float64.
        let d = binary(BinaryOp::Divide, (&a).into(), (&b).into(), None).unwrap();
        assert_eq!(d.dtype(), DType::F64);
    }
}

#[test]
fn bad_operands_are_clear_errors() {
    for device in devices() {
        let a = Tensor::zeros(&[2, 3], DType::F32, &device).unwrap();
        let b = Tensor::zeros(&[4], DType::F32, &device).unwrap();
        match binary(BinaryOp::Add, (&a).into(), (&b).into(), None) {
            Err(Error::Shape(m)) => assert!(m.contains("(2, 3)") && m.contains("(4,)"), "{m}"),
            other => panic!("expected a shape error, got {other:?}"),
        }
        let i = Tensor::zeros(&[2], DType::I32, &device).unwrap();
        assert!(matches!(
            unary(UnaryOp::Exp, &i, None),
            Err(Error::DType(_))
        ));
        assert!(matches!(
            binary(BinaryOp::BitwiseAnd, (&a).into(), (&a).into(), None),
            Err(Error::DType(_))
        ));
        assert!(matches!(
            max_min(
                ReduceOp::Max,
                &b.index(&[IndexItem::Slice(None, Some(0), None)]).unwrap(),
                None,
                false
            ),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            sum_prod(ReduceOp::Sum, &a, Some(&[2]), false, None),
            Err(Error::Axis(_))
        ));
        if device != Device::Cpu {
            let c = Tensor::zeros(&[2, 3], DType::F32, &Device::Cpu).unwrap();
            match binary(BinaryOp::Add, (&a).into(), (&c).into(), None) {
                Err(Error::Device(m)) => assert!(m.contains("cpu") && m.contains("cuda"), "{m}"),
                other => panic!("expected a device error, got {other:?}"),
            }
        }
    }
}

#[test]
fn in_place_and_overlapping_operands() {
    for device in devices() {
        let a = on(
            &ArrayD::from_shape_vec(IxDyn(&[5]), vec![1.0, 2.0, 3.0, 4.0, 5.0]).unwrap(),
            DType::F32,
            device,
        );
        // a += a
        binary(BinaryOp::Add, (&a).into(), (&a).into(), Some(&a)).unwrap();
        assert_eq!(
            back(&a).into_raw_vec_and_offset().0,
            [2.0, 4.0, 6.0, 8.0, 10.0]
        );
        // a += a[::-1] reads a before any write, as NumPy's buffering does.
        let rev = a.index(&[IndexItem::Slice(None, None, Some(-1))]).unwrap();
        binary(BinaryOp::Add, (&a).into(), (&rev).into(), Some(&a)).unwrap();
        assert_eq!(back(&a).into_raw_vec_and_offset().0, [12.0; 5]);
        // a[1:] += a[:-1]
        let a = on(
            &ArrayD::from_shape_vec(IxDyn(&[4]), vec![1.0, 2.0, 3.0, 4.0]).unwrap(),
            DType::F64,
            device,
        );
        let tail = a.index(&[IndexItem::Slice(Some(1), None, None)]).unwrap();
        let head = a.index(&[IndexItem::Slice(None, Some(-1), None)]).unwrap();
        binary(BinaryOp::Add, (&tail).into(), (&head).into(), Some(&tail)).unwrap();
        assert_eq!(back(&a).into_raw_vec_and_offset().0, [1.0, 3.0, 5.0, 7.0]);
    }
}

/// `f` folded along each of `axes` of `a` (in decreasing order so indices stay valid).
fn fold_axes(
    a: &ArrayD<f64>,
    axes: &[usize],
    f: impl Fn(ndarray::ArrayViewD<'_, f64>) -> f64,
) -> ArrayD<f64> {
    let mut keep: Vec<usize> = (0..a.ndim()).filter(|d| !axes.contains(d)).collect();
    keep.extend_from_slice(axes);
    let p = a.view().permuted_axes(keep.clone());
    let kept = a.ndim() - axes.len();
    let out_shape: Vec<usize> = p.shape()[..kept].to_vec();
    let red_shape: Vec<usize> = p.shape()[kept..].to_vec();
    let owned = p.as_standard_layout().to_owned();
    let r: usize = red_shape.iter().product();
    let m: usize = out_shape.iter().product();
    let flat = owned.into_shape_with_order(IxDyn(&[m, r])).unwrap();
    let vals: Vec<f64> = flat
        .axis_iter(Axis(0))
        .map(|row| f(row.into_dyn()))
        .collect();
    ArrayD::from_shape_vec(IxDyn(&out_shape), vals).unwrap()
}

#[test]
fn reductions_over_axes_match_folds() {
    let mut rng = Rng::new(3);
    let axes_cases: [&[usize]; 6] = [&[0], &[1], &[2], &[0, 2], &[0, 1, 2], &[]];
    for device in devices() {
        for shape in [[3usize, 4, 5], [1, 257, 3], [40, 1, 33], [2, 0, 3]] {
            let a = rng.array(&shape);
            let t = on(&a, DType::F64, device);
            // Also a transposed operand (the columns path and strided runs).
            let tt = t.permute(&[2, 1, 0]).unwrap();
            let at = a.view().permuted_axes(vec![2, 1, 0]).to_owned();
            for axes in axes_cases {
                let ax: Vec<isize> = axes.iter().map(|&d| d as isize).collect();
                for (x, ar) in [(&t, &a), (&tt, &at)] {
                    let got = back(&sum_prod(ReduceOp::Sum, x, Some(&ax), false, None).unwrap());
                    let want = fold_axes(ar, axes, |v| v.sum());
                    assert!(
                        got.iter().zip(&want).all(|(g, w)| (g - w).abs() <= 1e-12),
                        "sum over {axes:?} of {shape:?} on {device}"
                    );
                    let got = back(&sum_prod(ReduceOp::Prod, x, Some(&ax), false, None).unwrap());
                    let want = fold_axes(ar, axes, |v| v.product());
                    assert!(got.iter().zip(&want).all(|(g, w)| (g - w).abs() <= 1e-12));
                    let red: usize = axes.iter().map(|&d| ar.shape()[d]).product();
                    if red > 0 {
                        let got = back(&max_min(ReduceOp::Max, x, Some(&ax), false).unwrap());
                        let want =
                            fold_axes(ar, axes, |v| v.fold(f64::NEG_INFINITY, |m, &y| m.max(y)));
                        assert_eq!(got, want, "max over {axes:?} of {shape:?} on {device}");
                        let got = back(&max_min(ReduceOp::Min, x, Some(&ax), false).unwrap());
                        let want = fold_axes(ar, axes, |v| v.fold(f64::INFINITY, |m, &y| m.min(y)));
                        assert_eq!(got, want);
                    }
                }
            }
            let m = back(&mean(&t, Some(&[1]), true).unwrap());
            assert_eq!(m.shape(), &[shape[0], 1, shape[2]]);
        }
    }
}

#[test]
fn float32_sums_are_accurate_on_long_inputs() {
    let mut rng = Rng::new(4);
    let n = 3_000_000;
    let v: Vec<f32> = (0..n).map(|_| (rng.uniform() + 1.5) as f32).collect();
    let exact: f64 = v.iter().map(|&x| f64::from(x)).sum();
    for device in devices() {
        let t = Tensor::from_vec(v.clone(), &[n])
            .unwrap()
            .to_device(&device)
            .unwrap();
        let s = sum_prod(ReduceOp::Sum, &t, None, false, None).unwrap();
        let got = f64::from(s.to_ndarray::<f32>().unwrap()[[]]);
        // Sequential float32 summation is off by ~1e-3 relative here; pairwise by ~1e-7.
        assert!(
            (got - exact).abs() / exact < 4e-7,
            "{got} vs {exact} on {device}"
        );
    }
}

#[test]
fn extremes_indices_and_logical_reductions() {
    for device in devices() {
        let v = vec![1.0, 5.0, f64::NAN, 5.0, f64::NAN, -2.0];
        let t = on(
            &ArrayD::from_shape_vec(IxDyn(&[2, 3]), v).unwrap(),
            DType::F32,
            device,
        );
        let arg = |op, axis| {
            arg_extreme(op, &t, axis, false)
                .unwrap()
                .to_ndarray::<i64>()
                .unwrap()
                .into_raw_vec_and_offset()
                .0
        };
        assert_eq!(arg(ReduceOp::Argmax, None), [2]);
        assert_eq!(arg(ReduceOp::Argmax, Some(1)), [2, 1]);
        assert_eq!(arg(ReduceOp::Argmin, Some(0)), [0, 1, 0]);
        let mx = back(&max_min(ReduceOp::Max, &t, Some(&[0]), false).unwrap());
        assert!(mx[[0]] == 5.0 && mx[[1]].is_nan() && mx[[2]].is_nan());
        let b = Tensor::from_vec(vec![true, false, true, true], &[2, 2])
            .unwrap()
            .to_device(&device)
            .unwrap();
        let all = all_any(ReduceOp::All, &b, Some(&[1]), false).unwrap();
        assert_eq!(
            all.to_ndarray::<bool>()
                .unwrap()
                .into_raw_vec_and_offset()
                .0,
            [false, true]
        );
        let any = all_any(ReduceOp::Any, &b, Some(&[]), false).unwrap();
        assert_eq!(any.shape(), &[2, 2]);
        let i = Tensor::from_vec(vec![250u8, 10, 7], &[3])
            .unwrap()
            .to_device(&device)
            .unwrap();
        let s = sum_prod(ReduceOp::Sum, &i, None, false, None).unwrap();
        assert_eq!(
            (s.dtype(), s.to_ndarray::<u64>().unwrap()[[]]),
            (DType::U64, 267)
        );
        let c = cumulative(ScanOp::Sum, &i, None, None, true).unwrap();
        assert_eq!(
            c.to_ndarray::<u64>().unwrap().into_raw_vec_and_offset().0,
            [0, 250, 260, 267]
        );
        let v = var(
            &t.to_dtype(DType::F64)
                .unwrap()
                .index(&[IndexItem::Int(1)])
                .unwrap(),
            None,
            false,
            1.0,
        )
        .unwrap();
        assert!(back(&v)[[]].is_nan());
        let w = on(
            &ArrayD::from_shape_vec(IxDyn(&[4]), vec![1.0, 2.0, 3.0, 4.0]).unwrap(),
            DType::F64,
            device,
        );
        assert_eq!(back(&var(&w, None, false, 1.0).unwrap())[[]], 5.0 / 3.0);
    }
}
