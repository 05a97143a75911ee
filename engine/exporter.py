"""The maintainer's Prometheus textfile: ``<metrics_dir>/scalp.prom`` after every cycle.

Written with ``prometheus_client.write_to_textfile`` (atomic: a temporary file renamed into place),
so a node_exporter textfile collector (``--collector.textfile.directory``) pointed at
``runtime.metrics_dir`` picks it up beside the dry-run simulator's ``e2e_sim.prom``. Every series is
a gauge of the last cycle:

``scalp_cycle_duration_seconds``, ``scalp_cycle_finished_timestamp_seconds``,
``scalp_summary_rows``, ``scalp_candidates``, ``scalp_promoted`` (this cycle),
``scalp_active_strategies``, ``scalp_pair_states{state}`` (MIS/OLD/DAT/OK counts),
``scalp_cycle_errors{stage}``, ``scalp_paper_pnl_quote{strategy, kind}`` (realised, unrealised;
quote currency), ``scalp_paper_open_positions{strategy}`` and ``scalp_data_source_info{source, clock}``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

METRICS_FILE = "scalp.prom"


def write_cycle_metrics(path: Path | str, *, duration_s: float, finished_at_ms: int, n_rows: int, n_candidates: int,
                        n_promoted: int, n_active: int, states: Iterable[str], errors: Iterable[str],
                        paper: Mapping[str, Any] | None, source: str, clock: str) -> Path:
    """Write the gauges of one cycle to `path` (the folder is created); return the path.

    Parameters
    ----------
    states : iterable of str
        The state code of each pair × timeframe (``OK``, ``DAT``, ``OLD``, ``MIS``).
    errors : iterable of str
        The stage of each error of the cycle.
    paper : mapping or None
        The forward test's report (:func:`engine.execution.forward.forward_test`), None when off.
    source, clock : str
        Where the candles came from and the clock's kind (``replay`` or ``wall``).
    """
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    reg = CollectorRegistry()

    def gauge(name: str, doc: str, value: float | None = None, labels: tuple[str, ...] = ()) -> Gauge:
        g = Gauge(name, doc, list(labels), registry=reg)
        if value is not None:
            g.set(value)
        return g

    gauge("scalp_cycle_duration_seconds", "Duration of the last maintainer cycle", duration_s)
    gauge("scalp_cycle_finished_timestamp_seconds", "When the last cycle finished (wall clock)", finished_at_ms / 1000)
    gauge("scalp_summary_rows", "Rows of summary.json (pair x timeframe x entry set)", n_rows)
    gauge("scalp_candidates", "Candidates research passed to promotion", n_candidates)
    gauge("scalp_promoted", "Strategies promoted by the last cycle", n_promoted)
    gauge("scalp_active_strategies", "Unexpired promoted strategies", n_active)
    st = gauge("scalp_pair_states", "Pair x timeframe states of the last cycle", labels=("state",))
    counts = {code: 0 for code in ("OK", "DAT", "OLD", "MIS")}
    for code in states:
        counts[code] = counts.get(code, 0) + 1
    for code, n in counts.items():
        st.labels(state=code).set(n)
    err = gauge("scalp_cycle_errors", "Errors of the last cycle by stage", labels=("stage",))
    by_stage: dict[str, int] = {}
    for stage in errors:
        by_stage[stage] = by_stage.get(stage, 0) + 1
    for stage, n in by_stage.items():
        err.labels(stage=stage).set(n)
    pnl = gauge("scalp_paper_pnl_quote", "Paper PnL of each promoted strategy, quote currency",
                labels=("strategy", "kind"))
    pos = gauge("scalp_paper_open_positions", "Open paper positions of each promoted strategy", labels=("strategy",))
    for s in (paper or {}).get("strategies", []):
        pnl.labels(strategy=s["name"], kind="realised").set(s["realised_pnl_quote"])
        pnl.labels(strategy=s["name"], kind="unrealised").set(s["unrealised_pnl_quote"])
        pos.labels(strategy=s["name"]).set(0 if s["open_position"] is None else 1)
    gauge("scalp_data_source_info", "Where the candles came from and which clock ran",
          labels=("source", "clock")).labels(source=source, clock=clock).set(1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), reg)
    return path
