"""umap-learn's and scikit-learn's parameter and attribute names, each honoured or an accepted,
documented no-op."""
import re

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits

import gidr
from gidr.validation import GidrValueError


@pytest.fixture(scope="module")
def X():
    return load_digits().data[:400]


def test_a_and_b_set_the_kernel(X):
    fitted = gidr.UMAP(random_state=0, n_epochs=20, a=1.5, b=0.8).fit(X).result_.config["resolved"]
    assert (fitted["a"], fitted["b"]) == (1.5, 0.8)
    default = gidr.UMAP(random_state=0, n_epochs=20).fit(X).result_.config["resolved"]
    assert default["a"] == pytest.approx(1.577, abs=1e-3) and default["b"] == pytest.approx(0.895, abs=1e-3)


def test_umap_private_kernel_names(X):
    given = gidr.UMAP(random_state=0, n_epochs=10, a=1.2, b=1.75).fit(X)
    assert (given._a, given._b) == (1.2, 1.75)  # umap-learn's private names of the kernel's a and b
    fitted = gidr.UMAP(random_state=0, n_epochs=10).fit(X)
    assert (fitted._a, fitted._b) == (fitted.result_.config["resolved"]["a"], fitted.result_.config["resolved"]["b"])
    with pytest.raises(Exception, match="not fitted"):
        gidr.UMAP()._a


def test_set_op_mix_ratio_mixes_union_and_intersection(X):
    union = gidr.UMAP(random_state=0, n_epochs=10).fit(X).graph_
    mixed = gidr.UMAP(random_state=0, n_epochs=10, set_op_mix_ratio=0.25).fit(X).graph_
    inter = gidr.UMAP(random_state=0, n_epochs=10, set_op_mix_ratio=0.0).fit(X).graph_
    assert inter.nnz < mixed.nnz == union.nnz  # the intersection keeps the mutual edges only
    # a + b - ab mixed with ab, entry by entry: 0.25 * union + 0.75 * intersection
    expected = 0.25 * union.toarray() + 0.75 * inter.toarray()
    np.testing.assert_allclose(mixed.toarray(), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("ratio", [0.0, 0.4, 1.0])
def test_numba_mix_is_the_reference_mix(ratio):
    from gidr_numba.symmetrize import fuzzy_union as numba_union
    from gidr_reference.symmetrize import fuzzy_union as reference_union

    rng = np.random.default_rng(0)
    A = sp.random(200, 200, density=0.05, random_state=1, data_rvs=lambda m: rng.uniform(0.01, 1, m)).tocsr()
    np.testing.assert_array_equal(numba_union(A, ratio).toarray(), reference_union(A, ratio).toarray())


def test_unique_embeds_each_distinct_row_once(X):
    doubled = np.vstack([X, X[:60]])
    est = gidr.UMAP(random_state=0, n_epochs=40, unique=True).fit(doubled)
    assert est.embedding_.shape == (460, 2) and est.result_.embedding.shape == (400, 2)
    assert np.array_equal(est.embedding_[400:], est.embedding_[:60])  # duplicates share a position
    assert np.array_equal(est.embedding_[:400], gidr.UMAP(random_state=0, n_epochs=40).fit(X).embedding_)
    sparse = gidr.UMAP(random_state=0, n_epochs=40, unique=True).fit(sp.csr_matrix(doubled))
    assert sparse.embedding_.shape == (460, 2) and np.array_equal(sparse.embedding_[400:], sparse.embedding_[:60])
    da = pytest.importorskip("dask.array")
    with pytest.raises(GidrValueError, match="unique=True needs an in-memory X"):
        gidr.UMAP(unique=True, n_epochs=5).fit(da.from_array(X, chunks=(100, -1)))


def test_accepted_no_ops_change_nothing_and_are_checked(X):
    base = gidr.UMAP(random_state=0, n_epochs=30).fit(X)
    same = gidr.UMAP(random_state=0, n_epochs=30, transform_seed=7, low_memory=False, angular_rp_forest=True,
                     force_approximation_algorithm=True).fit(X)
    assert np.array_equal(base.embedding_, same.embedding_)
    assert np.array_equal(base.transform(X[:20]), same.transform(X[:20]))
    with pytest.raises(GidrValueError, match="'low_memory' parameter of UMAP must be a bool"):
        gidr.UMAP(low_memory="yes").fit(X)
    with pytest.raises(GidrValueError, match="'transform_seed' parameter of GDR must be an int"):
        gidr.GDR(transform_seed=-3).fit(X)


def test_graph_and_feature_names(X):
    est = gidr.UMAP(random_state=0, n_epochs=10).fit(X)
    assert sp.issparse(est.graph_) and est.graph_.shape == (400, 400) and (est.graph_ != est.graph_.T).nnz == 0
    assert list(est.get_feature_names_out()) == ["umap0", "umap1"]
    assert list(gidr.GDR(random_state=0, n_epochs=10, n_components=3).fit(X).get_feature_names_out()) == \
        ["gdr0", "gdr1", "gdr2"]


@pytest.mark.parametrize("method, stage", [("barnes_hut", "barnes_hut"), ("exact", "exact"), ("fft", "fft")])
def test_tsne_method(X, method, stage):
    est = gidr.TSNE(random_state=0, max_iter=260, method=method).fit(X[:300])
    assert est.result_.config["repulsion"]["name"] == stage
    assert np.isfinite(est.kl_divergence_) and est.kl_divergence_ > 0


def test_kl_divergence_is_the_final_kl(X):
    from scipy.spatial.distance import pdist, squareform

    est = gidr.TSNE(random_state=0, max_iter=400).fit(X[:300])
    P = est.result_.affinities.P.toarray()
    W = 1.0 / (1.0 + squareform(pdist(est.embedding_, "sqeuclidean")))
    np.fill_diagonal(W, 0.0)
    Q = W / W.sum()
    stored = P > 0
    exact = float((P[stored] * np.log(P[stored] / Q[stored])).sum())
    assert est.kl_divergence_ == pytest.approx(exact, rel=0.02)  # the loss estimate: 0.04 % off here (0.8 % at most measured)


def test_tsne_perplexity_must_be_below_n_samples(X):
    with pytest.raises(GidrValueError, match=r"perplexity \(30\.0\) must be less than n_samples \(25\)"):
        gidr.TSNE().fit(X[:25])


def test_tsne_checks_its_method_and_angle(X):
    # the stopping rules (n_iter_without_progress, min_grad_norm): tests/estimators/test_tsne_early_stopping.py
    with pytest.raises(GidrValueError, match="'method' parameter of TSNE must be one of 'barnes_hut', 'exact'"):
        gidr.TSNE(method="bh").fit(X)
    with pytest.raises(GidrValueError, match="'angle' parameter of TSNE must be a float in \\[0, 1\\]"):
        gidr.TSNE(angle=1.5).fit(X)


def test_tsne_scikit_learn_conventions(X, capsys):
    est = gidr.TSNE(random_state=0, max_iter=300, verbose=True)
    Y = est.fit_transform(X[:200])
    assert Y.dtype == np.float32 and est.embedding_.dtype == np.float32
    assert est.n_iter_ == 299  # the index of the last iteration, as scikit-learn counts
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[t-SNE] Iteration")]
    assert lines[-1] == f"[t-SNE] Iteration 300: error = {est.kl_divergence_:.7f}"


def test_tsne_sparse_precomputed_neighbours(X):
    from sklearn.neighbors import kneighbors_graph

    data = X[:300]
    D = kneighbors_graph(data, 40, mode="distance")
    sparse = gidr.TSNE(metric="precomputed", init="random", perplexity=10, random_state=0, max_iter=250).fit(D)
    from sklearn.neighbors import NearestNeighbors

    distances, indices = NearestNeighbors(n_neighbors=41).fit(data).kneighbors(data)
    pair = gidr.TSNE(metric="precomputed", init="random", perplexity=10, random_state=0, max_iter=250).fit(
        (indices[:, 1:], distances[:, 1:]))
    assert np.array_equal(sparse.embedding_, pair.embedding_)  # the same kNN graph, read from the sparse rows
    empty = D.tolil()
    empty[5, :] = 0
    with pytest.raises(GidrValueError, match=r"at least one stored neighbour per row.*row 5.*kneighbors_graph"):
        gidr.TSNE(metric="precomputed", init="random", perplexity=5, method="exact").fit(empty.tocsr())
    # scikit-learn's count for the neighbour-reading methods: int(3 * perplexity + 1) neighbours and the point
    with pytest.raises(GidrValueError, match="17 neighbors per samples are required, but some samples have only 0"):
        gidr.TSNE(metric="precomputed", init="random", perplexity=5).fit(empty.tocsr())
    for k, fits in ((31, False), (32, True)):  # perplexity 10 needs 31 + 1 stored entries per row
        model = gidr.TSNE(metric="precomputed", init="random", perplexity=10, random_state=0, max_iter=250)
        if fits:
            model.fit(kneighbors_graph(data, k, mode="distance"))
        else:
            with pytest.raises(GidrValueError, match="32 neighbors per samples are required, but some samples have "
                                                     "only 31 neighbors in precomputed graph matrix"):
                model.fit(kneighbors_graph(data, k, mode="distance"))
    with pytest.raises(GidrValueError, match="a square distance matrix"):
        gidr.TSNE(metric="precomputed", init="random").fit(D[:, :100])


def test_saved_models_keep_unique_and_tsne_attributes(X, tmp_path):
    doubled = np.vstack([X[:200], X[:30]])
    est = gidr.UMAP(random_state=0, n_epochs=30, unique=True).fit(doubled)
    est.save(tmp_path / "u.gidr")
    loaded = gidr.load(tmp_path / "u.gidr")
    assert np.array_equal(loaded.embedding_, est.embedding_) and loaded.embedding_.shape == (230, 2)
    tsne = gidr.TSNE(random_state=0, max_iter=260).fit(X[:150])
    tsne.save(tmp_path / "t.gidr")
    back = gidr.load(tmp_path / "t.gidr")
    assert back.embedding_.dtype == np.float32 and np.array_equal(back.embedding_, tsne.embedding_)
    assert (back.n_iter_, back.kl_divergence_) == (tsne.n_iter_, tsne.kl_divergence_)


def test_output_metric_is_refused_clearly_and_densmap_with_a_normalized_gdr(X):
    assert gidr.UMAP(output_metric="euclidean", densmap=False, n_epochs=5, random_state=0).fit(X).embedding_.shape \
        == (400, 2)
    with pytest.raises(GidrValueError, match=r"'output_metric' parameter of UMAP must be 'euclidean'.*Euclidean"):
        gidr.UMAP(output_metric="haversine").fit(X)
    with pytest.raises(GidrValueError, match=r"'densmap' switch used with optimizer 'gdr' must be False with "
                                             r"normalized=True.*densMAP"):
        gidr.GDR(densmap=True, normalized=True).fit(X)


def test_sparse_precomputed_keeps_duplicates_and_runs_through_the_pipeline(X):
    from sklearn.neighbors import kneighbors_graph

    from gidr.pipeline import precomputed_input

    data = np.vstack([X[:150], X[:1]])  # row 150 duplicates row 0: a stored 0 off the diagonal
    D = kneighbors_graph(data, 20, mode="distance")
    D[0, 150], D[150, 0] = 0.0, 0.0  # explicit zeros, as a precomputed matrix may store them
    graph = precomputed_input(D)
    assert graph.indices[0, 0] == 150 and graph.distances[0, 0] == 0.0
    assert graph.indices[150, 0] == 0 and graph.distances[150, 0] == 0.0
    assert not np.any(graph.indices == np.arange(151)[:, None])  # the diagonal is never a neighbour
    pipeline = gidr.Pipeline.from_preset("gdr-umap", neighbors="precomputed", random_state=0, n_epochs=20)
    assert np.array_equal(pipeline.run(D).embedding, pipeline.run(graph).embedding)


def test_repulsion_strength_weights_the_repulsion(X):
    """umap-learn's gamma: a stronger repulsion spreads the layout, 1.0 is the default's bits."""
    def spread(Y):
        return float(np.mean(np.linalg.norm(Y - Y.mean(0), axis=1)))

    for estimator in (gidr.UMAP, gidr.GDR):
        default = estimator(random_state=0, n_epochs=60).fit_transform(X)
        np.testing.assert_array_equal(estimator(random_state=0, n_epochs=60, repulsion_strength=1.0).fit_transform(X),
                                      default)
        weak = estimator(random_state=0, n_epochs=60, repulsion_strength=0.25).fit_transform(X)
        strong = estimator(random_state=0, n_epochs=60, repulsion_strength=4.0).fit_transform(X)
        assert spread(weak) < spread(default) < spread(strong), estimator.__name__
    with pytest.raises(GidrValueError, match=r"^The 'repulsion_strength' parameter of GDR with normalized=True "
                                             r"must be 1\.0"):
        gidr.GDR(normalized=True, repulsion_strength=2.0).fit(X)
    with pytest.raises(GidrValueError, match=r"^The 'repulsion_strength' parameter of UMAP must be a float in "
                                             r"\[0, inf\)"):
        gidr.UMAP(repulsion_strength=-1.0).fit(X)


@pytest.fixture(scope="module")
def digits_fit():
    X, y = load_digits(return_X_y=True)
    return X, y, gidr.UMAP(random_state=0, n_epochs=100).fit(X)


def test_inverse_transform_is_the_kernel_weighted_mean_of_the_embedding_neighbours(digits_fit):
    X, _, umap = digits_fit
    z = np.array([[0.3, -1.2], [5.0, 5.0]])
    resolved = umap.result_.config["resolved"]
    a, b, k = resolved["a"], resolved["b"], resolved["n_neighbors"]
    expected = []
    for point in z:
        d = np.linalg.norm(umap.embedding_ - point, axis=1)
        nearest = np.argsort(d, kind="stable")[:k]
        w = 1.0 / (1.0 + a * d[nearest] ** (2 * b))
        expected.append(w @ X[nearest] / w.sum())
    np.testing.assert_allclose(umap.inverse_transform(z), np.array(expected), rtol=1e-12)


def test_inverse_transform_of_points_inside_a_class_gives_points_of_that_class(digits_fit):
    from sklearn.neighbors import KNeighborsClassifier

    X, y, umap = digits_fit
    # per class, the point halfway between its two members nearest the class's median position
    # (a point of the embedding that is no training point's own)
    probes = []
    for c in range(10):
        members = umap.embedding_[y == c]
        order = np.argsort(np.linalg.norm(members - np.median(members, axis=0), axis=1))
        probes.append(members[order[:2]].mean(0))
    predicted = KNeighborsClassifier(5).fit(X, y).predict(umap.inverse_transform(np.stack(probes)))
    assert (predicted == np.arange(10)).sum() >= 9  # measured: 10 of 10
    # a training point's own embedding comes back near its row (measured, seeds 0-3: mean |error|
    # 0.34 times the mean difference between two rows; probes: 10 of 10 classes each seed)
    back = umap.inverse_transform(umap.embedding_[:200])
    assert np.abs(back - X[:200]).mean() < 0.6 * np.abs(X[:200] - X[200:400]).mean()


def test_inverse_transform_errors_and_sparse_training_data(X):
    gdr = gidr.GDR(random_state=0, n_epochs=30).fit(sp.csr_matrix(X))
    out = gdr.inverse_transform(gdr.embedding_[:3])
    assert isinstance(out, np.ndarray) and out.shape == (3, X.shape[1])
    with pytest.raises(GidrValueError, match=r"X has 3 columns, but GDR.inverse_transform expects points of the "
                                             r"2-dimensional embedding space"):
        gdr.inverse_transform(np.zeros((2, 3)))
    from sklearn.metrics import pairwise_distances

    precomputed = gidr.UMAP(metric="precomputed", random_state=0, n_epochs=30).fit(pairwise_distances(X))
    with pytest.raises(GidrValueError, match=r"^The 'metric' parameter of UMAP for inverse_transform must be"):
        precomputed.inverse_transform(precomputed.embedding_[:2])
    assert not hasattr(gidr.TSNE(), "inverse_transform")


def test_tsne_verbose_prints_scikit_learns_preamble(X, capsys):
    est = gidr.TSNE(random_state=0, max_iter=300, perplexity=10, verbose=2)
    est.fit(X[:150])
    out = capsys.readouterr().out
    assert "[t-SNE] Computing 30 nearest neighbors..." in out
    assert "[t-SNE] Computed conditional probabilities for sample 150 / 150" in out
    sigma = float(re.search(r"\[t-SNE\] Mean sigma: ([\d.]+)", out).group(1))
    # the bandwidth is on the scale of the neighbour distances
    distances = est.result_.graph.distances
    assert distances.min() < sigma < distances.max()
    assert "iterations with early exaggeration" in out


def test_tsne_barnes_hut_above_three_components_is_refused_in_scikit_learns_words(X):
    with pytest.raises(GidrValueError, match=r"'n_components' should be at most 3 for method='barnes_hut'"):
        gidr.TSNE(n_components=4).fit(X[:50])
    assert gidr.TSNE(n_components=4, method="exact", max_iter=20, random_state=0).fit_transform(X[:50]).shape == (50, 4)


def test_fit_accepts_umap_learns_ensure_all_finite(X):
    Y = gidr.UMAP(n_epochs=20, random_state=0).fit(X[:100], ensure_all_finite=True).embedding_
    np.testing.assert_array_equal(Y, gidr.UMAP(n_epochs=20, random_state=0).fit(X[:100]).embedding_)
    with pytest.raises(GidrValueError, match=r"'ensure_all_finite' argument of fit must be True\. Got False"):
        gidr.UMAP().fit(X[:100], ensure_all_finite=False)


def test_tsne_rounds_distances_to_float32_as_scikit_learn(X):
    """scikit-learn computes P from float32 distances: inputs equal to that precision (a dense
    matrix and kneighbors_graph's, which differ in their last bits) give the same embedding."""
    from sklearn.metrics import pairwise_distances
    from sklearn.neighbors import kneighbors_graph

    data = X[:100]
    dense = pairwise_distances(data)
    sparse = kneighbors_graph(data, n_neighbors=99, mode="distance")
    model = gidr.TSNE(metric="precomputed", init="random", random_state=0, max_iter=300)
    a = model.fit_transform(dense)
    assert model.result_.stages["similarity"].values["distance_dtype"] == "float32"
    assert np.array_equal(a, model.fit_transform(sparse))


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_float32_distance_dtype_rounds_before_the_search(backend):
    stage = gidr.Pipeline.from_preset("tsne", backend=backend, perplexity=5,
                                      distance_dtype="float32").stages["similarity"]
    distances = np.sort(np.random.default_rng(0).uniform(0.5, 3.0, size=(30, 15)).astype(np.float32), axis=1)
    exact = distances.astype(np.float64)
    nudged = np.nextafter(exact, np.inf)  # one float64 ulp up: the same float32 value
    weights = stage.row_weights(exact, None)
    assert np.array_equal(weights, stage.row_weights(nudged, None))
    plain = gidr.Pipeline.from_preset("tsne", backend=backend, perplexity=5).stages["similarity"]
    assert np.array_equal(weights, plain.row_weights(exact, None))  # float32 values are left as they are


def test_tsne_takes_a_python_metric_as_scikit_learn(X):
    data = X[:120]

    def manhattan(x, y):
        return float(np.abs(x - y).sum())

    model = gidr.TSNE(metric=manhattan, perplexity=5, random_state=0, max_iter=250).fit(data)
    resolved = model.result_.config["resolved"]["neighbors"]
    assert (resolved["name"], resolved["backend"]) == ("exact", "reference")  # a Python call per pair
    named = gidr.TSNE(metric="manhattan", perplexity=5, random_state=0, max_iter=250).fit(data)
    np.testing.assert_array_equal(model.result_.graph.indices, named.result_.graph.indices)
    np.testing.assert_allclose(model.result_.graph.distances, named.result_.graph.distances, rtol=1e-12)


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_a_metric_returning_negative_distances_is_refused(X, backend):
    import numba

    def negative(x, y):
        return -1.0

    metric = numba.njit(negative) if backend == "numba" else negative
    with pytest.raises(GidrValueError, match=r"All distances should be finite and non-negative, but the metric "
                                             r"given returned .*-1\.0.* between points 0 and"):
        gidr.Pipeline.from_preset("tsne", backend=backend, neighbors="exact", metric=metric, perplexity=5).run(X[:60])
    with pytest.raises(ValueError, match="All distances .*metric given"):  # scikit-learn's words
        gidr.TSNE(metric=negative, method="exact", perplexity=5).fit(X[:60])


@pytest.mark.parametrize("scale", [1e-200, 1.0, 1e100, 1e200])
def test_float32_precision_keeps_distances_beyond_float32s_range(scale):
    """The rounding is float32's in its range, and never turns a distance into 0 or inf."""
    from gidr_reference.stages_graph import float32_precision

    d = np.random.default_rng(0).uniform(0.1, 5.0, size=(30, 12))
    rounded = float32_precision(d * scale)
    assert np.all(np.isfinite(rounded)) and np.all(rounded > 0)
    np.testing.assert_allclose(rounded, d * scale, rtol=6e-8)  # float32's half ulp
    if scale == 1.0:
        assert np.array_equal(rounded, d.astype(np.float32).astype(np.float64))
    if scale > 1e150:
        return  # the perplexity search squares the distances: 1e200 overflows there, float32 or not
    stage = gidr.Pipeline.from_preset("tsne", perplexity=4, distance_dtype="float32").stages["similarity"]
    weights = stage.row_weights(np.sort(d * scale, axis=1), None)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-9)


def test_a_python_metric_on_many_points_warns_of_its_cost(X, monkeypatch):
    import gidr.estimators

    monkeypatch.setattr(gidr.estimators, "PYTHON_METRIC_WARN_SAMPLES", 50)

    def manhattan(x, y):
        return float(np.abs(x - y).sum())

    with pytest.warns(UserWarning, match="Python function that numba did not compile: the exact search calls it once "
                                         "per pair, about 3,600 calls for 60 points"):
        gidr.TSNE(metric=manhattan, perplexity=5, max_iter=250, random_state=0).fit(X[:60])


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_tsne_weights_do_not_depend_on_the_distances_scale(X, backend):
    """The perplexity search runs on distances scaled by a power of two (the same bits), so
    distances of 1e200, whose squares overflow, weigh as those of 1."""
    from gidr_reference.neighbors import exact_knn

    distances = exact_knn(X[:300], 30).distances
    stage = gidr.Pipeline.from_preset("tsne", backend=backend, perplexity=10).stages["similarity"]
    weights = stage.row_weights(distances, None)
    assert np.array_equal(stage.row_weights(np.ldexp(distances, 600), None), weights)
    huge = stage.row_weights(distances * 1e200, None)
    assert np.all(np.isfinite(huge))
    np.testing.assert_allclose(huge, weights, rtol=1e-9, atol=1e-15)
    embedding = gidr.Pipeline.from_preset("tsne", backend=backend, perplexity=10, init="random", n_epochs=50,
                                          random_state=0).run(X[:300] * 1e200).embedding
    assert np.all(np.isfinite(embedding))
