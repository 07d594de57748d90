"""Issue 12, the `gidr` command: the output never destroys the input, says its format by its
suffix, and is checked before computing; bad --n-samples, --seed and --labels give one line
and exit status 2; dataset names are those of gidr.datasets.load. Each test failed before."""
import numpy as np
import pytest

from gidr import cli
from gidr.cli import main

FAST = ["--set", "n_epochs=5"]


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "data.npy"
    np.save(path, np.random.default_rng(0).normal(size=(60, 4)))
    return path


@pytest.fixture
def no_compute(monkeypatch):
    """Fail if the pipeline runs: the checks must come before any computation."""
    def refuse(*args, **kwargs):
        raise AssertionError("the pipeline ran before the argument was rejected")

    monkeypatch.setattr("gidr.Pipeline.run", refuse)


def error_of(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_output_equal_to_input_is_refused(data, capsys, no_compute):
    before = np.load(data)
    assert main(["embed", str(data), "-o", str(data), *FAST]) == 2
    assert "is the input file; writing there would destroy the data" in error_of(capsys)
    np.testing.assert_array_equal(np.load(data), before)


def test_force_allows_overwriting_the_input(data):
    assert main(["embed", str(data), "-o", str(data), "--force", *FAST]) == 0
    assert np.load(data).shape == (60, 2)


@pytest.mark.parametrize("suffix, delimiter", [(".txt", None), (".csv", ","), (".tsv", "\t")])
def test_text_output_is_written_under_its_name(data, tmp_path, capsys, suffix, delimiter):
    out = tmp_path / f"emb{suffix}"
    assert main(["embed", str(data), "-o", str(out), *FAST]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert not (tmp_path / f"emb{suffix}.npy").exists()
    assert np.loadtxt(out, delimiter=delimiter).shape == (60, 2)


def test_npy_output_has_no_extra_suffix(data, tmp_path):
    out = tmp_path / "emb.npy"
    assert main(["embed", str(data), "-o", str(out), *FAST]) == 0
    assert np.load(out).shape == (60, 2) and not (tmp_path / "emb.npy.npy").exists()


def test_unknown_output_suffix_is_refused(data, tmp_path, capsys, no_compute):
    assert main(["embed", str(data), "-o", str(tmp_path / "emb.dat"), *FAST]) == 2
    assert "unknown suffix '.dat'; use one of .npy, .csv, .tsv, .txt" in error_of(capsys)


def test_directory_output_is_refused(data, tmp_path, capsys, no_compute, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["embed", str(data), "-o", ".", *FAST]) == 2
    assert "-o/--output '.' is a directory; give a file name" in error_of(capsys)
    assert not (tmp_path / "..npy").exists()


@pytest.mark.parametrize("option", ["-o", "--plot"])
def test_missing_output_directory_is_reported_before_computing(data, tmp_path, capsys, no_compute, option):
    target = tmp_path / "missing" / ("e.npy" if option == "-o" else "p.png")
    assert main(["embed", str(data), option, str(target), *FAST]) == 2
    assert f"the directory '{tmp_path / 'missing'}' does not exist" in error_of(capsys)


def test_unwritable_plot_format_is_reported_before_computing(data, tmp_path, capsys, no_compute):
    pytest.importorskip("matplotlib")
    assert main(["embed", str(data), "-o", str(tmp_path / "e.npy"), "--plot", str(tmp_path / "p.xyz"), *FAST]) == 2
    assert "matplotlib cannot write '.xyz' files" in error_of(capsys)


@pytest.mark.parametrize("value", ["-3", "0"])
def test_non_positive_n_samples_is_one_clear_line(data, capsys, no_compute, value):
    assert main(["embed", str(data), "--n-samples", value, *FAST]) == 2
    assert f"--n-samples must be a positive integer, got {value}" in error_of(capsys)


def test_negative_seed_is_one_clear_line(data, capsys, no_compute):
    assert main(["embed", str(data), "--seed", "-1", *FAST]) == 2
    assert "--seed must be a non-negative integer, got -1" in error_of(capsys)


@pytest.mark.parametrize("seed", [str(2**63), str(10**23)])
def test_huge_seed_runs(data, tmp_path, seed):
    out = tmp_path / "e.npy"
    assert main(["embed", str(data), "--seed", seed, "-o", str(out), *FAST]) == 0
    assert np.load(out).shape == (60, 2)


@pytest.mark.parametrize("name", ["swiss_roll", "Swiss-Roll"])
def test_dataset_names_are_those_of_datasets_load(tmp_path, name):
    out = tmp_path / "e.npy"
    assert main(["embed", name, "--n-samples", "80", "-o", str(out), *FAST]) == 0
    assert np.load(out).shape == (80, 2)


def test_labels_from_a_device_are_refused(data, tmp_path, capsys):
    assert main(["embed", str(data), "--labels", "/dev/zero", "-o", str(tmp_path / "e.npy"), *FAST]) == 2
    assert "--labels '/dev/zero' is not a regular file" in error_of(capsys)


def test_oversized_labels_file_is_refused(data, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_LABELS_SLACK", 100)
    labels = tmp_path / "y.txt"
    labels.write_text("\n".join(["x" * 2000] * 60))
    assert main(["embed", str(data), "--labels", str(labels), "-o", str(tmp_path / "e.npy"), *FAST]) == 2
    assert "bytes, more than a file of 60 labels should" in error_of(capsys)


def test_labels_count_must_match(data, tmp_path, capsys):
    labels = tmp_path / "y.txt"
    labels.write_text("\n".join(["1"] * 59))
    assert main(["embed", str(data), "--labels", str(labels), "-o", str(tmp_path / "e.npy"), *FAST]) == 2
    assert "has 59 labels for 60 rows" in error_of(capsys)
