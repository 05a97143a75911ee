"""Lookahead check: no entry set may use a later bar to decide a signal.

The check computes an entry set's entry and exit signals on the full series, then on the series
cut after many random bars, and compares the signals at and before each cut. A causal signal
gives the same values: bar t only sees bars ≤ t (DESIGN.md, "Backtest conventions"). Any
difference means the signal peeked past the cut, and :class:`~engine.errors.LookaheadError` names
the entry set, the bar and the cut.

Signals may be a registered entry set (:data:`engine.strategy.signals.SIGNALS`, e.g. ``"ema_cross"`` with
its parameters) or any callable ``f(candles) -> (entries, exits)`` returning bool arrays of the
candles' length (a user's own entry set, a notebook experiment).
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Callable, Union

import numpy as np
import numpy.typing as npt
import pandas as pd

from engine.errors import ConfigError, DataError, LookaheadError
from engine.strategy import signals

logger = logging.getLogger(__name__)

SignalFunction = Callable[[pd.DataFrame], tuple[npt.ArrayLike, npt.ArrayLike]]
Signal = Union[str, SignalFunction]


@dataclass(frozen=True)
class LookaheadReport:
    """A passed check: what was compared."""

    name: str
    n_bars: int
    cuts: tuple[int, ...]
    n_entries: int
    n_exits: int

    def __str__(self) -> str:
        return (f"{self.name}: no lookahead: signals at and before {len(self.cuts)} random cuts equal the "
                f"full-series signals ({self.n_bars} bars, {self.n_entries} entries, {self.n_exits} exits)")


def _as_function(signal: Signal, params: dict | None) -> tuple[str, SignalFunction]:
    if callable(signal):
        return getattr(signal, "__name__", "custom"), signal
    spec = signals.get_signal(signal)  # ConfigError for an unknown name
    checked = signals.validate_params(spec.name, params, where=f"{signal} params")
    return signal, lambda candles: signals.evaluate(spec.name, candles, checked)


def load_function(path: str) -> SignalFunction:
    """Import a user signal function from ``"package.module:function"``.

    Raises
    ------
    ConfigError
        If the module cannot be imported or has no such callable.
    """
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"signal function {path!r}: expected 'module:function', e.g. 'mysignals:breakout'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"signal function {path!r}: cannot import module {module_name!r} ({e})") from e
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"signal function {path!r}: module {module_name!r} has no callable {attr!r}")
    return fn


def _signals(fn: SignalFunction, candles: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
    out = fn(candles)
    if not isinstance(out, tuple) or len(out) != 2:
        raise DataError(f"{name}: expected (entries, exits) bool arrays, found {type(out).__name__}")
    e, x = (np.asarray(a).astype(bool) for a in out)
    if e.shape != (len(candles),) or x.shape != (len(candles),):
        raise DataError(f"{name}: signal arrays of shapes {e.shape} and {x.shape}; expected ({len(candles)},)")
    return e, x


def check_lookahead(signal: Signal, candles: pd.DataFrame, params: dict | None = None, *, n_cuts: int = 50,
                    seed: int = 0, name: str | None = None, min_bars: int = 2) -> LookaheadReport:
    """Fail if any signal at or before a cut changes when the bars after the cut are removed.

    Parameters
    ----------
    signal : str or callable
        A registered entry set name (with `params`) or ``f(candles) -> (entries, exits)``.
    candles : DataFrame
        Candles in memory (DESIGN.md shape); the longer and livelier, the stronger the check.
    params : dict, optional
        Parameters of a registered entry set (defaults filled in).
    n_cuts : int
        Random cut points, drawn without replacement from bars ``min_bars - 1 … n_bars - 2``
        (the last bar is the full series itself).
    seed : int
        Seed of the cut points (the check is reproducible).
    name : str, optional
        Name used in messages (default: the entry set or function name).
    min_bars : int
        Shortest cut series (some user functions need a few bars).

    Returns
    -------
    LookaheadReport

    Raises
    ------
    LookaheadError
        Naming the entry set, the signal (entry or exit), the bar (row and UTC time), the cut and
        both values, e.g. ``peek: entry signal at bar 812 (2021-04-02 13:32 UTC) is True on the
        full series but False when the series is cut after bar 815``.
    ConfigError, DataError
        Unknown entry set, bad parameters, or a function returning arrays of the wrong shape.
    """
    label, fn = _as_function(signal, params)
    label = name or label
    n = len(candles)
    if n < min_bars + 1:
        raise DataError(f"{label}: lookahead check needs at least {min_bars + 1} candles, found {n}")
    if int(n_cuts) < 1:
        raise ConfigError(f"n_cuts = {n_cuts!r}: expected an integer ≥ 1")
    full_e, full_x = _signals(fn, candles, label)
    rng = np.random.default_rng(seed)
    lo, hi = max(0, min_bars - 1), n - 2
    choices = np.arange(lo, hi + 1)
    cuts = np.sort(rng.choice(choices, size=min(int(n_cuts), choices.size), replace=False))
    for cut in cuts:
        part = candles.iloc[:cut + 1]
        e, x = _signals(fn, part, label)
        for kind, got, want in (("entry", e, full_e[:cut + 1]), ("exit", x, full_x[:cut + 1])):
            bad = np.flatnonzero(got != want)
            if bad.size:
                bar = int(bad[0])
                when = candles.index[bar].strftime("%Y-%m-%d %H:%M UTC") if isinstance(candles.index, pd.DatetimeIndex) else str(candles.index[bar])
                raise LookaheadError(
                    f"{label}: {kind} signal at bar {bar} ({when}) is {bool(want[bar])} on the full series but "
                    f"{bool(got[bar])} when the series is cut after bar {int(cut)}: the signal uses bars after "
                    f"the one it belongs to; compute it from bars ≤ t only (no shift(-k), centred windows or "
                    f"whole-sample statistics)")
    report = LookaheadReport(label, n, tuple(int(c) for c in cuts), int(full_e.sum()), int(full_x.sum()))
    logger.info("%s", report)
    return report
