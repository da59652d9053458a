//! The `rowwise` modules (`math.cuh` + `rowwise.cu`), one per (row op, row dtype), compiled on
//! first use, and their launch.

use super::elementwise::MATH;
use super::{
    c_type, function, launch, load_module, Function, Kernels, COMMON, CONVERT, MAX_GRID_X,
};
use crate::cuda::stream::StreamInner;
use crate::dtype::DType;
use crate::error::Result;
use crate::plan::{RowOp, RowPlan};
use std::ffi::c_void;

const ROWWISE: &str = include_str!("rowwise.cu");

/// The register-resident variants of `rowwise.cu`, smallest first: `(W, EPT)`, `W` threads per
/// row each holding `EPT` elements (rows up to `W * EPT` elements).
const VARIANTS: [(u32, usize); 11] = [
    (4, 8),
    (8, 8),
    (16, 8),
    (32, 8),
    (32, 16),
    (32, 32),
    (128, 16),
    (256, 16),
    (512, 16),
    (1024, 16),
    (1024, 32),
];

/// Threads per block of `rows_long` (`LONG_THREADS`).
const LONG_THREADS: u32 = 512;

/// Threads per block of the variants with `W` of at most 32 (several rows per block; a block
/// of `W` threads is one row otherwise).
const GROUP_BLOCK: u32 = 256;

/// How many of [`VARIANTS`] a module of `op` over `dtype` holds: the largest would hold the
/// row (and for backward ops also `dy`) in more registers than a thread of their block has:
/// all 11 for the forward ops of 2- and 4-byte rows, 10 for their backward ops, 9 for float64
/// (rows up to 32768, 16384 and 8192 elements).
fn row_variants(op: RowOp, dtype: DType) -> usize {
    if dtype == DType::F64 {
        VARIANTS.len() - 2
    } else {
        VARIANTS.len() - usize::from(op.is_backward())
    }
}

/// The kernels of one row op and row dtype: `regs[v]` is variant `v` of [`VARIANTS`], each
/// as `[packed, single]` (16-byte packs, single elements).
#[derive(Debug)]
pub(crate) struct RowModule {
    regs: Vec<[Function; 2]>,
    long: [Function; 2],
}

/// The device addresses of a row op's operands (0 for an absent one), all at element 0 of
/// their first row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowPtrs {
    /// The `(rows, n)` destination.
    pub out: u64,
    /// `x`, or the forward output `y` of the softmax backward ops.
    pub x: u64,
    /// The gradient of the output.
    pub dy: u64,
    /// The `(n,)` scale.
    pub weight: u64,
    /// The `(n,)` shift.
    pub bias: u64,
    /// The `(rows, 2)` statistics.
    pub stats: u64,
}

impl RowPtrs {
    /// Whether every row operand can move in 16-byte packs: all pointers present 16-byte
    /// aligned and `n` a multiple of the pack of `esize`-byte elements (the statistics are
    /// written one element at a time).
    pub(crate) fn packed(&self, n: usize, esize: usize) -> bool {
        n.is_multiple_of(16 / esize)
            && [self.out, self.x, self.dy, self.weight, self.bias]
                .iter()
                .all(|p| p.is_multiple_of(16))
    }
}

impl Kernels {
    /// The `rowwise` module of `op` over rows of `dtype` (compiled on first use).
    pub(crate) fn row_module(&self, op: RowOp, dtype: DType) -> Result<&RowModule> {
        self.rowwise[op.index() * DType::ALL.len() + dtype as usize]
            .get_or_init(|| {
                let name = format!("rowwise_{}_{}", op.name(), dtype.short_name());
                let count = row_variants(op, dtype);
                let defines = [
                    format!("-DRO=ROW_{}", op.name().to_ascii_uppercase()),
                    format!("-DELEM={}", c_type(dtype)),
                    format!("-DVARIANTS={count}"),
                ];
                let m = load_module(
                    &name,
                    &format!("{COMMON}{CONVERT}{MATH}{ROWWISE}"),
                    &self.options(&defines),
                )?;
                let pair = |base: &str| -> Result<[Function; 2]> {
                    Ok([
                        function(m, &format!("{base}_v"))?,
                        function(m, &format!("{base}_s"))?,
                    ])
                };
                let regs = VARIANTS[..count]
                    .iter()
                    .map(|(w, ept)| pair(&format!("rows_{w}_{ept}")))
                    .collect::<Result<Vec<_>>>()?;
                Ok(RowModule {
                    regs,
                    long: pair("rows_long")?,
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Enqueues `plan` over the operands at `p` (`packed` as [`RowPtrs::packed`] says): the
    /// smallest register variant of the module that holds a row of `plan.n`, else the long-row
    /// kernel.
    pub(crate) fn rowwise(
        &self,
        stream: &StreamInner,
        m: &RowModule,
        plan: &RowPlan,
        p: RowPtrs,
        packed: bool,
    ) -> Result<()> {
        let form = usize::from(!packed);
        let fit = VARIANTS[..m.regs.len()]
            .iter()
            .position(|&(w, ept)| w as usize * ept >= plan.n);
        let (f, grid, block) = match fit {
            Some(v) => {
                let w = VARIANTS[v].0;
                let block = if w > 32 { w } else { GROUP_BLOCK };
                let rows_per_block = (block / w) as usize;
                (m.regs[v][form], plan.rows.div_ceil(rows_per_block), block)
            }
            None => (m.long[form], plan.rows, LONG_THREADS),
        };
        let grid = grid.clamp(1, MAX_GRID_X) as u32;
        let (mut out, mut x, mut dy, mut w, mut b, mut stats) =
            (p.out, p.x, p.dy, p.weight, p.bias, p.stats);
        let (mut rows, mut n, mut eps) = (plan.rows as i64, plan.n as i64, plan.eps);
        let mut params = params!(out, x, dy, w, b, stats, rows, n, eps);
        // SAFETY: `out`, `x` and (when the op reads it) `dy` hold `rows * n` elements, `weight`
        // and `bias` `n` (or are 0, which the kernels test before reading), `stats` `2 * rows`
        // of the statistics dtype when the op writes them, all inside their buffers; with
        // `packed` every pointer is 16-byte aligned and `n` a multiple of the pack; the kernels
        // loop over rows past the grid; the parameters match `rows_*`.
        unsafe {
            launch(
                f,
                (grid, 1, 1),
                (block, 1, 1),
                stream,
                &mut params,
                "rowwise",
            )
        }
    }
}
