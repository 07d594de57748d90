"""A memory estimate before a run, so that a run that cannot fit stops at once with a clear
error instead of being killed by the operating system after its work is lost.

The model (bytes, ``n`` points, ``d`` input columns, ``k`` neighbours, ``c`` components)::

    input copy    8 n d    when the input is not float32/float64 C-contiguous (converted)
    search copy   b n d    a neighbours stage's working copy (``copy_bytes_per_value`` b:
                           NN-descent searches a float32 copy, b = 4)
    per point     100 k + 80 c
    fixed         64 MiB   NN-descent's buffer of candidate pairs (at most 48 MiB) and the like

The per-point term holds the kNN graph (indices and distances), the directed and the
symmetrized P with the symmetrization's transpose, the optimizer's P (renumbered for
locality above 50,000 points), the embedding and its scratch arrays, and NN-descent's
heaps and candidate lists. Its constants sit above the measured peaks, so that the check
refuses only what cannot fit, without refusing runs that do (``tests/core/test_memory.py``
measures the arrays' traced peak of whole runs against the model):

================================  ===========================  ==================
run                               measured, beyond the input   the model
================================  ===========================  ==================
``gdr-umap`` (k = 15), traced     30,000 x 50: 96 MB;          117 MB; 266 MB
                                  120,000 x 50: 165 MB
``gdr-umap`` (k = 30), traced     120,000 x 50: 317 MB         446 MB
``tsne`` (k = 90), traced         30,000 x 50: 154 MB;         342 MB; 617 MB
                                  60,000 x 50: 460 MB
================================  ===========================  ==================

"Traced" is :mod:`tracemalloc`'s peak over the run (NumPy's and numba's arrays). Fresh-process peaks (``VmHWM``, 2026-12-02, Fashion-MNIST 50 PCs upsampled): 1.69 GiB at
1,000,000 points before the symmetrization and the optimizer's copies of P were trimmed,
4.6 GiB at 3,000,000 points with the new symmetrization but the old whole-matrix
renumbering (its temporaries were that run's peak; now renumbered in blocks); 2026-12-03,
after NN-descent's candidates were drawn in blocks and the optimizer ran without the caller's-order
P (:func:`gidr.locality.set_aside`): 3.36 GiB at 3,000,000 points and 10.50 GiB at 10,000,000
(``gdr-umap``; ``gdr-tsne`` 3.40 and 10.51), the float32 input included, where this model gives
5.8 and 19.3 GiB with the input: it stays well above the peaks, so that it refuses only what
cannot fit, at the price of refusing 10,000,000 x 50 on a machine with less than about 19 GiB
free. The earlier model (2.1 kB per point plus 400 bytes) would have refused 10,000,000 x 50 on 24 GB.

An out-of-core input (``np.memmap``, ``h5py.Dataset``, ``zarr.Array``: :mod:`gidr.outofcore`)
is not in memory: without ``pca`` its float32 copy counts too (``4 n d``, see
:func:`out_of_core_estimate`). With ``pca=p`` the search reads the ``n x p`` float32 scores
instead of the data (``d`` becomes ``p`` above), and the chunked PCA adds its own peak
(:func:`pca_bytes`)::

    pca           2 C + 8 (4 d^2 or 6 d l) + 4 n p

``C`` the chunk's bytes (:data:`gidr.outofcore.CHUNK_BYTES`), ``l = p + max(10, p)`` the
randomized method's subspace (data wider than :data:`gidr.outofcore.EXACT_MAX_FEATURES`).

The available memory is the smaller of the kernel's ``MemAvailable`` and what the process's
cgroup still allows. Set ``GIDR_MEMORY_CHECK=0`` to skip the check.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gidr.validation import GidrValueError

__all__ = ["estimate_bytes", "pca_bytes", "out_of_core_estimate", "available_bytes", "check_memory",
           "peak_resident_bytes", "PER_NEIGHBOR_BYTES", "PER_COMPONENT_BYTES", "FIXED_BYTES"]

#: Bytes per point and neighbour (graph, P and their temporaries), from the measured peaks.
PER_NEIGHBOR_BYTES = 100
#: Bytes per point and embedding component (the embedding and the optimizer's scratch).
PER_COMPONENT_BYTES = 80
#: Bytes of a run whatever its size (NN-descent's candidate-pair buffer, at most 48 MiB).
FIXED_BYTES = 64 * 2**20


def estimate_bytes(n_samples: int, n_features: int, n_neighbors: int, n_components: int, *,
                   converts_input: bool = False, copy_bytes_per_value: int = 0) -> int:
    """The model's peak memory of a run beyond the input itself (see the module docstring)."""
    n, d = int(n_samples), int(n_features)
    total = FIXED_BYTES + n * (PER_NEIGHBOR_BYTES * int(n_neighbors) + PER_COMPONENT_BYTES * int(n_components))
    if converts_input:
        total += 8 * n * d
    total += int(copy_bytes_per_value) * n * d
    return int(total)


def pca_bytes(n_samples: int, n_features: int, n_components: int) -> int:
    """The chunked PCA's own peak (:func:`gidr.outofcore.chunked_pca`): a chunk's float64 working
    copy with its read buffer and value check (two chunks), its float64 matrices (exact: the
    Gram, the covariance, the eigenvectors and LAPACK's workspace, ``4 d^2``; randomized: six
    ``d x l``), and the ``n x p`` float32 scores."""
    from gidr import outofcore

    n, d, p = int(n_samples), int(n_features), int(n_components)
    chunk = 8 * d * outofcore.chunk_rows(d)
    if d <= outofcore.EXACT_MAX_FEATURES:
        matrices = 4 * d * d
    else:
        matrices = 6 * d * min(d, n, p + max(outofcore.N_OVERSAMPLES, p))
    return int(2 * chunk + 8 * matrices + 4 * n * p)


def out_of_core_estimate(n_samples: int, n_features: int, n_neighbors: int, n_components: int, *,
                         pca: int | None, copy_bytes_per_value: int = 0) -> int:
    """The model's peak of a run on an input that is not in memory, or on any input with
    ``pca`` (whose own data then counts as already there): the float32 copy (no ``pca``) or
    the chunked PCA, plus the run on what the search reads."""
    n, d = int(n_samples), int(n_features)
    if pca is None:
        return 4 * n * d + estimate_bytes(n, d, n_neighbors, n_components, copy_bytes_per_value=copy_bytes_per_value)
    return pca_bytes(n, d, pca) + estimate_bytes(n, pca, n_neighbors, n_components,
                                                 copy_bytes_per_value=copy_bytes_per_value)


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_available() -> int | None:
    base = Path("/sys/fs/cgroup")
    try:
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((base / "memory.current").read_text().strip())
    except (OSError, ValueError):
        return None


def available_bytes() -> int | None:
    """Memory this process can still allocate, or None when the platform does not say."""
    values = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    return min(values) if values else None


def peak_resident_bytes() -> int | None:
    """This process's peak resident memory so far, in bytes: ``VmHWM`` of ``/proc/self/status``
    (``ru_maxrss`` where there is no ``/proc``: on Linux a forked child inherits its parent's
    ``ru_maxrss``, which is why ``VmHWM`` comes first), or None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak) if sys.platform == "darwin" else int(peak) * 1024
    except (ImportError, OSError, ValueError):  # pragma: no cover - Windows
        return None


def check_memory(X, n_samples: int, n_neighbors: int, n_components: int, *, copy_bytes_per_value: int = 0,
                 pca: int | None = None) -> None:
    """Raise :class:`GidrValueError` when the run's estimate exceeds the available memory.

    ``X`` is the checked input: an array, or a :class:`gidr.outofcore.RowSource` (an
    out-of-core input, or any input with ``pca``), which is checked before it is read."""
    if os.environ.get("GIDR_MEMORY_CHECK", "1") == "0":
        return
    available = available_bytes()
    if available is None:
        return
    n_features = int(np.shape(X)[1]) if np.ndim(X) == 2 else 0
    if getattr(X, "out_of_core", False) or pca is not None:
        _check_row_source(X, n_samples, n_features, n_neighbors, n_components, copy_bytes_per_value, pca, available)
        return
    dense = isinstance(X, np.ndarray)
    converts = dense and not (X.dtype in (np.float32, np.float64) and X.flags.c_contiguous)
    needed = estimate_bytes(n_samples, n_features, n_neighbors, n_components, converts_input=converts,
                            copy_bytes_per_value=copy_bytes_per_value if dense else 0)
    if needed > available:
        raise GidrValueError(
            f"The run needs about {needed / 2**30:.1f} GiB beyond its input ({n_samples} points, "
            f"{n_neighbors} neighbours, {n_features} features), but only {available / 2**30:.1f} GiB are "
            "available. Ways out: pass float32 data (X.astype(np.float32)); reduce wide data first "
            "(pca=50 in the pipeline, or sklearn.decomposition.PCA(50)); use fewer neighbours (n_neighbors, "
            "or a smaller perplexity); fit a subsample and embed the rest with transform. Set "
            "GIDR_MEMORY_CHECK=0 to run anyway.")


def _check_row_source(X, n_samples: int, n_features: int, n_neighbors: int, n_components: int,
                      copy_bytes_per_value: int, pca: int | None, available: int) -> None:
    """The check of :func:`check_memory` for a row-chunked input (or any input with ``pca``)."""
    needed = out_of_core_estimate(n_samples, n_features, n_neighbors, n_components, pca=pca,
                                  copy_bytes_per_value=copy_bytes_per_value)
    if needed <= available:
        return
    stored = "in memory" if not getattr(X, "out_of_core", False) else f"stored as {np.dtype(X.dtype)}"
    if pca is None:
        reduced = min(50, n_features)
        with_pca = out_of_core_estimate(n_samples, n_features, n_neighbors, n_components, pca=reduced,
                                        copy_bytes_per_value=copy_bytes_per_value)
        raise GidrValueError(
            f"The run needs about {needed / 2**30:.1f} GiB: the input ({n_samples} points x {n_features} "
            f"features, {stored}) is read into memory as float32 ({4 * n_samples * n_features / 2**30:.1f} GiB), "
            f"plus the graph and the embedding ({n_neighbors} neighbours); only {available / 2**30:.1f} GiB are "
            f"available. Ways out: pass pca={reduced} to the pipeline (a chunked PCA reads the input in chunks "
            f"and keeps {n_samples} x {reduced} float32 scores: about {with_pca / 2**30:.1f} GiB in all); store "
            "fewer features, or a smaller dtype and fewer rows (float32 is the smallest dtype gidr searches, so "
            "a float64 or integer file is copied as float32 already); fit a subsample and embed the rest with "
            "transform. Set GIDR_MEMORY_CHECK=0 to run anyway.")
    raise GidrValueError(
        f"The run needs about {needed / 2**30:.1f} GiB beyond its input: the chunked PCA of {n_samples} points x "
        f"{n_features} features ({stored}) to {pca} components, then the graph and the embedding "
        f"({n_neighbors} neighbours); only {available / 2**30:.1f} GiB are available. Ways out: a smaller pca; "
        "fewer neighbours; fit a subsample and embed the rest with transform. Set GIDR_MEMORY_CHECK=0 to run "
        "anyway.")
