"""gidr's numba backend: parallel, deterministic, cached kernels."""
