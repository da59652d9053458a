//! Helpers shared by the integration tests: a seeded generator and naive references.
#![allow(dead_code)]

use ndarray::{Array2, ArrayD, ArrayView2, Axis, IxDyn};
use pocaflow::{DType, Device, Tensor};

/// The CPU, and CUDA device 0 when it is usable (required under `POCAFLOW_REQUIRE_CUDA=1`).
pub fn devices() -> Vec<Device> {
    let mut out = vec![Device::Cpu];
    match Device::cuda(0) {
        Ok(d) => out.push(d),
        Err(e) if std::env::var("POCAFLOW_REQUIRE_CUDA").as_deref() == Ok("1") => {
            panic!("POCAFLOW_REQUIRE_CUDA=1 but CUDA is not usable: {e}")
        }
        Err(_) => {}
    }
    out
}

/// SplitMix64: small, seeded, good enough to draw test data and shapes.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    pub fn matrix(&mut self, rows: usize, cols: usize) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |_| self.uniform())
    }

    pub fn array(&mut self, shape: &[usize]) -> ArrayD<f64> {
        ArrayD::from_shape_fn(IxDyn(shape), |_| self.uniform())
    }
}

/// The triple loop, in f64.
pub fn naive(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> Array2<f64> {
    let (m, k) = a.dim();
    let n = b.ncols();
    let mut c = Array2::zeros((m, n));
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0;
            for p in 0..k {
                s += a[[i, p]] * b[[p, j]];
            }
            c[[i, j]] = s;
        }
    }
    c
}

/// Asserts `got` matches the f64 reference within the rounding of `eps`-precision arithmetic
/// over sums of `k` products of magnitude at most 1: |got - want| <= tol * (k + 1) * eps.
pub fn assert_close(got: &ArrayD<f64>, want: &ArrayD<f64>, k: usize, eps: f64, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let tol = 4.0 * (k as f64 + 1.0) * eps;
    for ((idx, &g), &w) in got.indexed_iter().zip(want.iter()) {
        assert!(
            (g - w).abs() <= tol || (g.is_nan() && w.is_nan()) || g == w,
            "{what}: at {idx:?} got {g}, want {w} (tolerance {tol})"
        );
    }
}

/// NumPy's matmul in f64 by the naive loop: promotes 1-D operands, broadcasts batch axes.
pub fn reference(a: &ArrayD<f64>, b: &ArrayD<f64>) -> ArrayD<f64> {
    let a2 = if a.ndim() == 1 {
        a.clone().insert_axis(Axis(0))
    } else {
        a.clone()
    };
    let b2 = if b.ndim() == 1 {
        b.clone().insert_axis(Axis(1))
    } else {
        b.clone()
    };
    let (na, nb) = (a2.ndim(), b2.ndim());
    let batch =
        pocaflow::layout::broadcast_shapes(&a2.shape()[..na - 2], &b2.shape()[..nb - 2]).unwrap();
    let (m, n) = (a2.shape()[na - 2], b2.shape()[nb - 1]);
    let full = |x: &ArrayD<f64>, r, c| {
        let mut s = batch.clone();
        s.extend([r, c]);
        x.broadcast(IxDyn(&s)).unwrap().to_owned()
    };
    let k = a2.shape()[na - 1];
    let (fa, fb) = (full(&a2, m, k), full(&b2, k, n));
    let count: usize = batch.iter().product();
    let fa = fa.into_shape_with_order((count, m, k)).unwrap();
    let fb = fb.into_shape_with_order((count, k, n)).unwrap();
    let mut out = ndarray::Array3::<f64>::zeros((count, m, n));
    for i in 0..count {
        out.index_axis_mut(Axis(0), i)
            .assign(&naive(fa.index_axis(Axis(0), i), fb.index_axis(Axis(0), i)));
    }
    let mut shape = batch.clone();
    if a.ndim() > 1 {
        shape.push(m);
    }
    if b.ndim() > 1 {
        shape.push(n);
    }
    out.into_shape_with_order(IxDyn(&shape)).unwrap()
}

/// `x` converted to `dtype` and placed on `device`.
pub fn on(device: Device, x: &ArrayD<f64>, dtype: DType) -> Tensor {
    Tensor::from_ndarray(x, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
        .to_device(&device)
        .unwrap()
}

/// A tensor's values as f64 on the host.
pub fn values(t: &Tensor) -> ArrayD<f64> {
    t.to_dtype(DType::F64).unwrap().to_ndarray::<f64>().unwrap()
}

/// The unit roundoff of a float dtype's arithmetic.
pub fn eps(d: DType) -> f64 {
    match d {
        DType::F16 => half::f16::EPSILON.to_f64(),
        DType::BF16 => half::bf16::EPSILON.to_f64(),
        DType::F32 => f32::EPSILON as f64,
        _ => f64::EPSILON,
    }
}
