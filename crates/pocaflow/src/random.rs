//! Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random numbers: as
//! easy as 1, 2, 3", SC 2011) and the maps from its bits to uniform, normal and integer
//! values.
//!
//! Normals of the 32-bit kinds come from Box-Muller in float32 with this module's own
//! logarithm, sine and cosine ([`normal_pair_f32`]): additions, multiplications, fused
//! multiply-adds written out (`mul_add` here, `fmaf` there: the CUDA kernels are compiled
//! without implicit fusion), one division and one square root, each rounded once, so both
//! backends give the same bits. float64 normals use each platform's float64 `ln`, `sin` and
//! `cos` and may differ in the last places. Element `i` of a fill is a function of
//! `(seed, counter, i)` alone; the CUDA kernels (`cuda/kernels/values.cu`) compute the same
//! function with the same operations, so the two backends agree bit for bit on uniform values,
//! integers and 32-bit normals, and to the last unit in the last place on float64 normals.
//!
//! Which bits an element uses: the 32-bit kinds (uniform and normal values of float16,
//! bfloat16 and float32) take one 32-bit word each, four to a Philox block: element `i` reads
//! word `i % 4` of block `counter + i / 4`. The 64-bit kinds (float64 values and all integers)
//! take two words each: element `i` reads words `2 (i % 2)` and `2 (i % 2) + 1` of block
//! `counter + i / 2`. Normals come in Box-Muller pairs from two neighbouring slots: the even
//! element of a pair is `r cos(theta)`, the odd one `r sin(theta)`.

use crate::dtype::{DType, Element};
use crate::plan::Distribution;

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// One Philox4x32-10 block: four 32-bit words for counter `block` (as words `[lo, hi, 0, 0]`)
/// under key `seed` (as `[lo, hi]`).
pub fn philox(seed: u64, block: u64) -> [u32; 4] {
    philox4x32_10(
        [block as u32, (block >> 32) as u32, 0, 0],
        [seed as u32, (seed >> 32) as u32],
    )
}

/// Philox4x32 with 10 rounds on counter `c` and key `k`.
fn philox4x32_10(mut c: [u32; 4], mut k: [u32; 2]) -> [u32; 4] {
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        let p0 = u64::from(M0) * u64::from(c[0]);
        let p1 = u64::from(M1) * u64::from(c[2]);
        c = [
            (p1 >> 32) as u32 ^ c[1] ^ k[0],
            p1 as u32,
            (p0 >> 32) as u32 ^ c[3] ^ k[1],
            p0 as u32,
        ];
    }
    c
}

/// Whether elements of `dtype` take two 32-bit words each (float64 values and all integers).
pub fn wide(dtype: DType, dist: &Distribution) -> bool {
    dtype == DType::F64 || matches!(dist, Distribution::Integers { .. })
}

/// Elements per Philox block for `dtype` and `dist`: 4 or 2.
pub fn per_block(dtype: DType, dist: &Distribution) -> usize {
    if wide(dtype, dist) {
        2
    } else {
        4
    }
}

/// Philox blocks a fill of `n` elements uses (what a generator advances its counter by).
pub fn blocks_used(dtype: DType, dist: &Distribution, n: usize) -> u64 {
    n.div_ceil(per_block(dtype, dist)) as u64
}

const TWO_PI: f64 = std::f64::consts::TAU;
const P53: f64 = 1.0 / 9_007_199_254_740_992.0; // 2^-53
const P24: f64 = 1.0 / 16_777_216.0; // 2^-24

/// A 53-bit value from two words.
fn bits53(hi: u32, lo: u32) -> u64 {
    ((u64::from(hi) << 32) | u64::from(lo)) >> 11
}

/// `ln(x)` for a positive normal float32 `x`, within about one unit in the last place: the
/// classic reduction to `m * 2^k` with `m` in `[sqrt(1/2), sqrt(2))` and a rational
/// approximation of `ln(m)` (Sun's fdlibm `logf` coefficients), the polynomial and the final
/// sum in fused multiply-adds (`mul_add`, as `fmaf` in the CUDA kernel).
#[inline(always)]
fn ln_f32(x: f32) -> f32 {
    let lg1 = f32::from_bits(0x3f2a_aaaa);
    let lg2 = f32::from_bits(0x3ecc_ce13);
    let lg3 = f32::from_bits(0x3e91_e9ee);
    let lg4 = f32::from_bits(0x3e78_9e26);
    let ln2_hi = f32::from_bits(0x3f31_7180);
    let ln2_lo = f32::from_bits(0x3717_f7d1);
    let ix = x.to_bits().wrapping_add(0x3f80_0000 - 0x3f35_04f3);
    let k = (ix >> 23) as i32 - 127;
    let m = f32::from_bits((ix & 0x007f_ffff) + 0x3f35_04f3);
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * w.mul_add(lg4, lg2);
    let r = z.mul_add(w.mul_add(lg3, lg1), t1);
    let hfsq = 0.5 * f * f;
    let dk = k as f32;
    dk.mul_add(ln2_hi, s.mul_add(hfsq + r, dk.mul_add(ln2_lo, -hfsq)) + f)
}

/// `(cos(2 pi u), sin(2 pi u))` for `u` in `[0, 1)` a multiple of `2^-24`: the quadrant from
/// `u` exactly, then Taylor polynomials on `[-pi/4, pi/4]` in fused multiply-adds (errors
/// below 2e-9).
#[inline(always)]
fn cos_sin_2pi_f32(u: f32) -> (f32, f32) {
    let q = (u * 4.0 + 0.5).floor();
    let t = u - q * 0.25; // exact: both are multiples of 2^-24, |t| <= 1/8
    let x = t * 6.283_185_5;
    let x2 = x * x;
    let ps = x2.mul_add(
        x2.mul_add(x2.mul_add(1.0 / 362_880.0, -1.0 / 5040.0), 1.0 / 120.0),
        -1.0 / 6.0,
    );
    let sin = (x * x2).mul_add(ps, x);
    let pc = x2.mul_add(
        x2.mul_add(
            x2.mul_add(x2.mul_add(-1.0 / 3_628_800.0, 1.0 / 40_320.0), -1.0 / 720.0),
            1.0 / 24.0,
        ),
        -0.5,
    );
    let cos = x2.mul_add(pc, 1.0);
    match q as i32 & 3 {
        0 => (cos, sin),
        1 => (-sin, cos),
        2 => (-cos, -sin),
        _ => (sin, -cos),
    }
}

/// A pair of standard normals from two 32-bit words (Box-Muller in float32): the radius from
/// `u1 = (w1 >> 9 + 1/2) 2^-23` in `(0, 1)`, the angle from `u2 = (w2 >> 8) 2^-24`.
#[inline(always)]
pub fn normal_pair_f32(w1: u32, w2: u32) -> (f32, f32) {
    let u1 = ((w1 >> 9) as f32 + 0.5) * (1.0 / 8_388_608.0);
    let u2 = (w2 >> 8) as f32 * (1.0 / 16_777_216.0);
    let r = (-2.0 * ln_f32(u1)).sqrt();
    let (c, s) = cos_sin_2pi_f32(u2);
    (r * c, r * s)
}

/// `mean + std * z`, or `z` itself for the standard normal (so that a `-0.0` stays as it is,
/// which `0.0 + -0.0` would not; the CUDA kernel skips the arithmetic there too).
fn affine_normal(mean: f64, std: f64, z: f64) -> f64 {
    if mean == 0.0 && std == 1.0 {
        z
    } else {
        mean + std * z
    }
}

/// `low + (high - low) * u` in `T`; a value that rounds up to `high` becomes `low`, so the
/// result stays in `[low, high)`.
fn affine<T: Element>(low: f64, high: f64, u: f64) -> T {
    let v = T::from_f64(low + (high - low) * u);
    if v.to_f64() >= high && high > low {
        T::from_f64(low)
    } else {
        v
    }
}

/// The values of consecutive Philox blocks from `first` (relative to `counter`) into `out`,
/// [`per_block`] elements each (the last block may be partial). The float32 math of the
/// normals is fused multiply-adds: on x86-64 CPUs with FMA this runs in a copy compiled for
/// them (elsewhere `mul_add` is the C library's `fmaf`, as exact and slower).
pub fn fill<T: Element>(seed: u64, counter: u64, dist: &Distribution, first: u64, out: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has FMA, the only feature the copy is compiled for.
        return unsafe { fill_fma(seed, counter, dist, first, out) };
    }
    fill_blocks(seed, counter, dist, first, out);
}

/// [`fill_blocks`] compiled with FMA instructions.
///
/// # Safety
/// The CPU must support FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn fill_fma<T: Element>(
    seed: u64,
    counter: u64,
    dist: &Distribution,
    first: u64,
    out: &mut [T],
) {
    fill_blocks(seed, counter, dist, first, out);
}

#[inline(always)]
fn fill_blocks<T: Element>(
    seed: u64,
    counter: u64,
    dist: &Distribution,
    first: u64,
    out: &mut [T],
) {
    for (b, o) in out.chunks_mut(per_block(T::DTYPE, dist)).enumerate() {
        fill_block(seed, counter, dist, first + b as u64, o);
    }
}

/// The values of Philox block `block` (relative to `spec.counter`) for elements
/// `block * per_block ..`, written to `out` (at most [`per_block`] of them).
#[inline(always)]
pub fn fill_block<T: Element>(
    seed: u64,
    counter: u64,
    dist: &Distribution,
    block: u64,
    out: &mut [T],
) {
    let x = philox(seed, counter.wrapping_add(block));
    let wide = wide(T::DTYPE, dist);
    match *dist {
        Distribution::Uniform { low, high } => {
            for (j, o) in out.iter_mut().enumerate() {
                let u = if wide {
                    bits53(x[2 * j], x[2 * j + 1]) as f64 * P53
                } else {
                    f64::from(x[j] >> 8) * P24
                };
                *o = affine(low, high, u);
            }
        }
        Distribution::Normal { mean, std } => {
            let pair = |w1: f64, w2: f64| {
                let r = (-2.0 * w1.ln()).sqrt();
                let theta = TWO_PI * w2;
                (r * theta.cos(), r * theta.sin())
            };
            if wide {
                let u1 = (bits53(x[0], x[1]) as f64 + 0.5) * P53;
                let u2 = bits53(x[2], x[3]) as f64 * P53;
                let (z0, z1) = pair(u1, u2);
                for (o, z) in out.iter_mut().zip([z0, z1]) {
                    *o = T::from_f64(affine_normal(mean, std, z));
                }
            } else {
                for (p, chunk) in out.chunks_mut(2).enumerate() {
                    let (z0, z1) = normal_pair_f32(x[2 * p], x[2 * p + 1]);
                    for (o, z) in chunk.iter_mut().zip([z0, z1]) {
                        *o = T::from_f64(affine_normal(mean, std, f64::from(z)));
                    }
                }
            }
        }
        Distribution::Integers { low, span } => {
            for (j, o) in out.iter_mut().enumerate() {
                let w = (u64::from(x[2 * j + 1]) << 32) | u64::from(x[2 * j]);
                let r = if span == 0 {
                    w
                } else {
                    ((u128::from(w) * u128::from(span)) >> 64) as u64
                };
                *o = T::from_i64(low.wrapping_add(r as i64));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_matches_the_random123_known_answers() {
        // Random123's known-answer vectors for philox4x32_10.
        assert_eq!(
            philox(0, 0),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        let ones = philox4x32_10([u32::MAX; 4], [u32::MAX; 2]);
        assert_eq!(ones, [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]);
        let pi = philox4x32_10(
            [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
            [0xa409_3822, 0x299f_31d0],
        );
        assert_eq!(pi, [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]);
    }

    #[test]
    fn float32_math_is_accurate() {
        let mut worst_ln = 0f64;
        let mut worst_trig = 0f64;
        for k in 0..200_000u32 {
            let w = k.wrapping_mul(2_654_435_761);
            let u1 = ((w >> 9) as f32 + 0.5) * (1.0 / 8_388_608.0);
            let exact = f64::from(u1).ln();
            worst_ln = worst_ln.max((f64::from(ln_f32(u1)) - exact).abs() / exact.abs().max(1e-30));
            let u2 = (w >> 8) as f32 * (1.0 / 16_777_216.0);
            let (c, s) = cos_sin_2pi_f32(u2);
            let th = std::f64::consts::TAU * f64::from(u2);
            worst_trig = worst_trig
                .max((f64::from(c) - th.cos()).abs())
                .max((f64::from(s) - th.sin()).abs());
        }
        assert!(worst_ln < 2.5e-7, "ln relative error {worst_ln:e}");
        assert!(worst_trig < 4e-7, "sin/cos error {worst_trig:e}");
    }

    #[test]
    fn values_stay_in_range() {
        let mut out = [0f32; 4];
        let mut ints = [0i8; 2];
        for b in 0..1000 {
            fill_block(
                7,
                3,
                &Distribution::Uniform {
                    low: -1.0,
                    high: 2.0,
                },
                b,
                &mut out,
            );
            assert!(out.iter().all(|&v| (-1.0..2.0).contains(&v)));
            fill_block(
                7,
                3,
                &Distribution::Integers { low: -3, span: 5 },
                b,
                &mut ints,
            );
            assert!(ints.iter().all(|&v| (-3..2).contains(&v)));
        }
    }
}
