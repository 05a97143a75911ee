"""Load and validate SCALP's config files; return frozen dataclasses.

Files (all validated on load, structure first, then relations):

- ``engine/config/config.yaml``: the ``runtime`` block and the ``promotion`` rules per risk_mode.
  Every runtime key can be overridden by an environment variable ``SCALP_<KEY>`` (upper case:
  ``SCALP_DATA_DIR``, ``SCALP_TF_LIST=1m,5m``, ``SCALP_TOPN``, ``SCALP_HTML_PORT``).
- ``entries_config.json``: entry sets (signal + default params) and the risk (exit) rules and costs.
- ``backtest_config.json``: the search (grid / optuna), walk-forward folds and constraints.
- ``engine/config/strategies.yml``: the promoted strategies, read and written by
  :mod:`engine.strategy.promoted` (the record execution and the dashboard share).

Every error is a :class:`~engine.errors.ConfigError` naming the file, the key path, the value found
and what was expected, e.g. ``engine/config/config.yaml → runtime.tf_list[0] = '7x': expected one
of 1m 5m 15m 1h 4h 1d``.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping

import yaml

from engine.config import schema
from engine.errors import ConfigError
from engine.strategy import signals
from engine.strategy.exits import COST_KEYS, Costs, ExitPlan
from engine.config.models import (AppConfig, BacktestConfig, Chance, Constraints, EntriesConfig, EntrySet, OptunaConfig,
                                  PromotionRules, RuntimeConfig, Settings, WalkForward)

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = Path(__file__).resolve().parent
CONFIG_YAML = CONFIG_DIR / "config.yaml"
STRATEGIES_YML = CONFIG_DIR / "strategies.yml"
ENTRIES_JSON = REPO_ROOT / "entries_config.json"
BACKTEST_JSON = REPO_ROOT / "backtest_config.json"
ENV_PREFIX = "SCALP_"


def _display(path: Path) -> str:
    """Return `path` relative to the repo root when it lies inside it (for messages)."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------------------------
# reading files
# ---------------------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{_display(path)}: file not found") from None


def _read_yaml(path: Path) -> Any:
    text = _read_text(path)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{_display(path)}{where}: not valid YAML ({getattr(e, 'problem', e)})") from e


def _read_json(path: Path) -> Any:
    text = _read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{_display(path)} line {e.lineno} column {e.colno}: not valid JSON ({e.msg})") from e


def _env_value(name: str, raw: str, key: schema.Key) -> Any:
    """Convert an environment override to the key's type (the schema check runs afterwards)."""
    text = raw.strip()
    if key.kind == "timeframes":
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                raise ConfigError(f"environment {name} = {raw!r}: expected a JSON list or 1m,5m,15m") from None
        return [part.strip() for part in text.split(",") if part.strip()]
    if key.kind == "bool":
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"environment {name} = {raw!r}: expected true/false or 1/0")
    if key.kind in ("int", "float"):
        if key.nullable and text.lower() in ("", "null", "none"):
            return None
        try:
            number = float(text)
        except ValueError:
            raise ConfigError(f"environment {name} = {raw!r}: expected a number ({key.doc})") from None
        return int(number) if key.kind == "int" and number.is_integer() else number
    return text


def _resolve_path(value: str) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else (REPO_ROOT / path)


def load_config(path: Path | str | None = None, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> AppConfig:
    """Load config.yaml: the runtime block (with ``SCALP_<KEY>`` overrides) and promotion rules.

    Parameters
    ----------
    path : Path, optional
        Defaults to ``engine/config/config.yaml``; ``SCALP_CONFIG`` in `env` overrides it.
    env : mapping, optional
        Environment variables; defaults to ``os.environ``.
    overrides : mapping, optional
        Runtime keys a caller sets (a CLI flag): they win over the file and the environment and are
        validated like them.

    Raises
    ------
    ConfigError
        Unknown key (with "did you mean"), wrong type or out-of-range value, naming file and key;
        or a bad ``SCALP_<KEY>`` value, naming the variable.
    """
    env = os.environ if env is None else env
    path = Path(path or env.get(ENV_PREFIX + "CONFIG") or CONFIG_YAML)
    if path.is_dir():
        raise ConfigError(f"{_display(path)}: is a folder, expected the config.yaml file "
                          f"({'SCALP_CONFIG' if env.get(ENV_PREFIX + 'CONFIG') else 'the config path'})")
    doc = _read_yaml(path)
    file = _display(path)
    if doc is None:  # an empty file is a mistake (a save that went wrong), never "all defaults"
        raise ConfigError(f"{file}: the file is empty; expected the runtime and promotion blocks "
                          "(engine/config/config.yaml in the repo shows them)")
    runtime = doc.get("runtime") if isinstance(doc, dict) else None
    if isinstance(runtime, dict) or (isinstance(doc, dict) and runtime is None):
        runtime = dict(runtime or {})
        for key_name, key in schema.RUNTIME.keys.items():
            env_name = ENV_PREFIX + key_name.upper()
            if env_name in env:
                value = _env_value(env_name, env[env_name], key)
                schema.check_value(value, key, f"environment {env_name}")
                runtime[key_name] = value
        for key_name, value in (overrides or {}).items():
            if key_name not in schema.RUNTIME.keys:
                raise schema.unknown_key_error("overrides", "runtime", key_name, list(schema.RUNTIME.keys))
            schema.check_value(value, schema.RUNTIME.keys[key_name], f"override runtime.{key_name}")
            runtime[key_name] = value
        doc = {**doc, "runtime": runtime}
    checked = schema.check(doc, schema.CONFIG_YAML, file)
    rt = checked["runtime"]
    for key_name in ("data_dir", "reports_dir", "logs_dir", "public_dir", "strategies_file", "urls_dir", "metrics_dir"):
        rt[key_name] = _resolve_path(rt[key_name])
        folder = key_name != "strategies_file"
        if rt[key_name].exists() and rt[key_name].is_dir() != folder:
            via = f"environment {ENV_PREFIX}{key_name.upper()}" if ENV_PREFIX + key_name.upper() in env else f"{file} → runtime.{key_name}"
            raise ConfigError(f"{via} = {str(rt[key_name])!r}: is a {'file' if folder else 'folder'}, expected "
                              f"{'a folder' if folder else 'a file path'}")
    if rt["public_dir"].resolve() == REPO_ROOT:
        raise ConfigError(f"{file} → runtime.public_dir = {str(rt['public_dir'])!r}: expected a folder of its own, never the repo root")
    runtime_cfg = RuntimeConfig(**rt)
    promotion = {mode: PromotionRules(**rules) for mode, rules in checked["promotion"].items()}
    return AppConfig(runtime=runtime_cfg, promotion=promotion, path=path)


def load_runtime(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> RuntimeConfig:
    """Return only the runtime block of :func:`load_config`."""
    return load_config(path, env).runtime


def load_entries(path: Path | str | None = None) -> EntriesConfig:
    """Load entries_config.json: entry sets and their effective risk rules.

    Relations checked after the structure: each ``signal`` is registered, its ``params`` are
    parameters that signal knows, and the risk rules form a valid exit plan (TP allocations sum
    to 100 %).

    Raises
    ------
    ConfigError
        Naming the file, the key path, the value found and what was expected.
    """
    path = Path(path or ENTRIES_JSON)
    file = _display(path)
    checked = schema.check(_read_json(path), schema.ENTRIES_JSON, file)
    if not checked["entry_sets"]:
        raise ConfigError(f"{file} → entry_sets: empty; expected at least one entry set")
    if not any(spec["enabled"] for spec in checked["entry_sets"].values()):
        raise ConfigError(f"{file} → entry_sets: every entry set has enabled = false; expected at least one "
                          f"enabled ({', '.join(checked['entry_sets'])})")
    entry_sets: dict[str, EntrySet] = {}
    for name, spec in checked["entry_sets"].items():
        where = f"entry_sets.{name}"
        if spec["signal"] not in signals.SIGNALS:
            raise ConfigError(f"{file} → {where}.signal = {spec['signal']!r}: expected one of {', '.join(signals.SIGNALS)}")
        signals.validate_params(spec["signal"], spec["params"], where=f"{file} → {where}.params")
        risk = schema.check({**checked["risk"], **spec["risk"]}, schema.RISK, file, f"{where}.risk")
        entry_sets[name] = EntrySet(
            name=name,
            signal=spec["signal"],
            params=dict(spec["params"]),
            description=spec["description"] or "",
            enabled=spec["enabled"],
            exit_plan=ExitPlan.from_dict(risk, where=f"{file} → {where}.risk"),  # relations: ladder sums to 100
            costs=Costs(**{k: risk[k] for k in COST_KEYS}),
        )
    return EntriesConfig(entry_sets=entry_sets, path=path, raw=checked)


def load_backtest(path: Path | str | None = None, entries: EntriesConfig | None = None) -> BacktestConfig:
    """Load backtest_config.json: search mode, grids, optuna, walk-forward, constraints, costs.

    When `entries` is given, relations are checked too: every grid and optuna space names a known
    entry set and only that set's signal parameters, with values inside their ranges.

    Raises
    ------
    ConfigError
        Naming the file, the key path, the value found and what was expected.
    """
    path = Path(path or BACKTEST_JSON)
    file = _display(path)
    c = schema.check(_read_json(path), schema.BACKTEST_JSON, file)
    wf = c["walk_forward"]
    if (wf["train_bars"] is None) != (wf["test_bars"] is None):
        raise ConfigError(f"{file} → walk_forward: train_bars and test_bars go together; set both or neither")
    if entries is not None:
        for name, space in c["grid"].items():
            if name not in entries.entry_sets:
                raise schema.unknown_key_error(file, "grid", name, list(entries.entry_sets))
            signal = entries.entry_sets[name].signal
            for combo in expand_grid(space):
                signals.validate_params(signal, combo, where=f"{file} → grid.{name} {combo}")
        for name, space in c["optuna"]["space"].items():
            if name not in entries.entry_sets:
                raise schema.unknown_key_error(file, "optuna.space", name, list(entries.entry_sets))
            _check_space(file, f"optuna.space.{name}", entries.entry_sets[name].signal, space)
    costs = None
    if c["costs"] is not None:
        costs = Costs(**schema.check(c["costs"], schema.COSTS, file, "costs"))
    return BacktestConfig(
        mode=c["mode"],
        objective=c["objective"],
        initial_cash_quote=c["initial_cash_quote"],
        grid=c["grid"],
        optuna=OptunaConfig(**c["optuna"]),
        walk_forward=WalkForward(**wf),
        constraints=Constraints(**c["constraints"]),
        path=path,
        raw=c,
        costs=costs,
        workers=c["workers"],
        chance=Chance(**c["chance"]),
    )


def _check_space(file: str, where: str, signal: str, space: Mapping[str, Mapping[str, Any]]) -> None:
    """Relations of an optuna space: known parameters of `signal`, values inside their ranges."""
    known = {p.name: p for p in signals.get_signal(signal).params}
    for param, spec in space.items():
        if param not in known:
            raise schema.unknown_key_error(file, where, param, list(known))
        ps = known[param]
        if ps.kind is int and spec["type"] == "float":
            raise ConfigError(f"{file} → {where}.{param}.type = 'float': expected int or categorical ({ps.description})")
        values = spec["choices"] if spec["type"] == "categorical" else [spec["low"], spec["high"]]
        for v in values:
            if ps.kind is int and float(v) != int(v):
                raise ConfigError(f"{file} → {where}.{param} = {v!r}: expected whole numbers ({ps.description})")
            if not ps.low <= v <= ps.high:
                raise ConfigError(f"{file} → {where}.{param} = {v!r}: expected {ps.low:g} ≤ {param} ≤ {ps.high:g} "
                                  f"({ps.description})")


def load_settings(config: Path | str | None = None, entries: Path | str | None = None,
                  backtest: Path | str | None = None, *, env: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> Settings:
    """Load the three files a cycle runs on: config.yaml, entries_config.json, backtest_config.json.

    Parameters
    ----------
    config, entries, backtest : path, optional
        The files; by default ``$SCALP_CONFIG`` / ``$SCALP_ENTRIES_CONFIG`` /
        ``$SCALP_BACKTEST_CONFIG``, else ``engine/config/config.yaml``, ``entries_config.json`` and
        ``backtest_config.json`` at the repo root.
    env : mapping, optional
        Environment variables; defaults to ``os.environ``.
    overrides : mapping, optional
        Runtime keys a caller sets (see :func:`load_config`); kept by :meth:`Settings.reload`.

    Raises
    ------
    ConfigError
        The first problem of the first invalid file, naming file, key, value and expectation.
    """
    env = os.environ if env is None else env
    app = load_config(config, env, overrides)
    entries_cfg = load_entries(entries or env.get(ENV_PREFIX + "ENTRIES_CONFIG") or None)
    backtest_cfg = load_backtest(backtest or env.get(ENV_PREFIX + "BACKTEST_CONFIG") or None, entries=entries_cfg)
    return Settings(app=app, entries=entries_cfg, backtest=backtest_cfg, overrides=dict(overrides or {}))


def expand_grid(space: Mapping[str, list]) -> list[dict[str, Any]]:
    """Return every combination of a grid ``{param: [values]}`` in row-major order of the keys.

    ``{"fast": [5, 9], "slow": [21]}`` → ``[{"fast": 5, "slow": 21}, {"fast": 9, "slow": 21}]``.
    """
    combos: list[dict[str, Any]] = [{}]
    for name, values in space.items():
        combos = [{**c, name: v} for c in combos for v in values]
    return combos


def config_id(*parts: Any) -> str:
    """Return an 8-hex-digit id of the canonical JSON of `parts` (configs, dataclasses, dicts).

    Two runs with the same inputs get the same id, so any stored number traces back to them.
    """
    def default(o: Any) -> Any:
        if hasattr(o, "__dataclass_fields__"):
            return asdict(o)
        if isinstance(o, Path):
            return str(o)
        if isinstance(o, (set, frozenset)):
            return sorted(o)
        return str(o)

    text = json.dumps(parts, sort_keys=True, default=default, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]
