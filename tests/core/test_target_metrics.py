"""umap-learn's discrete target metrics for a supervised fit(X, y): "ordinal", "count", "string".

Each edge (i, j) of the data's graph is scaled by exp(-far * d(y_i, y_j)), far = 2.5 / (1 - target_weight),
then the graph gets back its local connectivity (gidr_reference.supervised). The distances are
checked against values computed by hand, the graph against a loop and against umap-learn's own
function (where it is installed), the estimator against umap-learn's three trustworthiness tests.
"""
import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import poisson
from sklearn.datasets import make_blobs
from sklearn.manifold import trustworthiness

import gidr
from gidr.pipeline import DISCRETE_TARGET_METRICS
from gidr.validation import GidrValueError
from gidr_reference import supervised as S
from tests.helpers import assert_matches
from tests.reference.test_supervised import _graph

NAMES = np.array(["this", "that", "other"])


def _targets(metric, n, seed):
    rng = np.random.default_rng(seed)
    if metric == "string":
        return np.array(["cat", "dog", "horse", "house", "", "mouse"])[rng.integers(0, 6, n)]
    return rng.integers(0, 12, n).astype(np.float64)  # ordinal values or counts, 0 included


def _blobs():
    """umap-learn's data for its supervised trustworthiness tests: three blobs of 50 points."""
    return make_blobs(50, cluster_std=0.5, random_state=42)


def _peer_targets(metric, labels):
    """The targets of umap-learn's three tests: names, the labels themselves, counts."""
    return {"string": NAMES[labels], "ordinal": labels, "count": labels ** 2 + 2 * labels}[metric]


def _fit(X, y, metric, seed=42, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the blobs' graph has 3 components
        return gidr.UMAP(n_neighbors=10, min_dist=0.01, target_metric=metric, target_weight=0.8, n_epochs=100,
                         random_state=seed, **kwargs).fit(X, y)


# --- the distances, by hand -------------------------------------------------------------------

def test_ordinal_distance_is_the_gap_over_half_the_range():
    y = np.array([2.0, 5.0, 8.0, 2.0])
    assert S.discrete_parameters(y, "ordinal") == {"support_size": 3.0}  # (8 - 2) / 2
    rows, cols = np.array([0, 0, 1, 0]), np.array([1, 2, 2, 3])
    assert_matches(actual=S.discrete_edge_distances(y, rows, cols, "ordinal"), reference=[1.0, 2.0, 1.0, 0.0],
                   rtol=1e-15)
    assert S.ordinal_distance(8.0, 2.0, 3.0) == 2.0


def test_count_distance_sums_the_poisson_surprisal_between_the_counts():
    y = np.array([1.0, 3.0, 8.0])  # mean 4
    surprisal = {k: -math.log(4.0 ** k * math.exp(-4.0) / math.factorial(k)) for k in range(1, 8)}
    normalisation = sum(surprisal.values()) / 2  # half the way from min(y) = 1 to max(y) = 8
    params = S.discrete_parameters(y, "count")
    assert params["poisson_lambda"] == 4.0
    assert_matches(actual=params["normalisation"], reference=normalisation, rtol=1e-13)
    by_hand = [(surprisal[1] + surprisal[2]) / normalisation, sum(surprisal[k] for k in range(3, 8)) / normalisation,
               2.0]
    assert_matches(actual=by_hand, reference=[0.61529007075088, 1.38470992924912, 2.0], rtol=1e-12)
    rows, cols = np.array([0, 1, 0, 2]), np.array([1, 2, 2, 2])
    assert_matches(actual=S.discrete_edge_distances(y, rows, cols, "count"), reference=[*by_hand, 0.0], rtol=1e-12)
    assert_matches(actual=S.count_distance(3, 1, **params), reference=by_hand[0], rtol=1e-12)
    assert_matches(actual=S.poisson_surprisal(np.arange(1, 8), 4.0), reference=-poisson.logpmf(np.arange(1, 8), 4.0),
                   rtol=1e-12)


def test_count_distance_is_finite_and_additive_through_zero():
    # umap-learn 0.5.12 gives nan for (0, 3) and (0, 8) here (log 0 in its loop); gidr the sum as written
    y = np.array([0.0, 3.0, 8.0])
    d = S.discrete_edge_distances(y, np.array([0, 1, 0]), np.array([1, 2, 2]), "count")
    assert np.all(np.isfinite(d)) and d[0] > 0 and d[1] > 0
    assert_matches(actual=[d[0] + d[1], d[2]], reference=[2.0, 2.0], rtol=1e-13)


@pytest.mark.parametrize("a, b, max_distance, expected", [
    ("kitten", "sitting", math.inf, 3.0), ("flaw", "lawn", math.inf, 2.0), ("", "abc", math.inf, 3.0),
    ("abc", "", math.inf, 3.0), ("same", "same", math.inf, 0.0),
    ("this", "that", 5 / 3, 5 / 3),  # a whole row of the table exceeds the cap: the cap
    ("ab", "abcdef", 2.0, 2.0),  # the lengths alone differ by more than the cap
    ("abc", "abxy", 4 / 3, 2.0),  # no row exceeds the cap, only the last entry: the distance (umap-learn's rule)
])
def test_edit_distance_by_hand(a, b, max_distance, expected):
    assert S.edit_distance(a, b, max_distance) == expected


def test_short_distinct_strings_are_at_distance_one():
    params = S.discrete_parameters(NAMES, "string")
    assert params == {"normalisation": 5 / 3, "max_distance": 5 / 3}  # the longest, "other", over 3
    rows, cols = np.array([0, 0, 1, 2]), np.array([1, 2, 2, 2])
    assert_matches(actual=S.discrete_edge_distances(NAMES, rows, cols, "string"), reference=[1.0, 1.0, 1.0, 0.0],
                   rtol=1e-15)


# --- the graph ---------------------------------------------------------------------------------

@pytest.mark.parametrize("metric", DISCRETE_TARGET_METRICS)
@pytest.mark.parametrize("weight", [0.0, 0.5, 0.9])
def test_discrete_intersection_matches_a_loop(metric, weight):
    A = _graph(seed=1)
    y = _targets(metric, A.shape[0], seed=2)
    params = S.discrete_parameters(y, metric)
    distance = {"ordinal": S.ordinal_distance, "count": S.count_distance, "string": S.string_distance}[metric]
    scaled = A.toarray()
    for i, j in zip(*np.nonzero(scaled)):
        scaled[i, j] *= np.exp(-S.far_distance(weight) * distance(y[i], y[j], **params))
    assert_matches(actual=S.discrete_intersection(A, y, metric, weight, reset=False).toarray(), reference=scaled,
                   rtol=1e-12, atol=1e-300)
    assert_matches(actual=S.discrete_intersection(A, y, metric, weight).toarray(),
                   reference=S.reset_local_connectivity(sp.csr_matrix(scaled)).toarray(), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("metric", ["ordinal", "string"])
def test_the_same_graph_as_umap_learn(metric):
    umap_ = pytest.importorskip("umap.umap_")
    from umap.distances import get_discrete_params

    A, weight = _graph(seed=3), 0.8
    y = _targets(metric, A.shape[0], seed=4)
    theirs = umap_.discrete_metric_simplicial_set_intersection(
        A.copy(), y, metric=metric, metric_kws=get_discrete_params(y, metric), metric_scale=S.far_distance(weight))
    assert_matches(actual=S.discrete_intersection(A, y, metric, weight).toarray(), reference=theirs.toarray(),
                   rtol=1e-12, atol=1e-300)


def test_the_module_and_the_pipeline_name_the_same_metrics():
    assert set(DISCRETE_TARGET_METRICS) == set(S.DISCRETE_METRICS)


# --- the estimator -----------------------------------------------------------------------------

@pytest.mark.parametrize("metric", DISCRETE_TARGET_METRICS)
def test_umap_learn_supervised_trustworthiness(metric):
    # umap-learn's test_{string,discrete,count}_metric_supervised_umap_trustworthiness, which ask for
    # 0.95. Measured 0.982 at seed 42 for each metric, 0.980-0.989 over seeds 0-19: the bound is 3 %
    # below the lowest. The three blobs' 10-NN graphs do not touch, so no edge joins two targets:
    # this checks that the discrete path keeps the data's structure; the next test that it acts.
    X, labels = _blobs()
    embedding = _fit(X, _peer_targets(metric, labels), metric).embedding_
    assert trustworthiness(X, embedding, n_neighbors=10) >= 0.95


def _pair_share(graph, y, a, b):
    """The share of the graph's weight on the edges from class a to class b."""
    graph = graph.tocoo()
    return graph.data[(y[graph.row] == a) & (y[graph.col] == b)].sum() / graph.data.sum()


@pytest.fixture(scope="module")
def overlapping_graphs():
    """The graph of three overlapping blobs along a line, plain and supervised by each metric."""
    X, y = make_blobs(300, centers=[[0, 0], [1.5, 0], [3, 0]], cluster_std=1.0, random_state=0)
    targets = {"categorical": y, "ordinal": y, "count": y ** 2 + 2 * y, "string": NAMES[y], None: None}
    return y, {metric: gidr.UMAP(n_neighbors=10, random_state=0, n_epochs=5, target_metric=metric or "categorical",
                                 target_weight=0.5).fit(X, t).graph_ for metric, t in targets.items()}


def test_ordered_targets_cut_the_far_classes_hardest(overlapping_graphs):
    y, graphs = overlapping_graphs
    # measured share of the weight from class 0 to class 2: 0.0238 plain, 0.00214 categorical,
    # 1.6e-5 ordinal and 2.2e-5 count (distance 2 where categorical's is 1); 0 to 1: 0.102 plain,
    # 0.0143 categorical, 0.0143 ordinal, 0.0175 count. No draw is involved (exact 10-NN).
    for metric in ("ordinal", "count"):
        assert _pair_share(graphs[metric], y, 0, 2) < _pair_share(graphs["categorical"], y, 0, 2) / 20
        assert _pair_share(graphs[metric], y, 0, 1) < _pair_share(graphs[None], y, 0, 1) / 4
        assert _pair_share(graphs[metric], y, 0, 1) > _pair_share(graphs[metric], y, 0, 2) * 100


def test_short_distinct_strings_act_as_categories(overlapping_graphs):
    _, graphs = overlapping_graphs
    string, categorical = graphs["string"], graphs["categorical"]
    assert (string != categorical).nnz == 0  # exp(-far * 1.0) == exp(-far), bit for bit


@pytest.mark.parametrize("metric", DISCRETE_TARGET_METRICS)
def test_same_seed_same_bits(metric):
    X, labels = _blobs()
    y = _peer_targets(metric, labels)
    first, second = _fit(X, y, metric, seed=7), _fit(X, y, metric, seed=7)
    assert np.array_equal(first.embedding_, second.embedding_)
    assert (first.graph_ != second.graph_).nnz == 0


def test_a_normalized_pipeline_keeps_its_shape():
    X, labels = _blobs()
    result = gidr.Pipeline.from_preset("gdr-tsne", random_state=0, n_epochs=20, target_metric="ordinal",
                                       target_weight=0.8).run(X, labels)
    assert np.isclose(result.affinities.P.sum(), 1.0) and np.isfinite(result.embedding).all()


# --- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("metric, y, message", [
    ("ordinal", NAMES[np.arange(50) % 3], r"target_metric='ordinal' must be numbers\. Got dtype <U5\. Map ordered"),
    ("ordinal", np.stack([np.arange(50)] * 2, axis=1), r"'ordinal' must be a 1-D array .*Got shape \(50, 2\)"),
    ("ordinal", np.where(np.arange(50) == 3, np.nan, 1.0), r"'ordinal' must be finite values"),
    ("ordinal", np.full(50, 3), r"'ordinal' must be at least two distinct values .*Got the same value, 3\.0, "
                                r"for every sample\. Pass no y"),
    ("count", np.arange(50) - 2, r"'count' must be non-negative whole numbers \(counts\)\. Got 2 value\(s\) that "
                                 r"are not \(the first: -2\.0\)"),
    ("count", np.arange(50) + 0.5, r"'count' must be non-negative whole numbers .*the first: 0\.5"),
    ("count", np.zeros(50), r"'count' must be at least two distinct values"),
    ("string", np.arange(50) % 3, r"'string' must be strings\. Got dtype int64\. Convert the labels with "
                                  r"y\.astype\(str\)"),
    ("string", np.array(["a", None] * 25, dtype=object), r"'string' must be strings\. Got dtype object"),
    ("string", np.repeat(NAMES, 3), r"targets y must be one value per sample \(50, the length of X\)\. Got length 9"),
])
def test_bad_targets(metric, y, message):
    X, _ = _blobs()
    with pytest.raises(GidrValueError, match=message):
        gidr.UMAP(n_epochs=5, target_metric=metric).fit(X, y)


def test_umap_learn_metrics_not_provided_are_refused():
    X, labels = _blobs()
    with pytest.raises(GidrValueError, match=r"'target_metric' parameter of the pipeline must be one of .*'ordinal', "
                                             r"'count', 'string'.*Got 'hierarchical_categorical'"):
        gidr.UMAP(n_epochs=5, target_metric="hierarchical_categorical").fit(X, labels)
