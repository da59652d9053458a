//! pocaflow's own GEMM: `C = A * B` for f32 and f64 (and float16/bfloat16 operands into a
//! float32 C, [`HalfGemm`]), cache-blocked, packed, with register-tiled
//! SIMD microkernels chosen at run time, and threads over the macro loops.
//!
//! Operands are strided matrices (`rs`, `cs` in elements, any sign). C-order and F-order
//! operands and their transposes are the unit-stride cases the packing routines read fastest;
//! other strides are gathered by the same packing pass, so no operand is ever copied
//! beforehand. See `docs/ARCHITECTURE.md` for the loop nest.

pub mod blocking;
mod epilogue;
mod gemv;
mod kernel;
mod pack;
mod panels;
mod par;
mod scratch;

pub(crate) use epilogue::Epilogue;
use epilogue::EpilogueScalar;
pub use kernel::Isa;
use kernel::{Kernel, KernelScalar, PairKernel};
use pack::PackSource;
use panels::Panels;

use crate::dtype::Element;
use blocking::{Blocking, CacheSizes};
use scratch::{with_scratch, ScratchScalar};
use std::mem::size_of;
use std::ops::{Add, Mul};
use std::sync::OnceLock;

/// Element types the CPU GEMM computes in: `f32` and `f64`.
#[cfg(not(any(feature = "blas", feature = "accelerate")))]
pub trait GemmScalar:
    Element + KernelScalar + ScratchScalar + EpilogueScalar + Add<Output = Self> + Mul<Output = Self>
{
}

/// Element types the CPU GEMM and the system BLAS compute in: `f32` and `f64`.
#[cfg(any(feature = "blas", feature = "accelerate"))]
pub trait GemmScalar:
    Element
    + KernelScalar
    + ScratchScalar
    + EpilogueScalar
    + Add<Output = Self>
    + Mul<Output = Self>
    + crate::cpu::blas::BlasScalar
{
}

impl GemmScalar for f32 {}
impl GemmScalar for f64 {}

/// How a GEMM runs: which microkernel, how many threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemmConfig {
    /// Instruction set of the microkernel.
    pub isa: Isa,
    /// Number of threads for problems large enough to gain from them.
    pub threads: usize,
}

impl Default for GemmConfig {
    /// The fastest supported instruction set, and [`default_threads`].
    fn default() -> Self {
        GemmConfig {
            isa: Isa::best(),
            threads: default_threads(),
        }
    }
}

/// Threads used by default: `POCAFLOW_NUM_THREADS` if set to a positive integer, else the
/// number of logical cores. Read once.
pub fn default_threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| {
        std::env::var("POCAFLOW_NUM_THREADS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .filter(|&n: &usize| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    })
}

/// Problems with less work than this run on one thread: handing work to a second thread costs
/// a few microseconds, more than it saves below about 96^3 f32 (76^3 f64) multiply-adds (on 2
/// cores: 64^3 f64 gained nothing from a second thread, 80^3 f64 and 96^3 f32 gained 20-25%).
/// Work is counted in f32 multiply-adds; an f64 one counts twice (it takes twice as long).
const PARALLEL_MIN_WORK: usize = 96 * 96 * 96;

/// Whether an `m x k` by `k x n` product is large enough to gain from more than one thread.
pub(crate) fn parallel_worthwhile<T>(m: usize, n: usize, k: usize) -> bool {
    m * n * k * std::mem::size_of::<T>() / 4 >= PARALLEL_MIN_WORK
}

/// Problems with every dimension at most this are one cache block whatever the caches: they
/// run unpacked without asking.
const TINY: usize = 32;

/// A read-only strided matrix in a slice: element `(i, j)` is `data[offset + i*rs + j*cs]`.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a, T> {
    /// The storage the matrix lives in.
    pub data: &'a [T],
    /// Index of element `(0, 0)`.
    pub offset: usize,
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Step between rows.
    pub rs: isize,
    /// Step between columns.
    pub cs: isize,
}

/// A writable strided matrix in a slice; its elements must not overlap (no zero strides across
/// more than one row or column).
#[derive(Debug)]
pub struct MatMut<'a, T> {
    /// The storage the matrix lives in.
    pub data: &'a mut [T],
    /// Index of element `(0, 0)`.
    pub offset: usize,
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Step between rows.
    pub rs: isize,
    /// Step between columns.
    pub cs: isize,
}

/// Panics unless every element of a `rows x cols` matrix at `offset` with strides `rs`, `cs`
/// lies inside `len` elements.
pub(crate) fn check_span(
    what: &str,
    len: usize,
    offset: usize,
    rows: usize,
    cols: usize,
    rs: isize,
    cs: isize,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    let corner = |n: usize, s: isize| (n as isize - 1) * s;
    let (r, c) = (corner(rows, rs), corner(cols, cs));
    let lo = offset as isize + r.min(0) + c.min(0);
    let hi = offset as isize + r.max(0) + c.max(0);
    assert!(
        lo >= 0 && (hi as usize) < len,
        "gemm: {what} ({rows}x{cols}, strides {rs},{cs}, offset {offset}) exceeds its storage of {len}"
    );
}

/// `c = a * b` (overwriting `c`; NaN in `c` beforehand does not leak into the result).
///
/// # Panics
/// If the shapes do not agree or a matrix does not fit its slice: callers validate user input
/// before this point, so a panic here is a bug in pocaflow.
pub fn gemm<T: GemmScalar>(a: MatRef<'_, T>, b: MatRef<'_, T>, c: MatMut<'_, T>, cfg: GemmConfig) {
    let p = checked_ptrs(a, b, c);
    // SAFETY: checked_ptrs checked the spans of A, B and C; C is borrowed mutably, so it does
    // not overlap A or B, and its elements are distinct.
    unsafe { gemm_ptr(p.m, p.n, p.k, p.a, p.b, p.c, cfg, Epilogue::NONE) }
}

/// The operands of one product as raw pointers, after [`checked_ptrs`].
#[derive(Debug)]
pub(crate) struct Operands<T> {
    pub(crate) m: usize,
    pub(crate) n: usize,
    pub(crate) k: usize,
    pub(crate) a: MatPtr<T>,
    pub(crate) b: MatPtr<T>,
    pub(crate) c: MatPtrMut<T>,
}

/// Checks that the shapes agree and that every matrix fits its slice and C has distinct
/// elements, then returns the pointers (valid while the borrows last).
///
/// # Panics
/// As [`gemm`].
pub(crate) fn checked_ptrs<T>(a: MatRef<'_, T>, b: MatRef<'_, T>, c: MatMut<'_, T>) -> Operands<T> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(
        b.rows == k && c.rows == m && c.cols == n,
        "gemm: inconsistent shapes"
    );
    check_span("A", a.data.len(), a.offset, m, k, a.rs, a.cs);
    check_span("B", b.data.len(), b.offset, k, n, b.rs, b.cs);
    check_span("C", c.data.len(), c.offset, m, n, c.rs, c.cs);
    assert!(
        (m <= 1 || c.rs != 0) && (n <= 1 || c.cs != 0),
        "gemm: C has overlapping elements"
    );
    let mat = |m: MatRef<'_, T>| MatPtr {
        // SAFETY: offset < len was checked by check_span (or the matrix is empty and the
        // pointer is never read).
        ptr: unsafe { m.data.as_ptr().add(m.offset.min(m.data.len())) },
        rs: m.rs,
        cs: m.cs,
    };
    Operands {
        m,
        n,
        k,
        a: mat(a),
        b: mat(b),
        c: MatPtrMut {
            // SAFETY: as above.
            ptr: unsafe { c.data.as_mut_ptr().add(c.offset.min(c.data.len())) },
            rs: c.rs,
            cs: c.cs,
        },
    }
}

/// `c = epi(a * b)` on raw strided matrices (for callers such as `ndarray` views whose
/// elements are not one slice): each tile of C gets the epilogue right after its last k-panel.
///
/// # Safety
/// `a` readable for `m x k` elements, `b` for `k x n`, `c` writable for `m x n` distinct
/// elements that overlap neither `a` nor `b`, none of them touched by others meanwhile; the
/// epilogue's bias (if any) readable for `n` elements.
///
/// # Panics
/// If `cfg.isa` is not supported by this CPU.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_ptr<T: GemmScalar>(
    m: usize,
    n: usize,
    k: usize,
    a: MatPtr<T>,
    b: MatPtr<T>,
    c: MatPtrMut<T>,
    cfg: GemmConfig,
    epi: Epilogue<T>,
) {
    let kernel = T::kernel(cfg.isa)
        .unwrap_or_else(|| panic!("gemm: this CPU does not support the {} kernel", cfg.isa));
    // SAFETY: forwarded from the caller.
    unsafe { gemm_raw(m, n, k, a, b, c, kernel, cfg.threads, epi) }
}

/// A strided read-only matrix by raw pointer.
#[derive(Debug)]
pub(crate) struct MatPtr<T> {
    pub(crate) ptr: *const T,
    pub(crate) rs: isize,
    pub(crate) cs: isize,
}

impl<T> Clone for MatPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for MatPtr<T> {}

impl<T> MatPtr<T> {
    /// # Safety
    /// `(i, j)` must be inside the matrix.
    unsafe fn at(self, i: usize, j: usize) -> *const T {
        // SAFETY: forwarded from the caller.
        unsafe { self.ptr.offset(i as isize * self.rs + j as isize * self.cs) }
    }

    fn t(self) -> MatPtr<T> {
        MatPtr {
            ptr: self.ptr,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

/// A strided writable matrix by raw pointer.
#[derive(Debug)]
pub(crate) struct MatPtrMut<T> {
    pub(crate) ptr: *mut T,
    pub(crate) rs: isize,
    pub(crate) cs: isize,
}

impl<T> Clone for MatPtrMut<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for MatPtrMut<T> {}

impl<T> MatPtrMut<T> {
    /// # Safety
    /// `(i, j)` must be inside the matrix.
    unsafe fn at(self, i: usize, j: usize) -> *mut T {
        // SAFETY: forwarded from the caller.
        unsafe { self.ptr.offset(i as isize * self.rs + j as isize * self.cs) }
    }
}

// SAFETY: the GEMM shares A and B read-only between threads and gives each thread a disjoint
// set of C tiles; the pointers outlive the parallel region (it ends before `gemm` returns).
unsafe impl<T: Sync> Send for MatPtr<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for MatPtr<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for MatPtrMut<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for MatPtrMut<T> {}

/// # Safety
/// A, B and C valid for their `m x k`, `k x n`, `m x n` extents; C distinct from A and B.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_raw<T: GemmScalar>(
    m: usize,
    n: usize,
    k: usize,
    a: MatPtr<T>,
    b: MatPtr<T>,
    c: MatPtrMut<T>,
    kernel: Kernel<T>,
    threads: usize,
    epi: Epilogue<T>,
) {
    if m == 0 || n == 0 {
        return;
    }
    let (m, n, a, b, c, epi) = orient(m, n, a, b, c, epi);
    if k == 0 {
        // SAFETY: forwarded.
        unsafe { zero_product(m, n, c, epi) };
    } else if n == 1 {
        let x = gemv::VecPtr {
            ptr: b.ptr,
            inc: b.rs,
        };
        // SAFETY: forwarded; column 0 of B is x and column 0 of C is y.
        unsafe { gemv::gemv(m, k, a, x, c.ptr, c.rs, kernel.isa, threads) };
        // A vector of m results, a pass over it costs nothing next to reading A.
        // SAFETY: C is m x 1 and this thread's.
        unsafe { epi.apply(c, 0, 0, m, 1) };
    } else {
        let threads = if parallel_worthwhile::<T>(m, n, k) {
            threads.max(1)
        } else {
            1
        };
        let tiny = m.max(n).max(k) <= TINY;
        let bl = || Blocking::new(CacheSizes::detect(), kernel.mr, kernel.nr, size_of::<T>());
        if a.rs == 1 && (tiny || bl().holds_unpacked(m, k, size_of::<T>())) {
            // SAFETY: forwarded; A has unit row stride.
            unsafe { gemm_unpacked(m, n, k, a, b, c, kernel, threads, epi) }
        } else {
            // SAFETY: forwarded.
            unsafe { gemm_blocked(m, n, k, a, b, c, kernel, bl(), threads, epi) }
        }
    }
}

/// The product as the microkernel computes it. The microkernel stores columns of its tile
/// fastest when C's columns are contiguous: a row-major C is the column-major C^T = B^T A^T, so
/// the operands are swapped instead of scattering. A single row of C is the matrix-vector
/// product C^T = B^T A^T too.
#[allow(clippy::type_complexity)]
fn orient<T: GemmScalar, S>(
    m: usize,
    n: usize,
    a: MatPtr<S>,
    b: MatPtr<S>,
    c: MatPtrMut<T>,
    epi: Epilogue<T>,
) -> (
    usize,
    usize,
    MatPtr<S>,
    MatPtr<S>,
    MatPtrMut<T>,
    Epilogue<T>,
) {
    if m == 1 || (c.cs.unsigned_abs() == 1 && c.rs.unsigned_abs() != 1) {
        let ct = MatPtrMut {
            ptr: c.ptr,
            rs: c.cs,
            cs: c.rs,
        };
        (n, m, b.t(), a.t(), ct, epi.t())
    } else {
        (m, n, a, b, c, epi)
    }
}

/// `c = epi(0)` for a product with an empty inner dimension.
///
/// # Safety
/// `c` writable for `m x n` distinct elements, this thread's.
unsafe fn zero_product<T: GemmScalar>(m: usize, n: usize, c: MatPtrMut<T>, epi: Epilogue<T>) {
    for j in 0..n {
        for i in 0..m {
            // SAFETY: (i, j) is inside C.
            unsafe { *c.at(i, j) = T::default() };
        }
    }
    // SAFETY: C is m x n and this thread's.
    unsafe { epi.apply(c, 0, 0, m, n) };
}

/// Half-precision operands of a float32 product: float16 and bfloat16.
pub(crate) trait HalfGemm: PackSource<f32> {
    /// `c = epi(a * b)` in float32: every product of two elements is exact in float32 and the
    /// sums are float32's. bfloat16 runs on the pair kernel where the CPU has one (AVX512-BF16
    /// with `cfg.isa` AVX-512), everything else on the float32 kernel with the operands widened
    /// while they are packed. Always the blocked path, the one that packs.
    ///
    /// # Safety
    /// As for [`gemm_ptr`].
    ///
    /// # Panics
    /// As for [`gemm_ptr`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_f32(
        m: usize,
        n: usize,
        k: usize,
        a: MatPtr<Self>,
        b: MatPtr<Self>,
        c: MatPtrMut<f32>,
        cfg: GemmConfig,
        epi: Epilogue<f32>,
    ) {
        // SAFETY: forwarded.
        unsafe { gemm_packing(m, n, k, a, b, c, widening(cfg), cfg.threads, epi) }
    }
}

/// The float32 kernel of `cfg.isa`, which widens half-precision operands as it packs them.
///
/// # Panics
/// When this CPU does not support `cfg.isa`.
fn widening(cfg: GemmConfig) -> Kernel<f32> {
    f32::kernel(cfg.isa)
        .unwrap_or_else(|| panic!("gemm: this CPU does not support the {} kernel", cfg.isa))
}

impl HalfGemm for half::f16 {}

impl HalfGemm for half::bf16 {
    unsafe fn gemm_f32(
        m: usize,
        n: usize,
        k: usize,
        a: MatPtr<Self>,
        b: MatPtr<Self>,
        c: MatPtrMut<f32>,
        cfg: GemmConfig,
        epi: Epilogue<f32>,
    ) {
        // SAFETY: forwarded.
        unsafe {
            match PairKernel::for_isa(cfg.isa) {
                Some(pairs) => gemm_packing(m, n, k, a, b, c, pairs, cfg.threads, epi),
                None => gemm_packing(m, n, k, a, b, c, widening(cfg), cfg.threads, epi),
            }
        }
    }
}

/// The blocked path for any [`Panels`] scheme, with the orientation, the empty cases and the
/// choice of threads of [`gemm_raw`]; blocks sized for the operands' element `S`.
///
/// # Safety
/// As for [`gemm_raw`]; `kernel` runs on this CPU.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_packing<S: Copy + Send + Sync, K: Panels<S, f32>>(
    m: usize,
    n: usize,
    k: usize,
    a: MatPtr<S>,
    b: MatPtr<S>,
    c: MatPtrMut<f32>,
    kernel: K,
    threads: usize,
    epi: Epilogue<f32>,
) {
    if m == 0 || n == 0 {
        return;
    }
    let (m, n, a, b, c, epi) = orient(m, n, a, b, c, epi);
    if k == 0 {
        // SAFETY: forwarded.
        return unsafe { zero_product(m, n, c, epi) };
    }
    let threads = if parallel_worthwhile::<f32>(m, n, k) {
        threads.max(1)
    } else {
        1
    };
    let (mr, nr) = kernel.tile();
    let bl = Blocking::new(CacheSizes::detect(), mr, nr, size_of::<S>());
    // SAFETY: forwarded.
    unsafe { gemm_blocked(m, n, k, a, b, c, kernel, bl, threads, epi) }
}

/// The unpacked path, for problems that are a single cache block (every problem with all
/// dimensions <= 32 among them): the direct kernel reads A's columns and B's elements in place,
/// one register tile at a time, with no packing and no blocking. Packing costs a pass over
/// both operands, which a product this small does not earn back. Threads split C's columns.
///
/// # Safety
/// As for [`gemm_raw`], with `a.rs == 1`.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_unpacked<T: GemmScalar>(
    m: usize,
    n: usize,
    k: usize,
    a: MatPtr<T>,
    b: MatPtr<T>,
    c: MatPtrMut<T>,
    kernel: Kernel<T>,
    threads: usize,
    epi: Epilogue<T>,
) {
    let (mr, nr) = (kernel.mr, kernel.nr);
    let columns = |cols: std::ops::Range<usize>| {
        // B's k x nr column panel stays in L1 while A's columns stream past it.
        for j0 in cols.clone().step_by(nr) {
            for i0 in (0..m).step_by(mr) {
                // SAFETY: the tile (i0, j0) and the rows and columns of A and B it reads are
                // inside the matrices; A has unit row stride; this call's columns are its own;
                // the epilogue's bias covers C.
                unsafe {
                    (kernel.direct)(
                        k,
                        a.at(i0, 0),
                        a.cs,
                        b.at(0, j0),
                        b.rs,
                        b.cs,
                        c.at(i0, j0),
                        c.rs,
                        c.cs,
                        mr.min(m - i0),
                        nr.min(cols.end - j0),
                    );
                    // The tile is complete (the direct kernel runs all of k) and in L1.
                    epi.apply(c, i0, j0, mr.min(m - i0), nr.min(cols.end - j0));
                };
            }
        }
    };
    if threads == 1 {
        return columns(0..n);
    }
    let per = n.div_ceil(nr).div_ceil(threads) * nr;
    par::for_each(threads, (0..n).step_by(per), |j0| {
        columns(j0..(j0 + per).min(n))
    });
}

/// The blocked path (BLIS loop order; see [`blocking`]).
///
/// # Safety
/// As for [`gemm_raw`].
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_blocked<T: GemmScalar, S: Copy + Send + Sync, K: Panels<S, T>>(
    m: usize,
    n: usize,
    k: usize,
    a: MatPtr<S>,
    b: MatPtr<S>,
    c: MatPtrMut<T>,
    kernel: K,
    bl: Blocking,
    threads: usize,
    epi: Epilogue<T>,
) {
    let (mr, nr) = kernel.tile();
    // Blocks of B as even as whole panels allow: 1040 columns are two blocks of 528 and 512,
    // not one of 1032 and a sliver of 8 that would repack all of A for itself.
    let nc = n.div_ceil(n.div_ceil(bl.nc)).div_ceil(nr) * nr;
    let b_len = kernel.steps(bl.kc) * nc;
    with_scratch::<K::Packed, _>(scratch::Slot::B, b_len, |bpack| {
        for jc in (0..n).step_by(nc) {
            let ncb = nc.min(n - jc);
            for pc in (0..k).step_by(bl.kc) {
                let kcb = bl.kc.min(k - pc);
                // SAFETY: the block (pc.., jc..) of B is kcb x ncb and inside B.
                let bblock = unsafe {
                    MatPtr {
                        ptr: b.at(pc, jc),
                        ..b
                    }
                };
                // SAFETY: the block (.., pc..) of A is m x kcb and inside A.
                let ablock = unsafe {
                    MatPtr {
                        ptr: a.at(0, pc),
                        ..a
                    }
                };
                // SAFETY: the block (.., jc..) of C is m x ncb and inside C.
                let cblock = unsafe {
                    MatPtrMut {
                        ptr: c.at(0, jc),
                        ..c
                    }
                };
                // Tiles get the epilogue once this last k-panel has been added to them.
                let epi = if pc + kcb == k {
                    // SAFETY: the block starts at column jc of C.
                    unsafe { epi.shifted(0, jc) }
                } else {
                    Epilogue::NONE
                };
                let steps = kernel.steps(kcb);
                let bpack = &mut bpack[..steps * ncb.div_ceil(nr) * nr];
                let macro_tile = |rows: std::ops::Range<usize>,
                                  cols: std::ops::Range<usize>,
                                  bpack: &[K::Packed]| {
                    // SAFETY: each call covers a disjoint part of C.
                    unsafe {
                        macro_kernel(
                            ablock,
                            bpack,
                            cblock,
                            rows,
                            cols,
                            kcb,
                            pc > 0,
                            kernel,
                            bl.mc,
                            epi,
                        )
                    }
                };
                if threads == 1 {
                    // SAFETY: bpack holds the panels of this block.
                    unsafe { kernel.pack_b(bblock, kcb, ncb, bpack) };
                    macro_tile(0..m, 0..ncb, bpack);
                    continue;
                }
                let panels = ncb.div_ceil(nr);
                let per = panels.div_ceil(threads);
                // The columns of B in the t-th run of `per` panels.
                let cols_of = |t: usize| {
                    let j0 = t * per * nr;
                    // SAFETY: columns j0.. of the block are inside B.
                    let src = unsafe {
                        MatPtr {
                            ptr: bblock.at(0, j0),
                            ..bblock
                        }
                    };
                    (j0, (per * nr).min(ncb - j0), src)
                };
                let chunks = bpack.chunks_mut(per * nr * steps).enumerate();
                if m <= ncb {
                    // Split C's columns: each item packs the panels of B it multiplies (and
                    // all of A, the smaller operand), so no thread waits for another.
                    par::for_each(threads, chunks, |(t, chunk)| {
                        let (j0, cols, src) = cols_of(t);
                        // SAFETY: chunk holds the panels of those columns.
                        unsafe { kernel.pack_b(src, kcb, cols, chunk) };
                        macro_tile(0..m, j0..j0 + cols, chunk);
                    });
                    continue;
                }
                // Split C's rows: every row multiplies all of B, so pack it first, then
                // multiply.
                par::for_each(threads, chunks, |(t, chunk)| {
                    let (_, cols, src) = cols_of(t);
                    // SAFETY: chunk holds the panels of those columns.
                    unsafe { kernel.pack_b(src, kcb, cols, chunk) };
                });
                let bpack = &*bpack;
                let rows = m.div_ceil(threads).div_ceil(mr) * mr;
                par::for_each(threads, (0..m).step_by(rows), |r0| {
                    macro_tile(r0..(r0 + rows).min(m), 0..ncb, bpack)
                });
            }
        }
    });
}

/// Asks for the cache line holding `p` to be loaded (a hint: any address is harmless).
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of x86-64, so the instruction is always there, and a prefetch never
    // faults whatever the address.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: PRFM is part of ARMv8-A and never faults whatever the address; it touches no
    // register but its operand and no memory the program sees.
    unsafe {
        std::arch::asm!("prfm pldl1keep, [{0}]", in(reg) p, options(nostack, readonly, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = p;
}

/// Multiplies rows `rows` of the packed-A side by the packed B columns `cols` (a multiple of
/// `nr` at the start) of one `kc` block, packing A itself `mc` rows at a time, and applies
/// `epi` to each tile right after the microkernel stored it.
///
/// # Safety
/// `a` readable for `rows x kc`, `c` writable for `rows x cols` and not touched by any other
/// thread meanwhile; `bpack` holds the packed panels of `cols`, from its first; `epi` covers
/// `c`.
#[allow(clippy::too_many_arguments)]
unsafe fn macro_kernel<T: GemmScalar, S: Copy, K: Panels<S, T>>(
    a: MatPtr<S>,
    bpack: &[K::Packed],
    c: MatPtrMut<T>,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    kc: usize,
    accumulate: bool,
    kernel: K,
    mc: usize,
    epi: Epilogue<T>,
) {
    let (mr, nr) = kernel.tile();
    let steps = kernel.steps(kc);
    let a_len = mc.div_ceil(mr) * mr * steps;
    with_scratch::<K::Packed, _>(scratch::Slot::A, a_len, |apack| {
        for ic in rows.clone().step_by(mc) {
            let mcb = mc.min(rows.end - ic);
            // SAFETY: rows ic..ic+mcb of A are inside it; apack holds a_len elements.
            unsafe {
                kernel.pack_a(
                    MatPtr {
                        ptr: a.at(ic, 0),
                        ..a
                    },
                    mcb,
                    kc,
                    apack,
                )
            };
            for j0 in cols.clone().step_by(nr) {
                let ncols = nr.min(cols.end - j0);
                let bpanel = &bpack[(j0 - cols.start) / nr * nr * steps..];
                for i0 in (0..mcb).step_by(mr) {
                    let nrows = mr.min(mcb - i0);
                    // SAFETY: the tile (ic+i0, j0) of nrows x ncols is inside C and this
                    // thread's; the packed panels hold `steps` steps of mr and nr elements;
                    // the epilogue's bias covers C.
                    unsafe {
                        kernel.multiply(
                            steps,
                            apack[i0 * steps..].as_ptr(),
                            bpanel.as_ptr(),
                            c.at(ic + i0, j0),
                            c.rs,
                            c.cs,
                            nrows,
                            ncols,
                            accumulate,
                        );
                        epi.apply(c, ic + i0, j0, nrows, ncols);
                    };
                }
            }
        }
    });
}
