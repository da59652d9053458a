//! The AVX512-BF16 microkernel: `vdpbf16ps` multiplies 16 pairs of bfloat16 by 16 pairs and adds
//! each pair's two products into one float32 lane, so one instruction does the work of two
//! float32 FMAs of the same width, on operands of half the bytes.
//!
//! Packed panels hold pairs along k ([`super::PairKernelFn`]): each 32-bit word of A holds
//! `a(i, 2q)` in its low half and `a(i, 2q + 1)` in its high half, each word of B `b(2q, j)` and
//! `b(2q + 1, j)`. A step of the kernel loads two vectors of A (32 rows of one pair), broadcasts
//! B's 12 pairs one by one and issues 24 `vdpbf16ps` into the 24 accumulators of a 32 x 12
//! float32 tile, the tile of the float32 AVX-512 kernel, whose store it shares: per step, 2
//! vector loads and 12 broadcasts feed 24 instructions of 64 flops each (twice the float32
//! kernel's flops per load).
//!
//! The products of two bfloat16 are exact in float32 and each step adds them in float32, so the
//! result is a float32 sum of exact products, as for the widening path; unlike it, bfloat16
//! subnormals are read as zero (the instruction flushes them, ignoring MXCSR), so inputs below
//! 1.2e-38 in magnitude count as zero.

#[cfg(target_arch = "x86_64")]
mod bf16x32 {
    use super::super::avx512::f32x16::{prefetch_c, store_acc};
    use std::arch::x86_64::{
        __m512, __m512bh, _mm512_dpbf16_ps, _mm512_loadu_si512, _mm512_set1_epi32,
        _mm512_setzero_ps,
    };

    const LANES: usize = 16;
    const MR: usize = 2 * LANES;
    const NR: usize = 12;

    /// The `steps` loop of an `MV * LANES x NC` tile and its store to the `m x n` corner of C.
    ///
    /// # Safety
    /// As for [`packed`]; `m <= MV * LANES`, `n <= NC`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const MV: usize, const NC: usize>(
        steps: usize,
        a: *const u32,
        b: *const u32,
        c: *mut f32,
        rs_c: isize,
        cs_c: isize,
        m: usize,
        n: usize,
        accumulate: bool,
    ) {
        prefetch_c::<MV>(c, rs_c, cs_c, n);
        let mut acc: [[__m512; MV]; NC] = [[_mm512_setzero_ps(); MV]; NC];
        for p in 0..steps {
            // SAFETY: the packed panels hold `steps` steps of MR words of A and NR of B; a
            // vector of 16 words is a vector of 32 bfloat16 (both are 64 plain bytes).
            unsafe {
                let ap = a.add(p * MR);
                let av: [__m512bh; MV] = std::array::from_fn(|v| {
                    std::mem::transmute(_mm512_loadu_si512(ap.add(v * LANES).cast()))
                });
                for (j, col) in acc.iter_mut().enumerate() {
                    let bj: __m512bh =
                        std::mem::transmute(_mm512_set1_epi32(*b.add(p * NR + j) as i32));
                    for (x, &a) in col.iter_mut().zip(&av) {
                        *x = _mm512_dpbf16_ps(*x, a, bj);
                    }
                }
            }
        }
        // SAFETY: forwarded from the caller.
        unsafe { store_acc(&acc, c, rs_c, cs_c, m, n, accumulate) }
    }

    /// The packed kernel, in the smallest of six shapes that covers the `m x n` corner (one or
    /// two vectors of rows by 4, 8 or 12 columns), as the float32 kernel.
    ///
    /// # Safety
    /// See [`super::super::PairKernelFn`]; the CPU must support AVX-512F and AVX512-BF16.
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[allow(clippy::too_many_arguments)]
    pub(in super::super) unsafe fn packed(
        steps: usize,
        a: *const u32,
        b: *const u32,
        c: *mut f32,
        rs_c: isize,
        cs_c: isize,
        m: usize,
        n: usize,
        accumulate: bool,
    ) {
        // SAFETY: forwarded; each shape covers the corner.
        unsafe {
            match (m > LANES, n) {
                (true, 9..) => tile::<2, 12>(steps, a, b, c, rs_c, cs_c, m, n, accumulate),
                (true, 5..=8) => tile::<2, 8>(steps, a, b, c, rs_c, cs_c, m, n, accumulate),
                (true, _) => tile::<2, 4>(steps, a, b, c, rs_c, cs_c, m, n, accumulate),
                (false, 9..) => tile::<1, 12>(steps, a, b, c, rs_c, cs_c, m, n, accumulate),
                (false, 5..=8) => tile::<1, 8>(steps, a, b, c, rs_c, cs_c, m, n, accumulate),
                (false, _) => tile::<1, 4>(steps, a, b, c, rs_c, cs_c, m, n, accumulate),
            }
        }
    }
}

/// The bfloat16 pair kernel: 32 x 12, with the float32 AVX-512 transposing pack (a pair is one
/// 32-bit word).
#[cfg(target_arch = "x86_64")]
pub const BF16: PairKernel = PairKernel {
    mr: 32,
    nr: 12,
    func: bf16x32::packed,
    pack_t: super::avx512::F32.pack_t,
};

#[cfg(target_arch = "x86_64")]
use super::PairKernel;
