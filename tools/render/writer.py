"""Write the dashboard: read → page model → charts → HTML, atomically, under one lock.

Outputs, all in ``runtime.public_dir`` (the only folder the HTTP server serves):

- ``dashboard.html``: the page (CSS and JS inline, no chart library: the cards draw their equity as
  inline SVG), < 300 KB on bundled-sample-sized inputs;
- ``s-<PAIR>_<TF>_<ENTRYSET>.html``: a page per promoted strategy (:mod:`tools.render.strategy_page`);
- ``plotly-finance-<version>.min.js``: the official plotly.js finance partial bundle, vendored in
  ``tools/vendor/plotly/`` (scatter and candlestick are what the strategy pages use), copied once and
  loaded by a strategy page after its first paint; its versioned name lets the browser cache it for a year;
- ``charts/<PAIR>_<TF>_<ENTRYSET>.<hash>.json``: chart data per promoted strategy; content-hashed
  names, so they are cached too;
- ``version.json``: ``{"version", "generated_at_ms", "sections": {id: hash}}``, polled by the open
  page, which swaps in only the sections whose hash changed (:mod:`tools.render.sections`);
- ``cycle_digest.json``: this cycle's and the previous cycle's digest (:mod:`tools.render.changes`).

``health.json`` beside them is the cycle's (:mod:`engine.publish.health`), polled by the page too.

Every write goes through :func:`engine.fileio.atomic_write_bytes` while the render holds the lock
of the public folder (:func:`engine.fileio.lock_for`, ``.<public>.lock`` beside it).
"""
from __future__ import annotations

import hashlib
import html
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from engine import fileio
from engine.clock import format_ms
from tools.render.changes import changes_since_previous
from tools.render.charts import build_chart_payload, sparkline
from tools.render.format import fmt_ms, fmt_num
from tools.render.page import build_page
from tools.render.readers import load_inputs, read_chart_inputs
from tools.render.sections import hash_sections
from tools.render.strategy_page import strategy_page

logger = logging.getLogger(__name__)

#: Default repository root (this file lives in <repo>/tools/render/).
REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIR = REPO_ROOT / "tools" / "templates"
#: The vendored plotly.js partial bundle (tools/vendor/plotly/README.md).
PLOTLY_DIR = REPO_ROOT / "tools" / "vendor" / "plotly"
#: Seconds between two polls of version.json by the open page.
POLL_INTERVAL_S = 15
#: Chart files of earlier renders are kept this long for pages that have not reloaded yet.
STALE_CHART_S = 600

_GENERATED_PLACEHOLDER = "\x00GENERATED\x00"
_VERSION_PLACEHOLDER = "\x00VERSION\x00"


class RuntimeLike(Protocol):
    """What the renderer needs of a runtime config (:class:`engine.config.RuntimeConfig`):
    ``reports_dir``, ``logs_dir``, ``public_dir``; ``data_dir``, ``strategies_file``,
    ``urls_dir`` and ``quote`` are used when present."""

    reports_dir: Path
    logs_dir: Path
    public_dir: Path


@dataclass(frozen=True)
class Rendered:
    """What one render wrote.

    Attributes
    ----------
    html : Path
        ``public_dir/dashboard.html``.
    version : str
        12 hex digits of the page's hash (identical inputs → same version → no reload).
    files : tuple of Path
        Every file in the public folder the pages use (dashboard, version.json, plotly.js, charts,
        strategy pages).
    problems : tuple of str
        Unreadable inputs, as listed on the page.
    n_rows, n_cards : int
        Summary rows and promoted-strategy cards shown.
    """

    html: Path
    version: str
    files: tuple[Path, ...]
    problems: tuple[str, ...]
    n_rows: int
    n_cards: int

    def to_json(self) -> dict[str, Any]:
        """Return the figures as printed by ``render_report.py --json``."""
        return {"dashboard": str(self.html), "version": self.version, "files": [str(p) for p in self.files],
                "problems": list(self.problems), "n_rows": self.n_rows, "n_cards": self.n_cards}


def _write(path: Path, data: bytes) -> None:
    fileio.atomic_write_bytes(path, data, lock=False, mode=0o644)  # the render lock is held; files are served


def plotly_version() -> str:
    """Return the version of the vendored plotly.js finance bundle (its package.json)."""
    return json.loads((PLOTLY_DIR / "package.json").read_text(encoding="utf-8"))["version"]


def plotly_filename() -> str:
    """Return the versioned file name of plotly.js in the public folder (``plotly-finance-4.1.0.min.js``)."""
    return f"plotly-finance-{plotly_version()}.min.js"


def ensure_plotly_js(public_dir: Path) -> Path:
    """Copy the vendored plotly.js bundle into `public_dir` once; remove other versions."""
    name = plotly_filename()
    path = Path(public_dir) / name
    source = PLOTLY_DIR / "plotly-finance.min.js"
    if not path.is_file() or path.stat().st_size != source.stat().st_size:
        _write(path, source.read_bytes())
        logger.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    for old in Path(public_dir).glob("plotly-*.js"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return path


def write_dashboard_urls(urls_dir: str | os.PathLike[str], local_url: str | None,
                         ngrok_url: str | None = None) -> Path:
    """Write ``dashboard_url.txt`` listing the dashboard URLs; return its path.

    Parameters
    ----------
    urls_dir : path-like
        Folder of the file: the repo root by default (``runtime.urls_dir``; gitignored there).
    local_url : str or None
        Local URL with the token path (``DashboardServer.url``).
    ngrok_url : str or None
        Public tunnel URL with the token path, when a tunnel is up.

    The file holds one ``label: url`` line each (``local: not serving yet`` without any)::

        local: http://127.0.0.1:8888/<token>/dashboard.html
        ngrok: https://….ngrok-free.app/<token>/dashboard.html
    """
    lines = [f"{label}: {url}" for label, url in (("local", local_url), ("ngrok", ngrok_url)) if url]
    path = Path(urls_dir) / "dashboard_url.txt"
    # atomic, without a lock file: it would sit untracked in the repo root; the last writer wins
    fileio.atomic_write_text(path, "\n".join(lines or ["local: not serving yet"]) + "\n", lock=False)
    return path


def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                             autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["num"] = fmt_num
    env.filters["ms"] = fmt_ms
    return env


def render_dashboard(runtime: RuntimeLike, *, strategies_path: str | os.PathLike[str] | None = None,
                     repo_root: str | os.PathLike[str] | None = None,
                     urls: Mapping[str, str | None] | None = None) -> Rendered:
    """Render the dashboard into ``runtime.public_dir``; return what was written.

    Parameters
    ----------
    runtime : RuntimeConfig or an object with the same folders (:class:`RuntimeLike`)
    strategies_path : path-like, optional
        Promoted strategies. Default: ``runtime.strategies_file`` when the runtime has it, else
        engine/config/strategies.yml under `repo_root`.
    repo_root : path-like, optional
        Repository root (default: the one holding this file).
    urls : mapping, optional
        ``{"local": url, "ngrok": url_or_None}``; when given, ``dashboard_url.txt`` is rewritten
        in ``runtime.urls_dir`` (when the runtime has it) or `repo_root`.

    Notes
    -----
    Input files are never a reason to raise: a missing one hides its section, an unreadable one
    (or one that does not match its record) is listed under "Report problems" with the reader's
    message and logged as a WARNING. ``version.json`` is written last, so a polling page only
    updates from a complete render.

    Raises
    ------
    OSError
        If the public folder cannot be written.
    """
    t0 = time.perf_counter()
    repo_root = Path(repo_root) if repo_root is not None else REPO_ROOT
    if strategies_path is None:
        strategies_path = (getattr(runtime, "strategies_file", None)
                           or repo_root / "engine" / "config" / "strategies.yml")
    public = Path(runtime.public_dir)
    public.mkdir(parents=True, exist_ok=True)
    with fileio.lock_for(public):
        now_ms = int(time.time() * 1000)
        inputs = load_inputs(Path(runtime.reports_dir), Path(runtime.logs_dir), Path(strategies_path), public)
        page = build_page(inputs, now_ms=now_ms)
        clock = inputs.status.clock if inputs.status else None
        ref_ms = now_ms if page["header"]["clock_is_wall"] or clock is None else clock.now_ms
        page["changes"] = changes_since_previous(inputs, public, ref_ms)
        data_dir = getattr(runtime, "data_dir", None)
        charts_dir = public / "charts"
        written: list[Path] = []
        plotly_js = ensure_plotly_js(public)
        env = _environment()
        quote = str(getattr(runtime, "quote", None) or "quote")
        pages: dict[str, str] = {}
        for card in page["cards"]:
            strategy = card.pop("strategy")
            curve, candles, notes = read_chart_inputs(strategy, Path(runtime.reports_dir),
                                                      Path(data_dir) if data_dir else None, inputs)
            card["spark"] = sparkline(curve)
            card["chart_notes"] = [n for n in notes if "curve" in n]  # candles matter on the strategy page only
            card["page"] = f"s-{card['id']}.html"
            payload = build_chart_payload(curve, candles)
            chart_file = None
            if payload is not None:
                blob = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("utf-8")
                path = charts_dir / f"{card['id']}.{hashlib.sha256(blob).hexdigest()[:10]}.json"
                if not path.is_file():
                    _write(path, blob)
                written.append(path)
                chart_file = f"charts/{path.name}"
            model = strategy_page(card, curve=curve, payload=payload, chart_file=chart_file, notes=notes,
                                  promotion=inputs.promotion, paper_model=page["paper"])
            pages[card["page"]] = env.get_template("strategy.html.j2").render(
                s=model, page=page, plotly_js=plotly_js.name, poll_s=POLL_INTERVAL_S, generated=_GENERATED_PLACEHOLDER,
                version=_VERSION_PLACEHOLDER, now_ms=now_ms, page_quote=quote)
        for p in inputs.problems:
            logger.warning("dashboard input: %s", p)
        pages["dashboard.html"] = env.get_template("dashboard.html.j2").render(
            page=page, poll_s=POLL_INTERVAL_S, generated=_GENERATED_PLACEHOLDER,
            version=_VERSION_PLACEHOLDER, now_ms=now_ms, page_quote=quote)
        sections: dict[str, str] = {}
        for name, text in list(pages.items()):
            pages[name], hashes = hash_sections(text)
            if name == "dashboard.html":
                sections = hashes
        # the version ignores the render time: identical inputs → same version → nothing to update
        version = hashlib.sha256("".join(pages[n] for n in sorted(pages)).encode("utf-8")).hexdigest()[:12]
        out = public / "dashboard.html"
        for name, text in pages.items():
            text = text.replace(_VERSION_PLACEHOLDER, version).replace(
                _GENERATED_PLACEHOLDER, html.escape(format_ms(now_ms)))
            _write(public / name, text.encode("utf-8"))
            written.append(public / name)
        for old in public.glob("s-*.html"):  # strategies no longer promoted: their pages go
            if old.name not in pages:
                old.unlink(missing_ok=True)
        _write(public / "version.json", json.dumps({"version": version, "generated_at_ms": now_ms,
                                                    "sections": sections}).encode("utf-8"))
        if charts_dir.is_dir():
            names = {p.name for p in written}
            for f in charts_dir.glob("*.json"):
                if f.name not in names and time.time() - f.stat().st_mtime > STALE_CHART_S:
                    f.unlink(missing_ok=True)
    if urls is not None:
        write_dashboard_urls(getattr(runtime, "urls_dir", None) or repo_root, urls.get("local"), urls.get("ngrok"))
    n_rows = len(page["table"]["rows"]) if page["table"] else 0
    logger.info("rendered %s (%.0f KB, %d summary rows, %d promoted, %d problems) in %.2f s",
                out, out.stat().st_size / 1024, n_rows, len(page["cards"]), len(inputs.problems),
                time.perf_counter() - t0)
    files = (out, public / "version.json", plotly_js, public / "cycle_digest.json", *(p for p in written if p != out))
    return Rendered(out, version, files, tuple(inputs.problems), n_rows, len(page["cards"]))


def render(runtime: RuntimeLike, *, strategies_path: str | os.PathLike[str] | None = None,
           repo_root: str | os.PathLike[str] | None = None,
           urls: Mapping[str, str | None] | None = None) -> Path:
    """Render the dashboard (:func:`render_dashboard`) and return the path of dashboard.html.

    This is the :class:`engine.cycle.Renderer` bot.py and the maintainer pass to each cycle.
    """
    return render_dashboard(runtime, strategies_path=strategies_path, repo_root=repo_root, urls=urls).html
