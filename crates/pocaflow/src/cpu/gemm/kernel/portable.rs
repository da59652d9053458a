//! The portable microkernel: plain Rust over fixed-size arrays. With constant tile sizes the
//! loops unroll and the inner `MR` loop vectorizes on any target (SSE2, NEON, ...).

use super::{store_tile, Isa, Kernel};
use std::ops::{Add, Mul};

/// f32: 16 x 4 (four 128-bit vectors per column on a baseline target).
pub const F32: Kernel<f32> = Kernel {
    mr: 16,
    nr: 4,
    isa: Isa::Portable,
    func: kernel::<f32, 16, 4>,
    direct: direct::<f32, 16, 4>,
    pack_t: pack_t::<f32>,
};

/// f64: 8 x 4.
pub const F64: Kernel<f64> = Kernel {
    mr: 8,
    nr: 4,
    isa: Isa::Portable,
    func: kernel::<f64, 8, 4>,
    direct: direct::<f64, 8, 4>,
    pack_t: pack_t::<f64>,
};

/// One rank-1 update of the register tile: `tile[j][i] += a[i] * b[j]`.
#[inline(always)]
fn step<T, const MR: usize, const NR: usize>(tile: &mut [[T; MR]; NR], a: &[T; MR], b: &[T; NR])
where
    T: Copy + Add<Output = T> + Mul<Output = T>,
{
    for (col, &bj) in tile.iter_mut().zip(b) {
        for (t, &ai) in col.iter_mut().zip(a) {
            *t = *t + ai * bj;
        }
    }
}

/// # Safety
/// See [`super::MicroKernelFn`].
#[allow(clippy::too_many_arguments)]
unsafe fn kernel<T, const MR: usize, const NR: usize>(
    kc: usize,
    a: *const T,
    b: *const T,
    c: *mut T,
    rs_c: isize,
    cs_c: isize,
    m: usize,
    n: usize,
    accumulate: bool,
) where
    T: Copy + Default + Add<Output = T> + Mul<Output = T>,
{
    // SAFETY: the caller guarantees kc * MR readable elements at `a` and kc * NR at `b`.
    let (a, b) = unsafe {
        (
            std::slice::from_raw_parts(a.cast::<[T; MR]>(), kc),
            std::slice::from_raw_parts(b.cast::<[T; NR]>(), kc),
        )
    };
    let mut tile = [[T::default(); MR]; NR];
    for (ap, bp) in a.iter().zip(b) {
        step(&mut tile, ap, bp);
    }
    // SAFETY: forwarded from the caller.
    unsafe { store_tile(tile.as_flattened(), MR, c, rs_c, cs_c, m, n, accumulate) }
}

/// # Safety
/// See [`super::DirectFn`].
#[allow(clippy::too_many_arguments)]
unsafe fn direct<T, const MR: usize, const NR: usize>(
    k: usize,
    a: *const T,
    a_cs: isize,
    b: *const T,
    b_rs: isize,
    b_cs: isize,
    c: *mut T,
    rs_c: isize,
    cs_c: isize,
    m: usize,
    n: usize,
) where
    T: Copy + Default + Add<Output = T> + Mul<Output = T>,
{
    let mut tile = [[T::default(); MR]; NR];
    let (mut ap, mut bp) = ([T::default(); MR], [T::default(); NR]);
    for p in 0..k as isize {
        for (i, x) in ap.iter_mut().enumerate().take(m) {
            // SAFETY: (i, p) is inside A.
            *x = unsafe { *a.offset(i as isize + p * a_cs) };
        }
        for (j, x) in bp.iter_mut().enumerate().take(n) {
            // SAFETY: (p, j) is inside B.
            *x = unsafe { *b.offset(p * b_rs + j as isize * b_cs) };
        }
        step(&mut tile, &ap, &bp);
    }
    // SAFETY: forwarded from the caller.
    unsafe { store_tile(tile.as_flattened(), MR, c, rs_c, cs_c, m, n, false) }
}

/// The transposing pack in plain loops, a few steps of `p` at a time so that each source is
/// read in short contiguous runs.
///
/// # Safety
/// See [`super::PackTFn`].
pub(super) unsafe fn pack_t<T: Copy + Default>(
    src: *const T,
    ld: isize,
    w: usize,
    kc: usize,
    out: *mut T,
    width: usize,
) {
    const STEPS: usize = 8;
    // SAFETY: the caller guarantees kc * width writable elements.
    let out = unsafe { std::slice::from_raw_parts_mut(out, kc * width) };
    for (rows, p0) in out.chunks_mut(STEPS * width).zip((0..kc).step_by(STEPS)) {
        for i in 0..width {
            for (q, row) in rows.chunks_exact_mut(width).enumerate() {
                row[i] = if i < w {
                    // SAFETY: source i < w has kc readable elements; p0 + q < kc.
                    unsafe { *src.offset(i as isize * ld + (p0 + q) as isize) }
                } else {
                    T::default()
                };
            }
        }
    }
}
