"""The stage outputs as typed records: the one producer and the one reader of every report file.

Files, in ``reports_dir`` (DESIGN.md, "Reports"); each is written by one function here and read
back by one function here, by the research stage, the cycle, promotion and the dashboard alike:

================================  =============================  ==================================
file                              record                         written by
================================  =============================  ==================================
``summary.json``                  :class:`SummaryReport`         the research stage
                                  (rows: :class:`SummaryRow`)
``strategies.yml.next``           :class:`CandidatesReport`      the research stage
                                  (:class:`Candidate`)
``curves/<PAIR>_<TF>_<SET>.json`` :class:`Curve`                 the research stage
``status.json``                   :class:`CycleStatus`           the cycle
================================  =============================  ==================================

Every record is frozen and has ``to_json()`` (JSON-ready: NaN/±inf become null, DESIGN.md
"Metrics") and ``from_json()``. Readers never repair: a file that does not match its record raises
:class:`~engine.errors.DataError` naming the file, the key path, the value found and what was
expected (``reports/summary.json → rows[3].bars = 'x': expected an integer ≥ 0``).

Shapes (keys in order; ``…`` = the fields of the record named)::

    summary.json   {"generated_at_ms", "generated_at" (ISO), "config_id", "clock": {"kind", "now_ms", "label"},
                    "objective", "mode", "workers", "research_s", "rows": [SummaryRow …], "errors": [StageError …]}
    SummaryRow     SUMMARY_COLUMNS: pair symbol timeframe entry_set signal params exit_plan costs in_sample
                    out_of_sample walk_forward_efficiency folds n_configs_tried deflated_sharpe param_stability
                    search ambiguity period{first_ms,last_ms} bars gap_policy data_source exchange config_id
    strategies.yml.next  {generated_at (ISO), config_id, objective, candidates: [Candidate …]}
    Candidate      pair symbol timeframe entry_set signal params exit_plan costs metrics (out-of-sample)
                    in_sample period bars data_source exchange config_id curve n_configs_tried deflated_sharpe
                    ambiguity
    curves/*.json  {"timestamps_ms": [int], "equity_quote": [float], "drawdown_pct": [float ≥ 0],
                    "trades": [{"entry_ms", "entry_price", "exit_ms", "exit_price", "reason", "pnl_quote"}]}
    status.json    {"cycle": {"started_at_ms", "finished_at_ms", "started_at", "duration_s", "next_run_ms"},
                    "clock", "data_source": "exchange"|"sample"|"stored", "exchanges": [ccxt id], "risk_mode",
                    "timeframes", "pairs", "states": [PairState], "errors": [StageError], "gaps": [Gap],
                    "n_rows", "n_candidates", "n_promoted", "n_active"}
    StageError     {"pair", "timeframe", "stage": watchlist|backfill|research|promotion, "message"}

Per-stage problems (a pair whose backfill or research failed) are :class:`StageError` records,
listed in summary.json and status.json. Where candles came from is a
:class:`~engine.types.DataSource`, put into words for people by :func:`describe_source`.
"""
from __future__ import annotations

from engine.research.reports.curves import CURVE_POINTS, Curve, CurveTrade, curve_name
from engine.research.reports.files import (CANDIDATES_FILE, CANDIDATES_HEADER, STATUS_FILE, SUMMARY_FILE,
                                           read_candidates, read_curve, read_status, read_summary, write_candidates,
                                           write_curve, write_status, write_summary)
from engine.research.reports.rows import (CURVES_DIR, SUMMARY_COLUMNS, Candidate, CandidatesReport, FoldResult,
                                          FoldWindow, Judgement, SummaryReport, SummaryRow)
from engine.research.reports.status import (STAGES, ClockReading, CycleStatus, Gap, Stage, StageError,
                                            describe_source)

__all__ = [
    "CANDIDATES_FILE", "CURVES_DIR", "CURVE_POINTS", "STAGES", "STATUS_FILE", "SUMMARY_COLUMNS", "SUMMARY_FILE",
    "Candidate", "CandidatesReport", "ClockReading", "Curve", "CurveTrade", "CycleStatus", "FoldResult",
    "FoldWindow", "Gap", "Judgement", "Stage", "StageError", "SummaryReport", "SummaryRow", "curve_name", "describe_source",
    "read_candidates", "read_curve", "read_status", "read_summary", "write_candidates", "write_curve",
    "write_status", "write_summary",
]
