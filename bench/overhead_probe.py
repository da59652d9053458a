"""Host cost per small CUDA matmul call from Python, split by what the call does: a fresh
output, ``out=``, and the ``@`` operator; torch's ``matmul`` in the same run for comparison."""

import time

import numpy as np

import pocaflow as pf

CALLS = 10_000


def per_call(fn, sync):
    fn()
    sync()
    start = time.perf_counter()
    for _ in range(CALLS):
        fn()
    sync()
    return (time.perf_counter() - start) * 1e6 / CALLS


def main():
    a_np = np.random.default_rng(0).standard_normal((64, 64), dtype=np.float32)
    a = pf.Tensor.from_array(a_np, device="cuda")
    out = pf.Tensor.from_array(a_np, device="cuda")
    rows = {
        "pf.matmul(a, a)": lambda: pf.matmul(a, a),
        "pf.matmul(a, a, out=c)": lambda: pf.matmul(a, a, out=out),
        "a @ a": lambda: a @ a,
    }
    try:
        import torch

        t = torch.from_numpy(a_np).cuda()
        torch_row = ("torch.matmul(t, t)", lambda: torch.matmul(t, t), torch.cuda.synchronize)
    except ImportError:
        torch_row = None
    for _ in range(3):
        for name, fn in rows.items():
            print(f"{name:28s} {per_call(fn, pf.cuda.synchronize):6.2f} us/call")
        if torch_row:
            print(f"{torch_row[0]:28s} {per_call(torch_row[1], torch_row[2]):6.2f} us/call")


if __name__ == "__main__":
    main()
