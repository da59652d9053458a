//! Device kernels pocaflow writes itself, compiled with NVRTC to a CUBIN for the device's own
//! architecture on first use (once per device) and kept loaded.
//!
//! - `copy_<src>_<dst>`: copies a strided view of up to [`MAX_DIMS`] dimensions into another,
//!   converting between f16, bf16, f32 and f64 (round to nearest even). It backs
//!   `contiguous()`, `copy_`, `to(dtype=...)` and the packing of operands cuBLASLt cannot
//!   describe.
//! - `small_gemm_<f32|f64>`: small matrix products of any strides, batched, in one launch (see
//!   [`Kernels::small_matmul`] and `cuda::set_small_matmul_threshold`).

use super::driver::DriverResultExt;
use super::stream::StreamInner;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::layout::Layout;
use cudarc::driver::{result as dr, sys as ds};
use cudarc::nvrtc::{result as nr, sys as ns};
use std::collections::HashMap;
use std::ffi::{c_void, CStr, CString};

/// Most dimensions a strided copy handles (more are merged or rejected).
pub(crate) const MAX_DIMS: usize = 8;

const SOURCE: &str = r#"
typedef unsigned short u16;
typedef long long i64;

struct View { i64 shape[8]; i64 src_strides[8]; i64 dst_strides[8]; int ndim; };

__device__ __forceinline__ float h2f(u16 h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
__device__ __forceinline__ u16 f2h(float f) { u16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
__device__ __forceinline__ float b2f(u16 b) { return __uint_as_float(((unsigned)b) << 16); }
__device__ __forceinline__ u16 f2b(float f) {
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u16)((u >> 16) | 0x40u);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);                                      // round to nearest even
    return (u16)(u >> 16);
}

struct F16 { u16 v; };  struct BF16 { u16 v; };
__device__ __forceinline__ double load(const float* p) { return *p; }
__device__ __forceinline__ double load(const double* p) { return *p; }
__device__ __forceinline__ float load(const F16* p) { return h2f(p->v); }
__device__ __forceinline__ float load(const BF16* p) { return b2f(p->v); }
__device__ __forceinline__ void store(float* p, double x) { *p = (float)x; }
__device__ __forceinline__ void store(double* p, double x) { *p = x; }
__device__ __forceinline__ void store(F16* p, double x) { p->v = f2h((float)x); }
__device__ __forceinline__ void store(BF16* p, double x) { p->v = f2b((float)x); }
// Same-type copies move bits (no rounding, NaN payloads kept).
template <typename T> __device__ __forceinline__ void move(const T* s, T* d) { *d = *s; }
template <typename S, typename D> __device__ __forceinline__ void move(const S* s, D* d) { store(d, load(s)); }

template <typename S, typename D>
__device__ void copy(const S* src, D* dst, i64 n, View v) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
        i64 r = i, so = 0, d = 0;
        for (int k = v.ndim - 1; k >= 0; --k) {
            i64 idx = r % v.shape[k];
            r /= v.shape[k];
            so += idx * v.src_strides[k];
            d += idx * v.dst_strides[k];
        }
        move(src + so, dst + d);
    }
}

// Small matrix products (see `Kernels::small_matmul`). Each 16x16 block computes a 32x32 tile
// of C, two by two per thread, through 32x32 tiles of A and B in shared memory; every element
// is a sequential fused multiply-add over k in the operands' own precision. Any strides; batch
// index blockIdx.z.
struct Gemm { i64 m, n, k; i64 a_rs, a_cs, b_rs, b_cs, c_rs, c_cs; i64 a_bs, b_bs, c_bs; };

template <typename T>
__device__ void small_gemm(const T* a, const T* b, T* c, Gemm g) {
    __shared__ T as[32][33];
    __shared__ T bs[32][33];
    const int tx = threadIdx.x, ty = threadIdx.y, t = ty * 16 + tx;
    const i64 row0 = (i64)blockIdx.y * 32, col0 = (i64)blockIdx.x * 32;
    a += blockIdx.z * g.a_bs;
    b += blockIdx.z * g.b_bs;
    c += blockIdx.z * g.c_bs;
    T acc00 = 0, acc01 = 0, acc10 = 0, acc11 = 0;
    for (i64 p0 = 0; p0 < g.k; p0 += 32) {
        for (int e = t; e < 32 * 32; e += 256) {
            const int r = e / 32, q = e % 32;
            const i64 i = row0 + r, p = p0 + q;
            as[r][q] = (i < g.m && p < g.k) ? a[i * g.a_rs + p * g.a_cs] : (T)0;
            const i64 pb = p0 + r, j = col0 + q;
            bs[r][q] = (pb < g.k && j < g.n) ? b[pb * g.b_rs + j * g.b_cs] : (T)0;
        }
        __syncthreads();
        #pragma unroll 8
        for (int q = 0; q < 32; ++q) {
            const T a0 = as[ty][q], a1 = as[ty + 16][q], b0 = bs[q][tx], b1 = bs[q][tx + 16];
            acc00 = fma(a0, b0, acc00);
            acc01 = fma(a0, b1, acc01);
            acc10 = fma(a1, b0, acc10);
            acc11 = fma(a1, b1, acc11);
        }
        __syncthreads();
    }
    const i64 i0 = row0 + ty, i1 = i0 + 16, j0 = col0 + tx, j1 = j0 + 16;
    if (i0 < g.m && j0 < g.n) c[i0 * g.c_rs + j0 * g.c_cs] = acc00;
    if (i0 < g.m && j1 < g.n) c[i0 * g.c_rs + j1 * g.c_cs] = acc01;
    if (i1 < g.m && j0 < g.n) c[i1 * g.c_rs + j0 * g.c_cs] = acc10;
    if (i1 < g.m && j1 < g.n) c[i1 * g.c_rs + j1 * g.c_cs] = acc11;
}

extern "C" __global__ void __launch_bounds__(256) small_gemm_f32(const float* a, const float* b, float* c, Gemm g) { small_gemm(a, b, c, g); }
extern "C" __global__ void __launch_bounds__(256) small_gemm_f64(const double* a, const double* b, double* c, Gemm g) { small_gemm(a, b, c, g); }

#define COPY(SN, ST, DN, DT) \
extern "C" __global__ void copy_##SN##_##DN(const ST* src, DT* dst, i64 n, View v) { copy(src, dst, n, v); }
#define FROM(SN, ST) COPY(SN, ST, f16, F16) COPY(SN, ST, bf16, BF16) COPY(SN, ST, f32, float) COPY(SN, ST, f64, double)
FROM(f16, F16) FROM(bf16, BF16) FROM(f32, float) FROM(f64, double)
"#;

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

/// Most blocks along the first grid dimension, and along the second and third.
const MAX_GRID_X: usize = i32::MAX as usize;
const MAX_GRID_YZ: usize = 65_535;
/// Largest inner dimension of a small matmul: each block walks all of k, so a longer k makes
/// one block slower than cuBLASLt's split kernels.
const SMALL_MATMUL_MAX_K: usize = 128;

/// The strided-view argument of the copy kernels (matches `struct View`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct View {
    shape: [i64; MAX_DIMS],
    src_strides: [i64; MAX_DIMS],
    dst_strides: [i64; MAX_DIMS],
    ndim: i32,
}

fn short(d: DType) -> &'static str {
    match d {
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        DType::F32 => "f32",
        DType::F64 => "f64",
    }
}

/// The loaded module and its functions.
#[derive(Debug)]
pub(crate) struct Kernels {
    copy: HashMap<(DType, DType), ds::CUfunction>,
    small_gemm_f32: ds::CUfunction,
    small_gemm_f64: ds::CUfunction,
}

// SAFETY: module and function handles are process-wide and usable from any thread with the
// device's context current.
unsafe impl Send for Kernels {}
// SAFETY: as above.
unsafe impl Sync for Kernels {}

fn nvrtc_err(op: &str, e: nr::NvrtcError) -> Error {
    Error::Cuda(format!("{op} failed: {:?}", e.0))
}

impl Kernels {
    /// Compiles the kernels for `device`'s architecture and loads them (context current).
    pub(crate) fn load(device: ds::CUdevice) -> Result<Kernels> {
        let attr = |a| {
            // SAFETY: reads one attribute of a valid device.
            unsafe { dr::device::get_attribute(device, a) }.cuda("cuDeviceGetAttribute")
        };
        let major = attr(ds::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?;
        let minor = attr(ds::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?;
        let src = CString::new(SOURCE).expect("kernel source has no NUL");
        let name = CString::new("pocaflow_kernels.cu").expect("no NUL");
        let prog = nr::create_program(&src, Some(&name))
            .map_err(|e| nvrtc_err("nvrtcCreateProgram", e))?;
        let arch = format!("--gpu-architecture=sm_{major}{minor}");
        // SAFETY: prog is a live program; options contain no NUL.
        let compiled = unsafe { nr::compile_program(prog, &[arch.as_str(), "--std=c++17"]) };
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
                        unsafe { CStr::from_ptr(l.as_ptr()) }
                            .to_string_lossy()
                            .into_owned()
                    })
                    .unwrap_or_default();
                Err(Error::Cuda(format!(
                    "NVRTC failed to compile pocaflow's kernels ({:?}): {log}",
                    e.0
                )))
            }
        };
        // SAFETY: prog is live and not used after this.
        let _ = unsafe { nr::destroy_program(prog) };
        let cubin = cubin?;
        // SAFETY: cubin is a complete CUBIN image; the device's context is current.
        let module = unsafe { dr::module::load_data(cubin.as_ptr() as *const c_void) }
            .cuda("cuModuleLoadData")?;
        let all = [DType::F16, DType::BF16, DType::F32, DType::F64];
        let mut copy = HashMap::new();
        for s in all {
            for d in all {
                let fname =
                    CString::new(format!("copy_{}_{}", short(s), short(d))).expect("no NUL");
                // SAFETY: module is loaded and holds this function.
                let f = unsafe { dr::module::get_function(module, fname) }
                    .cuda("cuModuleGetFunction")?;
                copy.insert((s, d), f);
            }
        }
        let function = |name: &str| {
            let name = CString::new(name).expect("no NUL");
            // SAFETY: module is loaded and holds this function.
            unsafe { dr::module::get_function(module, name) }.cuda("cuModuleGetFunction")
        };
        Ok(Kernels {
            copy,
            small_gemm_f32: function("small_gemm_f32")?,
            small_gemm_f64: function("small_gemm_f64")?,
        })
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
        let f = match dtype {
            DType::F32 => self.small_gemm_f32,
            DType::F64 => self.small_gemm_f64,
            _ => unreachable!("small_matmul_fits accepts only f32 and f64"),
        };
        let (mut a, mut b, mut c, mut g) = (a, b, c, g);
        let mut params = [
            &mut a as *mut u64 as *mut c_void,
            &mut b as *mut u64 as *mut c_void,
            &mut c as *mut u64 as *mut c_void,
            &mut g as *mut SmallGemm as *mut c_void,
        ];
        let grid = (
            (g.n as usize).div_ceil(32) as u32,
            (g.m as usize).div_ceil(32) as u32,
            batch as u32,
        );
        // SAFETY: for every batch index below `batch`, the kernel reads the m x k and k x n
        // matrices and writes the distinct elements of the m x n matrix that `g`'s strides
        // address from the given pointers, all inside their buffers (validated layouts); the
        // grid fits the device limits (small_matmul_fits) and the parameters match the
        // kernel signature.
        unsafe { dr::launch_kernel(f, grid, (16, 16, 1), 0, stream.raw, &mut params) }
            .cuda("cuLaunchKernel(small_gemm)")
    }

    /// Enqueues `dst[view dst] = src[view src]` (converted) on `stream`. Both layouts have the
    /// same shape; `dst`'s elements are distinct.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn copy(
        &self,
        stream: &StreamInner,
        src: u64,
        src_dtype: DType,
        src_layout: &Layout,
        dst: u64,
        dst_dtype: DType,
        dst_layout: &Layout,
    ) -> Result<()> {
        let n = src_layout.numel();
        if n == 0 {
            return Ok(());
        }
        let dims = merge_dims(src_layout, dst_layout);
        if dims.len() > MAX_DIMS {
            return Err(Error::Shape(format!(
                "a strided copy of shape {:?} has more than {MAX_DIMS} non-mergeable dimensions",
                src_layout.shape()
            )));
        }
        let mut view = View {
            shape: [1; MAX_DIMS],
            src_strides: [0; MAX_DIMS],
            dst_strides: [0; MAX_DIMS],
            ndim: dims.len() as i32,
        };
        for (k, &(n, s, d)) in dims.iter().enumerate() {
            view.shape[k] = n as i64;
            view.src_strides[k] = s as i64;
            view.dst_strides[k] = d as i64;
        }
        let mut src_ptr = src + (src_layout.offset() * src_dtype.size_in_bytes()) as u64;
        let mut dst_ptr = dst + (dst_layout.offset() * dst_dtype.size_in_bytes()) as u64;
        let mut count = n as i64;
        let mut params = [
            &mut src_ptr as *mut u64 as *mut c_void,
            &mut dst_ptr as *mut u64 as *mut c_void,
            &mut count as *mut i64 as *mut c_void,
            &mut view as *mut View as *mut c_void,
        ];
        let threads = 256u32;
        let blocks = n.div_ceil(threads as usize).min(65_535) as u32;
        let f = self.copy[&(src_dtype, dst_dtype)];
        // SAFETY: the kernel reads n elements of the source view and writes n distinct elements
        // of the destination view, both inside their buffers (the caller's layouts were
        // validated against them); the parameters match the kernel signature.
        unsafe {
            dr::launch_kernel(
                f,
                (blocks, 1, 1),
                (threads, 1, 1),
                0,
                stream.raw,
                &mut params,
            )
        }
        .cuda("cuLaunchKernel(copy)")
    }
}

/// The dimensions of a copy, without extent-1 dimensions and with neighbours merged where both
/// views step through them as one: `(extent, src stride, dst stride)`, outermost first.
fn merge_dims(src: &Layout, dst: &Layout) -> Vec<(usize, isize, isize)> {
    let mut dims: Vec<(usize, isize, isize)> = Vec::new();
    for ((&n, &s), &d) in src.shape().iter().zip(src.strides()).zip(dst.strides()) {
        if n == 1 {
            continue;
        }
        match dims.last_mut() {
            Some(last) if last.1 == s * n as isize && last.2 == d * n as isize => {
                *last = (last.0 * n, s, d);
            }
            _ => dims.push((n, s, d)),
        }
    }
    dims
}
