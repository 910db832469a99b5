"""A crew: this process and `workers` forked worker processes, taking tasks in turn from one shared counter.

Why not a plain process pool. With a pool of `jobs` workers the main process sat idle while they simulated, then
did the run's serial part alone; with small replications that cost --jobs 2 about a third of its speed. Here
`jobs - 1` workers and this process share the work, so that every core simulates; tasks are claimed one at a
time, so that whoever is free takes the next one and all finish together. What a task computes does not depend
on who runs it, so results are the same for any number of workers (tests/runs/test_experiment.py).

Results come back through one pipe, read by a thread of this process as they come (a result larger than the
pipe's buffer would otherwise hold its worker up). Workers ignore Ctrl-C (this process stops the run) and die
with this process (Linux).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any


class WorkerDied(Exception):
    """A worker process died (killed, out of memory): the run cannot go on with this crew."""


def _check(fut: Future) -> Any:
    """The worker task's result, or its error; WorkerDied if its process died."""
    try:
        return fut.result()
    except BrokenProcessPool:
        raise WorkerDied from None


class Crew:
    """This process and `workers` worker processes, taking tasks in turn from one shared counter (see the module
    docstring). `start(tasks)` lets the workers begin; `finish(run_here, on_result)` has this process join in
    until no task is left; `release()` lets the workers go early, `shutdown()` waits for them."""

    def __init__(self, workers: int) -> None:
        # Fork on Linux: workers start with this process's imports and objects, which the freezing below is
        # about. Asked for by name, since Python 3.14 makes forkserver Linux's default (macOS keeps its default,
        # spawn: forking is unsafe there).
        ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
        self.workers = workers
        self.claimed = ctx.Value("q", 0)  # tasks handed out so far (reset for each list of tasks)
        # (task index, result) from the workers, pickled, one message each (`send_lock` keeps them whole), moved
        # from the pipe to `inbox` by a thread of this process as they come (`_read`).
        self.receive, self.send = ctx.Pipe(duplex=False)
        self.send_lock = ctx.Lock()
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.reader: threading.Thread | None = None
        # Workers are forked (Linux): gc.freeze() first thing in each puts the objects inherited from this
        # process out of the collector's reach, so its full collections neither walk them nor write to (and so
        # copy) their pages. Measured: --jobs 2 about 5% faster on replications of ~2,600 patients.
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_join_crew,
                                        initargs=(self.claimed, self.send, self.send_lock,
                                                  os.getpid() if ctx.get_start_method() == "fork" else None))
        self.n = 0
        self.futures: set[Future] = set()
        # In this process, for as long as the workers live: a full collection here would write to every object's
        # header, so copy every page it shares with the workers (measured: its first replication ~60% slower).
        # Frozen before the fork, so that no collection comes between. Unfrozen by shutdown(), unless the caller
        # had frozen objects itself (gc.freeze: its objects are to stay frozen, and there is no unfreezing only ours).
        self.unfreeze = gc.get_freeze_count() == 0
        gc.freeze()
        # Fork the workers now (the pool forks them all at its first task): this process may start threads of
        # its own later (the run's Parquet appends, csfsim-append), and a thread running at a fork can leave a
        # lock taken for ever in the child. Forking later, on the first `start`, did so when a resumed run had one
        # replication left (run here, with the appends already on their thread) and the merges came next.
        try:
            self.pool.submit(_forked).result()
        except BaseException:
            self._abandon()
            raise

    def _abandon(self) -> None:
        """Undo a crew whose workers could not all be forked: those that were are terminated (no manager thread
        would ever tell them to stop, and this process would wait for them at exit), the collector unfrozen."""
        forked = list((getattr(self.pool, "_processes", None) or {}).values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        for process in forked:
            process.terminate()
        for process in forked:
            process.join(timeout=5)
        self.receive.close()
        self.send.close()
        if self.unfreeze:
            gc.unfreeze()

    def start(self, tasks: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> None:
        """Let the workers start on `tasks` (this process joins in with `finish`)."""
        with self.claimed.get_lock():
            self.claimed.value = 0
        self.n = len(tasks)
        try:
            self.futures = {self.pool.submit(_crew_member, tasks) for _ in range(self.workers)}
        except BrokenProcessPool:  # a worker died while idle, between two lists of tasks
            raise WorkerDied from None
        if self.reader is None:  # the workers were forked in __init__: no thread is forked with them
            self.reader = threading.Thread(target=self._read, name="csfsim-crew-results", daemon=True)
            self.reader.start()

    def _read(self) -> None:
        """Move the workers' results from the pipe to `inbox` as they come. Why a thread: a result larger than
        the pipe's buffer (64 KB; a fast-path batch's is several hundred KB) blocks the worker sending it until it
        is read, so read only between this process's own tasks it held the worker up for a whole task, and
        after an error or interruption (nothing read any more) it hung the shutdown, which waits for the workers.
        It blocks on the pipe until a message comes (shutdown sends it STOP_READING): polling it every 50 ms made
        --jobs 2 about 6% slower on small replications."""
        try:
            while True:
                data = self.receive.recv_bytes()
                if data == STOP_READING:
                    return
                self.inbox.put(pickle.loads(data))
        except BaseException as err:  # handed to the main thread, which raises it
            self.inbox.put(err)

    def finish(self, run_here: Callable[[int], Any], on_result: Callable[[int, Any], None]) -> None:
        """Take tasks with the workers until none is left (`run_here(i)` runs task i in this process), and pass
        every task's result to `on_result` as it comes, on this thread."""
        received = 0
        try:
            while (i := self._claim()) is not None:
                on_result(i, run_here(i))
                received += 1 + self._collect(on_result, block=False)
            while self.futures:
                done, self.futures = wait(self.futures, timeout=0.01, return_when=FIRST_COMPLETED)
                for fut in done:
                    _check(fut)
                received += self._collect(on_result, block=False)
            # A worker's results are in the pipe before its task returns, so the reader brings what is missing.
            while received < self.n:
                received += self._collect(on_result, block=True)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """No more tasks for the workers (on an error or interruption, so that shutting down does not wait for
        the rest of the run)."""
        with self.claimed.get_lock():
            self.claimed.value = self.n

    def release(self) -> None:
        """Let the workers exit (they have no more work), without waiting for them."""
        self.stop()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        self.stop()
        try:
            self.pool.shutdown(wait=True, cancel_futures=True)  # the reader goes on reading meanwhile
        finally:
            if self.reader is not None and self.reader.is_alive():
                with self.send_lock:
                    self.send.send_bytes(STOP_READING)
            if self.reader is not None:
                self.reader.join(timeout=1)
            if self.reader is None or not self.reader.is_alive():  # (alive: stuck on a message a killed worker
                self.receive.close()                               # left half-sent; a daemon, left as it is)
                self.send.close()
            if self.unfreeze:
                gc.unfreeze()

    def _claim(self) -> int | None:
        # With a timeout, so that a worker that died holding the lock stops the run instead of hanging it.
        while not self.claimed.get_lock().acquire(timeout=0.5):
            for fut in [f for f in self.futures if f.done()]:
                _check(fut)
        try:
            return _next_task(self.claimed, self.n)
        finally:
            self.claimed.get_lock().release()

    def _collect(self, on_result: Callable[[int, Any], None], block: bool) -> int:
        n = 0
        while True:
            try:
                item = self.inbox.get(block=block and n == 0)
            except queue.Empty:
                return n
            if isinstance(item, BaseException):
                raise item
            on_result(*item)
            n += 1


STOP_READING = b"stop"  # what this process sends its own reader at shutdown
_CREW: tuple[Any, Any, Any, int] | None = None  # in a worker: the crew's counter, result pipe and its lock, parent


def _join_crew(claimed: Any, send: Any, send_lock: Any, forked_by: int | None) -> None:
    global _CREW
    gc.freeze()
    _CREW = (claimed, send, send_lock, os.getppid())
    # Ctrl-C goes to the whole process group: the main process stops the run (no task is handed out any more)
    # and says so in one line; a worker ends its current task and exits, instead of printing a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker forked by the main process is killed with it (Linux): when the main process was killed outright
    # (SIGKILL, out of memory), its workers otherwise waited for their next task for ever.
    if forked_by is not None and sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
        if os.getppid() != forked_by:  # gone before that
            os._exit(1)


def _forked() -> None:
    """A task that does nothing: submitting it makes the pool fork its workers."""


def _next_task(claimed: Any, n: int) -> int | None:
    """Claim the next task (the caller holds the counter's lock)."""
    i = int(claimed.value)
    if i >= n:
        return None
    claimed.value = i + 1
    return i


def _crew_member(tasks: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> int:
    """In a worker: run tasks until none is left, putting each result on the crew's queue."""
    assert _CREW is not None
    claimed, send, send_lock, parent = _CREW
    n = 0
    while os.getppid() == parent:  # not on with the run once the main process is gone (killed)
        with claimed.get_lock():
            i = _next_task(claimed, len(tasks))
        if i is None:
            return n
        fn, args = tasks[i]
        message = pickle.dumps((i, fn(*args)), protocol=pickle.HIGHEST_PROTOCOL)
        with send_lock:
            send.send_bytes(message)
        n += 1
    return n


def crew_map(fn: Callable[..., Any], args: list[tuple[Any, ...]], jobs: int,
             on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
    """[fn(*a) for a in args], run by this process and `jobs - 1` workers of a crew (so the workers die with this
    process, as a run's do); `on_done(i, result)` as each finishes, in the order they finish. Raises WorkerDied if
    a worker dies."""
    results: list[Any] = [None] * len(args)

    def keep(i: int, result: Any) -> None:
        results[i] = result
        if on_done is not None:
            on_done(i, result)

    if jobs <= 1 or len(args) <= 1:
        for i, a in enumerate(args):
            keep(i, fn(*a))
        return results
    crew = Crew(min(jobs, len(args)) - 1)
    try:
        crew.start([(fn, a) for a in args])
        crew.finish(lambda i: fn(*args[i]), keep)
    finally:
        crew.shutdown()
    return results
