"""Property tests (issue 12): random offsets and scales across the float64 range.

Shifting and scaling data keeps every Euclidean neighbour order, so each kNN path on
``offset + scale * base`` must either raise a clear GidrValueError (distances beyond
float64) or find the neighbours of ``base`` (recall >= 0.95; the broken code measured
0.002-0.64 on such data).
"""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gidr.validation import GidrValueError
from gidr_numba.neighbors import exact_knn as numba_exact_knn
from gidr_numba.nndescent import nndescent_knn
from gidr_reference.neighbors import exact_knn as reference_exact_knn

K = 8
RNG = np.random.default_rng(5)
BASE = RNG.normal(scale=4.0, size=(6, 10))[RNG.integers(0, 6, 300)] + RNG.normal(size=(300, 10))
ORACLE = reference_exact_knn(BASE, K).indices

PATHS = {
    "exact-numba": lambda X: numba_exact_knn(X, K).indices,
    "exact-reference": lambda X: reference_exact_knn(X, K).indices,
    "nndescent": lambda X: nndescent_knn(X, K, seed=0)[0],
}


def recall(indices: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(indices, ORACLE)]))


@settings(max_examples=25, deadline=None)
@given(scale_exponent=st.integers(-300, 300), relative_offset_exponent=st.integers(-20, 9),
       offset_sign=st.sampled_from([-1.0, 1.0]), path=st.sampled_from(sorted(PATHS)))
def test_offset_and_scale_keep_the_graph(scale_exponent, relative_offset_exponent, offset_sign, path):
    scale = 10.0**scale_exponent
    offset = offset_sign * 10.0 ** min(scale_exponent + relative_offset_exponent, 307)
    with np.errstate(over="ignore"):
        X = offset + scale * BASE
    if not np.all(np.isfinite(X)):
        return
    if abs(offset) * 2.0**-52 > 1e-6 * scale:
        # float64 itself rounds X by more than 1e-6 of the data's unit: no order left to keep
        return
    try:
        indices = PATHS[path](X)
    except GidrValueError as exc:
        assert "rescale your data" in str(exc)
        return
    assert recall(indices) >= 0.95
