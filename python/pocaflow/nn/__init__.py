"""Neural-network primitives on the CPU and CUDA, forward and backward.

Every function takes pocaflow arrays (or anything :func:`pocaflow.asarray` takes) and returns
new arrays; nothing records a graph. Each forward op has an explicit ``*_backward`` that
returns the gradients of its inputs given the gradient of its output, so a training loop is
written out step by step (see ``python -m pocaflow.demos.mlp``).

Half types (``float16``, ``bfloat16``) compute their statistics in float32 and round each
output once.
"""

from .._pocaflow import nn as _native
from ._linear import linear, linear_backward

relu = _native.relu
gelu = _native.gelu
silu = _native.silu
sigmoid = _native.sigmoid
relu_backward = _native.relu_backward
gelu_backward = _native.gelu_backward
silu_backward = _native.silu_backward
sigmoid_backward = _native.sigmoid_backward
softmax = _native.softmax
log_softmax = _native.log_softmax
softmax_backward = _native.softmax_backward
log_softmax_backward = _native.log_softmax_backward
layer_norm = _native.layer_norm
rms_norm = _native.rms_norm
layer_norm_backward = _native.layer_norm_backward
rms_norm_backward = _native.rms_norm_backward
cross_entropy = _native.cross_entropy
cross_entropy_backward = _native.cross_entropy_backward

__all__ = [
    "cross_entropy",
    "cross_entropy_backward",
    "gelu",
    "gelu_backward",
    "layer_norm",
    "layer_norm_backward",
    "linear",
    "linear_backward",
    "log_softmax",
    "log_softmax_backward",
    "relu",
    "relu_backward",
    "rms_norm",
    "rms_norm_backward",
    "sigmoid",
    "sigmoid_backward",
    "silu",
    "silu_backward",
    "softmax",
    "softmax_backward",
]
