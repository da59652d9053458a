"""Finding CUDA 13 libraries installed from pip wheels.

The native module loads libcuda, libcublasLt and libnvrtc with ``dlopen`` when CUDA is first
used, libcusparse (which needs libnvJitLink) at the first sparse product on a GPU, and libnccl
at the first NCCL call (``preload_nccl``). A system
toolkit is found through the loader's usual search path; libraries that came with pip wheels
(``nvidia-cublas``, ``nvidia-cuda-nvrtc``, or PyTorch's dependencies) live in
``site-packages/nvidia/...`` where ``dlopen`` does not look. Loading them here first, with
``RTLD_GLOBAL``, lets the later ``dlopen`` by soname find them.
"""

from __future__ import annotations

import ctypes
import os
import sys

_LIBS = ("libnvrtc.so.13", "libcublasLt.so.13", "libnvJitLink.so.13", "libcusparse.so.12")

#: The pip-installed libraries loaded at import (paths).
LOADED: list[str] = []
_DIRS = (
    "nvidia/cu13/lib",
    "nvidia/cublas/lib",
    "nvidia/cuda_nvrtc/lib",
    "nvidia/nvjitlink/lib",
    "nvidia/cusparse/lib",
)


def preload(names: tuple[str, ...] = _LIBS, dirs: tuple[str, ...] = _DIRS) -> list[str]:
    """Loads the pip-installed CUDA 13 libraries of ``names`` that exist in ``dirs`` of
    ``sys.path``; returns their paths."""
    if not sys.platform.startswith("linux"):
        return []
    loaded = []
    for name in names:
        for base in sys.path:
            path = next(
                (p for d in dirs if os.path.exists(p := os.path.join(base or ".", d, name))),
                None,
            )
            if path is None:
                continue
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            except OSError:
                continue
            loaded.append(path)
            break
    return loaded


def preload_nccl() -> list[str]:
    """Loads the ``nvidia-nccl`` pip wheel's libnccl.so.2 if there is one (done before the
    first NCCL call rather than at import: the library is large)."""
    return preload(("libnccl.so.2",), ("nvidia/nccl/lib",))
