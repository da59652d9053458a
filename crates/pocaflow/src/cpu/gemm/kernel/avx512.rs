//! AVX-512F microkernels: two 512-bit vectors of A per step times `NR` broadcasts of B, so the
//! tile is `2 * lanes` rows by 12 columns held in 24 of the 32 zmm registers (two more hold A,
//! one the broadcast). Rows past `m` are masked on load and store, so edge tiles cost no scalar
//! loop when C is column-major.
//!
//! One generic body (`tile`) makes both the packed kernel (constant panel strides) and the
//! direct kernel of the small-problem path (A's columns and B's elements read in place), each in
//! six shapes: one or two vectors of rows by 4, 8 or 12 columns. An edge tile runs the
//! smallest shape that covers it, so a 64-column C (12 + 12 + 12 + 12 + 12 + 4) wastes no
//! multiply-adds on padding. The transposing pack moves 16 x 16 (f32) or 8 x 8 (f64) blocks
//! through registers.

#[cfg(target_arch = "x86_64")]
use super::Isa;
use super::Kernel;

/// The packed kernel, the direct kernel and the transposing pack of one element type. Expects,
/// in scope: `T`, `V` (its vector), `Mask`, `LANES` and the intrinsics under short names.
#[cfg(target_arch = "x86_64")]
macro_rules! avx512_kernels {
    () => {
        const MR: usize = 2 * LANES;
        const NR: usize = 12;

        /// Lanes `0..rows` of each of the two vectors of a column.
        #[inline(always)]
        fn masks(rows: usize) -> [Mask; 2] {
            let r0 = rows.min(LANES);
            [
                ((1u32 << r0) - 1) as Mask,
                ((1u32 << (rows - r0)) - 1) as Mask,
            ]
        }

        /// The `kc` loop of an `MV * LANES x NC` tile and its store to the `m x n` corner of C.
        /// `a_col(p)` points at column `p` of A, of which `load_rows` rows are read; `b_at(p, j)`
        /// is B's element `(p, j)`.
        ///
        /// # Safety
        /// As for the kernel that calls it; `m <= MV * LANES`, `n <= NC`.
        #[target_feature(enable = "avx512f")]
        #[inline]
        #[allow(clippy::too_many_arguments)]
        unsafe fn tile<const MV: usize, const NC: usize>(
            kc: usize,
            load_rows: usize,
            a_col: impl Fn(usize) -> *const T,
            b_at: impl Fn(usize, usize) -> *const T,
            c: *mut T,
            rs_c: isize,
            cs_c: isize,
            m: usize,
            n: usize,
            accumulate: bool,
        ) {
            prefetch_c::<MV>(c, rs_c, cs_c, n);
            let load = masks(load_rows);
            let mut acc = [[setzero(); MV]; NC];
            for p in 0..kc {
                // SAFETY: the caller guarantees `load_rows` readable rows in column p of A (the
                // masks keep the loads inside them) and B's element (p, j) for every j < NC.
                unsafe {
                    let ap = a_col(p);
                    let a: [V; MV] =
                        std::array::from_fn(|v| maskz_loadu(load[v], ap.add(v * LANES)));
                    for (j, col) in acc.iter_mut().enumerate() {
                        let bj = set1(*b_at(p, j));
                        for (x, &av) in col.iter_mut().zip(&a) {
                            *x = fmadd(av, bj, *x);
                        }
                    }
                }
            }
            // SAFETY: forwarded from the caller.
            unsafe { store_acc(&acc, c, rs_c, cs_c, m, n, accumulate) }
        }

        /// Starts the lines of the `n` columns of a tile of `MV` vectors of rows of a
        /// column-major C on their way, for the kernel's loop to hide the latency.
        #[inline(always)]
        pub(in super::super) fn prefetch_c<const MV: usize>(
            c: *mut T,
            rs_c: isize,
            cs_c: isize,
            n: usize,
        ) {
            if rs_c == 1 {
                for j in 0..n {
                    for v in 0..MV {
                        let p = c.wrapping_offset(j as isize * cs_c + (v * LANES) as isize);
                        // SAFETY: SSE is part of x86-64 and a prefetch never faults.
                        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) };
                    }
                }
            }
        }

        /// Stores the `m x n` corner of an `MV * LANES x NC` tile of accumulators to C (adding to
        /// what is there when `accumulate`): masked vector stores down C's columns when they are
        /// contiguous, else through a tile on the stack.
        ///
        /// # Safety
        /// `c` valid at `c + i * rs_c + j * cs_c` for `i < m`, `j < n` (and readable when
        /// `accumulate`); `m <= MV * LANES`, `n <= NC`.
        #[target_feature(enable = "avx512f")]
        #[inline]
        pub(in super::super) unsafe fn store_acc<const MV: usize, const NC: usize>(
            acc: &[[V; MV]; NC],
            c: *mut T,
            rs_c: isize,
            cs_c: isize,
            m: usize,
            n: usize,
            accumulate: bool,
        ) {
            if rs_c == 1 {
                let store = masks(m);
                for (j, col) in acc.iter().enumerate().take(n) {
                    for (v, &x) in col.iter().enumerate() {
                        // SAFETY: column j < n of C holds m contiguous elements; masked lanes
                        // are neither read nor written.
                        unsafe {
                            let p = c.offset(j as isize * cs_c).add(v * LANES);
                            let x = if accumulate {
                                add(x, maskz_loadu(store[v], p))
                            } else {
                                x
                            };
                            mask_storeu(p, store[v], x);
                        }
                    }
                }
            } else {
                let mut tile = [[T::default(); MR]; NR];
                for (col, acc) in tile.iter_mut().zip(acc) {
                    for (v, &x) in acc.iter().enumerate() {
                        // SAFETY: a tile column holds MR >= MV * LANES elements.
                        unsafe { storeu(col.as_mut_ptr().add(v * LANES), x) };
                    }
                }
                // SAFETY: forwarded from the caller.
                unsafe {
                    super::super::store_tile(
                        tile.as_flattened(),
                        MR,
                        c,
                        rs_c,
                        cs_c,
                        m,
                        n,
                        accumulate,
                    )
                }
            }
        }

        /// Runs `tile` in the smallest shape that covers the `m x n` corner.
        ///
        /// # Safety
        /// As for [`tile`].
        #[target_feature(enable = "avx512f")]
        #[inline]
        #[allow(clippy::too_many_arguments)]
        unsafe fn by_shape(
            kc: usize,
            load_rows: usize,
            a_col: impl Fn(usize) -> *const T,
            b_at: impl Fn(usize, usize) -> *const T,
            c: *mut T,
            rs_c: isize,
            cs_c: isize,
            m: usize,
            n: usize,
            accumulate: bool,
        ) {
            let args = (kc, load_rows);
            // SAFETY: forwarded; each shape covers the corner.
            unsafe {
                match (m > LANES, n) {
                    (true, 9..) => {
                        tile::<2, 12>(args.0, args.1, a_col, b_at, c, rs_c, cs_c, m, n, accumulate)
                    }
                    (true, 5..=8) => {
                        tile::<2, 8>(args.0, args.1, a_col, b_at, c, rs_c, cs_c, m, n, accumulate)
                    }
                    (true, _) => {
                        tile::<2, 4>(args.0, args.1, a_col, b_at, c, rs_c, cs_c, m, n, accumulate)
                    }
                    (false, 9..) => {
                        tile::<1, 12>(args.0, args.1, a_col, b_at, c, rs_c, cs_c, m, n, accumulate)
                    }
                    (false, 5..=8) => {
                        tile::<1, 8>(args.0, args.1, a_col, b_at, c, rs_c, cs_c, m, n, accumulate)
                    }
                    (false, _) => {
                        tile::<1, 4>(args.0, args.1, a_col, b_at, c, rs_c, cs_c, m, n, accumulate)
                    }
                }
            }
        }

        /// The packed kernel.
        ///
        /// # Safety
        /// See [`super::super::MicroKernelFn`]; the CPU must support AVX-512F.
        #[target_feature(enable = "avx512f")]
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
            // Packed panels are zero-padded: every step loads whole vectors.
            let a_col = |p: usize| a.wrapping_add(p * MR);
            let b_at = |p: usize, j: usize| b.wrapping_add(p * NR + j);
            // SAFETY: forwarded from the caller.
            unsafe { by_shape(kc, MR, a_col, b_at, c, rs_c, cs_c, m, n, accumulate) }
        }

        /// The direct kernel.
        ///
        /// # Safety
        /// See [`super::super::DirectFn`]; the CPU must support AVX-512F.
        #[target_feature(enable = "avx512f")]
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
            let a_col = |p: usize| a.wrapping_offset(p as isize * a_cs);
            let b_at = |p: usize, j: usize| b.wrapping_offset(p as isize * b_rs + col[j]);
            // SAFETY: forwarded from the caller.
            unsafe { by_shape(k, m, a_col, b_at, c, rs_c, cs_c, m, n, false) }
        }

        /// The transposing pack.
        ///
        /// # Safety
        /// See [`super::super::PackTFn`]; the CPU must support AVX-512F.
        #[target_feature(enable = "avx512f")]
        pub(super) unsafe fn pack_t(
            src: *const T,
            ld: isize,
            w: usize,
            kc: usize,
            out: *mut T,
            width: usize,
        ) {
            let mask = |n: usize| ((1u32 << n) - 1) as Mask;
            for i0 in (0..width).step_by(LANES) {
                let store = mask(LANES.min(width - i0));
                let live = w.saturating_sub(i0).min(LANES);
                for p in (0..kc).step_by(LANES) {
                    let steps = LANES.min(kc - p);
                    let load = mask(steps);
                    let mut rows = [setzero(); LANES];
                    for (i, r) in rows.iter_mut().enumerate().take(live) {
                        let at = (i0 + i) as isize * ld + p as isize;
                        // SAFETY: source i0 + i < w has kc readable elements from src; the
                        // mask keeps the load inside them.
                        *r = unsafe { maskz_loadu(load, src.offset(at)) };
                        // The next panel's sources follow these (`width` further on) and are
                        // read in short runs the hardware prefetcher misses: fetch them now.
                        // A prefetch never faults, so past the matrix it is harmless.
                        _mm_prefetch::<_MM_HINT_T1>(
                            src.wrapping_offset(at + width as isize * ld).cast::<i8>(),
                        );
                    }
                    for (s, col) in transpose(rows).iter().enumerate().take(steps) {
                        // SAFETY: output row p + s < kc holds `width` elements; the mask
                        // stores lanes i0 .. min(i0 + LANES, width).
                        unsafe { mask_storeu(out.add((p + s) * width + i0), store, *col) };
                    }
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
pub(super) mod f32x16 {
    use std::arch::x86_64::{
        __m512 as V, __mmask16 as Mask, _mm512_add_ps as add, _mm512_castpd_ps as from_pd,
        _mm512_castps_pd as to_pd, _mm512_fmadd_ps as fmadd, _mm512_mask_storeu_ps as mask_storeu,
        _mm512_maskz_loadu_ps as maskz_loadu, _mm512_set1_ps as set1, _mm512_setzero_ps as setzero,
        _mm512_shuffle_f32x4 as shuffle_lanes, _mm512_storeu_ps as storeu,
        _mm512_unpackhi_pd as unpackhi_pd, _mm512_unpackhi_ps as unpackhi,
        _mm512_unpacklo_pd as unpacklo_pd, _mm512_unpacklo_ps as unpacklo, _mm_prefetch,
        _MM_HINT_T0, _MM_HINT_T1,
    };
    type T = f32;
    const LANES: usize = 16;

    avx512_kernels!();

    /// Transposes 16 rows of 16 lanes: `out[j]` lane `i` is `rows[i]` lane `j`.
    #[target_feature(enable = "avx512f")]
    fn transpose(r: [V; 16]) -> [V; 16] {
        // Within each 128-bit lane: pairs of rows interleaved, then quads.
        let t: [V; 16] = std::array::from_fn(|i| {
            let (x, y) = (r[i & !1], r[i | 1]);
            if i % 2 == 0 {
                unpacklo(x, y)
            } else {
                unpackhi(x, y)
            }
        });
        // u[4g + q], 128-bit lane l: column 4l + q of rows 4g .. 4g + 4.
        let u: [V; 16] = std::array::from_fn(|i| {
            let (g, q) = (i / 4, i % 4);
            let (x, y) = (to_pd(t[4 * g + q / 2]), to_pd(t[4 * g + q / 2 + 2]));
            from_pd(if q % 2 == 0 {
                unpacklo_pd(x, y)
            } else {
                unpackhi_pd(x, y)
            })
        });
        // Then 128-bit lanes across registers, in two rounds.
        let mut out = [setzero(); 16];
        for q in 0..4 {
            let v0 = shuffle_lanes::<0x88>(u[q], u[4 + q]);
            let v1 = shuffle_lanes::<0xDD>(u[q], u[4 + q]);
            let w0 = shuffle_lanes::<0x88>(u[8 + q], u[12 + q]);
            let w1 = shuffle_lanes::<0xDD>(u[8 + q], u[12 + q]);
            out[q] = shuffle_lanes::<0x88>(v0, w0);
            out[8 + q] = shuffle_lanes::<0xDD>(v0, w0);
            out[4 + q] = shuffle_lanes::<0x88>(v1, w1);
            out[12 + q] = shuffle_lanes::<0xDD>(v1, w1);
        }
        out
    }
}

#[cfg(target_arch = "x86_64")]
mod f64x8 {
    use std::arch::x86_64::{
        __m512d as V, __mmask8 as Mask, _mm512_add_pd as add, _mm512_fmadd_pd as fmadd,
        _mm512_mask_storeu_pd as mask_storeu, _mm512_maskz_loadu_pd as maskz_loadu,
        _mm512_set1_pd as set1, _mm512_setzero_pd as setzero,
        _mm512_shuffle_f64x2 as shuffle_lanes, _mm512_storeu_pd as storeu,
        _mm512_unpackhi_pd as unpackhi, _mm512_unpacklo_pd as unpacklo, _mm_prefetch, _MM_HINT_T0,
        _MM_HINT_T1,
    };
    type T = f64;
    const LANES: usize = 8;

    avx512_kernels!();

    /// Transposes 8 rows of 8 lanes: `out[j]` lane `i` is `rows[i]` lane `j`.
    #[target_feature(enable = "avx512f")]
    fn transpose(r: [V; 8]) -> [V; 8] {
        // t[2i + q], 128-bit lane l: column 2l + q of rows 2i, 2i + 1.
        let t: [V; 8] = std::array::from_fn(|i| {
            let (x, y) = (r[i & !1], r[i | 1]);
            if i % 2 == 0 {
                unpacklo(x, y)
            } else {
                unpackhi(x, y)
            }
        });
        let mut out = [setzero(); 8];
        for q in 0..2 {
            let v0 = shuffle_lanes::<0x88>(t[q], t[2 + q]);
            let v1 = shuffle_lanes::<0xDD>(t[q], t[2 + q]);
            let w0 = shuffle_lanes::<0x88>(t[4 + q], t[6 + q]);
            let w1 = shuffle_lanes::<0xDD>(t[4 + q], t[6 + q]);
            out[q] = shuffle_lanes::<0x88>(v0, w0);
            out[4 + q] = shuffle_lanes::<0xDD>(v0, w0);
            out[2 + q] = shuffle_lanes::<0x88>(v1, w1);
            out[6 + q] = shuffle_lanes::<0xDD>(v1, w1);
        }
        out
    }
}

/// f32: 32 x 12.
#[cfg(target_arch = "x86_64")]
pub const F32: Kernel<f32> = Kernel {
    mr: 32,
    nr: 12,
    isa: Isa::Avx512,
    func: f32x16::packed,
    direct: f32x16::direct,
    pack_t: f32x16::pack_t,
};

/// f64: 16 x 12.
#[cfg(target_arch = "x86_64")]
pub const F64: Kernel<f64> = Kernel {
    mr: 16,
    nr: 12,
    isa: Isa::Avx512,
    func: f64x8::packed,
    direct: f64x8::direct,
    pack_t: f64x8::pack_t,
};

// Off x86-64 the kernel is never selected (`Isa::Avx512.is_supported()` is false); the portable
// kernel stands in so that the tables stay total.
#[cfg(not(target_arch = "x86_64"))]
pub const F32: Kernel<f32> = super::portable::F32;
#[cfg(not(target_arch = "x86_64"))]
pub const F64: Kernel<f64> = super::portable::F64;
