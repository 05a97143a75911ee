"""Walk-forward folds and the in-sample choice of a parameter set.

Fold layout (bars of one series, ``T`` test bars, ``R`` train bars, ``E`` embargo bars)::

    rolling : fold j trains on [j·T, j·T + R − E) and tests on [j·T + R, (j+1)·T + R)
    anchored: fold j trains on [0,   j·T + R − E) and tests on the same window as rolling

The embargo is taken from the end of each train window, so the test windows tile the period
after the first train window without holes. With ``train_bars``/``test_bars`` unset,
``R / (R + T) = train_ratio`` and the folds span the whole series: ``n_bars = R + n_splits · T``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from engine.config import WalkForward
from engine.errors import DataError


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold as bar positions ``[start, stop)`` of the series."""

    index: int
    train_start: int
    train_stop: int
    test_start: int
    test_stop: int


def walk_forward_folds(n_bars: int, wf: WalkForward) -> list[Fold]:
    """Return the folds of a series of `n_bars` bars (see the module docstring for the layout).

    Raises
    ------
    DataError
        If the series is too short for the folds: fewer than 10 test bars or 20 train bars.
    """
    k = wf.n_splits
    if wf.train_bars is not None and wf.test_bars is not None:
        train, test = int(wf.train_bars), int(wf.test_bars)
        if train + k * test > n_bars:
            raise DataError(f"walk-forward needs {train + k * test} bars (train {train} + {k} × test {test}); "
                            f"the series has {n_bars}. Lower walk_forward.train_bars/test_bars/n_splits.")
        offset = n_bars - (train + k * test)  # use the most recent bars
    else:
        r = wf.train_ratio
        test = int(n_bars / (r / (1.0 - r) + k))
        train = n_bars - k * test
        offset = 0
    if test < 10 or train - wf.embargo_bars < 20:
        raise DataError(f"walk-forward: {n_bars} bars give train windows of {train - wf.embargo_bars} bars after "
                        f"the embargo and test windows of {test}; expected at least 20 and 10. "
                        "Backfill more candles or lower walk_forward.n_splits / embargo_bars.")
    folds = []
    for j in range(k):
        test_start = offset + j * test + train
        train_start = offset if wf.scheme == "anchored" else offset + j * test
        folds.append(Fold(j, train_start, test_start - wf.embargo_bars, test_start, test_start + test))
    return folds


def _objective_value(metrics: dict, objective: str) -> float:
    value = metrics.get(objective)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return -math.inf
    return float(value)


def _meets(m: dict, min_trades: int, max_drawdown_pct: float) -> bool:
    dd = m.get("max_drawdown_pct")
    return int(m.get("n_trades") or 0) >= min_trades and (dd is None or not dd > max_drawdown_pct)


def choose_best(metrics_list: Sequence[dict | None], objective: str, min_trades: int, max_drawdown_pct: float) -> int:
    """Return the index of the best parameter set: highest `objective` among those that meet the
    constraints; when none meets them, highest objective overall (ties: the first). ``None``
    entries (parameter sets that could not be evaluated) are never chosen unless all are None.

    Raises
    ------
    DataError
        If `metrics_list` is empty.
    """
    if not len(metrics_list):
        raise DataError("choose_best: no parameter set was evaluated")
    order = sorted(range(len(metrics_list)), key=lambda i: (
        metrics_list[i] is None,
        metrics_list[i] is None or not _meets(metrics_list[i], min_trades, max_drawdown_pct),
        -_objective_value(metrics_list[i] or {}, objective), i))
    return order[0]


def _mean_metrics(rows: list[dict]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in rows[0]:
        values = [r[key] for r in rows if r.get(key) is not None and not (isinstance(r[key], float) and math.isnan(r[key]))]
        if key == "n_trades":
            out[key] = int(sum(values))
        else:
            out[key] = float(np.mean(values)) if values else float("nan")
    return out
