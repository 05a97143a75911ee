"""Session profiles: a named, pre-set testnet session (strategy, symbol, timeframe, duration, budget).

Profiles live in ``engine/config/desk.yaml`` (:mod:`engine.config.desk`). A profile's strategy is
either an entry set of ``entries_config.json`` (its signal, default parameters overridden by the
profile's ``params``, its exit plan and costs) or ``promoted``: the promoted strategy of the
profile's symbol × timeframe in ``runtime.strategies_file``
(:func:`engine.strategy.promoted.load_strategies`), with the parameters, exit plan and costs it was
promoted with. :func:`resolve_profile` turns either into the
:class:`~engine.execution.paper.PaperSpec` a session trades.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.clock import format_ms
from engine.config.desk import DeskConfig, SessionProfile
from engine.config.models import EntriesConfig
from engine.errors import ConfigError
from engine.execution.paper import PaperSpec
from engine.markets import pair_to_folder
from engine.records import display_path
from engine.strategy import signals
from engine.strategy.promoted import load_strategies


def get_profile(cfg: DeskConfig, name: str) -> SessionProfile:
    """Return the profile `name` of `cfg`.

    Raises
    ------
    ConfigError
        No such profile, naming the file, with a "did you mean" or the list of profiles.
    """
    if name in cfg.profiles:
        return cfg.profiles[name]
    close = difflib.get_close_matches(str(name), list(cfg.profiles), n=1)
    hint = f' Did you mean "{close[0]}"?' if close else f" Profiles: {', '.join(cfg.profiles)}."
    raise ConfigError(f"profile {name!r}: not in {display_path(cfg.path)} → profiles.{hint}")


def with_overrides(profile: SessionProfile, *, duration_minutes: Any = None, max_notional_quote: Any = None) -> SessionProfile:
    """Return `profile` with the CLI's overrides (None keeps the profile's value).

    Raises
    ------
    ConfigError
        A duration that is not whole minutes ≥ 1, or shorter than one candle; a notional that is not
        a finite number ≥ 0.
    """
    changes: dict[str, Any] = {}
    if duration_minutes is not None:
        d = duration_minutes
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d) or d < 1 or d != int(d):
            raise ConfigError(f"--override-duration = {d!r}: expected whole minutes ≥ 1")
        tf_minutes = {"1m": 1, "5m": 5, "15m": 15, "1h": 60, "4h": 240, "1d": 1440}[profile.timeframe]
        if d < tf_minutes:
            raise ConfigError(f"--override-duration = {d!r}: expected at least one {profile.timeframe} candle "
                              f"({tf_minutes} minutes) for profile {profile.name}")
        changes["duration_minutes"] = int(d)
    if max_notional_quote is not None:
        x = max_notional_quote
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x < 0:
            raise ConfigError(f"--override-max-notional = {x!r}: expected a number ≥ 0 (quote currency)")
        changes["max_notional_quote"] = float(x)
    return dataclasses.replace(profile, **changes) if changes else profile


@dataclass(frozen=True)
class ResolvedStrategy:
    """What a profile trades: the paper spec and where it came from (for the plan and the report)."""

    spec: PaperSpec
    source: str


def resolve_profile(profile: SessionProfile, *, entries: EntriesConfig, strategies_file: Path | str,
                    now_ms: int) -> ResolvedStrategy:
    """Turn `profile` into the strategy a session trades.

    Parameters
    ----------
    profile : SessionProfile
    entries : EntriesConfig
        entries_config.json (for an entry-set profile).
    strategies_file : path
        ``runtime.strategies_file`` (for a ``promoted`` profile).
    now_ms : int
        The session's clock (replay: its last candle's close): a promoted strategy expired by then
        is not traded.

    Raises
    ------
    ConfigError
        An unknown entry set (with a "did you mean"), parameters the signal does not know, or no
        unexpired promoted strategy for the symbol × timeframe.
    """
    where = f"desk profile {profile.name}"
    if profile.is_promoted:
        folder = pair_to_folder(profile.symbol)
        found = [s for s in load_strategies(strategies_file) if s.pair == folder and s.timeframe == profile.timeframe]
        file = display_path(strategies_file)
        if not found:
            raise ConfigError(f"{where}: strategy 'promoted', but {file} promotes nothing for {profile.symbol} "
                              f"{profile.timeframe}; promote one first (jobs/promote.py) or name an entry set")
        s = found[0]
        if s.is_expired(now_ms):
            raise ConfigError(f"{where}: the promoted strategy {s.pair} {s.timeframe} {s.entry_set} in {file} expired "
                              f"at {format_ms(s.expires_at_ms)} (session clock {format_ms(now_ms)}); promote again")
        return ResolvedStrategy(PaperSpec.from_promoted(s),
                                f"promoted {s.entry_set} {dict(s.params)} ({file}, risk_mode {s.risk_mode}, expires "
                                f"{format_ms(s.expires_at_ms)})")
    if profile.strategy not in entries.entry_sets:
        close = difflib.get_close_matches(profile.strategy, list(entries.entry_sets), n=1)
        hint = f' Did you mean "{close[0]}"?' if close else ""
        raise ConfigError(f"{where}: strategy {profile.strategy!r}: expected 'promoted' or an entry set of "
                          f"{display_path(entries.path)} ({', '.join(entries.entry_sets)}).{hint}")
    es = entries.entry_sets[profile.strategy]
    params = signals.validate_params(es.signal, {**dict(es.params), **dict(profile.params)},
                                     where=f"{where} → params")
    spec = PaperSpec(profile.symbol, profile.timeframe, es.name, es.signal, params, es.exit_plan, es.costs)
    return ResolvedStrategy(spec, f"entry set {es.name} {params} ({display_path(entries.path)})")


def format_profiles(cfg: DeskConfig) -> str:
    """The ``--list`` text: every profile with its strategy, symbol, timeframe, duration and budget."""
    lines = [f"Testnet session profiles ({display_path(cfg.path)}):"]
    for p in cfg.profiles.values():
        lines += ["", f"[{p.name}]",
                  f"  strategy:      {p.strategy}" + (f" {dict(p.params)}" if p.params else ""),
                  f"  symbol:        {p.symbol}" + (f" on {p.exchange}" if p.exchange else ""),
                  f"  timeframe:     {p.timeframe}",
                  f"  duration:      {p.duration_minutes} minutes",
                  f"  max notional:  {p.max_notional_quote:.2f} (quote)",
                  f"  max trades:    {p.max_trades}",
                  f"  description:   {p.description or '-'}"]
    return "\n".join(lines)
