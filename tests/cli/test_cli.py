"""The `gidr` command line."""
import subprocess
import sys

import numpy as np
import pytest

from gidr.cli import main


def test_embed_dataset_writes_embedding_and_picture(tmp_path, capsys):
    out, png = tmp_path / "emb.npy", tmp_path / "emb.png"
    code = main(["embed", "digits", "--n-samples", "300", "--set", "n_epochs=40", "-o", str(out),
                 "--plot", str(png)])
    assert code == 0
    Y = np.load(out)
    assert Y.shape == (300, 2) and np.all(np.isfinite(Y))
    assert png.stat().st_size > 10_000
    assert "wrote" in capsys.readouterr().out


def test_embed_csv_with_label_column_and_overrides(tmp_path):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (60, 5)), rng.normal(8, 1, (60, 5))])
    labels = np.repeat(["a", "b"], 60)
    path = tmp_path / "data.csv"
    lines = ["f0,f1,f2,f3,f4,label"] + [",".join(f"{v:.5f}" for v in row) + f",{lab}" for row, lab in zip(X, labels)]
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "emb.csv"
    code = main(["embed", str(path), "--labels", "label", "--preset", "gdr-tsne", "--set", "n_epochs=30",
                 "--set", "loss=frobenius", "-o", str(out), "--plot", str(tmp_path / "p.png")])
    assert code == 0
    assert np.loadtxt(out, delimiter=",").shape == (120, 2)


def test_embed_npz_and_labels_file(tmp_path):
    X = np.random.default_rng(1).normal(size=(80, 4))
    np.savez(tmp_path / "d.npz", X=X)
    np.save(tmp_path / "y.npy", np.arange(80) % 3)
    code = main(["embed", str(tmp_path / "d.npz"), "--labels", str(tmp_path / "y.npy"), "--set", "n_epochs=10",
                 "-o", str(tmp_path / "e.npy")])
    assert code == 0


def test_presets_and_stages_listings(capsys):
    assert main(["presets"]) == 0
    listing = capsys.readouterr().out
    for name in ["umap", "tsne", "gdr-umap", "gdr-tsne", "gdr-umap-frob", "gdr-tsne-frob"]:
        assert name in listing
    assert main(["stages"]) == 0
    stages = capsys.readouterr().out
    assert "barnes_hut" in stages and "reference" in stages


@pytest.mark.parametrize(
    "argv, message",
    [
        (["embed", "no-such-file.npy"], "neither a file nor a dataset name"),
        (["embed", "digits", "--set", "n_epochs"], "--set expects KEY=VALUE"),
        (["embed", "digits", "--set", "not_a_switch=1"], "The override 'not_a_switch' must be"),
        (["embed", "digits", "--preset", "nope"], "The preset name must be one of"),
        (["embed", "digits", "--set", "perplexity=-3", "--preset", "tsne"],
         "The 'perplexity' parameter of similarity 'tsne'"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_pickled_npy_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.npy"
    np.save(path, np.array([{"a": 1}, {"b": 2}], dtype=object), allow_pickle=True)
    assert main(["embed", str(path)]) == 2
    assert "without unpickling" in capsys.readouterr().err


def test_non_numeric_csv(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("1,2\n3,x\n")
    assert main(["embed", str(path)]) == 2
    assert "non-numeric" in capsys.readouterr().err


def test_nan_input_file(tmp_path, capsys):
    path = tmp_path / "nan.npy"
    X = np.ones((20, 3))
    X[4, 1] = np.nan
    np.save(path, X)
    assert main(["embed", str(path)]) == 2
    assert "the first in row 4" in capsys.readouterr().err


def test_console_script_runs():
    proc = subprocess.run([sys.executable, "-m", "gidr.cli", "presets"], capture_output=True, text=True)
    assert proc.returncode == 0 and "gdr-umap" in proc.stdout
