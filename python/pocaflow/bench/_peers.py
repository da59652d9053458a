"""The libraries a run compares: pocaflow and every peer importable here (NumPy, SciPy and
PyTorch on the CPU; PyTorch and CuPy on CUDA), each with its way of holding an array, of
waiting for its device and of timing a block of calls.

Nothing optional is imported at module level: :func:`find_peers` imports what is there.
"""

from __future__ import annotations

import contextlib
import gc
import io
import time
from collections.abc import Callable
from typing import Any

import numpy as np

#: The dtypes a run can ask for, by their short names.
DTYPES = ("f16", "bf16", "f32", "f64")
#: Bytes per element of each.
ITEMSIZE = {"f16": 2, "bf16": 2, "f32": 4, "f64": 8}
_NUMPY_DTYPES = {"f16": np.float16, "f32": np.float32, "f64": np.float64}
#: The side of the float32 matrices a filler multiplies (three products, a few ms on a GPU).
_FILLER_N = 4096


class Unsupported(Exception):
    """A peer cannot run a case (a dtype or an operation it lacks): its column stays empty."""


class Peer:
    """One library on one device: converts host arrays to its own, waits for its device, and
    times a block of calls by its clock (``timer`` names that clock in the report)."""

    name = ""
    timer = "wall clock"

    def __init__(self, module: Any, device: str):
        self.module, self.device = module, device
        self.version = str(getattr(module, "__version__", ""))

    def put(self, x: np.ndarray, dtype: str) -> Any:
        """``x`` (float32 or float64 on the host) as this library's array of ``dtype``."""
        raise NotImplementedError

    def get(self, y: Any) -> np.ndarray:
        """This library's array ``y`` as a float64 NumPy array."""
        return np.asarray(y, dtype=np.float64)

    def sync(self) -> None:
        """Waits until the work queued on this peer's device is done."""

    def free(self) -> None:
        """Returns the memory this library caches, between cases."""
        gc.collect()

    def seconds_per_call(self, fn: Callable[[], Any], calls: int, clock: str) -> float:
        """Seconds per call of ``fn`` over a block of ``calls`` calls: by the host's wall clock
        around the block and a final :meth:`sync` (``clock="host"``, and every peer without
        device events), or by the device's events around the block."""
        self.sync()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        self.sync()
        return (time.perf_counter() - start) / calls


class _CudaPeer(Peer):
    """A peer on a CUDA device: times device work with its events, after queueing a few ms of
    matrix products (the filler) so that every timed launch is queued before the GPU reaches
    it and the events see back-to-back GPU work, not the host's launch cost."""

    timer = "CUDA events"

    def __init__(self, module: Any, device: str):
        super().__init__(module, device)
        self._filler: tuple[Any, Any] | None = None

    def _events(self) -> tuple[Any, Any]:
        """Two timing events of this library."""
        raise NotImplementedError

    def _elapsed_ms(self, start: Any, end: Any) -> float:
        return start.elapsed_time(end)

    def fill(self) -> None:
        """Queues three float32 products of ``4096 x 4096`` matrices on the current stream."""
        if self._filler is None:
            rng = np.random.default_rng(99)
            host = rng.standard_normal((_FILLER_N, _FILLER_N), dtype=np.float32)
            self._filler = (self.put(host, "f32"), self.put(host.T.copy(), "f32"))
        a, b = self._filler
        for _ in range(3):
            a @ b

    def seconds_per_call(self, fn: Callable[[], Any], calls: int, clock: str) -> float:
        if clock == "host":
            return super().seconds_per_call(fn, calls, clock)
        self.fill()
        start, end = self._events()
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        return self._elapsed_ms(start, end) * 1e-3 / calls


class PocaflowPeer(Peer):
    """pocaflow on the CPU."""

    name = "pocaflow"

    def put(self, x: np.ndarray, dtype: str) -> Any:
        pf = self.module
        out = pf.asarray(x, device=self.device)
        return out if _NUMPY_DTYPES.get(dtype) == x.dtype else pf.astype(out, _pf_dtype(pf, dtype))

    def get(self, y: Any) -> np.ndarray:
        pf = self.module
        return np.asarray(pf.astype(y, pf.float64).numpy())


class _CudaModulePeer(_CudaPeer):
    """A CUDA peer whose module has ``cuda.synchronize``, ``cuda.empty_cache`` and
    ``cuda.Event(enable_timing=)`` (pocaflow and PyTorch)."""

    def sync(self) -> None:
        self.module.cuda.synchronize()

    def free(self) -> None:
        gc.collect()
        self.module.cuda.synchronize()
        self.module.cuda.empty_cache()

    def _events(self) -> tuple[Any, Any]:
        event = self.module.cuda.Event
        return event(enable_timing=True), event(enable_timing=True)


class PocaflowCudaPeer(_CudaModulePeer, PocaflowPeer):
    """pocaflow on CUDA, timed by ``pocaflow.cuda.Event``."""


class NumpyPeer(Peer):
    """NumPy on the host (its BLAS for products)."""

    name = "numpy"

    def put(self, x: np.ndarray, dtype: str) -> Any:
        if dtype not in _NUMPY_DTYPES:
            raise Unsupported(f"NumPy has no {dtype}")
        return np.ascontiguousarray(x, dtype=_NUMPY_DTYPES[dtype])


class ScipyPeer(NumpyPeer):
    """SciPy on the host: NumPy arrays, SciPy's own BLAS and special functions."""

    name = "scipy"


class TorchPeer(Peer):
    """PyTorch on the CPU."""

    name = "torch"

    def put(self, x: np.ndarray, dtype: str) -> Any:
        torch = self.module
        t = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
        return t.to(_torch_dtype(torch, dtype))

    def get(self, y: Any) -> np.ndarray:
        return y.detach().double().cpu().numpy()


class TorchCudaPeer(_CudaModulePeer, TorchPeer):
    """PyTorch on CUDA, timed by ``torch.cuda.Event``."""


class CupyPeer(_CudaPeer):
    """CuPy on CUDA, timed by ``cupy.cuda.Event``."""

    name = "cupy"

    def put(self, x: np.ndarray, dtype: str) -> Any:
        if dtype not in _NUMPY_DTYPES:
            raise Unsupported(f"CuPy has no {dtype}")
        return self.module.asarray(np.ascontiguousarray(x, dtype=_NUMPY_DTYPES[dtype]))

    def get(self, y: Any) -> np.ndarray:
        return self.module.asnumpy(y).astype(np.float64)

    def sync(self) -> None:
        self.module.cuda.Device().synchronize()

    def free(self) -> None:
        gc.collect()
        self.sync()
        self.module.get_default_memory_pool().free_all_blocks()
        self.module.get_default_pinned_memory_pool().free_all_blocks()

    def _events(self) -> tuple[Any, Any]:
        return self.module.cuda.Event(), self.module.cuda.Event()

    def _elapsed_ms(self, start: Any, end: Any) -> float:
        return self.module.cuda.get_elapsed_time(start, end)


def _pf_dtype(pf: Any, dtype: str) -> Any:
    return {"f16": pf.float16, "bf16": pf.bfloat16, "f32": pf.float32, "f64": pf.float64}[dtype]


def _torch_dtype(torch: Any, dtype: str) -> Any:
    return {
        "f16": torch.float16,
        "bf16": torch.bfloat16,
        "f32": torch.float32,
        "f64": torch.float64,
    }[dtype]


def _import(name: str) -> tuple[Any, str | None]:
    """The module, or None and why it did not import."""
    import importlib

    try:
        return importlib.import_module(name), None
    except Exception as e:  # a broken install is as absent as a missing one
        return None, f"{type(e).__name__}: {e}"


def _strict_torch(torch: Any) -> dict:
    """Strict float32 products in torch (no TF32), as pocaflow's default "highest"."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch >= 2.9 warns about the legacy TF32 flags
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
    return {"torch_float32_matmul_precision": torch.get_float32_matmul_precision()}


def find_peers(device: str) -> tuple[dict[str, Peer], dict[str, str], dict]:
    """pocaflow and every peer usable on ``device`` ("cpu" or "cuda"), pocaflow first; the
    peers left out with the reason; and the precision settings the run fixed."""
    import pocaflow as pf

    skipped: dict[str, str] = {}
    pf.set_matmul_precision("highest")
    precision: dict[str, Any] = {"pocaflow_matmul_precision": pf.get_matmul_precision()}
    if device == "cuda":
        if not pf.cuda.is_available():
            raise RuntimeError(f"pocaflow has no CUDA device: {pf.cuda.unavailable_reason()}")
        peers: dict[str, Peer] = {"pocaflow": PocaflowCudaPeer(pf, "cuda")}
        torch, why = _import("torch")
        if torch is not None and not torch.cuda.is_available():
            torch, why = None, "torch.cuda.is_available() is False"
        if torch is not None:
            precision |= _strict_torch(torch)
            peers["torch"] = TorchCudaPeer(torch, "cuda")
        else:
            skipped["torch"] = str(why)
        cupy, why = _import("cupy")
        if cupy is not None:
            try:
                cupy.cuda.runtime.getDeviceCount()
                peers["cupy"] = CupyPeer(cupy, "cuda")
            except Exception as e:
                skipped["cupy"] = f"no CUDA device for CuPy: {e!r}"
        else:
            skipped["cupy"] = str(why)
        return peers, skipped, precision
    peers = {"pocaflow": PocaflowPeer(pf, "cpu"), "numpy": NumpyPeer(np, "cpu")}
    for name, cls in (("scipy", ScipyPeer), ("torch", TorchPeer)):
        module, why = _import(name)
        if module is None:
            skipped[name] = str(why)
            continue
        if name == "scipy":
            import scipy.linalg.blas  # noqa: F401 (the suites use its BLAS)
            import scipy.special  # noqa: F401
        peers[name] = cls(module, "cpu")
    return peers, skipped, precision


def pocaflow_config() -> dict:
    """``pocaflow.show_config()`` without its printout."""
    import pocaflow as pf

    with contextlib.redirect_stdout(io.StringIO()):
        return dict(pf.show_config())
