//! The CPU backend's storage: a host buffer behind a lock, and the backend primitives on it.

use super::walk::{for_each2, for_each3, for_each_coord, run_offsets};
use crate::backend::{BackendStorage, CsrArgs, CsrParts, Operand, RowArgs};
use crate::dtype::{DType, Element, Scalar};
use crate::error::{Error, Result};
use crate::host::{Bits, CpuBuffer};
use crate::layout::Layout;
use crate::plan::{
    BiasMode, BinaryOp, Distribution, IndexPlan, MatmulPlan, RandomSpec, ReduceOp, ReducePlan,
    RowPlan, ScanOp, SparseDensePlan, UnaryOp,
};
use crate::{with_bits, with_dtype};
use rayon::prelude::*;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Host memory behind a lock: many readers (operands) or one writer (a destination).
#[derive(Debug)]
pub(crate) struct CpuStorage(RwLock<CpuBuffer>);

/// Elements from which copies and fills spread over threads.
const PARALLEL_ELEMENTS: usize = 1 << 20;

impl CpuStorage {
    pub(crate) fn new(buf: CpuBuffer) -> CpuStorage {
        CpuStorage(RwLock::new(buf))
    }

    /// The buffer for reading. A poisoned lock only means another thread panicked while
    /// writing; the buffer is plain numbers and stays usable.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, CpuBuffer> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The buffer for writing.
    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, CpuBuffer> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this storage's memory overlaps `other`'s (the same storage, or two storages
    /// over one foreign memory).
    pub(crate) fn overlaps(&self, other: &CpuStorage) -> bool {
        std::ptr::eq(self, other) || self.read().overlaps(&other.read())
    }

    /// The buffer itself.
    pub(crate) fn into_inner(self) -> CpuBuffer {
        self.0.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

/// `dst[dl] = cast(src[sl])`.
fn copy_cast<S: Element, D: Element>(dst: &mut [D], dl: &Layout, src: &[S], sl: &Layout) {
    if dl.is_c_contiguous() && sl.is_c_contiguous() {
        let (d, s) = (
            &mut dst[dl.offset()..dl.offset() + dl.numel()],
            &src[sl.offset()..sl.offset() + sl.numel()],
        );
        if d.len() >= PARALLEL_ELEMENTS {
            d.par_chunks_mut(1 << 16)
                .zip(s.par_chunks(1 << 16))
                .for_each(|(d, s)| d.iter_mut().zip(s).for_each(|(d, s)| *d = s.cast()));
        } else {
            d.iter_mut().zip(s).for_each(|(d, s)| *d = s.cast());
        }
        return;
    }
    for_each2(dl, sl, |di, si| dst[di] = src[si].cast());
}

/// `dst[dl] = src[sl]` for one dtype, by bits.
fn copy_bits<U: Bits>(dst: &mut [U], dl: &Layout, src: &[U], sl: &Layout) {
    if dl.is_c_contiguous() && sl.is_c_contiguous() {
        dst[dl.offset()..dl.offset() + dl.numel()]
            .copy_from_slice(&src[sl.offset()..sl.offset() + sl.numel()]);
        return;
    }
    for_each2(dl, sl, |di, si| dst[di] = src[si]);
}

/// Copies between two buffers (distinct memory).
pub(super) fn copy_buffers(dst: &mut CpuBuffer, dl: &Layout, src: &CpuBuffer, sl: &Layout) {
    if dst.dtype() == src.dtype() {
        with_bits!(dst.dtype().size_in_bytes(), U, {
            copy_bits::<U>(
                dst.as_bits_mut().expect("size matches"),
                dl,
                src.as_bits().expect("size matches"),
                sl,
            )
        });
        return;
    }
    with_dtype!(dst.dtype(), D, {
        with_dtype!(src.dtype(), S, {
            copy_cast::<S, D>(
                dst.as_mut_slice().expect("dtype matches"),
                dl,
                src.as_slice().expect("dtype matches"),
                sl,
            )
        })
    })
}

/// Index values of one index array, wrapped (negative counts from the end) and checked
/// against `extent`.
fn wrapped_indices(
    idx: &CpuBuffer,
    layout: &Layout,
    extent: usize,
    axis: usize,
) -> Result<Vec<isize>> {
    let vals = idx.as_slice::<i64>().expect("index arrays are int64");
    let n = extent as i64;
    layout
        .indices()
        .map(|i| {
            let v = vals[i];
            if v < -n || v >= n {
                Err(Error::Index(format!(
                    "index {v} is out of bounds for axis {axis} with size {extent}"
                )))
            } else {
                Ok((if v < 0 { v + n } else { v }) as isize)
            }
        })
        .collect()
}

/// Storage offsets (into the plan's base) of each (prefix, index) position of an indexed
/// view, in C order, and the relative offsets of the trailing block.
fn index_offsets(plan: &IndexPlan, indices: &[&CpuStorage]) -> Result<(Vec<isize>, Vec<isize>)> {
    let base = &plan.base;
    let (axis, k) = (plan.axis, plan.index_layouts.len());
    let mut per_index = vec![0isize; plan.index_shape.iter().product()];
    for (j, (buf, layout)) in indices.iter().zip(&plan.index_layouts).enumerate() {
        let stride = base.strides()[axis + j];
        let vals = wrapped_indices(&buf.read(), layout, base.shape()[axis + j], axis + j)?;
        per_index
            .iter_mut()
            .zip(vals)
            .for_each(|(o, v)| *o += v * stride);
    }
    let pre = Layout::new(
        &base.shape()[..axis],
        &base.strides()[..axis],
        base.offset(),
    )?;
    let outer = if pre.numel() == 1 {
        // One prefix position (indexing the leading axis): the index offsets themselves.
        let p = pre.indices().next().expect("one position") as isize;
        per_index.iter_mut().for_each(|o| *o += p);
        per_index
    } else {
        let mut outer = Vec::with_capacity(pre.numel() * per_index.len());
        for p in pre.indices() {
            outer.extend(per_index.iter().map(|&o| p as isize + o));
        }
        outer
    };
    let post = run_offsets(&base.shape()[axis + k..], &base.strides()[axis + k..]);
    Ok((outer, post))
}

/// Splits a layout of the plan's output shape into the storage offsets of its
/// (prefix, index) positions in C order and the relative offsets of its trailing block.
fn out_offsets(plan: &IndexPlan, l: &Layout) -> (Vec<isize>, Vec<isize>) {
    let lead = plan.axis + plan.index_shape.len();
    let outer = run_offsets(&l.shape()[..lead], &l.strides()[..lead])
        .into_iter()
        .map(|o| o + l.offset() as isize)
        .collect();
    (outer, run_offsets(&l.shape()[lead..], &l.strides()[lead..]))
}

/// `dst[o + p] = src[so + sp]` for the paired (outer, trailing) offsets of an indexed move:
/// the bits of one element size, the destination's and the source's offsets in C order.
fn move_blocks(
    dst: &mut CpuBuffer,
    (dst_outer, dst_post): (&[isize], &[isize]),
    src: &CpuBuffer,
    (src_outer, src_post): (&[isize], &[isize]),
) {
    with_bits!(dst.dtype().size_in_bytes(), U, {
        let (sv, dv) = (
            src.as_bits::<U>().expect("size matches"),
            dst.as_bits_mut::<U>().expect("size matches"),
        );
        for (&so, &dof) in src_outer.iter().zip(dst_outer) {
            for (&sp, &dp) in src_post.iter().zip(dst_post) {
                dv[(dof + dp) as usize] = sv[(so + sp) as usize];
            }
        }
    });
}

/// The common dense case of a gather: one C-contiguous int64 index array into a 1-D view, the
/// output C-contiguous in the index shape. The view's offset, stride and extent, or `None` for
/// any other case.
fn flat_case(plan: &IndexPlan, other: &Layout) -> Option<(isize, isize, usize)> {
    let b = &plan.base;
    let dense = |l: &Layout| l.is_c_contiguous() && l.shape() == plan.index_shape.as_slice();
    (plan.axis == 0
        && b.ndim() == 1
        && plan.index_layouts.len() == 1
        && dense(&plan.index_layouts[0])
        && dense(other))
    .then(|| (b.offset() as isize, b.strides()[0], b.shape()[0]))
}

/// A flat gather, `out[start + k] = base[idx[k]]`, in one pass over the indices.
fn flat_gather(
    base: &CpuBuffer,
    (offset, stride, extent): (isize, isize, usize),
    (out, start): (&mut CpuBuffer, usize),
    (idx, il): (&CpuBuffer, &Layout),
) -> Result<()> {
    let n = il.numel();
    let iv = &idx.as_slice::<i64>().expect("index arrays are int64")[il.offset()..il.offset() + n];
    let ext = extent as i64;
    with_bits!(base.dtype().size_in_bytes(), U, {
        let sv = base.as_bits::<U>().expect("size matches");
        let dv = &mut out.as_bits_mut::<U>().expect("size matches")[start..start + n];
        for (o, &v) in dv.iter_mut().zip(iv) {
            let w = if v < 0 { v + ext } else { v };
            if !(0..ext).contains(&w) {
                return Err(Error::Index(format!(
                    "index {v} is out of bounds for axis 0 with size {extent}"
                )));
            }
            *o = sv[(offset + w as isize * stride) as usize];
        }
    });
    Ok(())
}

impl BackendStorage for CpuStorage {
    fn dtype(&self) -> DType {
        self.read().dtype()
    }

    fn len(&self) -> usize {
        self.read().len()
    }

    fn copy_from(&self, dst: &Layout, src: &CpuStorage, src_layout: &Layout) -> Result<()> {
        if dst.numel() == 0 {
            return Ok(());
        }
        if std::ptr::eq(self, src) {
            let mut buf = self.write();
            let snapshot = buf.clone();
            copy_buffers(&mut buf, dst, &snapshot, src_layout);
        } else if self.overlaps(src) {
            // Two buffers over one foreign memory: copy from a snapshot, so that no mutable
            // and shared view of the same bytes exist at once.
            let snapshot = src.read().clone();
            copy_buffers(&mut self.write(), dst, &snapshot, src_layout);
        } else {
            copy_buffers(&mut self.write(), dst, &src.read(), src_layout);
        }
        Ok(())
    }

    fn fill(&self, dst: &Layout, value: Scalar) -> Result<()> {
        let mut buf = self.write();
        with_dtype!(buf.dtype(), T, {
            let v: T = value.to();
            let data = buf.as_mut_slice::<T>().expect("dtype matches");
            if dst.is_c_contiguous() {
                let d = &mut data[dst.offset()..dst.offset() + dst.numel()];
                if d.len() >= PARALLEL_ELEMENTS {
                    d.par_chunks_mut(1 << 16).for_each(|c| c.fill(v));
                } else {
                    d.fill(v);
                }
            } else {
                dst.indices().for_each(|i| data[i] = v);
            }
        });
        Ok(())
    }

    fn arange(&self, dst: &Layout, start: Scalar, step: Scalar) -> Result<()> {
        let mut buf = self.write();
        let dtype = buf.dtype();
        with_dtype!(dtype, T, {
            let data = buf.as_mut_slice::<T>().expect("dtype matches");
            if dtype.is_float() {
                let (a, s) = (start.as_f64(), step.as_f64());
                for (i, o) in dst.indices().enumerate() {
                    data[o] = T::from_f64(a + i as f64 * s);
                }
            } else {
                let (a, s) = (start.to::<i64>(), step.to::<i64>());
                for (i, o) in dst.indices().enumerate() {
                    data[o] = T::from_i64(a.wrapping_add((i as i64).wrapping_mul(s)));
                }
            }
        });
        Ok(())
    }

    fn tri_zero(&self, dst: &Layout, k: i64, upper: bool) -> Result<()> {
        let mut buf = self.write();
        let nd = dst.ndim();
        let (rows, cols) = (dst.shape()[nd - 2], dst.shape()[nd - 1]);
        let (rs, cs) = (dst.strides()[nd - 2], dst.strides()[nd - 1]);
        // The columns zeroed in row i: [0, i + k) for triu, [i + k + 1, cols) for tril.
        let zeroed = |i: usize| -> std::ops::Range<usize> {
            let edge = i as i64 + k + i64::from(!upper);
            let edge = edge.clamp(0, cols as i64) as usize;
            if upper {
                0..edge
            } else {
                edge..cols
            }
        };
        let batch = Layout::new(
            &dst.shape()[..nd - 2],
            &dst.strides()[..nd - 2],
            dst.offset(),
        )?;
        with_bits!(buf.dtype().size_in_bytes(), U, {
            let data = buf.as_bits_mut::<U>().expect("size matches");
            for base in batch.indices() {
                for i in 0..rows {
                    let row = base as isize + i as isize * rs;
                    for j in zeroed(i) {
                        data[(row + j as isize * cs) as usize] = U::default();
                    }
                }
            }
        });
        Ok(())
    }

    fn gather(
        &self,
        dst: &Layout,
        src: &CpuStorage,
        plan: &IndexPlan,
        indices: &[&CpuStorage],
    ) -> Result<()> {
        // The index array may be the source itself (`a[a]`): one read guard then.
        if let Some(flat) = flat_case(plan, dst).filter(|_| !std::ptr::eq(src, indices[0])) {
            let (s, idx, mut d) = (src.read(), indices[0].read(), self.write());
            let il = &plan.index_layouts[0];
            return flat_gather(&s, flat, (&mut d, dst.offset()), (&idx, il));
        }
        let (src_outer, src_post) = index_offsets(plan, indices)?;
        let (dst_outer, dst_post) = out_offsets(plan, dst);
        let s = src.read();
        let mut d = self.write();
        move_blocks(&mut d, (&dst_outer, &dst_post), &s, (&src_outer, &src_post));
        Ok(())
    }

    fn scatter(
        &self,
        plan: &IndexPlan,
        indices: &[&CpuStorage],
        values: &CpuStorage,
        values_layout: &Layout,
    ) -> Result<()> {
        let (dst_outer, dst_post) = index_offsets(plan, indices)?;
        let (src_outer, src_post) = out_offsets(plan, values_layout);
        let v = values.read();
        let mut d = self.write();
        if v.dtype() != d.dtype() {
            return Err(Error::DType(format!(
                "scatter of {} values into {}: the values must be converted first",
                v.dtype(),
                d.dtype()
            )));
        }
        move_blocks(&mut d, (&dst_outer, &dst_post), &v, (&src_outer, &src_post));
        Ok(())
    }

    fn nonzero(&self, layout: &Layout) -> Result<(CpuStorage, usize)> {
        let buf = self.read();
        let mut out: Vec<i64> = Vec::new();
        let mut count = 0;
        with_dtype!(buf.dtype(), T, {
            let data = buf.as_slice::<T>().expect("dtype matches");
            for_each_coord(layout, |o, c| {
                if data[o].is_nonzero() {
                    count += 1;
                    out.extend(c.iter().map(|&x| x as i64));
                }
            });
        });
        Ok((CpuStorage::new(CpuBuffer::from_vec(out)), count))
    }

    fn compress(
        &self,
        layout: &Layout,
        mask: &CpuStorage,
        mask_layout: &Layout,
    ) -> Result<(CpuStorage, usize)> {
        let m = mask.read();
        // The mask may be this very storage (`x[x]` for a bool array): one read guard then.
        let own;
        let s: &CpuBuffer = if std::ptr::eq(self, mask) {
            &m
        } else {
            own = self.read();
            &own
        };
        let mv = m.as_slice::<bool>().expect("masks are bool");
        let out = with_bits!(s.dtype().size_in_bytes(), U, {
            let sv = s.as_bits::<U>().expect("size matches");
            let mut picked: Vec<U> = Vec::new();
            for_each2(layout, mask_layout, |si, mi| {
                if mv[mi] {
                    picked.push(sv[si]);
                }
            });
            let n = picked.len();
            let mut buf = CpuBuffer::zeros(s.dtype(), n)?;
            buf.as_bits_mut::<U>()
                .expect("size matches")
                .copy_from_slice(&picked);
            buf
        });
        let n = out.len();
        Ok((CpuStorage::new(out), n))
    }

    fn masked_scatter(
        &self,
        dst: &Layout,
        mask: &CpuStorage,
        mask_layout: &Layout,
        values: &CpuStorage,
        values_layout: &Layout,
    ) -> Result<()> {
        let m = mask.read();
        let mv = m.as_slice::<bool>().expect("masks are bool");
        let mut count = 0usize;
        mask_layout
            .indices()
            .for_each(|i| count += usize::from(mv[i]));
        if values_layout.numel() != count {
            return Err(Error::Shape(format!(
                "cannot assign {} values to the {count} elements a boolean mask selects",
                values_layout.numel()
            )));
        }
        let v = values.read();
        let mut d = self.write();
        let vals: Vec<usize> = values_layout.indices().collect();
        with_bits!(d.dtype().size_in_bytes(), U, {
            let (sv, dv) = (
                v.as_bits::<U>().expect("size matches"),
                d.as_bits_mut::<U>().expect("size matches"),
            );
            let mut k = 0;
            for_each2(dst, mask_layout, |di, mi| {
                if mv[mi] {
                    dv[di] = sv[vals[k]];
                    k += 1;
                }
            });
        });
        Ok(())
    }

    fn masked_copy(
        &self,
        dst: &Layout,
        mask: &CpuStorage,
        mask_layout: &Layout,
        src: &CpuStorage,
        src_layout: &Layout,
    ) -> Result<()> {
        let m = mask.read();
        let s = src.read();
        let mut d = self.write();
        let mv = m.as_slice::<bool>().expect("masks are bool");
        with_bits!(d.dtype().size_in_bytes(), U, {
            let (sv, dv) = (
                s.as_bits::<U>().expect("size matches"),
                d.as_bits_mut::<U>().expect("size matches"),
            );
            for_each3(dst, mask_layout, src_layout, |di, mi, si| {
                if mv[mi] {
                    dv[di] = sv[si];
                }
            });
        });
        Ok(())
    }

    fn random(&self, dst: &Layout, spec: &RandomSpec) -> Result<()> {
        let mut buf = self.write();
        let dtype = buf.dtype();
        let per = crate::random::per_block(dtype, &spec.dist);
        let (seed, counter, dist) = (spec.seed, spec.counter, spec.dist);
        if matches!(dist, Distribution::Integers { .. }) != dtype.is_integer() {
            return Err(Error::DType(format!(
                "random: cannot draw {dist:?} as {dtype}"
            )));
        }
        with_dtype!(dtype, T, {
            let data = &mut buf.as_mut_slice::<T>().expect("dtype matches")[..dst.numel()];
            // Chunks of whole Philox blocks, so every element sees its own block.
            let chunk = per << 12;
            data.par_chunks_mut(chunk).enumerate().for_each(|(c, out)| {
                crate::random::fill(seed, counter, &dist, (c * chunk / per) as u64, out);
            });
        });
        Ok(())
    }

    fn unary(
        &self,
        dst: &Layout,
        op: UnaryOp,
        src: &CpuStorage,
        src_layout: &Layout,
    ) -> Result<()> {
        super::elementwise::unary(self, dst, op, src, src_layout)
    }

    fn binary(
        &self,
        dst: &Layout,
        op: BinaryOp,
        a: Operand<'_, CpuStorage>,
        b: Operand<'_, CpuStorage>,
    ) -> Result<()> {
        super::elementwise::binary(self, dst, op, a, b)
    }

    fn reduce(
        &self,
        dst: &Layout,
        op: ReduceOp,
        src: &CpuStorage,
        plan: &ReducePlan,
    ) -> Result<()> {
        super::reduce::reduce(self, dst, op, src, plan)
    }

    fn scan(&self, dst: &Layout, op: ScanOp, src: &CpuStorage, src_layout: &Layout) -> Result<()> {
        super::reduce::scan(self, dst, op, src, src_layout)
    }

    fn rowwise(&self, dst: &Layout, plan: &RowPlan, args: &RowArgs<'_, CpuStorage>) -> Result<()> {
        super::rowwise::rowwise(self, dst, plan, args)
    }

    fn cross_entropy(
        &self,
        dst: &Layout,
        logits: (&CpuStorage, &Layout),
        target: (&CpuStorage, &Layout),
        grad: Option<f64>,
    ) -> Result<()> {
        super::rowwise::cross_entropy(self, dst, logits, target, grad)
    }

    fn matmul(
        &self,
        plan: &MatmulPlan,
        a: &CpuStorage,
        b: &CpuStorage,
        bias: Option<(&CpuStorage, &Layout)>,
    ) -> Result<()> {
        {
            let ga = a.read();
            let gb = (!std::ptr::eq(a, b)).then(|| b.read());
            let bb = gb.as_deref().unwrap_or(&ga);
            // A bias the product adds is read, under its own lock unless it is an operand's.
            let added = bias.filter(|_| plan.epilogue.bias == BiasMode::Add);
            let gbias = added
                .filter(|(s, _)| !std::ptr::eq(*s, a) && !std::ptr::eq(*s, b))
                .map(|(s, _)| s.read());
            let bias_buf = added.map(|(s, l)| {
                let buf: &CpuBuffer = match &gbias {
                    Some(g) => g,
                    None if std::ptr::eq(s, a) => &ga,
                    None => bb,
                };
                (buf, l)
            });
            let mut gc = self.write();
            let cfg = super::gemm::GemmConfig::default();
            super::matmul(plan, &ga, bb, &mut gc, cfg, bias_buf)?;
        }
        match bias {
            // The bias gradient: the row sums of A, a pairwise reduction.
            Some((db, l)) if plan.epilogue.bias == BiasMode::RowSumsOfA => {
                let sums = ReducePlan {
                    src: plan.a.clone(),
                    kept: plan.a.ndim() - 1,
                };
                super::reduce::reduce(db, l, ReduceOp::Sum, a, &sums)
            }
            _ => Ok(()),
        }
    }

    fn csr_check(a: &CsrArgs<'_, Self>) -> Result<bool> {
        super::sparse::csr_check(a)
    }

    fn coo_to_csr(
        rows: usize,
        cols: usize,
        row: &Self,
        col: &Self,
        data: &Self,
        index: DType,
    ) -> Result<CsrParts<Self>> {
        super::sparse::coo_to_csr((rows, cols), row, col, data, index)
    }

    fn csr_canonical(a: &CsrArgs<'_, Self>) -> Result<CsrParts<Self>> {
        super::sparse::csr_canonical(a)
    }

    fn csr_transpose(a: &CsrArgs<'_, Self>) -> Result<CsrParts<Self>> {
        super::sparse::csr_transpose(a)
    }

    fn csr_to_dense(&self, dst: &Layout, a: &CsrArgs<'_, Self>) -> Result<()> {
        super::sparse::csr_to_dense(self, dst, a)
    }

    fn csr_dense(
        &self,
        dst: &Layout,
        plan: &SparseDensePlan,
        a: &CsrArgs<'_, Self>,
        x: &Self,
        x_layout: &Layout,
    ) -> Result<()> {
        super::sparse::csr_dense(self, dst, plan, a, x, x_layout)
    }

    fn spgemm(a: &CsrArgs<'_, Self>, b: &CsrArgs<'_, Self>) -> Result<CsrParts<Self>> {
        super::sparse::spgemm(a, b)
    }
}
