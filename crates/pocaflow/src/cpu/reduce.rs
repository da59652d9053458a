//! Reductions and scans on host buffers.
//!
//! A reduction is a [`Reducer`] (an accumulator with `step` and an order-respecting `merge`)
//! driven over the plan's view in one of two ways:
//! - *rows* (the general case): each output element folds the runs of its reduced elements;
//!   a unit-stride run is reduced pairwise (blocks of [`BLOCK`] split in halves, 16
//!   independent lanes inside a block, which the compiler vectorizes), so float32 sums have an
//!   error of `O(log n)` ulps, not `O(n)`. Outputs are spread over threads, or, for a single
//!   long contiguous reduction (`axis=None`), chunks of it.
//! - *columns*: when the kept dimensions merge into one unit-stride dimension (a sum over
//!   axis 0 of a C-order matrix), rows of the operand are added into a row of accumulators,
//!   which streams through memory once; column chunks are spread over threads.

use super::math::{Float, FloatElem};
use super::storage::CpuStorage;
use super::walk::{for_each_run, merged, run_offsets};
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::host::CpuBuffer;
use crate::layout::Layout;
use crate::plan::{ReduceOp, ReducePlan, ScanOp};
use rayon::prelude::*;

/// Elements per pairwise leaf.
const BLOCK: usize = 4096;
/// Independent accumulators inside a leaf.
const LANES: usize = 16;
/// Elements from which a reduction spreads over threads.
const PARALLEL_ELEMENTS: usize = 1 << 17;

/// An associative fold over elements of type `In` with accumulator `Acc`. `merge(a, b)` combines
/// the accumulators of two consecutive stretches, `a` first; `step` gets the element's position
/// in the reduced C order (for `argmax` / `argmin`).
trait Reducer: Copy + Send + Sync {
    type In: Copy + Send + Sync;
    type Acc: Copy + Send + Sync;
    type Out: Copy + Send + Sync;
    fn init(self) -> Self::Acc;
    fn step(self, acc: Self::Acc, x: Self::In, i: usize) -> Self::Acc;
    fn merge(self, a: Self::Acc, b: Self::Acc) -> Self::Acc;
    fn finish(self, acc: Self::Acc) -> Self::Out;

    /// The fold of a leaf of at most [`BLOCK`] contiguous elements whose first has position
    /// `base`: [`LANES`] independent accumulators, merged as a tree.
    #[inline(always)]
    fn leaf(self, x: &[Self::In], base: usize) -> Self::Acc {
        lanes_leaf(self, x, base)
    }
}

/// [`Reducer::leaf`]'s fold: lane `l` steps through positions `l, l + LANES, ...`.
#[inline(always)]
fn lanes_leaf<R: Reducer>(r: R, x: &[R::In], base: usize) -> R::Acc {
    let mut lanes = [r.init(); LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for (c, chunk) in chunks.enumerate() {
        for l in 0..LANES {
            lanes[l] = r.step(lanes[l], chunk[l], base + c * LANES + l);
        }
    }
    let t0 = base + x.len() - tail.len();
    for (l, &v) in tail.iter().enumerate() {
        lanes[l] = r.step(lanes[l], v, t0 + l);
    }
    merge_lanes(r, lanes)
}

/// Lane `l` holds positions `l, l + LANES, ...`: merged as a tree (every order-sensitive
/// reducer compares the positions it carries, so the tree keeps first positions first).
#[inline(always)]
fn merge_lanes<R: Reducer>(r: R, mut lanes: [R::Acc; LANES]) -> R::Acc {
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            lanes[l] = r.merge(lanes[l], lanes[l + width]);
        }
    }
    lanes[0]
}

/// Pairwise reduction of a contiguous run whose first element has position `base`.
fn fold_slice<R: Reducer>(r: R, x: &[R::In], base: usize) -> R::Acc {
    if x.len() > BLOCK {
        let mid = (x.len() / 2).next_multiple_of(LANES);
        let (a, b) = x.split_at(mid);
        return r.merge(fold_slice(r, a, base), fold_slice(r, b, base + mid));
    }
    r.leaf(x, base)
}

/// Accumulators of consecutive stretches, merged pairwise as they arrive (a binary counter:
/// two stretches of the same level merge into one of the next), so that folding many short
/// runs keeps the `O(log n)` error of a pairwise sum.
struct Cascade<A>(Vec<(u32, A)>);

impl<A: Copy> Cascade<A> {
    fn push<R: Reducer<Acc = A>>(&mut self, r: R, mut acc: A) {
        let mut level = 0;
        while let Some(&(l, a)) = self.0.last() {
            if l != level {
                break;
            }
            self.0.pop();
            acc = r.merge(a, acc);
            level += 1;
        }
        self.0.push((level, acc));
    }

    fn finish<R: Reducer<Acc = A>>(self, r: R) -> A {
        self.0.into_iter().fold(r.init(), |x, (_, a)| r.merge(x, a))
    }
}

/// Folds the reduced elements of one output (the view `src` from `offset`, shape `shape`,
/// `strides`): unit-stride runs of at least a leaf directly, everything else gathered into
/// leaves of [`BLOCK`] elements first, and the leaves pairwise.
fn fold_view<R: Reducer>(
    r: R,
    src: &[R::In],
    shape: &[usize],
    strides: &[isize],
    offset: usize,
) -> R::Acc {
    let mut cascade = Cascade(Vec::new());
    let mut buf: Vec<R::In> = Vec::new();
    let (mut pos, mut buf_base) = (0usize, 0usize);
    for_each_run(shape, [strides], [offset], |[o], n, [s]| {
        if s == 1 && buf.is_empty() && n >= BLOCK {
            for chunk in src[o..o + n].chunks(BLOCK) {
                cascade.push(r, fold_slice(r, chunk, pos));
                pos += chunk.len();
            }
            return;
        }
        let mut p = o as isize;
        for _ in 0..n {
            if buf.is_empty() {
                buf_base = pos;
            }
            buf.push(src[p as usize]);
            pos += 1;
            p += s;
            if buf.len() == BLOCK {
                cascade.push(r, fold_slice(r, &buf, buf_base));
                buf.clear();
            }
        }
    });
    if !buf.is_empty() {
        cascade.push(r, fold_slice(r, &buf, buf_base));
    }
    cascade.finish(r)
}

/// Runs `r` over `plan` into the dense `out`.
fn drive<R: Reducer>(r: R, out: &mut [R::Out], src: &[R::In], plan: &ReducePlan) {
    let l = &plan.src;
    let (kshape, rshape) = l.shape().split_at(plan.kept);
    let (kstr, rstr) = l.strides().split_at(plan.kept);
    let m = out.len();
    let total = m * plan.reduced_len();
    let parallel = total >= PARALLEL_ELEMENTS && rayon::current_num_threads() > 1;
    let kept_dims = merged(kshape, [kstr]);
    if let [(cols, [1])] = kept_dims[..] {
        if !rshape.iter().all(|&e| e <= 1) && cols >= LANES {
            return columns(r, out, src, l.offset(), rshape, rstr, parallel);
        }
    }
    let starts = run_offsets(kshape, kstr);
    let base = l.offset() as isize;
    // A single long contiguous reduction: fold chunks in parallel, merge in order.
    let single_run = merged(rshape, [rstr]);
    if m == 1 && parallel {
        if let [(n, [1])] = single_run[..] {
            let o = (base + starts[0]) as usize;
            let x = &src[o..o + n];
            let chunk = n.div_ceil(rayon::current_num_threads() * 4).max(BLOCK);
            let accs: Vec<R::Acc> = x
                .par_chunks(chunk)
                .enumerate()
                .map(|(c, part)| fold_slice(r, part, c * chunk))
                .collect();
            out[0] = r.finish(accs.into_iter().fold(r.init(), |a, b| r.merge(a, b)));
            return;
        }
    }
    let one = |(o, start): (&mut R::Out, &isize)| {
        *o = r.finish(fold_view(r, src, rshape, rstr, (base + start) as usize));
    };
    if parallel {
        out.par_iter_mut().zip(&starts).for_each(one);
    } else {
        out.iter_mut().zip(&starts).for_each(one);
    }
}

/// The columns path of [`drive`]: outputs are `out.len()` consecutive elements of every
/// reduced row.
fn columns<R: Reducer>(
    r: R,
    out: &mut [R::Out],
    src: &[R::In],
    offset: usize,
    rshape: &[usize],
    rstr: &[isize],
    parallel: bool,
) {
    let rows = run_offsets(rshape, rstr);
    let block = |c0: usize, out: &mut [R::Out]| {
        let mut acc = vec![r.init(); out.len()];
        for (i, &ro) in rows.iter().enumerate() {
            let start = (offset as isize + ro) as usize + c0;
            let row = &src[start..start + out.len()];
            for (a, &x) in acc.iter_mut().zip(row) {
                *a = r.step(*a, x, i);
            }
        }
        for (o, a) in out.iter_mut().zip(acc) {
            *o = r.finish(a);
        }
    };
    // Column blocks small enough that their accumulators stay in L1.
    const COLS: usize = 1024;
    if parallel {
        out.par_chunks_mut(COLS)
            .enumerate()
            .for_each(|(b, o)| block(b * COLS, o));
    } else {
        out.chunks_mut(COLS)
            .enumerate()
            .for_each(|(b, o)| block(b * COLS, o));
    }
}

/// Sums (or products, `PROD`) of floats, accumulated in the compute type.
#[derive(Clone, Copy)]
struct FloatFold<T, const PROD: bool>(std::marker::PhantomData<T>);

impl<T: FloatElem, const PROD: bool> Reducer for FloatFold<T, PROD> {
    type In = T;
    type Acc = T::C;
    type Out = T;
    fn init(self) -> T::C {
        if PROD {
            <T::C as Float>::ONE
        } else {
            <T::C as Float>::ZERO
        }
    }
    #[inline(always)]
    fn step(self, acc: T::C, x: T, _: usize) -> T::C {
        self.merge(acc, x.up())
    }
    #[inline(always)]
    fn merge(self, a: T::C, b: T::C) -> T::C {
        if PROD {
            a * b
        } else {
            a + b
        }
    }
    fn finish(self, acc: T::C) -> T {
        T::down(acc)
    }

    /// A sum leaf is [`FloatElem::sum_leaf`]; products use the default leaf.
    #[inline(always)]
    fn leaf(self, x: &[T], base: usize) -> T::C {
        if PROD {
            let mut lanes = [self.init(); LANES];
            for (i, &v) in x.iter().enumerate() {
                lanes[i % LANES] = self.step(lanes[i % LANES], v, base + i);
            }
            merge_lanes(self, lanes)
        } else {
            T::sum_leaf(x)
        }
    }
}

/// Sums and products of integers and booleans, wrapping in 64 bits (the result's bits as
/// `u64`: two's complement makes signed and unsigned wrapping the same).
#[derive(Clone, Copy)]
struct IntFold<T, const PROD: bool>(std::marker::PhantomData<T>);

impl<T: Element, const PROD: bool> Reducer for IntFold<T, PROD> {
    type In = T;
    type Acc = u64;
    type Out = u64;
    fn init(self) -> u64 {
        u64::from(PROD)
    }
    #[inline(always)]
    fn step(self, acc: u64, x: T, _: usize) -> u64 {
        self.merge(acc, x.to_i64() as u64)
    }
    #[inline(always)]
    fn merge(self, a: u64, b: u64) -> u64 {
        if PROD {
            a.wrapping_mul(b)
        } else {
            a.wrapping_add(b)
        }
    }
    fn finish(self, acc: u64) -> u64 {
        acc
    }
}

/// A total order for extremes: floats compare in the compute type with NaN above everything
/// (for `max`) or below (for `min`), so that the first NaN wins.
trait Extreme: Copy + Send + Sync {
    /// Whether `a` beats `b` strictly, for the largest (`max`) or smallest element.
    fn beats(a: Self, b: Self, max: bool) -> bool;
}

macro_rules! int_extreme {
    ($($t:ty),*) => {$(
        impl Extreme for $t {
            #[inline(always)]
            fn beats(a: $t, b: $t, max: bool) -> bool {
                if max { a > b } else { a < b }
            }
        }
    )*};
}
int_extreme!(bool, i8, i16, i32, i64, u8, u16, u32, u64);

macro_rules! float_extreme {
    ($($t:ty),*) => {$(
        impl Extreme for $t {
            #[inline(always)]
            fn beats(a: $t, b: $t, max: bool) -> bool {
                if b.is_nan() {
                    false
                } else if a.is_nan() {
                    true
                } else if max {
                    a > b
                } else {
                    a < b
                }
            }
        }
    )*};
}
float_extreme!(f32, f64);

/// A view of an element type as the type its extremes compare in.
trait Ordered: Element {
    type K: Extreme;
    fn key(self) -> Self::K;

    /// The extreme of a leaf (nonempty, at most [`BLOCK`] elements) by plain comparisons in
    /// [`LANES`] lanes merged as [`Reducer::leaf`] merges them, which the compiler vectorizes;
    /// `None` when the leaf holds a NaN (the NaN-aware fold then runs) or the type compares
    /// in another type.
    #[inline(always)]
    fn plain_extreme(_x: &[Self], _max: bool) -> Option<Self> {
        None
    }
}

/// `a` or `b`, whichever wins (`a`, the earlier, on ties), by plain comparison.
#[inline(always)]
fn pick<T: PartialOrd + Copy>(a: T, b: T, max: bool) -> T {
    if (max && b > a) || (!max && b < a) {
        b
    } else {
        a
    }
}

macro_rules! ordered_self {
    ($($t:ty),*) => {$(
        impl Ordered for $t {
            type K = $t;
            #[inline(always)]
            fn key(self) -> $t { self }

            #[inline(always)]
            #[allow(clippy::eq_op)] // `v != v` is the NaN test (always false for integers)
            fn plain_extreme(x: &[$t], max: bool) -> Option<$t> {
                let mut lanes = [x[0]; LANES];
                let mut nan = false;
                let chunks = x.chunks_exact(LANES);
                let tail = chunks.remainder();
                for chunk in chunks {
                    for l in 0..LANES {
                        nan |= chunk[l] != chunk[l];
                        lanes[l] = pick(lanes[l], chunk[l], max);
                    }
                }
                for (l, &v) in tail.iter().enumerate() {
                    nan |= v != v;
                    lanes[l] = pick(lanes[l], v, max);
                }
                if nan {
                    return None;
                }
                let mut width = LANES;
                while width > 1 {
                    width /= 2;
                    for l in 0..width {
                        lanes[l] = pick(lanes[l], lanes[l + width], max);
                    }
                }
                Some(lanes[0])
            }
        }
    )*};
}
ordered_self!(bool, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

impl Ordered for half::f16 {
    type K = f32;
    #[inline(always)]
    fn key(self) -> f32 {
        self.to_f32()
    }
}

impl Ordered for half::bf16 {
    type K = f32;
    #[inline(always)]
    fn key(self) -> f32 {
        self.to_f32()
    }
}

/// `max` / `min` (`MAX`: whether it is `max`): the element itself, NaN winning.
#[derive(Clone, Copy)]
struct ExtremeValue<T, const MAX: bool>(std::marker::PhantomData<T>);

impl<T: Ordered, const MAX: bool> Reducer for ExtremeValue<T, MAX> {
    type In = T;
    type Acc = Option<T>;
    type Out = T;
    fn init(self) -> Option<T> {
        None
    }
    #[inline(always)]
    fn step(self, acc: Option<T>, x: T, _: usize) -> Option<T> {
        self.merge(acc, Some(x))
    }
    #[inline(always)]
    fn merge(self, a: Option<T>, b: Option<T>) -> Option<T> {
        match (a, b) {
            (Some(p), Some(q)) => Some(if T::K::beats(q.key(), p.key(), MAX) {
                q
            } else {
                p
            }),
            (p, None) => p,
            (None, q) => q,
        }
    }
    fn finish(self, acc: Option<T>) -> T {
        acc.expect("the ops layer rejects empty max/min")
    }

    #[inline(always)]
    fn leaf(self, x: &[T], base: usize) -> Option<T> {
        if x.is_empty() {
            return None;
        }
        T::plain_extreme(x, MAX).or_else(|| lanes_leaf(self, x, base))
    }
}

/// `argmax` / `argmin`: the position of the first extreme element (the first NaN).
#[derive(Clone, Copy)]
struct ExtremeIndex<T, const MAX: bool>(std::marker::PhantomData<T>);

impl<T: Ordered, const MAX: bool> Reducer for ExtremeIndex<T, MAX> {
    type In = T;
    type Acc = Option<(T, usize)>;
    type Out = i64;
    fn init(self) -> Self::Acc {
        None
    }
    #[inline(always)]
    fn step(self, acc: Self::Acc, x: T, i: usize) -> Self::Acc {
        self.merge(acc, Some((x, i)))
    }
    #[inline(always)]
    fn merge(self, a: Self::Acc, b: Self::Acc) -> Self::Acc {
        match (a, b) {
            (Some(p), Some(q)) => {
                let (kp, kq) = (p.0.key(), q.0.key());
                let q_wins = T::K::beats(kq, kp, MAX) || (!T::K::beats(kp, kq, MAX) && q.1 < p.1);
                Some(if q_wins { q } else { p })
            }
            (p, None) => p,
            (None, q) => q,
        }
    }
    fn finish(self, acc: Self::Acc) -> i64 {
        acc.expect("the ops layer rejects empty argmax/argmin").1 as i64
    }
}

/// `all` / `any` (`ALL`: whether it is `all`).
#[derive(Clone, Copy)]
struct Logical<const ALL: bool>;

impl<const ALL: bool> Reducer for Logical<ALL> {
    type In = bool;
    type Acc = bool;
    type Out = bool;
    fn init(self) -> bool {
        ALL
    }
    #[inline(always)]
    fn step(self, acc: bool, x: bool, _: usize) -> bool {
        self.merge(acc, x)
    }
    #[inline(always)]
    fn merge(self, a: bool, b: bool) -> bool {
        if ALL {
            a & b
        } else {
            a | b
        }
    }
    fn finish(self, acc: bool) -> bool {
        acc
    }
}

fn typed<T: Element>(b: &CpuBuffer) -> &[T] {
    b.as_slice::<T>().expect("the operand's dtype")
}

fn typed_mut<T: Element>(b: &mut CpuBuffer) -> &mut [T] {
    b.as_mut_slice::<T>().expect("the result's dtype")
}

fn bits_mut(b: &mut CpuBuffer) -> &mut [u64] {
    b.as_bits_mut::<u64>().expect("a 64-bit result")
}

/// Calls `$run(reducer)` with the sum or product reducer (`$prod`) for the element type of
/// `$d`: floats accumulate in their compute type, integers and `bool` in 64 bits.
macro_rules! with_fold {
    ($d:expr, $prod:expr, $run:ident) => {{
        use std::marker::PhantomData as P;
        match ($d, $prod) {
            (DType::F16, false) => $run!(FloatFold::<half::f16, false>(P), typed_mut),
            (DType::F16, true) => $run!(FloatFold::<half::f16, true>(P), typed_mut),
            (DType::BF16, false) => $run!(FloatFold::<half::bf16, false>(P), typed_mut),
            (DType::BF16, true) => $run!(FloatFold::<half::bf16, true>(P), typed_mut),
            (DType::F32, false) => $run!(FloatFold::<f32, false>(P), typed_mut),
            (DType::F32, true) => $run!(FloatFold::<f32, true>(P), typed_mut),
            (DType::F64, false) => $run!(FloatFold::<f64, false>(P), typed_mut),
            (DType::F64, true) => $run!(FloatFold::<f64, true>(P), typed_mut),
            (d, false) => crate::with_dtype!(d, T, $run!(IntFold::<T, false>(P), bits_mut)),
            (d, true) => crate::with_dtype!(d, T, $run!(IntFold::<T, true>(P), bits_mut)),
        }
    }};
}

/// See `BackendStorage::reduce`.
pub(crate) fn reduce(
    dst: &CpuStorage,
    dl: &Layout,
    op: ReduceOp,
    src: &CpuStorage,
    plan: &ReducePlan,
) -> Result<()> {
    let s = src.read();
    let mut d = dst.write();
    let dtype = s.dtype();
    debug_assert!(dl.is_c_contiguous() && dl.offset() == 0);
    use std::marker::PhantomData as P;
    macro_rules! run {
        ($r:expr, $out:ident) => {
            drive($r, $out(&mut d), typed(&s), plan)
        };
    }
    match op {
        ReduceOp::Sum => with_fold!(dtype, false, run),
        ReduceOp::Prod => with_fold!(dtype, true, run),
        ReduceOp::Max => crate::with_dtype!(dtype, T, run!(ExtremeValue::<T, true>(P), typed_mut)),
        ReduceOp::Min => crate::with_dtype!(dtype, T, run!(ExtremeValue::<T, false>(P), typed_mut)),
        ReduceOp::Argmax => {
            crate::with_dtype!(dtype, T, run!(ExtremeIndex::<T, true>(P), typed_mut))
        }
        ReduceOp::Argmin => {
            crate::with_dtype!(dtype, T, run!(ExtremeIndex::<T, false>(P), typed_mut))
        }
        ReduceOp::All | ReduceOp::Any => {
            if dtype != DType::Bool {
                return Err(Error::DType(format!(
                    "{} expects a bool operand, got {dtype}",
                    op.name()
                )));
            }
            if op == ReduceOp::All {
                run!(Logical::<true>, typed_mut)
            } else {
                run!(Logical::<false>, typed_mut)
            }
        }
    }
    Ok(())
}

/// Running folds along the last dimension of `dl` / `sl` (one shape).
fn scan_rows<R: Reducer>(r: R, d: &mut [R::Out], dl: &Layout, s: &[R::In], sl: &Layout) {
    let nd = dl.ndim();
    if dl.numel() == 0 {
        return;
    }
    let n = dl.shape()[nd - 1];
    let (ds, ss) = (dl.strides()[nd - 1], sl.strides()[nd - 1]);
    let outer = &dl.shape()[..nd - 1];
    let starts_d = run_offsets(outer, &dl.strides()[..nd - 1]);
    let starts_s = run_offsets(outer, &sl.strides()[..nd - 1]);
    for (&od, &os) in starts_d.iter().zip(&starts_s) {
        let (mut pd, mut ps) = (dl.offset() as isize + od, sl.offset() as isize + os);
        let mut acc = r.init();
        for i in 0..n {
            acc = r.step(acc, s[ps as usize], i);
            d[pd as usize] = r.finish(acc);
            pd += ds;
            ps += ss;
        }
    }
}

/// See `BackendStorage::scan`.
pub(crate) fn scan(
    dst: &CpuStorage,
    dl: &Layout,
    op: ScanOp,
    src: &CpuStorage,
    sl: &Layout,
) -> Result<()> {
    let s = src.read();
    let mut d = dst.write();
    macro_rules! run {
        ($r:expr, $out:ident) => {
            scan_rows($r, $out(&mut d), dl, typed(&s), sl)
        };
    }
    with_fold!(s.dtype(), op == ScanOp::Prod, run);
    Ok(())
}
