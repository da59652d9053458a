//! Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random numbers: as
//! easy as 1, 2, 3", SC 2011) and the maps from its bits to uniform, normal and integer
//! values. Element `i` of a fill is a function of `(seed, counter, i)` alone; the CUDA kernels
//! (`cuda/kernels/values.cu`) compute the same function with the same `f64` operations, so the
//! two backends agree bit for bit on uniform values and integers, and to the last unit in the
//! last place on normals (whose `ln`, `sin` and `cos` come from each platform's math library).
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
const P32: f64 = 1.0 / 4_294_967_296.0; // 2^-32
const P53: f64 = 1.0 / 9_007_199_254_740_992.0; // 2^-53
const P24: f64 = 1.0 / 16_777_216.0; // 2^-24

/// A 53-bit value from two words.
fn bits53(hi: u32, lo: u32) -> u64 {
    ((u64::from(hi) << 32) | u64::from(lo)) >> 11
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

/// The values of Philox block `block` (relative to `spec.counter`) for elements
/// `block * per_block ..`, written to `out` (at most [`per_block`] of them).
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
                    *o = T::from_f64(mean + std * z);
                }
            } else {
                for (p, chunk) in out.chunks_mut(2).enumerate() {
                    let u1 = (f64::from(x[2 * p]) + 0.5) * P32;
                    let u2 = f64::from(x[2 * p + 1]) * P32;
                    let (z0, z1) = pair(u1, u2);
                    for (o, z) in chunk.iter_mut().zip([z0, z1]) {
                        *o = T::from_f64(mean + std * z);
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
