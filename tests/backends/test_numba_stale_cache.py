"""Cached kernels compiled from other sources are dropped at import (gidr_numba._drop_stale_kernels).

numba checks a cached kernel against the file that defines it only: a kernel of ``gdr.py``
cached before an edit of ``random.py``, whose functions it inlines, would keep the old code.
"""
from __future__ import annotations

import gidr_numba
from gidr_numba import SOURCES_DIGEST_FILE, _drop_stale_kernels, sources_digest


def _fill(cache):
    ours = [cache / "gdr._gather_sampled_kernel-203.py311.nbi", cache / "gdr._gather_sampled_kernel-203.py311.1.nbc",
            cache / "random.mix-40.py311.nbi"]
    theirs = [cache / "mymodule.kernel-3.py311.nbi", cache / "gdr.cpython-311.pyc"]
    for path in ours + theirs:
        path.write_bytes(b"x")
    return ours, theirs


def test_kernels_of_other_sources_are_dropped_and_the_digest_written(tmp_path):
    ours, theirs = _fill(tmp_path)
    (tmp_path / SOURCES_DIGEST_FILE).write_text("0" * 64 + "\n")  # another version's sources
    assert _drop_stale_kernels(str(tmp_path)) is True
    assert not any(path.exists() for path in ours)
    assert all(path.exists() for path in theirs)  # not this package's kernels
    assert (tmp_path / SOURCES_DIGEST_FILE).read_text().strip() == sources_digest()


def test_kernels_without_a_digest_are_dropped(tmp_path):
    ours, _ = _fill(tmp_path)
    assert _drop_stale_kernels(str(tmp_path)) is True
    assert not any(path.exists() for path in ours)


def test_kernels_of_these_sources_are_kept(tmp_path):
    (tmp_path / SOURCES_DIGEST_FILE).write_text(sources_digest() + "\n")
    ours, theirs = _fill(tmp_path)
    assert _drop_stale_kernels(str(tmp_path)) is False
    assert all(path.exists() for path in ours + theirs)


def test_the_digest_follows_every_source_file(tmp_path, monkeypatch):
    import shutil
    from pathlib import Path

    package = Path(gidr_numba.__file__).parent
    copy = tmp_path / "gidr_numba"
    copy.mkdir()
    for path in package.glob("*.py"):
        shutil.copy(path, copy / path.name)
    monkeypatch.setattr(gidr_numba, "__file__", str(copy / "__init__.py"))
    before = sources_digest()
    assert before == gidr_numba.sources_digest()
    (copy / "random.py").write_text((copy / "random.py").read_text() + "\n# an edit\n")
    assert sources_digest() != before


def test_the_running_package_has_written_its_digest():
    import pytest
    from numba.core import caching

    if not gidr_numba.caching_available():
        pytest.skip("numba cannot cache here: gidr compiles in memory and writes no digest")

    cache = caching.CompileResultCacheImpl(gidr_numba._probe)._locator._cache_path
    from pathlib import Path

    assert (Path(cache) / SOURCES_DIGEST_FILE).read_text().strip() == sources_digest()
