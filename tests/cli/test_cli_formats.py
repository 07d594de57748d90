"""The `gidr` command's .h5ad, CSV/TSV and Parquet inputs and its --html map, on real files."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from gidr.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:The affinity graph has .* connected components:UserWarning")
FAST = ["--set", "n_epochs=20"]


def error_of(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.fixture
def no_compute(monkeypatch):
    """Fail if the pipeline runs: the checks must come before any computation."""
    def refuse(*args, **kwargs):
        raise AssertionError("the pipeline ran before the argument was rejected")

    monkeypatch.setattr("gidr.Pipeline.run", refuse)


# ---------------------------------------------------------------------- .h5ad
@pytest.fixture
def cells(tmp_path):
    """An .h5ad of 300 digits with X_pca, obs 'digit' (text) and 'ink' (numbers), and .raw
    (which anndata cannot rewrite from a backed object)."""
    anndata = pytest.importorskip("anndata")
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA

    data = load_digits()
    X = data.data[:300].astype(np.float32)
    adata = anndata.AnnData(X)
    adata.obs["digit"] = data.target[:300].astype(str)
    adata.obs["ink"] = X.sum(axis=1)
    adata.obsm["X_pca"] = PCA(8, random_state=0).fit_transform(X).astype(np.float32)
    adata.raw = adata.copy()
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    return path


def read(path):
    import anndata

    return anndata.read_h5ad(path)


def test_h5ad_onto_itself_adds_the_obsm_entry(cells, capsys):
    before = read(cells)
    assert main(["embed", str(cells), "-o", str(cells), *FAST]) == 0
    after = read(cells)
    assert after.obsm["X_gdr_umap"].shape == (300, 2)
    np.testing.assert_array_equal(after.X, before.X)
    np.testing.assert_array_equal(after.obsm["X_pca"], before.obsm["X_pca"])
    np.testing.assert_array_equal(after.raw.X, before.raw.X)
    assert after.uns["gdr_umap"]["params"]["use_rep"] == "X_pca"
    assert sorted(p.name for p in cells.parent.iterdir()) == ["cells.h5ad"]  # no temporary file left
    assert f"wrote {cells} (300 x 2)" in capsys.readouterr().out


def test_h5ad_to_another_file_leaves_the_input_alone(cells, tmp_path):
    import gidr

    out = tmp_path / "other.h5ad"
    assert main(["embed", str(cells), "-o", str(out), "--use-rep", "X", "--key-added", "digits_map",
                 "--preset", "umap", "--seed", "4", *FAST]) == 0
    assert "X_digits_map" not in read(cells).obsm
    result = read(out)
    expected = gidr.Pipeline.from_preset("umap", random_state=4, n_epochs=20).run(result.X).embedding
    np.testing.assert_array_equal(result.obsm["X_digits_map"], expected)
    assert result.uns["digits_map"]["params"]["use_rep"] == "X"


def test_h5ad_to_npy_equals_tl_embed(cells, tmp_path):
    from gidr import tl

    out = tmp_path / "emb.npy"
    assert main(["embed", str(cells), "-o", str(out), *FAST]) == 0
    adata = read(cells)
    tl.embed(adata, n_epochs=20)
    np.testing.assert_array_equal(np.load(out), adata.obsm["X_gdr_umap"])


def test_h5ad_write_failure_leaves_the_input_as_it_was(cells, monkeypatch, capsys):
    """A disk that fills up mid-write: the real writer runs, then fails."""
    import anndata.io

    original = cells.read_bytes()
    real_write = anndata.io.write_elem

    def write_then_fail(store, name, value, *args, **kwargs):
        real_write(store, name, value, *args, **kwargs)
        raise OSError(28, "No space left on device", name)

    monkeypatch.setattr(anndata.io, "write_elem", write_then_fail)
    assert main(["embed", str(cells), "-o", str(cells), *FAST]) == 2
    assert "No space left on device" in error_of(capsys)
    assert cells.read_bytes() == original
    assert sorted(p.name for p in cells.parent.iterdir()) == ["cells.h5ad"]


def test_h5ad_labels_are_an_obs_column(cells, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "p.png"
    assert main(["embed", str(cells), "-o", str(tmp_path / "e.npy"), "--labels", "digit", "--plot", str(png),
                 *FAST]) == 0
    assert png.stat().st_size > 10_000


def test_h5ad_unknown_labels_column_lists_the_obs_columns(cells, tmp_path, capsys):
    assert main(["embed", str(cells), "-o", str(tmp_path / "e.npy"), "--labels", "kind", *FAST]) == 2
    assert "--labels 'kind' is neither a file nor an obs column of" in (err := error_of(capsys))
    assert "(its obs columns: 'digit', 'ink')" in err


@pytest.mark.parametrize("argv, message", [
    (["--n-samples", "50"], "--n-samples does not apply to an .h5ad input"),
    (["--use-rep", "X_umap"], "'use_rep' parameter of gidr.tl.embed must be 'X' or a key of adata.obsm"),
])
def test_h5ad_bad_options(cells, tmp_path, capsys, argv, message):
    assert main(["embed", str(cells), "-o", str(tmp_path / "e.npy"), *argv, *FAST]) == 2
    assert message in error_of(capsys)


def test_h5ad_options_need_an_h5ad_input(tmp_path, capsys, no_compute):
    np.save(tmp_path / "d.npy", np.zeros((20, 3)))
    assert main(["embed", str(tmp_path / "d.npy"), "--use-rep", "X_pca"]) == 2
    assert "--use-rep applies to an .h5ad input only" in error_of(capsys)
    assert main(["embed", str(tmp_path / "d.npy"), "-o", str(tmp_path / "e.h5ad")]) == 2
    assert "an .h5ad output needs an .h5ad input" in error_of(capsys)


def test_not_an_h5ad_file(tmp_path, capsys):
    pytest.importorskip("anndata")
    path = tmp_path / "fake.h5ad"
    path.write_text("not hdf5")
    assert main(["embed", str(path), "-o", str(tmp_path / "e.npy")]) == 2
    assert f"{path}: cannot read as an .h5ad file" in error_of(capsys)


# ---------------------------------------------------------------------- tables
@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (50, 4)), rng.normal(6, 1, (50, 4))])
    return X, np.repeat(["a", "b"], 50)


def write_text_table(path, X, labels, delimiter):
    rows = [delimiter.join(["f0", "f1", "kind", "f2", "f3"])]
    rows += [delimiter.join([f"{r[0]:.6f}", f"{r[1]:.6f}", lab, f"{r[2]:.6f}", f"{r[3]:.6f}"])
             for r, lab in zip(X, labels)]
    path.write_text("\n".join(rows) + "\n")


def embedding_of(path, tmp_path, *extra):
    out = tmp_path / f"{path.stem}-{path.suffix[1:]}.npy"
    assert main(["embed", str(path), "-o", str(out), *extra, *FAST]) == 0
    return np.load(out)


def test_csv_tsv_and_parquet_give_the_same_map(table, tmp_path):
    X, labels = table
    write_text_table(tmp_path / "t.csv", X, labels, ",")
    write_text_table(tmp_path / "t.tsv", X, labels, "\t")
    from_csv = embedding_of(tmp_path / "t.csv", tmp_path, "--labels", "kind")
    np.testing.assert_array_equal(embedding_of(tmp_path / "t.tsv", tmp_path, "--labels", "kind"), from_csv)
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pd.read_csv(tmp_path / "t.csv")
    frame.to_parquet(tmp_path / "t.parquet")
    np.testing.assert_array_equal(embedding_of(tmp_path / "t.parquet", tmp_path, "--labels", "kind"), from_csv)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
def test_a_text_column_that_is_not_the_labels_is_refused(table, tmp_path, capsys, suffix, no_compute):
    X, labels = table
    path = tmp_path / f"t{suffix}"
    if suffix == ".parquet":
        pd = pytest.importorskip("pandas")
        pytest.importorskip("pyarrow")
        write_text_table(tmp_path / "t.csv", X, labels, ",")
        pd.read_csv(tmp_path / "t.csv").to_parquet(path)
    else:
        write_text_table(path, X, labels, "," if suffix == ".csv" else "\t")
    assert main(["embed", str(path), "-o", str(tmp_path / "e.npy")]) == 2
    assert "column 'kind' holds non-numeric values (e.g. 'a'); only the --labels column may hold text: " \
           "pass --labels kind" in error_of(capsys)


def test_unknown_table_column(table, tmp_path, capsys, no_compute):
    X, labels = table
    write_text_table(tmp_path / "t.csv", X, labels, ",")
    assert main(["embed", str(tmp_path / "t.csv"), "--labels", "species", "-o", str(tmp_path / "e.npy")]) == 2
    assert "--labels 'species' is neither a file nor a column of" in (err := error_of(capsys))
    assert "(its columns: 'f0', 'f1', 'kind', 'f2', 'f3')" in err


def test_parquet_without_pyarrow_names_the_extra(table, tmp_path, capsys, monkeypatch):
    import sys

    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # what an environment without pyarrow imports
    assert main(["embed", str(tmp_path / "t.parquet"), "-o", str(tmp_path / "e.npy")]) == 2
    assert "needs pyarrow: pip install gidr[tables]" in error_of(capsys)


# ---------------------------------------------------------------------- --html
needs_html_map = pytest.mark.skipif(importlib.util.find_spec("gidr.html_map") is None,
                                    reason="gidr.html_map is not there yet")


@needs_html_map
def test_html_map_of_an_h5ad_with_hover_columns(cells, tmp_path):
    pytest.importorskip("bokeh")
    page = tmp_path / "map.html"
    assert main(["embed", str(cells), "-o", str(cells), "--labels", "digit", "--columns", "ink",
                 "--html", str(page), *FAST]) == 0
    html = page.read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and "ink" in html
    assert "cdn.bokeh.org" not in html  # self-contained: the JavaScript is inline


@needs_html_map
def test_html_map_of_a_table(table, tmp_path):
    pytest.importorskip("bokeh")
    X, labels = table
    write_text_table(tmp_path / "t.csv", X, labels, ",")
    page = tmp_path / "map.html"
    embedding_of(tmp_path / "t.csv", tmp_path, "--labels", "kind", "--columns", "f0", "--html", str(page))
    assert "f0" in page.read_text()


def test_html_path_is_checked_before_computing(cells, tmp_path, capsys, no_compute):
    out = tmp_path / "e.npy"
    assert main(["embed", str(cells), "-o", str(out), "--html", str(out)]) == 2
    assert "is also the embedding's output or the --plot file" in error_of(capsys)
    assert main(["embed", str(cells), "-o", str(out), "--html", str(tmp_path / "no" / "m.html")]) == 2
    assert "does not exist" in error_of(capsys)


def test_columns_of_an_array_input_are_refused(tmp_path, capsys, no_compute):
    np.save(tmp_path / "d.npy", np.zeros((20, 3)))
    assert main(["embed", str(tmp_path / "d.npy"), "--columns", "a", "-o", str(tmp_path / "e.npy")]) == 2
    assert "--columns names columns of a table or of an .h5ad's obs" in error_of(capsys)
