"""tools/start_ngrok.py: the tunnel is optional; without it, one clear log line and None."""
from __future__ import annotations

import logging
import time

import pytest

from tools.start_ngrok import URL_FILENAME, main, parse_basic_auth, start_tunnel


def _our_records(caplog):
    return [r for r in caplog.records if r.name == "tools.start_ngrok"]


def test_no_token_logs_one_line_and_removes_a_stale_url_file(tmp_path, caplog):
    (tmp_path / URL_FILENAME).write_text("https://old.ngrok-free.app/x/dashboard.html\n")
    with caplog.at_level(logging.INFO):
        assert start_tunnel(8888, env={}, urls_dir=tmp_path) is None
    recs = _our_records(caplog)
    assert len(recs) == 1 and "NGROK_AUTHTOKEN is not set" in recs[0].getMessage()
    assert not (tmp_path / URL_FILENAME).exists()
    assert start_tunnel(8888, env={"NGROK_AUTHTOKEN": "   "}, urls_dir=tmp_path) is None


@pytest.fixture
def no_network(monkeypatch):
    """Make urllib (pyngrok's downloader) see no network, even on a machine that has one: every
    HTTP(S) request goes to a proxy on a closed loopback port and is refused at once."""
    import urllib.request

    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    urllib.request.install_opener(None)  # rebuild the default opener from the environment
    yield
    urllib.request.install_opener(None)


def test_bogus_token_without_network_fails_fast_and_cleanly(tmp_path, caplog, no_network):
    """The ngrok binary is absent, so pyngrok tries to download it: with no network this fails at once."""
    t0 = time.perf_counter()
    with caplog.at_level(logging.INFO):
        url = start_tunnel(8888, env={"NGROK_AUTHTOKEN": "bogus-token"}, urls_dir=tmp_path,
                           ngrok_path=str(tmp_path / "bin" / "ngrok"), download_timeout_s=5)
    assert url is None and time.perf_counter() - t0 < 30
    recs = _our_records(caplog)
    assert len(recs) == 1 and recs[0].levelname == "WARNING"
    assert "ngrok tunnel not started" in recs[0].getMessage() and "only on the local URL" in recs[0].getMessage()
    assert not [r for r in caplog.records if r.name.startswith("pyngrok") and r.levelno >= logging.ERROR]
    assert not (tmp_path / URL_FILENAME).exists()


def test_ngrok_that_refuses_the_token_is_one_warning(tmp_path, caplog, capsys):
    """A real process that behaves like ngrok refusing a bogus token (exit 1, ERR_NGROK_105)."""
    fake = tmp_path / "ngrok"
    fake.write_text('#!/bin/sh\necho \'t=2026-01-01 lvl=eror msg="authentication failed" err="ERR_NGROK_105"\'\nexit 1\n')
    fake.chmod(0o755)
    with caplog.at_level(logging.INFO):
        url = start_tunnel(8888, env={"NGROK_AUTHTOKEN": "bogus", "DASHBOARD_BASIC_AUTH": "admin:long-enough"},
                           urls_dir=tmp_path, ngrok_path=str(fake))
    assert url is None
    recs = _our_records(caplog)
    assert len(recs) == 1 and "ERR_NGROK_105" in recs[0].getMessage()
    assert capsys.readouterr().out == ""  # stdout stays clean for results


@pytest.mark.parametrize("value, match", [
    ("nocolon", r"expected 'user:password', found no ':'"),
    (":password123", r"empty user"),
    ("user:short", r"expected a password of 8 to 128 characters, found 5"),
])
def test_malformed_basic_auth_opens_no_tunnel(tmp_path, caplog, value, match):
    with pytest.raises(ValueError, match=match):
        parse_basic_auth(value)
    with caplog.at_level(logging.INFO):
        assert start_tunnel(8888, env={"NGROK_AUTHTOKEN": "t", "DASHBOARD_BASIC_AUTH": value}, urls_dir=tmp_path) is None
    recs = _our_records(caplog)
    assert len(recs) == 1 and recs[0].levelname == "ERROR" and "DASHBOARD_BASIC_AUTH" in recs[0].getMessage()


def test_parse_basic_auth_accepts_good_values():
    assert parse_basic_auth(None) is None and parse_basic_auth("  ") is None
    assert parse_basic_auth(" me:correct horse ") == "me:correct horse"
    assert parse_basic_auth("me:pa:ss:word") == "me:pa:ss:word"  # the password may hold ':'


def test_cli_exits_0_without_a_tunnel(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("NGROK_AUTHTOKEN", raising=False)
    assert main(["--port", "8888", "--urls-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == ""
