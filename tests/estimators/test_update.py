"""UMAP.update / GDR.update: rows added to a fitted embedding (gidr.update)."""
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.neighbors import KNeighborsClassifier

import gidr
from gidr.validation import GidrValueError

#: (estimator, parameters): umap-learn's UMAP, gdr-umap and gdr-tsne.
CASES = {"UMAP": (gidr.UMAP, {}), "GDR": (gidr.GDR, {}), "GDR-normalized": (gidr.GDR, {"normalized": True})}
EPOCHS = 200
#: Median displacement of the old points by the update, as a share of the embedding's extent.
#: Measured (1,000 digits, 750 fitted, 250 added, 200 epochs): UMAP 0.067, GDR 0.073, GDR
#: normalized 0.041; a fresh fit on the union moves them 0.145 / 0.197 / 0.151 (same seed, same
#: spectral start), umap-learn 0.5.12's update 0.26 (1,797 digits, default epochs).
MOVE_SHARE = 0.12
#: 15-NN label accuracy of the added points among the old ones in the updated embedding:
#: measured 0.963 / 0.955 / 0.955 (umap-learn 0.5.12's update: 0.23 on the full digits).
NEW_ACCURACY = 0.9


@pytest.fixture(scope="module")
def split():
    X, y = load_digits(return_X_y=True)
    X, y = X[:1000], y[:1000]
    old = np.random.default_rng(0).random(len(X)) < 0.75
    return X[old], y[old], X[~old], y[~old]


def _fit(case, X, **kw):
    cls, params = CASES[case]
    return cls(random_state=0, n_epochs=EPOCHS, **params, **kw).fit(X)


@pytest.fixture(scope="module", params=list(CASES))
def updated(request, split):
    X_old, _, X_new, _ = split
    est = _fit(request.param, X_old)
    before = est.embedding_.copy()
    est.update(X_new)
    return request.param, est, before


def test_shapes_reflect_the_union(updated, split):
    _, est, before = updated
    n = len(split[0]) + len(split[2])
    assert est.embedding_.shape == (n, 2)
    assert est.graph_.shape == (n, n)
    assert est._training_rows().shape == (n, 64)
    assert est.result_.graph.indices.shape[0] == n and est.n_features_in_ == 64
    resolved = est.result_.config["resolved"]
    assert resolved["update"]["n_old"] == len(split[0]) and resolved["update"]["n_new"] == len(split[2])


def test_old_points_stay_and_new_points_join_their_class(updated, split):
    _, est, before = updated
    X_old, y_old, _, y_new = split
    extent = np.ptp(before, axis=0).max()
    moved = np.linalg.norm(est.embedding_[:len(X_old)] - before, axis=1) / extent
    assert np.median(moved) < MOVE_SHARE, np.median(moved)
    vote = KNeighborsClassifier(15).fit(est.embedding_[:len(X_old)], y_old)
    assert vote.score(est.embedding_[len(X_old):], y_new) > NEW_ACCURACY


def test_transform_searches_the_union(updated, split):
    _, est, _ = updated
    X_new = split[2]
    Y = est.transform(X_new[:60])
    extent = np.ptp(est.embedding_, axis=0).max()
    assert np.median(np.linalg.norm(Y - est.embedding_[len(split[0]):][:60], axis=1)) / extent < 0.08


@pytest.mark.parametrize("case", ["UMAP", "GDR"])
def test_graph_is_the_union_fits(case, split):
    """With exact neighbours the recomputed graph is the one a fit on the union builds."""
    X_old, _, X_new, _ = split
    est = _fit(case, X_old).update(X_new)
    union = _fit(case, np.concatenate([X_old, X_new]))
    np.testing.assert_allclose(est.graph_.toarray(), union.graph_.toarray(), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("case", ["UMAP", "GDR-normalized"])
def test_deterministic(case, split):
    X_old, _, X_new, _ = split
    first = _fit(case, X_old).update(X_new[:100]).update(X_new[100:])
    second = _fit(case, X_old).update(X_new[:100]).update(X_new[100:])
    np.testing.assert_array_equal(first.embedding_, second.embedding_)
    assert first.embedding_.shape == (len(X_old) + len(X_new), 2)


def test_update_after_pca_projects_the_new_rows(split, tmp_path):
    X_old, y_old, X_new, y_new = split
    est = _fit("GDR", X_old, pca=20)
    np.save(tmp_path / "new.npy", X_new)
    est.update(np.load(tmp_path / "new.npy", mmap_mode="r"))  # out-of-core rows too
    assert est._training_rows().shape == (len(X_old) + len(X_new), 20)
    assert est.result_.config["resolved"]["pca"]["n_components"] == 20
    vote = KNeighborsClassifier(15).fit(est.embedding_[:len(X_old)], y_old)
    assert vote.score(est.embedding_[len(X_old):], y_new) > NEW_ACCURACY
    est.save(tmp_path / "model.gidr")
    np.testing.assert_array_equal(gidr.load(tmp_path / "model.gidr").transform(X_new[:20]), est.transform(X_new[:20]))


def test_refusals_say_why(split, tmp_path):
    from scipy.spatial.distance import cdist
    from sklearn.exceptions import NotFittedError
    from sklearn.neighbors import NearestNeighbors

    X_old, y_old, X_new, _ = split
    with pytest.raises(NotFittedError):
        gidr.UMAP().update(X_new)
    on_distances = gidr.UMAP(metric="precomputed", n_epochs=11, random_state=0).fit(cdist(X_old[:100], X_old[:100]))
    with pytest.raises(GidrValueError, match=r"'metric' parameter of UMAP for update must be a metric name"):
        on_distances.update(cdist(X_new[:10], X_old[:100]))
    supervised = gidr.GDR(n_epochs=11, random_state=0).fit(X_old, y_old)
    with pytest.raises(GidrValueError, match=r"GDR.update cannot add rows to a supervised fit"):
        supervised.update(X_new)
    supervised.save(tmp_path / "supervised.gidr")
    with pytest.raises(GidrValueError, match=r"cannot add rows to a supervised fit"):
        gidr.load(tmp_path / "supervised.gidr").update(X_new)
    plain = gidr.UMAP(n_epochs=11, random_state=0).fit(X_old)
    with pytest.raises(GidrValueError, match=r"X has 10 features, but UMAP is expecting 64"):
        plain.update(X_new[:, :10])
    distances, indices = NearestNeighbors(n_neighbors=16).fit(X_old).kneighbors(X_old)
    on_knn = gidr.UMAP(n_neighbors=15, n_epochs=11, random_state=0, precomputed_knn=(indices, distances)).fit(X_old)
    with pytest.raises(GidrValueError, match=r"'precomputed_knn' parameter of UMAP for update"):
        on_knn.update(X_new)
    with pytest.raises(GidrValueError, match=r"'unique' parameter of GDR for update must be False"):
        gidr.GDR(unique=True, n_epochs=11, random_state=0).fit(X_old).update(X_new)
    with pytest.raises(GidrValueError, match=r"A keyword argument of update must be 'callback'"):
        plain.update(X_new, ensure_finite=True)
    with pytest.raises(GidrValueError, match=r"'ensure_all_finite' argument of update must be True"):
        plain.update(X_new, ensure_all_finite=False)
    with pytest.raises(GidrValueError, match=r"'densmap' parameter of UMAP for update must be False"):
        gidr.UMAP(densmap=True, n_epochs=30, random_state=0).fit(X_old).update(X_new)
    assert not hasattr(gidr.TSNE(), "update")  # umap-learn's method: UMAP and GDR only
