"""elementwise: memory-bound operations in GB/s (every byte read and written once), CUDA by
each library's events, the CPU by the wall clock:

- ``add``, ``multiply`` and ``exp`` against the size of one input in MiB (on the CPU into a
  NaN-poisoned ``out=``, on CUDA into fresh outputs);
- broadcast ``add`` of a matrix and a row, and ``sum`` over all, the last axis and axis 0,
  and ``max`` over the last axis, of a square matrix (8192 on CUDA, 4096 on the CPU);
- gather and scatter with a boolean mask and with int64 indices, and normal random numbers
  (CUDA: 2^26 and 2^28 float32 elements; the CPU: 2^22 and 2^24).

Peers: NumPy and torch on the CPU; torch and CuPy (float types NumPy has) on CUDA. Bars on CUDA
(against torch): add, multiply, exp of 256 MiB >= 0.97x; broadcast add >= 1.25x (f32) and 2.0x
(bf16, a 8192 x 16384 matrix); sums >= 0.97x (bf16 over the last axis 1.3x); bf16 max 1.6x;
gather and scatter >= 1.0x; normals >= 0.9x. On the CPU (against NumPy, 64 MiB add and exp,
4096^2 sums): with pocaflow on one thread (``POCAFLOW_NUM_THREADS=1``) each >= 1.0x, with two
threads add >= 1.4x."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._case import CACHE_BYTES, Case, Context, measure
from .._peers import ITEMSIZE, Peer, Unsupported, pocaflow_config
from .._timing import Plan, cycling, input_sets, quick_or_full

NAME = "elementwise"
_MIB = 1 << 20
#: Relative error allowed against float64 of the float32 inputs (half types: their rounding).
TOL = {"f16": 5e-3, "bf16": 2e-2, "f32": 1e-5, "f64": 1e-12}
#: Elements of each output checked against float64 (a slice, taken on the device).
CHECK = 1 << 16
#: Arrays read and written per call, by operation.
ARRAYS = {"add": 3, "multiply": 3, "exp": 2}
_TORCH_NAMES = {"max": "amax"}
#: CPU bars against NumPy by (case kind, pocaflow's thread count).
CPU_BARS = {("add", 1): 1.0, ("add", 2): 1.4, ("exp", 1): 1.0, ("sum all", 1): 1.0}
CPU_BARS[("sum axis=-1", 1)] = 1.0


def plan(ctx: Context) -> Plan:
    """The default plan; on the CPU with a 20 ms pause after each peer's block."""
    return quick_or_full(ctx.quick, settle_s=0.02 if ctx.device == "cpu" else 0.0)


def _cpu_bar(ctx: Context, kind: str) -> dict[str, float] | None:
    threads = int(pocaflow_config().get("threads", 0))
    least = CPU_BARS.get((kind, threads))
    return None if least is None else {"numpy": least}


def _host(dtype: str) -> Any:
    return np.float64 if dtype == "f64" else np.float32


def _call(peer: Peer, op: str) -> Any:
    if peer.name == "scipy":
        raise Unsupported("SciPy computes these with NumPy")
    if peer.name == "torch":
        return getattr(peer.module, _TORCH_NAMES.get(op, op))
    return getattr(peer.module, op)


def map_case(ctx: Context, op: str, mib: int, dtype: str) -> dict:
    """``op`` over arrays of ``mib`` MiB each."""
    n = mib * _MIB // ITEMSIZE[dtype]
    arity = ARRAYS[op] - 1
    k = input_sets(3 * mib * _MIB, CACHE_BYTES[ctx.device])
    every = ctx.shared(
        ("map", n, dtype),
        lambda: [[ctx.nonzero(n, _host(dtype)) for _ in range(2)] for _ in range(k)],
    )
    sets = [xs[:arity] for xs in every]
    ref = getattr(np, op)(*[x[:CHECK].astype(np.float64) for x in sets[0]])
    cpu = ctx.device == "cpu"

    def build(peer: Peer):
        fn = _call(peer, op)
        args = [[peer.put(x, dtype) for x in xs] for xs in sets]
        if not cpu:
            return cycling([lambda xs=xs: fn(*xs) for xs in args])
        out = peer.put(np.full(n, np.nan, _host(dtype)), dtype)
        return cycling([lambda xs=xs: fn(*xs, out=out) for xs in args])

    if cpu:
        bars = _cpu_bar(ctx, op) if mib == 64 and dtype == "f32" else None
    else:
        bars = {"torch": 0.97} if mib == 256 and dtype in ("f32", "bf16") else None
    return measure(
        ctx,
        NAME,
        f"{op} {mib} MiB {dtype}",
        {name: build for name in ctx.peers},
        "GB/s",
        plan(ctx),
        work=ARRAYS[op] * n * ITEMSIZE[dtype],
        bars=bars,
        reference=ref,
        tol=TOL[dtype],
        view=lambda y: y[:CHECK],
        x=mib,
        series=f"{op} {dtype}",
        input_sets=k,
    )


def broadcast_case(ctx: Context, rows: int, cols: int, dtype: str) -> dict:
    """``matrix + row`` of a (rows, cols) matrix."""
    m, v = ctx.nonzero((rows, cols), _host(dtype)), ctx.nonzero(cols, _host(dtype))

    def build(peer: Peer):
        pm, pv = peer.put(m, dtype), peer.put(v, dtype)
        return lambda: pm + pv

    bars = None
    if ctx.device == "cuda" and (dtype, rows, cols) in (("f32", 8192, 8192), ("bf16", 8192, 16384)):
        bars = {"torch": 1.25 if dtype == "f32" else 2.0}
    return measure(
        ctx,
        NAME,
        f"broadcast add ({rows},{cols})+({cols},) {dtype}",
        {name: build for name in ctx.peers if name != "scipy"},
        "GB/s",
        plan(ctx),
        work=(2 * rows * cols + cols) * ITEMSIZE[dtype],
        bars=bars,
        reference=m[:64].astype(np.float64) + v,
        tol=TOL[dtype],
        view=lambda y: y[:64],
    )


def reduce_case(ctx: Context, n: int, kind: str, dtype: str) -> dict:
    """A reduction (``sum all``, ``sum axis=-1``, ``sum axis=0``, ``max axis=-1``) of n x n."""
    x = ctx.shared(("square", n, dtype), lambda: ctx.nonzero((n, n), _host(dtype)))
    op, _, axis_text = kind.partition(" ")
    axis = None if axis_text == "all" else int(axis_text.split("=")[1])

    def build(peer: Peer):
        px, fn = peer.put(x, dtype), _call(peer, op)
        if axis is None:
            return lambda: fn(px)
        if peer.name == "torch":
            return lambda: fn(px, dim=axis)
        return lambda: fn(px, axis=axis)

    ref = getattr(np, op)(x.astype(np.float64), axis=axis)
    if ctx.device == "cpu":
        bars = _cpu_bar(ctx, kind) if n == 4096 and dtype == "f32" else None
    elif n != 8192 or dtype not in ("f32", "bf16") or (op == "max" and dtype != "bf16"):
        bars = None
    elif op == "max":
        bars = {"torch": 1.6}
    else:
        bars = {"torch": 1.3 if (dtype, axis) == ("bf16", -1) else 0.97}
    return measure(
        ctx,
        NAME,
        f"{kind} ({n},{n}) {dtype}",
        {name: build for name in ctx.peers},
        "GB/s",
        plan(ctx),
        work=n * n * ITEMSIZE[dtype],
        bars=bars,
        reference=ref,
        tol=1e-4 if dtype in ("f32", "f64") else TOL[dtype],
    )


def _plain(peer: Peer, host: np.ndarray) -> Any:
    """A mask or index array (no dtype conversion) in the peer's library."""
    m = peer.module
    if peer.name == "pocaflow":
        return m.asarray(host, device=peer.device)
    if peer.name == "torch":
        return m.as_tensor(host, device=peer.device)
    return m.asarray(host)


def index_case(ctx: Context, n: int, kind: str) -> dict:
    """Gather or scatter of ``n`` float32 elements (``x[mask]``, ``x[idx]``, ``x[mask] = 1.5``,
    ``x[mask] = values``, ``x[idx] = values``); the mask's cases include the count each
    library reads back."""
    x, vals, mask, idx = ctx.shared(
        ("index", n), lambda: (ctx.normal(n), ctx.normal(n), ctx.mask(n), ctx.indices(n))
    )
    selected = int(mask.sum())

    def build(peer: Peer):
        px = peer.put(x.copy(), "f32")  # a copy: the scatters write into it
        pm, pi, pv = _plain(peer, mask), _plain(peer, idx), peer.put(vals, "f32")
        pvs = pv[:selected]

        def set_mask_scalar():
            px[pm] = 1.5

        def set_mask_values():
            px[pm] = pvs

        def set_index_values():
            px[pi] = pv

        return {
            "gather x[mask]": lambda: px[pm],
            "gather x[int64 idx]": lambda: px[pi],
            "scatter x[mask] = 1.5": set_mask_scalar,
            "scatter x[mask] = values": set_mask_values,
            "scatter x[int64 idx] = values": set_index_values,
        }[kind]

    reference = {"gather x[mask]": x[mask], "gather x[int64 idx]": x[idx[:CHECK]]}.get(kind)
    return measure(
        ctx,
        NAME,
        f"{kind} {n} f32",
        {name: build for name in ctx.peers if name != "scipy"},
        "ms",
        plan(ctx),
        bars={"torch": 1.0} if ctx.device == "cuda" and n == 1 << 26 else None,
        reference=None if reference is None else reference[:CHECK],
        tol=0.0,
        view=lambda y: y[:CHECK],
    )


def normal_case(ctx: Context, n: int) -> dict:
    """``n`` float32 normal random numbers, GB/s of output."""

    def build(peer: Peer):
        m = peer.module
        if peer.name == "pocaflow":
            gen = m.random.Generator(1234)
            return lambda: gen.normal((n,), dtype=m.float32, device=peer.device)
        if peer.name == "torch":
            m.manual_seed(1234)
            return lambda: m.randn(n, device=peer.device)
        if peer.name == "cupy":
            return lambda: m.random.standard_normal(n, dtype=np.float32)
        if peer.name == "numpy":
            rng = np.random.default_rng(1234)
            return lambda: rng.standard_normal(n, dtype=np.float32)
        raise Unsupported(f"{peer.name} has no generator here")

    return measure(
        ctx,
        NAME,
        f"normal {n} f32",
        {name: build for name in ctx.peers},
        "GB/s",
        plan(ctx),
        work=4 * n,
        bars={"torch": 0.9} if ctx.device == "cuda" and n == 1 << 28 else None,
    )


def cases(ctx: Context) -> list[Case]:
    """The maps at every size and dtype (defaults: f32 on the CPU, f32 and bf16 on CUDA),
    then broadcast, reductions, indexing and normals."""
    cpu, quick = ctx.device == "cpu", ctx.quick
    sizes = ctx.pick_sizes(
        [4, 64] if quick else [1, 4, 16, 64, 256], [16, 256] if quick else [1, 16, 256, 1024]
    )
    dtypes = ctx.pick_dtypes(["f32"], ["f32", "bf16"])
    out = [
        Case(NAME, f"{op} {s} MiB {dt}", lambda op=op, s=s, dt=dt: [map_case(ctx, op, s, dt)])
        for dt in dtypes
        for s in sizes
        for op in ARRAYS
    ]
    n = 4096 if cpu else 8192
    for dt in dtypes:
        cols = 16384 if dt == "bf16" and not cpu else n
        out.append(
            Case(NAME, f"broadcast {dt}", lambda dt=dt, c=cols: [broadcast_case(ctx, n, c, dt)])
        )
        kinds = ["sum all", "sum axis=-1", "sum axis=0"] + (
            ["max axis=-1"] if dt != "f32" or cpu else []
        )
        out += [
            Case(NAME, f"{kind} {dt}", lambda kind=kind, dt=dt: [reduce_case(ctx, n, kind, dt)])
            for kind in kinds
        ]
    gather_n, normal_n = (1 << 22, 1 << 24) if cpu else (1 << 26, 1 << 28)
    out += [
        Case(NAME, kind, lambda kind=kind: [index_case(ctx, gather_n, kind)])
        for kind in (
            "gather x[mask]",
            "gather x[int64 idx]",
            "scatter x[mask] = 1.5",
            "scatter x[mask] = values",
            "scatter x[int64 idx] = values",
        )
    ]
    out.append(Case(NAME, "normal", lambda: [normal_case(ctx, normal_n)]))
    return out
