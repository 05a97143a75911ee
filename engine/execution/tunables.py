"""Execution tunables (limits, defaults, switches) and secrets (API keys), kept apart.

Tunables live in ``engine/config/execution.env`` (``KEY=VALUE`` lines, the seed's ``.env_meanrev``
style; tracked by git, no secrets in it) and may be overridden by environment variables of the same
name. Secrets (API keys) live only in ``.env`` at the repo root (never committed) or the environment.
Both files are validated with the config errors' quality: file, line, key, value found, what was
expected, and a "did you mean" for unknown keys.

Defaults are declared once, in :class:`Tunables`.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from engine.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
TUNABLES_FILE = REPO_ROOT / "engine" / "config" / "execution.env"
SECRETS_FILE = REPO_ROOT / ".env"
#: Secret names SCALP reads (API keys per exchange, live and testnet).
SECRET_KEYS = tuple(f"{ex}_{kind}" for ex in ("KRAKEN", "BINANCE", "BITVAVO")
                    for kind in ("API_KEY", "API_SECRET", "TESTNET_API_KEY", "TESTNET_API_SECRET")) + (
    "BITVAVO_OPERATOR_ID",)


@dataclass(frozen=True)
class Tunables:
    """The execution knobs (seed: trading core §6.1, Kraken step 3). Units are in the names.

    Attributes
    ----------
    DRY_RUN : bool
        True (default): no order leaves; executors write shadow orders.
    ALLOW_LIVE : bool
        False (default) keeps ``validate: true`` on every payload; one of the live conditions.
    ENTRY_MAX_NOTIONAL : float
        Largest entry order, quote currency (default 10).
    ONE_POSITION_ONLY : bool
        At most one open position per pair (default true; checked against the position tracker).
    ABS_LIMIT_REQUIRED : bool
        Limit-type orders must carry an explicit absolute limit price (default true).
    MAX_NOTIONAL_PER_ASSET : float
        Open notional per base asset, quote currency (default 25).
    MAX_CONCURRENT_POSITIONS : int
        Open positions at once, all pairs (default 3).
    MAX_GLOBAL_EXPOSURE : float
        Open notional of all positions together, quote currency (default 50).
    DEFAULT_TIF : str
        ``time_in_force`` of entries: gtc, ioc, gtd or fok (default gtc).
    DEFAULT_STP : str
        Self-trade prevention: cancel_newest (default), cancel_oldest, cancel_both.
    DEADLINE_MS : int
        Payload deadline after sending, ms (500 … 60,000; default 5,000).
    KILL_SWITCH : bool
        True blocks every order (also: the kill-switch file exists). Default false.
    KILL_SWITCH_FILE : str
        Path of the kill-switch file (relative to the repo root); default ``var/KILL_SWITCH``.
    GOLIVE_MIN_DRYRUN_HOURS : float
        Dry-run events a strategy needs before live takes effect, hours (default 24).
    """

    DRY_RUN: bool = True
    ALLOW_LIVE: bool = False
    ENTRY_MAX_NOTIONAL: float = 10.0
    ONE_POSITION_ONLY: bool = True
    ABS_LIMIT_REQUIRED: bool = True
    MAX_NOTIONAL_PER_ASSET: float = 25.0
    MAX_CONCURRENT_POSITIONS: int = 3
    MAX_GLOBAL_EXPOSURE: float = 50.0
    DEFAULT_TIF: str = "gtc"
    DEFAULT_STP: str = "cancel_newest"
    DEADLINE_MS: int = 5000
    KILL_SWITCH: bool = False
    KILL_SWITCH_FILE: str = "var/KILL_SWITCH"
    GOLIVE_MIN_DRYRUN_HOURS: float = 24.0
    source: str = field(default="defaults", compare=False)

    def __post_init__(self) -> None:
        where = self.source
        checks = {
            "ENTRY_MAX_NOTIONAL": self.ENTRY_MAX_NOTIONAL > 0, "MAX_NOTIONAL_PER_ASSET": self.MAX_NOTIONAL_PER_ASSET > 0,
            "MAX_GLOBAL_EXPOSURE": self.MAX_GLOBAL_EXPOSURE > 0, "MAX_CONCURRENT_POSITIONS": self.MAX_CONCURRENT_POSITIONS >= 1,
            "GOLIVE_MIN_DRYRUN_HOURS": self.GOLIVE_MIN_DRYRUN_HOURS >= 0,
        }
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"{where} → {key} = {getattr(self, key)!r}: expected a number > 0"
                                  + (" (hours ≥ 0)" if key == "GOLIVE_MIN_DRYRUN_HOURS" else ""))
        if not 500 <= self.DEADLINE_MS <= 60_000:
            raise ConfigError(f"{where} → DEADLINE_MS = {self.DEADLINE_MS}: expected 500 … 60000 ms (Kraken's window)")
        if self.DEFAULT_TIF not in ("gtc", "ioc", "gtd", "fok"):
            raise ConfigError(f"{where} → DEFAULT_TIF = {self.DEFAULT_TIF!r}: expected one of gtc, ioc, gtd, fok")
        if self.DEFAULT_STP not in ("cancel_newest", "cancel_oldest", "cancel_both"):
            raise ConfigError(f"{where} → DEFAULT_STP = {self.DEFAULT_STP!r}: expected cancel_newest, cancel_oldest "
                              "or cancel_both")

    def kill_switch_path(self, root: Path = REPO_ROOT) -> Path:
        """Absolute path of the kill-switch file."""
        path = Path(os.path.expanduser(self.KILL_SWITCH_FILE))
        return path if path.is_absolute() else root / path

    def replace(self, **changes: Any) -> Tunables:
        """Return a copy with `changes` (validated)."""
        return dataclasses.replace(self, **changes)


_KEYS = {f.name: f for f in fields(Tunables) if f.name != "source"}


def _convert(key: str, raw: str, where: str) -> Any:
    kind = _KEYS[key].type
    text = raw.strip().strip('"').strip("'")
    if kind == "bool":
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where} {key} = {raw!r}: expected 1/0 or true/false")
    if kind in ("float", "int"):
        try:
            number = float(text)
        except ValueError:
            raise ConfigError(f"{where} {key} = {raw!r}: expected a number") from None
        if kind == "int":
            if not number.is_integer():
                raise ConfigError(f"{where} {key} = {raw!r}: expected a whole number")
            return int(number)
        return number
    return text


def read_env_file(path: Path) -> list[tuple[int, str, str]]:
    """Return ``(line, key, value)`` of a ``KEY=VALUE`` file (``#`` comments and blank lines skipped).

    Raises
    ------
    ConfigError
        For a line that is not ``KEY=VALUE`` (file and line named).
    """
    out = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("export "):
            text = text[len("export "):]
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path} line {n}: {line!r}: expected KEY=VALUE")
        out.append((n, key.strip(), value.strip()))
    return out


def load_tunables(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> Tunables:
    """Load the tunables file, then environment overrides of the same names.

    Raises
    ------
    ConfigError
        Unknown key (with "did you mean"), a value of the wrong type or out of range, naming the
        file and line (or the environment variable).
    """
    env = os.environ if env is None else env
    path = Path(path) if path is not None else TUNABLES_FILE
    values: dict[str, Any] = {}
    if path.exists():
        for n, key, raw in read_env_file(path):
            if key not in _KEYS:
                close = difflib.get_close_matches(key, list(_KEYS), n=1)
                hint = f' Did you mean "{close[0]}"?' if close else f" Expected one of {', '.join(_KEYS)}."
                raise ConfigError(f"{path} line {n}: unknown key {key!r}.{hint}")
            values[key] = _convert(key, raw, f"{path} line {n}:")
    for key in _KEYS:
        if key in env:
            values[key] = _convert(key, env[key], "environment")
    return Tunables(**values, source=str(path))


def load_secrets(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the API secrets from ``.env`` (if present) and the environment (which wins).

    Only the names of :data:`SECRET_KEYS` are kept; values are never logged.

    Raises
    ------
    ConfigError
        For a malformed line of the file.
    """
    env = os.environ if env is None else env
    path = Path(path) if path is not None else SECRETS_FILE
    out: dict[str, str] = {}
    if path.exists():
        out.update({k: v.strip().strip('"').strip("'") for _, k, v in read_env_file(path) if k in SECRET_KEYS})
    out.update({k: env[k] for k in SECRET_KEYS if env.get(k)})
    return out


def has_keys(secrets: Mapping[str, str], exchange: str, *, testnet: bool = False) -> bool:
    """True when both the API key and the secret of `exchange` are present (testnet ones if asked)."""
    prefix = f"{exchange.upper()}_{'TESTNET_' if testnet else ''}"
    return bool(secrets.get(prefix + "API_KEY")) and bool(secrets.get(prefix + "API_SECRET"))
