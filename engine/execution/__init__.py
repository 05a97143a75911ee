"""Execution (filled by the execution issue): promoted strategy + last closed candle → intent →
guards → order plan → payload → executor → event log → paper fills → PnL.

Imports ``strategy``, ``backtest`` (fill rules) and ``exchange``; never ``research``.
"""
