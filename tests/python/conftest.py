"""Shared fixtures and the CUDA policy: a test marked ``cuda`` runs when a GPU is usable, is
skipped when none is, and *fails* when none is but ``POCAFLOW_REQUIRE_CUDA=1``."""

import os
from collections.abc import Iterator

import numpy as np
import pytest

import pocaflow as pf

REQUIRE_CUDA = os.environ.get("POCAFLOW_REQUIRE_CUDA") == "1"


def cuda_usable() -> bool:
    cuda = getattr(pf, "cuda", None)
    return cuda is not None and cuda.is_available()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("cuda") and not cuda_usable():
        if REQUIRE_CUDA:
            pytest.fail("POCAFLOW_REQUIRE_CUDA=1 but no usable CUDA device")
        pytest.skip("no usable CUDA device")


#: Every device test runs on the CPU and, where a GPU is usable, on CUDA three times: with the
#: default routing of matmuls (small float32/float64 products in pocaflow's own kernel, the
#: rest through cuBLASLt), with every product through cuBLASLt, and with every product the own
#: kernel can take (k <= 128) through it.
SMALL_MATMUL_THRESHOLDS = {"cuda": None, "cuda-cublaslt": 0, "cuda-own-kernel": 2**64 - 1}
DEVICES = ["cpu"] + [pytest.param(p, marks=pytest.mark.cuda) for p in SMALL_MATMUL_THRESHOLDS]


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> Iterator[str]:
    threshold = SMALL_MATMUL_THRESHOLDS.get(request.param)
    if threshold is None:
        yield request.param.split("-")[0]
        return
    default = pf.cuda.small_matmul_threshold()
    pf.cuda.set_small_matmul_threshold(threshold)
    try:
        yield "cuda"
    finally:
        pf.cuda.set_small_matmul_threshold(default)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261125)


#: The array tests run once per device kind: the CPU and, where a GPU is usable, cuda:0.
ARRAY_DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.fixture(params=ARRAY_DEVICES)
def xdev(request: pytest.FixtureRequest) -> str:
    return request.param
