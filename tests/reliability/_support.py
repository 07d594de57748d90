"""Shared by the reliability tests: a small fit, and a Python subprocess with a timeout."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import gidr

PRESETS = ["umap", "tsne", "gdr-umap", "gdr-tsne", "gdr-umap-frob", "gdr-tsne-frob"]
REPO = Path(__file__).resolve().parents[2]


def blobs(n=150, d=5, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(c * 6, 1, (n // 3, d)) for c in range(3)])


def small_fit(preset="gdr-umap", n_epochs=20, **overrides) -> np.ndarray:
    pipeline = gidr.Pipeline.from_preset(preset, random_state=0, n_epochs=n_epochs, **overrides)
    return np.asarray(pipeline.run(blobs()))


def run_python(code: str, timeout=120, env=None, cwd=None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter; a hang fails the test (TimeoutExpired), not the suite."""
    full_env = {**os.environ, **(env or {})}
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=cwd or REPO)
