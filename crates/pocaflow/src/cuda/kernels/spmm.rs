//! The `spmm` module (`spmm.cu`): pocaflow's own CSR times row-major dense product, every
//! (value, index, vector width) instance in one module compiled on first use, and its launch.

use super::{function, launch, load_module, Function, Kernels, COMMON};
use crate::cuda::stream::StreamInner;
use crate::dtype::DType;
use crate::error::Result;
use std::ffi::c_void;

const SPMM: &str = include_str!("spmm.cu");

/// Threads per block (8 warps, one (chunk, column tile) each).
const SPMM_THREADS: u32 = 256;

/// Fewest nonzeros for which the kernel runs (fewer leave most of the GPU idle; see
/// [`SpmmPlan::new`]).
const OWN_MIN_NNZ: usize = 1 << 20;

/// Fewest nonzeros per row, on average, for which the kernel runs (a warp walks its rows one
/// after another).
const OWN_MIN_ROW: usize = 8;

/// The vector widths of each value dtype's instances, widest first.
fn widths(value: DType) -> &'static [usize] {
    if value == DType::F64 {
        &[2, 1]
    } else {
        &[4, 2, 1]
    }
}

/// The kernels: `main` per (value dtype, index dtype, vector width), `fix` per (value dtype,
/// vector width).
#[derive(Debug)]
pub(crate) struct SpmmModule {
    main: Vec<((DType, DType, usize), Function)>,
    fix: Vec<((DType, usize), Function)>,
}

/// How one product runs: the vector width, nonzeros per chunk and the number of chunks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpmmPlan {
    width: usize,
    chunk: usize,
    /// Chunks of the nonzeros, at least 1: `cont` of [`SpmmArgs`] holds this many row
    /// numbers and `part` this many rows of partial sums.
    pub chunks: usize,
}

impl SpmmPlan {
    /// The plan for `y = A x` with `rows` rows and `nnz` nonzeros, `x` and `y` of `ncols`
    /// columns at device addresses `x` and `y` with leading dimensions `ldx` and `ldy`, values
    /// of `value`; `None` where cuSPARSE's algorithm 2 is the faster choice.
    ///
    /// Chosen by H200 measurements (power-law n = 200,000, 4M nonzeros; us per call, this
    /// kernel against cuSPARSE's algorithm 2): float32 with 8, 16, 32, 64, 128 and 256 columns
    /// 194 / 242, 196 / 249, 200 / 279, 248 / 350, 470 / 530, 990 / 1036; float64 with 64
    /// columns 478 / 536; but 63 columns (vectors of one element, two column tiles) 437 /
    /// 421. So: this kernel for 8 to 32 columns, and beyond 32 where vectors of 2 or 4
    /// elements fit. Chunks of 256 nonzeros where a lane gathers at most 8 bytes per entry
    /// (of 64, 128, 256, 512 and 1024, 256 was fastest at 8 to 64 float32 columns), of 128
    /// for 16-byte vectors (fastest at 128 float32 and 64 float64 columns). Other matrices
    /// at 64 columns, float32 / float64: uniform 1M x 10 per row 845 / 1192 and 1490 / 1804
    /// (torch, i.e. cuSPARSE), 100K x 50 per row 217 / 317 and 413 / 476; but 20K x 2 per row
    /// (40K nonzeros: 157 warps, each walking 128 rows) 133 / 38 and 81 / 34. So only for at
    /// least [`OWN_MIN_NNZ`] nonzeros and [`OWN_MIN_ROW`] per row on average.
    pub(crate) fn new(
        value: DType,
        rows: usize,
        nnz: usize,
        ncols: usize,
        (x, ldx): (u64, usize),
        (y, ldy): (u64, usize),
    ) -> Option<SpmmPlan> {
        let esize = value.size_in_bytes();
        let width = widths(value)
            .iter()
            .copied()
            .find(|&v| {
                let bytes = (v * esize) as u64;
                (v == 1 || 32 * v <= ncols)
                    && [ncols, ldx, ldy].iter().all(|d| d.is_multiple_of(v))
                    && x.is_multiple_of(bytes)
                    && y.is_multiple_of(bytes)
            })
            .unwrap_or(1);
        let own = ((8..=32).contains(&ncols) || (ncols > 32 && width > 1))
            && nnz >= OWN_MIN_NNZ
            && nnz >= OWN_MIN_ROW * rows;
        let chunk = if width * esize > 8 { 128 } else { 256 };
        own.then(|| SpmmPlan {
            width,
            chunk,
            chunks: nnz.div_ceil(chunk).max(1),
        })
    }
}

/// One product `y = A x`: device addresses of A's arrays and of `x[0, 0]` and `y[0, 0]`,
/// the leading dimensions and sizes, and the scratch arrays of its [`SpmmPlan`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpmmArgs {
    pub indptr: u64,
    pub indices: u64,
    pub data: u64,
    pub x: u64,
    pub ldx: usize,
    pub y: u64,
    pub ldy: usize,
    pub rows: usize,
    pub ncols: usize,
    pub nnz: usize,
    pub value: DType,
    pub index: DType,
    /// `chunks` int64 row numbers.
    pub cont: u64,
    /// `chunks * ncols` partial sums of the value dtype.
    pub part: u64,
}

impl Kernels {
    /// The `spmm` module (compiled on first use).
    fn spmm_module(&self) -> Result<&SpmmModule> {
        self.spmm
            .get_or_init(|| {
                let m = load_module("spmm", &format!("{COMMON}{SPMM}"), &self.options(&[]))?;
                let mut main = Vec::new();
                let mut fix = Vec::new();
                for value in [DType::F32, DType::F64] {
                    for &v in widths(value) {
                        let vn = value.short_name();
                        fix.push(((value, v), function(m, &format!("spmm_fix_{vn}_{v}"))?));
                        for index in [DType::I32, DType::I64] {
                            let name = format!("spmm_{vn}_{}_{v}", index.short_name());
                            main.push(((value, index, v), function(m, &name)?));
                        }
                    }
                }
                Ok(SpmmModule { main, fix })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Enqueues `y = A x` (see `spmm.cu`) as `plan` says.
    pub(crate) fn spmm(&self, stream: &StreamInner, plan: &SpmmPlan, a: &SpmmArgs) -> Result<()> {
        let m = self.spmm_module()?;
        let v = plan.width;
        let main = m
            .main
            .iter()
            .find(|(k, _)| *k == (a.value, a.index, v))
            .map(|(_, f)| *f)
            .expect("an instance per value, index and width");
        let fix = m
            .fix
            .iter()
            .find(|(k, _)| *k == (a.value, v))
            .map(|(_, f)| *f)
            .expect("an instance per value and width");
        let chunks = plan.chunks;
        let tiles = a.ncols.div_ceil(32 * v);
        let warps_per_block = (SPMM_THREADS / 32) as usize;
        let grid = ((chunks * tiles).div_ceil(warps_per_block) as u32, 1, 1);
        let (mut indptr, mut indices, mut data, mut x, mut y) =
            (a.indptr, a.indices, a.data, a.x, a.y);
        let (mut ldx, mut ldy, mut rows, mut ncols, mut nnz) = (
            a.ldx as i64,
            a.ldy as i64,
            a.rows as i64,
            a.ncols as i64,
            a.nnz as i64,
        );
        let (mut chunk, mut nchunks, mut cont, mut part) =
            (plan.chunk as i64, chunks as i64, a.cont, a.part);
        let mut p = params!(
            indptr, indices, data, x, ldx, y, ldy, rows, ncols, nnz, chunk, nchunks, cont, part
        );
        // SAFETY: A's arrays hold rows + 1 and nnz valid, checked entries (every index below
        // x's row count); x and y hold their rows at the leading dimensions given, aligned to
        // the vector width chosen; `cont` and `part` hold `chunks` and `chunks * ncols`
        // elements; all live and stream-ordered; the parameters match `spmm_<instance>`.
        unsafe { launch(main, grid, (SPMM_THREADS, 1, 1), stream, &mut p, "spmm")? };
        let mut p = params!(cont, part, y, ldy, ncols, nchunks);
        // SAFETY: as above; the parameters match `spmm_fix_<instance>`.
        unsafe { launch(fix, grid, (SPMM_THREADS, 1, 1), stream, &mut p, "spmm_fix") }
    }
}
