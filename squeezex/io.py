"""Atomic writes (results and checkpoints are never left half-written), output folders
that are checked before any work starts, and clean-up of temp files left by killed runs.

A temp file is named ``.<name>.<host>.<pid>.<random>.tmp`` beside its target, so a later
run can tell a dead writer's leftover (same host, process gone) from a live one.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import time
from pathlib import Path

import torch

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_torch_save",
    "ensure_folder",
    "remove_stale_temps",
]


_UMASK = os.umask(0)
os.umask(_UMASK)
_HOST = socket.gethostname().replace(".", "_")
#: Temp files older than this are stale whoever wrote them (another host, say).
STALE_SECONDS = 24 * 3600


def _atomic(path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.{_HOST}.{os.getpid()}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path, data: bytes) -> Path:
    return _atomic(path, lambda f: f.write(data))


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_torch_save(obj, path) -> Path:
    return _atomic(path, lambda f: torch.save(obj, f))


def ensure_folder(path, what: str = "output folder") -> Path:
    """Create ``path`` (with parents) and check that files can be written in it.

    Raises:
        ValueError: ``path`` is a file, lies under a file, or is not writable; the
            message names the path and the reason (what a command line prints).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(f"{what} {path} cannot be created: a part of its path is a file") from None
    except PermissionError:
        raise ValueError(f"{what} {path} is not writable (permission denied)") from None
    except OSError as exc:
        raise ValueError(f"{what} {path} is not writable ({exc.strerror or exc})") from None
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


#: The names of this module's temp files: ``.<name>.<host>.<pid>.<random>.tmp``.
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<host>[^.]+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")


def remove_stale_temps(folder, recursive: bool = True) -> list[Path]:
    """Delete this module's temp files in ``folder`` (and below it) whose writer is gone
    (this host, process ended) or that are older than a day (another host's); returns
    them. Only names of the form ``.<name>.<host>.<pid>.<random>.tmp`` are touched: no
    other file is ever removed."""
    removed = []
    now = time.time()
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for p in folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp"):
        m = _TEMP.match(p.name)
        if m is None:
            continue
        try:
            old = now - p.stat().st_mtime > STALE_SECONDS
        except FileNotFoundError:
            continue
        if old or (m["host"] == _HOST and not _alive(int(m["pid"]))):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed
