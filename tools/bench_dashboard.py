"""Benchmark the dashboard's weight: first-load bytes of the dashboard and of a strategy page, and,
where Lighthouse is installed, its mobile performance score.

Usage::

    python tools/bench_dashboard.py            # bundled-sample-sized inputs in a temp folder
    python tools/bench_dashboard.py --runtime  # the dashboard already rendered by bot.py / the maintainer

It renders (sample mode), serves the public folder with engine.publish.server on a free loopback port,
and fetches what a browser fetches on a first load, with ``Accept-Encoding: gzip``: the dashboard
(the page, version.json and health.json, which it polls at once; it loads no chart library), and a
strategy page (the page, the plotly.js finance bundle it loads after its first paint, its chart
file, version.json). Bytes on the wire include the response headers. A repeat visit re-fetches only
the page and the polled files: plotly.js and the content-hashed chart files are cached for a year.

Lighthouse (``npm install -g lighthouse``, or ``$SCALP_LIGHTHOUSE`` naming its command) runs its
mobile preset (slow 4G, 4× CPU) on the served dashboard with Chromium (``$CHROME_PATH``, default
``/usr/bin/chromium``). Exit status 1 when a first load exceeds 500 KB, dashboard.html reaches
300 KB, or Lighthouse scores performance below 90.
"""
from __future__ import annotations

import gzip
import http.client
import json
import os
import re
import shutil
import subprocess
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


#: Largest first load (bytes on the wire) and page, and the lowest Lighthouse mobile performance score.
MAX_FIRST_LOAD_BYTES = 500 * 1024
MAX_HTML_BYTES = 300_000
MIN_LIGHTHOUSE_SCORE = 90


def measure(public_dir: Path, *, lighthouse: bool = True) -> dict:
    """Serve `public_dir` and measure first loads; returns the figures as a dict (bytes; ``lighthouse``
    is the mobile performance score 0–100, or None where Lighthouse is not installed)."""
    from engine.publish.server import load_or_create_token, serve_public

    html = (public_dir / "dashboard.html").read_text(encoding="utf-8")
    pages = sorted(set(re.findall(r'href="(s-[^"]+\.html)"', html)))
    out: dict = {"html_bytes": len(html.encode("utf-8")), "html_gzip_bytes": len(gzip.compress(html.encode("utf-8"), 6)),
                 "n_strategy_pages": len(pages), "lighthouse": None, "lighthouse_strategy": None}
    with tempfile.TemporaryDirectory() as tmp:
        token = load_or_create_token(Path(tmp) / "token")
        server = serve_public(public_dir, "127.0.0.1", 0, token=token)
        try:
            statuses = []

            def get(path: str) -> int:
                st, wire, _ = _fetch(server, path)
                statuses.append(st)
                return wire

            out["html_wire"] = get("dashboard.html")
            out["polled_wire"] = get("version.json") + (get("health.json") if (public_dir / "health.json").is_file() else 0)
            out["first_load_wire"] = out["html_wire"] + out["polled_wire"]
            out["repeat_visit_wire"] = out["first_load_wire"]
            out["strategy_first_load_wire"] = None
            for name in pages:  # the heaviest strategy page counts
                page = (public_dir / name).read_text(encoding="utf-8")
                plotly_name = re.search(r'data-plotly="([^"]+)"', page).group(1)
                charts = sorted(set(re.findall(r'data-src="([^"]+)"', page)))
                st, out["plotly_wire"], out["plotly_bytes"] = _fetch(server, plotly_name)
                statuses.append(st)
                wire = get(name) + out["plotly_wire"] + sum(get(c) for c in charts) + get("version.json")
                if wire > (out["strategy_first_load_wire"] or 0):
                    out["strategy_first_load_wire"], out["strategy_page"] = wire, name
            if set(statuses) != {200}:
                raise RuntimeError(f"unexpected statuses {statuses}")
            out["lighthouse_strategy"] = None
            if lighthouse:
                out["lighthouse"] = lighthouse_score(server.url)
                if pages and out["lighthouse"] is not None:
                    out["lighthouse_strategy"] = lighthouse_score(server.url.rsplit("/", 1)[0] + "/" + out["strategy_page"])
        finally:
            server.shutdown()
    return out


def lighthouse_command() -> list[str] | None:
    """Return the Lighthouse command (``$SCALP_LIGHTHOUSE`` or ``lighthouse`` on PATH), or None."""
    cmd = os.environ.get("SCALP_LIGHTHOUSE") or shutil.which("lighthouse")
    return cmd.split() if cmd else None


def lighthouse_score(url: str) -> float | None:
    """Run Lighthouse's mobile preset on `url` (performance only); return the score 0–100, or None
    where Lighthouse is not installed or fails (its error goes to stderr)."""
    cmd = lighthouse_command()
    if cmd is None:
        return None
    chrome = os.environ.get("CHROME_PATH", "/usr/bin/chromium")
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "lh.json"
        run = subprocess.run([*cmd, url, "--only-categories=performance", "--output=json", f"--output-path={report}",
                              "--quiet", "--chrome-flags=--headless=new --no-sandbox --disable-gpu"],
                             env={**os.environ, "CHROME_PATH": chrome}, capture_output=True, text=True, timeout=300,
                             check=False)
        if run.returncode != 0 or not report.is_file():
            print(f"lighthouse failed ({run.returncode}): {run.stderr.strip()[-500:]}", file=sys.stderr)
            return None
        score = json.loads(report.read_text())["categories"]["performance"]["score"]
        return None if score is None else round(score * 100, 1)


def main(argv: list[str] | None = None) -> int:
    """Print the figures; exit 0, or 1 when a limit is exceeded (module docstring)."""
    parser = ArgumentParser(prog="bench_dashboard.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtime", action="store_true",
                        help="measure runtime.public_dir (from engine/config/config.yaml) instead of sample inputs")
    parser.add_argument("--no-lighthouse", action="store_true", help="skip Lighthouse even where it is installed")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parse(parser, argv)
    setup_logging(quiet=True)
    return run_cli("bench_dashboard.py", lambda: _run(args))


def _run(args) -> int:
    import os

    from engine.bench import machine

    render_s = None
    load_before = [round(v, 2) for v in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        if args.runtime:
            from engine.config import load_runtime

            public = Path(load_runtime().public_dir)
            label = str(public)
        else:
            from tests.tools.sample_inputs import write_sample_inputs
            from tools.render import render

            rt = write_sample_inputs(Path(tmp))
            render(rt, strategies_path=rt.strategies_path, repo_root=Path(tmp))  # copies plotly.js once
            t0 = time.perf_counter()
            render(rt, strategies_path=rt.strategies_path, repo_root=Path(tmp))
            render_s = time.perf_counter() - t0
            public = rt.public_dir
            label = "bundled-sample-sized inputs (10 pairs × 3 TFs × 5 entry sets, 6 promoted)"
        fig = measure(public, lighthouse=not args.no_lighthouse)
    fig["render_s"] = render_s
    host = machine()
    fig["machine"] = {"cpu": host["cpu"], "cores": host["cores"], "python": host["python"],
                      "load_before": load_before, "load_after": host["load_average"]}
    ok = (fig["first_load_wire"] <= MAX_FIRST_LOAD_BYTES and fig["html_bytes"] < MAX_HTML_BYTES
          and (fig["strategy_first_load_wire"] or 0) <= MAX_FIRST_LOAD_BYTES
          and (fig["lighthouse"] is None or fig["lighthouse"] >= MIN_LIGHTHOUSE_SCORE))
    if args.json:
        print(json.dumps(fig))
        return 0 if ok else 1
    kb = lambda n: f"{n / 1024:,.1f} KB"  # noqa: E731
    print(f"dashboard benchmark: {label}")
    if render_s is not None:
        print(f"  render (warm)                   {render_s * 1000:8.0f} ms")
    print(f"  dashboard.html                  {kb(fig['html_bytes']):>12}  (gzip {kb(fig['html_gzip_bytes'])}; limit 300 KB)")
    print(f"  first load, dashboard           {kb(fig['first_load_wire']):>12}  (page + version.json + health.json, "
          f"gzip; no chart library; limit 500 KB)")
    if fig["strategy_first_load_wire"] is not None:
        print(f"  first load, a strategy page     {kb(fig['strategy_first_load_wire']):>12}  (the heaviest, "
              f"{fig['strategy_page']}: page + plotly.js finance {kb(fig['plotly_wire'])} + chart file + version.json; "
              f"limit 500 KB)")
    print(f"  repeat visit, dashboard         {kb(fig['repeat_visit_wire']):>12}")
    if fig["lighthouse"] is not None:
        print(f"  Lighthouse mobile performance   {fig['lighthouse']:>12g}  (the dashboard; limit ≥ {MIN_LIGHTHOUSE_SCORE})")
        if fig["lighthouse_strategy"] is not None:
            print(f"  Lighthouse, the strategy page   {fig['lighthouse_strategy']:>12g}  (plotly.js after first paint)")
    else:
        print("  Lighthouse mobile performance   not measured (lighthouse not installed: npm install -g lighthouse)")
    m = fig["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; load average (1/5/15 min) "
          f"before {m['load_before']}, after {m['load_after']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
