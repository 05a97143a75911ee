"""Engine results as tables for notebook cells: indicators, entry sets side by side, folds, judgements,
promotion per risk_mode, order plans.

Each function only arranges what an engine function returned (or calls the engine function the CLIs
call); no number is computed here that the engine does not compute itself.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine.backtest import BacktestResult, run_backtest
from engine.backtest.metrics import METRIC_KEYS
from engine.config import AppConfig, EntriesConfig
from engine.errors import ConfigError
from engine.execution.order_plan import OrderPlan
from engine.markets import timeframe_to_ms
from engine.promotion import decide
from engine.research.reports import Candidate, SummaryRow
from engine.strategy import signals
from engine.strategy.promoted import PromotedStrategy


def select_entry_sets(entries: EntriesConfig, names: Iterable[str] | None) -> EntriesConfig:
    """Return `entries` with only the entry sets `names` enabled (all of them when `names` is None or empty).

    Raises
    ------
    ConfigError
        A name that is not an entry set of the file (the message lists them).
    """
    names = list(names or [])
    unknown = [n for n in names if n not in entries.entry_sets]
    if unknown:
        raise ConfigError(f"entry sets {', '.join(map(repr, unknown))}: expected names from {entries.path.name} "
                          f"({', '.join(entries.entry_sets)})")
    if not names:
        return entries
    kept = {n: dataclasses.replace(entries.entry_sets[n], enabled=True) for n in names}
    return dataclasses.replace(entries, entry_sets=kept)


def indicator_frame(signal: str, candles: pd.DataFrame, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Return the indicator lines entry set `signal` uses with `params`, one column each (``ema(12)``).

    The lines are the ones :func:`engine.strategy.signals.evaluate` compares (same kernels, same
    warm-up NaN); the close itself is left out. Index: the candles'.
    """
    checked = signals.validate_params(signal, dict(params or {}))
    bars = signals.to_bar_arrays(candles)
    keys = [k for k in dict.fromkeys(signals.get_signal(signal).indicators(checked)) if k[0] != "close"]
    return pd.DataFrame({f"{kind}({period})": signals.compute_indicator((kind, period), bars) for kind, period in keys},
                        index=candles.index)


def compare_entry_sets(candles: pd.DataFrame, entries: EntriesConfig, names: Sequence[str] | None, *,
                       timeframe: str) -> tuple[pd.DataFrame, dict[str, BacktestResult]]:
    """Backtest each entry set `names` with its parameters, exit plan and costs from entries_config.json.

    Returns
    -------
    (table, results)
        One row per entry set (its params and every metric of
        :data:`engine.backtest.metrics.METRIC_KEYS`), and the :class:`BacktestResult` of each.
    """
    chosen = select_entry_sets(entries, names).enabled()
    results = {es.name: run_backtest(candles, es.signal, dict(es.params), es.exit_plan, es.costs, timeframe=timeframe)
               for es in chosen}
    table = pd.DataFrame([{"entry_set": name, "params": dict(r.params), **{k: r.metrics[k] for k in METRIC_KEYS}}
                          for name, r in results.items()]).set_index("entry_set")
    return table, results


def folds_frame(row: SummaryRow) -> pd.DataFrame:
    """Return one line per walk-forward fold of `row`: windows, the parameters chosen in-sample, and
    trades, Sharpe and return in-sample (train) beside out-of-sample (test)."""
    out = []
    for f in row.folds:
        line: dict[str, Any] = {"fold": f.fold, "search": f.search, "params": dict(f.params),
                                "train": f"{_day(f.train.first_ms)} → {_day(f.train.last_ms)} ({f.train.bars} bars)",
                                "test": f"{_day(f.test.first_ms)} → {_day(f.test.last_ms)} ({f.test.bars} bars)",
                                "configs tried": f.n_configs_tried}
        for label, m in (("IS", f.in_sample), ("OOS", f.out_of_sample)):
            line[f"{label} trades"] = m.get("n_trades")
            line[f"{label} Sharpe"] = m.get("sharpe")
            line[f"{label} return [%]"] = m.get("total_return_pct")
        out.append(line)
    return pd.DataFrame(out).set_index("fold")


def _day(ms: int) -> str:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M")


def in_vs_out_frame(rows: Iterable[SummaryRow]) -> pd.DataFrame:
    """Return one line per summary row: in-sample (mean over folds) beside out-of-sample (the
    concatenated test windows) trades, Sharpe, return and profit factor, and the walk-forward efficiency."""
    out = []
    for r in rows:
        line: dict[str, Any] = {"entry_set": r.entry_set, "search": r.search, "params (last fold)": dict(r.params)}
        for key, label in (("n_trades", "trades"), ("sharpe", "Sharpe"), ("total_return_pct", "return [%]"),
                           ("profit_factor", "profit factor")):
            line[f"IS {label}"] = r.in_sample.get(key)
            line[f"OOS {label}"] = r.out_of_sample.get(key)
        line["WF efficiency"] = r.walk_forward_efficiency
        out.append(line)
    return pd.DataFrame(out).set_index("entry_set")


def judgement_frame(rows: Iterable[SummaryRow]) -> pd.DataFrame:
    """Return what says whether each row beats chance (README, "Does it beat chance?"): p-value and
    excess return against random-entry twins, deflated Sharpe over the slot's trials, PBO, and what
    costs leave (cost per trade against the break-even cost)."""
    out = []
    for r in rows:
        j = r.judgement
        out.append({"entry_set": r.entry_set, "OOS return [%]": r.out_of_sample.get("total_return_pct"),
                    "p vs random": j.p_value_vs_random, "excess vs random [%]": j.excess_vs_random_pct,
                    "twins median [%]": j.twins_median_pct, "twins": j.n_twins,
                    "deflated Sharpe": r.deflated_sharpe, "trials in slot": j.n_trials_slot, "PBO": j.pbo,
                    "cost per trade [bps]": j.cost_per_trade_bps, "break-even cost [bps]": j.break_even_cost_bps})
    return pd.DataFrame(out).set_index("entry_set")


def promotion_by_risk_mode(candidate: Candidate, app: AppConfig, *, now_ms: int | None = None) -> pd.DataFrame:
    """Return what promotion would decide for `candidate` under each risk_mode of config.yaml, and why.

    Calls :func:`engine.promotion.decide` (what ``jobs/promote.py`` and the cycle call) once per mode,
    with the data-age rule when `now_ms` is given (``runtime.age_mult``). One line per failed rule (or
    one "passes every rule" line) per mode, columns ``promoted`` and ``rule``; the active mode is marked.
    """
    out = []
    for mode, rules in app.promotion.items():
        d = decide([candidate], rules, now_ms=now_ms, age_mult=app.runtime.age_mult if now_ms is not None else None)[0]
        label = mode + (" (active)" if mode == app.runtime.risk_mode else "")
        out += [{"risk_mode": label, "promoted": d.promoted, "rule": reason} for reason in d.reasons]
    return pd.DataFrame(out).set_index("risk_mode")


def plan_frame(plan: OrderPlan) -> pd.DataFrame:
    """Return one line per leg of an order plan: role, side, type, quantity (base), price (quote), trail."""
    return pd.DataFrame([{"role": leg.role + (str(leg.step) if leg.step else ""), "side": leg.side,
                          "type": leg.order_type, "quantity [base]": leg.quantity_base, "price [quote]": leg.price,
                          "trail [%]": leg.trail_pct} for leg in plan.legs]).set_index("role")


def last_signal_close_ms(strategy: PromotedStrategy, candles: pd.DataFrame, *, side: str = "buy") -> int | None:
    """Return the close (epoch ms) of the last bar of `candles` on which `strategy`'s entry (``buy``)
    or exit (``sell``) signal fires, or None: the clock at which
    :func:`engine.execution.intents.intent_for` gives that intent."""
    entries, exits = signals.evaluate(strategy.signal, candles, strategy.params)
    fired = np.flatnonzero(entries if side == "buy" else exits)
    if not fired.size:
        return None
    return int(candles.index[fired[-1]].value // 1_000_000) + timeframe_to_ms(strategy.timeframe)
