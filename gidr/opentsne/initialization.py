"""openTSNE-shaped initializations over gidr's ``init`` stages.

Each function runs the registered ``init`` stage of that name in a normalized context, so
the layout is rescaled to ``std(Y[:, 0]) = 1e-4`` (openTSNE's convention, and gidr's for
normalized pipelines). ``median`` and ``weighted_mean`` place new points for
:meth:`~gidr.opentsne.TSNEEmbedding.prepare_partial`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from gidr.types import Context
from gidr.validation import GidrValueError, check_array, format_error, resolve_seed

__all__ = ["pca", "spectral", "random", "rescale", "jitter", "median", "weighted_mean"]


def _layout(name: str, X, P, n_samples: int, n_components: int, random_state: Any, backend: str) -> np.ndarray:
    from gidr.plugins import get_registry

    registry = get_registry()
    stage = registry.get("init", name, backend).bind(registry, backend)()
    ctx = Context(n_samples=n_samples, n_components=int(n_components), normalized=True,
                  seed=resolve_seed(random_state), registry=registry)
    return np.ascontiguousarray(stage.compute(X, P, ctx), dtype=np.float64)


def rescale(x: np.ndarray, inplace: bool = False, target_std: float = 1e-4) -> np.ndarray:
    """``x`` scaled so that ``std(x[:, 0]) = target_std`` (a copy unless ``inplace``)."""
    x = x if inplace else np.array(x, dtype=np.float64)
    x /= np.std(x[:, 0]) / target_std
    return x


def jitter(x: np.ndarray, inplace: bool = False, scale: float = 0.01, random_state: Any = None) -> np.ndarray:
    """``x`` plus normal noise of standard deviation ``scale * std(x[:, 0])``."""
    x = x if inplace else np.array(x, dtype=np.float64)
    rng = np.random.default_rng(resolve_seed(random_state))
    x += rng.normal(0.0, scale * np.std(x[:, 0]), x.shape)
    return x


def pca(X, n_components: int = 2, svd_solver: str = "auto", random_state: Any = None, verbose: bool = False,
        add_jitter: bool = True, backend: str = "auto") -> np.ndarray:
    """Scores on the top ``n_components`` principal components, ``std(Y[:, 0]) = 1e-4``.

    ``svd_solver`` is accepted for openTSNE's signature; gidr's ``pca`` stage picks its own
    (exact below a size, randomized above). ``add_jitter`` adds noise of 1 % of that
    standard deviation, as openTSNE's.

    Returns
    -------
    ndarray of shape (n_samples, n_components)
    """
    X = check_array(X)
    seed = resolve_seed(random_state)
    Y = _layout("pca", X, None, X.shape[0], n_components, seed, backend)
    return jitter(Y, inplace=True, random_state=seed + 1) if add_jitter else Y


def spectral(A, n_components: int = 2, tol: float = 1e-4, max_iter: Any = None, random_state: Any = None,
             verbose: bool = False, add_jitter: bool = True, backend: str = "auto") -> np.ndarray:
    """openTSNE's spectral start: the diffusion map of the random walk on the affinity graph
    ``A``, ``std(Y[:, 0]) = 1e-4``.

    The leading ``n_components + 1`` solutions of ``A v = lambda D v`` (``D`` the degrees;
    scipy's ``eigsh`` with ``tol`` and ``max_iter``, started from a vector drawn with
    ``random_state``), each multiplied by its eigenvalue, the constant one dropped. A graph of
    several connected components has no single such map (its leading eigenvectors are the
    components' indicators): it gets gidr's ``spectral`` stage instead, which lays out each
    component separately. ``add_jitter`` as for :func:`pca`.
    """
    from scipy.sparse.csgraph import connected_components
    from scipy.sparse.linalg import eigsh

    P = sp.csr_matrix(A, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] != P.shape[1]:
        raise GidrValueError(format_error("The affinity matrix A of spectral", "a square matrix", P,
                                          "Pass the affinities' P (n_samples x n_samples)."))
    seed = resolve_seed(random_state)
    k = int(n_components) + 1
    n_parts = connected_components(P, directed=False)[0]
    if n_parts > 1 or k >= P.shape[0]:
        Y = _layout("spectral", None, P, P.shape[0], n_components, seed, backend)
    else:
        degrees = np.asarray(P.sum(axis=1)).ravel()
        v0 = np.random.RandomState(seed % 2**32).uniform(-1, 1, P.shape[0])
        values, vectors = eigsh(P, M=sp.diags(degrees), k=k, tol=tol, maxiter=max_iter, which="LM", v0=v0)
        order = np.argsort(values)[::-1]
        Y = rescale(np.ascontiguousarray((vectors[:, order] * values[order])[:, 1:]), inplace=True)
    return jitter(Y, inplace=True, random_state=seed + 1) if add_jitter else Y


def random(n_samples, n_components: int = 2, random_state: Any = None, verbose: bool = False,
           backend: str = "auto") -> np.ndarray:
    """Isotropic normal positions with ``std(Y[:, 0]) = 1e-4``; ``n_samples`` may be a data matrix."""
    if isinstance(n_samples, np.ndarray):
        n_samples = n_samples.shape[0]
    return _layout("random", None, None, int(n_samples), n_components, random_state, backend)


def median(embedding: np.ndarray, neighbors: np.ndarray, verbose: bool = False) -> np.ndarray:
    """Each new point at the coordinate-wise median of its neighbours' positions.

    Parameters
    ----------
    embedding : ndarray of shape (n_train, n_components)
    neighbors : ndarray of shape (n_new, k), int
    """
    return np.ascontiguousarray(np.median(np.asarray(embedding)[neighbors], axis=1))


def weighted_mean(X, embedding: np.ndarray, neighbors: np.ndarray, distances: np.ndarray,
                  verbose: bool = False) -> np.ndarray:
    """Each new point at the mean of its neighbours' positions weighted by ``1 / distance``
    (a neighbour at distance 0 takes all the weight)."""
    distances = np.asarray(distances, dtype=np.float64)
    exact = distances == 0
    weights = np.where(exact.any(axis=1, keepdims=True), exact.astype(float), 1.0 / np.where(exact, 1.0, distances))
    weights /= weights.sum(axis=1, keepdims=True)
    return np.ascontiguousarray(np.einsum("mk,mkd->md", weights, np.asarray(embedding)[neighbors]))
