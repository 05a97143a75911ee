"""Promotion: candidates → decisions with reasons, by the rules of a risk_mode, with an expiry.

A candidate is the best (pair, timeframe) result of a search (``reports/strategies.yml.next``).
It is promoted when its **out-of-sample** metrics meet every threshold of the active risk_mode
(config.yaml → promotion.<mode>). Promoted strategies are merged into
``engine/config/strategies.yml`` with ``promoted_at``, ``expires_at`` (promoted_at + TTL) and the
``risk_mode`` that admitted them; one strategy per (pair, timeframe), the newest wins; expired
ones are dropped.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.clock import iso_ms
from engine.config import PromotionRules, load_strategies
from engine.errors import ConfigError
from engine.fileio import atomic_write_text, json_safe, lock_for

logger = logging.getLogger(__name__)

STRATEGIES_HEADER = (
    "# Promoted strategies, written by jobs/promote.py (and the maintainer). Each entry records the\n"
    "# risk_mode that admitted it, promoted_at and expires_at (ISO 8601 UTC).\n"
)


@dataclass(frozen=True)
class Decision:
    """Whether one candidate was promoted, and why (every failed rule is listed)."""

    pair: str
    timeframe: str
    entry_set: str
    promoted: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict:
        return {"pair": self.pair, "timeframe": self.timeframe, "entry_set": self.entry_set,
                "promoted": self.promoted, "reasons": list(self.reasons)}


def _number(x: Any) -> float:
    return float("nan") if x is None else float(x)


def check_rules(metrics: dict, rules: PromotionRules) -> list[str]:
    """Return the rules `metrics` (out-of-sample) fail, in words; an empty list means it passes.

    An undefined metric (None/NaN) fails its rule: e.g. a profit factor with no losing trade is
    undefined and is not taken as infinitely good, unless gross profit is positive and
    ``min_profit_factor`` is met trivially — that case is reported as passing.
    """
    failed = []
    n_trades = int(metrics.get("n_trades") or 0)
    if n_trades < rules.min_trades:
        failed.append(f"trades {n_trades} < {rules.min_trades}")
    pf = _number(metrics.get("profit_factor"))
    if math.isnan(pf):
        # undefined: no losing trade (infinite) or no trade at all
        if not (n_trades > 0 and _number(metrics.get("total_return_pct")) > 0):
            failed.append("profit factor undefined")
    elif pf < rules.min_profit_factor:
        failed.append(f"profit factor {pf:.2f} < {rules.min_profit_factor:g}")
    dd = _number(metrics.get("max_drawdown_pct"))
    if math.isnan(dd) or dd > rules.max_drawdown_pct:
        failed.append(f"max drawdown {dd:.2f} % > {rules.max_drawdown_pct:g} %")
    sharpe = _number(metrics.get("sharpe"))
    if math.isnan(sharpe) or sharpe < rules.min_sharpe:
        failed.append(f"Sharpe {sharpe:.2f} < {rules.min_sharpe:g}")
    win = _number(metrics.get("win_rate_pct"))
    if rules.min_win_rate_pct > 0 and (math.isnan(win) or win < rules.min_win_rate_pct):
        failed.append(f"win rate {win:.1f} % < {rules.min_win_rate_pct:g} %")
    return failed


def decide(candidates: list[dict], rules: PromotionRules) -> list[Decision]:
    """Return one :class:`Decision` per candidate, judged on its ``metrics`` (out-of-sample)."""
    out = []
    for c in candidates:
        failed = check_rules(c.get("metrics") or {}, rules)
        out.append(Decision(c["pair"], c["timeframe"], c["entry_set"], not failed, tuple(failed) or ("passes every rule",)))
    return out


def drop_expired(strategies: list[dict], now_ms: int) -> tuple[list[dict], list[dict]]:
    """Split `strategies` into (kept, expired) at `now_ms` (epoch ms UTC)."""
    kept = [s for s in strategies if int(s.get("expires_at_ms", 0)) > now_ms]
    expired = [s for s in strategies if int(s.get("expires_at_ms", 0)) <= now_ms]
    return kept, expired


def merge(existing: list[dict], candidates: list[dict], decisions: list[Decision], *, risk_mode: str,
          now_ms: int, ttl_hours: float) -> list[dict]:
    """Return the strategies after promotion: unexpired existing ones, replaced per (pair, TF) by
    newly promoted candidates, which get ``promoted_at``/``expires_at`` (ISO) and ``*_ms`` twins."""
    kept, _ = drop_expired(existing, now_ms)
    by_key = {(s["pair"], s["timeframe"]): s for s in kept}
    expires_ms = now_ms + int(ttl_hours * 3_600_000)
    for cand, dec in zip(candidates, decisions):
        if not dec.promoted:
            continue
        entry = {k: v for k, v in cand.items() if k not in ("promoted_at", "expires_at")}
        entry.update(
            promoted_at=iso_ms(now_ms), promoted_at_ms=now_ms,
            expires_at=iso_ms(expires_ms), expires_at_ms=expires_ms, risk_mode=risk_mode,
        )
        by_key[(cand["pair"], cand["timeframe"])] = entry
    return sorted(by_key.values(), key=lambda s: (s["pair"], s["timeframe"]))


def save_strategies(path: Path, strategies: list[dict], now_ms: int, *, lock: bool = True) -> None:
    """Write strategies.yml atomically (``lock=False`` when the caller already holds its lock)."""
    text = STRATEGIES_HEADER + yaml.safe_dump(
        json_safe({"updated_at": iso_ms(now_ms), "strategies": strategies}), sort_keys=False, width=100)
    atomic_write_text(Path(path), text, lock=lock)


def promote_file(candidates_path: Path, strategies_path: Path, rules: PromotionRules, *, risk_mode: str,
                 now_ms: int, ttl_hours: float) -> tuple[list[Decision], list[dict]]:
    """Read candidates, decide, merge into strategies.yml (under its lock) and write it back.

    Returns
    -------
    (decisions, strategies)
        One decision per candidate; the strategies now in the file.

    Raises
    ------
    ConfigError
        If the candidates file is missing or malformed, or strategies.yml is invalid (then it is
        left untouched).
    """
    candidates = load_candidates(candidates_path)
    decisions = decide(candidates, rules)
    with lock_for(Path(strategies_path)):
        existing = load_strategies(strategies_path)
        strategies = merge(existing, candidates, decisions, risk_mode=risk_mode, now_ms=now_ms, ttl_hours=ttl_hours)
        n_expired = len(drop_expired(existing, now_ms)[1])
        save_strategies(strategies_path, strategies, now_ms, lock=False)
    n_promoted = sum(d.promoted for d in decisions)
    logger.info("promotion (%s): %d of %d candidates promoted, %d expired dropped, %d active",
                risk_mode, n_promoted, len(candidates), n_expired, len(strategies))
    return decisions, strategies


def expire_file(strategies_path: Path, now_ms: int) -> list[dict]:
    """Drop expired strategies from strategies.yml; return the ones dropped."""
    with lock_for(Path(strategies_path)):
        existing = load_strategies(strategies_path)
        kept, expired = drop_expired(existing, now_ms)
        if expired:
            save_strategies(strategies_path, kept, now_ms, lock=False)
            logger.info("expiry: dropped %d expired strategies (%s)", len(expired),
                        ", ".join(f"{s['pair']} {s['timeframe']}" for s in expired))
    return expired


def load_candidates(path: Path) -> list[dict]:
    """Return the candidates of a ``strategies.yml.next`` file.

    Raises
    ------
    ConfigError
        If the file is missing, not YAML, or has no ``candidates`` list of mappings with
        ``pair timeframe entry_set metrics``.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: file not found; run jobs/backtest.py first")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from e
    cands = doc.get("candidates") if isinstance(doc, dict) else None
    if not isinstance(cands, list):
        raise ConfigError(f"{path} → candidates: expected a list of candidates")
    for i, c in enumerate(cands):
        if not isinstance(c, dict):
            raise ConfigError(f"{path} → candidates[{i}]: expected a mapping")
        for key in ("pair", "timeframe", "entry_set", "metrics"):
            if key not in c:
                raise ConfigError(f"{path} → candidates[{i}]: missing key {key!r}")
    return cands
