//! AVX-512F microkernels: two 512-bit vectors of A per step times `NR` broadcasts of B, so the
//! tile is `2 * lanes` rows by 12 columns held in 24 of the 32 zmm registers (two more hold A,
//! one the broadcast). Rows past `m` are masked on load and store, so edge tiles cost no scalar
//! loop when C is column-major.

use super::{Isa, Kernel};

#[cfg(target_arch = "x86_64")]
macro_rules! avx512_kernel {
    ($name:ident, $t:ty, $lanes:expr, $nr:expr, $mask:ty, $setzero:ident, $loadu:ident,
     $set1:ident, $fmadd:ident, $add:ident, $maskz_loadu:ident, $mask_storeu:ident,
     $storeu:ident) => {
        /// # Safety
        /// See [`super::MicroKernelFn`]; the CPU must support AVX-512F.
        #[target_feature(enable = "avx512f")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $name(
            kc: usize,
            a: *const $t,
            b: *const $t,
            c: *mut $t,
            rs_c: isize,
            cs_c: isize,
            m: usize,
            n: usize,
            accumulate: bool,
        ) {
            use std::arch::x86_64::*;
            const MR: usize = 2 * $lanes;
            const NR: usize = $nr;
            let mut acc = [[$setzero(); 2]; NR];
            for p in 0..kc {
                // SAFETY: step p of the packed panels is inside the kc * MR and kc * NR
                // elements the caller guarantees.
                unsafe {
                    let ap = a.add(p * MR);
                    let bp = b.add(p * NR);
                    let a0 = $loadu(ap);
                    let a1 = $loadu(ap.add($lanes));
                    for (j, col) in acc.iter_mut().enumerate() {
                        let bj = $set1(*bp.add(j));
                        col[0] = $fmadd(a0, bj, col[0]);
                        col[1] = $fmadd(a1, bj, col[1]);
                    }
                }
            }
            if rs_c == 1 {
                let rows0 = m.min($lanes);
                let rows1 = m - rows0;
                let mask0 = ((1u32 << rows0) - 1) as $mask;
                let mask1 = ((1u32 << rows1) - 1) as $mask;
                for (j, col) in acc.iter().enumerate().take(n) {
                    // SAFETY: column j < n of C holds m contiguous elements; masked lanes are
                    // neither read nor written.
                    unsafe {
                        let p = c.offset(j as isize * cs_c);
                        let (mut v0, mut v1) = (col[0], col[1]);
                        if accumulate {
                            v0 = $add(v0, $maskz_loadu(mask0, p));
                            v1 = $add(v1, $maskz_loadu(mask1, p.add($lanes)));
                        }
                        $mask_storeu(p, mask0, v0);
                        $mask_storeu(p.add($lanes), mask1, v1);
                    }
                }
            } else {
                let mut tile = [<$t>::default(); MR * NR];
                for (j, col) in acc.iter().enumerate() {
                    // SAFETY: tile has MR elements per column.
                    unsafe {
                        $storeu(tile.as_mut_ptr().add(j * MR), col[0]);
                        $storeu(tile.as_mut_ptr().add(j * MR + $lanes), col[1]);
                    }
                }
                // SAFETY: forwarded from the caller.
                unsafe {
                    crate::cpu::gemm::kernel::store_tile(&tile, MR, c, rs_c, cs_c, m, n, accumulate)
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod imp {
    avx512_kernel!(
        f32_32x12,
        f32,
        16,
        12,
        __mmask16,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps,
        _mm512_maskz_loadu_ps,
        _mm512_mask_storeu_ps,
        _mm512_storeu_ps
    );
    avx512_kernel!(
        f64_16x12,
        f64,
        8,
        12,
        __mmask8,
        _mm512_setzero_pd,
        _mm512_loadu_pd,
        _mm512_set1_pd,
        _mm512_fmadd_pd,
        _mm512_add_pd,
        _mm512_maskz_loadu_pd,
        _mm512_mask_storeu_pd,
        _mm512_storeu_pd
    );

    pub(super) const F32: super::super::MicroKernelFn<f32> = f32_32x12;
    pub(super) const F64: super::super::MicroKernelFn<f64> = f64_16x12;
}

#[cfg(target_arch = "x86_64")]
use imp::{F32 as F32_FN, F64 as F64_FN};

// Off x86-64 the kernel is never selected (`Isa::Avx512.is_supported()` is false); the portable
// kernel stands in so that the tables stay total.
#[cfg(not(target_arch = "x86_64"))]
const F32_FN: super::MicroKernelFn<f32> = super::portable::F32.func;
#[cfg(not(target_arch = "x86_64"))]
const F64_FN: super::MicroKernelFn<f64> = super::portable::F64.func;

/// f32: 32 x 12.
pub const F32: Kernel<f32> = Kernel {
    mr: 32,
    nr: 12,
    isa: Isa::Avx512,
    func: F32_FN,
};

/// f64: 16 x 12.
pub const F64: Kernel<f64> = Kernel {
    mr: 16,
    nr: 12,
    isa: Isa::Avx512,
    func: F64_FN,
};
