"""Neural-network functions (``pf.nn``)."""

from ._linear import linear, linear_backward
