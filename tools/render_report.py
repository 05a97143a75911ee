"""Render the SCALP dashboard from the stored reports: ``python tools/render_report.py [--json]``.

A thin entry point kept for the README command; the renderer is the package :mod:`tools.render`
(``render`` and ``write_dashboard_urls`` are importable from here too, loaded on first use).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if __name__ == "__main__" and __package__ in (None, ""):  # `python tools/render_report.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.render.cli import main  # noqa: E402  (light: the engine loads after argument parsing)

__all__ = ["main", "render", "write_dashboard_urls"]


def __getattr__(name: str) -> Any:
    if name in ("render", "render_dashboard", "write_dashboard_urls"):
        from tools.render import writer

        return getattr(writer, name)
    raise AttributeError(f"module 'tools.render_report' has no attribute {name!r}")


if __name__ == "__main__":
    sys.exit(main())
