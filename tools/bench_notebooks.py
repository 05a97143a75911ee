"""Execute each notebook headless on the bundled sample and print its wall time; export HTML.

Usage::

    python tools/bench_notebooks.py                       # every notebook in notebooks/, one after the other
    python tools/bench_notebooks.py notebooks/02_backtest_search.ipynb -p pair ETH/USDT -p timeframe 15m
    python tools/bench_notebooks.py --html out/           # also export each executed notebook to out/<name>.html
    python tools/bench_notebooks.py --json

Each notebook runs through papermill (a fresh kernel, the ``parameters`` cell overridden by ``-p``) in a
temporary data folder (``SCALP_NOTEBOOK_DIR``), so nothing is written into the repo. Printed per
notebook: seconds (kernel start included), code cells, plotly figures, and the size of the HTML export;
then the machine (cores, load average before and after). Exit 1 when a notebook fails (its error is
printed), 2 on bad input.

The functions are the tests' too (``tests/test_notebooks.py``): :func:`execute_notebook`,
:func:`export_html` and :func:`plotly_figures`.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from collections.abc import Iterator, Mapping
from typing import Any

if __name__ == "__main__" and __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
_DIV_ID = re.compile(r'<div id="([0-9a-f-]{36})" class="plotly-graph-div"')


def notebook_paths(folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The notebooks of `folder`, sorted (checkpoints left out)."""
    return sorted(p for p in folder.glob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


@contextlib.contextmanager
def _data_root(folder: Path) -> Iterator[None]:
    old = os.environ.get("SCALP_NOTEBOOK_DIR")
    os.environ["SCALP_NOTEBOOK_DIR"] = str(folder)  # the kernel inherits it (engine.notebook.setup reads it)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SCALP_NOTEBOOK_DIR", None)
        else:
            os.environ["SCALP_NOTEBOOK_DIR"] = old


def execute_notebook(path: Path, *, data_root: Path, output: Path | None = None,
                     parameters: Mapping[str, Any] | None = None, timeout_s: float = 600.0) -> tuple[Any, float]:
    """Run `path` top to bottom through papermill in a fresh kernel; return (executed notebook, seconds).

    The kernel's working directory is the notebook's folder, its data folder `data_root`
    (``SCALP_NOTEBOOK_DIR``); `parameters` override the ``parameters`` cell (papermill injects them
    after it). `output` keeps the executed notebook (default: a temporary file, deleted).

    Raises
    ------
    papermill.PapermillExecutionError
        A cell failed (the message names the cell and the exception).
    """
    import papermill

    with tempfile.TemporaryDirectory(prefix="scalp-nb-out-") as tmp, _data_root(data_root):
        out = output or Path(tmp) / path.name
        t0 = time.perf_counter()
        nb = papermill.execute_notebook(str(path), str(out), parameters=dict(parameters or {}), cwd=str(path.parent),
                                        kernel_name="python3", progress_bar=False, log_output=False,
                                        execution_timeout=int(timeout_s))
        return nb, time.perf_counter() - t0


def export_html(nb: Any) -> str:
    """Return the HTML export of an executed notebook (nbconvert's ``lab`` template, scripts kept)."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nbformat.from_dict(nb))
    return body


def plotly_figures(nb: Any) -> list[dict[str, Any]]:
    """Return every plotly figure among a notebook's outputs, in order.

    Each entry: ``cell`` (index), ``json`` (True when stored as plotly JSON, which JupyterLab, Notebook 7
    and VS Code draw), ``div_id`` (the figure's ``<div>`` in the output's HTML, which classic Notebook,
    Colab and nbconvert's HTML export draw; None when there is no HTML form) and ``traces`` (trace names).
    """
    out = []
    for i, cell in enumerate(nb["cells"]):
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            html = data.get("text/html", "")
            html = "".join(html) if isinstance(html, list) else html
            ids = _DIV_ID.findall(html) if "Plotly.newPlot" in html else []
            if PLOTLY_MIME not in data and not ids:
                continue
            fig = data.get(PLOTLY_MIME) or {}
            out.append({"cell": i, "json": PLOTLY_MIME in data, "div_id": ids[0] if ids else None,
                        "traces": [t.get("name") for t in fig.get("data", [])]})
    return out


def _load() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def _parameter(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise ValueError(f"-p {text!r}: expected NAME=VALUE")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench_notebooks", description=__doc__.split("\n\n")[0])
    p.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: every one in notebooks/)")
    p.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                   help="override a parameter of every notebook run (VALUE read as JSON when it is JSON)")
    p.add_argument("--html", type=Path, default=None, metavar="DIR", help="also write <DIR>/<name>.html")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        params = dict(_parameter(t) for t in args.parameter)
    except ValueError as e:
        print(f"bench_notebooks: {e}", file=sys.stderr)
        return 2
    paths = args.notebooks or notebook_paths()
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"bench_notebooks: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    load_before, rows, failed = _load(), [], 0
    for path in paths:
        with tempfile.TemporaryDirectory(prefix="scalp-nb-data-") as data:
            try:
                nb, seconds = execute_notebook(path, data_root=Path(data), parameters=params)
            except Exception as e:  # noqa: BLE001 - report the failing notebook and go on with the others
                failed += 1
                rows.append({"notebook": path.name, "error": str(e).strip().splitlines()[-1][:300]})
                print(f"{path.name}: FAILED: {rows[-1]['error']}", file=sys.stderr)
                continue
        html = export_html(nb)
        if args.html:
            args.html.mkdir(parents=True, exist_ok=True)
            (args.html / f"{path.stem}.html").write_text(html, encoding="utf-8")
        rows.append({"notebook": path.name, "seconds": round(seconds, 2),
                     "code_cells": sum(c["cell_type"] == "code" for c in nb["cells"]),
                     "figures": len(plotly_figures(nb)), "html_kb": round(len(html.encode()) / 1024)})
        if not args.json:
            r = rows[-1]
            print(f"{r['notebook']:<28} {r['seconds']:>7.2f} s  {r['code_cells']:>3} code cells  "
                  f"{r['figures']:>2} figures  HTML {r['html_kb']} KB", flush=True)
    machine = {"cores": os.cpu_count(), "load_before": [round(x, 2) for x in load_before],
               "load_after": [round(x, 2) for x in _load()], "parameters": params}
    if args.json:
        print(json.dumps({"notebooks": rows, "machine": machine}, indent=1))
    else:
        print(f"machine: {machine['cores']} cores, load average {machine['load_before']} before, "
              f"{machine['load_after']} after")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
