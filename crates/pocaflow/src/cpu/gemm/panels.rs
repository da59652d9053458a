//! What the blocked path asks of a microkernel: its register tile, how it packs blocks of A and
//! B, and the multiply of two packed panels into C. Two schemes implement it:
//! - [`Kernel`]: one packed element per step of k, of the kernel's own type, read from operands
//!   of that type or widened from float16 and bfloat16 on the way ([`PackSource`]);
//! - [`PairKernel`]: bfloat16 kept as it is, two steps of k per packed 32-bit word, for the
//!   kernels that multiply pairs in one instruction.

use super::kernel::{Kernel, PairKernel};
use super::pack::{self, PackSource};
use super::scratch::ScratchScalar;
use super::MatPtr;
use half::bf16;

/// A microkernel with its packing, over operands of type `S` and a C of type `T`.
pub(super) trait Panels<S, T>: Copy + Send + Sync {
    /// The element of the packed panels.
    type Packed: ScratchScalar + Send + Sync;

    /// Rows and columns of the register tile.
    fn tile(&self) -> (usize, usize);

    /// Packed elements per row (of A's panels) or column (of B's) for `kc` steps of k.
    fn steps(&self, kc: usize) -> usize;

    /// Packs the `mc x kc` block of `a` into panels of `mr` rows.
    ///
    /// # Safety
    /// `a` readable for `mc x kc`; `out` holds `ceil(mc / mr) * mr * steps(kc)` elements.
    unsafe fn pack_a(&self, a: MatPtr<S>, mc: usize, kc: usize, out: &mut [Self::Packed]);

    /// Packs the `kc x nc` block of `b` into panels of `nr` columns.
    ///
    /// # Safety
    /// `b` readable for `kc x nc`; `out` holds `ceil(nc / nr) * nr * steps(kc)` elements.
    unsafe fn pack_b(&self, b: MatPtr<S>, kc: usize, nc: usize, out: &mut [Self::Packed]);

    /// The microkernel on one panel of A and one of B, `steps` packed elements deep, into the
    /// `m x n` corner of C (see [`super::kernel::MicroKernelFn`]).
    ///
    /// # Safety
    /// As for [`super::kernel::MicroKernelFn`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn multiply(
        &self,
        steps: usize,
        a: *const Self::Packed,
        b: *const Self::Packed,
        c: *mut T,
        rs_c: isize,
        cs_c: isize,
        m: usize,
        n: usize,
        accumulate: bool,
    );
}

impl<S: PackSource<T>, T: ScratchScalar + Send + Sync> Panels<S, T> for Kernel<T> {
    type Packed = T;

    fn tile(&self) -> (usize, usize) {
        (self.mr, self.nr)
    }

    fn steps(&self, kc: usize) -> usize {
        kc
    }

    unsafe fn pack_a(&self, a: MatPtr<S>, mc: usize, kc: usize, out: &mut [T]) {
        // SAFETY: forwarded; the kernel runs on this CPU (it was chosen for it).
        unsafe { pack::pack_a(a, mc, kc, self.mr, out, self.pack_t) }
    }

    unsafe fn pack_b(&self, b: MatPtr<S>, kc: usize, nc: usize, out: &mut [T]) {
        // SAFETY: as above.
        unsafe { pack::pack_b(b, kc, nc, self.nr, out, self.pack_t) }
    }

    unsafe fn multiply(
        &self,
        steps: usize,
        a: *const T,
        b: *const T,
        c: *mut T,
        rs_c: isize,
        cs_c: isize,
        m: usize,
        n: usize,
        accumulate: bool,
    ) {
        // SAFETY: forwarded.
        unsafe { (self.func)(steps, a, b, c, rs_c, cs_c, m, n, accumulate) }
    }
}

impl Panels<bf16, f32> for PairKernel {
    type Packed = u32;

    fn tile(&self) -> (usize, usize) {
        (self.mr, self.nr)
    }

    fn steps(&self, kc: usize) -> usize {
        kc.div_ceil(2)
    }

    unsafe fn pack_a(&self, a: MatPtr<bf16>, mc: usize, kc: usize, out: &mut [u32]) {
        // SAFETY: forwarded; the AVX-512 pack reads with unaligned loads and runs on this CPU.
        unsafe { pack::pack_pairs(a, mc, kc, self.mr, out, self.pack_t) }
    }

    unsafe fn pack_b(&self, b: MatPtr<bf16>, kc: usize, nc: usize, out: &mut [u32]) {
        // SAFETY: as above; B^T is nc x kc.
        unsafe { pack::pack_pairs(b.t(), nc, kc, self.nr, out, self.pack_t) }
    }

    unsafe fn multiply(
        &self,
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
        // SAFETY: forwarded.
        unsafe { (self.func)(steps, a, b, c, rs_c, cs_c, m, n, accumulate) }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{GemmConfig, HalfGemm, Isa, MatPtrMut};
    use super::*;
    use crate::cpu::gemm::epilogue::Epilogue;

    /// A `rows x cols` bfloat16 matrix laid out in a backing vector in one of several ways; the
    /// value of `(i, j)` is `val(i, j)`.
    struct Laid {
        data: Vec<bf16>,
        offset: usize,
        rs: isize,
        cs: isize,
    }

    /// Layouts: C order, F order, C order with odd row strides from an odd offset (the pair
    /// words of a row straddle two words), every other row and column, and both axes reversed.
    const LAYOUTS: [&str; 5] = ["c", "f", "c-odd", "stepped", "reversed"];

    fn lay(rows: usize, cols: usize, how: &str, val: impl Fn(usize, usize) -> bf16) -> Laid {
        let (len, offset, rs, cs) = match how {
            "c" => (rows * cols, 0, cols as isize, 1),
            "f" => (rows * cols, 0, 1, rows as isize),
            "c-odd" => {
                let ld = cols + 1 + cols % 2;
                (rows * ld + 1, 1, ld as isize, 1)
            }
            "stepped" => {
                let ld = 2 * cols + 1;
                ((2 * rows + 1) * ld, ld + 1, 2 * ld as isize, 2)
            }
            "reversed" => (
                rows * cols,
                (rows * cols).saturating_sub(1),
                -(cols as isize),
                -1,
            ),
            _ => unreachable!(),
        };
        let mut data = vec![bf16::from_f32(f32::NAN); len.max(1)];
        for i in 0..rows {
            for j in 0..cols {
                let at = offset as isize + i as isize * rs + j as isize * cs;
                data[at as usize] = val(i, j);
            }
        }
        Laid {
            data,
            offset,
            rs,
            cs,
        }
    }

    impl Laid {
        fn ptr(&self) -> MatPtr<bf16> {
            MatPtr {
                ptr: self.data[self.offset..].as_ptr(),
                rs: self.rs,
                cs: self.cs,
            }
        }
    }

    /// bfloat16 products on every kernel (the pair kernel where the CPU has AVX512-BF16, the
    /// widening float32 kernels everywhere), 1 and 2 threads, every layout of A and B, odd and
    /// even k across k blocks, against float64 sums of the same bfloat16 values; the padding of
    /// the layouts is NaN, so a read outside an operand shows.
    #[test]
    fn bfloat16_products_on_every_kernel_layout_and_thread_count() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 4001) as f32 / 2000.0 - 1.0
        };
        let shapes = [
            (1, 1, 1),
            (5, 2, 3),
            (33, 41, 13),
            (37, 1, 29),
            (70, 777, 50),
        ];
        for (m, k, n) in shapes {
            let av: Vec<f32> = (0..m * k).map(|_| rnd()).collect();
            let bv: Vec<f32> = (0..k * n).map(|_| rnd()).collect();
            let a_at = |i: usize, p: usize| bf16::from_f32(av[i * k + p]);
            let b_at = |p: usize, j: usize| bf16::from_f32(bv[p * n + j]);
            for isa in Isa::supported() {
                for threads in [1, 2] {
                    let cfg = GemmConfig { isa, threads };
                    for (la, lb) in LAYOUTS.iter().flat_map(|a| LAYOUTS.map(|b| (*a, b))) {
                        let (a, b) = (lay(m, k, la, a_at), lay(k, n, lb, b_at));
                        let mut c = vec![f32::NAN; m * n];
                        let pc = MatPtrMut {
                            ptr: c.as_mut_ptr(),
                            rs: n as isize,
                            cs: 1,
                        };
                        // SAFETY: A, B and C hold their extents with these strides.
                        unsafe {
                            bf16::gemm_f32(m, n, k, a.ptr(), b.ptr(), pc, cfg, Epilogue::NONE)
                        };
                        for i in 0..m {
                            for j in 0..n {
                                let terms = (0..k).map(|p| {
                                    f64::from(a_at(i, p).to_f32()) * f64::from(b_at(p, j).to_f32())
                                });
                                let (want, size) =
                                    terms.fold((0.0, 0.0), |(s, t), x| (s + x, t + x.abs()));
                                let got = f64::from(c[i * n + j]);
                                let tol = k as f64 * f64::from(f32::EPSILON) * size + 1e-30;
                                assert!(
                                    (got - want).abs() <= tol,
                                    "{m}x{k}x{n} {la}*{lb} {cfg:?} ({i},{j}): {got} vs {want}"
                                );
                            }
                        }
                    }
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512bf16") {
            assert!(PairKernel::for_isa(Isa::Avx512).is_some());
        }
    }
}
