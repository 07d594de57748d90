"""NN-descent holds one float32 working copy of the data, not two (issue 12: a 20,000 x 20,000
float64 input peaked at twice its size)."""
import tracemalloc

import numpy as np

from gidr_numba.nndescent import _permute_rows, nndescent_knn


def test_rows_are_renumbered_in_place():
    rng = np.random.default_rng(0)
    for n, d in [(1, 3), (7, 2), (500, 5)]:
        data = rng.normal(size=(n, d)).astype(np.float32)
        order = rng.permutation(n).astype(np.int32)
        permuted = data.copy()
        _permute_rows(permuted, order)
        np.testing.assert_array_equal(permuted, data[order])


def test_the_search_keeps_one_float32_copy_of_the_data():
    """numpy's allocations during the search of a 3,000 x 3,000 float64 input (tracemalloc,
    deterministic): 0.83 of the input's size now (one float32 copy is 0.5); 1.00 when the
    renumbering copied the copy."""
    X = np.random.default_rng(0).normal(size=(3000, 3000))
    nndescent_knn(X[:300, :50], 10, seed=0)  # compile outside the measurement
    tracemalloc.start()
    try:
        nndescent_knn(X, 10, seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.95 * X.nbytes, f"peak {peak / X.nbytes:.2f} of the input"


def test_a_float32_input_is_not_renumbered_in_place():
    X = np.random.default_rng(1).normal(size=(600, 8)).astype(np.float32)
    before = X.copy()
    nndescent_knn(X, 10, seed=0)
    np.testing.assert_array_equal(X, before)
