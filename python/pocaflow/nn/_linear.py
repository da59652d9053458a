"""``linear`` and ``linear_backward``: a linear layer as one matrix product whose epilogue adds
the bias and applies the activation, and its gradients (native: ``_pocaflow.nn_linear``,
``_pocaflow.nn_linear_backward``)."""

from __future__ import annotations

from typing import Literal, Optional

from .. import _pocaflow as _n
from .._pocaflow import Tensor

__all__ = ["ACTIVATIONS", "linear", "linear_backward"]

#: The activations ``linear`` fuses into its product.
ACTIVATIONS = ("relu", "gelu", "gelu_tanh")

Activation = Optional[Literal["relu", "gelu", "gelu_tanh"]]


def _check(name: str, activation: object, **tensors: object) -> None:
    if activation is not None and activation not in ACTIVATIONS:
        raise ValueError(
            f"{name}: unknown activation {activation!r}; expected None or one of "
            + ", ".join(repr(a) for a in ACTIVATIONS)
        )
    for arg, t in tensors.items():
        if t is not None and not isinstance(t, Tensor):
            raise TypeError(f"{name}: {arg} must be a pocaflow.Tensor, got {type(t).__name__}")


def linear(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    activation: Activation = None,
) -> Tensor:
    """``activation(x @ weight.T + bias)``, as ``torch.nn.functional.linear`` plus an activation.

    ``weight`` has shape ``(out, in)`` and ``x`` any shape ``(..., in)`` (1-D included); the
    result has shape ``(..., out)``. ``bias`` (optional) has shape ``(out,)``. ``activation`` is
    ``None``, ``"relu"``, ``"gelu"`` (the exact form, ``x Φ(x)``) or ``"gelu_tanh"`` (the tanh
    approximation).

    The product, bias and activation are one matrix multiplication: on CUDA the bias, ``relu``
    and ``gelu_tanh`` are cuBLASLt epilogues of the product (exact ``gelu`` is the bias epilogue
    plus one in-place elementwise pass, cuBLASLt's GELU being the tanh form); on the CPU each
    result tile gets them as soon as it is complete, while it is in cache.

    All operands share one dtype: float32, float64, float16 or bfloat16 (the half types
    computed in float32 and rounded once, on both devices).

    Raises ``ValueError`` for shapes that do not fit (naming both) and unknown activations,
    ``TypeError`` for non-float or mixed dtypes and non-Tensor operands, ``RuntimeError`` for
    operands on different devices.
    """
    _check("linear", activation, x=x, weight=weight, bias=bias)
    return _n.nn_linear(x, weight, bias, activation)


def linear_backward(
    dy: Tensor,
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    activation: Activation = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The gradients ``(dx, dweight, dbias)`` of :func:`linear` for the output gradient ``dy``.

    With an activation the pre-activation ``z = x @ weight.T + bias`` is recomputed (one matmul
    with the bias epilogue) and ``dz = activation'(z) * dy`` is one elementwise pass; without
    one ``dz = dy``. Then ``dx = dz @ weight`` (the shape of ``x``), ``dweight = dz.T @ x``
    summed over every leading dimension of ``x``, and ``dbias`` the sum of ``dz`` over those
    dimensions (``None`` when ``bias`` is ``None``), computed with ``dweight`` (cuBLASLt's
    bias-gradient epilogue on CUDA).
    """
    _check("linear_backward", activation, dy=dy, x=x, weight=weight, bias=bias)
    return _n.nn_linear_backward(dy, x, weight, bias, activation)
