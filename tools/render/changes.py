"""What changed since the previous cycle: newly promoted, expired, demoted, new errors, data gone OLD.

Each render reduces the inputs to a small digest (promoted strategies, errors, states) and keeps it,
with the digest of the cycle before, in ``public_dir/cycle_digest.json``. A render of a new cycle
(another ``started_at_ms`` in status.json) compares it with the kept one; a re-render of the same
cycle compares with the same previous cycle again, so the list stays until the next cycle.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from engine import fileio
from tools.render.format import symbol
from tools.render.readers import Inputs

logger = logging.getLogger(__name__)

DIGEST_FILE = "cycle_digest.json"
#: Items listed at most (the rest is counted).
MAX_ITEMS = 12


def digest(inputs: Inputs, ref_ms: int) -> dict[str, Any]:
    """Return the cycle's digest: ``{"cycle_ms", "promoted": {key: expired}, "errors": [text],
    "states": {"PAIR TF": state}}`` (keys ``"BNB/USDT 15m sma_cross"``); expiry measured at `ref_ms`."""
    status = inputs.status
    return {
        "cycle_ms": status.started_at_ms if status else None,
        "promoted": {f"{s.symbol} {s.timeframe} {s.entry_set}": bool(s.is_expired(ref_ms)) for s in inputs.strategies},
        "errors": sorted({f"{e.stage} · {symbol(e.pair) + ' ' if e.pair else ''}{e.timeframe or ''}: {e.message[:160]}"
                          for e in status.errors}) if status else [],
        "states": {f"{symbol(s.pair)} {s.timeframe}": s.state for s in status.states} if status else {},
    }


def compare(before: dict[str, Any], now: dict[str, Any]) -> list[dict[str, str]]:
    """Return the changes from `before` to `now` as ``[{"kind", "text"}]``; kinds ``promoted expired
    demoted error old missing fresh``, in that order."""
    out: list[dict[str, str]] = []
    was, is_ = before.get("promoted", {}), now.get("promoted", {})
    out += [{"kind": "promoted", "text": f"{k}: newly promoted"} for k in sorted(is_) if k not in was and not is_[k]]
    out += [{"kind": "expired", "text": f"{k}: expired"} for k in sorted(is_) if is_[k] and k in was and not was[k]]
    out += [{"kind": "demoted", "text": f"{k}: no longer promoted"} for k in sorted(was) if k not in is_]
    old_errors = set(before.get("errors", []))
    out += [{"kind": "error", "text": f"new error: {e}"} for e in now.get("errors", []) if e not in old_errors]
    s0, s1 = before.get("states", {}), now.get("states", {})
    for key in sorted(s1):
        if s1[key] == "OLD" and s0.get(key) != "OLD":
            out.append({"kind": "old", "text": f"{key}: data went OLD"})
        elif s1[key] == "MIS" and s0.get(key) not in (None, "MIS"):
            out.append({"kind": "missing", "text": f"{key}: candle file gone (MIS)"})
        elif s0.get(key) in ("OLD", "MIS") and s1[key] in ("DAT", "OK"):
            out.append({"kind": "fresh", "text": f"{key}: data fresh again"})
    return out


def changes_since_previous(inputs: Inputs, public_dir: Path, ref_ms: int) -> dict[str, Any]:
    """Compare this cycle with the previous one and keep the digests; return the section's model.

    Returns
    -------
    dict
        ``{"items": [{"kind", "text"}] (at most MAX_ITEMS), "more": n, "baseline": bool (no earlier
        cycle to compare with), "previous_ms": start of the previous cycle or None}``.
    """
    now = digest(inputs, ref_ms)
    path = Path(public_dir) / DIGEST_FILE
    kept: dict[str, Any] = {}
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    if not isinstance(kept, dict):
        kept = {}
    if kept.get("current", {}).get("cycle_ms") == now["cycle_ms"] and now["cycle_ms"] is not None:
        previous = kept.get("previous")  # a re-render of the same cycle: the same comparison
    else:
        previous = kept.get("current")
    try:
        data = json.dumps({"current": now, "previous": previous}).encode("utf-8")
        fileio.atomic_write_bytes(path, data, lock=False, mode=0o644)
    except OSError as e:
        logger.warning("%s not written: %s", path, e)
    if not isinstance(previous, dict):
        return {"items": [], "more": 0, "baseline": True, "previous_ms": None}
    items = compare(previous, now)
    return {"items": items[:MAX_ITEMS], "more": max(0, len(items) - MAX_ITEMS), "baseline": False,
            "previous_ms": previous.get("cycle_ms")}
