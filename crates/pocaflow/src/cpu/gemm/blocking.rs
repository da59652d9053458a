//! Cache blocking: how large the packed panels are, derived from the cache sizes of the CPU we
//! run on (read once at run time, with conservative defaults where they cannot be read).
//!
//! The loop nest (BLIS order) is `jc` over `NC` columns of B, `pc` over `KC` of the inner
//! dimension, `ic` over `MC` rows of A, then `jr`/`ir` over `NR`/`MR` micro-tiles. The sizes
//! follow from where each packed block should live while it is reused:
//! - `KC` sets how often C is read and written: once per `KC` steps of k. A `KC x NR`
//!   micro-panel of B is reused by every `MR`-row micro-panel of A in the `ir` loop, and the
//!   textbook size keeps it in half of L1. Measured on a Zen 4 core (32 KiB L1d, 1 MiB L2,
//!   n = 2048, 2026-12-06), a deeper panel, `KC * NR * size = 1.5 L1`, ran 7% faster in float32
//!   and float64 than half of L1: the micro-panels then stream from L2, whose prefetcher keeps
//!   up with the kernel, and C (whose stores miss the caches) is updated three times less often;
//! - the `MC x KC` block of A is reused across the whole `jr` loop, so it should sit in L2
//!   beside the B micro-panels and the C tiles: `MC * KC * size <= 3/8 L2` (measured best of
//!   1/8 to 3/4 on the same core);
//! - the `KC x NC` block of B is reused across the `ic` loop from the shared L3. Every `ic`
//!   iteration streams it through L2, past the A block that must stay there, so it is kept to
//!   twice the L2 size: `KC * NC * size = 2 * L2`. (Measured on a 1 MiB-L2 AVX-512 core at
//!   n = 4096: NC = 1024 ran 5-10% faster than NC = 4096, whose 8 MiB block pushed A out of L2.)

use std::sync::OnceLock;

/// Per-core data cache sizes in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSizes {
    /// L1 data cache.
    pub l1d: usize,
    /// L2 cache (unified, per core).
    pub l2: usize,
}

impl CacheSizes {
    /// Sizes assumed when the CPU does not tell: 32 KiB L1d and 512 KiB L2 (true or
    /// conservative on every x86-64 and Arm core of the last decade).
    const DEFAULT: CacheSizes = CacheSizes {
        l1d: 32 << 10,
        l2: 512 << 10,
    };

    /// The sizes of the CPU this process runs on, read once.
    pub fn detect() -> CacheSizes {
        static SIZES: OnceLock<CacheSizes> = OnceLock::new();
        *SIZES.get_or_init(|| read_cache_sizes().unwrap_or(CacheSizes::DEFAULT))
    }
}

/// Reads the deterministic cache parameters (CPUID leaf 4 on Intel, 0x8000_001D on AMD).
#[cfg(target_arch = "x86_64")]
fn read_cache_sizes() -> Option<CacheSizes> {
    use std::arch::x86_64::__cpuid_count;
    let vendor_leaf = __cpuid_count(0, 0);
    let amd = vendor_leaf.ebx == 0x6874_7541; // "Auth" of "AuthenticAMD"
    let leaf = if amd { 0x8000_001D } else { 4 };
    let (mut l1d, mut l2) = (None, None);
    for sub in 0..16 {
        let r = __cpuid_count(leaf, sub);
        let kind = r.eax & 0x1f; // 0 = no more caches, 1 = data, 2 = instruction, 3 = unified
        if kind == 0 {
            break;
        }
        let level = (r.eax >> 5) & 0x7;
        let ways = ((r.ebx >> 22) & 0x3ff) as usize + 1;
        let partitions = ((r.ebx >> 12) & 0x3ff) as usize + 1;
        let line = (r.ebx & 0xfff) as usize + 1;
        let sets = r.ecx as usize + 1;
        let size = ways * partitions * line * sets;
        match (level, kind) {
            (1, 1) => l1d = Some(size),
            (2, 1) | (2, 3) => l2 = Some(size),
            _ => {}
        }
    }
    Some(CacheSizes {
        l1d: l1d.filter(|&s| s >= 8 << 10)?,
        l2: l2.filter(|&s| s >= 64 << 10)?,
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn read_cache_sizes() -> Option<CacheSizes> {
    None
}

/// Block sizes for one microkernel shape and element size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocking {
    /// Rows of A per packed block (a multiple of `mr`).
    pub mc: usize,
    /// Depth of a packed block.
    pub kc: usize,
    /// Columns of B per packed block (a multiple of `nr`); the driver evens out the blocks of
    /// a wider B so that none is a sliver.
    pub nc: usize,
    /// The deepest k whose `k x nr` column panels of B sit in half of L1 (see
    /// [`Blocking::holds_unpacked`]).
    pub l1_k: usize,
    /// The L2 size the blocks were derived from.
    pub l2: usize,
}

impl Blocking {
    /// Whether an `m x k` A and the `k x nr` column panels of B already sit where packing would
    /// put them: A in half of L2, like a packed A block (`m * k * size <= L2 / 2`: it is read
    /// once per column panel), and each B panel in half of L1 (`k <= KC`). Such a product runs
    /// unpacked. (A 1 MiB A in a 1 MiB L2 ran 10% slower unpacked than packed.)
    pub fn holds_unpacked(&self, m: usize, k: usize, size: usize) -> bool {
        k <= self.l1_k && m * k * size <= self.l2 / 2
    }

    /// Block sizes for an `mr x nr` microkernel over elements of `size` bytes.
    pub fn new(caches: CacheSizes, mr: usize, nr: usize, size: usize) -> Blocking {
        let depth = |bytes: usize| (bytes / (nr * size)).clamp(64, 1024) / 8 * 8;
        let kc = depth(3 * caches.l1d / 2);
        let mc = (3 * caches.l2 / 8 / (kc * size)).max(mr) / mr * mr;
        let nc = (2 * caches.l2 / (kc * size))
            .clamp(16 * nr, 8192)
            .div_ceil(nr)
            * nr;
        Blocking {
            mc,
            kc,
            nc,
            l1_k: depth(caches.l1d / 2),
            l2: caches.l2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_fit_their_caches() {
        let caches = CacheSizes {
            l1d: 48 << 10,
            l2: 2 << 20,
        };
        let b = Blocking::new(caches, 32, 12, 4);
        assert_eq!((b.kc, b.mc, b.l1_k), (1024, 192, 512));
        assert!(b.kc * 12 * 4 <= 3 * caches.l1d / 2);
        assert!(b.l1_k * 12 * 4 <= caches.l1d / 2);
        assert!(b.mc * b.kc * 4 <= 3 * caches.l2 / 8);
        assert!(b.kc * (b.nc - 12) * 4 <= 2 * caches.l2);
        assert_eq!(b.mc % 32, 0);
        assert_eq!(b.nc % 12, 0);
        // The machine the blocks were measured on: Zen 4, 32 KiB L1d, 1 MiB L2.
        let zen4 = CacheSizes {
            l1d: 32 << 10,
            l2: 1 << 20,
        };
        let f32s = Blocking::new(zen4, 32, 12, 4);
        assert_eq!((f32s.kc, f32s.mc, f32s.nc), (1024, 96, 516));
        let f64s = Blocking::new(zen4, 16, 12, 8);
        assert_eq!((f64s.kc, f64s.mc, f64s.nc), (512, 96, 516));
        let detected = CacheSizes::detect();
        assert!(detected.l1d >= 8 << 10 && detected.l2 >= detected.l1d);
    }
}
