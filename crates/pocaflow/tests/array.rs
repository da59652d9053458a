//! The array core on every compiled device: views, reshapes, indexing (gather, scatter,
//! masks), casts between all dtypes, creation and random numbers, against naive references.
//! CUDA runs when a GPU is usable (and must be when `POCAFLOW_REQUIRE_CUDA=1`).

mod common;

use common::{devices, Rng};
use ndarray::ArrayD;
use pocaflow::ops::{self, IndexItem};
use pocaflow::plan::{Distribution, RandomSpec};
use pocaflow::{DType, Device, Error, Scalar, Tensor};

fn host_i64(t: &Tensor) -> ArrayD<i64> {
    t.to_dtype(DType::I64).unwrap().to_ndarray::<i64>().unwrap()
}

/// 0..n as an int64 array of `shape` on `device`.
fn iota(shape: &[usize], device: Device) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<i64> = (0..n as i64).collect();
    Tensor::from_vec(v, shape)
        .unwrap()
        .to_device(&device)
        .unwrap()
}

fn ints(v: &[i64], device: Device) -> Tensor {
    Tensor::from_vec(v.to_vec(), &[v.len()])
        .unwrap()
        .to_device(&device)
        .unwrap()
}

#[test]
fn reshapes_are_views_when_strides_allow() {
    for device in devices() {
        let x = iota(&[4, 6], device);
        let r = x.reshape(&[2, -1, 3], None).unwrap();
        assert!(r.shares_storage_with(&x));
        assert_eq!(r.shape(), &[2, 4, 3]);
        let t = x.t();
        let flat = t.reshape(&[-1], None).unwrap();
        assert!(
            !flat.shares_storage_with(&x),
            "a transpose flattens by copy"
        );
        let want: Vec<i64> = (0..6)
            .flat_map(|j| (0..4).map(move |i| i * 6 + j))
            .collect();
        assert_eq!(host_i64(&flat).into_raw_vec_and_offset().0, want);
        assert!(t.reshape(&[24], Some(false)).is_err());
        assert!(x.reshape(&[5, -1], None).is_err());
        assert!(!x
            .reshape(&[24], Some(true))
            .unwrap()
            .shares_storage_with(&x));
    }
}

#[test]
fn writes_through_views_reach_the_base() {
    for device in devices() {
        let x = iota(&[3, 5], device);
        // x[1:, ::-2] = -1
        let v = x
            .index(&[
                IndexItem::Slice(Some(1), None, None),
                IndexItem::Slice(None, None, Some(-2)),
            ])
            .unwrap();
        assert_eq!(v.shape(), &[2, 3]);
        assert!(v.shares_storage_with(&x));
        v.fill_(Scalar::Int(-1)).unwrap();
        let got = host_i64(&x);
        for i in 0..3 {
            for j in 0..5 {
                let want = if i >= 1 && j % 2 == 0 {
                    -1
                } else {
                    (i * 5 + j) as i64
                };
                assert_eq!(got[[i, j]], want, "{device} ({i}, {j})");
            }
        }
        // None, an integer and an ellipsis.
        let y = x
            .index(&[IndexItem::NewAxis, IndexItem::Ellipsis, IndexItem::Int(-1)])
            .unwrap();
        assert_eq!(y.shape(), &[1, 3]);
        assert_eq!(host_i64(&y).into_raw_vec_and_offset().0, vec![4, -1, -1]);
    }
}

#[test]
fn integer_arrays_gather_and_scatter_like_numpy() {
    let mut rng = Rng::new(11);
    for device in devices() {
        let (r, c, d) = (5, 7, 3);
        let x = iota(&[r, c, d], device);
        let rows: Vec<i64> = (0..9)
            .map(|_| rng.below(r) as i64 - r as i64 * (rng.below(2) as i64))
            .collect();
        let cols: Vec<i64> = (0..9).map(|_| rng.below(c) as i64).collect();
        // Adjacent arrays: x[rows, cols] has shape (9, 3).
        let g = x
            .index(&[
                IndexItem::Array(ints(&rows, device)),
                IndexItem::Array(ints(&cols, device)),
            ])
            .unwrap();
        assert_eq!(g.shape(), &[9, d]);
        let got = host_i64(&g);
        for k in 0..9 {
            let i = rows[k].rem_euclid(r as i64) as usize;
            for e in 0..d {
                assert_eq!(got[[k, e]], ((i * c + cols[k] as usize) * d + e) as i64);
            }
        }
        // Separated by a slice: x[rows, :, 0] puts the index dimension first (NumPy's rule).
        let s = x
            .index(&[
                IndexItem::Array(ints(&rows, device)),
                IndexItem::Slice(None, None, None),
                IndexItem::Int(0),
            ])
            .unwrap();
        assert_eq!(s.shape(), &[9, c]);
        let s2 = x
            .index(&[
                IndexItem::Int(0),
                IndexItem::Slice(None, None, None),
                IndexItem::Array(ints(&[2, 0], device)),
            ])
            .unwrap();
        assert_eq!(s2.shape(), &[2, c]);
        assert_eq!(host_i64(&s2)[[1, 3]], (3 * d) as i64);
        // Scatter: x[rows, cols, 1] = 1000 + k (repeated indices: one of the values lands).
        let vals: Vec<i64> = (0..9).map(|k| 1000 + k).collect();
        x.index_put(
            &[
                IndexItem::Array(ints(&rows, device)),
                IndexItem::Array(ints(&cols, device)),
                IndexItem::Int(1),
            ],
            &ints(&vals, device),
        )
        .unwrap();
        let after = host_i64(&x);
        for k in 0..9 {
            let i = rows[k].rem_euclid(r as i64) as usize;
            let v = after[[i, cols[k] as usize, 1]];
            let candidates: Vec<i64> = (0..9)
                .filter(|&q| rows[q].rem_euclid(r as i64) == i as i64 && cols[q] == cols[k])
                .map(|q| 1000 + q as i64)
                .collect();
            assert!(
                candidates.contains(&v),
                "{device}: {v} not in {candidates:?}"
            );
        }
        let e = x
            .index(&[IndexItem::Array(ints(&[5], device))])
            .unwrap_err();
        assert!(
            matches!(e, Error::Index(ref m) if m.contains("index 5 is out of bounds for axis 0 with size 5")),
            "{e}"
        );
        assert!(matches!(
            x.index(&[
                IndexItem::Int(0),
                IndexItem::Int(0),
                IndexItem::Int(0),
                IndexItem::Int(0)
            ]),
            Err(Error::Index(_))
        ));
    }
}

#[test]
fn boolean_masks_select_and_assign() {
    let mut rng = Rng::new(5);
    for device in devices() {
        let shape = [4, 6];
        let data: Vec<f64> = (0..24).map(|_| rng.uniform()).collect();
        let x = Tensor::from_vec(data.clone(), &shape)
            .unwrap()
            .to_device(&device)
            .unwrap();
        let keep: Vec<bool> = data.iter().map(|&v| v > 0.0).collect();
        let mask = Tensor::from_vec(keep.clone(), &shape)
            .unwrap()
            .to_device(&device)
            .unwrap();
        let sel = x.index(&[IndexItem::Array(mask.clone())]).unwrap();
        let want: Vec<f64> = data.iter().copied().filter(|&v| v > 0.0).collect();
        assert_eq!(
            sel.to_ndarray::<f64>().unwrap().into_raw_vec_and_offset().0,
            want
        );
        // A row mask over the first axis with a scalar, then with one value per selected row.
        let rows = Tensor::from_vec(vec![true, false, true, false], &[4])
            .unwrap()
            .to_device(&device)
            .unwrap();
        let minus = ops::full(&[], Scalar::Float(-2.0), DType::F64, &device).unwrap();
        x.index_put(&[IndexItem::Array(rows.clone())], &minus)
            .unwrap();
        let per_row = Tensor::from_vec(vec![10.0, 20.0], &[2, 1])
            .unwrap()
            .to_device(&device)
            .unwrap();
        x.index_put(&[IndexItem::Array(rows)], &per_row).unwrap();
        let got = x.to_ndarray::<f64>().unwrap();
        for i in 0..4 {
            for j in 0..6 {
                let want = match i {
                    0 => 10.0,
                    2 => 20.0,
                    _ => data[i * 6 + j],
                };
                assert_eq!(got[[i, j]], want);
            }
        }
        // x[mask] = scalar writes exactly the masked elements.
        x.index_put(&[IndexItem::Array(mask)], &minus).unwrap();
        let got = x.to_ndarray::<f64>().unwrap();
        for (k, &m) in keep.iter().enumerate() {
            if m {
                assert_eq!(got[[k / 6, k % 6]], -2.0);
            }
        }
        let bad = Tensor::from_vec(vec![true; 5], &[5])
            .unwrap()
            .to_device(&device)
            .unwrap();
        assert!(matches!(
            x.index(&[IndexItem::Array(bad)]),
            Err(Error::Index(_))
        ));
        let nz = mask_nonzero(&device);
        assert_eq!(nz, vec![vec![0, 1, 1], vec![2, 0, 3]]);
    }
}

#[test]
fn masks_between_other_axes_and_values_per_element() {
    for device in devices() {
        // x[:, m] with x of shape (2, 3, 4) and m of shape (3,): shape (2, count, 4).
        let x = iota(&[2, 3, 4], device);
        let m = Tensor::from_vec(vec![true, false, true], &[3])
            .unwrap()
            .to_device(&device)
            .unwrap();
        let g = x
            .index(&[
                IndexItem::Slice(None, None, None),
                IndexItem::Array(m.clone()),
            ])
            .unwrap();
        assert_eq!(g.shape(), &[2, 2, 4]);
        let got = host_i64(&g);
        for (b, (r, j)) in
            (0..2).flat_map(|b| (0..2).flat_map(move |r| (0..4).map(move |j| (b, (r, j)))))
        {
            let row = [0, 2][r];
            assert_eq!(got[[b, r, j]], ((b * 3 + row) * 4 + j) as i64);
        }
        // x[m2] = values, one per true element, in C order; the wrong count is an error.
        let y = iota(&[3, 4], device);
        let m2: Vec<bool> = (0..12).map(|k| k % 3 == 1).collect();
        let m2 = Tensor::from_vec(m2, &[3, 4])
            .unwrap()
            .to_device(&device)
            .unwrap();
        y.index_put(
            &[IndexItem::Array(m2.clone())],
            &ints(&[-1, -2, -3, -4], device),
        )
        .unwrap();
        let want = [0, -1, 2, 3, -2, 5, 6, -3, 8, 9, -4, 11];
        assert_eq!(host_i64(&y).into_raw_vec_and_offset().0, want.to_vec());
        let e = y
            .index_put(&[IndexItem::Array(m2)], &ints(&[1, 2, 3], device))
            .unwrap_err();
        assert!(
            matches!(e, Error::Shape(ref msg) if msg.contains('3') && msg.contains('4')),
            "{e}"
        );
    }
}

#[test]
fn masks_over_many_blocks() {
    let mut rng = Rng::new(9);
    for device in devices() {
        // A transposed view of 70 x 101 (several blocks of every kernel), about 30% true.
        let n = 70 * 101;
        let keep: Vec<bool> = (0..n).map(|_| rng.below(10) < 3).collect();
        let mask = Tensor::from_vec(keep.clone(), &[101, 70])
            .unwrap()
            .to_device(&device)
            .unwrap()
            .t();
        let x = iota(&[70, 101], device);
        let want: Vec<i64> = (0..n)
            .filter(|&k| keep[(k % 101) * 70 + k / 101])
            .map(|k| k as i64)
            .collect();
        let got = x.index(&[IndexItem::Array(mask.clone())]).unwrap();
        assert_eq!(host_i64(&got).into_raw_vec_and_offset().0, want, "{device}");
        let vals: Vec<i64> = (0..want.len() as i64).map(|v| -v - 1).collect();
        x.index_put(&[IndexItem::Array(mask)], &ints(&vals, device))
            .unwrap();
        let after = host_i64(&x).into_raw_vec_and_offset().0;
        let mut r = 0;
        for (k, &v) in after.iter().enumerate() {
            if keep[(k % 101) * 70 + k / 101] {
                assert_eq!(v, vals[r]);
                r += 1;
            } else {
                assert_eq!(v, k as i64);
            }
        }
    }
}

fn mask_nonzero(device: &Device) -> Vec<Vec<i64>> {
    let m = Tensor::from_vec(vec![0u8, 0, 7, 0, 3, 0, 0, 1], &[2, 4])
        .unwrap()
        .to_device(device)
        .unwrap();
    m.nonzero()
        .unwrap()
        .iter()
        .map(|c| host_i64(c).into_raw_vec_and_offset().0)
        .collect()
}

#[test]
fn take_and_take_along_axis() {
    for device in devices() {
        let x = iota(&[3, 4], device);
        let t = x.take(&ints(&[3, 0, -1], device), 1).unwrap();
        assert_eq!(
            host_i64(&t),
            ndarray::array![[3, 0, 3], [7, 4, 7], [11, 8, 11]].into_dyn()
        );
        let idx = Tensor::from_vec(vec![2i64, 0, 1, 3, 0, 0], &[3, 2])
            .unwrap()
            .to_device(&device)
            .unwrap();
        let a = x.take_along_axis(&idx, 1).unwrap();
        assert_eq!(
            host_i64(&a),
            ndarray::array![[2, 0], [5, 7], [8, 8]].into_dyn()
        );
        let idx0 = Tensor::from_vec(vec![2i64, 0, 1, 1], &[1, 4])
            .unwrap()
            .to_device(&device)
            .unwrap();
        let b = x.take_along_axis(&idx0, 0).unwrap();
        assert_eq!(host_i64(&b), ndarray::array![[8, 1, 6, 7]].into_dyn());
        assert!(matches!(
            x.take(&ints(&[4], device), 1),
            Err(Error::Index(_))
        ));
        assert!(matches!(
            x.take(&ints(&[0], device), 2),
            Err(Error::Axis(_))
        ));
    }
}

/// The reference conversion of `v` (given exactly as f64, i128 or bool) to `to`, written
/// independently of the library: C conversions through 128-bit integers.
fn reference_cast(v: f64, to: DType) -> f64 {
    let wrap = |x: i128, bits: u32, signed: bool| -> f64 {
        let m = 1i128 << bits;
        let mut r = x.rem_euclid(m);
        if signed && r >= m / 2 {
            r -= m;
        }
        r as f64
    };
    let int_of = |v: f64| -> i128 {
        if v.is_nan() {
            0
        } else {
            v.trunc().clamp(-9.3e18, 1.8e19) as i128
        }
    };
    match to {
        DType::Bool => f64::from(u8::from(v != 0.0)),
        DType::I8 => wrap(int_of(v), 8, true),
        DType::I16 => wrap(int_of(v), 16, true),
        DType::I32 => wrap(int_of(v), 32, true),
        DType::I64 => wrap(int_of(v), 64, true),
        DType::U8 => wrap(int_of(v), 8, false),
        DType::U16 => wrap(int_of(v), 16, false),
        DType::U32 => wrap(int_of(v), 32, false),
        DType::U64 => wrap(int_of(v), 64, false),
        DType::F16 => f64::from(half::f16::from_f64(v)),
        DType::BF16 => f64::from(half::bf16::from_f64(v)),
        DType::F32 => f64::from(v as f32),
        DType::F64 => v,
    }
}

#[test]
fn casts_between_all_dtypes() {
    // Values every dtype holds exactly (so the source is what it says), chosen to exercise
    // truncation, wrapping and rounding.
    let values = [
        0.0, 1.0, -1.0, 2.5, -2.5, 100.0, 127.0, 200.0, 255.0, 300.0, 65535.0, -129.0, 0.5,
    ];
    for device in devices() {
        for from in DType::ALL {
            // Values an f64 holds exactly once converted (uint64 wraps -1 beyond 2^53).
            let src_vals: Vec<f64> = values
                .iter()
                .map(|&v| reference_cast(v, from))
                .filter(|v| v.abs() < 9.0e15)
                .collect();
            let src = Tensor::from_vec(src_vals.clone(), &[src_vals.len()])
                .unwrap()
                .to_dtype(from)
                .unwrap()
                .to_device(&device)
                .unwrap();
            for to in DType::ALL {
                let got = common::values(&src.to_dtype(to).unwrap());
                for (k, &v) in src_vals.iter().enumerate() {
                    let want = reference_cast(v, to);
                    assert_eq!(
                        got[k].to_bits(),
                        want.to_bits(),
                        "{device}: {v} as {from} -> {to}: got {}, want {want}",
                        got[k]
                    );
                }
            }
        }
    }
}

#[test]
fn creation_functions() {
    for device in devices() {
        let a = ops::arange(
            Scalar::Int(10),
            Scalar::Int(-3),
            Scalar::Int(-4),
            DType::I32,
            &device,
        )
        .unwrap();
        assert_eq!(host_i64(&a).into_raw_vec_and_offset().0, vec![10, 6, 2, -2]);
        let l = ops::linspace(-1.0, 1.0, 5, true, DType::F32, &device).unwrap();
        assert_eq!(
            common::values(&l).into_raw_vec_and_offset().0,
            vec![-1.0, -0.5, 0.0, 0.5, 1.0]
        );
        let l = ops::linspace(0.0, 1.0, 4, false, DType::F64, &device).unwrap();
        assert_eq!(
            common::values(&l).into_raw_vec_and_offset().0,
            vec![0.0, 0.25, 0.5, 0.75]
        );
        let e = ops::eye(3, 4, -1, DType::U8, &device).unwrap();
        let ev = host_i64(&e);
        for i in 0..3 {
            for j in 0..4 {
                assert_eq!(ev[[i, j]], i64::from(j + 1 == i));
            }
        }
        let x = iota(&[2, 3, 4], device);
        for k in -3..5 {
            let up = host_i64(&x.triangle(k, true).unwrap());
            let lo = host_i64(&x.triangle(k, false).unwrap());
            for ((b, i), j) in (0..2)
                .flat_map(|b| (0..3).map(move |i| (b, i)))
                .flat_map(|p| (0..4).map(move |j| (p, j)))
            {
                let v = ((b * 3 + i) * 4 + j) as i64;
                let d = j as i64 - i as i64;
                assert_eq!(up[[b, i, j]], if d >= k { v } else { 0 });
                assert_eq!(lo[[b, i, j]], if d <= k { v } else { 0 });
            }
        }
        let f = ops::full(&[2, 2], Scalar::Float(2.75), DType::BF16, &device).unwrap();
        assert!(common::values(&f).iter().all(|&v| v == 2.75));
    }
}

fn draw(
    device: Device,
    dtype: DType,
    dist: Distribution,
    seed: u64,
    counter: u64,
    n: usize,
) -> (ArrayD<f64>, u64) {
    let spec = RandomSpec {
        seed,
        counter,
        dist,
    };
    let (t, blocks) = ops::random::random(&[n], dtype, &device, &spec).unwrap();
    (common::values(&t), blocks)
}

#[test]
fn random_numbers_are_counter_based_and_well_distributed() {
    let normal = Distribution::Normal {
        mean: 0.0,
        std: 1.0,
    };
    let uniform = Distribution::Uniform {
        low: 2.0,
        high: 3.0,
    };
    for device in devices() {
        // Same seed and counter, same numbers; the counter moves the stream.
        let (a, blocks) = draw(device, DType::F32, normal, 7, 0, 1001);
        assert_eq!(blocks, 251);
        let (b, _) = draw(device, DType::F32, normal, 7, 0, 1001);
        assert_eq!(a, b);
        let (tail, _) = draw(device, DType::F32, normal, 7, 100, 8);
        assert_eq!(tail.as_slice().unwrap(), &a.as_slice().unwrap()[400..408]);
        let (other, _) = draw(device, DType::F32, normal, 8, 0, 8);
        assert_ne!(other.as_slice().unwrap(), &a.as_slice().unwrap()[..8]);
        // Moments on 10^6 samples (standard errors: 1e-3 for the mean).
        for dtype in [DType::F32, DType::F64] {
            let (z, _) = draw(device, dtype, normal, 1, 0, 1_000_000);
            let mean = z.mean().unwrap();
            let var = z.mapv(|v| (v - mean) * (v - mean)).mean().unwrap();
            assert!(
                mean.abs() < 5e-3 && (var - 1.0).abs() < 1e-2,
                "{dtype}: {mean} {var}"
            );
            let (u, _) = draw(device, dtype, uniform, 2, 0, 1_000_000);
            assert!(u.iter().all(|&v| (2.0..3.0).contains(&v)));
            let m = u.mean().unwrap();
            assert!((m - 2.5).abs() < 2e-3, "{dtype}: {m}");
        }
        let (k, _) = draw(
            device,
            DType::I16,
            Distribution::Integers { low: -3, span: 7 },
            3,
            0,
            70_000,
        );
        let mut counts = [0usize; 7];
        for &v in k.iter() {
            counts[(v + 3.0) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_400..10_600).contains(&c)),
            "{counts:?}"
        );
        assert!(matches!(
            ops::random::random(
                &[2],
                DType::I32,
                &device,
                &RandomSpec {
                    seed: 0,
                    counter: 0,
                    dist: normal
                }
            ),
            Err(Error::DType(_))
        ));
    }
}

#[test]
fn host_allocations_that_cannot_succeed_are_errors() {
    let e = Tensor::empty(&[1 << 40], DType::F32, &Device::Cpu).unwrap_err();
    assert!(
        matches!(e, Error::OutOfMemory(ref m) if m.contains("bytes")),
        "{e}"
    );
    let e = ops::full(
        &[1 << 20, 1 << 20, 1 << 10],
        Scalar::Int(1),
        DType::U8,
        &Device::Cpu,
    )
    .unwrap_err();
    assert!(matches!(e, Error::OutOfMemory(_)), "{e}");
}

#[test]
fn squeeze_expand_flip_moveaxis() {
    for device in devices() {
        let x = iota(&[2, 1, 3], device);
        assert_eq!(x.squeeze(&[1]).unwrap().shape(), &[2, 3]);
        assert!(matches!(x.squeeze(&[0]), Err(Error::Shape(_))));
        assert_eq!(x.expand_dims(-1).unwrap().shape(), &[2, 1, 3, 1]);
        assert!(matches!(x.expand_dims(5), Err(Error::Axis(_))));
        let f = x.flip(Some(&[0, 2])).unwrap();
        assert_eq!(
            host_i64(&f).into_raw_vec_and_offset().0,
            vec![5, 4, 3, 2, 1, 0]
        );
        let m = iota(&[2, 3, 4], device).moveaxis(&[0], &[-1]).unwrap();
        assert_eq!(m.shape(), &[3, 4, 2]);
        assert_eq!(host_i64(&m)[[1, 2, 1]], 12 + 4 + 2);
        let b = ints(&[1, 2, 3], device).broadcast_to(&[2, 3]).unwrap();
        assert_eq!(b.strides(), &[0, 1]);
        let e = ints(&[1, 2, 3], device).broadcast_to(&[2, 4]).unwrap_err();
        assert!(
            e.message().contains("(3,)") && e.message().contains("(2, 4)"),
            "{e}"
        );
    }
}
