//! `Tensor` matmul through the dispatch point, against a naive triple loop: batch broadcasting,
//! 1-D operands, strided views, dtype promotion, `out=` (fresh, strided, aliasing), errors.

mod common;

use common::{assert_close, eps, on, reference, values, Rng};
use ndarray::{ArrayD, Ix2, IxDyn};
use pocaflow::{ops, DType, Device, Error, Tensor};

#[test]
fn batched_broadcast_and_vector_operands() {
    let mut rng = Rng::new(7);
    let cases: &[(&[usize], &[usize])] = &[
        (&[5], &[5]),
        (&[5], &[5, 3]),
        (&[4, 5], &[5]),
        (&[5], &[2, 5, 3]),
        (&[2, 4, 5], &[5]),
        (&[3, 1, 4, 5], &[2, 5, 6]),
        (&[1, 4, 5], &[7, 5, 6]),
        (&[2, 3, 33, 17], &[17, 40]),
        (&[0, 4, 5], &[5, 6]),
        (&[4, 0], &[0, 6]),
        (&[64, 20, 30], &[64, 30, 10]),
    ];
    // float16/bfloat16 compute in float32 and round once: within the same bound in their eps.
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        for &(sa, sb) in cases {
            let (a, b) = (rng.array(sa), rng.array(sb));
            let (ta, tb) = (on(Device::Cpu, &a, dtype), on(Device::Cpu, &b, dtype));
            let (a, b) = (values(&ta), values(&tb));
            let c = ta.matmul(&tb).unwrap();
            assert_eq!(c.dtype(), dtype);
            assert!(c.layout().is_c_contiguous());
            assert_close(
                &values(&c),
                &reference(&a, &b),
                a.shape()[a.ndim() - 1],
                eps(dtype),
                &format!("{sa:?}@{sb:?}"),
            );
        }
    }
}

#[test]
fn strided_views_permutes_and_reversed_storage() {
    let mut rng = Rng::new(8);
    let base = on(Device::Cpu, &rng.array(&[6, 50, 40]), DType::F64);
    // A batch of transposed matrices, every other batch, reversed rows.
    let a = base.permute(&[0, 2, 1]).unwrap(); // (6, 40, 50): F-order matrices
    assert!(a.layout().strides()[1] == 1);
    // Every other batch, with the rows reversed (a negative stride).
    let b = base
        .as_strided(&[3, 50, 40], &[4000, -40, 1], 49 * 40)
        .unwrap();
    // Every other batch of `a`'s transposed matrices.
    let a3 = base.as_strided(&[3, 40, 50], &[4000, 1, 40], 0).unwrap();
    let c = a3.matmul(&b).unwrap();
    assert_eq!(c.shape(), &[3, 40, 40]);
    let (av, bv) = (values(&a3), values(&b));
    assert_close(
        &values(&c),
        &reference(&av, &bv),
        50,
        f64::EPSILON,
        "strided",
    );
}

#[test]
fn promotion_and_fortran_output() {
    let mut rng = Rng::new(9);
    let a32 = on(Device::Cpu, &rng.array(&[30, 20]), DType::F32);
    let b64 = on(Device::Cpu, &rng.array(&[20, 10]), DType::F64);
    let c = a32.matmul(&b64).unwrap();
    assert_eq!(c.dtype(), DType::F64);
    assert_close(
        &values(&c),
        &reference(&values(&a32), &values(&b64)),
        20,
        f64::EPSILON,
        "promote",
    );
    let f = a32.t().contiguous().unwrap().t(); // F-order 30x20
    let g = on(Device::Cpu, &rng.array(&[10, 20]), DType::F32).t(); // F-order 20x10
    let c = f.matmul(&g).unwrap();
    assert!(c.layout().is_f_contiguous() && !c.layout().is_c_contiguous());
    assert_close(
        &values(&c),
        &reference(&values(&f), &values(&g)),
        20,
        eps(DType::F32),
        "F out",
    );
}

#[test]
fn out_fresh_strided_and_aliasing() {
    let mut rng = Rng::new(10);
    let a = on(Device::Cpu, &rng.array(&[12, 12]), DType::F64);
    let b = on(Device::Cpu, &rng.array(&[12, 12]), DType::F64);
    let want = reference(&values(&a), &values(&b));
    // A poisoned, transposed (strided) out.
    let out = Tensor::from_ndarray(&ArrayD::from_elem(IxDyn(&[12, 12]), f64::NAN), &Device::Cpu)
        .unwrap()
        .t();
    let r = ops::matmul(&a, &b, Some(&out)).unwrap();
    assert!(r.shares_storage_with(&out));
    assert_close(&values(&out), &want, 12, f64::EPSILON, "strided out");
    // out aliasing an operand.
    let a2 = Tensor::from_ndarray(&values(&a), &Device::Cpu).unwrap();
    ops::matmul(&a2, &b, Some(&a2)).unwrap();
    assert_close(&values(&a2), &want, 12, f64::EPSILON, "aliased out");
}

#[test]
fn rejected_inputs_name_the_problem() {
    let t = |s: &[usize], d| Tensor::zeros(s, d, &Device::Cpu).unwrap();
    let msg = |e: Error| e.message().to_owned();
    let e = t(&[2, 3], DType::F32)
        .matmul(&t(&[4, 5], DType::F32))
        .unwrap_err();
    assert!(
        matches!(e, Error::Shape(_))
            && msg(e.clone()).contains("(2, 3)")
            && msg(e).contains("(4, 5)")
    );
    let e = t(&[2, 2, 3], DType::F32)
        .matmul(&t(&[3, 3, 4], DType::F32))
        .unwrap_err();
    assert!(msg(e).contains("broadcast"));
    let e = t(&[], DType::F32).matmul(&t(&[3], DType::F32)).unwrap_err();
    assert!(msg(e).contains("scalar"));
    let e = t(&[2, 2], DType::I32)
        .matmul(&t(&[2, 2], DType::I32))
        .unwrap_err();
    assert!(matches!(e, Error::DType(ref m) if m.contains("int32")));
    let e = ops::matmul(
        &t(&[2, 3], DType::F32),
        &t(&[3, 4], DType::F32),
        Some(&t(&[2, 5], DType::F32)),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Shape(ref m) if m.contains("(2, 5)") && m.contains("(2, 4)")));
    let e = ops::matmul(
        &t(&[2, 3], DType::F32),
        &t(&[3, 4], DType::F32),
        Some(&t(&[2, 4], DType::F64)),
    )
    .unwrap_err();
    assert!(matches!(e, Error::DType(_)));
    let broadcast_out = t(&[4], DType::F32).as_strided(&[2, 4], &[0, 1], 0).unwrap();
    let e = ops::matmul(
        &t(&[2, 3], DType::F32),
        &t(&[3, 4], DType::F32),
        Some(&broadcast_out),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Shape(ref m) if m.contains("overlapping")));
    // Rows that share elements (each starts one after the previous).
    let sliding = t(&[8], DType::F32).as_strided(&[2, 4], &[1, 1], 0).unwrap();
    let e = ops::matmul(
        &t(&[2, 3], DType::F32),
        &t(&[3, 4], DType::F32),
        Some(&sliding),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Shape(ref m) if m.contains("overlapping")));
    assert!(sliding.copy_(&t(&[2, 4], DType::F32)).is_err());
    assert!(t(&[4], DType::F32).as_strided(&[2, 4], &[4, 1], 1).is_err());
}

#[test]
fn round_trips_keep_order_and_values() {
    let mut rng = Rng::new(11);
    let a = rng.array(&[3, 4]).into_dimensionality::<Ix2>().unwrap();
    let f = a.t().as_standard_layout().t().to_owned();
    let tf = Tensor::from_ndarray(&f, &Device::Cpu).unwrap();
    assert!(tf.layout().is_f_contiguous());
    let back = tf.to_ndarray::<f64>().unwrap();
    assert_eq!(back, a.clone().into_dyn());
    assert!(back.t().is_standard_layout());
    assert!(tf.to_ndarray::<f32>().is_err());
    let stepped = a.slice(ndarray::s![..;2, ..;-1]);
    let ts = Tensor::from_ndarray(&stepped, &Device::Cpu).unwrap();
    assert_eq!(
        ts.to_ndarray::<f64>().unwrap(),
        stepped.to_owned().into_dyn()
    );
}

#[test]
fn cuda_device_errors_without_cuda() {
    if let Err(e) = Device::cuda(0) {
        assert!(matches!(e, Error::Device(ref m) if m.contains("CUDA")));
        let e = Tensor::zeros(&[2], DType::F32, &Device::Cuda(0)).unwrap_err();
        assert!(matches!(e, Error::Device(_)));
    }
}

#[test]
fn half_operands_into_a_float32_result() {
    let mut rng = Rng::new(21);
    for dtype in [DType::F16, DType::BF16] {
        for (sa, sb) in [
            (&[33usize, 65][..], &[65usize, 17][..]),
            (&[2, 7, 9], &[9, 5]),
        ] {
            let (ta, tb) = (
                on(Device::Cpu, &rng.array(sa), dtype),
                on(Device::Cpu, &rng.array(sb), dtype),
            );
            let want = reference(&values(&ta), &values(&tb));
            let k = sa[sa.len() - 1];
            let wide = ops::matmul_as(&ta, &tb, DType::F32).unwrap();
            assert_eq!(wide.dtype(), DType::F32);
            // The float32 sums, not rounded to the operands' dtype.
            assert_close(&values(&wide), &want, k, f32::EPSILON as f64, "f32 result");
            let out = on(Device::Cpu, &ArrayD::zeros(IxDyn(want.shape())), DType::F32);
            ops::matmul(&ta, &tb, Some(&out)).unwrap();
            assert_eq!(values(&out), values(&wide));
            let rounded = ta.matmul(&tb).unwrap();
            assert_eq!(rounded.dtype(), dtype);
            assert_ne!(values(&rounded), values(&wide));
        }
        let t = on(Device::Cpu, &rng.array(&[4, 4]), dtype);
        let err = ops::matmul_as(&t, &t, DType::F64).unwrap_err();
        assert!(matches!(err, Error::DType(_)), "{err}");
    }
}
