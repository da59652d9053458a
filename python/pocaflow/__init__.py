"""pocaflow: a lean, fast linear-algebra library with NumPy in and NumPy out.

>>> import numpy as np, pocaflow as pf
>>> a = pf.Tensor.from_array(np.ones((2, 3), dtype=np.float32))
>>> (a @ a.T).numpy()
array([[3., 3.],
       [3., 3.]], dtype=float32)
"""

from . import _cuda_libs

_cuda_libs.LOADED = _cuda_libs.preload()

from . import _pocaflow, cuda  # noqa: E402 (the CUDA libraries must be preloaded first)
from ._pocaflow import (  # noqa: E402
    Device,
    DType,
    Tensor,
    bfloat16,
    float16,
    float32,
    float64,
    get_matmul_precision,
    matmul,
    set_matmul_precision,
    show_config,
    tensor,
    zeros,
)

__version__: str = _pocaflow.__version__

__all__ = [
    "DType",
    "Device",
    "Tensor",
    "bfloat16",
    "cuda",
    "float16",
    "float32",
    "float64",
    "get_matmul_precision",
    "matmul",
    "set_matmul_precision",
    "show_config",
    "tensor",
    "zeros",
]
