"""``sharded_matmul``: one product split across the GPUs of this process.

``split="rows"`` gives each device a block of A's rows and all of B; ``split="k"`` gives each
device a block of A's columns and the matching rows of B, and sums the partial products with
NCCL (a reduce onto the first device, or a reduce-scatter that leaves each device its rows).
Either way device ``i`` ends up with rows ``[i * ceil(m / d), (i + 1) * ceil(m / d))`` of the
product (``torch.chunk``'s split; the last blocks may be shorter or empty).

Host operands are uploaded in row chunks on a copy stream per device while the device's
current stream multiplies the chunks already there: the host stages chunk ``j + 1`` (and the
DMA engine moves it) while the GPU multiplies chunk ``j``. Nothing waits for the GPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import _devices, _dtypes, _pocaflow
from .. import cuda as _cuda
from .._pocaflow import Device, Tensor
from ._communicator import Communicator

#: A chunk of A's rows is uploaded per this many bytes (the staging buffers' size), ...
_CHUNK_BYTES = 16 << 20
#: ... in at most this many chunks per device, ...
_MAX_CHUNKS = 8
#: ... each of at least this many rows (shorter products lose more speed than the overlap wins).
_MIN_CHUNK_ROWS = 256

#: The copy stream of each device, made on first use.
_COPY_STREAMS: dict[int, _cuda.Stream] = {}
#: One communicator per tuple of devices, made on first use (NCCL's init costs milliseconds).
_COMMUNICATORS: dict[tuple[int, ...], Communicator] = {}


def _devices_of(devices) -> list[Device]:
    if devices is None:
        count = _cuda.device_count()
        if count == 0:
            reason = _cuda.unavailable_reason() or "no CUDA device"
            raise RuntimeError(f"sharded_matmul: devices=None needs CUDA devices: {reason}")
        return [Device(f"cuda:{i}") for i in range(count)]
    out = [Device(f"cuda:{d}" if isinstance(d, int) else _devices.canonical(d)) for d in devices]
    if not out:
        raise ValueError("sharded_matmul: devices is empty")
    names = [_devices.canonical(d) for d in out]
    if len(set(names)) != len(names):
        raise ValueError(f"sharded_matmul: devices repeat a device: {names}")
    if len(out) > 1 and "cpu" in names:
        raise ValueError(f"sharded_matmul: several devices must all be CUDA devices, got {names}")
    return out


def _operand(x, name: str):
    """A Tensor as it is, anything else as a NumPy array; 2-D either way."""
    if not isinstance(x, Tensor):
        x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"sharded_matmul: {name} must be 2-D, got shape {tuple(x.shape)}")
    return x


def _on(x, device: Device) -> Tensor:
    """``x`` (a NumPy array or a Tensor, possibly a view) on ``device``, enqueued on that
    device's current stream."""
    if isinstance(x, Tensor):
        return x.to_device(device)
    return _pocaflow.asarray(x, device=device)


def _blocks(n: int, parts: int) -> list[tuple[int, int]]:
    """``torch.chunk``'s split of ``range(n)`` into ``parts`` blocks."""
    size = -(-n // parts) if n else 0
    return [(min(i * size, n), min((i + 1) * size, n)) for i in range(parts)]


def _chunks(rows: int, row_bytes: int, chunks: int | None) -> list[tuple[int, int]]:
    if chunks is None:
        wanted = -(-rows * row_bytes // _CHUNK_BYTES)
        chunks = max(1, min(_MAX_CHUNKS, wanted, rows // _MIN_CHUNK_ROWS))
    return [(lo, hi) for lo, hi in _blocks(rows, min(chunks, max(rows, 1))) if hi > lo]


def _copy_stream(device: Device) -> _cuda.Stream:
    ordinal = device.index
    if ordinal not in _COPY_STREAMS:
        _COPY_STREAMS[ordinal] = _cuda.Stream(ordinal)
    return _COPY_STREAMS[ordinal]


def _communicator(devices: list[Device]) -> Communicator:
    key = tuple(d.index for d in devices)
    if key not in _COMMUNICATORS:
        _COMMUNICATORS[key] = Communicator(list(key))
    return _COMMUNICATORS[key]


def _resident(x, device: Device) -> bool:
    return isinstance(x, Tensor) and _devices.same_device(x.device, device)


class _Plan:
    """Where each device's share of the work comes from and goes to, and the streams that
    move and multiply it (its current stream, and a copy stream for operands that move)."""

    def __init__(self, device: Device, a, b, out: Tensor, chunks: int | None) -> None:
        self.device, self.a, self.b, self.out = device, a, b, out
        self.cuda = device.type == "cuda"
        if self.cuda:
            self.compute, self.copy = _cuda.current_stream(device), _copy_stream(device)
        # Only an operand that has to move gains from chunks (its copy hides behind them).
        if not self.cuda or _resident(a, device):
            chunks = 1
        self.chunks = _chunks(a.shape[0], a.shape[1] * a.itemsize, chunks)

    def upload(self, x) -> Tensor:
        """``x`` on this device: copied on the copy stream, which the current stream then
        waits for (no copy, and no wait, for an array already there)."""
        if not self.cuda or _resident(x, self.device):
            return _on(x, self.device)
        with _cuda.stream(self.copy):
            here = _on(x, self.device)
        self.compute.wait_event(self.copy.record_event())
        return here


def _run(plans: list[_Plan]) -> None:
    """Uploads B, then A chunk by chunk, and multiplies each chunk once its copy is done;
    devices take turns chunk by chunk so that every GPU starts early."""
    b_here = []
    for p in plans:
        if p.cuda:
            p.copy.wait_event(p.compute.record_event())  # the copies follow earlier work
        b_here.append(p.upload(p.b))
    for j in range(max(len(p.chunks) for p in plans)):
        for p, b in zip(plans, b_here):
            if j < len(p.chunks):
                lo, hi = p.chunks[j]
                _pocaflow.matmul(p.upload(p.a[lo:hi]), b, out=p.out[lo:hi])


def sharded_matmul(
    a,
    b,
    devices: Sequence | None = None,
    split: str = "rows",
    gather: bool = True,
    chunks: int | None = None,
):
    """``a @ b`` for 2-D ``a`` (m x k) and ``b`` (k x n) split across ``devices`` (CUDA
    ordinals, device strings or Devices; default every CUDA device).

    ``split="rows"``: device ``i`` multiplies its block of A's rows by all of B.
    ``split="k"``: device ``i`` multiplies its block of A's columns by the matching rows of B,
    and NCCL sums the partial products (float16 and bfloat16 partials are kept and summed in
    float32, then rounded once).

    ``gather=True`` returns the product on the first device; ``gather=False`` returns a list
    with device ``i``'s block of the product's rows (``torch.chunk``'s split of the m rows).
    Operands may be NumPy arrays (or array-likes) or pocaflow arrays on any device; host
    operands reach each GPU in ``chunks`` row chunks (default: about 16 MiB each, at most 8)
    uploaded while the GPU multiplies the earlier ones. On one device this is plain matmul.
    Returns without waiting for the GPUs.
    """
    if split not in ("rows", "k"):
        raise ValueError(f"sharded_matmul: split must be 'rows' or 'k', got {split!r}")
    if chunks is not None and chunks < 1:
        raise ValueError(f"sharded_matmul: chunks must be at least 1, got {chunks}")
    a, b = _operand(a, "a"), _operand(b, "b")
    k, k2 = a.shape[1], b.shape[0]
    if k != k2:
        raise ValueError(
            f"sharded_matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not match "
            f"(a has {k} columns, b has {k2} rows)"
        )
    devs = _devices_of(devices)
    dtype = _dtypes.result_type(a, b)
    if len(devs) == 1 or split == "rows":
        return _by_rows(a, b, devs, dtype, gather, chunks)
    return _by_k(a, b, devs, dtype, gather, chunks)


def _by_rows(a, b, devs: list[Device], dtype, gather: bool, chunks: int | None):
    m, n = a.shape[0], b.shape[1]
    blocks = _blocks(m, len(devs))
    result = _pocaflow.empty((m, n), dtype=dtype, device=devs[0]) if gather else None
    plans = []
    for i, (d, (lo, hi)) in enumerate(zip(devs, blocks)):
        if i == 0 and gather:
            out = result[lo:hi]
        else:
            out = _pocaflow.empty((hi - lo, n), dtype=dtype, device=d)
        plans.append(_Plan(d, a[lo:hi], b, out, chunks))
    _run(plans)
    if not gather:
        return [p.out for p in plans]
    for p, (lo, hi) in zip(plans[1:], blocks[1:]):
        if hi > lo:
            result[lo:hi].copy_(p.out)
    return result


def _by_k(a, b, devs: list[Device], dtype, gather: bool, chunks: int | None):
    m, n = a.shape[0], b.shape[1]
    parts = len(devs)
    acc = _pocaflow.float32 if dtype in (_pocaflow.float16, _pocaflow.bfloat16) else dtype
    # A reduce-scatter needs equal shares: the partials get rows up to a multiple of the
    # device count, whose (unwritten) sums land past the end of the last blocks and are cut.
    share = -(-m // parts)
    partials = [_pocaflow.empty((share * parts, n), dtype=acc, device=d) for d in devs]
    plans = [
        _Plan(d, a[:, lo:hi], b[lo:hi], p[:m], chunks)
        for d, p, (lo, hi) in zip(devs, partials, _blocks(a.shape[1], parts))
    ]
    _run(plans)
    comm = _communicator(devs)
    if gather:
        comm.reduce(partials, dst=0)
        return partials[0][:m].astype(dtype, copy=False)
    shares = [_pocaflow.empty((share, n), dtype=acc, device=d) for d in devs]
    comm.reduce_scatter(shares, partials)
    blocks = _blocks(m, parts)
    return [s[: hi - lo].astype(dtype, copy=False) for s, (lo, hi) in zip(shares, blocks)]
