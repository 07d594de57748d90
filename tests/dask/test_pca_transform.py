"""transform of a Dask array after a fit with ``pca``: projected through the fitted PCA on the workers."""
import numpy as np
import pytest
from sklearn.datasets import load_digits

import gidr

da = pytest.importorskip("dask.array")


def test_distributed_transform_projects_through_the_fitted_pca(client):
    X = load_digits().data
    est = gidr.UMAP(n_epochs=30, random_state=0, pca=12).fit(X[:1000])
    new = X[1000:1400]
    lazy = est.transform(da.from_array(new, chunks=(150, 16)))  # column chunks too: rechunked whole
    computed = lazy.compute()
    assert computed.shape == (400, 2)
    np.testing.assert_array_equal(computed, est.transform(new))  # a row's projection does not depend on its block
    with pytest.raises(gidr.GidrValueError, match=r"X has 12 features, but UMAP is expecting 64"):
        est.transform(da.from_array(new[:, :12], chunks=(100, -1)))
