//! The CPU backend: the backend primitives on host buffers ([`storage`]: strided copies and
//! casts, fills, gathers and scatters, random numbers) and matmul over batches of strided
//! matrices through [`gemm`] (or, with the `blas` or `accelerate` feature, the system BLAS in
//! [`blas`]).

pub(crate) mod activation;
#[cfg(any(feature = "blas", feature = "accelerate"))]
pub mod blas;
mod elementwise;
pub mod gemm;
mod math;
mod reduce;
mod rowwise;
mod sparse;
mod storage;
mod walk;

pub(crate) use storage::CpuStorage;

use crate::dtype::Element;
use crate::error::{Error, Result};
use crate::host::try_collect;
use crate::host::CpuBuffer;
use crate::layout::Layout;
use crate::plan::{Activation, BiasMode, MatmulPlan};
use gemm::{Epilogue, GemmConfig, GemmScalar, HalfGemm, MatMut, MatPtr, MatPtrMut, MatRef};
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};
use math::FloatElem;
use rayon::prelude::*;
use std::marker::PhantomData;

/// The library that runs CPU matrix products: `"pocaflow"` (its own [`gemm`]), or the system
/// BLAS a feature selected (`"openblas"` with `blas`, `"accelerate"` with `accelerate`).
pub fn backend_name() -> &'static str {
    #[cfg(any(feature = "blas", feature = "accelerate"))]
    {
        blas::NAME
    }
    #[cfg(not(any(feature = "blas", feature = "accelerate")))]
    {
        "pocaflow"
    }
}

/// Runs the products of a batch with the backend in use, keeping what it reuses between them.
pub(crate) struct Multiplier<T> {
    cfg: GemmConfig,
    /// Copies of the operands the system BLAS cannot describe.
    #[cfg(any(feature = "blas", feature = "accelerate"))]
    bufs: blas::Buffers<T>,
    elem: PhantomData<T>,
}

impl<T: GemmScalar> Multiplier<T> {
    /// A multiplier whose own-GEMM products run with `cfg`.
    pub(crate) fn new(cfg: GemmConfig) -> Multiplier<T> {
        Multiplier {
            cfg,
            #[cfg(any(feature = "blas", feature = "accelerate"))]
            bufs: blas::Buffers::default(),
            elem: PhantomData,
        }
    }

    /// `c = epi(a * b)`: by the system BLAS when a feature selects one (and the sizes fit its
    /// 32-bit integers; the epilogue is then a pass over C in blocks of rows), else by
    /// [`gemm`] (the epilogue applied to each tile as it completes).
    ///
    /// # Safety
    /// As for `gemm::gemm_ptr`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn product(
        &mut self,
        m: usize,
        n: usize,
        k: usize,
        a: MatPtr<T>,
        b: MatPtr<T>,
        c: MatPtrMut<T>,
        epi: Epilogue<T>,
    ) {
        #[cfg(any(feature = "blas", feature = "accelerate"))]
        // SAFETY: forwarded from the caller.
        if unsafe { blas::gemm(m, n, k, a, b, c, &mut self.bufs) }.is_some() {
            // SAFETY: C is m x n, written by the call above and this call's alone.
            unsafe { epi.apply_all(c, m, n, self.cfg.threads) };
            return;
        }
        // SAFETY: forwarded from the caller.
        unsafe { gemm::gemm_ptr(m, n, k, a, b, c, self.cfg, epi) }
    }
}

/// Batched matmul on host buffers: for every batch index, `C = act(A * B + bias)` with the
/// strides of `plan` (the bias and activation of `plan.epilogue`, the bias a view of `bias`
/// along C's columns). `c` must not share memory with `a` or `b` (the dispatch point guarantees
/// it). A bias the epilogue writes ([`BiasMode::RowSumsOfA`]) is the caller's.
pub(crate) fn matmul(
    plan: &MatmulPlan,
    a: &CpuBuffer,
    b: &CpuBuffer,
    c: &mut CpuBuffer,
    cfg: GemmConfig,
    bias: Option<(&CpuBuffer, &Layout)>,
) -> Result<()> {
    let bias = bias.filter(|_| plan.epilogue.bias == BiasMode::Add);
    let act = plan.epilogue.activation;
    if let (Some(a), Some(b), Some(c)) = (a.as_slice(), b.as_slice(), c.as_mut_slice()) {
        let bias = typed_bias::<f32>(bias)?;
        batched::<f32>(plan, a, b, c, cfg, bias, act);
        return Ok(());
    }
    if let (Some(a), Some(b), Some(c)) = (a.as_slice(), b.as_slice(), c.as_mut_slice()) {
        let bias = typed_bias::<f64>(bias)?;
        batched::<f64>(plan, a, b, c, cfg, bias, act);
        return Ok(());
    }
    if let (Some(a), Some(b), Some(c)) = (a.as_slice(), b.as_slice(), c.as_mut_slice()) {
        let bias = typed_bias::<f16>(bias)?;
        return batched_half::<f16, f16>(plan, a, b, c, cfg, bias, act);
    }
    if let (Some(a), Some(b), Some(c)) = (a.as_slice(), b.as_slice(), c.as_mut_slice()) {
        let bias = typed_bias::<bf16>(bias)?;
        return batched_half::<bf16, bf16>(plan, a, b, c, cfg, bias, act);
    }
    // Half-precision operands into a float32 result (the product before its rounding).
    if let (Some(a), Some(b), Some(c)) = (a.as_slice(), b.as_slice(), c.as_mut_slice()) {
        let bias = typed_bias::<f16>(bias)?;
        return batched_half::<f16, f32>(plan, a, b, c, cfg, bias, act);
    }
    if let (Some(a), Some(b), Some(c)) = (a.as_slice(), b.as_slice(), c.as_mut_slice()) {
        let bias = typed_bias::<bf16>(bias)?;
        return batched_half::<bf16, f32>(plan, a, b, c, cfg, bias, act);
    }
    Err(Error::DType(format!(
        "matmul on the CPU supports float16, bfloat16, float32 and float64 operands (float16 \
         and bfloat16 also into float32), not {} and {} into {}",
        a.dtype(),
        b.dtype(),
        c.dtype()
    )))
}

/// What a float32 matrix of products is stored as: rounded once to float16 or bfloat16, or
/// kept as float32.
trait WideOut: FloatElem<C = f32> {
    /// `dst[i] = down(src[i])`, vectorized where the CPU can (F16C for float16).
    fn store_run(dst: &mut [Self], src: &[f32]);

    /// C itself as float32, when the products can be written there directly.
    fn as_f32(_c: &mut [Self]) -> Option<&mut [f32]> {
        None
    }
}

impl WideOut for f16 {
    fn store_run(dst: &mut [f16], src: &[f32]) {
        dst.convert_from_f32_slice(src);
    }
}

impl WideOut for bf16 {
    fn store_run(dst: &mut [bf16], src: &[f32]) {
        dst.convert_from_f32_slice(src);
    }
}

impl WideOut for f32 {
    fn store_run(dst: &mut [f32], src: &[f32]) {
        dst.copy_from_slice(src);
    }

    fn as_f32(c: &mut [f32]) -> Option<&mut [f32]> {
        Some(c)
    }
}

/// [`matmul`] for float16 or bfloat16 operands `S`: each product in float32 (see
/// `gemm::HalfGemm`) with the epilogue (bias and activation) applied there, straight into a
/// float32 C, or into a float32 matrix then rounded once into C of type `S`.
///
/// # Errors
/// [`Error::OutOfMemory`] when the float32 matrix does not fit.
fn batched_half<S: FloatElem<C = f32> + HalfGemm, O: WideOut>(
    plan: &MatmulPlan,
    a: &[S],
    b: &[S],
    c: &mut [O],
    cfg: GemmConfig,
    bias: Option<(&[S], &Layout)>,
    act: Option<Activation>,
) -> Result<()> {
    let (m, k, n) = (plan.m, plan.k, plan.n);
    let wide_bias = match bias {
        Some((data, l)) => {
            assert!(l.shape() == [n], "matmul: a bias of {n} elements expected");
            let inc = l.strides()[0];
            gemm::check_span("the bias", data.len(), l.offset(), 1, n, 0, inc);
            let at = |j: usize| data[(l.offset() as isize + j as isize * inc) as usize].up();
            Some(try_collect(n, (0..n).map(at))?)
        }
        None => None,
    };
    let epi = Epilogue::new(wide_bias.as_ref().map(|v| (v.as_ptr(), 1)), act);
    let mut wide = Vec::new();
    let (al, bl, cl) = (&plan.a, &plan.b, &plan.c);
    let nd = al.ndim();
    let mat = |l: &Layout| (l.strides()[nd - 2], l.strides()[nd - 1]);
    let ((ars, acs), (brs, bcs), (crs, ccs)) = (mat(al), mat(bl), mat(cl));
    let offsets = |l| batch_offsets(&plan.batch, l);
    for ((ao, bo), co) in offsets(al).zip(offsets(bl)).zip(offsets(cl)) {
        gemm::check_span("A", a.len(), ao, m, k, ars, acs);
        gemm::check_span("B", b.len(), bo, k, n, brs, bcs);
        gemm::check_span("C", c.len(), co, m, n, crs, ccs);
        let at = |data: &[S], o: usize| data[o.min(data.len().saturating_sub(1))..].as_ptr();
        let (pa, pb) = (
            MatPtr {
                ptr: at(a, ao),
                rs: ars,
                cs: acs,
            },
            MatPtr {
                ptr: at(b, bo),
                rs: brs,
                cs: bcs,
            },
        );
        if let Some(c) = O::as_f32(c) {
            let first = co.min(c.len().saturating_sub(1));
            let pc = MatPtrMut {
                ptr: c[first..].as_mut_ptr(),
                rs: crs,
                cs: ccs,
            };
            // SAFETY: check_span checked the spans of A, B and C (the offsets are inside their
            // slices when the matrices are not empty); C overlaps neither operand (the
            // dispatch point guarantees it); the bias holds n float32 values.
            unsafe { S::gemm_f32(m, n, k, pa, pb, pc, cfg, epi) };
            continue;
        }
        if wide.len() < m * n {
            wide = try_collect(m * n, std::iter::repeat_n(0f32, m * n))?;
        }
        let pc = MatPtrMut {
            ptr: wide.as_mut_ptr(),
            rs: n as isize,
            cs: 1,
        };
        // SAFETY: check_span checked the spans of A and B (and the offsets are inside their
        // slices when the matrices are not empty); `wide` is a separate m x n row-major
        // matrix; the bias holds n float32 values.
        unsafe { S::gemm_f32(m, n, k, pa, pb, pc, cfg, epi) };
        for (i, row) in wide.chunks_exact(n.max(1)).take(m).enumerate() {
            let start = co as isize + i as isize * crs;
            if ccs == 1 {
                O::store_run(&mut c[start as usize..start as usize + n], row);
                continue;
            }
            for (j, &v) in row.iter().enumerate() {
                c[(start + j as isize * ccs) as usize] = O::down(v);
            }
        }
    }
    Ok(())
}

/// The bias as elements of the product's type `T`; a `DType` error when it has another dtype.
fn typed_bias<'a, T: Element>(
    bias: Option<(&'a CpuBuffer, &'a Layout)>,
) -> Result<Option<(&'a [T], &'a Layout)>> {
    bias.map(|(buf, l)| {
        let data = buf.as_slice::<T>().ok_or_else(|| {
            Error::DType(format!(
                "matmul: the bias has dtype {}, not the product's",
                buf.dtype()
            ))
        })?;
        Ok((data, l))
    })
    .transpose()
}

/// Storage offsets of the matrices of each batch index (the layout's batch strides over `batch`).
fn batch_offsets<'a>(batch: &'a [usize], l: &'a Layout) -> crate::layout::StridedIndices<'a> {
    crate::layout::StridedIndices::new(batch, &l.strides()[..batch.len()], l.offset())
}

fn batched<T: GemmScalar>(
    plan: &MatmulPlan,
    a: &[T],
    b: &[T],
    c: &mut [T],
    cfg: GemmConfig,
    bias: Option<(&[T], &Layout)>,
    act: Option<Activation>,
) {
    let (m, k, n) = (plan.m, plan.k, plan.n);
    let bias = bias.map(|(data, l)| {
        assert!(l.shape() == [n], "matmul: a bias of {n} elements expected");
        let inc = l.strides()[0];
        gemm::check_span("the bias", data.len(), l.offset(), 1, n, 0, inc);
        // SAFETY: the offset is inside the slice (checked above, n >= 1 here as C is not
        // empty when the pointer is read).
        (
            unsafe { data.as_ptr().add(l.offset().min(data.len())) },
            inc,
        )
    });
    let epi = Epilogue::new(bias, act);
    let (al, bl, cl) = (&plan.a, &plan.b, &plan.c);
    let nd = al.ndim();
    let mat = |l: &Layout| (l.strides()[nd - 2], l.strides()[nd - 1]);
    let ((ars, acs), (brs, bcs), (crs, ccs)) = (mat(al), mat(bl), mat(cl));
    let batch = &plan.batch;
    let offsets = |l| batch_offsets(batch, l);
    let mref = |data, offset, rows, cols, rs, cs| MatRef {
        data,
        offset,
        rows,
        cols,
        rs,
        cs,
    };
    let count: usize = batch.iter().product();
    let dense_c = cl.is_c_contiguous() && cl.offset() == 0;
    let small = !gemm::parallel_worthwhile::<T>(m, n, k);
    let own_gemm = cfg!(not(any(feature = "blas", feature = "accelerate")));
    if own_gemm && count > 1 && small && cfg.threads > 1 && dense_c && m * n > 0 {
        // Many small matrices: one thread per group of whole matrices.
        let jobs: Vec<(usize, usize)> = offsets(al).zip(offsets(bl)).collect();
        let single = GemmConfig { threads: 1, ..cfg };
        c.par_chunks_mut(m * n)
            .zip(jobs)
            .for_each(|(cm, (ao, bo))| {
                let cm = MatMut {
                    data: cm,
                    offset: 0,
                    rows: m,
                    cols: n,
                    rs: crs,
                    cs: ccs,
                };
                let p = gemm::checked_ptrs(
                    mref(a, ao, m, k, ars, acs),
                    mref(b, bo, k, n, brs, bcs),
                    cm,
                );
                // SAFETY: checked_ptrs checked every span; this C matrix is this item's alone;
                // the bias covers n elements.
                unsafe { gemm::gemm_ptr(p.m, p.n, p.k, p.a, p.b, p.c, single, epi) };
            });
        return;
    }
    // One multiplier for the whole batch: its buffers (and the GEMM's thread-local packing
    // buffers) are reused from one matrix to the next.
    let mut mul = Multiplier::new(cfg);
    for ((ao, bo), co) in offsets(al).zip(offsets(bl)).zip(offsets(cl)) {
        let cm = MatMut {
            data: &mut *c,
            offset: co,
            rows: m,
            cols: n,
            rs: crs,
            cs: ccs,
        };
        let p = gemm::checked_ptrs(mref(a, ao, m, k, ars, acs), mref(b, bo, k, n, brs, bcs), cm);
        // SAFETY: checked_ptrs checked every span; C is borrowed mutably, distinct from A, B.
        unsafe { mul.product(p.m, p.n, p.k, p.a, p.b, p.c, epi) };
    }
}
