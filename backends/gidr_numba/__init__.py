"""gidr's numba backend: parallel, deterministic, cached kernels.

Importing the package makes three process-wide choices, each only where the user has not
made it already:

Threading layer
    Unless ``NUMBA_THREADING_LAYER`` is set (or ``numba.config.THREADING_LAYER`` was changed
    from ``"default"`` before gidr's first use), gidr asks numba for a *fork-safe* layer
    (``"forksafe"``: TBB when ``pip install tbb`` has provided it, else OpenMP off Linux, else
    numba's own ``workqueue``). numba's default on Linux, GNU OpenMP, kills any
    fork-started child (``multiprocessing`` with the ``"fork"`` start method) that runs a
    parallel kernel after the parent did: "fork() called from a process already using GNU
    OpenMP, this is unsafe", and a ``multiprocessing.Pool`` then waits forever. ``workqueue``
    is not thread-safe (two Python threads launching kernels at once abort the process), so
    while it is the layer, gidr's numba stages hold :func:`parallel_launch_lock`. Results do
    not depend on the layer nor on the number of threads.

``OMP_WAIT_POLICY``
    Set to ``PASSIVE`` when numba may still choose OpenMP: actively spinning OpenMP worker
    threads made each parallel region cost about 12 ms on a busy 2-core machine (measured).

Caching
    The kernels use ``cache=True``. When numba finds nowhere to write its cache (a read-only
    install with no writable ``NUMBA_CACHE_DIR``: numba raises "cannot cache function ...: no
    locator available"), gidr compiles its kernels in memory instead, for this process only,
    and says so in one :class:`GidrCacheWarning`. Set ``NUMBA_CACHE_DIR`` to a writable
    directory to keep the compiled code between processes.

Nothing runs at exit: the exit-time :func:`gc.freeze` of earlier versions saved 0.3-0.4 s but
kept the ``__del__`` of objects in reference cycles from running; it is now opt-in,
``GIDR_EXIT_FREEZE=1``.
"""
from __future__ import annotations

import atexit
import contextlib
import functools
import gc
import os
import sys
import threading
import warnings

__all__ = ["GidrCacheWarning", "caching_available", "parallel_launch_lock", "serialized"]

#: the layers numba accepts by name; "default" and the purposes choose among them.
_FORK_SAFE_LAYERS = {"tbb", "workqueue", "forksafe", "safe"}


class GidrCacheWarning(RuntimeWarning):
    """numba cannot cache gidr's kernels here: they are compiled in memory, every process."""


def _choose_threading_layer(config) -> None:
    if "NUMBA_THREADING_LAYER" in os.environ or str(config.THREADING_LAYER).lower() != "default":
        return  # the user's choice
    config.THREADING_LAYER = "forksafe"


def _may_use_omp(config) -> bool:
    layer = str(config.THREADING_LAYER).lower()
    return not (layer in _FORK_SAFE_LAYERS and (layer != "forksafe" or sys.platform.startswith("linux")))


def _probe() -> None:
    """A function of this package's directory: numba's cache locators judge by the file."""


#: File beside the kernel cache holding the digest of the sources it was compiled from.
SOURCES_DIGEST_FILE = "gidr-numba-sources.sha256"


def _sources():
    """This package's ``.py`` files, in name order."""
    from pathlib import Path

    return sorted(Path(__file__).resolve().parent.glob("*.py"))


def sources_digest(sources=None) -> str:
    """SHA-256 of this package's ``.py`` files (names and contents, in name order)."""
    import hashlib

    digest = hashlib.sha256()
    for path in _sources() if sources is None else sources:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _drop_stale_kernels(cache_path: str) -> bool:
    """Delete the package's cached kernels in ``cache_path`` when they were compiled from other
    sources than these (see the module docstring). Returns whether any were deleted. Files it
    cannot remove or write are left: numba then recompiles what it cannot load, as before."""
    from pathlib import Path

    cache = Path(cache_path)
    stamp = cache / SOURCES_DIGEST_FILE
    sources = _sources()
    current = sources_digest(sources)
    try:
        if stamp.read_text().strip() == current:
            return False
    except OSError:
        pass
    modules = {path.stem for path in sources}
    dropped = False
    for path in list(cache.glob("*.nb[ic]")):
        if path.name.split(".", 1)[0] in modules:
            with contextlib.suppress(OSError):
                path.unlink()
                dropped = True
    with contextlib.suppress(OSError):
        temporary = cache / f"{SOURCES_DIGEST_FILE}.{os.getpid()}"
        temporary.write_text(current + "\n")
        os.replace(temporary, stamp)
    return dropped


def _compile_in_memory_when_uncachable() -> bool:
    """Probe numba's cache locators for this package; without one, turn its ``cache=True``
    kernels into in-memory compilation (numba's own :class:`NullCache`) and warn once.
    Returns whether caching is available."""
    try:
        from numba.core import caching, dispatcher

        impl = caching.CompileResultCacheImpl(_probe)
    except RuntimeError as exc:
        reason = str(exc)
    except (ImportError, AttributeError, TypeError):  # numba's internals moved: its own behaviour
        return True
    else:
        cache_path = getattr(getattr(impl, "_locator", None), "_cache_path", None)
        if cache_path:
            _drop_stale_kernels(cache_path)
        return True
    enable_caching = dispatcher.Dispatcher.enable_caching

    def enable_caching_or_compile_in_memory(self):
        try:
            enable_caching(self)
        except RuntimeError:
            if not str(getattr(self.py_func, "__module__", "")).startswith(__name__):
                raise  # somebody else's function: numba's own behaviour
            self._cache = caching.NullCache()

    dispatcher.Dispatcher.enable_caching = enable_caching_or_compile_in_memory
    warnings.warn(
        f"gidr cannot cache its compiled numba kernels ({reason}); they are compiled in memory, "
        "again in every process (slow start-up). Set the environment variable NUMBA_CACHE_DIR "
        "to a writable directory to cache them.", GidrCacheWarning, stacklevel=2)
    return False


def _freeze_at_exit() -> None:
    gc.freeze()


def _configure() -> bool:
    from numba.core import config

    _choose_threading_layer(config)
    if _may_use_omp(config):
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if os.environ.get("GIDR_EXIT_FREEZE", "") not in ("", "0"):
        atexit.register(_freeze_at_exit)
    return _compile_in_memory_when_uncachable()


_caching_available = _configure()
_launch_lock = threading.RLock()


def caching_available() -> bool:
    """Whether numba caches gidr's kernels on disk (else they are compiled in memory)."""
    return _caching_available


def parallel_launch_lock():
    """A context manager to hold around calls of gidr's parallel kernels.

    It serializes them across Python threads while numba's threading layer is ``workqueue``
    (which aborts the process on concurrent launches) and is a no-op otherwise. Reentrant."""
    try:
        import numba

        numba.np.ufunc.parallel._launch_threads()  # resolves the layer (a no-op once done)
        layer = numba.threading_layer()
    except (AttributeError, ImportError, ValueError):  # numba's internals moved: be safe
        return _launch_lock
    return _launch_lock if layer == "workqueue" else contextlib.nullcontext()


def serialized(function):
    """``function`` run under :func:`parallel_launch_lock` (idempotent)."""
    if getattr(function, "_gidr_serialized", False):
        return function

    @functools.wraps(function)
    def launching(*args, **kwargs):
        with parallel_launch_lock():
            return function(*args, **kwargs)

    launching._gidr_serialized = True
    return launching
