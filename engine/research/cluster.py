"""Research jobs on a Dask distributed cluster (``--scheduler tcp://HOST:8786`` or ``SCALP_DASK_SCHEDULER``).

Each (pair, timeframe) job is one task (:func:`distributed.Client.map`); results come back in job
order, so the rows are the same as with the local process pool. The workers read the candles from
``data_dir`` themselves: every worker must see the same ``data_dir`` (the same machine, a shared
folder, or a copy made before the run) and import this repo (start them from its root, or with
``PYTHONPATH`` set to it). A worker that dies mid-job loses nothing: the scheduler runs its tasks on
another worker (Dask's ``distributed.scheduler.allowed-failures`` times, 3 by default).
"""
from __future__ import annotations

import logging
import os
from typing import Any, Callable, Sequence

from engine.errors import ConfigError

logger = logging.getLogger(__name__)

SCHEDULER_ENV = "SCALP_DASK_SCHEDULER"


def scheduler_address(explicit: str | None = None) -> str | None:
    """The scheduler to use: `explicit`, else ``$SCALP_DASK_SCHEDULER``, else None (local pool)."""
    address = explicit or os.environ.get(SCHEDULER_ENV) or None
    if address is not None and "://" not in address:
        raise ConfigError(f"dask scheduler {address!r}: expected an address like tcp://HOST:8786")
    return address


def map_on_cluster(fn: Callable[[Any], Any], jobs: Sequence[Any], address: str, *,
                   on_done: Callable[[int], None] | None = None, connect_timeout_s: float = 10.0) -> list[Any]:
    """Run ``fn(job)`` for every job on the cluster at `address`; return the results in job order.

    Parameters
    ----------
    fn : callable
        A module-level function (pickled by reference: the workers import it).
    jobs : sequence
        Picklable arguments, one task each.
    address : str
        ``tcp://HOST:PORT`` of a running ``dask scheduler``.
    on_done : callable, optional
        Called with a job's index as its result arrives (progress).

    Raises
    ------
    ConfigError
        The scheduler cannot be reached within `connect_timeout_s` (the message names it).
    """
    from distributed import Client, as_completed

    try:
        client = Client(address, timeout=f"{connect_timeout_s}s")
    except (OSError, TimeoutError) as e:
        raise ConfigError(f"dask scheduler {address}: cannot connect ({str(e).splitlines()[0][:200]}); start it "
                          "with 'dask scheduler' and its workers with 'dask worker ADDRESS', or drop --scheduler") from None
    try:
        n_workers = len(client.scheduler_info().get("workers", {}))
        logger.info("research on the dask cluster %s: %d job(s), %d worker(s)", address, len(jobs), n_workers)
        futures = client.map(fn, list(jobs), pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        out: list[Any] = [None] * len(jobs)
        for fut in as_completed(futures):
            i = index[fut.key]
            out[i] = fut.result()
            if on_done is not None:
                on_done(i)
        return out
    finally:
        client.close()
