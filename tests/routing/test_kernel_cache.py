"""numba's on-disk cache is named by the kernel sources' digest (dispatch.routing.kernels)."""

from __future__ import annotations

import re
from pathlib import Path

import numba
import pytest

from dispatch.routing import kernels

PKG = Path(kernels.__file__).resolve().parent.parent


def test_every_module_that_declares_kernels_names_the_cache() -> None:
    """A module with a numba kernel left out of KERNEL_SOURCES could load stale machine code."""
    declaring = sorted(
        p.relative_to(PKG).as_posix()
        for p in PKG.rglob("*.py")
        if re.search(r"^@(jit|numba\.njit)\b", p.read_text(encoding="utf-8"), re.M)
    )
    assert declaring == sorted(kernels.KERNEL_SOURCES)


def test_the_cache_folder_follows_the_sources(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:  # fmt: skip
    """Another source (a helper of kernels.py edited) gives another folder; NUMBA_CACHE_DIR is
    honoured (a subfolder of it); the folder in use is the one numba was given."""
    digest = kernels._sources_digest()
    assert len(digest) == 16 and kernels._sources_digest() == digest
    if kernels.CACHE:
        assert digest in str(numba.config.CACHE_DIR)
    fake = tmp_path / "dispatch"
    for rel in kernels.KERNEL_SOURCES:
        (fake / rel).parent.mkdir(parents=True, exist_ok=True)
        (fake / rel).write_bytes((PKG / rel).read_bytes())
    monkeypatch.setattr(kernels.os.path, "abspath",
                        lambda p: str(fake / "routing" / "kernels.py"))  # fmt: skip
    assert kernels._sources_digest() == digest  # the same sources elsewhere: the same digest
    (fake / "routing" / "kernels.py").write_text(
        (PKG / "routing" / "kernels.py").read_text(encoding="utf-8") + "\n# edited\n",
        encoding="utf-8",
    )
    assert kernels._sources_digest() != digest
    monkeypatch.undo()
    saved = numba.config.CACHE_DIR
    try:
        monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "nc"))
        assert kernels._choose_cache() is True
        assert str(numba.config.CACHE_DIR) == str(tmp_path / "nc" / f"dispatch-{digest}")
    finally:
        numba.config.CACHE_DIR = saved
