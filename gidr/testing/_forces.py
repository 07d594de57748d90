"""Checks of the loss and repulsion stages."""
from __future__ import annotations

import math

import numpy as np

from gidr.types import Affinities, Context, PairTotals
from gidr.validation import GidrValueError
from gidr.testing._problems import N_SAMPLES, KERNELS, _rejects, _skip, pipeline_settings, random_affinities


# ============================================================================ loss
def _loss_settings(stage) -> list[bool]:
    """The ``normalized`` settings the loss accepts (check_settings raising GidrValueError: not)."""
    accepted = [normalized for normalized in (False, True)
                if not _rejects(stage, pipeline_settings(normalized=normalized))]
    assert accepted, f"{stage.describe()}: check_settings rejects both normalized=False and normalized=True"
    return accepted


def _loss_contexts(stage, env):
    for normalized in _loss_settings(stage):
        for a, b in KERNELS:
            yield env.ctx(n_samples=25, n_components=2, normalized=normalized, a=a, b=b, seed=0)


def _check_loss_capabilities(cls, env) -> None:
    assert isinstance(cls.n_channels, int) and cls.n_channels >= 1, f"{cls.describe()}: 'n_channels' must be >= 1"
    assert isinstance(cls.edge_sampling_sgd, bool), f"{cls.describe()}: 'edge_sampling_sgd' must be a bool"
    for name in ("auto_rate_factor", "auto_rate_unnormalized"):
        factor = getattr(cls, name)
        assert isinstance(factor, (int, float)) and not isinstance(factor, bool) and math.isfinite(factor) \
            and factor > 0, f"{cls.describe()}: '{name}' must be a positive float"


def _check_loss_gradient(cls, env) -> None:
    stage = env.build(cls)
    for ctx in _loss_contexts(stage, env):
        check_loss_gradient(stage, ctx)


def _uses_p_mean(stage, ctx) -> bool:
    """Whether the repulsion weights use the mean of P for unknown p (the p-bar substitution):
    the forces are then a surrogate, not ``force_scale * gradient``."""
    first = stage.repulsion_weights(PairTotals(sum_w=50.0, sum_w2=20.0, p_mean=0.1, sum_pw=0.3), ctx)
    second = stage.repulsion_weights(PairTotals(sum_w=50.0, sum_w2=20.0, p_mean=0.2, sum_pw=0.3), ctx)
    return not np.array_equal(first, second)


def _check_loss_forces(cls, env) -> None:
    stage = env.build(cls)
    checked = 0
    for ctx in _loss_contexts(stage, env):
        if _uses_p_mean(stage, ctx):
            continue  # surrogate forces (paper §4): nothing exact to compare with
        check_loss_forces(stage, ctx)
        checked += 1
    if not checked:
        _skip("its repulsion weights depend on p_mean in every accepted setting (the p-bar substitution)")


def _check_loss_value_estimate(cls, env) -> None:
    stage = env.build(cls)
    checked = 0
    for ctx in _loss_contexts(stage, env):
        rng = np.random.default_rng(4)
        P = random_affinities(ctx.n_samples, ctx.normalized, seed=4)
        Y = rng.normal(size=(ctx.n_samples, ctx.n_components))
        coo = P.tocoo()
        D_edges = np.sum((Y[coo.row] - Y[coo.col]) ** 2, axis=1)
        edge_terms = stage.value_edge_terms(D_edges, coo.data, ctx)
        if edge_terms is None:
            continue
        k, l = np.nonzero(~np.eye(ctx.n_samples, dtype=bool))
        pair_terms = np.asarray(stage.value_pair_terms(np.sum((Y[k] - Y[l]) ** 2, axis=1), ctx))
        edge_terms = np.asarray(edge_terms)
        owner = f"{cls.describe()} ({cls.backend}, normalized={ctx.normalized}, a={ctx.a}, b={ctx.b})"
        assert edge_terms.ndim == 2 and edge_terms.shape[0] == coo.nnz, f"{owner}: edge terms shape {edge_terms.shape}"
        assert pair_terms.ndim == 2 and pair_terms.shape[0] == len(k), f"{owner}: pair terms shape {pair_terms.shape}"
        estimate = stage.value_from_sums(edge_terms.sum(axis=0), pair_terms.sum(axis=0), ctx)
        exact = stage.value(P, Y, ctx)
        assert math.isclose(estimate, exact, rel_tol=1e-8, abs_tol=1e-12), \
            f"{owner}: value_from_sums of the exact sums is {estimate!r}, value() is {exact!r}"
        checked += 1
    if not checked:
        _skip("value_edge_terms returns None: the loss offers no value estimate")


def _check_loss_kernel(cls, env) -> None:
    stage = env.build(cls)
    D = np.array([0.0, 1e-3, 0.1, 1.0, 10.0, 1e3])
    for ctx in _loss_contexts(stage, env):
        w = np.asarray(stage.kernel(D, ctx))
        owner = f"{cls.describe()} ({cls.backend}, a={ctx.a}, b={ctx.b})"
        assert w.shape == D.shape, f"{owner}: kernel shape {w.shape}"
        assert np.all((w > 0) & (w <= 1)), f"{owner}: kernel values {w} not in (0, 1]"
        assert np.all(np.diff(w) < 0), f"{owner}: kernel {w} is not decreasing in D"


def _check_loss_numba_kernels(cls, env) -> None:
    stage = env.build(cls)
    D = np.array([0.0, 1e-8, 0.01, 0.3, 1.0, 2.5, 40.0])
    p = np.array([1.0, 0.9, 0.5, 0.2, 0.05, 1e-4, 0.7])
    checked = 0
    for ctx in _loss_contexts(stage, env):
        kernels = env.registry.kernels.get(stage, "numba", ctx)
        if kernels is None:
            continue  # the factory declines this setting: the numba code runs the reference
        owner = f"{cls.describe()} numba kernels (normalized={ctx.normalized}, a={ctx.a}, b={ctx.b})"
        attraction = np.array([kernels.attraction(d, q, ctx.a, ctx.b, kernels.params) for d, q in zip(D, p)])
        repulsion = np.array([kernels.repulsion(d, ctx.a, ctx.b, kernels.params) for d in D])
        phi = np.asarray(stage.repulsion_channels(D, ctx))
        w = np.asarray(stage.kernel(D, ctx))
        np.testing.assert_allclose(attraction[:, 0], stage.attraction(D, p, ctx), rtol=1e-12, atol=1e-300,
                                   err_msg=f"{owner}: attraction coefficient")
        np.testing.assert_allclose(attraction[:, 1], w, rtol=1e-12, err_msg=f"{owner}: attraction's w")
        for c in range(2):
            expected = phi[:, c] if c < stage.n_channels else np.zeros_like(D)
            np.testing.assert_allclose(repulsion[:, c], expected, rtol=1e-12, atol=1e-300,
                                       err_msg=f"{owner}: repulsion channel {c}")
        np.testing.assert_allclose(repulsion[:, 2], w, rtol=1e-12, err_msg=f"{owner}: repulsion's w")
        checked += 1
    assert checked, f"{cls.describe()}: numba kernels are registered, but the factory declines every setting"


def _why_not_numba_kernels(cls, env):
    kernels = getattr(env.registry, "kernels", None)
    if kernels is None or not kernels.has(cls, "numba"):
        return "no numba kernels registered for this class (gidr_register_kernels)"
    return None


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
    assert err < rtol, (f"{loss.describe()} (normalized={ctx.normalized}, a={ctx.a}, b={ctx.b}): gradient differs "
                        f"from finite differences (relative error {err:.2e})")


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
    w = loss.kernel(D, ctx)
    phi = loss.repulsion_channels(D, ctx) * off[..., None]
    channels = np.einsum("ikc,ikd->cid", phi, diff)
    totals = Affinities(P, ctx.normalized).totals(float(w[off].sum()), float((w[off] ** 2).sum()),
                                                  float(coo.data @ loss.kernel(D_edges, ctx)))
    F += np.tensordot(loss.repulsion_weights(totals, ctx), channels, axes=1)
    expected = loss.force_scale(totals, ctx) * loss.gradient(P, Y, ctx)
    err = np.linalg.norm(F - expected) / max(np.linalg.norm(expected), 1e-300)
    assert err < rtol, (f"{loss.describe()} (normalized={ctx.normalized}, a={ctx.a}, b={ctx.b}): forces differ "
                        f"from force_scale * gradient (relative error {err:.2e})")


# ============================================================================ repulsion
_EDGES_PER_POINT = 15


def _exact_sums(Y: np.ndarray, loss, ctx: Context):
    """The oracle: channels[c, i] = sum_{k != i} phi_c(D_ik) (y_i - y_k), and the sums of w, w^2."""
    diff = Y[:, None, :] - Y[None, :, :]
    D = np.sum(diff ** 2, axis=2)
    off = ~np.eye(len(Y), dtype=bool)
    phi = np.asarray(loss.repulsion_channels(D, ctx)) * off[..., None]
    w = np.asarray(loss.kernel(D, ctx))[off]
    return np.einsum("ikc,ikd->cid", phi, diff), float(w.sum()), float((w * w).sum()), phi, diff, D


def _repulsion_problems(cls, env, normalized_only: bool = False, scalars=((1.577, 0.895),)):
    """(loss, ctx, Y) for the kl (one channel) and frobenius (two) losses of ``cls``'s backend,
    with each kernel's (a, b) in ``scalars`` (default UMAP's for min_dist 0.1)."""
    rng = np.random.default_rng(5)
    Y = rng.normal(size=(N_SAMPLES, 2))
    for loss_name in ("kl", "frobenius"):
        loss = env.companion("loss", loss_name, cls.backend)
        for normalized in ((True,) if normalized_only else (False, True)):
            for a, b in scalars:
                yield loss, env.ctx(n_samples=N_SAMPLES, normalized=normalized, a=a, b=b, seed=11), Y


def _n_edges() -> np.ndarray:
    return np.full(N_SAMPLES, _EDGES_PER_POINT, dtype=np.int64)


def _check_repulsion_estimate(cls, env) -> None:
    """Shapes, finiteness and determinism; an estimator may refuse a (loss, normalization) it
    cannot estimate (``fft`` and UMAP's kernel) with a GidrValueError naming it, not all of them."""
    stage = env.build(cls)
    accepted = 0
    for loss, ctx, Y in _repulsion_problems(cls, env, scalars=((1.577, 0.895), (1.0, 1.0))):
        owner = f"{cls.describe()} ({cls.backend}) with {loss.describe()}, normalized={ctx.normalized}"
        Y_before = Y.copy()
        try:
            sums = stage.estimate(Y, loss, ctx, 0, _n_edges())
        except GidrValueError as error:
            assert f"'{cls.name}'" in str(error), f"{owner}: a refusal must name the stage: {error}"
            continue
        accepted += 1
        assert np.array_equal(Y, Y_before), f"{owner}: modified Y"
        channels = np.asarray(sums.channels)
        assert channels.shape == (loss.n_channels, N_SAMPLES, 2), f"{owner}: channels shape {channels.shape}"
        assert np.all(np.isfinite(channels)), f"{owner}: non-finite channels"
        assert math.isfinite(sums.sum_w) and sums.sum_w > 0 and math.isfinite(sums.sum_w2) and sums.sum_w2 > 0, \
            f"{owner}: sum_w, sum_w2 must be finite and positive"
        again = stage.estimate(Y, loss, ctx, 0, _n_edges())
        assert np.array_equal(again.channels, channels) and again.sum_w == sums.sum_w, \
            f"{owner}: the same (seed, epoch) must give the same bits"
    assert accepted, f"{cls.describe()} ({cls.backend}) refused every loss and normalization"


def _check_repulsion_matches_exact(cls, env) -> None:
    stage = env.build(cls, **({"theta": 0.0} if "theta" in cls.param_names() else {}))
    for loss, ctx, Y in _repulsion_problems(cls, env):
        channels, sum_w, sum_w2, *_ = _exact_sums(Y, loss, ctx)
        sums = stage.estimate(Y, loss, ctx, 0, _n_edges())
        owner = f"{stage!r} ({cls.backend}) with {loss.describe()}, normalized={ctx.normalized}"
        np.testing.assert_allclose(sums.channels, channels, rtol=1e-9, atol=1e-12,
                                   err_msg=f"{owner}: channels differ from the exact sums")
        np.testing.assert_allclose([sums.sum_w, sums.sum_w2], [sum_w, sum_w2], rtol=1e-9,
                                   err_msg=f"{owner}: sum_w, sum_w2 differ from the exact sums")


def _why_not_matches_exact(cls, env):
    if getattr(cls, "per_edge_sampler", False):
        return "a per-edge sampler (stochastic): checked for bias instead"
    if getattr(cls, "interpolates_kernels", False):
        return "interpolates the kernels on a grid (no setting makes it exact): held to exact by its own tests"
    return None


def _check_repulsion_unbiased(cls, env) -> None:
    """Normalized: the mean over epochs of the sampled channels is the exact sum.

    Each point draws m = 15 draws_per_edge points k != i per epoch, uniformly, and scales the
    sum by (n - 1) / m. From the exact pairwise terms we know each draw's variance, hence the
    expected squared error of the mean over E epochs: sum_i (n - 1)^2 var_i / (m E) (measured
    errors are 1.0-1.1 times it). The check allows 4 times that (twice the RMS error, which is
    2.7 % of the channels' norm here): the error sums 80 coordinates of comparable size, so
    exceeding 4 times its mean is far in the tail (chi-square, 80 degrees of freedom:
    p < 1e-15), while a 10 % bias (3.7 RMS errors) or a missing (n - 1) / m factor fails.
    """
    stage = env.build(cls)
    n_epochs = 600
    m = _EDGES_PER_POINT * int(stage.draws_per_edge())
    for loss, ctx, Y in _repulsion_problems(cls, env, normalized_only=True):
        channels, sum_w, _, phi, diff, D = _exact_sums(Y, loss, ctx)
        runs = [stage.estimate(Y, loss, ctx, epoch, _n_edges()) for epoch in range(n_epochs)]
        mean = np.mean([run.channels for run in runs], axis=0)
        terms = np.einsum("ikc,ikd->cikd", phi, diff)  # per-draw contributions
        off = ~np.eye(N_SAMPLES, dtype=bool)
        per_draw_mean = channels / (N_SAMPLES - 1)
        variance = (np.einsum("cikd,ik->ci", terms ** 2, off) / (N_SAMPLES - 1)
                    - np.sum(per_draw_mean ** 2, axis=-1))
        expected_sq = (N_SAMPLES - 1) ** 2 * variance.sum() / (m * n_epochs)
        error_sq = float(np.sum((mean - channels) ** 2))
        owner = f"{cls.describe()} ({cls.backend}) with {loss.describe()}"
        assert error_sq <= 4.0 * expected_sq, (
            f"{owner}: mean of {n_epochs} epochs differs from the exact channels by {math.sqrt(error_sq):.3g} "
            f"(relative {math.sqrt(error_sq / np.sum(channels ** 2)):.3g}); the unbiased estimate's RMS error is "
            f"{math.sqrt(expected_sq):.3g}")
        w = np.asarray(loss.kernel(D[off], ctx))
        sd_w = N_SAMPLES * (N_SAMPLES - 1) * w.std() / math.sqrt(m * N_SAMPLES * n_epochs)
        mean_w = np.mean([run.sum_w for run in runs])
        assert abs(mean_w - sum_w) <= 4.0 * sd_w, \
            f"{owner}: mean sum_w {mean_w:.6g} vs exact {sum_w:.6g} (4 standard errors: {4 * sd_w:.3g})"
        assert not np.array_equal(runs[0].channels, runs[1].channels), f"{owner}: draws must change with the epoch"


def _check_draws_per_edge(cls, env) -> None:
    draws = env.build(cls).draws_per_edge()
    assert isinstance(draws, (int, np.integer)) and not isinstance(draws, bool) and draws >= 1, \
        f"{cls.describe()}: draws_per_edge() must be a positive int, got {draws!r}"


def _why_not_sampler(cls, env):
    return None if getattr(cls, "per_edge_sampler", False) else "not a per-edge sampler"


def _check_repulsion_capabilities(cls, env) -> None:
    assert isinstance(cls.per_edge_sampler, bool), f"{cls.describe()}: 'per_edge_sampler' must be a bool"
