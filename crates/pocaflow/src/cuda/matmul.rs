//! Batched matmul on device buffers: small float32/float64 products in pocaflow's own kernel,
//! the rest through cuBLASLt with cached plans.

use super::blaslt::{alignment, PlanKey};
use super::context::DeviceState;
use super::kernels::{Kernels, SmallGemm, Tf32Split, View};
use super::memory::DeviceBuffer;
use super::stream::StreamInner;
use super::{matmul_precision, small_matmul_threshold, MatmulPrecision};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::layout::{BlasMatrix, Layout, MatOrder};
use crate::plan::{Activation, BiasMode, Epilogue, MatmulPlan};
use cudarc::cublaslt::sys::cublasLtEpilogue_t as LtEpilogue;
use std::sync::Arc;

/// The address `offset` elements of `esize` bytes past `base`. Batch walks start at offset 0
/// and step by the layout's strides, so an offset is negative for a reversed batch axis:
/// `StridedIndices` yields it as a wrapped `usize`, read back as signed here.
fn offset_ptr(base: u64, offset: usize, esize: usize) -> u64 {
    base.wrapping_add_signed(offset as isize as i64 * esize as i64)
}

/// Splits batch dimensions into groups that each advance every operand by one stride:
/// `(count, stride_a, stride_b, stride_c)`, outermost first; extent-1 dimensions dropped.
fn batch_groups(plan: &MatmulPlan) -> Vec<(usize, isize, isize, isize)> {
    let nb = plan.batch.len();
    let (sa, sb, sc) = (plan.a.strides(), plan.b.strides(), plan.c.strides());
    let mut groups: Vec<(usize, isize, isize, isize)> = Vec::new();
    for d in 0..nb {
        let n = plan.batch[d];
        if n == 1 {
            continue;
        }
        match groups.last_mut() {
            Some(g)
                if g.1 == sa[d] * n as isize
                    && g.2 == sb[d] * n as isize
                    && g.3 == sc[d] * n as isize =>
            {
                *g = (g.0 * n, sa[d], sb[d], sc[d]);
            }
            _ => groups.push((n, sa[d], sb[d], sc[d])),
        }
    }
    groups
}

/// The batch walk of a plan: the innermost batch group `(count, stride_a, stride_b,
/// stride_c)` that one strided-batched call covers, and the element offsets of A, B and C
/// for each index of the outer groups.
struct Batches {
    inner: (usize, isize, isize, isize),
    offsets: Vec<(usize, usize, usize)>,
}

fn batches(plan: &MatmulPlan) -> Batches {
    let groups = batch_groups(plan);
    let (inner, outer) = match groups.split_last() {
        Some((g, rest)) => (*g, rest),
        None => ((1, 0, 0, 0), &[][..]),
    };
    let outer_shape: Vec<usize> = outer.iter().map(|g| g.0).collect();
    let strides =
        |f: fn(&(usize, isize, isize, isize)) -> isize| outer.iter().map(f).collect::<Vec<_>>();
    let (osa, osb, osc) = (strides(|g| g.1), strides(|g| g.2), strides(|g| g.3));
    let walk = |s| crate::layout::StridedIndices::new(&outer_shape, s, 0);
    let offsets = walk(&osa)
        .zip(walk(&osb))
        .zip(walk(&osc))
        .map(|((a, b), c)| (a, b, c))
        .collect();
    Batches { inner, offsets }
}

/// The address of element 0 of layout `l` in `buf` (elements of `esize` bytes).
fn base(buf: &DeviceBuffer, l: &Layout, esize: usize) -> u64 {
    buf.ptr() + (l.offset() * esize) as u64
}

/// `C = A * B` of `dtype` operands into C of `out` (`dtype`, or float32 for float16 and
/// bfloat16 operands, with no epilogue) for every batch index of `plan` on `stream` (device
/// `d`, bound):
/// small float32/float64 products without an epilogue in pocaflow's own kernel, the rest
/// through cuBLASLt (float32 at the precision [`matmul_precision`] says, tf32x3 through
/// [`matmul_tf32x3`]), with as much of `plan.epilogue` as its epilogues can do (the bias, if
/// any, in `bias`). Returns the part of the epilogue left for the caller to apply: the exact
/// GELU (cuBLASLt's is the tanh form), or everything when no fused kernel fits. The dispatch
/// point guarantees that every matrix of A, B and C is BLAS-describable and that the product
/// is not empty (m, n, k and the batch all nonzero).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    d: &Arc<DeviceState>,
    stream: &Arc<StreamInner>,
    plan: &MatmulPlan,
    (dtype, out): (DType, DType),
    abuf: &DeviceBuffer,
    bbuf: &DeviceBuffer,
    cbuf: &DeviceBuffer,
    bias: Option<(&DeviceBuffer, &Layout)>,
) -> Result<Epilogue> {
    let (m, k, n) = (plan.m, plan.k, plan.n);
    let esize = dtype.size_in_bytes();
    // Recorded before anything is enqueued, so that a launch failing halfway through the batch
    // still leaves the earlier launches covered.
    for buf in [abuf, bbuf, cbuf].into_iter().chain(bias.map(|b| b.0)) {
        buf.record_use(stream);
    }
    let work = [m, n, k]
        .iter()
        .chain(&plan.batch)
        .fold(1u64, |w, &x| w.saturating_mul(x as u64));
    let walk = batches(plan);
    let bases = (
        base(abuf, &plan.a, esize),
        base(bbuf, &plan.b, esize),
        base(cbuf, &plan.c, out.size_in_bytes()),
    );
    if plan.epilogue.is_none()
        && dtype == out
        && work <= small_matmul_threshold()
        && Kernels::small_matmul_fits(dtype, (m, n, k), walk.inner.0)
    {
        return small_matmul(d, stream, plan, dtype, bases, &walk);
    }
    let bias = bias.map(|(buf, l)| {
        (
            base(buf, l, esize),
            l.strides().first().copied().unwrap_or(1),
        )
    });
    let precision = match dtype {
        DType::F32 => matmul_precision(),
        _ => MatmulPrecision::Highest,
    };
    match precision {
        MatmulPrecision::Tf32x3 => matmul_tf32x3(d, stream, plan, (abuf, bbuf), bases.2, bias),
        p => matmul_blaslt(
            plan,
            (dtype, out),
            Products {
                tf32: p == MatmulPrecision::High,
                accumulate: false,
            },
            d,
            stream,
            bases,
            &walk,
            bias,
        ),
    }
}

/// The small-matmul path of [`matmul`]: one launch of pocaflow's kernel per outer batch
/// offset, strict arithmetic in `dtype`.
fn small_matmul(
    d: &Arc<DeviceState>,
    stream: &Arc<StreamInner>,
    plan: &MatmulPlan,
    dtype: DType,
    (a_base, b_base, c_base): (u64, u64, u64),
    walk: &Batches,
) -> Result<Epilogue> {
    let kernels = d.kernels();
    let nd = plan.a.ndim();
    let esize = dtype.size_in_bytes();
    let rc = |l: &Layout| [l.strides()[nd - 2] as i64, l.strides()[nd - 1] as i64];
    let inner = walk.inner;
    let g = SmallGemm {
        m: plan.m as i64,
        n: plan.n as i64,
        k: plan.k as i64,
        a: rc(&plan.a),
        b: rc(&plan.b),
        c: rc(&plan.c),
        batch_strides: [inner.1 as i64, inner.2 as i64, inner.3 as i64],
    };
    let ptr = |base: u64, off: usize| offset_ptr(base, off, esize);
    for &(oa, ob, oc) in &walk.offsets {
        let ptrs = (ptr(a_base, oa), ptr(b_base, ob), ptr(c_base, oc));
        kernels.small_matmul(stream, dtype, ptrs, g, inner.0)?;
    }
    Ok(Epilogue::default())
}

/// Which operand of a product a tf32x3 split is for: A's k is its last axis, B's the one
/// before.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
}

/// The k-chunk of a tf32x3 product: each chunk of at most this many k-steps is one TF32
/// product over its three sections, added to C in float32 by the next (cuBLASLt's beta = 1).
/// The tensor cores' own accumulation loses more than float32's as k grows (on the H200, with
/// one product over all of k, the relative error at k = 16384 was 4e-5 against 1e-5 at
/// k = 4096); chunks keep each accumulation short, for one more read and write of C per chunk.
const TF32X3_CHUNK: usize = 2048;

/// The tf32x3 operand of float32 operand `l` in `buf`: a pooled buffer holding, for each
/// k-chunk `(k0, kc)` of `chunks`, the three sections that [`Kernels::tf32_split`] writes
/// (`3 kc` k-steps from k-step `3 k0`), and the layout of each chunk's sections. The matrices
/// keep the source's order (row- or column-major, so that the split reads and writes
/// coalesced); batch dimensions are dense, except those the source broadcasts (stride 0),
/// which stay broadcast and are split once.
fn tf32_operand(
    d: &Arc<DeviceState>,
    stream: &Arc<StreamInner>,
    l: &Layout,
    buf: &DeviceBuffer,
    side: Side,
    chunks: &[(usize, usize)],
) -> Result<(DeviceBuffer, Vec<Layout>)> {
    let (shape, strides) = (l.shape(), l.strides());
    let nd = shape.len();
    let (r, c) = (shape[nd - 2], shape[nd - 1]);
    let (r3, c3) = match side {
        Side::A => (r, 3 * c),
        Side::B => (3 * r, c),
    };
    let row_major = strides[nd - 1].unsigned_abs() <= strides[nd - 2].unsigned_abs();
    let (rs, cs) = if row_major {
        (c3 as isize, 1)
    } else {
        (1, r3 as isize)
    };
    let mut dst_strides = vec![0isize; nd];
    (dst_strides[nd - 2], dst_strides[nd - 1]) = (rs, cs);
    let mut len = r3 * c3;
    for dim in (0..nd - 2).rev() {
        if strides[dim] != 0 {
            dst_strides[dim] = len as isize;
            len *= shape[dim];
        }
    }
    let out = DeviceBuffer::alloc(d, len, len * 4, stream)?;
    // k's axis and its steps in the source and the destination.
    let (k_axis, k_src, k_dst) = match side {
        Side::A => (nd - 1, strides[nd - 1], cs),
        Side::B => (nd - 2, strides[nd - 2], rs),
    };
    let keep: Vec<usize> = (0..nd - 2).filter(|&i| strides[i] != 0).collect();
    let pick = |v: &[isize]| keep.iter().map(|&i| v[i]).collect::<Vec<_>>();
    let batch_shape: Vec<usize> = keep.iter().map(|&i| shape[i]).collect();
    let matrices: usize = batch_shape.iter().product();
    let batch = View::merged(&batch_shape, [&pick(strides), &pick(&dst_strides)])?;
    let (src_r, src_c) = (strides[nd - 2] as i64, strides[nd - 1] as i64);
    let mut layouts = Vec::with_capacity(chunks.len());
    for &(k0, kc) in chunks {
        let mut part = shape.to_vec();
        part[k_axis] = kc;
        let (pr, pc) = (part[nd - 2], part[nd - 1]);
        // Runs along the source's unit-stride axis (the destination's too).
        let (rows, run_len, row, step) = if row_major {
            (pr, pc, (src_r, rs as i64), (src_c, cs as i64))
        } else {
            (pc, pr, (src_c, cs as i64), (src_r, rs as i64))
        };
        let split = Tf32Split {
            batch,
            runs: (matrices * rows) as i64,
            rows: rows as i64,
            len: run_len as i64,
            row,
            step,
        };
        let src = offset_ptr(base(buf, l, 4), (k0 as isize * k_src) as usize, 4);
        let first = 3 * k0 * k_dst as usize;
        let section = (kc as isize * k_dst) as i64;
        d.kernels().tf32_split(
            stream,
            (src, out.ptr() + (first * 4) as u64),
            split,
            section,
            side == Side::A,
        )?;
        part[k_axis] = 3 * kc;
        layouts.push(Layout::new(&part, &dst_strides, first)?);
    }
    Ok((out, layouts))
}

/// The tf32x3 path of [`matmul`] (float32, see [`MatmulPrecision::Tf32x3`]): both operands
/// split into pooled buffers, then per k-chunk of [`TF32X3_CHUNK`] one TF32 product over its
/// `3 kc` k-steps, the first into C and the others added to it, the last with the plan's
/// epilogue (a bias gradient, the row sums of A, is left to the caller, who sums the original
/// A). The split buffers return to the pool in stream order.
fn matmul_tf32x3(
    d: &Arc<DeviceState>,
    stream: &Arc<StreamInner>,
    plan: &MatmulPlan,
    (abuf, bbuf): (&DeviceBuffer, &DeviceBuffer),
    c_base: u64,
    bias: Option<(u64, isize)>,
) -> Result<Epilogue> {
    let k = plan.k;
    let chunks: Vec<(usize, usize)> = (0..k)
        .step_by(TF32X3_CHUNK)
        .map(|k0| (k0, TF32X3_CHUNK.min(k - k0)))
        .collect();
    let count = chunks.len();
    let (sa, las) = tf32_operand(d, stream, &plan.a, abuf, Side::A, &chunks)?;
    let (sb, lbs) = tf32_operand(d, stream, &plan.b, bbuf, Side::B, &chunks)?;
    let grad = plan.epilogue.bias == BiasMode::RowSumsOfA;
    let last_epilogue = if grad {
        Epilogue {
            bias: BiasMode::None,
            ..plan.epilogue
        }
    } else {
        plan.epilogue
    };
    let mut rest = Epilogue::default();
    for (i, ((la, lb), &(_, kc))) in las.into_iter().zip(lbs).zip(&chunks).enumerate() {
        let last = i + 1 == count;
        let part = MatmulPlan {
            k: 3 * kc,
            a: la,
            b: lb,
            epilogue: if last {
                last_epilogue
            } else {
                Epilogue::default()
            },
            ..plan.clone()
        };
        let walk = batches(&part);
        let bases = (base(&sa, &part.a, 4), base(&sb, &part.b, 4), c_base);
        let extra = Products {
            tf32: true,
            accumulate: i > 0,
        };
        let bias = if last { bias } else { None };
        let f32s = (DType::F32, DType::F32);
        rest = matmul_blaslt(&part, f32s, extra, d, stream, bases, &walk, bias)?;
    }
    Ok(if grad {
        Epilogue {
            bias: BiasMode::RowSumsOfA,
            ..rest
        }
    } else {
        rest
    })
}

/// How [`matmul_blaslt`] computes: TF32 for float32 (`tf32`), and whether the products are
/// added to C (`accumulate`: cuBLASLt's beta = 1) instead of replacing it.
#[derive(Debug, Clone, Copy, Default)]
struct Products {
    tf32: bool,
    accumulate: bool,
}

/// Splits `e` into the cuBLASLt epilogue that does part of it and the rest, for a product
/// whose column-major D is C^T (`swap`) or C, with a bias of unit stride (`unit_bias`) or not.
/// cuBLASLt adds a bias along D's rows (C's columns when swapped), its GELU is the tanh form,
/// and BGRADA/BGRADB reduce op(A)/op(B) over k (A of the plan is op(B) when swapped).
/// cuBLASLt's GELU evaluates tanh approximately (about 3e-5 relative in float32 and 1e-9 in
/// float64, far below an ulp of float16/bfloat16), so only products of `half` types fuse it;
/// float32 and float64 take pocaflow's own elementwise pass (the formula in their precision).
fn split_epilogue(e: Epilogue, swap: bool, unit_bias: bool, half: bool) -> (LtEpilogue, Epilogue) {
    let rest = |activation| Epilogue {
        bias: BiasMode::None,
        activation,
    };
    let fused_act = |plain: LtEpilogue, relu: LtEpilogue, gelu: LtEpilogue| match e.activation {
        None => (plain, rest(None)),
        Some(Activation::Relu) => (relu, rest(None)),
        Some(Activation::GeluTanh) if half => (gelu, rest(None)),
        Some(a @ (Activation::Gelu | Activation::GeluTanh)) => (plain, rest(Some(a))),
    };
    match e.bias {
        BiasMode::None => fused_act(
            LtEpilogue::CUBLASLT_EPILOGUE_DEFAULT,
            LtEpilogue::CUBLASLT_EPILOGUE_RELU,
            LtEpilogue::CUBLASLT_EPILOGUE_GELU,
        ),
        BiasMode::Add if swap && unit_bias => fused_act(
            LtEpilogue::CUBLASLT_EPILOGUE_BIAS,
            LtEpilogue::CUBLASLT_EPILOGUE_RELU_BIAS,
            LtEpilogue::CUBLASLT_EPILOGUE_GELU_BIAS,
        ),
        BiasMode::RowSumsOfA if unit_bias && e.activation.is_none() => (
            if swap {
                LtEpilogue::CUBLASLT_EPILOGUE_BGRADB
            } else {
                LtEpilogue::CUBLASLT_EPILOGUE_BGRADA
            },
            rest(None),
        ),
        _ => (LtEpilogue::CUBLASLT_EPILOGUE_DEFAULT, e),
    }
}

/// The cuBLASLt path of [`matmul`]: one strided-batched call per outer batch offset of `walk`
/// from `dtype` operands into C of `out`, as `how` says, with the epilogue that fits (`bias`:
/// the bias address and stride in elements); returns the rest.
#[allow(clippy::too_many_arguments)]
fn matmul_blaslt(
    plan: &MatmulPlan,
    (dtype, out): (DType, DType),
    how: Products,
    d: &Arc<DeviceState>,
    stream: &Arc<StreamInner>,
    (a_base, b_base, c_base): (u64, u64, u64),
    walk: &Batches,
    bias: Option<(u64, isize)>,
) -> Result<Epilogue> {
    let (m, k, n) = (plan.m, plan.k, plan.n);
    let nd = plan.a.ndim();
    let mat = |l: &Layout, rows, cols| {
        BlasMatrix::classify(rows, cols, l.strides()[nd - 2], l.strides()[nd - 1]).ok_or_else(
            || {
                Error::Shape(format!(
                    "matmul: strides {:?} are not a BLAS layout",
                    l.strides()
                ))
            },
        )
    };
    let (ma, mb, mc) = (
        mat(&plan.a, m, k)?,
        mat(&plan.b, k, n)?,
        mat(&plan.c, m, n)?,
    );
    // cuBLASLt computes column-major D. A row-major C is the column-major C^T = B^T A^T.
    let swap = mc.order == MatOrder::RowMajor;
    let (dm, dn) = if swap { (n, m) } else { (m, n) };
    // For operand X (rows x cols) stored as `bm`, used as X or as X^T:
    let describe = |bm: BlasMatrix, rows: usize, cols: usize, transposed: bool| {
        let stored = match bm.order {
            MatOrder::ColMajor => (rows as u64, cols as u64),
            MatOrder::RowMajor => (cols as u64, rows as u64),
        };
        (
            (bm.order == MatOrder::RowMajor) != transposed,
            stored,
            bm.ld as i64,
        )
    };
    let (first, second) = if swap {
        (describe(mb, k, n, true), describe(ma, m, k, true))
    } else {
        (describe(ma, m, k, false), describe(mb, k, n, false))
    };
    let (esize, out_size) = (dtype.size_in_bytes(), out.size_in_bytes());
    let ptr = |base: u64, off: usize| offset_ptr(base, off, esize);
    let unit_bias = bias.is_some_and(|(_, inc)| inc == 1 || plan.epilogue.bias != BiasMode::Add);
    let half = matches!(dtype, DType::F16 | DType::BF16);
    let (mut epilogue, mut rest) = split_epilogue(plan.epilogue, swap, unit_bias, half);
    let bias_ptr = bias.map_or(0, |b| b.0);
    let mut lt = d.blaslt()?;
    let inner = walk.inner;
    for &(oa, ob, oc) in &walk.offsets {
        let (pa, pb) = (ptr(a_base, oa), ptr(b_base, ob));
        let pc = offset_ptr(c_base, oc, out_size);
        let (pfirst, psecond, sfirst, ssecond) = if swap {
            (pb, pa, inner.2, inner.1)
        } else {
            (pa, pb, inner.1, inner.2)
        };
        let bytes = |s: isize, size: usize| (s.unsigned_abs() * size) as u64;
        let key = PlanKey {
            dtype,
            out,
            tf32: dtype == DType::F32 && how.tf32,
            trans_a: first.0,
            trans_b: second.0,
            m: dm as u64,
            n: dn as u64,
            k: k as u64,
            a_dims: first.1,
            b_dims: second.1,
            lda: first.2,
            ldb: second.2,
            ldc: mc.ld as i64,
            batch: inner.0 as i32,
            stride_a: sfirst as i64,
            stride_b: ssecond as i64,
            stride_c: inner.3 as i64,
            align_a: alignment(pfirst, bytes(sfirst, esize)),
            align_b: alignment(psecond, bytes(ssecond, esize)),
            align_c: alignment(pc, bytes(inner.3, out_size)),
            epilogue,
        };
        let key = if epilogue != LtEpilogue::CUBLASLT_EPILOGUE_DEFAULT && !lt.has_plan(&key) {
            // No fused kernel for this shape and dtype: the plain product, and the rest after.
            (epilogue, rest) = (LtEpilogue::CUBLASLT_EPILOGUE_DEFAULT, plan.epilogue);
            PlanKey { epilogue, ..key }
        } else {
            key
        };
        lt.matmul(
            d,
            stream,
            &key,
            (pfirst, psecond, pc),
            bias_ptr,
            how.accumulate,
        )?;
    }
    Ok(rest)
}
