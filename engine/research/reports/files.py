"""Report files: each written by one function and read back by one (see the package docstring)."""
from __future__ import annotations

import functools
import json
from pathlib import Path

from engine.errors import DataError
from engine.fileio import atomic_write_text, write_json, write_yaml
from engine.records import Fields, display_path, read_json_document, read_yaml_document
from engine.research.reports.curves import Curve
from engine.research.reports.rows import CandidatesReport, SummaryReport
from engine.research.reports.status import CycleStatus

SUMMARY_FILE = "summary.json"
CANDIDATES_FILE = "strategies.yml.next"
STATUS_FILE = "status.json"
CANDIDATES_HEADER = ("# Best candidate per pair × timeframe (chosen in-sample); promotion judges the "
                     "out-of-sample metrics.\n")


def write_summary(path: Path, report: SummaryReport) -> Path:
    """Write summary.json atomically (strict JSON, NaN → null): the run's fields on the first line,
    then one row per line (compact JSON from the C encoder: an indented summary took 10× longer)."""
    doc = report.to_json()
    rows = doc.pop("rows")
    dump = functools.partial(json.dumps, allow_nan=False, ensure_ascii=False)
    head = dump(doc)
    body = ",\n".join(dump(r) for r in rows)
    text = f'{head[:-1]}, "rows": [\n{body}\n]}}\n' if rows else f'{head[:-1]}, "rows": []}}\n'
    return atomic_write_text(Path(path), text)


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
    """Write a curve file atomically (compact JSON; :meth:`Curve.to_json` is JSON-safe already)."""
    return atomic_write_text(Path(path), json.dumps(curve.to_json(), allow_nan=False, ensure_ascii=False) + "\n")


def read_curve(path: Path) -> Curve:
    """Return the :class:`Curve` of a curve file; DataError as :func:`read_summary`."""
    return Curve.from_json(Fields(read_json_document(path), display_path(path)))


def write_status(path: Path, status: CycleStatus) -> Path:
    """Write status.json atomically."""
    return write_json(Path(path), status.to_json())


def read_status(path: Path) -> CycleStatus:
    """Return the :class:`CycleStatus` of a status.json; DataError as :func:`read_summary`."""
    return CycleStatus.from_json(Fields(read_json_document(path), display_path(path)))
