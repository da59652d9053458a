//! The CPU GEMM against a naive triple loop: every microkernel, thread counts 1..4, every edge-tile
//! class, and operands in C order, Fortran order, transposed, stepped and reversed.

mod common;

use common::{assert_close, naive, Rng};
use ndarray::{s, Array2, ArrayView2, Axis};
use pocaflow::cpu::gemm::{GemmConfig, Isa};
use pocaflow::matmul_with;

/// The ways an operand can be laid out in memory. Each builds a view of `src` with the same
/// values; the owned array it views is returned alongside.
#[derive(Debug, Clone, Copy)]
enum Order {
    C,
    F,
    /// The transpose of a C-order array of the transposed shape (an F-order view).
    TransposedC,
    /// Every other row and column of a larger array.
    Stepped,
    /// Both axes reversed (negative strides).
    Reversed,
}

const ORDERS: [Order; 5] = [
    Order::C,
    Order::F,
    Order::TransposedC,
    Order::Stepped,
    Order::Reversed,
];

fn backing<T: Copy + Default>(src: &Array2<T>, order: Order) -> Array2<T> {
    let (r, c) = src.dim();
    match order {
        Order::C => src.as_standard_layout().into_owned(),
        Order::F => {
            let mut f = Array2::default((r, c).f());
            f.assign(src);
            f
        }
        Order::TransposedC => src.t().as_standard_layout().into_owned(),
        Order::Stepped => {
            let mut big = Array2::default((2 * r + 1, 2 * c + 1));
            big.slice_mut(s![1..;2, 1..;2]).assign(src);
            big
        }
        Order::Reversed => {
            let mut rev = src.clone();
            rev.invert_axis(Axis(0));
            rev.invert_axis(Axis(1));
            rev.as_standard_layout().into_owned()
        }
    }
}

fn view<T>(backing: &Array2<T>, order: Order) -> ArrayView2<'_, T> {
    match order {
        Order::C | Order::F => backing.view(),
        Order::TransposedC => backing.t(),
        Order::Stepped => backing.slice(s![1..;2, 1..;2]),
        Order::Reversed => backing.slice(s![..;-1, ..;-1]),
    }
}

use ndarray::ShapeBuilder;

fn check<T: pocaflow::cpu::gemm::GemmScalar>(
    rng: &mut Rng,
    (m, k, n): (usize, usize, usize),
    (oa, ob): (Order, Order),
    cfg: GemmConfig,
    eps: f64,
) {
    let a64 = rng.matrix(m, k);
    let b64 = rng.matrix(k, n);
    let to_t = |x: &Array2<f64>| x.mapv(T::from_f64);
    let (a, b) = (to_t(&a64), to_t(&b64));
    // The reference uses the rounded inputs, so only the product's own rounding remains.
    let want = naive(a.mapv(T::to_f64).view(), b.mapv(T::to_f64).view());
    let (ba, bb) = (backing(&a, oa), backing(&b, ob));
    let (va, vb) = (view(&ba, oa), view(&bb, ob));
    assert_eq!(va, a.view());
    let got = matmul_with(va, vb, cfg).unwrap().mapv(T::to_f64);
    let what = format!("{m}x{k}x{n} {oa:?}*{ob:?} {cfg:?} {:?}", T::DTYPE);
    assert_close(&got.into_dyn(), &want.into_dyn(), k, eps, &what);
}

/// Sizes around every edge of the AVX-512 f32 tile (32x12), the AVX2 tiles and the blocks.
const EDGE_DIMS: [usize; 14] = [1, 2, 7, 11, 12, 13, 16, 31, 32, 33, 47, 65, 97, 130];

#[test]
fn every_kernel_every_order_every_edge() {
    let mut rng = Rng::new(1);
    for isa in Isa::supported() {
        for threads in [1, 2] {
            let cfg = GemmConfig { isa, threads };
            for _ in 0..60 {
                let dims = (
                    rng.pick(&EDGE_DIMS),
                    rng.pick(&EDGE_DIMS),
                    rng.pick(&EDGE_DIMS),
                );
                let orders = (rng.pick(&ORDERS), rng.pick(&ORDERS));
                check::<f32>(&mut rng, dims, orders, cfg, f32::EPSILON as f64);
                check::<f64>(&mut rng, dims, orders, cfg, f64::EPSILON);
            }
            for oa in ORDERS {
                for ob in ORDERS {
                    check::<f32>(&mut rng, (37, 41, 29), (oa, ob), cfg, f32::EPSILON as f64);
                    check::<f64>(&mut rng, (37, 41, 29), (oa, ob), cfg, f64::EPSILON);
                }
            }
        }
    }
}

#[test]
fn blocked_sizes_cross_every_block_boundary_on_1_to_4_threads() {
    let mut rng = Rng::new(2);
    // Larger than the KC and MC blocks of every kernel, so the k-accumulation and the parallel
    // split both run; primes leave partial tiles everywhere.
    for isa in Isa::supported() {
        for threads in 1..=4 {
            let cfg = GemmConfig { isa, threads };
            let orders = (rng.pick(&ORDERS), rng.pick(&ORDERS));
            check::<f32>(&mut rng, (541, 1031, 263), orders, cfg, f32::EPSILON as f64);
            check::<f64>(&mut rng, (263, 577, 541), orders, cfg, f64::EPSILON);
            check::<f64>(&mut rng, (17, 600, 1100), orders, cfg, f64::EPSILON);
        }
    }
}

#[test]
fn single_block_products_on_1_to_4_threads() {
    // Products that fit one cache block run unpacked (direct kernel, threads over C's columns)
    // when A has unit row stride after orientation, packed otherwise: sizes with partial
    // tiles on every side, in every order pair, so both happen.
    let mut rng = Rng::new(7);
    for isa in Isa::supported() {
        for threads in 1..=4 {
            let cfg = GemmConfig { isa, threads };
            for oa in ORDERS {
                for ob in ORDERS {
                    check::<f32>(
                        &mut rng,
                        (201, 131, 155),
                        (oa, ob),
                        cfg,
                        f32::EPSILON as f64,
                    );
                    check::<f64>(&mut rng, (97, 113, 163), (oa, ob), cfg, f64::EPSILON);
                }
            }
        }
    }
}

#[test]
fn empty_and_degenerate_shapes() {
    let mut rng = Rng::new(3);
    for isa in Isa::supported() {
        let cfg = GemmConfig { isa, threads: 2 };
        for dims in [
            (0, 5, 3),
            (4, 0, 3),
            (4, 5, 0),
            (0, 0, 0),
            (1, 1, 1),
            (1, 300, 1),
            (300, 1, 300),
        ] {
            check::<f64>(&mut rng, dims, (Order::C, Order::F), cfg, f64::EPSILON);
        }
    }
    // k = 0 gives zeros.
    let a = Array2::<f32>::zeros((3, 0));
    let b = Array2::<f32>::zeros((0, 4));
    assert_eq!(
        pocaflow::matmul(a.view(), b.view()),
        Array2::<f32>::zeros((3, 4))
    );
}

#[test]
fn nan_and_inf_propagate() {
    for isa in Isa::supported() {
        let cfg = GemmConfig { isa, threads: 1 };
        for n in [3, 40, 200] {
            let mut a = Array2::<f64>::ones((n, n));
            let b = Array2::<f64>::ones((n, n));
            a[[1, 2]] = f64::NAN;
            a[[2, 0]] = f64::INFINITY;
            let c = matmul_with(a.view(), b.view(), cfg).unwrap();
            assert!(c.row(1).iter().all(|x| x.is_nan()), "{isa} n={n}");
            assert!(c.row(2).iter().all(|&x| x == f64::INFINITY), "{isa} n={n}");
            assert!(c.row(0).iter().all(|&x| x == n as f64), "{isa} n={n}");
        }
    }
}

#[test]
fn output_order_follows_the_operands() {
    let a = Array2::<f64>::ones((4, 5));
    let f = Array2::<f64>::ones((4, 5).f());
    let g = Array2::<f64>::ones((5, 3).f());
    assert!(pocaflow::matmul(a.view(), g.view()).is_standard_layout());
    assert!(pocaflow::matmul(f.view(), g.view())
        .t()
        .is_standard_layout());
}

#[test]
fn shape_mismatch_is_an_error_naming_both_shapes() {
    let a = Array2::<f32>::zeros((2, 3));
    let b = Array2::<f32>::zeros((4, 5));
    let e = pocaflow::try_matmul(a.view(), b.view()).unwrap_err();
    assert!(matches!(e, pocaflow::Error::Shape(_)));
    assert!(
        e.message().contains("(2, 3)") && e.message().contains("(4, 5)"),
        "{e}"
    );
    let panic = std::panic::catch_unwind(|| pocaflow::matmul(a.view(), b.view())).unwrap_err();
    let msg = panic.downcast_ref::<String>().unwrap();
    assert!(msg.contains("not aligned"), "{msg}");
}

#[test]
fn small_direct_path_every_shape_up_to_32() {
    // Every dimension <= 32 takes the direct kernel (no packing) when A has unit row stride
    // after the operands are oriented, and the packed path otherwise: both, for every class
    // of partial tile.
    let mut rng = Rng::new(4);
    let dims = [1, 3, 8, 12, 13, 16, 17, 24, 31, 32];
    for isa in Isa::supported() {
        let cfg = GemmConfig { isa, threads: 2 };
        for m in dims {
            for k in dims {
                for n in dims {
                    let orders = (rng.pick(&ORDERS), rng.pick(&ORDERS));
                    check::<f32>(&mut rng, (m, k, n), orders, cfg, f32::EPSILON as f64);
                    check::<f64>(&mut rng, (m, k, n), orders, cfg, f64::EPSILON);
                }
            }
        }
    }
}

#[test]
fn matrix_vector_shapes_every_layout_and_thread_count() {
    // n = 1 (y = A x) and m = 1 (y^T = x^T B) skip the GEMM machinery: rows-contiguous,
    // columns-contiguous and strided operands, short and long vectors, split over threads.
    let mut rng = Rng::new(5);
    let shapes = [
        (1, 1, 1),
        (1, 37, 1),
        (5, 3, 1),
        (33, 70, 1),
        (700, 600, 1),
        (1, 70, 33),
        (1, 600, 700),
        (1, 1, 300),
        (300, 1, 1),
    ];
    for isa in Isa::supported() {
        for threads in 1..=4 {
            let cfg = GemmConfig { isa, threads };
            for dims in shapes {
                for oa in ORDERS {
                    let ob = rng.pick(&ORDERS);
                    check::<f32>(&mut rng, dims, (oa, ob), cfg, f32::EPSILON as f64);
                    check::<f64>(&mut rng, dims, (ob, oa), cfg, f64::EPSILON);
                }
            }
        }
    }
}

#[cfg(not(any(feature = "blas", feature = "accelerate")))]
#[test]
fn default_backend_is_pocaflows_own_gemm() {
    assert_eq!(pocaflow::cpu::backend_name(), "pocaflow");
}

#[cfg(feature = "blas")]
#[test]
fn blas_backend_runs_every_operand_layout() {
    // With the `blas` feature, `try_matmul` and Tensor products go to the system OpenBLAS:
    // C, F and transposed operands directly, stepped and reversed ones copied first.
    use pocaflow::cpu::blas;
    use pocaflow::{Device, Tensor};
    assert_eq!(pocaflow::cpu::backend_name(), "openblas");
    let mut rng = Rng::new(6);
    let before = blas::calls();
    let mut products = 0;
    for dims in [
        (37, 41, 29),
        (64, 64, 64),
        (300, 200, 1),
        (1, 200, 300),
        (5, 0, 3),
    ] {
        for oa in ORDERS {
            for ob in ORDERS {
                let (m, k, n) = dims;
                let (a, b) = (rng.matrix(m, k), rng.matrix(k, n));
                let (ba, bb) = (backing(&a, oa), backing(&b, ob));
                let got = pocaflow::try_matmul(view(&ba, oa), view(&bb, ob)).unwrap();
                let what = format!("blas {dims:?} {oa:?}*{ob:?}");
                let want = naive(a.view(), b.view());
                assert_close(&got.into_dyn(), &want.into_dyn(), k, f64::EPSILON, &what);
                // An empty inner dimension is filled with zeros without calling BLAS.
                products += usize::from(k > 0);
            }
        }
    }
    // A batch of 3 through the Tensor API, with a transposed (F-order) second operand.
    let a = rng.array(&[3, 20, 30]);
    let b = rng.array(&[3, 40, 30]);
    let ta = Tensor::from_ndarray(&a, &Device::Cpu).unwrap();
    let tb = Tensor::from_ndarray(&b, &Device::Cpu).unwrap();
    let got = ta
        .matmul(&tb.permute(&[0, 2, 1]).unwrap())
        .unwrap()
        .to_ndarray::<f64>()
        .unwrap();
    for i in 0..3 {
        let ai = a.index_axis(Axis(0), i).into_dimensionality().unwrap();
        let bi = b.index_axis(Axis(0), i).into_dimensionality().unwrap();
        let want = naive(ai, bi.t());
        let got_i = got.index_axis(Axis(0), i).to_owned();
        assert_close(&got_i, &want.into_dyn(), 30, f64::EPSILON, "blas batch");
    }
    products += 3;
    // Other tests of this binary may call BLAS concurrently: at least ours were counted.
    assert!(blas::calls() - before >= products);
}
