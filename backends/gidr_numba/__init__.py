"""gidr's numba backend: parallel, deterministic, cached kernels.

On import it sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment already sets it:
with numba's OpenMP threading layer, actively spinning worker threads made each parallel
region cost about 12 ms on a busy 2-core machine (measured), which dominated short
kernels. Set the variable yourself (before importing gidr) to choose otherwise. Results do
not depend on it, nor on the number of threads.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
