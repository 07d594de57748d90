"""Spectral initialization (Laplacian eigenmaps) for large graphs.

The layout is the reference's (:func:`gidr_reference.init.spectral_layout`):
eigenvectors 1..d of the symmetric normalized Laplacian ``L = I - D^{-1/2} A D^{-1/2}``
of ``A = (P + P^T) / 2``, signs fixed, one layout per connected component placed on a
grid (with a warning), a random layout (with a warning) when the eigensolver fails.
What changes is the cost.

Components of at least :data:`MULTILEVEL_MIN_POINTS` (100,000) points use the multilevel
eigenmap below, 10 times faster than ARPACK at a million points; smaller ones ARPACK.

Components below :data:`MULTILEVEL_MIN_POINTS` points: ARPACK
---------------------------------------------------------------
* ``A`` is built by the CSR merge of :mod:`gidr_numba.symmetrize` (no COO round trip), or
  taken as it is when ``P`` is already symmetric and clean (one parallel check: the merge
  would return ``P``'s own values, bit for bit), and ``M = D^{-1/2} A D^{-1/2}`` by scaling
  its values in place of two sparse products;
* ARPACK (``eigsh`` on M, largest eigenvalues) runs to ``tol = 1e-4``, umap-learn's
  tolerance, in place of 1e-8 (on the 70,000-point Fashion-MNIST graph: about 190
  products with M instead of 310), and the layout's columns keep a correlation above
  0.9999 with the reference's;
* ARPACK runs with one BLAS thread: its BLAS calls are small (vectors of n against
  ``ncv`` basis vectors), and waking BLAS threads for each of them costs more than it
  saves. Both changes together: 1.1 s instead of 6.5 s on that graph (two cores);
* the dense eigensolver is used only up to :data:`DENSE_EIGEN_MAX` = 500 points.

Larger components: a multilevel eigenmap (coarsen, solve, interpolate, smooth)
------------------------------------------------------------------------------
ARPACK's cost grows faster than the graph: the small eigenvalues crowd together (on the
million-point graph below, eigenvalues 1..6 all lie below 1e-4) and each restart costs a
pass over the whole basis (ARPACK alone: 0.5 s at 70,000 points, 1.8 s at 150,000, 5.7 s at
300,000, 14.6 s at 500,000, 42 s at 1,000,000). Above the threshold:

1. **Coarsen.** pyamg's standard aggregation (the first pass of its smoothed-aggregation
   solver) groups each root point with its graph neighbours, on the *pattern* of ``A``;
   the coarse graph is the Galerkin product ``A_c = T^T A T`` (``T`` the 0/1 aggregate
   matrix: summed weights, self-loops kept, so its degrees are the aggregates' volumes).
   This repeats until at most :data:`COARSEST_MAX_POINTS` points are left (1,000,000 ->
   33,911 -> 937 on the graph below; 70,000 -> 1,006 on Fashion-MNIST).
2. **Solve** the coarsest graph with the ARPACK path above (start vector from ``rng``).
   Its eigenvectors are the Rayleigh-Ritz approximations of the fine ones among the
   functions constant on each aggregate (``(D - A) u = lambda D u`` restricted to
   ``u = T u_c`` is the coarse graph's own problem).
3. **Interpolate and smooth**, level by level: ``u = T u_c``, then
   :data:`SMOOTHING_STEPS` lazy random-walk steps ``u <- (u + D^{-1} A u) / 2`` (they damp
   the jumps between aggregates, not the smooth part), then a Rayleigh-Ritz step on the
   span of the vectors (orthogonal to the trivial eigenvector ``D^{1/2} 1``), which
   also orders them by eigenvalue.
4. **Check**: every returned vector ``v`` must have ``||L v - theta v|| <=``
   :data:`RESIDUAL_TOL` (unit ``v``, ``theta`` its Rayleigh quotient; measured 0.75e-3 to
   1.4e-3 on the graphs below, 5e-2 to 1e-1 without the smoothing). Otherwise a
   :class:`UserWarning` says so and ARPACK solves the component (its own failure then
   falls back to the reference's random layout, as before).

The result is not a converged eigenvector: its span has canonical correlations 0.9999 and
0.9989 with the converged one on Fashion-MNIST (70,000 points), 0.997 on a 3,000-point
swiss roll, 0.999 and 0.994 on the million points. For an init that is immaterial: the
final 100-NN accuracy at 70,000 points is the same as with ARPACK (0.704-0.711 over three
seeds, both solvers, ``asv_bench/init_bench.py``).

Nearly detached pieces. On the million-point graph (Fashion-MNIST's 50 PCs upsampled along
the data manifold, 15 neighbours) a 9-point set hangs on the rest by weights below 1e-9 and
a 13-point set by weights below 1e-3; the exact bottom eigenvectors live on them
(eigenvalues 1e-10 and 1.5e-5, below the first global one, 3.1e-5). ARPACK at ``tol =
1e-4`` returns layouts dominated by them (participation ``(sum v^2)^2 / sum v^4`` of 12 to
18 points on three seeds), and so does LOBPCG with pyamg's smoothed-aggregation
preconditioner (scikit-learn's ``eigen_solver="amg"``, ``tol = 1e-4``: 18.9, in 16.9 s;
converged to ``tol = 1e-5`` it finds global vectors, in 27 iterations and 25 s).
The multilevel eigenmap cannot represent a set much smaller than a coarsest aggregate
(about 1,000 points there) and smoothing does not create one: its layouts are global
(participation above 10^5). A detached piece as large as a coarsest aggregate can still
show, as it would in the exact layout.

Measured (``asv_bench/init_bench.py``, fresh processes, 2 busy cores; init stage seconds,
final ``gdr-umap`` 100-NN label share):

=====================  ==============  ================  ==============  ================
graph                  ARPACK init s   multilevel init   ARPACK acc      multilevel acc
=====================  ==============  ================  ==============  ================
Fashion-MNIST 70,000   0.44-0.53       0.15-0.19         0.705-0.708     0.704-0.709
1,000,000 upsampled    47-66           3.3-5.3 (*)       0.684-0.704     0.626-0.650
=====================  ==============  ================  ==============  ================

(*) of which the multilevel eigenmap 1.3 s, the reference's connected components 1.2 s,
the symmetry check 0.5 s; one run at 9.1 s on a loaded machine. The lower accuracy at a
million points comes from the scale, not the eigensolver: ``rescale`` sets ``max|Y| = 10``,
and with a localized layout the 99.99 % of points off the detached sets end up within
``|y| < 0.12``, a small init, which this optimizer prefers at that size. The multilevel
layout rescaled to ``max|Y| = 0.12`` scores 0.680-0.683; ARPACK's with its bulk at
``|y| <= 10`` scores 0.663 (seed 0; at 70,000 points the scale changes nothing).

Those rows were measured with ``gdr-umap``'s earlier schedule (rate 1, 400 epochs). With its
current one (rate 3, 300 epochs), multilevel layout, seeds 0 and 1 at a million points: 0.599
/ 0.645 from ``max|Y| = 10``, 0.668 / 0.694 from 1, 0.688 / 0.690 from 0.12; at 70,000 points
(ARPACK, seeds 0-2) 0.707-0.708 from 10 and 0.705-0.707 from 0.12. So the unnormalized init's
extent now shrinks above 100,000 points (:func:`gidr_reference.init.unnormalized_extent`: 0.1
from a million points on), and the multilevel eigenmap is on from 100,000 points.

All randomness is the coarsest solve's ARPACK start vector, drawn from the generator given
(``ctx.rng("init")``), so the layout is reproducible; the numba kernels write each row
from a fixed order of operations and the dense steps run with one BLAS thread, so the
bits do not depend on the number of threads either.
"""
from __future__ import annotations

import contextlib
import warnings

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from numba import njit, prange
from scipy.sparse.linalg import eigsh

from gidr.progress import StepProgress
from gidr_numba.symmetrize import mean
from gidr_reference.init import fix_signs
from gidr_reference.init import spectral_layout as reference_spectral_layout

__all__ = [
    "COARSEST_MAX_POINTS", "DENSE_EIGEN_MAX", "EIGEN_TOL", "MULTILEVEL_MIN_POINTS", "RESIDUAL_TOL",
    "SMOOTHING_STEPS", "MultilevelError", "laplacian_eigenmap", "multilevel_eigenmap", "spectral_layout",
]

#: Graphs (or components) up to this many points use a dense eigensolver.
DENSE_EIGEN_MAX = 500
#: ARPACK's relative tolerance on the eigenvalues (umap-learn's value).
EIGEN_TOL = 1e-4
#: Components of at least this many points use :func:`multilevel_eigenmap`, smaller ones ARPACK;
#: None: ARPACK for every size. With the unnormalized init's extent shrinking above 100,000
#: points (:func:`gidr_reference.init.unnormalized_extent`) its layout ends as well as
#: ARPACK's at a million points (see the module docstring).
MULTILEVEL_MIN_POINTS: int | None = 100_000
#: Coarsening stops once a level has at most this many points; ARPACK solves that level.
COARSEST_MAX_POINTS = 2_000
#: Lazy random-walk steps after each interpolation.
SMOOTHING_STEPS = 20
#: Largest residual ``||L v - theta v||`` (unit ``v``) accepted from the multilevel eigenmap.
RESIDUAL_TOL = 1e-2
#: A level is kept only if aggregation shrinks it at least this much (else ARPACK solves it).
_MIN_COARSENING = 1.5
#: Fixed number of row blocks of the Galerkin kernel (independent of the thread count).
_ROW_BLOCKS = 64
#: ``v + v`` overflows above this; the symmetric fast path requires ``|v|`` below it.
_HALF_MAX = np.finfo(np.float64).max / 2


class MultilevelError(RuntimeError):
    """The multilevel eigenmap did not reach :data:`RESIDUAL_TOL` (or produced non-finite values)."""


def _normalized_adjacency(A: sp.csr_matrix) -> sp.csr_matrix:
    """``M = D^{-1/2} A D^{-1/2}`` with ``D = diag(row sums of A)`` (A has no empty row)."""
    inv_sqrt = 1.0 / np.sqrt(np.asarray(A.sum(axis=1)).ravel())
    rows = np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))
    return sp.csr_matrix((inv_sqrt[rows] * A.data * inv_sqrt[A.indices], A.indices, A.indptr), shape=A.shape)


def _one_blas_thread():
    """A context limiting BLAS to one thread (no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def laplacian_eigenmap(A: sp.csr_matrix, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """Eigenvectors 1..d of the symmetric normalized Laplacian of a connected graph.

    ARPACK below :data:`MULTILEVEL_MIN_POINTS` points (always when it is None),
    :func:`multilevel_eigenmap` from there on; when the latter misses its tolerance, a
    :class:`UserWarning` and ARPACK.

    Parameters
    ----------
    A : csr_matrix of shape (m, m)
        Symmetric, non-negative, connected, ``m >= n_components + 2``.
    n_components : int
    rng : numpy.random.Generator
        Draws ARPACK's start vector (as the reference does).

    Returns
    -------
    ndarray of shape (m, n_components), orthonormal columns, signs fixed

    Raises
    ------
    ArpackNoConvergence, ArpackError, numpy.linalg.LinAlgError
        When the eigensolver fails.
    """
    if MULTILEVEL_MIN_POINTS is not None and A.shape[0] >= MULTILEVEL_MIN_POINTS:
        try:
            return multilevel_eigenmap(A, n_components, rng)
        except MultilevelError as exc:
            warnings.warn(f"The multilevel spectral solver failed on {A.shape[0]:,} points ({exc}); solving "
                          "with ARPACK instead (slower).", UserWarning, stacklevel=5)
    return _arpack_eigenmap(A, n_components, rng)


def _arpack_eigenmap(A: sp.csr_matrix, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """Dense ``eigh`` up to :data:`DENSE_EIGEN_MAX` points, else ARPACK on M (tol :data:`EIGEN_TOL`)."""
    M = _normalized_adjacency(A)
    m, k = M.shape[0], n_components + 1
    if m <= DENSE_EIGEN_MAX:
        _, vectors = scipy.linalg.eigh(M.toarray(), subset_by_index=[m - k, m - 1])
    else:
        v0 = rng.uniform(-1.0, 1.0, size=m)
        with _one_blas_thread():
            values, vectors = eigsh(M, k=k, which="LA", v0=v0, tol=EIGEN_TOL, maxiter=50 * m,
                                    ncv=min(m, max(2 * k + 1, 20)))
        vectors = vectors[:, np.argsort(values, kind="stable")]
    return fix_signs(vectors[:, -2::-1][:, :n_components])


# ---------------------------------------------------------------------- multilevel eigenmap
def multilevel_eigenmap(A: sp.csr_matrix, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """Eigenvectors 1..d of the normalized Laplacian by coarsening, solving and interpolating.

    See the module docstring for the method: aggregation down to
    :data:`COARSEST_MAX_POINTS` points, ARPACK there, then per level interpolation,
    :data:`SMOOTHING_STEPS` lazy random-walk steps and a Rayleigh-Ritz step.

    Parameters
    ----------
    A : csr_matrix of shape (m, m)
        Symmetric, non-negative, connected, ``m >= n_components + 2``.
    n_components : int
    rng : numpy.random.Generator
        Draws the coarsest ARPACK solve's start vector.

    Returns
    -------
    ndarray of shape (m, n_components), orthonormal columns, ascending Rayleigh quotients,
    signs fixed

    Raises
    ------
    MultilevelError
        When a returned vector's residual exceeds :data:`RESIDUAL_TOL` or is not finite.
    ArpackNoConvergence, ArpackError, numpy.linalg.LinAlgError
        When the coarsest solve fails.
    """
    levels, labels = _hierarchy(sp.csr_matrix(A, dtype=np.float64), n_components)
    if len(levels) == 1:  # nothing to coarsen: the coarsest level is the graph itself
        return _arpack_eigenmap(A, n_components, rng)
    progress = StepProgress("init", "multilevel spectral level", len(levels))
    with _one_blas_thread():
        V = _arpack_eigenmap(levels[-1], n_components, rng)  # v = D^{1/2} u, shape (m_coarsest, k)
        progress.report(1, f"ARPACK on the coarsest {levels[-1].shape[0]:,} points")
        coarse_sqrt_degree = np.sqrt(_degrees(levels[-1]))
        for level in range(len(levels) - 2, -1, -1):
            graph = levels[level]
            degree = _degrees(graph)
            U = (V / coarse_sqrt_degree[:, None])[labels[level]]
            for _ in range(SMOOTHING_STEPS):
                U = 0.5 * (U + _walk(graph, degree, U))
            V, residual = _rayleigh_ritz(graph, degree, U)
            coarse_sqrt_degree = np.sqrt(degree)
            progress.report(len(levels) - level, f"{graph.shape[0]:,} points")
    if not (np.all(np.isfinite(V)) and np.all(residual <= RESIDUAL_TOL)):
        raise MultilevelError(f"largest residual {np.max(residual):.2e} > {RESIDUAL_TOL:g} after "
                              f"{SMOOTHING_STEPS} smoothing steps on {len(levels)} levels")
    return fix_signs(V)


def _hierarchy(A: sp.csr_matrix, n_components: int) -> tuple[list[sp.csr_matrix], list[np.ndarray]]:
    """Graphs from fine to coarse, and for each but the last the aggregate of each of its points."""
    levels, labels = [A], []
    while levels[-1].shape[0] > COARSEST_MAX_POINTS:
        graph = levels[-1]
        aggregate, n_coarse = _aggregate(graph)
        if n_coarse * _MIN_COARSENING > graph.shape[0] or n_coarse < n_components + 2:
            break
        levels.append(_galerkin(graph, aggregate, n_coarse))
        labels.append(aggregate)
    return levels, labels


def _aggregate(A: sp.csr_matrix) -> tuple[np.ndarray, int]:
    """pyamg's standard aggregation on the pattern of A: (aggregate of each point, number of them)."""
    from pyamg.aggregation import standard_aggregation

    T, _ = standard_aggregation(sp.csr_matrix((A.data, A.indices, A.indptr), shape=A.shape))
    T = T.tocsr()
    if np.any(np.diff(T.indptr) != 1):  # a point without neighbours (never in a connected graph)
        raise MultilevelError("the aggregation left points unassigned")
    return np.asarray(T.indices, dtype=np.int64), T.shape[1]


def _galerkin(A: sp.csr_matrix, aggregate: np.ndarray, n_coarse: int) -> sp.csr_matrix:
    """``T^T A T`` for the 0/1 aggregate matrix ``T``: summed weights, self-loops kept, sorted rows."""
    order = np.argsort(aggregate, kind="stable")
    starts = np.searchsorted(aggregate[order], np.arange(n_coarse + 1))
    indptr, indices = A.indptr, A.indices
    counts = _coarse_row_counts(indptr, indices, aggregate, starts, order, n_coarse)
    coarse_indptr = np.concatenate([[0], np.cumsum(counts)])
    coarse_indices = np.empty(coarse_indptr[-1], dtype=np.int64)
    coarse_data = np.empty(coarse_indptr[-1])
    _coarse_rows(indptr, indices, A.data, aggregate, starts, order, coarse_indptr, coarse_indices, coarse_data)
    return sp.csr_matrix((coarse_data, coarse_indices, coarse_indptr), shape=(n_coarse, n_coarse))


@njit(cache=True, parallel=True)
def _coarse_row_counts(indptr, indices, aggregate, starts, order, n_coarse):
    """Number of distinct coarse columns of each coarse row (one marker array per row block)."""
    counts = np.zeros(n_coarse, dtype=np.int64)
    for block in prange(_ROW_BLOCKS):
        marker = np.full(n_coarse, -1, dtype=np.int64)
        for a in range(block * n_coarse // _ROW_BLOCKS, (block + 1) * n_coarse // _ROW_BLOCKS):
            for p in range(starts[a], starts[a + 1]):
                i = order[p]
                for e in range(indptr[i], indptr[i + 1]):
                    b = aggregate[indices[e]]
                    if marker[b] != a:
                        marker[b] = a
                        counts[a] += 1
    return counts


@njit(cache=True, parallel=True)
def _coarse_rows(indptr, indices, data, aggregate, starts, order, out_indptr, out_indices, out_data):
    """Coarse rows: weights summed in a fixed order (members ascending, then their edges), sorted."""
    n_coarse = starts.shape[0] - 1
    for block in prange(_ROW_BLOCKS):
        position = np.full(n_coarse, -1, dtype=np.int64)
        for a in range(block * n_coarse // _ROW_BLOCKS, (block + 1) * n_coarse // _ROW_BLOCKS):
            first = out_indptr[a]
            end = first
            for p in range(starts[a], starts[a + 1]):
                i = order[p]
                for e in range(indptr[i], indptr[i + 1]):
                    b = aggregate[indices[e]]
                    if position[b] < first:
                        position[b] = end
                        out_indices[end] = b
                        out_data[end] = data[e]
                        end += 1
                    else:
                        out_data[position[b]] += data[e]
            sorting = np.argsort(out_indices[first:end])
            out_indices[first:end] = out_indices[first:end][sorting]
            out_data[first:end] = out_data[first:end][sorting]


def _degrees(A: sp.csr_matrix) -> np.ndarray:
    return np.asarray(A.sum(axis=1)).ravel()


def _walk(A: sp.csr_matrix, degree: np.ndarray, U: np.ndarray) -> np.ndarray:
    """``D^{-1} A U`` for ``U`` of shape (m, k)."""
    U = np.ascontiguousarray(U)
    out = np.empty_like(U)
    _walk_kernel(A.indptr, A.indices, A.data, 1.0 / degree, U, out)
    return out


@njit(cache=True, parallel=True)
def _walk_kernel(indptr, indices, data, inv_degree, U, out):
    """Row i of ``D^{-1} A U``, two columns per pass over the row (one gather of ``U[j]``)."""
    k = U.shape[1]
    for i in prange(U.shape[0]):
        for c in range(0, k, 2):
            pair = c + 1 < k
            first = 0.0
            second = 0.0
            for e in range(indptr[i], indptr[i + 1]):
                j = indices[e]
                first += data[e] * U[j, c]
                if pair:
                    second += data[e] * U[j, c + 1]
            out[i, c] = inv_degree[i] * first
            if pair:
                out[i, c + 1] = inv_degree[i] * second


def _rayleigh_ritz(A: sp.csr_matrix, degree: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rayleigh-Ritz for L on span{D^{1/2} u : columns u of U}, orthogonal to ``D^{1/2} 1``.

    Returns the Ritz vectors (columns, unit, ascending Ritz values) and their residual
    norms ``||L v - theta v||``, with ``L v = v - D^{1/2} (D^{-1} A) (D^{-1/2} v)``.
    """
    sqrt_degree = np.sqrt(degree)[:, None]
    trivial = sqrt_degree / np.linalg.norm(sqrt_degree)
    V = U * sqrt_degree
    V -= trivial @ (trivial.T @ V)
    Q = np.linalg.qr(V)[0]
    LQ = Q - sqrt_degree * _walk(A, degree, Q / sqrt_degree)
    H = Q.T @ LQ
    theta, Z = np.linalg.eigh(0.5 * (H + H.T))
    V, LV = Q @ Z, LQ @ Z
    return V, np.linalg.norm(LV - V * theta, axis=0)


# ---------------------------------------------------------------------- layout
def _symmetric_part(P: sp.csr_matrix) -> sp.csr_matrix:
    """``(P + P^T) / 2`` as clean CSR: ``P`` itself when that is already what the merge returns."""
    if (P.format == "csr" and P.dtype == np.float64 and P.shape[0] == P.shape[1]
            and _is_clean_symmetric(P.indptr, P.indices, P.data)):
        return P
    return mean(P)


def _is_clean_symmetric(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray) -> bool:
    """Rows strictly ascending, no diagonal, no zero, ``|v| < max/2``, and ``P[j, i] == P[i, j]``.

    Each entry above the diagonal must find its mirror with the same value; as many
    entries lie below as above, so the mirrors are all of them.
    """
    n = indptr.shape[0] - 1
    bad, balance = np.zeros(n, dtype=np.uint8), np.zeros(n, dtype=np.int64)
    _check_rows(indptr, indices, data, bad, balance)
    return not bad.any() and balance.sum() == 0


@njit(cache=True, parallel=True)
def _check_rows(indptr, indices, data, bad, balance):
    """Per row: ``bad[i] = 1`` on a failed check; ``balance[i]`` = entries below minus above the diagonal."""
    n = indptr.shape[0] - 1
    for i in prange(n):
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            value = data[e]
            if (j == i or j < 0 or j >= n or not (0.0 < abs(value) < _HALF_MAX)
                    or (e > indptr[i] and indices[e - 1] >= j)):
                bad[i] = 1
                break
            if j < i:
                balance[i] += 1
                continue
            balance[i] -= 1
            lo, hi = indptr[j], indptr[j + 1]
            while lo < hi:  # the first entry of row j with a column >= i
                middle = (lo + hi) // 2
                if indices[middle] < i:
                    lo = middle + 1
                else:
                    hi = middle
            if lo == indptr[j + 1] or indices[lo] != i or data[lo] != value:
                bad[i] = 1
                break


def spectral_layout(P: sp.spmatrix, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """Spectral initialization from the affinity graph ``P``: the reference's layout rules
    (:func:`gidr_reference.init.spectral_layout`: components, grid, fallbacks, warnings) with
    this module's eigensolvers and symmetrization.

    Returns
    -------
    Y : ndarray of shape (n_samples, n_components)
    """
    return reference_spectral_layout(P, n_components, rng, eigenmap=laplacian_eigenmap, symmetrize=_symmetric_part)
