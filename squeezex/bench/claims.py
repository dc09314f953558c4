"""Claims: who is computing a cell (or training a checkpoint) right now.

A worker that is about to compute a piece of work creates ``<target>.claim`` with
``O_CREAT | O_EXCL`` — atomic on a local disk and on NFS v3+ — holding its host, process id,
Slurm job and a random token. Another worker that finds the claim leaves the work to its
holder, or (a checkpoint) waits for it, saying once who holds it and since when (host,
process, Slurm job, the claim file). A claim is **stale** when its holder is gone: on the
same host its process has ended (a killed shard, a cancelled job) or its process id now
belongs to another process (on Linux the claim records the holder's start time,
``/proc/<pid>/stat`` field 22, and a live process that started at another time is not the
holder; elsewhere, and for claims without it, a live process id counts as the holder); on
another host it has not been refreshed for ``stale_after`` seconds (a live holder touches
it every ``heartbeat`` seconds from a background thread). A claim file that is not a JSON
object (a writer killed between creating and writing it, or garbage) is stale once it is
``UNREADABLE_AFTER`` seconds old; one with missing or wrongly typed fields is judged by
the rules above with what it has (no usable host and process id: by its age). A stale
claim is broken by renaming it away (only one worker can) and checking that what was
renamed is the claim judged stale.

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
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["Claim", "holder", "describe_holder"]

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
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _is_pid(value) -> bool:
    """A process id a claim can name (not a bool, not 0 or negative: those signal groups)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31


#: Whether this system's ``/proc`` tells when a process started (Linux).
_PROC = os.path.isfile("/proc/self/stat")


def _start_time(pid: int) -> int | None:
    """When process ``pid`` started: field 22 of ``/proc/<pid>/stat`` (clock ticks since
    boot), or ``None`` where ``/proc`` does not say (another OS, a hidden or ended
    process)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        return int(text.rsplit(")", 1)[1].split()[19])  # after the name, which may hold ")"
    except (OSError, ValueError, IndexError):
        return None


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


#: Seconds after which a claim file that cannot be read is taken for a dead writer's.
UNREADABLE_AFTER = 5.0


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def holder(path) -> dict | None:
    """What a claim file says about its holder, with ``age`` (seconds since it was last
    refreshed); ``None``: no claim, or not a JSON object (being written, or garbage)."""
    try:
        info = json.loads(Path(path).read_text())
        if not isinstance(info, dict):
            return None
        info["age"] = time.time() - Path(path).stat().st_mtime
        return info
    except (OSError, ValueError):
        return None


def describe_holder(info: dict) -> str:
    """A claim's holder in words: host, process, Slurm job and since when."""
    job = f" (Slurm job {info['job']})" if info.get("job") else ""
    since = f" since {info['since']}" if info.get("since") else ""
    return f"{info.get('host')} pid {info.get('pid')}{job}{since}"


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
    def acquire(self, wait: bool = False, poll: float = 1.0, timeout: float | None = None,
                *, log: Callable[[str], None] | None = None) -> bool:  # fmt: skip
        """Take the claim (breaking a stale one). ``wait``: poll until it is free (or
        ``timeout`` seconds passed), saying once per holder through ``log`` (default: a
        line on stderr) who holds it and since when; otherwise return ``False`` at once
        when a live worker holds it."""
        start, told = time.monotonic(), None
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
            if info is not None and describe_holder(info) != told:
                told = describe_holder(info)
                (log or _stderr)(f"waiting for {self.path}: held by {told}")
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
        """The holder is gone: its process ended or its process id is another process's
        now (same host), or it stopped refreshing (see the module's doc)."""
        pid = info.get("pid")
        if info.get("host") == _HOST and _is_pid(pid):
            if not _alive(pid):
                return True
            started = info.get("start")
            if _PROC and isinstance(started, int) and not isinstance(started, bool):
                now = _start_time(pid)
                return now is not None and now != started
            return False
        age = info.get("age", 0.0)
        return isinstance(age, (int, float)) and age > self.stale_after

    # -- internals ------------------------------------------------------------------------
    def _create(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {"host": _HOST, "pid": os.getpid(), "start": _start_time(os.getpid()),
                "job": _job(), "token": self.token,
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
