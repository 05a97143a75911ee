"""Execution: promoted strategy + last closed candle → intent → guards → order plan → payload →
executor → event log → paper fills → PnL. Imports ``strategy``, ``backtest`` (fill rules), ``data``
and ``exchange``; never ``research``.

The seed's trading-core names are exported lazily (PEP 562), so ``python -m
engine.execution.ws_payload_probe --help`` loads neither pandas nor numba.
"""
from importlib import import_module

_EXPORTS = {"Intent": "intents", "MomentumIntent": "intents", "MeanReversionIntent": "intents",
            "Decision": "guards", "Executor": "executors", "Metrics": "metrics"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"engine.execution.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'engine.execution' has no attribute {name!r}")
