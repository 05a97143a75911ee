"""Lookahead check: no entry set may use a later bar to decide a signal.

The check computes an entry set's entry and exit signals on the series cut after chosen bars and
on the full series, and compares the signals at and before each cut. A causal signal gives the
same values: bar t only sees bars ≤ t (DESIGN.md, "Backtest conventions"). Any difference means
the signal peeked past the cut, and :class:`~engine.errors.LookaheadError` names the entry set,
the bar and the cut.

Where the cuts go, so that peeks of every known kind are caught:

- at a sample of the bars where a signal fires: an oracle that needs the future loses its entry
  when the cut removes that future (sparse oracles: a few entries in many bars);
- at bars 1, 2, 4, 8 … from the start: a warm-up back-filled from later bars changes there;
- at random bars, with a seed that changes per run and is recorded in the report (``seed=`` replays it).

Every cut series is evaluated **before** the full series, each in a fresh call: a user function
defined in an importable module is re-imported for every call, so a cache filled by one call (with
values from a longer series) cannot hide a peek in the next.

Signals may be a registered entry set (:data:`engine.strategy.signals.SIGNALS`, e.g. ``"ema_cross"``
with its parameters) or any callable ``f(candles) -> (entries, exits)`` returning bool arrays of the
candles' length (a user's own entry set, a notebook experiment).
"""
from __future__ import annotations

import importlib
import logging
import sys
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
    """A passed check: what was compared.

    Attributes
    ----------
    name : str
        Entry set or function.
    n_bars : int
        Bars of the full series.
    cuts : tuple of int
        Every cut (the series was cut after these bars), ascending.
    n_entries, n_exits : int
        Signals on the full series.
    seed : int
        Seed of the random cuts (pass it back as ``seed=`` to replay the same check).
    n_signal_cuts : int
        How many of the cuts sit on bars where a signal fires.
    """

    name: str
    n_bars: int
    cuts: tuple[int, ...]
    n_entries: int
    n_exits: int
    seed: int = 0
    n_signal_cuts: int = 0

    def __str__(self) -> str:
        return (f"{self.name}: no lookahead: signals at and before {len(self.cuts)} cuts ({self.n_signal_cuts} on "
                f"signal bars, seed {self.seed}) equal the full-series signals ({self.n_bars} bars, "
                f"{self.n_entries} entries, {self.n_exits} exits)")


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


def _fresh(fn: SignalFunction) -> SignalFunction:
    """Return `fn` so that every call runs in a fresh module: a module-level function of an importable
    module is re-imported before each call (its caches start empty); anything else is called as is."""
    module_name = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", "")
    if not module_name or module_name in ("__main__", "builtins") or "<" in name or "." in name:
        return fn
    module = sys.modules.get(module_name)
    if module is None or getattr(module, name, None) is not fn or not getattr(module, "__file__", None):
        return fn
    if module_name.startswith("engine.") or module_name == "engine":
        return fn  # the engine's own signals are pure functions; reloading them would rebind kernels

    def call(candles: pd.DataFrame):
        return getattr(importlib.reload(sys.modules[module_name]), name)(candles)

    return call


def _signals(fn: SignalFunction, candles: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
    out = fn(candles)
    if not isinstance(out, tuple) or len(out) != 2:
        raise DataError(f"{name}: expected (entries, exits) bool arrays, found {type(out).__name__}")
    e, x = (np.asarray(a).astype(bool) for a in out)
    if e.shape != (len(candles),) or x.shape != (len(candles),):
        raise DataError(f"{name}: signal arrays of shapes {e.shape} and {x.shape}; expected ({len(candles)},)")
    return e, x


def cut_points(entries: np.ndarray, exits: np.ndarray, *, n_cuts: int, n_signal_cuts: int, seed: int,
               min_bars: int = 2) -> tuple[np.ndarray, int]:
    """Return the sorted cut bars of a check and how many of them sit on signal bars.

    Parameters
    ----------
    entries, exits : bool arrays, shape (n_bars,)
        Where the signals fire (on a first, cut-free evaluation; any evaluation will do: a peeking
        signal fires near its future anyway).
    n_cuts : int
        Random cuts (seeded), drawn without replacement from bars ``min_bars - 1 … n_bars - 2``.
    n_signal_cuts : int
        Cuts on bars where a signal fires (all of them when there are fewer), seeded too.
    seed : int
        Seed of both draws.
    min_bars : int
        Shortest cut series.

    Returns
    -------
    (cuts, n_on_signal_bars)
        Unique bars, ascending; the early ladder 1, 2, 4, 8 … is always included.
    """
    n = len(entries)
    lo, hi = max(0, min_bars - 1), n - 2
    if hi < lo:
        return np.empty(0, dtype=np.int64), 0
    rng = np.random.default_rng(seed)
    fire = np.flatnonzero(entries | exits)
    fire = fire[(fire >= lo) & (fire <= hi)]
    on_signal = rng.choice(fire, size=min(n_signal_cuts, fire.size), replace=False) if fire.size else fire
    choices = np.arange(lo, hi + 1)
    random_cuts = rng.choice(choices, size=min(int(n_cuts), choices.size), replace=False)
    ladder = np.array([lo + 2 ** k - 1 for k in range(64) if lo + 2 ** k - 1 <= hi], dtype=np.int64)
    cuts = np.unique(np.concatenate([on_signal, random_cuts, ladder]).astype(np.int64))
    return cuts, int(np.unique(on_signal).size)


def check_lookahead(signal: Signal, candles: pd.DataFrame, params: dict | None = None, *, n_cuts: int = 50,
                    n_signal_cuts: int = 50, seed: int | None = None, name: str | None = None,
                    min_bars: int = 2) -> LookaheadReport:
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
    n_signal_cuts : int
        Cut points on bars where a signal fires (see :func:`cut_points`).
    seed : int, optional
        Seed of the cut points; by default a new one each run, recorded in the report (pass it to
        replay a check).
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
    seed = int(np.random.SeedSequence().entropy % 2**32) if seed is None else int(seed)
    call = _fresh(fn)
    # where the signals fire, from a series cut one bar short (never the full series first)
    probe_e, probe_x = _signals(call, candles.iloc[:n - 1], label)
    cuts, on_signal = cut_points(np.r_[probe_e, False], np.r_[probe_x, False], n_cuts=int(n_cuts),
                                 n_signal_cuts=int(n_signal_cuts), seed=seed, min_bars=min_bars)
    parts = {int(cut): _signals(call, candles.iloc[:cut + 1], label) for cut in cuts}
    full_e, full_x = _signals(call, candles, label)  # the full series last, in a fresh call too
    for cut, (e, x) in parts.items():
        for kind, got, want in (("entry", e, full_e[:cut + 1]), ("exit", x, full_x[:cut + 1])):
            bad = np.flatnonzero(got != want)
            if bad.size:
                bar = int(bad[0])
                when = candles.index[bar].strftime("%Y-%m-%d %H:%M UTC") if isinstance(candles.index, pd.DatetimeIndex) else str(candles.index[bar])
                raise LookaheadError(
                    f"{label}: {kind} signal at bar {bar} ({when}) is {bool(want[bar])} on the full series but "
                    f"{bool(got[bar])} when the series is cut after bar {int(cut)} (seed {seed}): the signal uses "
                    f"bars after the one it belongs to; compute it from bars ≤ t only (no shift(-k), centred "
                    f"windows, whole-sample statistics or values cached from another call)")
    report = LookaheadReport(label, n, tuple(int(c) for c in cuts), int(full_e.sum()), int(full_x.sum()),
                             seed, on_signal)
    logger.info("%s", report)
    return report
