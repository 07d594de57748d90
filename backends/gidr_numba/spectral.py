"""Spectral initialization (Laplacian eigenmaps) for large graphs.

The layout is the reference's (:func:`gidr_reference.init.spectral_layout`):
eigenvectors 1..d of the symmetric normalized Laplacian ``L = I - D^{-1/2} A D^{-1/2}``
of ``A = (P + P^T) / 2``, signs fixed, one layout per connected component placed on a
grid (with a warning), a random layout (with a warning) when the eigensolver fails.
What changes is the cost:

* ``A`` is built by the CSR merge of :mod:`gidr_numba.symmetrize` (no COO round trip)
  and ``M = D^{-1/2} A D^{-1/2}`` by scaling its values in place of two sparse products;
* ARPACK (``eigsh`` on M, largest eigenvalues) runs to ``tol = 1e-4``, umap-learn's
  tolerance, in place of 1e-8 (on the 70,000-point Fashion-MNIST graph: about 190
  products with M instead of 310), and the layout's columns keep a correlation above
  0.9999 with the reference's;
* ARPACK runs with one BLAS thread: its BLAS calls are small (vectors of n against
  ``ncv`` basis vectors), and waking BLAS threads for each of them costs more than it
  saves. Both changes together: 1.1 s instead of 6.5 s on that graph (two cores);
* the dense eigensolver is used only up to :data:`DENSE_EIGEN_MAX` = 500 points.

The start vector is drawn from the generator given (``ctx.rng("init")``), as in the
reference, so the layout is reproducible.
"""
from __future__ import annotations

import contextlib

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse.linalg import eigsh

from gidr_numba.symmetrize import mean
from gidr_reference.init import fix_signs
from gidr_reference.init import spectral_layout as reference_spectral_layout

__all__ = ["DENSE_EIGEN_MAX", "EIGEN_TOL", "laplacian_eigenmap", "spectral_layout"]

#: Graphs (or components) up to this many points use a dense eigensolver.
DENSE_EIGEN_MAX = 500
#: ARPACK's relative tolerance on the eigenvalues (umap-learn's value).
EIGEN_TOL = 1e-4


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


def spectral_layout(P: sp.spmatrix, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """Spectral initialization from the affinity graph ``P``: the reference's layout rules
    (:func:`gidr_reference.init.spectral_layout`: components, grid, fallbacks, warnings) with
    this module's faster eigensolver and symmetrization.

    Returns
    -------
    Y : ndarray of shape (n_samples, n_components)
    """
    return reference_spectral_layout(P, n_components, rng, eigenmap=laplacian_eigenmap, symmetrize=mean)
