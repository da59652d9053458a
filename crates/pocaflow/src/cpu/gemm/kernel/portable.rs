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
};

/// f64: 8 x 4.
pub const F64: Kernel<f64> = Kernel {
    mr: 8,
    nr: 4,
    isa: Isa::Portable,
    func: kernel::<f64, 8, 4>,
};

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
            std::slice::from_raw_parts(a, kc * MR),
            std::slice::from_raw_parts(b, kc * NR),
        )
    };
    let mut tile = [[T::default(); MR]; NR];
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        for (col, &bj) in tile.iter_mut().zip(bp) {
            for (t, &ai) in col.iter_mut().zip(ap) {
                *t = *t + ai * bj;
            }
        }
    }
    // SAFETY: forwarded from the caller.
    unsafe { store_tile(tile.as_flattened(), MR, c, rs_c, cs_c, m, n, accumulate) }
}
