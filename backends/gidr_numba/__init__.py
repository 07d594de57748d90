"""gidr's numba backend: parallel, deterministic, cached kernels.

On import it sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment already sets it:
with numba's OpenMP threading layer, actively spinning worker threads made each parallel
region cost about 12 ms on a busy 2-core machine (measured), which dominated short
kernels. Set the variable yourself (before importing gidr) to choose otherwise. Results do
not depend on it, nor on the number of threads.

It also registers an exit handler that calls :func:`gc.freeze`: the interpreter's last
garbage collections walk the many objects numba's compiler leaves behind, which cost
0.3-0.4 s at the end of every process (measured: ``load_digits`` + ``gdr-umap`` in a fresh
process, 2.1 s, 1.8 s with the handler). Python does not promise to finalize objects still
alive at exit; set ``GIDR_NO_EXIT_FREEZE=1`` to keep the collections.
"""
import atexit
import gc
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _freeze_at_exit() -> None:
    if os.environ.get("GIDR_NO_EXIT_FREEZE", "") in ("", "0"):
        gc.freeze()


atexit.register(_freeze_at_exit)
