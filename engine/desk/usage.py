"""The usage store: what the testnet desk consumed per UTC day, one JSON file per day.

Files are ``<folder>/usage_YYYY-MM-DD.json`` (the UTC day), for example::

    {"day": "2024-12-04", "notional_quote": 1500.0, "n_trades": 45, "n_runs": 3,
     "updated_at": "2024-12-04T17:03:12Z",
     "runs": [{"profile": "quick_smoke", "symbol": "BTC/USDT", "notional_quote": 30.0, "n_trades": 3,
               "at": "2024-12-04T09:00:00Z", ...}, ...]}

Restart-safe (the totals live only in the file), atomic (a temporary file, then ``os.replace``) and
correct under concurrent sessions: :meth:`UsageStore.register` re-reads the file under its
inter-process lock (:func:`engine.fileio.lock_for`) before adding, so no update is lost. Files older
than ``retention_days`` are deleted when a consumption is registered (:meth:`UsageStore.prune`).

A usage file that cannot be read raises :class:`~engine.errors.DataError`: treating it as an empty
day would hand out the day's budget a second time.
"""
from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping

from engine.clock import iso_ms
from engine.errors import ConfigError, DataError
from engine.fileio import atomic_write_text, json_safe, lock_for

logger = logging.getLogger(__name__)

USAGE_RE = re.compile(r"^usage_(\d{4}-\d{2}-\d{2})\.json$")


def utc_day(ts_ms: int) -> str:
    """Return the UTC calendar day of `ts_ms` (epoch ms) as ``YYYY-MM-DD``."""
    return datetime.fromtimestamp(int(ts_ms) / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def _is_date(text: str) -> bool:
    try:  # usage_2024-13-45.json is not one of ours: never read, never pruned
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class DayUsage:
    """What one UTC day consumed: entry notional (quote), trades (entries), sessions, and each run.

    Attributes
    ----------
    day : str
        ``YYYY-MM-DD`` (UTC).
    notional_quote : float
        Sum of the entries' notional of every registered run, quote currency.
    n_trades, n_runs : int
        Trades (entries) and runs registered.
    runs : tuple of dict
        One record per registered run (profile, symbol, notional, trades, time, and what the caller added).
    """

    day: str
    notional_quote: float = 0.0
    n_trades: int = 0
    n_runs: int = 0
    runs: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"day": self.day, "notional_quote": self.notional_quote, "n_trades": self.n_trades,
                "n_runs": self.n_runs, "runs": [dict(r) for r in self.runs]}

    @classmethod
    def from_json(cls, doc: Any, *, file: str) -> DayUsage:
        """Read a usage file's document; DataError naming the file and key when it is malformed."""
        if not isinstance(doc, dict):
            raise DataError(f"{file}: expected a JSON object with day, notional_quote, n_trades, n_runs, runs")
        for key, kinds in (("notional_quote", (int, float)), ("n_trades", (int,)), ("n_runs", (int,))):
            value = doc.get(key)
            if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value) or value < 0:
                raise DataError(f"{file} → {key} = {value!r}: expected a number ≥ 0. The file was changed by "
                                "hand or damaged; fix or remove it (removing it forgets the day's usage)")
        runs = doc.get("runs", [])
        if not isinstance(runs, list):
            raise DataError(f"{file} → runs = {runs!r}: expected a list")
        return cls(str(doc.get("day", "")), float(doc["notional_quote"]), int(doc["n_trades"]), int(doc["n_runs"]),
                   tuple(runs))


class UsageStore:
    """Per-UTC-day usage files in one folder.

    Parameters
    ----------
    folder : path
        Holds ``usage_YYYY-MM-DD.json`` (created on the first registration).
    retention_days : int
        A file whose day lies more than this many days before today is deleted by :meth:`prune`.
    """

    def __init__(self, folder: Path | str, *, retention_days: int = 30) -> None:
        if isinstance(retention_days, bool) or not isinstance(retention_days, int) or retention_days < 1:
            raise ConfigError(f"usage retention_days = {retention_days!r}: expected a whole number ≥ 1 (days)")
        self.folder = Path(folder)
        self.retention_days = retention_days

    def path_for(self, ts_ms: int) -> Path:
        """The usage file of the UTC day of `ts_ms`."""
        return self.folder / f"usage_{utc_day(ts_ms)}.json"

    def _read(self, path: Path, day: str) -> DayUsage:
        if not path.exists():
            return DayUsage(day)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"{path}: not valid JSON ({e}); the day's usage cannot be known. Fix or remove the "
                            "file (removing it forgets the day's usage)") from e
        return DayUsage.from_json(doc, file=str(path))

    def load(self, ts_ms: int) -> DayUsage:
        """Return the usage of the UTC day of `ts_ms` (zero when nothing was registered that day).

        Raises
        ------
        DataError
            The day's file is not valid JSON or holds a negative or non-numeric total.
        """
        return self._read(self.path_for(ts_ms), utc_day(ts_ms))

    def register(self, notional_quote: float, n_trades: int, *, at_ms: int, record: Mapping[str, Any] | None = None,
                 now_ms: int | None = None) -> DayUsage:
        """Add one run's consumption to the day of `at_ms` and return that day's new totals.

        The file is re-read under its inter-process lock, so concurrent sessions lose no update;
        the new file replaces the old one atomically. Old files are pruned afterwards.

        Parameters
        ----------
        notional_quote : float
            The run's entry notional, quote currency (≥ 0).
        n_trades : int
            The run's trades (entries, ≥ 0).
        at_ms : int
            Epoch ms UTC that decides the day (the orchestrator passes the session's start: the
            day whose budget admitted it).
        record : mapping, optional
            Kept with the run in the file (profile, symbol, venue, run id, ...).
        now_ms : int, optional
            Today, for pruning (default `at_ms`).

        Raises
        ------
        ConfigError
            A negative, non-finite or non-integer amount.
        DataError
            The day's file exists but cannot be read.
        """
        if isinstance(notional_quote, bool) or not isinstance(notional_quote, (int, float)) \
                or not math.isfinite(notional_quote) or notional_quote < 0:
            raise ConfigError(f"consumption notional_quote = {notional_quote!r}: expected a number ≥ 0 (quote)")
        if isinstance(n_trades, bool) or not isinstance(n_trades, int) or n_trades < 0:
            raise ConfigError(f"consumption n_trades = {n_trades!r}: expected a whole number ≥ 0")
        path, day = self.path_for(at_ms), utc_day(at_ms)
        with lock_for(path):
            old = self._read(path, day)
            run = {**json_safe(dict(record or {})), "notional_quote": float(notional_quote), "n_trades": n_trades,
                   "at": iso_ms(at_ms)}
            new = DayUsage(day, old.notional_quote + float(notional_quote), old.n_trades + n_trades, old.n_runs + 1,
                           old.runs + (run,))
            doc = {**new.to_json(), "updated_at": iso_ms(now_ms if now_ms is not None else at_ms)}
            atomic_write_text(path, json.dumps(doc, indent=1, allow_nan=False) + "\n", lock=False)
        logger.info("usage %s: +%.2f quote, +%d trades → %.2f quote, %d trades, %d runs", day, notional_quote,
                    n_trades, new.notional_quote, new.n_trades, new.n_runs)
        self.prune(now_ms if now_ms is not None else at_ms)
        return new

    def days(self) -> list[str]:
        """The days that have a usage file, oldest first."""
        if not self.folder.is_dir():
            return []
        return sorted(m.group(1) for p in self.folder.iterdir() if (m := USAGE_RE.match(p.name)) and _is_date(m.group(1)))

    def prune(self, now_ms: int) -> list[Path]:
        """Delete the usage files (and their lock files) of days more than `retention_days` before
        the UTC day of `now_ms`; return the deleted usage files. Nothing else in the folder is touched."""
        today = date.fromisoformat(utc_day(now_ms))
        oldest_kept = today - timedelta(days=self.retention_days)
        removed = []
        for day in self.days():
            if date.fromisoformat(day) < oldest_kept:
                path = self.folder / f"usage_{day}.json"
                path.unlink(missing_ok=True)
                (self.folder / f".{path.name}.lock").unlink(missing_ok=True)
                removed.append(path)
        if removed:
            logger.info("usage: deleted %d file(s) older than %d days (before %s)", len(removed), self.retention_days,
                        oldest_kept.isoformat())
        return removed
