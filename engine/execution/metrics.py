"""Execution metrics in a prometheus_client registry: events by kind and mode, guard blocks, paper PnL.

:class:`Metrics` owns its :class:`prometheus_client.CollectorRegistry` (never the process-global one,
so two desks in one notebook do not collide). The forward test writes it after each cycle as
``<metrics_dir>/execution.prom``, the text format node_exporter's textfile collector reads
(prometheus_client docs, "Node exporter textfile collector"); the counters are the cycle's.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from engine.execution.events import Event


class Metrics:
    """Counters and gauges of the execution flow.

    Series
    ------
    ``scalp_execution_events_total{kind, mode}``
        Intents, decisions, orders and fills seen (count).
    ``scalp_guard_blocks_total{guard}``
        Decisions blocked, by the first word of each reason (``ONE_POSITION_ONLY``, ``kill switch``…).
    ``scalp_open_positions{strategy}``
        Open paper positions (0 or 1 per strategy).
    ``scalp_paper_pnl_quote{strategy, kind}``
        Realised and unrealised paper PnL, quote currency.
    """

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = CollectorRegistry()
        self.events = Counter("scalp_execution_events", "Execution events by kind and mode", ["kind", "mode"],
                              registry=self.registry)
        self.blocks = Counter("scalp_guard_blocks", "Orders blocked by a guard", ["guard"], registry=self.registry)
        self.open_positions = Gauge("scalp_open_positions", "Open paper positions", ["strategy"], registry=self.registry)
        self.pnl = Gauge("scalp_paper_pnl_quote", "Paper PnL in quote currency", ["strategy", "kind"],
                         registry=self.registry)

    def observe(self, events: Iterable[Event]) -> None:
        """Count `events`; blocked decisions also count once per guard that blocked."""
        for e in events:
            self.events.labels(kind=e.kind, mode=e.mode).inc()
            if e.kind == "decision" and not e.data.get("allowed", True):
                for reason in e.data.get("reasons", ()):
                    if not str(reason).startswith("dry-run:"):
                        self.blocks.labels(guard=str(reason).split(":")[0]).inc()

    def set_position(self, strategy: str, *, open_positions: int, realised_quote: float, unrealised_quote: float) -> None:
        """Set the gauges of one strategy's paper book."""
        self.open_positions.labels(strategy=strategy).set(open_positions)
        self.pnl.labels(strategy=strategy, kind="realised").set(realised_quote)
        self.pnl.labels(strategy=strategy, kind="unrealised").set(unrealised_quote)

    def text(self) -> str:
        """The exposition text (Prometheus text format 0.0.4)."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode("utf-8")

    def write(self, path: Path | str) -> Path:
        """Write :meth:`text` atomically to `path` (a textfile-collector ``.prom`` file)."""
        from engine.fileio import atomic_write_text

        return atomic_write_text(Path(path), self.text(), lock=False)
