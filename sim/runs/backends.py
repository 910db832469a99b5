"""Where work runs: this process, worker processes on this machine (the crew), or a Dask cluster.

One mechanism for every command that runs many independent tasks: replications (`sim.runs.experiment`), PSA
samples and sensitivity runs (`sim.runs.psa`) and the report's figures (`sim.report.html`). `Backend.map` runs
`fn(*a)` for each `a` and calls `on_done(i, result)` as each finishes; results come back to this process, so Dask
workers on other machines need not see its disk. A lost worker or cluster raises `WorkLost` with what happened
in a few words; each caller turns it into one line saying what it keeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sim.errors import ScenarioError, printable
from sim.runs.crew import WorkerDied, crew_map

_SCHEDULER = re.compile(r"(tcp|tls|ws|wss|ucx)://[A-Za-z0-9.\-\[\]:]+:\d{1,5}")
DASK_NO_WORKER_SECONDS = 30.0  # a cluster with no worker this long stops the work (its tasks would wait for ever)


def default_jobs() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class WorkLost(Exception):
    """A worker process died, or the Dask cluster was lost, before every task came back."""


class _Raised(Exception):
    """An error of a task or of this process's handling of its result, carried through `dask_client` so that it
    is raised as itself rather than taken for a lost cluster (a full disk is an OSError too)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def result_of(future: Any) -> Any:
    """A finished future's result; a task that failed raises its own error (not "the cluster was lost")."""
    if future.status == "error":
        raise _Raised(future.exception())
    return future.result()


def handled(callback: Callable[..., Any], *args: Any) -> Any:
    """callback(*args), with its errors carried through `dask_client` as themselves."""
    try:
        return callback(*args)
    except Exception as error:
        raise _Raised(error) from error


@dataclass(frozen=True)
class Backend:
    """`serial` (this process), `processes` (this process and `jobs - 1` workers on this machine) or `dask` (a Dask
    distributed cluster at `scheduler`, or a local one with `jobs` workers when None)."""

    kind: str = "processes"
    jobs: int = 1
    scheduler: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("serial", "processes", "dask"):
            raise ScenarioError("(command line)", "--backend", self.kind, "serial, processes or dask")
        if self.scheduler is not None and not _SCHEDULER.fullmatch(self.scheduler):
            raise ScenarioError("(command line)", "--scheduler", self.scheduler,
                                "a Dask scheduler address such as tcp://HOST:8786")

    def describe(self) -> str:
        if self.kind == "dask":
            return f"dask ({self.scheduler or f'local cluster, {self.jobs} workers'})"
        return "serial" if self.kind == "serial" or self.jobs <= 1 else f"{self.jobs} worker processes"

    @property
    def local_jobs(self) -> int:
        """Processes of this machine the backend uses (1 for serial; Dask's own workers are not counted)."""
        return 1 if self.kind == "serial" else max(1, self.jobs)

    def map(self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]],
            on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
        """[fn(*a) for a in args], in order; `on_done(i, result)` as each finishes. Raises WorkLost."""
        if self.kind == "dask" and args:
            return _dask_map(self, fn, list(args), on_done)
        try:
            return crew_map(fn, list(args), 1 if self.kind == "serial" else self.jobs, on_done)
        except WorkerDied:
            raise WorkLost("a worker process died") from None


@contextlib.contextmanager
def quiet_distributed() -> Iterator[None]:
    """distributed logs every failed reconnection with its traceback (dozens of lines when the scheduler dies):
    silenced while csfsim uses it, since the command says what happened in one line."""
    import distributed  # noqa: F401  (first: its loggers, with the levels its config gives them, must exist)

    names = ["distributed", *(n for n in logging.root.manager.loggerDict if n.startswith("distributed."))]
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)


@contextlib.contextmanager
def dask_client(backend: Backend) -> Iterator[Any]:
    """A client of the backend's cluster (a local one when it names no scheduler), closed afterwards; while it is
    open, distributed is quiet and a lost cluster raises WorkLost. An unreachable scheduler is bad input."""
    with quiet_distributed():
        from distributed import Client, LocalCluster
        from distributed.client import FuturesCancelledError
        from distributed.comm.core import CommClosedError
        from distributed.scheduler import KilledWorker

        cluster = None
        try:
            if backend.scheduler:
                client = Client(backend.scheduler, timeout="20s")
            else:
                cluster = LocalCluster(n_workers=max(1, backend.jobs), threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
                client = Client(cluster)
        except (OSError, ValueError) as err:
            raise ScenarioError("(command line)", "--scheduler", backend.scheduler,
                                f"a reachable Dask scheduler ({printable(str(err))})") from None
        try:
            yield client
        except _Raised as raised:
            raise raised.error from None
        except (OSError, TimeoutError, asyncio.CancelledError, KilledWorker, CommClosedError,
                FuturesCancelledError) as err:
            why = str(err) if isinstance(err, TimeoutError) and str(err) else type(err).__name__
            raise WorkLost(f"the Dask cluster was lost ({why})") from None
        finally:
            with contextlib.suppress(Exception):
                client.close(timeout=5)
            if cluster is not None:
                with contextlib.suppress(Exception):
                    cluster.close(timeout=5)


def dask_workers(client: Any, fallback: int) -> int:
    """How many workers the cluster has now (`fallback` when it does not say)."""
    return max(1, len(client.scheduler_info().get("workers", {})) or fallback)


def dask_results(client: Any, futures: list[Any], wait: Callable[..., Any] | None = None) -> Iterator[Any]:
    """The futures as they finish; raises TimeoutError once the cluster has had no worker for
    DASK_NO_WORKER_SECONDS (with every worker killed, a scheduler keeps the tasks waiting for a new one).
    `wait`: distributed.wait, or a stand-in."""
    if wait is None:
        from distributed import wait

    pending = set(futures)
    no_worker_since: float | None = None
    while pending:
        try:
            done, pending = wait(pending, timeout=2, return_when="FIRST_COMPLETED")
        except TimeoutError:  # none finished in the last two seconds
            done = set()
        yield from done
        if done:
            no_worker_since = None
            continue
        if client.scheduler_info().get("workers"):
            no_worker_since = None
        elif no_worker_since is None:
            no_worker_since = time.monotonic()
        elif time.monotonic() - no_worker_since > DASK_NO_WORKER_SECONDS:
            raise TimeoutError(f"no worker left for {DASK_NO_WORKER_SECONDS:.0f} s")


def _dask_map(backend: Backend, fn: Callable[..., Any], args: list[tuple[Any, ...]],
              on_done: Callable[[int, Any], None] | None) -> list[Any]:
    results: list[Any] = [None] * len(args)
    with dask_client(backend) as client:
        futures = [client.submit(fn, *a, pure=False) for a in args]
        index = {f.key: i for i, f in enumerate(futures)}
        for fut in dask_results(client, futures):
            i = index[fut.key]
            results[i] = result_of(fut)
            fut.release()  # its result is here now: the cluster need not keep it
            if on_done is not None:
                handled(on_done, i, results[i])
    return results
