"""The exit plan: TP ladder, stop-loss, breakeven, trailing stop, exit signal, max hold.

One :class:`ExitPlan` object is what a backtest scores and what the order-plan builder turns into
orders (DESIGN.md, "One exit model"). The rules that decide *how* a plan is filled bar by bar are
written down once, in :func:`engine.backtest.kernel_nb.simulate_nb`.

Units: take-profit and stop distances are percent of the entry fill price (``tp 0.9`` = 0.9 %
above entry, ``sl_pct -0.5`` = 0.5 % below entry); ATR distances are multiples of the ATR of the
signal bar; fees and slippage are basis points per side (:class:`Costs`).
"""
from __future__ import annotations

import dataclasses
import difflib
import logging
import math
from collections.abc import Mapping
from dataclasses import InitVar, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from engine.errors import ConfigError

logger = logging.getLogger(__name__)

RecordArray = npt.NDArray[np.void]

_ALIASES = {"tp": "tp_ladder"}
#: Keys of a risk block that belong to :class:`Costs`, not to the exit plan.
COST_KEYS = ("fee_bps", "slippage_bps")


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


def rule(kind: str, doc: str, *, lo: float | None = None, hi: float | None = None, nullable: bool = False,
         config_key: str | None = None, in_config: bool = True) -> dict[str, Any]:
    """Return the metadata that declares one exit rule or cost for the config schema.

    The dataclass field holds the default; this metadata holds the rest of the rule's declaration
    (kind, unit in words, range), so :data:`engine.config.schema.RISK` is derived from
    :class:`ExitPlan` and :class:`Costs` and there is one declaration of every rule and default.
    """
    return {"kind": kind, "doc": doc, "lo": lo, "hi": hi, "nullable": nullable, "config_key": config_key,
            "in_config": in_config}


#: The product's default take-profit ladder: 50 % at +0.9 %, 30 % at +1.4 %, 20 % at +2.1 %.
DEFAULT_TP_LADDER: tuple[tuple[float, float], ...] = ((0.9, 50.0), (1.4, 30.0), (2.1, 20.0))


@dataclass(frozen=True)
class Costs:
    """Trading costs per fill. The defaults are the one declaration of the product's costs.

    Parameters
    ----------
    fee_bps : float
        Fee per side on notional, basis points (10 = 0.1 %, Binance spot's base taker fee), ≥ 0.
    slippage_bps : float
        Adverse price move per fill, basis points (buys fill higher, sells lower), ≥ 0.

    Raises
    ------
    ConfigError
        If a value is negative or not finite.
    """

    fee_bps: float = field(default=10.0, metadata=rule(
        "float", "fee per side in basis points of notional", lo=0.0, hi=1000.0))
    slippage_bps: float = field(default=2.0, metadata=rule(
        "float", "slippage per fill in basis points of price", lo=0.0, hi=1000.0))

    def __post_init__(self) -> None:
        for name in ("fee_bps", "slippage_bps"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
                    or value < 0:
                raise ConfigError(f"costs.{name} = {value!r}: expected a finite number ≥ 0 (basis points)")
            object.__setattr__(self, name, float(value))

    @classmethod
    def free(cls) -> Costs:
        """Return zero fees and zero slippage (hand-checked examples, frictionless studies)."""
        return cls(fee_bps=0.0, slippage_bps=0.0)

    @property
    def fee_rate(self) -> float:
        """Fee per side as a fraction of notional (10 bps → 0.001)."""
        return self.fee_bps / 10_000.0

    @property
    def slippage_rate(self) -> float:
        """Slippage per fill as a fraction of price (2 bps → 0.0002)."""
        return self.slippage_bps / 10_000.0

    def to_dict(self) -> dict[str, float]:
        """Return ``{"fee_bps", "slippage_bps"}``."""
        return {"fee_bps": self.fee_bps, "slippage_bps": self.slippage_bps}


@dataclass(frozen=True)
class ExitLevels:
    """The prices an exit plan sets for one entry fill (what the kernel checks, what orders carry).

    Attributes
    ----------
    entry_price : float
        The entry fill price (quote currency), slippage included.
    take_profit : tuple of float
        Price of each TP step, ``entry × (1 + pct/100)``, lowest first.
    allocation_pct : tuple of float
        Share of the entry quantity of each step, percent (sums to 100).
    stop_loss : float or None
        Initial stop price: ``entry × (1 + sl_pct/100)`` or ``entry − sl_atr_mult × ATR``; None
        without a stop (or an ATR stop while the ATR is still warming up).
    breakeven_stop : float or None
        Where the stop moves after TP1 fills, ``entry × (1 + breakeven_offset_pct/100)``; None
        without breakeven.
    """

    entry_price: float
    take_profit: tuple[float, ...]
    allocation_pct: tuple[float, ...]
    stop_loss: float | None
    breakeven_stop: float | None


@dataclass(frozen=True)
class ExitPlan:
    """How a long position is closed. Fill rules: :func:`engine.backtest.kernel_nb.simulate_nb`.

    The field defaults are the product's default exit rules, declared once here: the config schema
    (:data:`engine.config.schema.RISK`), ``entries_config.json``, the single-CSV CLI and research
    all take them from this class. :meth:`only` builds a plan with every other rule off.

    Parameters
    ----------
    tp_ladder : tuple of (pct, alloc_pct)
        Take-profit steps: sell ``alloc_pct`` % of the entry quantity when the high reaches
        ``entry_fill × (1 + pct/100)``. Percentages > 0 and increasing; allocations sum to 100.
        Empty = no take-profit. Also accepts the text ``"0.9:50,1.4:30,2.1:20"``.
    sl_pct : float or None
        Stop-loss distance in percent of the entry fill, negative (-0.5 = 0.5 % below entry).
    sl_atr_mult : float or None
        Stop-loss distance in multiples of the ATR of the signal bar (> 0). At most one of
        `sl_pct` and `sl_atr_mult`. During the ATR warm-up there is no ATR stop.
    atr_period : int
        Wilder ATR period in bars for the ATR stop and ATR trail (default 14).
    breakeven : bool
        After TP1 fills, move the stop up to ``entry_fill × (1 + breakeven_offset_pct/100)``
        (from the next bar on). Needs a take-profit ladder.
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
    where : str
        Only for messages: the file and key path put in front of every error (not a field).

    Raises
    ------
    ConfigError
        On any value outside the rules above, naming `where` and the key.
    """

    tp_ladder: tuple[tuple[float, float], ...] = field(default=DEFAULT_TP_LADDER, metadata=rule(
        "str", 'take-profit ladder "pct:alloc,…" (pct above entry, allocations in % summing to 100); null = none',
        nullable=True, config_key="tp"))
    sl_pct: float | None = field(default=-0.5, metadata=rule(
        "float", "stop-loss in % from entry, negative (-0.5 = 0.5 % below)", lo=-99.0, hi=0.0, nullable=True))
    sl_atr_mult: float | None = field(default=None, metadata=rule(
        "float", "stop-loss as a multiple of ATR below entry (instead of sl_pct)", lo=0.0, nullable=True))
    atr_period: int = field(default=14, metadata=rule("int", "ATR length in bars", lo=1, hi=1000))
    breakeven: bool = field(default=True, metadata=rule("bool", "move the stop to entry (+ offset) after TP1 fills"))
    breakeven_offset_pct: float = field(default=0.05, metadata=rule(
        "float", "breakeven stop offset above entry in %", lo=-50.0, hi=50.0))
    trail_pct: float | None = field(default=None, metadata=rule(
        "float", "trailing stop distance below the highest high in %", lo=0.0, hi=99.0, nullable=True))
    trail_atr_mult: float | None = field(default=None, metadata=rule(
        "float", "trailing stop distance as a multiple of ATR", lo=0.0, nullable=True))
    use_exit_signal: bool = field(default=True, metadata=rule(
        "bool", "exit at the next open when the entry set's exit signal fires"))
    max_hold_bars: int | None = field(default=240, metadata=rule(
        "int", "close at the next open after this many bars in the trade", lo=1, nullable=True))
    check_entry_bar: bool = field(default=True, metadata=rule(
        "bool", "check stops and targets on the entry bar too (DESIGN.md)", in_config=False))
    lot_size_base: float | None = field(default=None, metadata=rule(
        "float", "quantities in whole multiples of this many base units", in_config=False, nullable=True))
    where: InitVar[str] = "exit_plan"

    def __post_init__(self, where: str) -> None:
        self._validate(where)

    @classmethod
    def only(cls, *, where: str = "exit_plan", **rules: Any) -> ExitPlan:
        """Return a plan with only the given rules: no take-profit, stop, breakeven or max hold
        unless passed (``ExitPlan.only(tp_ladder="1:100", sl_pct=-1.0)``)."""
        off: dict[str, Any] = {"tp_ladder": (), "sl_pct": None, "breakeven": False, "max_hold_bars": None}
        return cls(**{**off, **rules}, where=where)

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
    def from_dict(cls, d: Mapping[str, Any], *, where: str) -> ExitPlan:
        """Build a plan from a config mapping, e.g. ``entries_config.json → risk``.

        Parameters
        ----------
        d : mapping
            Keys as the fields of :class:`ExitPlan`; ``tp`` is accepted for ``tp_ladder`` and the
            ladder may be a ``"pct:alloc,..."`` string, a list of ``[pct, alloc]`` or null (none).
            Keys ``fee_bps`` and ``slippage_bps`` are ignored here (they belong to :class:`Costs`).
            A key that is absent takes the field's default.
        where : str
            File and path of the mapping, put in front of every error message.

        Raises
        ------
        ConfigError
            Naming `where` and the key: unknown key (with "did you mean"), wrong type or range.
        """
        if not isinstance(d, Mapping):
            raise ConfigError(f"{where}: expected a mapping of exit rules, found {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            if key in COST_KEYS:
                continue
            name = _ALIASES.get(key, key)
            if name not in names:
                close = difflib.get_close_matches(key, names + list(_ALIASES), n=1)
                hint = f' Did you mean "{close[0]}"?' if close else ""
                raise ConfigError(f'{where}: unknown key "{key}".{hint}')
            if name == "tp_ladder":
                if value is None:
                    value = ()
                elif not isinstance(value, (str, list, tuple)):
                    raise ConfigError(f"{where}.{key} = {value!r}: expected '0.9:50,1.4:30' or [[0.9, 50], [1.4, 30]]")
                elif isinstance(value, str):
                    value = parse_tp_ladder(value, where=f"{where}.{key}")
            if name in ("atr_period", "max_hold_bars") and isinstance(value, float) and value.is_integer():
                value = int(value)
            kwargs[name] = value
        return cls(**kwargs, where=where)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping; ``ExitPlan.from_dict(plan.to_dict(), where=...) == plan``."""
        d = dataclasses.asdict(self)
        d["tp_ladder"] = [[p, a] for p, a in self.tp_ladder]
        return d

    def levels(self, entry_price: float, *, atr: float | None = None) -> ExitLevels:
        """Return the take-profit and stop prices this plan sets for an entry filled at `entry_price`.

        The simulation kernel checks these prices bar by bar, and the order-plan builder turns
        them into orders: one formula for both (DESIGN.md, "One exit model").

        Parameters
        ----------
        entry_price : float
            Entry fill price in quote currency, slippage included (> 0).
        atr : float, optional
            ATR of the signal bar, for an ATR stop (``sl_atr_mult``); None or NaN during warm-up
            (then there is no stop, as in the kernel).

        Returns
        -------
        ExitLevels

        Raises
        ------
        ConfigError
            If `entry_price` is not a finite number > 0.
        """
        if isinstance(entry_price, bool) or not isinstance(entry_price, (int, float)) \
                or not math.isfinite(entry_price) or entry_price <= 0:
            raise ConfigError(f"entry_price = {entry_price!r}: expected a finite price > 0 (quote currency)")
        entry = float(entry_price)
        stop: float | None = None
        if self.sl_pct is not None:
            stop = entry * (1.0 + self.sl_pct / 100.0)
        elif self.sl_atr_mult is not None and atr is not None and math.isfinite(atr):
            stop = entry - self.sl_atr_mult * float(atr)
        return ExitLevels(
            entry_price=entry,
            take_profit=tuple(entry * (1.0 + pct / 100.0) for pct, _ in self.tp_ladder),
            allocation_pct=tuple(alloc for _, alloc in self.tp_ladder),
            stop_loss=stop,
            breakeven_stop=entry * (1.0 + self.breakeven_offset_pct / 100.0) if self.breakeven else None,
        )

