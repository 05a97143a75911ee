"""Strict reading of the JSON/YAML form of typed records (reports, promoted strategies).

Every file a stage writes has one producer and one reader: a frozen dataclass with ``to_json()``
and ``from_json()`` in the module that owns it (:mod:`engine.research.reports`,
:mod:`engine.strategy.promoted`). Their ``from_json`` walk the decoded document through
:class:`Fields`, which raises one error naming the file, the key path, the value found and what was
expected (STYLE.md §6)::

    DataError: reports/summary.json → rows[3].bars = 'x': expected an integer ≥ 0

Nothing here repairs a value: a reader either returns the typed record or raises.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import yaml

from engine.clock import parse_iso_ms
from engine.errors import DataError, EngineError

REPO_ROOT = Path(__file__).resolve().parents[1]
E = TypeVar("E", bound=Enum)


def display_path(path: str | Path) -> str:
    """Return `path` relative to the repository root when it lies inside it, else as given."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except (ValueError, OSError):
        return str(path)


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _read_text(path: Path, error: type[EngineError]) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{display_path(path)}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{display_path(path)}: cannot read ({getattr(e, 'strerror', None) or e})") from e


def read_json_document(path: Path, *, error: type[EngineError] = DataError) -> Any:
    """Return the decoded JSON of `path`.

    Raises
    ------
    DataError (or `error`)
        ``<file>: file not found``, ``<file>: cannot read (…)`` or ``<file> line L column C: not
        valid JSON (…)``.
    """
    text = _read_text(path, error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{display_path(path)} line {e.lineno} column {e.colno}: not valid JSON ({e.msg})") from e


#: libyaml's safe loader where PyYAML was built with it (6× faster on a strategies file), else PyYAML's.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml_document(path: Path, *, error: type[EngineError] = DataError) -> Any:
    """Return the decoded YAML of `path` (None for an empty file); errors as :func:`read_json_document`."""
    text = _read_text(path, error)
    try:
        return yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise error(f"{display_path(path)}{where}: not valid YAML ({getattr(e, 'problem', None) or e})") from e


class Fields:
    """A mapping inside a decoded document, with its location for messages.

    Parameters
    ----------
    value : Any
        The decoded value that must be a mapping.
    file : str
        The file's name as shown in messages (:func:`display_path`).
    path : str
        Key path of `value` inside the file (``"rows[3]"``); empty for the document itself.
    error : EngineError subclass
        What a problem raises: :class:`DataError` for reports, ``ConfigError`` for config files.

    Each accessor returns the typed value of one key or raises `error` with
    ``<file> → <path>.<key> = <value>: expected <what>``. ``optional=True`` returns `default` when
    the key is absent or null.
    """

    def __init__(self, value: Any, file: str, path: str = "", *, error: type[EngineError] = DataError):
        self.file, self.path, self.error = file, path, error
        if not isinstance(value, Mapping):
            where = f"{file} → {path}" if path else file
            raise error(f"{where}: expected a mapping, found {_type_name(value)}")
        self.data: Mapping[str, Any] = value

    # -- locations and failures --------------------------------------------------------------
    def where(self, key: str | None = None) -> str:
        """Return ``<file> → <path>.<key>`` (or ``<file> → <path>`` without a key)."""
        inner = ".".join(p for p in (self.path, key) if p)
        return f"{self.file} → {inner}" if inner else self.file

    def fail(self, key: str, value: Any, expected: str) -> NoReturn:
        """Raise the reader's error for `key` holding `value` where `expected` was wanted."""
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "…"
        raise self.error(f"{self.where(key)} = {shown}: expected {expected}")

    def _get(self, key: str, optional: bool) -> Any:
        if key not in self.data:
            if optional:
                return None
            raise self.error(f"{self.where()}: missing key {key!r}")
        return self.data[key]

    def has(self, key: str) -> bool:
        """Return True if `key` is present and not null."""
        return self.data.get(key) is not None

    # -- scalars ------------------------------------------------------------------------------
    def str(self, key: str, *, optional: bool = False, default: str | None = None,
            choices: tuple[str, ...] | None = None) -> Any:
        value = self._get(key, optional)
        if value is None and optional:
            return default
        if not isinstance(value, str) or (not value and not optional):
            self.fail(key, value, "text")
        if choices is not None and value not in choices:
            self.fail(key, value, f"one of {', '.join(choices)}")
        return value

    def int(self, key: str, *, optional: bool = False, default: int | None = None, minimum: int | None = 0) -> Any:
        value = self._get(key, optional)
        if value is None and optional:
            return default
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
            self.fail(key, value, "an integer" + (f" ≥ {minimum}" if minimum is not None else ""))
        return value

    def float(self, key: str, *, optional: bool = False, minimum: float | None = None) -> float:
        """Return a number; null (or an absent optional key) is NaN, the JSON form of undefined."""
        value = self._get(key, optional)
        if value is None:
            return math.nan
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(key, value, "a number or null")
        if minimum is not None and value < minimum:
            self.fail(key, value, f"a number ≥ {minimum:g}")
        return float(value)

    def bool(self, key: str, *, optional: bool = False, default: bool = False) -> bool:
        value = self._get(key, optional)
        if value is None and optional:
            return default
        if not isinstance(value, bool):
            self.fail(key, value, "true or false")
        return value

    def enum(self, key: str, kind: type[E], *, optional: bool = False, default: E | None = None) -> Any:
        value = self._get(key, optional)
        if value is None and optional:
            return default
        try:
            return kind(value)
        except ValueError:
            self.fail(key, value, f"one of {', '.join(str(m.value) for m in kind)}")

    def iso_ms(self, key: str, *, optional: bool = False) -> Any:
        """Return epoch ms of an ISO 8601 UTC time (``2021-05-04T00:00:00Z``)."""
        value = self._get(key, optional)
        if value is None and optional:
            return None
        try:
            return parse_iso_ms(value)
        except (TypeError, ValueError):
            self.fail(key, value, "an ISO 8601 UTC time like 2021-05-04T00:00:00Z")

    # -- containers ---------------------------------------------------------------------------
    def mapping(self, key: str, *, optional: bool = False) -> dict[str, Any]:
        value = self._get(key, optional)
        if value is None and optional:
            return {}
        if not isinstance(value, Mapping):
            self.fail(key, value, "a mapping")
        return dict(value)

    def fields(self, key: str) -> Fields:
        """Return the mapping at `key` as a nested :class:`Fields`."""
        return Fields(self._get(key, False), self.file, ".".join(p for p in (self.path, key) if p), error=self.error)

    def list(self, key: str, *, optional: bool = False) -> list[Any]:
        value = self._get(key, optional)
        if value is None and optional:
            return []
        if not isinstance(value, list):
            self.fail(key, value, "a list")
        return value

    def items(self, key: str, *, optional: bool = False) -> Iterator[Fields]:
        """Yield each element of the list at `key` as a :class:`Fields` (``rows[3]``)."""
        base = ".".join(p for p in (self.path, key) if p)
        for i, item in enumerate(self.list(key, optional=optional)):
            yield Fields(item, self.file, f"{base}[{i}]", error=self.error)

    def numbers(self, key: str, *, minimum: float | None = None) -> tuple[float, ...]:
        """Return a list of finite numbers as floats."""
        values = self.list(key)
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or (minimum is not None and v < minimum):
                self.fail(f"{key}[{i}]", v, "a number" + (f" ≥ {minimum:g}" if minimum is not None else ""))
        return tuple(float(v) for v in values)

    def ints(self, key: str) -> tuple[int, ...]:
        """Return a list of integers (epoch ms, counts)."""
        values = self.list(key)
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, int):
                self.fail(f"{key}[{i}]", v, "an integer")
        return tuple(values)

    def strs(self, key: str, *, optional: bool = False) -> tuple[str, ...]:
        """Return a list of non-empty strings."""
        values = self.list(key, optional=optional)
        for i, v in enumerate(values):
            if not isinstance(v, str) or not v:
                self.fail(f"{key}[{i}]", v, "text")
        return tuple(values)

    def metrics(self, key: str, *, optional: bool = False) -> dict[str, float]:
        """Return a metrics mapping (:data:`engine.backtest.metrics.METRIC_KEYS` and others):
        every value a number, null read as NaN (undefined); ``n_trades`` an integer."""
        inner = Fields(self.mapping(key, optional=optional), self.file,
                       ".".join(p for p in (self.path, key) if p), error=self.error)
        out: dict[str, float] = {}
        for name in inner.data:
            out[str(name)] = inner.int(name) if name == "n_trades" else inner.float(name)
        return out


@dataclass(frozen=True)
class Period:
    """First and last candle (open times, epoch ms UTC) of the data a result was computed on."""

    first_ms: int
    last_ms: int

    def to_json(self) -> dict[str, int]:
        """Return ``{"first_ms", "last_ms"}``."""
        return {"first_ms": self.first_ms, "last_ms": self.last_ms}

    @classmethod
    def from_fields(cls, f: Fields) -> Period:
        """Read ``{"first_ms", "last_ms"}``; the reader's error if either is not an integer."""
        return cls(f.int("first_ms", minimum=None), f.int("last_ms", minimum=None))
