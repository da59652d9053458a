//! NCCL collectives on device buffers: communicators (one rank of many processes, or every
//! device of one process), all-reduce, broadcast, reduce, all-gather, reduce-scatter,
//! point-to-point send and receive, and groups. Every call only enqueues work on the current
//! stream of the communicator's device; nothing here waits for the GPU.
//!
//! NCCL is loaded on first use, by its soname: `libnccl.so.2` (the system install or the
//! `nvidia-nccl` pip wheel, which the Python package preloads), then `libnccl.so`. cudarc's
//! own NCCL loader does not try `libnccl.so.2`, so the twenty entry points used here
//! are looked up with `libloading` (the loader cudarc itself uses) and the rest of cudarc's NCCL
//! module is not built.
//!
//! A rank of a group of processes ([`Comm::init_rank`]) is a non-blocking communicator
//! (`ncclCommInitRankConfig` with `blocking = 0`): no NCCL call waits inside NCCL for the
//! other ranks. A call that cannot finish at once (the init, which needs every rank; a first
//! collective that connects to its peers; the end of a group) returns `ncclInProgress`, and
//! this module polls `ncclCommGetAsyncError` until the communicator is ready again. Past the
//! communicator's timeout it aborts the communicator (`ncclCommAbort`) and fails, so a rank
//! that died or never came makes the others fail instead of hanging. The communicators of one
//! process driving several devices ([`Comm::init_all`]) are blocking ones: they have no peer
//! that can go missing.

use super::context::{device, DeviceState};
use super::storage::{context, CudaStorage};
use crate::backend::BackendStorage;
use crate::dtype::DType;
use crate::error::{Error, Result};
use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// `ncclResult_t`.
type Status = c_int;
/// `ncclComm_t`.
type RawComm = *mut c_void;
/// `cudaStream_t` (the driver's `CUstream`).
type RawStream = *mut c_void;

/// `ncclInProgress`: a non-blocking communicator's call is still running.
const IN_PROGRESS: Status = 7;

/// `ncclConfig_t` as NCCL 2.17 declared it (NCCL reads the fields of the version it is
/// given and takes its defaults for the rest).
#[repr(C)]
struct Config {
    size: usize,
    magic: c_uint,
    version: c_uint,
    blocking: c_int,
    cga_cluster_size: c_int,
    min_ctas: c_int,
    max_ctas: c_int,
    net_name: *const c_char,
    split_share: c_int,
}

impl Config {
    /// `NCCL_CONFIG_INITIALIZER` of NCCL 2.17 with `blocking = 0`.
    fn non_blocking() -> Config {
        /// `NCCL_CONFIG_UNDEF_INT`: NCCL's default.
        const UNSET: c_int = c_int::MIN;
        Config {
            size: std::mem::size_of::<Config>(),
            magic: 0xcafe_beef,
            version: 21700,
            blocking: 0,
            cga_cluster_size: UNSET,
            min_ctas: UNSET,
            max_ctas: UNSET,
            net_name: std::ptr::null(),
            split_share: UNSET,
        }
    }
}

/// The 128 bytes that name one communicator to all of its ranks (`ncclUniqueId`), made by one
/// rank and passed to the others out of band.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UniqueId(pub [u8; 128]);

impl std::fmt::Debug for UniqueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UniqueId(..)")
    }
}

/// How a reducing collective combines the ranks' elements (`ncclRedOp_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// The sum.
    Sum = 0,
    /// The product.
    Prod = 1,
    /// The largest element.
    Max = 2,
    /// The smallest element.
    Min = 3,
    /// The mean (the sum divided by the number of ranks); float dtypes only.
    Avg = 4,
}

/// The NCCL entry points pocaflow calls.
struct Api {
    get_version: unsafe extern "C" fn(*mut c_int) -> Status,
    get_unique_id: unsafe extern "C" fn(*mut UniqueId) -> Status,
    init_rank_config:
        unsafe extern "C" fn(*mut RawComm, c_int, UniqueId, c_int, *mut Config) -> Status,
    init_all: unsafe extern "C" fn(*mut RawComm, c_int, *const c_int) -> Status,
    finalize: unsafe extern "C" fn(RawComm) -> Status,
    destroy: unsafe extern "C" fn(RawComm) -> Status,
    abort: unsafe extern "C" fn(RawComm) -> Status,
    async_error: unsafe extern "C" fn(RawComm, *mut Status) -> Status,
    error_string: unsafe extern "C" fn(Status) -> *const c_char,
    last_error: unsafe extern "C" fn(RawComm) -> *const c_char,
    all_reduce: unsafe extern "C" fn(
        *const c_void,
        *mut c_void,
        usize,
        c_int,
        c_int,
        RawComm,
        RawStream,
    ) -> Status,
    broadcast: unsafe extern "C" fn(
        *const c_void,
        *mut c_void,
        usize,
        c_int,
        c_int,
        RawComm,
        RawStream,
    ) -> Status,
    reduce: unsafe extern "C" fn(
        *const c_void,
        *mut c_void,
        usize,
        c_int,
        c_int,
        c_int,
        RawComm,
        RawStream,
    ) -> Status,
    all_gather: unsafe extern "C" fn(
        *const c_void,
        *mut c_void,
        usize,
        c_int,
        RawComm,
        RawStream,
    ) -> Status,
    reduce_scatter: unsafe extern "C" fn(
        *const c_void,
        *mut c_void,
        usize,
        c_int,
        c_int,
        RawComm,
        RawStream,
    ) -> Status,
    send: unsafe extern "C" fn(*const c_void, usize, c_int, c_int, RawComm, RawStream) -> Status,
    recv: unsafe extern "C" fn(*mut c_void, usize, c_int, c_int, RawComm, RawStream) -> Status,
    group_start: unsafe extern "C" fn() -> Status,
    group_end: unsafe extern "C" fn() -> Status,
    /// Keeps the function pointers above valid.
    _lib: libloading::Library,
}

/// The sonames tried, in order.
const LIBRARY_NAMES: [&str; 2] = ["libnccl.so.2", "libnccl.so"];

impl Api {
    fn load() -> Result<Api> {
        let lib = LIBRARY_NAMES
            .iter()
            // SAFETY: loading NCCL runs only its initializers, which have no preconditions.
            .find_map(|name| unsafe { libloading::Library::new(*name) }.ok())
            .ok_or_else(|| {
                Error::Device(
                    "NCCL is not available: libnccl.so.2 was not found (install NCCL or the \
                     nvidia-nccl-cu13 pip wheel)"
                        .into(),
                )
            })?;
        macro_rules! sym {
            ($name:literal) => {
                // SAFETY: the symbol is NCCL's C function of that name, whose signature is the
                // field's type (nccl.h); the pointer stays valid while `_lib` is kept.
                *unsafe { lib.get($name) }
                    .map_err(|e| Error::Device(format!("NCCL is not usable: {}: {e}", $name)))?
            };
        }
        Ok(Api {
            get_version: sym!("ncclGetVersion"),
            get_unique_id: sym!("ncclGetUniqueId"),
            init_rank_config: sym!("ncclCommInitRankConfig"),
            init_all: sym!("ncclCommInitAll"),
            finalize: sym!("ncclCommFinalize"),
            destroy: sym!("ncclCommDestroy"),
            abort: sym!("ncclCommAbort"),
            async_error: sym!("ncclCommGetAsyncError"),
            error_string: sym!("ncclGetErrorString"),
            last_error: sym!("ncclGetLastError"),
            all_reduce: sym!("ncclAllReduce"),
            broadcast: sym!("ncclBroadcast"),
            reduce: sym!("ncclReduce"),
            all_gather: sym!("ncclAllGather"),
            reduce_scatter: sym!("ncclReduceScatter"),
            send: sym!("ncclSend"),
            recv: sym!("ncclRecv"),
            group_start: sym!("ncclGroupStart"),
            group_end: sym!("ncclGroupEnd"),
            _lib: lib,
        })
    }

    /// `Ok` for success, else an error naming `op`, NCCL's status and its last message.
    fn check(&self, op: &str, status: Status, comm: RawComm) -> Result<()> {
        if status == 0 {
            return Ok(());
        }
        // SAFETY: both return static (or per-communicator) NUL-terminated strings, read at once;
        // a null communicator asks for the last error of any.
        let (name, detail) = unsafe {
            (
                CStr::from_ptr((self.error_string)(status)),
                CStr::from_ptr((self.last_error)(comm)),
            )
        };
        let detail = detail.to_string_lossy();
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(" ({detail})")
        };
        Err(Error::Cuda(format!(
            "{op} failed: {}{detail}",
            name.to_string_lossy()
        )))
    }
}

// SAFETY: the struct holds function pointers and the library handle, all usable from any thread.
unsafe impl Send for Api {}
// SAFETY: as above; nothing in it is mutated after loading.
unsafe impl Sync for Api {}

/// NCCL's entry points, loaded on first use.
fn api() -> Result<&'static Api> {
    static API: OnceLock<Result<Api>> = OnceLock::new();
    API.get_or_init(Api::load).as_ref().map_err(Clone::clone)
}

/// The loaded NCCL's version as `major * 10000 + minor * 100 + patch` (22704 for 2.27.4).
///
/// # Errors
/// [`Error::Device`] if NCCL is not installed.
pub fn version() -> Result<i32> {
    let api = api()?;
    let mut v = 0;
    // SAFETY: writes one int.
    api.check(
        "ncclGetVersion",
        unsafe { (api.get_version)(&mut v) },
        std::ptr::null_mut(),
    )?;
    Ok(v)
}

/// A new communicator name, for one rank to make and send to the others.
///
/// # Errors
/// [`Error::Device`] if NCCL is not installed; NCCL errors (no network interface, say).
pub fn unique_id() -> Result<UniqueId> {
    let api = api()?;
    let mut id = UniqueId([0; 128]);
    // SAFETY: writes the 128 bytes of one ncclUniqueId.
    let status = unsafe { (api.get_unique_id)(&mut id) };
    api.check("ncclGetUniqueId", status, std::ptr::null_mut())?;
    Ok(id)
}

thread_local! {
    /// This thread's depth of NCCL groups, and the communicators called inside the outermost
    /// one (kept alive until its end has polled them).
    static GROUP: RefCell<(usize, Vec<Arc<Handle>>)> = const { RefCell::new((0, Vec::new())) };
}

/// Starts a group: the collectives and point-to-point calls up to [`group_end`] run as one
/// NCCL operation (needed when one thread drives several devices, or pairs sends with receives).
///
/// # Errors
/// [`Error::Device`] if NCCL is not installed.
pub fn group_start() -> Result<()> {
    let api = api()?;
    // SAFETY: no arguments; NCCL keeps the group depth per thread.
    api.check(
        "ncclGroupStart",
        unsafe { (api.group_start)() },
        std::ptr::null_mut(),
    )?;
    GROUP.with(|g| g.borrow_mut().0 += 1);
    Ok(())
}

/// Ends the group of [`group_start`], launching its work; the outermost end waits (on the
/// host) until each communicator called in the group has taken its share, within that
/// communicator's timeout.
///
/// # Errors
/// NCCL errors of the grouped calls; a communicator past its timeout (then aborted).
pub fn group_end() -> Result<()> {
    let api = api()?;
    let pending = GROUP.with(|g| {
        let mut g = g.borrow_mut();
        g.0 = g.0.saturating_sub(1);
        if g.0 == 0 {
            std::mem::take(&mut g.1)
        } else {
            Vec::new()
        }
    });
    // SAFETY: as group_start.
    let status = unsafe { (api.group_end)() };
    if status != IN_PROGRESS {
        api.check("ncclGroupEnd", status, std::ptr::null_mut())?;
    }
    pending.iter().try_for_each(|h| h.wait("ncclGroupEnd"))
}

/// Inside a group, keeps `handle` for the outermost end to poll; `false` outside groups.
fn defer_to_group(handle: &Arc<Handle>) -> bool {
    GROUP.with(|g| {
        let (depth, pending) = &mut *g.borrow_mut();
        if *depth == 0 {
            return false;
        }
        if !pending.iter().any(|h| Arc::ptr_eq(h, handle)) {
            pending.push(handle.clone());
        }
        true
    })
}

/// The NCCL type of `dtype`, if NCCL reduces it.
fn reduce_type(dtype: DType) -> Option<c_int> {
    Some(match dtype {
        DType::I8 => 0,
        DType::U8 => 1,
        DType::I32 => 2,
        DType::U32 => 3,
        DType::I64 => 4,
        DType::U64 => 5,
        DType::F16 => 6,
        DType::F32 => 7,
        DType::F64 => 8,
        DType::BF16 => 9,
        _ => return None,
    })
}

/// `ncclInt8`: moves that do not reduce send any dtype as bytes.
const BYTES: c_int = 0;

/// An NCCL communicator handle: null once aborted or destroyed.
#[derive(Debug)]
struct Handle {
    raw: AtomicPtr<c_void>,
    /// How long a call may stay in progress (`None`: blocking communicators, never).
    timeout: Option<Duration>,
    rank: usize,
}

// SAFETY: an NCCL communicator may be used from any thread, one call at a time: the owning
// `Comm` is not Sync, and the handles a thread's group keeps are polled by that thread.
unsafe impl Send for Handle {}
// SAFETY: as above; the pointer itself is atomic.
unsafe impl Sync for Handle {}

impl Handle {
    /// The live communicator.
    fn raw(&self) -> Result<RawComm> {
        let raw = self.raw.load(Ordering::Acquire);
        if raw.is_null() {
            return Err(Error::Cuda(format!(
                "rank {}: the NCCL communicator was aborted",
                self.rank
            )));
        }
        Ok(raw)
    }

    /// Polls until no call of this communicator is in progress: `Ok` when the last one
    /// succeeded, its error when it failed, and, past the timeout, an error after aborting.
    fn wait(&self, op: &str) -> Result<()> {
        let api = api()?;
        let raw = self.raw()?;
        let start = Instant::now();
        let mut polls = 0u32;
        loop {
            let mut state = 0;
            // SAFETY: a live communicator; writes one status.
            let query = unsafe { (api.async_error)(raw, &mut state) };
            api.check("ncclCommGetAsyncError", query, raw)?;
            if state != IN_PROGRESS {
                return api.check(op, state, raw);
            }
            if let Some(limit) = self.timeout.filter(|&t| start.elapsed() > t) {
                let aborted = match self.abort() {
                    Ok(()) => "the communicator was aborted".to_string(),
                    Err(e) => format!("aborting the communicator failed too: {e}"),
                };
                return Err(Error::Cuda(format!(
                    "rank {}: {op} did not complete within {} s (a rank died or never \
                     joined?); {aborted}",
                    self.rank,
                    limit.as_secs_f64()
                )));
            }
            // Spin briefly (most calls finish within microseconds), then sleep between polls.
            if polls < 1000 {
                polls += 1;
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    }

    /// Aborts the communicator (if it is still live).
    fn abort(&self) -> Result<()> {
        let raw = self.raw.swap(std::ptr::null_mut(), Ordering::AcqRel);
        if raw.is_null() {
            return Ok(());
        }
        let api = api()?;
        // SAFETY: the communicator was live and is released only here (the pointer was taken).
        api.check(
            "ncclCommAbort",
            unsafe { (api.abort)(raw) },
            std::ptr::null_mut(),
        )
    }

    /// Finishes the communicator's work (within the timeout) and releases it.
    fn destroy(&self) -> Result<()> {
        let raw = self.raw.load(Ordering::Acquire);
        if raw.is_null() {
            return Ok(());
        }
        let api = api()?;
        // SAFETY: a live communicator; its pending work is flushed.
        let status = unsafe { (api.finalize)(raw) };
        if status == IN_PROGRESS {
            self.wait("ncclCommFinalize")?;
        } else if let Err(e) = api.check("ncclCommFinalize", status, raw) {
            self.abort()?;
            return Err(e);
        }
        let raw = self.raw.swap(std::ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: finalized, and released only here (the pointer was taken).
        api.check(
            "ncclCommDestroy",
            unsafe { (api.destroy)(raw) },
            std::ptr::null_mut(),
        )
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.destroy();
    }
}

/// One rank of an NCCL communicator, on one device.
#[derive(Debug)]
pub(crate) struct Comm {
    handle: Arc<Handle>,
    device: Arc<DeviceState>,
    size: usize,
}

/// The bytes of `count` elements of `dtype`.
fn bytes_of(dtype: DType, count: usize) -> usize {
    count * dtype.size_in_bytes()
}

impl Comm {
    /// Rank `rank` of a communicator of `size` ranks named `id`, on device `ordinal`, a
    /// non-blocking one whose calls may stay in progress for `timeout`. Returns when every
    /// rank has joined.
    ///
    /// # Errors
    /// [`Error::Device`] if NCCL or the device is not available; NCCL errors; a rank that does
    /// not join within `timeout`.
    pub(crate) fn init_rank(
        ordinal: usize,
        size: usize,
        id: &UniqueId,
        rank: usize,
        timeout: Duration,
    ) -> Result<Comm> {
        let api = api()?;
        let d = device(ordinal)?;
        d.bind()?;
        let mut raw = std::ptr::null_mut();
        let mut config = Config::non_blocking();
        // SAFETY: writes one communicator handle; the id is passed by value as nccl.h
        // declares, the config by pointer (read during the call).
        let status = unsafe {
            (api.init_rank_config)(&mut raw, size as c_int, *id, rank as c_int, &mut config)
        };
        if status != IN_PROGRESS {
            api.check("ncclCommInitRankConfig", status, std::ptr::null_mut())?;
        }
        let handle = Arc::new(Handle {
            raw: AtomicPtr::new(raw),
            timeout: Some(timeout),
            rank,
        });
        handle.wait("ncclCommInitRankConfig (joining the other ranks)")?;
        Ok(Comm {
            handle,
            device: d,
            size,
        })
    }

    /// One communicator per device of `ordinals` (rank `i` on `ordinals[i]`), driven by this
    /// process.
    ///
    /// # Errors
    /// As [`Comm::init_rank`].
    pub(crate) fn init_all(ordinals: &[usize]) -> Result<Vec<Comm>> {
        let api = api()?;
        let devices = ordinals
            .iter()
            .map(|&o| device(o))
            .collect::<Result<Vec<_>>>()?;
        let list: Vec<c_int> = ordinals.iter().map(|&o| o as c_int).collect();
        let mut raw = vec![std::ptr::null_mut(); list.len()];
        // SAFETY: writes `list.len()` handles into `raw`, reading as many ordinals from `list`.
        let status =
            unsafe { (api.init_all)(raw.as_mut_ptr(), list.len() as c_int, list.as_ptr()) };
        api.check("ncclCommInitAll", status, std::ptr::null_mut())?;
        let size = list.len();
        Ok(raw
            .into_iter()
            .zip(devices)
            .enumerate()
            .map(|(rank, (raw, device))| Comm {
                handle: Arc::new(Handle {
                    raw: AtomicPtr::new(raw),
                    timeout: None,
                    rank,
                }),
                device,
                size,
            })
            .collect())
    }

    /// This communicator's rank.
    pub(crate) fn rank(&self) -> usize {
        self.handle.rank
    }

    /// The number of ranks.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The device ordinal.
    pub(crate) fn ordinal(&self) -> usize {
        self.device.ordinal
    }

    /// Aborts the communicator: pending and future operations on it fail instead of waiting
    /// for ranks that are gone.
    ///
    /// # Errors
    /// NCCL errors.
    pub(crate) fn abort(self) -> Result<()> {
        self.handle.abort()
    }

    /// Finishes the communicator's pending work and releases it (a non-blocking one waits at
    /// most its timeout, then aborts).
    ///
    /// # Errors
    /// NCCL errors; work not finished within the timeout.
    pub(crate) fn destroy(self) -> Result<()> {
        self.handle.destroy()
    }

    /// The error of an earlier operation that failed on the GPU or the network, if any.
    ///
    /// # Errors
    /// That error.
    pub(crate) fn async_error(&self) -> Result<()> {
        let api = api()?;
        let raw = self.handle.raw()?;
        let mut status = 0;
        // SAFETY: a live communicator; writes one status.
        let query = unsafe { (api.async_error)(raw, &mut status) };
        api.check("ncclCommGetAsyncError", query, raw)?;
        if status == IN_PROGRESS {
            return Ok(());
        }
        api.check("an earlier NCCL operation", status, raw)
    }

    /// Runs one NCCL call (`call` gets the API, the communicator and the current stream of
    /// this device), checks its status (waiting while it is in progress, or, inside a group,
    /// leaving that to the group's end), and notes `bufs` as used on that stream.
    fn launch(
        &self,
        op: &str,
        bufs: &[&CudaStorage],
        call: impl FnOnce(&Api, RawComm, RawStream) -> Status,
    ) -> Result<()> {
        let api = api()?;
        let raw = self.handle.raw()?;
        let (_, stream) = context(self.ordinal())?;
        let status = call(api, raw, stream.raw as RawStream);
        if status != IN_PROGRESS {
            api.check(op, status, raw)?;
        }
        for buf in bufs {
            buf.record_use(&stream);
        }
        if defer_to_group(&self.handle) {
            Ok(())
        } else if status == IN_PROGRESS {
            self.handle.wait(op)
        } else {
            Ok(())
        }
    }

    /// `op`'s NCCL type for `dtype`.
    fn reduce_type(op: &str, dtype: DType, how: Reduction) -> Result<c_int> {
        let t = reduce_type(dtype).ok_or_else(|| {
            Error::DType(format!("{op}: NCCL cannot reduce {dtype} (float and integer dtypes of 8, 32 and 64 bits only)"))
        })?;
        if how == Reduction::Avg && !dtype.is_float() {
            return Err(Error::DType(format!(
                "{op}: op=\"avg\" needs a float dtype, got {dtype}"
            )));
        }
        Ok(t)
    }

    /// `recv[..count]` (from element `recv.1`) = the reduction over ranks of `send[..count]`
    /// (the buffers may be the same, for an in-place reduction).
    pub(crate) fn all_reduce(
        &self,
        send: (&CudaStorage, usize),
        recv: (&CudaStorage, usize),
        count: usize,
        how: Reduction,
    ) -> Result<()> {
        let t = Self::reduce_type("all_reduce", recv.0.dtype(), how)?;
        let (s, r) = (
            send.0.at(send.1) as *const c_void,
            recv.0.at(recv.1) as *mut c_void,
        );
        self.launch("ncclAllReduce", &[send.0, recv.0], |api, comm, stream| {
            // SAFETY: both ranges lie in live device buffers of this device (the caller checked
            // their lengths); the work is ordered on `stream`, which `launch` records on them.
            unsafe { (api.all_reduce)(s, r, count, t, how as c_int, comm, stream) }
        })
    }

    /// `recv[..count] = send[..count]` of rank `root` on every rank (`send` is read on the root
    /// only).
    pub(crate) fn broadcast(
        &self,
        send: (&CudaStorage, usize),
        recv: (&CudaStorage, usize),
        count: usize,
        root: usize,
    ) -> Result<()> {
        let bytes = bytes_of(recv.0.dtype(), count);
        let (s, r) = (
            send.0.at(send.1) as *const c_void,
            recv.0.at(recv.1) as *mut c_void,
        );
        self.launch("ncclBroadcast", &[send.0, recv.0], |api, comm, stream| {
            // SAFETY: as all_reduce, with the elements moved as bytes.
            unsafe { (api.broadcast)(s, r, bytes, BYTES, root as c_int, comm, stream) }
        })
    }

    /// The reduction over ranks of `send[..count]` into `recv[..count]` of rank `root` only.
    pub(crate) fn reduce(
        &self,
        send: (&CudaStorage, usize),
        recv: (&CudaStorage, usize),
        count: usize,
        how: Reduction,
        root: usize,
    ) -> Result<()> {
        let t = Self::reduce_type("reduce", recv.0.dtype(), how)?;
        let (s, r) = (
            send.0.at(send.1) as *const c_void,
            recv.0.at(recv.1) as *mut c_void,
        );
        let (how, root) = (how as c_int, root as c_int);
        self.launch("ncclReduce", &[send.0, recv.0], |api, comm, stream| {
            // SAFETY: as all_reduce.
            unsafe { (api.reduce)(s, r, count, t, how, root, comm, stream) }
        })
    }

    /// `recv[r * count..][..count] = send[..count]` of rank `r`, for every rank.
    pub(crate) fn all_gather(
        &self,
        send: (&CudaStorage, usize),
        recv: (&CudaStorage, usize),
        count: usize,
    ) -> Result<()> {
        let bytes = bytes_of(recv.0.dtype(), count);
        let (s, r) = (
            send.0.at(send.1) as *const c_void,
            recv.0.at(recv.1) as *mut c_void,
        );
        self.launch("ncclAllGather", &[send.0, recv.0], |api, comm, stream| {
            // SAFETY: as all_reduce; `recv` holds `size * count` elements (checked by the
            // caller).
            unsafe { (api.all_gather)(s, r, bytes, BYTES, comm, stream) }
        })
    }

    /// `recv[..count]` = the reduction over ranks of `send[rank * count..][..count]`.
    pub(crate) fn reduce_scatter(
        &self,
        send: (&CudaStorage, usize),
        recv: (&CudaStorage, usize),
        count: usize,
        how: Reduction,
    ) -> Result<()> {
        let t = Self::reduce_type("reduce_scatter", recv.0.dtype(), how)?;
        let (s, r) = (
            send.0.at(send.1) as *const c_void,
            recv.0.at(recv.1) as *mut c_void,
        );
        self.launch(
            "ncclReduceScatter",
            &[send.0, recv.0],
            |api, comm, stream| {
                // SAFETY: as all_reduce; `send` holds `size * count` elements (checked by the
                // caller).
                unsafe { (api.reduce_scatter)(s, r, count, t, how as c_int, comm, stream) }
            },
        )
    }

    /// Sends `count` elements from element `buf.1` to rank `peer` (matched by its
    /// [`Comm::recv`]).
    pub(crate) fn send(&self, buf: (&CudaStorage, usize), count: usize, peer: usize) -> Result<()> {
        let bytes = bytes_of(buf.0.dtype(), count);
        let p = buf.0.at(buf.1) as *const c_void;
        self.launch("ncclSend", &[buf.0], |api, comm, stream| {
            // SAFETY: as all_reduce.
            unsafe { (api.send)(p, bytes, BYTES, peer as c_int, comm, stream) }
        })
    }

    /// Receives `count` elements from rank `peer` into `buf` from element `buf.1`.
    pub(crate) fn recv(&self, buf: (&CudaStorage, usize), count: usize, peer: usize) -> Result<()> {
        let bytes = bytes_of(buf.0.dtype(), count);
        let p = buf.0.at(buf.1) as *mut c_void;
        self.launch("ncclRecv", &[buf.0], |api, comm, stream| {
            // SAFETY: as all_reduce.
            unsafe { (api.recv)(p, bytes, BYTES, peer as c_int, comm, stream) }
        })
    }
}
