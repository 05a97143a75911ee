"""The exit plan: TP ladder, stop-loss, breakeven, trailing stop, exit signal, max hold.

One :class:`ExitPlan` object is what a backtest scores and what the order-plan builder turns into
orders (DESIGN.md, "One exit model"). The rules that decide *how* a plan is filled bar by bar are
written down once, in :func:`engine.simulator.simulate_nb`.

Units: take-profit and stop distances are percent of the entry fill price (``tp 0.9`` = 0.9 %
above entry, ``sl_pct -0.5`` = 0.5 % below entry); ATR distances are multiples of the ATR of the
signal bar; fees and slippage are basis points per side (:class:`Costs`).
"""
from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.errors import ConfigError

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

# Layout of the float64 parameter vector handed to the kernels (see ExitPlan.as_kernel_args).
P_SL_PCT = 0          # stop distance as a fraction (negative), NaN = none
P_SL_ATR = 1          # stop distance in ATRs (positive), NaN = none
P_BREAKEVEN = 2       # 1.0 = move the stop to breakeven after TP1
P_BE_OFFSET = 3       # breakeven offset as a fraction of the entry price
P_TRAIL_PCT = 4       # trailing distance as a fraction (positive), NaN = none
P_TRAIL_ATR = 5       # trailing distance in ATRs, NaN = none
P_USE_EXIT_SIGNAL = 6  # 1.0 = act on the exit signal
P_MAX_HOLD = 7        # max holding time in bars, -1 = none
P_CHECK_ENTRY_BAR = 8  # 1.0 = check stops/targets on the entry bar itself
P_LOT = 9             # lot size in base units, 0 = fractional quantities
P_FEE = 10            # fee per side as a fraction of notional
P_SLIP = 11           # slippage per fill as a fraction of price
P_CASH = 12           # initial cash in quote currency
N_PLAN = 13

_KEYS = (
    "tp_ladder", "sl_pct", "sl_atr_mult", "atr_period", "breakeven", "breakeven_offset_pct",
    "trail_pct", "trail_atr_mult", "use_exit_signal", "max_hold_bars", "check_entry_bar",
    "lot_size_base",
)
_ALIASES = {"tp": "tp_ladder"}


def parse_tp_ladder(text: str, *, where: str = "tp") -> tuple[tuple[float, float], ...]:
    """Parse a take-profit ladder written ``"pct:alloc,pct:alloc,..."``.

    Parameters
    ----------
    text : str
        For example ``"0.9:50,1.4:30,2.1:20"``: sell 50 % of the position 0.9 % above the entry
        fill, 30 % at +1.4 %, the last 20 % at +2.1 %. An empty string means no take-profit.
    where : str
        Name of the file/key/flag, used in error messages.

    Returns
    -------
    tuple of (pct, alloc_pct) tuples
        Validated like :class:`ExitPlan` (percentages > 0 and strictly increasing, allocations > 0
        summing to 100).

    Raises
    ------
    ConfigError
        If a step is not ``number:number`` or the ladder breaks a rule above.
    """
    if not isinstance(text, str):
        raise ConfigError(f"{where} = {text!r}: expected a string like '0.9:50,1.4:30,2.1:20'")
    steps = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        bits = part.split(":")
        try:
            if len(bits) != 2:
                raise ValueError
            steps.append((float(bits[0]), float(bits[1])))
        except ValueError:
            raise ConfigError(
                f"{where} = {text!r}: step {part!r} is not 'pct:alloc' (e.g. '0.9:50,1.4:30,2.1:20')"
            ) from None
    ladder = tuple(steps)
    _check_ladder(ladder, where)
    return ladder


def format_tp_ladder(ladder: tuple[tuple[float, float], ...]) -> str:
    """Return the ``"pct:alloc,..."`` text of a ladder (inverse of :func:`parse_tp_ladder`)."""
    return ",".join(f"{p:g}:{a:g}" for p, a in ladder)


def _check_ladder(ladder: tuple[tuple[float, float], ...], where: str) -> None:
    if not ladder:
        return
    prev = 0.0
    for pct, alloc in ladder:
        if not (math.isfinite(pct) and pct > prev):
            raise ConfigError(
                f"{where}: take-profit {pct:g} %: expected a finite percentage > 0 and above the "
                "previous step (steps in increasing order)"
            )
        if not (math.isfinite(alloc) and alloc > 0):
            raise ConfigError(f"{where}: allocation {alloc:g} %: expected a percentage > 0")
        prev = pct
    total = sum(a for _, a in ladder)
    if abs(total - 100.0) > 1e-6:
        raise ConfigError(f"{where}: allocations sum to {total:g} %: expected 100")


@dataclass(frozen=True)
class Costs:
    """Trading costs per fill.

    Parameters
    ----------
    fee_bps : float
        Fee per side on notional, basis points (10 = 0.1 %), ≥ 0.
    slippage_bps : float
        Adverse price move per fill, basis points (buys fill higher, sells lower), ≥ 0.

    Raises
    ------
    ConfigError
        If a value is negative or not finite.
    """

    fee_bps: float = 0.0
    slippage_bps: float = 0.0

    def __post_init__(self) -> None:
        for name in ("fee_bps", "slippage_bps"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
                    or value < 0:
                raise ConfigError(f"costs.{name} = {value!r}: expected a finite number ≥ 0 (basis points)")

    @property
    def fee_rate(self) -> float:
        """Fee per side as a fraction of notional (10 bps → 0.001)."""
        return self.fee_bps / 10_000.0

    @property
    def slippage_rate(self) -> float:
        """Slippage per fill as a fraction of price (2 bps → 0.0002)."""
        return self.slippage_bps / 10_000.0


@dataclass(frozen=True)
class ExitPlan:
    """How a long position is closed. Fill rules: :func:`engine.simulator.simulate_nb`.

    Parameters
    ----------
    tp_ladder : tuple of (pct, alloc_pct)
        Take-profit steps: sell ``alloc_pct`` % of the entry quantity when the high reaches
        ``entry_fill × (1 + pct/100)``. Percentages > 0 and increasing; allocations sum to 100.
        Empty = no take-profit.
    sl_pct : float or None
        Stop-loss distance in percent of the entry fill, negative (-0.5 = 0.5 % below entry).
    sl_atr_mult : float or None
        Stop-loss distance in multiples of the ATR of the signal bar (> 0). At most one of
        `sl_pct` and `sl_atr_mult`. During the ATR warm-up there is no ATR stop.
    atr_period : int
        Wilder ATR period in bars for the ATR stop and ATR trail (default 14).
    breakeven : bool
        After TP1 fills, move the stop up to ``entry_fill × (1 + breakeven_offset_pct/100)``
        (from the next bar on).
    breakeven_offset_pct : float
        Offset of the breakeven stop, percent of the entry fill (may be 0 or negative).
    trail_pct : float or None
        Trailing stop distance below the highest high since entry, percent (> 0).
    trail_atr_mult : float or None
        Trailing stop distance in ATRs of the previous bar (> 0). At most one of the two trails.
    use_exit_signal : bool
        Close the position at the next open when the entry set's exit signal fires.
    max_hold_bars : int or None
        Close the position at the open of bar ``entry_bar + max_hold_bars`` (≥ 1).
    check_entry_bar : bool
        True (DESIGN.md): stops and targets are checked on the entry bar too. False: from the bar
        after the fill, as backtesting.py does when levels are set from the fill price.
    lot_size_base : float or None
        Quantities are whole multiples of this many base units (1.0 = whole coins, as
        backtesting.py sizes). None = fractional quantities.

    Raises
    ------
    ConfigError
        On any value outside the rules above.
    """

    tp_ladder: tuple[tuple[float, float], ...] = ()
    sl_pct: float | None = None
    sl_atr_mult: float | None = None
    atr_period: int = 14
    breakeven: bool = False
    breakeven_offset_pct: float = 0.0
    trail_pct: float | None = None
    trail_atr_mult: float | None = None
    use_exit_signal: bool = True
    max_hold_bars: int | None = None
    check_entry_bar: bool = True
    lot_size_base: float | None = None

    def __post_init__(self) -> None:
        self._validate("exit_plan")

    def _validate(self, where: str) -> None:
        ladder = self.tp_ladder
        if isinstance(ladder, str):
            object.__setattr__(self, "tp_ladder", parse_tp_ladder(ladder, where=f"{where}.tp_ladder"))
        else:
            try:
                ladder = tuple((float(p), float(a)) for p, a in ladder)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"{where}.tp_ladder = {self.tp_ladder!r}: expected pairs (pct, alloc_pct) or a "
                    "string like '0.9:50,1.4:30,2.1:20'"
                ) from None
            _check_ladder(ladder, f"{where}.tp_ladder")
            object.__setattr__(self, "tp_ladder", ladder)

        def number(key: str, *, positive: bool = False, negative: bool = False) -> None:
            value = getattr(self, key)
            if value is None:
                return
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"{where}.{key} = {value!r}: expected a finite number or null")
            if positive and value <= 0:
                raise ConfigError(f"{where}.{key} = {value!r}: expected a number > 0")
            if negative and value >= 0:
                raise ConfigError(
                    f"{where}.{key} = {value!r}: expected a negative percentage (-0.5 = 0.5 % below entry)"
                )
            object.__setattr__(self, key, float(value))

        number("sl_pct", negative=True)
        number("sl_atr_mult", positive=True)
        number("trail_pct", positive=True)
        number("trail_atr_mult", positive=True)
        number("lot_size_base", positive=True)
        number("breakeven_offset_pct")
        if self.breakeven_offset_pct is None:
            raise ConfigError(f"{where}.breakeven_offset_pct = None: expected a number (percent)")
        if self.sl_pct is not None and self.sl_atr_mult is not None:
            raise ConfigError(f"{where}: both sl_pct and sl_atr_mult are set: expected at most one stop-loss")
        if self.trail_pct is not None and self.trail_atr_mult is not None:
            raise ConfigError(
                f"{where}: both trail_pct and trail_atr_mult are set: expected at most one trailing stop"
            )
        for key in ("breakeven", "use_exit_signal", "check_entry_bar"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"{where}.{key} = {getattr(self, key)!r}: expected true or false")
        if isinstance(self.atr_period, bool) or not isinstance(self.atr_period, int) or self.atr_period < 1:
            raise ConfigError(f"{where}.atr_period = {self.atr_period!r}: expected an integer ≥ 1 (bars)")
        mh = self.max_hold_bars
        if mh is not None and (isinstance(mh, bool) or not isinstance(mh, int) or mh < 1):
            raise ConfigError(f"{where}.max_hold_bars = {mh!r}: expected an integer ≥ 1 (bars) or null")
        if self.breakeven and not self.tp_ladder:
            raise ConfigError(f"{where}.breakeven = true needs a take-profit ladder (breakeven moves after TP1)")

    @property
    def uses_atr(self) -> bool:
        """True if the stop or the trail is measured in ATRs."""
        return self.sl_atr_mult is not None or self.trail_atr_mult is not None

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str) -> ExitPlan:
        """Build a plan from a config mapping, e.g. ``entries_config.json → risk``.

        Parameters
        ----------
        d : dict
            Keys as the fields of :class:`ExitPlan`; ``tp`` is accepted for ``tp_ladder`` and the
            ladder may be a ``"pct:alloc,..."`` string or a list of ``[pct, alloc]``. Keys
            ``fee_bps`` and ``slippage_bps`` are ignored here (they belong to :class:`Costs`).
        where : str
            File and path of the mapping, put in front of every error message.

        Raises
        ------
        ConfigError
            Naming `where` and the key: unknown key (with "did you mean"), wrong type or range.
        """
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: expected a mapping of exit rules, found {type(d).__name__}")
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            if key in ("fee_bps", "slippage_bps"):
                continue
            name = _ALIASES.get(key, key)
            if name not in _KEYS:
                import difflib

                close = difflib.get_close_matches(key, list(_KEYS) + list(_ALIASES), n=1)
                hint = f' Did you mean "{close[0]}"?' if close else ""
                raise ConfigError(f'{where}: unknown key "{key}".{hint}')
            if name == "tp_ladder":
                if value is None:
                    value = ()
                elif isinstance(value, str):
                    value = parse_tp_ladder(value, where=f"{where}.{key}")
                elif isinstance(value, (list, tuple)):
                    try:
                        value = tuple((float(p), float(a)) for p, a in value)
                    except (TypeError, ValueError):
                        raise ConfigError(
                            f"{where}.{key} = {value!r}: expected '0.9:50,1.4:30' or [[0.9, 50], [1.4, 30]]"
                        ) from None
                else:
                    raise ConfigError(f"{where}.{key} = {value!r}: expected '0.9:50,1.4:30' or a list")
            if name in ("atr_period", "max_hold_bars") and isinstance(value, float) and value.is_integer():
                value = int(value)
            kwargs[name] = value
        plan = cls.__new__(cls)
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        defaults.update(kwargs)
        for key, value in defaults.items():
            object.__setattr__(plan, key, value)
        plan._validate(where)
        return plan

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping; ``ExitPlan.from_dict(plan.to_dict(), where=...) == plan``."""
        d = dataclasses.asdict(self)
        d["tp_ladder"] = [[p, a] for p, a in self.tp_ladder]
        return d

    def as_kernel_args(self, costs: Costs, initial_cash_quote: float) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Return ``(tp_level_frac, tp_alloc_frac, plan)`` float64 arrays for the kernels.

        ``tp_level_frac[k]`` is step k's distance as a fraction (0.009 for 0.9 %),
        ``tp_alloc_frac[k]`` its share of the entry quantity (0.5 for 50 %), ``plan`` the
        ``P_*`` layout of this module (NaN = rule off).
        """
        tp_level = np.array([p / 100.0 for p, _ in self.tp_ladder], dtype=np.float64)
        tp_alloc = np.array([a / 100.0 for _, a in self.tp_ladder], dtype=np.float64)
        nan = np.nan
        plan = np.empty(N_PLAN, dtype=np.float64)
        plan[P_SL_PCT] = nan if self.sl_pct is None else self.sl_pct / 100.0
        plan[P_SL_ATR] = nan if self.sl_atr_mult is None else self.sl_atr_mult
        plan[P_BREAKEVEN] = 1.0 if self.breakeven else 0.0
        plan[P_BE_OFFSET] = self.breakeven_offset_pct / 100.0
        plan[P_TRAIL_PCT] = nan if self.trail_pct is None else self.trail_pct / 100.0
        plan[P_TRAIL_ATR] = nan if self.trail_atr_mult is None else self.trail_atr_mult
        plan[P_USE_EXIT_SIGNAL] = 1.0 if self.use_exit_signal else 0.0
        plan[P_MAX_HOLD] = -1.0 if self.max_hold_bars is None else float(self.max_hold_bars)
        plan[P_CHECK_ENTRY_BAR] = 1.0 if self.check_entry_bar else 0.0
        plan[P_LOT] = 0.0 if self.lot_size_base is None else self.lot_size_base
        plan[P_FEE] = costs.fee_rate
        plan[P_SLIP] = costs.slippage_rate
        plan[P_CASH] = float(initial_cash_quote)
        return tp_level, tp_alloc, plan
