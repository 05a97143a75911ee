"""The SCALP dashboard: stored reports → ``public_dir/dashboard.html`` (STYLE.md §13).

It reads the files the cycle stored through the engine's one reader of each
(:mod:`tools.render.readers`), builds a page model (:mod:`tools.render.page`) with formatted numbers
(:mod:`tools.render.format`) and chart data (:mod:`tools.render.charts`), and writes the page
(:mod:`tools.render.writer`); it never recomputes a metric. :mod:`tools.render.cli` is
``python tools/render_report.py``.

Public names, loaded on first use (``import tools.render`` stays cheap):
``render``, ``render_dashboard``, ``write_dashboard_urls``, ``main``.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {"render": "tools.render.writer", "render_dashboard": "tools.render.writer",
            "write_dashboard_urls": "tools.render.writer", "Rendered": "tools.render.writer",
            "main": "tools.render.cli"}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from tools.render.cli import main
    from tools.render.writer import Rendered, render, render_dashboard, write_dashboard_urls


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tools.render' has no attribute {name!r}")
