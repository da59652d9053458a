"""Spins a shaded cube in the terminal; each frame's rotation is one pocaflow matmul.

    python -m pocaflow.demos.cube [--frames N] [--fps F] [--size S] [--device cpu|cuda]

``--frames 0`` spins until Ctrl-C; ``--fps 0`` draws as fast as it can. At the end (or on
Ctrl-C) the terminal gets its screen and cursor back, and the frame rate goes to stderr: the
render time per frame (the matmul, projection, depth buffer and text, without the pacing sleep)
and the rate at which frames were shown. Without a terminal the frames are printed one after
another, separated by a blank line.

The rules, shared with ``cargo run --release --example cube`` (which draws the same frames):

- The cube is [-1, 1]^3; each face is sampled at the centres of an ``m x m`` grid, ``m = 3 * size
  // 2``. The points, face after face (normals +x, -x, +y, -y, +z, -z), and then the six face
  normals form one ``(6 m^2 + 6, 3)`` float64 array; ``pf.matmul`` of it with ``R^T``, ``R =
  Rz(az) Ry(ay) Rx(ax)``, rotates points and normals at once.
- The camera sits at ``z = -DISTANCE`` looking towards +z. A face is drawn when it faces the
  camera (``DISTANCE * nz < -1``). A point ``(x, y, z)`` lands in column ``floor(W / 2 + kx * x *
  q)`` and row ``floor(H / 2 - ky * y * q)`` of a ``W x H`` frame (``W = size``, ``H = size //
  2``: characters are about twice as tall as wide), ``q = 1 / (z + DISTANCE)``, ``kx = 1.2 W``,
  ``ky = kx / 2``. In each cell the point with the largest ``q`` (the nearest) wins, the later one
  in point order on a tie; empty cells are spaces.
- The winner's character is ``RAMP[floor(12 n . l)]`` (clipped to the ramp), ``n`` its face's
  rotated normal and ``l`` the unit vector from it towards the light at ``LIGHT_POSITION``: the
  faces are shaded with gradients, so that two faces meeting at an edge differ along it.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import math
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from typing import TextIO

import numpy as np

import pocaflow as pf

#: Dark to bright; one character per twelfth of the light's cosine range [0, 1].
RAMP = ".,-~:;=!*#$@"
#: The camera's distance from the cube's centre.
DISTANCE = 5.0
#: Where the light is: up and to the left of the camera (which sits at ``(0, 0, -DISTANCE)``).
LIGHT_POSITION = (-2.0, 3.0, -6.0)
#: The smallest and largest ``--size``.
MIN_SIZE, MAX_SIZE = 4, 400
#: The frame rate the interactive demo paces itself to, and its default length (5 seconds).
DEFAULT_FPS, DEFAULT_FRAMES = 30.0, 150

_ENTER = "\x1b[?1049h\x1b[?25l"  # alternate screen, hidden cursor
_LEAVE = "\x1b[?25h\x1b[?1049l"  # visible cursor, main screen
_HOME = "\x1b[H"
_RAMP_BYTES = np.frombuffer(RAMP.encode("ascii"), dtype=np.uint8)


def angles_at(frame: int) -> tuple[float, float, float]:
    """The rotation angles ``(ax, ay, az)`` in radians of frame ``frame`` (0 is the first)."""
    return (-0.5 + 0.05 * frame, 0.6 + 0.07 * frame, 0.15 + 0.03 * frame)


def rotation(angles: tuple[float, float, float]) -> np.ndarray:
    """``R^T`` for ``R = Rz(az) Ry(ay) Rx(ax)``: row vectors times it are rotated by ``R``. The
    entries are written out (with ``math``'s sine and cosine) so that the Rust example computes
    the same bits."""
    cx, sx = math.cos(angles[0]), math.sin(angles[0])
    cy, sy = math.cos(angles[1]), math.sin(angles[1])
    cz, sz = math.cos(angles[2]), math.sin(angles[2])
    r = [
        [cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx],
        [sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx],
        [-sy, cy * sx, cy * cx],
    ]
    return np.array(r, dtype=np.float64).T.copy()


def check_size(size: int) -> int:
    """``size``, or a ``ValueError`` saying why it is not a usable frame width."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be between {MIN_SIZE} and {MAX_SIZE}, got {size}")
    return size


def grid_size(size: int) -> int:
    """Points per face edge: about 0.5 columns apart on the screen at the nearest, no holes."""
    return 3 * size // 2


@functools.lru_cache(maxsize=8)
def surface(size: int) -> np.ndarray:
    """The face points (face after face, row-major in the face's two other axes) and then the six
    face normals, as one read-only ``(6 m^2 + 6, 3)`` float64 array."""
    m = grid_size(check_size(size))
    u = (2.0 * np.arange(m) + 1.0) / m - 1.0
    a, b = (g.ravel() for g in np.meshgrid(u, u, indexing="ij"))
    faces, normals = [], []
    for axis in range(3):
        others = [k for k in range(3) if k != axis]
        for sign in (1.0, -1.0):
            face = np.empty((m * m, 3))
            face[:, axis] = sign
            face[:, others[0]], face[:, others[1]] = a, b
            faces.append(face)
            normal = np.zeros(3)
            normal[axis] = sign
            normals.append(normal)
    stack = np.concatenate(faces + [np.array(normals)])
    stack.flags.writeable = False
    return stack


@functools.lru_cache(maxsize=8)
def _surface_on(size: int, device: str) -> pf.Tensor:
    """:func:`surface` on ``device``, uploaded once per size and device."""
    return pf.asarray(surface(size), device=device)


def _nearest(points: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The depth buffer: the text cells (indices into ``height`` lines of ``width + 1``
    characters, the last one a newline) that points land in, and the index of each one's
    nearest point (the later one on a tie)."""
    kx = 1.2 * width
    ky = kx / 2
    q = 1.0 / (points[:, 2] + DISTANCE)
    col = np.floor(width / 2 + kx * points[:, 0] * q)
    row = np.floor(height / 2 - ky * points[:, 1] * q)
    inside = np.flatnonzero((col >= 0) & (col < width) & (row >= 0) & (row < height))
    cell = (row[inside] * (width + 1) + col[inside]).astype(np.intp)
    order = np.lexsort((q[inside], cell))  # by cell, then by depth; stable: later points last
    cell = cell[order]
    last = np.append(cell[1:] != cell[:-1], True)  # each cell's nearest point
    return cell[last], inside[order[last]]


def shade_levels(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Indices into :data:`RAMP`: ``floor(12 n . l)`` clipped to the ramp, ``n`` each point's
    (rotated) face normal and ``l`` the unit vector from the point towards the light."""
    dx = LIGHT_POSITION[0] - points[:, 0]
    dy = LIGHT_POSITION[1] - points[:, 1]
    dz = LIGHT_POSITION[2] - points[:, 2]
    dot = normals[:, 0] * dx + normals[:, 1] * dy + normals[:, 2] * dz
    lum = dot / np.sqrt(dx * dx + dy * dy + dz * dz)
    return np.clip(np.floor(12.0 * lum), 0, len(RAMP) - 1).astype(np.intp)


def render(angles: tuple[float, float, float], size: int, device: str = "cpu") -> str:
    """The frame for rotation ``angles`` as ``size // 2`` lines of ``size`` characters joined by
    newlines (no trailing newline). The rotation runs as one ``pf.matmul`` on ``device``; the
    rest (projection, depth buffer, shading) is vectorized NumPy."""
    width, height = size, check_size(size) // 2
    stack = _surface_on(size, device)
    rotated = pf.matmul(stack, pf.asarray(rotation(angles), device=device)).numpy()
    per_face = grid_size(size) ** 2
    normals = rotated[-6:]
    visible = np.flatnonzero(DISTANCE * normals[:, 2] < -1.0)  # faces towards the camera
    points = np.concatenate([rotated[f * per_face : (f + 1) * per_face] for f in visible])
    cells, nearest = _nearest(points, width, height)
    face = visible[nearest // per_face]
    text = np.full((height, width + 1), ord(" "), dtype=np.uint8)
    text[:, -1] = ord("\n")
    text.reshape(-1)[cells] = _RAMP_BYTES[shade_levels(points[nearest], normals[face])]
    return text.tobytes().decode("ascii")[:-1]


def default_size() -> int:
    """60, or less when the terminal is narrower or shorter than a 60-wide frame."""
    cols, lines = shutil.get_terminal_size((60, 30))
    return max(MIN_SIZE, min(60, cols, 2 * lines))


def _size_arg(text: str) -> int:
    """``--size``'s parser: a usable frame width, else an argparse error saying why."""
    try:
        return check_size(int(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _non_negative(kind):
    """A parser of ``kind`` (``int`` or ``float``) values that rejects negatives and NaN."""

    def parse(text: str):
        value = kind(text)
        if not value >= 0:  # also rejects NaN
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
        return value

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; ``--size`` defaults to what fits the terminal (at most 60)."""
    p = argparse.ArgumentParser(prog="python -m pocaflow.demos.cube", description=__doc__)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument(
        "--frames",
        type=_non_negative(int),
        default=DEFAULT_FRAMES,
        help=f"frames to draw, 0 = until Ctrl-C (default {DEFAULT_FRAMES})",
    )
    p.add_argument(
        "--fps",
        type=_non_negative(float),
        default=DEFAULT_FPS,
        help=f"frames per second, 0 = as fast as possible (default {DEFAULT_FPS:g})",
    )
    p.add_argument(
        "--size",
        type=_size_arg,
        default=None,
        help=f"frame width in columns, {MIN_SIZE}..{MAX_SIZE} (default: fits, <= 60)",
    )
    p.add_argument("--device", default="cpu", help="where the matmul runs: cpu, cuda, cuda:N")
    args = p.parse_args(argv)
    if args.size is None:
        args.size = default_size()
    return args


@contextlib.contextmanager
def _terminal(out: TextIO) -> Iterator[None]:
    """The alternate screen with a hidden cursor, given back however the block ends; SIGTERM
    ends the block like Ctrl-C, and a second Ctrl-C cannot interrupt the restoring."""

    def on_term(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    out.write(_ENTER)
    try:
        yield
    finally:
        interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)
        out.write(_LEAVE)
        out.flush()
        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, previous)


def animate(args: argparse.Namespace, out: TextIO, tty: bool) -> tuple[int, float, float]:
    """Draws the frames (in place on a terminal, else one after another); returns the frames
    drawn, the seconds spent rendering them and the seconds the whole loop took."""
    frames = itertools.count() if args.frames == 0 else range(args.frames)
    drawn, rendering = 0, 0.0
    start = time.perf_counter()
    with _terminal(out) if tty else contextlib.nullcontext():
        try:
            for k in frames:
                t = time.perf_counter()
                frame = render(angles_at(k), args.size, args.device)
                rendering += time.perf_counter() - t
                out.write(_HOME + frame if tty else ("\n" if k else "") + frame + "\n")
                out.flush()
                drawn += 1
                if args.fps:
                    time.sleep(max(0.0, start + drawn / args.fps - time.perf_counter()))
        except KeyboardInterrupt:
            pass
    return drawn, rendering, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    """Runs the demo; exits with a message if the device is unusable."""
    args = parse_args(argv)
    try:
        _surface_on(args.size, args.device)
    except (RuntimeError, ValueError) as e:
        raise SystemExit(f"cube: device {args.device!r}: {e}") from None
    try:
        drawn, rendering, total = animate(args, sys.stdout, sys.stdout.isatty())
    except BrokenPipeError:  # e.g. `| head`: stop quietly, as `cat` would
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    if drawn:
        print(
            f"frames drawn: {drawn} ({args.size}x{args.size // 2} on {args.device}); render "
            f"{1e3 * rendering / drawn:.2f} ms/frame ({drawn / rendering:.0f} fps), "
            f"shown at {drawn / total:.1f} fps",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
