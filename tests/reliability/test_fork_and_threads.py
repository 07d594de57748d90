"""Issue 12, case 1: a fork after a fit must not kill or hang the children; threads must not abort."""
import multiprocessing
import os
import sys

import numpy as np
import pytest

from tests.reliability._support import run_python, small_fit

numba = pytest.importorskip("numba")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork start method")


def _child_fit(preset):
    return small_fit(preset)


def test_the_default_threading_layer_is_fork_safe():
    if os.environ.get("NUMBA_THREADING_LAYER"):
        pytest.skip("the user chose the threading layer")
    small_fit()
    assert numba.threading_layer() in {"tbb", "workqueue"}


def test_a_fork_started_pool_fits_after_a_fit_in_the_parent():
    parent = small_fit("gdr-umap")  # launches the threading layer in this process
    pool = multiprocessing.get_context("fork").Pool(2)
    try:
        pending = pool.map_async(_child_fit, ["gdr-umap", "gdr-umap"])
        children = pending.get(timeout=120)  # a dead child leaves the pool waiting forever
    except multiprocessing.TimeoutError:
        pytest.fail("the fork-started children did not finish: a child died in a parallel kernel")
    finally:
        pool.terminate()
        pool.join()
    for child in children:
        np.testing.assert_array_equal(child, parent)


CONCURRENT_THREADS = """
import threading, numpy as np, numba
import sys; sys.path.insert(0, "tests/reliability")
from tests.reliability._support import small_fit
expected = small_fit("gdr-tsne")
results = [None] * 4
def fit(i):
    results[i] = small_fit("gdr-tsne")
threads = [threading.Thread(target=fit, args=(i,)) for i in range(4)]
[t.start() for t in threads]; [t.join() for t in threads]
assert all(np.array_equal(r, expected) for r in results)
print("layer", numba.threading_layer(), "ok")
"""


@pytest.mark.parametrize("layer", [None, "workqueue"])
def test_fits_from_several_python_threads_at_once(layer):
    """Four Python threads fitting at once: with TBB the layer is thread-safe; with workqueue
    (which aborts on concurrent launches) the numba stages serialize their launches
    (gidr_numba.parallel_launch_lock). Same bits as a lone fit either way."""
    env = {"NUMBA_THREADING_LAYER": layer} if layer else {}
    result = run_python(CONCURRENT_THREADS, timeout=180, env=env)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]
    if layer:
        assert f"layer {layer} ok" in result.stdout
