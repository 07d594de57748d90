"""Issue 12, cases 2 and 3: an install where numba cannot cache; one fresh cache filled by two
processes at once; ``__del__`` of objects in reference cycles at exit."""
import os
import shutil
import subprocess
import sys

import pytest

from tests.reliability._support import REPO, run_python

pytest.importorskip("numba")

FIT = """
import numpy as np, gidr
X = np.random.default_rng(0).normal(size=(150, 5))
for backend in ("reference", "auto"):
    Y = gidr.Pipeline.from_preset("gdr-umap", backend=backend, random_state=0, n_epochs=5).run(X)
print("fit", np.asarray(Y).tobytes().hex()[:64])
"""


def _uncachable_copy(tmp_path):
    """The packages copied where numba finds no cache directory: ``__pycache__`` and the
    cache/home directories are plain files (chmod would not stop root)."""
    packages = tmp_path / "site"
    shutil.copytree(REPO / "gidr", packages / "gidr", ignore=shutil.ignore_patterns("__pycache__"))
    for source in (REPO / "backends" / "gidr_numba", REPO / "reference" / "gidr_reference"):
        shutil.copytree(source, packages / source.name, ignore=shutil.ignore_patterns("__pycache__"))
    (packages / "gidr_numba" / "__pycache__").write_text("")
    nowhere = tmp_path / "nowhere"
    nowhere.write_text("")
    return {"PYTHONPATH": str(packages), "PYTHONDONTWRITEBYTECODE": "1", "NUMBA_CACHE_DIR": None,
            "HOME": str(nowhere), "XDG_CACHE_HOME": str(nowhere)}


def test_an_install_numba_cannot_cache_fits_with_one_warning(tmp_path):
    env = _uncachable_copy(tmp_path)
    result = run_python("import gidr_numba; print(gidr_numba.__file__)" + FIT, env=env, cwd=tmp_path,
                        timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith(str(tmp_path))  # the copy ran, not the editable install
    assert result.stderr.count("GidrCacheWarning") == 1, result.stderr
    assert "NUMBA_CACHE_DIR" in result.stderr


def test_two_processes_filling_one_fresh_cache_agree(tmp_path):
    full_env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", FIT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=full_env, cwd=REPO) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    assert outs[0][0] == outs[1][0] and "fit" in outs[0][0]


CYCLE_AT_EXIT = """
import gidr, numpy as np
class Noisy:
    def __del__(self):
        print("finalized", flush=True)
a, b = Noisy(), Noisy()
a.other, b.other = b, a
gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=5).run(
    np.random.default_rng(0).normal(size=(100, 4)))
print("fitted", flush=True)
"""


def test_del_in_a_reference_cycle_runs_at_exit_after_a_fit():
    result = run_python(CYCLE_AT_EXIT, env={"GIDR_EXIT_FREEZE": None})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["fitted", "finalized", "finalized"]
