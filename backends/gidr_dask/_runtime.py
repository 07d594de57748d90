"""What every distributed computation of gidr shares: finding the scheduler, bounding the
threads a task uses on its worker, and gathering results one at a time.

Scheduler
    gidr computes on the scheduler Dask would use: the current ``distributed.Client`` (the
    default one), else Dask's local scheduler, unless ``dask.config`` names another. A
    scheduler given by address is connected with a timeout; an unreachable one is a
    :class:`SchedulerUnreachable` error that names the address, never a hang.
Threads
    A task holds its worker's ``nthreads`` (one, in a ``LocalCluster(threads_per_worker=1)``)
    and no more: numba's thread count and BLAS's (through ``threadpoolctl``) are set to it
    for the task's duration, so that two single-threaded workers on two cores do not start
    four threads each. Results do not depend on the thread count (numba stages are
    bit-identical across threads).
Gathering
    Results that the client keeps (rows of the kNN graph) are collected as each task
    finishes and released at once, so the client holds the graph and one task's result,
    not every task's result at the same time.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Sequence

from gidr.validation import GidrValueError, format_error

__all__ = ["require_dask", "connect", "SchedulerUnreachable", "current_client", "using_scheduler",
           "worker_threads", "gather_each", "CONNECT_TIMEOUT"]

#: Seconds to wait for a scheduler given by address.
CONNECT_TIMEOUT = 10.0


class SchedulerUnreachable(ConnectionError):
    """The Dask scheduler at the given address did not answer within the timeout."""


def require_dask(what: str = "This computation") -> None:
    """Raise a :class:`GidrValueError` that says how to install Dask when it is missing."""
    try:
        import dask.array  # noqa: F401
    except ImportError:
        raise GidrValueError(format_error(f"The package behind {what}", "dask installed", "an ImportError",
                                          "Install it: pip install 'gidr[dask]' (dask[distributed]).")) from None


def connect(address: str, timeout: float | None = None):
    """A ``distributed.Client`` connected to the scheduler at ``address`` (waiting at most
    ``timeout`` seconds, default :data:`CONNECT_TIMEOUT`).

    Raises
    ------
    SchedulerUnreachable
        When no scheduler answers at ``address`` within ``timeout`` seconds.
    """
    require_dask(f"the scheduler at {address!r}")
    from distributed import Client

    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    try:
        return Client(address, timeout=f"{float(timeout)}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise SchedulerUnreachable(
            f"No Dask scheduler answered at {address!r} within {float(timeout):g} s ({type(exc).__name__}: "
            f"{exc}). Start one (distributed.LocalCluster(), or `dask scheduler` on that machine) and pass its "
            "address, or pass scheduler=None to use the current client.") from None


def current_client():
    """The default ``distributed.Client`` when Dask would compute on it, else None."""
    import dask

    configured = dask.config.get("scheduler", None)
    if configured not in (None, "dask.distributed", "distributed"):
        return None
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        client = default_client()
    except ValueError:
        return None
    if client.status not in ("running", "connecting", "newly-created"):
        address = getattr(client.scheduler, "address", None) or getattr(client, "_start_arg", None)
        raise SchedulerUnreachable(
            f"The current Dask client is {client.status!r} (scheduler {address!r}): its scheduler is gone or it "
            "was closed. Create a new distributed.Client, or leave its block to compute on Dask's local scheduler.")
    return client


@contextlib.contextmanager
def using_scheduler(scheduler: Any):
    """Compute on ``scheduler`` inside the block: None (the current one), an address (connected
    here and closed after), or a ``distributed.Client``."""
    if scheduler is None:
        yield current_client()
        return
    if isinstance(scheduler, str):
        client = connect(scheduler)
        try:
            with client.as_current():
                yield client
        finally:
            client.close()
        return
    with scheduler.as_current():
        yield scheduler


def _worker_nthreads() -> int | None:
    try:
        from distributed import get_worker
        worker = get_worker()
    except (ImportError, ValueError):
        return None
    state = getattr(worker, "state", None)
    return int(getattr(state, "nthreads", None) or getattr(worker, "nthreads", 1))


@contextlib.contextmanager
def worker_threads():
    """Bound numba's and BLAS's threads to the worker's ``nthreads`` for one task (no-op off a
    worker)."""
    n = _worker_nthreads()
    if n is None:
        yield
        return
    import numba
    from threadpoolctl import threadpool_limits

    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        numba.set_num_threads(previous)


def gather_each(tasks: Sequence[Any], consume: Callable[[int, Any], None]) -> None:
    """Compute the Dask ``tasks`` and call ``consume(position, value)`` for each, as it finishes
    on a distributed client (each result released once consumed), in order otherwise."""
    import dask

    client = current_client()
    if client is None:
        for position, value in enumerate(dask.compute(*tasks)):
            consume(position, value)
        return
    from distributed import as_completed

    futures = client.compute(list(tasks))
    positions = {future.key: position for position, future in enumerate(futures)}
    try:
        for future in as_completed(futures):
            value = future.result()
            consume(positions[future.key], value)
            future.release()
    finally:
        for future in futures:
            future.release()
