//! AVX2 + FMA microkernels: two 256-bit vectors of A per step times 6 broadcasts of B, a tile of
//! `2 * lanes` rows by 6 columns in 12 of the 16 ymm registers. The direct kernel reads A's
//! columns in place with masked loads; the transposing pack is the portable one.

#[cfg(target_arch = "x86_64")]
use super::Isa;
use super::Kernel;

/// The `kc` loop of one tile and its store to C, as in the AVX-512 module: `load(ptr, rows)`
/// reads the first `rows` of `LANES` lanes, `a_col` points at column `$p` of A, `b_at` is B's
/// element `($p, $j)`.
#[cfg(target_arch = "x86_64")]
macro_rules! tile {
    ($p:ident, $j:ident, kc: $kc:expr, load_rows: $load_rows:expr, a_col: $a_col:expr,
     b_at: $b_at:expr, c: $c:expr, rs_c: $rs_c:expr, cs_c: $cs_c:expr, m: $m:expr, n: $n:expr,
     accumulate: $accumulate:expr) => {{
        let rows: usize = $load_rows;
        let (rows0, rows1) = (rows.min(LANES), rows - rows.min(LANES));
        let (mask0, mask1) = (lane_mask(rows0), lane_mask(rows1));
        let mut acc = [[setzero(); 2]; NR];
        for $p in 0..$kc {
            // SAFETY: the caller guarantees `load_rows` readable rows in column p of A (the
            // masks keep the loads inside them) and B's element (p, j) for every j read.
            unsafe {
                let ap: *const T = $a_col;
                let (a0, a1) = if rows == MR {
                    (loadu(ap), loadu(ap.add(LANES)))
                } else {
                    (maskload(ap, mask0), maskload(ap.add(LANES), mask1))
                };
                for ($j, col) in acc.iter_mut().enumerate() {
                    let bj = set1($b_at);
                    col[0] = fmadd(a0, bj, col[0]);
                    col[1] = fmadd(a1, bj, col[1]);
                }
            }
        }
        let (c, rs_c, cs_c, m, n, accumulate): (*mut T, isize, isize, usize, usize, bool) =
            ($c, $rs_c, $cs_c, $m, $n, $accumulate);
        if rs_c == 1 && m == MR {
            for (j, col) in acc.iter().enumerate().take(n) {
                // SAFETY: column j < n of C holds MR contiguous elements.
                unsafe {
                    let p = c.offset(j as isize * cs_c);
                    let (mut v0, mut v1) = (col[0], col[1]);
                    if accumulate {
                        v0 = add(v0, loadu(p));
                        v1 = add(v1, loadu(p.add(LANES)));
                    }
                    storeu(p, v0);
                    storeu(p.add(LANES), v1);
                }
            }
        } else {
            let mut tile = [T::default(); MR * NR];
            for (j, col) in acc.iter().enumerate() {
                // SAFETY: tile has MR elements per column.
                unsafe {
                    storeu(tile.as_mut_ptr().add(j * MR), col[0]);
                    storeu(tile.as_mut_ptr().add(j * MR + LANES), col[1]);
                }
            }
            // SAFETY: forwarded from the caller.
            unsafe { super::super::store_tile(&tile, MR, c, rs_c, cs_c, m, n, accumulate) }
        }
    }};
}

/// The packed and the direct kernel of one element type.
#[cfg(target_arch = "x86_64")]
macro_rules! avx2_kernels {
    () => {
        const MR: usize = 2 * LANES;
        const NR: usize = 6;

        /// The packed kernel.
        ///
        /// # Safety
        /// See [`super::super::MicroKernelFn`]; the CPU must support AVX2 and FMA.
        #[target_feature(enable = "avx2,fma")]
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
            tile!(p, j, kc: kc, load_rows: MR, a_col: a.add(p * MR), b_at: *b.add(p * NR + j),
                c: c, rs_c: rs_c, cs_c: cs_c, m: m, n: n, accumulate: accumulate)
        }

        /// The direct kernel.
        ///
        /// # Safety
        /// See [`super::super::DirectFn`]; the CPU must support AVX2 and FMA.
        #[target_feature(enable = "avx2,fma")]
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
            let col = std::array::from_fn::<isize, NR, _>(|j| if j < n { j as isize * b_cs } else { 0 });
            tile!(p, j, kc: k, load_rows: m, a_col: a.offset(p as isize * a_cs),
                b_at: *b.offset(p as isize * b_rs + col[j]),
                c: c, rs_c: rs_c, cs_c: cs_c, m: m, n: n, accumulate: false)
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod f32x8 {
    use std::arch::x86_64::{
        __m256i, _mm256_add_ps as add, _mm256_cmpgt_epi32, _mm256_fmadd_ps as fmadd,
        _mm256_loadu_ps as loadu, _mm256_maskload_ps as maskload, _mm256_set1_epi32,
        _mm256_set1_ps as set1, _mm256_setr_epi32, _mm256_setzero_ps as setzero,
        _mm256_storeu_ps as storeu,
    };
    type T = f32;
    const LANES: usize = 8;

    /// Lanes `0..rows` set.
    #[target_feature(enable = "avx2")]
    fn lane_mask(rows: usize) -> __m256i {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(rows as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }

    avx2_kernels!();
}

#[cfg(target_arch = "x86_64")]
mod f64x4 {
    use std::arch::x86_64::{
        __m256i, _mm256_add_pd as add, _mm256_cmpgt_epi64, _mm256_fmadd_pd as fmadd,
        _mm256_loadu_pd as loadu, _mm256_maskload_pd as maskload, _mm256_set1_epi64x,
        _mm256_set1_pd as set1, _mm256_setr_epi64x, _mm256_setzero_pd as setzero,
        _mm256_storeu_pd as storeu,
    };
    type T = f64;
    const LANES: usize = 4;

    /// Lanes `0..rows` set.
    #[target_feature(enable = "avx2")]
    fn lane_mask(rows: usize) -> __m256i {
        _mm256_cmpgt_epi64(
            _mm256_set1_epi64x(rows as i64),
            _mm256_setr_epi64x(0, 1, 2, 3),
        )
    }

    avx2_kernels!();
}

/// f32: 16 x 6.
#[cfg(target_arch = "x86_64")]
pub const F32: Kernel<f32> = Kernel {
    mr: 16,
    nr: 6,
    isa: Isa::Avx2,
    func: f32x8::packed,
    direct: f32x8::direct,
    pack_t: super::portable::pack_t::<f32>,
};

/// f64: 8 x 6.
#[cfg(target_arch = "x86_64")]
pub const F64: Kernel<f64> = Kernel {
    mr: 8,
    nr: 6,
    isa: Isa::Avx2,
    func: f64x4::packed,
    direct: f64x4::direct,
    pack_t: super::portable::pack_t::<f64>,
};

// Off x86-64 the kernel is never selected; the portable kernel keeps the tables total.
#[cfg(not(target_arch = "x86_64"))]
pub const F32: Kernel<f32> = super::portable::F32;
#[cfg(not(target_arch = "x86_64"))]
pub const F64: Kernel<f64> = super::portable::F64;
