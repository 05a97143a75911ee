"""Known exchange gaps: runs of candles an exchange does not have, recorded once, never refetched.

``<TF>.gaps.json`` beside ``<TF>.csv``: ``{"pair", "timeframe", "source", "checked_at_ms", "gaps":
[[from_ms, to_ms, n_missing], ...]}``; ``from_ms``/``to_ms`` are the open times of the first and
the last missing candle.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from engine import fileio
from engine.markets import TIMEFRAME_MS

logger = logging.getLogger(__name__)


def gaps_path(csv_path: str | os.PathLike) -> Path:
    """Return the known-gaps file of a candle CSV (``1m.csv`` → ``1m.gaps.json``)."""
    csv_path = Path(csv_path)
    return csv_path.with_name(csv_path.name[: -len(".csv")] + ".gaps.json")


def read_known_gaps(csv_path: str | os.PathLike, source: str | None = None) -> list[tuple[int, int, int]]:
    """Return the exchange gaps recorded for a candle CSV ([] if none, or recorded for another source)."""
    try:
        data = json.loads(gaps_path(csv_path).read_text(encoding="utf-8"))
        if source is not None and data.get("source") != source:
            return []
        return [(int(a), int(b), int(n)) for a, b, n in data.get("gaps", [])]
    except (OSError, ValueError, TypeError, AttributeError):
        return []


def write_known_gaps(
    csv_path: Path, pair: str, timeframe: str, source: str, gaps: Iterable[tuple[int, int, int]], now_ms: int
) -> None:
    payload = {
        "pair": pair,
        "timeframe": timeframe,
        "source": source,
        "checked_at_ms": int(now_ms),
        "gaps": [list(g) for g in gaps],
    }
    fileio.write_json(gaps_path(csv_path), payload)


def list_known_gaps(data_dir: str | os.PathLike) -> list[dict]:
    """Return every recorded exchange gap under `data_dir`, for the dashboard and status.json.

    Returns
    -------
    list of dict
        ``{"pair": "BTCUSDT", "timeframe": "1m", "from_ms", "to_ms", "n_missing", "source"}``,
        sorted by pair, timeframe, from_ms; ``from_ms``/``to_ms`` are the open times of the first
        and the last missing candle.
    """
    out: list[dict] = []
    for path in sorted(Path(data_dir, "ohlcv").glob("*/*.gaps.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            for a, b, n in data.get("gaps", []):
                out.append({
                    "pair": data.get("pair", path.parent.name),
                    "timeframe": data.get("timeframe", path.name.split(".")[0]),
                    "from_ms": int(a), "to_ms": int(b), "n_missing": int(n),
                    "source": data.get("source"),
                })
        except (OSError, ValueError, TypeError, AttributeError):
            logger.warning("%s: unreadable gaps file ignored", path)
    out.sort(key=lambda g: (g["pair"], TIMEFRAME_MS.get(g["timeframe"], 0), g["from_ms"]))
    return out
