//! Elementwise functions on host buffers.
//!
//! Every op runs through [`map2`]: the views are walked in runs along their innermost merged
//! dimension (see `walk::for_each_run`), and a run whose views are all unit-stride or
//! broadcast (stride 0) is a plain loop over slices that the compiler vectorizes; other runs
//! step through their strides. Large C-contiguous destinations are split along their first
//! long axis over rayon's threads. `exp` of dense float32 runs a polynomial compiled for
//! AVX-512 or AVX2 where the CPU has it (chosen at run time).

use super::activation as act;
use super::math::{exp_f32_with, Float, FloatElem, Int};
use super::storage::CpuStorage;
use super::walk::for_each_run;
use crate::backend::Operand;
use crate::dtype::{DType, Element, Scalar};
use crate::error::{Error, Result};
use crate::host::CpuBuffer;
use crate::layout::Layout;
use crate::plan::{BinaryOp, UnaryOp};
use rayon::prelude::*;
use std::sync::RwLockReadGuard;

/// Elements from which an elementwise op spreads over threads.
const PARALLEL_ELEMENTS: usize = 1 << 17;

/// An operand as a kernel reads it: a slice viewed through a layout of the destination's
/// shape, or one value for every element.
#[derive(Debug, Clone)]
enum Src<'a, T> {
    Slice(&'a [T], Layout),
    Value(T),
}

impl<T: Copy> Src<'_, T> {
    /// The rows `start..start + len` of `axis`.
    fn part(&self, (axis, start, len): (usize, usize, usize)) -> Self {
        match self {
            Src::Slice(s, l) => Src::Slice(s, l.slice(axis, start, len, 1)),
            Src::Value(v) => Src::Value(*v),
        }
    }

    /// The elements, strides and offset to walk (a value: itself, with `zeros` for strides).
    fn walk<'s>(&'s self, zeros: &'s [isize]) -> (&'s [T], &'s [isize], usize) {
        match self {
            Src::Slice(s, l) => (s, l.strides(), l.offset()),
            Src::Value(v) => (std::slice::from_ref(v), zeros, 0),
        }
    }
}

/// `d[dl] = f(a, b)` elementwise (see the module docs for the paths).
fn map2<A, B, O, F>(d: &mut [O], dl: &Layout, a: Src<'_, A>, b: Src<'_, B>, f: F)
where
    A: Copy + Send + Sync,
    B: Copy + Send + Sync,
    O: Copy + Send,
    F: Fn(A, B) -> O + Copy + Send + Sync,
{
    by_blocks(d, dl, |d, dl, part| match part {
        None => serial2(d, dl, &a, &b, f),
        Some(p) => serial2(d, dl, &a.part(p), &b.part(p), f),
    });
}

/// `d[dl] = f(d[dl], b)` elementwise: an op whose first operand is the destination itself,
/// each element read where it is then written (no copy of the destination).
fn update<T, B, F>(d: &mut [T], dl: &Layout, b: Src<'_, B>, f: F)
where
    T: Copy + Send,
    B: Copy + Send + Sync,
    F: Fn(T, B) -> T + Copy + Send + Sync,
{
    by_blocks(d, dl, |d, dl, part| {
        let block;
        let b = match part {
            None => &b,
            Some(p) => {
                block = b.part(p);
                &block
            }
        };
        let zeros = vec![0isize; dl.ndim()];
        let (b, bl, bo) = b.walk(&zeros);
        for_each_run(
            dl.shape(),
            [dl.strides(), bl],
            [dl.offset(), bo],
            |[od, ob], n, st| match st {
                [1, 1] => {
                    for (d, &y) in d[od..od + n].iter_mut().zip(&b[ob..ob + n]) {
                        *d = f(*d, y);
                    }
                }
                [1, 0] => {
                    let y = b[ob];
                    for d in &mut d[od..od + n] {
                        *d = f(*d, y);
                    }
                }
                [sd, sb] => {
                    let (mut pd, mut pb) = (od as isize, ob as isize);
                    for _ in 0..n {
                        d[pd as usize] = f(d[pd as usize], b[pb as usize]);
                        pd += sd;
                        pb += sb;
                    }
                }
            },
        );
    });
}

/// Runs `body(d, dl, None)`, or, for a large C-contiguous destination, `body` on blocks of
/// rows along its first long axis over rayon's threads (`Some((axis, start, len))`, with the
/// block's slice of `d` and its layout from offset 0).
fn by_blocks<O: Send>(
    d: &mut [O],
    dl: &Layout,
    body: impl Fn(&mut [O], &Layout, Option<(usize, usize, usize)>) + Sync,
) {
    let n = dl.numel();
    let threads = rayon::current_num_threads();
    if n < PARALLEL_ELEMENTS || threads < 2 || !dl.is_c_contiguous() {
        return body(d, dl, None);
    }
    let shape = dl.shape();
    let axis = shape.iter().position(|&e| e > 1).expect("n > 1");
    let ext = shape[axis];
    let row = n / ext;
    let parts = ext.min(threads * 4);
    let mut chunks = Vec::with_capacity(parts);
    let mut rest = &mut d[dl.offset()..dl.offset() + n];
    for p in 0..parts {
        let (s, e) = (ext * p / parts, ext * (p + 1) / parts);
        let (c, r) = rest.split_at_mut((e - s) * row);
        chunks.push((c, s, e - s));
        rest = r;
    }
    chunks.into_par_iter().for_each(|(c, s, len)| {
        let mut sub = shape.to_vec();
        sub[axis] = len;
        let sl = Layout::new(&sub, dl.strides(), 0).expect("a chunk of a dense view");
        body(c, &sl, Some((axis, s, len)));
    });
}

/// [`map2`] on one thread.
fn serial2<A, B, O, F>(d: &mut [O], dl: &Layout, a: &Src<'_, A>, b: &Src<'_, B>, f: F)
where
    A: Copy,
    B: Copy,
    O: Copy,
    F: Fn(A, B) -> O + Copy,
{
    let zeros = vec![0isize; dl.ndim()];
    let ((a, al, ao), (b, bl, bo)) = (a.walk(&zeros), b.walk(&zeros));
    for_each_run(
        dl.shape(),
        [dl.strides(), al, bl],
        [dl.offset(), ao, bo],
        |[od, oa, ob], n, st| run2(d, od, a, oa, b, ob, n, st, f),
    );
}

/// One run of [`serial2`]: `n` elements from offsets `od`, `oa`, `ob` with strides `st`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn run2<A: Copy, B: Copy, O: Copy>(
    d: &mut [O],
    od: usize,
    a: &[A],
    oa: usize,
    b: &[B],
    ob: usize,
    n: usize,
    st: [isize; 3],
    f: impl Fn(A, B) -> O,
) {
    match st {
        [1, 1, 1] => {
            let (a, b) = (&a[oa..oa + n], &b[ob..ob + n]);
            for ((d, &x), &y) in d[od..od + n].iter_mut().zip(a).zip(b) {
                *d = f(x, y);
            }
        }
        [1, 1, 0] => {
            let y = b[ob];
            for (d, &x) in d[od..od + n].iter_mut().zip(&a[oa..oa + n]) {
                *d = f(x, y);
            }
        }
        [1, 0, 1] => {
            let x = a[oa];
            for (d, &y) in d[od..od + n].iter_mut().zip(&b[ob..ob + n]) {
                *d = f(x, y);
            }
        }
        [sd, sa, sb] => {
            let (mut pd, mut pa, mut pb) = (od as isize, oa as isize, ob as isize);
            for _ in 0..n {
                d[pd as usize] = f(a[pa as usize], b[pb as usize]);
                pd += sd;
                pa += sa;
                pb += sb;
            }
        }
    }
}

/// An operand's memory while an op runs: its buffer under a read lock; the destination itself
/// when it is the destination's own elements (read in place); a snapshot when it is other
/// elements of the destination's storage (whose write lock excludes readers); or a value.
enum Held<'a> {
    Locked(RwLockReadGuard<'a, CpuBuffer>, Layout),
    Destination(DType),
    Snapshot(CpuBuffer, Layout),
    Value(Scalar),
}

impl Held<'_> {
    /// `op` as an operand of a write to `dst`; with `dl` (the written view), an operand that
    /// is exactly that view is read in place.
    fn new<'a>(
        dst: &CpuStorage,
        dl: Option<&Layout>,
        op: Operand<'a, CpuStorage>,
    ) -> Result<Held<'a>> {
        Ok(match op {
            Operand::Scalar(s) => Held::Value(s),
            Operand::Array(s, l) if std::ptr::eq(s, dst) && dl == Some(l) => {
                Held::Destination(s.read().dtype())
            }
            Operand::Array(s, l) if std::ptr::eq(s, dst) => {
                let src = s.read();
                let dense = Layout::c_contiguous(l.shape());
                let mut copy = CpuBuffer::zeros(src.dtype(), l.numel())?;
                super::storage::copy_buffers(&mut copy, &dense, &src, l);
                Held::Snapshot(copy, dense)
            }
            Operand::Array(s, l) => Held::Locked(s.read(), l.clone()),
        })
    }

    fn dtype(&self) -> Option<DType> {
        match self {
            Held::Locked(b, _) => Some(b.dtype()),
            Held::Destination(d) => Some(*d),
            Held::Snapshot(b, _) => Some(b.dtype()),
            Held::Value(_) => None,
        }
    }

    /// The operand to read. Not for [`Held::Destination`]: ops whose operand may be their
    /// destination (the result has the operands' dtype) go through [`same2`].
    fn src<T: Element>(&self) -> Src<'_, T> {
        match self {
            Held::Locked(b, l) => Src::Slice(typed(b), l.clone()),
            Held::Snapshot(b, l) => Src::Slice(typed(b), l.clone()),
            Held::Value(s) => Src::Value(s.to::<T>()),
            Held::Destination(_) => {
                unreachable!("an operand is the destination only where the result has its dtype")
            }
        }
    }
}

/// `d[dl] = f(a, b)` for an op whose result has the operands' dtype, so that either operand
/// may be the destination itself ([`Held::Destination`], updated in place).
fn same2<T, F>(d: &mut [T], dl: &Layout, a: &Held<'_>, b: &Held<'_>, f: F)
where
    T: Element + Send + Sync,
    F: Fn(T, T) -> T + Copy + Send + Sync,
{
    match (a, b) {
        (Held::Destination(_), Held::Destination(_)) => {
            update(d, dl, Src::Value(()), move |x, ()| f(x, x));
        }
        (Held::Destination(_), b) => update(d, dl, b.src::<T>(), f),
        (a, Held::Destination(_)) => update(d, dl, a.src::<T>(), move |x, y| f(y, x)),
        (a, b) => map2(d, dl, a.src::<T>(), b.src::<T>(), f),
    }
}

fn typed<T: Element>(b: &CpuBuffer) -> &[T] {
    b.as_slice::<T>().expect("the compute dtype")
}

fn unsupported(op: &str, dtype: DType) -> Error {
    Error::DType(format!("{op} is not defined for dtype {dtype}"))
}

/// Calls `$float::<T>`, `$int::<T>` or `$bool` for the compute dtype `$d` with `$args`.
macro_rules! by_kind {
    ($d:expr, $float:ident, $int:ident, $bool:ident, $($args:expr),*) => {
        match $d {
            DType::F16 => $float::<half::f16>($($args),*),
            DType::BF16 => $float::<half::bf16>($($args),*),
            DType::F32 => $float::<f32>($($args),*),
            DType::F64 => $float::<f64>($($args),*),
            DType::I8 => $int::<i8>($($args),*),
            DType::I16 => $int::<i16>($($args),*),
            DType::I32 => $int::<i32>($($args),*),
            DType::I64 => $int::<i64>($($args),*),
            DType::U8 => $int::<u8>($($args),*),
            DType::U16 => $int::<u16>($($args),*),
            DType::U32 => $int::<u32>($($args),*),
            DType::U64 => $int::<u64>($($args),*),
            DType::Bool => $bool($($args),*),
        }
    };
}

/// See `BackendStorage::binary`.
pub(crate) fn binary(
    dst: &CpuStorage,
    dl: &Layout,
    op: BinaryOp,
    a: Operand<'_, CpuStorage>,
    b: Operand<'_, CpuStorage>,
) -> Result<()> {
    let (ha, hb) = (Held::new(dst, Some(dl), a)?, Held::new(dst, Some(dl), b)?);
    let dtype = ha
        .dtype()
        .or(hb.dtype())
        .ok_or_else(|| Error::DType(format!("{}: both operands are scalars", op.name())))?;
    let mut out = dst.write();
    by_kind!(
        dtype,
        float_binary,
        int_binary,
        bool_binary,
        op,
        &mut out,
        dl,
        &ha,
        &hb
    )
}

fn slice_of<T: Element>(out: &mut CpuBuffer) -> &mut [T] {
    out.as_mut_slice::<T>().expect("the destination's dtype")
}

fn float_binary<T: FloatElem>(
    op: BinaryOp,
    out: &mut CpuBuffer,
    dl: &Layout,
    a: &Held<'_>,
    b: &Held<'_>,
) -> Result<()> {
    use BinaryOp::*;
    macro_rules! val {
        ($f:expr) => {
            same2(slice_of::<T>(out), dl, a, b, |p: T, q: T| {
                let f: fn(T::C, T::C) -> T::C = $f;
                T::down(f(p.up(), q.up()))
            })
        };
    }
    macro_rules! test {
        ($f:expr) => {
            map2(slice_of::<bool>(out), dl, a.src(), b.src(), |p: T, q: T| {
                let f: fn(T::C, T::C) -> bool = $f;
                f(p.up(), q.up())
            })
        };
    }
    match op {
        Add => val!(|p, q| p + q),
        Subtract => val!(|p, q| p - q),
        Multiply => val!(|p, q| p * q),
        Divide => val!(|p, q| p / q),
        FloorDivide => val!(|p, q| p.divmod(q).0),
        Remainder => val!(|p, q| p.divmod(q).1),
        Pow => val!(Float::pow),
        Maximum => val!(Float::maximum),
        Minimum => val!(Float::minimum),
        Atan2 => val!(Float::atan2),
        Hypot => val!(Float::hypot),
        Copysign => val!(Float::copysign),
        Logaddexp => val!(Float::logaddexp),
        ReluBackward => val!(act::relu_backward),
        GeluBackward => val!(act::gelu_backward),
        GeluTanhBackward => val!(act::gelu_tanh_backward),
        SiluBackward => val!(act::silu_backward),
        SigmoidBackward => val!(act::sigmoid_backward),
        Nextafter => same2(slice_of::<T>(out), dl, a, b, |p: T, q: T| p.nextafter(q)),
        Equal => test!(|p, q| p == q),
        NotEqual => test!(|p, q| p != q),
        Less => test!(|p, q| p < q),
        LessEqual => test!(|p, q| p <= q),
        Greater => test!(|p, q| p > q),
        GreaterEqual => test!(|p, q| p >= q),
        BitwiseAnd | BitwiseOr | BitwiseXor | BitwiseLeftShift | BitwiseRightShift | LogicalAnd
        | LogicalOr | LogicalXor => return Err(unsupported(op.name(), T::DTYPE)),
    }
    Ok(())
}

fn int_binary<T: Int>(
    op: BinaryOp,
    out: &mut CpuBuffer,
    dl: &Layout,
    a: &Held<'_>,
    b: &Held<'_>,
) -> Result<()> {
    use BinaryOp::*;
    macro_rules! val {
        ($f:expr) => {{
            let f: fn(T, T) -> T = $f;
            same2(slice_of::<T>(out), dl, a, b, f)
        }};
    }
    macro_rules! test {
        ($f:expr) => {{
            let f: fn(T, T) -> bool = $f;
            map2(slice_of::<bool>(out), dl, a.src(), b.src(), f)
        }};
    }
    match op {
        Add => val!(Int::add),
        Subtract => val!(Int::sub),
        Multiply => val!(Int::mul),
        FloorDivide => val!(Int::floor_div),
        Remainder => val!(Int::rem),
        Pow => val!(Int::pow),
        Maximum => val!(Ord::max),
        Minimum => val!(Ord::min),
        BitwiseAnd => val!(Int::and),
        BitwiseOr => val!(Int::or),
        BitwiseXor => val!(Int::xor),
        BitwiseLeftShift => val!(Int::shl),
        BitwiseRightShift => val!(Int::shr),
        Equal => test!(|p, q| p == q),
        NotEqual => test!(|p, q| p != q),
        Less => test!(|p, q| p < q),
        LessEqual => test!(|p, q| p <= q),
        Greater => test!(|p, q| p > q),
        GreaterEqual => test!(|p, q| p >= q),
        Divide | Atan2 | Hypot | Copysign | Logaddexp | Nextafter | ReluBackward | GeluBackward
        | GeluTanhBackward | SiluBackward | SigmoidBackward | LogicalAnd | LogicalOr
        | LogicalXor => return Err(unsupported(op.name(), T::DTYPE)),
    }
    Ok(())
}

fn bool_binary(
    op: BinaryOp,
    out: &mut CpuBuffer,
    dl: &Layout,
    a: &Held<'_>,
    b: &Held<'_>,
) -> Result<()> {
    use BinaryOp::*;
    let f: fn(bool, bool) -> bool = match op {
        Add | Maximum | BitwiseOr | LogicalOr => |p, q| p | q,
        Multiply | Minimum | BitwiseAnd | LogicalAnd => |p, q| p & q,
        BitwiseXor | LogicalXor | NotEqual => |p, q| p ^ q,
        Equal => |p, q| p == q,
        Less => |p, q| !p & q,
        LessEqual => |p, q| !p | q,
        Greater => |p, q| p & !q,
        GreaterEqual => |p, q| p | !q,
        _ => return Err(unsupported(op.name(), DType::Bool)),
    };
    same2(slice_of::<bool>(out), dl, a, b, f);
    Ok(())
}

/// See `BackendStorage::unary`.
pub(crate) fn unary(
    dst: &CpuStorage,
    dl: &Layout,
    op: UnaryOp,
    src: &CpuStorage,
    sl: &Layout,
) -> Result<()> {
    let h = Held::new(dst, None, Operand::Array(src, sl))?;
    let dtype = h.dtype().expect("an array");
    let mut out = dst.write();
    if op == UnaryOp::Exp && dtype == DType::F32 && dl.is_c_contiguous() {
        if let Src::Slice(s, l) = h.src::<f32>() {
            if l.is_c_contiguous() {
                let d = &mut slice_of::<f32>(&mut out)[dl.offset()..dl.offset() + dl.numel()];
                exp_dense(d, &s[l.offset()..l.offset() + l.numel()]);
                return Ok(());
            }
        }
    }
    by_kind!(
        dtype,
        float_unary,
        int_unary,
        bool_unary,
        op,
        &mut out,
        dl,
        &h
    )
}

/// `d[dl] = f(x)` elementwise.
fn map1<T: Copy + Send + Sync, O: Copy + Send>(
    d: &mut [O],
    dl: &Layout,
    x: Src<'_, T>,
    f: impl Fn(T) -> O + Copy + Send + Sync,
) {
    map2(d, dl, x, Src::Value(()), move |p, ()| f(p));
}

fn float_unary<T: FloatElem>(
    op: UnaryOp,
    out: &mut CpuBuffer,
    dl: &Layout,
    h: &Held<'_>,
) -> Result<()> {
    use UnaryOp::*;
    let x = h.src::<T>();
    macro_rules! val {
        ($f:expr) => {
            map1(slice_of::<T>(out), dl, x, |p: T| {
                let f: fn(T::C) -> T::C = $f;
                T::down(f(p.up()))
            })
        };
    }
    macro_rules! test {
        ($f:expr) => {
            map1(slice_of::<bool>(out), dl, x, |p: T| {
                let f: fn(T::C) -> bool = $f;
                f(p.up())
            })
        };
    }
    match op {
        Abs => val!(Float::abs),
        Negative => val!(|p| -p),
        Exp => val!(Float::fast_exp),
        Expm1 => val!(Float::exp_m1),
        Log => val!(Float::ln),
        Log1p => val!(Float::ln_1p),
        Log2 => val!(Float::log2),
        Log10 => val!(Float::log10),
        Sqrt => val!(Float::sqrt),
        Square => val!(|p| p * p),
        Reciprocal => val!(|p| <T::C as Float>::ONE / p),
        Sin => val!(Float::sin),
        Cos => val!(Float::cos),
        Tan => val!(Float::tan),
        Asin => val!(Float::asin),
        Acos => val!(Float::acos),
        Atan => val!(Float::atan),
        Sinh => val!(Float::sinh),
        Cosh => val!(Float::cosh),
        Tanh => val!(Float::tanh),
        Asinh => val!(Float::asinh),
        Acosh => val!(Float::acosh),
        Atanh => val!(Float::atanh),
        Ceil => val!(Float::ceil),
        Floor => val!(Float::floor),
        Round => val!(Float::round_even),
        Trunc => val!(Float::trunc),
        Sign => val!(Float::sign),
        Signbit => test!(Float::signbit),
        IsNan => test!(Float::is_nan),
        IsInf => test!(Float::is_inf),
        IsFinite => test!(|p| !p.is_nan() && !p.is_inf()),
        Relu => val!(act::relu),
        Gelu => val!(act::gelu),
        GeluTanh => val!(act::gelu_tanh),
        Silu => val!(act::silu),
        Sigmoid => val!(act::sigmoid),
        BitwiseInvert | LogicalNot => return Err(unsupported(op.name(), T::DTYPE)),
    }
    Ok(())
}

fn int_unary<T: Int>(op: UnaryOp, out: &mut CpuBuffer, dl: &Layout, h: &Held<'_>) -> Result<()> {
    use UnaryOp::*;
    let x = h.src::<T>();
    macro_rules! val {
        ($f:expr) => {{
            let f: fn(T) -> T = $f;
            map1(slice_of::<T>(out), dl, x, f)
        }};
    }
    macro_rules! test {
        ($v:expr) => {
            map1(slice_of::<bool>(out), dl, x, |_: T| $v)
        };
    }
    match op {
        Abs => val!(Int::abs),
        Negative => val!(Int::neg),
        Square => val!(|p| p.mul(p)),
        Sign => val!(Int::sign),
        BitwiseInvert => val!(Int::not),
        Ceil | Floor | Round | Trunc => val!(|p| p),
        IsNan | IsInf => test!(false),
        IsFinite => test!(true),
        _ => return Err(unsupported(op.name(), T::DTYPE)),
    }
    Ok(())
}

fn bool_unary(op: UnaryOp, out: &mut CpuBuffer, dl: &Layout, h: &Held<'_>) -> Result<()> {
    use UnaryOp::*;
    let x = h.src::<bool>();
    let f: fn(bool) -> bool = match op {
        BitwiseInvert | LogicalNot => |p| !p,
        IsNan | IsInf => |_| false,
        IsFinite => |_| true,
        _ => return Err(unsupported(op.name(), DType::Bool)),
    };
    map1(slice_of::<bool>(out), dl, x, f);
    Ok(())
}

/// `d = exp(s)` on dense float32, over threads when large (chunks of 2^15 elements, whole
/// cache lines apart, so every chunk but the first starts as aligned as the first).
fn exp_dense(d: &mut [f32], s: &[f32]) {
    let stream = d.len() >= STREAM_ELEMENTS;
    if d.len() >= PARALLEL_ELEMENTS {
        d.par_chunks_mut(1 << 15)
            .zip(s.par_chunks(1 << 15))
            .for_each(|(d, s)| exp_chunk(d, s, stream));
    } else {
        exp_chunk(d, s, stream);
    }
}

/// [`exp_f32`] over a chunk, compiled for the best vector ISA the CPU has (with AVX-512,
/// streaming the results when `stream`).
fn exp_chunk(d: &mut [f32], s: &[f32], stream: bool) {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { exp_avx512(d, s, stream) };
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { exp_avx2(d, s) };
        }
    }
    // Streaming stores are an AVX-512 path only; every aarch64 core fuses multiply-adds.
    let _ = stream;
    exp_portable::<{ cfg!(target_arch = "aarch64") }>(d, s);
}

/// `d = exp(s)`, the polynomial fused when `FMA` (see `math::exp_f32_with`).
#[inline(always)]
fn exp_portable<const FMA: bool>(d: &mut [f32], s: &[f32]) {
    for (d, &x) in d.iter_mut().zip(s) {
        *d = exp_f32_with::<FMA>(x);
    }
}

/// Outputs from which `exp` stores around the caches (non-temporal stores): a result this
/// large leaves the cache anyway, and streaming it saves reading each line before writing it.
const STREAM_ELEMENTS: usize = 1 << 20;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn exp_avx512(d: &mut [f32], s: &[f32], stream: bool) {
    use std::arch::x86_64::{_mm512_loadu_ps, _mm512_stream_ps, _mm_sfence};
    if !stream {
        return exp_portable::<true>(d, s);
    }
    // Up to a 64-byte boundary of the destination, then whole vectors streamed, then the rest.
    let head = d.as_ptr().align_offset(64).min(d.len());
    let body = (d.len() - head) / 16 * 16;
    let (d_head, rest) = d.split_at_mut(head);
    let (d_body, d_tail) = rest.split_at_mut(body);
    exp_portable::<true>(d_head, &s[..head]);
    for (dc, sc) in d_body
        .chunks_exact_mut(16)
        .zip(s[head..head + body].chunks_exact(16))
    {
        let mut v = [0.0f32; 16];
        for (v, &x) in v.iter_mut().zip(sc) {
            *v = exp_f32_with::<true>(x);
        }
        // SAFETY: `dc` is 16 floats at a 64-byte aligned address (the head loop got there),
        // and `v` is 16 floats; the CPU has AVX-512F (this function's contract).
        unsafe { _mm512_stream_ps(dc.as_mut_ptr(), _mm512_loadu_ps(v.as_ptr())) };
    }
    exp_portable::<true>(d_tail, &s[head + body..]);
    // Orders the streaming stores before any later store.
    _mm_sfence();
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_avx2(d: &mut [f32], s: &[f32]) {
    exp_portable::<true>(d, s);
}
