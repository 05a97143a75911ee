"""Serve the dashboard's public folder over HTTP, privately.

The server is a threading :mod:`http.server` that answers only GET and HEAD for regular files
inside one folder (``public_dir``), and only under an unguessable path token::

    http://127.0.0.1:8888/<token>/dashboard.html

Rules (issue 6, DESIGN.md "Publishing"):

- every URL must start with ``/<token>/``; a wrong or missing token answers 404;
- the path is percent-decoded exactly once; anything that still holds ``%``, a backslash, a NUL,
  an empty, ``.`` or ``..`` segment, or a segment starting with ``.`` (``.env``) answers 404;
- the resolved file must lie inside ``public_dir`` (symlinks are resolved first) and be a regular
  file: directories are never listed (``/<token>/`` and ``/<token>`` redirect to the dashboard);
- every answer carries ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` and a
  ``Cache-Control`` suited to the file (see :func:`cache_control_for`);
- text answers (HTML, JS, JSON, CSS, text) are gzip-compressed when the request's
  ``Accept-Encoding`` allows it; compressed bodies are cached in memory per file version.

The token is generated once by :func:`load_or_create_token` and kept in a file outside the public
folder (by default ``runtime.reports_dir.parent / ".dashboard_token"``, see :func:`token_path`).
"""
from __future__ import annotations

import email.utils
import gzip
import hmac
import logging
import mimetypes
import os
import re
import secrets
import threading
from collections import OrderedDict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from engine import fileio
from engine.errors import ConfigError

logger = logging.getLogger(__name__)

#: Name of the token file, kept next to the reports folder (outside the public folder).
TOKEN_FILENAME = ".dashboard_token"
#: The file a bare ``/<token>/`` redirects to.
DASHBOARD_FILENAME = "dashboard.html"

#: Sent with HTML: scripts and data only from this server (inline script/style of the page itself),
#: no framing, no form posts, nothing loaded from elsewhere.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
                           "frame-ancestors 'none'; form-action 'none'; base-uri 'none'")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{22,128}$")
_TEXT_TYPES = ("text/", "application/javascript", "application/json", "image/svg+xml")
_GZIP_MIN_BYTES = 512
_GZIP_CACHE_MAX_BYTES = 64 * 1024 * 1024


# --------------------------------------------------------------------------------------------
# path token
# --------------------------------------------------------------------------------------------
def token_path(runtime: Any) -> Path:
    """Return where the dashboard path token is kept for a runtime config.

    Parameters
    ----------
    runtime : RuntimeConfig or any object with ``reports_dir`` and ``public_dir`` (Path-like)

    Returns
    -------
    Path
        ``runtime.reports_dir.parent / ".dashboard_token"``.

    Raises
    ------
    ConfigError
        If that file would lie inside ``runtime.public_dir`` (it would then be served).
    """
    path = Path(runtime.reports_dir).resolve().parent / TOKEN_FILENAME
    public = Path(runtime.public_dir).resolve()
    if path.is_relative_to(public):
        raise ConfigError(
            f"runtime.public_dir = {public}: the dashboard token file {path} would be inside the "
            "public folder; expected public_dir to be a folder of its own, e.g. <data>/public"
        )
    return path


def load_or_create_token(path: str | os.PathLike[str]) -> str:
    """Return the dashboard path token stored in `path`, creating it on first use.

    The token is 32 URL-safe characters from :func:`secrets.token_urlsafe` (192 bits). It is
    written atomically with mode 0600. A file holding something that is not a token is replaced
    by a new token and a WARNING is logged (old links stop working).

    Parameters
    ----------
    path : path-like
        Token file, outside the public folder (see :func:`token_path`).

    Returns
    -------
    str
        The token, matching ``[A-Za-z0-9_-]{22,128}``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        text = None
    if text is not None:
        if _TOKEN_RE.match(text):
            return text
        logger.warning("%s does not hold a valid dashboard token; writing a new one "
                       "(old dashboard links stop working)", path)
    token = secrets.token_urlsafe(24)
    fileio.atomic_write_bytes(path, (token + "\n").encode("utf-8"), mode=0o600)
    logger.info("created dashboard path token in %s", path)
    return token


def dashboard_url(host: str, port: int, token: str) -> str:
    """Return the dashboard URL ``http://<host>:<port>/<token>/dashboard.html``.

    A wildcard bind address (``0.0.0.0``, ``::``, empty) is shown as ``127.0.0.1``.
    """
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    if ":" in shown:  # IPv6 literal
        shown = f"[{shown}]"
    return f"http://{shown}:{int(port)}/{token}/{DASHBOARD_FILENAME}"


# --------------------------------------------------------------------------------------------
# request handling
# --------------------------------------------------------------------------------------------
def resolve_request_path(raw_path: str, public_dir: Path, token: str) -> Path | str | None:
    """Map a raw request path to a file inside `public_dir`, or refuse it.

    Parameters
    ----------
    raw_path : str
        The request target as sent (``/<token>/dashboard.html?x=1``), still percent-encoded.
    public_dir : Path
        Resolved public folder.
    token : str
        The path token.

    Returns
    -------
    Path
        The regular file to serve.
    str
        ``"redirect"`` for ``/<token>`` and ``/<token>/`` (redirect to the dashboard).
    None
        Anything else: the caller answers 404.
    """
    path = raw_path.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/"):
        return None  # absolute-form "http://host/..." or garbage
    decoded = unquote(path, errors="strict") if "%" in path else path
    if any(ch in decoded for ch in ("%", "\\", "\x00")):
        return None  # double encoding, Windows separators, NUL
    parts = decoded[1:].split("/")
    if not parts or not hmac.compare_digest(parts[0].encode(), token.encode()):
        return None
    rest = parts[1:]
    if rest in ([], [""]):
        return "redirect"
    for seg in rest:
        if seg in ("", ".", "..") or seg.startswith("."):
            return None
    try:
        target = public_dir.joinpath(*rest).resolve()
    except (OSError, ValueError):
        return None
    if not target.is_relative_to(public_dir) or not target.is_file():
        return None
    return target


def cache_control_for(name: str) -> str:
    """Return the ``Cache-Control`` value for a served file name.

    ``plotly-*.js`` and content-hashed chart files (``*.<10 hex>.json``) never change under one
    name: cached for a year (``immutable``). ``version.json`` and ``health.json`` are polled:
    ``no-store``. Everything else (the dashboard itself): ``no-cache`` (revalidated with ETag / Last-Modified).
    All values are ``private``: the page sits behind a secret path.
    """
    if name.startswith("plotly-") and name.endswith(".js"):
        return "private, max-age=31536000, immutable"
    if re.search(r"\.[0-9a-f]{10}\.json$", name):
        return "private, max-age=31536000, immutable"
    if name in ("version.json", "health.json"):
        return "no-store"
    return "private, no-cache"


class _GzipCache:
    """Compressed bodies keyed by (path, mtime_ns, size); bounded LRU in bytes."""

    def __init__(self, max_bytes: int = _GZIP_CACHE_MAX_BYTES) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self._bytes = 0
        self._max = max_bytes

    def get(self, key: tuple[str, int, int], raw: bytes) -> bytes:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        body = gzip.compress(raw, compresslevel=6, mtime=0)
        with self._lock:
            if key not in self._items:
                self._items[key] = body
                self._bytes += len(body)
                while self._bytes > self._max and len(self._items) > 1:
                    _, old = self._items.popitem(last=False)
                    self._bytes -= len(old)
        return body


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"
    server_version = "SCALP"
    sys_version = ""
    timeout = 30

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._answer(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(send_body=False)

    def _refuse(self, code: int = 404) -> None:
        body = b"Not found\n" if code == 404 else b"Method not allowed\n"
        self.send_response(code)
        self._common_headers("no-store")
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if code == 405:
            self.send_header("Allow", "GET, HEAD")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        self.close_connection = True
        self._refuse(405)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST  # noqa: N815

    def _common_headers(self, cache_control: str) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Cache-Control", cache_control)

    def _answer(self, *, send_body: bool) -> None:
        srv = self.server
        try:
            target = resolve_request_path(self.path, srv.public_dir, srv.token)
        except UnicodeDecodeError:
            target = None
        if target is None:
            self._refuse(404)
            return
        if target == "redirect":
            self.send_response(HTTPStatus.FOUND)
            self._common_headers("no-store")
            self.send_header("Location", f"/{srv.token}/{DASHBOARD_FILENAME}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        assert isinstance(target, Path)
        try:
            st = target.stat()
            raw = target.read_bytes()
        except OSError:
            self._refuse(404)
            return
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if ctype == "text/javascript":
            ctype = "application/javascript"
        is_text = ctype.startswith(_TEXT_TYPES)
        if is_text:
            ctype += "; charset=utf-8"
        etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
        inm = self.headers.get("If-None-Match")
        cache_control = cache_control_for(target.name)
        if inm is not None and etag in [t.strip() for t in inm.split(",")]:
            self.send_response(HTTPStatus.NOT_MODIFIED)
            self._common_headers(cache_control)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        body, encoding = raw, None
        if is_text and len(raw) >= _GZIP_MIN_BYTES and _accepts_gzip(self.headers.get("Accept-Encoding")):
            body = srv.gzip_cache.get((str(target), st.st_mtime_ns, st.st_size), raw)
            encoding = "gzip"
        self.send_response(HTTPStatus.OK)
        self._common_headers(cache_control)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True))
        if is_text:
            self.send_header("Vary", "Accept-Encoding")
        if ctype.startswith("text/html"):
            self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        # Never log the request line: it holds the secret token.
        try:
            text = format % args
        except (TypeError, ValueError):
            text = format
        logger.debug("http %s", text.replace(self.server.token, "<token>"))

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        logger.debug("http %s %s", self.command, code)


def _accepts_gzip(header: str | None) -> bool:
    if not header:
        return False
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            q = params.strip()
            if q.startswith("q="):
                try:
                    return float(q[2:]) > 0
                except ValueError:
                    return False
            return True
    return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], public_dir: Path, token: str) -> None:
        self.public_dir = public_dir
        self.token = token
        self.gzip_cache = _GzipCache()
        super().__init__(addr, _Handler)


class DashboardServer:
    """A running dashboard server (returned by :func:`serve_public`).

    Attributes
    ----------
    url : str
        Dashboard URL with the token path, ``http://127.0.0.1:<port>/<token>/dashboard.html``.
    base_url : str
        ``http://<host>:<port>/<token>/``: prefix of every file the server answers for.
    path : str
        ``<token>/dashboard.html``: what to append to a tunnel's public URL.
    host : str
        Bound address.
    port : int
        Bound TCP port (the real one when 0 was asked for).
    public_dir : Path
        The only folder served (resolved).
    """

    def __init__(self, httpd: _Server, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread
        self.host: str = httpd.server_address[0]
        self.port: int = int(httpd.server_address[1])
        self.public_dir: Path = httpd.public_dir
        self._token = httpd.token
        self.url: str = dashboard_url(self.host, self.port, self._token)
        self.base_url: str = self.url.rsplit("/", 1)[0] + "/"
        self.path: str = f"{self._token}/{DASHBOARD_FILENAME}"

    def shutdown(self) -> None:
        """Stop serving, close the socket and join the serving thread (idempotent)."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()
        logger.info("dashboard server on port %d stopped", self.port)

    def __enter__(self) -> "DashboardServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"DashboardServer(host={self.host!r}, port={self.port}, public_dir='{self.public_dir}')"


def serve_public(public_dir: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 8888, *,
                 token: str) -> DashboardServer:
    """Start serving `public_dir` under ``/<token>/`` in a background thread.

    Parameters
    ----------
    public_dir : path-like
        Folder holding only what the dashboard needs (dashboard.html, plotly-*.js, version.json,
        charts/). Created if missing. Never the repo root.
    host : str
        Bind address; ``"127.0.0.1"`` (default) keeps the dashboard private to this machine.
    port : int
        TCP port; 0 picks a free one (read it back from ``.port``).
    token : str
        Path token from :func:`load_or_create_token`.

    Returns
    -------
    DashboardServer
        Running server with ``.url``, ``.port`` and ``.shutdown()``.

    Raises
    ------
    ConfigError
        If `token` is not a valid token, or `public_dir` holds a ``.git`` folder (looks like a
        repository root).
    OSError
        If the address cannot be bound (port in use).
    """
    if not isinstance(token, str) or not _TOKEN_RE.match(token):
        raise ConfigError("dashboard token: expected 22-128 characters of [A-Za-z0-9_-] "
                          "(use engine.publish.server.load_or_create_token)")
    public = Path(public_dir).resolve()
    if (public / ".git").exists():
        raise ConfigError(f"runtime.public_dir = {public}: looks like a repository root (.git "
                          "inside); expected a folder holding only the dashboard")
    public.mkdir(parents=True, exist_ok=True)
    httpd = _Server((host, int(port)), public, token)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2},
                              name="dashboard-http", daemon=True)
    thread.start()
    server = DashboardServer(httpd, thread)
    logger.info("serving %s on http://%s:%d/<token>/ (token in the URL files)",
                public, server.host, server.port)
    return server
