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

from pathlib import Path

from engine.errors import DataError
from engine.fileio import write_json, write_yaml
from engine.records import Fields, display_path, read_json_document, read_yaml_document
from engine.research.reports.curves import CURVE_POINTS, Curve, CurveTrade, curve_name
from engine.research.reports.rows import (CURVES_DIR, SUMMARY_COLUMNS, Candidate, CandidatesReport, FoldResult,
                                          FoldWindow, SummaryReport, SummaryRow)
from engine.research.reports.status import (STAGES, ClockReading, CycleStatus, Gap, Stage, StageError,
                                            describe_source)

SUMMARY_FILE = "summary.json"
CANDIDATES_FILE = "strategies.yml.next"
STATUS_FILE = "status.json"
CANDIDATES_HEADER = ("# Best candidate per pair × timeframe (chosen in-sample); promotion judges the "
                     "out-of-sample metrics.\n")

__all__ = [
    "CANDIDATES_FILE", "CURVES_DIR", "CURVE_POINTS", "STAGES", "STATUS_FILE", "SUMMARY_COLUMNS", "SUMMARY_FILE",
    "Candidate", "CandidatesReport", "ClockReading", "Curve", "CurveTrade", "CycleStatus", "FoldResult",
    "FoldWindow", "Gap", "Stage", "StageError", "SummaryReport", "SummaryRow", "curve_name", "describe_source",
    "read_candidates", "read_curve", "read_status", "read_summary", "write_candidates", "write_curve",
    "write_status", "write_summary",
]


def write_summary(path: Path, report: SummaryReport) -> Path:
    """Write summary.json atomically (strict JSON, NaN → null)."""
    return write_json(Path(path), report.to_json())


def read_summary(path: Path) -> SummaryReport:
    """Return the :class:`SummaryReport` of a summary.json.

    Raises
    ------
    DataError
        File missing, unreadable, not JSON, or not of the record's shape (naming file and key).
    """
    return SummaryReport.from_json(Fields(read_json_document(path), display_path(path)))


def write_candidates(path: Path, report: CandidatesReport) -> Path:
    """Write strategies.yml.next atomically (YAML with a comment header)."""
    return write_yaml(Path(path), report.to_json(), header=CANDIDATES_HEADER)


def read_candidates(path: Path) -> CandidatesReport:
    """Return the :class:`CandidatesReport` of a strategies.yml.next.

    Raises
    ------
    DataError
        ``<file>: file not found; run the research first (jobs/backtest.py research)``, not YAML,
        or not of the record's shape (naming file and key).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{display_path(path)}: file not found; run the research first (jobs/backtest.py research)")
    doc = read_yaml_document(path)
    return CandidatesReport.from_json(Fields(doc, display_path(path)))


def write_curve(path: Path, curve: Curve) -> Path:
    """Write a curve file atomically (compact JSON)."""
    return write_json(Path(path), curve.to_json(), indent=None)


def read_curve(path: Path) -> Curve:
    """Return the :class:`Curve` of a curve file; DataError as :func:`read_summary`."""
    return Curve.from_json(Fields(read_json_document(path), display_path(path)))


def write_status(path: Path, status: CycleStatus) -> Path:
    """Write status.json atomically."""
    return write_json(Path(path), status.to_json())


def read_status(path: Path) -> CycleStatus:
    """Return the :class:`CycleStatus` of a status.json; DataError as :func:`read_summary`."""
    return CycleStatus.from_json(Fields(read_json_document(path), display_path(path)))
