//! NCCL collectives on device buffers: communicators (one rank of many processes, or every
//! device of one process), all-reduce, broadcast, reduce, all-gather, reduce-scatter,
//! point-to-point send and receive, and groups. Every call only enqueues work on the current
//! stream of the communicator's device; nothing here waits for the GPU.
//!
//! NCCL is loaded on first use, by its soname: `libnccl.so.2` (the system install or the
//! `nvidia-nccl` pip wheel, which the Python package preloads), then `libnccl.so`. cudarc's
//! own NCCL loader does not try `libnccl.so.2`, so the eighteen entry points used here
//! are looked up with `libloading` (the loader cudarc itself uses) and the rest of cudarc's NCCL
//! module is not built. Communicators are blocking ones (`ncclCommInitRank`): an init waits for
//! every rank, which the Python layer only starts after its rendezvous.

use super::context::{device, DeviceState};
use super::storage::{context, CudaStorage};
use crate::backend::BackendStorage;
use crate::dtype::DType;
use crate::error::{Error, Result};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::{Arc, OnceLock};

/// `ncclResult_t`.
type Status = c_int;
/// `ncclComm_t`.
type RawComm = *mut c_void;
/// `cudaStream_t` (the driver's `CUstream`).
type RawStream = *mut c_void;

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
    init_rank: unsafe extern "C" fn(*mut RawComm, c_int, UniqueId, c_int) -> Status,
    init_all: unsafe extern "C" fn(*mut RawComm, c_int, *const c_int) -> Status,
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
            init_rank: sym!("ncclCommInitRank"),
            init_all: sym!("ncclCommInitAll"),
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
    )
}

/// Ends the group of [`group_start`], launching its work.
///
/// # Errors
/// NCCL errors of the grouped calls.
pub fn group_end() -> Result<()> {
    let api = api()?;
    // SAFETY: as group_start.
    api.check(
        "ncclGroupEnd",
        unsafe { (api.group_end)() },
        std::ptr::null_mut(),
    )
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

/// One rank of an NCCL communicator, on one device.
#[derive(Debug)]
pub(crate) struct Comm {
    raw: RawComm,
    device: Arc<DeviceState>,
    rank: usize,
    size: usize,
}

// SAFETY: an NCCL communicator may be used from any thread, one call at a time (it is not
// Sync, so calls from several threads need the owner's lock).
unsafe impl Send for Comm {}

impl Drop for Comm {
    fn drop(&mut self) {
        if self.raw.is_null() {
            return;
        }
        if let Ok(api) = api() {
            // SAFETY: the communicator was made by ncclCommInit* and is released once here.
            let _ = unsafe { (api.destroy)(self.raw) };
        }
    }
}

/// The bytes of `count` elements of `dtype`.
fn bytes_of(dtype: DType, count: usize) -> usize {
    count * dtype.size_in_bytes()
}

impl Comm {
    /// Rank `rank` of a communicator of `size` ranks named `id`, on device `ordinal`. Blocks
    /// until every rank has joined.
    ///
    /// # Errors
    /// [`Error::Device`] if NCCL or the device is not available; NCCL errors.
    pub(crate) fn init_rank(
        ordinal: usize,
        size: usize,
        id: &UniqueId,
        rank: usize,
    ) -> Result<Comm> {
        let api = api()?;
        let d = device(ordinal)?;
        d.bind()?;
        let mut raw = std::ptr::null_mut();
        // SAFETY: writes one communicator handle; the id is passed by value as nccl.h declares.
        let status = unsafe { (api.init_rank)(&mut raw, size as c_int, *id, rank as c_int) };
        api.check("ncclCommInitRank", status, std::ptr::null_mut())?;
        Ok(Comm {
            raw,
            device: d,
            rank,
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
                raw,
                device,
                rank,
                size,
            })
            .collect())
    }

    /// This communicator's rank.
    pub(crate) fn rank(&self) -> usize {
        self.rank
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
        let api = api()?;
        let mut this = self;
        let raw = std::mem::replace(&mut this.raw, std::ptr::null_mut());
        // SAFETY: the communicator is live and released only here (Drop skips the null left).
        api.check(
            "ncclCommAbort",
            unsafe { (api.abort)(raw) },
            std::ptr::null_mut(),
        )
    }

    /// The error of an earlier operation that failed on the GPU or the network, if any.
    ///
    /// # Errors
    /// That error.
    pub(crate) fn async_error(&self) -> Result<()> {
        let api = api()?;
        let mut status = 0;
        // SAFETY: a live communicator; writes one status.
        let query = unsafe { (api.async_error)(self.raw, &mut status) };
        api.check("ncclCommGetAsyncError", query, self.raw)?;
        api.check("an earlier NCCL operation", status, self.raw)
    }

    /// Runs one NCCL call (`call` gets the API and the current stream of this device), checks
    /// its status, and notes `bufs` as used on that stream.
    fn launch(
        &self,
        op: &str,
        bufs: &[&CudaStorage],
        call: impl FnOnce(&Api, RawStream) -> Status,
    ) -> Result<()> {
        let api = api()?;
        let (_, stream) = context(self.ordinal())?;
        api.check(op, call(api, stream.raw as RawStream), self.raw)?;
        for buf in bufs {
            buf.record_use(&stream);
        }
        Ok(())
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
        self.launch("ncclAllReduce", &[send.0, recv.0], |api, stream| {
            // SAFETY: both ranges lie in live device buffers of this device (the caller checked
            // their lengths); the work is ordered on `stream`, which `launch` records on them.
            unsafe { (api.all_reduce)(s, r, count, t, how as c_int, self.raw, stream) }
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
        self.launch("ncclBroadcast", &[send.0, recv.0], |api, stream| {
            // SAFETY: as all_reduce, with the elements moved as bytes.
            unsafe { (api.broadcast)(s, r, bytes, BYTES, root as c_int, self.raw, stream) }
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
        self.launch("ncclReduce", &[send.0, recv.0], |api, stream| {
            // SAFETY: as all_reduce.
            unsafe { (api.reduce)(s, r, count, t, how, root, self.raw, stream) }
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
        self.launch("ncclAllGather", &[send.0, recv.0], |api, stream| {
            // SAFETY: as all_reduce; `recv` holds `size * count` elements (checked by the
            // caller).
            unsafe { (api.all_gather)(s, r, bytes, BYTES, self.raw, stream) }
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
        self.launch("ncclReduceScatter", &[send.0, recv.0], |api, stream| {
            // SAFETY: as all_reduce; `send` holds `size * count` elements (checked by the
            // caller).
            unsafe { (api.reduce_scatter)(s, r, count, t, how as c_int, self.raw, stream) }
        })
    }

    /// Sends `count` elements from element `buf.1` to rank `peer` (matched by its
    /// [`Comm::recv`]).
    pub(crate) fn send(&self, buf: (&CudaStorage, usize), count: usize, peer: usize) -> Result<()> {
        let bytes = bytes_of(buf.0.dtype(), count);
        let p = buf.0.at(buf.1) as *const c_void;
        self.launch("ncclSend", &[buf.0], |api, stream| {
            // SAFETY: as all_reduce.
            unsafe { (api.send)(p, bytes, BYTES, peer as c_int, self.raw, stream) }
        })
    }

    /// Receives `count` elements from rank `peer` into `buf` from element `buf.1`.
    pub(crate) fn recv(&self, buf: (&CudaStorage, usize), count: usize, peer: usize) -> Result<()> {
        let bytes = bytes_of(buf.0.dtype(), count);
        let p = buf.0.at(buf.1) as *mut c_void;
        self.launch("ncclRecv", &[buf.0], |api, stream| {
            // SAFETY: as all_reduce.
            unsafe { (api.recv)(p, bytes, BYTES, peer as c_int, self.raw, stream) }
        })
    }
}
