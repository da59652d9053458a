"""A check that a pocaflow program runs unchanged under torchrun (and under
``python -m pocaflow.distributed.run``): init_process_group from the environment, an
all_reduce, the values printed:
``torchrun --nproc-per-node=N bench/distributed_torchrun_check.py``."""

import os

import numpy as np

import pocaflow as pf

pf.distributed.init_process_group("nccl", timeout=60)
r, w = pf.distributed.get_rank(), pf.distributed.get_world_size()
x = pf.asarray(np.arange(8, dtype=np.float32) + r, device="cuda")
pf.distributed.all_reduce(x)
print(
    "torchrun rank",
    r,
    "of",
    w,
    "agent store",
    os.environ.get("TORCHELASTIC_USE_AGENT_STORE"),
    "sum",
    x.numpy().tolist(),
)
pf.distributed.destroy_process_group()
