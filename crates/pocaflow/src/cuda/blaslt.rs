//! cuBLASLt matmul: one handle per device, one workspace per stream (a workspace may only be used
//! by one kernel at a time, so concurrent streams need their own; a program on one stream has
//! exactly one; at most [`MAX_WORKSPACES`] are kept, the least recently used is given back
//! first), and a plan per problem signature: the matmul descriptor, the matrix layouts and
//! the algorithm, chosen by cuBLASLt's heuristic with alignment preferences taken from the real
//! pointers and strides.
//!
//! The heuristic's first choice is not always the fastest. For problems large enough to matter
//! and small enough to time cheaply, the first call of a shape also enqueues timed runs of
//! every usable candidate (up to eight) into a scratch output, bracketed by events; a later
//! call of the shape, once those events have completed (checked without blocking), switches to
//! the fastest. Nothing waits on the host.

use super::context::DeviceState;
use super::driver::blas_err;
use super::memory::DeviceBuffer;
use super::stream::{RawEvent, StreamInner};
use crate::dtype::DType;
use crate::error::{Error, Result};
use cudarc::cublaslt::{result as lt, sys as lts};
use cudarc::driver::result as dr;
use std::collections::HashMap;
use std::ffi::c_void;
use std::hash::{BuildHasherDefault, Hasher};
use std::mem::size_of_val;
use std::sync::Arc;

/// Workspace bytes per stream (what cuBLAS itself uses on Hopper).
const WORKSPACE: usize = 32 << 20;
/// Workspaces kept per device. Returning one to the pool is safe while its stream still runs
/// kernels that use it: the pool hands a block to another stream only after that stream waits
/// for the block's own. That wait orders the new stream after all the work queued on the old
/// one, so the limit is generous: more streams than this taking turns lose some overlap.
const MAX_WORKSPACES: usize = 8;
/// Heuristic candidates asked for.
const CANDIDATES: usize = 8;
/// Shapes with fewer multiply-adds are not tuned (launch costs dominate them).
const TUNE_MIN_WORK: u64 = 1 << 27;
/// Shapes estimated to take longer than this per run are not tuned (tuning runs each
/// candidate three times once).
const TUNE_MAX_SECONDS: f64 = 3e-3;

/// A fast hasher for small integer keys (the multiply-rotate scheme of rustc's FxHash): plan
/// lookups happen on every matmul, and the keys are plain integers that need no DoS-resistant
/// hashing.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// One strided-batched, column-major GEMM `D = op(A) op(B)` as cuBLASLt sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PlanKey {
    /// The dtype of A and B (and of the bias).
    pub dtype: DType,
    /// The dtype of C and D: `dtype`, or float32 for float16 and bfloat16 operands.
    pub out: DType,
    pub tf32: bool,
    pub trans_a: bool,
    pub trans_b: bool,
    /// Rows of D.
    pub m: u64,
    /// Columns of D.
    pub n: u64,
    pub k: u64,
    /// Stored (column-major) shapes of A and B: rows, cols.
    pub a_dims: (u64, u64),
    pub b_dims: (u64, u64),
    pub lda: i64,
    pub ldb: i64,
    pub ldc: i64,
    pub batch: i32,
    pub stride_a: i64,
    pub stride_b: i64,
    pub stride_c: i64,
    pub align_a: u32,
    pub align_b: u32,
    pub align_c: u32,
    /// The fused epilogue; its bias (of the matrices' dtype) is set per call.
    pub epilogue: lts::cublasLtEpilogue_t,
}

/// Whether an epilogue reads or writes a bias vector.
fn uses_bias(e: lts::cublasLtEpilogue_t) -> bool {
    use lts::cublasLtEpilogue_t as E;
    !matches!(
        e,
        E::CUBLASLT_EPILOGUE_DEFAULT | E::CUBLASLT_EPILOGUE_RELU | E::CUBLASLT_EPILOGUE_GELU
    )
}

#[derive(Debug)]
struct Plan {
    desc: lts::cublasLtMatmulDesc_t,
    layouts: [lts::cublasLtMatrixLayout_t; 3],
    /// Usable algorithms with their workspace sizes, in the heuristic's order.
    candidates: Vec<(lts::cublasLtMatmulAlgo_t, usize)>,
    /// Index of the algorithm in use.
    chosen: usize,
    /// Timed runs in flight, if this shape is being tuned.
    tuning: Option<Tuning>,
}

/// Start and end events around the timed runs of each candidate, and the output they wrote.
#[derive(Debug)]
struct Tuning {
    timings: Vec<Option<(RawEvent, RawEvent)>>,
    _scratch: DeviceBuffer,
}

impl Tuning {
    /// The fastest candidate once every timed run has completed; `None` while any is pending.
    fn fastest(&self) -> Result<Option<usize>> {
        let Some(Some((_, last))) = self.timings.iter().rev().find(|t| t.is_some()) else {
            return Ok(Some(0));
        };
        if !last.query()? {
            return Ok(None);
        }
        let mut best = (0, f32::INFINITY);
        for (i, t) in self.timings.iter().enumerate() {
            if let Some((start, end)) = t {
                // SAFETY: both events are live, recorded and complete.
                if let Ok(ms) = unsafe { dr::event::elapsed(start.raw, end.raw) } {
                    if ms < best.1 {
                        best = (i, ms);
                    }
                }
            }
        }
        Ok(Some(best.0))
    }
}

impl Drop for Plan {
    fn drop(&mut self) {
        // SAFETY: the descriptors were created by this plan and are not used after it.
        unsafe {
            for l in self.layouts {
                let _ = lt::destroy_matrix_layout(l);
            }
            let _ = lt::destroy_matmul_desc(self.desc);
        }
    }
}

/// The cuBLASLt state of one device.
#[derive(Debug)]
pub(crate) struct BlasLt {
    handle: lts::cublasLtHandle_t,
    plans: FxMap<PlanKey, Plan>,
    /// Keys with a fused epilogue that cuBLASLt has no algorithm for.
    unsupported: FxMap<PlanKey, ()>,
    /// Keys whose plan [`BlasLt::has_plan`] made and that have not run yet (their first run
    /// starts the tuning).
    fresh: Vec<PlanKey>,
    /// `(stream id, workspace)`, most recently used last.
    workspaces: Vec<(u64, DeviceBuffer)>,
}

// SAFETY: the handle and descriptors are used only under the device's BlasLt mutex.
unsafe impl Send for BlasLt {}

fn data_type(d: DType) -> lts::cudaDataType {
    match d {
        DType::F16 => lts::cudaDataType::CUDA_R_16F,
        DType::BF16 => lts::cudaDataType::CUDA_R_16BF,
        DType::F32 => lts::cudaDataType::CUDA_R_32F,
        DType::F64 => lts::cudaDataType::CUDA_R_64F,
        _ => unreachable!("CudaStorage::matmul accepts float dtypes only"),
    }
}

/// The largest power of two (up to 256) dividing every address the GEMM touches first.
pub(crate) fn alignment(addr: u64, batch_stride_bytes: u64) -> u32 {
    let tz = (addr | batch_stride_bytes).trailing_zeros().min(8);
    1 << tz
}

impl BlasLt {
    /// A handle (in the current context) and empty caches.
    pub(crate) fn new() -> Result<BlasLt> {
        let handle = lt::create_handle().map_err(|e| blas_err("cublasLtCreate", e))?;
        Ok(BlasLt {
            handle,
            plans: FxMap::default(),
            unsupported: FxMap::default(),
            fresh: Vec::new(),
            workspaces: Vec::new(),
        })
    }

    fn make_plan(&self, key: &PlanKey) -> Result<Plan> {
        let err = |op: &'static str| move |e| blas_err(op, e);
        let (compute, scale) = match key.dtype {
            DType::F64 => (
                lts::cublasComputeType_t::CUBLAS_COMPUTE_64F,
                lts::cudaDataType::CUDA_R_64F,
            ),
            DType::F32 if key.tf32 => (
                lts::cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32,
                lts::cudaDataType::CUDA_R_32F,
            ),
            _ => (
                lts::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                lts::cudaDataType::CUDA_R_32F,
            ),
        };
        let desc =
            lt::create_matmul_desc(compute, scale).map_err(err("cublasLtMatmulDescCreate"))?;
        let mut plan = Plan {
            desc,
            layouts: [std::ptr::null_mut(); 3],
            candidates: Vec::new(),
            chosen: 0,
            tuning: None,
        };
        let op = |t: bool| i32::from(t);
        let (ta, tb) = (op(key.trans_a), op(key.trans_b));
        use lts::cublasLtMatmulDescAttributes_t as D;
        // SAFETY: desc is live; each value is read for its size during the call.
        unsafe {
            lt::set_matmul_desc_attribute(
                desc,
                D::CUBLASLT_MATMUL_DESC_TRANSA,
                &ta as *const i32 as *const c_void,
                4,
            )
            .map_err(err("cublasLtMatmulDescSetAttribute(TRANSA)"))?;
            lt::set_matmul_desc_attribute(
                desc,
                D::CUBLASLT_MATMUL_DESC_TRANSB,
                &tb as *const i32 as *const c_void,
                4,
            )
            .map_err(err("cublasLtMatmulDescSetAttribute(TRANSB)"))?;
            if key.epilogue != lts::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_DEFAULT {
                lt::set_matmul_desc_attribute(
                    desc,
                    D::CUBLASLT_MATMUL_DESC_EPILOGUE,
                    &key.epilogue as *const lts::cublasLtEpilogue_t as *const c_void,
                    size_of_val(&key.epilogue),
                )
                .map_err(err("cublasLtMatmulDescSetAttribute(EPILOGUE)"))?;
            }
            if uses_bias(key.epilogue) {
                let bias_type = data_type(key.dtype);
                lt::set_matmul_desc_attribute(
                    desc,
                    D::CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                    &bias_type as *const lts::cudaDataType as *const c_void,
                    size_of_val(&bias_type),
                )
                .map_err(err("cublasLtMatmulDescSetAttribute(BIAS_DATA_TYPE)"))?;
            }
        }
        let ty = data_type(key.dtype);
        let out_ty = data_type(key.out);
        let dims = [
            (key.a_dims.0, key.a_dims.1, key.lda, key.stride_a),
            (key.b_dims.0, key.b_dims.1, key.ldb, key.stride_b),
            (key.m, key.n, key.ldc, key.stride_c),
        ];
        for (slot, (rows, cols, ld, stride)) in dims.into_iter().enumerate() {
            let l = lt::create_matrix_layout(if slot == 2 { out_ty } else { ty }, rows, cols, ld)
                .map_err(err("cublasLtMatrixLayoutCreate"))?;
            plan.layouts[slot] = l;
            if key.batch > 1 {
                use lts::cublasLtMatrixLayoutAttribute_t as L;
                // SAFETY: l is live; values are read for their size.
                unsafe {
                    lt::set_matrix_layout_attribute(
                        l,
                        L::CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                        &key.batch as *const i32 as *const c_void,
                        4,
                    )
                    .map_err(err("cublasLtMatrixLayoutSetAttribute(BATCH_COUNT)"))?;
                    lt::set_matrix_layout_attribute(
                        l,
                        L::CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                        &stride as *const i64 as *const c_void,
                        8,
                    )
                    .map_err(err(
                        "cublasLtMatrixLayoutSetAttribute(STRIDED_BATCH_OFFSET)",
                    ))?;
                }
            }
        }
        let pref = lt::create_matmul_pref().map_err(err("cublasLtMatmulPreferenceCreate"))?;
        let found = self.heuristic(key, &plan, pref);
        // SAFETY: pref is live and not used after this.
        unsafe {
            let _ = lt::destroy_matmul_pref(pref);
        }
        plan.candidates = found?;
        Ok(plan)
    }

    fn heuristic(
        &self,
        key: &PlanKey,
        plan: &Plan,
        pref: lts::cublasLtMatmulPreference_t,
    ) -> Result<Vec<(lts::cublasLtMatmulAlgo_t, usize)>> {
        use lts::cublasLtMatmulPreferenceAttributes_t as P;
        let ws = WORKSPACE as u64;
        let err = |op: &'static str| move |e| blas_err(op, e);
        // SAFETY: pref is live; values are read for their size.
        unsafe {
            lt::set_matmul_pref_attribute(
                pref,
                P::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                &ws as *const u64 as *const c_void,
                8,
            )
            .map_err(err(
                "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)",
            ))?;
            for (attr, align) in [
                (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.align_a),
                (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.align_b),
                (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.align_c),
                (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.align_c),
            ] {
                lt::set_matmul_pref_attribute(
                    pref,
                    attr,
                    &align as *const u32 as *const c_void,
                    size_of_val(&align),
                )
                .map_err(err("cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT)"))?;
            }
        }
        // SAFETY: the result array has CANDIDATES entries; all descriptors are live.
        let mut results: [lts::cublasLtMatmulHeuristicResult_t; CANDIDATES] =
            unsafe { std::mem::zeroed() };
        let mut count = 0i32;
        let [la, lb, lc] = plan.layouts;
        // SAFETY: as above.
        unsafe {
            lts::cublasLtMatmulAlgoGetHeuristic(
                self.handle,
                plan.desc,
                la,
                lb,
                lc,
                lc,
                pref,
                CANDIDATES as i32,
                results.as_mut_ptr(),
                &mut count,
            )
        }
        .result()
        .map_err(err("cublasLtMatmulAlgoGetHeuristic"))?;
        let usable: Vec<_> = results[..count.max(0) as usize]
            .iter()
            .filter(|r| {
                r.state == lts::cublasStatus_t::CUBLAS_STATUS_SUCCESS
                    && r.workspaceSize <= WORKSPACE
            })
            .map(|r| (r.algo, r.workspaceSize))
            .collect();
        if usable.is_empty() {
            return Err(Error::Cuda(format!(
                "cuBLASLt has no algorithm for a {} matmul of {}x{}x{} (batch {}) into {}",
                key.dtype, key.m, key.n, key.k, key.batch, key.out
            )));
        }
        Ok(usable)
    }

    /// The workspace of `stream`: its own (marked most recently used), or a new one, which
    /// first gives back the least recently used if [`MAX_WORKSPACES`] are held.
    fn workspace(&mut self, device: &Arc<DeviceState>, stream: &Arc<StreamInner>) -> Result<u64> {
        let last = self.workspaces.len().wrapping_sub(1);
        match self.workspaces.iter().position(|(id, _)| *id == stream.id) {
            Some(i) if i == last => {}
            Some(i) => {
                let entry = self.workspaces.remove(i);
                self.workspaces.push(entry);
            }
            None => {
                if self.workspaces.len() >= MAX_WORKSPACES {
                    self.workspaces.remove(0);
                }
                let ws = DeviceBuffer::alloc(device, WORKSPACE, WORKSPACE, stream)?;
                self.workspaces.push((stream.id, ws));
            }
        }
        Ok(self.workspaces.last().expect("pushed above").1.ptr())
    }

    /// Whether cuBLASLt has an algorithm for `key`, making (and caching) its plan if there is
    /// none yet; a key it has none for is remembered as such.
    pub(crate) fn has_plan(&mut self, key: &PlanKey) -> bool {
        if self.plans.contains_key(key) {
            return true;
        }
        if self.unsupported.contains_key(key) {
            return false;
        }
        match self.make_plan(key) {
            Ok(plan) => {
                self.plans.insert(*key, plan);
                self.fresh.push(*key);
                true
            }
            Err(_) => {
                self.unsupported.insert(*key, ());
                false
            }
        }
    }

    /// Enqueues `D = epilogue(op(A) op(B))` for `key` on `stream`, or `D = epilogue(op(A)
    /// op(B) + D)` when `accumulate` (pointers already at element 0 of the first matrix of the
    /// batch; `bias` the bias vector's address when the epilogue has one).
    pub(crate) fn matmul(
        &mut self,
        device: &Arc<DeviceState>,
        stream: &Arc<StreamInner>,
        key: &PlanKey,
        (a, b, c): (u64, u64, u64),
        bias: u64,
        accumulate: bool,
    ) -> Result<()> {
        let ws = self.workspace(device, stream)?;
        let handle = self.handle;
        let made_by_check = self.fresh.iter().position(|k| k == key);
        let fresh = made_by_check.is_some() || !self.plans.contains_key(key);
        if let Some(i) = made_by_check {
            self.fresh.swap_remove(i);
        } else if fresh {
            let plan = self.make_plan(key)?;
            self.plans.insert(*key, plan);
        }
        let plan = self.plans.get_mut(key).expect("inserted above");
        if uses_bias(key.epilogue) {
            // SAFETY: the descriptor is live and used under this state's lock only; the value
            // is read for its size during the call (launches read the pointer when enqueued).
            unsafe {
                lt::set_matmul_desc_attribute(
                    plan.desc,
                    lts::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                    &bias as *const u64 as *const c_void,
                    size_of_val(&bias),
                )
            }
            .map_err(|e| blas_err("cublasLtMatmulDescSetAttribute(BIAS_POINTER)", e))?;
        }
        if let Some(tuning) = &plan.tuning {
            if let Some(best) = tuning.fastest()? {
                plan.chosen = best;
                plan.tuning = None;
            }
        }
        let run = |plan: &Plan, i: usize, out: u64, accumulate: bool| {
            launch(
                handle,
                plan,
                i,
                key.dtype,
                (a, b, out),
                ws,
                stream,
                accumulate,
            )
        };
        run(plan, plan.chosen, c, accumulate)?;
        if fresh && worth_tuning(key) && plan.candidates.len() > 1 {
            // Time every usable candidate on a scratch output; a later call picks the fastest.
            let elems = key.stride_c.unsigned_abs() * (key.batch.max(1) as u64 - 1)
                + key.ldc as u64 * (key.n - 1)
                + key.m;
            let bytes = elems as usize * key.out.size_in_bytes();
            let scratch = DeviceBuffer::alloc(device, elems as usize, bytes, stream)?;
            let mut timings = Vec::new();
            for i in 0..plan.candidates.len() {
                let timed = (|| -> Result<(RawEvent, RawEvent)> {
                    run(plan, i, scratch.ptr(), false)?; // warm-up
                    let (start, end) = (RawEvent::new(device, true)?, RawEvent::new(device, true)?);
                    start.record(stream)?;
                    run(plan, i, scratch.ptr(), false)?;
                    run(plan, i, scratch.ptr(), false)?;
                    end.record(stream)?;
                    Ok((start, end))
                })();
                // A candidate that fails to run is simply not chosen.
                timings.push(timed.ok());
            }
            plan.tuning = Some(Tuning {
                timings,
                _scratch: scratch,
            });
        }
        Ok(())
    }
}

/// Whether a shape gains from timing its candidates: enough work that a better kernel shows,
/// little enough that timing each candidate three times is cheap.
fn worth_tuning(key: &PlanKey) -> bool {
    let work = key.m * key.n * key.k * key.batch.max(1) as u64;
    let peak = match key.dtype {
        DType::F16 | DType::BF16 => 700e12,
        DType::F32 if key.tf32 => 350e12,
        _ => 50e12,
    };
    work >= TUNE_MIN_WORK && 2.0 * work as f64 / peak <= TUNE_MAX_SECONDS
}

/// Enqueues one `cublasLtMatmul` of `plan` with candidate `i`, writing `out`, or adding to
/// it when `accumulate` (beta = 1).
#[allow(clippy::too_many_arguments)]
fn launch(
    handle: lts::cublasLtHandle_t,
    plan: &Plan,
    i: usize,
    dtype: DType,
    (a, b, out): (u64, u64, u64),
    ws: u64,
    stream: &StreamInner,
    accumulate: bool,
) -> Result<()> {
    let beta = f64::from(u8::from(accumulate));
    let (one64, beta64, one32, beta32) = (1.0f64, beta, 1.0f32, beta as f32);
    let (alpha, beta) = if dtype == DType::F64 {
        (
            &one64 as *const f64 as *const c_void,
            &beta64 as *const f64 as *const c_void,
        )
    } else {
        (
            &one32 as *const f32 as *const c_void,
            &beta32 as *const f32 as *const c_void,
        )
    };
    let [la, lb, lc] = plan.layouts;
    let (algo, ws_size) = &plan.candidates[i];
    // SAFETY: the plan's descriptors describe the matrices at a, b and out, which the caller
    // guarantees are live device memory of those extents (C is read only when accumulating,
    // and then holds the earlier products); the workspace is this stream's own, so no other
    // kernel uses it concurrently.
    unsafe {
        lts::cublasLtMatmul(
            handle,
            plan.desc,
            alpha,
            a as *const c_void,
            la,
            b as *const c_void,
            lb,
            beta,
            out as *const c_void,
            lc,
            out as *mut c_void,
            lc,
            algo,
            ws as *mut c_void,
            *ws_size,
            stream.raw as lts::cudaStream_t,
        )
    }
    .result()
    .map_err(|e| blas_err("cublasLtMatmul", e))
}
