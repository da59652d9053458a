//! Streams and events. Every CUDA operation runs on the *current stream* of its device: a
//! non-blocking stream made once per device, or the one a thread selected with
//! [`Stream::set_current`]. Nothing here waits on the host except `synchronize` calls.

use super::context::{device, DeviceState};
use super::driver::DriverResultExt;
use crate::error::{Error, Result};
use cudarc::driver::{result as dr, sys as ds, DriverError};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A CUDA stream: one pocaflow made and owns, or one of another library it only uses.
#[derive(Debug)]
pub(crate) struct StreamInner {
    pub(crate) raw: ds::CUstream,
    pub(crate) device: Arc<DeviceState>,
    /// Unique for the life of the process (raw handles can be reused after destruction).
    pub(crate) id: u64,
    /// Whether pocaflow made the stream (and destroys it when dropped).
    owned: bool,
}

fn next_stream_id() -> u64 {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

// SAFETY: a CUstream handle may be used from any thread (the driver serializes access).
unsafe impl Send for StreamInner {}
// SAFETY: as above.
unsafe impl Sync for StreamInner {}

impl Drop for StreamInner {
    fn drop(&mut self) {
        if self.owned && self.device.bind().is_ok() {
            // SAFETY: the stream is owned and nothing uses it any more; destroying a stream with
            // pending work is allowed (the driver releases it when the work is done).
            let _ = unsafe { dr::stream::destroy(self.raw) };
        }
    }
}

impl StreamInner {
    pub(crate) fn new(device: Arc<DeviceState>) -> Result<Arc<StreamInner>> {
        device.bind()?;
        let raw = dr::stream::create(dr::stream::StreamKind::NonBlocking).cuda("cuStreamCreate")?;
        Ok(Arc::new(StreamInner {
            raw,
            device,
            id: next_stream_id(),
            owned: true,
        }))
    }

    /// Another library's stream of `device`, by its raw handle (`CU_STREAM_LEGACY` = 1 and
    /// `CU_STREAM_PER_THREAD` = 2 included), used but never destroyed by pocaflow.
    pub(crate) fn borrowed(device: Arc<DeviceState>, handle: u64) -> Arc<StreamInner> {
        Arc::new(StreamInner {
            raw: handle as usize as ds::CUstream,
            device,
            id: next_stream_id(),
            owned: false,
        })
    }

    /// Whether `self` and `other` are the same stream: one object, or one raw handle.
    pub(crate) fn same(&self, other: &StreamInner) -> bool {
        self.id == other.id || self.raw == other.raw
    }

    /// Makes this stream wait (on the GPU) for all work enqueued so far on `other`.
    pub(crate) fn wait_for(&self, other: &StreamInner) -> Result<()> {
        if other.same(self) {
            return Ok(());
        }
        let ev = RawEvent::new(&other.device, false)?;
        ev.record(other)?;
        self.wait_event(&ev)
    }

    /// Makes this stream wait (on the GPU) for the work recorded by `event`.
    pub(crate) fn wait_event(&self, event: &RawEvent) -> Result<()> {
        // SAFETY: both handles are live; the wait is enqueued on the GPU, the host does not block.
        unsafe {
            dr::stream::wait_event(
                self.raw,
                event.raw,
                ds::CUevent_wait_flags::CU_EVENT_WAIT_DEFAULT,
            )
        }
        .cuda("cuStreamWaitEvent")
    }
}

/// A CUDA stream: an ordered queue of GPU work on one device.
///
/// Work enqueued on one stream runs in order; different streams may overlap. Use an [`Event`]
/// to make one stream wait for another.
#[derive(Debug, Clone)]
pub struct Stream(pub(crate) Arc<StreamInner>);

thread_local! {
    /// The stream each device's work goes to on this thread, when not the device's default.
    static CURRENT: RefCell<HashMap<usize, Stream>> = RefCell::new(HashMap::new());
}

impl Stream {
    /// A new non-blocking stream on CUDA device `ordinal`.
    ///
    /// # Errors
    /// [`Error::Device`] if the device is not available; CUDA errors.
    pub fn new(ordinal: usize) -> Result<Stream> {
        Ok(Stream(StreamInner::new(device(ordinal)?)?))
    }

    /// The stream this thread's work on device `ordinal` goes to.
    ///
    /// # Errors
    /// [`Error::Device`] if the device is not available.
    pub fn current(ordinal: usize) -> Result<Stream> {
        if let Some(s) = CURRENT.with(|c| c.borrow().get(&ordinal).cloned()) {
            return Ok(s);
        }
        Ok(Stream(device(ordinal)?.default_stream()?))
    }

    /// Makes this the current stream of its device on this thread; returns the previous one.
    pub fn set_current(&self) -> Result<Stream> {
        let ordinal = self.device();
        let previous = Stream::current(ordinal)?;
        CURRENT.with(|c| c.borrow_mut().insert(ordinal, self.clone()));
        Ok(previous)
    }

    /// The device ordinal.
    pub fn device(&self) -> usize {
        self.0.device.ordinal
    }

    /// Blocks the host until all work enqueued on this stream is done.
    ///
    /// # Errors
    /// CUDA errors, including errors of earlier asynchronous work.
    pub fn synchronize(&self) -> Result<()> {
        self.0.device.bind()?;
        // SAFETY: the stream handle is live.
        unsafe { dr::stream::synchronize(self.0.raw) }.cuda("cuStreamSynchronize")
    }

    /// Whether all work enqueued on this stream is done (never blocks).
    ///
    /// # Errors
    /// CUDA errors other than "not ready".
    pub fn query(&self) -> Result<bool> {
        self.0.device.bind()?;
        // SAFETY: the stream handle is live.
        ready(
            unsafe { ds::cuStreamQuery(self.0.raw) }.result(),
            "cuStreamQuery",
        )
    }

    /// Makes this stream wait (on the GPU, not the host) until `event` has completed.
    ///
    /// # Errors
    /// CUDA errors.
    pub fn wait_event(&self, event: &Event) -> Result<()> {
        self.0.device.bind()?;
        self.0.wait_event(&event.0)
    }

    /// Makes this stream wait (on the GPU, not the host) for the work queued so far on another
    /// library's stream, given by its raw handle (0 or 1 for the legacy default stream, 2 for
    /// the per-thread one).
    ///
    /// # Errors
    /// CUDA errors (an invalid handle, say).
    pub fn wait_external(&self, handle: u64) -> Result<()> {
        let other = StreamInner::borrowed(self.0.device.clone(), handle);
        self.0.wait_for(&other)
    }

    /// A stable identifier of this stream (for equality in bindings).
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The raw `CUstream` handle as an integer, for other libraries (the `stream` of DLPack's
    /// `__dlpack__` and of `__cuda_array_interface__`, or `torch.cuda.ExternalStream`).
    pub fn handle(&self) -> u64 {
        self.0.raw as usize as u64
    }
}

fn ready(r: std::result::Result<(), DriverError>, op: &str) -> Result<bool> {
    match r {
        Ok(()) => Ok(true),
        Err(DriverError(ds::CUresult::CUDA_ERROR_NOT_READY)) => Ok(false),
        Err(e) => Err(super::driver::cuda_err(op, e)),
    }
}

/// An owned CUDA event handle.
#[derive(Debug)]
pub(crate) struct RawEvent {
    pub(crate) raw: ds::CUevent,
    pub(crate) device: Arc<DeviceState>,
    pub(crate) timing: bool,
}

// SAFETY: event handles may be used from any thread.
unsafe impl Send for RawEvent {}
// SAFETY: as above.
unsafe impl Sync for RawEvent {}

impl RawEvent {
    pub(crate) fn new(device: &Arc<DeviceState>, timing: bool) -> Result<RawEvent> {
        device.bind()?;
        let flags = if timing {
            ds::CUevent_flags::CU_EVENT_DEFAULT
        } else {
            ds::CUevent_flags::CU_EVENT_DISABLE_TIMING
        };
        let raw = dr::event::create(flags).cuda("cuEventCreate")?;
        Ok(RawEvent {
            raw,
            device: device.clone(),
            timing,
        })
    }

    pub(crate) fn record(&self, stream: &StreamInner) -> Result<()> {
        if stream.device.ordinal != self.device.ordinal {
            return Err(Error::Device(format!(
                "an event of cuda:{} cannot be recorded on a stream of cuda:{}",
                self.device.ordinal, stream.device.ordinal
            )));
        }
        self.device.bind()?;
        // SAFETY: both handles are live.
        unsafe { dr::event::record(self.raw, stream.raw) }.cuda("cuEventRecord")
    }

    pub(crate) fn query(&self) -> Result<bool> {
        self.device.bind()?;
        // SAFETY: the handle is live.
        ready(unsafe { dr::event::query(self.raw) }, "cuEventQuery")
    }

    pub(crate) fn synchronize(&self) -> Result<()> {
        self.device.bind()?;
        // SAFETY: the handle is live.
        unsafe { dr::event::synchronize(self.raw) }.cuda("cuEventSynchronize")
    }
}

impl Drop for RawEvent {
    fn drop(&mut self) {
        if self.device.bind().is_ok() {
            // SAFETY: owned handle; destroying a recorded event is allowed.
            let _ = unsafe { dr::event::destroy(self.raw) };
        }
    }
}

/// A CUDA event: a marker in a stream that the host can query or wait for, that other streams
/// can wait for, and that measures GPU time between two markers.
#[derive(Debug, Clone)]
pub struct Event(pub(crate) Arc<RawEvent>);

impl Event {
    /// A new event on CUDA device `ordinal`; `timing` enables [`Event::elapsed_ms`].
    ///
    /// # Errors
    /// [`Error::Device`] if the device is not available; CUDA errors.
    pub fn new(ordinal: usize, timing: bool) -> Result<Event> {
        Ok(Event(Arc::new(RawEvent::new(&device(ordinal)?, timing)?)))
    }

    /// Records the event at the current end of `stream`.
    ///
    /// # Errors
    /// [`Error::Device`] if the stream is on another device; CUDA errors.
    pub fn record(&self, stream: &Stream) -> Result<()> {
        self.0.record(&stream.0)
    }

    /// Whether the work before the recorded point is done (never blocks; true if never recorded).
    ///
    /// # Errors
    /// CUDA errors other than "not ready".
    pub fn query(&self) -> Result<bool> {
        self.0.query()
    }

    /// Blocks the host until the recorded point is reached.
    ///
    /// # Errors
    /// CUDA errors.
    pub fn synchronize(&self) -> Result<()> {
        self.0.synchronize()
    }

    /// Milliseconds of GPU time between `self` and `end` (both recorded and completed, both
    /// created with timing).
    ///
    /// # Errors
    /// [`Error::Cuda`] if either event has not completed yet or was made without timing.
    pub fn elapsed_ms(&self, end: &Event) -> Result<f32> {
        if !self.0.timing || !end.0.timing {
            return Err(Error::Cuda(
                "elapsed_time needs two events created with enable_timing=True".into(),
            ));
        }
        self.0.device.bind()?;
        // SAFETY: both handles are live.
        match unsafe { dr::event::elapsed(self.0.raw, end.0.raw) } {
            Ok(ms) => Ok(ms),
            Err(DriverError(ds::CUresult::CUDA_ERROR_NOT_READY)) => Err(Error::Cuda(
                "elapsed_time: an event has not completed yet (synchronize it first)".into(),
            )),
            Err(e) => Err(super::driver::cuda_err("cuEventElapsedTime", e)),
        }
    }

    /// The device ordinal.
    pub fn device(&self) -> usize {
        self.0.device.ordinal
    }
}
