"""What a run's JSON says about where it ran: the machine (CPU, cores, GPU, driver), the
versions of Python, pocaflow and each peer, and the commit of the code under test."""

from __future__ import annotations

import datetime
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

from ._peers import Peer, pocaflow_config

#: The repository a source checkout of this package sits in (python/pocaflow/bench/...).
_SOURCE_ROOT = Path(__file__).resolve().parents[3]


def _git(cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True, text=True
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def measured_commit() -> str:
    """The commit of the code under test: ``git rev-parse`` of the source tree the package
    runs from (an editable install in a checkout); for an installed wheel, the commit the
    bundle was built at (``.gpu/COMMIT`` in the working directory, as on the GPU machine,
    whose copy of the tree may carry a stale git HEAD); then the working directory's git."""
    found = _git(_SOURCE_ROOT)
    if found:
        return found
    for root in (Path.cwd(), _SOURCE_ROOT):
        bundled = root / ".gpu" / "COMMIT"
        if bundled.is_file():
            return bundled.read_text().strip()
    return _git(Path.cwd()) or "unknown"


def cpu_info() -> dict:
    """The CPU's model name, vendor and vector instruction-set flags (from /proc/cpuinfo)."""
    info = {"cpu": platform.processor() or platform.machine(), "cpu_vendor": "", "cpu_flags": []}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name":
            info["cpu"] = value
        elif key == "vendor_id":
            info["cpu_vendor"] = value
        elif key == "flags":
            info["cpu_flags"] = sorted(
                f for f in value.split() if f.startswith(("avx", "amx", "fma"))
            )
            break
    return info


def _gpu(peers: dict[str, Peer]) -> dict:
    """The GPU's name (torch, CuPy, then nvidia-smi) and the driver's version."""
    out: dict[str, str] = {}
    if "torch" in peers:
        out["gpu"] = peers["torch"].module.cuda.get_device_name(0)
    elif "cupy" in peers:
        props = peers["cupy"].module.cuda.runtime.getDeviceProperties(0)
        out["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        smi = ""
    if smi:
        name, _, driver = smi.splitlines()[0].rpartition(",")
        out.setdefault("gpu", name.strip())
        out["driver"] = driver.strip()
    return out


def describe(device: str, peers: dict[str, Peer], skipped: dict[str, str]) -> dict:
    """The meta of a run: date, commit, machine, versions, pocaflow's configuration."""
    import numpy as np

    config = pocaflow_config()
    meta = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": measured_commit(),
        "device": device,
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cores": os.cpu_count(),
        "loadavg_1_5_15min": list(os.getloadavg()),
        "threads": config.get("threads"),
        **cpu_info(),
        "python": sys.version.split()[0],
        "versions": {"pocaflow": config.get("version"), "numpy": np.__version__}
        | {name: peer.version for name, peer in peers.items() if name != "pocaflow"},
        "peers": list(peers),
        "peers_missing": skipped,
        "pocaflow_config": config,
        "env": {
            k: os.environ[k]
            for k in (
                "POCAFLOW_NUM_THREADS",
                "RAYON_NUM_THREADS",
                "CUPY_TF32",
                "NVIDIA_TF32_OVERRIDE",
            )
            if k in os.environ
        },
    }
    if "torch" in peers and device == "cuda":
        meta["versions"]["torch_cuda"] = peers["torch"].module.version.cuda
    if device == "cuda":
        meta |= _gpu(peers)
    return meta
