"""pocaflow: an array library on the CPU and CUDA that follows the Python array API standard
(2024.12), with NumPy in and NumPy out.

>>> import numpy as np, pocaflow as pf
>>> a = pf.Tensor.from_array(np.ones((2, 3), dtype=np.float32))
>>> (a @ a.T).numpy()
array([[3., 3.],
       [3., 3.]], dtype=float32)
"""

from . import _cuda_libs

_cuda_libs.LOADED = _cuda_libs.preload()

# ruff: noqa: E402 (the CUDA libraries must be preloaded before the native module loads)
from . import _pocaflow, cuda
from ._creation import (
    arange,
    asarray,
    empty,
    empty_like,
    eye,
    full,
    full_like,
    linspace,
    meshgrid,
    ones,
    ones_like,
    tril,
    triu,
    zeros,
    zeros_like,
)
from ._dlpack import from_dlpack
from ._dtypes import astype, can_cast, finfo, iinfo, isdtype, result_type
from ._info import __array_namespace_info__
from ._manipulation import (
    broadcast_arrays,
    broadcast_shapes,
    broadcast_to,
    concat,
    expand_dims,
    flip,
    matrix_transpose,
    moveaxis,
    nonzero,
    permute_dims,
    repeat,
    reshape,
    roll,
    squeeze,
    stack,
    take,
    take_along_axis,
    tile,
    unstack,
)
from ._pocaflow import (
    AxisError,
    Device,
    DType,
    Tensor,
    bfloat16,
    bool,
    float16,
    float32,
    float64,
    get_default_device,
    get_matmul_precision,
    int8,
    int16,
    int32,
    int64,
    matmul,
    set_default_device,
    set_matmul_precision,
    show_config,
    tensor,
    uint8,
    uint16,
    uint32,
    uint64,
)

from . import random  # isort: skip (after the names it builds on)

__version__: str = _pocaflow.__version__
__array_api_version__: str = "2024.12"

__all__ = [
    "AxisError",
    "DType",
    "Device",
    "Tensor",
    "__array_api_version__",
    "__array_namespace_info__",
    "arange",
    "asarray",
    "astype",
    "bfloat16",
    "bool",
    "broadcast_arrays",
    "broadcast_shapes",
    "broadcast_to",
    "can_cast",
    "concat",
    "cuda",
    "empty",
    "empty_like",
    "expand_dims",
    "eye",
    "finfo",
    "flip",
    "float16",
    "float32",
    "float64",
    "from_dlpack",
    "full",
    "full_like",
    "get_default_device",
    "get_matmul_precision",
    "iinfo",
    "int8",
    "int16",
    "int32",
    "int64",
    "isdtype",
    "linspace",
    "matmul",
    "matrix_transpose",
    "meshgrid",
    "moveaxis",
    "nonzero",
    "ones",
    "ones_like",
    "permute_dims",
    "random",
    "repeat",
    "reshape",
    "result_type",
    "roll",
    "set_default_device",
    "set_matmul_precision",
    "show_config",
    "squeeze",
    "stack",
    "take",
    "take_along_axis",
    "tensor",
    "tile",
    "tril",
    "triu",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "unstack",
    "zeros",
    "zeros_like",
]
