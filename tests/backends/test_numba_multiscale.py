"""The numba ``multiscale`` similarity against its reference twin."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from gidr.types import Context  # noqa: E402
from gidr_numba import stages_graph as fast  # noqa: E402
from gidr_reference import stages_graph as reference  # noqa: E402


def test_twins_declare_the_same_parameters():
    assert fast.MultiscaleSimilarity.params == reference.MultiscaleSimilarity.params


@pytest.mark.parametrize("mixture", [False, True])
def test_multiscale_matches_reference(mixture):
    rng = np.random.default_rng(0)
    d = np.sort(rng.gamma(2.0, 1.0, size=(500, 40)), axis=1)
    d[:3] = 0.0  # rows of coincident points
    ctx = Context(n_samples=500)
    # Below k = 40: at k itself the precision is driven towards 0, where the backends' bisections
    # stop at different tiny values (the weights agree to 3e-9, the mixture's sqrt(beta) does not).
    kwargs = {"perplexities": [4.0, 12.0, 30.0], "mixture": mixture}
    got = fast.MultiscaleSimilarity(**kwargs).row_weights(d, ctx)
    want = reference.MultiscaleSimilarity(**kwargs).row_weights(d, ctx)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-12)
