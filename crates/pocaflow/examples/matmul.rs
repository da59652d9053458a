//! The README's Rust example: a 2048^2 f64 product on the CPU, then the same on CUDA device 0
//! when one is usable. Run with `cargo run --release --example matmul`.

use pocaflow::matmul;
use std::time::Instant;

fn main() -> Result<(), pocaflow::Error> {
    let a = ndarray::Array2::<f64>::ones((2048, 2048));
    let b = ndarray::Array2::<f64>::ones((2048, 2048));
    let start = Instant::now();
    let c = matmul(a.view(), b.view()); // CPU; panics with a clear message on bad shapes
    let secs = start.elapsed().as_secs_f64();
    assert!(c.iter().all(|&x| x == 2048.0));
    println!(
        "CPU: 2048^2 f64 matmul in {:.1} ms ({:.0} GFLOP/s), every element 2048",
        secs * 1e3,
        2.0 * 2048f64.powi(3) / secs / 1e9
    );
    let c = pocaflow::try_matmul(a.view(), b.view())?; // the Result form
    assert_eq!(c[[0, 0]], 2048.0);

    let gpu = match pocaflow::Device::cuda(0) {
        Ok(gpu) => gpu,
        Err(e) => {
            println!("CUDA part skipped: {}", e.message());
            return Ok(());
        }
    };
    let ta = pocaflow::Tensor::from_ndarray(&a, &gpu)?;
    let tc = ta.matmul(&ta)?; // stays on the device
    let back: ndarray::ArrayD<f64> = tc.to_ndarray()?;
    assert!(back.iter().all(|&x| x == 2048.0));
    println!("CUDA: 2048^2 f64 matmul on {gpu}, every element 2048");
    Ok(())
}
