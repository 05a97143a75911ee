"""engine/server.py: only files of the public folder, only under the token, gzip, headers, load."""
from __future__ import annotations

import gzip
import http.client
import logging
import socket
import stat
import statistics
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.errors import ConfigError
from engine.publish.server import (cache_control_for, dashboard_url, load_or_create_token, resolve_request_path,
                           serve_public, token_path)

PAGE = "<!doctype html><title>SCALP</title>" + "<p>dashboard</p>" * 200


@pytest.fixture
def site(tmp_path):
    """A public folder next to secrets it must never serve; a running server on a free port."""
    public = tmp_path / "scalp_data" / "public"
    (public / "charts").mkdir(parents=True)
    (public / "dashboard.html").write_text(PAGE)
    (public / "version.json").write_text('{"version": "abc"}')
    (public / "plotly-7.1.0.min.js").write_text("/* plotly */" + "var a=1;" * 500)
    (public / "charts" / "BTCUSDT_1m_ema.0123456789.json").write_text('{"equity": null}' * 50)
    (public / ".env").write_text("SECRET=1")  # hidden files are never served, even inside public
    (tmp_path / "README.md").write_text("repo readme")
    (tmp_path / ".env").write_text("NGROK_AUTHTOKEN=secret")
    (tmp_path / "engine" / "config").mkdir(parents=True)
    (tmp_path / "engine" / "config" / "config.yaml").write_text("runtime: {}")
    (public / "escape").symlink_to(tmp_path / "README.md")  # a symlink leading out of public
    rt = SimpleNamespace(reports_dir=tmp_path / "scalp_data" / "reports", public_dir=public)
    token = load_or_create_token(token_path(rt))
    server = serve_public(public, "127.0.0.1", 0, token=token)
    yield SimpleNamespace(server=server, token=token, public=public, root=tmp_path, rt=rt)
    server.shutdown()


def raw_get(server, target: str, headers: dict | None = None, method: str = "GET"):
    """Send `target` byte-for-byte (no client-side normalisation) and return (status, headers, body)."""
    with socket.create_connection((server.host, server.port), timeout=5) as s:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {server.host}:{server.port}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    hdrs = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), hdrs, body


# ---------------------------------------------------------------- token
def test_token_is_created_once_outside_public_with_private_mode(tmp_path):
    rt = SimpleNamespace(reports_dir=tmp_path / "data" / "reports", public_dir=tmp_path / "data" / "public")
    path = token_path(rt)
    assert path == (tmp_path / "data" / ".dashboard_token").resolve()
    assert not path.is_relative_to(rt.public_dir)
    t1 = load_or_create_token(path)
    assert len(t1) == 32 and t1.replace("-", "").replace("_", "").isalnum()
    assert load_or_create_token(path) == t1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_token(tmp_path / "other") != t1  # random, not derived


def test_invalid_token_file_is_replaced_with_a_warning(tmp_path, caplog):
    path = tmp_path / ".dashboard_token"
    path.write_text("../../etc\n")
    with caplog.at_level(logging.WARNING):
        token = load_or_create_token(path)
    assert token != "../../etc" and path.read_text().strip() == token
    assert "does not hold a valid dashboard token" in caplog.text


def test_token_path_inside_public_is_refused(tmp_path):
    rt = SimpleNamespace(reports_dir=tmp_path / "x" / "reports", public_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"runtime.public_dir = .*token file .* would be inside the public folder"):
        token_path(rt)


def test_serve_public_refuses_a_bad_token_and_a_repo_root(tmp_path):
    with pytest.raises(ConfigError, match=r"dashboard token: expected 22-128 characters"):
        serve_public(tmp_path, "127.0.0.1", 0, token="short")
    (tmp_path / ".git").mkdir()
    with pytest.raises(ConfigError, match=r"looks like a repository root \(.git inside\)"):
        serve_public(tmp_path, "127.0.0.1", 0, token="a" * 32)


def test_dashboard_url_shows_loopback_for_wildcard_binds():
    assert dashboard_url("0.0.0.0", 8888, "t" * 32) == f"http://127.0.0.1:8888/{'t' * 32}/dashboard.html"
    assert dashboard_url("::1", 80, "t" * 32).startswith("http://[::1]:80/")


# ---------------------------------------------------------------- good requests
def test_dashboard_answers_200_with_headers(site):
    status, h, body = raw_get(site.server, f"/{site.token}/dashboard.html")
    assert status == 200 and body.decode() == PAGE
    assert h["x-content-type-options"] == "nosniff"
    assert h["cache-control"] == "private, no-cache"
    assert h["content-type"] == "text/html; charset=utf-8"
    assert "content-encoding" not in h  # no Accept-Encoding → identity
    assert "default-src 'self'" in h["content-security-policy"] and h["x-frame-options"] == "DENY"
    assert h["referrer-policy"] == "no-referrer"
    assert site.server.url == f"http://127.0.0.1:{site.server.port}/{site.token}/dashboard.html"
    assert site.server.path == f"{site.token}/dashboard.html" and site.server.url.endswith(site.server.path)


def test_gzip_when_accepted_and_cached_per_file_version(site):
    status, h, body = raw_get(site.server, f"/{site.token}/dashboard.html", {"Accept-Encoding": "gzip, deflate, br"})
    assert status == 200 and h["content-encoding"] == "gzip" and h["vary"] == "Accept-Encoding"
    assert gzip.decompress(body).decode() == PAGE and int(h["content-length"]) == len(body) < len(PAGE) / 5
    status, h, _ = raw_get(site.server, f"/{site.token}/dashboard.html", {"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in h
    (site.public / "dashboard.html").write_text(PAGE + "<p>new render</p>")
    _, _, body = raw_get(site.server, f"/{site.token}/dashboard.html", {"Accept-Encoding": "gzip"})
    assert gzip.decompress(body).decode().endswith("<p>new render</p>")


@pytest.mark.parametrize("name, cache", [
    ("plotly-7.1.0.min.js", "private, max-age=31536000, immutable"),
    ("charts/BTCUSDT_1m_ema.0123456789.json", "private, max-age=31536000, immutable"),
    ("version.json", "no-store"),
])
def test_cache_control_per_file(site, name, cache):
    status, h, _ = raw_get(site.server, f"/{site.token}/{name}")
    assert status == 200 and h["cache-control"] == cache and h["x-content-type-options"] == "nosniff"
    assert cache_control_for(Path(name).name) == cache


def test_etag_revalidation_and_head(site):
    _, h, _ = raw_get(site.server, f"/{site.token}/dashboard.html")
    status, h2, body = raw_get(site.server, f"/{site.token}/dashboard.html", {"If-None-Match": h["etag"]})
    assert status == 304 and body == b""
    status, h3, body = raw_get(site.server, f"/{site.token}/dashboard.html", method="HEAD")
    assert status == 200 and body == b"" and int(h3["content-length"]) == len(PAGE)


def test_bare_token_redirects_to_the_dashboard(site):
    for target in (f"/{site.token}", f"/{site.token}/"):
        status, h, _ = raw_get(site.server, target)
        assert status == 302 and h["location"] == f"/{site.token}/dashboard.html"


# ---------------------------------------------------------------- refused requests
def _bad_targets(token: str) -> list[str]:
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    return [
        # no token, wrong token
        "/", "/dashboard.html", f"/{wrong}/dashboard.html", f"/{token.upper()}x/dashboard.html",
        f"/{token[:-4]}/dashboard.html", f"/x/{token}/dashboard.html",
        # files of the repo, outside the public folder
        "/.env", "/engine/config/config.yaml", "/../README.md", "/%2e%2e/README.md", "/README.md",
        # traversal with the right token
        f"/{token}/..", f"/{token}/../README.md", f"/{token}/../../README.md", f"/{token}/./dashboard.html",
        f"/{token}/%2e%2e/README.md", f"/{token}/%2E%2E/README.md", f"/{token}/%2e%2e%2fREADME.md",
        f"/{token}/..%2fREADME.md", f"/{token}/charts/%2e%2e/%2e%2e/README.md",
        # double encoding
        f"/{token}/%252e%252e/README.md", f"/{token}/%252e%252e%252fREADME.md", f"/{token}%252fdashboard.html",
        # absolute paths, backslashes, NUL, absolute-form request target
        f"/{token}//etc/passwd", f"/{token}/%2fetc%2fpasswd", "//etc/passwd", f"/{token}/..\\README.md",
        f"/{token}/%5c..%5cREADME.md", f"/{token}/dashboard.html%00.png",
        f"http://127.0.0.1/{token}/../README.md", "*",
        # directories, hidden files, symlink out of public
        f"/{token}/charts", f"/{token}/charts/", f"/{token}//", f"/{token}/.env", f"/{token}/%2eenv",
        f"/{token}/escape", f"/{token}/missing.html",
    ]


def test_no_traversal_token_or_directory_trick_answers_200(site):
    answers = {t: raw_get(site.server, t)[0] for t in _bad_targets(site.token)}
    assert all(code != 200 for code in answers.values()), answers
    assert all(code in (400, 404) for code in answers.values()), answers
    assert answers["/.env"] == answers["/engine/config/config.yaml"] == answers["/../README.md"] == 404


def test_refused_body_never_leaks_content(site):
    for t in _bad_targets(site.token):
        _, h, body = raw_get(site.server, t)
        assert b"secret" not in body.lower() and b"repo readme" not in body
        if h.get("content-type", "").startswith("text/plain"):
            assert body == b"Not found\n"


def test_other_methods_are_refused(site):
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        status, h, _ = raw_get(site.server, f"/{site.token}/dashboard.html", method=method)
        assert status == 405 and h["allow"] == "GET, HEAD"


def test_resolve_request_path_unit(tmp_path):
    (tmp_path / "a.html").write_text("x")
    token = "T" * 32
    assert resolve_request_path(f"/{token}/a.html?v=1#x", tmp_path, token) == tmp_path / "a.html"
    assert resolve_request_path(f"/{token}/", tmp_path, token) == "redirect"
    assert resolve_request_path(f"/{token}/%61.html", tmp_path, token) == tmp_path / "a.html"  # single decode ok
    assert resolve_request_path(f"/{token}/%2561.html", tmp_path, token) is None


def test_shutdown_frees_the_port(tmp_path):
    server = serve_public(tmp_path, "127.0.0.1", 0, token="z" * 32)
    port = server.port
    server.shutdown()
    server.shutdown()  # idempotent
    again = serve_public(tmp_path, "127.0.0.1", port, token="z" * 32)
    again.shutdown()


def test_bind_defaults_to_loopback(tmp_path):
    server = serve_public(tmp_path, port=0, token="y" * 32)
    try:
        assert server.host == "127.0.0.1"
    finally:
        server.shutdown()


# ---------------------------------------------------------------- bounded load test
def test_load_50_clients_x_20_requests_all_200(site, capsys):
    """50 concurrent keep-alive clients × 20 GETs of the dashboard (gzip) on loopback."""
    n_clients, n_requests = 50, 20
    latencies: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(n_clients)

    def client() -> None:
        conn = http.client.HTTPConnection(site.server.host, site.server.port, timeout=20)
        start.wait()
        mine, codes = [], []
        for _ in range(n_requests):
            t0 = time.perf_counter()
            conn.request("GET", f"/{site.token}/dashboard.html", headers={"Accept-Encoding": "gzip"})
            resp = conn.getresponse()
            resp.read()
            mine.append(time.perf_counter() - t0)
            codes.append(resp.status)
        conn.close()
        with lock:
            latencies.extend(mine)
            statuses.extend(codes)

    threads = [threading.Thread(target=client) for _ in range(n_clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    wall = time.perf_counter() - t0
    assert len(statuses) == n_clients * n_requests and set(statuses) == {200}
    q = statistics.quantiles(latencies, n=100)
    with capsys.disabled():
        print(f"\n[load] {n_clients} clients × {n_requests} requests: all 200; "
              f"p50 {q[49] * 1000:.2f} ms, p99 {q[98] * 1000:.2f} ms, {len(latencies) / wall:.0f} req/s")
