"""Crash-safe file writes: a temporary file in the same folder, then ``os.replace``, under a lock.

A reader never sees a half-written file, a crash leaves the previous version intact, and two
writers (the maintainer and a notebook) never interleave (DESIGN.md, "Bad input").
"""
from __future__ import annotations

import json
import math
import contextlib
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from filelock import FileLock


#: Seconds a writer waits for a file's lock before ``filelock.Timeout`` is raised.
LOCK_TIMEOUT_S = 120.0


def lock_path(path: Path) -> Path:
    """Return the lock file of `path`: ``.<name>.lock`` beside it (the one naming scheme)."""
    path = Path(path)
    return path.parent / f".{path.name}.lock"


def lock_for(path: Path, *, timeout_s: float = LOCK_TIMEOUT_S) -> FileLock:
    """Return the inter-process lock guarding `path` (:func:`lock_path`; its folder is created).

    Re-entrant within one thread (one lock object per lock file), released by the operating system
    when the holder dies (``fcntl.flock``), so a killed process never leaves a file locked.
    """
    lock_file = lock_path(path)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(lock_file), timeout=timeout_s, is_singleton=True)


def atomic_write_bytes(path: Path, data: bytes, *, lock: bool = True, mode: int | None = None) -> Path:
    """Write `data` to `path` atomically: a temporary file in the same folder, fsync, ``os.replace``.

    Readers see the old file or the new one, never a mix; a crash leaves at most a stale
    ``.<name>.tmp-*`` file (see :func:`remove_stale_tmp`). The folder is created. A failed write
    (disk full, read-only folder) removes its temporary file and raises an OSError naming `path`.

    Parameters
    ----------
    path : Path
        Destination.
    lock : bool
        Take the file's inter-process lock (:func:`lock_for`) while writing; pass False when the
        caller already holds a lock that covers `path`.
    mode : int, optional
        Permission bits of the new file (e.g. ``0o644`` for files a web server serves).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write() -> None:
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if mode is not None:
                os.chmod(tmp, mode)
            os.replace(tmp, path)
        except OSError as e:  # name the destination (a full disk's write() error names no file)
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        with contextlib.suppress(OSError):  # make the rename itself durable
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    if lock:
        with lock_for(path):
            write()
    else:
        write()
    return path


def remove_stale_tmp(path: Path) -> int:
    """Delete temporary files a killed writer left next to `path`; return how many (hold the lock)."""
    n = 0
    for stale in Path(path).parent.glob(f".{Path(path).name}.tmp-*"):
        with contextlib.suppress(OSError):
            stale.unlink()
            n += 1
    return n


def atomic_write_text(path: Path, text: str, *, lock: bool = True) -> Path:
    """Write UTF-8 `text` to `path` atomically; see :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"), lock=lock)


def json_safe(obj: Any) -> Any:
    """Return `obj` with every NaN/±inf float replaced by None, recursively (JSON never holds them).

    dicts, lists, tuples and numpy arrays become dicts and lists; numpy scalars become Python
    numbers; Paths become strings. The result goes straight into ``json.dumps(allow_nan=False)``.
    """
    t = type(obj)  # the common leaves first: a summary holds about 270,000 of them
    if t is str or t is int or obj is None:
        return obj
    if t is float:
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [json_safe(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: Path, obj: Any, *, indent: int | None = 1) -> Path:
    """Write `obj` as strict JSON (NaN/Infinity → null) atomically."""
    text = json.dumps(json_safe(obj), indent=indent, allow_nan=False, ensure_ascii=False)
    return atomic_write_text(path, text + "\n")


def write_yaml(path: Path, obj: Any, *, header: str = "") -> Path:
    """Write `obj` as YAML (NaN → null) atomically, with an optional comment header."""
    # libyaml's safe dumper where available: the same text as yaml.safe_dump, 3× faster
    text = yaml.dump(json_safe(obj), Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False,
                     allow_unicode=True, width=100)
    return atomic_write_text(path, header + text)


def read_json(path: Path, default: Any = None) -> Any:
    """Return the JSON in `path`, or `default` when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return default
    return json.loads(path.read_text(encoding="utf-8"))
