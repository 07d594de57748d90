"""Safe save and load of fitted estimators: arrays and JSON in a zip file, never pickle.

A model file is a zip archive (documented in ``docs/saving.rst``) of

``gidr-model``
    the first member, stored uncompressed: the bytes :data:`SIGNATURE`, so that a gidr
    model is recognised from its first bytes (a truncated one too);
``arrays/<name>.npy``
    one ``.npy`` file per array (:func:`numpy.lib.format.write_array`, ``allow_pickle=False``;
    numeric dtypes only);
``manifest.json``
    everything else as JSON: the format name and version, the gidr version that wrote it,
    the estimator's class and parameters, the fitted pipeline's configuration, the
    :class:`~gidr.types.Result` (embedding, kNN graph, P, resolved configuration), the
    training matrix when the fitted neighbours index needs it (and why), and for every
    array member its dtype, shape and SHA-256.

Values JSON has no type for are written as tagged objects ``{"__gidr__": tag, ...}``
(:func:`encode`): numpy arrays (a reference to their member), CSR matrices, tuples, numpy
scalars, non-finite floats and numpy random generators (their state). Loading reads JSON
and plain numeric arrays only, so that a model file cannot run code; stage classes are
looked up in the registry by (kind, name, backend), as :class:`~gidr.Pipeline` does, and the
estimator class by name among :class:`~gidr.UMAP`, :class:`~gidr.TSNE` and :class:`~gidr.GDR`.

Checksums (zip's CRC-32 of every member, SHA-256 of every array in the manifest) detect
corruption; they are not signatures: anyone can write a valid model file, but it can at
worst hold wrong numbers.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import secrets
import zipfile
import zlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from gidr import umap_names
from gidr.validation import Described, GidrValueError, format_error

__all__ = ["save", "load", "ModelFileError", "FORMAT", "FORMAT_VERSION", "SIGNATURE", "encode", "decode"]

#: The ``format`` field of the manifest.
FORMAT = "gidr-model"
#: The format version this gidr writes; it reads this one and every older one.
FORMAT_VERSION = 1
#: Name and content of the first member.
SIGNATURE_MEMBER = "gidr-model"
SIGNATURE = b"gidr model file; see manifest.json\n"
MANIFEST = "manifest.json"
#: A manifest larger than this is not one gidr wrote (it holds parameters and histories only).
MAX_MANIFEST_BYTES = 64 * 2**20
_TAG = "__gidr__"
#: Array dtype kinds that are stored: booleans, integers, floats.
_NUMERIC_KINDS = "biuf"
_BIT_GENERATORS = {name: getattr(np.random, name) for name in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")}
_SPARSE_CLASSES = {"csr_matrix": sp.csr_matrix, "csr_array": sp.csr_array}
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed: the same model gives the same bytes
#: Deflate level of ``compress=True``: on Fashion-MNIST's float32 training matrix (220 MB), level 1
#: takes 1.3 s for 49.5 MB where zlib's default level 6 takes 7.6 s for 44.6 MB.
COMPRESS_LEVEL = 1
#: Local file header bytes before the first member's name (zip's fixed 30-byte header).
_LOCAL_HEADER = 30


class ModelFileError(GidrValueError):
    """A file that is not a readable gidr model: not one, from a newer format, truncated,
    corrupted, or needing stages this installation does not have."""


# ---------------------------------------------------------------------- public API
def save(estimator, path: str | os.PathLike, *, compress: bool = False) -> None:
    """Save a fitted :class:`~gidr.UMAP`, :class:`~gidr.TSNE` or :class:`~gidr.GDR` to ``path``.

    The file is written to a temporary file in the same folder and renamed over ``path``
    (:func:`os.replace`), so that an interrupted save never leaves half a model under the
    final name.

    Parameters
    ----------
    estimator : UMAP, TSNE or GDR
        Fitted.
    path : str or path-like
    compress : bool
        Deflate the array members (smaller, slower to write and read).

    Raises
    ------
    GidrValueError
        When a parameter is not data (a function, an arbitrary object): its name is given.
    sklearn.exceptions.NotFittedError
        When ``estimator`` has not been fitted.
    """
    from sklearn.utils.validation import check_is_fitted

    owner = type(estimator).__name__
    if _estimator_classes().get(owner) is not type(estimator):
        raise GidrValueError(format_error("The estimator to save", "a gidr.UMAP, gidr.TSNE or gidr.GDR",
                                          Described(f"a {type(estimator).__module__}.{owner}")))
    check_is_fitted(estimator, "embedding_")
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # os.open, not mkstemp: the file gets the umask's permissions (mkstemp's are 0600)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED,
                                 allowZip64=True, compresslevel=COMPRESS_LEVEL) as archive:
                _write_member(archive, SIGNATURE_MEMBER, SIGNATURE, zipfile.ZIP_STORED)
                writer = _ArrayWriter(archive)
                manifest = _manifest(estimator, writer)
                text = json.dumps(manifest, indent=1, sort_keys=True, allow_nan=False).encode("utf-8")
                _write_member(archive, MANIFEST, text, zipfile.ZIP_DEFLATED)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def load(path: str | os.PathLike, *, registry=None):
    """Load a model written by :func:`save` (``est.save(path)``).

    Parameters
    ----------
    path : str or path-like
    registry : Registry, optional
        The stage registry to rebuild the pipeline with (default: the installed plugins').

    Returns
    -------
    UMAP, TSNE or GDR
        Fitted, of the class that was saved, with the same parameters; its ``transform``
        gives the original's results bit for bit (same installation).

    Raises
    ------
    ModelFileError
        Not a gidr model file; a newer, incompatible format version; a truncated or corrupted
        file (the damaged member is named); stages that are not registered here (named).
    """
    from gidr.plugins import get_registry

    path = Path(path)
    registry = registry if registry is not None else get_registry()
    with _open_archive(path) as archive:
        manifest = _read_manifest(archive, path)
        arrays = _read_arrays(archive, manifest["arrays"], path)
    return _rebuild(manifest, arrays, registry, path)


# ---------------------------------------------------------------------- JSON with tagged values
def encode(value: Any, key: str, add_array, what: str | None = None) -> Any:
    """``value`` as JSON data; arrays go through ``add_array(array, key) -> member``.

    Parameters
    ----------
    value : object
        None, bool, int, float, str, list, tuple, dict with str keys, numpy scalar, numeric
        ndarray, CSR matrix, numpy ``Generator`` or ``RandomState``, nested freely.
    key : str
        Where ``value`` sits in the manifest ("params.init"): names its array members.
    add_array : callable
    what : str, optional
        What ``value`` is, for the error message ("The 'init' parameter of UMAP"); default ``key``.

    Raises
    ------
    GidrValueError
        For anything else (a function, an object): it cannot be stored as data.
    """
    what = key if what is None else what

    def inner(item, suffix):
        return encode(item, key + suffix, add_array, f"{what} (at {suffix.lstrip('.')})")

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.bool_, np.integer, np.floating)):
        _check_dtype(value.dtype, what)
        return {_TAG: "numpy", "dtype": value.dtype.name, "value": encode(value.item(), key, add_array, what)}
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else {_TAG: "float", "value": repr(float(value))}
    if isinstance(value, np.ndarray):
        _check_dtype(value.dtype, what)
        return {_TAG: "array", "member": add_array(value, key)}
    if sp.issparse(value) and value.format == "csr" and type(value).__name__ in _SPARSE_CLASSES:
        return {_TAG: "csr", "class": type(value).__name__, "shape": list(value.shape),
                **{part: inner(getattr(value, part), f".{part}") for part in ("data", "indices", "indptr")}}
    if isinstance(value, list):
        return [inner(item, f"[{i}]") for i, item in enumerate(value)]
    if isinstance(value, tuple):
        return {_TAG: "tuple", "items": [inner(item, f"[{i}]") for i, item in enumerate(value)]}
    if isinstance(value, Mapping):
        bad = [name for name in value if not isinstance(name, str) or name == _TAG]
        if bad:
            raise GidrValueError(format_error(f"A key of {what}", f"a string other than {_TAG!r}", bad[0]))
        return {name: inner(item, f".{name}") for name, item in value.items()}
    if isinstance(value, np.random.Generator):
        return {_TAG: "generator", "state": encode(value.bit_generator.state, key, add_array, what)}
    if isinstance(value, np.random.RandomState):
        return {_TAG: "random_state", "state": encode(value.get_state(legacy=False), key, add_array, what)}
    raise GidrValueError(format_error(
        what, "data that can be saved (None, a bool, number or string, a list, tuple or dict of them, a numeric "
        "array, or a numpy random generator)", Described(f"a {type(value).__module__}.{type(value).__qualname__}"),
        "A model file holds data only, so that loading it runs no code: pass a value of those kinds (a metric "
        "name rather than a function, say) and fit again."))


def decode(value: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    """Inverse of :func:`encode`, with ``arrays`` the array members by name.

    Raises
    ------
    ModelFileError
        For an unknown tag or a reference to a missing member.
    """
    if isinstance(value, list):
        return [decode(item, arrays) for item in value]
    if not isinstance(value, dict):
        return value
    if _TAG not in value:
        return {key: decode(item, arrays) for key, item in value.items()}
    tag = value[_TAG]
    try:
        return _DECODERS[tag](value, arrays)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise ModelFileError(f"The manifest holds an unreadable value tagged {tag!r} ({type(error).__name__}: "
                             f"{error}). The file is corrupted or not written by gidr; save the model again.") from None


def _decode_numpy(value, arrays):
    dtype = np.dtype(value["dtype"])
    _check_dtype(dtype, "A numpy scalar in the manifest", ModelFileError)
    return dtype.type(decode(value["value"], arrays))


def _decode_generator(value, arrays):
    state = decode(value["state"], arrays)
    bit_generator = _BIT_GENERATORS[state["bit_generator"]]()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def _decode_random_state(value, arrays):
    state = decode(value["state"], arrays)
    if state["bit_generator"] != "MT19937":
        raise ValueError(f"a RandomState uses MT19937, not {state['bit_generator']!r}")
    random_state = np.random.RandomState()
    random_state.set_state(state)
    return random_state


def _decode_csr(value, arrays):
    parts = [decode(value[part], arrays) for part in ("data", "indices", "indptr")]
    return _SPARSE_CLASSES[value["class"]](tuple(parts), shape=tuple(value["shape"]))


_DECODERS = {
    "array": lambda value, arrays: arrays[value["member"]],
    "tuple": lambda value, arrays: tuple(decode(item, arrays) for item in value["items"]),
    "float": lambda value, arrays: float({"inf": math.inf, "-inf": -math.inf, "nan": math.nan}[value["value"]]),
    "numpy": _decode_numpy,
    "generator": _decode_generator,
    "random_state": _decode_random_state,
    "csr": _decode_csr,
}


def _check_dtype(dtype: np.dtype, where: str, error=GidrValueError) -> None:
    if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise error(format_error(f"The dtype of {where}", "a boolean, integer or floating-point dtype",
                                 Described(f"dtype {dtype}"), "Only plain numeric arrays are stored."))


# ---------------------------------------------------------------------- writing
class _HashingWriter:
    """A write-only stream that hashes what passes through it."""

    def __init__(self, stream) -> None:
        self.stream, self.sha256 = stream, hashlib.sha256()

    def write(self, data) -> int:
        self.sha256.update(data)
        return self.stream.write(data)


class _ArrayWriter:
    """Writes each distinct array once as ``arrays/<name>.npy`` and keeps its manifest entry."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.entries: dict[str, dict[str, Any]] = {}
        self._written: list[tuple[np.ndarray, str]] = []

    def __call__(self, array: np.ndarray, key: str) -> str:
        for known, member in self._written:  # a copy of the init array sits in each configuration
            if known.dtype == array.dtype and known.shape == array.shape and (
                    known is array or known.tobytes() == array.tobytes()):
                return member
        member = self._name(key)
        # opened by name: the archive's compression and level apply, and the date is zip's 1980-01-01
        with self.archive.open(member, "w", force_zip64=array.nbytes > 2**30) as stream:
            hashing = _HashingWriter(stream)
            np.lib.format.write_array(hashing, array, allow_pickle=False)
        self.entries[member] = {"dtype": array.dtype.str, "shape": list(array.shape),
                                "sha256": hashing.sha256.hexdigest()}
        self._written.append((array, member))
        return member

    def _name(self, key: str) -> str:
        stem = "arrays/" + (re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("_.") or "array")
        name, counter = stem + ".npy", 1
        while name in self.entries:
            counter += 1
            name = f"{stem}.{counter}.npy"
        return name


def _write_member(archive: zipfile.ZipFile, name: str, data: bytes, compression: int) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = compression
    archive.writestr(info, data)


def _manifest(estimator, add_array: _ArrayWriter) -> dict[str, Any]:
    """The manifest of a fitted estimator; its arrays are written through ``add_array``."""
    import gidr

    owner = type(estimator).__name__
    result, pipeline = estimator.result_, estimator.pipeline_
    params = {name: encode(value, f"params.{name}", add_array, f"The '{name}' parameter of {owner}")
              for name, value in estimator.get_params(deep=False).items()}
    content = {
        "pipeline_config": encode(pipeline.config, "pipeline_config", add_array,
                                  f"The fitted pipeline configuration of {owner}"),
        "result": encode({"embedding": result.embedding, "graph_indices": result.graph.indices,
                          "graph_distances": result.graph.distances, "P": result.affinities.P,
                          "normalized": result.affinities.normalized, "timings": dict(result.timings),
                          "loss_history": list(result.loss_history), "config": result.config},
                         "result", add_array),
        "n_features_in": int(estimator.n_features_in_),
        "training_data": _training_data(estimator, result, add_array),
        # unique=True: each row's distinct row (the embedding holds the distinct rows only)
        "unique_inverse": encode(getattr(estimator, "_unique_inverse", None), "unique_inverse", add_array),
        # fit(X, y): update is refused after it (absent from older files: False)
        "supervised_fit": bool(getattr(estimator, "_supervised_fit", False)),
    }
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "gidr_version": gidr.__version__,
            "library_versions": _library_versions(),
            "estimator": {"class": owner, "params": params}, "fitted": content, "arrays": add_array.entries}


def _training_data(estimator, result, add_array) -> dict[str, Any]:
    """The training matrix, when the fitted neighbours stage's index searches it, and why."""
    neighbors = result.stages["neighbors"]
    described = f"{neighbors.describe()} (backend '{neighbors.backend}')"
    if estimator._X_fit is None:
        return {"stored": False, "X": None,
                "reason": f"fitted on precomputed distances ({described}): transform reads the new points' distances to the training points, as the original does"}
    if hasattr(estimator, "precomputed_knn") and umap_names.given_knn(estimator) is not None:
        return {"stored": True, "X": encode(estimator._training_rows(), "training_data.X", add_array),
                "reason": "fitted on precomputed_knn: transform builds an index over the training rows"}
    if not neighbors.answers_queries:
        return {"stored": False, "X": None,
                "reason": f"{described} does not answer queries for new points: transform is refused"}
    pca = "" if result.config["resolved"].get("pca") is None else " (their PCA scores: the fit had pca)"
    return {"stored": True, "X": encode(estimator._training_rows(), "training_data.X", add_array),
            "reason": f"{described} answers transform's queries by searching the training rows{pca}"}


def _library_versions() -> dict[str, str]:
    import platform

    import scipy

    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__}


# ---------------------------------------------------------------------- reading
class _HashingReader:
    """A read-only stream that hashes what is read from it."""

    def __init__(self, stream) -> None:
        self.stream, self.sha256 = stream, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.sha256.update(data)
        return data

    def readinto(self, buffer: memoryview) -> int:
        count = self.stream.readinto(buffer)
        self.sha256.update(buffer[:count])
        return count


def _open_archive(path: Path) -> zipfile.ZipFile:
    """The zip archive at ``path``, after telling a gidr model (whole or truncated) from other files."""
    name = SIGNATURE_MEMBER.encode("ascii")
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(_LOCAL_HEADER + len(name))
            handle.seek(max(size - 22, 0))
            tail = handle.read(22)
    except OSError as error:
        raise ModelFileError(f"The model file '{path}' cannot be read: {error}.") from None
    expected = b"PK\x03\x04"
    ours = head[:4] == expected[:len(head[:4])] and head[_LOCAL_HEADER:] == name[:max(len(head) - _LOCAL_HEADER, 0)]
    if not ours:
        what = "a zip file whose first member is not 'gidr-model'" if head[:4] == expected else \
            "a file that does not start with a zip header"
        raise ModelFileError(format_error(f"The model file '{path}'", "a gidr model file (written by est.save)",
                                          Described(what), "Pass a file written by est.save(path)."))
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        if tail[:4] == b"PK\x05\x06":
            raise _corrupted(path, "its zip directory", error) from None
        raise ModelFileError(f"The model file '{path}' is truncated: it ends after {size} bytes, before its zip "
                             f"directory ({error}). It was cut short (an interrupted copy or download); copy it "
                             f"again or save the model again.") from None


def _corrupted(path: Path, member: str, error: Any) -> ModelFileError:
    return ModelFileError(f"The model file '{path}' is corrupted: {member} fails its check ({error}). It was "
                          f"altered after it was written; copy it again or save the model again.")


def _read_member(archive: zipfile.ZipFile, member: str, path: Path, limit: int | None = None) -> bytes:
    try:
        info = archive.getinfo(member)
        if limit is not None and info.file_size > limit:
            raise _corrupted(path, f"member '{member}'", f"{info.file_size} bytes, more than the {limit} allowed")
        return archive.read(info)
    except KeyError:
        raise _corrupted(path, f"member '{member}'", "it is missing") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
        raise _corrupted(path, f"member '{member}'", error) from None


def _read_manifest(archive: zipfile.ZipFile, path: Path) -> dict[str, Any]:
    """The checked manifest: gidr's format, a version this gidr reads, every member listed."""
    if _read_member(archive, SIGNATURE_MEMBER, path, len(SIGNATURE)) != SIGNATURE:
        raise _corrupted(path, f"member '{SIGNATURE_MEMBER}'", "its content is not gidr's signature")
    text = _read_member(archive, MANIFEST, path, MAX_MANIFEST_BYTES)
    try:
        manifest = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise _corrupted(path, f"member '{MANIFEST}'", f"not valid JSON: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise _corrupted(path, f"member '{MANIFEST}'", f"its 'format' is {got!r}, not {FORMAT!r}")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _corrupted(path, f"member '{MANIFEST}'", f"its 'format_version' is {version!r}, not a positive int")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"The model file '{path}' has format version {version} (written by gidr "
            f"{manifest.get('gidr_version', '?')}); this gidr ({_gidr_version()}) reads format versions up to "
            f"{FORMAT_VERSION}. Upgrade gidr (pip install -U gidr) to load it.")
    entries = manifest.get("arrays")
    if not isinstance(entries, dict) or not isinstance(manifest.get("estimator"), dict) or \
            not isinstance(manifest.get("fitted"), dict):
        raise _corrupted(path, f"member '{MANIFEST}'", "it lacks its 'arrays', 'estimator' or 'fitted' table")
    listed = {SIGNATURE_MEMBER, MANIFEST, *entries}
    unlisted = sorted(set(archive.namelist()) - listed)
    if unlisted:
        raise _corrupted(path, f"member '{unlisted[0]}'", "the manifest does not list it")
    return manifest


def _read_arrays(archive: zipfile.ZipFile, entries: Mapping[str, Any], path: Path) -> dict[str, np.ndarray]:
    """Every array member, checked against its manifest entry (dtype, shape, SHA-256)."""
    arrays = {}
    for member, entry in entries.items():
        where = f"member '{member}'"
        try:
            dtype, shape, digest = np.dtype(entry["dtype"]), tuple(int(n) for n in entry["shape"]), entry["sha256"]
            info = archive.getinfo(member)
        except KeyError:
            raise _corrupted(path, where, "it is missing") from None
        except (TypeError, ValueError) as error:
            raise _corrupted(path, f"the manifest entry of {where}", error) from None
        _check_dtype(dtype, where, ModelFileError)
        try:
            with archive.open(info) as stream:
                reader = _HashingReader(stream)
                arrays[member] = _read_npy(reader, dtype, shape, _largest_content(info))
                trailing = reader.read(1)  # reads to the end, so that zip checks the CRC-32
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
            raise _corrupted(path, where, error) from None
        if trailing:
            raise _corrupted(path, where, "bytes follow the array")
        if reader.sha256.hexdigest() != digest:
            raise _corrupted(path, where, "its SHA-256 differs from the manifest's")
    return arrays


def _largest_content(info: zipfile.ZipInfo) -> int:
    """The most bytes a member can hold: its declared size, bounded by what its stored bytes
    can expand to (deflate expands at most 1032-fold), so that a forged size allocates nothing."""
    ratio = 1 if info.compress_type == zipfile.ZIP_STORED else 1032
    return min(info.file_size, ratio * info.compress_size)


def _read_npy(reader: _HashingReader, dtype: np.dtype, shape: tuple[int, ...], limit: int) -> np.ndarray:
    """The array of an ``.npy`` stream whose header must say ``dtype`` and ``shape``; its data is
    read into an array allocated only once the header matched (``allow_pickle`` never arises)."""
    version = np.lib.format.read_magic(reader)
    if version == (1, 0):
        header = np.lib.format.read_array_header_1_0(reader)
    elif version == (2, 0):
        header = np.lib.format.read_array_header_2_0(reader)
    else:
        raise ValueError(f"its .npy version {version} is not one gidr writes")
    found_shape, fortran_order, found_dtype = header
    if found_dtype != dtype or tuple(found_shape) != shape:
        raise ValueError(f"it holds dtype {found_dtype} and shape {tuple(found_shape)}, the manifest says {dtype} "
                         f"and {shape}")
    if math.prod(shape) * dtype.itemsize > limit:
        raise ValueError(f"its shape {shape} needs more bytes than the member holds")
    array = np.empty(shape, dtype=dtype, order="F" if fortran_order else "C")
    buffer = memoryview(np.ravel(array, order="K").view(np.uint8))
    filled = 0
    while filled < len(buffer):
        count = reader.readinto(buffer[filled:])
        if not count:
            raise EOFError(f"it ends after {filled} of its {len(buffer)} data bytes")
        filled += count
    return array


def _gidr_version() -> str:
    import gidr

    return gidr.__version__


def _estimator_classes() -> dict[str, type]:
    from gidr.estimators import GDR, TSNE, UMAP

    return {"UMAP": UMAP, "TSNE": TSNE, "GDR": GDR}


def _rebuild(manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray], registry, path: Path):
    """The fitted estimator a checked manifest describes."""
    from gidr.pipeline import Pipeline
    from gidr.stages import KINDS
    from gidr.types import Affinities, KNNGraph, Result

    estimator_entry, fitted = manifest["estimator"], manifest["fitted"]
    classes = _estimator_classes()
    cls = classes.get(estimator_entry.get("class"))
    if cls is None:
        raise _corrupted(path, f"member '{MANIFEST}'", f"its estimator class {estimator_entry.get('class')!r} is "
                                                       f"not one of {', '.join(classes)}")
    try:
        params = decode(estimator_entry["params"], arrays)
        saved = decode(fitted["result"], arrays)
        config = decode(fitted["pipeline_config"], arrays)
        X_fit = decode(fitted["training_data"]["X"], arrays)
        n_features_in = int(fitted["n_features_in"])
        inverse = decode(fitted.get("unique_inverse"), arrays)
        resolved = saved["config"]["resolved"]
    except (KeyError, TypeError, ValueError) as error:
        raise _corrupted(path, f"member '{MANIFEST}'", f"{type(error).__name__}: {error}") from None
    _check_registered(config, resolved, registry, path)
    for kind in KINDS[1:]:  # each stage from the backend that ran it, whatever "auto" would pick here
        config[kind]["backend"] = resolved["backends"][kind]
    estimator = cls(**params)
    with estimator._own_names():
        pipeline = Pipeline.from_config(config, registry=registry)
    fitted_neighbors = resolved["neighbors"]
    neighbors_class = registry.get("neighbors", fitted_neighbors["name"], fitted_neighbors["backend"])
    neighbors = neighbors_class.bind(registry, fitted_neighbors["backend"])(
        **{key: value for key, value in fitted_neighbors.items() if key not in ("name", "backend")})
    result = Result(embedding=saved["embedding"], graph=KNNGraph(saved["graph_indices"], saved["graph_distances"]),
                    affinities=Affinities(saved["P"], bool(saved["normalized"])), timings=saved["timings"],
                    loss_history=saved["loss_history"], config=saved["config"],
                    stages={**pipeline.stages, "neighbors": neighbors})
    estimator.pipeline_ = pipeline
    estimator._X_fit = X_fit
    estimator._supervised_fit = bool(fitted.get("supervised_fit", False))
    estimator.n_features_in_ = n_features_in
    estimator._set_fitted(result, inverse)
    return estimator


def _check_registered(config: Mapping[str, Any], resolved: Mapping[str, Any], registry, path: Path) -> None:
    """Every stage the fit ran, by (kind, name, backend), is registered in ``registry``."""
    from gidr.stages import KINDS

    wanted = [("neighbors", config["neighbors"]["name"], None),
              ("neighbors", resolved["neighbors"]["name"], resolved["neighbors"]["backend"])]
    wanted += [(kind, config[kind]["name"], resolved["backends"][kind]) for kind in KINDS[1:]]
    for kind, name, backend in wanted:
        if name not in registry.names(kind):
            raise ModelFileError(
                f"The model file '{path}' needs the {kind} stage '{name}', which is not registered in this "
                f"installation (registered: {', '.join(repr(n) for n in registry.names(kind))}). Install the "
                f"plugin that provides {kind} '{name}', then load it again.")
        if backend is not None and backend not in registry.backends(kind, name):
            raise ModelFileError(
                f"The model file '{path}' needs {kind} '{name}' of backend '{backend}', which is not installed "
                f"here (backends of {kind} '{name}': {', '.join(repr(b) for b in registry.backends(kind, name))}). "
                f"Install that backend (for 'numba': pip install numba), then load it again; another backend "
                f"would not give the same results.")
