"""The data-parallel MLP demo: the share of each batch and the summed shard gradients (exactly
the global batch's, on the CPU without NCCL); on a GPU, training at world size 1 matches the
one-device demo step for step, and the demo runs under pocaflow's runner and torchrun."""

import io
import shutil
import subprocess
import sys

import numpy as np
import pytest

import pocaflow as pf
from pocaflow import distributed as dist
from pocaflow import nn
from pocaflow.demos import mlp, mlp_data_parallel
from pocaflow.demos.mlp_data_parallel import share
from pocaflow.distributed.run import free_port


def test_share_splits_like_array_split():
    for count in range(0, 70):
        for world in range(1, 9):
            got = [share(count, r, world) for r in range(world)]
            want = np.array_split(np.arange(count), world)
            assert [list(range(count))[s] for s in got] == [list(w) for w in want]


@pytest.mark.parametrize("world", [1, 2, 3, 5])
def test_summed_shard_gradients_are_the_batch_gradient(rng, world):
    """What the all-reduce sums on each rank adds up to the gradient of the whole batch's mean
    loss (the ranks emulated in one process on the CPU)."""
    model = mlp.MLP([64, 32, 32, 10], "cpu", seed=3)
    x = pf.asarray(rng.random((61, 64), dtype=np.float32))
    y = pf.asarray(rng.integers(0, 10, 61))
    logits, inputs = model.forward(x)
    whole = model.backward(nn.cross_entropy_backward(logits, y), inputs)
    summed = [np.zeros(g.shape) for g in whole]
    for rank in range(world):
        s = share(61, rank, world)
        logits, inputs = model.forward(x[s])
        d = nn.cross_entropy_backward(logits, y[s], reduction="sum") * (1.0 / 61)
        for acc, g in zip(summed, model.backward(d, inputs)):
            acc += g.numpy()
    for acc, g in zip(summed, whole):
        np.testing.assert_allclose(acc, g.numpy(), rtol=2e-5, atol=1e-7)


@pytest.mark.cuda
def test_world_size_one_matches_one_device():
    dist.init_process_group(
        "nccl", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1, device=0
    )
    try:
        out = io.StringIO()
        r = mlp_data_parallel.train("cuda:0", epochs=4, out=out)
    finally:
        dist.destroy_process_group()
    one = mlp.train("cuda", epochs=4, out=io.StringIO())
    np.testing.assert_allclose(r["losses"], one["losses"], rtol=1e-4)
    assert r["losses"][-1] < 0.5 * r["losses"][0] and r["test_accuracy"] >= 0.9, r
    assert "epoch   4" in out.getvalue() and "(1 ranks)" in out.getvalue()


def run_demo(launcher):
    args = [*launcher, "-m", "pocaflow.demos.mlp_data_parallel", "--epochs", "30"]
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


@pytest.mark.cuda
def test_demo_under_the_runner():
    n = pf.cuda.device_count()
    r = run_demo([sys.executable, "-m", "pocaflow.distributed.run", "--nproc", str(n)])
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"({n} ranks)" in r.stdout and "test accuracy" in r.stdout, r.stdout


@pytest.mark.cuda
def test_demo_under_torchrun():
    torchrun = shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun is not installed")
    r = run_demo([torchrun, "--nproc-per-node=1", f"--master-port={free_port()}"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "(1 ranks)" in r.stdout and "test accuracy" in r.stdout, r.stdout
