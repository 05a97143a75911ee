"""Open an ngrok tunnel to the local dashboard server with pyngrok (optional).

The tunnel is optional (DESIGN.md, "Publishing"): with no ``NGROK_AUTHTOKEN``, or when the ngrok
binary cannot be downloaded or started (no network), :func:`start_tunnel` logs one clear line and
returns None; the local URL keeps working.

- ``NGROK_AUTHTOKEN``: the ngrok agent auth token (secret: keep it in ``.env``, never in config).
- ``DASHBOARD_BASIC_AUTH=user:pass``: when set, the tunnel asks for HTTP basic auth (ngrok's
  ``basic-auth`` traffic-policy action on v3 agent endpoints; ngrok wants a password of 8 to 128
  characters). A malformed value opens no tunnel at all, rather than an unprotected one.

The public URL (with the dashboard's token path) is written to ``ngrok_url.txt``; the file is
removed when no tunnel is up, so it never shows a dead link.

Usage::

    python tools/start_ngrok.py --port 8888 [--path <token>/dashboard.html]
"""
from __future__ import annotations

import json
import logging
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

if __name__ == "__main__" and __package__ in (None, ""):  # `python tools/start_ngrok.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import fileio  # noqa: E402
from engine.cli import ArgumentParser, parse, run_cli, setup_logging  # noqa: E402

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
URL_FILENAME = "ngrok_url.txt"
#: Seconds allowed for downloading the ngrok binary (pyngrok retries are turned off).
DOWNLOAD_TIMEOUT_S = 10.0


@dataclass
class NgrokTunnel:
    """An open ngrok tunnel: its public URL and how to close it (held by the caller, not a global).

    Attributes
    ----------
    public_url : str
        ``https://….ngrok-free.app`` (without the dashboard path).
    link : str
        The public URL with the dashboard path: what ``ngrok_url.txt`` holds.
    urls_dir : Path
        Folder of ``ngrok_url.txt`` (removed again by :meth:`close`).
    """

    public_url: str
    link: str
    urls_dir: Path

    def close(self) -> None:
        """Disconnect the tunnel, stop the ngrok process and remove ``ngrok_url.txt`` (idempotent)."""
        _write_url(self.urls_dir, None)
        try:
            from pyngrok import ngrok

            ngrok.disconnect(self.public_url)
            ngrok.kill()
        except Exception as e:  # pyngrok errors of many kinds: already gone; nothing left to close
            logger.debug("ngrok close: %s", e)


def parse_basic_auth(value: str | None) -> str | None:
    """Validate a ``user:pass`` basic-auth setting.

    Parameters
    ----------
    value : str or None
        Content of ``DASHBOARD_BASIC_AUTH``; None or blank means "no basic auth".

    Returns
    -------
    str or None
        The stripped ``user:pass`` string, or None when not set.

    Raises
    ------
    ValueError
        If the value has no ``:``, an empty user name, or a password outside 8-128 characters
        (ngrok's rule for basic-auth credentials).
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    user, sep, password = value.partition(":")
    if not sep or not user:
        raise ValueError("DASHBOARD_BASIC_AUTH: expected 'user:password', found no ':' or an empty user")
    if not 8 <= len(password) <= 128:
        raise ValueError(f"DASHBOARD_BASIC_AUTH: expected a password of 8 to 128 characters, found {len(password)}")
    return value


def _write_url(urls_dir: Path, url: str | None) -> None:
    path = Path(urls_dir) / URL_FILENAME
    if url is None:
        path.unlink(missing_ok=True)
        return
    fileio.atomic_write_text(path, url + "\n")


def start_tunnel(port: int, *, token_env: str = "NGROK_AUTHTOKEN", basic_auth_env: str = "DASHBOARD_BASIC_AUTH",
                 urls_dir: str | os.PathLike[str] | None = None, dashboard_path: str = "",
                 env: Mapping[str, str] | None = None, ngrok_path: str | None = None,
                 download_timeout_s: float = DOWNLOAD_TIMEOUT_S) -> NgrokTunnel | None:
    """Open an HTTPS ngrok tunnel to ``127.0.0.1:<port>``; return it (the caller closes it).

    Parameters
    ----------
    port : int
        Local TCP port of the dashboard server.
    token_env, basic_auth_env : str
        Names of the environment variables holding the ngrok auth token and the optional
        ``user:pass`` for basic auth.
    urls_dir : path-like, optional
        Folder receiving ``ngrok_url.txt`` (default: the repo root).
    dashboard_path : str
        Path appended to the public URL in ``ngrok_url.txt`` (``<token>/dashboard.html``), so
        the file holds a link that opens the dashboard.
    env : mapping, optional
        Environment to read (default ``os.environ``).
    ngrok_path : str, optional
        Where the ngrok binary lives or is downloaded to (default: pyngrok's default path).
    download_timeout_s : float
        Timeout of the one download attempt of the ngrok binary, in seconds.

    Returns
    -------
    NgrokTunnel or None
        The tunnel (public URL ``https://….ngrok-free.app``, and the link with `dashboard_path`),
        or None when there is no token, the basic-auth setting is malformed, or ngrok cannot be
        downloaded or started; each of these logs exactly one line and never raises.
    """
    env = os.environ if env is None else env
    urls_dir = Path(urls_dir) if urls_dir is not None else REPO_ROOT
    token = (env.get(token_env) or "").strip()
    if not token:
        logger.info("ngrok tunnel not started: %s is not set; the dashboard is only on the local URL", token_env)
        _write_url(urls_dir, None)
        return None
    try:
        auth = parse_basic_auth(env.get(basic_auth_env))
    except ValueError as e:
        logger.error("ngrok tunnel not started: %s; the dashboard is only on the local URL", e)
        _write_url(urls_dir, None)
        return None
    pyngrok_logger = logging.getLogger("pyngrok")
    saved_level = pyngrok_logger.level
    pyngrok_logger.setLevel(logging.CRITICAL)  # its start-up chatter would repeat our one line
    try:
        from pyngrok import conf, installer, ngrok

        cfg = conf.PyngrokConfig(auth_token=token, ngrok_path=ngrok_path, monitor_thread=False,
                                 startup_timeout=15, request_timeout=5)
        if not os.path.isfile(cfg.ngrok_path):
            # pyngrok writes download progress to stdout; our stdout carries results only
            installer._print_progress_enabled = False
            installer.install_ngrok(cfg.ngrok_path, cfg.ngrok_version, timeout=download_timeout_s)
        options: dict[str, Any] = {}
        if auth:
            if cfg.config_version == "3":
                options["traffic_policy"] = {"on_http_request": [
                    {"actions": [{"type": "basic-auth", "config": {"credentials": [auth]}}]}]}
            else:
                options["basic_auth"] = [auth]
        tunnel = ngrok.connect(str(int(port)), "http", pyngrok_config=cfg, **options)
        public = str(tunnel.public_url)
    except (Exception, socket.timeout) as e:  # pyngrok errors, URLError, OSError: one line, no traceback
        reason = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
        logger.warning("ngrok tunnel not started (%s: %s); the dashboard is only on the local URL",
                       type(e).__name__, reason)
        _write_url(urls_dir, None)
        return None
    finally:
        pyngrok_logger.setLevel(saved_level)
    if public.startswith("http://"):
        public = "https://" + public[len("http://"):]
    link = public.rstrip("/") + ("/" + dashboard_path.lstrip("/") if dashboard_path else "")
    _write_url(urls_dir, link)
    logger.info("ngrok tunnel up%s: %s/<token>/… (full link in %s)",
                " with basic auth" if auth else "", public.rstrip("/"), Path(urls_dir) / URL_FILENAME)
    return NgrokTunnel(public_url=public, link=link, urls_dir=urls_dir)


def main(argv: list[str] | None = None) -> int:
    """CLI: open a tunnel to ``--port`` and print its URL; exit 0 even when no tunnel is up."""
    parser = ArgumentParser(prog="start_ngrok.py", description="Open an ngrok tunnel to the dashboard.")
    parser.add_argument("--port", type=int, required=True, help="local port of the dashboard server")
    parser.add_argument("--path", default="", help="dashboard path appended in ngrok_url.txt (<token>/dashboard.html)")
    parser.add_argument("--urls-dir", type=Path, default=None, help="folder for ngrok_url.txt (default: repo root)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (repeatable)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    parser.add_argument("--json", action="store_true", help='print {"public_url", "link"} as JSON (nulls: no tunnel)')
    args = parse(parser, argv)
    setup_logging(args.verbose, args.quiet)

    def body() -> int:
        tunnel = start_tunnel(args.port, urls_dir=args.urls_dir, dashboard_path=args.path)
        if args.json:
            print(json.dumps({"public_url": tunnel.public_url if tunnel else None,
                              "link": tunnel.link if tunnel else None}))
        elif tunnel:
            print(tunnel.public_url)
        return 0

    return run_cli("start_ngrok.py", body)


if __name__ == "__main__":
    sys.exit(main())
