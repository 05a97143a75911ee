"""Optuna studies that many processes (and machines) can share with the same result as one.

One study per (pair, timeframe, entry set, fold): trials are proposed in seeded batches and queued
before anyone evaluates them (:func:`run_study`), so whoever evaluates trial ``k`` gets the same
parameters and the same value, and every trial runs once.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable

from engine.config import OptunaConfig
from engine.errors import ConfigError
from engine.fileio import json_safe
from engine.markets import pair_to_folder
from engine.research.folds import _meets, _objective_value

logger = logging.getLogger(__name__)

# optuna is imported inside the functions that use it, not here: its import costs 0.32 s
# (python -X importtime, this project's 2-core machine), and the default grid mode never needs it.


#: Value given to a trial that cannot be scored (bad parameter relation, objective undefined, or
#: constraints not met), so that samplers rank it last. Its metrics are kept as user attributes.
PENALTY = -1e9


#: A trial RUNNING longer than this (seconds) in a shared study is taken to belong to a crashed
#: worker: a process waiting for it evaluates it itself (same parameters, same value).
STALE_S = 300.0


POLL_S = 0.05


def study_seed(seed: int, key: str, batch: int = 0) -> int:
    """Return the sampler seed of batch `batch` of study `key`: a 32-bit hash of all three, so
    studies are independent yet reproducible, whatever order or process runs them."""
    digest = hashlib.sha256(f"{int(seed)}|{key}|{int(batch)}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def open_storage(url: str | None):
    """Return an optuna storage for `url`.

    ``None``: in memory (this process only). ``sqlite:///path.db`` or ``postgresql://user:pass@host/db``:
    an RDB storage shared by every process that opens it. ``journal:/path/file.log``: optuna's
    journal file storage (one machine, many processes, no database).

    Raises
    ------
    ConfigError
        If the storage cannot be opened (the message names the URL).
    """
    import optuna

    # one INFO line per study created would flood the log (hundreds of studies per cycle)
    if logging.getLogger("optuna").level in (logging.NOTSET, logging.INFO, logging.DEBUG):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    if url is None:
        return optuna.storages.InMemoryStorage()
    try:
        if url.startswith("journal:"):
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            return JournalStorage(JournalFileBackend(url[len("journal:"):]))
        kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
        for attempt in range(5):
            try:
                return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
            except Exception as e:  # two processes creating the schema of a new database at once
                if "already exists" not in str(e) or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
    except Exception as e:  # sqlalchemy/driver errors of many kinds
        raise ConfigError(f"--storage {url!r}: cannot open the optuna storage ({type(e).__name__}: {e}); "
                          "expected sqlite:///FILE.db, journal:FILE.log or postgresql://USER:PASS@HOST/DB") from e


def _distributions(space: dict[str, dict]) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for name, spec in space.items():
        if spec["type"] == "categorical":
            out[name] = CategoricalDistribution(tuple(spec["choices"]))
        elif spec["type"] == "int":
            out[name] = IntDistribution(int(spec["low"]), int(spec["high"]), log=spec.get("log", False),
                                        step=int(spec.get("step") or 1))
        else:
            out[name] = FloatDistribution(float(spec["low"]), float(spec["high"]), log=spec.get("log", False),
                                          step=spec.get("step"))
    return out


def _propose(done: list, count: int, space: dict[str, dict], sampler: str, seed: int) -> list[dict[str, Any]]:
    """Return `count` parameter sets proposed by the sampler from the finished trials `done`."""
    import optuna
    from optuna.study import StudyDirection
    from optuna.trial import create_trial

    smp = (optuna.samplers.TPESampler(seed=seed) if sampler == "tpe" else optuna.samplers.RandomSampler(seed=seed))
    storage = optuna.storages.InMemoryStorage()
    storage.create_new_study([StudyDirection.MAXIMIZE], "proposal")
    study = optuna.Study("proposal", storage, sampler=smp)
    dists = _distributions(space)
    for t in done:
        if t.state.name == "COMPLETE" and t.value is not None:
            study.add_trial(create_trial(params=t.params, distributions=t.distributions, value=t.value))
    out = []
    for _ in range(count):
        trial = study.ask(dists)
        out.append(dict(trial.params))
    return out


def _study_id(storage, name: str) -> int:
    import optuna
    from optuna.study import StudyDirection

    try:
        return storage.create_new_study([StudyDirection.MAXIMIZE], name)
    except optuna.exceptions.DuplicatedStudyError:
        return storage.get_study_id_from_name(name)


def _claim(storage, name: str) -> bool:
    """Atomically claim `name` (creating a study of that name succeeds for one process only)."""
    import optuna
    from optuna.study import StudyDirection

    try:
        storage.create_new_study([StudyDirection.MAXIMIZE], name)
        return True
    except optuna.exceptions.DuplicatedStudyError:
        return False


def _finish(storage, trial_id: int, params: dict, metrics: dict | None, objective: str, cons) -> None:
    import optuna
    from optuna.trial import TrialState

    if metrics is None or not _meets(metrics, cons.min_trades, cons.max_drawdown_pct):
        value = PENALTY
    else:
        v = _objective_value(metrics, objective)
        value = v if math.isfinite(v) else PENALTY
    try:
        storage.set_trial_user_attr(trial_id, "metrics", json_safe(metrics))
        storage.set_trial_user_attr(trial_id, "evaluated_by", f"{socket.gethostname()}:{os.getpid()}")
        storage.set_trial_state_values(trial_id, state=TrialState.COMPLETE, values=[value])
    except optuna.exceptions.UpdateFinishedTrialError:
        pass  # a stale trial finished twice: same parameters, same value


def run_study(storage, name: str, key: str, opt: OptunaConfig, space: dict[str, dict],
              evaluate: Callable[[list[dict]], list[dict | None]], *, objective: str, constraints,
              wait: bool = True, chunk: int | None = None) -> list[tuple[dict, dict | None]] | None:
    """Run (or join) one optuna study until it holds ``opt.n_trials`` finished trials.

    Protocol (the same for an in-memory study and one shared by many processes): when the study
    has no queued trial and every trial is finished, one process claims batch ``b`` (by creating
    the marker study ``<name>#batch<b>``, which succeeds for one process only), asks the sampler
    (seeded with :func:`study_seed` of ``opt.seed``, `key` and ``b``) for up to
    ``opt.batch_size`` parameter sets given the finished trials, and queues them (state WAITING).
    Every process pops queued trials one by one (optuna's atomic WAITING → RUNNING change),
    evaluates them in one batched call and finishes them with their objective value and metrics
    (user attribute ``metrics``). Trial ``k`` thus has the same parameters and value whoever
    evaluates it, and every trial runs once.

    Parameters
    ----------
    storage : optuna storage
        From :func:`open_storage`.
    name : str
        Study name (unique per pair, timeframe, entry set, fold, data window and config).
    key : str
        The study's key for seeding (the name without any user prefix).
    opt : OptunaConfig
        ``n_trials``, ``batch_size``, ``sampler``, ``seed``, ``timeout_s``.
    space : dict
        Parameter space of the entry set (validated ``optuna.space`` entry).
    evaluate : callable
        ``evaluate(list of params) -> list of metrics dict (None: not evaluable)``.
    objective : str
        Metric maximised; trials not meeting `constraints` get :data:`PENALTY`.
    wait : bool
        Wait for trials other processes are running (True), or return None when nothing is left
        for this process to do (a ``--worker``).
    chunk : int, optional
        Most trials popped at once (default: the batch size; 1 is fairer between many workers).

    Returns
    -------
    list of (params, metrics) or None
        Every trial in trial-number order, when the study is complete; None (``wait=False``)
        while other processes still run some of its trials.
    """
    from optuna.trial import TrialState

    sid = _study_id(storage, name)
    chunk = chunk or opt.batch_size
    t0 = time.monotonic()
    while True:
        trials = storage.get_all_trials(sid, deepcopy=False)
        waiting = [t for t in trials if t.state == TrialState.WAITING]
        claimed = []
        for t in waiting:
            if len(claimed) >= chunk:
                break
            tid = storage.get_trial_id_from_study_id_trial_number(sid, t.number)
            try:
                if storage.set_trial_state_values(tid, state=TrialState.RUNNING):
                    claimed.append((tid, t.params))
            except Exception:  # UpdateFinishedTrialError: someone finished it meanwhile
                continue
        if claimed:
            _evaluate_and_finish(storage, claimed, evaluate, objective, constraints)
            continue
        if waiting:
            continue  # every queued trial was taken by others between the read and the claim
        running = [t for t in trials if t.state == TrialState.RUNNING]
        timed_out = opt.timeout_s is not None and time.monotonic() - t0 > opt.timeout_s and trials
        if running:
            if not wait:
                return None
            stale = [t for t in running if t.datetime_start is not None
                     and (time.time() - t.datetime_start.timestamp()) > STALE_S]
            if stale:
                logger.warning("%s: trial %d has run for more than %.0f s; evaluating it here", name,
                               stale[0].number, STALE_S)
                tid = storage.get_trial_id_from_study_id_trial_number(sid, stale[0].number)
                _evaluate_and_finish(storage, [(tid, stale[0].params)], evaluate, objective, constraints)
            else:
                time.sleep(POLL_S)
            continue
        if len(trials) >= opt.n_trials or timed_out:
            return [(dict(t.params), _metrics_from_attr(t.user_attrs.get("metrics")))
                    for t in sorted(trials, key=lambda t: t.number) if t.state == TrialState.COMPLETE]
        batch = len(trials) // opt.batch_size
        if _claim(storage, f"{name}#batch{batch}"):
            count = min(opt.batch_size, opt.n_trials - len(trials))
            proposals = _propose(trials, count, space, opt.sampler, study_seed(opt.seed, key, batch))
            _queue(storage, sid, proposals, _distributions(space))
        elif not wait:
            return None
        else:
            time.sleep(POLL_S)


def _queue(storage, sid: int, proposals: list[dict], dists: dict) -> None:
    from optuna.trial import TrialState, create_trial

    for params in proposals:
        template = create_trial(state=TrialState.WAITING, params=params,
                                distributions={k: dists[k] for k in params})
        storage.create_new_trial(sid, template_trial=template)


def _metrics_from_attr(m: dict | None) -> dict | None:
    if m is None:
        return None
    return {k: (float("nan") if v is None and k != "n_trades" else v) for k, v in m.items()}


def _evaluate_and_finish(storage, claimed: list[tuple[int, dict]], evaluate, objective: str, constraints) -> None:
    results = evaluate([p for _, p in claimed])
    for (tid, params), metrics in zip(claimed, results):
        _finish(storage, tid, params, metrics, objective, constraints)


@dataclass(frozen=True)
class StudyOptions:
    """Where optuna studies live and how this process takes part.

    Attributes
    ----------
    storage_url : str or None
        None: in memory. Else an optuna storage URL (:func:`open_storage`).
    prefix : str
        Prepended to every study name (``--study-prefix``), so several searches share one storage.
    wait : bool
        False for a ``--worker``: contribute trials, never wait for other processes' trials.
    chunk : int or None
        Trials popped at once (None: the batch size; shared storages use 1).
    """

    storage_url: str | None = None
    prefix: str = "scalp"
    wait: bool = True
    chunk: int | None = None

    def storage(self) -> Any:
        """Return this search's optuna storage, opened on first use (:func:`open_storage`).

        Held by this instance, once per process: a copy sent to a pool worker opens its own (the
        open connection is not pickled). A new StudyOptions means a new in-memory storage.
        """
        opened = self.__dict__.get("_storage")
        if opened is None:
            opened = open_storage(self.storage_url)
            object.__setattr__(self, "_storage", opened)
        return opened

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_storage", None)
        return state


def study_key(pair: str, timeframe: str, entry_set: str, fold: int, first_ms: int, last_ms: int, cfg_id: str) -> str:
    """Return the key of one study: ``<cfg>.<PAIR>.<TF>.<entry set>.fold<j>.<first_ms>-<last_ms>``.

    The train window's first/last candle and the config id are part of it, so a study never mixes
    trials of different data or settings.
    """
    return f"{cfg_id}.{pair_to_folder(pair)}.{timeframe}.{entry_set}.fold{fold}.{first_ms}-{last_ms}"
