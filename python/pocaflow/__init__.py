"""pocaflow: a lean, fast linear-algebra library with NumPy in and NumPy out.

>>> import numpy as np, pocaflow as pf
>>> a = pf.Tensor.from_array(np.ones((2, 3), dtype=np.float32))
>>> (a @ a.T).numpy()
array([[3., 3.],
       [3., 3.]], dtype=float32)
"""

from . import _pocaflow
from ._pocaflow import (
    Device,
    DType,
    Tensor,
    bfloat16,
    float16,
    float32,
    float64,
    matmul,
    show_config,
    tensor,
)

__version__: str = _pocaflow.__version__

__all__ = [
    "DType",
    "Device",
    "Tensor",
    "bfloat16",
    "float16",
    "float32",
    "float64",
    "matmul",
    "show_config",
    "tensor",
]
