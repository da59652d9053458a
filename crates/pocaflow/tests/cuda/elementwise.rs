//! Elementwise functions, reductions and scans on CUDA against the CPU backend: every op and
//! every dtype its domain allows, through each kernel path (dense aligned and unaligned, scalar
//! operands, broadcast rows, strided and reversed views; inner, outer, whole-array and general
//! reductions with lengths around the block sizes). Integers and bools compare bit for bit,
//! floats within a few units in the last place (NaN equal to NaN).

use super::{gpu, Rng};
use pocaflow::ops::reduce::{all_any, arg_extreme, cumulative, max_min, sum_prod};
use pocaflow::ops::{binary, unary, Value};
use pocaflow::{BinaryOp, DType, Device, ReduceOp, Scalar, ScanOp, Tensor, UnaryOp};

const INTS: [DType; 8] = [
    DType::I8,
    DType::I16,
    DType::I32,
    DType::I64,
    DType::U8,
    DType::U16,
    DType::U32,
    DType::U64,
];
const FLOATS: [DType; 4] = [DType::F16, DType::BF16, DType::F32, DType::F64];

fn numeric() -> Vec<DType> {
    INTS.iter().chain(&FLOATS).copied().collect()
}

fn int_or_bool() -> Vec<DType> {
    std::iter::once(DType::Bool).chain(INTS).collect()
}

/// The compute dtypes the ops layer sends for a unary op (its domain).
fn unary_dtypes(op: UnaryOp) -> Vec<DType> {
    use UnaryOp::*;
    match op {
        Abs | Negative | Square | Sign | Ceil | Floor | Round | Trunc => numeric(),
        BitwiseInvert => int_or_bool(),
        LogicalNot => vec![DType::Bool],
        IsNan | IsInf | IsFinite => DType::ALL.to_vec(),
        _ => FLOATS.to_vec(),
    }
}

/// The compute dtypes the ops layer sends for a binary op.
fn binary_dtypes(op: BinaryOp) -> Vec<DType> {
    use BinaryOp::*;
    match op {
        Subtract | FloorDivide | Remainder | Pow => numeric(),
        Atan2 | Hypot | Copysign | Logaddexp | Nextafter | Divide | ReluBackward | GeluBackward
        | GeluTanhBackward | SiluBackward | SigmoidBackward => FLOATS.to_vec(),
        BitwiseAnd | BitwiseOr | BitwiseXor => int_or_bool(),
        BitwiseLeftShift | BitwiseRightShift => INTS.to_vec(),
        LogicalAnd | LogicalOr | LogicalXor => vec![DType::Bool],
        _ => DType::ALL.to_vec(),
    }
}

/// Whether a float op is computed by a library function (a few ulps apart between CUDA's
/// libdevice and the host's libm) rather than exactly rounded arithmetic.
fn transcendental_unary(op: UnaryOp) -> bool {
    use UnaryOp::*;
    !matches!(
        op,
        Abs | Negative
            | BitwiseInvert
            | LogicalNot
            | Sqrt
            | Square
            | Reciprocal
            | Ceil
            | Floor
            | Round
            | Trunc
            | Sign
            | Signbit
            | IsNan
            | IsInf
            | IsFinite
    )
}

fn transcendental_binary(op: BinaryOp) -> bool {
    use BinaryOp::*;
    matches!(
        op,
        Pow | Atan2
            | Hypot
            | Logaddexp
            | GeluBackward
            | GeluTanhBackward
            | SiluBackward
            | SigmoidBackward
    )
}

/// `n` values of `dtype` on the CPU: integers in [-60, 60] with the type's extremes mixed in
/// (so shifts go past the width, divisors hit 0 and -1); floats in [-4, 4) with zeros of both
/// signs, infinities and NaNs when `special`; bools half true.
fn sample(rng: &mut Rng, dtype: DType, n: usize, special: bool) -> Tensor {
    if dtype.is_float() {
        let specials = [
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            1.0,
            -1.0,
        ];
        let v: Vec<f64> = (0..n)
            .map(|_| {
                if special && rng.below(8) == 0 {
                    specials[rng.below(specials.len())]
                } else {
                    rng.uniform() * 4.0
                }
            })
            .collect();
        return Tensor::from_vec(v, &[n]).unwrap().to_dtype(dtype).unwrap();
    }
    let extremes = [i64::MIN, i64::MAX, -1, 0, 1, 127, -128, 255, 65535, -32768];
    let v: Vec<i64> = (0..n)
        .map(|_| match dtype {
            DType::Bool => rng.below(2) as i64,
            _ if special && rng.below(8) == 0 => extremes[rng.below(extremes.len())],
            _ => rng.below(121) as i64 - 60,
        })
        .collect();
    Tensor::from_vec(v, &[n]).unwrap().to_dtype(dtype).unwrap()
}

/// `(mantissa bits, smallest normal exponent)` of a float dtype.
fn float_format(dtype: DType) -> (i32, i32) {
    match dtype {
        DType::F16 => (10, -14),
        DType::BF16 => (7, -126),
        DType::F32 => (23, -126),
        _ => (52, -1022),
    }
}

/// One unit in the last place of `dtype` at `w`.
fn ulp(w: f64, dtype: DType) -> f64 {
    let (p, emin) = float_format(dtype);
    let e = if w == 0.0 || !w.is_finite() {
        emin
    } else {
        (w.abs().log2().floor() as i32).max(emin)
    };
    2f64.powi(e - p)
}

/// Asserts `got` (on CUDA) equals `want` (on the CPU): same shape and dtype; integers and bools
/// exactly; floats within `tol(index, want)` (NaN matching NaN, infinities exact).
fn assert_matches(got: &Tensor, want: &Tensor, tol: &dyn Fn(usize, f64) -> f64, what: &str) {
    assert_eq!(got.device(), Device::Cuda(0), "{what}: device");
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    assert_eq!(got.dtype(), want.dtype(), "{what}: dtype");
    let dtype = want.dtype();
    match dtype {
        DType::I64 => {
            let (g, w) = (
                got.to_ndarray::<i64>().unwrap(),
                want.to_ndarray::<i64>().unwrap(),
            );
            assert_eq!(g, w, "{what}");
        }
        DType::U64 => {
            let (g, w) = (
                got.to_ndarray::<u64>().unwrap(),
                want.to_ndarray::<u64>().unwrap(),
            );
            assert_eq!(g, w, "{what}");
        }
        _ => {
            let to_f64 = |t: &Tensor| {
                t.to_device(&Device::Cpu)
                    .unwrap()
                    .to_dtype(DType::F64)
                    .unwrap()
                    .to_ndarray::<f64>()
                    .unwrap()
            };
            let (g, w) = (to_f64(got), to_f64(want));
            for (i, (&g, &w)) in g.iter().zip(w.iter()).enumerate() {
                let ok = if !dtype.is_float() || !w.is_finite() {
                    g == w || (g.is_nan() && w.is_nan())
                } else {
                    (g - w).abs() <= tol(i, w)
                };
                assert!(ok, "{what}: element {i} is {g} on CUDA, {w} on the CPU");
            }
        }
    }
}

/// A tolerance of `n` ulps of `dtype` at the expected value.
fn ulps(n: f64, dtype: DType) -> impl Fn(usize, f64) -> f64 {
    move |_, w| n * ulp(w, dtype)
}

/// The views of a 1-D CPU array of `n + 1` elements the elementwise tests run through (each
/// with `n` elements or a 2-D shape of `n` elements): `(name, view)`.
fn flat_views(base: &Tensor, n: usize) -> Vec<(&'static str, Tensor)> {
    vec![
        ("dense", base.as_strided(&[n], &[1], 0).unwrap()),
        ("unaligned", base.as_strided(&[n], &[1], 1).unwrap()),
        ("reversed", base.as_strided(&[n], &[-1], n).unwrap()),
    ]
}

/// Odd sizes around the pack and block widths.
const SIZES: [usize; 4] = [1, 33, 1000, 4099];

fn unary_case(dev: Device, op: UnaryOp, dtype: DType, rng: &mut Rng) {
    let tol = if transcendental_unary(op) && matches!(dtype, DType::F32 | DType::F64) {
        8.0
    } else if dtype.is_float() {
        1.0
    } else {
        0.0
    };
    // The GELU and SiLU forms cancel (1 + tanh, x * sigmoid near 0): their error is in ulps of
    // their O(1) terms, not of the result.
    let floor = if matches!(op, UnaryOp::Gelu | UnaryOp::GeluTanh | UnaryOp::Silu) {
        1.0
    } else {
        0.0
    };
    let tolerance = |d: DType| move |_: usize, w: f64| tol * ulp(w.abs().max(floor), d);
    for n in SIZES {
        let base = sample(rng, dtype, n + 1, true);
        let base_gpu = base.to_device(&dev).unwrap();
        let mut cases: Vec<(String, Tensor, Tensor)> = flat_views(&base, n)
            .into_iter()
            .zip(flat_views(&base_gpu, n))
            .map(|((name, c), (_, g))| (name.to_string(), c, g))
            .collect();
        if n == 1000 {
            let t = |x: &Tensor| x.as_strided(&[25, 40], &[1, 25], 0).unwrap();
            cases.push(("transposed".into(), t(&base), t(&base_gpu)));
            let b = |x: &Tensor| x.as_strided(&[7, 40], &[0, 1], 3).unwrap();
            cases.push(("broadcast".into(), b(&base), b(&base_gpu)));
        }
        for (name, c, g) in cases {
            let what = format!("{}({dtype}) {name} n={n}", op.name());
            let want = unary(op, &c, None).unwrap();
            let got = unary(op, &g, None).unwrap();
            assert_matches(&got, &want, &tolerance(want.dtype()), &what);
            // In place (source and destination one view).
            if name == "dense" && !op.returns_bool() {
                let inplace = g.copy_data().unwrap();
                let r = unary(op, &inplace, Some(&inplace)).unwrap();
                assert_matches(
                    &r,
                    &want,
                    &tolerance(want.dtype()),
                    &format!("{what} in place"),
                );
            }
        }
    }
}

fn binary_case(dev: Device, op: BinaryOp, dtype: DType, rng: &mut Rng) {
    let tol = if transcendental_binary(op) && matches!(dtype, DType::F32 | DType::F64) {
        8.0
    } else if dtype.is_float() {
        1.0
    } else {
        0.0
    };
    // logaddexp(a, b) = max + log1p(exp(-|a - b|)) cancels when the result is small next to
    // the operands (up to 4 here): its error is ulps of the operands, not of the result.
    // The activations' derivatives cancel the same way, in ulps of their terms (up to
    // |x| * d/dx of tanh's argument, about 5 for |x| <= 4).
    let floor = match op {
        BinaryOp::Logaddexp
        | BinaryOp::GeluBackward
        | BinaryOp::GeluTanhBackward
        | BinaryOp::SiluBackward
        | BinaryOp::SigmoidBackward => 4.0,
        _ => 0.0,
    };
    let tolerance = |d: DType| move |_: usize, w: f64| tol * ulp(w.abs().max(floor), d);
    let check = |what: &str, a: Value<'_>, b: Value<'_>, ca: Value<'_>, cb: Value<'_>| {
        let want = binary(op, ca, cb, None).unwrap();
        let got = binary(op, a, b, None).unwrap();
        assert_matches(&got, &want, &tolerance(want.dtype()), what);
    };
    let what = |case: &str, n: usize| format!("{}({dtype}) {case} n={n}", op.name());
    for n in SIZES {
        let (ba, bb) = (
            sample(rng, dtype, n + 1, true),
            sample(rng, dtype, n + 1, true),
        );
        let (ga, gb) = (ba.to_device(&dev).unwrap(), bb.to_device(&dev).unwrap());
        let (va, vb, wa, wb) = (
            flat_views(&ba, n),
            flat_views(&bb, n),
            flat_views(&ga, n),
            flat_views(&gb, n),
        );
        for i in 0..va.len() {
            // Same view kind on both sides, then mixed (dense with unaligned, with reversed).
            for j in [i, (i + 1) % va.len()] {
                check(
                    &what(&format!("{}+{}", va[i].0, vb[j].0), n),
                    Value::Tensor(&wa[i].1),
                    Value::Tensor(&wb[j].1),
                    Value::Tensor(&va[i].1),
                    Value::Tensor(&vb[j].1),
                );
            }
        }
        // A scalar on either side (converted to the compute dtype), and both scalars into out.
        let s = if dtype.is_float() {
            Scalar::Float(1.5)
        } else if dtype == DType::Bool {
            Scalar::Bool(true)
        } else {
            Scalar::Int(3)
        };
        let (dense_c, dense_g) = (&va[0].1, &wa[0].1);
        check(
            &what("array+scalar", n),
            Value::Tensor(dense_g),
            Value::Scalar(s),
            Value::Tensor(dense_c),
            Value::Scalar(s),
        );
        check(
            &what("scalar+unaligned", n),
            Value::Scalar(s),
            Value::Tensor(&wb[1].1),
            Value::Scalar(s),
            Value::Tensor(&vb[1].1),
        );
        // In place: a += b.
        let want = binary(op, Value::Tensor(dense_c), Value::Tensor(&vb[0].1), None).unwrap();
        if want.dtype() == dtype {
            let acc = dense_g.copy_data().unwrap();
            let got = binary(op, Value::Tensor(&acc), Value::Tensor(&wb[0].1), Some(&acc)).unwrap();
            assert_matches(&got, &want, &tolerance(dtype), &what("in place", n));
        }
    }
    // Broadcast rows: (R, C) with a (C,) row on either side, C a multiple of every pack (the
    // rows kernel) or not (strided), unaligned rows too; and the column broadcast (R, 1).
    for (r, c, off) in [
        (5usize, 64usize, 0usize),
        (37, 128, 0),
        (3, 33, 0),
        (4, 64, 1),
    ] {
        let (m, row) = (
            sample(rng, dtype, r * c + 1, true),
            sample(rng, dtype, c + 1, true),
        );
        let (gm, grow) = (m.to_device(&dev).unwrap(), row.to_device(&dev).unwrap());
        let mat = |x: &Tensor| x.as_strided(&[r, c], &[c as isize, 1], off).unwrap();
        let vec = |x: &Tensor| x.as_strided(&[c], &[1], off).unwrap();
        let col = |x: &Tensor| x.as_strided(&[r, 1], &[1, 1], off).unwrap();
        let name = format!("rows ({r},{c}) offset {off}");
        let (cm, cr, gmv, grv) = (mat(&m), vec(&row), mat(&gm), vec(&grow));
        check(
            &what(&format!("{name} matrix+row"), r * c),
            Value::Tensor(&gmv),
            Value::Tensor(&grv),
            Value::Tensor(&cm),
            Value::Tensor(&cr),
        );
        check(
            &what(&format!("{name} row+matrix"), r * c),
            Value::Tensor(&grv),
            Value::Tensor(&gmv),
            Value::Tensor(&cr),
            Value::Tensor(&cm),
        );
        let (cc, gc) = (col(&row), col(&grow));
        check(
            &what(&format!("{name} matrix+column"), r * c),
            Value::Tensor(&gmv),
            Value::Tensor(&gc),
            Value::Tensor(&cm),
            Value::Tensor(&cc),
        );
        // A transposed matrix against a row: the general path.
        let t = |x: &Tensor| x.as_strided(&[c, r], &[1, c as isize], off).unwrap();
        let rv = |x: &Tensor| x.as_strided(&[r], &[1], off).unwrap();
        check(
            &what(&format!("{name} transposed+row"), r * c),
            Value::Tensor(&t(&gm)),
            Value::Tensor(&rv(&grow)),
            Value::Tensor(&t(&m)),
            Value::Tensor(&rv(&row)),
        );
    }
}

/// Runs the unary tests of the ops at positions `range` of `UnaryOp::ALL`.
fn unary_ops(range: std::ops::Range<usize>, seed: u64) {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(seed);
    for &op in &UnaryOp::ALL[range] {
        for dtype in unary_dtypes(op) {
            unary_case(dev, op, dtype, &mut rng);
        }
    }
}

/// Runs the binary tests of the ops at positions `range` of `BinaryOp::ALL`.
fn binary_ops(range: std::ops::Range<usize>, seed: u64) {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(seed);
    for &op in &BinaryOp::ALL[range] {
        for dtype in binary_dtypes(op) {
            binary_case(dev, op, dtype, &mut rng);
        }
    }
}

// Split in parts so that the test threads compile the modules in parallel.
#[test]
fn unary_ops_first_part_match_the_cpu() {
    unary_ops(0..12, 31);
}

#[test]
fn unary_ops_second_part_match_the_cpu() {
    unary_ops(12..24, 32);
}

#[test]
fn unary_ops_third_part_match_the_cpu() {
    unary_ops(24..UnaryOp::ALL.len(), 33);
}

#[test]
fn binary_arithmetic_ops_match_the_cpu() {
    binary_ops(0..9, 34);
}

#[test]
fn binary_float_and_bitwise_ops_match_the_cpu() {
    binary_ops(9..19, 35);
}

#[test]
fn binary_logical_and_comparison_ops_match_the_cpu() {
    binary_ops(19..BinaryOp::ALL.len(), 36);
}

#[test]
fn both_scalar_operands_write_out() {
    let Some(dev) = gpu() else { return };
    let run = |d: Device| {
        let out = Tensor::zeros(&[3, 5], DType::F32, &d).unwrap();
        let view = out.as_strided(&[5, 3], &[1, 5], 0).unwrap();
        binary(
            BinaryOp::Multiply,
            Value::Scalar(Scalar::Float(1.5)),
            Value::Scalar(Scalar::Int(4)),
            Some(&view),
        )
        .unwrap();
        let flags = Tensor::zeros(&[4], DType::Bool, &d).unwrap();
        binary(
            BinaryOp::Less,
            Value::Scalar(Scalar::Int(2)),
            Value::Scalar(Scalar::Float(2.5)),
            Some(&flags),
        )
        .unwrap();
        (out, flags)
    };
    let ((gc, gf), (cc, cf)) = (run(dev), run(Device::Cpu));
    assert_matches(&gc, &cc, &ulps(0.0, DType::F32), "scalar * scalar");
    assert_matches(&gf, &cf, &ulps(0.0, DType::F32), "scalar < scalar");
}

// ---- Reductions ----

/// Values for a reduction of `dtype`: as `sample`, but products near 1 (so that long products
/// neither overflow nor vanish) and some repeated values (ties for argmax).
fn reduce_sample(rng: &mut Rng, op: ReduceOp, dtype: DType, n: usize) -> Tensor {
    if op == ReduceOp::Prod && dtype.is_float() {
        let v: Vec<f64> = (0..n).map(|_| 1.0 + rng.uniform() / 16.0).collect();
        return Tensor::from_vec(v, &[n]).unwrap().to_dtype(dtype).unwrap();
    }
    let special = matches!(
        op,
        ReduceOp::Max | ReduceOp::Min | ReduceOp::Argmax | ReduceOp::Argmin
    ) && rng.below(2) == 0;
    if matches!(op, ReduceOp::Argmax | ReduceOp::Argmin) && !dtype.is_float() {
        // Few distinct values: many ties.
        let v: Vec<i64> = (0..n).map(|_| rng.below(5) as i64).collect();
        return Tensor::from_vec(v, &[n]).unwrap().to_dtype(dtype).unwrap();
    }
    sample(rng, dtype, n, special)
}

/// `op` of `x` over `axes` (None: all).
fn reduce_with(op: ReduceOp, x: &Tensor, axes: Option<&[isize]>) -> Tensor {
    match op {
        ReduceOp::Sum | ReduceOp::Prod => sum_prod(op, x, axes, false, None).unwrap(),
        ReduceOp::Max | ReduceOp::Min => max_min(op, x, axes, false).unwrap(),
        ReduceOp::All | ReduceOp::Any => all_any(op, x, axes, false).unwrap(),
        ReduceOp::Argmax | ReduceOp::Argmin => {
            let axis = axes.map(|a| {
                assert_eq!(a.len(), 1, "argmax takes one axis");
                a[0]
            });
            arg_extreme(op, x, axis, false).unwrap()
        }
    }
}

/// The tolerance of a float reduction of `l` elements of `x` (values within 4): the
/// accumulator's rounding over the sum's magnitude, plus the result's rounding.
fn reduce_tol(op: ReduceOp, dtype: DType, l: usize) -> impl Fn(usize, f64) -> f64 {
    let acc_eps = if dtype == DType::F64 {
        f64::EPSILON
    } else {
        f32::EPSILON as f64
    };
    move |_, w| {
        let scale = match op {
            ReduceOp::Sum => 4.0 * l as f64,
            ReduceOp::Prod => w.abs(),
            _ => 0.0,
        };
        2.0 * (l as f64).sqrt().max(1.0) * acc_eps * scale * 4.0 + 2.0 * ulp(w, dtype)
    }
}

/// Compares `op` over `axes` of the view `f(base)` on both devices.
fn reduce_check(
    dev: Device,
    op: ReduceOp,
    (base, f): (&Tensor, &dyn Fn(&Tensor) -> Tensor),
    axes: Option<&[isize]>,
    l: usize,
    what: &str,
) {
    let c = f(base);
    let g = f(&base.to_device(&dev).unwrap());
    let want = reduce_with(op, &c, axes);
    let got = reduce_with(op, &g, axes);
    let what = format!("{}({}) {what}", op.name(), c.dtype());
    assert_matches(&got, &want, &reduce_tol(op, c.dtype(), l), &what);
}

fn reduce_dtypes(op: ReduceOp) -> Vec<DType> {
    match op {
        ReduceOp::All | ReduceOp::Any => vec![DType::Bool, DType::F32, DType::I16],
        _ => DType::ALL.to_vec(),
    }
}

/// Every reduction path for `op` and `dtype`: inner rows (warp and block, split), outer
/// columns (vectorized and not), whole arrays (dense and transposed), a middle axis and
/// reversed views, empty reductions and empty outputs.
fn reduce_case(dev: Device, op: ReduceOp, dtype: DType, rng: &mut Rng) {
    let lengths = [1usize, 31, 32, 33, 255, 256, 257, 4097];
    for l in lengths {
        // Inner: 3 rows of l (and one unaligned start).
        let base = reduce_sample(rng, op, dtype, 3 * l + 1);
        for off in [0, 1] {
            let rows = move |x: &Tensor| x.as_strided(&[3, l], &[l as isize, 1], off).unwrap();
            reduce_check(
                dev,
                op,
                (&base, &rows),
                Some(&[-1]),
                l,
                &format!("inner l={l} +{off}"),
            );
        }
        // Outer: l rows of 64 (vectorized) or 33 columns, reduced over axis 0.
        for c in [64usize, 33] {
            let base = reduce_sample(rng, op, dtype, l * c);
            let m = move |x: &Tensor| x.as_strided(&[l, c], &[c as isize, 1], 0).unwrap();
            reduce_check(
                dev,
                op,
                (&base, &m),
                Some(&[0]),
                l,
                &format!("outer l={l} c={c}"),
            );
        }
        // General: the middle axis of (5, l, 7), and a reversed last axis.
        let base = reduce_sample(rng, op, dtype, 35 * l);
        let mid = move |x: &Tensor| {
            x.as_strided(&[5, l, 7], &[7 * l as isize, 7, 1], 0)
                .unwrap()
        };
        reduce_check(
            dev,
            op,
            (&base, &mid),
            Some(&[1]),
            l,
            &format!("middle l={l}"),
        );
        let rev = move |x: &Tensor| x.as_strided(&[5, l], &[l as isize, -1], l - 1).unwrap();
        reduce_check(
            dev,
            op,
            (&base, &rev),
            Some(&[1]),
            l,
            &format!("reversed l={l}"),
        );
    }
    // Whole arrays: dense (split over blocks) and transposed (general, split).
    for n in [1usize, 257, 4097, (1 << 20) + 3] {
        let long_ok = matches!(dtype, DType::F32 | DType::BF16 | DType::I32 | DType::Bool);
        if n > 4097 && (!long_ok || op == ReduceOp::Prod) {
            continue;
        }
        let base = reduce_sample(rng, op, dtype, n);
        let flat = |x: &Tensor| x.clone();
        reduce_check(dev, op, (&base, &flat), None, n, &format!("all n={n}"));
        if n == 4097 {
            let t = |x: &Tensor| x.as_strided(&[17, 241], &[1, 17], 0).unwrap();
            reduce_check(dev, op, (&base, &t), None, n, "all transposed");
        }
    }
    // Empty reduced length (sum 0, product 1, all true, any false) and empty outputs.
    if !matches!(
        op,
        ReduceOp::Max | ReduceOp::Min | ReduceOp::Argmax | ReduceOp::Argmin
    ) {
        let empty = Tensor::zeros(&[3, 0], dtype, &Device::Cpu).unwrap();
        let id = |x: &Tensor| x.clone();
        reduce_check(
            dev,
            op,
            (&empty, &id),
            Some(&[-1]),
            0,
            "empty reduced length",
        );
    }
    let none = Tensor::zeros(&[0, 5], dtype, &Device::Cpu).unwrap();
    let id = |x: &Tensor| x.clone();
    reduce_check(dev, op, (&none, &id), Some(&[-1]), 5, "no outputs");
}

fn reduce_ops(ops: &[ReduceOp], seed: u64) {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(seed);
    for &op in ops {
        for dtype in reduce_dtypes(op) {
            reduce_case(dev, op, dtype, &mut rng);
        }
    }
}

#[test]
fn sums_and_products_match_the_cpu() {
    reduce_ops(&[ReduceOp::Sum, ReduceOp::Prod], 41);
}

#[test]
fn max_min_all_any_match_the_cpu() {
    reduce_ops(
        &[ReduceOp::Max, ReduceOp::Min, ReduceOp::All, ReduceOp::Any],
        42,
    );
}

#[test]
fn argmax_argmin_match_the_cpu() {
    reduce_ops(&[ReduceOp::Argmax, ReduceOp::Argmin], 43);
}

#[test]
fn large_rows_and_columns_split_over_blocks() {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(44);
    // Few long rows (inner, split) and few rows of many columns (outer, split).
    for (shape, axis) in [(&[2usize, 300_001][..], -1isize), (&[3000, 700][..], 0)] {
        for dtype in [DType::F32, DType::BF16, DType::I8, DType::F64] {
            let n = shape.iter().product();
            let base = sample(&mut rng, dtype, n, false);
            let sh = shape.to_vec();
            let f = move |x: &Tensor| x.reshape(&[sh[0] as isize, sh[1] as isize], None).unwrap();
            let l = shape[if axis == 0 { 0 } else { 1 }];
            for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Argmin] {
                reduce_check(
                    dev,
                    op,
                    (&base, &f),
                    Some(&[axis]),
                    l,
                    &format!("{shape:?}"),
                );
            }
        }
    }
}

// ---- Scans ----

#[test]
fn cumulative_sums_and_products_match_the_cpu() {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(45);
    for op in [ScanOp::Sum, ScanOp::Prod] {
        let rop = if op == ScanOp::Sum {
            ReduceOp::Sum
        } else {
            ReduceOp::Prod
        };
        for dtype in DType::ALL {
            for (shape, axis) in [
                (&[1usize][..], 0isize),
                (&[1000][..], 0),
                (&[4, 33][..], -1),
                (&[33, 4][..], 0),
                (&[3, 70, 5][..], 1),
            ] {
                let n: usize = shape.iter().product();
                let base = reduce_sample(&mut rng, rop, dtype, n);
                let sh: Vec<isize> = shape.iter().map(|&s| s as isize).collect();
                let gbase = base.to_device(&dev).unwrap();
                for initial in [false, true] {
                    let run = |x: &Tensor| {
                        let v = x.reshape(&sh, None).unwrap();
                        cumulative(op, &v, Some(axis), None, initial).unwrap()
                    };
                    let (want, got) = (run(&base), run(&gbase));
                    let l = shape[if axis < 0 {
                        shape.len() - 1
                    } else {
                        axis as usize
                    }];
                    let what = format!(
                        "{}({dtype}) {shape:?} axis {axis} initial {initial}",
                        op.name()
                    );
                    assert_matches(&got, &want, &reduce_tol(rop, dtype, l), &what);
                }
            }
        }
    }
}
