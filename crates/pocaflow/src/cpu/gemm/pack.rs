//! Packing: copies a block of A or B into the panel order the microkernel streams, zero-padding
//! partial panels so that the kernel never branches on edges. This is also where operands of any
//! stride (steps, negative strides, transposes) become contiguous. Three cases per operand:
//! - the panel runs along the unit stride (columns of a column-major A, rows of a row-major B):
//!   each step of `p` is one contiguous copy;
//! - the panel runs across it (rows of a row-major A, columns of a column-major B): the
//!   kernel's transposing pack ([`super::kernel::PackTFn`], SIMD blocks on AVX-512);
//! - no unit stride at all (stepped or reversed views): an element-by-element gather.

use super::kernel::PackTFn;
use super::MatPtr;

/// Packs the `mc x kc` block of `a` into `ceil(mc / mr)` panels, each `kc` steps of `mr` rows.
///
/// # Safety
/// `a` must be readable for `mc x kc`; `out` must hold `ceil(mc / mr) * mr * kc` elements;
/// `pack_t` must run on this CPU.
pub(super) unsafe fn pack_a<T: Copy + Default>(
    a: MatPtr<T>,
    mc: usize,
    kc: usize,
    mr: usize,
    out: &mut [T],
    pack_t: PackTFn<T>,
) {
    for (r, panel) in out
        .chunks_exact_mut(mr * kc)
        .take(mc.div_ceil(mr))
        .enumerate()
    {
        let rows = mr.min(mc - r * mr);
        // SAFETY: rows r*mr .. r*mr+rows are inside the block.
        let src = unsafe { a.at(r * mr, 0) };
        if a.rs == 1 {
            for (p, step) in panel.chunks_exact_mut(mr).enumerate() {
                // SAFETY: column p holds `rows` contiguous elements.
                let col =
                    unsafe { std::slice::from_raw_parts(src.offset(p as isize * a.cs), rows) };
                step[..rows].copy_from_slice(col);
                step[rows..].fill(T::default());
            }
        } else if a.cs == 1 {
            // SAFETY: rows r*mr .. r*mr+rows each hold kc contiguous elements; the panel holds
            // kc * mr.
            unsafe { pack_t(src, a.rs, rows, kc, panel.as_mut_ptr(), mr) };
        } else {
            for i in 0..mr {
                for p in 0..kc {
                    panel[p * mr + i] = if i < rows {
                        // SAFETY: (r*mr + i, p) is inside the block.
                        unsafe { *src.offset(i as isize * a.rs + p as isize * a.cs) }
                    } else {
                        T::default()
                    };
                }
            }
        }
    }
}

/// Packs the `kc x nc` block of `b` into `ceil(nc / nr)` panels, each `kc` steps of `nr` columns.
///
/// # Safety
/// `b` must be readable for `kc x nc`; `out` must hold `ceil(nc / nr) * nr * kc` elements;
/// `pack_t` must run on this CPU.
pub(super) unsafe fn pack_b<T: Copy + Default>(
    b: MatPtr<T>,
    kc: usize,
    nc: usize,
    nr: usize,
    out: &mut [T],
    pack_t: PackTFn<T>,
) {
    for (s, panel) in out
        .chunks_exact_mut(nr * kc)
        .take(nc.div_ceil(nr))
        .enumerate()
    {
        let cols = nr.min(nc - s * nr);
        // SAFETY: columns s*nr .. s*nr+cols are inside the block.
        let src = unsafe { b.at(0, s * nr) };
        if b.cs == 1 {
            for (p, step) in panel.chunks_exact_mut(nr).enumerate() {
                // SAFETY: row p holds `cols` contiguous elements.
                let row =
                    unsafe { std::slice::from_raw_parts(src.offset(p as isize * b.rs), cols) };
                step[..cols].copy_from_slice(row);
                step[cols..].fill(T::default());
            }
        } else if b.rs == 1 {
            // SAFETY: columns s*nr .. s*nr+cols each hold kc contiguous elements; the panel
            // holds kc * nr.
            unsafe { pack_t(src, b.cs, cols, kc, panel.as_mut_ptr(), nr) };
        } else {
            for j in 0..nr {
                for p in 0..kc {
                    panel[p * nr + j] = if j < cols {
                        // SAFETY: (p, s*nr + j) is inside the block.
                        unsafe { *src.offset(p as isize * b.rs + j as isize * b.cs) }
                    } else {
                        T::default()
                    };
                }
            }
        }
    }
}
