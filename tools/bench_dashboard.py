"""Benchmark the dashboard's weight: dashboard.html size and the transfer size of a first load.

Usage::

    python tools/bench_dashboard.py            # bundled-sample-sized inputs in a temp folder
    python tools/bench_dashboard.py --runtime  # the dashboard already rendered by bot.py / the maintainer

It renders (sample mode), serves the public folder with engine.publish.server on a free loopback port,
and fetches what a browser fetches, with ``Accept-Encoding: gzip``: the page, plotly.js, version.json
and every chart file (the page loads a chart file when its card scrolls into view; counting all
of them gives the upper bound). Bytes on the wire include the response headers. A repeat visit
re-fetches only the page and version.json: plotly.js and the content-hashed chart files are
cached for a year.
"""
from __future__ import annotations

import gzip
import http.client
import json
import re
import sys
import tempfile
import time
from pathlib import Path

if __name__ == "__main__" and __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.cli import ArgumentParser, parse, run_cli, setup_logging  # noqa: E402


def _fetch(server, path: str) -> tuple[int, int, int]:
    """GET `path` under the token; return (status, wire bytes incl. headers, decoded body bytes)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    conn.request("GET", f"/{server.url.split('/')[3]}/{path}", headers={"Accept-Encoding": "gzip"})
    resp = conn.getresponse()
    body = resp.read()
    header_bytes = sum(len(k) + len(v) + 4 for k, v in resp.getheaders()) + 17
    decoded = gzip.decompress(body) if resp.getheader("Content-Encoding") == "gzip" else body
    conn.close()
    return resp.status, header_bytes + len(body), len(decoded)


def measure(public_dir: Path) -> dict:
    """Serve `public_dir` and measure sizes; returns the figures as a dict (bytes)."""
    from engine.publish.server import load_or_create_token, serve_public

    html = (public_dir / "dashboard.html").read_text(encoding="utf-8")
    plotly_name = re.search(r'<script src="(plotly-[^"]+\.js)"', html).group(1)
    charts = sorted(set(re.findall(r'data-src="(charts/[^"]+\.json)"', html)))
    with tempfile.TemporaryDirectory() as tmp:
        token = load_or_create_token(Path(tmp) / "token")
        server = serve_public(public_dir, "127.0.0.1", 0, token=token)
        try:
            out = {"html_bytes": len(html.encode("utf-8")),
                   "html_gzip_bytes": len(gzip.compress(html.encode("utf-8"), 6)), "n_charts": len(charts)}
            st, out["html_wire"], _ = _fetch(server, "dashboard.html")
            st2, out["plotly_wire"], out["plotly_bytes"] = _fetch(server, plotly_name)
            st3, out["version_wire"], _ = _fetch(server, "version.json")
            out["charts_wire"] = 0
            statuses = [st, st2, st3]
            for c in charts:
                s, wire, _ = _fetch(server, c)
                statuses.append(s)
                out["charts_wire"] += wire
            if set(statuses) != {200}:
                raise RuntimeError(f"unexpected statuses {statuses}")
        finally:
            server.shutdown()
    out["first_load_wire"] = out["html_wire"] + out["plotly_wire"] + out["version_wire"] + out["charts_wire"]
    out["first_screen_wire"] = out["html_wire"] + out["plotly_wire"] + out["version_wire"]
    out["repeat_visit_wire"] = out["html_wire"] + out["version_wire"]
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the figures; exit 0, or 1 when dashboard.html is 300 KB or more."""
    parser = ArgumentParser(prog="bench_dashboard.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtime", action="store_true",
                        help="measure runtime.public_dir (from engine/config/config.yaml) instead of sample inputs")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parse(parser, argv)
    setup_logging(quiet=True)
    return run_cli("bench_dashboard.py", lambda: _run(args))


def _run(args) -> int:
    render_s = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.runtime:
            from engine.config import load_runtime

            public = Path(load_runtime().public_dir)
            label = str(public)
        else:
            from tests.tools.sample_inputs import write_sample_inputs
            from tools.render import render

            rt = write_sample_inputs(Path(tmp))
            render(rt, strategies_path=rt.strategies_path, repo_root=Path(tmp))  # writes plotly.js once
            t0 = time.perf_counter()
            render(rt, strategies_path=rt.strategies_path, repo_root=Path(tmp))
            render_s = time.perf_counter() - t0
            public = rt.public_dir
            label = "bundled-sample-sized inputs (10 pairs × 3 TFs × 5 entry sets, 6 promoted)"
        fig = measure(public)
    fig["render_s"] = render_s
    if args.json:
        print(json.dumps(fig))
    else:
        kb = lambda n: f"{n / 1024:,.1f} KB"  # noqa: E731
        print(f"dashboard benchmark: {label}")
        if render_s is not None:
            print(f"  render (warm)                 {render_s * 1000:8.0f} ms")
        print(f"  dashboard.html                {kb(fig['html_bytes']):>12}  (gzip {kb(fig['html_gzip_bytes'])}; limit 300 KB)")
        print(f"  plotly.js                     {kb(fig['plotly_bytes']):>12}  (on the wire {kb(fig['plotly_wire'])}, cached 1 year)")
        print(f"  first load, first screen      {kb(fig['first_screen_wire']):>12}  (page + plotly.js + version.json, gzip)")
        print(f"  first load, all {fig['n_charts']:2d} charts     {kb(fig['first_load_wire']):>12}  (+ every chart file)")
        print(f"  repeat visit                  {kb(fig['repeat_visit_wire']):>12}  (page + version.json)")
    return 0 if fig["html_bytes"] < 300_000 else 1


if __name__ == "__main__":
    sys.exit(main())
