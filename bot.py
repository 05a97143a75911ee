"""SCALP's single entry point: deps check → server → tunnel → first render → maintainer.

Usage::

    python bot.py            # serve the dashboard and run a maintainer cycle every 60 s
    python bot.py --once     # one full cycle, print the dashboard URLs, exit 0

With no network the cycle runs on the bundled real Binance candles (replay clock). The dashboard
is served from runtime.public_dir only, under a secret path token; ``dashboard_url.txt`` lists the
local URL and, when ``NGROK_AUTHTOKEN`` is set and ngrok starts, the public one.
"""
from __future__ import annotations

import errno
import importlib.util
import logging
import signal
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

logger = logging.getLogger("bot")
PORT_ATTEMPTS = 20


def check_dependencies() -> bool:
    """Install missing requirements with sitecustomize.py (loaded from this repo by path)."""
    spec = importlib.util.spec_from_file_location("scalp_sitecustomize", REPO_ROOT / "sitecustomize.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module.ensure_requirements()


def start_server(rt):
    """Serve rt.public_dir on rt.html_host; the next free port when rt.html_port is taken.

    Raises
    ------
    ConfigError
        When every port of the range is taken, or the host cannot be bound (one line naming the key).
    """
    from engine.errors import ConfigError
    from engine.publish.server import load_or_create_token, serve_public, token_path

    token = load_or_create_token(token_path(rt))
    last_error: OSError | None = None
    for port in range(rt.html_port, rt.html_port + PORT_ATTEMPTS):
        try:
            server = serve_public(rt.public_dir, rt.html_host, port, token=token)
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise ConfigError(f"runtime.html_host = {rt.html_host!r} (SCALP_HTML_HOST), port {port}: cannot serve "
                                  f"there ({e.strerror or e}); expected an address of this machine, e.g. 127.0.0.1") from e
            last_error = e
            continue
        if port != rt.html_port:
            logger.warning("port %d is in use; serving the dashboard on port %d instead", rt.html_port, port)
        return server
    raise ConfigError(f"runtime.html_port: ports {rt.html_port}-{rt.html_port + PORT_ATTEMPTS - 1} are all in use "
                      f"({last_error.strerror if last_error else 'taken'}); set SCALP_HTML_PORT to a free port")


class Terminated(BaseException):
    """SIGTERM arrived (systemd stop, docker stop, kill): shut down like on Ctrl-C, exit 143."""


def _on_sigterm(signum, frame):  # noqa: ARG001 (signal handler signature)
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    if not check_dependencies():
        return 2
    # the engine (pandas, numba) loads after the flags are parsed, so --help answers at once
    from engine.cli import ArgumentParser, add_common_flags, parse, run_cli, setup_logging

    parser = ArgumentParser(prog="bot.py", description=__doc__.split("\n\n")[0])
    add_common_flags(parser)
    parser.add_argument("--once", action="store_true", help="run one cycle, print the URLs and exit")
    parser.add_argument("--no-tunnel", action="store_true", help="do not start ngrok even if NGROK_AUTHTOKEN is set")
    parser.add_argument("--no-server", action="store_true", help="do not serve the dashboard (render only)")
    parser.add_argument("--sample", choices=("month", "long"), default=None,
                        help="run offline on a bundled sample: month (1m candles, April 2021; the default sample) "
                             "or long (1h candles, May 2021 to March 2026); same as SCALP_DATA_SOURCE=sample "
                             "SCALP_SAMPLE=<name>")
    args = parse(parser, argv)

    def body() -> int:
        from engine import cycle
        from engine.config import load_settings

        overrides = {"data_source": "sample", "sample": args.sample} if args.sample else {}
        settings = load_settings(args.config, overrides=overrides)  # a bad config stops here: exit 2, one line
        rt = settings.runtime
        setup_logging(args.verbose, args.quiet, rt.logs_dir / "maintainer.log")
        from tools.render import render, write_dashboard_urls

        server = None if args.no_server else start_server(rt)
        tunnel = None
        urls = {"local": server.url if server else None, "ngrok": None}
        if server and not args.no_tunnel:
            from tools.start_ngrok import start_tunnel

            tunnel = start_tunnel(server.port, urls_dir=rt.urls_dir, dashboard_path=server.path)
            if tunnel:
                urls["ngrok"] = tunnel.link
        write_dashboard_urls(rt.urls_dir, urls["local"], urls["ngrok"])

        def render_dashboard(runtime, *, strategies_path=None, urls=None):
            return render(runtime, strategies_path=strategies_path, repo_root=REPO_ROOT, urls=urls)

        render_dashboard(rt, strategies_path=rt.strategies_file)  # first render: last cycle's reports
        try:
            if args.once:
                cycle.run_once(settings, render=render_dashboard, progress=not args.quiet)
            else:
                logger.info("dashboard: %s", urls["ngrok"] or urls["local"])
                cycle.loop(settings, render=render_dashboard, urls=urls)
        finally:
            if server:
                server.shutdown()
            if tunnel:
                tunnel.close()
        for label, url in urls.items():
            if url:
                print(f"{label}: {url}")
        print(f"(also in {rt.urls_dir / 'dashboard_url.txt'})")
        if args.once:
            page = (rt.public_dir / "dashboard.html").resolve()
            print(f"--once: the server stopped with this command; open the dashboard as a file: {page.as_uri()}")
            print("(run python bot.py without --once to keep serving it)")
        return 0

    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return run_cli("bot.py", body)
    except Terminated:
        logger.warning("SIGTERM: the server and the tunnel are shut down; exiting")
        return 143


if __name__ == "__main__":
    sys.exit(main())
