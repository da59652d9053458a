//! The native half of `pocaflow.distributed`: NCCL communicators and their collectives on
//! pocaflow arrays (`python/pocaflow/distributed/__init__.py` adds the rendezvous).

use crate::errors::IntoPyResult;
use crate::tensor::PyTensor;
use pocaflow::distributed::{self as dist, Communicator, Reduction, UniqueId};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The reduction named `op`.
fn reduction(op: &str) -> PyResult<Reduction> {
    Ok(match op {
        "sum" => Reduction::Sum,
        "prod" | "product" => Reduction::Prod,
        "max" => Reduction::Max,
        "min" => Reduction::Min,
        "avg" => Reduction::Avg,
        _ => {
            return Err(PyValueError::new_err(format!(
                "unknown reduction op {op:?}; expected \"sum\", \"prod\", \"max\", \"min\" or \
                 \"avg\""
            )))
        }
    })
}

/// One rank of an NCCL communicator (see `pocaflow.distributed`).
#[pyclass(name = "NcclCommunicator", module = "pocaflow._pocaflow", frozen)]
pub struct PyCommunicator(Mutex<Option<Communicator>>);

impl PyCommunicator {
    /// Runs `f` on the live communicator, with the GIL released.
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&Communicator) -> pocaflow::Result<T> + Send,
    ) -> PyResult<T> {
        // The lock is taken without the GIL: a thread that holds it (in an NCCL call, the GIL
        // released) needs the GIL back before it lets go, so waiting for the lock while
        // holding the GIL would deadlock (the watchdog's `check` against a collective).
        py.detach(|| self.lock().as_ref().map(f))
            .ok_or_else(|| {
                PyRuntimeError::new_err("the communicator was destroyed (destroy_process_group)")
            })?
            .py()
    }

    fn lock(&self) -> MutexGuard<'_, Option<Communicator>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[pymethods]
impl PyCommunicator {
    /// This rank.
    #[getter]
    fn rank(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |c| Ok(c.rank()))
    }

    /// The number of ranks.
    #[getter]
    fn world_size(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |c| Ok(c.world_size()))
    }

    /// The CUDA ordinal of this rank.
    #[getter]
    fn device(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |c| match c.device() {
            pocaflow::Device::Cuda(i) => Ok(i),
            pocaflow::Device::Cpu => Ok(0),
        })
    }

    /// `t` becomes the reduction over ranks (in place).
    fn all_reduce(&self, py: Python<'_>, t: PyRef<'_, PyTensor>, op: &str) -> PyResult<()> {
        let (t, how) = (t.inner.clone(), reduction(op)?);
        self.with(py, |c| c.all_reduce(&t, how))
    }

    /// `t` becomes rank `src`'s `t`.
    fn broadcast(&self, py: Python<'_>, t: PyRef<'_, PyTensor>, src: usize) -> PyResult<()> {
        let t = t.inner.clone();
        self.with(py, |c| c.broadcast(&t, src))
    }

    /// Rank `dst`'s `t` becomes the reduction over ranks.
    fn reduce(&self, py: Python<'_>, t: PyRef<'_, PyTensor>, dst: usize, op: &str) -> PyResult<()> {
        let (t, how) = (t.inner.clone(), reduction(op)?);
        self.with(py, |c| c.reduce(&t, dst, how))
    }

    /// `out` becomes every rank's `t`, in rank order.
    fn all_gather(
        &self,
        py: Python<'_>,
        out: PyRef<'_, PyTensor>,
        t: PyRef<'_, PyTensor>,
    ) -> PyResult<()> {
        let (out, t) = (out.inner.clone(), t.inner.clone());
        self.with(py, |c| c.all_gather(&out, &t))
    }

    /// `out` becomes the reduction over ranks of this rank's share of `t`.
    fn reduce_scatter(
        &self,
        py: Python<'_>,
        out: PyRef<'_, PyTensor>,
        t: PyRef<'_, PyTensor>,
        op: &str,
    ) -> PyResult<()> {
        let (out, t, how) = (out.inner.clone(), t.inner.clone(), reduction(op)?);
        self.with(py, |c| c.reduce_scatter(&out, &t, how))
    }

    /// Sends `t` to rank `dst`.
    fn send(&self, py: Python<'_>, t: PyRef<'_, PyTensor>, dst: usize) -> PyResult<()> {
        let t = t.inner.clone();
        self.with(py, |c| c.send(&t, dst))
    }

    /// Receives into `t` from rank `src`.
    fn recv(&self, py: Python<'_>, t: PyRef<'_, PyTensor>, src: usize) -> PyResult<()> {
        let t = t.inner.clone();
        self.with(py, |c| c.recv(&t, src))
    }

    /// Raises the error of an earlier collective that failed on the GPU or the network.
    fn check(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, Communicator::check)
    }

    /// Releases the communicator (`abort=True`: without waiting for pending work).
    #[pyo3(signature = (abort = false))]
    fn destroy(&self, py: Python<'_>, abort: bool) -> PyResult<()> {
        let comm = py.detach(|| self.lock().take());
        match comm {
            Some(c) if abort => py.detach(|| c.abort()).py(),
            Some(c) => py.detach(|| c.destroy()).py(),
            None => Ok(()),
        }
    }
}

/// A new NCCL unique id (128 bytes) for rank 0 to share.
#[pyfunction]
pub fn nccl_unique_id(py: Python<'_>) -> PyResult<Bound<'_, PyBytes>> {
    let id = py.detach(dist::unique_id).py()?;
    Ok(PyBytes::new(py, &id.0))
}

/// The loaded NCCL's version code (22809 for 2.28.9).
#[pyfunction]
pub fn nccl_version() -> PyResult<i32> {
    dist::version().py()
}

/// Rank `rank` of `world_size` of the communicator named `uid`, on CUDA device `device`
/// (blocks, with the GIL released, until every rank has joined); no NCCL call of it waits
/// longer than `timeout` seconds (then it is aborted and the call raises).
#[pyfunction]
pub fn nccl_communicator(
    py: Python<'_>,
    device: usize,
    world_size: usize,
    uid: &[u8],
    rank: usize,
    timeout: f64,
) -> PyResult<PyCommunicator> {
    let timeout = Duration::try_from_secs_f64(timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "the NCCL timeout must be a positive number of seconds, got {timeout}"
            ))
        })?;
    let id: [u8; 128] = uid.try_into().map_err(|_| {
        PyValueError::new_err(format!(
            "an NCCL unique id has 128 bytes, got {}",
            uid.len()
        ))
    })?;
    let comm = py
        .detach(|| Communicator::new(device, world_size, &UniqueId(id), rank, timeout))
        .py()?;
    Ok(PyCommunicator(Mutex::new(Some(comm))))
}

/// One communicator per device of `devices`, driven by this process.
#[pyfunction]
pub fn nccl_communicators(py: Python<'_>, devices: Vec<usize>) -> PyResult<Vec<PyCommunicator>> {
    let comms = py.detach(|| Communicator::for_devices(&devices)).py()?;
    Ok(comms
        .into_iter()
        .map(|c| PyCommunicator(Mutex::new(Some(c))))
        .collect())
}

/// `ncclGroupStart`: the calls up to `nccl_group_end` run as one NCCL operation.
#[pyfunction]
pub fn nccl_group_start() -> PyResult<()> {
    dist::group_start().py()
}

/// `ncclGroupEnd`.
#[pyfunction]
pub fn nccl_group_end(py: Python<'_>) -> PyResult<()> {
    py.detach(dist::group_end).py()
}
