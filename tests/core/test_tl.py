"""gidr.tl.embed on real AnnData objects (digits, scanpy's bundled pbmc68k_reduced): what it
reads, what it writes, scanpy's neighbours graph reused, backed objects, and its errors."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

anndata = pytest.importorskip("anndata")

import gidr  # noqa: E402
from gidr import tl  # noqa: E402
from gidr.validation import GidrValueError  # noqa: E402

FAST = {"n_epochs": 30}


def digits(n: int = 400, pca: bool = True):
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA

    data = load_digits()
    X, y = data.data[:n].astype(np.float32), data.target[:n]
    adata = anndata.AnnData(X)
    adata.obs["digit"] = y.astype(str)
    if pca:
        adata.obsm["X_pca"] = PCA(10, random_state=0).fit_transform(X).astype(np.float32)
    return adata


def run(X, preset="gdr-umap", **overrides):
    """What Pipeline.run gives on the same data with embed's defaults (random_state=0)."""
    return gidr.Pipeline.from_preset(preset, **{"random_state": 0, **FAST, **overrides}).run(X).embedding


# ---------------------------------------------------------------------- what it reads and writes
def test_writes_obsm_and_uns_params_and_returns_none():
    adata = digits()
    assert tl.embed(adata, **FAST) is None
    Y = adata.obsm["X_gdr_umap"]
    assert Y.shape == (400, 2)
    np.testing.assert_array_equal(Y, run(adata.obsm["X_pca"]))
    params = adata.uns["gdr_umap"]["params"]
    assert params["pipeline"]["preset"] == "gdr-umap" and params["resolved"]["seed"] == 0
    assert params["use_rep"] == "X_pca"
    assert params["neighbors"]["source"] == "computed"


def test_without_x_pca_reads_x_and_use_rep_x_forces_it():
    plain = digits(pca=False)
    tl.embed(plain, **FAST)
    np.testing.assert_array_equal(plain.obsm["X_gdr_umap"], run(plain.X))
    with_pca = digits()
    tl.embed(with_pca, use_rep="X", **FAST)
    np.testing.assert_array_equal(with_pca.obsm["X_gdr_umap"], run(with_pca.X))
    assert with_pca.uns["gdr_umap"]["params"]["use_rep"] == "X"


def test_sparse_x():
    adata = digits(pca=False)
    adata.X = sp.csr_matrix(adata.X)
    tl.embed(adata, **FAST)
    np.testing.assert_array_equal(adata.obsm["X_gdr_umap"], run(adata.X))


def test_float32_representation_is_not_copied():
    adata = digits()
    data = tl._representation(adata, "X_pca")
    assert data.dtype == np.float32 and np.shares_memory(data, adata.obsm["X_pca"])


def test_key_added_preset_name_and_overrides():
    adata = digits()
    tl.embed(adata, "umap", key_added="mine", random_state=3, **FAST)
    assert "X_mine" in adata.obsm and "X_umap" not in adata.obsm
    params = adata.uns["mine"]["params"]
    assert params["pipeline"]["preset"] == "umap" and params["resolved"]["seed"] == 3
    np.testing.assert_array_equal(adata.obsm["X_mine"],
                                  gidr.Pipeline.from_preset("umap", random_state=3, **FAST).run(
                                      adata.obsm["X_pca"]).embedding)
    tl.embed(adata, "gdr-tsne", **FAST)
    assert "X_gdr_tsne" in adata.obsm and "gdr_tsne" in adata.uns


def test_copy_returns_a_new_object_and_leaves_the_input_alone():
    adata = digits()
    out = tl.embed(adata, copy=True, **FAST)
    assert isinstance(out, anndata.AnnData) and out is not adata
    assert "X_gdr_umap" in out.obsm and "gdr_umap" in out.uns
    assert "X_gdr_umap" not in adata.obsm and "gdr_umap" not in adata.uns


def test_h5ad_round_trip_keeps_embedding_and_params(tmp_path):
    adata = digits()
    tl.embed(adata, random_state=np.random.default_rng(0), init="random", **FAST)
    adata.write_h5ad(tmp_path / "a.h5ad")
    back = anndata.read_h5ad(tmp_path / "a.h5ad")
    np.testing.assert_array_equal(back.obsm["X_gdr_umap"], adata.obsm["X_gdr_umap"])
    params = back.uns["gdr_umap"]["params"]
    assert params["init"]["name"] == "random"
    assert params["resolved"]["seed"] == adata.uns["gdr_umap"]["params"]["resolved"]["seed"]
    assert params["pipeline"]["random_state"].startswith("Generator(")


# ---------------------------------------------------------------------- scanpy's neighbours graph
@pytest.fixture
def pbmc():
    sc = pytest.importorskip("scanpy")
    return sc.datasets.pbmc68k_reduced()  # bundled with scanpy: no network


def test_scanpy_graph_is_reused(pbmc):
    tl.embed(pbmc, **FAST)
    graph = tl.neighbors_graph(pbmc.obsp["distances"])
    assert graph.n_neighbors == 9  # scanpy's n_neighbors=10 counts the cell itself
    expected = run(graph, neighbors="precomputed", n_neighbors=9)
    np.testing.assert_array_equal(pbmc.obsm["X_gdr_umap"], expected)
    assert not np.array_equal(expected, run(pbmc.obsm["X_pca"]))  # its own graph gives another map
    record = pbmc.uns["gdr_umap"]["params"]["neighbors"]
    assert record["source"] == "adata.obsp['distances']" and record["name"] == "precomputed"
    assert record["n_neighbors"] == 9 and record["scanpy_n_neighbors"] == 10 and record["use_rep"] == "X_pca"


def test_graph_of_scanpy_pp_neighbors_with_a_key(tmp_path):
    sc = pytest.importorskip("scanpy")
    adata = digits()
    sc.pp.neighbors(adata, n_neighbors=12, use_rep="X_pca", key_added="nb", transformer="sklearn")
    tl.embed(adata, neighbors_key="nb", use_rep="X_pca", **FAST)
    record = adata.uns["gdr_umap"]["params"]["neighbors"]
    assert record["source"] == "adata.obsp['nb_distances']" and record["n_neighbors"] == 11
    expected = run(tl.neighbors_graph(adata.obsp["nb_distances"]), neighbors="precomputed", n_neighbors=11)
    np.testing.assert_array_equal(adata.obsm["X_gdr_umap"], expected)
    adata.write_h5ad(tmp_path / "nb.h5ad")


def test_a_smaller_n_neighbors_takes_the_nearest_of_the_graph(pbmc):
    tl.embed(pbmc, n_neighbors=5, **FAST)
    graph = tl.neighbors_graph(pbmc.obsp["distances"])
    expected = run(gidr.KNNGraph(graph.indices[:, :5], graph.distances[:, :5]), neighbors="precomputed",
                   n_neighbors=5)
    np.testing.assert_array_equal(pbmc.obsm["X_gdr_umap"], expected)


@pytest.mark.parametrize("overrides, reason", [
    ({"n_neighbors": 20}, "similarity 'umap' needs 20 neighbours and the graph has 9"),
    ({"metric": "cosine"}, "its metric is 'euclidean', metric='cosine' was asked"),
])
def test_a_graph_that_does_not_fit_is_not_used_and_says_why(pbmc, overrides, reason):
    with pytest.warns(UserWarning, match="is not used"):
        tl.embed(pbmc, **overrides, **FAST)
    record = pbmc.uns["gdr_umap"]["params"]["neighbors"]
    assert record["source"] == "computed" and reason in record["reason"]
    np.testing.assert_array_equal(pbmc.obsm["X_gdr_umap"], run(pbmc.obsm["X_pca"], **overrides))


def test_tsne_perplexity_decides_whether_the_graph_is_enough(pbmc):
    with pytest.warns(UserWarning, match="similarity 'tsne' needs 90 neighbours and the graph has 9"):
        tl.embed(pbmc, "tsne", n_epochs=20)
    tl.embed(pbmc, "tsne", perplexity=3.0, init="spectral", n_epochs=20)  # needs floor(3 * 3) = 9: the graph's
    assert pbmc.uns["tsne"]["params"]["neighbors"]["source"] == "adata.obsp['distances']"


def test_an_init_that_needs_the_data_cannot_start_from_the_graph(pbmc):
    with pytest.raises(GidrValueError, match=r"init 'pca' must be the data matrix X.*started from the neighbours "
                                             r"graph in adata.obsp\['distances'\]; pass neighbors='auto' to start "
                                             r"from adata.obsm\['X_pca'\] instead"):
        tl.embed(pbmc, "tsne", perplexity=3.0, n_epochs=20)


def test_another_representation_than_the_graphs_computes_its_own(pbmc):
    pbmc.obsm["X_other"] = pbmc.obsm["X_pca"][:, :5].copy()
    with pytest.warns(UserWarning, match="built on X_pca, use_rep='X_other' was asked"):
        tl.embed(pbmc, use_rep="X_other", **FAST)
    np.testing.assert_array_equal(pbmc.obsm["X_gdr_umap"], run(pbmc.obsm["X_other"]))


def test_passing_a_neighbors_stage_computes_without_warning(pbmc, recwarn):
    tl.embed(pbmc, neighbors="exact", **FAST)
    assert not [w for w in recwarn if "not used" in str(w.message)]
    assert "neighbors='exact' was passed" in pbmc.uns["gdr_umap"]["params"]["neighbors"]["reason"]


def test_neighbors_graph_of_uneven_rows_and_a_stored_diagonal():
    rows = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3]
    cols = [1, 3, 0, 0, 2, 3, 0, 1, 3, 0, 2]  # row 0 stores itself; row 3 has two neighbours
    vals = [5.0, 1.0, 0.0, 2.0, 1.0, 3.0, 4.0, 1.0, 4.0, 1.0, 0.5]
    graph = tl.neighbors_graph(sp.csr_matrix((vals, (rows, cols)), shape=(4, 4)))
    np.testing.assert_array_equal(graph.indices, [[3, 1], [2, 0], [1, 0], [2, 0]])
    np.testing.assert_array_equal(graph.distances, [[1.0, 5.0], [1.0, 2.0], [1.0, 4.0], [0.5, 1.0]])


# ---------------------------------------------------------------------- backed objects
def peak_bytes(function, *args, **kwargs):
    """``(peak bytes allocated while function runs, its result)``, by tracemalloc."""
    tracemalloc.start()
    try:
        result = function(*args, **kwargs)
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


@pytest.fixture
def backed_file(tmp_path):
    """An .h5ad whose dense X (2,000 x 2,000 float32, 16 MB) is far bigger than anything embed needs."""
    rng = np.random.default_rng(0)
    adata = anndata.AnnData(rng.normal(size=(2000, 2000)).astype(np.float32))
    adata.obsm["X_pca"] = rng.normal(size=(2000, 10)).astype(np.float32)
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    return path


def test_backed_object_is_embedded_without_reading_x(backed_file, tmp_path):
    adata = anndata.read_h5ad(backed_file, backed="r")
    run(adata.obsm["X_pca"], n_epochs=10)  # compiles and warms what both measured runs use
    peak_run, expected = peak_bytes(run, adata.obsm["X_pca"], n_epochs=10)
    peak_embed, _ = peak_bytes(tl.embed, adata, n_epochs=10)
    assert peak_embed < peak_run + 4e6, f"embed peaked {(peak_embed - peak_run) / 1e6:.1f} MB above Pipeline.run " \
                                        "on the same array; X alone is 16 MB"
    np.testing.assert_array_equal(adata.obsm["X_gdr_umap"], expected)
    adata.write_h5ad(tmp_path / "other.h5ad")  # "r": the result reaches a file through write_h5ad
    adata.file.close()
    assert "X_gdr_umap" in anndata.read_h5ad(tmp_path / "other.h5ad").obsm
    assert "X_gdr_umap" not in anndata.read_h5ad(backed_file).obsm


def test_backed_r_plus_persists_on_write(backed_file):
    adata = anndata.read_h5ad(backed_file, backed="r+")
    tl.embed(adata, n_epochs=10)
    expected = adata.obsm["X_gdr_umap"].copy()
    adata.write()
    adata.file.close()
    np.testing.assert_array_equal(anndata.read_h5ad(backed_file).obsm["X_gdr_umap"], expected)


def test_backed_x_as_representation_is_refused(backed_file):
    adata = anndata.read_h5ad(backed_file, backed="r")
    with pytest.raises(GidrValueError, match=r"must be in memory\. Got adata\.X backed on disk .*to_memory\(\)"):
        tl.embed(adata, use_rep="X")
    with pytest.raises(GidrValueError, match="The 'copy' parameter of gidr.tl.embed must be False for a backed"):
        tl.embed(adata, copy=True)
    adata.file.close()


# ---------------------------------------------------------------------- errors
def test_unknown_use_rep_lists_the_obsm_keys():
    with pytest.raises(GidrValueError, match=r"'use_rep' .* must be 'X' or a key of adata.obsm\. Got 'X_umap'\. "
                                             r"adata.obsm has 'X_pca'\."):
        tl.embed(digits(), use_rep="X_umap")


def test_unknown_neighbors_key():
    with pytest.raises(GidrValueError, match=r"'neighbors_key' .* Got 'nb'\. .*scanpy.pp.neighbors\(adata, "
                                             r"key_added='nb'\)"):
        tl.embed(digits(), neighbors_key="nb")


def test_missing_distances_of_a_graph(pbmc):
    del pbmc.obsp["distances"]
    with pytest.raises(GidrValueError, match=r"must be stored in adata.obsp\['distances'\]\. Got adata.obsp with "
                                             r"'connectivities'"):
        tl.embed(pbmc)


@pytest.mark.parametrize("matrix, got", [
    (sp.csr_matrix(np.ones((3, 4))), "a csr_matrix of shape (3, 4)"),
    (np.ones((3, 3)), "a ndarray of shape (3, 3)"),
])
def test_neighbors_graph_of_a_matrix_that_is_not_square_sparse(matrix, got):
    with pytest.raises(GidrValueError, match=r"must be a square scipy sparse matrix\. Got " + got.replace("(", r"\(")
                       .replace(")", r"\)")):
        tl.neighbors_graph(matrix)


def test_nan_in_the_representation_names_it():
    adata = digits()
    adata.obsm["X_pca"][7, 2] = np.nan
    with pytest.raises(GidrValueError, match=r"adata.obsm\['X_pca'\] must contain only finite values\. "
                                             r"Got 1 NaN .* the first in row 7"):
        tl.embed(adata)


def test_not_an_anndata():
    with pytest.raises(GidrValueError, match="'adata' parameter of gidr.tl.embed must be an anndata.AnnData. "
                                             "Got a ndarray"):
        tl.embed(np.zeros((10, 3)))
