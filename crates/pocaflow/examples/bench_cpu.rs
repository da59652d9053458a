//! The Rust half of the CPU benchmark (`bench/cpu_bench.py` drives it): times pocaflow's own GEMM
//! and the `matrixmultiply` crate on the same operands, and measures the machine's FMA peak.
//!
//! ```text
//! bench_cpu serve                 answer requests on stdin, one per line:
//!                                   time <impl> <dtype> <m> <k> <n> <iters> <warm>
//!                                     -> seconds for iters calls, after warm untimed ones
//!                                   check <dtype> <m> <k> <n>                -> max |pocaflow - mm| / k
//! bench_cpu peak                  FMA throughput on 1 and 2 threads, as JSON
//! bench_cpu time <impl> <dtype> <m> <k> <n> [reps]   median GFLOP/s of one shape (for tuning)
//! ```
//!
//! `impl` is `pocaflow` or `matrixmultiply`; `dtype` is `f32` or `f64`. Both libraries use the
//! thread count of the environment: `POCAFLOW_NUM_THREADS` and `MATMUL_NUM_THREADS` (the
//! driver starts one `serve` process per thread count). Every operand and the output are C-order
//! and allocated once per shape, like NumPy's (huge pages requested from 4 MiB), so a call
//! times the product alone, as `np.matmul(a, b, out=c)` does on the Python side.

use pocaflow::cpu::gemm::{self, GemmConfig, GemmScalar, MatMut, MatRef};
use std::io::{BufRead, Write};
use std::time::Instant;

/// Operands and output of one shape, C-order.
struct Problem<T> {
    m: usize,
    k: usize,
    n: usize,
    a: Vec<T>,
    b: Vec<T>,
    c: Vec<T>,
}

/// A vector of `len` elements whose memory is allocated the way NumPy allocates array data:
/// from 4 MiB up, transparent huge pages are requested (`madvise(MADV_HUGEPAGE)`) before the
/// first touch. The three libraries then work on the same kind of memory.
fn numpy_like<T: Copy>(len: usize, mut value: impl FnMut() -> T) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    #[cfg(target_os = "linux")]
    if len * std::mem::size_of::<T>() >= 4 << 20 {
        extern "C" {
            fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: std::ffi::c_int) -> i32;
        }
        const MADV_HUGEPAGE: std::ffi::c_int = 14;
        let start = v.as_mut_ptr() as usize;
        let end = start + len * std::mem::size_of::<T>();
        let (lo, hi) = ((start + 4095) & !4095, end & !4095);
        // SAFETY: [lo, hi) is page-aligned and inside the vector's allocation; the advice
        // only changes how its pages are backed, and a failure (no THP) is harmless.
        unsafe { madvise(lo as *mut std::ffi::c_void, hi - lo, MADV_HUGEPAGE) };
    }
    v.extend((0..len).map(|_| value()));
    v
}

impl<T: GemmScalar + MmScalar> Problem<T> {
    fn new(m: usize, k: usize, n: usize) -> Problem<T> {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut random = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            T::from_f64((seed >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
        };
        Problem {
            m,
            k,
            n,
            a: numpy_like(m * k, &mut random),
            b: numpy_like(k * n, &mut random),
            c: numpy_like(m * n, T::default),
        }
    }

    fn pocaflow(&mut self) {
        let (m, k, n) = (self.m, self.k, self.n);
        let mat = |data, rows, cols: usize| MatRef {
            data,
            offset: 0,
            rows,
            cols,
            rs: cols as isize,
            cs: 1,
        };
        let c = MatMut {
            data: &mut self.c,
            offset: 0,
            rows: m,
            cols: n,
            rs: n as isize,
            cs: 1,
        };
        gemm::gemm(
            mat(&self.a, m, k),
            mat(&self.b, k, n),
            c,
            GemmConfig::default(),
        );
    }

    fn matrixmultiply(&mut self) {
        T::mm(self.m, self.k, self.n, &self.a, &self.b, &mut self.c);
    }

    fn run(&mut self, which: &str) {
        match which {
            "pocaflow" => self.pocaflow(),
            "matrixmultiply" => self.matrixmultiply(),
            _ => panic!("unknown implementation {which:?}"),
        }
    }

    /// Largest difference between the two libraries' products, divided by `k`.
    fn check(&mut self) -> f64 {
        self.pocaflow();
        let ours = self.c.clone();
        self.matrixmultiply();
        let diff = ours
            .iter()
            .zip(&self.c)
            .map(|(x, y)| (x.to_f64() - y.to_f64()).abs())
            .fold(0.0, f64::max);
        diff / self.k.max(1) as f64
    }

    fn time(&mut self, which: &str, iters: usize, warm: usize) -> f64 {
        for _ in 0..warm {
            self.run(which);
        }
        let start = Instant::now();
        for _ in 0..iters {
            self.run(which);
        }
        start.elapsed().as_secs_f64()
    }
}

/// The `matrixmultiply` entry point for each element type.
trait MmScalar: Sized {
    fn mm(m: usize, k: usize, n: usize, a: &[Self], b: &[Self], c: &mut [Self]);
}

macro_rules! mm_scalar {
    ($t:ty, $f:ident) => {
        impl MmScalar for $t {
            fn mm(m: usize, k: usize, n: usize, a: &[$t], b: &[$t], c: &mut [$t]) {
                assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
                let (k_, n_) = (k as isize, n as isize);
                // SAFETY: the three C-order matrices lie inside their slices (checked above)
                // and `c` is borrowed mutably, so it overlaps neither operand.
                unsafe {
                    matrixmultiply::$f(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        k_,
                        1,
                        b.as_ptr(),
                        n_,
                        1,
                        0.0,
                        c.as_mut_ptr(),
                        n_,
                        1,
                    )
                }
            }
        }
    };
}

mm_scalar!(f32, sgemm);
mm_scalar!(f64, dgemm);

/// The problem the server holds: one shape of one dtype at a time.
enum Held {
    None,
    F32(Problem<f32>),
    F64(Problem<f64>),
}

impl Held {
    fn get(&mut self, dtype: &str, m: usize, k: usize, n: usize) -> &mut Held {
        let same = match self {
            Held::F32(p) => dtype == "f32" && (p.m, p.k, p.n) == (m, k, n),
            Held::F64(p) => dtype == "f64" && (p.m, p.k, p.n) == (m, k, n),
            Held::None => false,
        };
        if !same {
            *self = Held::None;
            *self = match dtype {
                "f32" => Held::F32(Problem::new(m, k, n)),
                "f64" => Held::F64(Problem::new(m, k, n)),
                _ => panic!("unknown dtype {dtype:?}"),
            };
        }
        self
    }

    fn time(&mut self, which: &str, iters: usize, warm: usize) -> f64 {
        match self {
            Held::F32(p) => p.time(which, iters, warm),
            Held::F64(p) => p.time(which, iters, warm),
            Held::None => unreachable!("a problem is held after get"),
        }
    }

    fn check(&mut self) -> f64 {
        match self {
            Held::F32(p) => p.check(),
            Held::F64(p) => p.check(),
            Held::None => unreachable!("a problem is held after get"),
        }
    }
}

fn parse(word: Option<&str>) -> usize {
    word.and_then(|w| w.parse().ok())
        .expect("expected a non-negative integer")
}

fn serve() {
    let mut held = Held::None;
    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin is readable");
        let mut w = line.split_whitespace();
        let reply = match w.next() {
            Some("time") => {
                let (which, dtype) = (w.next().unwrap(), w.next().unwrap());
                let (m, k, n) = (parse(w.next()), parse(w.next()), parse(w.next()));
                let (iters, warm) = (parse(w.next()), parse(w.next()));
                held.get(dtype, m, k, n).time(which, iters, warm)
            }
            Some("check") => {
                let dtype = w.next().unwrap();
                let (m, k, n) = (parse(w.next()), parse(w.next()), parse(w.next()));
                held.get(dtype, m, k, n).check()
            }
            _ => panic!("unknown request {line:?}"),
        };
        let mut out = stdout.lock();
        writeln!(out, "{reply:e}").expect("stdout is writable");
        out.flush().expect("stdout is writable");
    }
}

/// Median GFLOP/s of `reps` timed calls after one warm-up.
fn time_one(args: &[String]) {
    let which = args[0].as_str();
    let dtype = args[1].as_str();
    let (m, k, n) = (
        parse(Some(&args[2])),
        parse(Some(&args[3])),
        parse(Some(&args[4])),
    );
    let reps = args.get(5).map_or(7, |r| parse(Some(r)));
    let mut held = Held::None;
    let held = held.get(dtype, m, k, n);
    let once = held.time(which, 1, 0);
    let iters = ((0.05 / once) as usize).max(1);
    let mut samples: Vec<f64> = (0..reps)
        .map(|_| held.time(which, iters, 0) / iters as f64)
        .collect();
    samples.sort_by(f64::total_cmp);
    let secs = samples[reps / 2];
    println!(
        "{which} {dtype} {m}x{k}x{n}: {:.1} GFLOP/s ({:.3} ms)",
        2.0 * (m * k * n) as f64 / secs / 1e9,
        secs * 1e3
    );
}

/// The FMA-throughput probe: independent chains of fused multiply-adds in registers.
#[cfg(target_arch = "x86_64")]
mod peak {
    /// Independent accumulators: more than the FMA latency (4 cycles) times its throughput (2 per
    /// cycle), so the chains never wait on each other.
    const CHAINS: usize = 12;

    /// FMAs per chain per call.
    const STEPS: usize = 1 << 22;

    macro_rules! probe {
        ($name:ident, $feature:literal, $t:ty, $lanes:expr, $set1:ident, $fmadd:ident, $store:ident) => {
            /// Runs `CHAINS * STEPS` vector FMAs; returns the flops done (and a value to keep).
            ///
            /// # Safety
            /// The CPU must support the target feature.
            #[target_feature(enable = $feature)]
            pub unsafe fn $name() -> (f64, $t) {
                use std::arch::x86_64::*;
                let mut acc = [$set1(1.0); CHAINS];
                let x = $set1(std::hint::black_box(0.999_999));
                let y = $set1(std::hint::black_box(1e-7));
                for _ in 0..STEPS {
                    for a in acc.iter_mut() {
                        *a = $fmadd(*a, x, y);
                    }
                }
                let mut sum = 0.0;
                for a in acc {
                    let mut lanes = [0.0; $lanes];
                    // SAFETY: `lanes` holds one vector.
                    unsafe { $store(lanes.as_mut_ptr(), a) };
                    sum += lanes.iter().sum::<$t>();
                }
                ((2 * $lanes * CHAINS * STEPS) as f64, sum)
            }
        };
    }

    probe!(
        zmm_f32,
        "avx512f",
        f32,
        16,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_storeu_ps
    );
    probe!(
        zmm_f64,
        "avx512f",
        f64,
        8,
        _mm512_set1_pd,
        _mm512_fmadd_pd,
        _mm512_storeu_pd
    );
    probe!(
        ymm_f32,
        "fma",
        f32,
        8,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_storeu_ps
    );
    probe!(
        ymm_f64,
        "fma",
        f64,
        4,
        _mm256_set1_pd,
        _mm256_fmadd_pd,
        _mm256_storeu_pd
    );

    /// GFLOP/s of `f` on `threads` threads at once (the best of five runs).
    fn rate(f: fn() -> f64, threads: usize) -> f64 {
        (0..5)
            .map(|_| {
                let start = std::time::Instant::now();
                let flops: f64 = std::thread::scope(|s| {
                    let handles: Vec<_> = (0..threads).map(|_| s.spawn(f)).collect();
                    handles.into_iter().map(|h| h.join().unwrap()).sum()
                });
                flops / start.elapsed().as_secs_f64() / 1e9
            })
            .fold(0.0, f64::max)
    }

    /// A named probe: runs, returns the flops it did.
    type Probe = (&'static str, fn() -> f64);

    /// Prints the probe's results as one JSON object.
    pub fn run() {
        let mut probes: Vec<Probe> = Vec::new();
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F was detected.
            probes.push(("zmm_f32", || unsafe { std::hint::black_box(zmm_f32()).0 }));
            // SAFETY: as above.
            probes.push(("zmm_f64", || unsafe { std::hint::black_box(zmm_f64()).0 }));
        }
        if std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: FMA was detected.
            probes.push(("ymm_f32", || unsafe { std::hint::black_box(ymm_f32()).0 }));
            // SAFETY: as above.
            probes.push(("ymm_f64", || unsafe { std::hint::black_box(ymm_f64()).0 }));
        }
        let fields: Vec<String> = probes
            .iter()
            .flat_map(|&(name, f)| [1, 2].map(|t| format!("\"{name}_{t}t\": {:.1}", rate(f, t))))
            .collect();
        println!("{{{}}}", fields.join(", "));
    }
}

/// Off x86-64 there is no probe (yet): an empty result.
#[cfg(not(target_arch = "x86_64"))]
mod peak {
    pub fn run() {
        println!("{{}}");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(),
        Some("peak") => peak::run(),
        Some("time") if args.len() >= 6 => time_one(&args[1..]),
        _ => {
            eprintln!("usage: bench_cpu serve | peak | time <impl> <dtype> <m> <k> <n> [reps]");
            std::process::exit(2);
        }
    }
}
