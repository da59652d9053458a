"""What every benchmark record carries: the commit it measured."""

from __future__ import annotations

import pathlib
import subprocess


def measured_commit() -> str:
    """The commit of the code under test: the GPU machine gets a bundle built at one commit
    (``.gpu/COMMIT``), not this checkout's git; elsewhere, ``git rev-parse``."""
    bundled = pathlib.Path(__file__).resolve().parent.parent / ".gpu" / "COMMIT"
    if bundled.exists():
        return bundled.read_text().strip()
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
