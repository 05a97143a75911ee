"""The go-live gate, the kill-switch test and the step records (seed 001 §6.1–6.3).

Live orders take effect for a strategy only when :func:`golive_check` passes: at least
``GOLIVE_MIN_DRYRUN_HOURS`` of dry-run events of that strategy in the event log (first dry-run event
to now), and a recorded, passed kill-switch test (:func:`killswitch_test`, run by
``python jobs/execute.py killswitch-test``). Every other live condition (``ALLOW_LIVE=1``,
``exec_enabled``, keys, kill switch off) is :func:`engine.execution.guards.live_blockers`.

Each step leaves a small markdown record under ``<reports_dir>/steps/``, as the seed's step notes:
``STEP-6.1-guards.md`` (the limits in force), ``STEP-6.2-orders.md`` (the orders of the last paper
run), ``STEP-6.3-golive.md`` (the gate per strategy) and ``STEP-killswitch-test.md`` (with its
machine-readable twin ``killswitch-test.json``, which the gate reads).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from engine.clock import iso_ms
from engine.errors import GuardError
from engine.execution.events import Event, EventLog, read_events
from engine.execution.executors import DryRunExecutor
from engine.execution.guards import decide, kill_switch_reason, OrderRequest
from engine.execution.order_plan import OrderLeg
from engine.execution.tunables import REPO_ROOT, Tunables
from engine.fileio import atomic_write_text

STEPS_DIR = "steps"
KILLSWITCH_JSON = "killswitch-test.json"


def steps_dir(reports_dir: Path | str) -> Path:
    return Path(reports_dir) / STEPS_DIR


def write_step(reports_dir: Path | str, filename: str, title: str, items: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> Path:
    """Write one step record: ``# STEP … — title`` and one ``- key: value`` line per item; return its path."""
    pairs = items.items() if isinstance(items, Mapping) else items
    text = f"# {title}\n" + "".join(f"- {k}: {v}\n" for k, v in pairs)
    return atomic_write_text(steps_dir(reports_dir) / filename, text, lock=False)


def guards_record(reports_dir: Path | str, tunables: Tunables, now_ms: int) -> Path:
    """``STEP-6.1-guards.md``: date, dry_run, allow_live and every limit in force."""
    return write_step(reports_dir, "STEP-6.1-guards.md", "STEP 6.1 — Guards", {
        "date": iso_ms(now_ms), "source": tunables.source, "dry_run": str(tunables.DRY_RUN).lower(),
        "allow_live": str(tunables.ALLOW_LIVE).lower(),
        "limits": (f"ENTRY_MAX_NOTIONAL={tunables.ENTRY_MAX_NOTIONAL:g}, MAX_NOTIONAL_PER_ASSET="
                   f"{tunables.MAX_NOTIONAL_PER_ASSET:g}, MAX_CONCURRENT_POSITIONS={tunables.MAX_CONCURRENT_POSITIONS}, "
                   f"MAX_GLOBAL_EXPOSURE={tunables.MAX_GLOBAL_EXPOSURE:g} (quote)"),
        "switches": (f"ONE_POSITION_ONLY={int(tunables.ONE_POSITION_ONLY)}, ABS_LIMIT_REQUIRED="
                     f"{int(tunables.ABS_LIMIT_REQUIRED)}, KILL_SWITCH_FILE={tunables.KILL_SWITCH_FILE}"),
    })


@dataclass(frozen=True)
class KillSwitchTest:
    """The result of one kill-switch test.

    Attributes
    ----------
    at_ms : int
        When it ran (wall clock, epoch ms).
    switch_file : str
        The file that was set and cleared.
    blocked : bool
        The guards blocked an order created after the switch was set, naming the switch.
    executor_refused : bool
        The executor refused to send that order.
    cleared : bool
        After clearing, the same order was allowed again (False when the switch was already set
        before the test: it is left as it was).
    passed : bool
        All three.
    reasons : list of str
        The decision's reasons while the switch was set.
    """

    at_ms: int
    switch_file: str
    blocked: bool
    executor_refused: bool
    cleared: bool
    passed: bool
    reasons: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "reasons": list(self.reasons), "at": iso_ms(self.at_ms)}


def killswitch_test(tunables: Tunables, *, reports_dir: Path | str, now_ms: int, data_dir: Path | str | None = None,
                    env: Mapping[str, str] | None = None, root: Path = REPO_ROOT) -> KillSwitchTest:
    """Set the kill-switch file, attempt an order, verify the block, clear the switch, record the result.

    The order is a tiny limit entry within every limit, so only the switch can block it. It goes
    through :func:`~engine.execution.guards.decide` and the dry-run executor — nothing is sent.
    Writes ``steps/killswitch-test.json`` and ``steps/STEP-killswitch-test.md`` (and a
    ``killswitch`` event when `data_dir` is given).
    """
    path = tunables.kill_switch_path(root)
    env = dict(os.environ if env is None else env)
    env.pop("KILL_SWITCH", None)  # the test is of the file; the flag would hide it
    t = tunables.replace(KILL_SWITCH=False)
    already = path.exists()
    if not already:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"kill switch set by the kill-switch test at {iso_ms(now_ms)}\n")
    order = OrderRequest("BTC/USDT", "buy", "entry", "limit", 1e-6, 1.0, limit_price=1.0)
    try:
        decision = decide(order, tunables=t, positions={}, env=env, root=root)
        blocked = (not decision.allowed) and any(r.startswith("kill switch") for r in decision.reasons)
        try:
            DryRunExecutor().place(OrderLeg("entry", "buy", "limit", 1e-6, 1.0), symbol="BTC/USDT", strategy="killswitch-test",
                                   timeframe="", decision=decision, ts_ms=now_ms)
            refused = False
        except GuardError:
            refused = True
    finally:
        if not already:
            path.unlink(missing_ok=True)
    cleared = (not already) and kill_switch_reason(t, env, root) is None and decide(order, tunables=t, positions={},
                                                                                    env=env, root=root).allowed
    result = KillSwitchTest(now_ms, str(path), blocked, refused, cleared, blocked and refused and cleared,
                            tuple(decision.reasons))
    atomic_write_text(steps_dir(reports_dir) / KILLSWITCH_JSON, json.dumps(result.to_json(), indent=1), lock=False)
    write_step(reports_dir, "STEP-killswitch-test.md", "STEP 6.3 — Kill-switch test", {
        "date": iso_ms(now_ms), "switch": str(path), "order after the switch was set": "blocked" if blocked else "NOT blocked",
        "executor": "refused" if refused else "DID NOT refuse", "cleared": "yes" if cleared else
        ("no: the switch was already set before the test, left set" if already else "NO"),
        "result": "passed" if result.passed else "FAILED"})
    if data_dir is not None:
        EventLog(data_dir).append(Event(now_ms, "killswitch", "", "", "", "dry-run", result.to_json()))
    return result


def last_killswitch_test(reports_dir: Path | str) -> KillSwitchTest | None:
    """The recorded kill-switch test, or None when there is none (or it cannot be read)."""
    path = steps_dir(reports_dir) / KILLSWITCH_JSON
    try:
        d = json.loads(path.read_text())
        return KillSwitchTest(int(d["at_ms"]), str(d["switch_file"]), bool(d["blocked"]), bool(d["executor_refused"]),
                              bool(d["cleared"]), bool(d["passed"]), tuple(d.get("reasons", ())))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class GoLiveCheck:
    """The go-live gate for one strategy: ``ok`` and, when not, every reason."""

    strategy: str
    ok: bool
    reasons: tuple[str, ...]
    dryrun_hours: float
    killswitch_tested_at_ms: int | None

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def golive_check(strategy: str, *, data_dir: Path | str, reports_dir: Path | str, tunables: Tunables,
                 now_ms: int) -> GoLiveCheck:
    """Check the go-live gate of `strategy` (``<PAIR>_<TF>_<entry set>``) at `now_ms`.

    Passes when the event log holds dry-run events of `strategy` since at least
    ``GOLIVE_MIN_DRYRUN_HOURS`` before `now_ms`, and the last kill-switch test passed.
    """
    events = read_events(data_dir, strategy=strategy)
    dry = events[events["mode"] == "dry-run"]
    hours = (now_ms - int(dry["ts_ms"].min())) / 3_600_000 if len(dry) else 0.0
    reasons = []
    if hours < tunables.GOLIVE_MIN_DRYRUN_HOURS:
        reasons.append(f"{hours:.1f} h of dry-run events for {strategy}, GOLIVE_MIN_DRYRUN_HOURS is "
                       f"{tunables.GOLIVE_MIN_DRYRUN_HOURS:g}")
    ks = last_killswitch_test(reports_dir)
    if ks is None:
        reasons.append("no kill-switch test recorded (run: python jobs/execute.py killswitch-test)")
    elif not ks.passed:
        reasons.append(f"the kill-switch test of {iso_ms(ks.at_ms)} failed")
    return GoLiveCheck(strategy, not reasons, tuple(reasons), hours, None if ks is None else ks.at_ms)


def golive_record(reports_dir: Path | str, checks: Iterable[GoLiveCheck], now_ms: int, tunables: Tunables) -> Path:
    """``STEP-6.3-golive.md``: date, the required dry-run window, the kill-switch test, each strategy's result."""
    checks = list(checks)
    items: list[tuple[str, Any]] = [("date", iso_ms(now_ms)),
                                    ("data window required", f"{tunables.GOLIVE_MIN_DRYRUN_HOURS:g} h of dry-run events")]
    ks = last_killswitch_test(reports_dir)
    items.append(("kill-switch", "not tested" if ks is None else f"tested {iso_ms(ks.at_ms)}, "
                  f"{'passed' if ks.passed else 'FAILED'}"))
    items += [(c.strategy, f"ready ({c.dryrun_hours:.1f} h)" if c.ok else "not ready: " + c.reason) for c in checks]
    if not checks:
        items.append(("strategies", "none promoted"))
    return write_step(reports_dir, "STEP-6.3-golive.md", "STEP 6.3 — Go live", items)


def live_reasons(strategy: str, *, tunables: Tunables, exec_enabled: bool, secrets: Mapping[str, str], exchange: str,
                 data_dir: Path | str, reports_dir: Path | str, now_ms: int) -> list[str]:
    """Why a real order of `strategy` may not leave now: every live condition of DESIGN.md and the go-live
    gate (empty: live may take effect). Pass the result to :func:`~engine.execution.guards.decide` as
    ``live_reasons`` with ``requested="live"``; the kill switch is still checked there, per order."""
    from engine.execution.guards import live_blockers

    gate = golive_check(strategy, data_dir=data_dir, reports_dir=reports_dir, tunables=tunables, now_ms=now_ms)
    return live_blockers(tunables, exec_enabled=exec_enabled, secrets=secrets, exchange=exchange, golive_ok=gate.ok,
                         golive_reason=gate.reason)
