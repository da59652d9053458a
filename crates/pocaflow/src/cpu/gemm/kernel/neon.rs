//! AArch64 NEON microkernels, for the 32 128-bit vector registers of every ARMv8-A core.
//!
//! - f32, 8 x 12: each step of `p` loads two vectors of packed A (8 rows) and three of packed B
//!   (12 columns), then issues 24 `fmla v.4s, a.4s, b.s[lane]` (multiply-add by lane), one per
//!   pair of an A vector and a B column: 24 accumulators + 2 A + 3 B = 29 registers, 192 FLOPs
//!   per 5 loads (4.8 multiply-adds per load).
//! - f64, 8 x 6: four vectors of A (8 rows), three of B (6 columns), 24 `fmla v.2d, ..., b.d[lane]`:
//!   24 + 4 + 3 = 31 registers, 96 FLOPs per 7 loads (3.4 multiply-adds per load).
//!
//! Multiply-add by lane keeps B's columns packed in whole vectors, so no broadcast costs a
//! register or an instruction. The direct kernel of the small-problem path multiplies by
//! scalars read from B in place (`fmla` by element 0 of the loaded scalar) and copies a short
//! column of A into a zeroed buffer, NEON having no masked loads. The transposing pack
//! moves 4 x 4 (f32) or 2 x 2 (f64) blocks through registers with `trn1`/`trn2`.
//!
//! Speed on ARM has not been measured (there is no ARM machine here; the tests run under
//! emulation), so these counts are the kernel's claims, not timings.

#[cfg(target_arch = "aarch64")]
use super::Isa;
use super::Kernel;

/// The packed kernel, the direct kernel and the transposing pack of one element type. Expects,
/// in scope: `T`, `V` (its vector), `LANES`, `MR`, `NR`, `load`, `store`, `add`, `zero`,
/// `fma_lane(acc, a, b, lane)` (`acc + a * b[lane]`), `fma_n(acc, a, x)` (`acc + a * x`) and
/// `transpose` (of `LANES` vectors).
#[cfg(target_arch = "aarch64")]
macro_rules! neon_kernels {
    () => {
        /// Vectors of A per column of the tile.
        const AV: usize = MR / LANES;
        /// Vectors of packed B per step.
        const BV: usize = NR / LANES;

        /// Stores the `MR x NR` tile `acc` (column `j`, vector `v`) to the `m x n` corner of C.
        ///
        /// # Safety
        /// As for [`super::super::MicroKernelFn`].
        #[target_feature(enable = "neon")]
        #[inline]
        #[allow(clippy::too_many_arguments)]
        unsafe fn store_acc(
            acc: &[[V; AV]; NR],
            c: *mut T,
            rs_c: isize,
            cs_c: isize,
            m: usize,
            n: usize,
            accumulate: bool,
        ) {
            if rs_c == 1 && m == MR {
                for (j, col) in acc.iter().enumerate().take(n) {
                    for (v, &x) in col.iter().enumerate() {
                        // SAFETY: column j < n of C holds MR contiguous elements.
                        unsafe {
                            let p = c.offset(j as isize * cs_c).add(v * LANES);
                            store(p, if accumulate { add(x, load(p)) } else { x });
                        }
                    }
                }
            } else {
                let mut tile = [T::default(); MR * NR];
                for (j, col) in acc.iter().enumerate() {
                    for (v, &x) in col.iter().enumerate() {
                        // SAFETY: the tile holds MR elements per column.
                        unsafe { store(tile.as_mut_ptr().add(j * MR + v * LANES), x) };
                    }
                }
                // SAFETY: forwarded from the caller.
                unsafe { super::super::store_tile(&tile, MR, c, rs_c, cs_c, m, n, accumulate) }
            }
        }

        /// The packed kernel.
        ///
        /// # Safety
        /// See [`super::super::MicroKernelFn`]; the CPU must support NEON.
        #[target_feature(enable = "neon")]
        #[allow(clippy::too_many_arguments)]
        pub(super) unsafe fn packed(
            kc: usize,
            a: *const T,
            b: *const T,
            c: *mut T,
            rs_c: isize,
            cs_c: isize,
            m: usize,
            n: usize,
            accumulate: bool,
        ) {
            let mut acc = [[zero(); AV]; NR];
            for p in 0..kc {
                // SAFETY: packed panels hold MR (A) and NR (B) elements for every p < kc.
                let (av, bv) = unsafe {
                    (
                        std::array::from_fn::<V, AV, _>(|v| load(a.add(p * MR + v * LANES))),
                        std::array::from_fn::<V, BV, _>(|u| load(b.add(p * NR + u * LANES))),
                    )
                };
                for (j, col) in acc.iter_mut().enumerate() {
                    for (x, &ai) in col.iter_mut().zip(&av) {
                        *x = fma_lane(*x, ai, bv[j / LANES], j % LANES);
                    }
                }
            }
            // SAFETY: forwarded from the caller.
            unsafe { store_acc(&acc, c, rs_c, cs_c, m, n, accumulate) }
        }

        /// The direct kernel.
        ///
        /// # Safety
        /// See [`super::super::DirectFn`]; the CPU must support NEON.
        #[target_feature(enable = "neon")]
        #[allow(clippy::too_many_arguments)]
        pub(super) unsafe fn direct(
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
        ) {
            // Columns past n repeat column 0, so every read is inside B; they are never stored.
            let col =
                std::array::from_fn::<isize, NR, _>(|j| if j < n { j as isize * b_cs } else { 0 });
            let mut acc = [[zero(); AV]; NR];
            let mut short = [T::default(); MR];
            for p in 0..k as isize {
                let ap = a.wrapping_offset(p * a_cs);
                let av = if m == MR {
                    // SAFETY: column p of A holds MR = m readable rows.
                    std::array::from_fn::<V, AV, _>(|v| unsafe { load(ap.add(v * LANES)) })
                } else {
                    // SAFETY: column p of A holds m readable rows; the buffer holds MR.
                    unsafe { std::ptr::copy_nonoverlapping(ap, short.as_mut_ptr(), m) };
                    // SAFETY: the buffer holds MR elements.
                    std::array::from_fn::<V, AV, _>(|v| unsafe {
                        load(short.as_ptr().add(v * LANES))
                    })
                };
                for (j, acc_j) in acc.iter_mut().enumerate() {
                    // SAFETY: (p, col[j]) is inside B.
                    let bj = unsafe { *b.offset(p * b_rs + col[j]) };
                    for (x, &ai) in acc_j.iter_mut().zip(&av) {
                        *x = fma_n(*x, ai, bj);
                    }
                }
            }
            // SAFETY: forwarded from the caller.
            unsafe { store_acc(&acc, c, rs_c, cs_c, m, n, false) }
        }

        /// The transposing pack: `LANES x LANES` blocks through registers, then the last
        /// `kc % LANES` steps element by element. `width` is a multiple of `LANES` (every tile
        /// dimension of this module is).
        ///
        /// # Safety
        /// See [`super::super::PackTFn`]; the CPU must support NEON.
        #[target_feature(enable = "neon")]
        pub(super) unsafe fn pack_t(
            src: *const T,
            ld: isize,
            w: usize,
            kc: usize,
            out: *mut T,
            width: usize,
        ) {
            debug_assert_eq!(width % LANES, 0);
            let whole = kc / LANES * LANES;
            for i0 in (0..width).step_by(LANES) {
                let live = w.saturating_sub(i0).min(LANES);
                for p in (0..whole).step_by(LANES) {
                    let rows = std::array::from_fn::<V, LANES, _>(|i| {
                        if i < live {
                            // SAFETY: source i0 + i < w has kc readable elements, and
                            // p + LANES <= kc.
                            unsafe { load(src.offset((i0 + i) as isize * ld + p as isize)) }
                        } else {
                            zero()
                        }
                    });
                    for (s, &x) in transpose(rows).iter().enumerate() {
                        // SAFETY: output row p + s < kc holds `width` elements and
                        // i0 + LANES <= width.
                        unsafe { store(out.add((p + s) * width + i0), x) };
                    }
                }
                for p in whole..kc {
                    for i in 0..LANES {
                        // SAFETY: as above, one element at a time.
                        unsafe {
                            *out.add(p * width + i0 + i) = if i < live {
                                *src.offset((i0 + i) as isize * ld + p as isize)
                            } else {
                                T::default()
                            };
                        }
                    }
                }
            }
        }
    };
}

#[cfg(target_arch = "aarch64")]
mod f32x4 {
    use std::arch::aarch64::{
        float32x4_t as V, vaddq_f32 as add, vdupq_n_f32, vfmaq_laneq_f32, vfmaq_n_f32 as fma_n,
        vld1q_f32 as load, vreinterpretq_f32_f64, vreinterpretq_f64_f32, vst1q_f32 as store,
        vtrn1q_f32, vtrn1q_f64, vtrn2q_f32, vtrn2q_f64,
    };
    type T = f32;
    const LANES: usize = 4;
    pub(super) const MR: usize = 8;
    pub(super) const NR: usize = 12;

    #[target_feature(enable = "neon")]
    #[inline]
    fn zero() -> V {
        vdupq_n_f32(0.0)
    }

    /// `acc + a * b[lane]`.
    #[target_feature(enable = "neon")]
    #[inline]
    fn fma_lane(acc: V, a: V, b: V, lane: usize) -> V {
        match lane {
            0 => vfmaq_laneq_f32::<0>(acc, a, b),
            1 => vfmaq_laneq_f32::<1>(acc, a, b),
            2 => vfmaq_laneq_f32::<2>(acc, a, b),
            _ => vfmaq_laneq_f32::<3>(acc, a, b),
        }
    }

    /// Transposes 4 rows of 4 lanes: `out[j]` lane `i` is `r[i]` lane `j`.
    #[target_feature(enable = "neon")]
    #[inline]
    fn transpose(r: [V; 4]) -> [V; 4] {
        // Pairs of rows interleaved (lanes 0,2 and 1,3), then the 64-bit halves swapped.
        let (t0, t1) = (vtrn1q_f32(r[0], r[1]), vtrn2q_f32(r[0], r[1]));
        let (t2, t3) = (vtrn1q_f32(r[2], r[3]), vtrn2q_f32(r[2], r[3]));
        let d = |x: V| vreinterpretq_f64_f32(x);
        let f = |x| vreinterpretq_f32_f64(x);
        [
            f(vtrn1q_f64(d(t0), d(t2))),
            f(vtrn1q_f64(d(t1), d(t3))),
            f(vtrn2q_f64(d(t0), d(t2))),
            f(vtrn2q_f64(d(t1), d(t3))),
        ]
    }

    neon_kernels!();
}

#[cfg(target_arch = "aarch64")]
mod f64x2 {
    use std::arch::aarch64::{
        float64x2_t as V, vaddq_f64 as add, vdupq_n_f64, vfmaq_laneq_f64, vfmaq_n_f64 as fma_n,
        vld1q_f64 as load, vst1q_f64 as store, vtrn1q_f64, vtrn2q_f64,
    };
    type T = f64;
    const LANES: usize = 2;
    pub(super) const MR: usize = 8;
    pub(super) const NR: usize = 6;

    #[target_feature(enable = "neon")]
    #[inline]
    fn zero() -> V {
        vdupq_n_f64(0.0)
    }

    /// `acc + a * b[lane]`.
    #[target_feature(enable = "neon")]
    #[inline]
    fn fma_lane(acc: V, a: V, b: V, lane: usize) -> V {
        match lane {
            0 => vfmaq_laneq_f64::<0>(acc, a, b),
            _ => vfmaq_laneq_f64::<1>(acc, a, b),
        }
    }

    /// Transposes 2 rows of 2 lanes.
    #[target_feature(enable = "neon")]
    #[inline]
    fn transpose(r: [V; 2]) -> [V; 2] {
        [vtrn1q_f64(r[0], r[1]), vtrn2q_f64(r[0], r[1])]
    }

    neon_kernels!();
}

/// f32: 8 x 12.
#[cfg(target_arch = "aarch64")]
pub const F32: Kernel<f32> = Kernel {
    mr: f32x4::MR,
    nr: f32x4::NR,
    isa: Isa::Neon,
    func: f32x4::packed,
    direct: f32x4::direct,
    pack_t: f32x4::pack_t,
};

/// f64: 8 x 6.
#[cfg(target_arch = "aarch64")]
pub const F64: Kernel<f64> = Kernel {
    mr: f64x2::MR,
    nr: f64x2::NR,
    isa: Isa::Neon,
    func: f64x2::packed,
    direct: f64x2::direct,
    pack_t: f64x2::pack_t,
};

// Off aarch64 the kernel is never selected; the portable kernel keeps the tables total.
#[cfg(not(target_arch = "aarch64"))]
pub const F32: Kernel<f32> = super::portable::F32;
#[cfg(not(target_arch = "aarch64"))]
pub const F64: Kernel<f64> = super::portable::F64;
