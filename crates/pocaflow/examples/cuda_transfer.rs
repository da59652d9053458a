//! Host-device bandwidth of tensor transfers from Rust: a 256 MiB f32 array up
//! (`Tensor::from_ndarray`) and down (`to_ndarray`), median of repeats, in GB/s.
//! Run with `cargo run --release --example cuda_transfer` on a machine with a GPU.

use pocaflow::{cuda, Device, Tensor};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), pocaflow::Error> {
    let gpu = match Device::cuda(0) {
        Ok(d) => d,
        Err(e) => {
            println!("no CUDA device: {}", e.message());
            return Ok(());
        }
    };
    let n = 8192;
    let host = ndarray::Array2::<f32>::from_shape_fn((n, n), |(i, j)| (i ^ j) as f32);
    let bytes = (n * n * 4) as f64;
    let (mut up, mut staged, mut down) = (vec![], vec![], vec![]);
    for _ in 0..7 {
        let start = Instant::now();
        let t = Tensor::from_ndarray(&host, &gpu)?;
        let returned = start.elapsed().as_secs_f64();
        cuda::synchronize(0)?;
        up.push(start.elapsed().as_secs_f64());
        staged.push(returned);
        let start = Instant::now();
        let back = t.to_ndarray::<f32>()?;
        down.push(start.elapsed().as_secs_f64());
        assert_eq!(back[[n - 1, 3]], host[[n - 1, 3]]);
    }
    println!(
        "256 MiB f32: host-to-device {:.1} GB/s (call returned after {:.1} ms), device-to-host {:.1} GB/s",
        bytes / median(up) / 1e9,
        median(staged) * 1e3,
        bytes / median(down) / 1e9
    );
    Ok(())
}
