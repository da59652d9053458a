"""Shared fixtures and the CUDA policy: a test marked ``cuda`` runs when a GPU is usable, is
skipped when none is, and *fails* when none is but ``POCAFLOW_REQUIRE_CUDA=1``."""

import os

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


#: Every device test runs on the CPU and, where a GPU is usable, on CUDA.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261125)
