"""Crash-safe file writes: a temporary file in the same folder, then ``os.replace``, under a lock.

A reader never sees a half-written file, a crash leaves the previous version intact, and two
writers (the maintainer and a notebook) never interleave (DESIGN.md, "Bad input").
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock


def lock_for(path: Path) -> FileLock:
    """Return the inter-process lock guarding `path` (a ``.<name>.lock`` file beside it)."""
    path = Path(path)
    return FileLock(str(path.parent / f".{path.name}.lock"), timeout=120)


def atomic_write_bytes(path: Path, data: bytes, *, lock: bool = True) -> Path:
    """Write `data` to `path` atomically (tmp file in the same folder + ``os.replace``).

    Parameters
    ----------
    path : Path
        Destination; its folder is created if missing.
    lock : bool
        Take the file's inter-process lock while writing (default True).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write() -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    if lock:
        with lock_for(path):
            write()
    else:
        write()
    return path


def atomic_write_text(path: Path, text: str, *, lock: bool = True) -> Path:
    """Write UTF-8 `text` to `path` atomically; see :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"), lock=lock)


def json_safe(obj: Any) -> Any:
    """Return `obj` with NaN and ±Infinity replaced by None, recursively (JSON never holds them).

    numpy scalars become Python numbers; tuples become lists.
    """
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        try:
            obj = obj.item()
        except (ValueError, TypeError):
            pass
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: Path, obj: Any, *, indent: int | None = 1) -> Path:
    """Write `obj` as strict JSON (NaN/Infinity → null) atomically."""
    text = json.dumps(json_safe(obj), indent=indent, allow_nan=False, ensure_ascii=False)
    return atomic_write_text(path, text + "\n")


def write_yaml(path: Path, obj: Any, *, header: str = "") -> Path:
    """Write `obj` as YAML (NaN → null) atomically, with an optional comment header."""
    text = yaml.safe_dump(json_safe(obj), sort_keys=False, allow_unicode=True, width=100)
    return atomic_write_text(path, header + text)


def read_json(path: Path, default: Any = None) -> Any:
    """Return the JSON in `path`, or `default` when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return default
    return json.loads(path.read_text(encoding="utf-8"))
