"""The progress bar of a run: tqdm's where it is installed, else a plain one on stderr."""

from __future__ import annotations

import sys
from typing import IO, Any


class PlainBar:
    """``[#####.....] 12/40 label``: redrawn in place on a terminal, one line per step
    elsewhere (a log file)."""

    def __init__(self, total: int, stream: IO[str] | None = None, width: int = 30):
        self.total, self.done, self.width = total, 0, width
        self.stream = stream if stream is not None else sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()

    def _line(self, label: str) -> str:
        filled = self.width * self.done // max(self.total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        return f"[{bar}] {self.done}/{self.total} {label}"

    def set_label(self, label: str) -> None:
        """Shows the case about to run."""
        if self.tty:
            self.stream.write("\r\x1b[K" + self._line(label))
            self.stream.flush()

    def update(self, label: str = "") -> None:
        """One case done."""
        self.done += 1
        self.stream.write(("\r\x1b[K" if self.tty else "") + self._line(label))
        self.stream.write("" if self.tty and self.done < self.total else "\n")
        self.stream.flush()

    def write(self, text: str) -> None:
        """A line of output above the bar."""
        if self.tty:
            self.stream.write("\r\x1b[K")
        print(text, flush=True)

    def close(self) -> None:
        """Ends the bar's line."""
        if self.tty and self.done < self.total:
            self.stream.write("\n")


class TqdmBar:
    """The same interface over ``tqdm``."""

    def __init__(self, total: int, tqdm: Any):
        self._tqdm = tqdm
        self.bar = tqdm.tqdm(total=total, unit="case", dynamic_ncols=True)

    def set_label(self, label: str) -> None:
        """Shows the case about to run."""
        self.bar.set_description_str(label)

    def update(self, label: str = "") -> None:
        """One case done."""
        self.bar.update(1)

    def write(self, text: str) -> None:
        """A line of output above the bar."""
        self._tqdm.tqdm.write(text)

    def close(self) -> None:
        """Ends the bar."""
        self.bar.close()


def progress(total: int, plain: bool = False, stream: IO[str] | None = None) -> Any:
    """A bar for ``total`` cases: tqdm's on a terminal where tqdm is installed, else (or with
    ``plain``) the plain one (one line per case in a log)."""
    if not plain and sys.stderr.isatty():
        try:
            import tqdm
        except ImportError:
            pass
        else:
            return TqdmBar(total, tqdm)
    return PlainBar(total, stream)
