"""openTSNE's callback classes (``openTSNE.callbacks``).

A callback is any callable ``callback(iteration, error, embedding)`` passed to
``TSNE(callbacks=...)`` or ``TSNEEmbedding.optimize(callbacks=...)``; it runs every
``callbacks_every_iters`` iterations and stops the optimization by returning True.
:class:`Callback` is the base class openTSNE's users subclass: its
``optimization_about_to_start`` runs at the start of each ``optimize`` call.
"""
from __future__ import annotations

import logging

import numpy as np

__all__ = ["Callback", "VerifyExaggerationError"]

log = logging.getLogger("gidr")


class Callback:
    """Base class of callbacks: override ``__call__`` (and ``optimization_about_to_start``)."""

    def optimization_about_to_start(self) -> None:
        """Called once at the start of each ``optimize`` call."""

    def __call__(self, iteration: int, error: float, embedding) -> bool | None:
        """Called every ``callbacks_every_iters`` iterations with the current KL divergence and
        embedding (a :class:`~gidr.opentsne.TSNEEmbedding`); return True to stop."""


class VerifyExaggerationError(Callback):
    """Check that the error reported during an exaggerated phase is the KL divergence of the
    *unexaggerated* P (openTSNE's callback of the same name): it keeps a copy of ``embedding``'s
    P and, at every call, recomputes the KL divergence of the embedding it is given against it
    (gidr's :func:`~gidr.opentsne.tsne.kl_divergence`, with the run's ``dof`` and repulsion);
    a difference above 1e-8 (relative to the error, at least 1) raises RuntimeError.
    """

    def __init__(self, embedding) -> None:
        self.embedding = embedding
        self.P = embedding.affinities.P.copy()

    def __call__(self, iteration: int, corrected_error: float, embedding) -> bool:
        import dataclasses

        from gidr.opentsne.tsne import GRADIENT_PARAMS, kl_divergence, phase_overrides  # noqa: PLC0415
        from gidr.types import Affinities as GidrAffinities  # noqa: PLC0415

        params = {**GRADIENT_PARAMS, **self.embedding.gradient_descent_params}
        overrides = phase_overrides(params, 1, 0, embedding.shape[0], "VerifyExaggerationError")
        stages = embedding.affinities.pipeline.replace(**overrides).stages
        ctx = dataclasses.replace(embedding.affinities.context, n_components=embedding.shape[1], n_epochs=1)
        true_error = kl_divergence(stages["loss"], stages["repulsion"], GidrAffinities(self.P, True),
                                   np.asarray(embedding, dtype=np.float64), ctx, 0)
        if abs(true_error - corrected_error) > 1e-8 * max(1.0, abs(true_error)):
            raise RuntimeError(f"The error reported at iteration {iteration} ({corrected_error!r}) is not the KL "
                               f"divergence of the unexaggerated P ({true_error!r}).")
        log.info("Iteration %d: reported KL %.6f, recomputed %.6f", iteration, corrected_error, true_error)
        return False
