"""Exceptions raised by the engine.

Every error a user can cause (a bad config value, a malformed CSV row, a bad CLI flag, an order
parameter a guard refuses) is an :class:`EngineError`. CLIs print its message as one line on
stderr and exit with status 2; anything else is a bug and exits 1 with a traceback.
"""
from __future__ import annotations


class EngineError(Exception):
    """Base class. CLIs print one line and exit 2."""


class ConfigError(EngineError):
    """A config file is invalid. Fix it and re-run."""


class DataError(EngineError):
    """Candles are missing, malformed or misaligned."""


class LookaheadError(DataError):
    """A computation used information from a later bar."""


class GuardError(EngineError):
    """A guard refused an intent; the reason is in the message."""


class ExchangeError(EngineError):
    """The exchange refused or failed a request."""


class TemporaryExchangeError(ExchangeError):
    """Likely to clear up on its own; retry with backoff."""


class ExchangeUnreachableError(TemporaryExchangeError):
    """The exchange cannot be reached at all (no network, DNS failure, timeout)."""


class PayloadError(EngineError):
    """An order payload breaks a rule of the exchange (or of SCALP); the message names the rule."""


class KillSwitchError(GuardError):
    """The kill switch is on: no order leaves. Clear the switch file / flag to trade again."""
