"""Where a cycle's candles come from: the exchange through ccxt, the bundled sample, or local files.

:func:`plan_data` reads ``runtime.data_source`` (see :mod:`engine.cycle`): ``auto`` asks the
exchange and falls back to the bundled sample (with its replay clock) when it cannot be reached;
``sample`` goes straight to the sample; ``exchange`` never falls back; ``local`` runs on the candle
files in ``data_dir``, with their newest close as the replay clock.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.clock import Clock
from engine.data.local import local_clock, local_pairs
from engine.data.sample import sample_clock, sample_set
from engine.errors import EngineError, ExchangeUnreachableError
from engine.exchange import RetryPolicy, ensure_markets, make_exchange
from engine.types import DataSource

if TYPE_CHECKING:
    from engine.config import RuntimeConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataPlan:
    """Where this cycle's candles come from: the exchange client (None offline), the source, the
    clock, the timeframes it researches and the bundled sample set in use (offline)."""

    exchange: Any
    source: DataSource
    clock: Clock
    timeframes: tuple[str, ...]
    sample: str | None = None


def plan_data(rt: RuntimeConfig) -> DataPlan:
    """Decide the cycle's data source and clock from ``runtime.data_source`` (module docstring).

    Raises
    ------
    ConfigError
        ``local`` with no candle file quoted in ``runtime.quote`` in ``data_dir`` (the message
        names what is there); an unknown exchange id (with a "did you mean").
    ExchangeUnreachableError
        ``exchange`` and the exchange cannot be reached.
    """
    if rt.data_source == "local":
        pairs = local_pairs(rt.data_dir, rt.quote)
        return DataPlan(None, DataSource.LOCAL, local_clock(rt.data_dir, pairs, rt.tf_list), tuple(rt.tf_list))
    exchange = open_exchange(rt)
    if exchange is not None:
        return DataPlan(exchange, DataSource.EXCHANGE, Clock.wall(), tuple(rt.tf_list))
    chosen = sample_set(rt.sample)
    tfs = chosen.timeframes_for(rt.tf_list)
    if tfs != tuple(rt.tf_list):
        logger.info("the %s sample ships %s candles: researching %s instead of %s", chosen.name, chosen.timeframe,
                    ", ".join(tfs), ", ".join(rt.tf_list))
    return DataPlan(None, DataSource.SAMPLE, sample_clock(chosen.name), tfs, chosen.name)


def open_exchange(rt: RuntimeConfig):
    """Return a ccxt exchange with markets loaded, or None to run on the bundled sample.

    Raises
    ------
    ConfigError
        If ccxt does not know ``runtime.exchange`` (a typo is never taken for "offline").
    ExchangeUnreachableError
        When ``data_source: exchange`` and the exchange cannot be reached.
    """
    if rt.data_source in ("sample", "local"):
        return None
    exchange = make_exchange(rt.exchange, timeout_ms=rt.exchange_timeout_ms)  # ConfigError on a typo
    try:
        # a short probe: offline, DNS fails at once and one retry is enough to be sure
        ensure_markets(exchange, retry=RetryPolicy(max_attempts=2, base_delay_s=1.0))
        return exchange
    except EngineError as e:  # unreachable, or refusing us: either way no candles from it this cycle
        if rt.data_source == "exchange":
            raise
        what = "unreachable" if isinstance(e, ExchangeUnreachableError) else "refused"
        logger.warning("%s %s (%s): running offline on the bundled sample with the replay clock",
                       rt.exchange, what, str(e).splitlines()[0][:200])
        return None
