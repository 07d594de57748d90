"""Safe save and load (:mod:`gidr.persist`): round trips whose ``transform`` is bit-identical,
what is stored and why, one clear error per kind of bad file, and no pickle anywhere."""
from __future__ import annotations

import io
import json
import os
import pickle
import stat
import struct
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits

import gidr
import gidr.plugins as plugins
from gidr import datasets, persist
from gidr.persist import ModelFileError
from gidr.validation import GidrValueError
from gidr_reference.stages_forces import KL
from tests.helpers import StagePlugin

N_TRAIN, N_NEW = 300, 60
ESTIMATORS = {
    "umap": lambda: gidr.UMAP(random_state=0, n_epochs=30),
    "tsne": lambda: gidr.TSNE(random_state=0, max_iter=60),
    "gdr-umap": lambda: gidr.GDR(random_state=0, n_epochs=30),
    "gdr-tsne": lambda: gidr.GDR(normalized=True, random_state=0, n_epochs=30),
    "gdr-reference": lambda: gidr.GDR(random_state=0, n_epochs=30, backend="reference"),
}


@pytest.fixture(scope="module")
def digits():
    X = load_digits().data
    return X[:N_TRAIN], X[N_TRAIN:N_TRAIN + N_NEW]


@pytest.fixture(scope="module")
def saved_gdr(digits, tmp_path_factory):
    """A fitted GDR, its transform of the new points, and the path of its saved model."""
    X_train, X_new = digits
    estimator = gidr.GDR(random_state=0, n_epochs=30).fit(X_train)
    path = tmp_path_factory.mktemp("model") / "gdr.gidr"
    estimator.save(path)
    return estimator, estimator.transform(X_new), path


def _round_trip(estimator, tmp_path, **save_options):
    path = tmp_path / "model.gidr"
    estimator.save(path, **save_options)
    return gidr.load(path), path


def _assert_same_model(*, loaded, original, X_new):
    assert type(loaded) is type(original)
    assert loaded.get_params() == original.get_params()
    np.testing.assert_array_equal(loaded.embedding_, original.embedding_)
    assert loaded.n_iter_ == original.n_iter_ and loaded.n_features_in_ == original.n_features_in_
    assert loaded.result_.config == original.result_.config
    expected = original.transform(X_new)
    actual = loaded.transform(X_new)
    assert actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)  # bit for bit, not approximately


def _manifest(path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("manifest.json"))


def _rewrite(path, out, replace: dict) -> None:
    """A copy of the model at ``path`` with members replaced (zip's CRC-32s recomputed)."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            target.writestr(info, replace.get(info.filename, source.read(info)))


def _data_offset(path, member: str) -> tuple[int, int]:
    """Offset and length of ``member``'s stored bytes in the file."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    with open(path, "rb") as handle:
        handle.seek(info.header_offset + 26)
        name_length, extra_length = struct.unpack("<HH", handle.read(4))
    return info.header_offset + 30 + name_length + extra_length, info.compress_size


def _flip_byte(path, out, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    out.write_bytes(bytes(data))


# ---------------------------------------------------------------------- round trips
@pytest.mark.parametrize("kind", ESTIMATORS)
def test_round_trip_is_bit_identical(kind, digits, tmp_path):
    X_train, X_new = digits
    original = ESTIMATORS[kind]().fit(X_train)
    loaded, _ = _round_trip(original, tmp_path)
    _assert_same_model(loaded=loaded, original=original, X_new=X_new)


def test_compressed_round_trip_is_smaller_and_bit_identical(saved_gdr, digits, tmp_path):
    original, _, plain = saved_gdr
    loaded, path = _round_trip(original, tmp_path, compress=True)
    _assert_same_model(loaded=loaded, original=original, X_new=digits[1])
    assert path.stat().st_size < plain.stat().st_size


def test_sparse_float32_training_input_round_trips(digits, tmp_path):
    X_train, X_new = (sp.csr_matrix(X.astype(np.float32)) for X in digits)
    original = gidr.GDR(random_state=0, n_epochs=30).fit(X_train)
    loaded, path = _round_trip(original, tmp_path)
    assert isinstance(loaded._X_fit, sp.csr_matrix) and loaded._X_fit.dtype == np.float32
    assert (loaded._X_fit != original._X_fit).nnz == 0
    _assert_same_model(loaded=loaded, original=original, X_new=X_new)
    assert {"arrays/training_data.X.data.npy", "arrays/training_data.X.indptr.npy"} <= set(_manifest(path)["arrays"])


def test_auto_neighbors_resolved_to_nndescent_round_trips(tmp_path):
    X, _ = datasets.load("swiss-roll", n_samples=4400, random_state=0)  # above AUTO_EXACT_MAX_SAMPLES: nndescent
    original = gidr.GDR(random_state=0, n_epochs=10).fit(X[:4200])
    loaded, path = _round_trip(original, tmp_path)
    assert loaded.result_.stages["neighbors"].name == "nndescent"
    _assert_same_model(loaded=loaded, original=original, X_new=X[4200:])
    training = _manifest(path)["fitted"]["training_data"]
    assert training["stored"] and "neighbors 'nndescent'" in training["reason"]


def test_exact_neighbors_fit_says_why_the_training_data_is_stored(saved_gdr):
    training = _manifest(saved_gdr[2])["fitted"]["training_data"]
    assert training["stored"] is True
    assert training["reason"].startswith("neighbors 'exact'") and "searching the training rows" in training["reason"]


def test_precomputed_fit_stores_no_training_data_and_refuses_transform(digits, tmp_path):
    X_train, X_new = digits
    distances = np.sqrt(((X_train[:, None, :] - X_train[None, :, :]) ** 2).sum(-1))
    original = gidr.UMAP(metric="precomputed", random_state=0, n_epochs=30).fit(distances)
    loaded, path = _round_trip(original, tmp_path)
    manifest = _manifest(path)
    assert manifest["fitted"]["training_data"]["stored"] is False
    assert not any("training_data" in member for member in manifest["arrays"])
    np.testing.assert_array_equal(loaded.embedding_, original.embedding_)
    with pytest.raises(GidrValueError, match="transform needs the training data") as expected:
        original.transform(X_new)
    with pytest.raises(GidrValueError, match="transform needs the training data") as actual:
        loaded.transform(X_new)
    assert str(actual.value) == str(expected.value)


def test_init_array_and_generator_parameters_round_trip(digits, tmp_path):
    X_train, X_new = digits
    init = np.random.default_rng(1).normal(size=(N_TRAIN, 2))
    original = gidr.UMAP(init=init, random_state=np.random.default_rng(5), n_epochs=30).fit(X_train)
    loaded, path = _round_trip(original, tmp_path)
    np.testing.assert_array_equal(loaded.init, init)
    assert loaded.random_state.bit_generator.state == original.random_state.bit_generator.state
    np.testing.assert_array_equal(loaded.transform(X_new), original.transform(X_new))
    # the same init array sits in the parameters and in two configurations: stored once
    assert sum(entry["shape"] == [N_TRAIN, 2] for entry in _manifest(path)["arrays"].values()) == 2  # + embedding


def test_a_model_saves_to_the_same_bytes_twice(saved_gdr, tmp_path):
    estimator, _, path = saved_gdr
    estimator.save(tmp_path / "again.gidr")
    assert (tmp_path / "again.gidr").read_bytes() == path.read_bytes()


def test_a_saved_file_has_the_umask_permissions(saved_gdr):
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(saved_gdr[2].stat().st_mode) == 0o666 & ~umask


def test_manifest_fields(saved_gdr):
    manifest = _manifest(saved_gdr[2])
    assert manifest["format"] == persist.FORMAT and manifest["format_version"] == persist.FORMAT_VERSION
    assert manifest["gidr_version"] == gidr.__version__
    assert manifest["estimator"]["class"] == "GDR" and manifest["estimator"]["params"]["n_epochs"] == 30
    with zipfile.ZipFile(saved_gdr[2]) as archive:
        names = archive.namelist()
        assert names[0] == persist.SIGNATURE_MEMBER and names[-1] == "manifest.json"
        assert set(names[1:-1]) == set(manifest["arrays"])
        for member, entry in manifest["arrays"].items():
            with archive.open(member) as stream:
                array = np.lib.format.read_array(stream, allow_pickle=False)
            assert array.dtype.kind in "biuf" and array.dtype.str == entry["dtype"]
            assert list(array.shape) == entry["shape"]


# ---------------------------------------------------------------------- no pickle
def test_loading_never_unpickles(saved_gdr, digits, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("pickle was used while loading a model")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    estimator, expected, path = saved_gdr
    np.testing.assert_array_equal(gidr.load(path).transform(digits[1]), expected)


def test_an_object_array_is_refused_when_loading(saved_gdr, tmp_path):
    path = saved_gdr[2]
    manifest = _manifest(path)
    member = "arrays/result.embedding.npy"
    manifest["arrays"][member]["dtype"] = "|O"
    out = tmp_path / "object.gidr"
    _rewrite(path, out, {"manifest.json": json.dumps(manifest).encode()})
    with pytest.raises(ModelFileError, match=r"The dtype of member 'arrays/result.embedding.npy' must be a boolean"):
        gidr.load(out)


# ---------------------------------------------------------------------- saving refuses what is not data
def test_a_function_parameter_cannot_be_saved_and_nothing_is_left(saved_gdr, tmp_path):
    estimator = pickle.loads(pickle.dumps(saved_gdr[0]))
    path = tmp_path / "model.gidr"
    estimator.save(path)
    before = path.read_bytes()
    estimator.set_params(metric=lambda a, b: 0.0)
    with pytest.raises(GidrValueError, match=r"The 'metric' parameter of GDR must be data that can be saved .* "
                                             r"Got a builtins.function\. A model file holds data only"):
        estimator.save(path)
    assert path.read_bytes() == before  # the old model is untouched
    assert os.listdir(tmp_path) == ["model.gidr"]  # and no temporary file remains


def test_saving_an_unfitted_estimator_is_refused(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted yet"):
        gidr.UMAP().save(tmp_path / "model.gidr")
    assert not os.listdir(tmp_path)


# ---------------------------------------------------------------------- bad files
def test_newer_format_version_says_upgrade(saved_gdr, tmp_path):
    path = saved_gdr[2]
    manifest = _manifest(path)
    manifest["format_version"] = persist.FORMAT_VERSION + 1
    out = tmp_path / "newer.gidr"
    _rewrite(path, out, {"manifest.json": json.dumps(manifest).encode()})
    with pytest.raises(ModelFileError, match=rf"has format version {persist.FORMAT_VERSION + 1} .* reads format "
                                             rf"versions up to {persist.FORMAT_VERSION}\. Upgrade gidr"):
        gidr.load(out)


@pytest.mark.parametrize("fraction", [0.0, 0.002, 0.5, 0.999])
def test_truncated_file(saved_gdr, tmp_path, fraction):
    data = saved_gdr[2].read_bytes()
    length = int(len(data) * fraction)
    out = tmp_path / "cut.gidr"
    out.write_bytes(data[:length])
    with pytest.raises(ModelFileError, match=rf"is truncated: it ends after {length} bytes"):
        gidr.load(out)


def test_truncated_by_one_byte(saved_gdr, tmp_path):
    out = tmp_path / "cut.gidr"
    out.write_bytes(saved_gdr[2].read_bytes()[:-1])
    with pytest.raises(ModelFileError, match="is truncated"):
        gidr.load(out)


@pytest.mark.parametrize("member", ["arrays/result.embedding.npy", "arrays/training_data.X.npy"])
def test_flipped_byte_in_an_array_member(saved_gdr, tmp_path, member):
    offset, size = _data_offset(saved_gdr[2], member)
    out = tmp_path / "flipped.gidr"
    _flip_byte(saved_gdr[2], out, offset + size // 2)
    with pytest.raises(ModelFileError, match=rf"is corrupted: member '{member}' fails its check"):
        gidr.load(out)


def test_flipped_byte_in_the_manifest(saved_gdr, tmp_path):
    offset, size = _data_offset(saved_gdr[2], "manifest.json")
    out = tmp_path / "flipped.gidr"
    _flip_byte(saved_gdr[2], out, offset + size // 2)
    with pytest.raises(ModelFileError, match="is corrupted: member 'manifest.json' fails its check"):
        gidr.load(out)


def test_array_replaced_with_a_valid_crc_fails_its_sha256(saved_gdr, tmp_path):
    estimator, _, path = saved_gdr
    member = "arrays/result.embedding.npy"
    with zipfile.ZipFile(path) as archive, archive.open(member) as stream:
        embedding = np.lib.format.read_array(stream, allow_pickle=False)
    embedding[0, 0] += 1.0
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, embedding, allow_pickle=False)
    out = tmp_path / "edited.gidr"
    _rewrite(path, out, {member: buffer.getvalue()})
    with pytest.raises(ModelFileError, match=rf"member '{member}' fails its check \(its SHA-256 differs"):
        gidr.load(out)


def test_an_array_whose_header_disagrees_with_the_manifest(saved_gdr, tmp_path):
    path = saved_gdr[2]
    manifest = _manifest(path)
    manifest["arrays"]["arrays/result.embedding.npy"]["shape"] = [N_TRAIN, 3]
    out = tmp_path / "shape.gidr"
    _rewrite(path, out, {"manifest.json": json.dumps(manifest).encode()})
    with pytest.raises(ModelFileError, match=r"member 'arrays/result.embedding.npy' fails its check \(it holds "
                                             rf"dtype float64 and shape \({N_TRAIN}, 2\), the manifest says"):
        gidr.load(out)


def test_a_forged_huge_shape_allocates_nothing(saved_gdr, tmp_path):
    path, member, shape = saved_gdr[2], "arrays/result.embedding.npy", (10**12, 2)
    forged = io.BytesIO()
    np.lib.format.write_array_header_1_0(forged, {"descr": "<f8", "fortran_order": False, "shape": shape})
    manifest = _manifest(path)
    manifest["arrays"][member]["shape"] = list(shape)
    out = tmp_path / "forged.gidr"
    _rewrite(path, out, {member: forged.getvalue() + b"\0" * 64, "manifest.json": json.dumps(manifest).encode()})
    with pytest.raises(ModelFileError, match=rf"member '{member}' fails its check \(its shape \(1000000000000, 2\) "
                                             r"needs more bytes than the member holds"):
        gidr.load(out)


def test_an_unlisted_member_is_refused(saved_gdr, tmp_path):
    out = tmp_path / "extra.gidr"
    _rewrite(saved_gdr[2], out, {})
    with zipfile.ZipFile(out, "a") as archive:
        archive.writestr("arrays/extra.npy", b"")
    with pytest.raises(ModelFileError, match="member 'arrays/extra.npy' fails its check \\(the manifest does not"):
        gidr.load(out)


def test_not_a_zip_file(tmp_path):
    out = tmp_path / "notes.gidr"
    out.write_text("a text file, long enough to hold a zip header and a member name\n")
    with pytest.raises(ModelFileError, match="must be a gidr model file .* Got a file that does not start with a "
                                             "zip header"):
        gidr.load(out)


def test_a_zip_file_that_is_not_a_model(tmp_path):
    out = tmp_path / "other.zip"
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ModelFileError, match="Got a zip file whose first member is not 'gidr-model'"):
        gidr.load(out)


def test_a_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="cannot be read"):
        gidr.load(tmp_path / "absent.gidr")


class PluginKL(KL):
    """The reference KL under a plugin's name and backend."""

    name = "persist_test_kl"
    backend = "persist_test"


@pytest.fixture
def plugin_registry(monkeypatch):
    """The process-wide registries with :class:`PluginKL` added (the previous ones come back)."""
    pm = plugins.make_plugin_manager(load_entrypoints=False, extra_plugins=[StagePlugin(PluginKL)])
    registry, presets = plugins.build_registries(pm)
    for key, value in (("pm", pm), ("registry", registry), ("presets", presets)):
        monkeypatch.setitem(plugins._state, key, value)
    return registry


def test_a_stage_from_a_missing_plugin_is_named(plugin_registry, digits, tmp_path):
    X_train, X_new = digits
    original = gidr.GDR(loss="persist_test_kl", random_state=0, n_epochs=20).fit(X_train)
    loaded, path = _round_trip(original, tmp_path)
    _assert_same_model(loaded=loaded, original=original, X_new=X_new)
    without_plugin, _ = plugins.build_registries(plugins.make_plugin_manager(load_entrypoints=False))
    with pytest.raises(ModelFileError, match="needs the loss stage 'persist_test_kl', which is not registered in "
                                             "this installation .* Install the plugin that provides loss "
                                             "'persist_test_kl'"):
        gidr.load(path, registry=without_plugin)


def test_a_missing_backend_is_named(saved_gdr):
    import pluggy

    from gidr import hookspecs
    from gidr_reference import plugin as reference_plugin

    pm = pluggy.PluginManager("gidr")  # an installation without numba: the core and the reference only
    pm.add_hookspecs(hookspecs)
    pm.register(plugins._CorePresets())
    pm.register(reference_plugin)
    reference_only, _ = plugins.build_registries(pm)
    with pytest.raises(ModelFileError, match="needs neighbors 'exact' of backend 'numba', which is not installed "
                                             "here .* another backend would not give the same results"):
        gidr.load(saved_gdr[2], registry=reference_only)
