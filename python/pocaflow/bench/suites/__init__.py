"""The suites, by name, in the order ``--suite all`` runs them; each module has ``NAME`` and
``cases(ctx)``, which lists its cases without measuring anything."""

from __future__ import annotations

from . import batched, e2e, elementwise, gemm, latency, nn, sparse, transfer

SUITES = {m.NAME: m for m in (gemm, batched, latency, transfer, e2e, elementwise, nn, sparse)}

__all__ = ["SUITES"]
