"""The PCA init's randomized SVD (large inputs) agrees with the exact one."""
import numpy as np
import scipy.linalg

from gidr_reference import init as init_math


def test_randomized_top_components_match_exact(monkeypatch):
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(3000, 5)) * np.array([10.0, 6.0, 3.0, 2.0, 1.0])
    X = latent @ rng.normal(size=(5, 200)) + 0.1 * rng.normal(size=(3000, 200))
    Xc = X - X.mean(axis=0)
    monkeypatch.setattr(init_math, "EXACT_SVD_MAX_CELLS", 0)  # force the randomized path
    U_fast, S_fast = init_math._top_singular(Xc, 2, np.random.default_rng(1))
    U, S, _ = scipy.linalg.svd(Xc, full_matrices=False)
    np.testing.assert_allclose(S_fast[:2], S[:2], rtol=1e-6)
    for k in range(2):
        assert abs(np.dot(U_fast[:, k], U[:, k])) > 1 - 1e-6
