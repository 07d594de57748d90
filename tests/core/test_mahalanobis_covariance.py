"""mahalanobis with the covariance ``V`` (scikit-learn's and scipy's alternative to ``VI``), and
scikit-learn's ``metric_params`` on :class:`gidr.TSNE`."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from gidr import TSNE, Pipeline
from gidr.validation import GidrValueError
from gidr_reference.distances import check_metric_kwds


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    return rng.normal(size=(120, 4)) @ np.array([[2.0, 0.3, 0, 0], [0, 1, 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 0.2]])


def test_covariance_is_inverted(X):
    V = np.cov(X.T)
    kwds = check_metric_kwds("mahalanobis", {"V": V}, "neighbors 'exact'")
    assert set(kwds) == {"VI"}
    np.testing.assert_allclose(kwds["VI"], np.linalg.inv(V), rtol=1e-12)


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_graphs_with_V_and_VI_agree_with_scipy(X, backend):
    V = np.cov(X.T)
    graphs = [Pipeline.from_preset("tsne", backend=backend, neighbors="exact", metric="mahalanobis",
                                   metric_kwds=kwds, perplexity=5, n_epochs=1).run(X).graph
              for kwds in ({"V": V}, {"VI": np.linalg.inv(V)})]
    np.testing.assert_array_equal(graphs[0].indices, graphs[1].indices)
    np.testing.assert_allclose(graphs[0].distances, graphs[1].distances, rtol=1e-12)
    D = cdist(X, X, "mahalanobis", VI=np.linalg.inv(V))
    np.fill_diagonal(D, np.inf)
    np.testing.assert_allclose(graphs[0].distances, np.sort(D, axis=1)[:, :15], rtol=1e-9)


def test_refusals(X):
    for kwds, message in [({}, r"Must provide either V or VI for Mahalanobis distance"),
                          ({"V": np.eye(4), "VI": np.eye(4)}, r"must be a dict with 'VI' \(the inverse covariance\) "
                                                              r"or 'V'"),
                          ({"V": np.zeros((4, 4))}, r"'V' entry of .* must be a symmetric positive definite"),
                          ({"V": np.eye(3)[:2]}, r"'V' entry of .* must be a finite square d x d covariance")]:
        with pytest.raises(GidrValueError, match=message):
            check_metric_kwds("mahalanobis", kwds, "neighbors 'exact'")


def test_tsne_takes_scikit_learns_metric_params(X):
    V = np.cov(X.T)
    fits = [TSNE(metric="mahalanobis", metric_params=params, perplexity=5, max_iter=250, random_state=0,
                 init="random").fit(X) for params in ({"V": V}, {"VI": np.linalg.inv(V)})]
    np.testing.assert_allclose(fits[0].graph_.toarray(), fits[1].graph_.toarray(), rtol=1e-10, atol=1e-18)
    with pytest.raises(GidrValueError, match=r"'metric_params' parameter of TSNE .*Must provide either V or VI"):
        TSNE(metric="mahalanobis", perplexity=5, max_iter=250).fit(X)
