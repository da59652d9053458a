//! Host cost of a small CUDA matmul from Rust: microseconds per call for a loop of 64x64 f32
//! products with one synchronize at the end, with a fresh output each call and with `out=`;
//! beside them, the same loop over a device-to-device copy (one driver call) and over a
//! transposing copy (one launch of pocaflow's own kernel), to show what cuBLASLt itself costs.
//! Run with `cargo run --release --example cuda_overhead` on a machine with a GPU.

use pocaflow::{cuda, ops, DType, Device, Tensor};
use std::time::Instant;

fn per_call(calls: usize, mut f: impl FnMut()) -> f64 {
    f();
    cuda::synchronize(0).expect("synchronize");
    let start = Instant::now();
    for _ in 0..calls {
        f();
    }
    cuda::synchronize(0).expect("synchronize");
    start.elapsed().as_secs_f64() * 1e6 / calls as f64
}

fn main() -> Result<(), pocaflow::Error> {
    let gpu = match Device::cuda(0) {
        Ok(d) => d,
        Err(e) => {
            println!("no CUDA device: {}", e.message());
            return Ok(());
        }
    };
    let host =
        ndarray::Array2::<f32>::from_shape_fn((64, 64), |(i, j)| ((i * 7 + j) % 13) as f32 - 6.0);
    let a = Tensor::from_ndarray(&host, &gpu)?;
    let out = Tensor::zeros(&[64, 64], DType::F32, &gpu)?;
    for _ in 0..3 {
        let fresh = per_call(10_000, || {
            a.matmul(&a).expect("matmul");
        });
        let reused = per_call(10_000, || {
            ops::matmul(&a, &a, Some(&out)).expect("matmul");
        });
        let copy = per_call(10_000, || {
            out.copy_(&a).expect("copy");
        });
        let transpose = per_call(10_000, || {
            out.copy_(&a.t()).expect("copy");
        });
        println!(
            "64x64 f32 from Rust, us/call: matmul {fresh:.2} (fresh output), {reused:.2} (out=); \
             copy_ {copy:.2} (memcpy), {transpose:.2} (copy kernel)"
        );
    }
    Ok(())
}
