//! AVX2 + FMA microkernels: two 256-bit vectors of A per step times 6 broadcasts of B, a tile of
//! `2 * lanes` rows by 6 columns in 12 of the 16 ymm registers.

use super::{Isa, Kernel};

#[cfg(target_arch = "x86_64")]
macro_rules! avx2_kernel {
    ($name:ident, $t:ty, $lanes:expr, $setzero:ident, $loadu:ident, $set1:ident,
     $fmadd:ident, $add:ident, $storeu:ident) => {
        /// # Safety
        /// See [`super::MicroKernelFn`]; the CPU must support AVX2 and FMA.
        #[target_feature(enable = "avx2,fma")]
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
            const NR: usize = 6;
            let mut acc = [[$setzero(); 2]; NR];
            for p in 0..kc {
                // SAFETY: step p of the packed panels is inside what the caller guarantees.
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
            if rs_c == 1 && m == MR {
                for (j, col) in acc.iter().enumerate().take(n) {
                    // SAFETY: column j < n of C holds MR contiguous elements.
                    unsafe {
                        let p = c.offset(j as isize * cs_c);
                        let (mut v0, mut v1) = (col[0], col[1]);
                        if accumulate {
                            v0 = $add(v0, $loadu(p));
                            v1 = $add(v1, $loadu(p.add($lanes)));
                        }
                        $storeu(p, v0);
                        $storeu(p.add($lanes), v1);
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
    avx2_kernel!(
        f32_16x6,
        f32,
        8,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps,
        _mm256_storeu_ps
    );
    avx2_kernel!(
        f64_8x6,
        f64,
        4,
        _mm256_setzero_pd,
        _mm256_loadu_pd,
        _mm256_set1_pd,
        _mm256_fmadd_pd,
        _mm256_add_pd,
        _mm256_storeu_pd
    );

    pub(super) const F32: super::super::MicroKernelFn<f32> = f32_16x6;
    pub(super) const F64: super::super::MicroKernelFn<f64> = f64_8x6;
}

#[cfg(target_arch = "x86_64")]
use imp::{F32 as F32_FN, F64 as F64_FN};

// Off x86-64 the kernel is never selected; the portable kernel keeps the tables total.
#[cfg(not(target_arch = "x86_64"))]
const F32_FN: super::MicroKernelFn<f32> = super::portable::F32.func;
#[cfg(not(target_arch = "x86_64"))]
const F64_FN: super::MicroKernelFn<f64> = super::portable::F64.func;

/// f32: 16 x 6.
pub const F32: Kernel<f32> = Kernel {
    mr: 16,
    nr: 6,
    isa: Isa::Avx2,
    func: F32_FN,
};

/// f64: 8 x 6.
pub const F64: Kernel<f64> = Kernel {
    mr: 8,
    nr: 6,
    isa: Isa::Avx2,
    func: F64_FN,
};
