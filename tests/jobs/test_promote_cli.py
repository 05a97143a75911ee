"""jobs/promote.py on a real candidates file: decisions, strategies.yml, bad input."""
from __future__ import annotations

import json

import yaml

from jobs import promote
from tests.conftest import make_candidate, write_candidates


def test_promote_cli_json(scalp_env, tmp_path, capsys):
    src = write_candidates(tmp_path / "next.yml", [make_candidate("BTCUSDT"), make_candidate("ETHUSDT", n_trades=10)])
    assert promote.main(["--source", str(src), "--risk-mode", "conservative", "--now-ms", "1620000000000",
                         "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [d["promoted"] for d in out["decisions"]] == [True, False]
    assert out["decisions"][1]["reasons"] == ["trades 10 < 30"]
    stored = yaml.safe_load((tmp_path / "strategies.yml").read_text())["strategies"]
    assert [(s["pair"], s["risk_mode"], s["expires_at"]) for s in stored] == [
        ("BTCUSDT", "conservative", "2021-05-04T00:00:00Z")]


def test_promote_cli_bad_source(scalp_env, tmp_path, capsys):
    assert promote.main(["--source", str(tmp_path / "missing.yml")]) == 2
    err = capsys.readouterr().err
    assert "missing.yml: file not found" in err and len(err.strip().splitlines()) == 1
