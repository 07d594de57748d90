"""Initial embeddings: spectral, PCA, random and user-given, and their rescaling.

Every layout function returns a new float64 array of shape (n_samples, n_components),
finite even for degenerate input (identical points, disconnected graphs), and takes its
randomness from the :class:`numpy.random.Generator` it is given.
"""
from __future__ import annotations

import warnings
from typing import Callable, Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, eigsh

from gidr.validation import GidrValueError, format_error
from gidr_reference.symmetrize import clean

__all__ = [
    "DENSE_EIGEN_MAX",
    "fix_signs",
    "rescale",
    "unnormalized_extent",
    "add_jitter",
    "laplacian_eigenmap",
    "spectral_layout",
    "pca_layout",
    "random_layout",
    "check_init_array",
    "place_from_sample",
]

#: Graphs (or connected components) up to this many points use a dense eigensolver.
DENSE_EIGEN_MAX = 500
#: Normalized pipelines start small (openTSNE's convention): std(Y[:, 0]) = 1e-4.
NORMALIZED_STD = 1e-4
#: Unnormalized pipelines start wide (umap-learn's convention): max |Y| = 10, up to
#: :data:`EXTENT_SHRINK_FROM` points (see :func:`unnormalized_extent`).
UNNORMALIZED_MAX = 10.0
#: Above this many points the unnormalized "auto" extent shrinks as ``(EXTENT_SHRINK_FROM / n)^2``.
EXTENT_SHRINK_FROM = 100_000
#: The smallest unnormalized "auto" extent (reached at about 1,000,000 points).
MIN_UNNORMALIZED_MAX = 0.1
#: Jitter added to data-derived inits of unnormalized pipelines, relative to max |Y|
#: (1e-5 * 10 = umap-learn's absolute 1e-4 after the rescale to max |Y| = 10).
JITTER_RELATIVE = 1e-5
#: Components laid out separately sit on a unit grid, each within this radius of its cell.
_COMPONENT_RADIUS = 0.4
#: Rows of P read at once by :func:`place_from_sample` (its temporaries: about 40 bytes per
#: stored entry of the block).
PLACE_BLOCK_ROWS = 2**18
#: Points that no sampled point reaches are laid out beside the others, in a box this
#: share of the placed layout's extent.
_UNREACHED_SHARE = 0.1


def fix_signs(Y: np.ndarray) -> np.ndarray:
    """Flip columns so that the entry of largest absolute value of each column is positive.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_components)

    Returns
    -------
    ndarray of shape (n_samples, n_components), a new array
    """
    Y = np.array(Y, dtype=np.float64)
    if len(Y) == 0:
        return Y
    largest = Y[np.argmax(np.abs(Y), axis=0), np.arange(Y.shape[1])]
    return Y * np.where(largest < 0, -1.0, 1.0)


def unnormalized_extent(n_samples: int) -> float:
    """``max|Y|`` of an unnormalized ``"auto"`` init of ``n_samples`` points.

    10 (umap-learn's) up to :data:`EXTENT_SHRINK_FROM` points, then ``10 (1e5 / n)^2``, at
    least :data:`MIN_UNNORMALIZED_MAX` (0.1 from about a million points on). At a million
    points the unnormalized GDR optimizer ends with a better layout from a small start
    (Fashion-MNIST's 50 PCs upsampled along the manifold, ``gdr-umap``, multilevel spectral
    layout, seeds 0 and 1: mean share of the 100 embedding neighbours with the point's label
    0.599 / 0.645 from ``max|Y| = 10``, 0.668 / 0.694 from 1, 0.688 / 0.690 from 0.12); at
    70,000 points the scale hardly matters (0.707-0.708 from 10, 0.705-0.707 from 0.12).
    """
    if n_samples <= EXTENT_SHRINK_FROM:
        return UNNORMALIZED_MAX
    return max(MIN_UNNORMALIZED_MAX, UNNORMALIZED_MAX * (EXTENT_SHRINK_FROM / n_samples) ** 2)


def rescale(Y: np.ndarray, scale: str | float, normalized: bool) -> np.ndarray:
    """Rescale an initial embedding (multiplication only, no centring).

    ``scale="auto"``: normalized → ``std(Y[:, 0]) = 1e-4``; unnormalized → ``max|Y| =``
    :func:`unnormalized_extent` (10 up to 100,000 points, smaller above).
    A float sets ``std(Y[:, 0]) = scale``. When the statistic is 0 (every point at the
    same place) ``Y`` is returned unchanged.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_components)
    scale : "auto" or float > 0
    normalized : bool

    Returns
    -------
    ndarray of shape (n_samples, n_components), a new array
    """
    Y = np.array(Y, dtype=np.float64)
    if scale == "auto" and not normalized:
        current, target = np.abs(Y).max(), unnormalized_extent(Y.shape[0])
    else:
        current = Y[:, 0].std()
        target = NORMALIZED_STD if scale == "auto" else float(scale)
    if not np.isfinite(current) or current == 0:
        return Y
    return Y * (target / current)


def add_jitter(Y: np.ndarray, rng: np.random.Generator, relative: float = JITTER_RELATIVE) -> np.ndarray:
    """``Y + N(0, (relative * max|Y|)^2)``: breaks exact ties (umap-learn's init noise).

    Returns
    -------
    ndarray of shape (n_samples, n_components), a new array
    """
    Y = np.asarray(Y, dtype=np.float64)
    size = np.abs(Y).max()
    return Y + rng.normal(scale=relative * (size if size > 0 else 1.0), size=Y.shape)


def _normalized_adjacency(A: sp.spmatrix) -> sp.csr_matrix:
    """M = D^{-1/2} A D^{-1/2}, D = diag(row sums of A); L_sym = I - M."""
    degree = np.asarray(A.sum(axis=1)).ravel()
    inv_sqrt = 1.0 / np.sqrt(degree)
    return sp.csr_matrix(sp.diags(inv_sqrt) @ A @ sp.diags(inv_sqrt))


def laplacian_eigenmap(A: sp.spmatrix, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """Eigenvectors 1..d of the symmetric normalized Laplacian of a connected graph.

    ``L_sym = I - D^{-1/2} A D^{-1/2}``; its eigenvectors for the d + 1 smallest eigenvalues
    (the largest of ``M = D^{-1/2} A D^{-1/2}``) are computed, the first (eigenvalue 0,
    proportional to ``sqrt(degree)``) is dropped. Dense ``eigh`` up to
    :data:`DENSE_EIGEN_MAX` points, else ARPACK ``eigsh`` on M with a start vector drawn
    from ``rng``. Signs are fixed by :func:`fix_signs`. This is umap-learn's spectral
    layout (sklearn's ``spectral_embedding`` further divides by ``sqrt(degree)``).

    Parameters
    ----------
    A : sparse matrix of shape (m, m)
        Symmetric, non-negative, connected, m >= n_components + 2.
    n_components : int
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (m, n_components), orthonormal columns

    Raises
    ------
    ArpackNoConvergence, ArpackError, numpy.linalg.LinAlgError
        When the eigensolver fails.
    """
    M = _normalized_adjacency(A)
    m, k = M.shape[0], n_components + 1
    if m <= DENSE_EIGEN_MAX:
        _, vectors = scipy.linalg.eigh(M.toarray(), subset_by_index=[m - k, m - 1])
    else:
        v0 = rng.uniform(-1.0, 1.0, size=m)
        values, vectors = eigsh(M, k=k, which="LA", v0=v0, tol=1e-8, maxiter=50 * m,
                                ncv=min(m, max(2 * k + 1, 20)))
        vectors = vectors[:, np.argsort(values, kind="stable")]
    # eigenvalues ascend: the last column is the trivial one; the next ones are 1..d
    return fix_signs(vectors[:, -2::-1][:, :n_components])


def spectral_layout(P: sp.spmatrix, n_components: int, rng: np.random.Generator, *,
                    eigenmap: Callable = None, symmetrize: Callable = None) -> np.ndarray:
    """Spectral initialization from the affinity graph ``P``.

    ``P`` is symmetrized as ``A = (P + P^T) / 2`` (it may be directed with
    ``symmetrize='none'``). A connected graph gets :func:`laplacian_eigenmap`. A
    disconnected graph (with a :class:`UserWarning`) gets one layout per connected
    component, spectral for components of more than ``n_components + 1`` points and
    uniform random otherwise, each scaled to radius 0.4 and centred on its own point of a
    unit grid (largest component first). An eigensolver failure falls back to a random
    layout of that component, with a :class:`UserWarning`; so do non-finite weights and
    non-finite eigenvectors (never a layout of NaN).

    Parameters
    ----------
    P : sparse matrix of shape (n_samples, n_samples)
    n_components : int
    rng : numpy.random.Generator
    eigenmap : callable, optional
        ``eigenmap(A, n_components, rng)`` for one connected component; default
        :func:`laplacian_eigenmap` (faster backends pass their own solver).
    symmetrize : callable, optional
        ``symmetrize(P) -> (P + P^T) / 2`` as clean CSR; default the reference's.

    Returns
    -------
    Y : ndarray of shape (n_samples, n_components)
    """
    eigenmap = eigenmap or laplacian_eigenmap
    A = sp.csr_matrix(P, dtype=np.float64)
    A = symmetrize(A) if symmetrize is not None else clean((A + A.T) * 0.5)
    n_parts, labels = connected_components(A, directed=False)
    if n_parts == 1:
        return _component_layout(A, n_components, rng, eigenmap)
    warnings.warn(
        f"The affinity graph has {n_parts} connected components; the spectral init lays out each one "
        f"separately and places them on a grid. A larger n_neighbors may connect the graph.",
        UserWarning, stacklevel=3,
    )
    sizes = np.bincount(labels, minlength=n_parts)
    order = np.lexsort((np.arange(n_parts), -sizes))  # largest first, then by label
    centres = _grid(n_parts, n_components)
    Y = np.empty((A.shape[0], n_components))
    for position, part in enumerate(order):
        members = np.flatnonzero(labels == part)
        layout = _component_layout(A[members][:, members].tocsr(), n_components, rng, eigenmap)
        layout = layout - layout.mean(axis=0)
        size = np.abs(layout).max()
        layout = layout / size if size > 0 else layout
        Y[members] = centres[position] + _COMPONENT_RADIUS * layout
    return Y


def _component_layout(A: sp.csr_matrix, n_components: int, rng: np.random.Generator,
                      eigenmap: Callable) -> np.ndarray:
    m = A.shape[0]
    if m <= n_components + 1:
        return rng.uniform(-1.0, 1.0, size=(m, n_components))
    try:
        if not np.all(np.isfinite(A.data)):
            raise np.linalg.LinAlgError(f"{int(np.size(A.data) - np.isfinite(A.data).sum())} graph weights are "
                                        "NaN or infinite")
        with np.errstate(all="ignore"):
            layout = eigenmap(A, n_components, rng)
        if not np.all(np.isfinite(layout)):
            raise np.linalg.LinAlgError("the eigenvectors are not finite")
        return layout
    except (ArpackNoConvergence, ArpackError, np.linalg.LinAlgError) as exc:
        warnings.warn(f"The spectral init's eigensolver failed ({exc}); using a random init for "
                      f"{m} points instead.", UserWarning, stacklevel=4)
        return rng.uniform(-1.0, 1.0, size=(m, n_components))


def _grid(n_points: int, n_dims: int) -> np.ndarray:
    """The first ``n_points`` points of the unit grid {0, ..., s-1}^d, s^d >= n_points."""
    side = 1
    while side**n_dims < n_points:
        side += 1
    return np.stack(np.unravel_index(np.arange(n_points), (side,) * n_dims), axis=1).astype(np.float64)


def pca_layout(X: np.ndarray, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """Scores on the top principal components: ``Y = U_{:, :d} S_{:d}`` for ``X - mean = U S V^T``.

    Signs by :func:`fix_signs`. Identical rows (zero variance) fall back to a standard
    normal layout with a :class:`UserWarning`. Components beyond the rank of X (or with
    singular value below 1e-10 S_0) are filled with normal noise of standard deviation
    1e-4 * std(Y[:, 0]), so that no axis starts (and stays) collapsed.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_components : int
    rng : numpy.random.Generator

    Returns
    -------
    Y : ndarray of shape (n_samples, n_components)
    """
    X = np.asarray(X, dtype=np.float64)
    if np.all(np.ptp(X, axis=0) == 0):
        warnings.warn("The 'pca' init got data with zero variance (all rows identical); using a random "
                      "init instead.", UserWarning, stacklevel=3)
        return random_layout(X.shape[0], n_components, rng)
    U, S = _top_singular(X - X.mean(axis=0), n_components, rng)
    Y = np.zeros((X.shape[0], n_components))
    rank = min(n_components, len(S))
    Y[:, :rank] = U[:, :rank] * S[:rank]
    Y = fix_signs(Y)
    collapsed = np.ones(n_components, dtype=bool)
    collapsed[:rank] = S[:rank] <= 1e-10 * S[0]
    if collapsed.any():
        noise = rng.normal(scale=1e-4 * Y[:, 0].std(), size=(X.shape[0], int(collapsed.sum())))
        Y[:, collapsed] = noise
    return Y


def random_layout(n_samples: int, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """``Y ~ N(0, 1)`` i.i.d., shape (n_samples, n_components)."""
    return rng.standard_normal((n_samples, n_components))


def check_init_array(array: Any, n_samples: int | None, n_components: int) -> np.ndarray:
    """Validate a user-given initial embedding and return a float64 copy.

    Parameters
    ----------
    array : array-like of shape (n_samples, n_components), finite
    n_samples : int or None
        None accepts any number of rows (when it is not known yet).
    n_components : int

    Returns
    -------
    ndarray of shape (n_samples, n_components)
    """
    what = "The 'array' parameter of init 'array'"
    if array is None:
        raise GidrValueError(format_error(what, "an array of shape (n_samples, n_components)", None,
                                          "Pass init=<array> (or init={'name': 'array', 'array': <array>}), "
                                          "or pick init 'spectral', 'pca' or 'random'."))
    Y = np.array(array, dtype=np.float64)
    rows = Y.shape[0] if n_samples is None and Y.ndim == 2 else n_samples
    if Y.shape != (rows, n_components):
        expected = f"({'n_samples' if n_samples is None else n_samples}, {n_components})"
        raise GidrValueError(format_error(what, f"an array of shape {expected} (n_samples, n_components)", Y))
    if not np.all(np.isfinite(Y)):
        raise GidrValueError(format_error(what, "finite", f"{int(np.size(Y) - np.isfinite(Y).sum())} NaN or "
                                          "infinite value(s)"))
    return Y


#: Above this many cells the PCA init uses a randomized SVD (Halko et al. 2011).
EXACT_SVD_MAX_CELLS = 2_000_000


def _top_singular(Xc: np.ndarray, n_components: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Top left singular vectors and values of the centred data ``Xc``.

    Small inputs: the exact thin SVD. Large inputs: a randomized range finder with
    ``n_components + 10`` probes and 4 power iterations (each followed by a QR step), then
    the exact SVD of the small projected matrix. For an init, the few leading directions it
    returns are as good as exact ones, at O(n d k) instead of O(n d min(n, d)) cost.
    """
    if Xc.size <= EXACT_SVD_MAX_CELLS or min(Xc.shape) <= n_components + 10:
        U, S, _ = scipy.linalg.svd(Xc, full_matrices=False)
        return U, S
    probes = rng.standard_normal((Xc.shape[1], n_components + 10))
    Q, _ = np.linalg.qr(Xc @ probes)
    for _ in range(4):
        Q, _ = np.linalg.qr(Xc.T @ Q)
        Q, _ = np.linalg.qr(Xc @ Q)
    U_small, S, _ = scipy.linalg.svd(Q.T @ Xc, full_matrices=False)
    return Q @ U_small, S


def place_from_sample(P: sp.spmatrix, rows: np.ndarray, Y_rows: np.ndarray, rng: np.random.Generator, *,
                      block_rows: int = PLACE_BLOCK_ROWS) -> tuple[np.ndarray, dict]:
    """Positions for every point from those of a sample: the start of a run that first embeds
    a sample of the points (the pipeline's ``landmarks`` switch).

    The points ``rows`` keep ``Y_rows``. Then, pass by pass, every point not yet placed that
    has a placed neighbour in ``P`` is put at the ``P``-weighted mean of its placed
    neighbours, all from the positions of the pass before (so the result does not depend on
    the order of the rows). Points that no pass reaches (connected components without a
    sampled point) get a spectral layout of their own graph, with a :class:`UserWarning`,
    in a box of a tenth of the placed layout's extent beside it.

    Parameters
    ----------
    P : sparse matrix of shape (n_samples, n_samples)
        Non-negative affinities; row ``i``'s entries are ``i``'s neighbours.
    rows : ndarray of int
        Distinct row numbers of the sample.
    Y_rows : ndarray of shape (len(rows), n_components)
        Their positions (finite).
    rng : numpy.random.Generator
        For the spectral layout of points no sampled point reaches.
    block_rows : int
        Rows read at once (speed and memory only, never the result).

    Returns
    -------
    Y : ndarray of shape (n_samples, n_components), float64
    record : dict
        ``passes`` run and the number of points placed in each (``placed``), and
        ``unreached``: points laid out beside.
    """
    P = sp.csr_matrix(P)
    n = P.shape[0]
    rows = np.asarray(rows, dtype=np.int64)
    Y_rows = np.asarray(Y_rows, dtype=np.float64)
    Y = np.zeros((n, Y_rows.shape[1]))
    placed = np.zeros(n, dtype=bool)
    Y[rows] = Y_rows
    placed[rows] = True
    counts = []
    while True:
        todo = np.flatnonzero(~placed)
        if todo.size == 0:
            break
        values, reached = _placed_mean(P, todo, placed, Y, block_rows)
        if not reached.any():
            break
        Y[todo[reached]] = values[reached]
        placed[todo[reached]] = True
        counts.append(int(reached.sum()))
    unreached = np.flatnonzero(~placed)
    if unreached.size:
        warnings.warn(f"{unreached.size} points are in parts of the graph with no sampled point; they are laid "
                      "out on their own beside the others. A larger sample (landmarks) or n_neighbors may reach "
                      "them.", UserWarning, stacklevel=3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the components' own message: said above
            layout = spectral_layout(P[unreached][:, unreached], Y.shape[1], rng)
        low, high = Y[placed].min(axis=0), Y[placed].max(axis=0)
        extent = float(np.max(high - low)) or 1.0
        span = np.ptp(layout, axis=0)
        layout = (layout - layout.min(axis=0)) / np.where(span > 0, span, 1.0)
        offset = low.copy()
        offset[0] = high[0] + _UNREACHED_SHARE * extent
        Y[unreached] = offset + _UNREACHED_SHARE * extent * layout
    return Y, {"passes": len(counts), "placed": counts, "unreached": int(unreached.size)}


def _placed_mean(P: sp.csr_matrix, todo: np.ndarray, placed: np.ndarray, Y: np.ndarray,
                 block_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row in ``todo``: the ``P``-weighted mean of its placed neighbours' positions,
    and whether it has any (weight > 0)."""
    out = np.zeros((todo.size, Y.shape[1]))
    reached = np.zeros(todo.size, dtype=bool)
    for start in range(0, todo.size, block_rows):
        block = todo[start:start + block_rows]
        first = P.indptr[block]
        lengths = P.indptr[block + 1] - first
        owner = np.repeat(np.arange(block.size), lengths)
        entry = np.arange(int(lengths.sum())) + np.repeat(first - (np.cumsum(lengths) - lengths), lengths)
        columns = P.indices[entry]
        weights = np.where(placed[columns], P.data[entry].astype(np.float64), 0.0)
        total = np.bincount(owner, weights, minlength=block.size)
        hit = total > 0
        for c in range(Y.shape[1]):
            sums = np.bincount(owner, weights * Y[columns, c], minlength=block.size)
            out[start:start + block.size, c] = np.divide(sums, total, out=np.zeros(block.size), where=hit)
        reached[start:start + block.size] = hit
    return out, reached
