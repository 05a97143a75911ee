"""Promotion: candidates → decisions with reasons, by the rules of a risk_mode, with an expiry.

A candidate is the best (pair, timeframe) result of a search (``reports/strategies.yml.next``,
:class:`engine.research.reports.Candidate`). It is promoted when its **out-of-sample** metrics
meet every threshold of the active risk_mode (config.yaml → promotion.<mode>). Promoted strategies
(:class:`engine.strategy.promoted.PromotedStrategy`) are merged into
``engine/config/strategies.yml`` with ``promoted_at``, ``expires_at`` (promoted_at + TTL) and the
``risk_mode`` that admitted them; one strategy per (pair, timeframe), the newest wins; expired
ones are dropped.

Promotion knows how old the data is: a candidate whose last candle closed more than
``age_mult`` × timeframe before the run's clock is not promoted (the reason says how old), and a
promoted strategy's expiry counts from the close of its last candle when that is earlier than the
clock (strategies researched on old candles never get a fresh expiry).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.clock import format_ms
from engine.config import PromotionRules
from engine.fileio import lock_for
from engine.markets import timeframe_to_ms
from engine.research.reports import Candidate, read_candidates
from engine.strategy.promoted import (
    PromotedStrategy,
    drop_expired,
    load_strategies,
    save_strategies,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromotionDecision:
    """Whether one candidate was promoted, and why (every failed rule is listed).

    Attributes
    ----------
    pair, timeframe, entry_set : str
        The candidate.
    promoted : bool
        True when it met every rule of the risk_mode.
    reasons : tuple of str
        The failed rules in words (``"trades 2 < 5"``), or ``("passes every rule",)``.
    """

    pair: str
    timeframe: str
    entry_set: str
    promoted: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        """Return ``{"pair", "timeframe", "entry_set", "promoted", "reasons"}`` (promotion.json)."""
        return {"pair": self.pair, "timeframe": self.timeframe, "entry_set": self.entry_set,
                "promoted": self.promoted, "reasons": list(self.reasons)}


def _number(x: Any) -> float:
    return float("nan") if x is None else float(x)


def check_rules(metrics: Mapping[str, float], rules: PromotionRules) -> list[str]:
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


def last_close_ms(candidate: Candidate | PromotedStrategy) -> int:
    """Close of the last candle a candidate was researched on (epoch ms UTC): its open + timeframe."""
    return int(candidate.period.last_ms) + timeframe_to_ms(candidate.timeframe)


def data_age_rule(candidate: Candidate, *, now_ms: int, age_mult: float) -> str | None:
    """Return why `candidate`'s data is too old on the run's clock, or None when it is fresh.

    Fresh means the last candle closed at most ``age_mult`` × timeframe before `now_ms` (the rule
    that makes a pair OLD on the dashboard).
    """
    tf_ms = timeframe_to_ms(candidate.timeframe)
    age_ms = now_ms - last_close_ms(candidate)
    if age_ms > age_mult * tf_ms:
        return (f"data {fmt_age(age_ms)} old on the run's clock (last candle {format_ms(candidate.period.last_ms)}; "
                f"at most {age_mult:g} × {candidate.timeframe})")
    return None


def fmt_age(ms: int) -> str:
    """``3.2 h``, ``41 min``, ``12.0 d`` for an age in ms."""
    if ms >= 2 * 86_400_000:
        return f"{ms / 86_400_000:.1f} d"
    if ms >= 3_600_000:
        return f"{ms / 3_600_000:.1f} h"
    return f"{ms / 60_000:.0f} min"


def _scaled(rules: PromotionRules, n_folds: int) -> PromotionRules:
    """`rules` with ``min_trades`` scaled to one fold's window (ceil of min_trades / n_folds, ≥ 1)."""
    return replace(rules, min_trades=max(1, math.ceil(rules.min_trades / max(n_folds, 1))))


def check_judgement(candidate: Candidate, rules: PromotionRules) -> list[str]:
    """Return the rules on chance, overfitting and the deployed parameters that `candidate` fails.

    - deflated Sharpe (probability that the true Sharpe > 0 given every trial of the slot, Bailey &
      López de Prado 2014) ≥ ``min_deflated_sharpe``; undefined fails;
    - ``p_value_vs_random`` (share of random-entry twins doing at least as well) ≤
      ``max_p_value_vs_random``; not computed (no trade, ``backtest.chance.n_twins`` 0) fails unless
      the threshold is 1;
    - PBO (CSCV, Bailey, Borwein, López de Prado & Zhu 2015) ≤ ``max_pbo``; undefined passes only
      when ``max_pbo`` is 1;
    - the deployed parameters (the last fold's) pass :func:`check_rules` on their own out-of-sample
      window, with ``min_trades`` scaled to one fold (ceil(min_trades / n_folds)); reasons start
      with ``deployed:``;
    - with ``require_holdout``, the same on the untouched final window (reasons start with
      ``holdout:``); no holdout configured fails, naming ``walk_forward.final_holdout_bars``.
    """
    j = candidate.judgement
    failed = []
    dsr = _number(candidate.deflated_sharpe)
    if math.isnan(dsr) or dsr < rules.min_deflated_sharpe:
        failed.append(f"deflated Sharpe {dsr:.2f} < {rules.min_deflated_sharpe:g} ({j.n_trials_slot} trials)")
    p = _number(j.p_value_vs_random)
    if math.isnan(p):
        if rules.max_p_value_vs_random < 1:
            failed.append("p-value vs random not computed (no trade or backtest.chance.n_twins 0)")
    elif p > rules.max_p_value_vs_random:
        failed.append(f"p-value vs random {p:.2f} > {rules.max_p_value_vs_random:g} ({j.n_twins} twins)")
    pbo = _number(j.pbo)
    if (math.isnan(pbo) and rules.max_pbo < 1) or pbo > rules.max_pbo:
        failed.append(f"PBO {pbo:.2f} > {rules.max_pbo:g}" if not math.isnan(pbo) else "PBO undefined")
    one_fold = _scaled(rules, j.n_folds)
    if j.deployed_oos:
        failed += [f"deployed: {r}" for r in check_rules(j.deployed_oos, one_fold)]
    else:
        failed.append("deployed: no out-of-sample metrics of the deployed parameters")
    if rules.require_holdout:
        if j.holdout:
            failed += [f"holdout: {r}" for r in check_rules(j.holdout, one_fold)]
        else:
            failed.append("holdout: required but walk_forward.final_holdout_bars is 0")
    return failed


def decide(candidates: Iterable[Candidate], rules: PromotionRules, *, now_ms: int | None = None,
           age_mult: float | None = None) -> list[PromotionDecision]:
    """Return one :class:`PromotionDecision` per candidate: judged on its pooled walk-forward
    ``metrics`` (out-of-sample, :func:`check_rules`), on chance, overfitting, the deployed
    parameters and the holdout (:func:`check_judgement`), and, with `now_ms` and `age_mult`, on the
    age of its data (:func:`data_age_rule`)."""
    out = []
    for c in candidates:
        failed = check_rules(c.metrics, rules) + check_judgement(c, rules)
        if now_ms is not None and age_mult is not None and (old := data_age_rule(c, now_ms=now_ms, age_mult=age_mult)):
            failed.append(old)
        out.append(PromotionDecision(c.pair, c.timeframe, c.entry_set, not failed,
                                     tuple(failed) or ("passes every rule",)))
    return out


def promote(candidate: Candidate, *, risk_mode: str, now_ms: int, ttl_hours: float) -> PromotedStrategy:
    """Return the promoted strategy of `candidate`, promoted at `now_ms` (epoch ms UTC, the cycle's
    clock), admitted by `risk_mode`, expiring `ttl_hours` after the close of its last candle when
    that is earlier than `now_ms`, else after `now_ms`."""
    c = candidate
    start_ms = min(int(now_ms), last_close_ms(c))
    return PromotedStrategy(
        pair=c.pair, timeframe=c.timeframe, entry_set=c.entry_set, signal=c.signal, params=dict(c.params),
        risk_mode=risk_mode, promoted_at_ms=now_ms, expires_at_ms=start_ms + round(ttl_hours * 3_600_000),
        exit_plan=c.exit_plan, costs=c.costs, metrics=dict(c.metrics), in_sample=dict(c.in_sample),
        config_id=c.config_id, period=c.period, bars=c.bars, curve=c.curve, n_configs_tried=c.n_configs_tried,
        deflated_sharpe=c.deflated_sharpe)


def merge(existing: Iterable[PromotedStrategy], candidates: Iterable[Candidate],
          decisions: Iterable[PromotionDecision], *, risk_mode: str, now_ms: int,
          ttl_hours: float) -> list[PromotedStrategy]:
    """Return the strategies after promotion, sorted by (pair, timeframe): the unexpired existing
    ones, replaced per (pair, timeframe) by the newly promoted candidates (:func:`promote`)."""
    kept, _ = drop_expired(existing, now_ms)
    by_key = {s.key: s for s in kept}
    for cand, dec in zip(candidates, decisions):
        if dec.promoted:
            new = promote(cand, risk_mode=risk_mode, now_ms=now_ms, ttl_hours=ttl_hours)
            by_key[new.key] = new
    return sorted(by_key.values(), key=lambda s: s.key)


def promote_file(candidates_path: Path, strategies_path: Path, rules: PromotionRules, *, risk_mode: str,
                 now_ms: int, ttl_hours: float, age_mult: float | None = None
                 ) -> tuple[list[PromotionDecision], list[PromotedStrategy]]:
    """Read candidates, decide, merge into strategies.yml (under its lock) and write it back.

    With `age_mult`, a candidate whose data is too old on the clock `now_ms` is not promoted
    (:func:`data_age_rule`).

    Returns
    -------
    (decisions, strategies)
        One decision per candidate; the strategies now in the file.

    Raises
    ------
    DataError
        If the candidates file is missing or malformed (then strategies.yml is left untouched).
    ConfigError
        If strategies.yml is invalid (left untouched).
    """
    candidates = read_candidates(candidates_path).candidates
    decisions = decide(candidates, rules, now_ms=now_ms, age_mult=age_mult)
    with lock_for(Path(strategies_path)):
        existing = load_strategies(strategies_path)
        strategies = merge(existing, candidates, decisions, risk_mode=risk_mode, now_ms=now_ms, ttl_hours=ttl_hours)
        n_expired = len(drop_expired(existing, now_ms)[1])
        save_strategies(strategies_path, strategies, now_ms)
    n_promoted = sum(d.promoted for d in decisions)
    logger.info("promotion (%s): %d of %d candidates promoted, %d expired dropped, %d active",
                risk_mode, n_promoted, len(candidates), n_expired, len(strategies))
    return decisions, strategies


def expire_file(strategies_path: Path, now_ms: int) -> list[PromotedStrategy]:
    """Drop expired strategies from strategies.yml; return the ones dropped."""
    with lock_for(Path(strategies_path)):
        existing = load_strategies(strategies_path)
        kept, expired = drop_expired(existing, now_ms)
        if expired:
            save_strategies(strategies_path, kept, now_ms)
            logger.info("expiry: dropped %d expired strategies (%s)", len(expired),
                        ", ".join(f"{s.pair} {s.timeframe}" for s in expired))
    return expired
