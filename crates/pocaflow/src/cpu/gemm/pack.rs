//! Packing: copies a block of A or B into the panel order the microkernel streams, zero-padding
//! partial panels so that the kernel never branches on edges. This is also where operands of any
//! stride (steps, negative strides, transposes) become contiguous. Three cases per operand:
//! - the panel runs along the unit stride (columns of a column-major A, rows of a row-major B):
//!   each step of `p` is one contiguous copy;
//! - the panel runs across it (rows of a row-major A, columns of a column-major B): the
//!   kernel's transposing pack ([`super::kernel::PackTFn`], SIMD blocks on AVX-512);
//! - no unit stride at all (stepped or reversed views): an element-by-element gather.
//!
//! The source may also be float16 or bfloat16 for the float32 kernels ([`PackSource`]): each run
//! is widened on its way into the panel, so a half-precision product reads its operands once,
//! at half the bytes, and never holds a float32 copy of them.

use super::kernel::PackTFn;
use super::MatPtr;
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

/// An element type packing reads for kernels of `T`: `T` itself (copied), or float16 and
/// bfloat16 for float32 (widened, exactly).
pub(crate) trait PackSource<T>: Copy + Send + Sync {
    /// `src` as a pointer to `T` when the source is `T` itself (the transposing pack then
    /// reads it in place).
    fn same(src: *const Self) -> Option<*const T>;
    /// `dst[i] = src[i]`, widened (equal lengths).
    fn widen(src: &[Self], dst: &mut [T]);
}

impl<T: Copy + Send + Sync> PackSource<T> for T {
    #[inline(always)]
    fn same(src: *const T) -> Option<*const T> {
        Some(src)
    }

    #[inline(always)]
    fn widen(src: &[T], dst: &mut [T]) {
        copy_run(dst, src);
    }
}

impl PackSource<f32> for f16 {
    fn same(_: *const f16) -> Option<*const f32> {
        None
    }

    /// By F16C where the CPU has it (the `half` crate detects it at run time).
    fn widen(src: &[f16], dst: &mut [f32]) {
        src.convert_to_f32_slice(dst);
    }
}

impl PackSource<f32> for bf16 {
    fn same(_: *const bf16) -> Option<*const f32> {
        None
    }

    /// A shift of each 16-bit pattern (the compiler vectorizes the loop).
    fn widen(src: &[bf16], dst: &mut [f32]) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = f32::from_bits(u32::from(s.to_bits()) << 16);
        }
    }
}

/// The transposing pack of `w` runs of `kc` elements `ld` apart from `src` into `out` (see
/// [`PackTFn`]): in place for a source of the kernel's type, else through `tmp`, where the runs
/// are widened first.
///
/// # Safety
/// As for [`PackTFn`]; `tmp` holds `w * kc` elements when the source is not `T`.
#[allow(clippy::too_many_arguments)]
unsafe fn pack_across<S: PackSource<T>, T: Copy + Default>(
    src: *const S,
    ld: isize,
    w: usize,
    kc: usize,
    out: &mut [T],
    width: usize,
    pack_t: PackTFn<T>,
    tmp: &mut Vec<T>,
) {
    if let Some(same) = S::same(src) {
        // SAFETY: forwarded from the caller.
        return unsafe { pack_t(same, ld, w, kc, out.as_mut_ptr(), width) };
    }
    tmp.resize(w * kc, T::default());
    for (i, run) in tmp.chunks_exact_mut(kc).enumerate() {
        // SAFETY: run i holds kc readable elements from src + i * ld.
        S::widen(
            unsafe { std::slice::from_raw_parts(src.offset(i as isize * ld), kc) },
            run,
        );
    }
    // SAFETY: tmp holds w runs of kc elements, kc apart; out as the caller guarantees.
    unsafe { pack_t(tmp.as_ptr(), kc as isize, w, kc, out.as_mut_ptr(), width) }
}

/// One element of `src`, widened.
#[inline(always)]
fn widen_one<S: PackSource<T>, T: Copy + Default>(x: S) -> T {
    let mut out = [T::default()];
    S::widen(&[x], &mut out);
    out[0]
}

/// How many columns ahead `pack_a` prefetches its runs.
const PREFETCH_COLUMNS: isize = 4;

/// Packs the `mc x kc` block of `a` into `ceil(mc / mr)` panels, each `kc` steps of `mr` rows.
///
/// # Safety
/// `a` must be readable for `mc x kc`; `out` must hold `ceil(mc / mr) * mr * kc` elements;
/// `pack_t` must run on this CPU.
pub(super) unsafe fn pack_a<S: PackSource<T>, T: Copy + Default>(
    a: MatPtr<S>,
    mc: usize,
    kc: usize,
    mr: usize,
    out: &mut [T],
    pack_t: PackTFn<T>,
) {
    let panels = mc.div_ceil(mr);
    let mut tmp = Vec::new();
    if a.rs == 1 {
        // Column by column, so that the source is read in runs of mc elements (a column may be
        // a page away from the next: short runs would defeat the prefetcher), each run dealt
        // out to the panels.
        for p in 0..kc {
            // SAFETY: column p of the block holds mc contiguous elements.
            let col = unsafe { std::slice::from_raw_parts(a.at(0, p), mc) };
            // Fetch the run PREFETCH_COLUMNS columns on meanwhile (past the block, harmless).
            let ahead = col.as_ptr().wrapping_offset(PREFETCH_COLUMNS * a.cs);
            for line in (0..mc).step_by(64 / std::mem::size_of::<S>()) {
                super::prefetch(ahead.wrapping_add(line));
            }
            // A half-precision column is widened whole, then dealt out.
            let col: &[T] = match S::same(col.as_ptr()) {
                // SAFETY: the source is T itself: the same mc elements.
                Some(same) => unsafe { std::slice::from_raw_parts(same, mc) },
                None => {
                    tmp.resize(mc, T::default());
                    S::widen(col, &mut tmp);
                    &tmp
                }
            };
            for (r, panel) in out.chunks_exact_mut(mr * kc).take(panels).enumerate() {
                let rows = &col[r * mr..(r * mr + mr).min(mc)];
                let step = &mut panel[p * mr..(p + 1) * mr];
                copy_run(&mut step[..rows.len()], rows);
                step[rows.len()..].fill(T::default());
            }
        }
        return;
    }
    for (r, panel) in out.chunks_exact_mut(mr * kc).take(panels).enumerate() {
        let rows = mr.min(mc - r * mr);
        // SAFETY: rows r*mr .. r*mr+rows are inside the block.
        let src = unsafe { a.at(r * mr, 0) };
        if a.cs == 1 {
            // SAFETY: rows r*mr .. r*mr+rows each hold kc contiguous elements; the panel holds
            // kc * mr.
            unsafe { pack_across(src, a.rs, rows, kc, panel, mr, pack_t, &mut tmp) };
        } else {
            for i in 0..mr {
                for p in 0..kc {
                    panel[p * mr + i] = if i < rows {
                        // SAFETY: (r*mr + i, p) is inside the block.
                        widen_one(unsafe { *src.offset(i as isize * a.rs + p as isize * a.cs) })
                    } else {
                        T::default()
                    };
                }
            }
        }
    }
}

/// Packs the `kc x nc` block of `b` into `ceil(nc / nr)` panels, each `kc` steps of `nr` columns.
///
/// # Safety
/// `b` must be readable for `kc x nc`; `out` must hold `ceil(nc / nr) * nr * kc` elements;
/// `pack_t` must run on this CPU.
pub(super) unsafe fn pack_b<S: PackSource<T>, T: Copy + Default>(
    b: MatPtr<S>,
    kc: usize,
    nc: usize,
    nr: usize,
    out: &mut [T],
    pack_t: PackTFn<T>,
) {
    let mut tmp = Vec::new();
    for (s, panel) in out
        .chunks_exact_mut(nr * kc)
        .take(nc.div_ceil(nr))
        .enumerate()
    {
        let cols = nr.min(nc - s * nr);
        // SAFETY: columns s*nr .. s*nr+cols are inside the block.
        let src = unsafe { b.at(0, s * nr) };
        if b.cs == 1 {
            for (p, step) in panel.chunks_exact_mut(nr).enumerate() {
                // SAFETY: row p holds `cols` contiguous elements.
                let row =
                    unsafe { std::slice::from_raw_parts(src.offset(p as isize * b.rs), cols) };
                S::widen(row, &mut step[..cols]);
                step[cols..].fill(T::default());
            }
        } else if b.rs == 1 {
            // SAFETY: columns s*nr .. s*nr+cols each hold kc contiguous elements; the panel
            // holds kc * nr.
            unsafe { pack_across(src, b.cs, cols, kc, panel, nr, pack_t, &mut tmp) };
        } else {
            for j in 0..nr {
                for p in 0..kc {
                    panel[p * nr + j] = if j < cols {
                        // SAFETY: (p, s*nr + j) is inside the block.
                        widen_one(unsafe { *src.offset(p as isize * b.rs + j as isize * b.cs) })
                    } else {
                        T::default()
                    };
                }
            }
        }
    }
}

/// `dst.copy_from_slice(src)` for the short runs of packing (a panel's worth), in blocks of eight
/// that compile to a few vector moves: a `memcpy` call per run costs more than the copy.
#[inline(always)]
fn copy_run<T: Copy>(dst: &mut [T], src: &[T]) {
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d, s) in (&mut d).zip(&mut s) {
        let s: &[T; 8] = s.try_into().unwrap();
        let d: &mut [T; 8] = d.try_into().unwrap();
        *d = *s;
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = *s;
    }
}

/// A 32-bit word of a pair panel: `lo` in its low half, `hi` in its high half.
#[inline(always)]
fn pair(lo: bf16, hi: bf16) -> u32 {
    u32::from(lo.to_bits()) | u32::from(hi.to_bits()) << 16
}

/// Packs the `rows x kc` block of `x` into `ceil(rows / width)` panels of bfloat16 pairs for a
/// [`super::kernel::PairKernelFn`]: word `q * width + i` of panel `r` holds elements
/// `(r * width + i, 2q)` and `(r * width + i, 2q + 1)`, for `q < ceil(kc / 2)`, with zeros past
/// `rows` and past `kc`. A's panels are `pack_pairs(a, mc, kc, mr, ..)`, B's are
/// `pack_pairs(b.t(), nc, kc, nr, ..)`. Three cases, as for [`pack_a`]:
/// - `rs == 1`: two columns at a time, interleaved into the words of each panel;
/// - `cs == 1`: each row already holds its pairs as consecutive words, which the transposing pack
///   moves as 32-bit elements (in place when the rows start at even offsets and `kc` is even,
///   else through rows copied to `tmp` and padded);
/// - otherwise an element-by-element gather.
///
/// # Safety
/// `x` readable for `rows x kc`; `out` holds `ceil(rows / width) * width * ceil(kc / 2)` words;
/// `pack_t` must run on this CPU and read its source with unaligned loads.
pub(super) unsafe fn pack_pairs(
    x: MatPtr<bf16>,
    rows: usize,
    kc: usize,
    width: usize,
    out: &mut [u32],
    pack_t: PackTFn<f32>,
) {
    let steps = kc.div_ceil(2);
    let panels = rows.div_ceil(width);
    let zero = bf16::ZERO;
    if x.rs == 1 {
        for q in 0..steps {
            // SAFETY: columns 2q and 2q + 1 (when inside the block) hold `rows` contiguous
            // elements.
            let col = |p: usize| unsafe { std::slice::from_raw_parts(x.at(0, p), rows) };
            let (lo, hi) = (col(2 * q), (2 * q + 1 < kc).then(|| col(2 * q + 1)));
            for (r, panel) in out.chunks_exact_mut(width * steps).take(panels).enumerate() {
                let span = r * width..(r * width + width).min(rows);
                let live = span.len();
                let step = &mut panel[q * width..(q + 1) * width];
                match hi {
                    Some(hi) => {
                        for ((w, &l), &h) in step.iter_mut().zip(&lo[span.clone()]).zip(&hi[span]) {
                            *w = pair(l, h);
                        }
                    }
                    None => {
                        for (w, &l) in step.iter_mut().zip(&lo[span]) {
                            *w = pair(l, zero);
                        }
                    }
                }
                step[live..].fill(0);
            }
        }
        return;
    }
    let mut tmp: Vec<bf16> = Vec::new();
    for (r, panel) in out.chunks_exact_mut(width * steps).take(panels).enumerate() {
        let live = width.min(rows - r * width);
        // SAFETY: rows r*width .. r*width+live are inside the block.
        let src = unsafe { x.at(r * width, 0) };
        if x.cs == 1 {
            let (src, ld) = if x.rs % 2 == 0 && kc.is_multiple_of(2) {
                (src, x.rs)
            } else {
                let ld = 2 * steps;
                tmp.clear();
                tmp.resize(live * ld, zero);
                for (i, run) in tmp.chunks_exact_mut(ld).enumerate() {
                    // SAFETY: row i of the panel holds kc contiguous elements.
                    let row =
                        unsafe { std::slice::from_raw_parts(src.offset(i as isize * x.rs), kc) };
                    run[..kc].copy_from_slice(row);
                }
                (tmp.as_ptr(), ld as isize)
            };
            // SAFETY: `live` rows of `steps` words, `ld / 2` words apart, from `src` (the
            // transposing pack reads them with unaligned loads); the panel holds steps * width.
            unsafe {
                pack_t(
                    src.cast(),
                    ld / 2,
                    live,
                    steps,
                    panel.as_mut_ptr().cast(),
                    width,
                )
            };
            continue;
        }
        for q in 0..steps {
            for i in 0..width {
                let at = |p: usize| {
                    if i < live && p < kc {
                        // SAFETY: (r*width + i, p) is inside the block.
                        unsafe { *src.offset(i as isize * x.rs + p as isize * x.cs) }
                    } else {
                        zero
                    }
                };
                panel[q * width + i] = pair(at(2 * q), at(2 * q + 1));
            }
        }
    }
}
