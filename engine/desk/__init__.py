"""The desk, built on :mod:`engine.execution`: end-to-end dry-run simulator, testnet limits, usage
store, profiles, orchestrator and Prometheus textfile metrics.

The end-to-end dry-run simulator: ``e2e`` and ``spread`` (CLI ``jobs/e2e_sim_dryrun.py``).

The testnet desk (CLI ``jobs/orchestrate_testnet_runs.py``): ``limits`` (check_run_allowed, budget),
``usage`` (UsageStore), ``profiles``, ``venue`` (where orders go; SandboxExecutor), ``session``
(plan, replay, budget cap), ``live`` (real time, order mirror), ``report`` (markdown report,
testnet_budget.json); its config is :mod:`engine.config.desk` (``engine/config/desk.yaml``).
Names are exported lazily (PEP 562).
"""
from importlib import import_module

_EXPORTS = {"LimitsController": "limits", "LimitCheck": "limits", "Budget": "limits", "check_limits": "limits",
            "UsageStore": "usage", "DayUsage": "usage", "Venue": "venue", "choose_venue": "venue",
            "SandboxExecutor": "venue", "SessionPlan": "session", "SessionResult": "session",
            "resolve_profile": "profiles", "get_profile": "profiles"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"engine.desk.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'engine.desk' has no attribute {name!r}")
