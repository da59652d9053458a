"""Benchmarks pocaflow against every peer importable here, in one run: ``python -m
pocaflow.bench``.

    python -m pocaflow.bench [--suite gemm|batched|latency|transfer|e2e|elementwise|nn|sparse|all]
                             [--device cpu|cuda] [--dtype f32,bf16,...] [--sizes N,N,...]
                             [--quick] [--out DIR] [--compare FILE.json]

The peers are NumPy, SciPy and PyTorch on the CPU, PyTorch and CuPy on CUDA; one that does not
import (or has no GPU) just drops its column. Every case runs each library once and checks
its result against float64 (or against the peer, where a suite says so), then times them
interleaved: warm-up calls, blocks of calls sized to a target time, repeats in an order that
rotates, medians. Inputs are random and never zero (arrays past 2^22 elements repeat a drawn
block); preallocated outputs (``out=`` on the CPU) are poisoned with NaN before the check; the
products and elementwise maps rotate among several input sets where one would sit in the
cache. GPU time is measured with each library's CUDA events (after a few ms of queued
products, so that launch cost stays out of it), host time by the wall clock around a block
and one synchronization; every row names its timer. On the CPU each NumPy/SciPy/torch block
of a product is followed by a 0.3 s pause (their idle BLAS threads spin and would take a
core from the next block) and each compute block starts after one untimed call.

At the end: a table per suite with one column per library and pocaflow's ratio against each
peer (above 1: better for pocaflow), the bars (the acceptance checks of earlier issues, kept
as ``bars``/``ok`` in the rows), and under ``--out`` a JSON (machine, versions, commit, rows),
the same tables in Markdown and, where matplotlib is installed (``pip install
pocaflow[bench]``), PNG plots of each swept suite with the known hardware peak
(:mod:`pocaflow.bench._peaks`). ``--compare`` prints each row's change against an earlier
JSON. A progress bar runs on stderr (tqdm if installed, else a plain one).

The suites (each module's docstring says what it measures on each device): gemm, batched,
latency, transfer, e2e, elementwise, nn, sparse. Nothing optional (torch, CuPy, SciPy,
matplotlib, tqdm) is imported until a run asks for it.
"""

from __future__ import annotations

from ._cli import main

__all__ = ["main"]
