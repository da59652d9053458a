//! The `unary` and `binary` modules (`math.cuh` + `elementwise.cu`), one per (op, compute
//! dtype), compiled on first use, and their launches. Modules compile with `--fmad=false`
//! (products and sums round as on the CPU), except those of the library functions (`exp`,
//! `log`, `sin`, ..., and the activations and their derivatives), whose results differ from
//! the CPU's in the last places anyway and which run faster with fused multiply-adds.

use super::{
    c_type, function, launch, load_module, Function, Kernels, View, COMMON, CONVERT, MAX_GRID_X,
    MAX_GRID_YZ, THREADS,
};
use crate::cuda::stream::StreamInner;
use crate::dtype::DType;
use crate::error::Result;
use crate::plan::{BinaryOp, UnaryOp};
use std::ffi::c_void;

pub(super) const MATH: &str = include_str!("math.cuh");
const ELEMENTWISE: &str = include_str!("elementwise.cu");

/// Rows each thread of `binary_rows` writes (`ROWS` in `elementwise.cu`).
const ROWS: usize = 4;

/// The kernels of one unary op and compute dtype.
#[derive(Debug)]
pub(crate) struct UnaryModule {
    dense: Function,
    strided: Function,
}

/// The kernels of one binary op and compute dtype.
#[derive(Debug)]
pub(crate) struct BinaryModule {
    dense: Function,
    rows: Function,
    strided: Function,
}

/// An operand of a binary kernel: the device address of its first element, or the bits of a
/// scalar of the compute dtype (low bytes).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg {
    /// An array.
    Ptr(u64),
    /// A scalar.
    Bits(u64),
}

impl Arg {
    /// `(pointer, is_scalar, bits)` as the kernels take them.
    fn parts(self) -> (u64, i32, u64) {
        match self {
            Arg::Ptr(p) => (p, 0, 0),
            Arg::Bits(b) => (0, 1, b),
        }
    }
}

/// Elements per 16-byte pack of a dtype of `esize` bytes (`P`).
fn pack(esize: usize) -> usize {
    16 / esize
}

/// Packs each thread of a dense kernel loads per step (`UNROLL`).
fn unroll(esize: usize) -> usize {
    match pack(esize) {
        16 => 1,
        8 => 2,
        _ => 4,
    }
}

/// The grid of a dense launch over `n` elements of `esize` bytes.
fn dense_grid(n: usize, esize: usize) -> u32 {
    let per_block = THREADS as usize * unroll(esize);
    (n / pack(esize)).div_ceil(per_block).clamp(1, MAX_GRID_X) as u32
}

/// The grid of a strided launch over `n` elements (four per thread and step).
fn strided_grid(n: usize) -> u32 {
    super::blocks(n.div_ceil(4))
}

/// Whether `op` is computed by a library function of CUDA's math library or an activation
/// built on them (the modules that compile with `--fmad=true`).
fn library_function(op: UnaryOp) -> bool {
    use UnaryOp::*;
    matches!(
        op,
        Exp | Expm1
            | Log
            | Log1p
            | Log2
            | Log10
            | Sin
            | Cos
            | Tan
            | Asin
            | Acos
            | Atan
            | Sinh
            | Cosh
            | Tanh
            | Asinh
            | Acosh
            | Atanh
            | Relu
            | Gelu
            | GeluTanh
            | Silu
            | Sigmoid
    )
}

/// Whether `op` is the derivative of an activation (computed with library functions, so its
/// module compiles with `--fmad=true` too).
fn activation_backward(op: BinaryOp) -> bool {
    use BinaryOp::*;
    matches!(
        op,
        ReluBackward | GeluBackward | GeluTanhBackward | SiluBackward | SigmoidBackward
    )
}

/// The NVRTC options of an elementwise module.
fn defines(op: String, fmad: bool, dtype: DType, out: DType, arity: u8) -> [String; 5] {
    [
        format!("--fmad={fmad}"),
        format!("-DOP={op}"),
        format!("-DELEM={}", c_type(dtype)),
        format!("-DOUT={}", c_type(out)),
        format!("-DARITY={arity}"),
    ]
}

impl Kernels {
    /// The `unary` module of `op` computing in `dtype` (compiled on first use).
    pub(crate) fn unary_module(&self, op: UnaryOp, dtype: DType) -> Result<&UnaryModule> {
        self.unary[op.index() * DType::ALL.len() + dtype as usize]
            .get_or_init(|| {
                let out = if op.returns_bool() {
                    DType::Bool
                } else {
                    dtype
                };
                let name = format!("unary_{}_{}", op.name(), dtype.short_name());
                let fmad = library_function(op);
                let op = format!("U_{}", op.name().to_ascii_uppercase());
                let m = load_module(
                    &name,
                    &format!("{COMMON}{CONVERT}{MATH}{ELEMENTWISE}"),
                    &self.options(&defines(op, fmad, dtype, out, 1)),
                )?;
                Ok(UnaryModule {
                    dense: function(m, "unary_dense")?,
                    strided: function(m, "unary_strided")?,
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The `binary` module of `op` computing in `dtype` (compiled on first use).
    pub(crate) fn binary_module(&self, op: BinaryOp, dtype: DType) -> Result<&BinaryModule> {
        self.binary[op.index() * DType::ALL.len() + dtype as usize]
            .get_or_init(|| {
                let out = if op.returns_bool() {
                    DType::Bool
                } else {
                    dtype
                };
                let name = format!("binary_{}_{}", op.name(), dtype.short_name());
                let fmad = activation_backward(op);
                let op = format!("B_{}", op.name().to_ascii_uppercase());
                let m = load_module(
                    &name,
                    &format!("{COMMON}{CONVERT}{MATH}{ELEMENTWISE}"),
                    &self.options(&defines(op, fmad, dtype, out, 2)),
                )?;
                Ok(BinaryModule {
                    dense: function(m, "binary_dense")?,
                    rows: function(m, "binary_rows")?,
                    strided: function(m, "binary_strided")?,
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Enqueues `dst[i] = op(src[i])` over `n` dense elements of `esize` bytes (both 16-byte
    /// aligned).
    pub(crate) fn unary_dense(
        &self,
        stream: &StreamInner,
        m: &UnaryModule,
        esize: usize,
        (dst, src): (u64, u64),
        n: usize,
    ) -> Result<()> {
        let (mut dst, mut src, mut n64) = (dst, src, n as i64);
        let mut p = params!(dst, src, n64);
        // SAFETY: `n` elements from each pointer lie inside their buffers, both 16-byte aligned
        // (the caller checked); the parameters match `unary_dense`.
        unsafe {
            launch(
                m.dense,
                (dense_grid(n, esize), 1, 1),
                (THREADS, 1, 1),
                stream,
                &mut p,
                "unary_dense",
            )
        }
    }

    /// Enqueues `dst[view 0] = op(src[view 1])` over `n` elements.
    pub(crate) fn unary_strided(
        &self,
        stream: &StreamInner,
        m: &UnaryModule,
        (dst, src): (u64, u64),
        n: usize,
        view: View<2>,
    ) -> Result<()> {
        let (mut dst, mut src, mut n64, mut view) = (dst, src, n as i64, view);
        let mut p = params!(dst, src, n64, view);
        // SAFETY: the views address `n` elements inside each buffer (validated layouts); the
        // parameters match `unary_strided`.
        unsafe {
            launch(
                m.strided,
                (strided_grid(n), 1, 1),
                (THREADS, 1, 1),
                stream,
                &mut p,
                "unary_strided",
            )
        }
    }

    /// Enqueues `dst[i] = op(a[i], b[i])` over `n` dense elements of `esize` bytes (array
    /// pointers 16-byte aligned).
    pub(crate) fn binary_dense(
        &self,
        stream: &StreamInner,
        m: &BinaryModule,
        esize: usize,
        (dst, a, b): (u64, Arg, Arg),
        n: usize,
    ) -> Result<()> {
        let ((mut pa, mut sa, mut ba), (mut pb, mut sb, mut bb)) = (a.parts(), b.parts());
        let (mut dst, mut n64) = (dst, n as i64);
        let mut p = params!(dst, pa, pb, sa, sb, ba, bb, n64);
        // SAFETY: `n` elements from the destination and each array operand lie inside their
        // buffers, 16-byte aligned (the caller checked); scalars are passed by value; the
        // parameters match `binary_dense`.
        unsafe {
            launch(
                m.dense,
                (dense_grid(n, esize), 1, 1),
                (THREADS, 1, 1),
                stream,
                &mut p,
                "binary_dense",
            )
        }
    }

    /// Enqueues the C-order `(rows, cols)` destination `dst = op(a, b)` where each array
    /// operand has row stride `cols` or 0 (a broadcast row) and unit column stride; `cols` is
    /// a multiple of the 16-byte pack and every pointer 16-byte aligned.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn binary_rows(
        &self,
        stream: &StreamInner,
        m: &BinaryModule,
        esize: usize,
        (dst, a, b): (u64, Arg, Arg),
        (ars, brs): (i64, i64),
        (rows, cols): (usize, usize),
    ) -> Result<()> {
        let cp = cols / pack(esize);
        let bx = cp.next_power_of_two().clamp(32, THREADS as usize);
        let by = THREADS as usize / bx;
        let grid = (
            cp.div_ceil(bx).min(MAX_GRID_X) as u32,
            rows.div_ceil(by * ROWS).min(MAX_GRID_YZ) as u32,
            1,
        );
        let ((mut pa, mut sa, mut ba), (mut pb, mut sb, mut bb)) = (a.parts(), b.parts());
        let (mut dst, mut ars, mut brs, mut r64, mut cp64) =
            (dst, ars, brs, rows as i64, cp as i64);
        let mut p = params!(dst, pa, pb, sa, sb, ba, bb, ars, brs, r64, cp64);
        // SAFETY: the destination holds `rows * cols` dense elements and each array operand
        // `rows` rows of `cols` at its row stride (0 for one row), all inside their buffers and
        // 16-byte aligned (the caller checked); the kernel loops over rows past the grid; the
        // parameters match `binary_rows`.
        unsafe {
            launch(
                m.rows,
                grid,
                (bx as u32, by as u32, 1),
                stream,
                &mut p,
                "binary_rows",
            )
        }
    }

    /// Enqueues `dst[view 0] = op(a[view 1], b[view 2])` over `n` elements (a scalar's view
    /// strides are ignored).
    pub(crate) fn binary_strided(
        &self,
        stream: &StreamInner,
        m: &BinaryModule,
        (dst, a, b): (u64, Arg, Arg),
        n: usize,
        view: View<3>,
    ) -> Result<()> {
        let ((mut pa, mut sa, mut ba), (mut pb, mut sb, mut bb)) = (a.parts(), b.parts());
        let (mut dst, mut n64, mut view) = (dst, n as i64, view);
        let mut p = params!(dst, pa, pb, sa, sb, ba, bb, n64, view);
        // SAFETY: the views address `n` elements inside each array's buffer (validated
        // layouts); the parameters match `binary_strided`.
        unsafe {
            launch(
                m.strided,
                (strided_grid(n), 1, 1),
                (THREADS, 1, 1),
                stream,
                &mut p,
                "binary_strided",
            )
        }
    }
}
