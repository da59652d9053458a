"""``python -m pocaflow.distributed.run --nproc N script.py [args...]`` (or ``-m module``, as
torchrun's): starts ``N`` copies of a script on this machine with torchrun's environment
(``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``,
``MASTER_PORT``), for machines without torch. When one copy fails, the others are stopped
(SIGTERM, then SIGKILL after a grace period) and the runner exits with the failed copy's
status."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

#: Seconds between SIGTERM and SIGKILL when stopping the other copies.
GRACE = 5.0


def free_port() -> int:
    """A TCP port that was free a moment ago (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _stop(procs: list[subprocess.Popen]) -> None:
    alive = [p for p in procs if p.poll() is None]
    for p in alive:
        p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE
    for p in alive:
        try:
            p.wait(timeout=max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def launch(nproc: int, argv: list[str], master_addr: str, master_port: int) -> int:
    """Runs ``nproc`` copies of ``python argv...``; returns 0 or the first failure's status."""
    procs = []
    for rank in range(nproc):
        env = dict(os.environ)
        env.update(
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE=str(nproc),
            LOCAL_WORLD_SIZE=str(nproc),
            MASTER_ADDR=master_addr,
            MASTER_PORT=str(master_port),
        )
        procs.append(subprocess.Popen([sys.executable, *argv], env=env))
    try:
        while True:
            codes = [p.poll() for p in procs]
            failed = next((c for c in codes if c not in (None, 0)), None)
            if failed is not None:
                _stop(procs)
                return failed if failed > 0 else 128 - failed
            if all(c == 0 for c in codes):
                return 0
            time.sleep(0.01)
    except KeyboardInterrupt:
        _stop(procs)
        return 130


def main(args: list[str] | None = None) -> int:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m pocaflow.distributed.run",
        description="Start N processes of a script with torchrun's environment variables.",
    )
    parser.add_argument("--nproc", "--nproc-per-node", type=int, required=True)
    parser.add_argument("--master-addr", default="127.0.0.1")
    parser.add_argument("--master-port", type=int, default=None, help="default: a free port")
    parser.add_argument(
        "-m", "--module", action="store_true", help="run the script argument as a module"
    )
    parser.add_argument("script")
    parser.add_argument("script_args", nargs=argparse.REMAINDER)
    ns = parser.parse_args(args)
    if ns.nproc < 1:
        parser.error(f"--nproc must be at least 1, got {ns.nproc}")
    port = ns.master_port if ns.master_port is not None else free_port()
    argv = ["-m"] * ns.module + [ns.script, *ns.script_args]
    return launch(ns.nproc, argv, ns.master_addr, port)


if __name__ == "__main__":
    sys.exit(main())
