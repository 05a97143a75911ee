"""Schemas of SCALP's config files: every key's type, range or choices, default and meaning.

A schema is a mapping ``key -> Key``; a nested block is a ``Block``. :func:`check` walks a loaded
document against it in the first validation pass (structure: types, ranges, required keys, unknown
keys with a "did you mean"); relations between keys are checked by the loaders afterwards.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields
from typing import Any, Callable

from engine.errors import ConfigError
from engine.markets import TIMEFRAME_MS
from engine.strategy.exits import Costs, ExitPlan, format_tp_ladder
from engine.types import DATA_SOURCE_SETTINGS as DATA_SOURCES
from engine.types import GAP_POLICIES, RISK_MODES, SAMPLE_SETS


@dataclass(frozen=True)
class Key:
    """One key of a config file.

    kind is one of ``"int" "float" "bool" "str" "path" "timeframes" "tp_ladder" "dict" "list"``;
    ``nullable`` admits ``null``; ``lo``/``hi`` bound numbers (inclusive); ``choices`` closes a str.
    """

    kind: str
    default: Any
    doc: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] | None = None
    nullable: bool = False
    required: bool = False


@dataclass(frozen=True)
class Block:
    """A nested mapping with a fixed schema (``keys``), or free keys of one schema (``each``)."""

    keys: dict[str, Any] = field(default_factory=dict)
    doc: str = ""
    each: Any = None  # schema applied to every value when the keys are free (e.g. entry set names)
    required: bool = False


def _where(file: str, path: str) -> str:
    if not path or path.startswith("["):  # a list index right after the name: SCALP_TF_LIST[1]
        return f"{file}{path}"
    return f"{file} → {path}"


def _fail(file: str, path: str, found: Any, expected: str) -> ConfigError:
    return ConfigError(f"{_where(file, path)} = {found!r}: expected {expected}")


def _check_key(value: Any, key: Key, file: str, path: str) -> Any:
    if value is None:
        if key.nullable:
            return None
        raise _fail(file, path, value, f"a value ({key.doc})")
    kind = key.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise _fail(file, path, value, "true or false")
        return value
    if kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(file, path, value, f"a number ({key.doc})")
        if kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise _fail(file, path, value, "a whole number")
            value = int(value)
        else:
            value = float(value)
            if value != value or value in (float("inf"), float("-inf")):
                raise _fail(file, path, value, "a finite number")
        if key.lo is not None and value < key.lo:
            raise _fail(file, path, value, f"a number ≥ {key.lo:g}")
        if key.hi is not None and value > key.hi:
            raise _fail(file, path, value, f"a number ≤ {key.hi:g}")
        return value
    if kind in ("str", "path"):
        if not isinstance(value, str) or not value.strip():
            raise _fail(file, path, value, f"a non-empty string ({key.doc})")
        if key.choices and value not in key.choices:
            raise _fail(file, path, value, "one of " + ", ".join(key.choices))
        return value
    if kind == "timeframes":
        if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
            raise _fail(file, path, value, "a non-empty list of timeframes like [\"1m\", \"5m\"]")
        for i, tf in enumerate(value):
            if tf not in TIMEFRAME_MS:
                raise _fail(file, f"{path}[{i}]", tf, "one of " + " ".join(TIMEFRAME_MS))
        if len(set(value)) != len(value):
            raise _fail(file, path, value, "each timeframe once")
        return tuple(value)
    if kind == "dict":
        if not isinstance(value, dict):
            raise _fail(file, path, value, "a mapping")
        return value
    if kind == "list":
        if not isinstance(value, list):
            raise _fail(file, path, value, "a list")
        return value
    raise AssertionError(f"unknown schema kind {kind}")  # a bug in the schema, not user input


def check_value(value: Any, key: Key, where: str) -> Any:
    """Check one value against `key` outside a file (an environment variable, a CLI override);
    messages read ``where = value: expected …`` (``environment SCALP_TOPN = 0: expected …``)."""
    return _check_key(value, key, where, "")


def unknown_key_error(file: str, path: str, key: str, allowed: list[str]) -> ConfigError:
    """Return the ConfigError for an unknown key, with a "did you mean" when one is close."""
    hint = difflib.get_close_matches(key, allowed, n=1)
    suggestion = f' Did you mean "{hint[0]}"?' if hint else f" Known keys: {', '.join(allowed)}."
    return ConfigError(f'{_where(file, path)}: unknown key "{key}".{suggestion}')


def check(doc: Any, schema: Block, file: str, path: str = "") -> dict[str, Any]:
    """Validate `doc` against `schema` and return it with defaults filled in.

    Parameters
    ----------
    doc : Any
        The loaded document (or a sub-mapping of it); ``None`` means empty.
    schema : Block
        The expected structure.
    file, path : str
        Where `doc` came from, for messages (``"engine/config/config.yaml"``, ``"runtime"``).

    Returns
    -------
    dict
        A new mapping with every schema key present (defaults for missing optional keys).

    Raises
    ------
    ConfigError
        Naming the file, the key path, the value found and what was expected.
    """
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise _fail(file, path or "(top level)", doc, "a mapping of keys to values")
    out: dict[str, Any] = {}
    if schema.each is not None:
        for name, value in doc.items():
            sub = f"{path}.{name}" if path else str(name)
            out[name] = _check_any(value, schema.each, file, sub)
        return out
    for name in doc:
        if name not in schema.keys:
            raise unknown_key_error(file, path, str(name), list(schema.keys))
    for name, sub_schema in schema.keys.items():
        sub = f"{path}.{name}" if path else name
        if name in doc:
            out[name] = _check_any(doc[name], sub_schema, file, sub)
        elif getattr(sub_schema, "required", False):
            raise ConfigError(f"{_where(file, sub)}: missing; expected {getattr(sub_schema, 'doc', '')}")
        elif isinstance(sub_schema, Block):
            out[name] = check({}, sub_schema, file, sub)
        else:
            out[name] = sub_schema.default
    return out


def _check_any(value: Any, schema: Any, file: str, path: str) -> Any:
    if isinstance(schema, Block):
        return check(value, schema, file, path)
    if isinstance(schema, Key):
        return _check_key(value, schema, file, path)
    if callable(schema):
        return schema(value, file, path)
    raise AssertionError(f"bad schema at {path}")


Checker = Callable[[Any, str, str], Any]

# ---------------------------------------------------------------------------------------------
# engine/config/config.yaml
# ---------------------------------------------------------------------------------------------

RUNTIME = Block(
    doc="where data lives, what is watched, how the loop runs",
    keys={
        "data_dir": Key("path", "notebooks/scalp_data/data", "folder holding ohlcv/<PAIR>/<TF>.csv; relative to the repo root"),
        "reports_dir": Key("path", "notebooks/scalp_data/reports", "folder for summary.json, strategies.yml.next, status.json"),
        "logs_dir": Key("path", "notebooks/scalp_data/logs", "folder for maintainer.log"),
        "public_dir": Key("path", "notebooks/scalp_data/public", "the only folder the HTTP server serves (dashboard.html)"),
        "strategies_file": Key("path", "engine/config/strategies.yml", "the promoted strategies (written by promotion)"),
        "urls_dir": Key("path", ".", "folder that receives dashboard_url.txt and ngrok_url.txt (the repo root)"),
        "metrics_dir": Key("path", "var/metrics.d", "Prometheus textfiles (scalp.prom each cycle, e2e_sim.prom) for a node_exporter textfile collector"),
        "tf_list": Key("timeframes", ("1m", "5m", "15m"), "timeframes to backfill and backtest"),
        "age_mult": Key("float", 5.0, "a (pair, TF) is OLD when its last candle is older than age_mult × TF", lo=1.0, hi=1000.0),
        "topN": Key("int", 10, "number of pairs on the watchlist", lo=1, hi=500),
        "watchlist_rank": Key("str", "volume", "rank the watchlist by 24 h quote volume or by lowest bid/ask spread", choices=("volume", "spread")),
        "backfill_limit": Key("int", 5000, "most recent candles kept per backfill (count)", lo=100, hi=1_000_000),
        "risk_mode": Key("str", "aggressive", "promotion rule set", choices=RISK_MODES),
        "exec_enabled": Key("bool", False, "allow the execution flow to send orders (also needs ALLOW_LIVE=1)"),
        "paper_trading": Key("bool", True, "each cycle, paper-trade the promoted strategies on the newest candles (dry-run, no order leaves)"),
        "html_host": Key("str", "127.0.0.1", "address the dashboard server binds (0.0.0.0 exposes it on the network)"),
        "html_port": Key("int", 8888, "TCP port of the dashboard server", lo=1, hi=65535),
        "exchange": Key("str", "binance", "ccxt exchange id"),
        "quote": Key("str", "USDT", "quote currency of the watched pairs"),
        "data_source": Key("str", "auto", "auto: exchange, else the bundled sample; exchange: never the sample; sample: offline only; local: the candle files already in data_dir", choices=DATA_SOURCES),
        "sample": Key("str", "month", "bundled sample set: month (1m, April 2021) or long (1h, May 2021 to March 2026)", choices=SAMPLE_SETS),
        "retention_days": Key("float", 7.0, "days moved-aside (corrupt or replaced) candle files are kept before they are deleted", lo=0.0, hi=3650.0),
        "loop_interval_s": Key("int", 60, "seconds between maintainer cycles", lo=1, hi=86_400),
        "strategy_ttl_hours": Key("float", 24.0, "hours a promoted strategy stays valid", lo=0.01, hi=24 * 365),
        "gap_policy": Key("str", "skip", "how backtests treat missing candles: skip (leave the gap) or ffill (flat zero-volume candles)", choices=GAP_POLICIES),
        "exchange_timeout_ms": Key("int", 10_000, "ccxt request timeout in milliseconds", lo=100, hi=120_000),
    },
)

def _promotion_rules(pf: float, dd: float, sharpe: float, trades: int, win: float, dsr: float, p_random: float,
                     pbo: float, require_holdout: bool) -> Block:
    return Block(
        doc="thresholds a candidate's out-of-sample evidence must meet",
        keys={
            "min_profit_factor": Key("float", pf, "gross profit / gross loss, at least", lo=0.0),
            "max_drawdown_pct": Key("float", dd, "max drawdown in %, at most", lo=0.0, hi=100.0),
            "min_sharpe": Key("float", sharpe, "annualised Sharpe (365 d), at least"),
            "min_trades": Key("int", trades, "out-of-sample round trips, at least", lo=0),
            "min_win_rate_pct": Key("float", win, "winning trades in %, at least", lo=0.0, hi=100.0),
            "min_deflated_sharpe": Key("float", dsr, "deflated Sharpe ratio (probability, 0..1) given every configuration that competed for the slot, at least", lo=0.0, hi=1.0),
            "max_p_value_vs_random": Key("float", p_random, "share of random-entry twins doing at least as well, at most", lo=0.0, hi=1.0),
            "max_pbo": Key("float", pbo, "probability of backtest overfitting of the pair × timeframe's search, at most", lo=0.0, hi=1.0),
            "require_holdout": Key("bool", require_holdout, "the deployed parameters must also pass on the untouched final window (walk_forward.final_holdout_bars)"),
        },
    )


PROMOTION = Block(
    doc="promotion rules per risk_mode",
    keys={
        "conservative": _promotion_rules(1.5, 10.0, 1.5, 30, 50.0, 0.95, 0.01, 0.2, True),
        "balanced": _promotion_rules(1.2, 20.0, 0.5, 15, 40.0, 0.8, 0.05, 0.35, False),
        "aggressive": _promotion_rules(1.0, 35.0, 0.0, 5, 0.0, 0.5, 0.10, 1.0, False),
    },
)

CONFIG_YAML = Block(
    keys={
        "runtime": RUNTIME,
        "promotion": PROMOTION,
    }
)

# ---------------------------------------------------------------------------------------------
# entries_config.json
# ---------------------------------------------------------------------------------------------

def _risk_block() -> Block:
    """The risk block, derived from the one declaration of the exit rules and costs
    (:class:`~engine.strategy.exits.ExitPlan` and :class:`~engine.strategy.exits.Costs` fields)."""
    keys: dict[str, Key] = {}
    for cls in (ExitPlan, Costs):
        for f in fields(cls):
            meta = f.metadata
            if not meta.get("in_config", True):
                continue
            default = format_tp_ladder(f.default) if f.name == "tp_ladder" else f.default
            keys[meta.get("config_key") or f.name] = Key(meta["kind"], default, meta["doc"], lo=meta["lo"],
                                                         hi=meta["hi"], nullable=meta["nullable"])
    return Block(doc="exit rules and trading costs", keys=keys)


RISK = _risk_block()

ENTRY_SET = Block(
    doc="one entry set: a registered signal and its default parameters",
    keys={
        "signal": Key("str", None, "name of a registered signal (engine/strategy/signals.py)", required=True),
        "params": Key("dict", {}, "default parameters of the signal"),
        "description": Key("str", "", "one line for the dashboard", nullable=True),
        "enabled": Key("bool", True, "false skips the entry set in searches"),
        "risk": Key("dict", {}, "overrides of the top-level risk block for this entry set"),
    },
)

ENTRIES_JSON = Block(
    keys={
        "entry_sets": Block(each=ENTRY_SET, doc="entry sets by name", required=True),
        "risk": RISK,
    }
)

# ---------------------------------------------------------------------------------------------
# backtest_config.json
# ---------------------------------------------------------------------------------------------

WALK_FORWARD = Block(
    doc="walk-forward folds: search in-sample, score on the following out-of-sample window",
    keys={
        "n_splits": Key("int", 3, "number of folds (test windows)", lo=1, hi=100),
        "scheme": Key("str", "rolling", "rolling: fixed-length train window; anchored: train from the first bar", choices=("rolling", "anchored")),
        "train_ratio": Key("float", 0.7, "train / (train + test) bars of one fold when train_bars/test_bars are unset", lo=0.05, hi=0.95),
        "train_bars": Key("int", None, "bars per train window (overrides train_ratio)", lo=10, nullable=True),
        "test_bars": Key("int", None, "bars per test window (overrides train_ratio)", lo=10, nullable=True),
        "embargo_bars": Key("int", 0, "bars left out between a train window and its test window", lo=0),
        "final_holdout_bars": Key("int", 0, "most recent bars never searched (0 = none); promotion can require a pass there", lo=0),
    },
)

OPTUNA = Block(
    doc="optuna search (mode: optuna)",
    keys={
        "n_trials": Key("int", 50, "trials per study (one study per pair × timeframe × entry set × fold)", lo=1, hi=1_000_000),
        "batch_size": Key("int", 10, "trials proposed together from the trials finished before them (up to this many run in parallel per study); part of the seed: changing it changes the trials", lo=1, hi=10_000),
        "timeout_s": Key("float", None, "stop proposing new trials of a study after this many seconds (results then depend on speed)", lo=0.1, nullable=True),
        "sampler": Key("str", "tpe", "sampler: tpe (Tree-structured Parzen Estimator) or random", choices=("tpe", "random")),
        "seed": Key("int", 42, "seed; each study's seed derives from it and the study's key (pair, timeframe, entry set, fold)", lo=0),
        "pruner": Key("str", "none", "pruner (none or median); a trial is one batched evaluation without intermediate values, so median prunes nothing yet", choices=("none", "median")),
        "space": Block(each=lambda v, f, p: _optuna_space(v, f, p),
                       doc="per entry set: {param: {type: int|float|categorical, low, high, log, step, choices}}"),
    },
)

CONSTRAINTS = Block(
    doc="a parameter set is only chosen in-sample when it meets these",
    keys={
        "min_trades": Key("int", 3, "in-sample round trips, at least", lo=0),
        "max_drawdown_pct": Key("float", 100.0, "in-sample max drawdown in %, at most", lo=0.0, hi=100.0),
    },
)

OBJECTIVES = ("sharpe", "total_return_pct", "profit_factor", "expectancy_pct")

BACKTEST_JSON = Block(
    keys={
        "mode": Key("str", "grid", "search mode", choices=("grid", "optuna")),
        "objective": Key("str", "sharpe", "in-sample metric to maximise", choices=OBJECTIVES),
        "initial_cash_quote": Key("float", 10_000.0, "starting equity of each backtest in quote currency", lo=1.0),
        "grid": Block(each=lambda v, f, p: _grid_space(v, f, p), doc="per entry set: {param: [values]}"),
        "optuna": OPTUNA,
        "walk_forward": WALK_FORWARD,
        "constraints": CONSTRAINTS,
        "costs": Key("dict", None, "fee_bps and slippage_bps for the search, overriding every entry set's costs; null keeps entries_config.json's", nullable=True),
        "chance": Block(doc="the random-entry baseline of every row", keys={
            "n_twins": Key("int", 200, "random-entry twins per row (same exits, costs and number of entries)", lo=10, hi=100_000),
            "seed": Key("int", 7, "seed of the twins' entry bars (with the row's pair, timeframe and entry set)", lo=0),
        }),
        "workers": Key("int", None, "processes for the (pair, timeframe) jobs of a research run; null = measured default (engine.research.pipeline.default_workers)", lo=1, hi=512, nullable=True),
    }
)


def _grid_space(value: Any, file: str, path: str) -> dict[str, list]:
    if not isinstance(value, dict) or not value:
        raise _fail(file, path, value, "a mapping {param: [values, ...]}")
    for name, values in value.items():
        if not isinstance(values, list) or not values:
            raise _fail(file, f"{path}.{name}", values, "a non-empty list of values")
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise _fail(file, f"{path}.{name}[{i}]", v, "a number")
    return value


COSTS = Block(
    doc="trading costs of the search (override the entry sets' fee_bps/slippage_bps)",
    keys={
        "fee_bps": Key("float", None, "fee per side in basis points of notional", lo=0.0, hi=1000.0, required=True),
        "slippage_bps": Key("float", None, "slippage per fill in basis points of price", lo=0.0, hi=1000.0, required=True),
    },
)

PARAM_TYPES = ("int", "float", "categorical")
_SPACE_KEYS = ("type", "low", "high", "log", "step", "choices")


def _number(value: Any, file: str, path: str, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
        raise _fail(file, path, value, "a whole number" if integer else "a finite number")
    if integer and isinstance(value, float) and not value.is_integer():
        raise _fail(file, path, value, "a whole number")
    return int(value) if integer else float(value)


def _optuna_param(value: Any, file: str, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(file, path, value, '{"type": "int"|"float"|"categorical", ...}')
    for key in value:
        if key not in _SPACE_KEYS:
            raise unknown_key_error(file, path, str(key), list(_SPACE_KEYS))
    kind = value.get("type")
    if kind not in PARAM_TYPES:
        raise _fail(file, f"{path}.type", kind, "one of " + ", ".join(PARAM_TYPES))
    if kind == "categorical":
        extra = [k for k in ("low", "high", "log", "step") if k in value]
        if extra:
            raise ConfigError(f'{_where(file, path)}: "{extra[0]}" does not apply to type categorical; give "choices"')
        choices = value.get("choices")
        if not isinstance(choices, list) or not choices:
            raise _fail(file, f"{path}.choices", choices, "a non-empty list of numbers")
        for i, c in enumerate(choices):
            _number(c, file, f"{path}.choices[{i}]")
        if len(set(choices)) != len(choices):
            raise _fail(file, f"{path}.choices", choices, "each value once")
        return {"type": kind, "choices": list(choices)}
    if "choices" in value:
        raise ConfigError(f'{_where(file, path)}: "choices" applies to type categorical only; give "low" and "high"')
    integer = kind == "int"
    for key in ("low", "high"):
        if key not in value:
            raise ConfigError(f"{_where(file, f'{path}.{key}')}: missing; expected the {'lowest' if key == 'low' else 'highest'} value (inclusive)")
    low = _number(value["low"], file, f"{path}.low", integer=integer)
    high = _number(value["high"], file, f"{path}.high", integer=integer)
    if not low < high:
        raise _fail(file, f"{path}.high", value["high"], f"a number above low = {value['low']!r}")
    log = value.get("log", False)
    if not isinstance(log, bool):
        raise _fail(file, f"{path}.log", log, "true or false")
    step = value.get("step")
    if step is not None:
        step = _number(step, file, f"{path}.step", integer=integer)
        if not step > 0:
            raise _fail(file, f"{path}.step", value["step"], "a number > 0")
        if step > high - low:
            raise _fail(file, f"{path}.step", value["step"], f"a step ≤ high - low = {high - low:g}")
    if log:
        if low <= 0:
            raise _fail(file, f"{path}.low", value["low"], "a number > 0 (log scale)")
        if step is not None and not (integer and step == 1):
            raise ConfigError(f'{_where(file, path)}: "step" and "log" cannot be combined (optuna samples a log scale without steps)')
    out: dict[str, Any] = {"type": kind, "low": low, "high": high, "log": log}
    if step is not None:
        out["step"] = step
    return out


def _optuna_space(value: Any, file: str, path: str) -> dict[str, dict]:
    if not isinstance(value, dict) or not value:
        raise _fail(file, path, value, "a mapping {param: {type, low, high, ...}}")
    return {name: _optuna_param(spec, file, f"{path}.{name}") for name, spec in value.items()}
