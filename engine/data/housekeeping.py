"""Files moved aside instead of lost, and the leftovers that are cleaned up after a retention period.

Nothing stored is ever deleted on the way (DESIGN.md, "Bad input"): a candle file that fails
validation, or that must make way for candles of another source, is first **moved aside** beside
itself with a UTC time stamp (``1m.csv.corrupt-20260101T120000Z``, ``1m.csv.replaced-…``), and one
WARNING names both paths. :func:`clean_leftovers` deletes such files once they are older than the
retention period (``runtime.retention_days``), and the ``.<name>.tmp-<pid>-…`` files that killed
writers left behind (the pid is dead, or the file is more than an hour old).
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

logger = logging.getLogger(__name__)

AsideKind = Literal["corrupt", "replaced"]
#: Moved-aside files: ``<name>.corrupt-<stamp>[-k]`` and ``<name>.replaced-<stamp>[-k]``.
_ASIDE_RE = re.compile(r"\.(corrupt|replaced)-(\d{8}T\d{6}Z)(-\d+)?$")
#: Temporary files of engine.fileio.atomic_write_bytes: ``.<name>.tmp-<pid>-<hex>``.
_TMP_RE = re.compile(r"^\..+\.tmp-(\d+)-[0-9a-f]+$")
#: A temporary file older than this is stale even when its pid is alive (pids get reused).
TMP_MAX_AGE_S = 3600.0


def move_aside(path: Path | str, kind: AsideKind, reason: str, *, companions: Iterable[Path] = ()) -> Path:
    """Move `path` to ``<name>.<kind>-<UTC stamp>`` beside it and log one WARNING naming both paths.

    Parameters
    ----------
    path : path
        The file to keep out of the way (it must exist).
    kind : {"corrupt", "replaced"}
        Why: it failed validation, or it makes way for candles of another source.
    reason : str
        One line, put in the WARNING.
    companions : iterable of Path
        Sidecar files that belong to `path` (its source record): moved along with the same suffix.

    Returns
    -------
    Path
        Where the file now is. It is kept for ``runtime.retention_days`` (:func:`clean_leftovers`).
    """
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    suffix = f".{kind}-{stamp}"
    k = 1
    while path.with_name(path.name + suffix).exists():
        suffix = f".{kind}-{stamp}-{k}"
        k += 1
    target = path.with_name(path.name + suffix)
    os.replace(path, target)
    for companion in companions:
        with contextlib.suppress(FileNotFoundError):
            os.replace(companion, companion.with_name(companion.name + suffix))
    logger.warning("%s %s; moved aside to %s (kept for the retention period)", path, reason, target)
    return target


@dataclass(frozen=True)
class Cleanup:
    """What :func:`clean_leftovers` deleted: counts and the paths."""

    n_tmp: int
    n_aside: int
    paths: tuple[str, ...]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_leftovers(folders: Iterable[Path | str], *, retention_days: float, now_s: float | None = None) -> Cleanup:
    """Delete stale temporary files and moved-aside files older than the retention period.

    Parameters
    ----------
    folders : iterable of path
        Searched recursively (the data, reports, public folders and the strategies file's folder).
        Missing folders are skipped; files that cannot be deleted (read-only) are left, logged at DEBUG.
    retention_days : float
        Moved-aside files (``*.corrupt-*``, ``*.replaced-*``) older than this are deleted; their age
        is read from the time stamp in their name.
    now_s : float, optional
        Now, epoch seconds (default: the wall clock).

    Returns
    -------
    Cleanup
        Counts and paths of the deleted files (one INFO line when anything was deleted).
    """
    now_s = time.time() if now_s is None else float(now_s)
    limit_s = float(retention_days) * 86_400.0
    deleted: list[str] = []
    n_tmp = n_aside = 0
    seen: set[Path] = set()
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir() or folder.resolve() in seen:
            continue
        seen.add(folder.resolve())
        for path in folder.rglob("*"):
            name = path.name
            tmp = _TMP_RE.match(name)
            aside = _ASIDE_RE.search(name)
            try:
                if tmp:
                    age = now_s - path.stat().st_mtime
                    if _pid_alive(int(tmp.group(1))) and age < TMP_MAX_AGE_S:
                        continue
                    path.unlink()
                    n_tmp += 1
                elif aside:
                    stamped = time.mktime(time.strptime(aside.group(2), "%Y%m%dT%H%M%SZ")) - time.timezone
                    if now_s - stamped <= limit_s:
                        continue
                    path.unlink()
                    n_aside += 1
                else:
                    continue
            except (OSError, ValueError) as e:
                logger.debug("%s: not cleaned up (%s)", path, e)
                continue
            deleted.append(str(path))
    if deleted:
        logger.info("housekeeping: deleted %d temporary files left by killed writers and %d moved-aside files "
                    "older than %g days", n_tmp, n_aside, retention_days)
    return Cleanup(n_tmp=n_tmp, n_aside=n_aside, paths=tuple(deleted))
