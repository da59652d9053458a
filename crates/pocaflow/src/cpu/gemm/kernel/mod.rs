//! Register-tiled microkernels, one module per instruction set, chosen at run time.
//!
//! A microkernel multiplies a packed `MR x kc` micro-panel of A by a packed `kc x NR` micro-panel
//! of B, holding the `MR x NR` product in registers, and writes the top-left `m x n` corner of it
//! to C (overwriting, or adding to what is there when `accumulate`). Packed A stores `MR`
//! consecutive rows for each `p` in `0..kc`; packed B stores `NR` consecutive columns for each `p`.

mod avx2;
mod avx512;
mod avx512_bf16;
mod neon;
mod portable;

use std::fmt;

/// Instruction set of a microkernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// AVX-512F (512-bit vectors, 32 registers).
    Avx512,
    /// AVX2 with FMA (256-bit vectors, 16 registers).
    Avx2,
    /// AArch64 NEON (128-bit vectors, 32 registers; part of every ARMv8-A core).
    Neon,
    /// Plain Rust that compiles on every target and that the optimizer vectorizes.
    Portable,
}

impl Isa {
    /// Every instruction set with kernels, fastest first.
    const ALL: [Isa; 4] = [Isa::Avx512, Isa::Avx2, Isa::Neon, Isa::Portable];

    /// Whether the CPU we run on can execute this instruction set.
    pub fn is_supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx512 | Isa::Avx2 => false,
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[cfg(not(target_arch = "aarch64"))]
            Isa::Neon => false,
            Isa::Portable => true,
        }
    }

    /// The fastest instruction set this CPU supports.
    pub fn best() -> Isa {
        Isa::ALL
            .into_iter()
            .find(|isa| isa.is_supported())
            .unwrap_or(Isa::Portable)
    }

    /// Every instruction set this CPU supports, fastest first.
    pub fn supported() -> Vec<Isa> {
        Isa::ALL
            .into_iter()
            .filter(|isa| isa.is_supported())
            .collect()
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Neon => "neon",
            Isa::Portable => "portable",
        })
    }
}

/// Signature of a microkernel: `(kc, a, b, c, rs_c, cs_c, m, n, accumulate)`.
///
/// # Safety
/// `a` must be valid for `kc * MR` reads and `b` for `kc * NR` reads; `c` must be valid for
/// writes (and reads, when `accumulate`) at `c + i * rs_c + j * cs_c` for `i < m <= MR`,
/// `j < n <= NR`; the CPU must support the kernel's instruction set.
pub type MicroKernelFn<T> =
    unsafe fn(usize, *const T, *const T, *mut T, isize, isize, usize, usize, bool);

/// Signature of a direct kernel, the microkernel of the small-problem path that reads its
/// operands in place: `(k, a, a_cs, b, b_rs, b_cs, c, rs_c, cs_c, m, n)` computes
/// `C = A * B` for an `m x k` A with unit row stride (element `(i, p)` at `a + i + p * a_cs`),
/// a `k x n` B with any strides, and writes the `m x n` C (`m <= MR`, `n <= NR`).
///
/// # Safety
/// `a` readable at `a + i + p * a_cs` for `i < m`, `p < k`; `b` at `b + p * b_rs + j * b_cs`
/// for `p < k`, `j < n`; `c` writable at `c + i * rs_c + j * cs_c` for `i < m`, `j < n`; the CPU
/// must support the kernel's instruction set.
pub type DirectFn<T> =
    unsafe fn(usize, *const T, isize, *const T, isize, isize, *mut T, isize, isize, usize, usize);

/// Signature of a transposing pack, `(src, ld, w, kc, out, width)`: the packing of an operand
/// whose panel runs across its unit stride (rows of a row-major A, columns of a column-major
/// B). Sets `out[p * width + i] = src[i * ld + p]` for `i < w`, `p < kc`, and zeros for
/// `w <= i < width`.
///
/// # Safety
/// `src` readable at `src + i * ld + p` for `i < w`, `p < kc`; `out` writable for
/// `kc * width` elements; the CPU must support the kernel's instruction set.
pub type PackTFn<T> = unsafe fn(*const T, isize, usize, usize, *mut T, usize);

/// A microkernel, its tile shape, and the routines that share its instruction set.
#[derive(Clone, Copy)]
pub struct Kernel<T> {
    /// Rows of the register tile.
    pub mr: usize,
    /// Columns of the register tile.
    pub nr: usize,
    /// Instruction set it needs.
    pub isa: Isa,
    /// The kernel itself.
    pub func: MicroKernelFn<T>,
    /// The direct kernel of the small-problem path.
    pub direct: DirectFn<T>,
    /// The transposing pack.
    pub pack_t: PackTFn<T>,
}

impl<T> fmt::Debug for Kernel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kernel({} {}x{})", self.isa, self.mr, self.nr)
    }
}

/// Signature of a pair microkernel, `(steps, a, b, c, rs_c, cs_c, m, n, accumulate)`: as
/// [`MicroKernelFn`] for float32 C, but its packed panels hold bfloat16 in pairs along k, one
/// pair per 32-bit word (the even `p` in the low half, the odd one in the high half): `steps`
/// words of `MR` rows of A, and of `NR` columns of B.
///
/// # Safety
/// `a` must be valid for `steps * MR` reads and `b` for `steps * NR`; `c` as for
/// [`MicroKernelFn`]; the CPU must support the kernel's instructions.
pub type PairKernelFn =
    unsafe fn(usize, *const u32, *const u32, *mut f32, isize, isize, usize, usize, bool);

/// A bfloat16 microkernel that multiplies pairs along k in one instruction (AVX512-BF16's
/// `vdpbf16ps`), with float32 accumulators.
#[derive(Clone, Copy)]
pub struct PairKernel {
    /// Rows of the register tile.
    pub mr: usize,
    /// Columns of the register tile.
    pub nr: usize,
    /// The kernel itself.
    pub func: PairKernelFn,
    /// A transposing pack of 32-bit words, which moves pairs as units.
    pub pack_t: PackTFn<f32>,
}

impl fmt::Debug for PairKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PairKernel(avx512-bf16 {}x{})", self.mr, self.nr)
    }
}

impl PairKernel {
    /// The pair kernel that goes with the float32 kernel of `isa`: AVX512-BF16's when `isa` is
    /// AVX-512 and the CPU has the BF16 extension, else none (the product then runs on the
    /// float32 kernel, the operands widened while they are packed).
    pub fn for_isa(isa: Isa) -> Option<PairKernel> {
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx512
            && isa.is_supported()
            && std::arch::is_x86_feature_detected!("avx512bf16")
        {
            return Some(avx512_bf16::BF16);
        }
        let _ = isa;
        None
    }
}

/// Element types with microkernels (f32 and f64).
pub trait KernelScalar: Copy + Send + Sync + 'static {
    /// The microkernel of `isa` for this type; `None` if the CPU lacks `isa`.
    fn kernel(isa: Isa) -> Option<Kernel<Self>>;
}

impl KernelScalar for f32 {
    fn kernel(isa: Isa) -> Option<Kernel<f32>> {
        isa.is_supported().then_some(match isa {
            Isa::Avx512 => avx512::F32,
            Isa::Avx2 => avx2::F32,
            Isa::Neon => neon::F32,
            Isa::Portable => portable::F32,
        })
    }
}

impl KernelScalar for f64 {
    fn kernel(isa: Isa) -> Option<Kernel<f64>> {
        isa.is_supported().then_some(match isa {
            Isa::Avx512 => avx512::F64,
            Isa::Avx2 => avx2::F64,
            Isa::Neon => neon::F64,
            Isa::Portable => portable::F64,
        })
    }
}

/// Writes the top-left `m x n` corner of a column-major `mr x NR` tile to C.
///
/// # Safety
/// As for [`MicroKernelFn`]: `c` valid at `c + i * rs_c + j * cs_c` for `i < m`, `j < n`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn store_tile<T: Copy + std::ops::Add<Output = T>>(
    tile: &[T],
    mr: usize,
    c: *mut T,
    rs_c: isize,
    cs_c: isize,
    m: usize,
    n: usize,
    accumulate: bool,
) {
    for j in 0..n {
        for i in 0..m {
            let v = tile[j * mr + i];
            // SAFETY: (i, j) is inside the m x n corner the caller vouches for.
            unsafe {
                let dst = c.offset(i as isize * rs_c + j as isize * cs_c);
                *dst = if accumulate { *dst + v } else { v };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs every supported kernel on random panels and checks every element of every partial
    /// tile against a naive sum, for both overwrite and accumulate.
    fn check<T: KernelScalar + crate::Element + std::ops::Add<Output = T>>() {
        for isa in Isa::supported() {
            let k = T::kernel(isa).unwrap();
            let kc = 37;
            let mut seed = 0x9e37_79b9_u64;
            let mut rnd = || {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                T::from_f64((seed % 2001) as f64 / 1000.0 - 1.0)
            };
            let a: Vec<T> = (0..kc * k.mr).map(|_| rnd()).collect();
            let b: Vec<T> = (0..kc * k.nr).map(|_| rnd()).collect();
            for (m, n) in [
                (k.mr, k.nr),
                (1, 1),
                (k.mr - 1, k.nr),
                (k.mr, 1),
                (3, k.nr - 1),
            ] {
                for accumulate in [false, true] {
                    // C is column-major with a gap (ld = mr + 3), then row-major.
                    for (rs, cs) in [(1, k.mr as isize + 3), (k.nr as isize + 2, 1)] {
                        let len = (k.mr + 3) * (k.nr + 2);
                        let mut c = vec![T::from_f64(0.5); len];
                        // SAFETY: the m x n corner with these strides lies inside `c`.
                        unsafe {
                            (k.func)(
                                kc,
                                a.as_ptr(),
                                b.as_ptr(),
                                c.as_mut_ptr(),
                                rs,
                                cs,
                                m,
                                n,
                                accumulate,
                            )
                        };
                        for i in 0..k.mr {
                            for j in 0..k.nr {
                                let idx = (i as isize * rs + j as isize * cs) as usize;
                                let got = c[idx].to_f64();
                                if i >= m || j >= n {
                                    assert_eq!(
                                        got, 0.5,
                                        "{isa} wrote outside ({m}x{n}) at ({i},{j})"
                                    );
                                    continue;
                                }
                                let dot: f64 = (0..kc)
                                    .map(|p| a[p * k.mr + i].to_f64() * b[p * k.nr + j].to_f64())
                                    .sum();
                                let want = dot + if accumulate { 0.5 } else { 0.0 };
                                assert!(
                                    (got - want).abs() < 1e-4,
                                    "{isa} ({i},{j}): {got} vs {want}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_transposing_pack_matches_the_definition() {
        fn check<T: KernelScalar + crate::Element>() {
            for isa in Isa::supported() {
                let k = T::kernel(isa).unwrap();
                for width in [k.mr, k.nr] {
                    for w in [1, width / 2, width - 1, width] {
                        for kc in [1, 7, 8, 16, 17, 33] {
                            let ld = kc as isize + 3;
                            let src: Vec<T> = (0..w * ld as usize)
                                .map(|x| T::from_f64(x as f64))
                                .collect();
                            let mut out = vec![T::from_f64(-1.0); kc * width];
                            // SAFETY: w sources of kc elements at stride ld lie in `src`; `out`
                            // holds kc * width elements.
                            unsafe { (k.pack_t)(src.as_ptr(), ld, w, kc, out.as_mut_ptr(), width) };
                            for p in 0..kc {
                                for i in 0..width {
                                    let want = if i < w {
                                        (i * ld as usize + p) as f64
                                    } else {
                                        0.0
                                    };
                                    assert_eq!(
                                        out[p * width + i].to_f64(),
                                        want,
                                        "{isa} w={w} width={width} kc={kc} ({p},{i})"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
        check::<f32>();
        check::<f64>();
    }

    #[test]
    fn the_best_kernel_is_the_widest_the_cpu_has() {
        let best = Isa::best();
        assert!(best.is_supported());
        #[cfg(target_arch = "aarch64")]
        assert_eq!(best, Isa::Neon);
        #[cfg(target_arch = "x86_64")]
        assert!(best != Isa::Neon);
    }

    /// The pair kernel on random bfloat16 panels (odd and even step counts), every partial tile,
    /// overwrite and accumulate, against a float64 sum of the same bfloat16 values.
    #[test]
    fn the_pair_kernel_computes_every_partial_tile() {
        let Some(k) = PairKernel::for_isa(Isa::best()) else {
            return;
        };
        let mut seed = 0x2545_f491_u64;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            half::bf16::from_f64((seed % 2001) as f64 / 1000.0 - 1.0)
        };
        for steps in [1, 2, 19] {
            let a: Vec<half::bf16> = (0..2 * steps * k.mr).map(|_| rnd()).collect();
            let b: Vec<half::bf16> = (0..2 * steps * k.nr).map(|_| rnd()).collect();
            let words = |v: &[half::bf16]| -> Vec<u32> {
                v.chunks_exact(2)
                    .map(|p| u32::from(p[0].to_bits()) | u32::from(p[1].to_bits()) << 16)
                    .collect()
            };
            // Element (i, p) of A is half `p % 2` of word `(p / 2) * mr + i`.
            let (aw, bw) = (words(&a), words(&b));
            let a_at = |i: usize, p: usize| a[2 * ((p / 2) * k.mr + i) + p % 2].to_f64();
            let b_at = |p: usize, j: usize| b[2 * ((p / 2) * k.nr + j) + p % 2].to_f64();
            for (m, n) in [
                (k.mr, k.nr),
                (1, 1),
                (k.mr - 1, k.nr),
                (16, 5),
                (17, 9),
                (3, 4),
            ] {
                for accumulate in [false, true] {
                    for (rs, cs) in [(1, k.mr as isize + 3), (k.nr as isize + 2, 1)] {
                        let mut c = vec![0.5f32; (k.mr + 3) * (k.nr + 2)];
                        // SAFETY: the m x n corner with these strides lies inside `c`; the
                        // panels hold `steps` words of mr and nr.
                        unsafe {
                            (k.func)(
                                steps,
                                aw.as_ptr(),
                                bw.as_ptr(),
                                c.as_mut_ptr(),
                                rs,
                                cs,
                                m,
                                n,
                                accumulate,
                            )
                        };
                        for i in 0..k.mr {
                            for j in 0..k.nr {
                                let got =
                                    f64::from(c[(i as isize * rs + j as isize * cs) as usize]);
                                if i >= m || j >= n {
                                    assert_eq!(got, 0.5, "wrote outside ({m}x{n}) at ({i},{j})");
                                    continue;
                                }
                                let dot: f64 =
                                    (0..2 * steps).map(|p| a_at(i, p) * b_at(p, j)).sum();
                                let want = dot + if accumulate { 0.5 } else { 0.0 };
                                assert!(
                                    (got - want).abs() < 1e-5,
                                    "steps {steps} ({i},{j}) of {m}x{n}: {got} vs {want}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_kernel_computes_every_partial_tile() {
        check::<f32>();
        check::<f64>();
    }
}
