"""Where the per-item work runs: today's process pool, or a Dask cluster.

``--scheduler ADDRESS`` (or ``$STARTRACK_SCHEDULER``) on ingest, score and simulate picks a
``dask.distributed`` cluster: ``tcp://host:8786`` (a running ``dask scheduler``), or ``local``
/ ``local:N`` for a ``LocalCluster`` of N worker processes started for the run. Without it the
process pool stays: nothing changes on a laptop.

:func:`open_executor` is the one place that creates either. It yields a :class:`Runner` with a
``submit`` / ordered ``map`` interface over a ``concurrent.futures`` pool or a Dask ``Client``;
the drivers (etl/ingest, ml/score, simulator/simulate) only call those. Dask imports stay inside the
Dask branch, so the default path never loads it.

Workers read inputs and write their outputs (spectrum parts, prediction parts, simulated
files) straight to the warehouse / output directory, so that directory must be on a
filesystem every worker sees at the same path: :meth:`Runner.require_shared` checks it before
any work is sent, and fails with one line naming the worker that cannot see it.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import secrets
import socket
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from startrack.errors import UserError

log = logging.getLogger(__name__)

ENV_SCHEDULER = "STARTRACK_SCHEDULER"
#: Memory limit of each LocalCluster worker: the largest task (a 1,024-spectrum part or a
#: 100,000-star photometry chunk, plus the model) peaks near 0.5 GB; Dask pauses a worker at
#: 80 % of this and restarts it at 95 %.
WORKER_MEMORY = "1.5GiB"
CONNECT_TIMEOUT_S = 10.0  #: a reachable scheduler answers well within this
TASK_RETRIES = 2  #: a task that raises is retried this often; a dead worker's tasks are rescheduled
_LOCAL = re.compile(r"local(?::(\d+))?", re.IGNORECASE)


class SchedulerUnavailable(UserError):
    """The Dask scheduler cannot be reached, or a worker cannot see the shared directory."""


def add_scheduler_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--scheduler`` option, the same on every command that can use a cluster."""
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="run the work on a Dask cluster: tcp://host:8786 (a running `dask scheduler`), "
        "or local / local:N for N local worker processes; the warehouse must be on a "
        f"filesystem all workers share (default: ${ENV_SCHEDULER}, else a local process pool)",
    )


def resolve_scheduler(cli_value: str | None) -> str | None:
    """--scheduler, else $STARTRACK_SCHEDULER, else None (the local process pool).

    A scheduler address is checked here, as the command starts: a wrong one fails at once,
    before the writer lock is taken or any data is read.
    """
    value = (cli_value or os.environ.get(ENV_SCHEDULER) or "").strip()
    if value and local_workers(value) is None:
        _probe(scheduler_address(value))
    return value or None


def local_workers(address: str) -> int | None:
    """N for 'local' / 'local:N' (all cores for 'local'); None for a scheduler address."""
    m = _LOCAL.fullmatch(address.strip())
    if not m:
        return None
    n = int(m[1]) if m[1] else (os.cpu_count() or 1)
    if n < 1:
        raise UserError(f"--scheduler {address}: need at least one worker")
    return n


def scheduler_address(address: str) -> str:
    """'host:port' -> 'tcp://host:port'; a URL as given; anything else is a clear error."""
    text = address.strip()
    if "://" not in text:
        text = f"tcp://{text}"
    m = re.fullmatch(r"(tcp|tls)://(\[[^\]]+\]|[^:/\s]+):(\d+)/?", text)
    if not m:
        raise UserError(
            f"--scheduler {address!r}: expected tcp://host:port (e.g. tcp://10.0.0.5:8786), "
            "local or local:N"
        )
    return text.rstrip("/")


def _probe(address: str) -> None:
    """Fail at once (not after Dask's connect retries) when nothing listens there."""
    m = re.fullmatch(r"\w+://(\[[^\]]+\]|[^:/]+):(\d+)", address)
    assert m is not None
    host, port = m[1].strip("[]"), int(m[2])
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SchedulerUnavailable(
            f"cannot reach the Dask scheduler at {address}: {reason} "
            "(start one with `dask scheduler`, or use --scheduler local:N)"
        ) from None


@dataclass
class Runner:
    """submit / ordered map over a process pool or a Dask cluster."""

    pool: Executor | None = None
    client: Any = None  #: a distributed.Client when the work runs on Dask
    workers: int = 1

    @property
    def is_dask(self) -> bool:
        return self.client is not None

    def submit(self, fn: Callable, *args: Any) -> Future:
        if self.client is not None:
            return self.client.submit(fn, *args, pure=False, retries=TASK_RETRIES)
        if self.pool is None:
            future: Future = Future()
            try:
                future.set_result(fn(*args))
            except Exception as exc:  # delivered through the future, as a pool would
                future.set_exception(exc)
            return future
        return self.pool.submit(fn, *args)

    def map(self, fn: Callable, items: Iterable, window: int | None = None) -> Iterator:
        """Results in input order; at most ``window`` tasks in flight (default 4 per worker)."""
        window = window or 4 * max(1, self.workers)
        pending: list = []
        for item in items:
            pending.append(self.submit(fn, item))
            if len(pending) >= window:
                yield self._result(pending.pop(0))
        while pending:
            yield self._result(pending.pop(0))

    def _result(self, future: Future) -> Any:
        """A task's result; on a cluster, a task that failed for good is one clear line."""
        try:
            return future.result()
        except Exception as exc:
            if self.client is None:
                raise
            if type(exc).__name__ == "KilledWorker":
                raise SchedulerUnavailable(
                    f"a task died with every worker it was tried on ({exc}); check the "
                    "workers' memory limit and logs; nothing was published"
                ) from None
            raise SchedulerUnavailable(
                f"a task failed on the Dask cluster after {TASK_RETRIES} retries: "
                f"{type(exc).__name__}: {exc}; nothing was published"
            ) from None

    def require_shared(self, directory: Path) -> None:
        """Every worker must read and write ``directory`` at the same path (a shared FS)."""
        if self.client is None:
            return
        directory.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(8)
        probe = directory / f".probe-{token}"
        try:
            probe.write_text(token)
        except OSError as exc:
            raise SchedulerUnavailable(f"cannot write to {directory}: {exc.strerror}") from None
        try:
            answers = self.client.run(_check_shared, str(probe), token)
        finally:
            probe.unlink(missing_ok=True)
        for worker, problem in sorted(answers.items()):
            if problem:
                raise SchedulerUnavailable(
                    f"Dask worker {worker} cannot use {directory}: {problem}; the warehouse "
                    "(or output folder) must be on a filesystem all workers share, at the "
                    "same path"
                )


def _check_shared(probe: str, token: str) -> str | None:
    """On a worker: None when it sees the coordinator's probe file and can write beside it."""
    path = Path(probe)
    try:
        if path.read_text() != token:
            return f"{path} has other content there (a different filesystem?)"
        mine = path.with_name(f"{path.name}-{os.getpid()}")
        mine.write_text(token)
        mine.unlink()
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return None


@contextmanager
def open_executor(
    scheduler: str | None,
    workers: int,
    *,
    mp_context: str = "forkserver",
    preload: tuple[str, ...] = (),
) -> Iterator[Runner]:
    """A Runner for the run: a process pool of ``workers`` (inline for 1), or a Dask cluster."""
    if scheduler is None:
        if workers <= 1:
            yield Runner(workers=1)
            return
        ctx = get_context(mp_context)
        if preload and mp_context == "forkserver":
            ctx.set_forkserver_preload(list(preload))
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            yield Runner(pool=pool, workers=workers)
        return
    with _dask_client(scheduler) as client:
        n = len(client.nthreads())
        log.info("running on Dask scheduler %s with %d workers", client.scheduler.address, n)
        yield Runner(client=client, workers=max(1, n))


@contextmanager
def _dask_client(scheduler: str) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    if not log.isEnabledFor(logging.DEBUG):  # Dask's INFO chatter only with -v
        logging.getLogger("distributed").setLevel(logging.WARNING)
    n_local = local_workers(scheduler)
    if n_local is not None:
        cluster = LocalCluster(
            n_workers=n_local,
            threads_per_worker=1,
            processes=True,
            memory_limit=WORKER_MEMORY,
            host="127.0.0.1",
            scheduler_port=0,
            dashboard_address=":0",  # any free port: never clash with 8787
            silence_logs=logging.ERROR,
        )
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    address = scheduler_address(scheduler)
    _probe(address)
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise SchedulerUnavailable(
            f"cannot connect to the Dask scheduler at {address}: {exc}"
        ) from None
    try:
        if not client.nthreads():
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except TimeoutError:
        client.close()
        raise SchedulerUnavailable(
            f"the Dask scheduler at {address} has no workers (start some with "
            f"`dask worker {address}`)"
        ) from None
    try:
        yield client
    finally:
        client.close()
