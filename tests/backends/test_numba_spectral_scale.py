"""The multilevel spectral eigenmap of the numba backend (issue #13) against the reference's ARPACK one.

Graphs of a few thousand points with :data:`gidr_numba.spectral.MULTILEVEL_MIN_POINTS`
monkeypatched low, so that the path the million-point graphs take runs here in seconds.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

numba = pytest.importorskip("numba")
pytest.importorskip("pyamg")

from threadpoolctl import threadpool_limits  # noqa: E402

from gidr import datasets  # noqa: E402
from gidr.types import Context  # noqa: E402
from gidr_numba import spectral  # noqa: E402
from gidr_numba.symmetrize import mean  # noqa: E402
from gidr_reference import init as reference_init  # noqa: E402
from gidr_reference import neighbors as reference_neighbors  # noqa: E402
from gidr_reference import stages_graph as reference  # noqa: E402
from tests.helpers import assert_matches  # noqa: E402

#: Smallest canonical correlation between the multilevel and the reference's eigenvectors.
#: Measured 0.9968 on the 3,000-point swiss roll below (0.9989 on Fashion-MNIST's 70,000
#: points): the multilevel vectors are Ritz vectors of a smoothed aggregation space, not
#: converged eigenvectors. Everything here is deterministic, so the margin only has to cover
#: LAPACK's rounding on the coarse solve; an init off by a wrong eigenvector scores below 0.5.
SUBSPACE_MIN = 0.995


def umap_graph(n: int, seed: int) -> sp.csr_matrix:
    X = datasets.load("swiss-roll", n_samples=n, random_state=seed)[0]
    ctx = Context(n_samples=n, seed=3)
    P_directed = reference.UmapSimilarity().compute(reference_neighbors.exact_knn(X, 10), ctx)
    return reference.FuzzyUnionSymmetrize().compute(P_directed, ctx)


@pytest.fixture(scope="module")
def graph() -> sp.csr_matrix:
    return spectral._symmetric_part(umap_graph(3000, 1))


@pytest.fixture
def multilevel_above_1000(monkeypatch):
    monkeypatch.setattr(spectral, "MULTILEVEL_MIN_POINTS", 1000)


def canonical_correlations(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return np.linalg.svd(np.linalg.qr(A)[0].T @ np.linalg.qr(B)[0], compute_uv=False)


def participation(V: np.ndarray) -> np.ndarray:
    """``(sum v^2)^2 / sum v^4`` per column: about the number of points a vector lives on."""
    return (V**2).sum(axis=0) ** 2 / (V**4).sum(axis=0)


def test_multilevel_spans_the_reference_eigenspace(graph):
    levels, _ = spectral._hierarchy(graph, 2)
    assert len(levels) >= 2, "the graph was not coarsened: nothing multilevel was tested"
    actual = spectral.multilevel_eigenmap(graph, 2, np.random.default_rng(0))
    expected = reference_init.laplacian_eigenmap(graph, 2, np.random.default_rng(0))
    assert canonical_correlations(actual, expected).min() >= SUBSPACE_MIN
    assert_matches(actual=actual.T @ actual, reference=np.eye(2), atol=1e-10)
    trivial = np.sqrt(spectral._degrees(graph))
    assert_matches(actual=trivial @ actual / np.linalg.norm(trivial), reference=np.zeros(2), atol=1e-10)


def test_galerkin_kernel_matches_the_sparse_triple_product(graph):
    aggregate, n_coarse = spectral._aggregate(graph)
    T = sp.csr_matrix((np.ones(graph.shape[0]), (np.arange(graph.shape[0]), aggregate)),
                      shape=(graph.shape[0], n_coarse))
    actual = spectral._galerkin(graph, aggregate, n_coarse)
    assert actual.has_sorted_indices
    assert_matches(actual=actual.toarray(), reference=(T.T @ graph @ T).toarray(), rtol=1e-12, atol=1e-15)


def test_laplacian_eigenmap_switches_solver_at_the_threshold(graph, monkeypatch):
    multilevel = spectral.multilevel_eigenmap(graph, 2, np.random.default_rng(0))
    arpack = spectral._arpack_eigenmap(graph, 2, np.random.default_rng(0))
    assert np.abs(multilevel - arpack).max() > 1e-6  # two different solvers, or this proves nothing
    monkeypatch.setattr(spectral, "MULTILEVEL_MIN_POINTS", graph.shape[0])
    np.testing.assert_array_equal(spectral.laplacian_eigenmap(graph, 2, np.random.default_rng(0)), multilevel)
    monkeypatch.setattr(spectral, "MULTILEVEL_MIN_POINTS", graph.shape[0] + 1)
    np.testing.assert_array_equal(spectral.laplacian_eigenmap(graph, 2, np.random.default_rng(0)), arpack)


def test_multilevel_bits_do_not_depend_on_thread_counts(graph):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has a single thread here")
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        with threadpool_limits(limits=1):
            serial = spectral.multilevel_eigenmap(graph, 2, np.random.default_rng(7))
        numba.set_num_threads(2)
        parallel = spectral.multilevel_eigenmap(graph, 2, np.random.default_rng(7))
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(parallel, serial)


def test_missed_tolerance_falls_back_to_arpack_with_a_warning(graph, monkeypatch, multilevel_above_1000):
    levels, _ = spectral._hierarchy(graph, 2)
    assert levels[-1].shape[0] <= spectral.DENSE_EIGEN_MAX  # coarse solve draws nothing from rng
    monkeypatch.setattr(spectral, "SMOOTHING_STEPS", 0)
    with pytest.warns(UserWarning, match=r"multilevel spectral solver failed on 3,000 points \(largest residual "
                                         r"\S+ > 0\.01 after 0 smoothing steps on 2 levels\); solving with ARPACK"):
        actual = spectral.laplacian_eigenmap(graph, 2, np.random.default_rng(0))
    np.testing.assert_array_equal(actual, spectral._arpack_eigenmap(graph, 2, np.random.default_rng(0)))


def test_both_solvers_failing_gives_the_random_layout_with_two_warnings(graph, monkeypatch, multilevel_above_1000):
    from scipy.sparse.linalg import ArpackNoConvergence

    def failing_eigsh(*args, **kwargs):
        raise ArpackNoConvergence("no convergence", np.zeros(0), np.zeros((0, 0)))

    monkeypatch.setattr(spectral, "SMOOTHING_STEPS", 0)
    monkeypatch.setattr(spectral, "eigsh", failing_eigsh)
    with pytest.warns(UserWarning) as record:
        Y = spectral.spectral_layout(graph, 2, np.random.default_rng(0))
    messages = [str(w.message) for w in record]
    assert any("multilevel spectral solver failed on 3,000 points" in m for m in messages), messages
    assert any("eigensolver failed" in m and "random init for 3000 points" in m for m in messages), messages
    assert Y.shape == (3000, 2) and np.all(np.isfinite(Y))


def test_two_components_are_laid_out_separately(graph, monkeypatch, multilevel_above_1000):
    small = spectral._symmetric_part(umap_graph(1200, 2))
    spectral_multilevel = spectral.multilevel_eigenmap
    sizes = []

    def recording(A, n_components, rng):
        sizes.append(A.shape[0])
        return spectral_multilevel(A, n_components, rng)

    monkeypatch.setattr(spectral, "multilevel_eigenmap", recording)
    P = sp.block_diag([graph, small]).tocsr()
    with pytest.warns(UserWarning, match=r"2 connected components"):
        Y = spectral.spectral_layout(P, 2, np.random.default_rng(0))
    assert sizes == [3000, 1200]
    centres = [Y[:3000].mean(axis=0), Y[3000:].mean(axis=0)]
    assert np.linalg.norm(centres[0] - centres[1]) > 0.5
    own = spectral_multilevel(graph, 2, np.random.default_rng(0))  # its coarse solve is dense: no draw
    own = own - own.mean(axis=0)
    assert_matches(actual=Y[:3000] - Y[:3000].mean(axis=0), reference=0.4 * own / np.abs(own).max(), atol=1e-12)


def test_a_dangling_clique_does_not_take_over_the_layout(graph):
    """Eight points joined to the rest by one edge of weight 1e-9: the exact bottom eigenvector
    lives on them; the multilevel one cannot (the clique is smaller than a coarse aggregate)."""
    n, size = graph.shape[0], 8
    clique = sp.csr_matrix(np.ones((size, size)) - np.eye(size))
    link = sp.csr_matrix(([1e-9, 1e-9], ([0, n], [n, 0])), shape=(n + size, n + size))
    A = spectral._symmetric_part((sp.block_diag([graph, clique]) + link).tocsr())
    exact = reference_init.laplacian_eigenmap(A, 2, np.random.default_rng(0))
    assert participation(exact).min() < 2 * size  # the premise: the exact layout is degenerate
    multilevel = spectral.multilevel_eigenmap(A, 2, np.random.default_rng(0))
    assert participation(multilevel).min() > n / 4


def test_symmetric_part_is_the_merge_bit_for_bit(graph):
    assert spectral._symmetric_part(graph) is graph
    merged = mean(graph)
    np.testing.assert_array_equal(graph.indptr, merged.indptr)
    np.testing.assert_array_equal(graph.indices, merged.indices)
    np.testing.assert_array_equal(graph.data, merged.data)
    directed = sp.triu(graph).tocsr()
    for P in (directed, (graph + sp.identity(graph.shape[0])).tocsr()):
        actual = spectral._symmetric_part(P)
        assert actual is not P
        assert (actual != mean(P)).nnz == 0
    tampered = graph.copy()
    tampered.data[5] *= 1.0 + 1e-15
    assert spectral._symmetric_part(tampered) is not tampered
