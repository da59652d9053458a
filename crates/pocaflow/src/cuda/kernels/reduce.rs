//! The `reduce` modules (`math.cuh` + `reduce.cu`), one per (reduce op, operand dtype),
//! compiled with `--fmad=false` on first use (the Sum and Prod modules also hold the scans),
//! and their launches.

use super::elementwise::MATH;
use super::{
    c_type, function, launch, load_module, Function, Kernels, View, COMMON, CONVERT, MAX_GRID_X,
    MAX_GRID_YZ, THREADS,
};
use crate::cuda::stream::StreamInner;
use crate::dtype::DType;
use crate::error::Result;
use crate::plan::ReduceOp;
use std::ffi::c_void;

const REDUCE: &str = include_str!("reduce.cu");

/// Bytes reserved per partial accumulator (the largest: argmax's value and index).
pub(crate) const PARTIAL_BYTES: usize = 16;

/// The kernels of one reduction and operand dtype.
#[derive(Debug)]
pub(crate) struct ReduceModule {
    inner_warp: Function,
    inner_block: Function,
    outer_vec: Function,
    outer_one: Function,
    general: Function,
    finish_rows: Function,
    finish_cols: Function,
    /// Sum and Prod only.
    scan: Option<Function>,
}

/// The sizes of one reduction launch: `k` outputs of `l` reduced elements each, split into
/// `splits` chunks of `chunk` (one chunk: results straight into the destination; more:
/// partial accumulators, then a finish pass).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReduceShape {
    /// Outputs.
    pub k: usize,
    /// Reduced elements per output.
    pub l: usize,
    /// Reduced elements per chunk.
    pub chunk: usize,
    /// Chunks per output (at most 65,535).
    pub splits: usize,
}

/// The three pointers of a reduction pass: operand, destination, partials (0 if none).
pub(crate) type ReducePtrs = (u64, u64, u64);

impl Kernels {
    /// The `reduce` module of `op` over operands of `dtype` (compiled on first use).
    pub(crate) fn reduce_module(&self, op: ReduceOp, dtype: DType) -> Result<&ReduceModule> {
        self.reduce[op.index() * DType::ALL.len() + dtype as usize]
            .get_or_init(|| {
                let name = format!("reduce_{}_{}", op.name(), dtype.short_name());
                let defines = [
                    "--fmad=false".to_string(),
                    format!("-DROP=R_{}", op.name().to_ascii_uppercase()),
                    format!("-DELEM={}", c_type(dtype)),
                ];
                let m = load_module(
                    &name,
                    &format!("{COMMON}{CONVERT}{MATH}{REDUCE}"),
                    &self.options(&defines),
                )?;
                let scan = matches!(op, ReduceOp::Sum | ReduceOp::Prod);
                Ok(ReduceModule {
                    inner_warp: function(m, "inner_warp")?,
                    inner_block: function(m, "inner_block")?,
                    outer_vec: function(m, "outer_vec")?,
                    outer_one: function(m, "outer_one")?,
                    general: function(m, "general")?,
                    finish_rows: function(m, "finish_rows")?,
                    finish_cols: function(m, "finish_cols")?,
                    scan: if scan {
                        Some(function(m, "scan")?)
                    } else {
                        None
                    },
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Enqueues the reduction of contiguous rows: output `r` reduces the `s.l` elements from
    /// `kv`'s offset of `r`; a warp per row (`warp`, 8 rows per block, one chunk) or a block
    /// per row and chunk.
    pub(crate) fn reduce_inner(
        &self,
        stream: &StreamInner,
        m: &ReduceModule,
        warp: bool,
        (src, dst, part): ReducePtrs,
        s: ReduceShape,
        kv: View<1>,
    ) -> Result<()> {
        let (f, grid) = if warp {
            (m.inner_warp, (s.k.div_ceil(8), 1))
        } else {
            (m.inner_block, (s.k, s.splits))
        };
        let (mut src, mut dst, mut part, mut kv) = (src, dst, part, kv);
        let (mut k, mut l, mut chunk) = (s.k as i64, s.l as i64, s.chunk as i64);
        let mut p = params!(src, dst, part, k, l, chunk, kv);
        // SAFETY: every row addressed (kv's offsets plus `l` contiguous elements) lies inside
        // the operand's buffer; `dst` holds `k` results and `part` (with several chunks)
        // `k * splits` partials of PARTIAL_BYTES; the grid fits (k <= MAX_GRID_X, splits <=
        // MAX_GRID_YZ, checked by the caller); the parameters match `inner_warp` / `inner_block`.
        unsafe {
            launch(
                f,
                (grid.0 as u32, grid.1 as u32, 1),
                (THREADS, 1, 1),
                stream,
                &mut p,
                "reduce_inner",
            )
        }
    }

    /// Enqueues the reduction over an outer dimension of stride `rs` (elements) of `s.k`
    /// contiguous outputs: `vec` reads 16-byte packs (k a multiple of the pack, every row
    /// start 16-byte aligned).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn reduce_outer(
        &self,
        stream: &StreamInner,
        m: &ReduceModule,
        (vec, esize): (bool, usize),
        (src, dst, part): ReducePtrs,
        s: ReduceShape,
        rs: i64,
    ) -> Result<()> {
        let per = if vec { 16 / esize } else { 1 };
        let f = if vec { m.outer_vec } else { m.outer_one };
        let grid = (Self::outer_columns(s.k, per) as u32, s.splits as u32, 1);
        let (mut src, mut dst, mut part, mut rs) = (src, dst, part, rs);
        let (mut k, mut l, mut chunk) = (s.k as i64, s.l as i64, s.chunk as i64);
        let mut p = params!(src, dst, part, k, l, chunk, rs);
        // SAFETY: columns 0..k at every reduced position r * rs (r < l) lie inside the
        // operand's buffer, 16-byte aligned for `vec`; `dst` holds `k` results and `part`
        // (with several chunks) `k * splits` partials; the parameters match `outer_vec` /
        // `outer_one`.
        unsafe { launch(f, grid, (32, 8, 1), stream, &mut p, "reduce_outer") }
    }

    /// Blocks along the columns of an outer reduction of `k` outputs, `per` per thread.
    pub(crate) fn outer_columns(k: usize, per: usize) -> usize {
        k.div_ceil(per * 32).min(MAX_GRID_X)
    }

    /// Enqueues the reduction of any views: output `r` at `kv`'s offset of `r`, reduced
    /// element `j` at `rv`'s offset of `j`; a block of `threads` (32 or 256) per output and
    /// chunk.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn reduce_general(
        &self,
        stream: &StreamInner,
        m: &ReduceModule,
        threads: u32,
        (src, dst, part): ReducePtrs,
        s: ReduceShape,
        (kv, rv): (View<1>, View<1>),
    ) -> Result<()> {
        let (mut src, mut dst, mut part, mut kv, mut rv) = (src, dst, part, kv, rv);
        let (mut k, mut l, mut chunk) = (s.k as i64, s.l as i64, s.chunk as i64);
        let mut p = params!(src, dst, part, k, l, chunk, kv, rv);
        // SAFETY: every element addressed by the two views lies inside the operand's buffer;
        // `dst` and `part` as in `reduce_inner`; the parameters match `general`.
        unsafe {
            launch(
                m.general,
                (s.k as u32, s.splits as u32, 1),
                (threads, 1, 1),
                stream,
                &mut p,
                "reduce_general",
            )
        }
    }

    /// Enqueues the finish pass: `dst[k]` from `s.splits` partials per output, laid out
    /// `k * splits + s` (`cols` false) or `s * k_count + k` (`cols`).
    pub(crate) fn reduce_finish(
        &self,
        stream: &StreamInner,
        m: &ReduceModule,
        cols: bool,
        (part, dst): (u64, u64),
        s: ReduceShape,
    ) -> Result<()> {
        let (f, grid) = if cols {
            (m.finish_cols, super::blocks(s.k))
        } else {
            (m.finish_rows, s.k.div_ceil(8).min(MAX_GRID_X) as u32)
        };
        let (mut part, mut dst, mut k, mut splits) = (part, dst, s.k as i64, s.splits as i64);
        let mut p = params!(part, dst, k, splits);
        // SAFETY: `part` holds `k * splits` partials written by the first pass and `dst` `k`
        // results; the parameters match `finish_rows` / `finish_cols`.
        unsafe { launch(f, (grid, 1, 1), (THREADS, 1, 1), stream, &mut p, "finish") }
    }

    /// Enqueues running sums or products along the last dimension: `rows` rows of `l`
    /// elements, row offsets from `lead` (view 0 the destination, 1 the operand), last-dimension
    /// strides `(dls, sls)`. Only for the Sum and Prod modules.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn scan(
        &self,
        stream: &StreamInner,
        m: &ReduceModule,
        (src, dst): (u64, u64),
        (rows, l): (usize, usize),
        lead: View<2>,
        (dls, sls): (i64, i64),
    ) -> Result<()> {
        let f = m.scan.expect("scans are in the Sum and Prod modules");
        let grid = rows.div_ceil(8).min(MAX_GRID_X) as u32;
        let (mut src, mut dst, mut rows, mut l, mut lead, mut dls, mut sls) =
            (src, dst, rows as i64, l as i64, lead, dls, sls);
        let mut p = params!(src, dst, rows, l, lead, dls, sls);
        // SAFETY: every element of the `rows` rows (lead's offsets plus `j * stride`, j < l)
        // lies inside its buffer; the destination's elements are distinct; the parameters
        // match `scan`.
        unsafe { launch(f, (grid, 1, 1), (THREADS, 1, 1), stream, &mut p, "scan") }
    }
}

/// The most chunks a reduction may be split into (the grid's second dimension).
pub(crate) const MAX_SPLITS: usize = MAX_GRID_YZ;
