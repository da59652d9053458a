"""NumPy operands in, product ready on the GPU: ``sharded_matmul`` on one device (chunks of A
uploaded while the GPU multiplies the earlier ones) against uploading both operands and then
multiplying (pocaflow and torch), and the parts alone (upload; the product of resident
operands, by events).

    python bench/sharded_matmul.py [--repeats 15]

Each time is wall-clock from the first host call to the product being ready (the device
synchronized), median of the repeats after warm-up; inputs are random, outputs fresh.
"""

import argparse
import statistics
import time

import numpy as np

import pocaflow as pf
from pocaflow.distributed import sharded_matmul


def wall(fn, repeats):
    for _ in range(3):
        fn()
    pf.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def gpu_ms(fn, repeats):
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start, end = pf.cuda.Event(enable_timing=True), pf.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def measure(x, y, repeats, torch) -> dict:
    """The times of one shape (see the module's docstring)."""

    def serial():
        pf.matmul(pf.asarray(x, device="cuda"), pf.asarray(y, device="cuda"))
        pf.cuda.synchronize()

    def sharded():
        sharded_matmul(x, y, devices=[0])
        pf.cuda.synchronize()

    def upload():
        pf.asarray(x, device="cuda")
        pf.asarray(y, device="cuda")
        pf.cuda.synchronize()

    gx, gy = pf.asarray(x, device="cuda"), pf.asarray(y, device="cuda")
    want = x[:64].astype(np.float64) @ y.astype(np.float64)
    got = sharded_matmul(x, y, devices=[0]).numpy()[:64]
    row = {
        "shape": f"{x.shape[0]}x{x.shape[1]}x{y.shape[1]}",
        "serial": wall(serial, repeats),
        "sharded": wall(sharded, repeats),
        "upload": wall(upload, repeats),
        "matmul": gpu_ms(lambda: pf.matmul(gx, gy), repeats),
        "err": float(np.abs(got - want).max() / np.abs(want).max()),
    }
    if torch is not None:

        def torch_serial():
            torch.from_numpy(x).cuda() @ torch.from_numpy(y).cuda()
            torch.cuda.synchronize()

        torch.backends.cuda.matmul.allow_tf32 = False
        row["torch"] = wall(torch_serial, repeats)
    return row


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=15)
    a = p.parse_args()
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    rows = []
    for m, k, n in [(4096, 4096, 4096), (8192, 8192, 8192), (16384, 4096, 4096)]:
        x = rng.standard_normal((m, k), dtype=np.float32)
        y = rng.standard_normal((k, n), dtype=np.float32)
        rows.append(measure(x, y, a.repeats, torch))
    print(
        f"{'shape':>16} {'upload':>8} {'matmul':>8} {'serial':>8} {'sharded':>8} "
        f"{'torch':>8} {'vs serial':>9} {'vs torch':>9} {'max rel err':>11}"
    )
    for r in rows:
        t = r.get("torch", float("nan"))
        print(
            f"{r['shape']:>16} {r['upload']:8.2f} {r['matmul']:8.2f} {r['serial']:8.2f} "
            f"{r['sharded']:8.2f} {t:8.2f} {r['serial'] / r['sharded']:8.2f}x "
            f"{t / r['sharded']:8.2f}x {r['err']:11.2e}"
        )
    print("times in ms (wall clock to the product ready; matmul: events, operands resident)")


if __name__ == "__main__":
    main()
