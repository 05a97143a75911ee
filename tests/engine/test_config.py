"""Config loading: defaults, env overrides, and every kind of bad value named precisely."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from engine.config import REPO_ROOT, config_id, expand_grid, load_backtest, load_config, load_entries
from engine.config import schema
from engine.errors import ConfigError


def write_yaml(path: Path, doc) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def test_shipped_config_loads_with_issue_defaults():
    rt = load_config(env={}).runtime
    assert rt.tf_list == ("1m", "5m", "15m")
    assert (rt.age_mult, rt.topN, rt.backfill_limit) == (5.0, 10, 5000)
    assert (rt.risk_mode, rt.exec_enabled, rt.html_port) == ("aggressive", False, 8888)
    assert (rt.exchange, rt.quote) == ("binance", "USDT")
    assert rt.data_dir == REPO_ROOT / "notebooks" / "scalp_data" / "data"
    assert rt.reports_dir == REPO_ROOT / "notebooks" / "scalp_data" / "reports"


def test_shipped_config_restates_schema_defaults():
    """config.yaml repeats the schema's defaults for readability; they must not drift apart."""
    doc = yaml.safe_load((REPO_ROOT / "engine/config/config.yaml").read_text())
    for key, spec in schema.RUNTIME.keys.items():
        if key in doc["runtime"]:
            value = doc["runtime"][key]
            value = tuple(value) if isinstance(value, list) else value
            assert value == spec.default, key
    for mode, block in schema.PROMOTION.keys.items():
        for key, spec in block.keys.items():
            assert doc["promotion"][mode][key] == spec.default, (mode, key)


def test_env_overrides_every_kind_of_key(tmp_path):
    env = {"SCALP_DATA_DIR": "/notebooks/scalp_data/data", "SCALP_TF_LIST": "1m,1h", "SCALP_TOPN": "3",
           "SCALP_HTML_PORT": "9000", "SCALP_EXEC_ENABLED": "true", "SCALP_AGE_MULT": "2.5"}
    rt = load_config(env=env).runtime
    assert rt.data_dir == Path("/notebooks/scalp_data/data")
    assert rt.tf_list == ("1m", "1h")
    assert (rt.topN, rt.html_port, rt.exec_enabled, rt.age_mult) == (3, 9000, True, 2.5)


@pytest.mark.parametrize("env, match", [
    ({"SCALP_TF_LIST": "1m,7x"}, r"SCALP_TF_LIST\[1\] = '7x': expected one of 1m 5m 15m 1h 4h 1d"),
    ({"SCALP_RISK_MODE": "yolo"}, r"SCALP_RISK_MODE = 'yolo': expected one of conservative, balanced, aggressive"),
    ({"SCALP_HTML_PORT": "eighty"}, r"SCALP_HTML_PORT = 'eighty': expected a number"),
    ({"SCALP_HTML_PORT": "70000"}, r"SCALP_HTML_PORT = 70000: expected a number ≤ 65535"),
    ({"SCALP_EXEC_ENABLED": "maybe"}, r"SCALP_EXEC_ENABLED = 'maybe': expected true/false"),
])
def test_bad_env_override_names_the_variable(env, match):
    with pytest.raises(ConfigError, match=match):
        load_config(env=env)


@pytest.mark.parametrize("runtime, match", [
    ({"tf_list": ["7x"]}, r"config.yaml → runtime.tf_list\[0\] = '7x': expected one of 1m 5m 15m"),
    ({"risk_mode": "yolo"}, r"runtime.risk_mode = 'yolo': expected one of conservative, balanced, aggressive"),
    ({"topN": "ten"}, r"runtime.topN = 'ten': expected a number"),
    ({"topN": 0}, r"runtime.topN = 0: expected a number ≥ 1"),
    ({"exec_enabled": "yes"}, r"runtime.exec_enabled = 'yes': expected true or false"),
    ({"tf_list": "1m"}, r"runtime.tf_list = '1m': expected a non-empty list"),
    ({"html_prot": 8080}, r'runtime: unknown key "html_prot". Did you mean "html_port"\?'),
    ({"public_dir": "."}, r"runtime.public_dir = .*never the repo root"),
])
def test_bad_config_value_names_file_key_found_and_expected(tmp_path, runtime, match):
    path = write_yaml(tmp_path / "config.yaml", {"runtime": runtime})
    with pytest.raises(ConfigError, match=match):
        load_config(path, env={})


def test_unknown_top_level_block_and_broken_yaml(tmp_path):
    with pytest.raises(ConfigError, match=r'unknown key "promotions". Did you mean "promotion"'):
        load_config(write_yaml(tmp_path / "c.yaml", {"promotions": {}}), env={})
    bad = tmp_path / "broken.yaml"
    bad.write_text("runtime:\n  topN: [1,\n")
    with pytest.raises(ConfigError, match=r"broken.yaml line \d+: not valid YAML"):
        load_config(bad, env={})
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.yaml", env={})


def test_missing_keys_take_schema_defaults(tmp_path):
    cfg = load_config(write_yaml(tmp_path / "c.yaml", {"runtime": {"topN": 4}}), env={})
    assert cfg.runtime.topN == 4 and cfg.runtime.tf_list == ("1m", "5m", "15m")
    assert cfg.promotion["conservative"].min_trades == 30
    assert cfg.rules == cfg.promotion["aggressive"]


def test_shipped_entries_and_backtest_configs_load():
    entries = load_entries()
    assert len(entries.enabled()) >= 3
    assert {"ema_cross", "sma_cross", "rsi_revert"} <= set(entries.entry_sets)
    bt = load_backtest(entries=entries)
    assert bt.mode == "grid" and bt.walk_forward.n_splits >= 1
    assert set(bt.grid) <= set(entries.entry_sets)
    plan = entries.entry_sets["ema_cross"].exit_plan
    assert sum(alloc for _, alloc in plan.tp_ladder) == pytest.approx(100)


def _entries(tmp_path, **risk):
    doc = json.loads((REPO_ROOT / "entries_config.json").read_text())
    doc["risk"].update(risk)
    path = tmp_path / "entries_config.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("risk, match", [
    ({"fee_bps": -1}, r"entries_config.json → risk.fee_bps = -1.0: expected a number ≥ 0"),
    ({"sl_pct": 0.5}, r"risk.sl_pct = 0.5: expected a number ≤ 0"),
    ({"tp": "1.0:50,2.0:40"}, r"100"),
    ({"alloc_pc": 3}, r'unknown key "alloc_pc"'),
])
def test_bad_entries_risk(tmp_path, risk, match):
    with pytest.raises(ConfigError, match=match):
        load_entries(_entries(tmp_path, **risk))


def test_bad_entry_set_signal_and_params(tmp_path):
    doc = json.loads((REPO_ROOT / "entries_config.json").read_text())
    doc["entry_sets"]["ema_cross"]["signal"] = "ema_crossover"
    (tmp_path / "e.json").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"entry_sets.ema_cross.*ema_crossover"):
        load_entries(tmp_path / "e.json")
    doc["entry_sets"]["ema_cross"]["signal"] = "ema_cross"
    doc["entry_sets"]["ema_cross"]["params"] = {"fats": 5}
    (tmp_path / "e.json").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"fats"):
        load_entries(tmp_path / "e.json")
    (tmp_path / "e.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"e.json line 1 column 2: not valid JSON"):
        load_entries(tmp_path / "e.json")


@pytest.mark.parametrize("patch, match", [
    ({"walk_forward": {"n_splits": 0}}, r"walk_forward.n_splits = 0: expected a number ≥ 1"),
    ({"walk_forward": {"scheme": "sliding"}}, r"walk_forward.scheme = 'sliding': expected one of rolling, anchored"),
    ({"walk_forward": {"train_bars": 500}}, r"train_bars and test_bars go together"),
    ({"optuna": {"sampler": "cmaes"}}, r"optuna.sampler = 'cmaes'"),
    ({"mode": "random"}, r"mode = 'random': expected one of grid, optuna"),
    ({"grid": {"ema_cross": {"fast": []}}}, r"grid.ema_cross.fast = \[\]: expected a non-empty list"),
    ({"grid": {"ema_crosss": {"fast": [5]}}}, r'grid: unknown key "ema_crosss". Did you mean "ema_cross"'),
])
def test_bad_backtest_config(tmp_path, patch, match):
    doc = json.loads((REPO_ROOT / "backtest_config.json").read_text())
    for k, v in patch.items():
        doc[k] = {**doc[k], **v} if isinstance(v, dict) and k != "grid" else v
    (tmp_path / "b.json").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=match):
        load_backtest(tmp_path / "b.json", entries=load_entries())


def test_expand_grid_row_major():
    assert expand_grid({"fast": [5, 9], "slow": [21, 50]}) == [
        {"fast": 5, "slow": 21}, {"fast": 5, "slow": 50}, {"fast": 9, "slow": 21}, {"fast": 9, "slow": 50}]


def test_config_id_is_stable_and_sensitive():
    a = config_id({"x": 1, "y": [1, 2]})
    assert a == config_id({"y": [1, 2], "x": 1}) and len(a) == 8
    assert a != config_id({"x": 2, "y": [1, 2]})


def test_an_empty_config_file_is_an_error_not_the_defaults(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("\n# nothing here\n")
    with pytest.raises(ConfigError, match=r"config.yaml: the file is empty; expected the runtime and promotion blocks"):
        load_config(path, env={})
