//! The CUDA backend against the same naive references as the CPU tests. Each test fails when
//! `POCAFLOW_REQUIRE_CUDA=1` and no GPU is usable, and is skipped (with a note) otherwise.
#![cfg(feature = "cuda")]

mod common;
#[path = "cuda/elementwise.rs"]
mod elementwise;
#[path = "cuda/rowwise.rs"]
mod rowwise;

use common::{assert_close, eps, on, reference, values, Rng};
use ndarray::{ArrayD, IxDyn};
use pocaflow::cuda::{self, Event, Stream};
use pocaflow::plan::{Distribution, RandomSpec};
use pocaflow::{ops, CpuBuffer, DType, Device, Error, Tensor};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// Held by the tests that change the process-wide small-matmul threshold, so that each of their
/// passes runs the path it names (`cargo test` runs tests on parallel threads); dropping it
/// (at the end of the test, or when it panics) restores the default.
struct ThresholdGuard {
    _lock: MutexGuard<'static, ()>,
}

impl ThresholdGuard {
    fn lock() -> ThresholdGuard {
        static THRESHOLD: Mutex<()> = Mutex::new(());
        let _lock = THRESHOLD.lock().unwrap_or_else(|e| e.into_inner());
        ThresholdGuard { _lock }
    }
}

impl Drop for ThresholdGuard {
    fn drop(&mut self) {
        cuda::set_small_matmul_threshold(cuda::DEFAULT_SMALL_MATMUL_THRESHOLD);
    }
}

/// CUDA device 0, or None (skip) when there is none and it is not required.
fn gpu() -> Option<Device> {
    match Device::cuda(0) {
        Ok(d) => Some(d),
        Err(e) if std::env::var("POCAFLOW_REQUIRE_CUDA").as_deref() == Ok("1") => {
            panic!("POCAFLOW_REQUIRE_CUDA=1 but CUDA is not usable: {e}")
        }
        Err(e) => {
            eprintln!("skipping CUDA test: {e}");
            None
        }
    }
}

#[test]
fn matmul_every_layout_and_batch_against_the_naive_loop() {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(21);
    let cases: &[(&[usize], &[usize])] = &[
        (&[5], &[5]),
        (&[5], &[5, 3]),
        (&[4, 5], &[5]),
        (&[3, 1, 4, 5], &[2, 5, 6]),
        (&[1, 4, 5], &[7, 5, 6]),
        (&[2, 3, 33, 17], &[17, 40]),
        (&[0, 4, 5], &[5, 6]),
        (&[4, 0], &[0, 6]),
        (&[130, 97], &[97, 257]),
        (&[64, 128], &[128, 64]),
        (&[2, 64, 129], &[129, 8]),
    ];
    // Every case through each path: all cuBLASLt, the default routing, and pocaflow's own
    // small-matmul kernel wherever it applies.
    let _path = ThresholdGuard::lock();
    for threshold in [0, cuda::DEFAULT_SMALL_MATMUL_THRESHOLD, u64::MAX] {
        cuda::set_small_matmul_threshold(threshold);
        for dtype in [DType::F32, DType::F64] {
            for &(sa, sb) in cases {
                let (a, b) = (
                    on(dev, &rng.array(sa), dtype),
                    on(dev, &rng.array(sb), dtype),
                );
                let want = reference(&values(&a), &values(&b));
                let k = sa[sa.len() - 1];
                assert_close(
                    &values(&a.matmul(&b).unwrap()),
                    &want,
                    k,
                    eps(dtype),
                    &format!("{sa:?}@{sb:?}"),
                );
            }
            // Transposed (F-order) views, stepped and reversed views of a batch.
            let base = on(dev, &rng.array(&[6, 50, 40]), dtype);
            let views = [
                base.as_strided(&[3, 40, 50], &[4000, 1, 40], 0).unwrap(),
                base.as_strided(&[3, 40, 50], &[4000, 1, 40], 2000).unwrap(),
            ];
            let others = [
                base.as_strided(&[3, 50, 40], &[4000, -40, 1], 49 * 40)
                    .unwrap(),
                base.as_strided(&[3, 50, 20], &[4000, 40, 2], 0).unwrap(),
                base.as_strided(&[50, 40], &[40, 1], 0).unwrap(),
            ];
            for a in &views {
                for b in &others {
                    let want = reference(&values(a), &values(b));
                    assert_close(
                        &values(&a.matmul(b).unwrap()),
                        &want,
                        50,
                        eps(dtype),
                        "strided",
                    );
                }
            }
            // Vectors with reversed, zero and stepped strides, on either side.
            let flat = on(dev, &rng.array(&[12]), dtype);
            let vectors = [
                flat.as_strided(&[5], &[-1], 4).unwrap(),
                flat.as_strided(&[5], &[0], 3).unwrap(),
                flat.as_strided(&[5], &[2], 1).unwrap(),
            ];
            let (left, right) = (
                on(dev, &rng.array(&[2, 4, 5]), dtype),
                on(dev, &rng.array(&[5, 3]), dtype),
            );
            for v in &vectors {
                for (a, b) in [(v, &right), (&left, v), (v, v)] {
                    let want = reference(&values(a), &values(b));
                    let got = values(&a.matmul(b).unwrap());
                    assert_close(&got, &want, 5, eps(dtype), "vector");
                }
            }
        }
    }
}

#[test]
fn out_is_written_in_any_layout() {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(22);
    let a = on(dev, &rng.array(&[30, 20]), DType::F32);
    let b = on(dev, &rng.array(&[20, 25]), DType::F32);
    let want = reference(&values(&a), &values(&b));
    let nan = ArrayD::from_elem(IxDyn(&[25, 30]), f64::NAN);
    let out = on(dev, &nan, DType::F32).t(); // F-order
    ops::matmul(&a, &b, Some(&out)).unwrap();
    assert_close(&values(&out), &want, 20, eps(DType::F32), "F out");
    let wide = on(
        dev,
        &ArrayD::from_elem(IxDyn(&[30, 50]), f64::NAN),
        DType::F32,
    );
    let stepped = wide.as_strided(&[30, 25], &[50, 2], 0).unwrap(); // not BLAS-describable
    ops::matmul(&a, &b, Some(&stepped)).unwrap();
    assert_close(&values(&stepped), &want, 20, eps(DType::F32), "stepped out");
    let untouched = wide.as_strided(&[30, 25], &[50, 2], 1).unwrap();
    assert!(
        values(&untouched).iter().all(|x| x.is_nan()),
        "wrote between the steps"
    );
}

#[test]
fn reversed_batch_axes_in_operands_and_out() {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(23);
    let _path = ThresholdGuard::lock();
    for threshold in [0, u64::MAX] {
        cuda::set_small_matmul_threshold(threshold);
        for dtype in [DType::F32, DType::F64] {
            // Batches of 3 x 2 in reverse order (negative batch strides), C-order matrices;
            // the outer axis reversed too, so the outer walk steps backwards.
            let a = on(dev, &rng.array(&[3, 2, 6, 5]), dtype);
            let a = a.as_strided(&[3, 2, 6, 5], &[-60, -30, 5, 1], 150).unwrap();
            let b = on(dev, &rng.array(&[2, 5, 7]), dtype);
            let b = b.as_strided(&[2, 5, 7], &[-35, 7, 1], 35).unwrap();
            let want = reference(&values(&a), &values(&b));
            assert_close(
                &values(&a.matmul(&b).unwrap()),
                &want,
                5,
                eps(dtype),
                "operands",
            );
            let nan = ArrayD::from_elem(IxDyn(&[3, 2, 6, 7]), f64::NAN);
            let out = on(dev, &nan, dtype);
            let out = out
                .as_strided(&[3, 2, 6, 7], &[-84, -42, 7, 1], 210)
                .unwrap();
            ops::matmul(&a, &b, Some(&out)).unwrap();
            assert_close(&values(&out), &want, 5, eps(dtype), "reversed out");
        }
    }
}

#[test]
fn enqueueing_does_not_wait_for_the_gpu() {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(23);
    let a = on(dev, &rng.array(&[4096, 4096]), DType::F32);
    a.matmul(&a).unwrap().to_ndarray::<f32>().unwrap(); // warm up
    let start = Instant::now();
    let outs: Vec<Tensor> = (0..20).map(|_| a.matmul(&a).unwrap()).collect();
    let enqueue = start.elapsed();
    let stream = Stream::current(0).unwrap();
    let done = Event::new(0, false).unwrap();
    done.record(&stream).unwrap();
    assert!(
        !done.query().unwrap(),
        "20 4096^3 products finished before the host looked"
    );
    assert!(enqueue.as_millis() < 30, "enqueueing took {enqueue:?}");
    stream.synchronize().unwrap();
    assert!(done.query().unwrap());
    assert_eq!(outs.len(), 20);
}

#[test]
fn pool_reuses_blocks() {
    let Some(dev) = gpu() else { return };
    let a = Tensor::zeros(&[512, 512], DType::F32, &dev).unwrap();
    for _ in 0..3 {
        a.matmul(&a).unwrap();
    }
    let before = cuda::memory_stats(0).unwrap();
    for _ in 0..500 {
        a.matmul(&a).unwrap();
    }
    let after = cuda::memory_stats(0).unwrap();
    assert_eq!(after.driver_allocations, before.driver_allocations);
    assert_eq!(after.reserved_bytes, before.reserved_bytes);
    assert!(after.cache_hits >= before.cache_hits + 500);
}

#[test]
fn out_of_memory_is_reported() {
    let Some(dev) = gpu() else { return };
    let e = Tensor::zeros(&[1 << 40], DType::F32, &dev).unwrap_err();
    assert!(matches!(e, Error::OutOfMemory(_)), "{e}");
    cuda::synchronize(0).unwrap();
}

#[test]
fn half_types_and_conversions() {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(24);
    for dtype in [DType::F16, DType::BF16] {
        let a = on(dev, &rng.array(&[2, 70, 40]), dtype);
        let b = on(dev, &rng.array(&[40, 30]), dtype);
        let c = a.matmul(&b).unwrap();
        assert_eq!(c.dtype(), dtype);
        let (got, want) = (values(&c), reference(&values(&a), &values(&b)));
        let err = (&got - &want).mapv(|x| x * x).sum().sqrt() / want.mapv(|x| x * x).sum().sqrt();
        // float32 accumulation: the output's rounding (2^-11, 2^-8) dominates.
        let bound = if dtype == DType::F16 { 1e-3 } else { 5e-3 };
        assert!(err <= bound, "{dtype}: relative error {err}");
    }
}

// ---- Every backend primitive on CUDA against the CPU, bit for bit. ----

/// The bits of every element of `t` in C order (on the host), with its shape and dtype.
fn host_bits(t: &Tensor) -> (Vec<usize>, DType, Vec<u64>) {
    let c = t.to_device(&Device::Cpu).unwrap();
    if c.numel() == 0 {
        return (c.shape().to_vec(), c.dtype(), Vec::new());
    }
    let size = c.dtype().size_in_bytes();
    let bits = pocaflow::with_dtype!(c.dtype(), T, {
        let v: Vec<T> = c.to_ndarray::<T>().unwrap().iter().copied().collect();
        let buf = CpuBuffer::from_vec(v);
        buf.as_bytes()
            .chunks(size)
            .map(|ch| {
                let mut w = [0u8; 8];
                w[..size].copy_from_slice(ch);
                u64::from_le_bytes(w)
            })
            .collect::<Vec<u64>>()
    });
    (c.shape().to_vec(), c.dtype(), bits)
}

/// Asserts that `gpu` and `cpu` hold the same elements, bit for bit.
fn assert_same(gpu: &Tensor, cpu: &Tensor, what: &str) {
    assert_eq!(gpu.device(), Device::Cuda(0), "{what}: device");
    let (gs, gd, gb) = host_bits(gpu);
    let (cs, cd, cb) = host_bits(cpu);
    assert_eq!((gs, gd), (cs, cd), "{what}: shape and dtype");
    if let Some(i) = (0..gb.len()).find(|&i| gb[i] != cb[i]) {
        panic!(
            "{what}: element {i} (of {}) is {:#x} on CUDA, {:#x} on the CPU",
            gb.len(),
            gb[i],
            cb[i]
        );
    }
}

/// Runs `f` on the CPU and on the GPU and compares the results bit for bit.
fn both(dev: Device, what: &str, f: impl Fn(Device) -> Tensor) {
    let cpu = f(Device::Cpu);
    let gpu = f(dev);
    assert_same(&gpu, &cpu, what);
}

/// Values that exercise every conversion rule: signs, fractions, ties, the limits of each
/// integer width, half-precision overflow and subnormals, infinities and NaNs (with payloads).
fn special_values() -> Vec<f64> {
    let mut v = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        -0.5,
        2.7,
        -2.7,
        127.5,
        128.0,
        -129.0,
        255.0,
        256.0,
        300.7,
        -32769.0,
        65504.0,
        65520.0,
        70000.0,
        -70000.0,
        2147483648.0,
        -2147483649.0,
        4294967297.0,
        9007199254740993.0,
        9.3e18,
        -9.3e18,
        9.223372036854776e18,
        9.223372036854774e18,
        1.8e19,
        2e19,
        1e300,
        -1e300,
        1e-30,
        5.960464477539063e-8,
        3.0e-8,
        3.4028235e38,
        3.5e38,
        1.0 + 2f64.powi(-11),
        1.0 + 2f64.powi(-11) + 2f64.powi(-40),
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7ff0_0000_0000_0001),
        f64::from_bits(0xfff8_dead_beef_0123),
    ];
    let mut rng = Rng::new(99);
    v.extend((0..60).map(|_| rng.uniform() * 10f64.powi(rng.below(25) as i32)));
    v
}

/// A source tensor of `dtype` on the CPU holding many kinds of values.
fn cast_source(dtype: DType) -> Tensor {
    match dtype {
        DType::F16 => {
            let v: Vec<half::f16> = (0..=u16::MAX).map(half::f16::from_bits).collect();
            Tensor::from_vec(v, &[65536]).unwrap()
        }
        DType::BF16 => {
            let v: Vec<half::bf16> = (0..=u16::MAX).map(half::bf16::from_bits).collect();
            Tensor::from_vec(v, &[65536]).unwrap()
        }
        d if d.is_integer() => {
            // Bit patterns wrapped to the width (every edge of every integer type).
            let mut v: Vec<u64> = vec![
                0,
                1,
                2,
                0x7f,
                0x80,
                0xff,
                0x100,
                0x7fff,
                0x8000,
                0xffff,
                0x7fff_ffff,
                0x8000_0000,
                0xffff_ffff,
                0x1_0000_0001,
                1 << 53,
                (1 << 53) + 1,
                0x7fff_ffff_ffff_ffff,
                0x8000_0000_0000_0000,
                0x8000_0000_0000_0001,
                u64::MAX,
                u64::MAX - 1,
            ];
            let mut rng = Rng::new(7);
            v.extend((0..60).map(|_| rng.next_u64() >> rng.below(64)));
            let n = v.len();
            Tensor::from_vec(v, &[n]).unwrap().to_dtype(d).unwrap()
        }
        d => {
            let v = special_values();
            let n = v.len();
            Tensor::from_vec(v, &[n]).unwrap().to_dtype(d).unwrap()
        }
    }
}

#[test]
fn casts_between_all_dtype_pairs_match_the_cpu() {
    let Some(dev) = gpu() else { return };
    for src in DType::ALL {
        let host = cast_source(src);
        let on_gpu = host.to_device(&dev).unwrap();
        assert_same(&on_gpu, &host, &format!("upload of {src}"));
        for dst in DType::ALL {
            let want = host.to_dtype(dst).unwrap();
            let got = on_gpu.to_dtype(dst).unwrap();
            assert_same(&got, &want, &format!("{src} -> {dst}"));
        }
    }
}

/// Views of a `[6, 5, 4]` array of `base` that cover every layout kind: C, transposed
/// (F), permuted, sliced with steps, reversed (negative strides), broadcast, 0-size, 0-d.
fn views(base: &Tensor) -> Vec<(&'static str, Tensor)> {
    use ops::IndexItem::*;
    vec![
        ("C", base.clone()),
        ("transposed", base.permute(&[2, 1, 0]).unwrap()),
        ("permuted", base.permute(&[1, 0, 2]).unwrap()),
        (
            "stepped",
            base.index(&[
                Slice(None, None, Some(2)),
                Slice(Some(1), None, None),
                Slice(None, None, Some(3)),
            ])
            .unwrap(),
        ),
        (
            "reversed",
            base.index(&[
                Slice(None, None, Some(-1)),
                Int(2),
                Slice(None, None, Some(-2)),
            ])
            .unwrap(),
        ),
        (
            "broadcast",
            base.index(&[Int(1), Slice(None, None, None), NewAxis, Int(3)])
                .unwrap()
                .broadcast_to(&[2, 5, 3])
                .unwrap(),
        ),
        (
            "empty",
            base.index(&[Slice(Some(2), Some(2), None)]).unwrap(),
        ),
        ("0-d", base.index(&[Int(1), Int(2), Int(3)]).unwrap()),
        ("offset", base.index(&[Slice(Some(1), None, None)]).unwrap()),
    ]
}

/// A `[6, 5, 4]` array of `dtype` with varied values (a mix of the cast sources).
fn varied(dtype: DType) -> Tensor {
    let src = cast_source(dtype);
    let n = src.numel();
    let idx: Vec<i64> = (0..120).map(|i| ((i * 37 + 11) % n) as i64).collect();
    src.take(&Tensor::from_vec(idx, &[6, 5, 4]).unwrap(), 0)
        .unwrap()
}

#[test]
fn uploads_downloads_and_copies_of_every_dtype_and_layout() {
    let Some(dev) = gpu() else { return };
    for dtype in DType::ALL {
        let host = varied(dtype);
        let device = host.to_device(&dev).unwrap();
        for ((name, hv), (_, dv)) in views(&host).into_iter().zip(views(&device)) {
            let what = format!("{dtype} {name}");
            // Host view to the device; device view to the host (through the same layouts).
            assert_same(&hv.to_device(&dev).unwrap(), &hv, &format!("upload {what}"));
            assert_same(&dv, &hv, &format!("download {what}"));
            assert_same(
                &dv.contiguous().unwrap(),
                &hv.contiguous().unwrap(),
                &format!("contiguous {what}"),
            );
            // Converting copies into strided destinations, on either side.
            for to in [DType::F32, DType::I16, DType::BF16, DType::Bool] {
                let what = format!("{what} into {to}");
                let shape = hv.shape().to_vec();
                let target = |d: &Device| {
                    let t =
                        Tensor::zeros(&[shape.iter().product::<usize>() * 2 + 1], to, d).unwrap();
                    let strides: Vec<isize> = pocaflow::layout::c_strides(&shape)
                        .iter()
                        .map(|s| s * 2)
                        .collect();
                    t.as_strided(&shape, &strides, 1).unwrap()
                };
                let (hd, dd) = (target(&Device::Cpu), target(&dev));
                hd.copy_(&hv).unwrap();
                dd.copy_(&hv).unwrap();
                assert_same(&dd, &hd, &format!("host to strided device {what}"));
                let back = target(&Device::Cpu);
                back.copy_(&dv).unwrap();
                assert_same(&dd, &back, &format!("device to strided host {what}"));
                let dd2 = target(&dev);
                dd2.copy_(&dv).unwrap();
                assert_same(&dd2, &hd, &format!("device to strided device {what}"));
            }
        }
    }
}

#[test]
fn overlapping_copies_within_one_buffer() {
    let Some(dev) = gpu() else { return };
    both(dev, "shifted copy within a buffer", |d| {
        let t = varied(DType::I32)
            .to_device(&d)
            .unwrap()
            .reshape(&[120], None)
            .unwrap();
        let dst = t.as_strided(&[100], &[1], 10).unwrap();
        let src = t.as_strided(&[100], &[1], 0).unwrap();
        dst.copy_(&src).unwrap();
        let rev = t.as_strided(&[60], &[-1], 59).unwrap();
        t.as_strided(&[60], &[1], 30).unwrap().copy_(&rev).unwrap();
        t
    });
}

#[test]
fn fills_ranges_eye_and_triangles_match_the_cpu() {
    let Some(dev) = gpu() else { return };
    use pocaflow::Scalar;
    let scalars = [
        Scalar::Float(2.5),
        Scalar::Float(-1e10),
        Scalar::Float(f64::NAN),
        Scalar::Int(-3),
        Scalar::Bool(true),
        Scalar::UInt(u64::MAX),
    ];
    for dtype in DType::ALL {
        for &s in &scalars {
            for n in [0usize, 1, 7, 1001, 4099] {
                both(dev, &format!("full {dtype} {s:?} {n}"), |d| {
                    ops::full(&[n], s, dtype, &d).unwrap()
                });
            }
            both(dev, &format!("fill_ views {dtype} {s:?}"), |d| {
                let t = Tensor::zeros(&[6, 5, 4], dtype, &d).unwrap();
                for (_, v) in views(&t) {
                    if !v.layout().may_overlap() {
                        v.fill_(s).unwrap();
                    }
                }
                // Dense fills at every misalignment of the 16-byte stores.
                for off in 1..4 {
                    let flat = t.reshape(&[120], None).unwrap();
                    flat.as_strided(&[37 + off], &[1], off)
                        .unwrap()
                        .fill_(Scalar::Int(off as i64))
                        .unwrap();
                }
                t
            });
        }
        let ranges = [
            (Scalar::Int(-5), Scalar::Int(100), Scalar::Int(3)),
            (Scalar::Float(0.1), Scalar::Float(7.3), Scalar::Float(0.37)),
            (Scalar::Int(300), Scalar::Int(-20), Scalar::Int(-7)),
        ];
        // (Float steps below 1 with integer dtypes are left out: the CPU's range length
        // divides by the step converted to an integer, zero.)
        for &(a, b, s) in ranges
            .iter()
            .filter(|r| dtype.is_float() || !matches!(r.2, Scalar::Float(_)))
        {
            if let Ok(want) = ops::arange(a, b, s, dtype, &Device::Cpu) {
                let got = ops::arange(a, b, s, dtype, &dev).unwrap();
                assert_same(&got, &want, &format!("arange {dtype} {a:?} {b:?} {s:?}"));
            }
        }
        for k in -2..=3 {
            both(dev, &format!("eye {dtype} {k}"), |d| {
                ops::eye(5, 7, k, dtype, &d).unwrap()
            });
        }
        for upper in [false, true] {
            for k in [-2, 0, 1, 5] {
                both(dev, &format!("triangle {dtype} {k} {upper}"), |d| {
                    let t = varied(dtype).to_device(&d).unwrap();
                    let a = t.triangle(k, upper).unwrap();
                    let b = t.permute(&[2, 1, 0]).unwrap().triangle(k, upper).unwrap();
                    let c = t
                        .index(&[ops::IndexItem::Slice(None, None, Some(-2))])
                        .unwrap()
                        .triangle(k, upper)
                        .unwrap();
                    Tensor::from_vec(
                        [a, b, c]
                            .iter()
                            .flat_map(|x| host_bits(x).2)
                            .collect::<Vec<u64>>(),
                        &[120 * 2 + 60],
                    )
                    .unwrap()
                    .to_device(&d)
                    .unwrap()
                });
            }
        }
    }
    for dtype in [DType::F16, DType::BF16, DType::F32, DType::F64] {
        for (num, endpoint) in [(0, true), (1, true), (7, true), (50, false), (1001, true)] {
            both(dev, &format!("linspace {dtype} {num} {endpoint}"), |d| {
                ops::linspace(-3.3, 17.1, num, endpoint, dtype, &d).unwrap()
            });
        }
    }
}

fn index_array(v: &[i64], shape: &[usize], dtype: DType) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

#[test]
fn gathers_scatters_and_masks_match_the_cpu() {
    let Some(dev) = gpu() else { return };
    use ops::IndexItem::*;
    for dtype in [
        DType::F32,
        DType::I16,
        DType::U8,
        DType::F64,
        DType::Bool,
        DType::BF16,
    ] {
        let keys = |d: &Device| -> Vec<Vec<ops::IndexItem>> {
            let i = |v: &[i64], s: &[usize], t| Array(index_array(v, s, t).to_device(d).unwrap());
            let mask =
                Tensor::from_vec((0..30).map(|x| x % 3 != 1).collect::<Vec<bool>>(), &[6, 5])
                    .unwrap()
                    .to_device(d)
                    .unwrap();
            vec![
                vec![i(&[0, 4, -1, 2, 3, -5], &[2, 3], DType::I64)],
                vec![
                    Slice(None, None, Some(2)),
                    i(&[4, -5, 1], &[3], DType::I32),
                    Int(1),
                ],
                vec![
                    i(&[1, 0], &[2, 1], DType::I64),
                    Slice(None, None, Some(-1)),
                    i(&[3, 0, 2], &[3], DType::U8),
                ],
                vec![Ellipsis, i(&[3, -2, 0], &[3], DType::I16)],
                vec![Array(mask.clone())],
                vec![
                    Array(mask.index(&[Slice(None, None, None), Int(2)]).unwrap()),
                    Slice(None, None, Some(2)),
                ],
            ]
        };
        for (j, _) in keys(&Device::Cpu).iter().enumerate() {
            for transposed in [false, true] {
                let base = |d: &Device| {
                    let t = varied(dtype).to_device(d).unwrap();
                    if transposed {
                        t.permute(&[0, 2, 1])
                            .unwrap()
                            .contiguous()
                            .unwrap()
                            .permute(&[0, 2, 1])
                            .unwrap()
                    } else {
                        t
                    }
                };
                let what = format!("{dtype} key {j} transposed {transposed}");
                both(dev, &format!("index {what}"), |d| {
                    base(&d).index(&keys(&d)[j]).unwrap()
                });
                both(dev, &format!("index_put {what}"), |d| {
                    let t = base(&d);
                    let got = t.index(&keys(&d)[j]).unwrap();
                    let values = got.flip(None).unwrap().contiguous().unwrap();
                    t.index_put(&keys(&d)[j], &values).unwrap();
                    // A broadcast scalar value (the masked path for a mask).
                    let one = ops::full(&[], pocaflow::Scalar::Float(7.0), DType::F64, &d).unwrap();
                    let u = base(&d);
                    u.index_put(&keys(&d)[j], &one).unwrap();
                    Tensor::from_vec(
                        [t, u]
                            .iter()
                            .flat_map(|x| host_bits(x).2)
                            .collect::<Vec<u64>>(),
                        &[240],
                    )
                    .unwrap()
                    .to_device(&d)
                    .unwrap()
                });
            }
        }
        // take and take_along_axis.
        for axis in [0isize, 1, -1] {
            both(dev, &format!("take {dtype} {axis}"), |d| {
                let idx = index_array(&[3, -1, 0, 2, 2, 1], &[2, 3], DType::I8)
                    .to_device(&d)
                    .unwrap();
                varied(dtype)
                    .to_device(&d)
                    .unwrap()
                    .take(&idx, axis)
                    .unwrap()
            });
            both(dev, &format!("take_along_axis {dtype} {axis}"), |d| {
                let t = varied(dtype).to_device(&d).unwrap();
                let mut shape = t.shape().to_vec();
                let ax = if axis < 0 { 2 } else { axis as usize };
                shape[ax] = 3;
                let n: usize = shape.iter().product();
                let v: Vec<i64> = (0..n as i64).map(|x| (x * 7) % 4 - 1).collect();
                t.take_along_axis(
                    &index_array(&v, &shape, DType::I64).to_device(&d).unwrap(),
                    axis,
                )
                .unwrap()
            });
        }
    }
}

#[test]
fn out_of_bounds_indices_are_index_errors_on_both() {
    let Some(dev) = gpu() else { return };
    use ops::IndexItem::*;
    for (bad, axis) in [(5i64, 1usize), (-6, 1), (7, 0)] {
        let run = |d: &Device| {
            let t = varied(DType::F32).to_device(d).unwrap();
            let idx = index_array(&[0, bad, 1], &[3], DType::I64)
                .to_device(d)
                .unwrap();
            let key = if axis == 1 {
                vec![Slice(None, None, None), Array(idx.clone())]
            } else {
                vec![Array(idx.clone())]
            };
            let g = t.index(&key).unwrap_err();
            let values = ops::full(&[], pocaflow::Scalar::Int(1), DType::F32, d).unwrap();
            let s = t.index_put(&key, &values).unwrap_err();
            let tk = t.take(&idx, axis as isize).unwrap_err();
            (g, s, tk)
        };
        let (cpu, gpu_err) = (run(&Device::Cpu), run(&dev));
        for (c, g) in [
            (&cpu.0, &gpu_err.0),
            (&cpu.1, &gpu_err.1),
            (&cpu.2, &gpu_err.2),
        ] {
            assert!(matches!(g, Error::Index(_)), "{g}");
            assert_eq!(g.to_string(), c.to_string());
        }
        let size = if axis == 1 { 5 } else { 6 };
        let want = format!("index {bad} is out of bounds for axis {axis} with size {size}");
        assert!(gpu_err.0.to_string().contains(&want), "{}", gpu_err.0);
    }
    // The device stays usable after an error.
    both(dev, "after errors", |d| {
        varied(DType::I64).to_device(&d).unwrap()
    });
}

#[test]
fn nonzero_matches_the_cpu() {
    let Some(dev) = gpu() else { return };
    for dtype in DType::ALL {
        let host = varied(dtype);
        let device = host.to_device(&dev).unwrap();
        for ((name, hv), (_, dv)) in views(&host).into_iter().zip(views(&device)) {
            if hv.ndim() == 0 {
                continue;
            }
            let (hc, dc) = (hv.nonzero().unwrap(), dv.nonzero().unwrap());
            assert_eq!(hc.len(), dc.len());
            for (h, g) in hc.iter().zip(&dc) {
                assert_same(g, h, &format!("nonzero {dtype} {name}"));
            }
        }
    }
    // Many blocks, sparse and dense, and all zeros.
    for (n, every) in [(100_003usize, 7usize), (70_000, 1), (5_000, 0)] {
        let v: Vec<f32> = (0..n)
            .map(|i| {
                if every > 0 && i % every == 0 {
                    1.5
                } else {
                    0.0
                }
            })
            .collect();
        let host = Tensor::from_vec(v, &[n]).unwrap();
        let got = host.to_device(&dev).unwrap().nonzero().unwrap();
        assert_same(
            &got[0],
            &host.nonzero().unwrap()[0],
            &format!("nonzero of {n}, every {every}"),
        );
    }
}

fn spec(seed: u64, counter: u64, dist: Distribution) -> RandomSpec {
    RandomSpec {
        seed,
        counter,
        dist,
    }
}

/// Distance in units in the last place between two floats of one dtype given as bits.
fn ulps(dtype: DType, a: u64, b: u64) -> u64 {
    let ordered = |x: u64| -> i64 {
        let (sign, mag) = match dtype {
            DType::F64 => (x >> 63, x & !(1 << 63)),
            DType::F32 => (x >> 31, x & 0x7fff_ffff),
            _ => (x >> 15, x & 0x7fff),
        };
        if sign == 1 {
            -(mag as i64)
        } else {
            mag as i64
        }
    };
    ordered(a).abs_diff(ordered(b))
}

#[test]
fn random_numbers_are_those_of_the_cpu() {
    let Some(dev) = gpu() else { return };
    let shape = [3, 337];
    for dtype in [DType::F16, DType::BF16, DType::F32, DType::F64] {
        for (s, c, low, high) in [
            (7u64, 0u64, 0.0, 1.0),
            (u64::MAX, 1 << 40, -3.5, 2.25),
            (1, 9, 5.0, 5.0),
        ] {
            let p = spec(s, c, Distribution::Uniform { low, high });
            let (want, wb) = ops::random::random(&shape, dtype, &Device::Cpu, &p).unwrap();
            let (got, gb) = ops::random::random(&shape, dtype, &dev, &p).unwrap();
            assert_eq!(wb, gb);
            assert_same(&got, &want, &format!("uniform {dtype} {s} {c}"));
        }
        // Normals: ln, sin and cos come from each platform's math library.
        let tolerance = if dtype == DType::F64 { 4 } else { 1 };
        for (s, c, mean, std) in [(3u64, 0u64, 0.0, 1.0), (42, 77, -2.0, 0.5)] {
            let p = spec(s, c, Distribution::Normal { mean, std });
            let (want, _) = ops::random::random(&shape, dtype, &Device::Cpu, &p).unwrap();
            let (got, _) = ops::random::random(&shape, dtype, &dev, &p).unwrap();
            let (_, _, wb) = host_bits(&want);
            let (_, _, gb) = host_bits(&got);
            let worst = wb
                .iter()
                .zip(&gb)
                .map(|(&w, &g)| ulps(dtype, w, g))
                .max()
                .unwrap();
            assert!(worst <= tolerance, "normal {dtype}: {worst} ulps apart");
        }
    }
    for dtype in [
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U32,
        DType::U64,
    ] {
        for (low, span) in [
            (0i64, 10u64),
            (-100, 201),
            (i64::MIN, 0),
            (5, 1),
            (-3, 1 << 40),
        ] {
            let p = spec(11, 5, Distribution::Integers { low, span });
            let (want, _) = ops::random::random(&shape, dtype, &Device::Cpu, &p).unwrap();
            let (got, _) = ops::random::random(&shape, dtype, &dev, &p).unwrap();
            assert_same(&got, &want, &format!("integers {dtype} {low} {span}"));
        }
    }
}
