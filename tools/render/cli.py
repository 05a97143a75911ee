"""``python tools/render_report.py``: render the dashboard once from the runtime config.

Prints the path of dashboard.html and where the URLs are listed (``--json``: what was written, as
JSON). Exit status 0 on success, 2 on a bad config or flag (one line on stderr), 1 on an
unexpected failure (STYLE.md §10).
"""
from __future__ import annotations

import json
from pathlib import Path

# Only argparse-level modules here: the engine and the renderer (pandas, numba, jinja2) are imported
# after the arguments are parsed, so ``--help`` answers at once.
from engine.cli import ArgumentParser, add_common_flags, parse, run_cli, setup_logging

PROG = "render_report.py"


def build_parser() -> ArgumentParser:
    """Return the parser: ``--config``, ``-v``, ``-q``, ``--strategies PATH``, ``--json``."""
    p = ArgumentParser(prog=PROG, description="Render <public_dir>/dashboard.html from the stored reports "
                                              "(summary.json, status.json, curves, strategies.yml, candles).")
    add_common_flags(p)
    p.add_argument("--strategies", type=Path, default=None,
                   help="promoted strategies file (default runtime.strategies_file, engine/config/strategies.yml)")
    p.add_argument("--json", action="store_true",
                   help="print what was written as JSON (dashboard, version, files, problems, urls file)")
    return p


def _kept_url(urls_file: Path, label: str) -> str | None:
    """The URL bot.py wrote into dashboard_url.txt under `label` (``local``, ``ngrok``), if any: the
    port the server really serves (a fallback port when the configured one was taken) and the tunnel
    this CLI does not start."""
    try:
        for line in urls_file.read_text(encoding="utf-8").splitlines():
            if line.startswith(f"{label}: "):
                return line[len(label) + 2:].strip() or None
    except OSError:
        pass
    return None


def main(argv: list[str] | None = None) -> int:
    """Render once; print the page's path (or ``--json``); exit 0, 2 on bad input, 1 on a bug."""
    args = parse(build_parser(), argv)
    setup_logging(args.verbose, args.quiet)

    def body() -> int:
        from engine.config import REPO_ROOT, load_runtime
        from engine.publish.server import dashboard_url, load_or_create_token, token_path
        from tools.render.writer import render_dashboard, write_dashboard_urls

        runtime = load_runtime(args.config)
        rendered = render_dashboard(runtime, strategies_path=args.strategies, repo_root=REPO_ROOT)
        urls_dir = Path(runtime.urls_dir or REPO_ROOT)
        kept = urls_dir / "dashboard_url.txt"
        token = load_or_create_token(token_path(runtime))
        served = _kept_url(kept, "local")  # the port bot.py really serves (maybe a fallback port)
        local = served if served and served.startswith("http") and f"/{token}/" in served else \
            dashboard_url(runtime.html_host, runtime.html_port, token)
        urls_file = write_dashboard_urls(urls_dir, local, _kept_url(kept, "ngrok"))
        if args.json:
            print(json.dumps({**rendered.to_json(), "urls_file": str(urls_file)}, indent=1))
        else:
            print(rendered.html)
            print(f"URL (while bot.py serves): see {urls_file}")
        return 0

    return run_cli(PROG, body)
