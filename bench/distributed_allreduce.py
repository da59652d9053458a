"""all_reduce of 256 MiB of float32 at world size 1 on one GPU: pocaflow against
torch.distributed (NCCL), CUDA events on each library's stream, medians of 50 calls after 10
of warm-up. Run on the GPU machine: ``python bench/distributed_allreduce.py``."""

import os
import statistics
import time

import numpy as np
import torch
import torch.distributed as tdist

import pocaflow as pf
from pocaflow import distributed as dist
from pocaflow.distributed.run import free_port

N = 64 << 20  # 256 MiB of float32
REPS, WARM = 50, 10


def pf_times(x):
    s = pf.cuda.current_stream()
    out = []
    for i in range(WARM + REPS):
        a, b = pf.cuda.Event(enable_timing=True), pf.cuda.Event(enable_timing=True)
        a.record(s)
        dist.all_reduce(x)
        b.record(s)
        b.synchronize()
        if i >= WARM:
            out.append(a.elapsed_time(b) * 1000)
    return out


def torch_times(x):
    out = []
    for i in range(WARM + REPS):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        tdist.all_reduce(x)
        b.record()
        b.synchronize()
        if i >= WARM:
            out.append(a.elapsed_time(b) * 1000)
    return out


def host_us(call, sync):
    """Host time per call, 50 calls enqueued back to back (then one wait)."""
    sync()
    t0 = time.perf_counter()
    for _ in range(REPS):
        call()
    t1 = time.perf_counter()
    sync()
    return (t1 - t0) / REPS * 1e6


def main():
    rng = np.random.default_rng(0)
    a = rng.standard_normal(N, dtype=np.float32)
    dist.init_process_group("nccl", f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    tdist.init_process_group("nccl", rank=0, world_size=1, device_id=torch.device("cuda:0"))
    x = pf.asarray(a, device="cuda")
    y = torch.from_numpy(a).cuda()
    rows = []
    for _ in range(3):
        rows.append((statistics.median(pf_times(x)), statistics.median(torch_times(y))))
    host = (
        host_us(lambda: dist.all_reduce(x), lambda: pf.cuda.synchronize()),
        host_us(lambda: tdist.all_reduce(y), torch.cuda.synchronize),
    )
    assert np.array_equal(x.numpy(), a) and np.array_equal(y.cpu().numpy(), a)
    print("NCCL", dist.nccl_version(), "torch NCCL", torch.cuda.nccl.version())
    print("| round | pocaflow us | torch us | torch / pocaflow |")
    print("| --- | --- | --- | --- |")
    for i, (p, t) in enumerate(rows):
        print(f"| {i + 1} | {p:.1f} | {t:.1f} | {t / p:.3f} |")
    print(f"host time per call: pocaflow {host[0]:.1f} us, torch {host[1]:.1f} us")
    dist.destroy_process_group()
    tdist.destroy_process_group()


if __name__ == "__main__":
    main()
