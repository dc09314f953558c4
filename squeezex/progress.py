"""Progress bars that behave in a terminal, in a notebook and in a log file.

:func:`progress` is ``tqdm.auto.tqdm`` where a bar can redraw itself — a terminal, or a
Jupyter kernel (a widget bar) — and a :class:`LineProgress` everywhere else: when the
output is a file (``make demo > log``, a Slurm job's stderr) a redrawn bar leaves blank
lines and ``ESC[A`` codes, so each stage writes **one line** when it ends instead
(``scenes-6c seed 0: 5/5 it in 41.2 s (random)``), with a line every
:data:`LineProgress.every` seconds in between for a long stage, and the bar's ``write``
lines pass through. ``SQUEEZEX_PROGRESS=bars|lines|off`` overrides the choice.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["progress", "LineProgress", "bars_redraw"]


def _in_kernel() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None or "ipykernel" not in sys.modules:
        return False
    ip = shell.get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def bars_redraw(stream=None) -> bool:
    """Whether a redrawing bar suits ``stream`` (default stderr): a terminal or a kernel."""
    mode = os.environ.get("SQUEEZEX_PROGRESS", "")
    if mode in ("bars", "lines", "off"):
        return mode == "bars"
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return _in_kernel() or bool(isatty and isatty())


class LineProgress:
    """A stand-in for a tqdm bar that writes one line when its stage ends (to stderr).

    A stage longer than ``every`` seconds also writes where it is, at most once per
    ``every`` seconds. It supports what squeezex uses of tqdm: iteration, ``update``,
    ``set_postfix``, ``set_postfix_str``, ``write``, ``close`` and ``with``. A stage that
    ends early (an exception) writes nothing, so a log shows the error, not a false "done".
    """

    every = 30.0

    def __init__(self, iterable: Iterable | None = None, *, desc: str = "", total=None,
                 unit: str = "it", stream=None) -> None:  # fmt: skip
        self.iterable, self.desc, self.unit = iterable, desc, unit
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.n, self.postfix = total, 0, ""
        self.stream = sys.stderr if stream is None else stream
        self._start = self._last = time.perf_counter()
        self._closed = False

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, exc_type, *_: Any) -> None:
        if exc_type is None:
            self.close()
        self._closed = True

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        last = self.total is not None and self.n >= self.total  # the closing line follows
        if now - self._last >= self.every and not (self._closed or last):
            self._last = now
            self.write(self._line(now, "…"))

    def _line(self, now: float, end: str = "") -> str:
        count = f"{self.n}/{self.total}" if self.total is not None else f"{self.n}"
        tail = f" ({self.postfix})" if self.postfix else ""
        return f"{self.desc}: {count} {self.unit} in {now - self._start:.1f} s{tail}{end}"

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def write(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.write(self._line(time.perf_counter()))


class _Silent(LineProgress):
    """No lines of its own; messages given to ``write`` still print (as tqdm's do)."""

    def update(self, n: int = 1) -> None:
        self.n += n

    def close(self) -> None:
        self._closed = True


def progress(iterable: Iterable | None = None, *, desc: str = "", total=None, unit: str = "it",
             disable: bool = False):  # fmt: skip
    """A progress bar over ``iterable`` (or one advanced by ``update``): tqdm's where it can
    redraw, else one line per stage (see the module's doc). ``disable`` shows nothing
    (messages given to ``write`` still print)."""
    if disable or os.environ.get("SQUEEZEX_PROGRESS") == "off":
        return _Silent(iterable, desc=desc, total=total, unit=unit)
    if bars_redraw():
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=desc, total=total, unit=unit, leave=False)
    return LineProgress(iterable, desc=desc, total=total, unit=unit)
