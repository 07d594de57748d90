"""The supervised graph (gidr_reference.supervised) against entry-by-entry loops written from its
docstring, and against umap-learn's own functions where umap-learn is installed."""
import numpy as np
import pytest
import scipy.sparse as sp

from gidr_reference import supervised as S


def _graph(n=60, density=0.15, seed=0):
    rng = np.random.default_rng(seed)
    A = sp.random(n, n, density=density, random_state=seed, data_rvs=lambda m: rng.uniform(0.05, 1.0, m)).tocsr()
    A.setdiag(0)
    A = A.maximum(A.T).tocsr()
    A.eliminate_zeros()
    return A


def _reset_loop(A):
    A = A.toarray()
    n = len(A)
    for i in range(n):
        top = A[i].max()
        if top > 0:
            A[i] /= top
    out = np.zeros_like(A)
    for i in range(n):
        for j in range(n):
            out[i, j] = A[i, j] + A[j, i] - A[i, j] * A[j, i]
    return out


def test_reset_local_connectivity_matches_the_formula():
    A = _graph()
    R = S.reset_local_connectivity(A)
    np.testing.assert_allclose(R.toarray(), _reset_loop(A), rtol=1e-14, atol=0)
    assert (R != R.T).nnz == 0 and R.data.max() <= 1.0 and R.has_sorted_indices


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.5, 0.9, 1.0])
def test_categorical_intersection_matches_a_loop(weight):
    A = _graph(seed=1)
    codes = np.random.default_rng(2).integers(-1, 3, A.shape[0])
    far = 2.5 / (1 - weight) if weight < 1 else 1e12
    scaled = A.toarray()
    for i, j in zip(*np.nonzero(scaled)):
        if codes[i] == -1 or codes[j] == -1:
            scaled[i, j] *= np.exp(-1.0)
        elif codes[i] != codes[j]:
            scaled[i, j] *= np.exp(-far)
    expected = _reset_loop(sp.csr_matrix(scaled))
    np.testing.assert_allclose(S.categorical_intersection(A, codes, weight).toarray(), expected, rtol=1e-12,
                               atol=1e-300)
    kept = S.categorical_intersection(A, codes, weight, reset=False)
    np.testing.assert_allclose(kept.toarray(), scaled, rtol=1e-14, atol=0)


@pytest.mark.parametrize("weight", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_general_intersection_matches_a_loop(weight):
    P, T = _graph(seed=3), _graph(seed=4)
    p_floor = max(P.data.min() / 2, 1e-8)
    t_floor = min(max(T.data.min() / 2, 1e-8), 1e-4)
    Pd, Td = P.toarray(), T.toarray()
    combined = np.zeros_like(Pd)
    for i, j in zip(*np.nonzero(Pd + Td)):
        p = Pd[i, j] if Pd[i, j] != 0 else p_floor
        t = Td[i, j] if Td[i, j] != 0 else t_floor
        if p > p_floor or t > t_floor:
            combined[i, j] = p * t ** (weight / (1 - weight)) if weight < 0.5 else p ** ((1 - weight) / weight) * t
        else:
            combined[i, j] = Pd[i, j] + Td[i, j]
    np.testing.assert_allclose(S.general_intersection(P, T, weight).toarray(), _reset_loop(sp.csr_matrix(combined)),
                               rtol=1e-12, atol=1e-300)


def test_target_weight_one_cuts_the_classes_apart():
    P = _graph(seed=5)
    codes = np.arange(P.shape[0]) % 2
    follows = S.categorical_intersection(P, codes, 1.0).toarray()
    assert follows[codes[:, None] != codes[None, :]].max() < 1e-300  # exp(-1e12)
    assert follows[codes[:, None] == codes[None, :]].max() == 1.0


def test_the_same_graph_as_umap_learn():
    umap_ = pytest.importorskip("umap.umap_")
    P, T = _graph(n=80, seed=7), _graph(n=80, seed=8)
    labels = np.random.default_rng(9).integers(-1, 4, 80)
    for weight in (0.2, 0.5, 0.8):
        theirs = umap_.discrete_metric_simplicial_set_intersection(
            P.copy(), labels, far_dist=S.far_distance(weight)).tocsr()
        np.testing.assert_allclose(S.categorical_intersection(P, labels, weight).toarray(), theirs.toarray(),
                                   rtol=1e-12, atol=1e-300)
        theirs = umap_.reset_local_connectivity(umap_.general_simplicial_set_intersection(P.copy(), T.copy(), weight))
        np.testing.assert_allclose(S.general_intersection(P, T, weight).toarray(), theirs.toarray(), rtol=1e-12,
                                   atol=1e-300)
