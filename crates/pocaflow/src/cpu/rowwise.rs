//! The row-wise ops of `pf.nn` (softmax, log-softmax, layer and RMS norm, and their backward
//! ops) on host buffers.
//!
//! Each row is widened once into a scratch row of the compute type (`f32` for half types),
//! so the two or three passes a row needs run in L1/L2 and every output is rounded once. The
//! passes keep 16 independent lanes for their sums and maxima, which the compiler turns into
//! vector registers; the whole walk is compiled for AVX-512 or AVX2+FMA where the CPU has them
//! (chosen at run time), with `exp` as [`exp_f32_with`]'s polynomial. Rows are spread over
//! rayon's threads in blocks.

use super::math::{exp_f32_with, Float, FloatElem};
use super::storage::CpuStorage;
use crate::backend::RowArgs;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::host::CpuBuffer;
use crate::layout::Layout;
use crate::plan::{RowOp, RowPlan};
use rayon::prelude::*;
use std::sync::RwLockReadGuard;

/// Elements from which the rows spread over threads.
const PARALLEL_ELEMENTS: usize = 1 << 15;

/// Lanes of the sums and maxima.
const LANES: usize = 16;

/// The compute types: `exp` as the vectorizable polynomial for `f32` (fused when `FMA`), the
/// library's for `f64`.
trait RowFloat: Float {
    fn exp_v<const FMA: bool>(self) -> Self;
}

impl RowFloat for f32 {
    #[inline(always)]
    fn exp_v<const FMA: bool>(self) -> f32 {
        exp_f32_with::<FMA>(self)
    }
}

impl RowFloat for f64 {
    #[inline(always)]
    fn exp_v<const FMA: bool>(self) -> f64 {
        self.exp()
    }
}

/// `Σ f(a[i], b[i])` in [`LANES`] lanes, added in order at the end (slices of one length).
#[inline(always)]
fn lane_sum2<C: Float>(a: &[C], b: &[C], f: impl Fn(C, C) -> C) -> C {
    let mut acc = [C::ZERO; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] = acc[l] + f(x[l], y[l]);
        }
    }
    for (l, (&x, &y)) in ta.iter().zip(tb).enumerate() {
        acc[l] = acc[l] + f(x, y);
    }
    acc.iter().fold(C::ZERO, |s, &v| s + v)
}

/// `Σ f(a[i])` in [`LANES`] lanes.
#[inline(always)]
fn lane_sum<C: Float>(a: &[C], f: impl Fn(C) -> C) -> C {
    lane_sum2(a, a, |x, _| f(x))
}

/// `s[i] = e^(s[i] - max)`, returning `Σ s[i]` (in [`LANES`] lanes).
#[inline(always)]
fn exp_shifted<C: RowFloat, const FMA: bool>(s: &mut [C], max: C) -> C {
    let mut acc = [C::ZERO; LANES];
    let mut chunks = s.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            c[l] = (c[l] - max).exp_v::<FMA>();
            acc[l] = acc[l] + c[l];
        }
    }
    for (l, v) in chunks.into_remainder().iter_mut().enumerate() {
        *v = (*v - max).exp_v::<FMA>();
        acc[l] = acc[l] + *v;
    }
    acc.iter().fold(C::ZERO, |a, &v| a + v)
}

/// The largest of `x` in [`LANES`] lanes (NaN is skipped here; it reaches the result through
/// the sums).
#[inline(always)]
fn lane_max<C: Float>(x: &[C]) -> C {
    let mut acc = [x[0]; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] = if c[l] > acc[l] { c[l] } else { acc[l] };
        }
    }
    for &v in tail {
        acc[0] = if v > acc[0] { v } else { acc[0] };
    }
    acc.iter().fold(acc[0], |a, &b| if b > a { b } else { a })
}

/// `dst[i] = T::down(f(s[i], i))`.
#[inline(always)]
fn store<T: FloatElem>(dst: &mut [T], s: &[T::C], f: impl Fn(T::C, usize) -> T::C) {
    for (i, (d, &v)) in dst.iter_mut().zip(s).enumerate() {
        *d = T::down(f(v, i));
    }
}

/// One row's operands, as slices of `n` elements (`weight` and `bias` are shared by all rows).
struct Row<'a, T> {
    x: &'a [T],
    dy: Option<&'a [T]>,
    weight: Option<&'a [T]>,
    bias: Option<&'a [T]>,
}

/// `s = x.up()` elementwise.
#[inline(always)]
fn widen<T: FloatElem>(s: &mut [T::C], x: &[T]) {
    for (s, &x) in s.iter_mut().zip(x) {
        *s = x.up();
    }
}

/// Computes `plan.op` on one row into `out` (and `stats`), with `s` and `g` as scratch rows of
/// `n` compute values (`g` holds `dy`, times the weight for the norms).
#[inline(always)]
fn row<T: FloatElem, const FMA: bool>(
    op: RowOp,
    eps: T::C,
    r: &Row<'_, T>,
    out: &mut [T],
    stats: &mut [T::C],
    (s, g): (&mut [T::C], &mut [T::C]),
) where
    T::C: RowFloat,
{
    let n = out.len();
    let nf = T::C::of(n as f64);
    widen(s, r.x);
    if let Some(dy) = r.dy {
        widen(g, dy);
    }
    let w = |i: usize| r.weight.map_or(T::C::ONE, |w| w[i].up());
    let b = |i: usize| r.bias.map_or(T::C::ZERO, |b| b[i].up());
    match op {
        RowOp::Softmax => {
            let max = lane_max(s);
            let inv = T::C::ONE / exp_shifted::<T::C, FMA>(s, max);
            store(out, s, |v, _| v * inv);
        }
        RowOp::LogSoftmax => {
            let max = lane_max(s);
            let ln = lane_sum(s, |v| (v - max).exp_v::<FMA>()).ln();
            store(out, s, |v, _| v - max - ln);
        }
        RowOp::SoftmaxBackward => {
            let dot = lane_sum2(g, s, |d, y| d * y);
            let g = &*g;
            store(out, s, |y, i| y * (g[i] - dot));
        }
        RowOp::LogSoftmaxBackward => {
            let sum = lane_sum(g, |d| d);
            let g = &*g;
            store(out, s, |y, i| g[i] - y.exp_v::<FMA>() * sum);
        }
        RowOp::LayerNorm | RowOp::LayerNormBackward => {
            let mean = lane_sum(s, |v| v) / nf;
            for v in s.iter_mut() {
                *v = *v - mean;
            }
            let var = lane_sum(s, |v| v * v) / nf;
            let rstd = T::C::ONE / (var + eps).sqrt();
            if op == RowOp::LayerNorm {
                store(out, s, |v, i| v * rstd * w(i) + b(i));
            } else {
                for v in s.iter_mut() {
                    *v = *v * rstd;
                }
                norm_backward::<T>(rstd, s, g, out, &w, true);
                stats[0] = mean;
                stats[1] = rstd;
            }
        }
        RowOp::RmsNorm | RowOp::RmsNormBackward => {
            let ms = lane_sum(s, |v| v * v) / nf;
            let rstd = T::C::ONE / (ms + eps).sqrt();
            if op == RowOp::RmsNorm {
                store(out, s, |v, i| v * rstd * w(i));
            } else {
                for v in s.iter_mut() {
                    *v = *v * rstd;
                }
                norm_backward::<T>(rstd, s, g, out, &w, false);
                stats[0] = T::C::ZERO;
                stats[1] = rstd;
            }
        }
    }
}

/// `dx = rstd (g - mean(g) - xhat mean(g xhat))` with `g = dy * weight` (the `mean(g)` term
/// only when `centered`, as layer norm), from the normalized row `xhat` and `g` holding `dy`.
#[inline(always)]
fn norm_backward<T: FloatElem>(
    rstd: T::C,
    xhat: &[T::C],
    g: &mut [T::C],
    out: &mut [T],
    w: &impl Fn(usize) -> T::C,
    centered: bool,
) {
    let nf = T::C::of(out.len() as f64);
    for (i, g) in g.iter_mut().enumerate() {
        *g = *g * w(i);
    }
    let mean_g = if centered {
        lane_sum(g, |v| v) / nf
    } else {
        T::C::ZERO
    };
    let mean_gx = lane_sum2(g, xhat, |a, b| a * b) / nf;
    let g = &*g;
    store(out, xhat, |xh, i| rstd * (g[i] - mean_g - xh * mean_gx));
}

/// Runs `plan` over a block of rows (`out` and `stats` hold exactly those rows).
#[inline(always)]
fn rows_block<T: FloatElem, const FMA: bool>(
    plan: &RowPlan,
    first: usize,
    ops: &Row<'_, T>,
    out: &mut [T],
    stats: &mut [T::C],
) where
    T::C: RowFloat,
{
    let n = plan.n;
    let mut s = vec![T::C::ZERO; n];
    let mut g = vec![T::C::ZERO; if plan.op.is_backward() { n } else { 0 }];
    let eps = T::C::of(plan.eps);
    let with_stats = !stats.is_empty();
    for (k, o) in out.chunks_exact_mut(n).enumerate() {
        let at = (first + k) * n..(first + k + 1) * n;
        let r = Row {
            x: &ops.x[at.clone()],
            dy: ops.dy.map(|d| &d[at]),
            weight: ops.weight,
            bias: ops.bias,
        };
        let st = if with_stats {
            &mut stats[2 * k..2 * k + 2]
        } else {
            &mut []
        };
        row::<T, FMA>(plan.op, eps, &r, o, st, (&mut s, &mut g));
    }
}

/// [`rows_block`] compiled for AVX-512.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn rows_avx512<T: FloatElem>(
    plan: &RowPlan,
    first: usize,
    ops: &Row<'_, T>,
    out: &mut [T],
    stats: &mut [T::C],
) where
    T::C: RowFloat,
{
    rows_block::<T, true>(plan, first, ops, out, stats)
}

/// [`rows_block`] compiled for AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_avx2<T: FloatElem>(
    plan: &RowPlan,
    first: usize,
    ops: &Row<'_, T>,
    out: &mut [T],
    stats: &mut [T::C],
) where
    T::C: RowFloat,
{
    rows_block::<T, true>(plan, first, ops, out, stats)
}

/// [`rows_block`] for the best vector ISA the CPU has.
fn rows_best<T: FloatElem>(
    plan: &RowPlan,
    first: usize,
    ops: &Row<'_, T>,
    out: &mut [T],
    stats: &mut [T::C],
) where
    T::C: RowFloat,
{
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { rows_avx512(plan, first, ops, out, stats) };
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { rows_avx2(plan, first, ops, out, stats) };
        }
    }
    rows_block::<T, false>(plan, first, ops, out, stats)
}

/// The `len` elements of `buf` from `layout`'s offset (C-contiguous layouts).
fn slice<'a, T: crate::Element>(buf: &'a CpuBuffer, layout: &Layout) -> &'a [T] {
    let s = buf.as_slice::<T>().expect("the row dtype");
    &s[layout.offset()..layout.offset() + layout.numel()]
}

fn run<T: FloatElem>(
    plan: &RowPlan,
    ops: &Row<'_, T>,
    out: &mut [T],
    stats: Option<&mut [T::C]>,
) -> Result<()>
where
    T::C: RowFloat + crate::Element,
{
    let n = plan.n;
    let mut empty: [T::C; 0] = [];
    let stats = stats.unwrap_or(&mut empty);
    let block = (PARALLEL_ELEMENTS / n).max(1);
    if plan.rows * n < PARALLEL_ELEMENTS || rayon::current_num_threads() < 2 {
        rows_best(plan, 0, ops, out, stats);
        return Ok(());
    }
    let stat_block = if stats.is_empty() { 0 } else { 2 * block };
    // (first row, its outputs, its statistics) per block.
    type Block<'b, T, C> = (usize, &'b mut [T], &'b mut [C]);
    let mut parts: Vec<Block<'_, T, T::C>> = Vec::new();
    let (mut rest, mut srest) = (out, stats);
    let mut first = 0;
    while !rest.is_empty() {
        let rows = block.min(rest.len() / n);
        let (o, r) = rest.split_at_mut(rows * n);
        let (s, sr) = srest.split_at_mut(stat_block.min(srest.len()));
        parts.push((first, o, s));
        first += rows;
        rest = r;
        srest = sr;
    }
    parts
        .into_par_iter()
        .for_each(|(first, o, s)| rows_best(plan, first, ops, o, s));
    Ok(())
}

/// See `BackendStorage::rowwise`.
pub(crate) fn rowwise(
    dst: &CpuStorage,
    dl: &Layout,
    plan: &RowPlan,
    args: &RowArgs<'_, CpuStorage>,
) -> Result<()> {
    // One read lock per distinct input storage (dy and y may be one array).
    let inputs = [Some(args.x), args.dy, args.weight, args.bias];
    let mut held: Vec<(&CpuStorage, RwLockReadGuard<'_, CpuBuffer>)> = Vec::new();
    for (s, _) in inputs.iter().flatten() {
        if !held.iter().any(|(h, _)| std::ptr::eq(*h, *s)) {
            held.push((s, s.read()));
        }
    }
    let buf = |s: &CpuStorage| -> &CpuBuffer {
        &held
            .iter()
            .find(|(h, _)| std::ptr::eq(*h, s))
            .expect("held")
            .1
    };
    let mut out = dst.write();
    let mut stats = args.stats.map(|(s, l)| (s.write(), l));
    macro_rules! go {
        ($t:ty, $c:ty) => {{
            let view = |o: Option<(&CpuStorage, &Layout)>| o.map(|(s, l)| slice::<$t>(buf(s), l));
            let ops = Row::<$t> {
                x: slice(buf(args.x.0), args.x.1),
                dy: view(args.dy),
                weight: view(args.weight),
                bias: view(args.bias),
            };
            let o = out.as_mut_slice::<$t>().expect("the row dtype");
            let o = &mut o[dl.offset()..dl.offset() + dl.numel()];
            let st = stats.as_mut().map(|(g, l)| {
                let s = g.as_mut_slice::<$c>().expect("the statistics dtype");
                &mut s[l.offset()..l.offset() + l.numel()]
            });
            run::<$t>(plan, &ops, o, st)
        }};
    }
    match out.dtype() {
        DType::F16 => go!(half::f16, f32),
        DType::BF16 => go!(half::bf16, f32),
        DType::F32 => go!(f32, f32),
        DType::F64 => go!(f64, f64),
        d => Err(Error::DType(format!(
            "{}: expected a floating-point dtype, got {d}",
            plan.op.name()
        ))),
    }
}

/// One row's cross-entropy: the loss into `loss[0]`, or the gradient row times `scale` into
/// `grad` (with `s` as scratch).
#[inline(always)]
fn cross_entropy_row<T: FloatElem>(x: &[T], t: usize, s: &mut [T::C], out: Out<'_, T>)
where
    T::C: RowFloat,
{
    widen(s, x);
    let max = lane_max(s);
    match out {
        Out::Loss(l) => {
            let sum = lane_sum(s, |v| (v - max).exp_v::<false>());
            l[0] = T::down(sum.ln() + max - s[t]);
        }
        Out::Grad(g, scale) => {
            let inv = T::C::ONE / exp_shifted::<T::C, false>(s, max);
            store(g, s, |v, _| v * inv * scale);
            g[t] = T::down((s[t] * inv - T::C::ONE) * scale);
        }
    }
}

/// Where one row's cross-entropy goes.
enum Out<'a, T: FloatElem> {
    Loss(&'a mut [T]),
    Grad(&'a mut [T], T::C),
}

/// See `BackendStorage::cross_entropy`.
pub(crate) fn cross_entropy(
    dst: &CpuStorage,
    dl: &Layout,
    (logits, ll): (&CpuStorage, &Layout),
    (target, tl): (&CpuStorage, &Layout),
    grad: Option<f64>,
) -> Result<()> {
    let c = *ll.shape().last().expect("2-D logits");
    let (gl, gt) = (logits.read(), target.read());
    let t = slice::<i64>(&gt, tl);
    if let Some(&bad) = t.iter().find(|&&v| v < 0 || v as u64 >= c as u64) {
        return Err(Error::Index(format!(
            "cross_entropy: target {bad} is outside [0, {c}) (the number of classes)"
        )));
    }
    let mut out = dst.write();
    macro_rules! go {
        ($t:ty) => {{
            let x = slice::<$t>(&gl, ll);
            let o = out.as_mut_slice::<$t>().expect("the logits' dtype");
            let o = &mut o[dl.offset()..dl.offset() + dl.numel()];
            let mut s = vec![<<$t as FloatElem>::C as Float>::ZERO; c];
            match grad {
                None => {
                    for ((l, x), &t) in o.chunks_exact_mut(1).zip(x.chunks_exact(c)).zip(t) {
                        cross_entropy_row::<$t>(x, t as usize, &mut s, Out::Loss(l));
                    }
                }
                Some(scale) => {
                    let scale = <<$t as FloatElem>::C as Float>::of(scale);
                    for ((g, x), &t) in o.chunks_exact_mut(c).zip(x.chunks_exact(c)).zip(t) {
                        cross_entropy_row::<$t>(x, t as usize, &mut s, Out::Grad(g, scale));
                    }
                }
            }
            Ok(())
        }};
    }
    match gl.dtype() {
        DType::F16 => go!(half::f16),
        DType::BF16 => go!(half::bf16),
        DType::F32 => go!(f32),
        DType::F64 => go!(f64),
        d => Err(Error::DType(format!(
            "cross_entropy: expected floating-point logits, got {d}"
        ))),
    }
}
