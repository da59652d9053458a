//! The CUDA backend against the same naive references as the CPU tests. Each test fails when
//! `POCAFLOW_REQUIRE_CUDA=1` and no GPU is usable, and is skipped (with a note) otherwise.
#![cfg(feature = "cuda")]

mod common;

use common::{assert_close, eps, on, reference, values, Rng};
use ndarray::{ArrayD, IxDyn};
use pocaflow::cuda::{self, Event, Stream};
use pocaflow::{ops, DType, Device, Error, Tensor};
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
