"""Conformance checks that stage plugins reuse in their own test suites.

>>> from gidr.testing import check_stage_class
>>> from gidr.plugins import get_registry
>>> check_stage_class(get_registry().get("loss", "kl", "reference"))

Each check raises :class:`AssertionError` with a message naming the stage and the problem.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from gidr.kernel import kernel
from gidr.stages import BASES, KINDS, Stage
from gidr.types import Context, PairTotals
from gidr.validation import GidrValueError

__all__ = ["check_stage_class", "check_same_parameters", "check_loss_gradient", "check_loss_forces",
           "random_affinities"]


def check_stage_class(cls: type[Stage]) -> None:
    """A stage class declares its identity and parameters, and builds from its defaults."""
    assert getattr(cls, "kind", None) in KINDS, f"{cls!r}: 'kind' must be one of {KINDS}"
    assert issubclass(cls, BASES[cls.kind]), f"{cls!r}: must subclass gidr.stages.{BASES[cls.kind].__name__}"
    assert isinstance(getattr(cls, "name", None), str) and cls.name, f"{cls!r}: 'name' must be a non-empty str"
    assert isinstance(cls.backend, str) and cls.backend, f"{cls!r}: 'backend' must be a non-empty str"
    assert isinstance(cls.priority, int), f"{cls.describe()}: 'priority' must be an int"
    names = [p.name for p in cls.params]
    assert len(names) == len(set(names)), f"{cls.describe()}: duplicate parameter names {names}"
    for param in cls.params:
        assert param.doc, f"{cls.describe()}: parameter {param.name!r} has no documentation"
    stage = cls()  # defaults must validate
    try:
        cls(**{"no_such_parameter_xyz": 1})
    except GidrValueError as exc:
        assert "no_such_parameter_xyz" in str(exc), f"{cls.describe()}: unknown-parameter error must name it"
    else:  # pragma: no cover - a failing plugin
        raise AssertionError(f"{cls.describe()}: accepted an unknown parameter")
    assert repr(stage).startswith(cls.__name__)


def check_same_parameters(cls: type[Stage], twin: type[Stage]) -> None:
    """Two implementations of one (kind, name) declare the same parameters and defaults."""
    mine = {p.name: p.default for p in cls.params}
    theirs = {p.name: p.default for p in twin.params}
    assert mine == theirs, (f"{cls.describe()} in backend {cls.backend!r} declares {mine}, but backend "
                            f"{twin.backend!r} declares {theirs}")


def random_affinities(n: int, normalized: bool, seed: int = 0, density: float = 0.2) -> sp.csr_matrix:
    """A random symmetric P with zero diagonal (summing to one when ``normalized``)."""
    rng = np.random.default_rng(seed)
    A = sp.random(n, n, density=density, random_state=rng, format="csr")
    P = (A + A.T).tocsr()
    P.setdiag(0)
    P.eliminate_zeros()
    P.data = np.minimum(P.data, 1.0)
    return (P / P.sum()).tocsr() if normalized else P


def check_loss_gradient(loss, ctx: Context, n: int = 25, seed: int = 0, rtol: float = 1e-5) -> None:
    """The loss's exact gradient matches central finite differences of its value."""
    rng = np.random.default_rng(seed)
    P = random_affinities(n, ctx.normalized, seed)
    Y = rng.normal(size=(n, ctx.n_components))
    grad = loss.gradient(P, Y, ctx)
    numeric = np.zeros_like(Y)
    h = 1e-6
    for idx in np.ndindex(*Y.shape):
        up, down = Y.copy(), Y.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = (loss.value(P, up, ctx) - loss.value(P, down, ctx)) / (2 * h)
    err = np.linalg.norm(grad - numeric) / max(np.linalg.norm(numeric), 1e-300)
    assert err < rtol, f"{loss.describe()}: gradient differs from finite differences (relative error {err:.2e})"


def check_loss_forces(loss, ctx: Context, n: int = 25, seed: int = 0, rtol: float = 1e-8) -> None:
    """Attraction + weighted exact repulsion channels == force_scale * gradient.

    Valid for losses whose repulsion does not use the p-bar substitution (normalized
    losses, Frobenius-like losses).
    """
    rng = np.random.default_rng(seed)
    P = random_affinities(n, ctx.normalized, seed)
    Y = rng.normal(size=(n, ctx.n_components))
    coo = P.tocoo()
    diff_edges = Y[coo.row] - Y[coo.col]
    D_edges = np.sum(diff_edges ** 2, axis=1)
    F = np.zeros_like(Y)
    np.add.at(F, coo.row, loss.attraction(D_edges, coo.data, ctx)[:, None] * diff_edges)
    diff = Y[:, None, :] - Y[None, :, :]
    D = np.sum(diff ** 2, axis=2)
    off = ~np.eye(n, dtype=bool)
    w = kernel(D, ctx.a, ctx.b)
    phi = loss.repulsion_channels(D, ctx) * off[..., None]
    channels = np.einsum("ikc,ikd->cid", phi, diff)
    totals = PairTotals(sum_w=float(w[off].sum()), sum_w2=float((w[off] ** 2).sum()),
                        p_mean=float(P.data.mean()), sum_pw=float(coo.data @ kernel(D_edges, ctx.a, ctx.b)))
    F += np.tensordot(loss.repulsion_weights(totals, ctx), channels, axes=1)
    expected = loss.force_scale(totals, ctx) * loss.gradient(P, Y, ctx)
    err = np.linalg.norm(F - expected) / max(np.linalg.norm(expected), 1e-300)
    assert err < rtol, f"{loss.describe()}: forces differ from force_scale * gradient (relative error {err:.2e})"
