//! The CPU backend: host buffers, strided copies and casts, and matmul over batches of
//! strided matrices through [`gemm`] (or, with the `blas` or `accelerate` feature, the system
//! BLAS in [`blas`]).

#[cfg(any(feature = "blas", feature = "accelerate"))]
pub mod blas;
pub mod gemm;

use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::ops::matmul::MatmulPlan;
use gemm::{GemmConfig, GemmScalar, MatMut, MatPtr, MatPtrMut, MatRef};
use half::{bf16, f16};
use rayon::prelude::*;
use std::any::Any;
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

    /// `c = a * b`: by the system BLAS when a feature selects one (and the sizes fit its
    /// 32-bit integers), else by [`gemm`].
    ///
    /// # Safety
    /// As for `gemm::gemm_ptr`.
    pub(crate) unsafe fn product(
        &mut self,
        m: usize,
        n: usize,
        k: usize,
        a: MatPtr<T>,
        b: MatPtr<T>,
        c: MatPtrMut<T>,
    ) {
        #[cfg(any(feature = "blas", feature = "accelerate"))]
        // SAFETY: forwarded from the caller.
        if unsafe { blas::gemm(m, n, k, a, b, c, &mut self.bufs) }.is_some() {
            return;
        }
        // SAFETY: forwarded from the caller.
        unsafe { gemm::gemm_ptr(m, n, k, a, b, c, self.cfg) }
    }
}

/// Host memory of one dtype.
#[derive(Debug, Clone, PartialEq)]
pub enum CpuBuffer {
    /// float16 elements.
    F16(Vec<f16>),
    /// bfloat16 elements.
    BF16(Vec<bf16>),
    /// float32 elements.
    F32(Vec<f32>),
    /// float64 elements.
    F64(Vec<f64>),
}

/// Runs `$body` with `$v` bound to the typed vector inside a [`CpuBuffer`] (and `$t` to its
/// element type).
macro_rules! with_typed {
    ($buf:expr, $v:ident, $body:expr) => {
        match $buf {
            CpuBuffer::F16($v) => $body,
            CpuBuffer::BF16($v) => $body,
            CpuBuffer::F32($v) => $body,
            CpuBuffer::F64($v) => $body,
        }
    };
}

impl CpuBuffer {
    /// Wraps a vector.
    pub fn from_vec<T: Element>(v: Vec<T>) -> CpuBuffer {
        let any: Box<dyn Any> = Box::new(v);
        let any = match any.downcast::<Vec<f32>>() {
            Ok(v) => return CpuBuffer::F32(*v),
            Err(a) => a,
        };
        let any = match any.downcast::<Vec<f64>>() {
            Ok(v) => return CpuBuffer::F64(*v),
            Err(a) => a,
        };
        let any = match any.downcast::<Vec<f16>>() {
            Ok(v) => return CpuBuffer::F16(*v),
            Err(a) => a,
        };
        match any.downcast::<Vec<bf16>>() {
            Ok(v) => CpuBuffer::BF16(*v),
            Err(_) => unreachable!("Element is sealed to the four buffer types"),
        }
    }

    /// `len` zeros of `dtype`.
    pub fn zeros(dtype: DType, len: usize) -> CpuBuffer {
        match dtype {
            DType::F16 => CpuBuffer::F16(vec![f16::ZERO; len]),
            DType::BF16 => CpuBuffer::BF16(vec![bf16::ZERO; len]),
            DType::F32 => CpuBuffer::F32(vec![0.0; len]),
            DType::F64 => CpuBuffer::F64(vec![0.0; len]),
        }
    }

    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            CpuBuffer::F16(_) => DType::F16,
            CpuBuffer::BF16(_) => DType::BF16,
            CpuBuffer::F32(_) => DType::F32,
            CpuBuffer::F64(_) => DType::F64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        with_typed!(self, v, v.len())
    }

    /// Whether the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as `T`, or `None` if `T` is not the buffer's dtype.
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        with_typed!(
            self,
            v,
            (v as &dyn Any).downcast_ref::<Vec<T>>().map(Vec::as_slice)
        )
    }

    /// The elements as mutable `T`, or `None` if `T` is not the buffer's dtype.
    pub fn as_mut_slice<T: Element>(&mut self) -> Option<&mut [T]> {
        with_typed!(
            self,
            v,
            (v as &mut dyn Any)
                .downcast_mut::<Vec<T>>()
                .map(Vec::as_mut_slice)
        )
    }

    /// The elements of `layout`, in C order, converted to `T`.
    pub fn gather<T: Element>(&self, layout: &Layout) -> Vec<T> {
        with_typed!(self, v, gather_cast(v, layout))
    }

    /// Copies the elements of `src` (viewed through `src_layout`) into the elements of `self`
    /// viewed through `dst_layout`, converting the dtype. Both layouts have the same shape.
    pub fn copy_strided(&mut self, dst_layout: &Layout, src: &CpuBuffer, src_layout: &Layout) {
        debug_assert_eq!(dst_layout.shape(), src_layout.shape());
        with_typed!(self, dst, {
            let values = src.gather(src_layout);
            for (i, v) in dst_layout.indices().zip(values) {
                dst[i] = v;
            }
        })
    }
}

/// The elements of `layout` in C order, converted to `U`.
// A `&Vec` rather than a slice so that it can be downcast to the target type (`[T]` is unsized).
#[allow(clippy::ptr_arg)]
fn gather_cast<T: Element, U: Element>(src: &Vec<T>, layout: &Layout) -> Vec<U> {
    if let Some(same) = (src as &dyn Any).downcast_ref::<Vec<U>>() {
        if layout.is_c_contiguous() {
            let start = layout.offset();
            return same[start..start + layout.numel()].to_vec();
        }
        return layout.indices().map(|i| same[i]).collect();
    }
    layout
        .indices()
        .map(|i| U::from_f64(src[i].to_f64()))
        .collect()
}

/// Batched matmul on host buffers: for every batch index, `C = A * B` with the strides of
/// `plan`. `c` must not share memory with `a` or `b` (the dispatch point guarantees it).
pub(crate) fn matmul(
    plan: &MatmulPlan,
    a: &CpuBuffer,
    b: &CpuBuffer,
    c: &mut CpuBuffer,
    cfg: GemmConfig,
) -> Result<()> {
    match (a, b, c) {
        (CpuBuffer::F32(a), CpuBuffer::F32(b), CpuBuffer::F32(c)) => {
            batched(plan, a, b, c, cfg);
            Ok(())
        }
        (CpuBuffer::F64(a), CpuBuffer::F64(b), CpuBuffer::F64(c)) => {
            batched(plan, a, b, c, cfg);
            Ok(())
        }
        _ => Err(Error::DType(format!(
            "matmul on the CPU supports float32 and float64, not {} (float16 and bfloat16 \
             matmul runs on CUDA devices)",
            a.dtype()
        ))),
    }
}

/// Storage offsets of the matrices of each batch index (the layout's batch strides over `batch`).
fn batch_offsets<'a>(batch: &'a [usize], l: &'a Layout) -> crate::layout::StridedIndices<'a> {
    crate::layout::StridedIndices::new(batch, &l.strides()[..batch.len()], l.offset())
}

fn batched<T: GemmScalar>(plan: &MatmulPlan, a: &[T], b: &[T], c: &mut [T], cfg: GemmConfig) {
    let (m, k, n) = (plan.m, plan.k, plan.n);
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
                gemm::gemm(
                    mref(a, ao, m, k, ars, acs),
                    mref(b, bo, k, n, brs, bcs),
                    cm,
                    single,
                );
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
        unsafe { mul.product(p.m, p.n, p.k, p.a, p.b, p.c) };
    }
}
