"""umap_sgd's force table (gidr_reference.force_table) against the exact coefficients."""
from __future__ import annotations

import numpy as np
import pytest

from gidr.kernel import fit_ab
from gidr.types import Context
from gidr_reference import force_table
from gidr_reference.stages_forces import KL

#: the stated bound on the table's relative error; measured 1.5e-5 (attraction) and 4.2e-5
#: (repulsion) for min_dist 0.1, 5.9e-5 at most over the min_dist values below.
MAX_RELATIVE_ERROR = 1e-4


def umap_context(min_dist=0.1, spread=1.0):
    a, b = fit_ab(min_dist, spread)
    return Context(n_samples=100, n_components=2, normalized=False, a=a, b=b, seed=0, n_epochs=10)


def test_knots_are_128_per_octave_over_the_range():
    D = force_table.knots()
    assert D[0] == force_table.LOW and D[-1] == force_table.HIGH
    per_octave = 2 ** force_table.KNOT_BITS
    octaves = int(np.log2(force_table.HIGH / force_table.LOW))
    assert D.size == octaves * per_octave + 1
    np.testing.assert_array_equal(D[::per_octave], force_table.LOW * 2.0 ** np.arange(octaves + 1))
    steps = np.diff(D) / D[:-1]
    assert steps.max() == pytest.approx(1 / per_octave) and steps.min() > 1 / (2 * per_octave) - 1e-12


@pytest.mark.parametrize("min_dist", [0.0, 0.1, 0.5, 0.99])
def test_interpolation_error_is_below_the_stated_bound(min_dist):
    attraction, repulsion = force_table.max_relative_error(KL(), umap_context(min_dist))
    assert 0 < attraction < MAX_RELATIVE_ERROR
    assert 0 < repulsion < MAX_RELATIVE_ERROR


def test_interpolation_is_exact_at_the_knots_and_between_their_values():
    ctx = umap_context()
    table = force_table.build(KL(), ctx)
    D = force_table.knots()[:-1]
    np.testing.assert_array_equal(force_table.interpolate(table.repulsion, D), table.repulsion[:-1])
    middle = D * (1 + 0.5 / 2 ** force_table.KNOT_BITS)  # between two knots of the same octave
    values = force_table.interpolate(table.attraction, middle)
    low, high = np.minimum(table.attraction[:-1], table.attraction[1:]), np.maximum(table.attraction[:-1],
                                                                                    table.attraction[1:])
    assert np.all((values >= low) & (values <= high))


def test_coefficients_are_exact_outside_the_range_and_without_a_table():
    ctx, loss = umap_context(), KL()
    table = force_table.build(loss, ctx)

    def exact(d):
        return np.asarray(loss.repulsion_channels(d, ctx))[..., 0]

    D = np.array([1e-9, force_table.LOW / 2, 0.3, 7.0, force_table.HIGH, 1e9])
    got = force_table.coefficients(table.repulsion, D, exact)
    np.testing.assert_array_equal(got[[0, 1, 4, 5]], exact(D[[0, 1, 4, 5]]))
    np.testing.assert_array_equal(got[[2, 3]], force_table.interpolate(table.repulsion, D[[2, 3]]))
    assert not np.array_equal(got[[2, 3]], exact(D[[2, 3]]))  # interpolated, not the exact values
    np.testing.assert_allclose(got, exact(D), rtol=MAX_RELATIVE_ERROR)
    np.testing.assert_array_equal(force_table.coefficients(force_table.EMPTY.repulsion, D, exact), exact(D))


def test_only_a_power_other_than_one_is_tabulated():
    assert force_table.wanted(umap_context(), True)
    assert not force_table.wanted(umap_context(), False)
    ctx = Context(n_samples=100, n_components=2, normalized=False, a=1.0, b=1.0, seed=0, n_epochs=10)
    assert not force_table.wanted(ctx, True)
    assert not force_table.EMPTY.enabled and force_table.build(KL(), umap_context()).enabled


def test_a_loss_whose_coefficients_are_not_finite_is_refused():
    class Singular(KL):
        def attraction(self, D, p, ctx):
            return np.where(D > 1.0, np.inf, 1.0)

    with pytest.raises(ValueError, match="force_table=False"):
        force_table.build(Singular(), umap_context())
