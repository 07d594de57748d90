"""Tools for :class:`anndata.AnnData`, in the manner of scanpy's ``sc.tl`` (needs ``pip install gidr[anndata]``).

:func:`embed` runs a preset on an AnnData object and writes the map into it, as
``scanpy.tl.umap`` does::

    gidr.tl.embed(adata)                      # adata.obsm["X_gdr_umap"], adata.uns["gdr_umap"]["params"]
    gidr.tl.embed(adata, "umap", key_added="umap_gidr", random_state=1)

What it reads:

- **The neighbours graph of** ``scanpy.pp.neighbors``, when ``adata.uns["neighbors"]`` (or
  ``adata.uns[neighbors_key]``) is there: its kNN distances (``adata.obsp["distances"]``) are
  used as precomputed neighbours, as scanpy's umap uses them, and the representation is then
  not read at all. The graph's number of neighbours wins over the preset's (scanpy's
  ``n_neighbors`` counts the cell itself, which is not stored: ``n_neighbors=15`` gives 14).
  The graph is not used, with a warning saying why, when ``use_rep`` names another
  representation than the graph's, when ``metric`` is passed and differs from the graph's, or
  when the similarity needs more neighbours than the graph has (t-SNE's ``3 * perplexity``, or
  an ``n_neighbors`` you pass above the graph's); pass ``neighbors="auto"`` (or any neighbours
  stage) to compute a graph of gidr's own without a warning.
- **Otherwise the representation**: ``adata.obsm[use_rep]``; by default ``"X_pca"`` when present,
  else ``adata.X`` (dense or sparse); ``use_rep="X"`` forces ``X``. It is handed to the pipeline
  as it is (a float32 array stays float32, nothing is copied).

What it writes: ``adata.obsm["X_" + key]``, the embedding, and ``adata.uns[key]["params"]``,
the resolved configuration (stages, parameters, backends, seed; its ``["neighbors"]`` section
also says where the neighbours came from: ``"source"`` is ``"adata.obsp['distances']"`` or
``"computed"``), in types that ``adata.write_h5ad`` stores; ``key`` is ``key_added``
or the preset's name with ``-`` replaced by ``_``. (scanpy's ``key_added`` names the ``obsm``
entry itself; here the ``X_`` prefix is always added, so ``key_added="foo"`` writes
``obsm["X_foo"]`` and ``uns["foo"]``.)

**Backed objects** (``anndata.read_h5ad(path, backed="r")`` or ``"r+"``): ``obsm`` is in memory,
so with a representation there (or a neighbours graph) nothing reads ``X``. A backed ``X`` is
never loaded behind your back: when it would be the representation, :func:`embed` raises and
says how to get one in memory. The result is written into the object's in-memory ``obsm`` and
``uns``; anndata keeps it in the file only when it is written: ``adata.write()`` for ``"r+"``,
``adata.write_h5ad(other_path)`` for either mode (anndata 0.12 cannot do either for a backed
object that has ``.raw``; the ``gidr embed cells.h5ad -o cells.h5ad`` command can). ``copy=True`` is refused on a backed object
(anndata cannot copy one without a file name).

A reused graph replaces the data matrix, so an init that needs it (``init="pca"``, as in the
``tsne`` preset) is refused with that advice: pass ``init="spectral"`` or ``neighbors="auto"``.

As scanpy's tools, :func:`embed` is reproducible by default: ``random_state`` is 0 unless passed.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from gidr.types import KNNGraph, Result
from gidr.validation import Described, GidrValueError, check_array, format_error

__all__ = ["embed", "run", "neighbors_graph"]

_OWNER = "gidr.tl.embed"
#: scanpy's ``settings.N_PCS``: ``scanpy.pp.neighbors`` without ``use_rep`` reads ``X`` itself
#: when the object has at most this many variables, else ``obsm["X_pca"]``.
_SCANPY_N_PCS = 50


def embed(
    adata: Any,
    preset: str = "gdr-umap",
    *,
    use_rep: str | None = None,
    neighbors_key: str | None = None,
    key_added: str | None = None,
    copy: bool = False,
    **overrides: Any,
) -> Any:
    """Embed the cells of an AnnData object with a preset and write the map into it.

    Parameters
    ----------
    adata : anndata.AnnData of shape (n_obs, n_vars)
        In memory or backed (``backed="r"`` or ``"r+"``).
    preset : str, default="gdr-umap"
        A preset name (:func:`gidr.presets`).
    use_rep : str or None, default=None
        The representation: a key of ``adata.obsm``, or ``"X"``. None: ``"X_pca"`` when present,
        else ``X``. Read only when no neighbours graph is reused.
    neighbors_key : str or None, default=None
        Where ``scanpy.pp.neighbors`` wrote its graph: ``adata.uns[neighbors_key]`` (default
        ``"neighbors"``, used when present; a key you name must be present).
    key_added : str or None, default=None
        The result goes to ``adata.obsm["X_" + key]`` and ``adata.uns[key]``; default: ``preset``
        with ``-`` replaced by ``_`` (``"X_gdr_umap"``).
    copy : bool, default=False
        Return a new AnnData with the result and leave ``adata`` untouched; otherwise write into
        ``adata`` and return None.
    **overrides
        Passed to :meth:`gidr.Pipeline.from_preset` (``random_state``, ``n_epochs``,
        ``n_neighbors``, ``neighbors``, ``loss``, ...). ``random_state`` defaults to 0.

    Returns
    -------
    anndata.AnnData or None
        The new object when ``copy=True``, else None.

    Raises
    ------
    ImportError
        When anndata is not installed (``pip install gidr[anndata]``).
    GidrValueError
        For an object that is not an AnnData, an unknown ``use_rep`` or ``neighbors_key``, a
        neighbours graph of the wrong shape, NaN or infinite values in the representation, a
        backed ``X`` that would have to be loaded, or ``copy=True`` on a backed object.

    Examples
    --------
    >>> import anndata                                                    # doctest: +SKIP
    >>> adata = anndata.AnnData(X)                                        # doctest: +SKIP
    >>> gidr.tl.embed(adata, "gdr-umap", n_epochs=100)                    # doctest: +SKIP
    >>> adata.obsm["X_gdr_umap"].shape                                    # doctest: +SKIP
    (300, 2)
    """
    _check_adata(adata)
    key = _result_key(key_added, preset)
    if copy:
        if adata.isbacked:
            raise GidrValueError(format_error(f"The 'copy' parameter of {_OWNER}", "False for a backed AnnData",
                                              True, "anndata cannot copy a backed object without a file name: "
                                              "pass copy=False (the result goes to its obsm), or load it "
                                              "first with adata.to_memory()."))
        adata = adata.copy()
    result, params = run(adata, preset, use_rep=use_rep, neighbors_key=neighbors_key, **overrides)
    _store(adata, key, result, params)
    return adata if copy else None


def run(
    adata: Any,
    preset: str = "gdr-umap",
    *,
    use_rep: str | None = None,
    neighbors_key: str | None = None,
    progress: Any = None,
    **overrides: Any,
) -> tuple[Result, dict]:
    """What :func:`embed` computes, without writing it: the :class:`~gidr.types.Result` and the
    parameters :func:`embed` stores in ``uns[key]["params"]``.

    Parameters are those of :func:`embed`; ``progress`` is a tqdm-like bar advanced once per
    epoch (:meth:`gidr.Pipeline.run`).

    Returns
    -------
    result : Result
    params : dict
        JSON-like, in types ``write_h5ad`` stores.
    """
    from gidr.pipeline import Pipeline

    _check_adata(adata)

    overrides.setdefault("random_state", 0)
    pipeline = Pipeline.from_preset(preset, **overrides)
    rep = _representation_name(adata, use_rep)
    reused, record = _reusable_graph(adata, pipeline, rep, use_rep, neighbors_key, overrides)
    if reused is None:
        result = pipeline.run(_representation(adata, rep), progress=progress)
    else:
        pipeline, graph = reused
        try:
            result = pipeline.run(graph, progress=progress)
        except GidrValueError as error:
            raise GidrValueError(f"{error} ({_OWNER} started from the neighbours graph in {record['source']}; "
                                 f"pass neighbors='auto' to start from {_rep_label(rep)} instead.)") from error
    params = _storable(result.config)
    params["use_rep"] = record.get("use_rep", rep)
    params["neighbors"].update(record)
    return result, params


# ---------------------------------------------------------------------- scanpy's neighbours graph
def neighbors_graph(distances: Any) -> KNNGraph:
    """The kNN graph stored in a sparse distance matrix, such as ``adata.obsp["distances"]``.

    Row ``i``'s stored entries are the neighbours of cell ``i`` (scanpy stores the cell itself
    not at all; a stored diagonal entry is dropped; stored zeros, duplicate cells, are kept as
    neighbours at distance 0). When rows hold different numbers of entries, every row keeps its
    ``k`` nearest, ``k`` being the smallest number of entries of a row.

    Parameters
    ----------
    distances : scipy sparse matrix of shape (n_obs, n_obs)

    Returns
    -------
    KNNGraph
        Neighbours sorted by (distance, index), of shape (n_obs, k).
    """
    if not sp.issparse(distances) or distances.ndim != 2 or distances.shape[0] != distances.shape[1]:
        raise GidrValueError(format_error("The neighbours' distance matrix", "a square scipy sparse matrix",
                                          Described(_describe(distances))))
    D = sp.csr_matrix(distances)
    n_obs = D.shape[0]
    counts = np.diff(D.indptr)
    rows = np.repeat(np.arange(n_obs), counts)
    columns, values = D.indices.astype(np.int64), D.data.astype(np.float64)
    not_self = columns != rows
    if not not_self.all():
        rows, columns, values = rows[not_self], columns[not_self], values[not_self]
        counts = np.bincount(rows, minlength=n_obs)
    if n_obs == 0 or counts.min() == 0:
        empty = int(np.argmin(counts)) if n_obs else 0
        raise GidrValueError(format_error("The neighbours' distance matrix", "at least one neighbour in each row",
                                          Described(f"row {empty} with none"),
                                          "Recompute the graph with scanpy.pp.neighbors."))
    k, widest = int(counts.min()), int(counts.max())
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    slots = np.arange(len(columns)) - np.repeat(starts, counts)
    indices = np.full((n_obs, widest), n_obs, dtype=np.int64)  # padding sorts last (index n_obs, distance inf)
    dist = np.full((n_obs, widest), np.inf)
    indices[rows, slots], dist[rows, slots] = columns, values
    order = np.lexsort((indices, dist), axis=-1)[:, :k]
    return KNNGraph(np.take_along_axis(indices, order, axis=1), np.take_along_axis(dist, order, axis=1))


def _reusable_graph(adata, pipeline, rep, use_rep, neighbors_key, overrides):
    """``((pipeline, graph), record)`` when scanpy's graph is reused, else ``(None, record)``;
    ``record`` says where the neighbours came from (stored in ``params["neighbors"]``)."""
    key = "neighbors" if neighbors_key is None else neighbors_key
    if key not in adata.uns:
        if neighbors_key is not None:
            raise GidrValueError(format_error(f"The 'neighbors_key' parameter of {_OWNER}",
                                              "a key of adata.uns holding scanpy.pp.neighbors' result", key,
                                              f"adata.uns has {_keys(adata.uns)}; run scanpy.pp.neighbors(adata, "
                                              f"key_added={key!r}) first."))
        return None, {"source": "computed", "reason": "no neighbours graph in adata.uns['neighbors']"}
    if "neighbors" in overrides:
        return None, {"source": "computed", "reason": f"neighbors={overrides['neighbors']!r} was passed"}
    info = adata.uns[key]
    distances_key = str(info.get("distances_key", "distances"))
    where = f"adata.obsp[{distances_key!r}]"
    if distances_key not in adata.obsp:
        raise GidrValueError(format_error(f"The neighbours graph named by adata.uns[{key!r}]", f"stored in {where}",
                                          Described(f"adata.obsp with {_keys(adata.obsp)}"),
                                          "Rerun scanpy.pp.neighbors, or pass neighbors='auto' to compute one."))
    distances = adata.obsp[distances_key]  # anndata keeps obsp at (n_obs, n_obs)
    graph_params = dict(info.get("params", {}))
    graph_rep, n_pcs = _graph_representation(adata, graph_params)
    record = {"source": where, "key": key, "use_rep": graph_rep,
              "metric": _plain(graph_params.get("metric", "euclidean"))}
    if n_pcs is not None:
        record["n_pcs"] = n_pcs
    if "n_neighbors" in graph_params:
        record["scanpy_n_neighbors"] = int(np.ravel(graph_params["n_neighbors"])[0])
    reason = _mismatch(adata, rep, use_rep, graph_rep, n_pcs, record["metric"], overrides)
    if reason is None:
        graph = neighbors_graph(distances)
        record["n_neighbors"] = graph.n_neighbors
        candidate = _with_graph(pipeline, graph, overrides)
        required = candidate.stages["similarity"].n_neighbors_required(adata.n_obs)
        if required <= graph.n_neighbors:
            if np.diff(sp.csr_matrix(distances).indptr).max() > graph.n_neighbors:
                record["note"] = f"rows hold different numbers of neighbours; the {graph.n_neighbors} nearest are used"
            return (candidate, graph), record
        reason = (f"{candidate.stages['similarity'].describe()} needs {required} neighbours and the graph has "
                  f"{graph.n_neighbors}")
    warnings.warn(f"{_OWNER}: the neighbours graph in {where} is not used ({reason}); gidr computes its own "
                  f"on {_rep_label(rep)}. Pass neighbors='auto' to do so without this warning.", UserWarning,
                  stacklevel=4)
    return None, {"source": "computed", "reason": f"{where} not used: {reason}"}


def _with_graph(pipeline, graph: KNNGraph, overrides):
    """The pipeline reading ``graph``: neighbours 'precomputed', and the graph's number of
    neighbours for a similarity that declares ``n_neighbors`` (unless it was passed)."""
    changes: dict[str, Any] = {"neighbors": "precomputed"}
    passed = any(name.replace("__", ".").rpartition(".")[2] == "n_neighbors" for name in overrides)
    if "n_neighbors" in pipeline.stages["similarity"].param_names() and not passed:
        changes["n_neighbors"] = min(graph.n_neighbors, max(graph.n_samples - 1, 1))
    return pipeline.replace(**changes)


def _mismatch(adata, rep, use_rep, graph_rep, n_pcs, graph_metric, overrides) -> str | None:
    """Why the graph does not fit what was asked (None when it does)."""
    if use_rep is not None:
        width = adata.obsm[rep].shape[1] if rep != "X" else None
        if rep != graph_rep or (rep != "X" and n_pcs is not None and n_pcs != width):
            built = f"{graph_rep}" + (f" (first {n_pcs} columns)" if n_pcs is not None else "")
            return f"it was built on {built}, use_rep={use_rep!r} was asked"
    metric = overrides.get("metric", overrides.get("neighbors.metric", overrides.get("neighbors__metric")))
    if metric is not None and metric != graph_metric:
        return f"its metric is {graph_metric!r}, metric={metric!r} was asked"
    return None


def _graph_representation(adata, params: dict) -> tuple[str, int | None]:
    """The representation ``scanpy.pp.neighbors`` read: its recorded ``use_rep`` and ``n_pcs``,
    else scanpy's default (``X`` for at most 50 variables or ``n_pcs=0``, else ``X_pca``)."""
    use_rep = params.get("use_rep")
    n_pcs = params.get("n_pcs")
    n_pcs = None if n_pcs is None else int(np.ravel(n_pcs)[0])
    if use_rep is not None:
        return str(_plain(use_rep)), n_pcs
    if n_pcs == 0 or adata.n_vars <= _SCANPY_N_PCS:
        return "X", None
    return "X_pca", n_pcs


# ---------------------------------------------------------------------- the representation
def _representation_name(adata, use_rep: str | None) -> str:
    if use_rep is None:
        return "X_pca" if "X_pca" in adata.obsm else "X"
    if not isinstance(use_rep, str) or (use_rep != "X" and use_rep not in adata.obsm):
        raise GidrValueError(format_error(f"The 'use_rep' parameter of {_OWNER}", "'X' or a key of adata.obsm",
                                          use_rep, f"adata.obsm has {_keys(adata.obsm)}."))
    return use_rep


def _representation(adata, rep: str):
    """The array the pipeline reads, checked, not copied (float32 stays float32)."""
    if rep != "X":
        return check_array(adata.obsm[rep], name=f"adata.obsm[{rep!r}]", allow_sparse=True)
    if adata.isbacked:
        raise GidrValueError(format_error(
            f"The representation read by {_OWNER}", "in memory", Described(f"adata.X backed on disk "
                                                                            f"({adata.filename})"),
            "gidr does not load a backed X behind your back: compute a representation into adata.obsm "
            "first (e.g. scanpy.pp.pca on a loaded object, then adata.write()) and pass use_rep, or load "
            "the object with adata.to_memory()."))
    if adata.X is None:
        raise GidrValueError(format_error(f"The representation read by {_OWNER}", "adata.X or an obsm entry",
                                          None, f"adata.obsm has {_keys(adata.obsm)}; pass use_rep=<key>."))
    return check_array(adata.X, name="adata.X", allow_sparse=True)


# ---------------------------------------------------------------------- helpers
def _store(adata, key: str, result: Result, params: dict) -> None:
    """Write the embedding to ``obsm["X_" + key]`` and ``params`` to ``uns[key]["params"]``."""
    adata.obsm["X_" + key] = result.embedding
    adata.uns[key] = {"params": params}


def _result_key(key_added: Any, preset: Any) -> str:
    if key_added is None:
        if not isinstance(preset, str):
            raise GidrValueError(format_error(f"The 'preset' parameter of {_OWNER}", "a preset name (str)", preset))
        return preset.replace("-", "_")
    if not isinstance(key_added, str) or not key_added:
        raise GidrValueError(format_error(f"The 'key_added' parameter of {_OWNER}", "a non-empty str or None",
                                          key_added))
    return key_added


def _storable(value: Any) -> Any:
    """``value`` in the types ``write_h5ad`` stores: None entries dropped (as scanpy's tools do),
    tuples as lists, numpy scalars as Python ones, generators and other objects as their repr."""
    if isinstance(value, dict):
        return {str(k): _storable(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_storable(v) for v in value if v is not None]
    if isinstance(value, np.ndarray) or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return repr(value)


def _plain(value: Any) -> Any:
    """A numpy scalar or one-element array read from ``uns`` as a Python value."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.ravel()[0]
    return value.item() if isinstance(value, np.generic) else value


def _keys(mapping) -> str:
    keys = list(mapping.keys())
    return ", ".join(repr(k) for k in keys) if keys else "no entries"


def _rep_label(rep: str) -> str:
    return "adata.X" if rep == "X" else f"adata.obsm[{rep!r}]"


def _describe(value: Any) -> str:
    shape = getattr(value, "shape", None)
    return f"a {type(value).__name__}" + (f" of shape {shape}" if shape is not None else "")


def _check_adata(adata: Any) -> None:
    anndata = _import_anndata()
    if not isinstance(adata, anndata.AnnData):
        raise GidrValueError(format_error(f"The 'adata' parameter of {_OWNER}", "an anndata.AnnData",
                                          Described(f"a {type(adata).__name__}"),
                                          "Wrap an array with anndata.AnnData(X), or use gidr.Pipeline.run(X)."))


def _import_anndata():
    try:
        import anndata
    except ImportError as error:
        raise ImportError("gidr.tl needs anndata, which is not installed. Install it with "
                          "`pip install gidr[anndata]` (or `pip install anndata h5py`).") from error
    return anndata
