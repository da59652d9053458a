//! Device kernels pocaflow writes itself (sources in `kernels/*.cu`), compiled with NVRTC to a
//! CUBIN for the device's own architecture at first use and kept loaded in the per-device
//! state. Each module is compiled once per device, in a slot of its own (no lookup by name
//! when launching):
//!
//! - `bits`: kernels that move elements without looking at their values, one instance per
//!   element size (1, 2, 4, 8 bytes): strided copies of one dtype, fills (16-byte stores on
//!   dense destinations), `tri_zero`, gathers and scatters with a device-side bounds check,
//!   masked copies, and the scan of nonzero's block counts;
//! - `cast` for one (source, destination) dtype pair, compiled when that pair is first
//!   converted (169 small modules at most, most never built);
//! - `values` for one dtype, compiled with `--fmad=false` so that f64 arithmetic rounds as on
//!   the CPU: `arange`, nonzero's count and write passes, Philox random fills;
//! - `gemm`: the small-matmul kernel for float32 and float64 (see [`Kernels::small_matmul`] and
//!   `cuda::set_small_matmul_threshold`) and the TF32 split of the tf32x3 products
//!   ([`Kernels::tf32_split`]);
//! - `unary` and `binary` for one (op, compute dtype) ([`elementwise`]), `reduce` for one
//!   (reduce op, operand dtype), with the scans in the Sum and Prod modules ([`reduce`]), and
//!   `rowwise` for one (row op, row dtype) ([`rowwise`]: softmax, log-softmax, the
//!   normalizations and their backward ops), each compiled when first used, in a slot indexed
//!   by the op's and the dtype's positions;
//! - `spmm`: pocaflow's CSR times row-major dense product for float32 and float64 data with
//!   int32 and int64 indices ([`spmm`]).
//!
//! Strided views reach the kernels as [`View`]s: dimensions every operand steps through as one
//! are merged first (`merge_dims`), at most [`MAXD`] remain.

use super::driver::DriverResultExt;
use super::stream::StreamInner;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::plan::{BinaryOp, ReduceOp, RowOp, UnaryOp};
use cudarc::driver::{result as dr, sys as ds};
use cudarc::nvrtc::{result as nr, sys as ns};
use std::ffi::{c_void, CStr, CString};
use std::sync::OnceLock;

pub(crate) use elementwise::{Arg, BinaryModule, UnaryModule};
pub(crate) use loss::LossModule;
pub(crate) use reduce::{ReduceModule, ReduceShape, MAX_SPLITS, PARTIAL_BYTES};
pub(crate) use rowwise::{RowModule, RowPtrs};
pub(crate) use spmm::{SpmmArgs, SpmmPlan};

const COMMON: &str = include_str!("kernels/common.cuh");
const CONVERT: &str = include_str!("kernels/convert.cuh");
const BITS: &str = include_str!("kernels/bits.cu");
const CAST: &str = include_str!("kernels/cast.cu");
const VALUES: &str = include_str!("kernels/values.cu");
const GEMM: &str = include_str!("kernels/gemm.cu");

/// Most dimensions of a view after merging (`MAXD` in `common.cuh`).
pub(crate) const MAXD: usize = 16;
/// Most index arrays of one gather or scatter (`MAXK` in `common.cuh`).
pub(crate) const MAXK: usize = 8;
/// Threads per block of the elementwise kernels, and nonzero's elements per block.
const THREADS: u32 = 256;
/// Most blocks of a grid-stride launch.
const MAX_BLOCKS: usize = 1 << 16;

/// `N` strided views of one shape (matches `View<N>` in `common.cuh`): element strides per
/// view, dimensions outermost first; offsets are applied to the pointers.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<const N: usize> {
    shape: [i64; MAXD],
    strides: [[i64; MAXD]; N],
    nd: i32,
}

fn too_many_dims(shape: &[usize]) -> Error {
    Error::Shape(format!(
        "CUDA kernels take views of at most {MAXD} dimensions that cannot be merged, got shape {}",
        crate::layout::fmt_shape(shape)
    ))
}

/// The dimensions of views of one shape with extent-1 dimensions dropped and neighbours merged
/// where every view steps through them as one: `(extents, strides per view)`, outermost first.
/// The C-order enumeration of the elements is unchanged.
pub(crate) fn merge_dims(shape: &[usize], strides: &[&[isize]]) -> (Vec<usize>, Vec<Vec<isize>>) {
    let views = strides.len();
    let mut ext: Vec<usize> = Vec::new();
    let mut st: Vec<Vec<isize>> = vec![Vec::new(); views];
    for (d, &n) in shape.iter().enumerate() {
        if n == 1 {
            continue;
        }
        let mergeable = !ext.is_empty()
            && (0..views).all(|v| st[v][ext.len() - 1] == strides[v][d] * n as isize);
        if mergeable {
            *ext.last_mut().expect("not empty") *= n;
            for v in 0..views {
                *st[v].last_mut().expect("not empty") = strides[v][d];
            }
        } else {
            ext.push(n);
            for v in 0..views {
                st[v].push(strides[v][d]);
            }
        }
    }
    (ext, st)
}

impl<const N: usize> View<N> {
    /// The views of `shape` with these strides, dimensions kept as they are.
    pub(crate) fn exact(shape: &[usize], strides: [&[isize]; N]) -> Result<View<N>> {
        if shape.len() > MAXD {
            return Err(too_many_dims(shape));
        }
        let mut v = View {
            shape: [1; MAXD],
            strides: [[0; MAXD]; N],
            nd: shape.len() as i32,
        };
        for (d, &n) in shape.iter().enumerate() {
            v.shape[d] = n as i64;
            for (k, s) in strides.iter().enumerate() {
                v.strides[k][d] = s[d] as i64;
            }
        }
        Ok(v)
    }

    /// The views of `shape` with these strides, dimensions merged as [`merge_dims`] merges them
    /// (without allocating).
    pub(crate) fn merged(shape: &[usize], strides: [&[isize]; N]) -> Result<View<N>> {
        let mut v = View {
            shape: [1; MAXD],
            strides: [[0; MAXD]; N],
            nd: 0,
        };
        let mut nd = 0usize;
        for (d, &n) in shape.iter().enumerate() {
            if n == 1 {
                continue;
            }
            let n = n as i64;
            let merges = nd > 0
                && v.strides
                    .iter()
                    .zip(&strides)
                    .all(|(vs, s)| vs[nd - 1] == s[d] as i64 * n);
            let slot = if merges {
                v.shape[nd - 1] *= n;
                nd - 1
            } else if nd == MAXD {
                return Err(too_many_dims(shape));
            } else {
                v.shape[nd] = n;
                nd += 1;
                nd - 1
            };
            for (vs, s) in v.strides.iter_mut().zip(&strides) {
                vs[slot] = s[d] as i64;
            }
        }
        v.nd = nd as i32;
        Ok(v)
    }

    /// The number of dimensions.
    pub(crate) fn ndim(&self) -> usize {
        self.nd as usize
    }

    /// The extent of dimension `d`.
    pub(crate) fn extent(&self, d: usize) -> i64 {
        self.shape[d]
    }

    /// The element stride of view `k` in dimension `d`.
    pub(crate) fn stride(&self, k: usize, d: usize) -> i64 {
        self.strides[k][d]
    }
}

/// The arguments of a gather or scatter (matches `struct Index` in `bits.cu`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexArgs {
    pub shape: [i64; MAXD],
    pub out_strides: [i64; MAXD],
    pub base_strides: [i64; MAXD],
    pub idx_strides: [[i64; MAXD]; MAXK],
    pub idx: [u64; MAXK],
    pub axis_stride: [i64; MAXK],
    pub axis_len: [i64; MAXK],
    pub axis_num: [i64; MAXK],
    pub nd: i32,
    pub k: i32,
}

/// The sizes and element strides of a small matmul (matches `struct Gemm`): row and column
/// strides of A (m x k), B (k x n) and C (m x n), then each one's batch stride.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct SmallGemm {
    pub m: i64,
    pub n: i64,
    pub k: i64,
    pub a: [i64; 2],
    pub b: [i64; 2],
    pub c: [i64; 2],
    pub batch_strides: [i64; 3],
}

/// The parameters of a random fill (`random` in `values.cu`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RandomArgs {
    pub seed: u64,
    pub counter: u64,
    /// 0 uniform on `[a, b)`, 1 normal (mean `a`, std `b`), 2 integers `low + r`, `r < span`.
    pub dist: i32,
    /// Two Philox words per element.
    pub wide: bool,
    pub a: f64,
    pub b: f64,
    pub low: i64,
    pub span: u64,
}

/// Most blocks along the first grid dimension, and along the second and third.
const MAX_GRID_X: usize = i32::MAX as usize;
const MAX_GRID_YZ: usize = 65_535;
/// Largest inner dimension of a small matmul: each block walks all of k, so a longer k makes
/// one block slower than cuBLASLt's split kernels.
const SMALL_MATMUL_MAX_K: usize = 128;

/// A loaded kernel.
#[derive(Debug, Clone, Copy)]
struct Function(ds::CUfunction);

// SAFETY: function handles are process-wide and usable from any thread with the device's
// context current.
unsafe impl Send for Function {}
// SAFETY: as above.
unsafe impl Sync for Function {}

/// The `bits` module: per element size (index 0..4 for 1, 2, 4, 8 bytes).
#[derive(Debug)]
struct BitsModule {
    copy: [Function; 4],
    transpose: [Function; 4],
    fill: [Function; 4],
    fill_dense: [Function; 4],
    tri_zero: [Function; 4],
    masked: [Function; 4],
    masked_dense: [Function; 4],
    gather: [Function; 4],
    scatter: [Function; 4],
    compress: [Function; 4],
    expand: [Function; 4],
    mask_count: Function,
    scan: Function,
}

/// The `values` module of one dtype.
#[derive(Debug)]
struct ValueModule {
    arange: Function,
    nonzero: Function,
    random: Function,
    random_normal: Function,
}

/// The `gemm` module.
#[derive(Debug)]
struct GemmModule {
    f32: Function,
    f64: Function,
    tf32_split: Function,
}

/// The runs a tf32x3 split walks: `runs` of `len` elements, run `r` being row `r % rows` of
/// matrix `r / rows`; (source, destination) strides between rows and between elements, and
/// the matrices' offsets as view 0 (source) and view 1 (destination) of `batch`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tf32Split {
    pub(crate) batch: View<2>,
    pub(crate) runs: i64,
    pub(crate) rows: i64,
    pub(crate) len: i64,
    pub(crate) row: (i64, i64),
    pub(crate) step: (i64, i64),
}

/// The kernels of one device, each module compiled on first use.
#[derive(Debug)]
pub(crate) struct Kernels {
    arch: String,
    bits: OnceLock<Result<BitsModule>>,
    gemm: OnceLock<Result<GemmModule>>,
    /// `cast_copy` of (source, destination), at `source * 13 + destination`.
    casts: Vec<OnceLock<Result<Function>>>,
    /// One per dtype, in the order of [`DType::ALL`].
    values: Vec<OnceLock<Result<ValueModule>>>,
    /// `unary` of (op, dtype), at `op.index() * 13 + dtype`.
    unary: Vec<OnceLock<Result<UnaryModule>>>,
    /// `binary` of (op, dtype), at `op.index() * 13 + dtype`.
    binary: Vec<OnceLock<Result<BinaryModule>>>,
    /// `reduce` of (op, operand dtype), at `op.index() * 13 + dtype`.
    reduce: Vec<OnceLock<Result<ReduceModule>>>,
    /// `loss` of each (float) dtype, at `dtype`.
    loss: Vec<OnceLock<Result<LossModule>>>,
    /// `rowwise` of (row op, row dtype), at `op.index() * 13 + dtype`.
    rowwise: Vec<OnceLock<Result<RowModule>>>,
    /// `spmm`, every instance.
    spmm: OnceLock<Result<spmm::SpmmModule>>,
}

fn nvrtc_err(op: &str, e: nr::NvrtcError) -> Error {
    Error::Cuda(format!("{op} failed: {:?}", e.0))
}

/// The C type of a dtype in `convert.cuh`.
fn c_type(d: DType) -> &'static str {
    match d {
        DType::Bool => "Bool",
        DType::I8 => "i8",
        DType::I16 => "i16",
        DType::I32 => "i32",
        DType::I64 => "i64",
        DType::U8 => "u8",
        DType::U16 => "u16",
        DType::U32 => "u32",
        DType::U64 => "u64",
        DType::F16 => "F16",
        DType::BF16 => "BF16",
        DType::F32 => "float",
        DType::F64 => "double",
    }
}

/// The slot of an element size in the `bits` module's arrays.
fn size_slot(bytes: usize) -> usize {
    match bytes {
        1 => 0,
        2 => 1,
        4 => 2,
        _ => 3,
    }
}

/// Blocks of a grid-stride launch over `n` items.
fn blocks(n: usize) -> u32 {
    n.div_ceil(THREADS as usize).clamp(1, MAX_BLOCKS) as u32
}

/// Empty module slots for `ops` ops of every dtype.
fn slots<M>(ops: usize) -> Vec<OnceLock<Result<M>>> {
    (0..ops * DType::ALL.len())
        .map(|_| OnceLock::new())
        .collect()
}

/// Compiles `source` with `options` and loads it (the device's context is current).
/// Where the CUBIN of a module compiled from `source` with `options` (which name the GPU
/// architecture) is kept between processes: `POCAFLOW_KERNEL_CACHE` (a directory; empty turns
/// the cache off), else `$XDG_CACHE_HOME/pocaflow/kernels` or `~/.cache/pocaflow/kernels`. The
/// file name is a hash of the crate version, the source and the options, so a changed kernel
/// never meets an old binary.
fn cache_file(name: &str, source: &str, options: &[String]) -> Option<std::path::PathBuf> {
    use std::hash::{Hash, Hasher};
    let dir = match std::env::var_os("POCAFLOW_KERNEL_CACHE") {
        Some(d) if d.is_empty() => return None,
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache")))?
            .join("pocaflow")
            .join("kernels"),
    };
    let mut h = std::hash::DefaultHasher::new();
    (env!("CARGO_PKG_VERSION"), source, options).hash(&mut h);
    Some(dir.join(format!("{name}-{:016x}.cubin", h.finish())))
}

/// Loads a CUBIN image into the current context.
fn load_cubin(cubin: &[u8]) -> Result<ds::CUmodule> {
    // SAFETY: cubin is a complete CUBIN image (NVRTC's output, or a cached copy of one that the
    // driver validates); the device's context is current.
    unsafe { dr::module::load_data(cubin.as_ptr() as *const c_void) }.cuda("cuModuleLoadData")
}

/// The module `name` compiled from `source` with `options`: from the on-disk cache when it
/// has it (see [`cache_file`]), else compiled with NVRTC and stored there (best effort: a
/// cache that cannot be written is skipped).
fn load_module(name: &str, source: &str, options: &[String]) -> Result<ds::CUmodule> {
    let cached = cache_file(name, source, options);
    if let Some(bytes) = cached.as_ref().and_then(|f| std::fs::read(f).ok()) {
        if let Ok(m) = load_cubin(&bytes) {
            return Ok(m);
        }
    }
    let cubin = compile_module(name, source, options)?;
    if let Some(f) = cached {
        let tmp = f.with_extension(format!("tmp{}", std::process::id()));
        let stored = f
            .parent()
            .map(std::fs::create_dir_all)
            .transpose()
            .and_then(|_| std::fs::write(&tmp, &cubin))
            .and_then(|_| std::fs::rename(&tmp, &f));
        if stored.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    load_cubin(&cubin)
}

/// Compiles `source` with NVRTC into a CUBIN image.
fn compile_module(name: &str, source: &str, options: &[String]) -> Result<Vec<u8>> {
    let src = CString::new(source).expect("kernel source has no NUL");
    let cname = CString::new(name).expect("no NUL");
    let prog =
        nr::create_program(&src, Some(&cname)).map_err(|e| nvrtc_err("nvrtcCreateProgram", e))?;
    // SAFETY: prog is a live program; options contain no NUL.
    let compiled = unsafe { nr::compile_program(prog, options) };
    let cubin = match compiled {
        Ok(()) => {
            let mut size = 0usize;
            // SAFETY: prog compiled; writes the CUBIN size, then the CUBIN into a buffer of it.
            unsafe { ns::nvrtcGetCUBINSize(prog, &mut size) }
                .result()
                .map_err(|e| nvrtc_err("nvrtcGetCUBINSize", e))?;
            let mut cubin = vec![0u8; size];
            // SAFETY: as above.
            unsafe { ns::nvrtcGetCUBIN(prog, cubin.as_mut_ptr() as *mut _) }
                .result()
                .map_err(|e| nvrtc_err("nvrtcGetCUBIN", e))?;
            Ok(cubin)
        }
        Err(e) => {
            // SAFETY: prog is live; the log is NUL-terminated.
            let log = unsafe { nr::get_program_log(prog) }
                .map(|l| {
                    // SAFETY: the log buffer is NUL-terminated and lives through this call.
                    unsafe { CStr::from_ptr(l.as_ptr()) }
                        .to_string_lossy()
                        .into_owned()
                })
                .unwrap_or_default();
            Err(Error::Cuda(format!(
                "NVRTC failed to compile pocaflow's kernel module {name} ({:?}): {log}",
                e.0
            )))
        }
    };
    // SAFETY: prog is live and not used after this.
    let _ = unsafe { nr::destroy_program(prog) };
    cubin
}

fn function(module: ds::CUmodule, name: &str) -> Result<Function> {
    let name = CString::new(name).expect("no NUL");
    // SAFETY: the module is loaded; a missing name is an error, not UB.
    unsafe { dr::module::get_function(module, name) }
        .cuda("cuModuleGetFunction")
        .map(Function)
}

/// Enqueues `f` on `stream` with these parameters.
///
/// # Safety
/// `params` point to values of the kernel's parameter types, in order, and every address the
/// kernel reaches through them lies in live device memory that stays allocated until the
/// kernel ran (stream-ordered pool).
unsafe fn launch(
    f: Function,
    grid: (u32, u32, u32),
    block: (u32, u32, u32),
    stream: &StreamInner,
    params: &mut [*mut c_void],
    what: &str,
) -> Result<()> {
    // SAFETY: forwarded from the caller.
    unsafe { dr::launch_kernel(f.0, grid, block, 0, stream.raw, params) }
        .map_err(|e| super::driver::cuda_err(&format!("cuLaunchKernel({what})"), e))
}

/// Pointers to the given locals, as kernel parameters.
macro_rules! params {
    ($($x:ident),*) => { [$(&mut $x as *mut _ as *mut c_void),*] };
}

mod elementwise;
mod loss;
mod reduce;
mod rowwise;
mod spmm;

impl Kernels {
    /// The kernels of a device of compute capability `major.minor` (nothing compiled yet).
    pub(crate) fn new(major: i32, minor: i32) -> Kernels {
        Kernels {
            arch: format!("--gpu-architecture=sm_{major}{minor}"),
            bits: OnceLock::new(),
            gemm: OnceLock::new(),
            casts: (0..DType::ALL.len() * DType::ALL.len())
                .map(|_| OnceLock::new())
                .collect(),
            values: DType::ALL.iter().map(|_| OnceLock::new()).collect(),
            unary: slots(UnaryOp::ALL.len()),
            binary: slots(BinaryOp::ALL.len()),
            reduce: slots(ReduceOp::ALL.len()),
            loss: slots(1),
            rowwise: slots(RowOp::ALL.len()),
            spmm: OnceLock::new(),
        }
    }

    fn options(&self, extra: &[String]) -> Vec<String> {
        let mut o = vec![self.arch.clone(), "--std=c++17".to_string()];
        o.extend_from_slice(extra);
        o
    }

    fn bits(&self) -> Result<&BitsModule> {
        self.bits
            .get_or_init(|| {
                let m = load_module("bits", &format!("{COMMON}{BITS}"), &self.options(&[]))?;
                let per = |kind: &str| -> Result<[Function; 4]> {
                    Ok([
                        function(m, &format!("{kind}_1"))?,
                        function(m, &format!("{kind}_2"))?,
                        function(m, &format!("{kind}_4"))?,
                        function(m, &format!("{kind}_8"))?,
                    ])
                };
                Ok(BitsModule {
                    copy: per("copy")?,
                    transpose: per("transpose")?,
                    fill: per("fill")?,
                    fill_dense: per("fill_dense")?,
                    tri_zero: per("tri_zero")?,
                    masked: per("masked")?,
                    masked_dense: per("masked_dense")?,
                    gather: per("gather")?,
                    scatter: per("scatter")?,
                    compress: per("compress")?,
                    expand: per("expand")?,
                    mask_count: function(m, "mask_count")?,
                    scan: function(m, "scan_counts")?,
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn gemm(&self) -> Result<&GemmModule> {
        self.gemm
            .get_or_init(|| {
                let m = load_module("gemm", &format!("{COMMON}{GEMM}"), &self.options(&[]))?;
                Ok(GemmModule {
                    f32: function(m, "small_gemm_f32")?,
                    f64: function(m, "small_gemm_f64")?,
                    tf32_split: function(m, "tf32_split")?,
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn cast(&self, src: DType, dst: DType) -> Result<Function> {
        let slot = &self.casts[src as usize * DType::ALL.len() + dst as usize];
        slot.get_or_init(|| {
            let name = format!("cast_{}_{}", src.short_name(), dst.short_name());
            let defines = [
                format!("-DSRC={}", c_type(src)),
                format!("-DDST={}", c_type(dst)),
            ];
            let m = load_module(
                &name,
                &format!("{COMMON}{CONVERT}{CAST}"),
                &self.options(&defines),
            )?;
            function(m, "cast_copy")
        })
        .clone()
    }

    fn values(&self, dtype: DType) -> Result<&ValueModule> {
        self.values[dtype as usize]
            .get_or_init(|| {
                let name = format!("values_{}", dtype.short_name());
                let extra = [
                    "--fmad=false".to_string(),
                    format!("-DELEM={}", c_type(dtype)),
                ];
                let m = load_module(
                    &name,
                    &format!("{COMMON}{CONVERT}{VALUES}"),
                    &self.options(&extra),
                )?;
                Ok(ValueModule {
                    arange: function(m, "arange")?,
                    nonzero: function(m, "nonzero")?,
                    random: function(m, "random")?,
                    random_normal: function(m, "random_normal")?,
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Enqueues `dst[view 0] = src[view 1]` for elements of `esize` bytes (pointers at the
    /// views' offsets; `n` elements; the destination's elements distinct).
    pub(crate) fn copy_bits(
        &self,
        stream: &StreamInner,
        esize: usize,
        (src, dst): (u64, u64),
        n: usize,
        view: View<2>,
    ) -> Result<()> {
        let f = self.bits()?.copy[size_slot(esize)];
        let (mut src, mut dst, mut n, mut view) = (src, dst, n as i64, view);
        let mut p = params!(src, dst, n, view);
        // SAFETY: the views address `n` elements inside each buffer (validated layouts); the
        // parameters match `copy_<size>`.
        unsafe {
            launch(
                f,
                (blocks(n as usize), 1, 1),
                (THREADS, 1, 1),
                stream,
                &mut p,
                "copy",
            )
        }
    }

    /// Enqueues the transposing copy `dst[c * ldd + r] = src[r * lds + c]` of a row-major
    /// `rows x cols` matrix into a row-major `cols x rows` one (tiled; see `transpose_k`).
    pub(crate) fn transpose(
        &self,
        stream: &StreamInner,
        esize: usize,
        (src, dst): (u64, u64),
        (rows, cols): (usize, usize),
        (lds, ldd): (usize, usize),
    ) -> Result<()> {
        let f = self.bits()?.transpose[size_slot(esize)];
        let (mut src, mut dst) = (src, dst);
        let (mut rows, mut cols, mut lds, mut ldd) =
            (rows as i64, cols as i64, lds as i64, ldd as i64);
        let mut p = params!(src, dst, rows, cols, lds, ldd);
        let grid_x = (cols as usize).div_ceil(32).clamp(1, 1 << 16) as u32;
        let grid_y = (rows as usize).div_ceil(32).clamp(1, 1 << 15) as u32;
        // SAFETY: both matrices lie inside their buffers (validated layouts, leading
        // dimensions at least the row lengths); the parameters match `transpose_<size>`.
        unsafe {
            launch(
                f,
                (grid_x, grid_y, 1),
                (32, 8, 1),
                stream,
                &mut p,
                "transpose",
            )
        }
    }

    /// Enqueues `dst[view 0] = cast(src[view 1])` from `src_dtype` to `dst_dtype`.
    pub(crate) fn cast_copy(
        &self,
        stream: &StreamInner,
        (src_dtype, dst_dtype): (DType, DType),
        (src, dst): (u64, u64),
        n: usize,
        view: View<2>,
    ) -> Result<()> {
        let f = self.cast(src_dtype, dst_dtype)?;
        let (mut src, mut dst, mut n, mut view) = (src, dst, n as i64, view);
        let mut p = params!(src, dst, n, view);
        // SAFETY: as in `copy_bits`; the parameters match `cast_copy`.
        unsafe {
            launch(
                f,
                (blocks(n as usize), 1, 1),
                (THREADS, 1, 1),
                stream,
                &mut p,
                "cast",
            )
        }
    }

    /// Enqueues `dst[view] = bits` (the value's bits in the low `esize` bytes).
    pub(crate) fn fill(
        &self,
        stream: &StreamInner,
        esize: usize,
        dst: u64,
        n: usize,
        view: View<1>,
        bits: u64,
    ) -> Result<()> {
        let f = self.bits()?.fill[size_slot(esize)];
        let (mut dst, mut n, mut view, mut bits) = (dst, n as i64, view, bits);
        let mut p = params!(dst, n, view, bits);
        // SAFETY: the view addresses `n` elements inside the buffer; the value parameter has
        // `esize` bytes, read little-endian from the u64; the parameters match `fill_<size>`.
        unsafe {
            launch(
                f,
                (blocks(n as usize), 1, 1),
                (THREADS, 1, 1),
                stream,
                &mut p,
                "fill",
            )
        }
    }

    /// Enqueues `n` dense elements from `dst` = `bits`, with 16-byte stores where aligned.
    pub(crate) fn fill_dense(
        &self,
        stream: &StreamInner,
        esize: usize,
        dst: u64,
        n: usize,
        bits: u64,
    ) -> Result<()> {
        let f = self.bits()?.fill_dense[size_slot(esize)];
        let (mut dst, mut n, mut bits) = (dst, n as i64, bits);
        let mut p = params!(dst, n, bits);
        let grid = blocks((n as usize).div_ceil(16 / esize));
        // SAFETY: `n` elements from `dst` lie inside the buffer; `dst` is aligned to `esize`;
        // the parameters match `fill_dense_<size>`.
        unsafe {
            launch(
                f,
                (grid, 1, 1),
                (THREADS, 1, 1),
                stream,
                &mut p,
                "fill_dense",
            )
        }
    }

    /// Enqueues the zeroing of one triangle of each matrix of the view (last two dimensions
    /// are rows and columns).
    pub(crate) fn tri_zero(
        &self,
        stream: &StreamInner,
        esize: usize,
        dst: u64,
        n: usize,
        view: View<1>,
        (k, upper): (i64, bool),
    ) -> Result<()> {
        let f = self.bits()?.tri_zero[size_slot(esize)];
        let (mut dst, mut n, mut view, mut k, mut upper) =
            (dst, n as i64, view, k, i32::from(upper));
        let mut p = params!(dst, n, view, k, upper);
        // SAFETY: the view addresses `n` elements inside the buffer; the parameters match
        // `tri_zero_<size>`.
        unsafe {
            launch(
                f,
                (blocks(n as usize), 1, 1),
                (THREADS, 1, 1),
                stream,
                &mut p,
                "tri_zero",
            )
        }
    }

    /// Enqueues `dst[view 0] = mask[view 1] ? src[view 2] : dst[view 0]`.
    pub(crate) fn masked_copy(
        &self,
        stream: &StreamInner,
        esize: usize,
        (dst, mask, src): (u64, u64, u64),
        n: usize,
        view: View<3>,
    ) -> Result<()> {
        let f = self.bits()?.masked[size_slot(esize)];
        let (mut dst, mut mask, mut src, mut n, mut view) = (dst, mask, src, n as i64, view);
        let mut p = params!(dst, mask, src, n, view);
        // SAFETY: the views address `n` elements inside each buffer; the parameters match
        // `masked_<size>`.
        unsafe {
            launch(
                f,
                (blocks(n as usize), 1, 1),
                (THREADS, 1, 1),
                stream,
                &mut p,
                "masked_copy",
            )
        }
    }

    /// Enqueues [`Kernels::masked_copy`] for dense operands: `n` elements (a multiple of
    /// `16 / esize`) of a 16-byte aligned destination and source (`src_step` 1) or a broadcast
    /// source element (`src_step` 0), and a dense mask aligned to `16 / esize` bytes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn masked_copy_dense(
        &self,
        stream: &StreamInner,
        esize: usize,
        (dst, mask, src): (u64, u64, u64),
        n: usize,
        src_step: i32,
    ) -> Result<()> {
        let f = self.bits()?.masked_dense[size_slot(esize)];
        let nvec = n / (16 / esize);
        let (mut dst, mut mask, mut src, mut nvec64, mut src_step) =
            (dst, mask, src, nvec as i64, src_step);
        let mut p = params!(dst, mask, src, nvec64, src_step);
        // SAFETY: `nvec` 16-byte vectors of the destination (and the source when src_step is
        // 1), `n` mask bytes and one source element (src_step 0) lie inside their buffers,
        // aligned as the kernel reads them (the caller checked); the parameters match
        // `masked_dense_<size>`.
        unsafe {
            launch(
                f,
                (blocks(nvec), 1, 1),
                (THREADS, 1, 1),
                stream,
                &mut p,
                "masked_copy_dense",
            )
        }
    }

    /// Enqueues a gather (`plain[i] = base[index(i)]`) or a scatter (`base[index(i)] =
    /// plain[i]`) over `n` elements; out-of-bounds indices are skipped and the first one
    /// reported in `err` (four u64, zeroed before).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn index(
        &self,
        stream: &StreamInner,
        esize: usize,
        scatter: bool,
        (base, plain): (u64, u64),
        n: usize,
        args: &IndexArgs,
        err: u64,
    ) -> Result<()> {
        let m = self.bits()?;
        let f = if scatter { m.scatter } else { m.gather }[size_slot(esize)];
        let (mut base, mut plain, mut n, mut args, mut err) = (base, plain, n as i64, *args, err);
        let mut p = params!(base, plain, n, args, err);
        // SAFETY: every in-bounds index addresses an element of the base view and `n`
        // elements of the plain view lie inside its buffer; out-of-bounds ones are not
        // dereferenced; `err` holds four u64; the parameters match `gather_<size>` and
        // `scatter_<size>` (base first, then the plain side).
        unsafe {
            launch(
                f,
                (blocks(n as usize), 1, 1),
                (THREADS, 1, 1),
                stream,
                &mut p,
                "gather/scatter",
            )
        }
    }

    /// Enqueues one pass of nonzero over the view of `dtype` (its own shape, unmerged): pass
    /// 0 writes each block's count into `counts`, pass 1 the coordinates into `out` at the
    /// scanned `offsets`. Returns nothing; blocks of [`Kernels::NONZERO_BLOCK`] elements.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn nonzero(
        &self,
        stream: &StreamInner,
        dtype: DType,
        src: u64,
        n: usize,
        view: View<1>,
        (counts, offsets, out): (u64, u64, u64),
        pass: i32,
    ) -> Result<()> {
        let f = self.values(dtype)?.nonzero;
        let grid = n.div_ceil(Kernels::NONZERO_BLOCK) as u32;
        let (mut src, mut n, mut view, mut counts, mut offsets, mut out, mut pass) =
            (src, n as i64, view, counts, offsets, out, pass);
        let mut p = params!(src, n, view, counts, offsets, out, pass);
        // SAFETY: the view addresses `n` elements inside the buffer; `counts` and `offsets`
        // hold one entry per block (and the total); pass 1 writes `ndim` int64 per nonzero
        // element, for which `out` has room (sized from the scanned total); the parameters
        // match `nonzero`.
        unsafe { launch(f, (grid, 1, 1), (THREADS, 1, 1), stream, &mut p, "nonzero") }
    }

    /// Enqueues the second pass of a compaction over the mask's view (view 0 of `view`, the
    /// data's view 1): a select (`expand = false`) writes the selected elements of `data`
    /// densely into `packed`; an expand writes `packed[rank * pstride]` into the selected
    /// elements of `data`. `offsets` are the scanned counts of nonzero's pass 0 over the mask.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn compact(
        &self,
        stream: &StreamInner,
        esize: usize,
        expand: bool,
        (mask, data, packed): (u64, u64, u64),
        n: usize,
        view: View<2>,
        offsets: u64,
        pstride: i64,
    ) -> Result<()> {
        let b = self.bits()?;
        let f = if expand { b.expand } else { b.compress }[size_slot(esize)];
        let grid = n.div_ceil(Kernels::COMPACT_BLOCK) as u32;
        let (mut mask, mut data, mut packed, mut n, mut view, mut offsets, mut pstride) =
            (mask, data, packed, n as i64, view, offsets, pstride);
        let mut p = params!(mask, data, packed, n, view, offsets, pstride);
        // SAFETY: both views address `n` elements inside their buffers; `offsets` holds one
        // scanned count per block of the mask; `packed` has room for (select) or holds
        // (expand, every `pstride`) one element per true mask element; the parameters match
        // `compress_<size>` / `expand_<size>`.
        unsafe { launch(f, (grid, 1, 1), (THREADS, 1, 1), stream, &mut p, "compact") }
    }

    /// Enqueues the count pass of a compaction: the true elements of the bool view `mask` per
    /// block of [`Kernels::COMPACT_BLOCK`] elements (C order) into `counts`.
    pub(crate) fn mask_count(
        &self,
        stream: &StreamInner,
        mask: u64,
        n: usize,
        view: View<1>,
        counts: u64,
    ) -> Result<()> {
        let f = self.bits()?.mask_count;
        let grid = n.div_ceil(Kernels::COMPACT_BLOCK) as u32;
        let (mut mask, mut n, mut view, mut counts) = (mask, n as i64, view, counts);
        let mut p = params!(mask, n, view, counts);
        // SAFETY: the view addresses `n` bytes inside the mask's buffer; `counts` holds one
        // entry per block; the parameters match `mask_count`.
        unsafe {
            launch(
                f,
                (grid, 1, 1),
                (THREADS, 1, 1),
                stream,
                &mut p,
                "mask_count",
            )
        }
    }

    /// Elements per block of a compaction's passes (four per thread).
    pub(crate) const COMPACT_BLOCK: usize = 4 * THREADS as usize;

    /// Elements per block of nonzero's passes (one per thread).
    pub(crate) const NONZERO_BLOCK: usize = THREADS as usize;

    /// Enqueues the exclusive scan of `nb` u32 block counts into `nb + 1` u64 offsets.
    pub(crate) fn scan_counts(
        &self,
        stream: &StreamInner,
        counts: u64,
        offsets: u64,
        nb: usize,
    ) -> Result<()> {
        let f = self.bits()?.scan;
        let (mut counts, mut offsets, mut nb) = (counts, offsets, nb as i64);
        let mut p = params!(counts, offsets, nb);
        // SAFETY: `counts` holds `nb` u32 and `offsets` `nb + 1` u64; one block of 1024
        // threads, as the kernel's launch bounds say; the parameters match `scan_counts`.
        unsafe { launch(f, (1, 1, 1), (1024, 1, 1), stream, &mut p, "scan_counts") }
    }

    /// Enqueues `dst[view]` in C order = `start + i * step` (see `BackendStorage::arange`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn arange(
        &self,
        stream: &StreamInner,
        dtype: DType,
        dst: u64,
        n: usize,
        view: View<1>,
        (fstart, fstep): (f64, f64),
        (istart, istep): (i64, i64),
    ) -> Result<()> {
        let f = self.values(dtype)?.arange;
        let (mut dst, mut n, mut view, mut fstart, mut fstep, mut istart, mut istep) =
            (dst, n as i64, view, fstart, fstep, istart, istep);
        let mut p = params!(dst, n, view, fstart, fstep, istart, istep);
        // SAFETY: the view addresses `n` elements inside the buffer; the parameters match
        // `arange`.
        unsafe {
            launch(
                f,
                (blocks(n as usize), 1, 1),
                (THREADS, 1, 1),
                stream,
                &mut p,
                "arange",
            )
        }
    }

    /// Enqueues a random fill of `n` dense elements of `dtype` from `dst`.
    pub(crate) fn random(
        &self,
        stream: &StreamInner,
        dtype: DType,
        dst: u64,
        n: usize,
        r: RandomArgs,
    ) -> Result<()> {
        let m = self.values(dtype)?;
        let per = if r.wide { 2 } else { 4 };
        let grid = blocks(n.div_ceil(per));
        let (mut dst, mut n, mut seed, mut counter, mut dist, mut wide) =
            (dst, n as i64, r.seed, r.counter, r.dist, i32::from(r.wide));
        let (mut a, mut b, mut low, mut span) = (r.a, r.b, r.low, r.span);
        if dist == 1 && !r.wide {
            let mut p = params!(dst, n, seed, counter, a, b);
            // SAFETY: `n` elements from `dst` lie inside the buffer; the parameters match
            // `random_normal`.
            return unsafe {
                launch(
                    m.random_normal,
                    (grid, 1, 1),
                    (THREADS, 1, 1),
                    stream,
                    &mut p,
                    "random_normal",
                )
            };
        }
        let f = m.random;
        let mut p = params!(dst, n, seed, counter, dist, wide, a, b, low, span);
        // SAFETY: `n` elements from `dst` lie inside the buffer; the parameters match
        // `random`.
        unsafe { launch(f, (grid, 1, 1), (THREADS, 1, 1), stream, &mut p, "random") }
    }

    /// Whether [`Kernels::small_matmul`] takes an `m x k` by `k x n` product of `dtype` in
    /// batches of `batch`: float32 or float64, a short k, and a grid within the limits.
    pub(crate) fn small_matmul_fits(
        dtype: DType,
        (m, n, k): (usize, usize, usize),
        batch: usize,
    ) -> bool {
        matches!(dtype, DType::F32 | DType::F64)
            && k <= SMALL_MATMUL_MAX_K
            && n.div_ceil(32) <= MAX_GRID_X
            && m.div_ceil(32) <= MAX_GRID_YZ
            && batch <= MAX_GRID_YZ
    }

    /// Enqueues `C = A B` for `batch` matrices described by `g` on `stream` with pocaflow's
    /// own kernel: one launch, which costs the host far less than a `cublasLtMatmul` call.
    /// Only for shapes [`Kernels::small_matmul_fits`] accepts; pointers are at element 0 of
    /// the first matrix.
    pub(crate) fn small_matmul(
        &self,
        stream: &StreamInner,
        dtype: DType,
        (a, b, c): (u64, u64, u64),
        g: SmallGemm,
        batch: usize,
    ) -> Result<()> {
        let m = self.gemm()?;
        let f = match dtype {
            DType::F32 => m.f32,
            DType::F64 => m.f64,
            _ => unreachable!("small_matmul_fits accepts only f32 and f64"),
        };
        let grid = (
            (g.n as usize).div_ceil(32) as u32,
            (g.m as usize).div_ceil(32) as u32,
            batch as u32,
        );
        let (mut a, mut b, mut c, mut g) = (a, b, c, g);
        let mut p = params!(a, b, c, g);
        // SAFETY: for every batch index below `batch`, the kernel reads the m x k and k x n
        // matrices and writes the distinct elements of the m x n matrix that `g`'s strides
        // address from the given pointers, all inside their buffers (validated layouts); the
        // grid fits the device limits (small_matmul_fits) and the parameters match the
        // kernel signature.
        unsafe { launch(f, grid, (16, 16, 1), stream, &mut p, "small_gemm") }
    }

    /// Enqueues the tf32x3 split of float32 runs from `src` into three sections of `dst`
    /// (`section` elements apart): `(hi, lo, hi)` for the left operand (`a_side`), `(lo, hi,
    /// hi)` for the right. `s.runs` runs of `s.len` elements, one warp each (see `tf32_split`
    /// in `gemm.cu`).
    pub(crate) fn tf32_split(
        &self,
        stream: &StreamInner,
        (src, dst): (u64, u64),
        s: Tf32Split,
        section: i64,
        a_side: bool,
    ) -> Result<()> {
        let f = self.gemm()?.tf32_split;
        let (mut src, mut dst, mut batch, mut section) = (src, dst, s.batch, section);
        let (mut runs, mut rows, mut len) = (s.runs, s.rows, s.len);
        let (mut s_row, mut d_row, mut s_in, mut d_in) = (s.row.0, s.row.1, s.step.0, s.step.1);
        let mut a_side = i32::from(a_side);
        let mut p =
            params!(src, dst, batch, runs, rows, len, s_row, d_row, s_in, d_in, section, a_side);
        let warps_per_block = (THREADS / 32) as usize;
        let grid = (s.runs as usize)
            .div_ceil(warps_per_block)
            .clamp(1, MAX_BLOCKS) as u32;
        // SAFETY: the batch view, rows and steps address `runs x len` elements inside the
        // source and, with two more sections `section` apart, distinct elements inside the
        // destination (sized by the caller for all three); the parameters match `tf32_split`.
        unsafe {
            launch(
                f,
                (grid, 1, 1),
                (THREADS, 1, 1),
                stream,
                &mut p,
                "tf32_split",
            )
        }
    }
}
