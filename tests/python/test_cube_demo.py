"""The cube demo: its frames against a NumPy reference written here from the rules in the demo's
docstring, its shades, its output without a terminal, its command line, the terminal restored
after Ctrl-C, and the Rust twin's frames (when that example is built)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import pocaflow as pf
from pocaflow.demos import cube

RAMP = ".,-~:;=!*#$@"
DISTANCE = 5.0
LIGHT = np.array([-2.0, 3.0, -6.0])
#: How close (in columns, rows, depth or twelfths of the light's cosine) the reference's value
#: must come to a decision boundary for the cell to count as a tie that an ulp could flip.
EPS = 1e-9
ROOT = Path(__file__).resolve().parents[2]


def reference_rotation(ax: float, ay: float, az: float) -> np.ndarray:
    """``Rz(az) @ Ry(ay) @ Rx(ax)``, by NumPy's float64 matmul."""
    c, s = np.cos, np.sin
    rx = np.array([[1, 0, 0], [0, c(ax), -s(ax)], [0, s(ax), c(ax)]])
    ry = np.array([[c(ay), 0, s(ay)], [0, 1, 0], [-s(ay), 0, c(ay)]])
    rz = np.array([[c(az), -s(az), 0], [s(az), c(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def reference_faces(m: int):
    """``(normal, points)`` of each face: ``normal + u t1 + v t2`` over the ``m x m`` cell
    centres ``u, v`` of the face's square, ``t1, t2`` its two tangent axes."""
    u = (np.arange(m) + 0.5) * (2.0 / m) - 1.0
    for normal in np.concatenate([np.eye(3), -np.eye(3)]):
        t1, t2 = (e for e in np.eye(3) if not e @ normal)
        grid = normal + u[:, None, None] * t1 + u[None, :, None] * t2
        yield normal, grid.reshape(-1, 3)


def _cells_near(col, row, width, height):
    """The cells that points at ``(col, row)`` could fall in if moved by ``EPS``."""
    cells = []
    for dc in (-EPS, EPS):
        for dr in (-EPS, EPS):
            c, r = np.floor(col + dc), np.floor(row + dr)
            ok = (c >= 0) & (c < width) & (r >= 0) & (r < height)
            cells.append((r[ok] * width + c[ok]).astype(int))
    return np.concatenate(cells)


def reference(angles, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The frame as an ``(H, W)`` array of characters, and where it is fragile: cells whose
    character an ulp could change (a point within ``EPS`` of a cell edge, two candidates of
    different shades within ``EPS`` of the nearest depth, a shade or a face's visibility within
    ``EPS`` of its threshold). The depth buffer is a maximum per cell (``np.maximum.at``)."""
    width, height = size, size // 2
    kx, ky = 1.2 * width, 0.6 * width
    r = reference_rotation(*angles)
    fragile = np.zeros(width * height, bool)
    cols, rows, depths, lums = [], [], [], []
    for normal, points in reference_faces(3 * size // 2):
        n, p = r @ normal, points @ r.T
        q = 1.0 / (p[:, 2] + DISTANCE)
        col, row = width / 2 + kx * p[:, 0] * q, height / 2 - ky * p[:, 1] * q
        towards_camera = DISTANCE * n[2] + 1.0
        if abs(towards_camera) < EPS:
            fragile[_cells_near(col, row, width, height)] = True
        if towards_camera >= 0:
            continue
        to_light = LIGHT - p
        lums.append(12.0 * (to_light @ n) / np.linalg.norm(to_light, axis=1))
        cols.append(col)
        rows.append(row)
        depths.append(q)
    col, row, q, lum = (np.concatenate(v) for v in (cols, rows, depths, lums))
    near_edge = (np.abs(col - np.round(col)) < EPS) | (np.abs(row - np.round(row)) < EPS)
    fragile[_cells_near(col[near_edge], row[near_edge], width, height)] = True
    c, rr = np.floor(col), np.floor(row)
    inside = (c >= 0) & (c < width) & (rr >= 0) & (rr < height)
    cell = (rr * width + c).astype(int)[inside]
    q, lum = q[inside], lum[inside]
    nearest = np.full(width * height, -np.inf)
    np.maximum.at(nearest, cell, q)
    candidate = q >= nearest[cell] - EPS
    level = np.clip(np.floor(lum), 0, len(RAMP) - 1).astype(int)
    lo, hi = np.full(width * height, len(RAMP)), np.full(width * height, -1)
    np.minimum.at(lo, cell[candidate], level[candidate])
    np.maximum.at(hi, cell[candidate], level[candidate])
    fragile |= (hi >= 0) & (lo != hi)
    on_step = candidate & (np.abs(lum - np.round(lum)) < EPS)
    fragile[cell[on_step]] = True
    chars = np.where(hi >= 0, np.array(list(RAMP))[np.maximum(hi, 0)], " ")
    return chars.reshape(height, width), fragile.reshape(height, width)


def unexplained_differences(frame: str, angles, size: int) -> int:
    """How many cells of ``frame`` differ from the reference where it is not fragile; asserts
    that the frame has the reference's shape and that fragile cells are rare."""
    want, fragile = reference(angles, size)
    got = np.array([list(line) for line in frame.split("\n")])
    assert got.shape == want.shape == (size // 2, size)
    assert fragile.mean() < 0.01, f"{fragile.sum()} fragile cells"
    return int(((got != want) & ~fragile).sum())


ANGLES = [cube.angles_at(k) for k in (0, 17, 90)] + [(2.3, -0.4, 1.1), (-1.2, 3.0, -0.7)]


@pytest.mark.parametrize("angles", ANGLES)
@pytest.mark.parametrize("size", [9, 30, 60, 101])
def test_frames_match_the_numpy_reference(xdev, angles, size):
    frame = cube.render(angles, size, xdev)
    assert unexplained_differences(frame, angles, size) == 0, "\n" + frame
    if size >= 30:
        shades = set(frame) - set(" \n")
        assert len(shades) >= 3 and shades <= set(RAMP), frame
        assert frame.count(" ") < 0.9 * size * (size // 2), frame


def test_ties_at_a_symmetric_angle_are_tolerated():
    """At 45 degrees about x, depths and cell edges tie exactly: NumPy's and pocaflow's rounding
    may pick either side there, and nowhere else."""
    angles = (np.pi / 4, 0.0, 0.0)
    assert unexplained_differences(cube.render(angles, 60), angles, 60) == 0


def test_the_reference_tells_angles_apart():
    angles = cube.angles_at(5)
    nudged = tuple(a + 0.03 for a in angles)
    assert unexplained_differences(cube.render(nudged, 60), angles, 60) > 20
    assert unexplained_differences(cube.render(angles, 60), angles, 60) == 0


def test_every_frame_has_several_shades():
    seen = set()
    for k in range(0, 300, 3):
        shades = set(cube.render(cube.angles_at(k), 40)) - set(" \n")
        assert len(shades) >= 2, k
        seen |= shades
    assert len(seen) >= 9, sorted(seen)


def test_without_a_terminal_the_frames_follow_each_other(capsys):
    cube.main(["--frames", "3", "--fps", "0", "--size", "20"])
    out, err = capsys.readouterr()
    assert out == "\n\n".join(cube.render(cube.angles_at(k), 20) for k in range(3)) + "\n"
    assert "\x1b" not in out and "frames drawn: 3 (20x10 on cpu)" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--size", "0"], "size must be between 4 and 400, got 0"),
        (["--size", "401"], "size must be between 4 and 400"),
        (["--size", "big"], "--size"),
        (["--fps", "-1"], "must be >= 0"),
        (["--fps", "nan"], "must be >= 0"),
        (["--frames", "-2"], "must be >= 0"),
        (["--frames", "1.5"], "--frames"),
    ],
)
def test_bad_arguments_are_argparse_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        cube.main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_render_rejects_a_bad_size():
    with pytest.raises(ValueError, match="size must be between 4 and 400, got 3"):
        cube.render((0.0, 0.0, 0.0), 3)


def test_an_unusable_device_is_a_clear_error():
    with pytest.raises(SystemExit, match="cube: device 'tpu': unknown device"):
        cube.main(["--device", "tpu", "--frames", "1"])
    if not pf.cuda.is_available():
        with pytest.raises(SystemExit, match="cube: device 'cuda': CUDA is not available"):
            cube.main(["--device", "cuda", "--frames", "1"])


def _read_all(fd: int, chunks: list[bytes]) -> None:
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError:  # the other end closed
        pass


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_the_terminal_comes_back_after_ctrl_c(sig):
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(Path(cube.__file__).parents[2]))
    args = [sys.executable, "-m", "pocaflow.demos.cube", "--frames", "0", "--size", "20"]
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    chunks: list[bytes] = []
    reader = threading.Thread(target=_read_all, args=(master, chunks), daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    while b"\x1b[H" not in b"".join(chunks) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    reader.join(timeout=5)
    os.close(master)
    out = b"".join(chunks)
    assert proc.returncode == 0, err
    assert out.startswith(b"\x1b[?1049h\x1b[?25l\x1b[H"), out[:40]
    assert out.endswith(b"\x1b[?25h\x1b[?1049l"), out[-40:]
    assert b"frames drawn:" in err


def test_the_rust_example_draws_the_same_frames(capsys):
    """Runs ``target/release/examples/cube`` when it is built (``cargo build --release --example
    cube``) and newer than its source; the Python suite builds nothing."""
    exe = ROOT / "target" / "release" / "examples" / "cube"
    source = ROOT / "crates" / "pocaflow" / "examples" / "cube.rs"
    if not exe.exists() or exe.stat().st_mtime < source.stat().st_mtime:
        pytest.skip("the Rust cube example is not built (or older than its source)")
    argv = ["--frames", "4", "--fps", "0", "--size", "47"]
    rust = subprocess.run([exe, *argv], stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    cube.main(argv)
    assert rust.returncode == 0, rust.stderr
    assert rust.stdout.decode() == capsys.readouterr().out
