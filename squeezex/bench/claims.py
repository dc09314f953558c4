"""Claims: who is computing a cell (or training a checkpoint) right now.

A worker that is about to compute a piece of work creates ``<target>.claim`` with
``O_CREAT | O_EXCL`` — atomic on a local disk and on NFS v3+ — holding its host, process id,
Slurm job and a random token. Another worker that finds the claim leaves the work to its
holder, or (a checkpoint) waits for it. A claim is **stale** when its holder is gone: on the
same host its process has ended (a killed shard, a cancelled job), on another host it has
not been refreshed for ``stale_after`` seconds (a live holder touches it every
``heartbeat`` seconds from a background thread). A stale claim is broken by renaming it
away (only one worker can) and checking that what was renamed is the claim judged stale.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> cell = Path(tempfile.mkdtemp()) / "cell.json"
    >>> with Claim(f"{cell}.claim") as mine:  # True: no live worker holds it
    ...     if mine:
    ...         _ = cell.write_text("{}")  # compute and write the cell
    >>> mine, cell.exists(), Path(f"{cell}.claim").exists()  # released on exit
    (True, True, False)
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from pathlib import Path

__all__ = ["Claim", "holder"]

_HOST = socket.gethostname()


def _job() -> str | None:
    """This process's Slurm job (``<array job>_<task>`` in an array), if any."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env.get('SLURM_ARRAY_TASK_ID', '')}"
    return env.get("SLURM_JOB_ID")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


#: Seconds after which a claim file that cannot be read is taken for a dead writer's.
UNREADABLE_AFTER = 5.0


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def holder(path) -> dict | None:
    """What a claim file says about its holder (``None``: no claim, or unreadable)."""
    try:
        info = json.loads(Path(path).read_text())
        info["age"] = time.time() - Path(path).stat().st_mtime
        return info
    except (OSError, ValueError):
        return None


class Claim:
    """An exclusive claim on ``path`` (the claim file itself, e.g. ``<cell>.claim``)."""

    def __init__(self, path, *, heartbeat: float = 30.0, stale_after: float = 300.0) -> None:
        self.path = Path(path)
        self.heartbeat = heartbeat
        self.stale_after = stale_after
        self.token = secrets.token_hex(8)
        self.held = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Claim({str(self.path)!r}, held={self.held})"

    # -- taking and giving back ------------------------------------------------------------
    def acquire(self, wait: bool = False, poll: float = 1.0, timeout: float | None = None) -> bool:
        """Take the claim (breaking a stale one). ``wait``: poll until it is free (or
        ``timeout`` seconds passed); otherwise return ``False`` at once when a live worker
        holds it."""
        start = time.monotonic()
        while True:
            if self._create():
                return True
            info = self._read()
            if info is None and not self.path.exists():
                continue  # released meanwhile: try again
            if info is not None and (info == {} or self.is_stale(info)):
                self._break(info)
                continue
            if not wait or (timeout is not None and time.monotonic() - start > timeout):
                return False
            time.sleep(poll)

    def _read(self) -> dict | None:
        """The holder of the claim file; ``{}`` when it cannot be read after
        ``UNREADABLE_AFTER`` seconds (its writer died between creating and writing it);
        ``None`` when it is gone or is being written."""
        info = holder(self.path)
        if info is None and self.path.exists():
            time.sleep(0.05)  # the microseconds between create and write
            info = holder(self.path)
            if info is None and self.path.exists() and _age(self.path) >= UNREADABLE_AFTER:
                return {}
        return info

    def release(self) -> None:
        """Give the claim back (only if this worker still holds it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.held:
            info = holder(self.path)
            if info is not None and info.get("token") == self.token:
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    # -- what makes a claim stale ---------------------------------------------------------
    def is_stale(self, info: dict) -> bool:
        """The holder is gone: its process ended (same host) or it stopped refreshing."""
        if info.get("host") == _HOST and isinstance(info.get("pid"), int):
            return not _alive(info["pid"])
        return info.get("age", 0.0) > self.stale_after

    # -- internals ------------------------------------------------------------------------
    def _create(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {"host": _HOST, "pid": os.getpid(), "job": _job(), "token": self.token,
                "since": time.strftime("%Y-%m-%dT%H:%M:%S")}  # fmt: skip
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(body))
            f.flush()
            os.fsync(f.fileno())
        self.held = True
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()
        return True

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                os.utime(self.path)
            except OSError:
                return

    def _break(self, stale: dict) -> None:
        """Rename the stale claim away; if what was renamed is not the claim judged stale
        (another worker broke it and claimed anew in between), put it back."""
        grave = self.path.with_name(f"{self.path.name}.{self.token}.stale")
        try:
            os.rename(self.path, grave)
        except FileNotFoundError:
            return  # someone else broke it first
        taken = holder(grave)
        if taken is not None and taken.get("token") != stale.get("token"):
            try:
                os.link(grave, self.path)  # a live claim: give it back
            except FileExistsError:
                pass
        grave.unlink(missing_ok=True)
