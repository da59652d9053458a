//! Collectives across GPUs and processes through NCCL: a [`Communicator`] is one rank of a
//! group, on one CUDA device, and its collectives take tensors of that device. Every
//! collective is enqueued on the device's current stream, ordered with the other work there,
//! and returns without waiting for the GPU.
//!
//! The ranks of several processes agree on a [`UniqueId`] out of band (the Python package's
//! store does it) and each calls [`Communicator::new`]; one process driving several devices
//! calls [`Communicator::for_devices`] and runs each collective on every device between
//! [`group_start`] and [`group_end`].

pub use crate::cuda::nccl::{group_end, group_start, unique_id, version, Reduction, UniqueId};

use crate::cuda::nccl::Comm;
use crate::cuda::CudaStorage;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::time::Duration;

/// One rank of an NCCL communicator, on one CUDA device.
#[derive(Debug)]
pub struct Communicator {
    comm: Comm,
}

impl Communicator {
    /// Rank `rank` of the `world_size` ranks of the communicator named `id`, on CUDA device
    /// `ordinal`. Returns when every rank has joined. No call waits inside NCCL longer than
    /// `timeout` (a non-blocking communicator, polled): past it, the communicator is aborted
    /// and the call fails.
    ///
    /// # Errors
    /// [`Error::Shape`] for a rank outside the world; [`Error::Device`] if NCCL or the
    /// device is not available; NCCL errors; [`Error::Cuda`] when the ranks do not all join
    /// within `timeout`.
    pub fn new(
        ordinal: usize,
        world_size: usize,
        id: &UniqueId,
        rank: usize,
        timeout: Duration,
    ) -> Result<Self> {
        if rank >= world_size {
            return Err(Error::Shape(format!(
                "rank {rank} is not in a world of size {world_size}"
            )));
        }
        Comm::init_rank(ordinal, world_size, id, rank, timeout).map(|comm| Communicator { comm })
    }

    /// One communicator per device of `ordinals` (rank `i` on `ordinals[i]`), all driven by
    /// this process.
    ///
    /// # Errors
    /// [`Error::Shape`] for an empty list or a device named twice; as [`Communicator::new`].
    pub fn for_devices(ordinals: &[usize]) -> Result<Vec<Self>> {
        if ordinals.is_empty() {
            return Err(Error::Shape(
                "Communicator needs at least one device".into(),
            ));
        }
        if (1..ordinals.len()).any(|i| ordinals[..i].contains(&ordinals[i])) {
            return Err(Error::Shape(format!(
                "Communicator: devices {ordinals:?} name a device twice (NCCL needs one rank \
                 per GPU)"
            )));
        }
        Ok(Comm::init_all(ordinals)?
            .into_iter()
            .map(|comm| Communicator { comm })
            .collect())
    }

    /// This rank.
    pub fn rank(&self) -> usize {
        self.comm.rank()
    }

    /// The number of ranks.
    pub fn world_size(&self) -> usize {
        self.comm.size()
    }

    /// The CUDA device of this rank.
    pub fn device(&self) -> Device {
        Device::Cuda(self.comm.ordinal())
    }

    /// Aborts the communicator: work that waits for other ranks fails instead of hanging.
    ///
    /// # Errors
    /// NCCL errors.
    pub fn abort(self) -> Result<()> {
        self.comm.abort()
    }

    /// Finishes the pending work and releases the communicator (dropping it does the same,
    /// without the error). A rank of a group waits at most its timeout, then aborts.
    ///
    /// # Errors
    /// NCCL errors; pending work not finished within the timeout.
    pub fn destroy(self) -> Result<()> {
        self.comm.destroy()
    }

    /// The error of an earlier collective that failed on the GPU or the network, if any.
    ///
    /// # Errors
    /// That error.
    pub fn check(&self) -> Result<()> {
        self.comm.async_error()
    }

    /// `t`'s memory and first element, after checking that it is a C-contiguous tensor on
    /// this rank's device.
    fn dense<'a>(&self, op: &str, what: &str, t: &'a Tensor) -> Result<(&'a CudaStorage, usize)> {
        let storage = t.storage.as_cuda().filter(|_| t.device() == self.device());
        let Some(storage) = storage else {
            return Err(Error::Device(format!(
                "{op}: {what} is on {}, but this rank's communicator is on {}",
                t.device(),
                self.device()
            )));
        };
        if !t.layout().is_c_contiguous() {
            return Err(Error::Shape(format!(
                "{op}: {what} must be C-contiguous (shape {:?}, strides {:?})",
                t.shape(),
                t.strides()
            )));
        }
        Ok((storage, t.layout().offset()))
    }

    /// Checks that `out` and `t` share a dtype and that `out` has `factor` times `t`'s
    /// elements (or `t` has `1 / factor` of `out`'s).
    fn sized(op: &str, out: &Tensor, t: &Tensor, out_per_t: (usize, usize)) -> Result<()> {
        if out.dtype() != t.dtype() {
            return Err(Error::DType(format!(
                "{op}: the output is {} but the input is {}",
                out.dtype(),
                t.dtype()
            )));
        }
        let (num, den) = out_per_t;
        if out.numel() * den != t.numel() * num {
            return Err(Error::Shape(format!(
                "{op}: the output has {} elements (shape {:?}) but the input's {} (shape {:?}) \
                 call for {}",
                out.numel(),
                out.shape(),
                t.numel(),
                t.shape(),
                t.numel() * num / den
            )));
        }
        Ok(())
    }

    /// Checks that `rank` names a rank of this communicator.
    fn peer(&self, op: &str, what: &str, rank: usize) -> Result<()> {
        if rank >= self.world_size() {
            return Err(Error::Shape(format!(
                "{op}: {what} {rank} is not a rank of this world of size {}",
                self.world_size()
            )));
        }
        Ok(())
    }

    /// `t` becomes the reduction of every rank's `t` (in place).
    ///
    /// # Errors
    /// [`Error::Device`] for a tensor of another device, [`Error::Shape`] for one not
    /// C-contiguous, [`Error::DType`] for a dtype NCCL does not reduce; NCCL errors.
    pub fn all_reduce(&self, t: &Tensor, how: Reduction) -> Result<()> {
        let buf = self.dense("all_reduce", "the tensor", t)?;
        self.comm.all_reduce(buf, buf, t.numel(), how)
    }

    /// `t` becomes rank `root`'s `t` on every rank.
    ///
    /// # Errors
    /// As [`Communicator::all_reduce`], and [`Error::Shape`] for a root outside the world.
    pub fn broadcast(&self, t: &Tensor, root: usize) -> Result<()> {
        self.peer("broadcast", "src", root)?;
        let buf = self.dense("broadcast", "the tensor", t)?;
        self.comm.broadcast(buf, buf, t.numel(), root)
    }

    /// Rank `root`'s `t` becomes the reduction of every rank's `t`; the others' stay as they
    /// are.
    ///
    /// # Errors
    /// As [`Communicator::broadcast`].
    pub fn reduce(&self, t: &Tensor, root: usize, how: Reduction) -> Result<()> {
        self.peer("reduce", "dst", root)?;
        let buf = self.dense("reduce", "the tensor", t)?;
        self.comm.reduce(buf, buf, t.numel(), how, root)
    }

    /// `out` (`world_size` times `t`'s elements) becomes every rank's `t`, in rank order.
    ///
    /// # Errors
    /// As [`Communicator::all_reduce`], and [`Error::Shape`] / [`Error::DType`] when `out`
    /// does not fit.
    pub fn all_gather(&self, out: &Tensor, t: &Tensor) -> Result<()> {
        let op = "all_gather_into_tensor";
        Self::sized(op, out, t, (self.world_size(), 1))?;
        let (o, i) = (
            self.dense(op, "the output", out)?,
            self.dense(op, "the input", t)?,
        );
        self.comm.all_gather(i, o, t.numel())
    }

    /// `out` becomes the reduction over ranks of this rank's share of `t` (`t` holds
    /// `world_size` shares of `out`'s size, in rank order).
    ///
    /// # Errors
    /// As [`Communicator::all_gather`].
    pub fn reduce_scatter(&self, out: &Tensor, t: &Tensor, how: Reduction) -> Result<()> {
        let op = "reduce_scatter_tensor";
        Self::sized(op, out, t, (1, self.world_size()))?;
        let (o, i) = (
            self.dense(op, "the output", out)?,
            self.dense(op, "the input", t)?,
        );
        self.comm.reduce_scatter(i, o, out.numel(), how)
    }

    /// Sends `t` to rank `peer`, whose [`Communicator::recv`] takes it.
    ///
    /// # Errors
    /// As [`Communicator::broadcast`].
    pub fn send(&self, t: &Tensor, peer: usize) -> Result<()> {
        self.peer("send", "dst", peer)?;
        let buf = self.dense("send", "the tensor", t)?;
        self.comm.send(buf, t.numel(), peer)
    }

    /// Receives into `t` what rank `peer` sends.
    ///
    /// # Errors
    /// As [`Communicator::broadcast`].
    pub fn recv(&self, t: &Tensor, peer: usize) -> Result<()> {
        self.peer("recv", "src", peer)?;
        let buf = self.dense("recv", "the tensor", t)?;
        self.comm.recv(buf, t.numel(), peer)
    }
}
