"""Neural-network functions (``pf.nn``)."""

from ._linear import linear, linear_backward

__all__ = ["linear", "linear_backward"]
